//! Quantization applied to candle tensors: weights (computed once per layer and bit-width, on
//! the host, with the exact per-channel rule of [`crate::grid`]) and activations (applied at
//! every evaluation, so it has to be fast on any device).
//!
//! Activation fake-quantization on the CPU is one pass of exact Rust (a custom op). On other
//! devices it is three candle ops: a clamp, then `x / d + 1.5 * 2^23` (the f32 addition rounds to
//! the nearest integer, ties to even, for |x / d| < 2^22), then `(t - 1.5 * 2^23) * d`. candle's
//! own `round()` rounds ties away from zero and is not used. Grids outside the exact range of that
//! trick fall back to the host.
use crate::grid::{quantize_slice, quantize_weights_per_channel, Grid};
use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};

const MAGIC: f64 = 12_582_912.0; // 1.5 * 2^23

/// Per-output-channel min-max quantization of a weight tensor whose first dimension is the
/// output channel; returns the dequantized (fake-quantized) f32 tensor on the same device.
pub fn quantize_weight_tensor(w: &Tensor, bits: u8) -> Result<Tensor> {
    let out = w.dim(0)?;
    let v = w.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    let q = quantize_weights_per_channel(&v, out, bits);
    Tensor::from_vec(q, w.shape(), w.device())
}

struct FakeQuant(Grid);

impl CustomOp1 for FakeQuant {
    fn name(&self) -> &'static str {
        "mpq-fake-quant"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(data) = s else {
            candle_core::bail!("fake-quant expects f32 tensors")
        };
        let Some((a, b)) = l.contiguous_offsets() else {
            candle_core::bail!("fake-quant expects a contiguous tensor")
        };
        let mut out = data[a..b].to_vec();
        quantize_slice(&mut out, &self.0);
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }
}

/// Fake-quantize an activation tensor on the grid `g` (exact, any device).
pub fn fake_quant(x: &Tensor, g: &Grid) -> Result<Tensor> {
    if x.device().is_cpu() || !g.magic_rounding_is_exact() {
        let on_host = x.to_device(&candle_core::Device::Cpu)?.contiguous()?;
        return on_host
            .apply_op1_no_bwd(&FakeQuant(*g))?
            .to_device(x.device());
    }
    fake_quant_ops(x, g)
}

/// The device-generic path of [`fake_quant`], public so it can be tested against the exact one
/// on the CPU. Only valid where `g.magic_rounding_is_exact()`.
pub fn fake_quant_ops(x: &Tensor, g: &Grid) -> Result<Tensor> {
    let d = g.step() as f64;
    x.clamp(g.lo, g.hi())?
        .affine(1.0 / d, MAGIC)?
        .affine(d, -MAGIC * d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn ops_path_equals_exact_path_including_ties() {
        let dev = Device::Cpu;
        let g = Grid {
            lo: -3.0,
            e: -2,
            bits: 5,
        };
        // Halves of the step (0.125 multiples) hit exact ties.
        let xs: Vec<f32> = (-40..80).map(|i| i as f32 * 0.125 + 0.0).collect();
        let t = Tensor::from_vec(xs.clone(), (2, 60), &dev).unwrap();
        let a = fake_quant(&t, &g)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let b = fake_quant_ops(&t, &g)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let mut c = xs.clone();
        quantize_slice(&mut c, &g);
        assert_eq!(a, c);
        assert_eq!(b, c);
        // 0.125 / 0.25 = 0.5 -> 0 (even), 0.375 / 0.25 = 1.5 -> 2
        let i = xs.iter().position(|&x| x == 0.125).unwrap();
        assert_eq!(a[i], 0.0);
        let i = xs.iter().position(|&x| x == 0.375).unwrap();
        assert_eq!(a[i], 0.5);
    }

    #[test]
    fn strided_input_is_handled() {
        let dev = Device::Cpu;
        let g = Grid {
            lo: 0.0,
            e: 0,
            bits: 2,
        };
        let t = Tensor::from_vec(vec![0.4f32, 1.6, 2.5, 9.0], (2, 2), &dev).unwrap();
        let q = fake_quant(&t.t().unwrap(), &g).unwrap();
        assert_eq!(
            q.to_vec2::<f32>().unwrap(),
            vec![vec![0.0, 2.0], vec![2.0, 3.0]]
        );
    }

    #[test]
    fn weight_tensor_per_channel() {
        let dev = Device::Cpu;
        let w = Tensor::from_vec(vec![-1.0f32, 0.2, 1.0, 5.0, 5.0, 5.0], (2, 3), &dev).unwrap();
        let q = quantize_weight_tensor(&w, 2)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        // channel 0: range 2 / 3 -> d = 1: [-1, 0, 1]; channel 1 constant: unchanged.
        assert_eq!(q, vec![vec![-1.0, 0.0, 1.0], vec![5.0, 5.0, 5.0]]);
    }
}
