//! Exhaustive search: the best set of every size, against a brute force written differently
//! (sorted index lists, compared lexicographically); its limit; its enumeration and commits.
use super::support::*;
use super::*;

fn exhaustive(beta: f64) -> Strategy {
    Strategy::exhaustive(Beta::Fixed(beta))
}

/// A set function given by a table over all subsets of n layers, with values on a coarse grid
/// (multiples of 1/8) so that ties are common.
fn table(n: usize, seed: u64) -> Vec<f64> {
    let mut x = seed;
    (0..1usize << n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 33) % 8) as f64 / 8.0 + 0.125
        })
        .collect()
}

/// The table's value of a configuration (layer i is bit i of the table index).
fn lookup(t: &[f64]) -> impl Fn(&[bool]) -> f64 + '_ {
    move |low: &[bool]| {
        let i: usize = (0..low.len()).filter(|&j| low[j]).map(|j| 1 << j).sum();
        t[i]
    }
}

/// Brute force: every subset as a sorted index list; for each size the largest objective, ties
/// to the lexicographically smallest list.
fn brute(t: &[f64], params: &[u64], beta: f64) -> Vec<(Vec<usize>, f64)> {
    let n = params.len();
    type Best = Option<(Vec<usize>, f64, Option<f64>)>;
    let mut best: Vec<Best> = vec![None; n + 1];
    for (i, &a) in t.iter().enumerate().skip(1) {
        let set: Vec<usize> = (0..n).filter(|&j| i >> j & 1 == 1).collect();
        let f = objective(a, set.iter().map(|&j| params[j]).sum(), beta);
        let k = set.len();
        let better = match &best[k] {
            None => true,
            Some((bs, _, bf)) => {
                let rank = |f: Option<f64>| f.unwrap_or(f64::NEG_INFINITY);
                rank(f) > rank(*bf) || (rank(f) == rank(*bf) && set < *bs)
            }
        };
        if better {
            best[k] = Some((set, a, f));
        }
    }
    best.into_iter()
        .skip(1)
        .map(|b| {
            let (s, a, _) = b.unwrap();
            (s, a)
        })
        .collect()
}

#[test]
fn exhaustive_matches_brute_force_with_ties() {
    for n in 1..=6usize {
        for seed in 0..8u64 {
            let t = table(n, seed * 31 + n as u64);
            let params: Vec<u64> = (0..n as u64).map(|i| 10 + 90 * ((i * 7) % 5)).collect();
            let p = Problem::new(params.clone());
            for beta in [0.0, 0.3] {
                let mut e = fun(lookup(&t));
                let r = run(exhaustive(beta), &p, &mut e, &mut NoObserver).unwrap();
                let want = brute(&t, &params, beta);
                let got: Vec<(Vec<usize>, f64)> = r.steps[1..]
                    .iter()
                    .map(|s| (s.low.clone(), s.top1))
                    .collect();
                assert_eq!(got, want, "n {n} seed {seed} beta {beta}");
                assert_eq!(e.calls(), (1 << n) - 1 + 1);
                assert_eq!(r.steps.len(), n + 1);
                for (k, s) in r.steps.iter().enumerate() {
                    assert_eq!(s.step, k);
                    assert_eq!(s.low.len(), k);
                    assert_eq!(s.layer_index, None);
                    assert_eq!(s.params_low, s.low.iter().map(|&j| params[j]).sum::<u64>());
                    assert_eq!(s.objective, objective(s.top1, s.params_low, beta));
                    let evals = if k == 0 { 0 } else { (1 << n) - 1 };
                    assert_eq!((s.evals, s.work), (evals, evals as f64));
                }
                assert_eq!(r.candidates.len(), (1 << n) - 1);
                assert!(r.order().is_empty());
            }
        }
    }
}

#[test]
fn exhaustive_ties_go_to_the_lexicographically_smallest_set() {
    // A constant function: every set of size k ties; the smallest list is {0, .., k-1}.
    let r = run(
        exhaustive(0.0),
        &problem(4),
        &mut fun(|_: &[bool]| 0.5),
        &mut NoObserver,
    )
    .unwrap();
    let sets: Vec<Vec<usize>> = r.steps.iter().map(|s| s.low.clone()).collect();
    assert_eq!(
        sets,
        vec![vec![], vec![0], vec![0, 1], vec![0, 1, 2], vec![0, 1, 2, 3]]
    );
    // {0, 3} and {1, 2} tie for size 2 (both 0.9), {0, 3} < {1, 2}; {0, 2} is worse (0.8).
    // Lexicographic, not by index sum or by the last index.
    let f = |low: &[bool]| match (0..4).filter(|&j| low[j]).collect::<Vec<_>>()[..] {
        [0, 3] | [1, 2] => 0.9,
        _ => 0.5,
    };
    let r = run(exhaustive(0.0), &problem(4), &mut fun(f), &mut NoObserver).unwrap();
    assert_eq!(r.steps[2].low, vec![0, 3]);
}

#[test]
fn exhaustive_finds_what_greedy_misses() {
    // Layers 0 and 1 are harmless alone but ruinous together (the example of
    // `greedy_and_one_shot_disagree_under_interaction`), here with layer 2 slightly worse
    // alone but fine with 3: {0} 0.9, {1} 0.9, {2} 0.89, {3} 0.88; best pairs: greedy takes 0
    // first and reaches {0, 2} = 0.89, but {2, 3} = 0.895 is better.
    let f = |low: &[bool]| {
        let mut a = 0.9 - 0.01 * low[2] as u8 as f64 - 0.02 * low[3] as u8 as f64;
        if low[0] && low[1] {
            a -= 0.5;
        }
        if low[2] && low[3] {
            a += 0.025;
        }
        a
    };
    let g = run(greedy(0.0), &problem(4), &mut fun(f), &mut NoObserver).unwrap();
    let x = run(exhaustive(0.0), &problem(4), &mut fun(f), &mut NoObserver).unwrap();
    assert_eq!(g.steps[2].low, vec![0, 2]);
    assert_eq!(x.steps[2].low, vec![2, 3]);
    assert!(close(x.steps[2].top1, 0.895));
    // The optimum is never below greedy at any size.
    for k in 0..=4 {
        assert!(x.steps[k].top1 >= g.steps[k].top1, "k {k}");
    }
}

#[test]
fn exhaustive_refuses_too_many_layers_before_any_evaluation() {
    let mut e = fun(|_: &[bool]| 0.5);
    let err = run(exhaustive(0.0), &problem(21), &mut e, &mut NoObserver).unwrap_err();
    assert!(matches!(err, SearchError::TooManyLayers { n: 21, max: 20 }));
    assert!(err.to_string().contains("21 layers"), "{err}");
    assert!(err.to_string().contains("limit is 20"), "{err}");
    assert_eq!(e.calls(), 0);
    let s = Strategy::Exhaustive {
        beta: Beta::Fixed(0.0),
        max_layers: 3,
    };
    let mut e = fun(|_: &[bool]| 0.5);
    let err = run(s, &problem(4), &mut e, &mut NoObserver).unwrap_err();
    assert!(matches!(err, SearchError::TooManyLayers { n: 4, max: 3 }));
    assert_eq!(e.calls(), 0);
    // A limit above 63 is capped (2^64 sets do not fit).
    let s = Strategy::Exhaustive {
        beta: Beta::Fixed(0.0),
        max_layers: 1000,
    };
    let err = run(s, &problem(64), &mut fun(|_: &[bool]| 0.5), &mut NoObserver).unwrap_err();
    assert!(matches!(err, SearchError::TooManyLayers { n: 64, max: 63 }));
    // A bad beta is refused first, too.
    let err = run(exhaustive(f64::NAN), &problem(2), &mut e, &mut NoObserver).unwrap_err();
    assert!(matches!(err, SearchError::BadBeta(_)));
    assert_eq!(e.calls(), 0);
}

#[test]
fn exhaustive_enumerates_in_counting_order_and_commits_the_outer_layers() {
    // M = 3, layer 0 the most significant bit. Batch 1 -> d = 1 inner layer (layer 2): for each
    // outer configuration of layers 0, 1 (counting order: {}, {1}, {0}, {0,1}) one commit, then
    // its inner configurations (without the empty set).
    let mut e = logged(1, modular(vec![0.1, 0.2, 0.3]));
    let r = run(exhaustive(0.0), &problem(3), &mut e, &mut NoObserver).unwrap();
    let want = vec![
        Call::Acc(vec![]),
        Call::Commit(vec![]),
        Call::Accs(vec![vec![2]]),
        Call::Commit(vec![1]),
        Call::Accs(vec![vec![1]]),
        Call::Accs(vec![vec![1, 2]]),
        Call::Commit(vec![0]),
        Call::Accs(vec![vec![0]]),
        Call::Accs(vec![vec![0, 2]]),
        Call::Commit(vec![0, 1]),
        Call::Accs(vec![vec![0, 1]]),
        Call::Accs(vec![vec![0, 1, 2]]),
    ];
    assert_eq!(e.calls, want);
    // Candidates: in that order, step = size, layer_index = the largest index.
    let cands: Vec<(usize, usize, Vec<usize>)> = r
        .candidates
        .iter()
        .map(|c| (c.step, c.layer_index, c.low.clone()))
        .collect();
    assert_eq!(
        cands,
        vec![
            (1, 2, vec![2]),
            (1, 1, vec![1]),
            (2, 2, vec![1, 2]),
            (1, 0, vec![0]),
            (2, 2, vec![0, 2]),
            (2, 1, vec![0, 1]),
            (3, 2, vec![0, 1, 2])
        ]
    );
    // Batch 4 -> d = 2: commits {} and {0}; blocks of 3 and 4 sets, one call each.
    let mut e = logged(4, modular(vec![0.1, 0.2, 0.3]));
    run(exhaustive(0.0), &problem(3), &mut e, &mut NoObserver).unwrap();
    assert_eq!(commits(&e.calls), vec![vec![], vec![0]]);
    assert_eq!(chunk_sizes(&e.calls), vec![3, 4]);
    // Batch 3 -> d = 2 as well; the second block goes as 3 + 1.
    let mut e = logged(3, modular(vec![0.1, 0.2, 0.3]));
    run(exhaustive(0.0), &problem(3), &mut e, &mut NoObserver).unwrap();
    assert_eq!(chunk_sizes(&e.calls), vec![3, 3, 1]);
    // Batch 100 -> d = M: one commit, one call.
    let mut e = logged(100, modular(vec![0.1, 0.2, 0.3]));
    run(exhaustive(0.0), &problem(3), &mut e, &mut NoObserver).unwrap();
    assert_eq!(commits(&e.calls), vec![Vec::<usize>::new()]);
    assert_eq!(chunk_sizes(&e.calls), vec![7]);
    // Consecutive sets share long prefixes: over M = 10, the first layer that differs from the
    // previous set is on average late (counting order: layer M-1-t with probability 2^-(t+1)).
    let mut e = logged(1, |_: &[bool]| 0.5);
    run(exhaustive(0.0), &problem(10), &mut e, &mut NoObserver).unwrap();
    let sets = evaluated(&e.calls);
    let mut first_change = 0usize;
    for w in sets.windows(2) {
        let (mut a, mut b) = ([false; 10], [false; 10]);
        w[0].iter().for_each(|&i| a[i] = true);
        w[1].iter().for_each(|&i| b[i] = true);
        first_change += (0..10).find(|&i| a[i] != b[i]).unwrap();
    }
    let mean = first_change as f64 / (sets.len() - 1) as f64;
    assert!(mean > 7.5, "{mean}");
}

#[test]
fn exhaustive_automatic_beta_is_greedys() {
    // Beta from the singletons: the same as greedy's step 1 on the same function. Steps are
    // reported at the end, step 0 (with its now known objective) first.
    let p = Problem::new(vec![10, 100, 1000]);
    let costs = vec![0.1, 0.4, 0.12];
    let g = run(AUTO, &p, &mut fun(modular(costs.clone())), &mut NoObserver).unwrap();
    let mut rec = Record::default();
    let x = run(
        Strategy::exhaustive(Beta::Auto),
        &p,
        &mut fun(modular(costs)),
        &mut rec,
    )
    .unwrap();
    assert_eq!(x.beta, g.beta);
    assert_eq!(rec.steps, x.steps);
    assert_eq!(rec.evals_at_step, vec![7, 7, 7, 7]);
    assert_eq!(x.steps[0].objective, None);
    // Size 1: layer 2 wins with the resolved beta (as greedy's step 1).
    assert_eq!(x.steps[1].low, vec![2]);
    assert!(rec
        .evals
        .iter()
        .all(|p| p.step == 3 && p.n_candidates == 7 && p.evals_total == Some(7)));
    // A zero singleton: undefined, after the enumeration.
    let mut e = fun(|low: &[bool]| if low[1] { 0.0 } else { 0.5 });
    let err = run(
        Strategy::exhaustive(Beta::Auto),
        &problem(3),
        &mut e,
        &mut NoObserver,
    )
    .unwrap_err();
    assert!(matches!(
        err,
        SearchError::AutoBetaUndefined {
            source: AutoBetaError::ZeroAccuracy { layer_index: 1 }
        }
    ));
}
