//! The selection rules behind the tables, as pure functions of a run's steps, so that each can be
//! stated once, documented in the reports and tested on constructed curves.
//!
//! A step is a [`TradeOff`]: its number, relative size (the paper's W-comp) and top-1 (a
//! fraction). Accuracy changes are in points: `100 * (top1 - fp32_top1)`. Comparisons allow
//! [`EPS`] for floating-point rounding, so a value exactly at a threshold qualifies.

/// One point of a run's search path: a step, its relative size and top-1 (a fraction).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TradeOff {
    pub step: Option<i64>,
    pub rel_size: f64,
    pub top1: f64,
}

/// The smallest model among `points` (relative size), ties to the higher top-1, then the
/// earlier step: the order every "smallest model that ..." rule of the reports uses.
pub(crate) fn smallest<'a>(points: impl Iterator<Item = &'a TradeOff>) -> Option<TradeOff> {
    points
        .min_by(|a, b| {
            a.rel_size
                .total_cmp(&b.rel_size)
                .then(b.top1.total_cmp(&a.top1))
                .then(a.step.cmp(&b.step))
        })
        .copied()
}

/// Allowance for rounding in every threshold comparison (in the unit compared).
pub const EPS: f64 = 1e-9;

/// Accuracy change of `p` against `fp32_top1`, in points.
pub fn change_points(p: &TradeOff, fp32_top1: f64) -> f64 {
    100.0 * (p.top1 - fp32_top1)
}

/// Size reduction of `p` in percent: `100 * (1 - rel_size)`.
pub fn reduction_pct(p: &TradeOff) -> f64 {
    100.0 * (1.0 - p.rel_size)
}

fn valid(p: &TradeOff) -> bool {
    p.rel_size.is_finite() && p.top1.is_finite()
}

/// **Smallest model within a change** (table 1's rule, and the claims' "size reduction within
/// the paper's change"): among `steps`, those whose accuracy change against `fp32_top1` is no
/// worse than `min_change_points` (`change >= min_change_points`); of these the smallest relative
/// size, ties to the higher top-1, then the earlier step. `None` when no step qualifies.
pub fn smallest_within_change(
    steps: &[TradeOff],
    fp32_top1: f64,
    min_change_points: f64,
) -> Option<TradeOff> {
    smallest(
        steps
            .iter()
            .filter(|p| valid(p) && change_points(p, fp32_top1) >= min_change_points - EPS),
    )
}

/// **Change at a size reduction** (the claims' "change at the paper's size reduction"): the
/// first step, in step order, whose size reduction reaches `reduction_pct` (`100 * (1 -
/// rel_size) >= reduction_pct`). For a greedy run, whose size shrinks at every step, this is the
/// largest model at least as small as the paper's. `None` when no step is that small.
pub fn first_reaching_reduction(steps: &[TradeOff], reduction: f64) -> Option<TradeOff> {
    let mut sorted: Vec<&TradeOff> = steps.iter().filter(|p| valid(p)).collect();
    sorted.sort_by_key(|a| a.step);
    sorted
        .into_iter()
        .find(|p| reduction_pct(p) >= reduction - EPS)
        .copied()
}

/// Greedy's top-1 advantage over one-shot at equal model size, in points (see
/// [`greedy_advantage`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Advantage {
    /// The largest advantage, and the one-shot step where it occurs (ties: the earlier step).
    pub max_points: f64,
    pub max_step: Option<i64>,
    /// The mean over the compared one-shot steps.
    pub mean_points: f64,
    /// How many one-shot steps were compared.
    pub compared: usize,
    /// How many of them have an advantage above `threshold_points`.
    pub above: usize,
}

/// **Greedy against one-shot at equal model size.** For every one-shot step k >= 1 (step 0 is
/// the all-W8A8 model in both), greedy's top-1 at that size is the best top-1 among greedy's
/// steps no larger (`rel_size <= ` the one-shot step's): what a user choosing from greedy's curve
/// gets within the same size budget. The advantage is that minus one-shot's top-1, in points.
/// Returns the largest (and its step), the mean, the number of steps compared and the number
/// above `threshold_points`; `None` when no step can be compared.
pub fn greedy_advantage(
    greedy: &[TradeOff],
    one_shot: &[TradeOff],
    threshold_points: f64,
) -> Option<Advantage> {
    let mut advs: Vec<(Option<i64>, f64)> = Vec::new();
    let mut os: Vec<&TradeOff> = one_shot
        .iter()
        .filter(|p| valid(p) && p.step.is_none_or(|k| k >= 1))
        .collect();
    os.sort_by_key(|a| a.step);
    for o in os {
        let best = greedy
            .iter()
            .filter(|g| valid(g) && g.rel_size <= o.rel_size + EPS)
            .map(|g| g.top1)
            .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.max(t))));
        if let Some(best) = best {
            advs.push((o.step, 100.0 * (best - o.top1)));
        }
    }
    let (mut max_step, mut max_points) = (None, f64::NEG_INFINITY);
    for &(k, a) in &advs {
        if a > max_points {
            (max_step, max_points) = (k, a);
        }
    }
    (!advs.is_empty()).then(|| Advantage {
        max_points,
        max_step,
        mean_points: advs.iter().map(|a| a.1).sum::<f64>() / advs.len() as f64,
        compared: advs.len(),
        above: advs.iter().filter(|a| a.1 > threshold_points + EPS).count(),
    })
}
