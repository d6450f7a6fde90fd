//! Search strategies over an [`Evaluator`] (the accuracy of a configuration), as pinned down by
//! spec sections 4, 5 and 7: the paper's greedy search (Algorithm 1, fixed or automatic beta)
//! and one-shot ordering by step-1 sensitivities.
//!
//! Pure: no candle, no polars, no files. A strategy can be tested against a hand-written set
//! function in microseconds, and the runner plugs a quantized network in as the evaluator.
use std::time::Instant;

/// Accuracy of a configuration. `low[i] == true` means layer i is at the lower bit pair.
pub trait Evaluator {
    type Error: std::error::Error + Send + Sync + 'static;
    /// Top-1 accuracy as a fraction in [0, 1].
    fn accuracy(&mut self, low: &[bool]) -> Result<f64, Self::Error>;
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Beta {
    Fixed(f64),
    /// Paper sec. 4.1: equalise the min/max ratios of both factors of eq. 2 over step 1.
    Auto,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Strategy {
    Greedy { beta: Beta },
    OneShot,
}

impl Strategy {
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::Greedy { .. } => "greedy",
            Strategy::OneShot => "one-shot",
        }
    }
}

/// The layers: `layer_params[i]` = n_i, weight elements of layer i. N = its length.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    pub layer_params: Vec<u64>,
}

/// One step of a search: `S_k` and its accuracy.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub step: usize,
    /// The layer added at this step (`None` at step 0, all layers at the high pair).
    pub layer_index: Option<usize>,
    pub top1: f64,
    /// `f(S_k)`; `None` where it is undefined (step 0 with beta > 0).
    pub objective: Option<f64>,
    pub params_low: u64,
    /// Evaluations spent so far (step 0's is not counted).
    pub evals: usize,
    /// Seconds since the search started.
    pub elapsed_s: f64,
}

/// One evaluated candidate: `S_{step-1} + {layer_index}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub step: usize,
    pub layer_index: usize,
    pub top1: f64,
    pub objective: Option<f64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SearchResult {
    pub strategy: Strategy,
    /// The beta actually used (automatic beta resolved; 0 for one-shot).
    pub beta: f64,
    /// Steps 0..=N.
    pub steps: Vec<Step>,
    pub candidates: Vec<Candidate>,
}

/// Where a search is, for progress displays.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    pub step: usize,
    pub n_steps: usize,
    /// 1-based within the step.
    pub candidate: usize,
    pub n_candidates: usize,
    pub evals_done: usize,
    pub evals_total: usize,
}

/// Hooks for progress bars and logs.
pub trait Observer {
    fn on_eval(&mut self, _p: &Progress) {}
    fn on_step(&mut self, _s: &Step) {}
}

pub struct NoObserver;
impl Observer for NoObserver {}

#[derive(Debug, thiserror::Error)]
pub enum SearchError<E> {
    #[error(transparent)]
    Eval(E),
    #[error("beta must be a finite number >= 0, got {0}")]
    BadBeta(f64),
    #[error("automatic beta is undefined: {0}")]
    AutoBetaUndefined(String),
    #[error("the problem has no layers")]
    Empty,
}

/// Eq. 2: `acc * (ln params)^beta`. With beta = 0 it is the accuracy itself; `None` where
/// `ln 0` would be needed.
pub fn objective(top1: f64, params_low: u64, beta: f64) -> Option<f64> {
    if beta == 0.0 {
        return Some(top1);
    }
    if params_low == 0 {
        return None;
    }
    Some(top1 * (params_low as f64).ln().powf(beta))
}

/// Automatic beta (paper sec. 4.1, spec sec. 4 and 7) from step-1 accuracies `a_j` and
/// `p_j = ln n_j`: `ln(min a / max a) / ln(min p / max p)`, 0 if either ratio is 1.
pub fn auto_beta(step1_acc: &[f64], layer_params: &[u64]) -> Result<f64, String> {
    if step1_acc.iter().any(|&a| a <= 0.0) {
        return Err("a step-1 accuracy is 0".into());
    }
    if layer_params.iter().any(|&n| n < 2) {
        return Err("a layer has fewer than 2 weights (ln n_j <= 0)".into());
    }
    let amin = step1_acc.iter().cloned().fold(f64::INFINITY, f64::min);
    let amax = step1_acc.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let p: Vec<f64> = layer_params.iter().map(|&n| (n as f64).ln()).collect();
    let pmin = p.iter().cloned().fold(f64::INFINITY, f64::min);
    let pmax = p.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let (ra, rp) = (amin / amax, pmin / pmax);
    if ra == 1.0 || rp == 1.0 {
        return Ok(0.0);
    }
    Ok(ra.ln() / rp.ln())
}

/// Evaluations a strategy spends on N layers (step 0 not counted).
pub fn evals_total(strategy: Strategy, n: usize) -> usize {
    match strategy {
        Strategy::Greedy { .. } => n * (n + 1) / 2,
        Strategy::OneShot => (2 * n).saturating_sub(1),
    }
}

/// Run `strategy` on `problem`.
pub fn run<E: Evaluator>(
    strategy: Strategy,
    problem: &Problem,
    eval: &mut E,
    obs: &mut dyn Observer,
) -> Result<SearchResult, SearchError<E::Error>> {
    let n = problem.layer_params.len();
    if n == 0 {
        return Err(SearchError::Empty);
    }
    if let Strategy::Greedy {
        beta: Beta::Fixed(b),
    } = strategy
    {
        if !(b.is_finite() && b >= 0.0) {
            return Err(SearchError::BadBeta(b));
        }
    }
    let mut s = Search {
        n,
        params: &problem.layer_params,
        low: vec![false; n],
        params_low: 0,
        evals: 0,
        evals_total: evals_total(strategy, n),
        start: Instant::now(),
        steps: vec![],
        candidates: vec![],
    };
    let top0 = eval.accuracy(&s.low).map_err(SearchError::Eval)?;
    let beta = match strategy {
        Strategy::Greedy { beta } => greedy(&mut s, beta, top0, eval, obs)?,
        Strategy::OneShot => {
            one_shot(&mut s, top0, eval, obs)?;
            0.0
        }
    };
    Ok(SearchResult {
        strategy,
        beta,
        steps: s.steps,
        candidates: s.candidates,
    })
}

struct Search<'a> {
    n: usize,
    params: &'a [u64],
    low: Vec<bool>,
    params_low: u64,
    evals: usize,
    evals_total: usize,
    start: Instant,
    steps: Vec<Step>,
    candidates: Vec<Candidate>,
}

impl Search<'_> {
    /// Accuracy of the current set plus `j` (not kept).
    fn try_add<E: Evaluator>(
        &mut self,
        j: usize,
        eval: &mut E,
    ) -> Result<f64, SearchError<E::Error>> {
        self.low[j] = true;
        let r = eval.accuracy(&self.low);
        self.low[j] = false;
        self.evals += 1;
        r.map_err(SearchError::Eval)
    }

    fn push_step(
        &mut self,
        layer: Option<usize>,
        top1: f64,
        objective: Option<f64>,
        obs: &mut dyn Observer,
    ) {
        if let Some(j) = layer {
            self.low[j] = true;
            self.params_low += self.params[j];
        }
        let st = Step {
            step: self.steps.len(),
            layer_index: layer,
            top1,
            objective,
            params_low: self.params_low,
            evals: self.evals,
            elapsed_s: self.start.elapsed().as_secs_f64(),
        };
        obs.on_step(&st);
        self.steps.push(st);
    }

    fn progress(&self, step: usize, candidate: usize, n_candidates: usize) -> Progress {
        Progress {
            step,
            n_steps: self.n,
            candidate,
            n_candidates,
            evals_done: self.evals,
            evals_total: self.evals_total,
        }
    }
}

fn greedy<E: Evaluator>(
    s: &mut Search,
    beta: Beta,
    top0: f64,
    eval: &mut E,
    obs: &mut dyn Observer,
) -> Result<f64, SearchError<E::Error>> {
    let mut resolved = match beta {
        Beta::Fixed(b) => Some(b),
        Beta::Auto => None,
    };
    // Step 0's objective needs beta; with Auto it is filled in after step 1's evaluations.
    s.push_step(
        None,
        top0,
        resolved.and_then(|b| objective(top0, 0, b)),
        obs,
    );
    for k in 1..=s.n {
        let remaining: Vec<usize> = (0..s.n).filter(|&j| !s.low[j]).collect();
        let mut accs = Vec::with_capacity(remaining.len());
        for (c, &j) in remaining.iter().enumerate() {
            accs.push(s.try_add(j, eval)?);
            obs.on_eval(&s.progress(k, c + 1, remaining.len()));
        }
        let b = match resolved {
            Some(b) => b,
            None => {
                let b = auto_beta(&accs, s.params).map_err(SearchError::AutoBetaUndefined)?;
                resolved = Some(b);
                s.steps[0].objective = objective(top0, 0, b);
                b
            }
        };
        let mut best: Option<(usize, f64, Option<f64>)> = None;
        for (&j, &a) in remaining.iter().zip(&accs) {
            let f = objective(a, s.params_low + s.params[j], b);
            s.candidates.push(Candidate {
                step: k,
                layer_index: j,
                top1: a,
                objective: f,
            });
            let v = f.unwrap_or(f64::NEG_INFINITY);
            // Strictly greater: ties stay with the smallest index (ascending scan).
            if best.is_none_or(|(_, _, bf)| v > bf.unwrap_or(f64::NEG_INFINITY)) {
                best = Some((j, a, f));
            }
        }
        let (j, a, f) = best.expect("at least one candidate");
        s.push_step(Some(j), a, f, obs);
    }
    Ok(resolved.unwrap_or(0.0))
}

fn one_shot<E: Evaluator>(
    s: &mut Search,
    top0: f64,
    eval: &mut E,
    obs: &mut dyn Observer,
) -> Result<(), SearchError<E::Error>> {
    s.push_step(None, top0, Some(top0), obs);
    let mut sens = Vec::with_capacity(s.n);
    for j in 0..s.n {
        let a = s.try_add(j, eval)?;
        obs.on_eval(&s.progress(1, j + 1, s.n));
        s.candidates.push(Candidate {
            step: 1,
            layer_index: j,
            top1: a,
            objective: Some(a),
        });
        sens.push(a);
    }
    let mut order: Vec<usize> = (0..s.n).collect();
    // Stable sort: equal sensitivities keep ascending index order.
    order.sort_by(|&x, &y| {
        sens[y]
            .partial_cmp(&sens[x])
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    s.push_step(Some(order[0]), sens[order[0]], Some(sens[order[0]]), obs);
    for (k, &j) in order.iter().enumerate().skip(1) {
        let a = s.try_add(j, eval)?;
        obs.on_eval(&s.progress(k + 1, 1, 1));
        s.candidates.push(Candidate {
            step: k + 1,
            layer_index: j,
            top1: a,
            objective: Some(a),
        });
        s.push_step(Some(j), a, Some(a), obs);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
