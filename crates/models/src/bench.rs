//! Benchmarks: the whole forward pass of an architecture (images per second in FP32 and W8A8,
//! and where the W8A8 time goes, with the CPU kernels or the candle path), and a micro-benchmark of depthwise convolution: candle's
//! grouped path (one convolution per channel) against this crate's direct CPU kernel and its
//! tensor-op path, on the depthwise shapes of the embedded MobileNetV2-like model and of
//! MobileNetV2 at 224x224.
use crate::arch::ArchName;
use crate::depthwise::{depthwise_candle, depthwise_cpu, depthwise_ops};
use candle_core::{Device, Result, Tensor};
use mpq_data::Rng;
use std::time::Instant;

fn time(reps: usize, f: &dyn Fn() -> Result<Tensor>) -> Result<f64> {
    f()?; // warm-up
    let t = Instant::now();
    for _ in 0..reps {
        f()?;
    }
    Ok(t.elapsed().as_secs_f64() / reps as f64)
}

/// A Markdown table: shape, then milliseconds per call of each path and the speed-ups.
pub fn depthwise_markdown(reps: usize) -> Result<String> {
    let shapes: &[(&str, usize, usize, usize, usize)] = &[
        ("mobilenet-tiny features.4 dw (s2)", 256, 96, 8, 2),
        ("mobilenet-tiny features.3 dw", 256, 96, 8, 1),
        ("mobilenet-tiny features.5 dw", 256, 128, 4, 1),
        ("MobileNetV2 224 features.2 dw (s2)", 8, 96, 112, 2),
        ("MobileNetV2 224 features.4 dw", 8, 144, 56, 1),
        ("MobileNetV2 224 features.14 dw (s2)", 8, 576, 14, 2),
    ];
    let mut r = Rng::new(0);
    let mut out = String::from(
        "| layer | input [B, C, H, W] | stride | candle grouped (ms) | tensor-op path (ms) | direct CPU kernel (ms) | kernel speed-up |\n|---|---|---|---|---|---|---|\n",
    );
    for &(name, b, c, hw, s) in shapes {
        let x: Vec<f32> = (0..b * c * hw * hw).map(|_| r.normal() as f32).collect();
        let x = Tensor::from_vec(x, (b, c, hw, hw), &Device::Cpu)?;
        let w: Vec<f32> = (0..c * 9).map(|_| r.normal() as f32).collect();
        let w = Tensor::from_vec(w, (c, 1, 3, 3), &Device::Cpu)?;
        let t_candle = time(reps, &|| depthwise_candle(&x, &w, s, 1))?;
        let t_ops = time(reps, &|| depthwise_ops(&x, &w, s, 1))?;
        let t_cpu = time(reps, &|| depthwise_cpu(&x, &w, s, 1))?;
        out.push_str(&format!(
            "| {name} | [{b}, {c}, {hw}, {hw}] | {s} | {:.2} | {:.2} | {:.2} | {:.1}x |\n",
            t_candle * 1e3,
            t_ops * 1e3,
            t_cpu * 1e3,
            t_candle / t_cpu
        ));
    }
    Ok(out)
}

/// Throughput of one architecture's forward pass at one batch size and input side.
#[derive(Clone, Debug)]
pub struct ForwardBench {
    pub arch: ArchName,
    pub batch: usize,
    pub size: usize,
    pub reps: usize,
    /// Images per second: FP32 with batch-norm folded (no quantization), and all layers W8A8.
    pub fp32_ips: f64,
    pub w8a8_ips: f64,
    /// Where the W8A8 forward's time goes (one pass per repetition, profiled).
    pub profile: crate::qmodel::Profile,
}

/// Time `reps` forward passes (after one warm-up) of `arch` with random weights, calibrated
/// for W8A8 on 4 random images, on a random batch `[batch, 3, size, size]` on the CPU, with
/// the CPU kernels, or with the candle tensor-op path when `candle`.
pub fn forward(
    arch: &crate::Arch,
    batch: usize,
    size: usize,
    reps: usize,
    candle: bool,
) -> Result<ForwardBench> {
    use crate::qmodel::{Kernels, Precision, Profile, QuantModel};
    let dev = Device::Cpu;
    let w = crate::train::Params::init(arch, 0, &dev)?.tensors();
    let mut m = QuantModel::new(arch.clone(), w, &dev)?;
    let mut r = Rng::new(1);
    let mut images = |n: usize| -> Result<Tensor> {
        let v: Vec<f32> = (0..n * 3 * size * size)
            .map(|_| r.normal() as f32)
            .collect();
        Tensor::from_vec(v, (n, 3, size, size), &dev)
    };
    let calib = mpq_data::Batch {
        images: images(4)?,
        labels: vec![0; 4],
    };
    m.prepare(&[mpq_quant::BitPair::W8A8], &[calib])?;
    if candle {
        m.set_kernels(Kernels::Candle)?;
    }
    let x = images(batch)?;
    let reps = reps.max(1);
    let fp32 = time(reps, &|| m.logits(&x, Precision::Fp32Folded))?;
    let w8a8 = time(reps, &|| m.logits(&x, Precision::Quantized))?;
    let mut profile = Profile::default();
    for _ in 0..reps {
        m.logits_profiled(&x, &mut profile)?;
    }
    let scale = 1.0 / reps as f64;
    profile.fake_quant *= scale;
    profile.total *= scale;
    profile.layers.values_mut().for_each(|v| *v *= scale);
    Ok(ForwardBench {
        arch: arch.name,
        batch,
        size,
        reps,
        fp32_ips: batch as f64 / fp32,
        w8a8_ips: batch as f64 / w8a8,
        profile,
    })
}

impl ForwardBench {
    /// One Markdown table row: arch, batch, size, FP32 and W8A8 images/s, seconds per W8A8
    /// batch, and the share of its time in each part.
    pub fn markdown_row(&self) -> String {
        let p = &self.profile;
        let share = |t: f64| format!("{:.0}%", 100.0 * t / p.total);
        let cat = |c: &str| p.layers.get(c).map_or("-".to_string(), |&t| share(t));
        format!(
            "| {} | {} | {} | {:.1} | {:.1} | {:.2} | {} | {} | {} | {} | {} | {} |",
            self.arch,
            self.batch,
            self.size,
            self.fp32_ips,
            self.w8a8_ips,
            p.total,
            cat("conv kxk"),
            cat("conv 1x1"),
            cat("depthwise"),
            cat("linear"),
            share(p.fake_quant),
            share(p.other())
        )
    }

    pub const MARKDOWN_HEADER: &'static str = "| arch | batch | size | FP32 folded (img/s) | W8A8 (img/s) | W8A8 s/batch | conv kxk | conv 1x1 | depthwise | linear | fake-quant | other |\n|---|---|---|---|---|---|---|---|---|---|---|---|";
}
