//! Search strategies for mixed-precision post-training quantization, as pinned down by
//! `shared/spec/quantization.md` sections 3, 4, 5 and 7: the paper's greedy search (Tsuji et al.
//! 2021, Algorithm 1, with a fixed or an automatic beta) and the one-shot ordering by step-1
//! sensitivities (Wu et al. 2020, as the paper extends it).
//!
//! This crate exists so that the search logic (which sets are evaluated, in which order, how
//! ties break, what is recorded, how many evaluations it costs) lives apart from the expensive
//! part. It is pure: no candle, no polars, no files. A strategy sees the network only through an
//! [`Evaluator`] (the top-1 accuracy of a configuration), so it can be tested against
//! hand-written set functions in microseconds, and the runner plugs a quantized network in.
//!
//! Layout: [`mod@objective`] holds eq. 2 and the automatic beta; `greedy` and `one_shot` hold the
//! two strategies; `state` holds the bookkeeping they share (the current set, the cumulative
//! evaluation count, the recorded steps and candidates).

mod greedy;
pub mod objective;
mod one_shot;
mod state;

pub use objective::{auto_beta, objective, AutoBetaError};

use state::Search;

/// Accuracy of a configuration. `low[i] == true` means layer i is at the lower bit pair; the
/// others are at the baseline (W8A8). `low.len()` is always the number of layers N.
pub trait Evaluator {
    type Error: std::error::Error + Send + Sync + 'static;
    /// Top-1 accuracy as a fraction in [0, 1]. Anything else (NaN, a percentage) stops the
    /// search with [`SearchError::InvalidAccuracy`].
    fn accuracy(&mut self, low: &[bool]) -> Result<f64, Self::Error>;
}

/// The exponent of eq. 2.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Beta {
    /// A given beta, finite and >= 0. 0 means accuracy alone.
    Fixed(f64),
    /// Paper sec. 4.1: computed from step 1's accuracies so that the min/max ratios of both
    /// factors of eq. 2 are equal (see [`auto_beta`]); it already applies to step 1's choice.
    Auto,
}

/// Which search to run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Strategy {
    /// Algorithm 1: N(N+1)/2 evaluations.
    Greedy { beta: Beta },
    /// Order layers once by their single-layer accuracy: 2N-1 evaluations. Beta does not enter.
    OneShot,
}

impl Strategy {
    /// The name used in result tables: `"greedy"` or `"one-shot"`.
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::Greedy { .. } => "greedy",
            Strategy::OneShot => "one-shot",
        }
    }
}

/// The layers: `layer_params[i]` = n_i, the weight element count of layer i (bias excluded).
/// N = its length; the index is the tie-breaker everywhere.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    pub layer_params: Vec<u64>,
}

impl Problem {
    /// N, the number of quantizable layers.
    pub fn n_layers(&self) -> usize {
        self.layer_params.len()
    }
}

/// One step of a search: `S_k` and its accuracy. Step 0 is the empty set (all layers at the
/// baseline pair).
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub step: usize,
    /// The layer added at this step (`None` at step 0).
    pub layer_index: Option<usize>,
    /// `acc(S_k)`.
    pub top1: f64,
    /// `f(S_k)` with the run's beta (accuracy alone for one-shot); `None` where it is undefined
    /// (step 0 with beta > 0, since ln 0 is undefined).
    pub objective: Option<f64>,
    /// `params(S_k)`, the sum of n_i over S_k.
    pub params_low: u64,
    /// Evaluations spent so far, this step's included (step 0's evaluation is not counted).
    pub evals: usize,
    /// Seconds since the search started (step 0's evaluation included).
    pub elapsed_s: f64,
}

/// One evaluated candidate: `S_{step-1} + {layer_index}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub step: usize,
    pub layer_index: usize,
    pub top1: f64,
    /// Its eq. 2 value with the run's beta (accuracy alone for one-shot).
    pub objective: Option<f64>,
}

/// Everything a search records (spec sec. 5, the part a search knows).
#[derive(Clone, Debug, PartialEq)]
pub struct SearchResult {
    pub strategy: Strategy,
    /// The beta actually used: the fixed one, the resolved automatic one, 0 for one-shot.
    pub beta: f64,
    /// Steps 0..=N, N+1 rows.
    pub steps: Vec<Step>,
    /// Every evaluation of steps 1..=N in the order made (greedy: N(N+1)/2 rows; one-shot: the
    /// N step-1 rows, then one per step 2..=N).
    pub candidates: Vec<Candidate>,
}

impl SearchResult {
    /// The layers in the order they were moved to the lower pair (steps 1..=N).
    pub fn order(&self) -> Vec<usize> {
        self.steps.iter().filter_map(|s| s.layer_index).collect()
    }
}

/// Where a search is, for progress displays. Sent after each counted evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    pub step: usize,
    /// N.
    pub n_steps: usize,
    /// 1-based within the step.
    pub candidate: usize,
    pub n_candidates: usize,
    pub evals_done: usize,
    pub evals_total: usize,
}

/// Hooks for progress bars and logs. `on_eval` follows every counted evaluation; `on_step`
/// receives each step's final row, in step order. With [`Beta::Auto`], step 0's objective
/// depends on the beta that step 1's evaluations resolve, so its `on_step` comes only then
/// (just before step 1's).
pub trait Observer {
    fn on_eval(&mut self, _p: &Progress) {}
    fn on_step(&mut self, _s: &Step) {}
}

/// An observer that ignores everything.
pub struct NoObserver;
impl Observer for NoObserver {}

/// Why a search stopped.
#[derive(Debug, thiserror::Error)]
pub enum SearchError<E> {
    /// The evaluator failed; the search stops at once.
    #[error(transparent)]
    Eval(E),
    /// A fixed beta that is negative, NaN or infinite (checked before any evaluation).
    #[error("beta must be a finite number >= 0, got {0}")]
    BadBeta(f64),
    /// Automatic beta cannot be computed (spec sec. 7: e.g. a step-1 accuracy of 0).
    #[error("automatic beta is undefined: {source}")]
    AutoBetaUndefined { source: AutoBetaError },
    /// The evaluator returned something that is not a fraction in [0, 1].
    #[error(
        "the evaluator returned top-1 {value} at step {step} (layer {layer_index:?}); \
         expected a fraction in [0, 1]"
    )]
    InvalidAccuracy {
        step: usize,
        layer_index: Option<usize>,
        value: f64,
    },
    /// N = 0.
    #[error("the problem has no layers")]
    Empty,
}

/// Evaluations a strategy spends on N layers (step 0 not counted): N(N+1)/2 for greedy,
/// N + (N-1) for one-shot.
pub fn evals_total(strategy: Strategy, n: usize) -> usize {
    match strategy {
        Strategy::Greedy { .. } => n * (n + 1) / 2,
        Strategy::OneShot => (2 * n).saturating_sub(1),
    }
}

/// Run `strategy` on `problem`. Step 0 is evaluated first (not counted), then steps 1..=N.
/// Settings are checked before any evaluation; an evaluator error stops the search at once.
pub fn run<E: Evaluator>(
    strategy: Strategy,
    problem: &Problem,
    eval: &mut E,
    obs: &mut dyn Observer,
) -> Result<SearchResult, SearchError<E::Error>> {
    let n = problem.n_layers();
    if n == 0 {
        return Err(SearchError::Empty);
    }
    match strategy {
        Strategy::Greedy {
            beta: Beta::Fixed(b),
        } if !(b.is_finite() && b >= 0.0) => return Err(SearchError::BadBeta(b)),
        // Layer sizes alone can make automatic beta undefined: say so before spending N evals.
        Strategy::Greedy { beta: Beta::Auto } => {
            objective::check_auto_params(&problem.layer_params)
                .map_err(|source| SearchError::AutoBetaUndefined { source })?;
        }
        _ => {}
    }
    let mut s = Search::new(&problem.layer_params, evals_total(strategy, n));
    let top0 = s.eval_step0(eval)?;
    let beta = match strategy {
        Strategy::Greedy { beta } => greedy::greedy(&mut s, beta, top0, eval, obs)?,
        Strategy::OneShot => {
            one_shot::one_shot(&mut s, top0, eval, obs)?;
            0.0
        }
    };
    debug_assert_eq!(s.evals, evals_total(strategy, n));
    let (steps, candidates) = s.finish();
    Ok(SearchResult {
        strategy,
        beta,
        steps,
        candidates,
    })
}

#[cfg(test)]
mod tests;
