//! Prefix reuse: evaluating many configurations that differ from one base configuration only
//! from some layer on, without recomputing what comes before.
//!
//! Every search evaluates configurations that share most of their layers with the current set
//! `S` (greedy: `S + {j}` for every remaining `j`). Layer `i`'s input depends only on the layers
//! before it, so when a configuration first differs from the base at layer `d`, every layer
//! before `d` computes exactly what it computed under the base. This module keeps, for the
//! search images and the base configuration, the input of every stage of the graph (the cut
//! points where the whole state is one tensor, see [`crate::arch::Stage`]) and the output of
//! every layer. A configuration is then evaluated from the stage that holds `d`: layers of that
//! stage before `d` are replayed from the cache, everything from `d` on is computed. The
//! arithmetic of every computed layer is the one of a full forward pass on the same batch, so
//! results are bit-identical to the naive path (tested).
//!
//! Memory: the cache costs about one set of activations per search image; batches beyond
//! `budget_bytes` are not cached and are evaluated in full (recomputed). Committing a new base
//! is lazy: the cache is rebuilt, from the first changed layer on, at the next evaluation, so
//! replaying a journal of commits costs nothing.
//!
//! Configurations can be evaluated in parallel ([`PrefixEvaluator::correct_many`]): the model
//! and the cache are only read.
use crate::arch::{ActLayout, LayerRunner, Post};
use crate::qmodel::{correct_in, hits_in, top1, QuantModel};
use candle_core::{Result, Tensor};
use mpq_data::Batch;
use mpq_quant::BitPair;
use rayon::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};

/// What one batch keeps under the base configuration.
struct BatchCache {
    /// Input of every stage (`stage_in[0]` is the images).
    stage_in: Vec<Tensor>,
    /// Output of every layer (before the graph's activation).
    layer_out: Vec<Tensor>,
    /// Whether each image is classified correctly under the base configuration.
    hits: Vec<bool>,
    /// How many are.
    correct: usize,
}

impl BatchCache {
    fn set_hits(&mut self, hits: Vec<bool>) {
        self.correct = hits.iter().filter(|&&h| h).count();
        self.hits = hits;
    }
}

impl BatchCache {
    fn bytes(&self) -> usize {
        let t = |x: &Tensor| x.elem_count() * x.dtype().size_in_bytes();
        self.stage_in.iter().skip(1).map(t).sum::<usize>()
            + self.layer_out.iter().map(t).sum::<usize>()
    }
}

/// Counters of the work done, for benchmarks.
#[derive(Debug, Default)]
pub struct Work {
    /// Multiply-accumulates of the layers computed (replayed layers are free).
    pub macs: AtomicU64,
    /// Layer evaluations (one layer on one batch).
    pub layer_runs: AtomicU64,
}

impl Work {
    pub fn macs(&self) -> u64 {
        self.macs.load(Ordering::Relaxed)
    }
}

/// Evaluates configurations `low` (layer `i` at `low_pair` where `low[i]`, else at
/// `high_pair`) on fixed batches, reusing the computation of a base configuration.
pub struct PrefixEvaluator<'a> {
    model: &'a QuantModel,
    batches: &'a [Batch],
    low_pair: BitPair,
    high_pair: BitPair,
    stage_of: Vec<usize>,
    /// MACs of each layer per image.
    layer_macs: Vec<u64>,
    /// The configuration `cache` holds.
    base: Vec<bool>,
    /// A committed base not yet built (see [`PrefixEvaluator::commit`]).
    pending: Option<Vec<bool>>,
    /// Per batch; `None` where the memory budget ran out (that batch is evaluated in full).
    cache: Vec<Option<BatchCache>>,
    budget_bytes: usize,
    parallel: bool,
    work: Work,
}

/// Replays layers before `from` from a cache and computes the others at `config`, recording
/// the computed outputs when `record` is given.
struct Replay<'a> {
    model: &'a QuantModel,
    config: &'a [BitPair],
    from: usize,
    cached: &'a [Tensor],
    record: Option<&'a mut Vec<Tensor>>,
    macs: &'a [u64],
    work: &'a Work,
    images: u64,
}

impl LayerRunner for Replay<'_> {
    fn layer(&mut self, i: usize, x: &Tensor) -> Result<Tensor> {
        self.layer_post(i, x, Post::NONE)
    }
    /// The cache holds what this returns: the layer's output with the graph's work after it
    /// (the same at every evaluation, since it is fixed by the layer's place in the graph).
    fn layer_post(&mut self, i: usize, x: &Tensor, post: Post<'_>) -> Result<Tensor> {
        if i < self.from {
            return Ok(self.cached[i].clone());
        }
        self.work
            .macs
            .fetch_add(self.macs[i] * self.images, Ordering::Relaxed);
        self.work.layer_runs.fetch_add(1, Ordering::Relaxed);
        let y = self
            .model
            .quantized_layer_post(i, self.config[i], x, post)?;
        if let Some(r) = self.record.as_deref_mut() {
            r[i] = y.clone();
        }
        Ok(y)
    }
    fn layout(&self) -> ActLayout {
        self.model.layout()
    }
}

/// The first index where `a` and `b` differ.
fn first_difference(a: &[bool], b: &[bool]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x != y)
}

impl<'a> PrefixEvaluator<'a> {
    /// An evaluator whose base is every layer at `high_pair` (built at the first evaluation).
    /// Both pairs must be prepared on `model`. `budget_bytes` bounds the cache.
    pub fn new(
        model: &'a QuantModel,
        batches: &'a [Batch],
        low_pair: BitPair,
        high_pair: BitPair,
        budget_bytes: usize,
    ) -> Result<Self> {
        let n = model.n_layers();
        model.check_prepared(low_pair)?;
        model.check_prepared(high_pair)?;
        Ok(PrefixEvaluator {
            model,
            batches,
            low_pair,
            high_pair,
            stage_of: model.arch.stage_of_layer(),
            layer_macs: match batches.first() {
                Some(b) => model.layer_macs(&b.images)?,
                None => vec![0; n],
            },
            base: vec![false; n],
            pending: Some(vec![false; n]),
            cache: Vec::new(),
            budget_bytes,
            parallel: true,
            work: Work::default(),
        })
    }

    /// The work done so far.
    pub fn work(&self) -> &Work {
        &self.work
    }

    /// Number of batches (the parts a count can be restricted to).
    pub fn n_batches(&self) -> usize {
        self.batches.len()
    }

    /// Batches whose activations are cached (the others are recomputed in full).
    pub fn cached_batches(&self) -> usize {
        self.cache.iter().filter(|c| c.is_some()).count()
    }

    fn config(&self, low: &[bool]) -> Vec<BitPair> {
        low.iter()
            .map(|&l| if l { self.low_pair } else { self.high_pair })
            .collect()
    }

    /// Make `low` the base configuration: later evaluations of configurations close to it
    /// (it plus a layer) start at the first layer where they differ. Lazy: the cache is rebuilt
    /// at the next evaluation.
    pub fn commit(&mut self, low: &[bool]) {
        assert_eq!(low.len(), self.base.len());
        self.pending = Some(low.to_vec());
    }

    /// Build the pending base: from the first layer where it differs from the cached one.
    fn settle(&mut self) -> Result<()> {
        let Some(new) = self.pending.take() else {
            return Ok(());
        };
        let first_build = self.cache.is_empty();
        // With no budget nothing is cached: every evaluation is a full forward pass.
        let mut over_budget = self.budget_bytes == 0;
        let from = if first_build {
            0
        } else {
            match first_difference(&self.base, &new) {
                Some(d) => d,
                None => return Ok(()),
            }
        };
        let config = self.config(&new);
        let s0 = self.stage_of[from];
        let mut used = 0usize;
        for (b, batch) in self.batches.iter().enumerate() {
            if first_build {
                // Cache batches while the budget lasts (batches are alike in size, so once
                // one does not fit, none of the later ones is built).
                if over_budget {
                    self.cache.push(None);
                    continue;
                }
                let n = self.model.n_layers();
                let input = self.model.input(&batch.images)?;
                let mut c = BatchCache {
                    stage_in: vec![input.clone()],
                    layer_out: vec![input.clone(); n],
                    hits: vec![],
                    correct: 0,
                };
                let logits = self.run_recording(&config, 0, 0, &input, &mut c, batch)?;
                c.set_hits(hits_in(&logits, &batch.labels)?);
                let size = c.bytes();
                if used + size > self.budget_bytes {
                    self.cache.push(None);
                    over_budget = true;
                    continue;
                }
                used += size;
                self.cache.push(Some(c));
            } else if let Some(mut c) = self.cache[b].take() {
                let x = c.stage_in[s0].clone();
                let logits = self.run_recording(&config, from, s0, &x, &mut c, batch)?;
                c.set_hits(hits_in(&logits, &batch.labels)?);
                self.cache[b] = Some(c);
            }
        }
        self.base = new;
        Ok(())
    }

    /// Run stages `s0..` from `x` at `config`, replaying layers before `from` and recording
    /// stage inputs and layer outputs into `c`.
    fn run_recording(
        &self,
        config: &[BitPair],
        from: usize,
        s0: usize,
        x: &Tensor,
        c: &mut BatchCache,
        batch: &Batch,
    ) -> Result<Tensor> {
        let arch = &self.model.arch;
        let mut outs = std::mem::take(&mut c.layer_out);
        let mut x = x.clone();
        for s in s0..arch.stages.len() {
            if s > s0 {
                if c.stage_in.len() <= s {
                    c.stage_in.push(x.clone());
                } else {
                    c.stage_in[s] = x.clone();
                }
            }
            let cached = outs.clone();
            let mut r = Replay {
                model: self.model,
                config,
                from,
                cached: &cached,
                record: Some(&mut outs),
                macs: &self.layer_macs,
                work: &self.work,
                images: batch.labels.len() as u64,
            };
            x = arch.run_stage(s, &x, &mut r)?;
        }
        c.layer_out = outs;
        Ok(x)
    }

    /// Correct answers of configuration `low` on batch `b`.
    fn correct_on(&self, low: &[bool], config: &[BitPair], b: usize) -> Result<usize> {
        if let Some(c) = &self.cache[b] {
            if first_difference(&self.base, low).is_none() {
                return Ok(c.correct);
            }
        }
        correct_in(&self.logits_on(low, config, b)?, &self.batches[b].labels)
    }

    /// Logits of configuration `low` on batch `b`, from the cache where it can.
    fn logits_on(&self, low: &[bool], config: &[BitPair], b: usize) -> Result<Tensor> {
        let batch = &self.batches[b];
        let images = batch.labels.len() as u64;
        match &self.cache[b] {
            Some(c) => {
                // The base itself: replay everything but the last layer.
                let d = first_difference(&self.base, low).unwrap_or(low.len() - 1);
                let s = self.stage_of[d];
                let mut r = Replay {
                    model: self.model,
                    config,
                    from: d,
                    cached: &c.layer_out,
                    record: None,
                    macs: &self.layer_macs,
                    work: &self.work,
                    images,
                };
                self.model.arch.forward_from(s, &c.stage_in[s], &mut r)
            }
            None => {
                let mut r = Replay {
                    model: self.model,
                    config,
                    from: 0,
                    cached: &[],
                    record: None,
                    macs: &self.layer_macs,
                    work: &self.work,
                    images,
                };
                self.model
                    .arch
                    .forward(&self.model.input(&batch.images)?, &mut r)
            }
        }
    }

    /// Correct answers and images of configuration `low` on batches `parts`.
    pub fn count(&mut self, low: &[bool], parts: std::ops::Range<usize>) -> Result<(usize, usize)> {
        self.settle()?;
        let config = self.config(low);
        let mut correct = 0;
        let mut total = 0;
        for b in parts {
            correct += self.correct_on(low, &config, b)?;
            total += self.batches[b].labels.len();
        }
        Ok((correct, total))
    }

    /// Whether each image of every batch is classified correctly under configuration `low`,
    /// in batch order (what [`PrefixEvaluator::count`] counts). Scoring a sequence of nested
    /// configurations (a search's steps) by committing each before asking for it computes
    /// each from its first changed layer on.
    pub fn hits(&mut self, low: &[bool]) -> Result<Vec<bool>> {
        self.settle()?;
        let config = self.config(low);
        let mut out = Vec::new();
        for (b, batch) in self.batches.iter().enumerate() {
            match &self.cache[b] {
                Some(c) if first_difference(&self.base, low).is_none() => {
                    out.extend_from_slice(&c.hits)
                }
                _ => out.extend(hits_in(&self.logits_on(low, &config, b)?, &batch.labels)?),
            }
        }
        Ok(out)
    }

    /// Top-1 of configuration `low` on all batches (equal to `QuantModel::accuracy` of it).
    pub fn accuracy(&mut self, low: &[bool]) -> Result<f64> {
        let (c, t) = self.count(low, 0..self.batches.len())?;
        Ok(top1(c, t))
    }

    /// Top-1 of several configurations, evaluated in parallel (rayon), in order.
    pub fn accuracies(&mut self, sets: &[Vec<bool>]) -> Result<Vec<f64>> {
        Ok(self
            .correct_many(sets, 0..self.batches.len())?
            .into_iter()
            .map(|(c, t)| top1(c, t))
            .collect())
    }

    /// `(correct, images)` of several configurations on batches `parts`, in parallel unless
    /// [`PrefixEvaluator::set_parallel`] turned it off.
    pub fn correct_many(
        &mut self,
        sets: &[Vec<bool>],
        parts: std::ops::Range<usize>,
    ) -> Result<Vec<(usize, usize)>> {
        self.settle()?;
        let this = &*self;
        let one = |low: &Vec<bool>| -> Result<(usize, usize)> {
            let config = this.config(low);
            let mut correct = 0;
            let mut total = 0;
            for b in parts.clone() {
                correct += this.correct_on(low, &config, b)?;
                total += this.batches[b].labels.len();
            }
            Ok((correct, total))
        };
        if self.parallel {
            sets.par_iter().map(one).collect()
        } else {
            sets.iter().map(one).collect()
        }
    }

    /// Evaluate the configurations of one [`PrefixEvaluator::correct_many`] call in parallel
    /// (the default) or one after the other.
    pub fn set_parallel(&mut self, parallel: bool) {
        self.parallel = parallel;
    }

    /// Logits of `low` on batch `b`, for tests.
    #[cfg(test)]
    fn logits_for(&mut self, low: &[bool], b: usize) -> Result<Tensor> {
        self.settle()?;
        self.logits_on(low, &self.config(low), b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qmodel::Precision;
    use crate::test_util::{images, max_diff, random_model};
    use crate::ArchName;
    use mpq_data::Rng;

    const LOW: BitPair = BitPair { w: 4, a: 4 };

    fn mask(n: usize, set: &[usize]) -> Vec<bool> {
        let mut m = vec![false; n];
        for &i in set {
            m[i] = true;
        }
        m
    }

    /// Whatever the base and the budget, every configuration's logits are bit-identical to a
    /// full forward pass at that configuration, and so are the counts.
    #[test]
    fn prefix_results_equal_full_forward_passes() {
        for arch in [ArchName::ResnetTiny, ArchName::MobilenetTiny] {
            let mut m = random_model(arch);
            let calib = images(32);
            m.prepare(&[BitPair::W8A8, LOW], &calib).unwrap();
            let n = m.n_layers();
            let batches = images(48); // 3 batches of 16
            let per_batch = {
                let mut e =
                    PrefixEvaluator::new(&m, &batches, LOW, BitPair::W8A8, usize::MAX).unwrap();
                e.accuracy(&vec![false; n]).unwrap();
                e.cache[0].as_ref().unwrap().bytes()
            };
            let mut r = Rng::new(5);
            // No cache, one batch cached, all cached.
            for budget in [0, per_batch, usize::MAX] {
                let mut e = PrefixEvaluator::new(&m, &batches, LOW, BitPair::W8A8, budget).unwrap();
                let mut base: Vec<usize> = vec![];
                for step in 0..4 {
                    for _ in 0..3 {
                        let j = r.below(n);
                        let mut set = base.clone();
                        set.push(j);
                        let low = mask(n, &set);
                        let config: Vec<BitPair> = low
                            .iter()
                            .map(|&l| if l { LOW } else { BitPair::W8A8 })
                            .collect();
                        for (b, batch) in batches.iter().enumerate() {
                            let want = m.logits_with(&batch.images, &config).unwrap();
                            let got = e.logits_for(&low, b).unwrap();
                            assert_eq!(
                                max_diff(&want, &got),
                                0.0,
                                "{arch} budget {budget} step {step} +{j} batch {b}"
                            );
                        }
                        let correct: usize = batches
                            .iter()
                            .map(|b| {
                                let l = m.logits_with(&b.images, &config).unwrap();
                                correct_in(&l, &b.labels).unwrap()
                            })
                            .sum();
                        let want = top1(correct, 48);
                        assert_eq!(e.accuracy(&low).unwrap(), want);
                        assert_eq!(
                            e.accuracies(std::slice::from_ref(&low)).unwrap(),
                            vec![want]
                        );
                    }
                    base.push(r.below(n));
                    e.commit(&mask(n, &base));
                }
                let cached = e.cached_batches();
                match budget {
                    0 => assert_eq!(cached, 0),
                    usize::MAX => assert_eq!(cached, 3),
                    _ => assert_eq!(cached, 1),
                }
            }
        }
    }

    /// Scoring a search's steps (each committed, then its per-image results asked for) gives
    /// the per-image results of full forward passes, with or without a cache, and with a
    /// cache computes each step from its first changed layer on.
    #[test]
    fn hits_of_committed_steps_equal_full_forward_passes() {
        for arch in [ArchName::ResnetTiny, ArchName::MobilenetTiny] {
            let mut m = random_model(arch);
            m.prepare(&[BitPair::W8A8, LOW], &images(16)).unwrap();
            let n = m.n_layers();
            let batches = images(40); // 3 batches: 16, 16, 8
            let steps: Vec<Vec<bool>> = [vec![], vec![n - 2], vec![n - 2, 3], vec![n - 2, 3, 0]]
                .iter()
                .map(|s| mask(n, s))
                .collect();
            let wants: Vec<Vec<bool>> = steps
                .iter()
                .map(|low| {
                    m.set_low(low, LOW, BitPair::W8A8);
                    m.hits(&batches, Precision::Quantized).unwrap()
                })
                .collect();
            let mut runs = vec![];
            for budget in [0, usize::MAX] {
                let mut e = PrefixEvaluator::new(&m, &batches, LOW, BitPair::W8A8, budget).unwrap();
                let mut counting = 0;
                for (low, want) in steps.iter().zip(&wants) {
                    e.commit(low);
                    let got = e.hits(low).unwrap();
                    assert_eq!(&got, want, "{arch} budget {budget}");
                    assert_eq!(got.len(), 40);
                    // The count agrees; its own layer forwards are left out of the tally.
                    let before = e.work().layer_runs.load(Ordering::Relaxed);
                    let (c, t) = e.count(low, 0..3).unwrap();
                    assert_eq!((c, t), (got.iter().filter(|&&h| h).count(), 40));
                    counting += e.work().layer_runs.load(Ordering::Relaxed) - before;
                }
                runs.push(e.work().layer_runs.load(Ordering::Relaxed) - counting);
            }
            // Without a cache every step is a full pass on every batch; with one, the steps
            // after the first start at their changed layer.
            assert_eq!(runs[0], (steps.len() * 3 * n) as u64, "{arch}");
            assert!(runs[1] < runs[0], "{arch}: {runs:?}");
        }
    }

    /// Reuse does less work: a configuration differing from the base only at the classifier
    /// costs the classifier alone.
    #[test]
    fn a_late_change_computes_only_the_suffix() {
        let mut m = random_model(ArchName::ResnetTiny);
        let calib = images(16);
        m.prepare(&[BitPair::W8A8, LOW], &calib).unwrap();
        let n = m.n_layers();
        let batches = images(16);
        let mut e = PrefixEvaluator::new(&m, &batches, LOW, BitPair::W8A8, usize::MAX).unwrap();
        e.accuracy(&vec![false; n]).unwrap();
        let built = e.work().layer_runs.load(Ordering::Relaxed);
        assert_eq!(built, n as u64, "building the base runs every layer once");
        e.accuracy(&mask(n, &[n - 1])).unwrap();
        assert_eq!(e.work().layer_runs.load(Ordering::Relaxed), built + 1);
        let macs = m.layer_macs(&batches[0].images).unwrap();
        assert_eq!(
            e.work().macs(),
            16 * (macs.iter().sum::<u64>() + macs[n - 1])
        );
    }
}
