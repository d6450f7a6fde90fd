//! Screened greedy: greedy's choices with a generous margin, fewer full evaluations with a
//! tiny one, finished values bit for bit equal to full evaluations, plain greedy when the
//! evaluator cannot split its images.
use super::support::*;
use super::*;
use crate::random::SplitMix64;
use crate::screened::{screen, screen_parts};
use std::ops::Range;

fn screened(fraction: f64, z: f64) -> Strategy {
    Strategy::ScreenedGreedy {
        beta: Beta::Fixed(0.0),
        fraction,
        z,
    }
}

/// Whether layer j at the low pair breaks image i: a fixed pseudo-random draw below `rate`.
fn damaged(i: usize, j: usize, rate: f64) -> bool {
    let mut r = SplitMix64(((i as u64) << 8) | j as u64);
    (r.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= rate
}

/// Image i is right while no layer of S breaks it (a coverage function: submodular).
fn breakage(rates: Vec<f64>) -> impl Fn(usize, &[bool]) -> bool {
    move |i: usize, low: &[bool]| !(0..low.len()).any(|j| low[j] && damaged(i, j, rates[j]))
}

const RATES: [f64; 6] = [0.02, 0.3, 0.05, 0.5, 0.1, 0.07];

#[test]
fn with_an_infinite_margin_it_is_greedy_at_greedy_cost() {
    // 200 images in 10 parts of 20; fraction 0.2 -> screening on parts 0..2 (40 images).
    // Every candidate is kept: one partial query (2/10) and one finishing query (8/10) each,
    // except the last step's single candidate (one full query). M = 6: candidates 6+5+4+3+2 =
    // 20 screened (40 queries) + 1 -> 41 queries, work 21 = greedy's.
    let p = problem(6);
    let mut ge = images(200, 10, breakage(RATES.to_vec()));
    let g = run(greedy(0.0), &p, &mut ge, &mut NoObserver).unwrap();
    let mut e = images(200, 10, breakage(RATES.to_vec()));
    let r = run(screened(0.2, f64::INFINITY), &p, &mut e, &mut NoObserver).unwrap();
    check_nested(&r, &p);
    assert_eq!(r.screen_parts, Some((2, 10)));
    assert_eq!(choices(&r), choices(&g));
    assert_eq!(
        rows(&r),
        rows(&g),
        "same rows, all full, ascending per step"
    );
    assert_eq!(r.evals(), 41);
    assert_eq!(r.work(), 21.0);
    // The calls of step 1: counts on parts 0..2 one at a time, then 2..10.
    assert_eq!(e.calls[2], Call::Counts(vec![vec![0]], 0..2));
    assert_eq!(e.calls[8], Call::Counts(vec![vec![0]], 2..10));
    // A generous finite margin gives the same choices on this function.
    let r5 = run(
        screened(0.2, 5.0),
        &p,
        &mut images(200, 10, breakage(RATES.to_vec())),
        &mut NoObserver,
    )
    .unwrap();
    assert_eq!(choices(&r5), choices(&g));
}

#[test]
fn with_a_tiny_margin_it_finishes_fewer_candidates_and_values_stay_exact() {
    // z = 0 keeps only the candidates tied with the best on the screening parts. 200 images in
    // 7 uneven parts (28 or 29 images), fraction 0.3 -> round(2.1) = 2 parts (57 images).
    let rates = RATES.to_vec();
    let p = problem(6);
    let mut e = images(200, 7, breakage(rates.clone()));
    let r = run(screened(0.3, 0.0), &p, &mut e, &mut NoObserver).unwrap();
    check_nested(&r, &p);
    assert_eq!(r.screen_parts, Some((2, 7)));
    let oracle = images(200, 7, breakage(rates));
    let low = |s: &[usize]| {
        let mut l = vec![false; 6];
        s.iter().for_each(|&i| l[i] = true);
        l
    };
    let partial = r.candidates.iter().filter(|c| !c.full).count();
    assert!(partial > 0, "some candidates were dropped after screening");
    assert_eq!(
        r.candidates.len(),
        21,
        "one row per candidate, finished or not"
    );
    for c in &r.candidates {
        if c.full {
            // Head and tail counts added: bit for bit the full accuracy.
            assert_eq!(c.top1.to_bits(), oracle.full(&low(&c.low)).to_bits());
        } else {
            assert_eq!(c.top1, oracle.raw_count(&low(&c.low), 0..2).top1());
        }
    }
    for s in &r.steps {
        assert_eq!(s.top1.to_bits(), oracle.full(&low(&s.low)).to_bits());
    }
    // Cost: 20 screened candidates at 2/7, the finished ones at 5/7 more, the last step 1.
    let finished = 20 - partial;
    assert_eq!(r.evals(), 20 + finished + 1);
    let work = (20 * 2 + finished * 5 + 7) as f64 / 7.0;
    assert!((r.work() - work).abs() < 1e-12);
    assert!(r.work() < 21.0);
    // Every finished candidate was the best on the screening parts or tied with it.
    for k in 1..=5 {
        let step: Vec<&Candidate> = r.candidates.iter().filter(|c| c.step == k).collect();
        let head = |c: &Candidate| oracle.raw_count(&low(&c.low), 0..2).correct;
        let best = step.iter().map(|c| head(c)).max().unwrap();
        for c in &step {
            assert_eq!(c.full, head(c) == best, "step {k} layer {}", c.layer_index);
        }
    }
}

#[test]
fn the_screening_rule_by_hand() {
    let c = |correct: u64| Count {
        correct,
        total: 100,
    };
    let head = vec![c(90), c(86), c(79), c(70)];
    let one = vec![Some(1.0); 4];
    // Against the best (0.90, variance 0.9 * 0.1 = 0.09):
    // 0.86: gap 0.04, se = sqrt((0.09 + 0.1204) / 100) = 0.0459 -> kept for z >= 0.872;
    // 0.79: gap 0.11, se = sqrt((0.09 + 0.1659) / 100) = 0.0506 -> kept for z >= 2.17;
    // 0.70: gap 0.20, se = sqrt((0.09 + 0.21) / 100) = 0.0548 -> kept for z >= 3.65.
    assert_eq!(screen(&head, &one, 0.0), vec![true, false, false, false]);
    assert_eq!(screen(&head, &one, 1.0), vec![true, true, false, false]);
    assert_eq!(screen(&head, &one, 2.0), vec![true, true, false, false]);
    assert_eq!(screen(&head, &one, 2.5), vec![true, true, true, false]);
    assert_eq!(screen(&head, &one, 4.0), vec![true; 4]);
    assert_eq!(screen(&head, &one, f64::INFINITY), vec![true; 4]);
    // Ties with the best are kept at z = 0; the best is the first of them.
    assert_eq!(
        screen(&[c(80), c(90), c(90)], &[Some(1.0); 3], 0.0),
        vec![false, true, true]
    );
    // Eq. 2 factors scale the values and the errors: 0.5 * 2 = 1.0 beats 0.9 * 1.
    assert_eq!(
        screen(&[c(90), c(50)], &[Some(1.0), Some(2.0)], 0.0),
        vec![false, true]
    );
    // All right: the error is 0, and an infinite z still keeps (no 0 * inf).
    assert_eq!(
        screen(&[c(100), c(100)], &[Some(1.0); 2], f64::INFINITY),
        vec![true, true]
    );
    // An undefined objective (ln 0) is dropped unless all are undefined.
    assert_eq!(
        screen(&[c(99), c(50)], &[None, Some(1.0)], 0.0),
        vec![false, true]
    );
    assert_eq!(
        screen(&[c(99), c(50)], &[None, None], 0.0),
        vec![true, true]
    );
    // p = round(fraction * n), within 1..=n.
    assert_eq!(screen_parts(0.2, 10), 2);
    assert_eq!(screen_parts(0.01, 10), 1);
    assert_eq!(screen_parts(0.3, 7), 2);
    assert_eq!(screen_parts(1.0, 10), 10);
    assert_eq!(screen_parts(0.5, 1), 1);
}

#[test]
fn one_part_or_the_whole_fraction_is_plain_greedy() {
    // n_parts() == 1 (the default of an evaluator that cannot count a subset), or a fraction
    // that rounds to every part: screening is impossible, the run is greedy's, and `count` is
    // never called.
    let p = problem(5);
    let g = run(
        greedy(0.0),
        &p,
        &mut images(100, 1, breakage(RATES.to_vec())),
        &mut NoObserver,
    )
    .unwrap();
    for (n_parts, fraction) in [(1, 0.1), (1, 1.0), (10, 1.0), (10, 0.96)] {
        let mut e = images(100, n_parts, breakage(RATES.to_vec()));
        let r = run(screened(fraction, 0.0), &p, &mut e, &mut NoObserver).unwrap();
        assert_eq!(r.screen_parts, None);
        assert_eq!(e.count_calls(), 0);
        let (mut a, b) = (timeless(&r), timeless(&g));
        a.strategy = b.strategy;
        assert_eq!(a, b, "parts {n_parts} fraction {fraction}");
    }
}

#[test]
fn parts_without_counts_stop_the_run() {
    // An evaluator that says it has 4 parts but leaves `count` at its default.
    let mut e = images(100, 4, breakage(RATES.to_vec()));
    e.counting = false;
    let err = run(screened(0.25, 1.0), &problem(3), &mut e, &mut NoObserver).unwrap_err();
    assert!(matches!(err, SearchError::NoPartialCounts { n_parts: 4 }));
    assert_eq!(e.calls, vec![Call::Acc(vec![]), Call::Commit(vec![])]);
}

/// Two parts; `count` answers `bad` for layer 1's candidate on parts 0..1.
struct Liar {
    bad: Count,
}
impl Evaluator for Liar {
    type Error = std::convert::Infallible;
    fn accuracy(&mut self, _: &[bool]) -> Result<f64, Self::Error> {
        Ok(0.5)
    }
    fn n_parts(&self) -> usize {
        2
    }
    fn count(&mut self, low: &[bool], parts: Range<usize>) -> Result<Option<Count>, Self::Error> {
        Ok(Some(if low[1] && parts == (0..1) {
            self.bad
        } else {
            Count {
                correct: 5,
                total: 10,
            }
        }))
    }
}

#[test]
fn impossible_counts_stop_the_run() {
    let cases = [
        (11, 10, "more correct answers than images"),
        (0, 0, "no images"),
        (
            5,
            12,
            "other configurations counted a different number of images there",
        ),
    ];
    for (correct, total, why) in cases {
        let mut e = Liar {
            bad: Count { correct, total },
        };
        let err = run(screened(0.5, 1.0), &problem(3), &mut e, &mut NoObserver).unwrap_err();
        match err {
            SearchError::BadCount {
                step: 1,
                layer_index: 1,
                parts,
                why: w,
                ..
            } => {
                assert_eq!(parts, 0..1);
                assert_eq!(w, why);
            }
            other => panic!("{other}"),
        }
    }
}

#[test]
fn screened_settings_are_checked_before_any_evaluation() {
    for (fraction, z) in [
        (0.0, 1.0),
        (1.5, 1.0),
        (f64::NAN, 1.0),
        (0.5, -1.0),
        (0.5, f64::NAN),
    ] {
        let mut e = images(100, 10, breakage(RATES.to_vec()));
        let err = run(screened(fraction, z), &problem(3), &mut e, &mut NoObserver).unwrap_err();
        assert!(
            matches!(err, SearchError::BadFraction(_) | SearchError::BadZ(_)),
            "{err}"
        );
        assert!(e.calls.is_empty());
    }
}

#[test]
fn automatic_beta_takes_step_1_in_full() {
    // Beta comes from the full step-1 accuracies, as greedy's: step 1 is one `accuracies` call
    // per candidate, screening starts at step 2. With z = infinity the run is greedy's.
    let p = Problem::new(vec![10, 100, 1000, 50, 5000, 300]);
    let mut ge = images(200, 10, breakage(RATES.to_vec()));
    let g = run(AUTO, &p, &mut ge, &mut NoObserver).unwrap();
    let mut e = images(200, 10, breakage(RATES.to_vec()));
    let strategy = Strategy::ScreenedGreedy {
        beta: Beta::Auto,
        fraction: 0.2,
        z: f64::INFINITY,
    };
    let r = run(strategy, &p, &mut e, &mut NoObserver).unwrap();
    assert!(g.beta > 0.0);
    assert_eq!(r.beta, g.beta);
    assert_eq!(choices(&r), choices(&g));
    assert_eq!(rows(&r), rows(&g));
    assert_eq!(
        &e.calls[2..8],
        &ge.calls[2..8],
        "step 1: six full evaluations"
    );
    assert!(matches!(e.calls[9], Call::Counts(_, _)), "{:?}", e.calls[9]);
    assert_eq!(r.steps[1].evals, 6);
    assert_eq!(r.steps[1].work, 6.0);
}

#[test]
fn counts_go_in_chunks_of_batch_hint() {
    // Batch 4, M = 6: step 1 screens 6 candidates in chunks 4, 2 and finishes the kept ones
    // likewise; with z = infinity all 6 are kept: 4, 2 again.
    let mut e = images(200, 10, breakage(RATES.to_vec()));
    e.batch = 4;
    let mut rec = Record::default();
    run(screened(0.2, f64::INFINITY), &problem(6), &mut e, &mut rec).unwrap();
    let sizes: Vec<(usize, Range<usize>)> = e
        .calls
        .iter()
        .filter_map(|c| match c {
            Call::Counts(v, r) => Some((v.len(), r.clone())),
            _ => None,
        })
        .take(4)
        .collect();
    assert_eq!(sizes, vec![(4, 0..2), (2, 0..2), (4, 2..10), (2, 2..10)]);
    let step1: Vec<(usize, usize, f64)> = rec
        .evals
        .iter()
        .filter(|p| p.step == 1)
        .map(|p| (p.candidate, p.n_candidates, p.work_done))
        .collect();
    assert_eq!(
        step1,
        vec![(4, 6, 0.8), (6, 6, 1.2), (10, 6, 4.4), (12, 6, 6.0)]
    );
}
