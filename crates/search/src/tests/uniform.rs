//! Uniform: step 0, then every searchable layer at once, for one evaluation.
use super::support::*;
use super::*;

fn f(low: &[bool]) -> f64 {
    1.0 - 0.1 * low.iter().filter(|&&l| l).count() as f64
}

#[test]
fn uniform_is_step_0_and_the_whole_ground_set_in_one_evaluation() {
    let p = Problem {
        searchable: Some(vec![3, 1, 4]),
        ..Problem::new(vec![10, 20, 30, 40, 50, 60])
    };
    let mut e = logged(4, f);
    let r = run(Strategy::Uniform, &p, &mut e, &mut NoObserver).unwrap();
    assert_eq!(r.steps.len(), 2);
    assert_eq!(r.beta, 0.0);
    let s1 = &r.steps[1];
    assert_eq!((s1.step, s1.layer_index), (1, None));
    assert_eq!(s1.low, vec![1, 3, 4]);
    assert_eq!(s1.params_low, 20 + 40 + 50);
    assert!((s1.top1 - 0.7).abs() < 1e-12);
    assert_eq!(s1.objective, Some(s1.top1));
    assert_eq!((s1.evals, s1.work), (1, 1.0));
    assert_eq!(r.evals(), evals_total(Strategy::Uniform, 3).unwrap());
    // Step 0, then the one counted evaluation; no commit (nothing follows it).
    assert_eq!(evaluated(&e.calls), vec![vec![], vec![1, 3, 4]]);
    assert!(commits(&e.calls).is_empty());
    assert_eq!(r.candidates.len(), 1);
    assert_eq!(r.candidates[0].low, vec![1, 3, 4]);
    assert_eq!(r.candidates[0].layer_index, 4);
    assert!(r.order().is_empty(), "not nested");
}

#[test]
fn uniform_refuses_a_limit_before_evaluating() {
    let p = Problem {
        max_steps: Some(1),
        ..Problem::new(vec![10, 20])
    };
    let mut e = logged(1, f);
    let err = run(Strategy::Uniform, &p, &mut e, &mut NoObserver).unwrap_err();
    assert!(matches!(
        err,
        SearchError::MaxStepsUnsupported(mpq_vocab::StrategyName::Uniform)
    ));
    assert!(e.calls.is_empty());
}
