//! What every reported accuracy rests on: which images it was measured on (the search images
//! or the held-out ones), its 95% Wilson interval, and paired comparisons of two
//! configurations scored on the same held-out images (the per-image bitsets the runs store).
//!
//! Rules (each report states the ones it uses):
//! - `plan::Score`: a table or figure shows held-out top-1 when every finished run it draws on
//!   has held-out scores, else the search images' top-1 (and says which);
//! - every top-1 is shown with its Wilson 95% interval over the images it was measured on;
//! - a change between two configurations on the same held-out images (a step against FP32,
//!   greedy against one-shot) gets a 95% paired bootstrap interval (resampling images,
//!   [`BOOTSTRAP_RESAMPLES`] resamples, seed [`BOOTSTRAP_SEED`]) and the exact McNemar
//!   p-value of its discordant images;
//! - a verdict ([`Verdict`]) compares such an interval with the claim's threshold: reproduced
//!   when the whole interval supports the claim, not reproduced when the whole interval
//!   contradicts it, inconclusive otherwise.

use mpq_stats::{wilson, Correctness, Interval, Paired, LEVEL_95};

use crate::fmt::DASH;

/// Resamples of every paired bootstrap interval of the reports.
pub const BOOTSTRAP_RESAMPLES: usize = 2000;
/// Seed of every paired bootstrap interval of the reports (the same inputs give the same bytes).
pub const BOOTSTRAP_SEED: u64 = 12;

/// Correct answers behind a top-1 of `images` images (top-1 is `correct / images` exactly).
fn correct_of(top1: f64, images: u32) -> u64 {
    (top1 * f64::from(images)).round().max(0.0) as u64
}

/// The Wilson 95% interval of a top-1 measured on `images` images, in percent.
pub(crate) fn wilson_pct(top1: f64, images: u32) -> Option<Interval> {
    if images == 0 || !top1.is_finite() {
        return None;
    }
    let k = correct_of(top1, images).min(u64::from(images));
    wilson(k, u64::from(images), LEVEL_95)
        .ok()
        .map(|i| Interval {
            lo: 100.0 * i.lo,
            hi: 100.0 * i.hi,
        })
}

/// `80.12 [79.01, 81.20]`: a top-1 in percent with its Wilson 95% interval; `—` when absent.
pub(crate) fn pct_ci(top1: Option<f64>, images: u32) -> String {
    match (top1, top1.and_then(|t| wilson_pct(t, images))) {
        (Some(t), Some(i)) => format!("{:.2} [{:.2}, {:.2}]", 100.0 * t, i.lo, i.hi),
        (Some(t), None) => format!("{:.2}", 100.0 * t),
        _ => DASH.to_string(),
    }
}

/// Two configurations compared on the same held-out images: `a - b` in points, its 95% paired
/// bootstrap interval and the exact McNemar p-value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct PairedChange {
    pub points: f64,
    pub interval: Interval,
    pub p_value: f64,
    pub images: u64,
}

impl PairedChange {
    /// `a` against `b`, image by image; `None` when they are not the same images.
    pub fn of(a: &Correctness, b: &Correctness) -> Option<PairedChange> {
        let p = Paired::of(a, b).ok()?;
        let i = p
            .bootstrap(BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, LEVEL_95)
            .ok()?;
        Some(PairedChange {
            points: 100.0 * p.difference(),
            interval: Interval {
                lo: 100.0 * i.lo,
                hi: 100.0 * i.hi,
            },
            p_value: p.mcnemar(),
            images: p.images,
        })
    }

    /// `-1.24 [-1.80, -0.70]`
    pub fn cell(&self) -> String {
        format!(
            "{:+.2} [{:+.2}, {:+.2}]",
            self.points, self.interval.lo, self.interval.hi
        )
    }
}

/// A claim's verdict (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Reproduced,
    NotReproduced,
    Inconclusive,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Reproduced => "reproduced",
            Verdict::NotReproduced => "not reproduced",
            Verdict::Inconclusive => "inconclusive",
        }
    }

    /// The claim "the quantity is at least `threshold`", judged on its interval: reproduced
    /// when `lo >= threshold`, not reproduced when `hi < threshold`, inconclusive otherwise.
    pub fn at_least(interval: Interval, threshold: f64) -> Verdict {
        if interval.lo >= threshold - crate::rules::EPS {
            Verdict::Reproduced
        } else if interval.hi < threshold - crate::rules::EPS {
            Verdict::NotReproduced
        } else {
            Verdict::Inconclusive
        }
    }

    /// The claim "the quantity exceeds `threshold`": reproduced when `lo > threshold`, not
    /// reproduced when `hi <= threshold`, inconclusive otherwise.
    pub fn above(interval: Interval, threshold: f64) -> Verdict {
        if interval.lo > threshold + crate::rules::EPS {
            Verdict::Reproduced
        } else if interval.hi <= threshold + crate::rules::EPS {
            Verdict::NotReproduced
        } else {
            Verdict::Inconclusive
        }
    }

    /// A claim that needs `need` of several parts: reproduced when at least `need` parts are,
    /// not reproduced when fewer than `need` parts are reproduced or inconclusive, inconclusive
    /// otherwise.
    pub fn at_least_parts(parts: &[Verdict], need: usize) -> Verdict {
        let yes = parts.iter().filter(|v| **v == Verdict::Reproduced).count();
        let maybe = parts
            .iter()
            .filter(|v| **v == Verdict::Inconclusive)
            .count();
        if yes >= need {
            Verdict::Reproduced
        } else if yes + maybe < need {
            Verdict::NotReproduced
        } else {
            Verdict::Inconclusive
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(lo: f64, hi: f64) -> Interval {
        Interval { lo, hi }
    }

    #[test]
    fn verdicts_follow_the_interval() {
        assert_eq!(Verdict::at_least(iv(-0.5, 0.3), -1.0), Verdict::Reproduced);
        assert_eq!(Verdict::at_least(iv(-1.0, 0.3), -1.0), Verdict::Reproduced);
        assert_eq!(
            Verdict::at_least(iv(-1.5, -0.3), -1.0),
            Verdict::Inconclusive
        );
        assert_eq!(
            Verdict::at_least(iv(-3.0, -1.2), -1.0),
            Verdict::NotReproduced
        );
        assert_eq!(Verdict::above(iv(1.2, 3.0), 1.0), Verdict::Reproduced);
        assert_eq!(Verdict::above(iv(1.0, 3.0), 1.0), Verdict::Inconclusive);
        assert_eq!(Verdict::above(iv(-0.2, 1.0), 1.0), Verdict::NotReproduced);
        use Verdict::*;
        assert_eq!(
            Verdict::at_least_parts(&[Reproduced, Inconclusive], 2),
            Inconclusive
        );
        assert_eq!(
            Verdict::at_least_parts(&[Reproduced, Reproduced, NotReproduced], 2),
            Reproduced
        );
        assert_eq!(
            Verdict::at_least_parts(&[Reproduced, NotReproduced], 2),
            NotReproduced
        );
        assert_eq!(Verdict::at_least_parts(&[], 1), NotReproduced);
    }

    #[test]
    fn wilson_in_percent_and_cells() {
        // statsmodels 0.15.0: proportion_confint(4000, 5000, alpha=0.05, method="wilson")
        //   = (0.7886843227480312, 0.8108550560849347)
        let i = wilson_pct(0.8, 5000).unwrap();
        assert!((i.lo - 78.86843227480312).abs() < 1e-9, "{i:?}");
        assert!((i.hi - 81.08550560849347).abs() < 1e-9, "{i:?}");
        assert_eq!(pct_ci(Some(0.8), 5000), "80.00 [78.87, 81.09]");
        assert_eq!(pct_ci(None, 5000), DASH);
        assert_eq!(pct_ci(Some(0.8), 0), "80.00");
    }

    #[test]
    fn paired_change_of_bitsets() {
        // 100 images: a right on 0..60, b right on 10..60 and 60..65: a - b = (10 - 5) / 100.
        let a = Correctness::from_bools((0..100).map(|i| i < 60));
        let b = Correctness::from_bools((0..100).map(|i| (10..65).contains(&i)));
        let c = PairedChange::of(&a, &b).unwrap();
        assert!((c.points - 5.0).abs() < 1e-12);
        assert!(c.interval.lo < 5.0 && c.interval.hi > 5.0, "{c:?}");
        // scipy 1.17.1: binomtest(10, 15, 0.5).pvalue = 0.30175781249999994
        assert!((c.p_value - 0.30175781249999994).abs() < 1e-12);
        assert_eq!(c.images, 100);
        let short = Correctness::from_bools((0..99).map(|i| i < 60));
        assert!(PairedChange::of(&a, &short).is_none());
    }
}
