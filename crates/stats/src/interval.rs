//! The Wilson score interval of a proportion: the interval every reported accuracy carries.
//! Unlike the normal ("Wald") interval it stays inside [0, 1] and keeps its coverage near 0%
//! and 100%, where quantized models' accuracies (and their differences from FP32) often are.
use crate::special::normal_quantile;
use crate::{check_level, StatsError};

/// The level of every interval the reports show unless a manifest asks otherwise.
pub const LEVEL_95: f64 = 0.95;

/// A two-sided confidence interval `[lo, hi]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    pub lo: f64,
    pub hi: f64,
}

impl Interval {
    pub fn contains(&self, x: f64) -> bool {
        self.lo <= x && x <= self.hi
    }
    pub fn width(&self) -> f64 {
        self.hi - self.lo
    }
}

/// Wilson's score interval for `successes` out of `total` at confidence `level` (e.g. 0.95),
/// as fractions: `(p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)`, z the normal
/// quantile at `(1 + level) / 2` (statsmodels' `proportion_confint(method="wilson")`).
pub fn wilson(successes: u64, total: u64, level: f64) -> Result<Interval, StatsError> {
    check_level(level)?;
    if total == 0 {
        return Err(StatsError::NoObservations);
    }
    if successes > total {
        return Err(StatsError::CountAboveTotal {
            count: successes,
            total,
        });
    }
    let z = normal_quantile(0.5 + 0.5 * level)?;
    let n = total as f64;
    let p = successes as f64 / n;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    // At 0 or n successes that end is exactly 0 or 1 (rounding may leave it a hair off).
    Ok(Interval {
        lo: if successes == 0 {
            0.0
        } else {
            (center - half).max(0.0)
        },
        hi: if successes == total {
            1.0
        } else {
            (center + half).min(1.0)
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_statsmodels() {
        // statsmodels 0.15.0: statsmodels.stats.proportion.proportion_confint(k, n,
        //   alpha=1 - level, method="wilson") for each (k, n, level) below.
        let cases = [
            ((4841, 5000, 0.95), (0.9629655453698477, 0.9727155785288008)),
            ((1642, 2048, 0.95), (0.7839333452663886, 0.8184523774153223)),
            ((0, 512, 0.95), (0.0, 0.007446975722882739)),
            ((512, 512, 0.95), (0.9925530242771171, 0.9999999999999999)),
            ((7, 10, 0.9), (0.44169979586983493, 0.873123416096802)),
            ((3, 40, 0.99), (0.019163255329385148, 0.2517689761520616)),
        ];
        for ((k, n, level), (lo, hi)) in cases {
            let i = wilson(k, n, level).unwrap();
            assert!(
                (i.lo - lo).abs() < 1e-12,
                "{k}/{n} at {level}: lo {} vs {lo}",
                i.lo
            );
            assert!(
                (i.hi - hi).abs() < 1e-12,
                "{k}/{n} at {level}: hi {} vs {hi}",
                i.hi
            );
            assert!(i.contains(k as f64 / n as f64));
        }
    }

    #[test]
    fn wilson_width_shrinks_with_images_and_grows_with_level() {
        let a = wilson(410, 512, LEVEL_95).unwrap();
        let b = wilson(4100, 5120, LEVEL_95).unwrap();
        assert!(b.width() < a.width() / 3.0);
        let c = wilson(410, 512, 0.99).unwrap();
        assert!(c.width() > a.width() && c.contains(a.lo) && c.contains(a.hi));
    }

    #[test]
    fn wilson_rejects_bad_input() {
        assert_eq!(wilson(1, 0, 0.95), Err(StatsError::NoObservations));
        assert_eq!(
            wilson(6, 5, 0.95),
            Err(StatsError::CountAboveTotal { count: 6, total: 5 })
        );
        for level in [0.0, 1.0, 95.0, f64::NAN] {
            assert!(matches!(wilson(1, 5, level), Err(StatsError::Level(_))));
        }
    }
}
