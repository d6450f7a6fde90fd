//! Evaluators and checks shared by the tests of the newer strategies: a set function with a
//! batch hint that logs every call (accuracies in chunks, commits), an image-level evaluator
//! that can count parts of its images, and the invariants every nested search satisfies.
use super::super::*;
use super::set;
use std::convert::Infallible;
use std::ops::Range;

/// One call to an evaluator, with sets as sorted layer indices.
#[derive(Clone, Debug, PartialEq)]
pub enum Call {
    Acc(Vec<usize>),
    Accs(Vec<Vec<usize>>),
    Commit(Vec<usize>),
    Counts(Vec<Vec<usize>>, Range<usize>),
}

/// A set function with a batch hint; `accuracies` is overridden so the log shows the chunks.
pub struct Logged<F: FnMut(&[bool]) -> f64> {
    pub f: F,
    pub batch: usize,
    pub calls: Vec<Call>,
}

pub fn logged<F: FnMut(&[bool]) -> f64>(batch: usize, f: F) -> Logged<F> {
    Logged {
        f,
        batch,
        calls: vec![],
    }
}

impl<F: FnMut(&[bool]) -> f64> Evaluator for Logged<F> {
    type Error = Infallible;
    fn accuracy(&mut self, low: &[bool]) -> Result<f64, Infallible> {
        self.calls.push(Call::Acc(set(low)));
        Ok((self.f)(low))
    }
    fn accuracies(&mut self, sets: &[Vec<bool>]) -> Result<Vec<f64>, Infallible> {
        self.calls
            .push(Call::Accs(sets.iter().map(|s| set(s)).collect()));
        Ok(sets.iter().map(|s| (self.f)(s)).collect())
    }
    fn batch_hint(&self) -> usize {
        self.batch
    }
    fn commit(&mut self, low: &[bool]) -> Result<(), Infallible> {
        self.calls.push(Call::Commit(set(low)));
        Ok(())
    }
}

/// Every configuration passed to the evaluator, in order (step 0 included).
pub fn evaluated(calls: &[Call]) -> Vec<Vec<usize>> {
    let mut out = vec![];
    for c in calls {
        match c {
            Call::Acc(s) => out.push(s.clone()),
            Call::Accs(v) | Call::Counts(v, _) => out.extend(v.iter().cloned()),
            Call::Commit(_) => {}
        }
    }
    out
}

/// The sets committed, in order.
pub fn commits(calls: &[Call]) -> Vec<Vec<usize>> {
    calls
        .iter()
        .filter_map(|c| match c {
            Call::Commit(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

/// The sizes of the `accuracies` calls, in order.
pub fn chunk_sizes(calls: &[Call]) -> Vec<usize> {
    calls
        .iter()
        .filter_map(|c| match c {
            Call::Accs(v) => Some(v.len()),
            _ => None,
        })
        .collect()
}

/// Images 0..n_images split into `n_parts` consecutive parts (part p holds images
/// `p*n/np .. (p+1)*n/np`, so parts may differ in size by one); image i is right under `low` iff
/// `right(i, low)`. `counting == false` leaves `count` at its default (unsupported).
pub struct Images<R: Fn(usize, &[bool]) -> bool> {
    pub right: R,
    pub n_images: usize,
    pub n_parts: usize,
    pub batch: usize,
    pub counting: bool,
    pub calls: Vec<Call>,
}

pub fn images<R: Fn(usize, &[bool]) -> bool>(
    n_images: usize,
    n_parts: usize,
    right: R,
) -> Images<R> {
    Images {
        right,
        n_images,
        n_parts,
        batch: 1,
        counting: true,
        calls: vec![],
    }
}

impl<R: Fn(usize, &[bool]) -> bool> Images<R> {
    fn part_range(&self, parts: Range<usize>) -> Range<usize> {
        parts.start * self.n_images / self.n_parts..parts.end * self.n_images / self.n_parts
    }

    pub fn raw_count(&self, low: &[bool], parts: Range<usize>) -> Count {
        let imgs = self.part_range(parts);
        Count {
            correct: imgs.clone().filter(|&i| (self.right)(i, low)).count() as u64,
            total: imgs.len() as u64,
        }
    }

    /// The full accuracy, written independently of `Count::top1` (same formula as the runner's
    /// `QuantModel::accuracy`).
    pub fn full(&self, low: &[bool]) -> f64 {
        let correct = (0..self.n_images).filter(|&i| (self.right)(i, low)).count();
        correct as f64 / self.n_images.max(1) as f64
    }

    pub fn count_calls(&self) -> usize {
        self.calls
            .iter()
            .filter(|c| matches!(c, Call::Counts(..)))
            .count()
    }
}

impl<R: Fn(usize, &[bool]) -> bool> Evaluator for Images<R> {
    type Error = Infallible;
    fn accuracy(&mut self, low: &[bool]) -> Result<f64, Infallible> {
        self.calls.push(Call::Acc(set(low)));
        Ok(self.full(low))
    }
    fn accuracies(&mut self, sets: &[Vec<bool>]) -> Result<Vec<f64>, Infallible> {
        self.calls
            .push(Call::Accs(sets.iter().map(|s| set(s)).collect()));
        Ok(sets.iter().map(|s| self.full(s)).collect())
    }
    fn batch_hint(&self) -> usize {
        self.batch
    }
    fn commit(&mut self, low: &[bool]) -> Result<(), Infallible> {
        self.calls.push(Call::Commit(set(low)));
        Ok(())
    }
    fn n_parts(&self) -> usize {
        self.n_parts
    }
    fn count(&mut self, low: &[bool], parts: Range<usize>) -> Result<Option<Count>, Infallible> {
        Ok(self.counting.then(|| self.raw_count(low, parts)))
    }
    fn counts(
        &mut self,
        sets: &[Vec<bool>],
        parts: Range<usize>,
    ) -> Result<Option<Vec<Count>>, Infallible> {
        if !self.counting {
            return Ok(None);
        }
        self.calls.push(Call::Counts(
            sets.iter().map(|s| set(s)).collect(),
            parts.clone(),
        ));
        Ok(Some(
            sets.iter()
                .map(|s| self.raw_count(s, parts.clone()))
                .collect(),
        ))
    }
}

/// A result with its clock readings zeroed, to compare two runs exactly.
pub fn timeless(r: &SearchResult) -> SearchResult {
    let mut r = r.clone();
    for s in &mut r.steps {
        s.elapsed_s = 0.0;
    }
    r
}

/// A step as [`choices`] compares it: layer, set, top-1 bits, objective bits, params.
pub type Choice = (Option<usize>, Vec<usize>, u64, Option<u64>, u64);

/// What two strategies must share to "choose exactly the same": per step, the layer, the set,
/// the top-1 and the objective (bit for bit) and the params.
pub fn choices(r: &SearchResult) -> Vec<Choice> {
    r.steps
        .iter()
        .map(|s| {
            (
                s.layer_index,
                s.low.clone(),
                s.top1.to_bits(),
                s.objective.map(f64::to_bits),
                s.params_low,
            )
        })
        .collect()
}

/// `(step, layer, top1, objective, full)` of every candidate row.
pub fn rows(r: &SearchResult) -> Vec<(usize, usize, u64, Option<u64>, bool)> {
    r.candidates
        .iter()
        .map(|c| {
            (
                c.step,
                c.layer_index,
                c.top1.to_bits(),
                c.objective.map(f64::to_bits),
                c.full,
            )
        })
        .collect()
}

/// The invariants of every nested strategy (all but exhaustive) on problem `p`: steps 0..=M,
/// each searchable layer chosen once, `low` nested and equal to the chosen layers so far,
/// params cumulative, step rows equal to their chosen candidate's row, every candidate the
/// previous set plus its layer, evaluations non-decreasing, work <= evals.
pub fn check_nested(r: &SearchResult, p: &Problem) {
    let ground = p.ground_set::<Infallible>().unwrap();
    assert_eq!(r.searchable, ground);
    let m = ground.len();
    assert_eq!(r.steps.len(), m + 1);
    let mut order = r.order();
    assert_eq!(order.len(), m);
    order.sort();
    assert_eq!(order, ground, "each searchable layer chosen once");
    let s0 = &r.steps[0];
    assert_eq!((s0.layer_index, s0.evals, s0.params_low), (None, 0, 0));
    assert!(s0.low.is_empty() && s0.work == 0.0);
    let mut cur: Vec<usize> = vec![];
    let mut params = 0;
    for (k, st) in r.steps.iter().enumerate().skip(1) {
        assert_eq!(st.step, k);
        let j = st.layer_index.unwrap();
        cur.push(j);
        cur.sort();
        params += p.layer_params[j];
        assert_eq!(st.low, cur);
        assert_eq!(st.params_low, params);
        assert!(st.evals >= r.steps[k - 1].evals && st.work >= r.steps[k - 1].work);
        assert!(st.work <= st.evals as f64 + 1e-9);
        assert!(st.elapsed_s >= r.steps[k - 1].elapsed_s);
        let c: Vec<&Candidate> = r
            .candidates
            .iter()
            .filter(|c| c.step == k && Some(c.layer_index) == st.layer_index)
            .collect();
        assert_eq!(c.len(), 1, "step {k}: one row for the chosen layer");
        assert!(c[0].full);
        assert_eq!(c[0].low, st.low);
        assert_eq!(c[0].top1, st.top1);
        assert_eq!(c[0].objective, st.objective);
    }
    for c in &r.candidates {
        let mut want = r.steps[c.step - 1].low.clone();
        assert!(!want.contains(&c.layer_index));
        want.push(c.layer_index);
        want.sort();
        assert_eq!(c.low, want);
    }
    if let Some(t) = evals_total(r.strategy, m) {
        assert_eq!(r.evals(), t);
        assert_eq!(r.work(), t as f64);
    }
    assert!(r.work() <= work_max(r.strategy, m));
}
