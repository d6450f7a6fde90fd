//! The uniform power-of-two grid `q(X) = round_half_even(clamp(X, lo, lo + R) / d) * d` with
//! `d = 2^e` and `R = d (2^b - 1)` (paper eq. 4), and the per-channel min-max weight rule
//! (eq. 5). Every number here follows spec section 7 so that two implementations agree bit for
//! bit: the exponent is an exact integer ceiling of a base-2 logarithm, the grid runs in f32.

/// Number of steps of a `bits`-bit grid: `2^bits - 1`.
pub fn levels(bits: u8) -> u32 {
    assert!((1..=16).contains(&bits), "bit-width {bits} out of range");
    (1u32 << bits) - 1
}

/// `2^e` as an exact f64 (e within the normal f64 range).
fn pow2(e: i32) -> f64 {
    2f64.powi(e)
}

/// The smallest integer `e` with `2^e >= x`, computed exactly (never through a rounded
/// `log2`, which gives the wrong integer near powers of two). `x` must be finite and > 0.
pub fn ceil_log2_exact(x: f64) -> i32 {
    assert!(x.is_finite() && x > 0.0, "ceil_log2_exact of {x}");
    let mut e = x.log2().ceil() as i32;
    while pow2(e - 1) >= x {
        e -= 1;
    }
    while pow2(e) < x {
        e += 1;
    }
    e
}

/// One quantization grid: lower end `lo`, step `2^e`, `2^bits` levels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Grid {
    pub lo: f32,
    pub e: i32,
    pub bits: u8,
}

impl Grid {
    /// The grid of eq. 5 for values spanning `[min, max]`: `lo = min`,
    /// `e = ceil(log2((max - min) / (2^b - 1)))`, the ratio formed in f64 from the f32 extremes.
    /// `None` when `max == min` (a constant tensor is left unchanged) or when the step is not
    /// a normal f32 (a range so narrow it cannot be gridded).
    pub fn min_max(min: f32, max: f32, bits: u8) -> Option<Grid> {
        // Also rejects NaN extremes.
        if max.partial_cmp(&min) != Some(std::cmp::Ordering::Greater) {
            return None;
        }
        let x = (max as f64 - min as f64) / levels(bits) as f64;
        let e = ceil_log2_exact(x);
        let g = Grid { lo: min, e, bits };
        g.step().is_normal().then_some(g)
    }

    /// The step `d = 2^e` as an exact f32.
    pub fn step(&self) -> f32 {
        pow2(self.e) as f32
    }

    /// Upper end of the clamp range, `lo + d (2^b - 1)` rounded to f32.
    pub fn hi(&self) -> f32 {
        self.lo + self.step() * levels(self.bits) as f32
    }

    /// Quantize one value. Literal formula: ties to even, codes not clamped (spec section 7:
    /// 2^b + 1 levels can appear when `lo / d` is a half-integer).
    #[inline]
    pub fn apply(&self, x: f32, d: f32, hi: f32) -> f32 {
        (x.clamp(self.lo, hi) / d).round_ties_even() * d
    }

    /// True when `|lo| / d` and `|hi| / d` stay below 2^22, the range where adding and
    /// subtracting 1.5 * 2^23 in f32 rounds to the nearest integer, ties to even.
    pub fn magic_rounding_is_exact(&self) -> bool {
        let d = self.step();
        (self.lo.abs().max(self.hi().abs()) / d) < (1u32 << 22) as f32
    }
}

/// Quantize `xs` in place on the grid `g`: [`Grid::apply`] on every value (see [`Quantizer`]).
pub fn quantize_slice(xs: &mut [f32], g: &Grid) {
    Quantizer::new(g).quantize_in_place(xs);
}

/// A grid's quantization with its constants computed once, for callers that quantize values
/// as they copy them (the models crate's convolution kernels quantize a layer's input while
/// packing it). Two forms: the spec's power-of-two [`Grid`] ([`Quantizer::new`]), bit-identical
/// to [`Grid::apply`] on every value (tested); and a float-step grid of integer codes
/// (`crate::Uniform::quantizer`, what the PTQ methods set), bit-identical to
/// `crate::Uniform::apply` (tested).
///
/// Where the rounding is exact that way, it is done by adding and subtracting 1.5 * 2^23 in
/// f32, which rounds to the nearest integer with ties to even exactly as `round_ties_even` does
/// in that range (the sign of a zero copied back), but vectorizes (`round_ties_even` is a libm
/// call without SSE4.1); and for a power-of-two grid the division by `d` is the exact
/// multiplication by `1 / d`. Elsewhere the literal formula is used.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quantizer {
    /// The power-of-two grid; `None` for a float-step grid (`lo`, `hi` are then codes).
    grid: Option<Grid>,
    lo: f32,
    hi: f32,
    d: f32,
    inv: f32,
    magic: bool,
}

impl Quantizer {
    pub fn new(g: &Grid) -> Quantizer {
        let (d, hi) = (g.step(), g.hi());
        let inv = 1.0 / d;
        Quantizer {
            grid: Some(*g),
            lo: g.lo,
            hi,
            d,
            inv,
            magic: g.magic_rounding_is_exact() && inv.is_normal(),
        }
    }

    /// The float-step grid `{k * scale : lo <= k <= hi}`, quantized as
    /// `round_ties_even(clamp(x * (1 / scale), lo, hi)) * scale` (`magic`: the codes are below
    /// 2^22 in magnitude). Built by `crate::Uniform::quantizer`.
    pub(crate) fn codes(scale: f32, lo: i32, hi: i32, magic: bool) -> Quantizer {
        Quantizer {
            grid: None,
            lo: lo as f32,
            hi: hi as f32,
            d: scale,
            inv: 1.0 / scale,
            magic,
        }
    }

    /// The power-of-two grid (`None` for a float-step grid).
    pub fn grid(&self) -> Option<&Grid> {
        self.grid.as_ref()
    }

    /// `dst[i] = q(src[i])`. Inlined so that it vectorizes with the caller's target features.
    #[inline(always)]
    pub fn quantize_into(&self, src: &[f32], dst: &mut [f32]) {
        assert_eq!(src.len(), dst.len());
        match (self.grid, self.magic) {
            (Some(_), true) => {
                for (y, x) in dst.iter_mut().zip(src) {
                    *y = self.magic_round(*x);
                }
            }
            (Some(g), false) => {
                for (y, x) in dst.iter_mut().zip(src) {
                    *y = g.apply(*x, self.d, self.hi);
                }
            }
            (None, true) => {
                for (y, x) in dst.iter_mut().zip(src) {
                    *y = self.magic_round_codes(*x);
                }
            }
            (None, false) => {
                for (y, x) in dst.iter_mut().zip(src) {
                    *y = self.round_codes(*x);
                }
            }
        }
    }

    /// [`Quantizer::quantize_into`] in place.
    #[inline(always)]
    pub fn quantize_in_place(&self, xs: &mut [f32]) {
        match (self.grid, self.magic) {
            (Some(_), true) => {
                for x in xs {
                    *x = self.magic_round(*x);
                }
            }
            (Some(g), false) => {
                for x in xs {
                    *x = g.apply(*x, self.d, self.hi);
                }
            }
            (None, true) => {
                for x in xs {
                    *x = self.magic_round_codes(*x);
                }
            }
            (None, false) => {
                for x in xs {
                    *x = self.round_codes(*x);
                }
            }
        }
    }

    /// One value by the 1.5 * 2^23 trick (only where `self.magic`, power-of-two grid).
    #[inline(always)]
    fn magic_round(&self, x: f32) -> f32 {
        let t = x.clamp(self.lo, self.hi) * self.inv;
        // The trick gives +0 where rounding gives -0 (t in (-0.5, 0]): copy t's sign, which
        // every rounded value shares.
        ((t + MAGIC) - MAGIC).copysign(t) * self.d
    }

    /// One value of a float-step grid by the 1.5 * 2^23 trick (only where `self.magic`).
    #[inline(always)]
    fn magic_round_codes(&self, x: f32) -> f32 {
        let t = (x * self.inv).clamp(self.lo, self.hi);
        ((t + MAGIC) - MAGIC).copysign(t) * self.d
    }

    /// One value of a float-step grid by the literal formula.
    #[inline(always)]
    fn round_codes(&self, x: f32) -> f32 {
        (x * self.inv).clamp(self.lo, self.hi).round_ties_even() * self.d
    }

    /// The step `d`: every quantized value is an integer code times `d`.
    pub fn step(&self) -> f32 {
        self.d
    }
}

const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23

/// Per-output-channel min-max quantization of a weight whose `out_channels` channels are
/// contiguous rows of equal length (conv `[out, in/groups, kh, kw]`, linear `[out, in]`).
/// A channel whose max equals its min is left unchanged (spec convention).
pub fn quantize_weights_per_channel(w: &[f32], out_channels: usize, bits: u8) -> Vec<f32> {
    assert!(
        out_channels > 0 && w.len().is_multiple_of(out_channels),
        "weight shape"
    );
    let mut out = w.to_vec();
    for row in out.chunks_mut(w.len() / out_channels) {
        let (mn, mx) = row
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        if let Some(g) = Grid::min_max(mn, mx, bits) {
            quantize_slice(row, &g);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    /// The vectorizable path of `quantize_slice` is `Grid::apply`, bit for bit: on every
    /// half-integer multiple of the step (the ties), their neighbours, and random values.
    #[test]
    fn quantize_slice_equals_the_literal_formula() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for (lo, e, bits) in [
            (-1.0f32, -3, 4u8),
            (-0.37, -6, 8),
            (0.0, -2, 2),
            (-3.75, 0, 6),
        ] {
            let g = Grid { lo, e, bits };
            assert!(g.magic_rounding_is_exact());
            let (d, hi) = (g.step(), g.hi());
            let mut xs: Vec<f32> = vec![];
            for k in -600..600 {
                let t = (k as f32 + 0.5) * d;
                xs.extend([
                    t,
                    f32::from_bits(t.to_bits() + 1),
                    f32::from_bits(t.to_bits() - 1),
                ]);
            }
            for _ in 0..10_000 {
                xs.push(((next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 8.0);
            }
            xs.extend([0.0, -0.0, -0.25 * d, 0.25 * d, -0.5 * d, 0.5 * d]);
            let mut got = xs.clone();
            quantize_slice(&mut got, &g);
            let mut into = vec![0f32; xs.len()];
            Quantizer::new(&g).quantize_into(&xs, &mut into);
            assert_eq!(
                into.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                got.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
            for (x, y) in xs.iter().zip(&got) {
                let want = g.apply(*x, d, hi);
                assert_eq!(
                    y.to_bits(),
                    want.to_bits(),
                    "x {x}: {y} != {want} (lo {lo} e {e})"
                );
            }
        }
    }

    use super::*;

    #[test]
    fn ceil_log2_is_exact_at_and_near_powers_of_two() {
        assert_eq!(ceil_log2_exact(1.0), 0);
        assert_eq!(ceil_log2_exact(2.0), 1);
        assert_eq!(ceil_log2_exact(0.25), -2);
        assert_eq!(ceil_log2_exact(0.75), 0);
        assert_eq!(ceil_log2_exact(f64::from_bits(2f64.to_bits() + 1)), 2);
        assert_eq!(ceil_log2_exact(f64::from_bits(2f64.to_bits() - 1)), 1);
        assert_eq!(ceil_log2_exact(3.0 / 255.0 * 85.0), 0); // exactly 1.0
        for e in -40..40 {
            let x = 2f64.powi(e);
            assert_eq!(ceil_log2_exact(x), e);
            assert_eq!(ceil_log2_exact(x * (1.0 + f64::EPSILON)), e + 1);
        }
    }

    #[test]
    fn half_ties_round_to_even() {
        // d = 1 (range 15 over 4 bits), lo = -8: values at exact halves.
        let g = Grid::min_max(-8.0, 7.0, 4).unwrap();
        assert_eq!(g.e, 0);
        let mut xs = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5];
        quantize_slice(&mut xs, &g);
        assert_eq!(xs, [0.0, 2.0, 2.0, -0.0, -2.0, -2.0, 4.0]);
    }

    #[test]
    fn grid_has_at_most_2_pow_b_levels_per_channel() {
        let mut rng = 0x9E3779B97F4A7C15u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
        };
        for bits in [2u8, 4, 6, 8] {
            let w: Vec<f32> = (0..8 * 300).map(|_| next() * 0.3).collect();
            let q = quantize_weights_per_channel(&w, 8, bits);
            for row in q.chunks(300) {
                let mut v: Vec<u32> = row.iter().map(|x| x.to_bits()).collect();
                v.sort();
                v.dedup();
                assert!(v.len() <= 1 << bits, "{} levels at {bits} bits", v.len());
            }
        }
    }

    #[test]
    fn half_integer_lo_can_give_2_pow_b_plus_1_levels() {
        // lo = -1.5 with d = 1 at 2 bits: hi = 1.5; both ends round outward (-2 and 2).
        let g = Grid::min_max(-1.5, 1.5, 2).unwrap();
        assert_eq!(g.e, 0);
        let mut xs = [-1.5, -0.6, 0.4, 1.5, 1.4];
        quantize_slice(&mut xs, &g);
        assert_eq!(xs, [-2.0, -1.0, 0.0, 2.0, 1.0]);
    }

    #[test]
    fn idempotent_zero_preserved_and_constant_channels_unchanged() {
        let w = vec![
            -0.31, 0.0, 0.17, 0.42, 0.05, -0.12, // channel 0
            0.7, 0.7, 0.7, 0.7, 0.7, 0.7, // constant channel
        ];
        for bits in [2u8, 4, 8] {
            let q = quantize_weights_per_channel(&w, 2, bits);
            assert_eq!(q[1], 0.0, "zero is on the grid");
            assert_eq!(&q[6..], &w[6..], "constant channel unchanged");
            let qq = quantize_weights_per_channel(&q, 2, bits);
            assert_eq!(q, qq, "idempotent at {bits} bits");
            // Every value is a multiple of the channel's step.
            let g = Grid::min_max(-0.31, 0.42, bits).unwrap();
            for v in &q[..6] {
                assert_eq!((v / g.step()).fract(), 0.0);
            }
        }
    }

    #[test]
    fn weight_step_matches_eq5() {
        // range 0.73 over 15 steps -> 0.0487 -> 2^-4 = 0.0625
        let g = Grid::min_max(-0.31, 0.42, 4).unwrap();
        assert_eq!(g.e, -4);
        assert_eq!(g.step(), 0.0625);
        assert_eq!(g.hi(), -0.31 + 0.0625 * 15.0);
    }
}
