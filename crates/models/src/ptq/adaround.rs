//! AdaRound (Nagel, Amjad, van Baalen, Louizos, Blankevoort, "Up or down? Adaptive rounding for
//! post-training quantization", ICML 2020): each weight is rounded up or down as learned by
//! reconstructing the layer's output, instead of to the nearest level.
//!
//! Layer by layer in forward order, with the grid fixed (per-channel MMSE grids by default, or
//! the spec's power-of-two grids; the rounding arithmetic is `mpq_quant::adaround`), the soft
//! weights are
//! `W~ = s * clamp(floor(W / s) + h(V), lo, hi)` with the rectified sigmoid
//! `h(V) = clamp(sigmoid(V) (zeta - gamma) + gamma, 0, 1)`, `zeta = 1.1`, `gamma = -0.1`, and
//! `V` is learned with Adam to minimise the asymmetric reconstruction error
//! `|| f(W x + b) - f(W~ x~ + b) ||^2 + lambda * sum(1 - |2 h(V) - 1|^beta)`:
//! `x` is the layer's input in the FP32 network, `x~` its (quantized) input in the network
//! whose earlier layers are already AdaRound-quantized, `f` the activation the graph applies to
//! the layer's output (if any). The regulariser is off for the first `warm_up` of the
//! iterations, then `beta` decays linearly from `beta_start` to `beta_end`, which drives every
//! `h` to 0 or 1. The final weights round up where `V >= 0` (`h >= 1/2`). The error is summed
//! over output channels and averaged over images and positions (as the authors' and BRECQ's
//! code do). Images are the calibration images; batches are drawn with the project's seeded
//! generator, so a run is reproducible.
//!
//! Defaults and cost. The paper runs 10k Adam iterations (learning rate 1e-3, batch 32) per
//! layer on 1024 images. The embedded suite's budget (every baseline run within the 25 minute
//! `reproduce`) allows far fewer; the default is 1000 iterations at learning rate 3e-2, which
//! ends with all but 0.02% of the `h` at 0 or 1 on resnet-tiny at W4A4 (at 1e-2: 0.97% soft;
//! 400 iterations at 3e-2: 1.2%). [`super::PtqConfig::published`] restores the paper's numbers.
use super::{finish_weight, followed_by_activation, host, mmse, Granularity, MethodReport};
use super::{PlanRunner, PtqConfig};
use crate::arch::LayerKind;
use crate::qmodel::{apply_layer, MethodLayer, QuantModel};
use crate::unfold::im2col;
use candle_core::{Result, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use mpq_data::{Batch, Rng};
use mpq_quant::adaround as rounding;
use mpq_quant::{BiasCorrection, BitPair, Grid, InputQuant, Uniform};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The grid AdaRound rounds on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdaRoundGrid {
    /// MMSE's float-step grids for weights and inputs (the paper sets the grid by minimum MSE):
    /// MMSE is then exactly AdaRound's round-to-nearest.
    #[default]
    Mmse,
    /// The spec's power-of-two min-max weight grids and calibrated input grids: the spec's
    /// quantizer is then exactly AdaRound's round-to-nearest.
    Spec,
}

/// AdaRound's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdaRoundSettings {
    /// Adam iterations per layer.
    pub iterations: u32,
    /// Images per iteration.
    pub batch_size: u32,
    pub learning_rate: f64,
    /// `lambda`, the weight of the rounding regulariser.
    pub regularization: f64,
    pub beta_start: f64,
    pub beta_end: f64,
    /// Fraction of the iterations without the regulariser.
    pub warm_up: f64,
    pub grid: AdaRoundGrid,
    pub weights: Granularity,
    /// Seed of the batch order.
    pub seed: u64,
}

impl Default for AdaRoundSettings {
    fn default() -> Self {
        AdaRoundSettings {
            iterations: 1000,
            batch_size: 32,
            learning_rate: 3e-2,
            regularization: 0.01,
            beta_start: 20.0,
            beta_end: 2.0,
            warm_up: 0.2,
            grid: AdaRoundGrid::Mmse,
            weights: Granularity::PerChannel,
            seed: 0,
        }
    }
}

impl AdaRoundSettings {
    pub(crate) fn validate(&self, key: &str) -> std::result::Result<(), String> {
        let bad = |k: &str, why: &str| Err(format!("{key}.{k}: {why}"));
        if self.iterations == 0 {
            return bad("iterations", "must be at least 1");
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1");
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad("learning_rate", "must be a positive number");
        }
        if !(self.regularization.is_finite() && self.regularization >= 0.0) {
            return bad("regularization", "must be a number >= 0");
        }
        if !(self.beta_end.is_finite() && self.beta_end >= 1.0 && self.beta_start >= self.beta_end)
        {
            return bad("beta_start", "need beta_start >= beta_end >= 1");
        }
        if !(0.0..1.0).contains(&self.warm_up) {
            return bad("warm_up", "must be in [0, 1)");
        }
        Ok(())
    }
}

/// What AdaRound did on one layer.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerTrace {
    pub layer: usize,
    /// Elements of `h(V)` strictly between 0 and 1 at the end.
    pub soft: usize,
    pub elements: usize,
    /// Reconstruction error (calibration images) of round-to-nearest on the same grid, and of
    /// the hardened learned rounding.
    pub nearest_error: f64,
    pub learned_error: f64,
    /// Seconds of the optimisation (inputs gathered, Adam iterations, hardening).
    pub seconds: f64,
}

/// AdaRound's per-layer record and, for comparisons, round-to-nearest's weights on the same
/// grids.
#[derive(Clone, Debug)]
pub struct AdaRoundTrace {
    pub layers: Vec<LayerTrace>,
    pub nearest: Vec<Tensor>,
}

/// The grids of `config`: per layer, the input quantizer and the weight grid of each output
/// channel.
type Grids = (Vec<Option<InputQuant>>, Vec<Vec<Option<Uniform>>>);

fn grids(
    model: &mut QuantModel,
    config: &[BitPair],
    calib: &[Batch],
    s: &AdaRoundSettings,
    points: u32,
    report: &mut MethodReport,
) -> Result<Grids> {
    let n = model.n_layers();
    let mut weight_grids = Vec::with_capacity(n);
    for (i, p) in config.iter().enumerate() {
        let w = host(model.folded_layer(i).0)?;
        let rows = model.arch.layers[i].out_ch;
        weight_grids.push(match s.grid {
            AdaRoundGrid::Mmse => mmse::weight_grids(&w, rows, p.w, points, &[2.0], s.weights)
                .into_iter()
                .map(|g| g.map(|g| g[0]))
                .collect(),
            AdaRoundGrid::Spec => {
                let ext = match s.weights {
                    Granularity::PerChannel => mpq_quant::uniform::row_extremes(&w, rows),
                    Granularity::PerTensor => {
                        vec![mpq_quant::uniform::row_extremes(&w, 1)[0]; rows]
                    }
                };
                ext.into_iter()
                    .map(|(mn, mx)| Grid::min_max(mn, mx, p.w).map(|g| Uniform::from_pow2(&g)))
                    .collect()
            }
        });
    }
    let inputs = match s.grid {
        AdaRoundGrid::Mmse => mmse::input_grids(model, config, calib, points, report)?
            .into_iter()
            .map(|g| g.map(InputQuant::Uniform))
            .collect(),
        AdaRoundGrid::Spec => {
            let mut pairs = config.to_vec();
            pairs.sort();
            pairs.dedup();
            model.prepare(&pairs, calib)?;
            report.forward_passes += 2 * calib.len() as u64;
            (0..n)
                .map(|i| model.act_grid(i, config[i].a).map(InputQuant::Pow2))
                .collect()
        }
    };
    Ok((inputs, weight_grids))
}

/// AdaRound's layers for `config`, and its trace.
pub(crate) fn layers(
    model: &mut QuantModel,
    config: &[BitPair],
    calib: &[Batch],
    s: &AdaRoundSettings,
    points: u32,
    bc: BiasCorrection,
    report: &mut MethodReport,
) -> Result<(Vec<MethodLayer>, AdaRoundTrace)> {
    let (inputs, wgrids) = grids(model, config, calib, s, points, report)?;
    let model = &*model;
    let n = model.n_layers();
    let arch = &model.arch;
    let act_after = followed_by_activation(model);
    let fp_plan: Vec<Option<MethodLayer>> = vec![None; n];
    let mut plan: Vec<Option<MethodLayer>> = vec![None; n];
    let mut trace = AdaRoundTrace {
        layers: vec![],
        nearest: vec![],
    };
    // Stage inputs, per calibration batch, in the quantized and in the FP32 network.
    let mut q_in: Vec<Tensor> = calib.iter().map(|b| b.images.clone()).collect();
    let mut f_in = q_in.clone();
    for si in 0..arch.stages.len() {
        let mut fp_x: BTreeMap<usize, Vec<Tensor>> = BTreeMap::new();
        let mut f_out = Vec::with_capacity(f_in.len());
        for x in &f_in {
            let mut keep = |i: usize, t: &Tensor| {
                fp_x.entry(i).or_default().push(t.clone());
                Ok(())
            };
            f_out.push(arch.run_stage(
                si,
                x,
                &mut PlanRunner {
                    model,
                    plan: &fp_plan,
                    observe: Some(&mut keep),
                },
            )?);
        }
        for i in arch.stages[si].layers() {
            let mut qx = Vec::with_capacity(q_in.len());
            for x in &q_in {
                let mut keep = |j: usize, t: &Tensor| {
                    if j == i {
                        qx.push(t.clone());
                    }
                    Ok(())
                };
                arch.run_stage(
                    si,
                    x,
                    &mut PlanRunner {
                        model,
                        plan: &plan,
                        observe: Some(&mut keep),
                    },
                )?;
            }
            let x_fp = Tensor::cat(&fp_x[&i], 0)?;
            let x_q = Tensor::cat(&qx, 0)?;
            let x_q = match &inputs[i] {
                Some(q) => q.apply(&x_q)?,
                None => x_q,
            };
            let (hard, nearest, t) =
                optimize_layer(model, i, &x_fp, &x_q, &wgrids[i], act_after[i], s)?;
            report.iterations += s.iterations as u64;
            let w = host(model.folded_layer(i).0)?;
            plan[i] = Some(MethodLayer {
                weight: finish_weight(model, i, &w, hard, bc)?,
                input: inputs[i].clone(),
            });
            trace
                .nearest
                .push(finish_weight(model, i, &w, nearest, BiasCorrection::Off)?);
            trace.layers.push(t);
        }
        let mut next = Vec::with_capacity(q_in.len());
        for x in &q_in {
            next.push(arch.run_stage(
                si,
                x,
                &mut PlanRunner {
                    model,
                    plan: &plan,
                    observe: None,
                },
            )?);
        }
        q_in = next;
        f_in = f_out;
    }
    report.forward_passes += 2 * calib.len() as u64;
    let soft: usize = trace.layers.iter().map(|t| t.soft).sum();
    let total: usize = trace.layers.iter().map(|t| t.elements).sum();
    let better = trace
        .layers
        .iter()
        .filter(|t| t.learned_error < t.nearest_error)
        .count();
    report.notes.push(format!(
        "adaround: {soft} of {total} rounding variables soft at the end; learned rounding \
         reconstructs better than nearest on {better} of {n} layers (calibration images)"
    ));
    let layers = plan
        .into_iter()
        .map(|l| l.expect("every layer is in a stage"))
        .collect();
    Ok((layers, trace))
}

/// Layer `i`'s input `x` as rows of patches, `[N, P, F]`: `P` output positions, `F` the
/// weights of one output channel (`C * k * k` for a convolution, `C` for a linear layer; for a
/// depthwise layer `C * k * k`, read as `[C, k * k]`). The layer is then a matrix product with
/// the weight rows, whose backward pass is one matrix product (candle's batched, broadcast
/// product made each Adam step about ten times slower).
fn patches(model: &QuantModel, i: usize, x: &Tensor) -> Result<Tensor> {
    let l = &model.arch.layers[i];
    match l.kind {
        LayerKind::Linear => x.unsqueeze(1),
        LayerKind::Conv | LayerKind::Depthwise => im2col(x, l.kernel, l.stride, l.padding)?
            .transpose(1, 2)?
            .contiguous(),
    }
}

/// Layer `i` on patches `[B, P, F]` with weight `w` (its own shape) and bias: `[B, P, O]`.
fn on_patches(model: &QuantModel, i: usize, p: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    let l = &model.arch.layers[i];
    let (n, pos, f) = p.dims3()?;
    let rows = p.reshape((n * pos, f))?;
    let y = match l.kind {
        LayerKind::Conv | LayerKind::Linear => rows.matmul(&w.reshape((l.out_ch, f))?.t()?)?,
        LayerKind::Depthwise => {
            let kk = f / l.out_ch;
            rows.reshape((n * pos, l.out_ch, kk))?
                .broadcast_mul(&w.reshape((1, l.out_ch, kk))?)?
                .sum(2)?
        }
    };
    y.broadcast_add(b)?.reshape((n, pos, l.out_ch))
}

/// A layer output `[N, O, H, W]` or `[N, O]` in the patch layout `[N, P, O]`.
fn to_rows(y: &Tensor) -> Result<Tensor> {
    match y.rank() {
        2 => y.unsqueeze(1),
        _ => {
            let (n, o) = (y.dim(0)?, y.dim(1)?);
            y.reshape((n, o, ()))?.transpose(1, 2)?.contiguous()
        }
    }
}

/// Patches kept for every calibration image when they fit in this many bytes, else extracted
/// for each batch.
const PATCH_BUDGET: usize = 256 << 20;

/// Sum over output channels of the mean squared difference (over images and positions).
fn reconstruction(y: &Tensor, target: &Tensor, channels: usize) -> Result<Tensor> {
    let per = (y.elem_count() / channels).max(1) as f64;
    (y - target)?.sqr()?.sum_all()?.affine(1.0 / per, 0.0)
}

/// Learn layer `i`'s rounding; returns the hardened weights, round-to-nearest's on the same
/// grid, and the layer's trace.
fn optimize_layer(
    model: &QuantModel,
    i: usize,
    x_fp: &Tensor,
    x_q: &Tensor,
    grid: &[Option<Uniform>],
    act: bool,
    s: &AdaRoundSettings,
) -> Result<(Vec<f32>, Vec<f32>, LayerTrace)> {
    let t0 = std::time::Instant::now();
    let dev = model.device();
    let spec = &model.arch.layers[i];
    let (wt, bias) = model.folded_layer(i);
    let w = host(wt)?;
    let rows = spec.out_ch;
    let per_row = w.len() / rows;
    // A row without a grid (constant) keeps its values: code 0 on a unit grid of one level
    // would change them, so give it its own one-level grid at its value.
    let grid: Vec<Uniform> = grid
        .iter()
        .zip(w.chunks(per_row))
        .map(|(g, row)| g.unwrap_or_else(|| Uniform::constant(row[0])))
        .collect();
    let (floor, v0) = rounding::init(&w, &grid);
    let col = |f: &dyn Fn(&Uniform) -> f32| {
        Tensor::from_vec(grid.iter().map(f).collect::<Vec<f32>>(), (rows, 1), dev)
    };
    let scale_t = col(&|g| g.scale)?;
    let lo_t = col(&|g| g.lo as f32)?;
    let hi_t = col(&|g| g.hi as f32)?;
    let floor_t = Tensor::from_vec(floor.clone(), (rows, per_row), dev)?;
    let soft_weight = |h: &Tensor| -> Result<Tensor> {
        rounding::soft_weights(&floor_t, h, &lo_t, &hi_t, &scale_t)
    };
    let activation = |y: Tensor| -> Result<Tensor> {
        if act {
            model.arch.act.apply(&y)
        } else {
            Ok(y)
        }
    };
    let target = activation(apply_layer(spec, x_fp, wt, Some(bias))?)?;
    let error_of = |wq: &Tensor| -> Result<f64> {
        let y = activation(apply_layer(spec, x_q, wq, Some(bias))?)?;
        reconstruction(&y, &target, rows)?
            .to_scalar::<f32>()
            .map(|e| e as f64)
    };
    let all_grids: Vec<Option<Uniform>> = grid.iter().copied().map(Some).collect();
    let nearest = mpq_quant::uniform::quantize_rows(&w, &all_grids);

    let target_rows = to_rows(&target)?;
    let images = x_q.dim(0)?;
    let features = match spec.kind {
        LayerKind::Depthwise => rows * per_row,
        _ => per_row,
    };
    let patch_bytes = 4 * target_rows.dim(1)? * features * images;
    let all_patches = if patch_bytes <= PATCH_BUDGET {
        Some(patches(model, i, x_q)?)
    } else {
        None
    };
    let v = Var::from_vec(v0, (rows, per_row), dev)?;
    let mut opt = AdamW::new(
        vec![v.clone()],
        ParamsAdamW {
            lr: s.learning_rate,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    let batch = (s.batch_size as usize).min(images);
    let mut rng = Rng::for_item(&[s.seed, 0xADA, i as u64]);
    let mut order: Vec<u32> = (0..images as u32).collect();
    let warm = (s.iterations as f64 * s.warm_up) as u32;
    for it in 0..s.iterations {
        // A fresh random subset each iteration (partial Fisher-Yates).
        for k in 0..batch {
            let j = k + rng.below(images - k);
            order.swap(k, j);
        }
        let idx = Tensor::from_vec(order[..batch].to_vec(), batch, dev)?;
        let pb = match &all_patches {
            Some(p) => p.index_select(&idx, 0)?,
            None => patches(model, i, &x_q.index_select(&idx, 0)?)?,
        };
        let tb = target_rows.index_select(&idx, 0)?;
        let h = rounding::rectified_sigmoid(v.as_tensor())?;
        let y = activation(on_patches(model, i, &pb, &soft_weight(&h)?, bias)?)?;
        let mut loss = reconstruction(&y, &tb, rows)?;
        let beta = rounding::beta_at(it, warm, s.iterations, s.beta_start, s.beta_end);
        if let (Some(beta), true) = (beta, s.regularization > 0.0) {
            let reg = rounding::regularizer(&h, beta)?.affine(s.regularization, 0.0)?;
            loss = (loss + reg)?;
        }
        opt.backward_step(&loss)?;
    }
    let hv = host(&rounding::rectified_sigmoid(v.as_tensor())?)?;
    let soft = hv.iter().filter(|&&x| x > 0.0 && x < 1.0).count();
    let hard = rounding::harden(&floor, &host(v.as_tensor())?, &grid);
    let shape = wt.shape();
    let trace = LayerTrace {
        layer: i,
        soft,
        elements: hv.len(),
        nearest_error: error_of(&Tensor::from_vec(nearest.clone(), shape, dev)?)?,
        learned_error: error_of(&Tensor::from_vec(hard.clone(), shape, dev)?)?,
        seconds: t0.elapsed().as_secs_f64(),
    };
    Ok((hard, nearest, trace))
}

/// Per layer, the reconstruction error (as optimised: summed over output channels, averaged
/// over images and positions, after the activation the graph applies to the layer) of the
/// method layers `plan` and of the weights `other` used in their place, both with the inputs of
/// `plan`'s network, on `images`. AdaRound's held-out check against round-to-nearest.
pub fn reconstruction_errors(
    model: &QuantModel,
    plan: &[MethodLayer],
    other: &[Tensor],
    images: &[Batch],
) -> Result<Vec<(f64, f64)>> {
    let n = model.n_layers();
    let act_after = followed_by_activation(model);
    let plan: Vec<Option<MethodLayer>> = plan.iter().cloned().map(Some).collect();
    let fp_plan: Vec<Option<MethodLayer>> = vec![None; n];
    let mut sums = vec![(0.0, 0.0); n];
    let mut count = 0usize;
    for b in images {
        let inputs = |p: &[Option<MethodLayer>]| -> Result<Vec<Tensor>> {
            let mut xs: Vec<Option<Tensor>> = vec![None; n];
            let mut keep = |i: usize, t: &Tensor| {
                xs[i] = Some(t.clone());
                Ok(())
            };
            model.arch.forward(
                &b.images,
                &mut PlanRunner {
                    model,
                    plan: p,
                    observe: Some(&mut keep),
                },
            )?;
            Ok(xs
                .into_iter()
                .map(|x| x.expect("every layer ran"))
                .collect())
        };
        let xq = inputs(&plan)?;
        let xf = inputs(&fp_plan)?;
        let weight = b.labels.len() as f64;
        for i in 0..n {
            let spec = &model.arch.layers[i];
            let (w, bias) = model.folded_layer(i);
            let m = plan[i].as_ref().expect("a full plan");
            let x = match &m.input {
                Some(q) => q.apply(&xq[i])?,
                None => xq[i].clone(),
            };
            let f = |y: Tensor| -> Result<Tensor> {
                if act_after[i] {
                    model.arch.act.apply(&y)
                } else {
                    Ok(y)
                }
            };
            let target = f(apply_layer(spec, &xf[i], w, Some(bias))?)?;
            let err = |wq: &Tensor| -> Result<f64> {
                let y = f(apply_layer(spec, &x, wq, Some(bias))?)?;
                Ok(reconstruction(&y, &target, spec.out_ch)?.to_scalar::<f32>()? as f64)
            };
            sums[i].0 += err(&m.weight)? * weight;
            sums[i].1 += err(&other[i])? * weight;
        }
        count += b.labels.len();
    }
    Ok(sums
        .into_iter()
        .map(|(a, b)| (a / count.max(1) as f64, b / count.max(1) as f64))
        .collect())
}

/// AdaRound under `cfg` for `config`, returning its layers and trace without installing them
/// (for tests and analyses; [`super::apply`] is the way to use it in a run).
pub fn run(
    model: &mut QuantModel,
    cfg: &PtqConfig,
    config: &[BitPair],
    calib: &[Batch],
) -> Result<(Vec<MethodLayer>, AdaRoundTrace, MethodReport)> {
    let ((l, t), report) = super::timed(super::MethodName::AdaRound, |report| {
        layers(
            model,
            config,
            calib,
            &cfg.adaround,
            cfg.mmse.search_points,
            cfg.bias_correction(),
            report,
        )
    })?;
    Ok((l, t, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{images, max_diff, random_model};
    use crate::ArchName;

    /// The patch form of every layer (what AdaRound differentiates) is the layer.
    #[test]
    fn layers_on_patches_equal_the_layers() {
        for arch in [ArchName::ResnetTiny, ArchName::MobilenetTiny] {
            let m = random_model(arch);
            let calib = images(4);
            let plan = vec![None; m.n_layers()];
            let mut inputs: Vec<Option<Tensor>> = vec![None; m.n_layers()];
            let mut keep = |i: usize, t: &Tensor| {
                inputs[i] = Some(t.clone());
                Ok(())
            };
            m.arch
                .forward(
                    &calib[0].images,
                    &mut PlanRunner {
                        model: &m,
                        plan: &plan,
                        observe: Some(&mut keep),
                    },
                )
                .unwrap();
            for (i, x) in inputs.iter().enumerate() {
                let x = x.as_ref().unwrap();
                let (w, b) = m.folded_layer(i);
                let want =
                    to_rows(&apply_layer(&m.arch.layers[i], x, w, Some(b)).unwrap()).unwrap();
                let got = on_patches(&m, i, &patches(&m, i, x).unwrap(), w, b).unwrap();
                let scale = want
                    .abs()
                    .unwrap()
                    .max_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap();
                assert!(
                    max_diff(&want, &got) <= 1e-4 * scale.max(1.0),
                    "{arch} layer {i}"
                );
            }
        }
    }
}
