//! ACIQ, analytical clipping for integer quantization (Banner, Nahshan, Soudry, "Post-training
//! 4-bit quantization of convolution networks for rapid-deployment", NeurIPS 2019), and its
//! per-channel bit allocation.
//!
//! **Clipping.** A tensor is modelled as Laplace(mu, b) or Gaussian(mu, sigma); clipping it to
//! `[mu - alpha, mu + alpha]` and quantizing that range uniformly into `2^M` bins costs
//! (paper eqs. 5 and 6, with `E` the clipping and `alpha^2 / (3 * 4^M)` the rounding noise):
//! - Laplace: `2 b^2 exp(-alpha / b) + alpha^2 / (3 * 4^M)`,
//! - Gaussian: `(alpha^2 + sigma^2) (1 - erf(alpha / (sqrt 2 sigma)))
//!   - sqrt(2 / pi) alpha sigma exp(-alpha^2 / (2 sigma^2)) + alpha^2 / (3 * 4^M)`.
//!
//! The optimal `alpha` is a fixed multiple of the scale for each `M`; [`optimal_clip`] finds it
//! by minimising these expressions numerically (it is not a table).
//!
//! **Non-negative inputs.** This project quantizes the *input* of each layer, which after a
//! ReLU is non-negative, while the paper quantizes the convolution's output before the ReLU with
//! a "half range". For a non-negative tensor the model here is the positive tail: an
//! exponential with scale `b` (Laplace prior; `b` = the mean of the positive values) or a
//! half-normal with scale `sigma` (Gaussian prior; `sigma^2` = the mean square of the positive
//! values), clipped to `[0, alpha]` and quantized into `2^M` bins. Its error is half of the
//! two-sided expression at `M + 1` bits (same step over half the range), so its optimum is the
//! two-sided constant at `M + 1` bits: the reference implementation's "positive" tables
//! (`alpha_laplace_positive[M] = alpha_laplace[M + 1]`) follow the same rule.
//!
//! **Bit allocation** (paper sec. 4, eq. 11): with a quota of `C * 2^M` bins for the `C`
//! channels of a tensor, the MSE-optimal bins of channel `i` are proportional to
//! `spread_i^(2/3)` (`spread`: its clipping scale). [`allocate_bits`] rounds the bit-widths
//! `log2(bins_i)` to integers that meet the layer's bit budget exactly (`sum M_i <= C * M`, so
//! the model's size is the uniform one's), in `[0, max_bits]`.
use crate::uniform::Uniform;
use serde::{Deserialize, Serialize};

/// The distribution a tensor is fitted with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Prior {
    Laplace,
    Gaussian,
}

/// Rounding noise of a range `[-alpha, alpha]` in `2^bits` bins: `alpha^2 / (3 * 4^bits)`.
fn rounding_noise(alpha: f64, bits: u8) -> f64 {
    alpha * alpha / (3.0 * 4f64.powi(bits as i32))
}

/// Expected squared error of Laplace(0, b) clipped at `+-alpha` and quantized on `2^bits` bins.
pub fn mse_laplace(alpha: f64, b: f64, bits: u8) -> f64 {
    2.0 * b * b * (-alpha / b).exp() + rounding_noise(alpha, bits)
}

/// Expected squared error of N(0, sigma^2) clipped at `+-alpha` and quantized on `2^bits` bins.
pub fn mse_gaussian(alpha: f64, sigma: f64, bits: u8) -> f64 {
    let a2 = alpha * alpha;
    let s2 = sigma * sigma;
    let clip = (a2 + s2) * libm::erfc(alpha / (std::f64::consts::SQRT_2 * sigma))
        - (2.0 / std::f64::consts::PI).sqrt() * alpha * sigma * (-a2 / (2.0 * s2)).exp();
    clip + rounding_noise(alpha, bits)
}

/// The expression of `prior` at unit scale.
pub fn mse(prior: Prior, alpha: f64, bits: u8) -> f64 {
    match prior {
        Prior::Laplace => mse_laplace(alpha, 1.0, bits),
        Prior::Gaussian => mse_gaussian(alpha, 1.0, bits),
    }
}

/// Golden-section search for the minimum of a unimodal `f` on `[a, b]`.
fn golden_min(f: impl Fn(f64) -> f64, mut a: f64, mut b: f64, tol: f64) -> f64 {
    let r = (5f64.sqrt() - 1.0) / 2.0;
    let mut c = b - r * (b - a);
    let mut d = a + r * (b - a);
    let (mut fc, mut fd) = (f(c), f(d));
    while b - a > tol {
        if fc < fd {
            b = d;
            d = c;
            fd = fc;
            c = b - r * (b - a);
            fc = f(c);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + r * (b - a);
            fd = f(d);
        }
    }
    (a + b) / 2.0
}

/// The optimal clipping `alpha / scale` of a two-sided `prior` quantized on `2^bits` bins,
/// by minimising its MSE expression (to 1e-9). Both expressions are unimodal in `alpha`: the
/// clipping term falls and the rounding term grows monotonically.
pub fn optimal_clip(prior: Prior, bits: u8) -> f64 {
    assert!((1..=16).contains(&bits), "bit-width {bits}");
    golden_min(|a| mse(prior, a, bits), 1e-6, 64.0, 1e-9)
}

/// The optimal clipping of a non-negative tensor (its positive tail) at `bits`: the two-sided
/// constant at `bits + 1` (see the module documentation).
pub fn optimal_clip_positive(prior: Prior, bits: u8) -> f64 {
    optimal_clip(prior, bits + 1)
}

/// Statistics of one tensor (or one channel) over the calibration set, gathered in two passes:
/// [`Stats::observe`] first, then [`Stats::observe_deviation`] once the mean is known.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stats {
    pub count: u64,
    pub sum: f64,
    pub sum_sq: f64,
    pub min: f32,
    pub max: f32,
    pub pos_count: u64,
    pub pos_sum: f64,
    pub pos_sum_sq: f64,
    /// Sum of `|x - mean|` (second pass).
    pub abs_dev: f64,
}

impl Stats {
    pub fn new() -> Stats {
        Stats {
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            ..Stats::default()
        }
    }

    pub fn observe(&mut self, xs: &[f32]) {
        for &x in xs {
            let v = x as f64;
            self.count += 1;
            self.sum += v;
            self.sum_sq += v * v;
            self.min = self.min.min(x);
            self.max = self.max.max(x);
            if x > 0.0 {
                self.pos_count += 1;
                self.pos_sum += v;
                self.pos_sum_sq += v * v;
            }
        }
    }

    pub fn mean(&self) -> f64 {
        self.sum / self.count.max(1) as f64
    }

    pub fn observe_deviation(&mut self, xs: &[f32]) {
        let m = self.mean();
        self.abs_dev += xs.iter().map(|&x| (x as f64 - m).abs()).sum::<f64>();
    }

    /// Standard deviation (population).
    pub fn std(&self) -> f64 {
        let n = self.count.max(1) as f64;
        (self.sum_sq / n - self.mean().powi(2)).max(0.0).sqrt()
    }

    /// Whether every value is `>= 0` (the tensor follows a ReLU).
    pub fn non_negative(&self) -> bool {
        self.min >= 0.0
    }

    /// The fitted scale of `prior`: `b` (mean absolute deviation) or `sigma` for a signed
    /// tensor; the positive tail's `b` (mean of the positive values) or `sigma` (root mean
    /// square of the positive values) for a non-negative one.
    pub fn scale(&self, prior: Prior) -> f64 {
        if self.non_negative() {
            let n = self.pos_count.max(1) as f64;
            match prior {
                Prior::Laplace => self.pos_sum / n,
                Prior::Gaussian => (self.pos_sum_sq / n).sqrt(),
            }
        } else {
            match prior {
                Prior::Laplace => self.abs_dev / self.count.max(1) as f64,
                Prior::Gaussian => self.std(),
            }
        }
    }

    /// ACIQ's grid at `bits`: the clipped range `[max(min, mu - alpha), min(max, mu + alpha)]`
    /// (signed) or `[0, min(max, alpha)]` (non-negative); `bits = 0` keeps the mean. `None` for a
    /// constant tensor (left unquantized).
    pub fn aciq_grid(&self, prior: Prior, bits: u8) -> Option<Uniform> {
        if self.max.partial_cmp(&self.min) != Some(std::cmp::Ordering::Greater) {
            return None;
        }
        if bits == 0 {
            return Some(Uniform::constant(self.mean() as f32));
        }
        let s = self.scale(prior);
        let (lo, hi) = if self.non_negative() {
            let a = optimal_clip_positive(prior, bits) * s;
            (0.0, (a as f32).min(self.max))
        } else {
            let (m, a) = (self.mean(), optimal_clip(prior, bits) * s);
            (
                ((m - a) as f32).max(self.min),
                ((m + a) as f32).min(self.max),
            )
        };
        Uniform::from_range(lo, hi, bits).or_else(|| Uniform::from_range(self.min, self.max, bits))
    }
}

/// Per-channel bit-widths under the budget `sum M_i <= C * bits` (Banner et al. eq. 11):
/// `M_i = round(log2(C * 2^bits * p_i / sum p) + c)` with `p_i = spread_i^(2/3)`, clamped to
/// `[0, max_bits]`, for the largest common shift `c` that meets the budget; bits still left go
/// one at a time to the channels furthest below their continuous optimum (ties: lowest index).
/// Channels of zero spread get 0 bits. Equal spreads give every channel `bits`.
pub fn allocate_bits(spread: &[f64], bits: u8, max_bits: u8) -> Vec<u8> {
    let c = spread.len();
    assert!(c > 0 && bits <= max_bits);
    let p: Vec<f64> = spread.iter().map(|s| s.max(0.0).powf(2.0 / 3.0)).collect();
    let total: f64 = p.iter().sum();
    if total <= 0.0 || !total.is_finite() {
        return vec![bits; c];
    }
    let ideal: Vec<f64> = p
        .iter()
        .map(|&pi| {
            if pi > 0.0 {
                (c as f64 * 2f64.powi(bits as i32) * pi / total).log2()
            } else {
                f64::NEG_INFINITY
            }
        })
        .collect();
    let at = |shift: f64| -> Vec<u8> {
        ideal
            .iter()
            .map(|m| (m + shift).round().clamp(0.0, max_bits as f64) as u8)
            .collect()
    };
    let budget = (c * bits as usize) as u64;
    let used = |a: &[u8]| a.iter().map(|&b| b as u64).sum::<u64>();
    // The largest shift within the budget (the allocation grows with the shift).
    let (mut lo, mut hi) = (-64.0f64, 64.0f64);
    if used(&at(lo)) > budget {
        return vec![0; c];
    }
    for _ in 0..100 {
        let mid = (lo + hi) / 2.0;
        if used(&at(mid)) <= budget {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let mut alloc = at(lo);
    let mut left = budget - used(&alloc);
    while left > 0 {
        let next = (0..c)
            .filter(|&i| alloc[i] < max_bits && ideal[i].is_finite())
            .max_by(|&i, &j| {
                let (di, dj) = (
                    ideal[i] + lo - alloc[i] as f64,
                    ideal[j] + lo - alloc[j] as f64,
                );
                di.total_cmp(&dj).then(j.cmp(&i))
            });
        match next {
            Some(i) => {
                alloc[i] += 1;
                left -= 1;
            }
            None => break,
        }
    }
    alloc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 13: the optimal clipping constants are the optima of their MSE expressions
    /// (computed here by minimisation, then compared with the published values).
    #[test]
    fn optimal_clipping_constants_match_the_paper() {
        let laplace = [(2u8, 2.831), (3, 3.897), (4, 5.029), (8, 9.897)];
        let gaussian = [(2u8, 1.711), (3, 2.152), (4, 2.559), (8, 3.924)];
        for (bits, want) in laplace {
            let got = optimal_clip(Prior::Laplace, bits);
            assert!((got - want).abs() < 0.005, "Laplace {bits} bits: {got}");
        }
        for (bits, want) in gaussian {
            let got = optimal_clip(Prior::Gaussian, bits);
            assert!((got - want).abs() < 0.005, "Gaussian {bits} bits: {got}");
        }
        // The minimum is a minimum: both neighbours cost more.
        for prior in [Prior::Laplace, Prior::Gaussian] {
            for bits in [2u8, 4, 8] {
                let a = optimal_clip(prior, bits);
                assert!(mse(prior, a, bits) < mse(prior, a * 0.99, bits));
                assert!(mse(prior, a, bits) < mse(prior, a * 1.01, bits));
            }
        }
        // The positive tail at M bits is the two-sided optimum at M + 1.
        assert!((optimal_clip_positive(Prior::Laplace, 2) - 3.897).abs() < 0.005);
    }

    #[test]
    fn gaussian_expression_matches_a_numerical_integral() {
        // E[(X - clip(X))^2] for N(0, 1), by the trapezoid rule on the tails.
        let alpha = 2.0f64;
        let n = 200_000;
        let (a, b) = (alpha, 12.0);
        let h = (b - a) / n as f64;
        let pdf = |x: f64| (-x * x / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let f = |x: f64| (x - alpha).powi(2) * pdf(x);
        let tail: f64 = (0..=n)
            .map(|k| {
                let w = if k == 0 || k == n { 0.5 } else { 1.0 };
                w * f(a + k as f64 * h)
            })
            .sum::<f64>()
            * h;
        let expr = mse_gaussian(alpha, 1.0, 30) - rounding_noise(alpha, 30);
        assert!((2.0 * tail - expr).abs() < 1e-7, "{} vs {expr}", 2.0 * tail);
    }

    #[test]
    fn bit_allocation_meets_the_budget_and_follows_the_spread() {
        assert_eq!(allocate_bits(&[1.0; 5], 4, 8), vec![4; 5]);
        let spread = [0.01, 0.1, 1.0, 10.0, 100.0, 1.0, 0.0, 3.0];
        for bits in [2u8, 3, 4] {
            let a = allocate_bits(&spread, bits, 8);
            let used: u32 = a.iter().map(|&b| b as u32).sum();
            assert_eq!(used, spread.len() as u32 * bits as u32, "{a:?}");
            assert_eq!(a[6], 0, "no spread, no bits");
            for w in [(0, 1), (1, 2), (2, 3), (3, 4)] {
                assert!(a[w.0] <= a[w.1], "{a:?}");
            }
        }
    }

    #[test]
    fn grids_of_fitted_tensors() {
        // Signed tensor: symmetric about the mean, inside the observed range.
        let xs: Vec<f32> = (0..2001).map(|i| (i as f32 - 1000.0) / 100.0).collect();
        let mut s = Stats::new();
        s.observe(&xs);
        s.observe_deviation(&xs);
        assert!((s.scale(Prior::Laplace) - 5.0).abs() < 0.01);
        let (lo, hi) = s.aciq_grid(Prior::Laplace, 8).unwrap().range();
        assert!(lo >= -10.0 - 0.1 && hi <= 10.0 + 0.1);
        // At 2 bits the Gaussian fit clips (1.71 sigma < 10): a finer step than min-max's.
        let g2 = s.aciq_grid(Prior::Gaussian, 2).unwrap();
        assert!(g2.scale < 20.0 / 3.0, "2-bit step {}", g2.scale);
        // Non-negative tensor: range from zero.
        let ys: Vec<f32> = xs.iter().map(|x| x.max(0.0)).collect();
        let mut t = Stats::new();
        t.observe(&ys);
        t.observe_deviation(&ys);
        let g = t.aciq_grid(Prior::Laplace, 4).unwrap();
        assert_eq!(g.lo, 0);
        assert!(g.range().1 <= 10.0 + 1e-4);
        assert_eq!(
            t.aciq_grid(Prior::Laplace, 0).unwrap().apply(3.0),
            t.mean() as f32
        );
    }
}
