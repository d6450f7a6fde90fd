//! The bookkeeping both strategies share: the current set `S_k`, `params(S_k)`, the cumulative
//! evaluation count, the clock, and the recorded steps and candidates.
//!
//! It exists so that the counting rules of spec sections 5 and 7 (step 0 evaluated but not
//! counted, every other evaluation counted once, accuracies checked to be fractions) are written
//! once and cannot drift between the strategies.
use crate::{Candidate, Evaluator, Observer, Progress, SearchError, Step};
use std::time::Instant;

pub(crate) struct Search<'a> {
    pub n: usize,
    pub params: &'a [u64],
    /// `low[i]`: layer i is in the current set.
    pub low: Vec<bool>,
    pub params_low: u64,
    /// Counted evaluations so far.
    pub evals: usize,
    evals_total: usize,
    start: Instant,
    steps: Vec<Step>,
    candidates: Vec<Candidate>,
}

impl<'a> Search<'a> {
    pub fn new(params: &'a [u64], evals_total: usize) -> Self {
        Search {
            n: params.len(),
            params,
            low: vec![false; params.len()],
            params_low: 0,
            evals: 0,
            evals_total,
            start: Instant::now(),
            steps: Vec::with_capacity(params.len() + 1),
            candidates: Vec::new(),
        }
    }

    /// Accuracy of step 0 (the empty set, all layers at the baseline pair); not counted.
    pub fn eval_step0<E: Evaluator>(&mut self, eval: &mut E) -> Result<f64, SearchError<E::Error>> {
        debug_assert!(self.steps.is_empty() && self.low.iter().all(|&l| !l));
        let a = eval.accuracy(&self.low).map_err(SearchError::Eval)?;
        check_accuracy(a, 0, None)
    }

    /// Accuracy of the current set plus layer `j` (the set itself is left unchanged); counted.
    pub fn eval_with<E: Evaluator>(
        &mut self,
        step: usize,
        j: usize,
        eval: &mut E,
    ) -> Result<f64, SearchError<E::Error>> {
        debug_assert!(!self.low[j], "layer {j} is already in the set");
        self.low[j] = true;
        let r = eval.accuracy(&self.low);
        self.low[j] = false;
        self.evals += 1;
        check_accuracy(r.map_err(SearchError::Eval)?, step, Some(j))
    }

    /// `params(S + {j})` for the current set S.
    pub fn params_with(&self, j: usize) -> u64 {
        self.params_low + self.params[j]
    }

    pub fn progress(&self, step: usize, candidate: usize, n_candidates: usize) -> Progress {
        Progress {
            step,
            n_steps: self.n,
            candidate,
            n_candidates,
            evals_done: self.evals,
            evals_total: self.evals_total,
        }
    }

    pub fn push_candidate(&mut self, c: Candidate) {
        self.candidates.push(c);
    }

    /// Add `layer` to the set (unless step 0) and record the step.
    pub fn push_step(&mut self, layer: Option<usize>, top1: f64, objective: Option<f64>) {
        if let Some(j) = layer {
            debug_assert!(!self.low[j], "layer {j} chosen twice");
            self.low[j] = true;
            self.params_low += self.params[j];
        }
        self.steps.push(Step {
            step: self.steps.len(),
            layer_index: layer,
            top1,
            objective,
            params_low: self.params_low,
            evals: self.evals,
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

    pub fn finish(self) -> (Vec<Step>, Vec<Candidate>) {
        debug_assert_eq!(self.steps.len(), self.n + 1);
        (self.steps, self.candidates)
    }
}

fn check_accuracy<E>(
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
