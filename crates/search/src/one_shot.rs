//! The one-shot baseline (Wu et al. 2020, as the paper extends it; spec section 4).
//!
//! It exists as the comparison the paper makes: the sensitivities are greedy's step 1,
//! `s_j = acc({j})`; layers are ordered once by `s_j` descending (ties: smallest index) and
//! `S_k` is the first k of that order. Accuracy alone decides (beta does not enter). It costs
//! M evaluations for the sensitivities and one per step k = 2..M (2M-1 in all): `S_1 = {first}`
//! reuses its step-1 accuracy. The sets `S_2..S_M` are known once the order is, so they go to
//! the evaluator in chunks of its batch hint (see [`fixed_order_steps`]).
use crate::greedy::{eval_chunked, remaining};
use crate::state::Search;
use crate::{Evaluator, Observer, SearchError};

/// Steps 1..=M of the one-shot search, after step 0 (`top0`, already evaluated).
pub(crate) fn one_shot<E: Evaluator>(
    s: &mut Search,
    top0: f64,
    eval: &mut E,
    obs: &mut dyn Observer,
) -> Result<(), SearchError<E::Error>> {
    s.push_step(None, top0, Some(top0));
    s.notify_step(0, obs);
    s.commit(eval)?;
    let ground = remaining(s);
    let sens = eval_chunked(s, 1, &ground, 0, ground.len(), eval, obs)?;
    for (&j, &a) in ground.iter().zip(&sens) {
        s.push_candidate(1, j, a, Some(a), true);
    }
    let by_sens = sensitivity_order(&sens);
    let order: Vec<usize> = by_sens.iter().map(|&p| ground[p]).collect();
    let first = sens[by_sens[0]];
    s.push_step(Some(order[0]), first, Some(first));
    s.notify_step(1, obs);
    if s.last > 1 {
        s.commit(eval)?;
    }
    fixed_order_steps(s, &order[1..s.last], 2, eval, obs)
}

/// Steps `first_step..` of a strategy whose order is fixed in advance: step `first_step + i`
/// adds `order[i]` to the current set and costs one evaluation. The sets are passed in chunks
/// of the batch hint; after each chunk its steps are recorded and reported, and the last set of
/// the chunk is committed when more steps follow (with a batch hint of 1: every `S_k`, k < M).
/// Accuracy alone is the objective. Progress reports the chunk's last step, candidate 1 of 1.
pub(crate) fn fixed_order_steps<E: Evaluator>(
    s: &mut Search,
    order: &[usize],
    first_step: usize,
    eval: &mut E,
    obs: &mut dyn Observer,
) -> Result<(), SearchError<E::Error>> {
    let mut k = first_step;
    for chunk in order.chunks(s.batch) {
        let mut set = s.low.clone();
        let sets: Vec<Vec<bool>> = chunk
            .iter()
            .map(|&j| {
                set[j] = true;
                set.clone()
            })
            .collect();
        let tags: Vec<(usize, usize)> = (k..).zip(chunk.iter().copied()).collect();
        let accs = s.eval_sets(&sets, &tags, eval)?;
        obs.on_eval(&s.progress(k + chunk.len() - 1, 1, 1));
        for (i, (&j, &a)) in chunk.iter().zip(&accs).enumerate() {
            s.push_candidate(k, j, a, Some(a), true);
            s.push_step_in_chunk(j, a, Some(a), chunk.len() - 1 - i);
            s.notify_step(k, obs);
            k += 1;
        }
        if k <= s.last {
            s.commit(eval)?;
        }
    }
    Ok(())
}

/// Positions by sensitivity descending, ties to the smallest position. The values are checked
/// fractions (never NaN, -0.0 normalised), so the comparison is a total order; the sort is
/// stable, so equal values keep ascending order.
pub(crate) fn sensitivity_order(sens: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..sens.len()).collect();
    order.sort_by(|&x, &y| sens[y].total_cmp(&sens[x]));
    order
}
