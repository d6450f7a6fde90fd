//! Micro-benchmark of depthwise convolution: candle's grouped path (one convolution per
//! channel) against this crate's direct CPU kernel and its tensor-op path, on the depthwise
//! shapes of the embedded MobileNetV2-like model and of MobileNetV2 at 224x224.
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
        ("mobilenet-tiny features.2 dw (s2)", 256, 64, 16, 2),
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
