//! A reduced ground set: every strategy searches only the listed layers (the others stay at
//! the baseline pair), at the cost of an M-layer network, with the choices it would make on
//! that M-layer network.
use super::support::*;
use super::*;

/// Six layers; 1, 3 and 4 searchable (given out of order). Costs make 4, then 1, then 3 the
/// greedy order on the ground set; layers 0, 2 and 5 are the cheapest of all, so a search that
/// leaked outside the ground set would take them.
fn setting() -> (Problem, Vec<f64>) {
    let mut p = Problem::new(vec![100, 200, 1, 400, 500, 600]);
    p.searchable = Some(vec![4, 1, 3]);
    (p, vec![0.0, 0.02, 0.0, 0.03, 0.01, 0.0])
}

const STRATEGIES: [Strategy; 6] = [
    Strategy::Greedy {
        beta: Beta::Fixed(0.0),
    },
    Strategy::OneShot,
    Strategy::LazyGreedy {
        beta: Beta::Fixed(0.0),
    },
    Strategy::ScreenedGreedy {
        beta: Beta::Fixed(0.0),
        fraction: 0.5,
        z: f64::INFINITY,
    },
    Strategy::Exhaustive {
        beta: Beta::Fixed(0.0),
        max_layers: 3,
    },
    Strategy::Random { seed: 3 },
];

#[test]
fn every_strategy_stays_on_the_ground_set() {
    let (p, costs) = setting();
    for strategy in STRATEGIES {
        let mut e = logged(1, modular(costs.clone()));
        let r = run(strategy, &p, &mut e, &mut NoObserver).unwrap();
        let name = strategy.name();
        assert_eq!(r.searchable, vec![1, 3, 4], "{name}");
        assert_eq!(r.steps.len(), 4, "{name}: steps 0..=M");
        for s in evaluated(&e.calls).iter().chain(commits(&e.calls).iter()) {
            assert!(s.iter().all(|i| [1, 3, 4].contains(i)), "{name}: {s:?}");
        }
        assert_eq!(r.steps[3].low, vec![1, 3, 4], "{name}");
        match strategy {
            Strategy::Exhaustive { .. } => {
                assert_eq!(r.evals(), 7);
                let sets: Vec<Vec<usize>> = r.steps.iter().map(|s| s.low.clone()).collect();
                assert_eq!(sets, vec![vec![], vec![4], vec![1, 4], vec![1, 3, 4]]);
            }
            Strategy::Random { .. } => {
                check_nested(&r, &p);
                assert_eq!(r.evals(), 3);
                assert_eq!(r.order(), crate::random::shuffled(&[1, 3, 4], 3));
            }
            _ => {
                check_nested(&r, &p);
                assert_eq!(r.order(), vec![4, 1, 3], "{name}");
            }
        }
        if let Some(t) = evals_total(strategy, 3) {
            assert_eq!(r.evals(), t, "{name}");
        }
    }
    // Greedy: M(M+1)/2 = 6 evaluations, each the current set plus a searchable layer.
    let mut e = logged(1, modular(costs));
    let g = run(STRATEGIES[0], &p, &mut e, &mut NoObserver).unwrap();
    assert_eq!(g.evals(), 6);
    assert_eq!(
        evaluated(&e.calls),
        vec![
            vec![],
            vec![1],
            vec![3],
            vec![4],
            vec![1, 4],
            vec![3, 4],
            vec![1, 3, 4]
        ]
    );
}

#[test]
fn a_ground_set_search_equals_the_search_of_the_smaller_network() {
    // Map the 3 searchable layers of a 6-layer network onto a 3-layer network (positions 0, 1,
    // 2 = layers 1, 3, 4) with the same function and sizes: same choices, same values.
    let (p, costs) = setting();
    let small = Problem::new(vec![200, 400, 500]);
    let small_costs = vec![0.02, 0.03, 0.01];
    let to_big = [1, 3, 4];
    for strategy in STRATEGIES.into_iter().chain([
        Strategy::Greedy { beta: Beta::Auto },
        Strategy::Exhaustive {
            beta: Beta::Auto,
            max_layers: 3,
        },
    ]) {
        let big = run(
            strategy,
            &p,
            &mut fun(modular(costs.clone())),
            &mut NoObserver,
        )
        .unwrap();
        let sm = run(
            strategy,
            &small,
            &mut fun(modular(small_costs.clone())),
            &mut NoObserver,
        )
        .unwrap();
        assert_eq!(big.beta, sm.beta, "{}", strategy.name());
        for (a, b) in big.steps.iter().zip(&sm.steps) {
            let mapped: Vec<usize> = b.low.iter().map(|&i| to_big[i]).collect();
            assert_eq!(a.low, mapped, "{}", strategy.name());
            assert_eq!(a.top1.to_bits(), b.top1.to_bits());
            assert_eq!(a.objective, b.objective);
            assert_eq!(a.params_low, b.params_low);
            assert_eq!(a.evals, b.evals);
        }
    }
}

#[test]
fn automatic_beta_looks_at_the_ground_set_only() {
    // Layer 2 has one weight (ln 1 = 0): automatic beta is undefined when it is searchable, fine
    // when it is not.
    let (p, costs) = setting();
    let r = run(AUTO, &p, &mut fun(modular(costs.clone())), &mut NoObserver).unwrap();
    // a = 0.98, 0.97, 0.99; p = ln 200, ln 400, ln 500: beta = ln(0.97/0.99) / ln(ln 200 / ln 500).
    let want = (0.97f64 / 0.99).ln() / (200f64.ln() / 500f64.ln()).ln();
    assert!((r.beta - want).abs() < 1e-12, "{} vs {want}", r.beta);
    let mut q = p.clone();
    q.searchable = Some(vec![2, 4]);
    let mut e = fun(modular(costs.clone()));
    let err = run(AUTO, &q, &mut e, &mut NoObserver).unwrap_err();
    assert!(matches!(
        err,
        SearchError::AutoBetaUndefined {
            source: AutoBetaError::TooFewWeights {
                layer_index: 2,
                n: 1
            }
        }
    ));
    assert_eq!(e.calls(), 0);
    // A zero accuracy is named by its network index, not its position in the ground set.
    let mut e = fun(|low: &[bool]| if low[4] { 0.0 } else { 0.5 });
    let err = run(AUTO, &p, &mut e, &mut NoObserver).unwrap_err();
    assert!(matches!(
        err,
        SearchError::AutoBetaUndefined {
            source: AutoBetaError::ZeroAccuracy { layer_index: 4 }
        }
    ));
}

#[test]
fn bad_ground_sets_are_refused_before_any_evaluation() {
    let cases: [(Vec<usize>, &str); 3] = [
        (
            vec![1, 6],
            "searchable layer 6 does not exist (the network has 6 layers)",
        ),
        (vec![3, 1, 3], "searchable layer 3 is listed twice"),
        (vec![], "the problem has no (searchable) layers"),
    ];
    for (list, msg) in cases {
        let (mut p, costs) = setting();
        p.searchable = Some(list);
        for strategy in STRATEGIES {
            let mut e = fun(modular(costs.clone()));
            let err = run(strategy, &p, &mut e, &mut NoObserver).unwrap_err();
            assert_eq!(err.to_string(), msg);
            assert_eq!(e.calls(), 0);
        }
    }
    // The whole network, listed explicitly, is the same as None.
    let (mut p, costs) = setting();
    p.searchable = Some((0..6).rev().collect());
    let a = run(
        STRATEGIES[0],
        &p,
        &mut fun(modular(costs.clone())),
        &mut NoObserver,
    )
    .unwrap();
    p.searchable = None;
    let b = run(STRATEGIES[0], &p, &mut fun(modular(costs)), &mut NoObserver).unwrap();
    assert_eq!(timeless(&a), timeless(&b));
}
