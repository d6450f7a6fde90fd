//! Helpers shared by this crate's unit tests.
use crate::{train::Params, Arch, ArchName, QuantModel};
use candle_core::{Device, Tensor};
use mpq_data::synth::{generate, Split, SynthConfig};
use mpq_data::{Batch, Rng};

/// A standard-normal tensor on the CPU.
pub fn randn(shape: &[usize], r: &mut Rng) -> Tensor {
    let v: Vec<f32> = (0..shape.iter().product())
        .map(|_| r.normal() as f32)
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

/// The values of an NCHW tensor in NHWC order.
pub fn nhwc(t: &Tensor) -> Vec<f32> {
    t.permute((0, 2, 3, 1))
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// Largest absolute difference of two tensors of the same shape.
pub fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar()
        .unwrap()
}

/// A model of `arch` with random-init weights and non-trivial batch-norm parameters and
/// statistics.
pub fn random_model(arch: ArchName) -> QuantModel {
    let arch = Arch::new(arch);
    let mut t = Params::init(&arch, 3, &Device::Cpu).unwrap().tensors();
    let mut r = Rng::new(9);
    for (k, v) in t.iter_mut() {
        let n = v.elem_count();
        let noise = |lo: f64, hi: f64, r: &mut Rng| -> Vec<f32> {
            (0..n).map(|_| r.range(lo, hi) as f32).collect()
        };
        let new = if k.ends_with("running_var") || (k.ends_with(".weight") && v.rank() == 1) {
            Some(noise(0.5, 1.5, &mut r))
        } else if k.ends_with("running_mean") || (k.ends_with(".bias") && v.rank() == 1) {
            Some(noise(-0.2, 0.2, &mut r))
        } else {
            None
        };
        if let Some(x) = new {
            *v = Tensor::from_vec(x, v.shape(), &Device::Cpu).unwrap();
        }
    }
    QuantModel::new(arch, t, &Device::Cpu).unwrap()
}

/// `n` calibration-split images of the embedded dataset in batches of 16.
pub fn images(n: usize) -> Vec<Batch> {
    generate(&SynthConfig::default(), Split::Calibration, 0, n)
        .batches(16, &Device::Cpu)
        .unwrap()
}
