//! No search: every searchable layer at the low pair at once, in one evaluation.
//!
//! It exists for the baselines (issue 13's table 1): a post-training method applied to every
//! layer at one pair is scored as one configuration, `S_1` = the whole ground set, beside step
//! 0 (every layer at the high pair). Its steps are therefore not nested one layer at a time:
//! step 1's `layer_index` is `None` and its `low` is the ground set, as exhaustive search
//! records its sets. It costs one evaluation and uses accuracy alone (beta 0).
use crate::state::Search;
use crate::{Candidate, Evaluator, Observer, SearchError};

/// Step 1 of the uniform configuration, after step 0 (`top0`, already evaluated).
pub(crate) fn uniform<E: Evaluator>(
    s: &mut Search,
    top0: f64,
    eval: &mut E,
    obs: &mut dyn Observer,
) -> Result<(), SearchError<E::Error>> {
    s.push_step(None, top0, Some(top0));
    s.notify_step(0, obs);
    let ground = s.ground.clone();
    let mut all = vec![false; s.low.len()];
    for &i in &ground {
        all[i] = true;
    }
    let largest = *ground.last().expect("the ground set is not empty");
    let acc = s.eval_sets(&[all], &[(1, largest)], eval)?[0];
    obs.on_eval(&s.progress(1, 1, 1));
    s.push_candidate_set(Candidate {
        step: 1,
        layer_index: largest,
        low: ground.clone(),
        top1: acc,
        objective: Some(acc),
        full: true,
    });
    s.push_step_set(&ground, acc, Some(acc));
    s.notify_step(1, obs);
    Ok(())
}
