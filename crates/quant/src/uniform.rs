//! A uniform grid with a float step, the grid the PTQ baselines (MMSE, ACIQ, AdaRound, LAPQ)
//! quantize on: the values `k * scale` for the integer codes `k` in `lo..=hi`.
//!
//! The spec's quantizer (`crate::grid`) restricts the step to a power of two and derives the
//! range from the extremes; the baselines choose the range (clipping) and allow any step, as
//! their papers do. A range `[min, max]` at `b` bits becomes `scale = (max - min) / (2^b - 1)`
//! and `lo = round(min / scale)`: the codes are shifted so that zero is exactly representable
//! (gemmlowp's "true zero"), at the cost of moving the range by at most half a step. Rounding
//! is to the nearest code, ties to even, like the spec's.
//!
//! `apply` computes `round_half_even(clamp(x * (1 / scale), lo, hi)) * scale` in f32: a multiply
//! by the f32 reciprocal (not a division) so that the tensor path on other devices, built from
//! the same elementary operations, gives the same numbers. For a power-of-two step the
//! reciprocal is exact and the result equals the spec's quantizer on the same grid
//! ([`Uniform::from_pow2`]).
use crate::grid::{levels, Grid, Quantizer};

/// `1.5 * 2^23`: adding and subtracting it rounds an f32 of magnitude below 2^22 to the nearest
/// integer, ties to even.
const MAGIC: f32 = 12_582_912.0;

/// The grid `{k * scale : lo <= k <= hi}`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Uniform {
    pub scale: f32,
    pub lo: i32,
    pub hi: i32,
}

impl Uniform {
    /// The grid of `2^bits` levels spanning `[min, max]`, its codes shifted so that zero is a
    /// level. `None` when `max <= min` (or either is not finite) or the step is not a normal f32.
    pub fn from_range(min: f32, max: f32, bits: u8) -> Option<Uniform> {
        if !(min.is_finite() && max.is_finite() && max > min) {
            return None;
        }
        let n = levels(bits);
        let scale = ((max as f64 - min as f64) / n as f64) as f32;
        if !scale.is_normal() {
            return None;
        }
        let lo = (min / scale).round_ties_even();
        if lo.abs() >= (1 << 30) as f32 {
            return None;
        }
        let lo = lo as i32;
        Some(Uniform {
            scale,
            lo,
            hi: lo + n as i32,
        })
    }

    /// A single level at `v` (a channel given zero bits keeps one value).
    pub fn constant(v: f32) -> Uniform {
        if v == 0.0 || !v.is_normal() {
            return Uniform {
                scale: 1.0,
                lo: 0,
                hi: 0,
            };
        }
        let k = if v > 0.0 { 1 } else { -1 };
        Uniform {
            scale: v.abs(),
            lo: k,
            hi: k,
        }
    }

    /// The spec's power-of-two grid `g` as codes: `round(lo / d) ..= round(hi / d)` (it can have
    /// `2^b + 1` levels, spec section 7). `apply` then equals `g.apply` bit for bit.
    pub fn from_pow2(g: &Grid) -> Uniform {
        let d = g.step();
        Uniform {
            scale: d,
            lo: (g.lo / d).round_ties_even() as i32,
            hi: (g.hi() / d).round_ties_even() as i32,
        }
    }

    /// This grid as a [`Quantizer`] (what the CPU kernels fuse into a layer): bit-identical to
    /// [`Uniform::apply`] and [`Uniform::quantize_slice`].
    pub fn quantizer(&self) -> Quantizer {
        Quantizer::codes(self.scale, self.lo, self.hi, self.magic_is_exact())
    }

    /// Number of levels.
    pub fn levels(&self) -> u32 {
        (self.hi - self.lo + 1) as u32
    }

    /// Lowest and highest representable values.
    pub fn range(&self) -> (f32, f32) {
        (self.lo as f32 * self.scale, self.hi as f32 * self.scale)
    }

    /// Quantize one value.
    #[inline]
    pub fn apply(&self, x: f32) -> f32 {
        let t = (x * (1.0 / self.scale)).clamp(self.lo as f32, self.hi as f32);
        t.round_ties_even() * self.scale
    }

    /// Whether every code is below 2^22 in magnitude, where the add-and-subtract rounding is
    /// exact.
    fn magic_is_exact(&self) -> bool {
        self.lo.unsigned_abs().max(self.hi.unsigned_abs()) < 1 << 22
    }

    /// Quantize `xs` in place: [`Uniform::apply`] on every value, with the rounding done by the
    /// add-and-subtract trick where it is exact (it vectorizes; `round_ties_even` is a call).
    pub fn quantize_slice(&self, xs: &mut [f32]) {
        if !self.magic_is_exact() {
            xs.iter_mut().for_each(|x| *x = self.apply(*x));
            return;
        }
        let inv = 1.0 / self.scale;
        let (lo, hi, s) = (self.lo as f32, self.hi as f32, self.scale);
        for x in xs {
            let t = (*x * inv).clamp(lo, hi);
            *x = ((t + MAGIC) - MAGIC).copysign(t) * s;
        }
    }

    /// Sum of `|q(x) - x|^p` over `xs`, in f64 (`p = 2`: the squared error).
    pub fn error_sum(&self, xs: &[f32], p: f64) -> f64 {
        let inv = 1.0 / self.scale;
        let (lo, hi, s) = (self.lo as f32, self.hi as f32, self.scale);
        let exact = self.magic_is_exact();
        let q = |x: f32| {
            let t = (x * inv).clamp(lo, hi);
            if exact {
                (t + MAGIC - MAGIC) * s
            } else {
                t.round_ties_even() * s
            }
        };
        if p == 2.0 {
            xs.iter()
                .map(|&x| {
                    let e = (q(x) - x) as f64;
                    e * e
                })
                .sum()
        } else {
            xs.iter().map(|&x| ((q(x) - x) as f64).abs().powf(p)).sum()
        }
    }
}

/// Quantize rows of `w` (one per output channel, contiguous and of equal length) on their own
/// grids; a row without a grid (`None`: constant) is left unchanged.
pub fn quantize_rows(w: &[f32], grids: &[Option<Uniform>]) -> Vec<f32> {
    assert!(
        !grids.is_empty() && w.len().is_multiple_of(grids.len()),
        "weight shape"
    );
    let mut out = w.to_vec();
    for (row, g) in out.chunks_mut(w.len() / grids.len()).zip(grids) {
        if let Some(g) = g {
            g.quantize_slice(row);
        }
    }
    out
}

/// Minimum and maximum of each row of `w` (`rows` contiguous rows of equal length).
pub fn row_extremes(w: &[f32], rows: usize) -> Vec<(f32, f32)> {
    assert!(rows > 0 && w.len().is_multiple_of(rows), "weight shape");
    w.chunks(w.len() / rows)
        .map(|r| {
            r.iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
                    (a.min(v), b.max(v))
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::quantize_slice;

    /// The fused kernels' quantizer of a float-step grid is `apply`, bit for bit: on the ties
    /// (half-integer codes), their neighbours, signed zeros, values beyond the range, and codes
    /// too large for the add-and-subtract rounding (the literal formula then).
    #[test]
    fn the_quantizer_of_a_float_step_grid_is_apply() {
        let grids = [
            Uniform::from_range(-0.8, 2.3, 3).unwrap(),
            Uniform::from_range(-1.7, 0.4, 8).unwrap(),
            Uniform::from_range(0.0, 5.0, 4).unwrap(),
            Uniform {
                scale: 1e-3,
                lo: -(1 << 23),
                hi: 1 << 23,
            },
        ];
        for u in grids {
            let q = u.quantizer();
            assert!(q.grid().is_none());
            let mut xs: Vec<f32> = vec![0.0, -0.0, f32::MAX, f32::MIN, 1e30, -1e30];
            for k in -200..200 {
                let t = (k as f32 * 0.5) * u.scale;
                xs.extend([t, t.next_up(), t.next_down(), t * 1e4]);
            }
            let want: Vec<f32> = xs.iter().map(|&x| u.apply(x)).collect();
            let mut got = vec![0f32; xs.len()];
            q.quantize_into(&xs, &mut got);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "{u:?}");
            let mut inplace = xs.clone();
            q.quantize_in_place(&mut inplace);
            assert_eq!(bits(&inplace), bits(&want), "{u:?}");
            u.quantize_slice(&mut xs);
            assert_eq!(bits(&xs), bits(&want), "{u:?}");
        }
    }

    #[test]
    fn zero_is_a_level_and_levels_are_2_pow_b() {
        for bits in [2u8, 4, 8] {
            let u = Uniform::from_range(-0.37, 1.21, bits).unwrap();
            assert_eq!(u.levels(), 1 << bits);
            assert_eq!(u.apply(0.0), 0.0);
            assert!(u.lo < 0 && u.hi > 0);
            // The range moved by at most half a step.
            let (a, b) = u.range();
            assert!((a + 0.37).abs() <= 0.5 * u.scale + 1e-6);
            assert!((b - 1.21).abs() <= 0.5 * u.scale + 1e-6);
        }
        assert!(Uniform::from_range(1.0, 1.0, 4).is_none());
        assert!(Uniform::from_range(f32::NAN, 1.0, 4).is_none());
    }

    #[test]
    fn slice_path_equals_apply_including_ties() {
        let u = Uniform::from_range(-1.3, 2.9, 4).unwrap();
        let mut xs: Vec<f32> = (-200..200).map(|k| k as f32 * 0.5 * u.scale).collect();
        xs.extend([0.0, -0.0, 5.0, -7.0, 0.3, -0.3]);
        let mut got = xs.clone();
        u.quantize_slice(&mut got);
        for (x, y) in xs.iter().zip(&got) {
            assert_eq!(y.to_bits(), u.apply(*x).to_bits(), "x = {x}");
        }
        // Ties go to the even code.
        let half = 2.5 * u.scale;
        assert_eq!(u.apply(half), 2.0 * u.scale);
    }

    #[test]
    fn pow2_grid_as_codes_is_the_spec_quantizer() {
        for (lo, e, bits) in [
            (-1.0f32, -3, 4u8),
            (-0.37, -6, 8),
            (-1.5, 0, 2),
            (0.0, -2, 3),
        ] {
            let g = Grid { lo, e, bits };
            let u = Uniform::from_pow2(&g);
            let mut xs: Vec<f32> = (-300..300).map(|k| k as f32 * 0.0371).collect();
            xs.extend((-40..40).map(|k| (k as f32 + 0.5) * g.step()));
            let mut a = xs.clone();
            quantize_slice(&mut a, &g);
            let mut b = xs.clone();
            u.quantize_slice(&mut b);
            assert_eq!(a, b, "lo {lo} e {e} bits {bits}");
        }
    }

    #[test]
    fn constant_grid_keeps_one_value() {
        for v in [0.25f32, -3.0, 0.0] {
            let u = Uniform::constant(v);
            assert_eq!(u.levels(), 1);
            assert_eq!(u.apply(17.0), v);
            assert_eq!(u.apply(-2.0), v);
        }
    }
}
