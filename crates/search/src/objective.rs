//! The objective of the greedy search (paper eq. 2) and its automatic beta (paper sec. 4.1),
//! spec sections 4 and 7.
//!
//! This module exists so that the two formulas that turn accuracies and layer sizes into a
//! choice live in one place, as plain functions a reader can check against the paper, with
//! their undefined cases (ln 0, a zero accuracy) made explicit rather than turned into NaN.

/// Eq. 2: `f(S) = acc(S) * (ln params(S))^beta`.
///
/// With `beta == 0` it is the accuracy itself, also for `params_low == 0` (step 0). With
/// `beta > 0` and `params_low == 0`, `ln 0` is undefined and the result is `None`.
pub fn objective(top1: f64, params_low: u64, beta: f64) -> Option<f64> {
    if beta == 0.0 {
        return Some(top1);
    }
    if params_low == 0 {
        return None;
    }
    Some(top1 * (params_low as f64).ln().powf(beta))
}

/// Why automatic beta cannot be computed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum AutoBetaError {
    /// No layers.
    #[error("no step-1 accuracies")]
    Empty,
    /// Not one accuracy per layer.
    #[error("{n_acc} step-1 accuracies for {n_layers} layers")]
    LengthMismatch {
        /// Accuracies given.
        n_acc: usize,
        /// Layers given.
        n_layers: usize,
    },
    /// A step-1 accuracy of 0 (spec sec. 7: the run stops).
    #[error("the step-1 accuracy of layer {layer_index} is 0 (ln 0)")]
    ZeroAccuracy {
        /// The layer.
        layer_index: usize,
    },
    /// A step-1 accuracy that is not a fraction in (0, 1].
    #[error("the step-1 accuracy of layer {layer_index} is {value}, not a fraction in (0, 1]")]
    InvalidAccuracy {
        /// The layer.
        layer_index: usize,
        /// Its accuracy.
        value: f64,
    },
    /// A layer with fewer than 2 weights, so `ln n_j <= 0`.
    #[error("layer {layer_index} has {n} weight(s), so ln n <= 0")]
    TooFewWeights {
        /// The layer.
        layer_index: usize,
        /// Its weight count.
        n: u64,
    },
}

/// Layer sizes for which `p_j = ln n_j > 0` for every layer (n_j >= 2); the only condition on
/// automatic beta that is known before any evaluation.
pub(crate) fn check_auto_params(layer_params: &[u64]) -> Result<(), AutoBetaError> {
    match layer_params.iter().position(|&n| n < 2) {
        Some(i) => Err(AutoBetaError::TooFewWeights {
            layer_index: i,
            n: layer_params[i],
        }),
        None => Ok(()),
    }
}

/// Automatic beta (paper sec. 4.1; spec sections 4 and 7) from the step-1 accuracies
/// `a_j = acc({j})` (indexed by layer) and `p_j = ln n_j`:
/// `beta = ln(min a / max a) / ln(min p / max p)`, which makes the min/max ratios of both
/// factors of eq. 2 equal. If either ratio is 1, beta = 0. A zero accuracy makes it undefined,
/// as does a layer with fewer than 2 weights (`p_j <= 0`). The result is finite and >= 0.
pub fn auto_beta(step1_acc: &[f64], layer_params: &[u64]) -> Result<f64, AutoBetaError> {
    if step1_acc.is_empty() {
        return Err(AutoBetaError::Empty);
    }
    if step1_acc.len() != layer_params.len() {
        return Err(AutoBetaError::LengthMismatch {
            n_acc: step1_acc.len(),
            n_layers: layer_params.len(),
        });
    }
    for (j, &a) in step1_acc.iter().enumerate() {
        if a == 0.0 {
            return Err(AutoBetaError::ZeroAccuracy { layer_index: j });
        }
        if !(a > 0.0 && a <= 1.0) {
            return Err(AutoBetaError::InvalidAccuracy {
                layer_index: j,
                value: a,
            });
        }
    }
    check_auto_params(layer_params)?;
    let (amin, amax) = min_max(step1_acc.iter().copied());
    let (pmin, pmax) = min_max(layer_params.iter().map(|&n| (n as f64).ln()));
    let (ra, rp) = (amin / amax, pmin / pmax);
    if ra == 1.0 || rp == 1.0 {
        return Ok(0.0);
    }
    // Both logarithms are < 0 here, so beta > 0.
    Ok(ra.ln() / rp.ln())
}

fn min_max(xs: impl Iterator<Item = f64>) -> (f64, f64) {
    xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    })
}
