//! A result repeated over seeds (calibration and search subsets, the embedded dataset's seed):
//! its mean, sample standard deviation and the Student-t interval of the mean, which is what
//! the reports draw as a band and what a verdict on a repeated experiment rests on.
use crate::interval::Interval;
use crate::special::student_t_quantile;
use crate::{check_level, StatsError};

/// Summary of `k >= 2` repeated values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeanSummary {
    pub k: usize,
    pub mean: f64,
    /// Sample standard deviation (divisor k - 1).
    pub sd: f64,
    /// `mean -+ t_{(1 + level) / 2, k - 1} sd / sqrt(k)`.
    pub interval: Interval,
}

impl MeanSummary {
    /// Summarise `values` (at least two, all finite) with a `level` interval of the mean.
    pub fn of(values: &[f64], level: f64) -> Result<MeanSummary, StatsError> {
        check_level(level)?;
        if let Some(&v) = values.iter().find(|v| !v.is_finite()) {
            return Err(StatsError::NotFinite(v));
        }
        let k = values.len();
        if k < 2 {
            return Err(StatsError::TooFewValues { got: k, need: 2 });
        }
        let mean = values.iter().sum::<f64>() / k as f64;
        let ss: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
        let sd = (ss / (k - 1) as f64).sqrt();
        let t = student_t_quantile(0.5 + 0.5 * level, (k - 1) as f64)?;
        let half = t * sd / (k as f64).sqrt();
        Ok(MeanSummary {
            k,
            mean,
            sd,
            interval: Interval {
                lo: mean - half,
                hi: mean + half,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_scipy() {
        // scipy 1.17.1 / numpy: for v in the cases below, np.mean(v), np.std(v, ddof=1) and
        //   scipy.stats.t.interval(level, len(v) - 1, loc=np.mean(v), scale=scipy.stats.sem(v))
        type Case<'a> = (&'a [f64], f64, (f64, f64, f64, f64));
        let cases: [Case; 3] = [
            (
                &[0.812, 0.797, 0.825],
                0.95,
                (
                    0.8113333333333334,
                    0.01401189970465576,
                    0.7765258448637347,
                    0.846140821802932,
                ),
            ),
            (
                &[71.5, 69.25],
                0.95,
                (
                    70.375,
                    1.590990257669732,
                    56.08051967180347,
                    84.66948032819653,
                ),
            ),
            (
                &[0.1, 0.4, 0.35, 0.2, 0.3],
                0.9,
                (
                    0.27,
                    0.12041594578792296,
                    0.1551965371207093,
                    0.3848034628792907,
                ),
            ),
        ];
        for (v, level, (mean, sd, lo, hi)) in cases {
            let s = MeanSummary::of(v, level).unwrap();
            assert_eq!(s.k, v.len());
            for (got, want) in [
                (s.mean, mean),
                (s.sd, sd),
                (s.interval.lo, lo),
                (s.interval.hi, hi),
            ] {
                assert!(
                    (got - want).abs() <= 1e-12 * want.abs().max(1.0),
                    "{v:?}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn rejects_what_has_no_spread() {
        assert_eq!(
            MeanSummary::of(&[0.5], 0.95),
            Err(StatsError::TooFewValues { got: 1, need: 2 })
        );
        assert!(matches!(
            MeanSummary::of(&[0.5, f64::NAN], 0.95),
            Err(StatsError::NotFinite(_))
        ));
        assert!(MeanSummary::of(&[0.5, 0.6], 0.0).is_err());
        let same = MeanSummary::of(&[0.75, 0.75, 0.75], 0.95).unwrap();
        assert_eq!(
            (same.sd, same.interval.lo, same.interval.hi),
            (0.0, 0.75, 0.75)
        );
    }
}
