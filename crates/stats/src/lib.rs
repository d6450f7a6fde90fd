//! Evidence that tells a claim from noise: the statistics behind every accuracy the project
//! reports. An accuracy is a count of correct answers on a finite set of images, so it comes
//! with an interval ([`wilson`]); two configurations scored on the same images are compared
//! image by image ([`Correctness`], [`Paired`]: the exact McNemar test on the discordant
//! images, and a paired bootstrap interval for the difference of the two accuracies); a result
//! repeated over seeds is summarised by its mean, sample standard deviation and a Student-t
//! interval ([`MeanSummary`]).
//!
//! Pure `std`, no candle, no polars: the runner stores [`Correctness`] bitsets (as hex
//! strings), the report computes intervals and verdicts from them. Every function that takes a
//! confidence level takes it as a fraction in (0, 1) (0.95 for 95%); every bad input is a
//! [`StatsError`], never a panic or a NaN.
//!
//! References (the unit tests pin values computed by them): Wilson (1927); McNemar (1947), in
//! its exact form a two-sided binomial test of the discordant counts at p = 1/2, as
//! `scipy.stats.binomtest`; Efron and Tibshirani (1993) for the percentile bootstrap; the
//! special functions follow Wichura's AS 241 (normal quantile), Lanczos' approximation of
//! ln Gamma and the continued fraction of the regularized incomplete beta function.

mod correctness;
mod error;
mod interval;
mod paired;
mod repeats;
mod rng;
mod special;

pub use correctness::Correctness;
pub use error::StatsError;
pub use interval::{wilson, Interval, LEVEL_95};
pub use paired::{mcnemar_exact, Paired};
pub use repeats::MeanSummary;
pub use rng::SplitMix64;
pub use special::{normal_quantile, student_t_cdf, student_t_quantile};

/// Checks a confidence level: a finite fraction strictly between 0 and 1.
fn check_level(level: f64) -> Result<(), StatsError> {
    if level.is_finite() && level > 0.0 && level < 1.0 {
        Ok(())
    } else {
        Err(StatsError::Level(level))
    }
}
