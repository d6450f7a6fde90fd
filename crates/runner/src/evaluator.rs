//! The search's [`Evaluator`] over a quantized model: the naive path (every configuration a
//! full forward pass over the search images) or prefix reuse (see `mpq_models::prefix`; the
//! default, bit-identical, candidates of a step evaluated in parallel), and the journal that
//! makes a run resumable (every evaluation appended to disk before it is used; an evaluation
//! already in the journal is answered from it).
use crate::journal::{Entry, Journal, Key};
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

/// Why a journaled evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum JournaledError<E: std::error::Error + Send + Sync + 'static> {
    #[error(transparent)]
    Eval(E),
    #[error("{0:#}")]
    Journal(anyhow::Error),
    /// A signal asked the run to stop (`crate::interrupt`); the journal has every evaluation.
    #[error(transparent)]
    Interrupted(crate::interrupt::Interrupted),
}

/// An evaluator whose evaluations go through a journal (see the module documentation).
pub struct Journaled<'j, E> {
    pub inner: E,
    journal: &'j mut Journal,
    /// Evaluations answered from the journal.
    pub hits: usize,
}

impl<'j, E: Evaluator> Journaled<'j, E> {
    pub fn new(inner: E, journal: &'j mut Journal) -> Self {
        Journaled {
            inner,
            journal,
            hits: 0,
        }
    }

    /// The journaled answers for `keys`, evaluating the missing ones with `eval` in one call
    /// and journaling them; `None` (nothing journaled) when `eval` cannot answer.
    fn through<T: Copy>(
        &mut self,
        keys: Vec<Key>,
        from_entry: impl Fn(Entry) -> Option<T>,
        to_entry: impl Fn(T) -> Entry,
        eval: impl FnOnce(&mut E, &[usize]) -> Result<Option<Vec<T>>, E::Error>,
    ) -> Result<Option<Vec<T>>, JournaledError<E::Error>> {
        let mut out: Vec<Option<T>> = keys
            .iter()
            .map(|k| self.journal.get(k).and_then(&from_entry))
            .collect();
        let missing: Vec<usize> = (0..keys.len()).filter(|&i| out[i].is_none()).collect();
        self.hits += keys.len() - missing.len();
        if !missing.is_empty() {
            if let Some(stop) = crate::interrupt::requested() {
                return Err(JournaledError::Interrupted(stop));
            }
            let Some(values) = eval(&mut self.inner, &missing).map_err(JournaledError::Eval)?
            else {
                return Ok(None);
            };
            for (&i, v) in missing.iter().zip(values) {
                self.journal
                    .put(keys[i].clone(), to_entry(v))
                    .map_err(JournaledError::Journal)?;
                out[i] = Some(v);
            }
        }
        Ok(Some(out.into_iter().map(|v| v.expect("filled")).collect()))
    }
}

impl<E: Evaluator> Evaluator for Journaled<'_, E> {
    type Error = JournaledError<E::Error>;
    fn accuracy(&mut self, low: &[bool]) -> Result<f64, Self::Error> {
        Ok(self.accuracies(&[low.to_vec()])?[0])
    }
    fn accuracies(&mut self, sets: &[Vec<bool>]) -> Result<Vec<f64>, Self::Error> {
        let values = self.through(
            sets.iter().map(|s| Key::accuracy(s)).collect(),
            |e| match e {
                Entry::Accuracy(a) => Some(a),
                Entry::Count { .. } => None,
            },
            Entry::Accuracy,
            |inner, idx| {
                let sub: Vec<Vec<bool>> = idx.iter().map(|&i| sets[i].clone()).collect();
                inner.accuracies(&sub).map(Some)
            },
        )?;
        Ok(values.expect("accuracies always answer"))
    }
    fn batch_hint(&self) -> usize {
        self.inner.batch_hint()
    }
    fn commit(&mut self, low: &[bool]) -> Result<(), Self::Error> {
        self.inner.commit(low).map_err(JournaledError::Eval)
    }
    fn n_parts(&self) -> usize {
        self.inner.n_parts()
    }
    fn count(&mut self, low: &[bool], parts: Range<usize>) -> Result<Option<Count>, Self::Error> {
        Ok(self.counts(&[low.to_vec()], parts)?.map(|v| v[0]))
    }
    fn counts(
        &mut self,
        sets: &[Vec<bool>],
        parts: Range<usize>,
    ) -> Result<Option<Vec<Count>>, Self::Error> {
        self.through(
            sets.iter().map(|s| Key::count(s, parts.clone())).collect(),
            |e| match e {
                Entry::Count { correct, total } => Some(Count { correct, total }),
                Entry::Accuracy(_) => None,
            },
            |c: Count| Entry::Count {
                correct: c.correct,
                total: c.total,
            },
            |inner, idx| {
                let sub: Vec<Vec<bool>> = idx.iter().map(|&i| sets[i].clone()).collect();
                inner.counts(&sub, parts.clone())
            },
        )
    }
}
