//! Post-training quantization methods other than the spec's, as baselines and as alternative
//! quantizers for the searches: MMSE (Choukroun et al. 2019), ACIQ with bit allocation and bias
//! correction (Banner et al. 2019), AdaRound (Nagel et al. 2020) and LAPQ (Nahshan et al. 2019).
//! `rtn` is the spec's quantizer itself (round to nearest on the power-of-two min-max grid).
//!
//! A method turns the folded FP32 network and the calibration images into, for each layer at
//! the pair a configuration gives it, a quantized weight and a quantizer of the layer's input
//! ([`MethodLayer`]); [`apply`] installs them in the [`QuantModel`], where they replace the
//! spec's quantizer for that (layer, pair). Evaluating a configuration, switching it, and the
//! search's prefix reuse then work unchanged.
//!
//! Protocols. Each method's paper has its own protocol (float steps, first and last layers kept
//! at 8 bits, per-tensor or per-channel grids). The default here is one **common protocol**:
//! every quantizable layer at the run's pair, weights per output channel and inputs per layer,
//! so that a table compares methods, not protocols. Each published choice is a setting, and
//! [`PtqConfig::published`] gives the published protocol of a method; `docs/ptq-methods.md`
//! lists them. The arithmetic lives in `mpq_quant` (`uniform`, `clip`, `aciq`,
//! `bias_correction`); the network-level procedures (calibration passes, layer-wise
//! reconstruction, the loss of the quantized network) live here.
//!
//! The settings are serde structures so that a manifest's `[quant]` section can carry them:
//! `method = "adaround"`, `bias_correction = "mean"`, `[quant.adaround] iterations = 500`.
use crate::arch::{LayerRunner, Stage};
use crate::qmodel::{apply_layer, MethodLayer, QuantModel};
use candle_core::{Result, Tensor};
use mpq_data::Batch;
use mpq_quant::{correct_weights, BiasCorrection, BitPair};
use serde::{Deserialize, Serialize};

pub mod aciq;
pub mod adaround;
pub mod lapq;
pub mod mmse;

pub use aciq::AciqSettings;
pub use adaround::{AdaRoundGrid, AdaRoundSettings};
pub use lapq::LapqSettings;
pub use mmse::MmseSettings;
/// The methods' names live in the vocabulary (spelled once).
pub use mpq_vocab::MethodName;

/// One grid per output channel (the common protocol, as the spec's weights) or one per layer
/// (LAPQ's and AdaRound's papers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Granularity {
    #[default]
    PerChannel,
    PerTensor,
}

/// A run's post-training method and its settings (the future `[quant]` keys).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PtqConfig {
    pub method: MethodName,
    /// Bias correction of the quantized weights, with any method; unset: the method's own
    /// default (`mean` for ACIQ and LAPQ, whose papers apply it; `off` otherwise).
    pub bias_correction: Option<BiasCorrection>,
    /// Keep the first and the last quantizable layer at the run's high pair (ACIQ's, LAPQ's and
    /// AdaRound's papers keep them at 8 bits or unquantized). Off in the common protocol.
    pub first_last_high: bool,
    pub mmse: MmseSettings,
    pub aciq: AciqSettings,
    pub adaround: AdaRoundSettings,
    pub lapq: LapqSettings,
}

impl Default for PtqConfig {
    fn default() -> Self {
        PtqConfig {
            method: MethodName::Rtn,
            bias_correction: None,
            first_last_high: false,
            mmse: MmseSettings::default(),
            aciq: AciqSettings::default(),
            adaround: AdaRoundSettings::default(),
            lapq: LapqSettings::default(),
        }
    }
}

impl PtqConfig {
    /// `method` under the common protocol with its default settings.
    pub fn common(method: MethodName) -> PtqConfig {
        PtqConfig {
            method,
            ..PtqConfig::default()
        }
    }

    /// `method` with its paper's protocol (see `docs/ptq-methods.md`).
    pub fn published(method: MethodName) -> PtqConfig {
        let mut c = PtqConfig::common(method);
        match method {
            MethodName::Rtn | MethodName::Mmse => {}
            MethodName::Aciq => {
                c.first_last_high = true;
                c.aciq.per_channel_inputs = true;
            }
            MethodName::AdaRound => {
                c.first_last_high = true;
                c.adaround.weights = Granularity::PerTensor;
                c.adaround.iterations = 10_000;
                c.adaround.learning_rate = 1e-3;
            }
            MethodName::Lapq => {
                c.first_last_high = true;
                c.lapq.weights = Granularity::PerTensor;
            }
        }
        c
    }

    /// The bias correction this run applies.
    pub fn bias_correction(&self) -> BiasCorrection {
        self.bias_correction.unwrap_or(match self.method {
            MethodName::Aciq | MethodName::Lapq => BiasCorrection::Mean,
            _ => BiasCorrection::Off,
        })
    }

    /// Check every setting; an error names the key (`quant.adaround.iterations: ...`).
    pub fn validate(&self) -> std::result::Result<(), String> {
        self.mmse.validate("quant.mmse")?;
        self.aciq.validate("quant.aciq")?;
        self.adaround.validate("quant.adaround")?;
        self.lapq.validate("quant.lapq")
    }

    /// The configuration of a baseline run at `low`: every layer, or every layer but the first
    /// and the last (kept at `high`) under [`PtqConfig::first_last_high`].
    pub fn configuration(&self, n: usize, low: BitPair, high: BitPair) -> Vec<BitPair> {
        (0..n)
            .map(|i| {
                if self.first_last_high && (i == 0 || i + 1 == n) {
                    high
                } else {
                    low
                }
            })
            .collect()
    }
}

/// What a method spent: for the runs table and the search-cost report.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MethodReport {
    pub method: MethodName,
    /// Wall time of [`apply`] (calibration passes included).
    pub wall_s: f64,
    /// Forward passes of the whole network over the calibration images (statistics passes and
    /// LAPQ's loss evaluations).
    pub forward_passes: u64,
    /// Optimisation iterations: AdaRound's Adam steps (all layers), LAPQ's loss evaluations
    /// in its joint search, 0 for the closed-form methods.
    pub iterations: u64,
    /// Method-specific figures, one line each (e.g. LAPQ's fitted p, AdaRound's soft values).
    pub notes: Vec<String>,
}

/// Run `cfg`'s method for each configuration of `configs` on `calib` and install its layers in
/// `model` (later configurations overwrite the (layer, pair) entries of earlier ones). `rtn`
/// without bias correction installs nothing: the spec's quantizer is already there once
/// [`QuantModel::prepare`] ran for the pairs.
pub fn apply(
    model: &mut QuantModel,
    cfg: &PtqConfig,
    configs: &[Vec<BitPair>],
    calib: &[Batch],
) -> Result<MethodReport> {
    if let Err(e) = cfg.validate() {
        candle_core::bail!("{e}");
    }
    let ((), report) = timed(cfg.method, |report| {
        install(model, cfg, configs, calib, report)
    })?;
    Ok(report)
}

/// `f` with a fresh report of `method` and its wall time: the bookkeeping every entry point
/// of the methods shares ([`apply`], `adaround::run`, `lapq::run`).
pub(crate) fn timed<T>(
    method: MethodName,
    f: impl FnOnce(&mut MethodReport) -> Result<T>,
) -> Result<(T, MethodReport)> {
    let t0 = std::time::Instant::now();
    let mut report = MethodReport {
        method,
        ..MethodReport::default()
    };
    let out = f(&mut report)?;
    report.wall_s = t0.elapsed().as_secs_f64();
    Ok((out, report))
}

/// The body of [`apply`]: every configuration's layers, installed.
fn install(
    model: &mut QuantModel,
    cfg: &PtqConfig,
    configs: &[Vec<BitPair>],
    calib: &[Batch],
    report: &mut MethodReport,
) -> Result<()> {
    let bc = cfg.bias_correction();
    for config in configs {
        if config.len() != model.n_layers() {
            candle_core::bail!(
                "a configuration of {} layers for a model of {}",
                config.len(),
                model.n_layers()
            );
        }
        let layers = match cfg.method {
            MethodName::Rtn => {
                if bc == BiasCorrection::Off {
                    continue;
                }
                rtn_layers(model, config, calib, bc, report)?
            }
            MethodName::Mmse => mmse::layers(model, config, calib, &cfg.mmse, bc, report)?,
            MethodName::Aciq => aciq::layers(model, config, calib, &cfg.aciq, bc, report)?,
            MethodName::AdaRound => {
                adaround::layers(
                    model,
                    config,
                    calib,
                    &cfg.adaround,
                    cfg.mmse.search_points,
                    bc,
                    report,
                )?
                .0
            }
            MethodName::Lapq => lapq::layers(model, config, calib, &cfg.lapq, bc, report)?.0,
        };
        for (i, l) in layers.into_iter().enumerate() {
            model.install(i, config[i], l)?;
        }
    }
    Ok(())
}

/// The spec's quantizer with bias correction: its weights corrected, its input grids kept.
fn rtn_layers(
    model: &mut QuantModel,
    config: &[BitPair],
    calib: &[Batch],
    bc: BiasCorrection,
    report: &mut MethodReport,
) -> Result<Vec<MethodLayer>> {
    let mut pairs = config.to_vec();
    pairs.sort();
    pairs.dedup();
    model.prepare(&pairs, calib)?;
    report.forward_passes += 2 * calib.len() as u64;
    (0..model.n_layers())
        .map(|i| {
            let p = config[i];
            let w = host(model.folded_layer(i).0)?;
            let rows = model.arch.layers[i].out_ch;
            let q = mpq_quant::quantize_weights_per_channel(&w, rows, p.w);
            Ok(MethodLayer {
                weight: finish_weight(model, i, &w, q, bc)?,
                input: model.act_grid(i, p.a).map(mpq_quant::InputQuant::Pow2),
            })
        })
        .collect()
}

/// Host copy of a tensor's values.
pub(crate) fn host(t: &Tensor) -> Result<Vec<f32>> {
    t.flatten_all()?.to_vec1::<f32>()
}

/// Bias-correct the quantized weight `q` of layer `i` (float values `w`) and make it a tensor
/// of the layer's shape on the model's device.
pub(crate) fn finish_weight(
    model: &QuantModel,
    i: usize,
    w: &[f32],
    mut q: Vec<f32>,
    bc: BiasCorrection,
) -> Result<Tensor> {
    let rows = model.arch.layers[i].out_ch;
    correct_weights(w, &mut q, rows, bc);
    let shape = model.folded_layer(i).0.shape().clone();
    Tensor::from_vec(q, shape, model.device())
}

/// Layers run with a method's layer where `plan[i]` is set and FP32 (folded) elsewhere;
/// `observe` sees each layer's input before the layer (and before its input quantization).
pub(crate) struct PlanRunner<'a, 'f> {
    pub model: &'a QuantModel,
    pub plan: &'a [Option<MethodLayer>],
    pub observe: Option<&'f mut Observer<'f>>,
}

impl LayerRunner for PlanRunner<'_, '_> {
    fn layer(&mut self, i: usize, x: &Tensor) -> Result<Tensor> {
        if let Some(f) = self.observe.as_mut() {
            f(i, x)?;
        }
        match &self.plan[i] {
            Some(m) => self.model.method_layer(i, m, x),
            None => {
                let (w, b) = self.model.folded_layer(i);
                apply_layer(&self.model.arch.layers[i], x, w, Some(b))
            }
        }
    }
}

/// What [`PlanRunner`] hands each layer's input to.
pub type Observer<'f> = dyn FnMut(usize, &Tensor) -> Result<()> + 'f;

/// One forward pass of every calibration batch through the folded FP32 network, handing each
/// layer's input values (host copies) to `f`.
pub(crate) fn observe_fp_inputs(
    model: &QuantModel,
    calib: &[Batch],
    f: &mut dyn FnMut(usize, &Tensor) -> Result<()>,
) -> Result<()> {
    let plan = vec![None; model.n_layers()];
    for b in calib {
        model.arch.forward(
            &b.images,
            &mut PlanRunner {
                model,
                plan: &plan,
                observe: Some(f),
            },
        )?;
    }
    Ok(())
}

/// Whether the graph applies the network's activation directly to layer `i`'s output (what
/// AdaRound's asymmetric reconstruction compares after).
pub fn followed_by_activation(model: &QuantModel) -> Vec<bool> {
    use crate::arch::Block;
    let mut act = vec![false; model.n_layers()];
    for st in &model.arch.stages {
        match st {
            Stage::ConvAct(i) | Stage::ConvActPool(i, _) => act[*i] = true,
            Stage::SepConvAct { pw, .. } => act[*pw] = true,
            Stage::PoolClassifier(_) => {}
            Stage::Block(Block::Basic { conv1, .. }) => act[*conv1] = true,
            Stage::Block(Block::Bottleneck { conv1, conv2, .. }) => {
                act[*conv1] = true;
                act[*conv2] = true;
            }
            Stage::Block(Block::InvertedResidual { expand, dw, .. }) => {
                if let Some(e) = expand {
                    act[*e] = true;
                }
                act[*dw] = true;
            }
            Stage::Block(Block::Xception { units, .. }) => {
                for &(_, pw) in units.iter().take(units.len().saturating_sub(1)) {
                    act[pw] = true;
                }
            }
        }
    }
    act
}

#[cfg(test)]
mod tests;
