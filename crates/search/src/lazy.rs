//! Lazy greedy (Minoux 1978, "accelerated greedy"): greedy's choices with fewer evaluations
//! when the objective is submodular.
//!
//! It exists because greedy's M(M+1)/2 evaluations dominate a run, and the paper motivates
//! greedy by (approximate) submodularity: if `f` is submodular, a layer's marginal value
//! `f(S + j) - f(S)` can only shrink as S grows, so the value measured at an earlier step bounds
//! it from above. Each step then keeps a priority order of the remaining layers by their upper
//! bounds `f(S_{k-1}) + (f(S_{k'} + j) - f(S_{k'}))` and re-evaluates only the top of it until
//! the top entry is fresh (evaluated at this step); that entry is greedy's choice.
//!
//! Exact rules:
//! - Step 1 evaluates every searchable layer (as greedy, ascending, in chunks), resolves an
//!   automatic beta from them, and chooses as greedy.
//! - From step 2 on, the priority order is by key descending, ties to the smallest index, where
//!   a fresh entry's key is its objective and a stale entry's key its upper bound. A stale entry
//!   with a bound equal to a fresh entry's value and a smaller index therefore comes first and
//!   is re-evaluated before the fresh one can be accepted, so ties go to the smallest index
//!   exactly as in greedy. An undefined objective (ln 0) ranks below every defined one; a bound
//!   that cannot be formed (an undefined value at the earlier step) is +infinity.
//! - Bounds are inflated by `1e-9 * (1 + |f(S_{k-1})| + |gain|)` so that floating-point
//!   rounding of `f(S_{k-1}) + gain` cannot hide a tie; this can only cost an extra evaluation,
//!   never change a choice. (Real accuracies differ by at least one image, 1/n.)
//! - From step 2 on, stale entries are re-evaluated one at a time, the classic algorithm,
//!   whatever the evaluator's batch hint: with an objective that is not submodular, which
//!   entries get re-evaluated decides the choice, and a run's result must not depend on the
//!   number of threads. Step 1 evaluates every layer, in chunks of the batch hint.
//!
//! Guarantee: if `f` is submodular on the sets visited, every step chooses what greedy chooses
//! (same layer, same top-1 and objective, since they are the same evaluations); the cost is at
//! most greedy's. If `f` is not submodular a stale bound may be too low and the choice can
//! differ from greedy's (the tests show one such case). The candidates record only the
//! evaluations made, in the order made.
use crate::greedy::{beats, eval_chunked, finish_step, remaining, resolve, start};
use crate::objective::objective;
use crate::state::Search;
use crate::{Beta, Evaluator, Observer, SearchError};
use std::cmp::Ordering;

/// Steps 1..=M of lazy greedy, after step 0 (`top0`, already evaluated). Returns the beta used.
pub(crate) fn lazy_greedy<E: Evaluator>(
    s: &mut Search,
    beta: Beta,
    top0: f64,
    eval: &mut E,
    obs: &mut dyn Observer,
) -> Result<f64, SearchError<E::Error>> {
    let mut resolved = start(s, beta, top0, obs);
    s.commit(eval)?;
    let ground = remaining(s);
    let accs = eval_chunked(s, 1, &ground, 0, ground.len(), eval, obs)?;
    let b = resolve(s, &mut resolved, &accs, top0, obs)?;
    let f0 = objective(top0, 0, b);
    // gain[j]: the last measured marginal value of layer j; None = unknown (bound +infinity).
    let mut gain: Vec<Option<f64>> = vec![None; s.low.len()];
    let mut best: Option<(usize, f64, Option<f64>)> = None;
    for (&j, &a) in ground.iter().zip(&accs) {
        let f = objective(a, s.params_with(j), b);
        s.push_candidate(1, j, a, f, true);
        gain[j] = marginal(f, f0);
        if best.is_none_or(|(_, _, bf)| beats(f, bf)) {
            best = Some((j, a, f));
        }
    }
    let (j, a, mut f_cur) = best.expect("the ground set is not empty");
    finish_step(s, 1, j, a, f_cur, eval, obs)?;

    for k in 2..=s.last {
        let rem = remaining(s);
        let mut entries: Vec<Entry> = rem
            .iter()
            .map(|&j| Entry {
                j,
                key: bound(f_cur, gain[j]),
                fresh: None,
            })
            .collect();
        let mut done = 0;
        let chosen = loop {
            let top = top_entry(&entries);
            if let Some((a, f)) = entries[top].fresh {
                break (entries[top].j, a, f);
            }
            let mut order: Vec<usize> = (0..entries.len()).collect();
            order.sort_by(|&x, &y| priority(&entries[x], &entries[y]));
            // One at a time, whatever the batch hint: which layers get re-evaluated decides
            // the choice when the objective is not submodular, so it must not depend on how
            // many threads evaluate (the input key of a run leaves the thread count out).
            let chunk: Vec<usize> = order
                .into_iter()
                .take_while(|&e| entries[e].fresh.is_none())
                .take(1)
                .collect();
            let js: Vec<usize> = chunk.iter().map(|&e| entries[e].j).collect();
            let accs = eval_chunked(s, k, &js, done, rem.len(), eval, obs)?;
            done += js.len();
            for (&e, &a) in chunk.iter().zip(&accs) {
                let j = entries[e].j;
                let f = objective(a, s.params_with(j), b);
                s.push_candidate(k, j, a, f, true);
                gain[j] = marginal(f, f_cur);
                entries[e].key = f;
                entries[e].fresh = Some((a, f));
            }
        };
        let (j, a, f) = chosen;
        finish_step(s, k, j, a, f, eval, obs)?;
        f_cur = f;
    }
    Ok(b)
}

/// A remaining layer at the current step.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub j: usize,
    /// Fresh: its objective; stale: its upper bound (+infinity when unknown).
    pub key: Option<f64>,
    /// `(top1, objective)` once evaluated at this step.
    pub fresh: Option<(f64, Option<f64>)>,
}

/// `f(S + j) - f(S)`, when both are defined.
fn marginal(f_with: Option<f64>, f_without: Option<f64>) -> Option<f64> {
    Some(f_with? - f_without?)
}

/// The upper bound `f(S_{k-1}) + gain`, slightly inflated against rounding; +infinity when
/// either is unknown.
fn bound(f_cur: Option<f64>, gain: Option<f64>) -> Option<f64> {
    match (f_cur, gain) {
        (Some(c), Some(u)) => Some(c + u + 1e-9 * (1.0 + c.abs() + u.abs())),
        _ => Some(f64::INFINITY),
    }
}

/// Key order, descending: larger keys first, an undefined key last; ties to the smaller index.
pub(crate) fn priority(x: &Entry, y: &Entry) -> Ordering {
    // Defined keys are finite or +infinity, so -infinity can stand for "undefined".
    let rank = |e: &Entry| e.key.unwrap_or(f64::NEG_INFINITY);
    rank(y).total_cmp(&rank(x)).then(x.j.cmp(&y.j))
}

/// The first entry in [`priority`] order (entries are in ascending index order, so a strict
/// comparison over a forward scan keeps the smallest index among equal keys).
pub(crate) fn top_entry(entries: &[Entry]) -> usize {
    let mut top = 0;
    for (i, e) in entries.iter().enumerate().skip(1) {
        if beats(e.key, entries[top].key) {
            top = i;
        }
    }
    top
}
