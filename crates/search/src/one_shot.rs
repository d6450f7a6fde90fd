//! The one-shot baseline (Wu et al. 2020, as the paper extends it; spec section 4).
//!
//! It exists as the comparison the paper makes: the sensitivities are greedy's step 1,
//! `s_j = acc({j})`; layers are ordered once by `s_j` descending (ties: smallest index) and
//! `S_k` is the first k of that order. Accuracy alone decides (beta does not enter). It costs
//! N evaluations for the sensitivities and one per step k = 2..N (2N-1 in all): `S_1 = {first}`
//! reuses its step-1 accuracy.
use crate::state::Search;
use crate::{Candidate, Evaluator, Observer, SearchError};

/// Steps 1..=N of the one-shot search, after step 0 (`top0`, already evaluated).
pub(crate) fn one_shot<E: Evaluator>(
    s: &mut Search,
    top0: f64,
    eval: &mut E,
    obs: &mut dyn Observer,
) -> Result<(), SearchError<E::Error>> {
    s.push_step(None, top0, Some(top0));
    s.notify_step(0, obs);
    let n = s.n;
    let mut sens = Vec::with_capacity(n);
    for j in 0..n {
        let a = s.eval_with(1, j, eval)?;
        obs.on_eval(&s.progress(1, j + 1, n));
        s.push_candidate(Candidate {
            step: 1,
            layer_index: j,
            top1: a,
            objective: Some(a),
        });
        sens.push(a);
    }
    let order = sensitivity_order(&sens);
    s.push_step(Some(order[0]), sens[order[0]], Some(sens[order[0]]));
    s.notify_step(1, obs);
    for (i, &j) in order.iter().enumerate().skip(1) {
        let k = i + 1;
        let a = s.eval_with(k, j, eval)?;
        obs.on_eval(&s.progress(k, 1, 1));
        s.push_candidate(Candidate {
            step: k,
            layer_index: j,
            top1: a,
            objective: Some(a),
        });
        s.push_step(Some(j), a, Some(a));
        s.notify_step(k, obs);
    }
    Ok(())
}

/// Layer indices by sensitivity descending, ties to the smallest index. The values are checked
/// fractions (never NaN, -0.0 normalised), so the comparison is a total order; the sort is
/// stable, so equal values keep ascending index order.
pub(crate) fn sensitivity_order(sens: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..sens.len()).collect();
    order.sort_by(|&x, &y| sens[y].total_cmp(&sens[x]));
    order
}
