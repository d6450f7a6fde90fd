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

/// The splitmix64 generator (the stats crate's, shared with its bootstrap).
pub(crate) use mpq_stats::SplitMix64;
