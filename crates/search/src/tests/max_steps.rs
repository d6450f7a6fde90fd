//! A step limit: the first K steps of every sequential strategy are exactly the unlimited
//! run's, at the cost those K steps need; exhaustive search refuses a limit.
use super::support::*;
use super::*;

/// A non-modular accuracy with a unique choice at every step.
fn f(low: &[bool]) -> f64 {
    let costs = [0.05, 0.01, 0.03, 0.02, 0.04, 0.006];
    let s: f64 = low
        .iter()
        .zip(costs)
        .filter(|(l, _)| **l)
        .map(|(_, c)| c)
        .sum();
    let pairs = (low[0] && low[3]) as u8 as f64 * 0.015;
    1.0 - s - pairs
}

fn limited(k: usize) -> Problem {
    Problem {
        max_steps: Some(k),
        ..Problem::new(vec![100, 200, 300, 400, 500, 600])
    }
}

#[test]
fn a_limit_keeps_the_first_steps_and_their_cost_only() {
    let strategies = [
        Strategy::Greedy {
            beta: Beta::Fixed(0.0),
        },
        Strategy::Greedy { beta: Beta::Auto },
        Strategy::OneShot,
        Strategy::LazyGreedy {
            beta: Beta::Fixed(0.0),
        },
        Strategy::ScreenedGreedy {
            beta: Beta::Fixed(0.0),
            fraction: 0.5,
            z: f64::INFINITY,
        },
        Strategy::Random { seed: 3 },
    ];
    for strategy in strategies {
        let full = run(strategy, &limited(6), &mut logged(2, f), &mut NoObserver).unwrap();
        for k in [1, 2, 5] {
            let mut e = logged(2, f);
            let r = run(strategy, &limited(k), &mut e, &mut NoObserver).unwrap();
            let name = strategy.name();
            assert_eq!(r.steps.len(), k + 1, "{name} k={k}");
            assert_eq!(choices(&r), choices(&full)[..=k], "{name} k={k}");
            assert_eq!(r.evals(), full.steps[k].evals, "{name} k={k}: evaluations");
            // Nothing beyond step k was asked for.
            let asked = evaluated(&e.calls);
            assert_eq!(asked.len(), r.evals() + 1, "{name} k={k}: step 0 + counted");
        }
    }
    // Greedy's count: M + (M-1) for two steps of six layers.
    let r = run(
        Strategy::Greedy {
            beta: Beta::Fixed(0.0),
        },
        &limited(2),
        &mut logged(1, f),
        &mut NoObserver,
    )
    .unwrap();
    assert_eq!(r.evals(), 6 + 5);
    // A limit of 0 counts as 1; one above M as M.
    let r0 = run(
        Strategy::OneShot,
        &limited(0),
        &mut logged(1, f),
        &mut NoObserver,
    )
    .unwrap();
    assert_eq!(r0.steps.len(), 2);
    let r9 = run(
        Strategy::OneShot,
        &limited(9),
        &mut logged(1, f),
        &mut NoObserver,
    )
    .unwrap();
    assert_eq!(r9.steps.len(), 7);
}

#[test]
fn exhaustive_refuses_a_limit_before_evaluating() {
    let mut e = logged(1, f);
    let err = run(
        Strategy::exhaustive(Beta::Fixed(0.0)),
        &limited(2),
        &mut e,
        &mut NoObserver,
    )
    .unwrap_err();
    assert!(matches!(err, SearchError::MaxStepsUnsupported(_)));
    assert!(e.calls.is_empty());
}
