//! Training the embedded models on the embedded dataset with candle-nn's autograd, on the CPU.
//! The graph is the same [`Arch::forward`] the quantized evaluation runs; only the layer runner
//! differs (batch-norm in training mode, differentiable depthwise path). Every random number
//! (initialisation, data, order) comes from the project's seeded generator, so a seed and a
//! thread count reproduce the weights.
use crate::arch::{Arch, ArchName, LayerKind, LayerRunner};
use crate::depthwise::depthwise;
use crate::qmodel::{apply_layer, Precision, QuantModel};
use crate::unfold::conv2d_unfold;
use crate::weights::BN_EPS;
use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use mpq_data::synth::{generate, Split, SynthConfig};
use mpq_data::Rng;
use std::collections::HashMap;

#[derive(Clone, Debug)]
pub struct TrainConfig {
    pub epochs: usize,
    /// Fresh images per epoch (epoch e uses train-split images e*n .. (e+1)*n).
    pub images_per_epoch: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub seed: u64,
    pub data: SynthConfig,
    /// Test-split images scored after each epoch.
    pub eval_images: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 24,
            images_per_epoch: 6000,
            batch_size: 64,
            lr: 4e-3,
            weight_decay: 1e-4,
            seed: 0,
            data: SynthConfig::default(),
            eval_images: 1000,
        }
    }
}

impl TrainConfig {
    /// The configuration the committed embedded weights were trained with (the same for both
    /// embedded models: 24 epochs of 6,000 fresh images, AdamW at 4e-3 with warm-up and cosine
    /// decay, seed 0; trained with `mpq train --arch <arch> --threads 1`, since the thread
    /// count changes the order of floating-point sums).
    pub fn for_arch(_arch: ArchName) -> TrainConfig {
        TrainConfig::default()
    }
}

const BN_MOMENTUM: f64 = 0.1;

/// Parameters being trained, in the architecture's tensor names.
pub struct Params {
    pub vars: HashMap<String, Var>,
    pub stats: HashMap<String, Tensor>,
}

impl Params {
    /// He-normal convolutions, uniform(+-1/sqrt(fan_in)) linear layers, BN at (1, 0, 0, 1).
    pub fn init(arch: &Arch, seed: u64, device: &Device) -> Result<Params> {
        let mut r = Rng::new(seed);
        let mut vars = HashMap::new();
        let mut stats = HashMap::new();
        for l in &arch.layers {
            let shape = l.weight_shape();
            let n = l.n_weights() as usize;
            let fan_in = l.fan_in() as f64;
            let w: Vec<f32> = match l.kind {
                LayerKind::Linear => (0..n)
                    .map(|_| (r.range(-1.0, 1.0) / fan_in.sqrt()) as f32)
                    .collect(),
                _ => (0..n)
                    .map(|_| (r.normal() * (2.0 / fan_in).sqrt()) as f32)
                    .collect(),
            };
            vars.insert(
                format!("{}.weight", l.name),
                Var::from_vec(w, shape, device)?,
            );
            if l.bias {
                let b: Vec<f32> = (0..l.out_ch)
                    .map(|_| (r.range(-1.0, 1.0) / fan_in.sqrt()) as f32)
                    .collect();
                vars.insert(
                    format!("{}.bias", l.name),
                    Var::from_vec(b, l.out_ch, device)?,
                );
            }
            if let Some(bn) = &l.bn {
                vars.insert(
                    format!("{bn}.weight"),
                    Var::ones(l.out_ch, DType::F32, device)?,
                );
                vars.insert(
                    format!("{bn}.bias"),
                    Var::zeros(l.out_ch, DType::F32, device)?,
                );
                stats.insert(
                    format!("{bn}.running_mean"),
                    Tensor::zeros(l.out_ch, DType::F32, device)?,
                );
                stats.insert(
                    format!("{bn}.running_var"),
                    Tensor::ones(l.out_ch, DType::F32, device)?,
                );
            }
        }
        Ok(Params { vars, stats })
    }

    /// All tensors, as they are saved.
    pub fn tensors(&self) -> HashMap<String, Tensor> {
        let mut m: HashMap<String, Tensor> = self.stats.clone();
        for (k, v) in &self.vars {
            m.insert(k.clone(), v.as_tensor().detach());
        }
        m
    }

    fn sorted_vars(&self) -> Vec<Var> {
        let mut names: Vec<&String> = self.vars.keys().collect();
        names.sort();
        names.into_iter().map(|n| self.vars[n].clone()).collect()
    }
}

struct TrainRunner<'a> {
    arch: &'a Arch,
    p: &'a mut Params,
}

impl LayerRunner for TrainRunner<'_> {
    fn layer(&mut self, i: usize, x: &Tensor) -> Result<Tensor> {
        let l = &self.arch.layers[i];
        let w = self.p.vars[&format!("{}.weight", l.name)].as_tensor();
        let b = self
            .p
            .vars
            .get(&format!("{}.bias", l.name))
            .map(|v| v.as_tensor());
        let y = match l.kind {
            LayerKind::Depthwise => {
                let y = depthwise(x, w, l.stride, l.padding)?;
                match b {
                    Some(b) => y.broadcast_add(&b.reshape((1, (), 1, 1))?)?,
                    None => y,
                }
            }
            LayerKind::Conv => {
                let y = conv2d_unfold(x, w, l.stride, l.padding)?;
                match b {
                    Some(b) => y.broadcast_add(&b.reshape((1, (), 1, 1))?)?,
                    None => y,
                }
            }
            LayerKind::Linear => apply_layer(l, x, w, b)?,
        };
        let Some(bn) = &l.bn else { return Ok(y) };
        let mean = y.mean_keepdim(0)?.mean_keepdim(2)?.mean_keepdim(3)?;
        let centered = y.broadcast_sub(&mean)?;
        let var = centered
            .sqr()?
            .mean_keepdim(0)?
            .mean_keepdim(2)?
            .mean_keepdim(3)?;
        let out = centered.broadcast_div(&(&var + BN_EPS)?.sqrt()?)?;
        let g = self.p.vars[&format!("{bn}.weight")]
            .as_tensor()
            .reshape((1, (), 1, 1))?;
        let beta = self.p.vars[&format!("{bn}.bias")]
            .as_tensor()
            .reshape((1, (), 1, 1))?;
        let count = (y.elem_count() / l.out_ch) as f64;
        let rm = format!("{bn}.running_mean");
        let rv = format!("{bn}.running_var");
        let new_m = ((&self.p.stats[&rm] * (1.0 - BN_MOMENTUM))?
            + (mean.detach().flatten_all()? * BN_MOMENTUM)?)?;
        let unbiased = (var.detach().flatten_all()? * (count / (count - 1.0).max(1.0)))?;
        let new_v = ((&self.p.stats[&rv] * (1.0 - BN_MOMENTUM))? + (unbiased * BN_MOMENTUM)?)?;
        self.p.stats.insert(rm, new_m);
        self.p.stats.insert(rv, new_v);
        out.broadcast_mul(&g)?.broadcast_add(&beta)
    }
}

/// Train `arch` and return its tensors (torchvision names, BN running statistics included).
/// `log` receives one line per epoch.
pub fn train(
    arch: &Arch,
    cfg: &TrainConfig,
    log: &mut dyn FnMut(&str),
) -> Result<HashMap<String, Tensor>> {
    let device = Device::Cpu;
    let mut p = Params::init(arch, cfg.seed, &device)?;
    let mut opt = AdamW::new(
        p.sorted_vars(),
        ParamsAdamW {
            lr: cfg.lr,
            weight_decay: cfg.weight_decay,
            ..Default::default()
        },
    )?;
    let steps_per_epoch = cfg.images_per_epoch.div_ceil(cfg.batch_size);
    let total = (steps_per_epoch * cfg.epochs).max(1);
    let eval = generate(&cfg.data, Split::Test, 0, cfg.eval_images).batches(250, &device)?;
    let mut step = 0usize;
    for epoch in 0..cfg.epochs {
        let t0 = std::time::Instant::now();
        let data = generate(
            &cfg.data,
            Split::Train,
            epoch * cfg.images_per_epoch,
            cfg.images_per_epoch,
        );
        let mut order: Vec<usize> = (0..data.len()).collect();
        Rng::for_item(&[cfg.seed, 0x5EED, epoch as u64]).shuffle(&mut order);
        let (mut loss_sum, mut correct) = (0f64, 0usize);
        for idx in order.chunks(cfg.batch_size) {
            // Linear warm-up over the first 3% of steps, then cosine decay to zero.
            let warm = (total as f64 * 0.03).max(1.0);
            let lr = if (step as f64) < warm {
                cfg.lr * (step + 1) as f64 / warm
            } else {
                let t = (step as f64 - warm) / (total as f64 - warm).max(1.0);
                cfg.lr * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            };
            opt.set_learning_rate(lr);
            let x = data.gather_images(idx, &device)?;
            let labels: Vec<u32> = idx.iter().map(|&i| data.labels[i]).collect();
            let y = Tensor::from_vec(labels.clone(), idx.len(), &device)?;
            let logits = arch.forward(&x, &mut TrainRunner { arch, p: &mut p })?;
            let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
            opt.backward_step(&loss)?;
            loss_sum += loss.to_scalar::<f32>()? as f64 * idx.len() as f64;
            let pred = logits.argmax(1)?.to_vec1::<u32>()?;
            correct += pred.iter().zip(&labels).filter(|(a, b)| a == b).count();
            step += 1;
        }
        let model = QuantModel::new(arch.clone(), p.tensors(), &device)?;
        let acc = model.accuracy(&eval, Precision::Fp32)?;
        log(&format!(
            "epoch {}/{}: loss {:.4}, train top-1 {:.2}%, test top-1 {:.2}% ({:.1}s)",
            epoch + 1,
            cfg.epochs,
            loss_sum / data.len() as f64,
            100.0 * correct as f64 / data.len() as f64,
            100.0 * acc,
            t0.elapsed().as_secs_f64()
        ));
    }
    Ok(p.tensors())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_is_reproducible_from_its_seed() {
        let arch = crate::arch::mobilenet_tiny();
        let cfg = TrainConfig {
            epochs: 1,
            images_per_epoch: 96,
            batch_size: 32,
            eval_images: 10,
            ..TrainConfig::default()
        };
        let a = train(&arch, &cfg, &mut |_| {}).unwrap();
        let b = train(&arch, &cfg, &mut |_| {}).unwrap();
        let c = train(&arch, &TrainConfig { seed: 1, ..cfg }, &mut |_| {}).unwrap();
        assert_eq!(a.len(), b.len());
        let mut differs = false;
        for (k, t) in &a {
            let x = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(
                x,
                b[k].flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                "{k}"
            );
            differs |= x != c[k].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        }
        assert!(differs, "another seed gives other weights");
        // Training moved the weights and the running statistics.
        let init = Params::init(&arch, 0, &Device::Cpu).unwrap().tensors();
        for k in ["features.0.0.weight", "features.0.1.running_mean"] {
            assert_ne!(
                a[k].flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                init[k].flatten_all().unwrap().to_vec1::<f32>().unwrap()
            );
        }
    }
}
