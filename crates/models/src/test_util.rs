//! Helpers shared by this crate's unit tests.
use candle_core::{Device, Tensor};
use mpq_data::Rng;

/// A standard-normal tensor on the CPU.
pub fn randn(shape: &[usize], r: &mut Rng) -> Tensor {
    let v: Vec<f32> = (0..shape.iter().product())
        .map(|_| r.normal() as f32)
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
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
