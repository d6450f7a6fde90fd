//! Screened greedy: greedy whose candidates are first measured on part of the search images,
//! and finished on the rest only when they still have a chance.
//!
//! It exists because most of greedy's candidates at a step are clearly worse than the best one
//! after a fraction of the images: measuring them to the end buys nothing. With an evaluator
//! that can count correct answers on parts of the images ([`crate::Evaluator::count`]), each
//! step
//! 1. counts every candidate `S_{k-1} + j` (ascending index, chunks of the batch hint) on parts
//!    `0..p`, where `p = round(fraction * n_parts)` clamped to `1..=n_parts`;
//! 2. keeps candidate j when its partial objective `g_j = a_j * w_j` (`a_j` = correct / images
//!    on those parts, `w_j = (ln params(S_{k-1} + j))^beta`, 1 for beta 0) is within `z`
//!    standard errors of the best partial objective `g_b` (largest, ties to the smallest
//!    index): `g_b - g_j <= z * sqrt((w_b^2 a_b (1 - a_b) + w_j^2 a_j (1 - a_j)) / n)`, n the
//!    images on the screening parts. This is the standard error of a difference of two
//!    independent proportions, each on n images, scaled by eq. 2's factors; the candidates are
//!    measured on the same images and are positively correlated, so the true error of the
//!    difference is usually smaller and the rule errs on the side of keeping. `z = infinity`
//!    keeps every candidate; `z = 0` keeps only those tied with the best. An undefined partial
//!    objective (ln 0) is kept only when the best is undefined too;
//! 3. finishes the kept candidates on parts `p..n_parts` and adds the counts: their top-1 is
//!    `(correct_head + correct_tail) / (images_head + images_tail)`, which by the evaluator's
//!    contract is bit for bit its full accuracy;
//! 4. chooses among the finished candidates by full objective, ties to the smallest index.
//!
//! Special cases, all evaluated in full through `accuracies` (so they cost one query each):
//! an automatic beta's step 1 (beta must come from the full step-1 accuracies, as in greedy),
//! and a step with a single candidate. When `p == n_parts` (in particular when the evaluator
//! has `n_parts() == 1`, the default) screening is impossible and the search is plain greedy:
//! same rows, same M(M+1)/2 evaluations.
//!
//! Guarantee: with a margin that keeps greedy's choice at every step (e.g. `z = infinity`) the
//! choices, step top-1s and objectives are greedy's; otherwise none beyond "the best
//! candidate on the screening parts is always finished". Cost: every candidate costs one
//! partial query (p/n of an evaluation) and a kept one a second, finishing query ((n-p)/n):
//! `Step::evals` counts queries, `Step::work` full-evaluation equivalents, at most greedy's.
//! The candidates list has one row per candidate in ascending index order; `full == false`
//! rows carry the partial top-1 and objective.
use crate::greedy::{beats, eval_chunked, finish_step, greedy, remaining, resolve, start};
use crate::objective::objective;
use crate::state::Search;
use crate::{Beta, Count, Evaluator, Observer, SearchError};

/// The screening parts: `round(fraction * n_parts)`, at least 1, at most `n_parts`.
pub(crate) fn screen_parts(fraction: f64, n_parts: usize) -> usize {
    ((fraction * n_parts as f64).round() as usize).clamp(1, n_parts.max(1))
}

/// The beta used and the screening parts `(p, n_parts)` (`None`: ran as plain greedy).
pub(crate) type Screened = (f64, Option<(usize, usize)>);

/// Steps 1..=M of screened greedy, after step 0 (`top0`, already evaluated). Returns the beta
/// used and `(p, n_parts)`, or `None` when it ran as plain greedy.
#[allow(clippy::too_many_arguments)]
pub(crate) fn screened_greedy<E: Evaluator>(
    s: &mut Search,
    beta: Beta,
    fraction: f64,
    z: f64,
    top0: f64,
    eval: &mut E,
    obs: &mut dyn Observer,
) -> Result<Screened, SearchError<E::Error>> {
    let n_parts = eval.n_parts().max(1);
    let p = screen_parts(fraction, n_parts);
    if p >= n_parts {
        return Ok((greedy(s, beta, top0, eval, obs)?, None));
    }
    s.set_work_unit(n_parts);
    let mut resolved = start(s, beta, top0, obs);
    s.commit(eval)?;
    // Images on the screening parts and on the rest, as the first counts report them.
    let (mut n_head, mut n_tail) = (None, None);
    for k in 1..=s.last {
        let rem = remaining(s);
        let n_c = rem.len();
        if resolved.is_none() || n_c == 1 {
            let accs = eval_chunked(s, k, &rem, 0, n_c, eval, obs)?;
            let b = resolve(s, &mut resolved, &accs, top0, obs)?;
            let mut best: Option<(usize, f64, Option<f64>)> = None;
            for (&j, &a) in rem.iter().zip(&accs) {
                let f = objective(a, s.params_with(j), b);
                s.push_candidate(k, j, a, f, true);
                if best.is_none_or(|(_, _, bf)| beats(f, bf)) {
                    best = Some((j, a, f));
                }
            }
            let (j, a, f) = best.expect("at least one candidate");
            finish_step(s, k, j, a, f, eval, obs)?;
            continue;
        }
        let b = resolved.expect("resolved above");

        let mut head: Vec<Count> = Vec::with_capacity(n_c);
        for chunk in rem.chunks(s.batch) {
            let c = s.count_with(k, chunk, 0..p, n_parts, n_head, eval)?;
            n_head = Some(c[0].total);
            head.extend(c);
            obs.on_eval(&s.progress(k, head.len(), n_c));
        }
        let weights: Vec<Option<f64>> = rem
            .iter()
            .map(|&j| objective(1.0, s.params_with(j), b))
            .collect();
        let keep = screen(&head, &weights, z);

        let kept: Vec<usize> = (0..n_c).filter(|&i| keep[i]).collect();
        let kept_js: Vec<usize> = kept.iter().map(|&i| rem[i]).collect();
        let mut tail: Vec<Count> = Vec::with_capacity(kept.len());
        for chunk in kept_js.chunks(s.batch) {
            let c = s.count_with(k, chunk, p..n_parts, n_parts, n_tail, eval)?;
            n_tail = Some(c[0].total);
            tail.extend(c);
            obs.on_eval(&s.progress(k, n_c + tail.len(), n_c));
        }
        let mut full: Vec<Option<Count>> = vec![None; n_c];
        for (&i, &t) in kept.iter().zip(&tail) {
            full[i] = Some(head[i] + t);
        }

        let mut best: Option<(usize, f64, Option<f64>)> = None;
        for (i, &j) in rem.iter().enumerate() {
            match full[i] {
                Some(c) => {
                    let a = c.top1();
                    let f = objective(a, s.params_with(j), b);
                    s.push_candidate(k, j, a, f, true);
                    if best.is_none_or(|(_, _, bf)| beats(f, bf)) {
                        best = Some((j, a, f));
                    }
                }
                None => {
                    let a = head[i].top1();
                    s.push_candidate(k, j, a, objective(a, s.params_with(j), b), false);
                }
            }
        }
        let (j, a, f) = best.expect("the best partial candidate is always kept");
        finish_step(s, k, j, a, f, eval, obs)?;
    }
    Ok((
        resolved.expect("resolved at step 1 at the latest"),
        Some((p, n_parts)),
    ))
}

/// Which candidates survive the screening (see the module documentation for the rule).
/// `head[i]`: candidate i's counts on the screening parts (all with the same, non-zero total);
/// `weights[i]`: its eq. 2 factor `(ln params)^beta` (1 for beta 0; `None` when ln 0).
pub(crate) fn screen(head: &[Count], weights: &[Option<f64>], z: f64) -> Vec<bool> {
    let g = |i: usize| weights[i].map(|w| head[i].top1() * w);
    let mut best = 0;
    for i in 1..head.len() {
        if beats(g(i), g(best)) {
            best = i;
        }
    }
    let Some(gb) = g(best) else {
        // Every partial objective is undefined: nothing to tell them apart.
        return vec![true; head.len()];
    };
    let var = |i: usize| {
        let (a, w) = (head[i].top1(), weights[i].expect("defined"));
        w * w * a * (1.0 - a)
    };
    (0..head.len())
        .map(|i| match g(i) {
            None => false,
            Some(gi) => {
                let se = ((var(best) + var(i)) / head[i].total as f64).sqrt();
                z == f64::INFINITY || gb - gi <= z * se
            }
        })
        .collect()
}
