//! Strategies against hand-written set functions.
use super::*;
use std::convert::Infallible;

/// A set function given as a closure, counting its evaluations.
struct Fun<F: FnMut(&[bool]) -> f64> {
    f: F,
    calls: usize,
}

impl<F: FnMut(&[bool]) -> f64> Evaluator for Fun<F> {
    type Error = Infallible;
    fn accuracy(&mut self, low: &[bool]) -> Result<f64, Infallible> {
        self.calls += 1;
        Ok((self.f)(low))
    }
}

fn fun<F: FnMut(&[bool]) -> f64>(f: F) -> Fun<F> {
    Fun { f, calls: 0 }
}

fn modular(costs: Vec<f64>) -> impl FnMut(&[bool]) -> f64 {
    move |low: &[bool]| {
        1.0 - low
            .iter()
            .zip(&costs)
            .filter(|(l, _)| **l)
            .map(|(_, c)| c)
            .sum::<f64>()
    }
}

fn greedy0() -> Strategy {
    Strategy::Greedy {
        beta: Beta::Fixed(0.0),
    }
}

fn order(r: &SearchResult) -> Vec<usize> {
    r.steps
        .iter()
        .skip(1)
        .map(|s| s.layer_index.unwrap())
        .collect()
}

fn problem(n: usize) -> Problem {
    Problem {
        layer_params: vec![100; n],
    }
}

#[test]
fn modular_function_gives_ascending_cost_order() {
    let costs = vec![0.05, 0.01, 0.2, 0.03, 0.1];
    let mut e = fun(modular(costs));
    let r = run(greedy0(), &problem(5), &mut e, &mut NoObserver).unwrap();
    assert_eq!(order(&r), vec![1, 3, 0, 4, 2]);
    assert_eq!(r.steps.len(), 6);
    assert_eq!(r.steps[0].layer_index, None);
    assert_eq!(r.steps[0].top1, 1.0);
    assert_eq!(r.steps[0].evals, 0);
    assert!((r.steps[5].top1 - (1.0 - 0.39)).abs() < 1e-12);
    assert_eq!(r.steps[3].params_low, 300);
}

#[test]
fn greedy_costs_exactly_n_n_plus_1_over_2_evaluations() {
    for n in [1usize, 2, 3, 7, 16] {
        let costs: Vec<f64> = (0..n).map(|i| ((i * 7919) % 13) as f64 / 100.0).collect();
        let mut e = fun(modular(costs));
        let r = run(greedy0(), &problem(n), &mut e, &mut NoObserver).unwrap();
        assert_eq!(e.calls, n * (n + 1) / 2 + 1, "plus step 0");
        assert_eq!(r.candidates.len(), n * (n + 1) / 2);
        assert_eq!(r.steps.last().unwrap().evals, n * (n + 1) / 2);
        assert_eq!(evals_total(greedy0(), n), n * (n + 1) / 2);
        // Each step's top-1 is its chosen candidate's.
        for st in &r.steps[1..] {
            let c = r
                .candidates
                .iter()
                .find(|c| c.step == st.step && Some(c.layer_index) == st.layer_index)
                .unwrap();
            assert_eq!(c.top1, st.top1);
        }
    }
}

#[test]
fn ties_go_to_the_smallest_index() {
    let mut e = fun(modular(vec![0.1, 0.0, 0.0, 0.1, 0.0]));
    let r = run(greedy0(), &problem(5), &mut e, &mut NoObserver).unwrap();
    assert_eq!(order(&r), vec![1, 2, 4, 0, 3]);
    let mut e = fun(modular(vec![0.1, 0.0, 0.0, 0.1, 0.0]));
    let r = run(Strategy::OneShot, &problem(5), &mut e, &mut NoObserver).unwrap();
    assert_eq!(order(&r), vec![1, 2, 4, 0, 3]);
}

#[test]
fn one_shot_orders_by_step_1_and_costs_2n_minus_1() {
    // Interaction: layers 0 and 1 are each harmless alone but ruinous together.
    let f = |low: &[bool]| {
        let mut a = 0.9 - 0.01 * low[2] as u8 as f64 - 0.02 * low[3] as u8 as f64;
        if low[0] && low[1] {
            a -= 0.5;
        }
        a
    };
    let mut e = fun(f);
    let r = run(Strategy::OneShot, &problem(4), &mut e, &mut NoObserver).unwrap();
    assert_eq!(order(&r), vec![0, 1, 2, 3]);
    assert_eq!(e.calls, 2 * 4 - 1 + 1);
    assert_eq!(r.candidates.len(), 7);
    assert!(
        (r.steps[2].top1 - 0.4).abs() < 1e-12,
        "one-shot walks into the interaction"
    );
    assert_eq!(r.beta, 0.0);
    // Greedy avoids the pair until it must: 0, then 2, 3, then 1.
    let mut e = fun(f);
    let g = run(greedy0(), &problem(4), &mut e, &mut NoObserver).unwrap();
    assert_eq!(order(&g), vec![0, 2, 3, 1]);
    assert!(g.steps[2].top1 > r.steps[2].top1 + 0.4);
}

#[test]
fn beta_favours_bigger_layers() {
    // Layer 1 costs a bit more accuracy but is 1000x bigger.
    let p = Problem {
        layer_params: vec![10, 10_000],
    };
    let mut e = fun(modular(vec![0.01, 0.02]));
    let r = run(greedy0(), &p, &mut e, &mut NoObserver).unwrap();
    assert_eq!(order(&r), vec![0, 1]);
    let mut e = fun(modular(vec![0.01, 0.02]));
    let r = run(
        Strategy::Greedy {
            beta: Beta::Fixed(0.5),
        },
        &p,
        &mut e,
        &mut NoObserver,
    )
    .unwrap();
    assert_eq!(order(&r), vec![1, 0]);
    assert_eq!(r.steps[0].objective, None, "ln 0 at step 0");
    let want = 0.98 * (10_000f64).ln().sqrt();
    assert!((r.steps[1].objective.unwrap() - want).abs() < 1e-12);
}

#[test]
fn automatic_beta() {
    // a = [0.8, 0.4], p = [ln 100, ln 10000] = [2 ln 10, 4 ln 10]: beta = ln(0.5)/ln(0.5) = 1.
    let b = auto_beta(&[0.8, 0.4], &[100, 10_000]).unwrap();
    assert!((b - 1.0).abs() < 1e-12);
    assert_eq!(auto_beta(&[0.5, 0.5], &[100, 10_000]).unwrap(), 0.0);
    assert_eq!(auto_beta(&[0.4, 0.5], &[100, 100]).unwrap(), 0.0);
    assert!(auto_beta(&[0.0, 0.5], &[100, 10]).is_err());

    let p = Problem {
        layer_params: vec![100, 10_000],
    };
    let mut e = fun(modular(vec![0.2, 0.6]));
    let r = run(
        Strategy::Greedy { beta: Beta::Auto },
        &p,
        &mut e,
        &mut NoObserver,
    )
    .unwrap();
    assert!((r.beta - 1.0).abs() < 1e-12);
    assert_eq!(r.steps[0].evals, 0);
    assert_eq!(r.steps[0].objective, None);
    // Step 1 uses beta = 1: 0.8 * 2 ln 10 = 3.68 < 0.4 * 4 ln 10 = 3.68: equal -> index 0.
    let c: Vec<f64> = r
        .candidates
        .iter()
        .filter(|c| c.step == 1)
        .map(|c| c.objective.unwrap())
        .collect();
    assert!((c[0] - 0.8 * (100f64).ln()).abs() < 1e-12);

    let mut e = fun(|low: &[bool]| if low[0] { 0.0 } else { 0.5 });
    let err = run(
        Strategy::Greedy { beta: Beta::Auto },
        &p,
        &mut e,
        &mut NoObserver,
    )
    .unwrap_err();
    assert!(matches!(err, SearchError::AutoBetaUndefined(_)));
}

#[test]
fn bad_beta_and_evaluator_errors() {
    let mut e = fun(modular(vec![0.1]));
    assert!(matches!(
        run(
            Strategy::Greedy {
                beta: Beta::Fixed(-0.1)
            },
            &problem(1),
            &mut e,
            &mut NoObserver
        ),
        Err(SearchError::BadBeta(_))
    ));
    #[derive(Debug, thiserror::Error)]
    #[error("boom")]
    struct Boom;
    struct Failing(usize);
    impl Evaluator for Failing {
        type Error = Boom;
        fn accuracy(&mut self, _: &[bool]) -> Result<f64, Boom> {
            self.0 += 1;
            if self.0 > 3 {
                Err(Boom)
            } else {
                Ok(0.5)
            }
        }
    }
    let err = run(greedy0(), &problem(4), &mut Failing(0), &mut NoObserver).unwrap_err();
    assert!(matches!(err, SearchError::Eval(Boom)));
}

#[test]
fn observer_sees_every_evaluation() {
    struct Count(usize, usize);
    impl Observer for Count {
        fn on_eval(&mut self, p: &Progress) {
            self.0 += 1;
            assert_eq!(p.evals_done, self.0);
            assert_eq!(p.evals_total, 10);
        }
        fn on_step(&mut self, _: &Step) {
            self.1 += 1;
        }
    }
    let mut c = Count(0, 0);
    run(
        greedy0(),
        &problem(4),
        &mut fun(modular(vec![0.1, 0.2, 0.3, 0.4])),
        &mut c,
    )
    .unwrap();
    assert_eq!((c.0, c.1), (10, 5));
}
