//! Disjoint calibration, search and test subsets of one pool of images (an image folder or a
//! prepared file), drawn by a seed.
//!
//! The pool's indices are shuffled once by the seed; the permutation is cut into consecutive
//! parts: the calibration part (its size is the calibration count), then the search part (the
//! search count), then the test part (everything left). `All` is the whole permutation. A
//! consumer takes the first k indices of the part it names, so with the default parts the
//! calibration and search images never overlap, and the same seed and counts always give the
//! same images whatever the machine.
use crate::rng::Rng;

/// A part of the pool (the vocabulary's type; its names are `mpq_vocab::Split`'s).
pub use mpq_vocab::PoolPart as Part;

/// A seeded partition of `0..n`.
#[derive(Clone, Debug, PartialEq)]
pub struct Partition {
    perm: Vec<usize>,
    calib: usize,
    search: usize,
}

impl Partition {
    /// `calib` and `search` are the sizes of the first two parts (clipped to the pool).
    pub fn new(n: usize, seed: u64, calib: usize, search: usize) -> Partition {
        let mut perm: Vec<usize> = (0..n).collect();
        Rng::for_item(&[seed, 0x5B5E_7000]).shuffle(&mut perm);
        let calib = calib.min(n);
        let search = search.min(n - calib);
        Partition {
            perm,
            calib,
            search,
        }
    }

    /// The indices of a part, in permutation order.
    pub fn part(&self, p: Part) -> &[usize] {
        let (c, s) = (self.calib, self.search);
        match p {
            Part::Calibration => &self.perm[..c],
            Part::Search => &self.perm[c..c + s],
            Part::Test => &self.perm[c + s..],
            Part::All => &self.perm,
        }
    }

    /// The first `k` indices of part `p`; `Err` gives the part's size when it is smaller.
    pub fn take(&self, p: Part, k: usize) -> Result<&[usize], usize> {
        let v = self.part(p);
        if k > v.len() {
            Err(v.len())
        } else {
            Ok(&v[..k])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_disjoint_seeded_and_cover_the_pool() {
        let p = Partition::new(100, 3, 10, 30);
        let (c, s, t) = (
            p.part(Part::Calibration),
            p.part(Part::Search),
            p.part(Part::Test),
        );
        assert_eq!((c.len(), s.len(), t.len()), (10, 30, 60));
        let mut all: Vec<usize> = c.iter().chain(s).chain(t).copied().collect();
        all.sort();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_eq!(p, Partition::new(100, 3, 10, 30));
        assert_ne!(
            p.part(Part::All),
            Partition::new(100, 4, 10, 30).part(Part::All)
        );
        assert_ne!(
            p.part(Part::All),
            &(0..100).collect::<Vec<_>>()[..],
            "shuffled"
        );
        assert_eq!(p.take(Part::Search, 5).unwrap(), &s[..5]);
        assert_eq!(p.take(Part::Search, 31), Err(30));
        // More asked for than the pool holds: parts are clipped, the test part is empty.
        let q = Partition::new(20, 3, 15, 10);
        assert_eq!(
            (q.part(Part::Search).len(), q.part(Part::Test).len()),
            (5, 0)
        );
    }
}
