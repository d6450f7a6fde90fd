//! The paper's greedy search (Algorithm 1; spec section 4).
//!
//! It exists as its own module because its rules are the heart of the reproduction and must be
//! exact so that two implementations agree: at step k every searchable layer not yet in
//! `S_{k-1}` is tried, in ascending index order (passed to the evaluator in chunks of its batch
//! hint); the largest objective wins, ties to the smallest index; an automatic beta is resolved
//! from step 1's accuracies before step 1's choice. Exactly M(M+1)/2 evaluations. The helpers
//! here (step 0, chunked evaluation, automatic beta, the comparison) are shared with lazy and
//! screened greedy, so that the three cannot drift apart.
use crate::objective::{auto_beta, objective};
use crate::state::Search;
use crate::{auto_beta_error, Beta, Evaluator, Observer, SearchError};

/// Steps 1..=M of the greedy search, after step 0 (`top0`, already evaluated). Returns the beta
/// used.
pub(crate) fn greedy<E: Evaluator>(
    s: &mut Search,
    beta: Beta,
    top0: f64,
    eval: &mut E,
    obs: &mut dyn Observer,
) -> Result<f64, SearchError<E::Error>> {
    let mut resolved = start(s, beta, top0, obs);
    s.commit(eval)?;
    for k in 1..=s.last {
        let remaining = remaining(s);
        let accs = eval_chunked(s, k, &remaining, 0, remaining.len(), eval, obs)?;
        let b = resolve(s, &mut resolved, &accs, top0, obs)?;
        let mut best: Option<(usize, f64, Option<f64>)> = None;
        for (&j, &a) in remaining.iter().zip(&accs) {
            let f = objective(a, s.params_with(j), b);
            s.push_candidate(k, j, a, f, true);
            // Ascending scan with a strict comparison: ties stay with the smallest index.
            if best.is_none_or(|(_, _, bf)| beats(f, bf)) {
                best = Some((j, a, f));
            }
        }
        let (j, a, f) = best.expect("step k has M - k + 1 >= 1 candidates");
        finish_step(s, k, j, a, f, eval, obs)?;
    }
    Ok(resolved.expect("resolved at step 1 at the latest"))
}

/// Record step 0 (its objective, and its `on_step`, wait for an automatic beta). Returns the
/// beta when it is fixed.
pub(crate) fn start(s: &mut Search, beta: Beta, top0: f64, obs: &mut dyn Observer) -> Option<f64> {
    // `+ 0.0` turns a fixed -0.0 into 0.0, so that the recorded beta reads 0.
    let resolved = match beta {
        Beta::Fixed(b) => Some(b + 0.0),
        Beta::Auto => None,
    };
    s.push_step(None, top0, resolved.and_then(|b| objective(top0, 0, b)));
    if resolved.is_some() {
        s.notify_step(0, obs);
    }
    resolved
}

/// Record step k (adding `j`), report it, and commit the new set if a step follows.
pub(crate) fn finish_step<E: Evaluator>(
    s: &mut Search,
    k: usize,
    j: usize,
    top1: f64,
    f: Option<f64>,
    eval: &mut E,
    obs: &mut dyn Observer,
) -> Result<(), SearchError<E::Error>> {
    s.push_step(Some(j), top1, f);
    s.notify_step(k, obs);
    if k < s.last {
        s.commit(eval)?;
    }
    Ok(())
}

/// The searchable layers not in the current set, ascending.
pub(crate) fn remaining(s: &Search) -> Vec<usize> {
    s.ground.iter().copied().filter(|&j| !s.low[j]).collect()
}

/// Full accuracies of `S + {j}` for each `j` of `js`, in order, in chunks of the batch hint,
/// with a progress report after each chunk (`done` queries of this step came before;
/// `n_candidates` is the step's candidate count).
pub(crate) fn eval_chunked<E: Evaluator>(
    s: &mut Search,
    k: usize,
    js: &[usize],
    done: usize,
    n_candidates: usize,
    eval: &mut E,
    obs: &mut dyn Observer,
) -> Result<Vec<f64>, SearchError<E::Error>> {
    let mut accs = Vec::with_capacity(js.len());
    for chunk in js.chunks(s.batch) {
        accs.extend(s.eval_with(k, chunk, eval)?);
        obs.on_eval(&s.progress(k, done + accs.len(), n_candidates));
    }
    Ok(accs)
}

/// The beta of the step being decided. At step 1 with an automatic beta, `accs` are
/// `acc({j})` for every searchable layer in ascending order: beta is resolved from them, step
/// 0's objective is filled in and step 0 is reported.
pub(crate) fn resolve<E>(
    s: &mut Search,
    resolved: &mut Option<f64>,
    accs: &[f64],
    top0: f64,
    obs: &mut dyn Observer,
) -> Result<f64, SearchError<E>> {
    if let Some(b) = *resolved {
        return Ok(b);
    }
    debug_assert_eq!(accs.len(), s.ground.len(), "step 1 covers the ground set");
    let params: Vec<u64> = s.ground.iter().map(|&i| s.params[i]).collect();
    let b = auto_beta(accs, &params).map_err(|e| auto_beta_error(e, &s.ground))?;
    *resolved = Some(b);
    s.step0_mut().objective = objective(top0, 0, b);
    s.notify_step(0, obs);
    Ok(b)
}

/// Whether objective `f` is strictly better than `best`. An undefined objective (a layer with
/// no weights, beta > 0, so ln 0) ranks below every defined one. Accuracies are checked to be
/// finite fractions, so defined objectives are finite and never NaN.
pub(crate) fn beats(f: Option<f64>, best: Option<f64>) -> bool {
    match (f, best) {
        (Some(f), Some(b)) => f > b,
        (Some(_), None) => true,
        (None, _) => false,
    }
}
