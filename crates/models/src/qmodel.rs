//! A network ready for mixed-precision evaluation. Built once per run: batch-norm is folded,
//! then for every (layer, bit-width) the run uses, the quantized weights and the calibrated
//! activation grid are computed once. Switching a layer's (w, a) pair between evaluations is then
//! an index change: nothing is recomputed.
use crate::arch::{ActLayout, Arch, LayerKind, LayerRunner, LayerSpec, Post};
use crate::depthwise::depthwise;
use crate::kernels::{Isa, Packed};
use crate::weights::{fold_bn, BN_EPS};
use candle_core::{Device, Result, Tensor, D};
use mpq_data::Batch;
use mpq_quant::{
    fake_quant, quantize_weight_tensor, BitPair, Grid, InputQuant, MinMax, MseCalibrator, Quantizer,
};
use std::collections::{BTreeMap, HashMap};

/// Which numbers a forward pass uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// The trained network as stored: convolution then batch-norm, all FP32.
    Fp32,
    /// Batch-norm folded into the weights, nothing quantized (what calibration observes).
    Fp32Folded,
    /// The current per-layer bit configuration.
    Quantized,
}

/// Apply layer `spec` with weight `w` and bias `b` to `x`.
pub fn apply_layer(spec: &LayerSpec, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    let y = match spec.kind {
        LayerKind::Conv => x.conv2d(w, spec.padding, spec.stride, 1, 1)?,
        LayerKind::Depthwise => depthwise(x, w, spec.stride, spec.padding)?,
        LayerKind::Linear => x.matmul(&w.t()?)?,
    };
    match b {
        None => Ok(y),
        Some(b) => match spec.kind {
            LayerKind::Linear => y.broadcast_add(b),
            _ => y.broadcast_add(&b.reshape((1, (), 1, 1))?),
        },
    }
}

/// Which implementation runs the FP32-folded and quantized forward passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernels {
    /// candle tensor ops on NCHW tensors: any device (the reference).
    Candle,
    /// This crate's fused CPU kernels on NHWC activations (`crate::kernels`), with this
    /// vector extension. The default on the CPU.
    Cpu(Isa),
}

pub struct QuantModel {
    pub arch: Arch,
    device: Device,
    raw: HashMap<String, Tensor>,
    folded: Vec<(Tensor, Tensor)>,
    weights_q: Vec<BTreeMap<u8, Tensor>>,
    act_grid: Vec<BTreeMap<u8, Option<Grid>>>,
    config: Vec<BitPair>,
    kernels: Kernels,
    /// With [`Kernels::Cpu`]: the folded FP32 weights and the quantized weights of every
    /// prepared bit-width, packed.
    packed_fp32: Vec<Packed>,
    packed_q: Vec<BTreeMap<u8, Packed>>,
    /// A PTQ method's layers, which replace the spec's for their (layer, pair) (`crate::ptq`).
    method: Vec<BTreeMap<BitPair, MethodLayer>>,
    /// With [`Kernels::Cpu`]: the weights of `method`, packed (kept in step by
    /// [`QuantModel::install`]).
    packed_method: Vec<BTreeMap<BitPair, Packed>>,
}

/// What a post-training method (`crate::ptq`) supplies for one layer at one pair, in place of
/// the spec's per-channel min-max weights and calibrated input grid: the (fake-)quantized
/// weight and the quantizer of the layer's input (`None`: left unquantized). The folded bias
/// stays as it is.
#[derive(Clone, Debug)]
pub struct MethodLayer {
    pub weight: Tensor,
    pub input: Option<InputQuant>,
}

impl QuantModel {
    /// Fold batch-norm of every layer; `raw` must hold the tensors of `arch` (see
    /// [`crate::load_weights`]), on `device`.
    pub fn new(arch: Arch, raw: HashMap<String, Tensor>, device: &Device) -> Result<QuantModel> {
        let mut folded = vec![];
        for l in &arch.layers {
            let w = &raw[&format!("{}.weight", l.name)];
            let b = raw.get(&format!("{}.bias", l.name));
            folded.push(match &l.bn {
                Some(bn) => {
                    let g = |t: &str| &raw[&format!("{bn}.{t}")];
                    fold_bn(
                        w,
                        b,
                        g("weight"),
                        g("bias"),
                        g("running_mean"),
                        g("running_var"),
                        BN_EPS,
                    )?
                }
                None => (
                    w.clone(),
                    match b {
                        Some(b) => b.clone(),
                        None => Tensor::zeros(l.out_ch, candle_core::DType::F32, device)?,
                    },
                ),
            });
        }
        let n = arch.layers.len();
        let mut m = QuantModel {
            arch,
            device: device.clone(),
            raw,
            folded,
            weights_q: vec![BTreeMap::new(); n],
            act_grid: vec![BTreeMap::new(); n],
            config: vec![BitPair::W8A8; n],
            kernels: Kernels::Candle,
            packed_fp32: vec![],
            packed_q: vec![BTreeMap::new(); n],
            method: vec![BTreeMap::new(); n],
            packed_method: vec![BTreeMap::new(); n],
        };
        if device.is_cpu() {
            m.set_kernels(Kernels::Cpu(Isa::detect()))?;
        }
        Ok(m)
    }

    /// Choose the implementation of the forward passes ([`Kernels::Cpu`] needs a CPU model).
    /// Packs what the CPU kernels need.
    pub fn set_kernels(&mut self, k: Kernels) -> Result<()> {
        if let Kernels::Cpu(_) = k {
            if !self.device.is_cpu() {
                candle_core::bail!("the CPU kernels need a model on the CPU");
            }
            if self.packed_fp32.is_empty() {
                self.packed_fp32 = (self.arch.layers.iter().zip(&self.folded))
                    .map(|(l, (w, b))| Packed::new(l, w, b))
                    .collect::<Result<_>>()?;
            }
            for i in 0..self.n_layers() {
                for (&bits, w) in &self.weights_q[i] {
                    if !self.packed_q[i].contains_key(&bits) {
                        let p = Packed::new(&self.arch.layers[i], w, &self.folded[i].1)?;
                        self.packed_q[i].insert(bits, p);
                    }
                }
                for (&pair, ml) in &self.method[i] {
                    if !self.packed_method[i].contains_key(&pair) {
                        let p = Packed::new(&self.arch.layers[i], &ml.weight, &self.folded[i].1)?;
                        self.packed_method[i].insert(pair, p);
                    }
                }
            }
        }
        self.kernels = k;
        Ok(())
    }

    pub fn kernels(&self) -> Kernels {
        self.kernels
    }

    /// The activation layout of this model's forward passes.
    pub fn layout(&self) -> ActLayout {
        match self.kernels {
            Kernels::Candle => ActLayout::Nchw,
            Kernels::Cpu(_) => ActLayout::Nhwc,
        }
    }

    /// The input of the first stage for a batch of images `[B, C, H, W]`: the images, in the
    /// model's activation layout.
    pub fn input(&self, images: &Tensor) -> Result<Tensor> {
        match self.kernels {
            Kernels::Candle => Ok(images.clone()),
            Kernels::Cpu(_) => crate::kernels::ops::to_nhwc(images),
        }
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn n_layers(&self) -> usize {
        self.arch.layers.len()
    }

    /// Quantize the weights at every weight bit-width of `pairs` and calibrate every layer's
    /// input at every activation bit-width of `pairs`, on the FP32 folded model over `calib`.
    /// Two streaming passes (extremes, then the MSE of each candidate step).
    pub fn prepare(&mut self, pairs: &[BitPair], calib: &[Batch]) -> Result<()> {
        let n = self.n_layers();
        for (i, l) in self.folded.iter().enumerate() {
            for p in pairs {
                if let std::collections::btree_map::Entry::Vacant(e) = self.weights_q[i].entry(p.w)
                {
                    e.insert(quantize_weight_tensor(&l.0, p.w)?);
                }
            }
        }
        self.set_kernels(self.kernels)?;
        let mut a_bits: Vec<u8> = pairs.iter().map(|p| p.a).collect();
        a_bits.sort();
        a_bits.dedup();
        a_bits.retain(|b| !self.act_grid[0].contains_key(b));
        if a_bits.is_empty() {
            return Ok(());
        }
        let mut ranges = vec![MinMax::default(); n];
        for b in calib {
            self.run_observed(&b.images, &mut |i, x| {
                ranges[i].observe(&host_values(x)?);
                Ok(())
            })?;
        }
        let mut cals: Vec<Vec<(u8, Option<MseCalibrator>)>> = ranges
            .iter()
            .map(|r| {
                a_bits
                    .iter()
                    .map(|&bits| (bits, MseCalibrator::new(*r, bits)))
                    .collect()
            })
            .collect();
        for b in calib {
            self.run_observed(&b.images, &mut |i, x| {
                let v = host_values(x)?;
                for (_, c) in cals[i].iter_mut() {
                    if let Some(c) = c {
                        c.observe(&v);
                    }
                }
                Ok(())
            })?;
        }
        for (i, layer) in cals.into_iter().enumerate() {
            for (bits, c) in layer {
                self.act_grid[i].insert(bits, c.map(|c| c.finish()));
            }
        }
        Ok(())
    }

    /// The calibrated grid of layer `i` at `bits` activation bits (`None`: constant input, left
    /// unquantized). Panics if not prepared.
    pub fn act_grid(&self, i: usize, bits: u8) -> Option<Grid> {
        self.act_grid[i][&bits]
    }

    /// Whether `pair` has been prepared for every layer ([`QuantModel::prepare`], or a method's
    /// layer installed with [`QuantModel::install`]).
    pub fn check_prepared(&self, pair: BitPair) -> Result<()> {
        for i in 0..self.n_layers() {
            let spec =
                self.weights_q[i].contains_key(&pair.w) && self.act_grid[i].contains_key(&pair.a);
            if !(spec || self.method[i].contains_key(&pair)) {
                candle_core::bail!("pair {pair} of layer {i} not prepared");
            }
        }
        Ok(())
    }

    /// Set every layer's pair. Every pair must have been prepared.
    pub fn set_config(&mut self, config: &[BitPair]) {
        assert_eq!(config.len(), self.n_layers());
        for p in config {
            self.check_prepared(*p).expect("a prepared pair");
        }
        self.config = config.to_vec();
    }

    /// Multiply-accumulates of each layer for one image shaped like `images[0]` (`[B, C, H,
    /// W]`): weights times output positions (for a depthwise layer, one filter per channel).
    pub fn layer_macs(&self, images: &Tensor) -> Result<Vec<u64>> {
        let one = images.narrow(0, 0, 1)?;
        let mut macs = vec![0u64; self.n_layers()];
        self.arch.forward(
            &one,
            &mut Measured {
                m: self,
                macs: &mut macs,
            },
        )?;
        Ok(macs)
    }

    /// Layers with `low[i]` at `low_pair`, the others at `high_pair`.
    pub fn set_low(&mut self, low: &[bool], low_pair: BitPair, high_pair: BitPair) {
        let c: Vec<BitPair> = low
            .iter()
            .map(|&l| if l { low_pair } else { high_pair })
            .collect();
        self.set_config(&c);
    }

    pub fn config(&self) -> &[BitPair] {
        &self.config
    }

    /// Logits of a batch.
    pub fn logits(&self, x: &Tensor, precision: Precision) -> Result<Tensor> {
        match precision {
            Precision::Fp32 => self.arch.forward(x, &mut Unfolded { m: self }),
            Precision::Fp32Folded => match self.kernels {
                Kernels::Candle => self.run_observed(x, &mut |_, _| Ok(())),
                Kernels::Cpu(_) => self.arch.forward(
                    &self.input(x)?,
                    &mut Fast {
                        m: self,
                        config: None,
                    },
                ),
            },
            Precision::Quantized => self.logits_with(x, &self.config),
        }
    }

    /// Logits of a batch with every layer at `config[i]` (prepared pairs), whatever the current
    /// configuration: several configurations can be evaluated at once from shared references.
    pub fn logits_with(&self, x: &Tensor, config: &[BitPair]) -> Result<Tensor> {
        self.arch
            .forward(&self.input(x)?, &mut Quantized { m: self, config })
    }

    /// Layer `i` at pair `p` followed by `post`, on an input in the model's layout
    /// ([`QuantModel::layout`]): with the CPU kernels, one fused pass; otherwise
    /// [`QuantModel::quantized_layer`] and candle ops.
    pub fn quantized_layer_post(
        &self,
        i: usize,
        p: BitPair,
        x: &Tensor,
        post: Post<'_>,
    ) -> Result<Tensor> {
        match self.kernels {
            Kernels::Candle => post.apply(self.quantized_layer(i, p, x)?),
            Kernels::Cpu(isa) => {
                if let Some(m) = self.method[i].get(&p) {
                    // The method's own input quantizer, fused where it is one grid per layer.
                    let (x, q) = match &m.input {
                        None => (x.clone(), None),
                        Some(iq) => match iq.quantizer() {
                            Some(q) => (x.clone(), Some(q)),
                            None => (iq.apply_channels_last(x)?, None),
                        },
                    };
                    let Some(packed) = self.packed_method[i].get(&p) else {
                        candle_core::bail!("method layer {i} at {p} not packed");
                    };
                    return packed.forward(&x, q.as_ref(), post.residual, post.act.into(), isa);
                }
                let q = self.act_grid[i][&p.a].map(|g| Quantizer::new(&g));
                self.packed_q[i][&p.w].forward(x, q.as_ref(), post.residual, post.act.into(), isa)
            }
        }
    }

    /// Layer `i` of the quantized model at pair `p` (its input fake-quantized on the calibrated
    /// grid, then its quantized weights and folded bias; or the method's layer where one is
    /// installed). No activation.
    pub fn quantized_layer(&self, i: usize, p: BitPair, x: &Tensor) -> Result<Tensor> {
        if let Some(m) = self.method[i].get(&p) {
            return self.method_layer(i, m, x);
        }
        let x = match self.act_grid[i][&p.a] {
            Some(g) => fake_quant(x, &g)?,
            None => x.clone(),
        };
        apply_layer(
            &self.arch.layers[i],
            &x,
            &self.weights_q[i][&p.w],
            Some(&self.folded[i].1),
        )
    }

    /// Top-1 accuracy (a fraction) over `batches`.
    pub fn accuracy(&self, batches: &[Batch], precision: Precision) -> Result<f64> {
        let (mut correct, mut total) = (0usize, 0usize);
        for b in batches {
            correct += correct_in(&self.logits(&b.images, precision)?, &b.labels)?;
            total += b.labels.len();
        }
        Ok(top1(correct, total))
    }

    /// Whether each image of `batches` is classified correctly (top-1), in batch order.
    pub fn hits(&self, batches: &[Batch], precision: Precision) -> Result<Vec<bool>> {
        let mut out = Vec::new();
        for b in batches {
            out.extend(hits_in(&self.logits(&b.images, precision)?, &b.labels)?);
        }
        Ok(out)
    }

    /// The folded FP32 weight and bias of layer `i` (what every quantizer starts from).
    pub fn folded_layer(&self, i: usize) -> (&Tensor, &Tensor) {
        (&self.folded[i].0, &self.folded[i].1)
    }

    /// Install a PTQ method's layer `i` at `pair`: from now on that (layer, pair) computes with
    /// it instead of the spec's quantizer (a configuration switch stays an index change).
    /// With the CPU kernels the layer's weight is packed here, replacing whatever was packed for
    /// that (layer, pair) before; with candle, a stale packing is dropped (and
    /// [`QuantModel::set_kernels`] packs it when the CPU kernels are chosen).
    pub fn install(&mut self, i: usize, pair: BitPair, layer: MethodLayer) -> Result<()> {
        self.packed_method[i].remove(&pair);
        if let Kernels::Cpu(_) = self.kernels {
            let p = Packed::new(&self.arch.layers[i], &layer.weight, &self.folded[i].1)?;
            self.packed_method[i].insert(pair, p);
        }
        self.method[i].insert(pair, layer);
        Ok(())
    }

    /// Remove every installed method layer (back to the spec's quantizer).
    pub fn uninstall_all(&mut self) {
        self.method.iter_mut().for_each(BTreeMap::clear);
        self.packed_method.iter_mut().for_each(BTreeMap::clear);
    }

    /// The method layer installed for layer `i` at `pair`, if any.
    pub fn method_layer_of(&self, i: usize, pair: BitPair) -> Option<&MethodLayer> {
        self.method[i].get(&pair)
    }

    /// Layer `i` computed with the method layer `m`: input quantized, weight, folded bias.
    pub fn method_layer(&self, i: usize, m: &MethodLayer, x: &Tensor) -> Result<Tensor> {
        let x = match &m.input {
            Some(q) => q.apply(x)?,
            None => x.clone(),
        };
        apply_layer(&self.arch.layers[i], &x, &m.weight, Some(&self.folded[i].1))
    }

    fn run_observed(
        &self,
        x: &Tensor,
        f: &mut dyn FnMut(usize, &Tensor) -> Result<()>,
    ) -> Result<Tensor> {
        self.arch.forward(x, &mut Observed { m: self, f })
    }
}

/// Correct answers of `logits` `[B, classes]` against `labels` (top-1, argmax).
pub fn correct_in(logits: &Tensor, labels: &[u32]) -> Result<usize> {
    Ok(hits_in(logits, labels)?.into_iter().filter(|&h| h).count())
}

/// Whether each row of `logits` `[B, classes]` has its largest value at the row's label
/// (top-1, argmax), in order.
pub fn hits_in(logits: &Tensor, labels: &[u32]) -> Result<Vec<bool>> {
    let pred = logits.argmax(D::Minus1)?.to_vec1::<u32>()?;
    Ok(pred.iter().zip(labels).map(|(p, l)| p == l).collect())
}

/// Top-1 as a fraction: `correct / total` (0 for no images). Every accuracy of the project is
/// computed by this one expression, so partial counts that add up give bit-identical results.
pub fn top1(correct: usize, total: usize) -> f64 {
    correct as f64 / total.max(1) as f64
}

fn host_values(x: &Tensor) -> Result<Vec<f32>> {
    x.flatten_all()?.to_vec1::<f32>()
}

struct Unfolded<'a> {
    m: &'a QuantModel,
}

impl LayerRunner for Unfolded<'_> {
    fn layer(&mut self, i: usize, x: &Tensor) -> Result<Tensor> {
        let l = &self.m.arch.layers[i];
        let raw = &self.m.raw;
        let y = apply_layer(
            l,
            x,
            &raw[&format!("{}.weight", l.name)],
            raw.get(&format!("{}.bias", l.name)),
        )?;
        match &l.bn {
            None => Ok(y),
            Some(bn) => {
                let g = |t: &str| raw[&format!("{bn}.{t}")].reshape((1, (), 1, 1));
                let y = y.broadcast_sub(&g("running_mean")?)?;
                let y = y.broadcast_div(&(g("running_var")? + BN_EPS)?.sqrt()?)?;
                y.broadcast_mul(&g("weight")?)?.broadcast_add(&g("bias")?)
            }
        }
    }
}

/// Runs the folded FP32 layers and records each one's MACs.
struct Measured<'a> {
    m: &'a QuantModel,
    macs: &'a mut Vec<u64>,
}

impl LayerRunner for Measured<'_> {
    fn layer(&mut self, i: usize, x: &Tensor) -> Result<Tensor> {
        let (w, b) = &self.m.folded[i];
        let y = apply_layer(&self.m.arch.layers[i], x, w, Some(b))?;
        // Positions = output elements per image / output channels.
        let positions = (y.elem_count() / y.dim(0)?.max(1)) / self.m.arch.layers[i].out_ch;
        self.macs[i] = self.m.arch.layers[i].n_weights() * positions as u64;
        Ok(y)
    }
}

struct Observed<'a, 'f> {
    m: &'a QuantModel,
    f: &'f mut dyn FnMut(usize, &Tensor) -> Result<()>,
}

impl LayerRunner for Observed<'_, '_> {
    fn layer(&mut self, i: usize, x: &Tensor) -> Result<Tensor> {
        (self.f)(i, x)?;
        let (w, b) = &self.m.folded[i];
        apply_layer(&self.m.arch.layers[i], x, w, Some(b))
    }
}

struct Quantized<'a> {
    m: &'a QuantModel,
    config: &'a [BitPair],
}

impl LayerRunner for Quantized<'_> {
    fn layer(&mut self, i: usize, x: &Tensor) -> Result<Tensor> {
        self.layer_post(i, x, Post::NONE)
    }
    fn layer_post(&mut self, i: usize, x: &Tensor, post: Post<'_>) -> Result<Tensor> {
        self.m.quantized_layer_post(i, self.config[i], x, post)
    }
    fn layout(&self) -> ActLayout {
        self.m.layout()
    }
}

/// The CPU kernels at FP32 (folded weights, `config` `None`) or at a configuration.
struct Fast<'a> {
    m: &'a QuantModel,
    config: Option<&'a [BitPair]>,
}

impl LayerRunner for Fast<'_> {
    fn layer(&mut self, i: usize, x: &Tensor) -> Result<Tensor> {
        self.layer_post(i, x, Post::NONE)
    }
    fn layer_post(&mut self, i: usize, x: &Tensor, post: Post<'_>) -> Result<Tensor> {
        match self.config {
            Some(c) => self.m.quantized_layer_post(i, c[i], x, post),
            None => {
                let Kernels::Cpu(isa) = self.m.kernels else {
                    candle_core::bail!("CPU kernels not selected")
                };
                self.m.packed_fp32[i].forward(x, None, post.residual, post.act.into(), isa)
            }
        }
    }
    fn layout(&self) -> ActLayout {
        ActLayout::Nhwc
    }
}

/// Seconds spent in each part of quantized forward passes (see [`QuantModel::logits_profiled`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Profile {
    /// Fake quantization of the layer inputs.
    pub fake_quant: f64,
    /// The layers' convolutions and products (bias included), by [`layer_category`].
    pub layers: BTreeMap<&'static str, f64>,
    /// Whole forward passes.
    pub total: f64,
}

impl Profile {
    /// Everything else: activations, residual additions, pooling.
    pub fn other(&self) -> f64 {
        self.total - self.fake_quant - self.layers.values().sum::<f64>()
    }
}

/// The profiling category of a layer: `conv 1x1`, `conv kxk` (k > 1), `depthwise`, `linear`.
pub fn layer_category(l: &LayerSpec) -> &'static str {
    match l.kind {
        LayerKind::Conv if l.kernel == 1 => "conv 1x1",
        LayerKind::Conv => "conv kxk",
        LayerKind::Depthwise => "depthwise",
        LayerKind::Linear => "linear",
    }
}

struct Profiled<'a> {
    m: &'a QuantModel,
    p: &'a mut Profile,
}

impl LayerRunner for Profiled<'_> {
    fn layer(&mut self, i: usize, x: &Tensor) -> Result<Tensor> {
        self.layer_post(i, x, Post::NONE)
    }
    fn layer_post(&mut self, i: usize, x: &Tensor, post: Post<'_>) -> Result<Tensor> {
        let pair = self.m.config[i];
        let l = &self.m.arch.layers[i];
        if let Kernels::Cpu(_) = self.m.kernels {
            // Fake quantization, bias, residual and activation are fused into the layer.
            let t = std::time::Instant::now();
            let y = self.m.quantized_layer_post(i, pair, x, post)?;
            *self.p.layers.entry(layer_category(l)).or_default() += t.elapsed().as_secs_f64();
            return Ok(y);
        }
        if self.m.method[i].contains_key(&pair) {
            return post.apply(self.m.quantized_layer(i, pair, x)?);
        }
        let t = std::time::Instant::now();
        let x = match self.m.act_grid[i][&pair.a] {
            Some(g) => fake_quant(x, &g)?,
            None => x.clone(),
        };
        self.p.fake_quant += t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        let y = apply_layer(
            l,
            &x,
            &self.m.weights_q[i][&pair.w],
            Some(&self.m.folded[i].1),
        )?;
        *self.p.layers.entry(layer_category(l)).or_default() += t.elapsed().as_secs_f64();
        post.apply(y)
    }
    fn layout(&self) -> ActLayout {
        self.m.layout()
    }
}

impl QuantModel {
    /// The quantized logits (as [`Precision::Quantized`]), adding the time of each part to
    /// `p`. CPU operations are synchronous, so the split is exact there.
    pub fn logits_profiled(&self, x: &Tensor, p: &mut Profile) -> Result<Tensor> {
        let t = std::time::Instant::now();
        let y = self
            .arch
            .forward(&self.input(x)?, &mut Profiled { m: self, p })?;
        p.total += t.elapsed().as_secs_f64();
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{images, max_diff, random_model as model};
    use crate::ArchName;
    use mpq_quant::{calibrate_values, quantize_weights_per_channel};

    #[test]
    fn folding_preserves_the_function() {
        for arch in [ArchName::ResnetTiny, ArchName::MobilenetTiny] {
            let m = model(arch);
            let x = &images(8)[0].images;
            let a = m.logits(x, Precision::Fp32).unwrap();
            let b = m.logits(x, Precision::Fp32Folded).unwrap();
            let scale = a
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(max_diff(&a, &b) <= 1e-4 * scale.max(1.0), "{arch}");
        }
    }

    #[test]
    fn cached_weights_and_first_layer_calibration_follow_the_quantizer() {
        let mut m = model(ArchName::MobilenetTiny);
        let calib = images(32);
        let low = BitPair::new(4, 4).unwrap();
        m.prepare(&[BitPair::W8A8, low], &calib).unwrap();
        // Weights: exactly the per-channel quantizer on the folded weights.
        for i in [0, 2, 19] {
            let w = &m.folded[i].0;
            let v = w.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let want = quantize_weights_per_channel(&v, w.dim(0).unwrap(), 4);
            assert_eq!(
                m.weights_q[i][&4]
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap(),
                want
            );
        }
        // Layer 0's input is the images themselves: its grid is the calibration of their values.
        let all: Vec<f32> = calib
            .iter()
            .flat_map(|b| b.images.flatten_all().unwrap().to_vec1::<f32>().unwrap())
            .collect();
        assert_eq!(m.act_grid(0, 4), calibrate_values(&all, 4));
        assert_eq!(m.act_grid(0, 8), calibrate_values(&all, 8));
    }

    #[test]
    fn switching_configurations_recomputes_nothing_and_leaks_nothing() {
        let mut m = model(ArchName::ResnetTiny);
        let calib = images(16);
        let low = BitPair::new(4, 4).unwrap();
        m.prepare(&[BitPair::W8A8, low], &calib).unwrap();
        let n = m.n_layers();
        let x = &calib[0].images;
        let mut mask = vec![false; n];
        m.set_low(&mask, low, BitPair::W8A8);
        let a = m.logits(x, Precision::Quantized).unwrap();
        mask[3] = true;
        mask[n - 1] = true;
        m.set_low(&mask, low, BitPair::W8A8);
        let b = m.logits(x, Precision::Quantized).unwrap();
        assert!(
            max_diff(&a, &b) > 0.0,
            "moving layers to W4A4 changes the output"
        );
        // Preparing again is a no-op (nothing recomputed), and going back restores the output.
        let before = m.weights_q[3][&4].clone();
        m.prepare(&[BitPair::W8A8, low], &calib).unwrap();
        assert_eq!(
            before.id(),
            m.weights_q[3][&4].id(),
            "the cached tensor itself"
        );
        m.set_low(&vec![false; n], low, BitPair::W8A8);
        let c = m.logits(x, Precision::Quantized).unwrap();
        assert_eq!(max_diff(&a, &c), 0.0);
    }

    #[test]
    fn the_profiled_forward_is_the_quantized_forward() {
        let mut m = model(ArchName::MobilenetTiny);
        let calib = images(16);
        m.prepare(&[BitPair::W8A8], &calib).unwrap();
        let x = &calib[0].images;
        for k in [Kernels::Candle, Kernels::Cpu(Isa::detect())] {
            m.set_kernels(k).unwrap();
            let mut p = Profile::default();
            let a = m.logits_profiled(x, &mut p).unwrap();
            let b = m.logits(x, Precision::Quantized).unwrap();
            assert_eq!(max_diff(&a, &b), 0.0);
            let cats: Vec<&str> = p.layers.keys().copied().collect();
            assert_eq!(cats, ["conv 1x1", "conv kxk", "depthwise", "linear"]);
            // The CPU kernels fuse the fake quantization into the layers.
            assert_eq!(p.fake_quant > 0.0, k == Kernels::Candle);
            assert!(p.other() >= -1e-9 && p.total > 0.0);
        }
    }

    /// The CPU kernels compute the candle path's function: FP32 folded and quantized logits
    /// within f32 rounding of each other on both embedded models (the quantized ones can
    /// differ by a grid step where rounding differences push an activation across a rounding
    /// boundary, so they are compared loosely, and argmax agreement is counted).
    #[test]
    fn cpu_kernels_agree_with_the_candle_path() {
        for arch in [ArchName::ResnetTiny, ArchName::MobilenetTiny] {
            let mut m = model(arch);
            let calib = images(32);
            let low = BitPair::new(4, 8).unwrap();
            m.prepare(&[BitPair::W8A8, low], &calib).unwrap();
            let x = &calib[0].images;
            let mut config = vec![BitPair::W8A8; m.n_layers()];
            config[1] = low;
            let mut out = vec![];
            for k in [Kernels::Candle, Kernels::Cpu(Isa::detect())] {
                m.set_kernels(k).unwrap();
                out.push((
                    m.logits(x, Precision::Fp32Folded).unwrap(),
                    m.logits_with(x, &config).unwrap(),
                ));
            }
            let scale = |t: &Tensor| {
                t.abs()
                    .unwrap()
                    .max_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap()
                    .max(1.0)
            };
            let (fa, qa) = &out[0];
            let (fb, qb) = &out[1];
            assert!(max_diff(fa, fb) <= 1e-5 * scale(fa), "{arch} FP32");
            assert!(max_diff(qa, qb) <= 0.05 * scale(qa), "{arch} quantized");
            let agree = |a: &Tensor, b: &Tensor| {
                let pa = a.argmax(D::Minus1).unwrap().to_vec1::<u32>().unwrap();
                let pb = b.argmax(D::Minus1).unwrap().to_vec1::<u32>().unwrap();
                pa.iter().zip(&pb).filter(|(x, y)| x == y).count()
            };
            assert_eq!(agree(fa, fb), 16, "{arch}");
            assert!(agree(qa, qb) >= 15, "{arch}");
        }
    }
}
