//! The search's [`Evaluator`] over a quantized model: the naive path (every configuration a
//! full forward pass over the search images) or prefix reuse (see `mpq_models::prefix`; the
//! default, bit-identical, candidates of a step evaluated in parallel).
use crate::manifest::RuntimeSection;
use candle_core::Result as CResult;
use mpq_data::Batch;
use mpq_models::prefix::PrefixEvaluator;
use mpq_models::qmodel::top1;
use mpq_models::QuantModel;
use mpq_quant::BitPair;
use mpq_search::{Count, Evaluator};
use std::ops::Range;

/// The model's evaluator: prefix reuse with a cache of `runtime.cache_mb` MiB, or with no
/// cache at all (`runtime.prefix_reuse = false`: every configuration a full forward pass, the
/// naive path); candidates of a chunk in parallel when `runtime.parallel` (and prefix reuse is
/// on: the naive path is the paper's, one evaluation after the other). Parts are the search
/// batches.
pub struct ModelEvaluator<'a> {
    pub prefix: PrefixEvaluator<'a>,
    parallel: bool,
}

impl<'a> ModelEvaluator<'a> {
    pub fn new(
        model: &'a QuantModel,
        batches: &'a [Batch],
        low: BitPair,
        high: BitPair,
        runtime: &RuntimeSection,
    ) -> CResult<Self> {
        let budget = if runtime.prefix_reuse {
            runtime.cache_mb << 20
        } else {
            0
        };
        let parallel = runtime.prefix_reuse && runtime.parallel;
        let mut prefix = PrefixEvaluator::new(model, batches, low, high, budget)?;
        prefix.set_parallel(parallel);
        Ok(ModelEvaluator { prefix, parallel })
    }

    fn counts_of(&mut self, sets: &[Vec<bool>], parts: Range<usize>) -> CResult<Vec<Count>> {
        Ok(self
            .prefix
            .correct_many(sets, parts)?
            .into_iter()
            .map(|(c, t)| Count {
                correct: c as u64,
                total: t as u64,
            })
            .collect())
    }
}

impl Evaluator for ModelEvaluator<'_> {
    type Error = candle_core::Error;
    fn accuracy(&mut self, low: &[bool]) -> CResult<f64> {
        Ok(self.accuracies(&[low.to_vec()])?[0])
    }
    fn accuracies(&mut self, sets: &[Vec<bool>]) -> CResult<Vec<f64>> {
        let n = self.prefix.n_batches();
        Ok(self
            .counts_of(sets, 0..n)?
            .into_iter()
            .map(|c| top1(c.correct as usize, c.total as usize))
            .collect())
    }
    fn batch_hint(&self) -> usize {
        if self.parallel {
            rayon::current_num_threads()
        } else {
            1
        }
    }
    fn commit(&mut self, low: &[bool]) -> CResult<()> {
        self.prefix.commit(low);
        Ok(())
    }
    fn n_parts(&self) -> usize {
        self.prefix.n_batches()
    }
    fn count(&mut self, low: &[bool], parts: Range<usize>) -> CResult<Option<Count>> {
        Ok(Some(self.counts_of(&[low.to_vec()], parts)?[0]))
    }
    fn counts(&mut self, sets: &[Vec<bool>], parts: Range<usize>) -> CResult<Option<Vec<Count>>> {
        Ok(Some(self.counts_of(sets, parts)?))
    }
}
