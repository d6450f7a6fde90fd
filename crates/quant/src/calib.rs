//! Per-layer activation calibration (paper eq. 6, spec sections 2 and 7): `lo` is the minimum
//! of all calibration inputs of the layer, `e0` the min-max exponent, and `e` the integer in
//! `[e0 - 10, e0]` that minimises the mean squared quantization error over all calibration
//! values, ties to the larger `e`. It streams: a first pass finds the extremes ([`MinMax`]),
//! a second accumulates the eleven candidate errors in f64 ([`MseCalibrator`]), so the
//! calibration set never has to fit in memory at once.
use crate::grid::Grid;

/// How far below the min-max exponent the MSE search looks.
pub const SEARCH_DEPTH: i32 = 10;

/// Running minimum and maximum.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MinMax {
    pub min: f32,
    pub max: f32,
}

impl Default for MinMax {
    fn default() -> Self {
        MinMax {
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
        }
    }
}

impl MinMax {
    pub fn observe(&mut self, xs: &[f32]) {
        for &x in xs {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
        }
    }
    pub fn merge(&mut self, o: &MinMax) {
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }
}

/// Second calibration pass for one layer and one activation bit-width.
#[derive(Clone, Debug)]
pub struct MseCalibrator {
    candidates: Vec<Grid>,
    sums: Vec<f64>,
    count: u64,
}

impl MseCalibrator {
    /// `None` when the layer input is constant over the calibration set (left unquantized),
    /// or the range is too narrow to grid.
    pub fn new(range: MinMax, bits: u8) -> Option<MseCalibrator> {
        let g0 = Grid::min_max(range.min, range.max, bits)?;
        let candidates: Vec<Grid> = (0..=SEARCH_DEPTH)
            .map(|k| Grid { e: g0.e - k, ..g0 })
            .filter(|g| g.step().is_normal())
            .collect();
        Some(MseCalibrator {
            sums: vec![0.0; candidates.len()],
            candidates,
            count: 0,
        })
    }

    pub fn observe(&mut self, xs: &[f32]) {
        use rayon::prelude::*;
        let candidates = &self.candidates;
        candidates
            .par_iter()
            .zip(self.sums.par_iter_mut())
            .for_each(|(g, sum)| {
                let (d, hi) = (g.step(), g.hi());
                let mut s = 0f64;
                for &x in xs {
                    let err = g.apply(x, d, hi) as f64 - x as f64;
                    s += err * err;
                }
                *sum += s;
            });
        self.count += xs.len() as u64;
    }

    /// The chosen grid: scanning from `e0` downwards, a smaller `e` must have a strictly
    /// smaller mean squared error.
    pub fn finish(&self) -> Grid {
        let mut best = 0;
        let n = self.count.max(1) as f64;
        for k in 1..self.candidates.len() {
            if self.sums[k] / n < self.sums[best] / n {
                best = k;
            }
        }
        self.candidates[best]
    }

    /// Mean squared error of every candidate, from `e0` downwards (for reports and tests).
    pub fn errors(&self) -> Vec<(i32, f64)> {
        let n = self.count.max(1) as f64;
        self.candidates
            .iter()
            .zip(&self.sums)
            .map(|(g, s)| (g.e, s / n))
            .collect()
    }
}

/// Both passes over values held in memory.
pub fn calibrate_values(xs: &[f32], bits: u8) -> Option<Grid> {
    let mut mm = MinMax::default();
    mm.observe(xs);
    let mut c = MseCalibrator::new(mm, bits)?;
    c.observe(xs);
    Some(c.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_input_is_left_unquantized() {
        assert!(calibrate_values(&[0.3; 10], 4).is_none());
    }

    #[test]
    fn outliers_pull_the_step_down() {
        // 10000 values in [0, 1) plus one outlier at 10: min-max at 4 bits wants d = 1, which
        // rounds every small value to 0 or 1; MSE clips the outlier and takes a finer step.
        let mut xs: Vec<f32> = (0..10000).map(|i| i as f32 / 10000.0).collect();
        xs.push(10.0);
        let mm_grid = Grid::min_max(0.0, 10.0, 4).unwrap();
        assert_eq!(mm_grid.e, 0);
        let g = calibrate_values(&xs, 4).unwrap();
        assert!(g.e < 0, "chose e = {}", g.e);
        assert_eq!(g.lo, 0.0);
        // The choice is the arg min of the listed errors, largest e among equals.
        let mut mm = MinMax::default();
        mm.observe(&xs);
        let mut c = MseCalibrator::new(mm, 4).unwrap();
        c.observe(&xs[..5000]);
        c.observe(&xs[5000..]);
        let errs = c.errors();
        assert_eq!(errs.len(), 11);
        let min = errs.iter().map(|x| x.1).fold(f64::INFINITY, f64::min);
        let first_min = errs.iter().find(|x| x.1 == min).unwrap().0;
        assert_eq!(c.finish().e, first_min);
        assert_eq!(c.finish(), g, "streaming equals in-memory");
    }

    #[test]
    fn ties_keep_the_larger_exponent() {
        // Values exactly on every candidate grid: all errors are 0 -> keep e0.
        let xs = [0.0f32, 1.0, 2.0, 3.0];
        let g = calibrate_values(&xs, 2).unwrap();
        assert_eq!(g.e, 0);
    }
}
