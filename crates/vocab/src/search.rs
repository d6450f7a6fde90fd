//! The search vocabulary: strategy names and the beta setting of eq. 2.
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

crate::names! {
    /// `search.strategy`: which search runs. The declaration order is the order of tables and
    /// legends in the reports.
    pub enum StrategyName ("strategy") {
        /// The paper's Algorithm 1.
        Greedy = "greedy",
        /// Minoux's accelerated greedy (stale marginal values as upper bounds).
        LazyGreedy = "lazy-greedy",
        /// Greedy that screens candidates on a fraction of the images first.
        ScreenedGreedy = "screened-greedy",
        /// Order by single-layer sensitivity (Wu et al. 2020, as the paper extends it).
        OneShot = "one-shot",
        /// A seeded random order: the floor any search must beat.
        Random = "random",
        /// The best set of each size, by trying every set (small N only).
        Exhaustive = "exhaustive",
        /// No search: every layer at the low pair at once (a post-training baseline's
        /// configuration, one evaluation).
        Uniform = "uniform",
    }
}

impl StrategyName {
    /// Whether the strategy's choices depend on beta (one-shot and random use accuracy alone).
    pub const fn uses_beta(self) -> bool {
        match self {
            StrategyName::Greedy
            | StrategyName::LazyGreedy
            | StrategyName::ScreenedGreedy
            | StrategyName::Exhaustive => true,
            StrategyName::OneShot | StrategyName::Random | StrategyName::Uniform => false,
        }
    }

    /// Whether its steps are nested sets, each adding one layer (all but exhaustive, whose
    /// step k is the best set of size k, and uniform, whose step 1 is every layer).
    pub const fn nested(self) -> bool {
        match self {
            StrategyName::Exhaustive | StrategyName::Uniform => false,
            StrategyName::Greedy
            | StrategyName::LazyGreedy
            | StrategyName::ScreenedGreedy
            | StrategyName::OneShot
            | StrategyName::Random => true,
        }
    }
}

/// `search.beta`: a fixed finite beta >= 0, or `"auto"` (paper sec. 4.1). In a manifest, a
/// number (integers accepted) or the string `"auto"`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BetaSetting {
    Fixed(f64),
    Auto,
}

impl BetaSetting {
    /// A fixed beta, refused unless finite and >= 0; `-0.0` becomes `0.0` so both resolve (and
    /// hash) alike.
    pub fn fixed(b: f64) -> Result<BetaSetting, String> {
        if b.is_finite() && b >= 0.0 {
            Ok(BetaSetting::Fixed(b + 0.0))
        } else {
            Err(format!(
                "beta must be a finite number >= 0 or \"auto\", got {b}"
            ))
        }
    }

    /// The fixed value, `None` for `auto`.
    pub fn value(self) -> Option<f64> {
        match self {
            BetaSetting::Fixed(b) => Some(b),
            BetaSetting::Auto => None,
        }
    }

    /// Numbers ascending, then `auto`: the order of tables.
    pub fn order_key(self) -> (u8, f64) {
        match self {
            BetaSetting::Fixed(b) => (0, b),
            BetaSetting::Auto => (1, 0.0),
        }
    }
}

impl fmt::Display for BetaSetting {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            BetaSetting::Fixed(b) => write!(f, "{b}"),
            BetaSetting::Auto => f.write_str(Self::AUTO),
        }
    }
}

impl BetaSetting {
    const AUTO: &'static str = "auto";
}

impl std::str::FromStr for BetaSetting {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == Self::AUTO {
            return Ok(BetaSetting::Auto);
        }
        match s.parse::<f64>() {
            Ok(b) => BetaSetting::fixed(b),
            Err(_) => Err(format!(
                "beta must be a finite number >= 0 or \"auto\", got {s:?}"
            )),
        }
    }
}

impl Serialize for BetaSetting {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            BetaSetting::Fixed(b) => s.serialize_f64(*b),
            BetaSetting::Auto => s.serialize_str(Self::AUTO),
        }
    }
}

impl<'de> Deserialize<'de> for BetaSetting {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = BetaSetting;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a finite number >= 0 or \"auto\"")
            }
            fn visit_f64<E: serde::de::Error>(self, b: f64) -> Result<BetaSetting, E> {
                BetaSetting::fixed(b).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, b: i64) -> Result<BetaSetting, E> {
                BetaSetting::fixed(b as f64).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, b: u64) -> Result<BetaSetting, E> {
                BetaSetting::fixed(b as f64).map_err(E::custom)
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<BetaSetting, E> {
                if s == BetaSetting::AUTO {
                    Ok(BetaSetting::Auto)
                } else {
                    Err(E::custom(format!(
                        "beta must be a finite number >= 0 or \"auto\", got {s:?}"
                    )))
                }
            }
        }
        d.deserialize_any(V)
    }
}
