//! Which images a configuration classified correctly, one bit per image: what a paired test
//! needs from each evaluated configuration, stored compactly (2,048 search images are 256
//! bytes, 512 hex characters) so that any two configurations scored on the same images can be
//! compared later without running anything again.
use crate::StatsError;

/// Per-image correctness: bit `i` is set when image `i` (in the evaluation's fixed image
/// order) was classified correctly.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Correctness {
    len: usize,
    /// Bit `i` is bit `i % 64` of word `i / 64`; bits at and above `len` are zero.
    words: Vec<u64>,
}

impl Correctness {
    /// `len` images, none correct.
    pub fn new(len: usize) -> Correctness {
        Correctness {
            len,
            words: vec![0; len.div_ceil(64)],
        }
    }

    pub fn from_bools(correct: impl IntoIterator<Item = bool>) -> Correctness {
        let mut c = Correctness::default();
        for b in correct {
            c.push(b);
        }
        c
    }

    /// Append image `len()`'s result (batches arrive in order).
    pub fn push(&mut self, correct: bool) {
        if self.len.is_multiple_of(64) {
            self.words.push(0);
        }
        self.len += 1;
        self.set(self.len - 1, correct);
    }

    /// Append every result of `other` after this one's.
    pub fn extend(&mut self, other: &Correctness) {
        for i in 0..other.len {
            self.push(other.get(i));
        }
    }

    pub fn set(&mut self, i: usize, correct: bool) {
        assert!(i < self.len, "image {i} of {}", self.len);
        let bit = 1u64 << (i % 64);
        if correct {
            self.words[i / 64] |= bit;
        } else {
            self.words[i / 64] &= !bit;
        }
    }

    pub fn get(&self, i: usize) -> bool {
        assert!(i < self.len, "image {i} of {}", self.len);
        self.words[i / 64] >> (i % 64) & 1 == 1
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of images classified correctly.
    pub fn correct(&self) -> u64 {
        self.words.iter().map(|w| w.count_ones() as u64).sum()
    }

    /// Top-1 as a fraction (0 for no images).
    pub fn top1(&self) -> f64 {
        self.correct() as f64 / self.len.max(1) as f64
    }

    pub(crate) fn words(&self) -> &[u64] {
        &self.words
    }

    /// Lowercase hex of the bytes `ceil(len / 8)`, byte `k` holding images `8k..8k+8`, image
    /// `8k` in its least significant bit (so Python's `int.from_bytes(bytes.fromhex(s),
    /// "little") >> i & 1` is image `i`). The image count is stored beside it, not in it.
    pub fn to_hex(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(2 * self.len.div_ceil(8));
        for k in 0..self.len.div_ceil(8) {
            let byte = (self.words[k / 8] >> (8 * (k % 8))) as u8;
            s.push(HEX[(byte >> 4) as usize] as char);
            s.push(HEX[(byte & 15) as usize] as char);
        }
        s
    }

    /// The inverse of [`Correctness::to_hex`] for `len` images: the string must have exactly
    /// `2 * ceil(len / 8)` hex digits and no bit set past image `len - 1`.
    pub fn from_hex(len: usize, hex: &str) -> Result<Correctness, StatsError> {
        let want = 2 * len.div_ceil(8);
        if hex.len() != want {
            return Err(StatsError::Encoding(format!(
                "{} characters for {len} images, expected {want}",
                hex.len()
            )));
        }
        let mut c = Correctness::new(len);
        let digit = |ch: u8| -> Result<u64, StatsError> {
            (ch as char)
                .to_digit(16)
                .map(u64::from)
                .ok_or_else(|| StatsError::Encoding(format!("{:?} is not a hex digit", ch as char)))
        };
        for (k, pair) in hex.as_bytes().chunks(2).enumerate() {
            let byte = digit(pair[0])? << 4 | digit(pair[1])?;
            c.words[k / 8] |= byte << (8 * (k % 8));
        }
        if !len.is_multiple_of(64) {
            if let Some(last) = c.words.last() {
                if last >> (len % 64) != 0 {
                    return Err(StatsError::Encoding(format!(
                        "bits set past image {} of {len}",
                        len - 1
                    )));
                }
            }
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(n: usize) -> Correctness {
        Correctness::from_bools((0..n).map(|i| (i * 7 + i / 3) % 5 < 3))
    }

    #[test]
    fn bits_counts_and_order() {
        let c = pattern(130);
        assert_eq!(c.len(), 130);
        let want = (0..130).filter(|i| (i * 7 + i / 3) % 5 < 3).count() as u64;
        assert_eq!(c.correct(), want);
        for i in 0..130 {
            assert_eq!(c.get(i), (i * 7 + i / 3) % 5 < 3, "{i}");
        }
        let mut d = Correctness::new(3);
        d.set(1, true);
        assert_eq!((d.get(0), d.get(1), d.get(2)), (false, true, false));
        d.set(1, false);
        assert_eq!(d.correct(), 0);
        let mut e = pattern(64);
        e.extend(&pattern(66));
        assert_eq!(e.len(), 130);
        assert_eq!(e.get(64), pattern(66).get(0));
    }

    #[test]
    fn hex_round_trip_and_layout() {
        // Images 0 and 9 correct: byte 0 = 0x01, byte 1 = 0x02.
        let c = Correctness::from_bools((0..12).map(|i| i == 0 || i == 9));
        assert_eq!(c.to_hex(), "0102");
        for n in [0, 1, 7, 8, 9, 63, 64, 65, 130, 2048, 5000] {
            let c = pattern(n);
            let h = c.to_hex();
            assert_eq!(h.len(), 2 * n.div_ceil(8));
            assert_eq!(Correctness::from_hex(n, &h).unwrap(), c, "{n}");
        }
    }

    #[test]
    fn hex_rejects_what_it_did_not_write() {
        assert!(Correctness::from_hex(12, "01").is_err(), "too short");
        assert!(Correctness::from_hex(12, "01zz").is_err(), "not hex");
        assert!(
            Correctness::from_hex(12, "01f0").is_err(),
            "bit past the end"
        );
        assert!(Correctness::from_hex(12, "010f").is_ok());
    }
}
