//! The paper's greedy search (Algorithm 1; spec section 4).
//!
//! It exists as its own module because its rules are the heart of the reproduction and must be
//! exact so that two implementations agree: at step k every layer not yet in `S_{k-1}` is
//! tried, in ascending index order; the largest objective wins, ties to the smallest index; an
//! automatic beta is resolved from step 1's accuracies before step 1's choice. Exactly
//! N(N+1)/2 evaluations.
use crate::objective::{auto_beta, objective};
use crate::state::Search;
use crate::{Beta, Candidate, Evaluator, Observer, SearchError};

/// Steps 1..=N of the greedy search, after step 0 (`top0`, already evaluated). Returns the beta
/// used.
pub(crate) fn greedy<E: Evaluator>(
    s: &mut Search,
    beta: Beta,
    top0: f64,
    eval: &mut E,
    obs: &mut dyn Observer,
) -> Result<f64, SearchError<E::Error>> {
    // `+ 0.0` turns a fixed -0.0 into 0.0, so that the recorded beta reads 0.
    let mut resolved = match beta {
        Beta::Fixed(b) => Some(b + 0.0),
        Beta::Auto => None,
    };
    // Step 0's objective needs beta; with Auto it is filled in (and reported) after step 1's
    // evaluations.
    s.push_step(None, top0, resolved.and_then(|b| objective(top0, 0, b)));
    if resolved.is_some() {
        s.notify_step(0, obs);
    }
    for k in 1..=s.n {
        let remaining: Vec<usize> = (0..s.n).filter(|&j| !s.low[j]).collect();
        let mut accs = Vec::with_capacity(remaining.len());
        for (c, &j) in remaining.iter().enumerate() {
            accs.push(s.eval_with(k, j, eval)?);
            obs.on_eval(&s.progress(k, c + 1, remaining.len()));
        }
        let b = match resolved {
            Some(b) => b,
            None => {
                // Step 1: every layer is a candidate, so `accs[j]` is `acc({j})`.
                let b = auto_beta(&accs, s.params)
                    .map_err(|source| SearchError::AutoBetaUndefined { source })?;
                resolved = Some(b);
                s.step0_mut().objective = objective(top0, 0, b);
                s.notify_step(0, obs);
                b
            }
        };
        let mut best: Option<(usize, f64, Option<f64>)> = None;
        for (&j, &a) in remaining.iter().zip(&accs) {
            let f = objective(a, s.params_with(j), b);
            s.push_candidate(Candidate {
                step: k,
                layer_index: j,
                top1: a,
                objective: f,
            });
            // Ascending scan with a strict comparison: ties stay with the smallest index.
            if best.is_none_or(|(_, _, bf)| beats(f, bf)) {
                best = Some((j, a, f));
            }
        }
        let (j, a, f) = best.expect("step k has N - k + 1 >= 1 candidates");
        s.push_step(Some(j), a, f);
        s.notify_step(k, obs);
    }
    Ok(resolved.expect("resolved at step 1 at the latest"))
}

/// Whether objective `f` is strictly better than `best`. An undefined objective (a layer with
/// no weights, beta > 0, so ln 0) ranks below every defined one. Accuracies are checked to be
/// finite fractions, so defined objectives are finite and never NaN.
fn beats(f: Option<f64>, best: Option<f64>) -> bool {
    match (f, best) {
        (Some(f), Some(b)) => f > b,
        (Some(_), None) => true,
        (None, _) => false,
    }
}
