//! Bit pairs ("W4A8": 4-bit weights, 8-bit activations), the unit a configuration assigns to
//! each layer.
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A (weight bits, activation bits) pair, each in 2..=8. `FromStr` parses `^[Ww](\d)[Aa](\d)$`
/// strictly, `Display` writes `W4A8`; in manifests and tables it is that string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BitPair {
    pub w: u8,
    pub a: u8,
}

impl BitPair {
    pub const W8A8: BitPair = BitPair { w: 8, a: 8 };
    pub const W6A6: BitPair = BitPair { w: 6, a: 6 };
    pub const W4A8: BitPair = BitPair { w: 4, a: 8 };
    pub const W4A4: BitPair = BitPair { w: 4, a: 4 };
    pub const MIN_BITS: u8 = 2;
    pub const MAX_BITS: u8 = 8;

    pub fn new(w: u8, a: u8) -> Result<BitPair, PairError> {
        let ok = |b: u8| (Self::MIN_BITS..=Self::MAX_BITS).contains(&b);
        if ok(w) && ok(a) {
            Ok(BitPair { w, a })
        } else {
            Err(PairError(format!("W{w}A{a}")))
        }
    }
}

/// A string that is not a bit pair `WxAy` with 2 <= x, y <= 8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairError(pub String);

impl fmt::Display for PairError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid bit pair {:?}: expected WxAy with 2 <= x, y <= 8, e.g. \"W4A8\"",
            self.0
        )
    }
}

impl std::error::Error for PairError {}

impl FromStr for BitPair {
    type Err = PairError;
    fn from_str(s: &str) -> Result<Self, PairError> {
        let err = || PairError(s.to_string());
        let b = s.as_bytes();
        if b.len() != 4
            || !b[0].eq_ignore_ascii_case(&b'w')
            || !b[2].eq_ignore_ascii_case(&b'a')
            || !b[1].is_ascii_digit()
            || !b[3].is_ascii_digit()
        {
            return Err(err());
        }
        BitPair::new(b[1] - b'0', b[3] - b'0').map_err(|_| err())
    }
}

impl fmt::Display for BitPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "W{}A{}", self.w, self.a)
    }
}

impl Serialize for BitPair {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BitPair {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_strictly_and_prints_canonically() {
        assert_eq!("W4A8".parse::<BitPair>().unwrap(), BitPair::W4A8);
        assert_eq!("w6a6".parse::<BitPair>().unwrap(), BitPair::W6A6);
        for bad in ["W3A9", "W4", "w4a4x", "W1A8", "W10A8", "A4W4", "", "W4A 8"] {
            assert!(bad.parse::<BitPair>().is_err(), "{bad}");
        }
        assert_eq!(BitPair::W4A4.to_string(), "W4A4");
    }
}
