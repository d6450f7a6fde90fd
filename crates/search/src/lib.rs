//! Search strategies for mixed-precision post-training quantization, as pinned down by
//! `shared/spec/quantization.md` sections 3, 4, 5 and 7: the paper's greedy search (Tsuji et al.
//! 2021, Algorithm 1, with a fixed or an automatic beta) and the one-shot ordering by step-1
//! sensitivities (Wu et al. 2020, as the paper extends it), plus strategies that put them in
//! context: lazy (Minoux's accelerated) greedy, screened greedy (candidates screened on part of
//! the images), exhaustive search (the optimum per set size, on a few layers) and a random order
//! (the floor any search must beat); and no search at all, every layer at the low pair at
//! once (`uniform`: a post-training baseline's single configuration).
//!
//! This crate exists so that the search logic (which sets are evaluated, in which order, how
//! ties break, what is recorded, how many evaluations it costs) lives apart from the expensive
//! part. It is pure: no candle, no polars, no files. A strategy sees the network only through an
//! [`Evaluator`] (the top-1 accuracy of a configuration, optionally in batches, on parts of the
//! images, with a hint of the current set for prefix caching), so it can be tested against
//! hand-written set functions in microseconds, and the runner plugs a quantized network in.
//!
//! Layout: [`mod@objective`] holds eq. 2 and the automatic beta; `greedy`, `one_shot`, `lazy`,
//! `screened`, `exhaustive`, `random` and `uniform` hold the strategies; `state` holds the
//! bookkeeping they share (the current set, the cumulative evaluation count and work, the
//! recorded steps and candidates, the calls to the evaluator).

#![warn(missing_docs)]

mod exhaustive;
mod greedy;
mod lazy;
pub mod objective;
mod one_shot;
mod random;
mod screened;
mod state;
mod uniform;

pub use objective::{auto_beta, objective, AutoBetaError};

use state::Search;
use std::ops::Range;

/// Correct answers and images counted on some parts of the search images (see
/// [`Evaluator::count`]). Counts of disjoint parts add up exactly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Count {
    /// Images whose top-1 prediction is right.
    pub correct: u64,
    /// Images counted.
    pub total: u64,
}

impl Count {
    /// Top-1 as `correct as f64 / max(total, 1) as f64`: the one formula an evaluator's
    /// [`Evaluator::accuracy`] must agree with bit for bit when it implements
    /// [`Evaluator::count`].
    pub fn top1(&self) -> f64 {
        self.correct as f64 / self.total.max(1) as f64
    }
}

impl std::ops::Add for Count {
    type Output = Count;
    fn add(self, o: Count) -> Count {
        Count {
            correct: self.correct + o.correct,
            total: self.total + o.total,
        }
    }
}

/// Accuracy of a configuration. `low[i] == true` means layer i is at the lower bit pair; the
/// others are at the baseline (W8A8). `low.len()` is always the number of layers N (also when
/// the search runs on a reduced ground set: the other layers are then `false` throughout).
///
/// Only [`accuracy`](Evaluator::accuracy) is required; every other method has a default, so an
/// implementor that writes `accuracy` alone works with every strategy (screened greedy then
/// degrades to plain greedy, see [`n_parts`](Evaluator::n_parts)).
pub trait Evaluator {
    /// Why an evaluation failed; it stops the search at once ([`SearchError::Eval`]).
    type Error: std::error::Error + Send + Sync + 'static;

    /// Top-1 accuracy as a fraction in [0, 1] on all search images. Anything else (NaN, a
    /// percentage) stops the search with [`SearchError::InvalidAccuracy`].
    fn accuracy(&mut self, low: &[bool]) -> Result<f64, Self::Error>;

    /// Top-1 of several configurations, in order; the result must have one entry per set and
    /// each must equal [`accuracy`](Evaluator::accuracy) of that set (implementations may
    /// evaluate them in parallel). Default: `accuracy` of each in turn, stopping at the first
    /// error. Strategies pass at most [`batch_hint`](Evaluator::batch_hint) sets per call.
    fn accuracies(&mut self, sets: &[Vec<bool>]) -> Result<Vec<f64>, Self::Error> {
        sets.iter().map(|s| self.accuracy(s)).collect()
    }

    /// How many configurations the evaluator would like per [`accuracies`](Evaluator::accuracies)
    /// or [`counts`](Evaluator::counts) call (e.g. its parallel workers). Default 1; 0 is read
    /// as 1. Strategies pass candidates in chunks of this size (the last chunk of a step may be
    /// smaller) and report progress after each chunk. It is read once per search.
    fn batch_hint(&self) -> usize {
        1
    }

    /// A hint: the search has fixed `low` as its current set and most of the queries that follow
    /// agree with it on a long prefix of layers (greedy-like strategies: `low` plus one layer),
    /// so a prefix cache can rebuild itself from the first layer that changed since the last
    /// commit. It must not change any result. Called with `S_0` (the empty set) right after step
    /// 0 and with every later current set that queries build on, before those queries; never
    /// with a set that no query follows. Exhaustive search commits its outer layers instead (see
    /// [`Strategy::Exhaustive`]). Default: nothing.
    fn commit(&mut self, _low: &[bool]) -> Result<(), Self::Error> {
        Ok(())
    }

    /// Number of parts (batches) the search images are split into for
    /// [`count`](Evaluator::count); part order is fixed. Default 1, meaning the evaluator cannot
    /// evaluate a subset of the images; screened greedy then runs as plain greedy. It is read
    /// once per search.
    fn n_parts(&self) -> usize {
        1
    }

    /// Correct answers and images on parts `parts` (a non-empty sub-range of `0..n_parts()`).
    /// An evaluator that returns `Some` must be exact: the counts of disjoint ranges add up to
    /// the counts of their union, and `count(low, 0..n_parts()).top1()` equals
    /// `accuracy(low)` bit for bit (see [`Count::top1`]); a range always counts the same images.
    /// Default `Ok(None)`: partial evaluation unsupported. Only screened greedy calls it, and only
    /// when `n_parts() >= 2`; `None` then stops the search with
    /// [`SearchError::NoPartialCounts`].
    fn count(&mut self, _low: &[bool], _parts: Range<usize>) -> Result<Option<Count>, Self::Error> {
        Ok(None)
    }

    /// [`count`](Evaluator::count) of several configurations on the same parts, in order (one
    /// entry per set; may run in parallel). Default: `count` of each in turn; `None` as soon as
    /// one is `None`.
    fn counts(
        &mut self,
        sets: &[Vec<bool>],
        parts: Range<usize>,
    ) -> Result<Option<Vec<Count>>, Self::Error> {
        let mut out = Vec::with_capacity(sets.len());
        for s in sets {
            match self.count(s, parts.clone())? {
                Some(c) => out.push(c),
                None => return Ok(None),
            }
        }
        Ok(Some(out))
    }
}

/// The exponent of eq. 2.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Beta {
    /// A given beta, finite and >= 0. 0 means accuracy alone.
    Fixed(f64),
    /// Paper sec. 4.1: computed from step 1's accuracies (`acc({j})` for every searchable layer)
    /// so that the min/max ratios of both factors of eq. 2 are equal (see [`auto_beta`]); it
    /// already applies to step 1's choice.
    Auto,
}

/// The default limit of [`Strategy::Exhaustive`]: 20 layers, 2^20 - 1 evaluations.
pub const EXHAUSTIVE_MAX_LAYERS: usize = 20;

/// Which search to run. M below is the number of searchable layers (N unless
/// [`Problem::searchable`] restricts it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Strategy {
    /// Algorithm 1: M(M+1)/2 evaluations.
    Greedy {
        /// The exponent of eq. 2.
        beta: Beta,
    },
    /// Order layers once by their single-layer accuracy: 2M-1 evaluations. Beta does not enter.
    OneShot,
    /// Minoux's accelerated greedy: earlier marginal values bound later ones, so each step
    /// re-evaluates only the top of the priority order. Equal to greedy (same sets, same step
    /// rows) when the objective is submodular; at most M(M+1)/2 evaluations, usually far fewer.
    LazyGreedy {
        /// The exponent of eq. 2.
        beta: Beta,
    },
    /// Greedy whose candidates are first measured on the first parts of the images (about
    /// `fraction` of them, at least one part); only those within `z` standard errors of the best
    /// are finished on the remaining parts, and the step chooses among the finished ones. Needs
    /// [`Evaluator::n_parts`] >= 2, else it is plain greedy.
    ScreenedGreedy {
        /// The exponent of eq. 2.
        beta: Beta,
        /// The share of the parts to screen on, in (0, 1]: `round(fraction * n_parts)` parts,
        /// at least 1.
        fraction: f64,
        /// The margin in standard errors, >= 0 (infinity keeps every candidate).
        z: f64,
    },
    /// For each k = 1..=M, the set of size k with the largest objective (ties: lexicographically
    /// smallest sorted index list), from all 2^M - 1 non-empty subsets. Refused before any
    /// evaluation when M > `max_layers` (see [`EXHAUSTIVE_MAX_LAYERS`]; never more than 63).
    /// Steps are not nested: their `layer_index` is `None`, their `low` is the set.
    ///
    /// Enumeration: binary counting over the searchable layers with the smallest layer index as
    /// the most significant bit, so consecutive sets share a long prefix in layer order. The
    /// last `d` searchable layers (d = ceil(log2(batch_hint)), at least 1, at most M) are the
    /// inner part: for each configuration of the outer layers, in counting order, the search
    /// calls [`Evaluator::commit`] once with that outer configuration (inner layers at the
    /// baseline), then evaluates its 2^d inner configurations (the empty set excluded) in
    /// chunks of `batch_hint`. So commit is called 2^(M-d) times.
    ///
    /// Memory grows as 2^M too: every set's accuracy and candidate row are kept.
    Exhaustive {
        /// The exponent of eq. 2 (automatic: from the singletons' accuracies).
        beta: Beta,
        /// The most searchable layers it accepts.
        max_layers: usize,
    },
    /// A random order of the searchable layers from a seeded generator (splitmix64,
    /// Fisher-Yates); `S_k` = its first k: M evaluations. Accuracy alone (beta 0).
    Random {
        /// The generator's seed; the same seed gives the same order.
        seed: u64,
    },
    /// No search: step 1 moves every searchable layer to the low pair at once (one
    /// evaluation; steps 0 and 1 only, step 1 without a layer index, as exhaustive's). The
    /// uniform configuration of a post-training baseline. Accuracy alone (beta 0); refuses a
    /// step limit.
    Uniform,
}

impl Strategy {
    /// The strategy's name (the vocabulary's).
    pub fn name(&self) -> mpq_vocab::StrategyName {
        use mpq_vocab::StrategyName as N;
        match self {
            Strategy::Greedy { .. } => N::Greedy,
            Strategy::OneShot => N::OneShot,
            Strategy::LazyGreedy { .. } => N::LazyGreedy,
            Strategy::ScreenedGreedy { .. } => N::ScreenedGreedy,
            Strategy::Exhaustive { .. } => N::Exhaustive,
            Strategy::Random { .. } => N::Random,
            Strategy::Uniform => N::Uniform,
        }
    }

    /// Exhaustive search with the default limit ([`EXHAUSTIVE_MAX_LAYERS`]).
    pub fn exhaustive(beta: Beta) -> Strategy {
        Strategy::Exhaustive {
            beta,
            max_layers: EXHAUSTIVE_MAX_LAYERS,
        }
    }

    /// The beta setting, for strategies that use eq. 2 (`None` for one-shot and random, which
    /// use accuracy alone).
    pub fn beta(&self) -> Option<Beta> {
        match *self {
            Strategy::Greedy { beta }
            | Strategy::LazyGreedy { beta }
            | Strategy::ScreenedGreedy { beta, .. }
            | Strategy::Exhaustive { beta, .. } => Some(beta),
            Strategy::OneShot | Strategy::Random { .. } | Strategy::Uniform => None,
        }
    }
}

/// The layers: `layer_params[i]` = n_i, the weight element count of layer i (bias excluded).
/// N = its length; the index is the tie-breaker everywhere.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    /// n_i for every quantizable layer, in forward order.
    pub layer_params: Vec<u64>,
    /// The ground set: the layers the search may move to the lower pair, as layer indices
    /// (any order, no duplicates, each < N). `None` = all N layers. The other layers stay at the
    /// baseline pair throughout; strategies then run on these M layers exactly as on an
    /// M-layer network (steps 0..=M, greedy M(M+1)/2 evaluations, automatic beta from these
    /// layers' step-1 accuracies).
    pub searchable: Option<Vec<usize>>,
    /// Stop after K steps, K >= 1 (a 0 counts as 1; `None`: after step M, every searchable
    /// layer moved). The sequential strategies (greedy, one-shot, lazy, screened, random)
    /// then record steps 0..=K and spend only what those steps need; exhaustive search refuses
    /// a limit (its steps are all found at once).
    pub max_steps: Option<usize>,
}

impl Problem {
    /// All `layer_params.len()` layers searchable.
    pub fn new(layer_params: Vec<u64>) -> Problem {
        Problem {
            layer_params,
            searchable: None,
            max_steps: None,
        }
    }

    /// N, the number of quantizable layers.
    pub fn n_layers(&self) -> usize {
        self.layer_params.len()
    }

    /// The searchable layers, ascending (checked: in range, no duplicates, not empty).
    pub fn ground_set<E>(&self) -> Result<Vec<usize>, SearchError<E>> {
        let n = self.n_layers();
        let ground = match &self.searchable {
            None => (0..n).collect(),
            Some(list) => {
                let mut seen = vec![false; n];
                for &i in list {
                    if i >= n {
                        return Err(SearchError::LayerOutOfRange {
                            layer_index: i,
                            n_layers: n,
                        });
                    }
                    if seen[i] {
                        return Err(SearchError::DuplicateLayer { layer_index: i });
                    }
                    seen[i] = true;
                }
                (0..n).filter(|&i| seen[i]).collect::<Vec<_>>()
            }
        };
        if ground.is_empty() {
            return Err(SearchError::Empty);
        }
        Ok(ground)
    }
}

/// One step of a search: `S_k` and its accuracy. Step 0 is the empty set (all layers at the
/// baseline pair).
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// k, 0..=M.
    pub step: usize,
    /// The layer added at this step (`None` at step 0, and at every step of exhaustive search,
    /// whose sets are not nested).
    pub layer_index: Option<usize>,
    /// `S_k` itself, as sorted layer indices.
    pub low: Vec<usize>,
    /// `acc(S_k)` on all search images.
    pub top1: f64,
    /// `f(S_k)` with the run's beta (accuracy alone for one-shot and random); `None` where it is
    /// undefined (step 0 with beta > 0, since ln 0 is undefined).
    pub objective: Option<f64>,
    /// `params(S_k)`, the sum of n_i over S_k.
    pub params_low: u64,
    /// Evaluator queries spent so far, this step's included (step 0's evaluation is not
    /// counted; a partial evaluation counts 1, so screened greedy's finished candidates count
    /// 2). Exhaustive decides every step after all its evaluations: 2^M - 1 from step 1 on.
    pub evals: usize,
    /// Cumulative cost in full-evaluation equivalents: a full evaluation counts 1, a partial one
    /// on p of n parts p/n. Equal to `evals` for every strategy but screened greedy.
    pub work: f64,
    /// Seconds since the search started (step 0's evaluation included).
    pub elapsed_s: f64,
}

/// One evaluated configuration. For the nested strategies it is `S_{step-1} + {layer_index}`;
/// for exhaustive search it is any non-empty set, with `step` its size and `layer_index` its
/// largest layer index.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    /// The step it was evaluated for (exhaustive: the set's size).
    pub step: usize,
    /// The layer it adds to `S_{step-1}` (exhaustive: the set's largest index).
    pub layer_index: usize,
    /// The evaluated set, sorted layer indices.
    pub low: Vec<usize>,
    /// Its top-1: on all images when `full`, else on the screening parts only.
    pub top1: f64,
    /// Its eq. 2 value with the run's beta (accuracy alone for one-shot and random), from `top1`.
    pub objective: Option<f64>,
    /// Whether `top1` was measured on all search images (false only for the candidates screened
    /// greedy dropped after its partial evaluation).
    pub full: bool,
}

/// Everything a search records (spec sec. 5, the part a search knows).
#[derive(Clone, Debug, PartialEq)]
pub struct SearchResult {
    /// The strategy as given.
    pub strategy: Strategy,
    /// The beta actually used: the fixed one, the resolved automatic one, 0 for one-shot and
    /// random.
    pub beta: f64,
    /// The searchable layers, ascending (all layers unless [`Problem::searchable`] says
    /// otherwise); M = its length.
    pub searchable: Vec<usize>,
    /// Screened greedy: `(p, n)`, the candidates were screened on parts `0..p` of `n`. `None`
    /// for the other strategies and when screened greedy ran as plain greedy (`p == n`).
    pub screen_parts: Option<(usize, usize)>,
    /// Steps 0..=M, M+1 rows.
    pub steps: Vec<Step>,
    /// Every evaluation of steps 1..=M in the order made (greedy: M(M+1)/2 rows in ascending
    /// index order per step; one-shot: the M step-1 rows, then one per step 2..=M; lazy greedy:
    /// only the evaluations made, in the order made; screened greedy: one row per candidate in
    /// ascending index order, `full` or not; exhaustive: 2^M - 1 rows in enumeration order;
    /// random: one per step).
    pub candidates: Vec<Candidate>,
}

impl SearchResult {
    /// The layers in the order they were moved to the lower pair (steps 1..=M; empty for
    /// exhaustive search, whose sets are not nested).
    pub fn order(&self) -> Vec<usize> {
        self.steps.iter().filter_map(|s| s.layer_index).collect()
    }

    /// Evaluations of the whole search (the last step's `evals`).
    pub fn evals(&self) -> usize {
        self.steps.last().map_or(0, |s| s.evals)
    }

    /// Work of the whole search in full-evaluation equivalents (the last step's `work`).
    pub fn work(&self) -> f64 {
        self.steps.last().map_or(0.0, |s| s.work)
    }
}

/// Where a search is, for progress displays. Sent after each chunk of evaluations.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    /// The step being decided (exhaustive search decides all at once: it reports M).
    pub step: usize,
    /// M.
    pub n_steps: usize,
    /// Evaluator queries made so far in this step (1-based; for screened greedy, partial and
    /// finishing queries both count, so it may exceed `n_candidates`).
    pub candidate: usize,
    /// The candidates of this step: M - k + 1 for the greedy-like strategies (lazy greedy
    /// usually evaluates fewer), 1 for one-shot's later steps and random, 2^M - 1 for exhaustive.
    pub n_candidates: usize,
    /// Queries so far (= `Step::evals`).
    pub evals_done: usize,
    /// Queries of the whole search when known up front ([`evals_total`]).
    pub evals_total: Option<usize>,
    /// Work so far, in full-evaluation equivalents (= `Step::work`).
    pub work_done: f64,
    /// An upper bound on the work of the whole search ([`work_max`]); exact for the strategies
    /// with a known `evals_total`. A progress bar can use `work_done / work_max`.
    pub work_max: f64,
}

/// Hooks for progress bars and logs. `on_eval` follows every chunk of counted evaluations
/// (every evaluation when [`Evaluator::batch_hint`] is 1); `on_step` receives each step's final
/// row, in step order. With [`Beta::Auto`], step 0's objective depends on the beta that step
/// 1's evaluations resolve, so its `on_step` comes only then (just before step 1's; exhaustive
/// search reports every step at the end).
pub trait Observer {
    /// After a chunk of evaluations.
    fn on_eval(&mut self, _p: &Progress) {}
    /// A step's final row.
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
    /// Screened greedy's `fraction` is not in (0, 1] (checked before any evaluation).
    #[error("screened greedy's fraction must be in (0, 1], got {0}")]
    BadFraction(f64),
    /// Screened greedy's `z` is negative or NaN (checked before any evaluation; infinity keeps
    /// every candidate).
    #[error("screened greedy's z must be >= 0, got {0}")]
    BadZ(f64),
    /// Automatic beta cannot be computed (spec sec. 7: e.g. a step-1 accuracy of 0).
    #[error("automatic beta is undefined: {source}")]
    AutoBetaUndefined {
        /// Why (layer indices are the network's, also on a reduced ground set).
        source: AutoBetaError,
    },
    /// The evaluator returned something that is not a fraction in [0, 1].
    #[error(
        "the evaluator returned top-1 {value} at step {step} (layer {layer_index:?}); \
         expected a fraction in [0, 1]"
    )]
    InvalidAccuracy {
        /// The step it was evaluated for.
        step: usize,
        /// The candidate's layer (`None` at step 0).
        layer_index: Option<usize>,
        /// What the evaluator returned.
        value: f64,
    },
    /// [`Evaluator::accuracies`] or [`Evaluator::counts`] returned the wrong number of results.
    #[error("the evaluator returned {got} results for {expected} configurations")]
    BatchLength {
        /// Configurations passed.
        expected: usize,
        /// Results returned.
        got: usize,
    },
    /// The evaluator reports `n_parts() >= 2` but [`Evaluator::count`] returned `None`.
    #[error("the evaluator splits its images into {n_parts} parts but cannot count a part")]
    NoPartialCounts {
        /// What `n_parts()` returned.
        n_parts: usize,
    },
    /// A partial count that cannot be right: more correct answers than images, no images, or a
    /// different number of images than other configurations had on the same parts.
    #[error(
        "the evaluator counted {correct} correct of {total} images on parts {parts:?} at step \
         {step} (layer {layer_index}): {why}"
    )]
    BadCount {
        /// The step it was evaluated for.
        step: usize,
        /// The candidate's layer.
        layer_index: usize,
        /// The parts counted.
        parts: Range<usize>,
        /// Correct answers returned.
        correct: u64,
        /// Images returned.
        total: u64,
        /// What is wrong with it.
        why: &'static str,
    },
    /// Exhaustive search on more searchable layers than its limit (checked before any
    /// evaluation).
    #[error(
        "exhaustive search over {n} layers would cost 2^{n} - 1 evaluations; its limit is {max} \
         layers (restrict Problem::searchable or raise max_layers)"
    )]
    TooManyLayers {
        /// M, the searchable layers.
        n: usize,
        /// The limit (`max_layers`, capped at 63).
        max: usize,
    },
    /// A searchable layer index >= N.
    #[error("searchable layer {layer_index} does not exist (the network has {n_layers} layers)")]
    LayerOutOfRange {
        /// The index given.
        layer_index: usize,
        /// N.
        n_layers: usize,
    },
    /// A searchable layer listed twice.
    #[error("searchable layer {layer_index} is listed twice")]
    DuplicateLayer {
        /// The index given twice.
        layer_index: usize,
    },
    /// A step limit given to a strategy that finds all its steps at once (exhaustive) or has a
    /// single step (uniform).
    #[error("{0} finds every step at once: a step limit (max_steps) does not apply")]
    MaxStepsUnsupported(mpq_vocab::StrategyName),
    /// N = 0, or an empty searchable list.
    #[error("the problem has no (searchable) layers")]
    Empty,
}

/// Evaluator queries a strategy spends on M searchable layers (step 0 not counted), when known
/// up front: M(M+1)/2 for greedy, 2M-1 for one-shot, 2^M - 1 for exhaustive (`None` when that
/// overflows), M for random, 1 for uniform; `None` for lazy greedy and screened greedy, which
/// depend on the values (see [`work_max`] for a bound).
pub fn evals_total(strategy: Strategy, m: usize) -> Option<usize> {
    match strategy {
        Strategy::Greedy { .. } => Some(m * (m + 1) / 2),
        Strategy::OneShot => Some((2 * m).saturating_sub(1)),
        Strategy::LazyGreedy { .. } | Strategy::ScreenedGreedy { .. } => None,
        Strategy::Exhaustive { .. } => 1usize.checked_shl(m as u32).map(|x| x - 1),
        Strategy::Random { .. } => Some(m),
        Strategy::Uniform => Some(1),
    }
}

/// An upper bound on a strategy's work on M searchable layers, in full-evaluation
/// equivalents; exact where [`evals_total`] is known. Lazy and screened greedy never cost more
/// than greedy, M(M+1)/2 (a screened candidate costs at most one full evaluation in all).
pub fn work_max(strategy: Strategy, m: usize) -> f64 {
    match strategy {
        Strategy::Greedy { .. } | Strategy::LazyGreedy { .. } | Strategy::ScreenedGreedy { .. } => {
            (m * (m + 1) / 2) as f64
        }
        Strategy::OneShot => (2 * m).saturating_sub(1) as f64,
        Strategy::Exhaustive { .. } => 2f64.powi(m as i32) - 1.0,
        Strategy::Random { .. } => m as f64,
        Strategy::Uniform => 1.0,
    }
}

/// [`evals_total`] of a search stopped after step `k` < M: greedy spends M + (M-1) + ... +
/// (M-k+1), one-shot M + k - 1, random k.
fn evals_limited(strategy: Strategy, m: usize, k: usize) -> Option<usize> {
    match strategy {
        Strategy::Greedy { .. } => Some(k * m - k * k.saturating_sub(1) / 2),
        Strategy::OneShot => Some(m + k.saturating_sub(1)),
        Strategy::Random { .. } => Some(k),
        Strategy::LazyGreedy { .. }
        | Strategy::ScreenedGreedy { .. }
        | Strategy::Exhaustive { .. }
        | Strategy::Uniform => None,
    }
}

/// [`work_max`] of a search stopped after step `k` < M.
fn work_limited(strategy: Strategy, m: usize, k: usize) -> f64 {
    match strategy {
        Strategy::Greedy { .. } | Strategy::LazyGreedy { .. } | Strategy::ScreenedGreedy { .. } => {
            (k * m - k * k.saturating_sub(1) / 2) as f64
        }
        _ => evals_limited(strategy, m, k).map_or_else(|| work_max(strategy, m), |e| e as f64),
    }
}

/// Run `strategy` on `problem`. Settings are checked before any evaluation; then step 0 is
/// evaluated (not counted), then steps 1..=M. An evaluator error stops the search at once.
pub fn run<E: Evaluator>(
    strategy: Strategy,
    problem: &Problem,
    eval: &mut E,
    obs: &mut dyn Observer,
) -> Result<SearchResult, SearchError<E::Error>> {
    if problem.n_layers() == 0 {
        return Err(SearchError::Empty);
    }
    let ground = problem.ground_set()?;
    let m = ground.len();
    check_settings(strategy, problem, &ground)?;
    let last = match strategy {
        Strategy::Uniform => 1,
        _ => problem.max_steps.map_or(m, |k| k.clamp(1, m)),
    };
    let (total, work) = if last == m || strategy == Strategy::Uniform {
        (evals_total(strategy, m), work_max(strategy, m))
    } else {
        (
            evals_limited(strategy, m, last),
            work_limited(strategy, m, last),
        )
    };
    let mut s = Search::new(
        &problem.layer_params,
        ground,
        last,
        total,
        work,
        eval.batch_hint(),
    );
    let top0 = s.eval_step0(eval)?;
    let mut screen_parts = None;
    let beta = match strategy {
        Strategy::Greedy { beta } => greedy::greedy(&mut s, beta, top0, eval, obs)?,
        Strategy::OneShot => {
            one_shot::one_shot(&mut s, top0, eval, obs)?;
            0.0
        }
        Strategy::LazyGreedy { beta } => lazy::lazy_greedy(&mut s, beta, top0, eval, obs)?,
        Strategy::ScreenedGreedy { beta, fraction, z } => {
            let (b, parts) = screened::screened_greedy(&mut s, beta, fraction, z, top0, eval, obs)?;
            screen_parts = parts;
            b
        }
        Strategy::Exhaustive { beta, .. } => exhaustive::exhaustive(&mut s, beta, top0, eval, obs)?,
        Strategy::Random { seed } => {
            random::random(&mut s, seed, top0, eval, obs)?;
            0.0
        }
        Strategy::Uniform => {
            uniform::uniform(&mut s, top0, eval, obs)?;
            0.0
        }
    };
    if let Some(t) = total {
        debug_assert_eq!(s.evals, t);
    }
    let (searchable, steps, candidates) = s.finish();
    Ok(SearchResult {
        strategy,
        beta,
        searchable,
        screen_parts,
        steps,
        candidates,
    })
}

/// Everything about the settings that can be known before any evaluation.
fn check_settings<E>(
    strategy: Strategy,
    problem: &Problem,
    ground: &[usize],
) -> Result<(), SearchError<E>> {
    match strategy.beta() {
        Some(Beta::Fixed(b)) if !(b.is_finite() && b >= 0.0) => {
            return Err(SearchError::BadBeta(b));
        }
        // Layer sizes alone can make automatic beta undefined: say so before spending M evals.
        Some(Beta::Auto) => {
            let params: Vec<u64> = ground.iter().map(|&i| problem.layer_params[i]).collect();
            objective::check_auto_params(&params).map_err(|e| auto_beta_error(e, ground))?;
        }
        _ => {}
    }
    match strategy {
        Strategy::ScreenedGreedy { fraction, z, .. } => {
            if !(fraction > 0.0 && fraction <= 1.0) {
                return Err(SearchError::BadFraction(fraction));
            }
            if z.is_nan() || z < 0.0 {
                return Err(SearchError::BadZ(z));
            }
        }
        Strategy::Uniform if problem.max_steps.is_some() => {
            return Err(SearchError::MaxStepsUnsupported(strategy.name()));
        }
        Strategy::Exhaustive { max_layers, .. } => {
            if problem.max_steps.is_some() {
                return Err(SearchError::MaxStepsUnsupported(strategy.name()));
            }
            let max = max_layers.min(63);
            if ground.len() > max {
                return Err(SearchError::TooManyLayers {
                    n: ground.len(),
                    max,
                });
            }
        }
        _ => {}
    }
    Ok(())
}

/// An automatic-beta error computed on the ground set's positions, with its layer index
/// turned back into the network's.
pub(crate) fn auto_beta_error<E>(e: AutoBetaError, ground: &[usize]) -> SearchError<E> {
    let source = match e {
        AutoBetaError::ZeroAccuracy { layer_index } => AutoBetaError::ZeroAccuracy {
            layer_index: ground[layer_index],
        },
        AutoBetaError::InvalidAccuracy { layer_index, value } => AutoBetaError::InvalidAccuracy {
            layer_index: ground[layer_index],
            value,
        },
        AutoBetaError::TooFewWeights { layer_index, n } => AutoBetaError::TooFewWeights {
            layer_index: ground[layer_index],
            n,
        },
        other => other,
    };
    SearchError::AutoBetaUndefined { source }
}

#[cfg(test)]
mod tests;
