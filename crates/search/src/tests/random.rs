//! Random order: a seeded permutation, M evaluations, deterministic for a seed.
use super::support::*;
use super::*;
use crate::random::{shuffled, SplitMix64};

#[test]
fn splitmix64_matches_the_reference_outputs() {
    // The reference implementation (Vigna's splitmix64.c) from state 0.
    let mut r = SplitMix64(0);
    assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
    assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    assert_eq!(r.next_u64(), 0x06c4_5d18_8009_454f);
    let mut r = SplitMix64(5);
    assert!((0..1000).all(|_| r.below(7) < 7));
}

#[test]
fn random_is_a_seeded_permutation_at_one_evaluation_per_step() {
    let n = 10;
    let p = problem(n);
    let costs: Vec<f64> = (0..n).map(|j| 0.01 * (j + 1) as f64).collect();
    let mut e = logged(1, modular(costs.clone()));
    let a = run(Strategy::Random { seed: 1 }, &p, &mut e, &mut NoObserver).unwrap();
    check_nested(&a, &p);
    assert_eq!(a.beta, 0.0);
    assert_eq!(a.strategy.name().as_str(), "random");
    assert_eq!(a.evals(), n);
    assert_eq!(a.candidates.len(), n);
    let order = a.order();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(sorted, (0..n).collect::<Vec<_>>());
    assert_eq!(order, shuffled(&(0..n).collect::<Vec<_>>(), 1));
    // The calls: step 0, then S_1, S_2, ... each after the commit of the set before it.
    let mut want = vec![Call::Acc(vec![])];
    let mut cur: Vec<usize> = vec![];
    for &j in &order {
        want.push(Call::Commit(cur.clone()));
        cur.push(j);
        cur.sort();
        want.push(Call::Accs(vec![cur.clone()]));
    }
    assert_eq!(e.calls, want);
    for s in &a.steps {
        assert_eq!(s.objective, Some(s.top1));
    }
    // Same seed: the same run; another seed: another order.
    let b = run(
        Strategy::Random { seed: 1 },
        &p,
        &mut fun(modular(costs.clone())),
        &mut NoObserver,
    )
    .unwrap();
    assert_eq!(timeless(&a), timeless(&b));
    let c = run(
        Strategy::Random { seed: 2 },
        &p,
        &mut fun(modular(costs.clone())),
        &mut NoObserver,
    )
    .unwrap();
    assert_ne!(c.order(), a.order());
    // Batch 4: S_1..S_4 in one call, commit S_4, then S_5..S_8, commit S_8, then S_9, S_10.
    let mut e = logged(4, modular(costs));
    let d = run(Strategy::Random { seed: 1 }, &p, &mut e, &mut NoObserver).unwrap();
    assert_eq!(rows(&d), rows(&a));
    assert_eq!(chunk_sizes(&e.calls), vec![4, 4, 2]);
    let cs = commits(&e.calls);
    assert_eq!(cs.len(), 3);
    assert_eq!(cs[1], a.steps[4].low);
    assert_eq!(cs[2], a.steps[8].low);
}

#[test]
fn the_shuffle_is_roughly_uniform() {
    // 3 items, 6000 seeds: each of the 6 orders about 1000 times.
    let mut seen = std::collections::HashMap::new();
    for seed in 0..6000 {
        *seen.entry(shuffled(&[0, 1, 2], seed)).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 6);
    assert!(seen.values().all(|&c| (850..1150).contains(&c)), "{seen:?}");
    // One item, or none: nothing to shuffle.
    assert_eq!(shuffled(&[4], 9), vec![4]);
    assert!(shuffled(&[], 9).is_empty());
}
