//! The one error type of the crate: each variant says what was wrong with the input, in one line.
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub enum StatsError {
    /// A confidence level outside (0, 1).
    Level(f64),
    /// An interval or a test over zero observations.
    NoObservations,
    /// More successes than trials.
    CountAboveTotal { count: u64, total: u64 },
    /// Two per-image correctness sets over different numbers of images.
    LengthMismatch { left: usize, right: usize },
    /// A correctness string that is not the hex encoding of the given number of images.
    Encoding(String),
    /// Too few values for a spread (a sample standard deviation needs two).
    TooFewValues { got: usize, need: usize },
    /// A value that is NaN or infinite.
    NotFinite(f64),
    /// A bootstrap with no resamples.
    NoResamples,
}

impl fmt::Display for StatsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatsError::Level(l) => {
                write!(
                    f,
                    "confidence level {l}: must be a fraction in (0, 1), e.g. 0.95"
                )
            }
            StatsError::NoObservations => write!(f, "no observations (0 images)"),
            StatsError::CountAboveTotal { count, total } => {
                write!(f, "{count} successes out of {total}: more than the total")
            }
            StatsError::LengthMismatch { left, right } => write!(
                f,
                "paired correctness over different images: {left} against {right} images"
            ),
            StatsError::Encoding(why) => write!(f, "per-image correctness string: {why}"),
            StatsError::TooFewValues { got, need } => {
                write!(f, "{got} value(s): at least {need} needed")
            }
            StatsError::NotFinite(v) => write!(f, "value {v} is not finite"),
            StatsError::NoResamples => write!(f, "bootstrap with 0 resamples"),
        }
    }
}

impl std::error::Error for StatsError {}
