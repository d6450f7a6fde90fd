//! The bookkeeping every strategy shares: the ground set, the current set `S_k`,
//! `params(S_k)`, the cumulative evaluation count and work, the clock, the calls to the
//! evaluator (in chunks of its batch hint), and the recorded steps and candidates.
//!
//! It exists so that the counting rules of spec sections 5 and 7 (step 0 evaluated but not
//! counted, every other evaluation counted once, accuracies checked to be fractions, one result
//! per configuration) are written once and cannot drift between the strategies.
use crate::{Candidate, Count, Evaluator, Observer, Progress, SearchError, Step};
use std::ops::Range;
use std::time::Instant;

pub(crate) struct Search<'a> {
    /// M, the number of searchable layers.
    pub n: usize,
    /// The last step to take: M, or fewer with a step limit.
    pub last: usize,
    pub params: &'a [u64],
    /// The searchable layers, ascending.
    pub ground: Vec<usize>,
    /// `low[i]`: layer i is in the current set (length N).
    pub low: Vec<bool>,
    pub params_low: u64,
    /// Counted evaluator queries so far.
    pub evals: usize,
    /// Work so far in units of 1 / `work_unit` of a full evaluation.
    work_parts: u64,
    /// Parts per full evaluation in `work_parts` (1 unless screened greedy set it).
    work_unit: u64,
    /// Configurations per evaluator call (>= 1).
    pub batch: usize,
    evals_total: Option<usize>,
    work_max: f64,
    start: Instant,
    steps: Vec<Step>,
    candidates: Vec<Candidate>,
}

impl<'a> Search<'a> {
    pub fn new(
        params: &'a [u64],
        ground: Vec<usize>,
        last: usize,
        evals_total: Option<usize>,
        work_max: f64,
        batch: usize,
    ) -> Self {
        Search {
            n: ground.len(),
            last,
            params,
            low: vec![false; params.len()],
            ground,
            params_low: 0,
            evals: 0,
            work_parts: 0,
            work_unit: 1,
            batch: batch.max(1),
            evals_total,
            work_max,
            start: Instant::now(),
            steps: Vec::new(),
            candidates: Vec::new(),
        }
    }

    /// Count work in 1/`parts` of a full evaluation from now on (before any counted work).
    pub fn set_work_unit(&mut self, parts: usize) {
        debug_assert_eq!(self.work_parts, 0);
        self.work_unit = parts.max(1) as u64;
    }

    /// Work so far in full-evaluation equivalents.
    pub fn work(&self) -> f64 {
        self.work_parts as f64 / self.work_unit as f64
    }

    /// Accuracy of step 0 (the empty set, all layers at the baseline pair); not counted.
    pub fn eval_step0<E: Evaluator>(&mut self, eval: &mut E) -> Result<f64, SearchError<E::Error>> {
        debug_assert!(self.steps.is_empty() && self.low.iter().all(|&l| !l));
        let a = eval.accuracy(&self.low).map_err(SearchError::Eval)?;
        check_accuracy(a, 0, None)
    }

    /// Tell the evaluator that the current set is fixed (a prefix-cache hint).
    pub fn commit<E: Evaluator>(&self, eval: &mut E) -> Result<(), SearchError<E::Error>> {
        eval.commit(&self.low).map_err(SearchError::Eval)
    }

    /// The current set plus layer `j`.
    pub fn with(&self, j: usize) -> Vec<bool> {
        debug_assert!(!self.low[j], "layer {j} is already in the set");
        let mut l = self.low.clone();
        l[j] = true;
        l
    }

    /// Full accuracies of the given sets, one evaluator call (the caller chunks); counted, one
    /// each. `tags[i]` is the (step, layer) named in an error about set i.
    pub fn eval_sets<E: Evaluator>(
        &mut self,
        sets: &[Vec<bool>],
        tags: &[(usize, usize)],
        eval: &mut E,
    ) -> Result<Vec<f64>, SearchError<E::Error>> {
        debug_assert_eq!(sets.len(), tags.len());
        let r = eval.accuracies(sets);
        // Counted even when it fails, as a single evaluation always was.
        self.evals += sets.len();
        self.work_parts += sets.len() as u64 * self.work_unit;
        let accs = r.map_err(SearchError::Eval)?;
        if accs.len() != sets.len() {
            return Err(SearchError::BatchLength {
                expected: sets.len(),
                got: accs.len(),
            });
        }
        accs.into_iter()
            .zip(tags)
            .map(|(a, &(step, j))| check_accuracy(a, step, Some(j)))
            .collect()
    }

    /// Full accuracies of the current set plus each layer of `js` (one evaluator call).
    pub fn eval_with<E: Evaluator>(
        &mut self,
        step: usize,
        js: &[usize],
        eval: &mut E,
    ) -> Result<Vec<f64>, SearchError<E::Error>> {
        let sets: Vec<Vec<bool>> = js.iter().map(|&j| self.with(j)).collect();
        let tags: Vec<(usize, usize)> = js.iter().map(|&j| (step, j)).collect();
        self.eval_sets(&sets, &tags, eval)
    }

    /// Counts of the current set plus each layer of `js` on `parts` of `n_parts` (one evaluator
    /// call); counted one each, work `parts.len() / n_parts` each. Checked: one count per set,
    /// `correct <= total`, `total > 0`, and every total equal to `expect_total` when given.
    pub fn count_with<E: Evaluator>(
        &mut self,
        step: usize,
        js: &[usize],
        parts: Range<usize>,
        n_parts: usize,
        expect_total: Option<u64>,
        eval: &mut E,
    ) -> Result<Vec<Count>, SearchError<E::Error>> {
        debug_assert_eq!(self.work_unit, n_parts as u64);
        let sets: Vec<Vec<bool>> = js.iter().map(|&j| self.with(j)).collect();
        let r = eval.counts(&sets, parts.clone());
        self.evals += sets.len();
        self.work_parts += (sets.len() * parts.len()) as u64;
        let counts = r
            .map_err(SearchError::Eval)?
            .ok_or(SearchError::NoPartialCounts { n_parts })?;
        if counts.len() != sets.len() {
            return Err(SearchError::BatchLength {
                expected: sets.len(),
                got: counts.len(),
            });
        }
        let mut expect = expect_total;
        for (c, &j) in counts.iter().zip(js) {
            let why = if c.correct > c.total {
                Some("more correct answers than images")
            } else if c.total == 0 {
                Some("no images")
            } else if expect.is_some_and(|t| t != c.total) {
                Some("other configurations counted a different number of images there")
            } else {
                None
            };
            if let Some(why) = why {
                return Err(SearchError::BadCount {
                    step,
                    layer_index: j,
                    parts,
                    correct: c.correct,
                    total: c.total,
                    why,
                });
            }
            expect = Some(c.total);
        }
        Ok(counts)
    }

    /// `params(S + {j})` for the current set S.
    pub fn params_with(&self, j: usize) -> u64 {
        self.params_low + self.params[j]
    }

    /// The current set as sorted layer indices.
    pub fn current(&self) -> Vec<usize> {
        indices(&self.low)
    }

    pub fn progress(&self, step: usize, candidate: usize, n_candidates: usize) -> Progress {
        Progress {
            step,
            n_steps: self.n,
            candidate,
            n_candidates,
            evals_done: self.evals,
            evals_total: self.evals_total,
            work_done: self.work(),
            work_max: self.work_max,
        }
    }

    /// Record a candidate `S + {j}` for the current set S.
    pub fn push_candidate(
        &mut self,
        step: usize,
        j: usize,
        top1: f64,
        objective: Option<f64>,
        full: bool,
    ) {
        let mut low = self.current();
        let at = low.partition_point(|&i| i < j);
        low.insert(at, j);
        self.candidates.push(Candidate {
            step,
            layer_index: j,
            low,
            top1,
            objective,
            full,
        });
    }

    /// Record an arbitrary evaluated set (exhaustive search).
    pub fn push_candidate_set(&mut self, c: Candidate) {
        self.candidates.push(c);
    }

    /// Add `layer` to the set (unless step 0) and record the step.
    pub fn push_step(&mut self, layer: Option<usize>, top1: f64, objective: Option<f64>) {
        if let Some(j) = layer {
            debug_assert!(!self.low[j], "layer {j} chosen twice");
            self.low[j] = true;
            self.params_low += self.params[j];
        }
        self.record_step(layer, top1, objective);
    }

    /// Make `set` (sorted layer indices) the current set and record it as the next step with
    /// no layer index (exhaustive search, whose sets are not nested).
    pub fn push_step_set(&mut self, set: &[usize], top1: f64, objective: Option<f64>) {
        self.low.iter_mut().for_each(|l| *l = false);
        for &i in set {
            self.low[i] = true;
        }
        self.params_low = set.iter().map(|&i| self.params[i]).sum();
        self.record_step(None, top1, objective);
    }

    /// [`Search::push_step`] for a step whose evaluation was made together with `later` others
    /// (the rest of its chunk): its row counts the evaluations and work up to its own only, so
    /// a step's counts do not depend on the batch hint.
    pub fn push_step_in_chunk(
        &mut self,
        layer: usize,
        top1: f64,
        objective: Option<f64>,
        later: usize,
    ) {
        self.push_step(Some(layer), top1, objective);
        let last = self.steps.last_mut().expect("just pushed");
        last.evals -= later;
        last.work =
            (self.work_parts - later as u64 * self.work_unit) as f64 / self.work_unit as f64;
    }

    fn record_step(&mut self, layer: Option<usize>, top1: f64, objective: Option<f64>) {
        self.steps.push(Step {
            step: self.steps.len(),
            layer_index: layer,
            low: self.current(),
            top1,
            objective,
            params_low: self.params_low,
            evals: self.evals,
            work: self.work(),
            elapsed_s: self.start.elapsed().as_secs_f64(),
        });
    }

    /// The recorded step 0, to fill in its objective once an automatic beta is known.
    pub fn step0_mut(&mut self) -> &mut Step {
        &mut self.steps[0]
    }

    /// Notify the observer of an already recorded step.
    pub fn notify_step(&self, k: usize, obs: &mut dyn Observer) {
        obs.on_step(&self.steps[k]);
    }

    pub fn finish(self) -> (Vec<usize>, Vec<Step>, Vec<Candidate>) {
        debug_assert_eq!(self.steps.len(), self.last + 1);
        (self.ground, self.steps, self.candidates)
    }
}

/// The indices set in `low`, ascending.
pub(crate) fn indices(low: &[bool]) -> Vec<usize> {
    (0..low.len()).filter(|&i| low[i]).collect()
}

pub(crate) fn check_accuracy<E>(
    a: f64,
    step: usize,
    layer_index: Option<usize>,
) -> Result<f64, SearchError<E>> {
    if (0.0..=1.0).contains(&a) {
        // Normalise -0.0 so that it cannot sort apart from 0.0 anywhere downstream.
        Ok(a + 0.0)
    } else {
        Err(SearchError::InvalidAccuracy {
            step,
            layer_index,
            value: a,
        })
    }
}
