//! The strategies against hand-written set functions, with expected orders, accuracies,
//! objectives and evaluation counts worked out by hand (in the comments).
use super::*;
use std::convert::Infallible;

// The newer strategies and the richer evaluator interface, one file each under `tests/`.
mod evaluator;
mod exhaustive;
mod ground;
mod lazy;
mod max_steps;
mod random;
mod screened;
mod support;
mod uniform;

/// A set function given as a closure; logs every set it is asked about (as sorted indices).
struct Fun<F: FnMut(&[bool]) -> f64> {
    f: F,
    log: Vec<Vec<usize>>,
}

impl<F: FnMut(&[bool]) -> f64> Fun<F> {
    fn calls(&self) -> usize {
        self.log.len()
    }
}

impl<F: FnMut(&[bool]) -> f64> Evaluator for Fun<F> {
    type Error = Infallible;
    fn accuracy(&mut self, low: &[bool]) -> Result<f64, Infallible> {
        self.log.push(set(low));
        Ok((self.f)(low))
    }
}

fn set(low: &[bool]) -> Vec<usize> {
    (0..low.len()).filter(|&i| low[i]).collect()
}

fn fun<F: FnMut(&[bool]) -> f64>(f: F) -> Fun<F> {
    Fun { f, log: vec![] }
}

/// `acc(S) = 1 - sum of costs over S`.
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

fn greedy(beta: f64) -> Strategy {
    Strategy::Greedy {
        beta: Beta::Fixed(beta),
    }
}

const AUTO: Strategy = Strategy::Greedy { beta: Beta::Auto };

fn problem(n: usize) -> Problem {
    Problem::new(vec![100; n])
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn tops(r: &SearchResult) -> Vec<f64> {
    r.steps.iter().map(|s| s.top1).collect()
}

fn all_close(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| close(*x, *y))
}

/// The structural invariants every result must satisfy, whatever the function.
fn check_invariants(r: &SearchResult, p: &Problem) {
    let n = p.n_layers();
    assert_eq!(r.steps.len(), n + 1);
    assert_eq!(r.candidates.len(), evals_total(r.strategy, n).unwrap());
    let mut order = r.order();
    assert_eq!(order.len(), n);
    order.sort();
    assert_eq!(order, (0..n).collect::<Vec<_>>(), "each layer chosen once");
    assert_eq!(r.steps[0].layer_index, None);
    assert_eq!(r.steps[0].evals, 0);
    assert_eq!(r.steps[0].params_low, 0);
    let mut params = 0;
    for (k, st) in r.steps.iter().enumerate() {
        assert_eq!(st.step, k);
        if k > 0 {
            params += p.layer_params[st.layer_index.unwrap()];
            assert!(st.elapsed_s >= r.steps[k - 1].elapsed_s);
            // Step k's row is its chosen candidate's row.
            let c: Vec<&Candidate> = r
                .candidates
                .iter()
                .filter(|c| c.step == k && Some(c.layer_index) == st.layer_index)
                .collect();
            assert_eq!(c.len(), 1);
            assert_eq!(c[0].top1, st.top1);
            assert_eq!(c[0].objective, st.objective);
            // Evaluations are cumulative: all candidates up to this step.
            let upto = r.candidates.iter().filter(|c| c.step <= k).count();
            assert_eq!(st.evals, upto);
        }
        assert_eq!(st.params_low, params);
    }
    assert_eq!(r.steps[n].evals, evals_total(r.strategy, n).unwrap());
}

#[test]
fn modular_function_gives_ascending_cost_order() {
    let p = Problem::new(vec![10, 20, 30, 40, 50]);
    let costs = vec![0.05, 0.01, 0.2, 0.03, 0.1];
    for strategy in [greedy(0.0), Strategy::OneShot] {
        let r = run(
            strategy,
            &p,
            &mut fun(modular(costs.clone())),
            &mut NoObserver,
        )
        .unwrap();
        check_invariants(&r, &p);
        assert_eq!(r.order(), vec![1, 3, 0, 4, 2], "{}", strategy.name());
        assert!(all_close(&tops(&r), &[1.0, 0.99, 0.96, 0.91, 0.81, 0.61]));
        let params: Vec<u64> = r.steps.iter().map(|s| s.params_low).collect();
        assert_eq!(params, vec![0, 20, 60, 70, 120, 150]);
        // Beta 0: the objective is the accuracy, step 0 included.
        for st in &r.steps {
            assert_eq!(st.objective, Some(st.top1));
        }
        assert_eq!(r.beta, 0.0);
    }
    // Greedy's evaluations: 5, 5+4, 5+4+3, ...; one-shot's: 5, then one per step.
    let r = run(
        greedy(0.0),
        &p,
        &mut fun(modular(costs.clone())),
        &mut NoObserver,
    )
    .unwrap();
    let evals: Vec<usize> = r.steps.iter().map(|s| s.evals).collect();
    assert_eq!(evals, vec![0, 5, 9, 12, 14, 15]);
    let r = run(
        Strategy::OneShot,
        &p,
        &mut fun(modular(costs)),
        &mut NoObserver,
    )
    .unwrap();
    let evals: Vec<usize> = r.steps.iter().map(|s| s.evals).collect();
    assert_eq!(evals, vec![0, 5, 6, 7, 8, 9]);
}

#[test]
fn random_modular_functions_sort_by_cost() {
    // A small LCG; distinct costs, so the order is the ascending cost order, for both.
    let mut x: u64 = 12345;
    for n in 1..=9usize {
        for _ in 0..5 {
            let mut costs: Vec<f64> = (0..n)
                .map(|i| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((x >> 33) % 1000) as f64 * 1e-5 + i as f64 * 1e-9
                })
                .collect();
            costs.reverse();
            let mut want: Vec<usize> = (0..n).collect();
            want.sort_by(|&a, &b| costs[a].total_cmp(&costs[b]));
            for strategy in [greedy(0.0), Strategy::OneShot] {
                let p = problem(n);
                let r = run(
                    strategy,
                    &p,
                    &mut fun(modular(costs.clone())),
                    &mut NoObserver,
                )
                .unwrap();
                check_invariants(&r, &p);
                assert_eq!(r.order(), want);
            }
        }
    }
}

#[test]
fn greedy_tries_every_remaining_layer_in_ascending_order() {
    // Costs 0.3, 0.1, 0.2: step 1 tries {0},{1},{2} and takes 1; step 2 tries {0,1},{1,2} and
    // takes 2; step 3 tries {0,1,2}. Step 0 (the empty set) comes first.
    let mut e = fun(modular(vec![0.3, 0.1, 0.2]));
    let r = run(greedy(0.0), &problem(3), &mut e, &mut NoObserver).unwrap();
    let want: Vec<Vec<usize>> = vec![
        vec![],
        vec![0],
        vec![1],
        vec![2],
        vec![0, 1],
        vec![1, 2],
        vec![0, 1, 2],
    ];
    assert_eq!(e.log, want);
    assert_eq!(r.order(), vec![1, 2, 0]);
    let cands: Vec<(usize, usize)> = r
        .candidates
        .iter()
        .map(|c| (c.step, c.layer_index))
        .collect();
    assert_eq!(cands, vec![(1, 0), (1, 1), (1, 2), (2, 0), (2, 2), (3, 0)]);
    assert!(close(r.candidates[3].top1, 0.6) && close(r.candidates[4].top1, 0.7));
}

#[test]
fn greedy_costs_exactly_n_n_plus_1_over_2_evaluations() {
    for n in [1usize, 2, 3, 7, 16, 21] {
        // Distinct costs (5 is coprime with every n here), summing to well under 1.
        let costs: Vec<f64> = (0..n).map(|i| ((i * 5) % n + 1) as f64 * 1e-3).collect();
        let p = Problem::new((0..n as u64).map(|i| 50 + 7 * i).collect());
        let mut e = fun(modular(costs.clone()));
        let r = run(greedy(0.0), &p, &mut e, &mut NoObserver).unwrap();
        assert_eq!(e.calls(), n * (n + 1) / 2 + 1, "N(N+1)/2 plus step 0");
        assert_eq!(evals_total(greedy(0.0), n), Some(n * (n + 1) / 2));
        check_invariants(&r, &p);
        for (k, st) in r.steps.iter().enumerate() {
            // sum_{i=1..k} (N - i + 1)
            assert_eq!(st.evals, (1..=k).map(|i| n - i + 1).sum::<usize>());
        }
        let mut want: Vec<usize> = (0..n).collect();
        want.sort_by(|&a, &b| costs[a].total_cmp(&costs[b]));
        assert_eq!(r.order(), want);
    }
}

#[test]
fn ties_go_to_the_smallest_index() {
    let costs = vec![0.1, 0.0, 0.0, 0.1, 0.0];
    for strategy in [greedy(0.0), Strategy::OneShot] {
        let r = run(
            strategy,
            &problem(5),
            &mut fun(modular(costs.clone())),
            &mut NoObserver,
        )
        .unwrap();
        assert_eq!(r.order(), vec![1, 2, 4, 0, 3], "{}", strategy.name());
        // A constant function: everything ties at every step.
        let r = run(
            strategy,
            &problem(6),
            &mut fun(|_: &[bool]| 0.5),
            &mut NoObserver,
        )
        .unwrap();
        assert_eq!(r.order(), vec![0, 1, 2, 3, 4, 5], "{}", strategy.name());
    }
    // With beta > 0 and equal sizes, equal accuracies still tie: smallest index.
    let r = run(
        greedy(0.7),
        &problem(4),
        &mut fun(modular(vec![0.2, 0.1, 0.3, 0.1])),
        &mut NoObserver,
    )
    .unwrap();
    assert_eq!(r.order(), vec![1, 3, 0, 2]);
    // A tie that appears only at step 2: after layer 2, layers 0 and 1 cost the same.
    let f = |low: &[bool]| {
        let base = 1.0 - 0.01 * low[2] as u8 as f64;
        match (low[2], low[0], low[1]) {
            (true, true, true) => base - 0.4,
            (true, a, b) => base - 0.1 * (a as u8 + b as u8) as f64,
            (false, a, b) => base - 0.05 * a as u8 as f64 - 0.02 * b as u8 as f64,
        }
    };
    let r = run(greedy(0.0), &problem(3), &mut fun(f), &mut NoObserver).unwrap();
    assert_eq!(r.order(), vec![2, 0, 1]);
}

#[test]
fn one_shot_orders_by_step_1_and_costs_2n_minus_1() {
    // Step-1 values 0.7, 0.9, 0.8, 0.9 -> order 1, 3 (tie with 1, larger index), 2, 0.
    // Later sets carry an interaction, which one-shot does not look at.
    let f = |low: &[bool]| {
        let mut a = modular(vec![0.3, 0.1, 0.2, 0.1])(low);
        if low[1] && low[3] {
            a -= 0.25;
        }
        a
    };
    let p = Problem::new(vec![1, 2, 3, 4]);
    let mut e = fun(f);
    let r = run(Strategy::OneShot, &p, &mut e, &mut NoObserver).unwrap();
    check_invariants(&r, &p);
    assert_eq!(r.order(), vec![1, 3, 2, 0]);
    let want: Vec<Vec<usize>> = vec![
        vec![],
        vec![0],
        vec![1],
        vec![2],
        vec![3],
        // S_1 = {1} reuses its step-1 accuracy: no evaluation.
        vec![1, 3],
        vec![1, 2, 3],
        vec![0, 1, 2, 3],
    ];
    assert_eq!(e.log, want);
    assert_eq!(e.calls(), 2 * 4 - 1 + 1);
    // 1.0; {1}: 0.9; {1,3}: 0.8 - 0.25; {1,2,3}: 0.6 - 0.25; all: 0.3 - 0.25.
    assert!(all_close(&tops(&r), &[1.0, 0.9, 0.55, 0.35, 0.05]));
    let cands: Vec<(usize, usize)> = r
        .candidates
        .iter()
        .map(|c| (c.step, c.layer_index))
        .collect();
    assert_eq!(
        cands,
        vec![(1, 0), (1, 1), (1, 2), (1, 3), (2, 3), (3, 2), (4, 0)]
    );
    for c in &r.candidates {
        assert_eq!(c.objective, Some(c.top1));
    }
    let evals: Vec<usize> = r.steps.iter().map(|s| s.evals).collect();
    assert_eq!(evals, vec![0, 4, 5, 6, 7]);
    assert_eq!(r.beta, 0.0);
    assert_eq!(r.strategy.name().as_str(), "one-shot");

    for n in 1..=8 {
        let mut e = fun(|_: &[bool]| 0.5);
        let r = run(Strategy::OneShot, &problem(n), &mut e, &mut NoObserver).unwrap();
        assert_eq!(e.calls(), 2 * n - 1 + 1);
        assert_eq!(evals_total(Strategy::OneShot, n), Some(2 * n - 1));
        check_invariants(&r, &problem(n));
    }
}

#[test]
fn greedy_and_one_shot_disagree_under_interaction() {
    // Layers 0 and 1 are harmless alone but ruinous together; 2 and 3 cost 0.01 and 0.02.
    // Step 1: {0}=0.9, {1}=0.9, {2}=0.89, {3}=0.88.
    // One-shot: order 0, 1, 2, 3: {0,1}=0.4, {0,1,2}=0.39, all=0.37.
    // Greedy: step 1 takes 0 (tie with 1); step 2: {0,1}=0.4, {0,2}=0.89, {0,3}=0.88 -> 2;
    // step 3: {0,1,2}=0.39, {0,2,3}=0.87 -> 3; step 4: 1, 0.37.
    let f = |low: &[bool]| {
        let mut a = 0.9 - 0.01 * low[2] as u8 as f64 - 0.02 * low[3] as u8 as f64;
        if low[0] && low[1] {
            a -= 0.5;
        }
        a
    };
    let o = run(Strategy::OneShot, &problem(4), &mut fun(f), &mut NoObserver).unwrap();
    assert_eq!(o.order(), vec![0, 1, 2, 3]);
    assert!(all_close(&tops(&o), &[0.9, 0.9, 0.4, 0.39, 0.37]));
    let g = run(greedy(0.0), &problem(4), &mut fun(f), &mut NoObserver).unwrap();
    assert_eq!(g.order(), vec![0, 2, 3, 1]);
    assert!(all_close(&tops(&g), &[0.9, 0.9, 0.89, 0.87, 0.37]));
    check_invariants(&o, &problem(4));
    check_invariants(&g, &problem(4));
}

#[test]
fn objective_is_eq_2() {
    assert_eq!(objective(0.5, 0, 0.0), Some(0.5));
    assert_eq!(objective(0.5, 1234, 0.0), Some(0.5));
    assert_eq!(objective(0.5, 0, 0.1), None, "ln 0");
    assert_eq!(objective(0.5, 1, 1.0), Some(0.0), "ln 1 = 0");
    // 0.5 * (ln 10000)^2 = 0.5 * 9.21034^2 = 42.41518...
    assert!((objective(0.5, 10_000, 2.0).unwrap() - 42.415_184_883_8).abs() < 1e-9);
}

#[test]
fn beta_makes_a_bigger_layer_win() {
    // Layer 1 costs 0.02 against layer 0's 0.01 but has 10000 weights against 10. Layer 1
    // wins step 1 when (ln 10000 / ln 10)^beta = 4^beta > 0.99 / 0.98, i.e. beta >
    // ln(0.99/0.98) / ln 4 = 0.00732.
    let p = Problem::new(vec![10, 10_000]);
    let cases = [
        (0.0, vec![0, 1]),
        (0.005, vec![0, 1]),
        (0.01, vec![1, 0]),
        (0.5, vec![1, 0]),
    ];
    for (beta, want) in cases {
        let r = run(
            greedy(beta),
            &p,
            &mut fun(modular(vec![0.01, 0.02])),
            &mut NoObserver,
        )
        .unwrap();
        assert_eq!(r.order(), want, "beta {beta}");
        assert_eq!(r.beta, beta);
        check_invariants(&r, &p);
    }
    let r = run(
        greedy(0.5),
        &p,
        &mut fun(modular(vec![0.01, 0.02])),
        &mut NoObserver,
    )
    .unwrap();
    assert_eq!(r.steps[0].objective, None, "ln 0 at step 0");
    // Step 1: 0.99 * sqrt(ln 10) = 1.50225 against 0.98 * sqrt(ln 10000) = 2.97416.
    let c1: Vec<f64> = r.candidates[..2]
        .iter()
        .map(|c| c.objective.unwrap())
        .collect();
    assert!((c1[0] - 1.502_253).abs() < 1e-6 && (c1[1] - 2.974_157).abs() < 1e-6);
    assert!(close(
        r.steps[1].objective.unwrap(),
        0.98 * 10_000f64.ln().sqrt()
    ));
    // Step 2's objective uses params({0, 1}) = 10010.
    assert!(close(
        r.steps[2].objective.unwrap(),
        0.97 * 10_010f64.ln().sqrt()
    ));
}

#[test]
fn a_layer_without_weights_ranks_last_when_beta_is_positive() {
    // params({0}) = 0, so f({0}) is undefined with beta > 0 and layer 1 is taken first, though
    // layer 0 costs nothing. With beta = 0 layer 0 comes first.
    let p = Problem::new(vec![0, 100]);
    let r = run(
        greedy(1.0),
        &p,
        &mut fun(modular(vec![0.0, 0.1])),
        &mut NoObserver,
    )
    .unwrap();
    assert_eq!(r.order(), vec![1, 0]);
    assert_eq!(r.candidates[0].objective, None);
    assert!(close(r.steps[2].objective.unwrap(), 0.9 * 100f64.ln()));
    let r = run(
        greedy(0.0),
        &p,
        &mut fun(modular(vec![0.0, 0.1])),
        &mut NoObserver,
    )
    .unwrap();
    assert_eq!(r.order(), vec![0, 1]);
}

#[test]
fn auto_beta_by_hand() {
    // a = 0.8, 0.4; p = ln 100, ln 10000 = 2 ln 10, 4 ln 10: ln(1/2) / ln(1/2) = 1.
    assert!(close(auto_beta(&[0.8, 0.4], &[100, 10_000]).unwrap(), 1.0));
    // a = 0.9, 0.6, 0.88 (min/max 2/3); p = ln 10, ln 100, ln 1000 (min/max 1/3):
    // ln(2/3) / ln(1/3) = -0.405465 / -1.098612 = 0.369070.
    let b = auto_beta(&[0.9, 0.6, 0.88], &[10, 100, 1000]).unwrap();
    assert!((b - 0.369_070_246_4).abs() < 1e-9, "{b}");
    // The order of the layers does not matter, only the extremes.
    assert_eq!(b, auto_beta(&[0.88, 0.9, 0.6], &[1000, 100, 10]).unwrap());
    // Either ratio 1 -> 0; a single layer -> 0.
    assert_eq!(auto_beta(&[0.5, 0.5], &[100, 10_000]), Ok(0.0));
    assert_eq!(auto_beta(&[0.4, 0.5], &[100, 100]), Ok(0.0));
    assert_eq!(auto_beta(&[0.4], &[100]), Ok(0.0));
    // Undefined cases.
    assert_eq!(
        auto_beta(&[0.5, 0.0], &[100, 10]),
        Err(AutoBetaError::ZeroAccuracy { layer_index: 1 })
    );
    assert!(matches!(
        auto_beta(&[0.5, f64::NAN], &[100, 10]),
        Err(AutoBetaError::InvalidAccuracy { layer_index: 1, .. })
    ));
    assert_eq!(
        auto_beta(&[0.5, 0.6], &[100, 1]),
        Err(AutoBetaError::TooFewWeights {
            layer_index: 1,
            n: 1
        })
    );
    assert_eq!(
        auto_beta(&[0.5], &[100, 10]),
        Err(AutoBetaError::LengthMismatch {
            n_acc: 1,
            n_layers: 2
        })
    );
    assert_eq!(auto_beta(&[], &[]), Err(AutoBetaError::Empty));
}

#[test]
fn auto_beta_applies_to_step_1() {
    // acc({j}) = 0.9, 0.6, 0.88 with 10, 100, 1000 weights: beta = 0.369070 (above).
    // Step 1: f = 0.9 * (ln 10)^b = 1.22441, 0.6 * (ln 100)^b = 1.05423,
    // 0.88 * (ln 1000)^b = 1.79580 -> layer 2 (beta 0 would take layer 0).
    // Step 2: {2,0} = 0.78 beats {2,1} = 0.48 whatever the factor (ln 1010 vs ln 1100).
    let p = Problem::new(vec![10, 100, 1000]);
    let costs = vec![0.1, 0.4, 0.12];
    let mut e = fun(modular(costs.clone()));
    let r = run(AUTO, &p, &mut e, &mut NoObserver).unwrap();
    assert!((r.beta - 0.369_070_246_4).abs() < 1e-9);
    assert_eq!(r.order(), vec![2, 0, 1]);
    assert_eq!(e.calls(), 7);
    check_invariants(&r, &p);
    let f1: Vec<f64> = r.candidates[..3]
        .iter()
        .map(|c| c.objective.unwrap())
        .collect();
    for (got, want) in f1.iter().zip([1.224_406, 1.054_230, 1.795_796]) {
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }
    assert_eq!(r.steps[0].objective, None, "beta > 0: ln 0 at step 0");
    assert!(close(
        r.steps[2].objective.unwrap(),
        0.78 * 1010f64.ln().powf(r.beta)
    ));
    let g = run(greedy(0.0), &p, &mut fun(modular(costs)), &mut NoObserver).unwrap();
    assert_eq!(g.order(), vec![0, 2, 1]);

    // Equal sizes: beta resolves to 0, so step 0's objective is its accuracy.
    let r = run(
        AUTO,
        &problem(3),
        &mut fun(modular(vec![0.1, 0.2, 0.3])),
        &mut NoObserver,
    )
    .unwrap();
    assert_eq!(r.beta, 0.0);
    assert_eq!(r.steps[0].objective, Some(1.0));
    assert_eq!(r.order(), vec![0, 1, 2]);
}

#[test]
fn auto_beta_errors_stop_the_run() {
    // A step-1 accuracy of 0: stops right after step 1's evaluations.
    let mut e = fun(|low: &[bool]| if low[1] { 0.0 } else { 0.5 });
    let err = run(AUTO, &problem(3), &mut e, &mut NoObserver).unwrap_err();
    assert!(matches!(
        err,
        SearchError::AutoBetaUndefined {
            source: AutoBetaError::ZeroAccuracy { layer_index: 1 }
        }
    ));
    assert_eq!(e.calls(), 1 + 3);
    assert!(
        err.to_string().contains("automatic beta is undefined"),
        "{err}"
    );
    // A layer with one weight: known before any evaluation.
    let p = Problem::new(vec![100, 1]);
    let mut e = fun(|_: &[bool]| 0.5);
    let err = run(AUTO, &p, &mut e, &mut NoObserver).unwrap_err();
    assert!(matches!(
        err,
        SearchError::AutoBetaUndefined {
            source: AutoBetaError::TooFewWeights {
                layer_index: 1,
                n: 1
            }
        }
    ));
    assert_eq!(e.calls(), 0);
}

#[test]
fn bad_beta_is_rejected_before_any_evaluation() {
    for b in [-0.1, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let mut e = fun(|_: &[bool]| 0.5);
        let err = run(greedy(b), &problem(2), &mut e, &mut NoObserver).unwrap_err();
        assert!(matches!(err, SearchError::BadBeta(_)), "{b}");
        assert_eq!(e.calls(), 0);
    }
    let r = run(
        greedy(-0.0),
        &problem(2),
        &mut fun(|_: &[bool]| 0.5),
        &mut NoObserver,
    )
    .unwrap();
    assert!(r.beta == 0.0 && r.beta.is_sign_positive());
    let mut e = fun(|_: &[bool]| 0.5);
    let err = run(greedy(0.0), &problem(0), &mut e, &mut NoObserver).unwrap_err();
    assert!(matches!(err, SearchError::Empty));
    assert_eq!(e.calls(), 0);
}

#[derive(Debug, thiserror::Error)]
#[error("boom")]
struct Boom;

/// Succeeds `ok` times, then fails; counts every call.
struct Failing {
    ok: usize,
    calls: usize,
}

impl Evaluator for Failing {
    type Error = Boom;
    fn accuracy(&mut self, _: &[bool]) -> Result<f64, Boom> {
        self.calls += 1;
        if self.calls > self.ok {
            Err(Boom)
        } else {
            Ok(0.5)
        }
    }
}

#[test]
fn evaluator_errors_propagate_at_once() {
    let n = 4;
    for strategy in [greedy(0.0), AUTO, Strategy::OneShot] {
        // Fail at step 0, at every counted evaluation, and never.
        for ok in 0..=evals_total(strategy, n).unwrap() {
            let mut e = Failing { ok, calls: 0 };
            let err = run(strategy, &problem(n), &mut e, &mut NoObserver).unwrap_err();
            assert!(matches!(err, SearchError::Eval(Boom)));
            assert_eq!(err.to_string(), "boom");
            assert_eq!(e.calls, ok + 1, "no evaluation after the failure");
        }
        let mut e = Failing {
            ok: evals_total(strategy, n).unwrap() + 1,
            calls: 0,
        };
        assert!(run(strategy, &problem(n), &mut e, &mut NoObserver).is_ok());
    }
}

#[test]
fn accuracies_outside_0_1_stop_the_run() {
    let mut e = fun(|_: &[bool]| f64::NAN);
    let err = run(greedy(0.0), &problem(2), &mut e, &mut NoObserver).unwrap_err();
    assert!(matches!(
        err,
        SearchError::InvalidAccuracy {
            step: 0,
            layer_index: None,
            ..
        }
    ));
    // A percentage instead of a fraction, at layer 1 of step 1.
    let mut e = fun(|low: &[bool]| if low[1] { 85.0 } else { 0.9 });
    let err = run(Strategy::OneShot, &problem(3), &mut e, &mut NoObserver).unwrap_err();
    assert!(matches!(
        err,
        SearchError::InvalidAccuracy {
            step: 1,
            layer_index: Some(1),
            value: 85.0
        }
    ));
    assert_eq!(e.calls(), 3);
    // The boundaries are fine.
    let r = run(
        greedy(0.0),
        &problem(2),
        &mut fun(|low: &[bool]| if low[0] { 0.0 } else { 1.0 }),
        &mut NoObserver,
    )
    .unwrap();
    assert_eq!(r.order(), vec![1, 0]);
}

#[derive(Default)]
struct Record {
    evals: Vec<Progress>,
    steps: Vec<Step>,
    /// Number of evaluations seen when each step was reported.
    evals_at_step: Vec<usize>,
}

impl Observer for Record {
    fn on_eval(&mut self, p: &Progress) {
        self.evals.push(p.clone());
    }
    fn on_step(&mut self, s: &Step) {
        self.steps.push(s.clone());
        self.evals_at_step.push(self.evals.len());
    }
}

#[test]
fn observer_sees_every_evaluation_and_step() {
    let p = problem(4);
    let costs = vec![0.1, 0.2, 0.3, 0.4];
    let mut rec = Record::default();
    let r = run(greedy(0.0), &p, &mut fun(modular(costs.clone())), &mut rec).unwrap();
    assert_eq!(rec.steps, r.steps);
    assert_eq!(rec.evals_at_step, vec![0, 4, 7, 9, 10]);
    let seen: Vec<(usize, usize, usize, usize)> = rec
        .evals
        .iter()
        .map(|e| (e.step, e.candidate, e.n_candidates, e.evals_done))
        .collect();
    #[rustfmt::skip]
    let want = vec![
        (1, 1, 4, 1), (1, 2, 4, 2), (1, 3, 4, 3), (1, 4, 4, 4),
        (2, 1, 3, 5), (2, 2, 3, 6), (2, 3, 3, 7),
        (3, 1, 2, 8), (3, 2, 2, 9),
        (4, 1, 1, 10),
    ];
    assert_eq!(seen, want);
    assert!(rec
        .evals
        .iter()
        .all(|e| e.evals_total == Some(10) && e.n_steps == 4));

    let mut rec = Record::default();
    let r = run(
        Strategy::OneShot,
        &p,
        &mut fun(modular(costs.clone())),
        &mut rec,
    )
    .unwrap();
    assert_eq!(rec.steps, r.steps);
    assert_eq!(rec.evals_at_step, vec![0, 4, 5, 6, 7]);
    let seen: Vec<(usize, usize, usize)> = rec
        .evals
        .iter()
        .map(|e| (e.step, e.candidate, e.n_candidates))
        .collect();
    assert_eq!(
        seen,
        vec![
            (1, 1, 4),
            (1, 2, 4),
            (1, 3, 4),
            (1, 4, 4),
            (2, 1, 1),
            (3, 1, 1),
            (4, 1, 1)
        ]
    );
    assert!(rec.evals.iter().all(|e| e.evals_total == Some(7)));

    // Automatic beta: step 0 is reported once beta is known, with its final objective.
    let mut rec = Record::default();
    let r = run(
        AUTO,
        &problem(3),
        &mut fun(modular(vec![0.1, 0.2, 0.3])),
        &mut rec,
    )
    .unwrap();
    assert_eq!(rec.steps, r.steps);
    assert_eq!(rec.steps[0].objective, Some(1.0));
    assert_eq!(rec.evals_at_step, vec![3, 3, 5, 6]);
}

#[test]
fn names_and_totals() {
    assert_eq!(greedy(0.0).name().as_str(), "greedy");
    assert_eq!(AUTO.name().as_str(), "greedy");
    assert_eq!(Strategy::OneShot.name().as_str(), "one-shot");
    // ResNet18: N = 21.
    assert_eq!(evals_total(AUTO, 21), Some(231));
    assert_eq!(evals_total(Strategy::OneShot, 21), Some(41));
    assert_eq!(evals_total(Strategy::OneShot, 0), Some(0));
    assert_eq!(evals_total(greedy(0.0), 0), Some(0));
}
