//! Clipping searches on the float-step grid ([`crate::uniform`]): the range `[t * min, t * max]`
//! whose grid minimises the `Lp` norm of the quantization error, over the candidates
//! `t = 1, 1 - 1/K, ..., 1/K`. With `p = 2` this is MMSE quantization (Choukroun et al. 2019):
//! per output channel for weights ([`mmse_rows`]), per layer for activations
//! ([`ClipSearch`], streaming over the calibration set). LAPQ (Nahshan et al. 2019) starts from
//! the same search for several `p` at once ([`ClipSearch::with_norms`]).
//!
//! `t = 1` (min-max) is always a candidate, so the chosen grid's error is never above
//! min-max's; ties keep the larger range.
use crate::uniform::Uniform;
use rayon::prelude::*;

/// The clipping candidates `t_k = (K - k) / K`, `k = 0..K` (the first is min-max).
pub fn clip_ratios(points: u32) -> Vec<f32> {
    assert!(points >= 1, "at least one clipping candidate");
    (0..points)
        .map(|k| ((points - k) as f64 / points as f64) as f32)
        .collect()
}

/// The candidate grids for values in `[min, max]` at `bits` (`None` entries dropped: a range
/// too narrow for a normal step).
fn candidates(min: f32, max: f32, bits: u8, ratios: &[f32]) -> Vec<Uniform> {
    ratios
        .iter()
        .filter_map(|&t| Uniform::from_range(t * min, t * max, bits))
        .collect()
}

/// Streaming search of one tensor's clipping over its values, for one or several `Lp` norms.
#[derive(Clone, Debug)]
pub struct ClipSearch {
    candidates: Vec<Uniform>,
    norms: Vec<f64>,
    /// `sums[k][j]`: error of candidate `k` in norm `j`.
    sums: Vec<Vec<f64>>,
}

impl ClipSearch {
    /// The MSE search of values spanning `[min, max]`; `None` when the range is empty.
    pub fn new(min: f32, max: f32, bits: u8, points: u32) -> Option<ClipSearch> {
        ClipSearch::with_norms(min, max, bits, points, &[2.0])
    }

    /// The search for every `p` of `norms` at once (the values are read once).
    pub fn with_norms(
        min: f32,
        max: f32,
        bits: u8,
        points: u32,
        norms: &[f64],
    ) -> Option<ClipSearch> {
        assert!(!norms.is_empty() && norms.iter().all(|p| *p > 0.0));
        let candidates = candidates(min, max, bits, &clip_ratios(points));
        (!candidates.is_empty()).then(|| ClipSearch {
            sums: vec![vec![0.0; norms.len()]; candidates.len()],
            candidates,
            norms: norms.to_vec(),
        })
    }

    pub fn observe(&mut self, xs: &[f32]) {
        let norms = &self.norms;
        self.candidates
            .par_iter()
            .zip(self.sums.par_iter_mut())
            .for_each(|(u, sums)| {
                if norms.len() == 1 {
                    sums[0] += u.error_sum(xs, norms[0]);
                    return;
                }
                let mut e = xs.to_vec();
                u.quantize_slice(&mut e);
                for (q, x) in e.iter().zip(xs) {
                    let a = (*q - *x).abs() as f64;
                    if a > 0.0 {
                        let l = a.ln();
                        for (s, p) in sums.iter_mut().zip(norms) {
                            *s += (p * l).exp();
                        }
                    }
                }
            });
    }

    /// The best grid for norm `j` (index into the norms given), ties to the larger range.
    pub fn best(&self, j: usize) -> Uniform {
        let mut k = 0;
        for i in 1..self.candidates.len() {
            if self.sums[i][j] < self.sums[k][j] {
                k = i;
            }
        }
        self.candidates[k]
    }

    /// Every candidate with its errors (for tests and reports).
    pub fn errors(&self) -> impl Iterator<Item = (&Uniform, &[f64])> {
        self.candidates.iter().zip(self.sums.iter().map(|v| &v[..]))
    }
}

/// MMSE per output channel: for each row of `w` (`rows` contiguous rows), the grid whose
/// squared error is smallest (`None`: a constant row, left unchanged).
pub fn mmse_rows(w: &[f32], rows: usize, bits: u8, points: u32) -> Vec<Option<Uniform>> {
    lp_rows(w, rows, bits, points, &[2.0])
        .into_iter()
        .map(|v| v.map(|g| g[0]))
        .collect()
}

/// Per output channel, the best grid for each `p` of `norms`.
pub fn lp_rows(
    w: &[f32],
    rows: usize,
    bits: u8,
    points: u32,
    norms: &[f64],
) -> Vec<Option<Vec<Uniform>>> {
    assert!(rows > 0 && w.len().is_multiple_of(rows), "weight shape");
    w.par_chunks(w.len() / rows)
        .map(|row| {
            let (mn, mx) = row
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
                    (a.min(v), b.max(v))
                });
            let mut s = ClipSearch::with_norms(mn, mx, bits, points, norms)?;
            // Rows are small: search them one after the other inside this task.
            for (u, sums) in s.candidates.iter().zip(s.sums.iter_mut()) {
                for (j, p) in norms.iter().enumerate() {
                    sums[j] += u.error_sum(row, *p);
                }
            }
            Some((0..norms.len()).map(|j| s.best(j)).collect())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
            })
            .collect()
    }

    #[test]
    fn chosen_grid_is_the_arg_min_and_never_worse_than_min_max() {
        // Heavy tails: a cube of uniform noise plus one outlier per row.
        let mut w: Vec<f32> = lcg(8 * 2000, 7).iter().map(|x| x * x * x * 8.0).collect();
        w[17] = 3.0;
        let grids = mmse_rows(&w, 8, 4, 100);
        for (row, g) in w.chunks(2000).zip(&grids) {
            let g = g.unwrap();
            let (mn, mx) = row
                .iter()
                .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
            let mm = Uniform::from_range(mn, mx, 4).unwrap();
            assert!(g.error_sum(row, 2.0) <= mm.error_sum(row, 2.0));
            for t in clip_ratios(100) {
                if let Some(c) = Uniform::from_range(t * mn, t * mx, 4) {
                    assert!(g.error_sum(row, 2.0) <= c.error_sum(row, 2.0));
                }
            }
        }
        // The outlier row clips.
        let (_, hi) = grids[0].unwrap().range();
        assert!(hi < 2.9, "clipped at {hi}");
    }

    #[test]
    fn streaming_equals_in_memory_and_norms_differ() {
        let xs: Vec<f32> = lcg(5000, 3).iter().map(|x| (x * 6.0).exp()).collect();
        let (mn, mx) = xs
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        let mut a = ClipSearch::with_norms(mn, mx, 3, 50, &[2.0, 4.0]).unwrap();
        a.observe(&xs[..1234]);
        a.observe(&xs[1234..]);
        let mut b = ClipSearch::new(mn, mx, 3, 50).unwrap();
        b.observe(&xs);
        assert_eq!(a.best(0), b.best(0));
        // A higher norm weighs the large errors of clipping more: a wider range.
        assert!(a.best(1).range().1 >= a.best(0).range().1);
        for (u, e) in a.errors() {
            let direct = u.error_sum(&xs, 2.0);
            assert!((e[0] - direct).abs() <= 1e-9 * direct.max(1.0));
        }
    }
}
