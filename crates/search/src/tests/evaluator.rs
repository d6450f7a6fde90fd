//! The richer evaluator interface: its defaults (an implementor with `accuracy` alone), chunks
//! of `batch_hint`, `commit` with each current set, and the checks on what comes back.
use super::support::*;
use super::*;

const ALL: [Strategy; 6] = [
    Strategy::Greedy {
        beta: Beta::Fixed(0.0),
    },
    Strategy::OneShot,
    Strategy::LazyGreedy {
        beta: Beta::Fixed(0.0),
    },
    Strategy::ScreenedGreedy {
        beta: Beta::Fixed(0.0),
        fraction: 0.2,
        z: 1.0,
    },
    Strategy::Exhaustive {
        beta: Beta::Fixed(0.0),
        max_layers: EXHAUSTIVE_MAX_LAYERS,
    },
    Strategy::Random { seed: 7 },
];

#[test]
fn an_accuracy_only_evaluator_works_with_every_strategy() {
    // `Fun` implements `accuracy` alone: every default applies (accuracies one by one, batch 1,
    // no commit, one part, no counts). Screened greedy then is plain greedy.
    let costs = vec![0.05, 0.01, 0.2, 0.03];
    let p = Problem::new(vec![10, 20, 30, 40]);
    let g = run(
        greedy(0.0),
        &p,
        &mut fun(modular(costs.clone())),
        &mut NoObserver,
    )
    .unwrap();
    for strategy in ALL {
        let mut e = fun(modular(costs.clone()));
        let r = run(strategy, &p, &mut e, &mut NoObserver).unwrap();
        assert_eq!(r.strategy.name(), strategy.name());
        if !matches!(strategy, Strategy::Exhaustive { .. }) {
            check_nested(&r, &p);
        }
        // Step 0 plus the counted evaluations, one `accuracy` call each.
        assert_eq!(e.calls(), r.evals() + 1, "{}", strategy.name());
        match strategy {
            Strategy::Exhaustive { .. } | Strategy::Random { .. } => {}
            _ => assert_eq!(r.order(), vec![1, 3, 0, 2], "{}", strategy.name()),
        }
        if let Strategy::ScreenedGreedy { .. } = strategy {
            assert_eq!(r.screen_parts, None);
            assert_eq!(rows(&r), rows(&g));
            assert_eq!(choices(&r), choices(&g));
        }
    }
}

#[test]
fn greedy_passes_candidates_in_chunks_of_batch_hint() {
    // M = 5, batch 3: step 1 has 5 candidates -> chunks 3, 2; step 2: 4 -> 3, 1; step 3: 3;
    // step 4: 2; step 5: 1. Results are those of batch 1, bit for bit.
    let costs = vec![0.05, 0.01, 0.2, 0.03, 0.1];
    let p = problem(5);
    let one = run(
        greedy(0.0),
        &p,
        &mut fun(modular(costs.clone())),
        &mut NoObserver,
    )
    .unwrap();
    let mut e = logged(3, modular(costs.clone()));
    let mut rec = Record::default();
    let r = run(greedy(0.0), &p, &mut e, &mut rec).unwrap();
    assert_eq!(chunk_sizes(&e.calls), vec![3, 2, 3, 1, 3, 2, 1]);
    assert_eq!(rows(&r), rows(&one));
    assert_eq!(choices(&r), choices(&one));
    let ev: Vec<usize> = r.steps.iter().map(|s| s.evals).collect();
    assert_eq!(ev, vec![0, 5, 9, 12, 14, 15]);
    // The chunks are ascending within a step: the sets of step 1 are {0},{1},{2} then {3},{4}.
    assert_eq!(
        e.calls[2],
        Call::Accs(vec![vec![0], vec![1], vec![2]]),
        "after step 0 and commit(S_0)"
    );
    // Progress after each chunk: (step, candidates done in step, of).
    let seen: Vec<(usize, usize, usize, usize)> = rec
        .evals
        .iter()
        .map(|p| (p.step, p.candidate, p.n_candidates, p.evals_done))
        .collect();
    #[rustfmt::skip]
    assert_eq!(seen, vec![
        (1, 3, 5, 3), (1, 5, 5, 5), (2, 3, 4, 8), (2, 4, 4, 9), (3, 3, 3, 12),
        (4, 2, 2, 14), (5, 1, 1, 15),
    ]);
    assert!(rec.evals.iter().all(|p| p.evals_total == Some(15)
        && p.work_max == 15.0
        && p.work_done == p.evals_done as f64));
    // A hint of 0 is read as 1.
    let mut e = logged(0, modular(costs));
    let r0 = run(greedy(0.0), &p, &mut e, &mut NoObserver).unwrap();
    assert_eq!(chunk_sizes(&e.calls), vec![1; 15]);
    assert_eq!(rows(&r0), rows(&one));
}

#[test]
fn greedy_commits_each_current_set_before_building_on_it() {
    // Costs 0.3, 0.1, 0.2: order 1, 2, 0. Commits: S_0 = {} after step 0, then S_1 = {1},
    // S_2 = {1, 2}; never S_3 (no query follows).
    let mut e = logged(1, modular(vec![0.3, 0.1, 0.2]));
    run(greedy(0.0), &problem(3), &mut e, &mut NoObserver).unwrap();
    let want = vec![
        Call::Acc(vec![]),
        Call::Commit(vec![]),
        Call::Accs(vec![vec![0]]),
        Call::Accs(vec![vec![1]]),
        Call::Accs(vec![vec![2]]),
        Call::Commit(vec![1]),
        Call::Accs(vec![vec![0, 1]]),
        Call::Accs(vec![vec![1, 2]]),
        Call::Commit(vec![1, 2]),
        Call::Accs(vec![vec![0, 1, 2]]),
    ];
    assert_eq!(e.calls, want);
    // Lazy and screened greedy commit the same sets (their choices are the same here).
    for strategy in [
        Strategy::LazyGreedy {
            beta: Beta::Fixed(0.0),
        },
        Strategy::ScreenedGreedy {
            beta: Beta::Fixed(0.0),
            fraction: 0.5,
            z: 2.0,
        },
    ] {
        let mut e = logged(1, modular(vec![0.3, 0.1, 0.2]));
        run(strategy, &problem(3), &mut e, &mut NoObserver).unwrap();
        assert_eq!(commits(&e.calls), vec![vec![], vec![1], vec![1, 2]]);
    }
}

#[test]
fn one_shot_chunks_its_sensitivities_and_its_fixed_sets() {
    // M = 5, batch 3. Sensitivities 0.95, 0.99, 0.8, 0.97, 0.9 -> order 1, 3, 0, 4, 2.
    // Step 1: chunks {0},{1},{2} and {3},{4}. S_1 = {1} is committed, then S_2..S_4 go in one
    // chunk, S_4 is committed, then S_5 alone. Same rows as with batch 1.
    let costs = vec![0.05, 0.01, 0.2, 0.03, 0.1];
    let p = problem(5);
    let one = run(
        Strategy::OneShot,
        &p,
        &mut fun(modular(costs.clone())),
        &mut NoObserver,
    )
    .unwrap();
    let mut e = logged(3, modular(costs.clone()));
    let mut rec = Record::default();
    let r = run(Strategy::OneShot, &p, &mut e, &mut rec).unwrap();
    check_nested(&r, &p);
    assert_eq!(rows(&r), rows(&one));
    assert_eq!(choices(&r), choices(&one));
    assert_eq!(r.order(), vec![1, 3, 0, 4, 2]);
    let want = vec![
        Call::Acc(vec![]),
        Call::Commit(vec![]),
        Call::Accs(vec![vec![0], vec![1], vec![2]]),
        Call::Accs(vec![vec![3], vec![4]]),
        Call::Commit(vec![1]),
        Call::Accs(vec![vec![1, 3], vec![0, 1, 3], vec![0, 1, 3, 4]]),
        Call::Commit(vec![0, 1, 3, 4]),
        Call::Accs(vec![vec![0, 1, 2, 3, 4]]),
    ];
    assert_eq!(e.calls, want);
    // Steps are still reported one by one, each after its chunk's evaluation.
    assert_eq!(rec.evals_at_step, vec![0, 2, 3, 3, 3, 4]);
    // Batch 1: commits S_0..S_4.
    let mut e = logged(1, modular(costs));
    run(Strategy::OneShot, &p, &mut e, &mut NoObserver).unwrap();
    assert_eq!(
        commits(&e.calls),
        vec![vec![], vec![1], vec![1, 3], vec![0, 1, 3], vec![0, 1, 3, 4]]
    );
}

/// An evaluator whose `accuracies` returns one result too few.
struct Short;
impl Evaluator for Short {
    type Error = std::convert::Infallible;
    fn accuracy(&mut self, _: &[bool]) -> Result<f64, Self::Error> {
        Ok(0.5)
    }
    fn accuracies(&mut self, sets: &[Vec<bool>]) -> Result<Vec<f64>, Self::Error> {
        Ok(vec![0.5; sets.len() - 1])
    }
    fn batch_hint(&self) -> usize {
        2
    }
}

#[test]
fn a_wrong_number_of_results_stops_the_run() {
    let err = run(greedy(0.0), &problem(3), &mut Short, &mut NoObserver).unwrap_err();
    assert!(matches!(
        err,
        SearchError::BatchLength {
            expected: 2,
            got: 1
        }
    ));
    assert_eq!(
        err.to_string(),
        "the evaluator returned 1 results for 2 configurations"
    );
}

#[test]
fn evaluator_errors_propagate_at_once_for_every_strategy() {
    let n = 4;
    for strategy in ALL {
        let full = run(
            strategy,
            &problem(n),
            &mut fun(|_: &[bool]| 0.5),
            &mut NoObserver,
        )
        .unwrap()
        .evals();
        for ok in 0..=full {
            let mut e = Failing { ok, calls: 0 };
            let err = run(strategy, &problem(n), &mut e, &mut NoObserver).unwrap_err();
            assert!(
                matches!(err, SearchError::Eval(Boom)),
                "{}",
                strategy.name()
            );
            assert_eq!(e.calls, ok + 1, "no evaluation after the failure");
        }
    }
}

#[test]
fn names_evals_totals_and_work_bounds() {
    let b = Beta::Fixed(0.0);
    let names: Vec<&str> = ALL.iter().map(|s| s.name().as_str()).collect();
    assert_eq!(
        names,
        vec![
            "greedy",
            "one-shot",
            "lazy-greedy",
            "screened-greedy",
            "exhaustive",
            "random"
        ]
    );
    assert_eq!(evals_total(Strategy::LazyGreedy { beta: b }, 21), None);
    assert_eq!(evals_total(ALL[3], 21), None);
    assert_eq!(evals_total(Strategy::exhaustive(b), 10), Some(1023));
    assert_eq!(evals_total(Strategy::exhaustive(b), 64), None, "overflow");
    assert_eq!(evals_total(Strategy::Random { seed: 1 }, 21), Some(21));
    assert_eq!(work_max(ALL[2], 21), 231.0);
    assert_eq!(work_max(ALL[3], 21), 231.0);
    assert_eq!(work_max(Strategy::exhaustive(b), 10), 1023.0);
    assert_eq!(work_max(Strategy::OneShot, 21), 41.0);
    assert_eq!(work_max(Strategy::Random { seed: 1 }, 21), 21.0);
    assert_eq!(
        Strategy::exhaustive(Beta::Auto),
        Strategy::Exhaustive {
            beta: Beta::Auto,
            max_layers: 20
        }
    );
    assert_eq!(ALL[0].beta(), Some(b));
    assert_eq!(Strategy::OneShot.beta(), None);
}

#[test]
fn count_top1_is_the_runner_formula_and_counts_add() {
    let a = Count {
        correct: 3,
        total: 7,
    };
    let b = Count {
        correct: 4,
        total: 6,
    };
    assert_eq!(
        a + b,
        Count {
            correct: 7,
            total: 13
        }
    );
    assert_eq!((a + b).top1(), 7.0 / 13.0);
    assert_eq!(Count::default().top1(), 0.0, "no images: 0 / max(0, 1)");
}
