//! A random order of the searchable layers: `S_k` = the first k layers of a seeded shuffle.
//!
//! It exists as the floor any search must beat: a search that does no better than a random
//! order at the same set sizes has learnt nothing from its evaluations. It costs one evaluation
//! per step (M in all) and uses accuracy alone (beta 0). The generator is written here
//! (splitmix64, Steele et al. 2014) so that the crate needs no dependency and an order is
//! reproducible from its seed on every platform.
use crate::one_shot::fixed_order_steps;
use crate::state::Search;
use crate::{Evaluator, Observer, SearchError};

/// Steps 1..=M of the random search, after step 0 (`top0`, already evaluated).
pub(crate) fn random<E: Evaluator>(
    s: &mut Search,
    seed: u64,
    top0: f64,
    eval: &mut E,
    obs: &mut dyn Observer,
) -> Result<(), SearchError<E::Error>> {
    s.push_step(None, top0, Some(top0));
    s.notify_step(0, obs);
    s.commit(eval)?;
    let order = shuffled(&s.ground, seed);
    fixed_order_steps(s, &order[..s.last], 1, eval, obs)
}

/// `items` in a random order: Fisher-Yates from the last position down, position `i` swapped
/// with a uniform index in `0..=i` drawn from [`SplitMix64`] seeded with `seed`.
pub(crate) fn shuffled(items: &[usize], seed: u64) -> Vec<usize> {
    let mut v = items.to_vec();
    let mut rng = SplitMix64(seed);
    for i in (1..v.len()).rev() {
        v.swap(i, rng.below(i as u64 + 1) as usize);
    }
    v
}

/// The splitmix64 generator: a 64-bit state advanced by the golden-ratio increment and mixed.
pub(crate) struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n >= 1) by the multiply-high method; its bias, below n / 2^64, is
    /// irrelevant for layer counts.
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}
