//! Exhaustive search: for every set size k, the best set of that size.
//!
//! It exists as the yardstick for the heuristics: on a few layers (a small network, or a
//! reduced ground set of a larger one, see [`crate::Problem::searchable`]) it gives the optimum
//! that greedy, lazy greedy, one-shot and random can be measured against at the same sizes.
//! It evaluates all 2^M - 1 non-empty subsets, so it refuses M above its limit before any
//! evaluation.
//!
//! Exact rules:
//! - Step k (1..=M) is the set of size k with the largest objective (eq. 2 with the run's beta;
//!   an undefined objective ranks lowest), ties to the lexicographically smallest sorted index
//!   list. Steps are not nested: `layer_index` is `None` and `low` is the set. Every step is
//!   decided after all evaluations, so every step from 1 on records 2^M - 1 evaluations, and
//!   steps are reported to the observer at the end.
//! - An automatic beta comes from the singletons' accuracies `acc({j})` (greedy's step 1), so
//!   it equals greedy's on the same ground set; it is resolved after the enumeration.
//! - Enumeration is binary counting over the searchable layers with the smallest layer index as
//!   the most significant bit: consecutive sets share a long prefix in layer order. For a
//!   prefix-caching evaluator the last `d` searchable layers form the inner part (d =
//!   ceil(log2(batch_hint)), clamped to 1..=M): for each outer configuration, in counting order,
//!   [`crate::Evaluator::commit`] is called once with it (inner layers at the baseline), then its
//!   2^d inner configurations (the empty set excluded) are evaluated in chunks of the batch
//!   hint. Commit is thus called 2^(M-d) times, the first time with the empty set.
//! - The candidates are every evaluated set in enumeration order, with `step` = its size and
//!   `layer_index` = its largest layer index.
use crate::greedy::{beats, resolve, start};
use crate::objective::objective;
use crate::state::Search;
use crate::{Beta, Candidate, Evaluator, Observer, SearchError};

/// Steps 1..=M of the exhaustive search, after step 0 (`top0`, already evaluated). Returns the
/// beta used. M <= 63 (checked before).
pub(crate) fn exhaustive<E: Evaluator>(
    s: &mut Search,
    beta: Beta,
    top0: f64,
    eval: &mut E,
    obs: &mut dyn Observer,
) -> Result<f64, SearchError<E::Error>> {
    let m = s.n;
    debug_assert!((1..=63).contains(&m));
    let ground = s.ground.clone();
    let n_layers = s.low.len();
    let mut resolved = start(s, beta, top0, obs);
    let d = inner_bits(s.batch, m);
    let total: u64 = (1u64 << m) - 1;
    // Layer index of each bit: bit m-1-pos is ground position pos.
    let layer_of_bit = |bit: usize| ground[m - 1 - bit];
    let to_low = |x: u64| {
        let mut low = vec![false; n_layers];
        for (bit, l) in (0..m).map(|bit| (bit, layer_of_bit(bit))) {
            low[l] = x >> bit & 1 == 1;
        }
        low
    };
    let mut accs: Vec<f64> = vec![0.0; 1usize << m];
    let mut done = 0usize;
    for outer in 0..(1u64 << (m - d)) {
        let base = outer << d;
        eval.commit(&to_low(base)).map_err(SearchError::Eval)?;
        let first = if outer == 0 { 1 } else { 0 };
        let xs: Vec<u64> = (base + first..base + (1 << d)).collect();
        for chunk in xs.chunks(s.batch) {
            let sets: Vec<Vec<bool>> = chunk.iter().map(|&x| to_low(x)).collect();
            let tags: Vec<(usize, usize)> = chunk
                .iter()
                .map(|&x| {
                    (
                        x.count_ones() as usize,
                        layer_of_bit(x.trailing_zeros() as usize),
                    )
                })
                .collect();
            let a = s.eval_sets(&sets, &tags, eval)?;
            for (&x, a) in chunk.iter().zip(a) {
                accs[x as usize] = a;
            }
            done += chunk.len();
            obs.on_eval(&s.progress(m, done, total as usize));
        }
    }

    // Automatic beta from the singletons, in ascending layer order.
    let singles: Vec<f64> = (0..m).map(|pos| accs[1usize << (m - 1 - pos)]).collect();
    let b = resolve(s, &mut resolved, &singles, top0, obs)?;

    // best[k]: (set as a mask, top1, objective) of the best set of size k so far.
    let mut best: Vec<Option<(u64, f64, Option<f64>)>> = vec![None; m + 1];
    for x in 1..=total {
        let set: Vec<usize> = (0..m)
            .rev()
            .filter(|&bit| x >> bit & 1 == 1)
            .map(layer_of_bit)
            .collect();
        let params: u64 = set.iter().map(|&l| s.params[l]).sum();
        let (a, k) = (accs[x as usize], set.len());
        let f = objective(a, params, b);
        // Counting order: among sets of one size, a larger mask is a lexicographically smaller
        // index list, so an equal objective later on takes over.
        if best[k].is_none_or(|(_, _, bf)| !beats(bf, f)) {
            best[k] = Some((x, a, f));
        }
        s.push_candidate_set(Candidate {
            step: k,
            layer_index: *set.last().expect("non-empty"),
            low: set,
            top1: a,
            objective: f,
            full: true,
        });
    }
    for (k, entry) in best.iter().enumerate().skip(1) {
        let (x, a, f) = entry.expect("every size 1..=M has a set");
        let set: Vec<usize> = (0..m)
            .rev()
            .filter(|&bit| x >> bit & 1 == 1)
            .map(layer_of_bit)
            .collect();
        s.push_step_set(&set, a, f);
        s.notify_step(k, obs);
    }
    Ok(b)
}

/// The inner bits d: ceil(log2(batch)), clamped to 1..=m.
pub(crate) fn inner_bits(batch: usize, m: usize) -> usize {
    (batch.max(1).next_power_of_two().trailing_zeros() as usize).clamp(1, m)
}
