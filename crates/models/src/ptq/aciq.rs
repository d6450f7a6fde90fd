//! ACIQ + bit allocation + bias correction (Banner, Nahshan, Soudry 2019), the row "ACIQ +
//! bit-alloc + bias-corr" of the paper's appendix table 1, as the reference implementation runs
//! it (`-c laplace -baa -baw -bcw`):
//! - inputs: analytically clipped grids from a Laplace (or Gaussian) fit of the calibration
//!   values (`mpq_quant::aciq`), per layer (common protocol) or per channel with the channels'
//!   bit-widths allocated under the layer's budget (the paper's, `per_channel_inputs`);
//! - weights: per-channel min-max grids (ACIQ does not clip weights) whose bit-widths are
//!   allocated per channel under the layer's budget from the channels' standard deviations;
//! - bias correction of the quantized weights (on by default for this method).
//!
//! As in the reference implementation, bit allocation applies at 4 bits and below
//! (`allocation_max_bits`); a channel can get 0 bits (it keeps its mean) and at most 8.
use super::{finish_weight, host, observe_fp_inputs, MethodReport};
use crate::qmodel::{MethodLayer, QuantModel};
use candle_core::{Result, Tensor};
use mpq_data::Batch;
use mpq_quant::aciq::{allocate_bits, Prior, Stats};
use mpq_quant::uniform::row_extremes;
use mpq_quant::{BiasCorrection, BitPair, InputQuant, Uniform};
use serde::{Deserialize, Serialize};

/// ACIQ's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AciqSettings {
    /// The distribution fitted to each input (the reference runs `laplace`).
    pub prior: Prior,
    /// Per-channel bit allocation of the weights.
    pub weight_bit_allocation: bool,
    /// One grid per input channel, with bit allocation (the paper's protocol; hardware needs
    /// per-channel activation scales). Off in the common protocol: one grid per layer input.
    pub per_channel_inputs: bool,
    /// Bit allocation applies to tensors quantized to at most this many bits.
    pub allocation_max_bits: u8,
}

impl Default for AciqSettings {
    fn default() -> Self {
        AciqSettings {
            prior: Prior::Laplace,
            weight_bit_allocation: true,
            per_channel_inputs: false,
            allocation_max_bits: 4,
        }
    }
}

/// The widest bit-width bit allocation gives a channel.
const MAX_CHANNEL_BITS: u8 = 8;

impl AciqSettings {
    pub(crate) fn validate(&self, key: &str) -> std::result::Result<(), String> {
        if !(1..=8).contains(&self.allocation_max_bits) {
            return Err(format!(
                "{key}.allocation_max_bits: must be in 1..=8, got {}",
                self.allocation_max_bits
            ));
        }
        Ok(())
    }
}

/// Channel statistics of an input tensor `[B, C, ...]` (host values).
fn observe_channels(stats: &mut [Stats], x: &Tensor, second_pass: bool) -> Result<()> {
    let v = host(x)?;
    let c = stats.len();
    let inner: usize = x.dims()[2..].iter().product::<usize>().max(1);
    for (k, plane) in v.chunks(inner).enumerate() {
        let s = &mut stats[k % c];
        if second_pass {
            s.observe_deviation(plane);
        } else {
            s.observe(plane);
        }
    }
    Ok(())
}

/// ACIQ's grids for every layer's input at `config`'s activation bits.
pub(crate) fn input_quantizers(
    model: &QuantModel,
    config: &[BitPair],
    calib: &[Batch],
    s: &AciqSettings,
    report: &mut MethodReport,
) -> Result<Vec<Option<InputQuant>>> {
    let n = model.n_layers();
    // Per layer: one Stats (per tensor) or one per channel (rank-4 inputs only).
    let mut stats: Vec<Vec<Stats>> = vec![vec![]; n];
    for pass in [false, true] {
        observe_fp_inputs(model, calib, &mut |i, x| {
            let per_channel = s.per_channel_inputs && x.rank() == 4;
            if stats[i].is_empty() {
                stats[i] = vec![Stats::new(); if per_channel { x.dim(1)? } else { 1 }];
            }
            if per_channel {
                observe_channels(&mut stats[i], x, pass)
            } else {
                let v = host(x)?;
                if pass {
                    stats[i][0].observe_deviation(&v);
                } else {
                    stats[i][0].observe(&v);
                }
                Ok(())
            }
        })?;
    }
    report.forward_passes += 2 * calib.len() as u64;
    Ok(stats
        .iter()
        .zip(config)
        .map(|(st, p)| {
            if st.len() == 1 {
                st[0].aciq_grid(s.prior, p.a).map(InputQuant::Uniform)
            } else {
                let bits = if p.a <= s.allocation_max_bits {
                    let spread: Vec<f64> = st.iter().map(|c| c.scale(s.prior)).collect();
                    allocate_bits(&spread, p.a, MAX_CHANNEL_BITS)
                } else {
                    vec![p.a; st.len()]
                };
                // A constant channel keeps its value.
                let grids = st
                    .iter()
                    .zip(&bits)
                    .map(|(c, &b)| {
                        c.aciq_grid(s.prior, b)
                            .unwrap_or_else(|| Uniform::constant(c.mean() as f32))
                    })
                    .collect();
                Some(InputQuant::PerChannel(grids))
            }
        })
        .collect())
}

/// ACIQ's weights of one layer: per-channel min-max at the allocated bit-widths.
pub(crate) fn quantize_weights(w: &[f32], rows: usize, bits: u8, s: &AciqSettings) -> Vec<f32> {
    let alloc = if s.weight_bit_allocation && bits <= s.allocation_max_bits {
        let n = w.len() / rows;
        let spread: Vec<f64> = w
            .chunks(n)
            .map(|r| {
                let m = r.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
                (r.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / n as f64).sqrt()
            })
            .collect();
        allocate_bits(&spread, bits, MAX_CHANNEL_BITS)
    } else {
        vec![bits; rows]
    };
    let grids: Vec<Option<Uniform>> = row_extremes(w, rows)
        .into_iter()
        .zip(w.chunks(w.len() / rows))
        .zip(alloc)
        .map(|(((mn, mx), row), b)| {
            if b == 0 {
                let m = row.iter().map(|&x| x as f64).sum::<f64>() / row.len() as f64;
                Some(Uniform::constant(m as f32))
            } else {
                Uniform::from_range(mn, mx, b)
            }
        })
        .collect();
    mpq_quant::uniform::quantize_rows(w, &grids)
}

/// ACIQ's layers for `config`.
pub(crate) fn layers(
    model: &QuantModel,
    config: &[BitPair],
    calib: &[Batch],
    s: &AciqSettings,
    bc: BiasCorrection,
    report: &mut MethodReport,
) -> Result<Vec<MethodLayer>> {
    let inputs = input_quantizers(model, config, calib, s, report)?;
    inputs
        .into_iter()
        .enumerate()
        .map(|(i, input)| {
            let w = host(model.folded_layer(i).0)?;
            let q = quantize_weights(&w, model.arch.layers[i].out_ch, config[i].w, s);
            Ok(MethodLayer {
                weight: finish_weight(model, i, &w, q, bc)?,
                input,
            })
        })
        .collect()
}
