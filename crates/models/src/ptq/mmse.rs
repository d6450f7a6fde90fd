//! MMSE quantization (Choukroun, Kravchik, Yang, Kisilev, "Low-bit quantization of neural
//! networks for efficient inference", ICCV workshops 2019): each weight grid (per output
//! channel, "kernel-wise") and each layer's input grid chosen to minimise the mean squared
//! quantization error, over clipped ranges `t * [min, max]` of a float-step grid
//! (`mpq_quant::clip`). Inputs are calibrated on the folded FP32 network over the calibration
//! images, like the spec's calibrator, but without the power-of-two restriction. Rounding is to
//! nearest. The other methods reuse these searches: AdaRound rounds on MMSE's grids, LAPQ
//! starts from the same search in other norms.
use super::{finish_weight, host, observe_fp_inputs, Granularity, MethodReport};
use crate::qmodel::{MethodLayer, QuantModel};
use candle_core::Result;
use mpq_data::Batch;
use mpq_quant::clip::{lp_rows, ClipSearch};
use mpq_quant::{BiasCorrection, BitPair, InputQuant, MinMax, Uniform};
use serde::{Deserialize, Serialize};

/// MMSE's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MmseSettings {
    /// Clipping candidates per grid: `t = 1, 1 - 1/K, ..., 1/K` of the min-max range.
    pub search_points: u32,
    /// Weight grids per output channel (the paper's kernel-wise) or per layer.
    pub weights: Granularity,
}

impl Default for MmseSettings {
    fn default() -> Self {
        MmseSettings {
            search_points: 100,
            weights: Granularity::PerChannel,
        }
    }
}

impl MmseSettings {
    pub(crate) fn validate(&self, key: &str) -> std::result::Result<(), String> {
        if !(1..=10_000).contains(&self.search_points) {
            return Err(format!(
                "{key}.search_points: must be in 1..=10000, got {}",
                self.search_points
            ));
        }
        Ok(())
    }
}

/// The best weight grid of each output channel for each norm of `norms` (one grid shared by
/// every channel under [`Granularity::PerTensor`]).
pub(crate) fn weight_grids(
    w: &[f32],
    rows: usize,
    bits: u8,
    points: u32,
    norms: &[f64],
    granularity: Granularity,
) -> Vec<Option<Vec<Uniform>>> {
    match granularity {
        Granularity::PerChannel => lp_rows(w, rows, bits, points, norms),
        Granularity::PerTensor => {
            let g = lp_rows(w, 1, bits, points, norms).remove(0);
            vec![g; rows]
        }
    }
}

/// For each layer, the clipping search of its input at `bits[i]` bits over the calibration set
/// in the norms `norms` (two forward passes: extremes, then errors). With `sample = Some(n)`
/// at most about `n` values per layer and batch are used (evenly strided), to bound the cost of
/// several norms. `None` for a layer whose input is constant.
pub(crate) fn input_searches(
    model: &QuantModel,
    calib: &[Batch],
    bits: &[u8],
    points: u32,
    norms: &[f64],
    sample: Option<usize>,
    report: &mut MethodReport,
) -> Result<Vec<Option<ClipSearch>>> {
    let n = model.n_layers();
    let mut ranges = vec![MinMax::default(); n];
    observe_fp_inputs(model, calib, &mut |i, x| {
        ranges[i].observe(&host(x)?);
        Ok(())
    })?;
    let mut searches: Vec<Option<ClipSearch>> = (0..n)
        .map(|i| ClipSearch::with_norms(ranges[i].min, ranges[i].max, bits[i], points, norms))
        .collect();
    observe_fp_inputs(model, calib, &mut |i, x| {
        if let Some(s) = searches[i].as_mut() {
            let v = host(x)?;
            match sample {
                Some(cap) if v.len() > cap => {
                    let step = v.len().div_ceil(cap);
                    let picked: Vec<f32> = v.iter().step_by(step).copied().collect();
                    s.observe(&picked);
                }
                _ => s.observe(&v),
            }
        }
        Ok(())
    })?;
    report.forward_passes += 2 * calib.len() as u64;
    Ok(searches)
}

/// MMSE's input grid of every layer at its configuration's activation bits.
pub(crate) fn input_grids(
    model: &QuantModel,
    config: &[BitPair],
    calib: &[Batch],
    points: u32,
    report: &mut MethodReport,
) -> Result<Vec<Option<Uniform>>> {
    let bits: Vec<u8> = config.iter().map(|p| p.a).collect();
    Ok(
        input_searches(model, calib, &bits, points, &[2.0], None, report)?
            .into_iter()
            .map(|s| s.map(|s| s.best(0)))
            .collect(),
    )
}

/// MMSE's layers for `config`.
pub(crate) fn layers(
    model: &QuantModel,
    config: &[BitPair],
    calib: &[Batch],
    s: &MmseSettings,
    bc: BiasCorrection,
    report: &mut MethodReport,
) -> Result<Vec<MethodLayer>> {
    let inputs = input_grids(model, config, calib, s.search_points, report)?;
    (0..model.n_layers())
        .map(|i| {
            let w = host(model.folded_layer(i).0)?;
            let rows = model.arch.layers[i].out_ch;
            let grids: Vec<Option<Uniform>> =
                weight_grids(&w, rows, config[i].w, s.search_points, &[2.0], s.weights)
                    .into_iter()
                    .map(|g| g.map(|g| g[0]))
                    .collect();
            let q = mpq_quant::uniform::quantize_rows(&w, &grids);
            Ok(MethodLayer {
                weight: finish_weight(model, i, &w, q, bc)?,
                input: inputs[i].map(InputQuant::Uniform),
            })
        })
        .collect()
}
