//! The quantizer of a layer's input tensor, whatever method chose it: the spec's power-of-two
//! grid ([`crate::calib`]), one float-step grid per layer (MMSE, LAPQ, AdaRound, ACIQ per
//! tensor), or one grid per channel (ACIQ's per-channel activations with bit allocation).
//!
//! On the CPU every form is one pass of exact Rust (a custom op). On other devices the
//! per-layer forms are elementary candle ops that compute the same f32 numbers (multiply by the
//! reciprocal, clamp to the codes, round by adding and subtracting 1.5 * 2^23, multiply by the
//! step); the per-channel form goes through the host.
use crate::grid::{Grid, Quantizer};
use crate::tensor::fake_quant;
use crate::uniform::Uniform;
use candle_core::{CpuStorage, CustomOp1, Device, Layout, Result, Shape, Tensor};

const MAGIC: f64 = 12_582_912.0; // 1.5 * 2^23

/// How a layer's input is quantized.
#[derive(Clone, Debug, PartialEq)]
pub enum InputQuant {
    /// The spec's power-of-two grid (`calib`).
    Pow2(Grid),
    /// One float-step grid for the whole tensor.
    Uniform(Uniform),
    /// One grid per channel (dimension 1 of `[B, C, ...]`).
    PerChannel(Vec<Uniform>),
}

impl InputQuant {
    /// The per-tensor forms as the [`Quantizer`] the CPU kernels fuse into a layer (bit-identical
    /// to [`InputQuant::apply`]); `None` for the per-channel form (see
    /// [`InputQuant::apply_channels_last`]).
    pub fn quantizer(&self) -> Option<Quantizer> {
        match self {
            InputQuant::Pow2(g) => Some(Quantizer::new(g)),
            InputQuant::Uniform(u) => Some(u.quantizer()),
            InputQuant::PerChannel(_) => None,
        }
    }

    /// [`InputQuant::apply`] on a CPU tensor whose channels are its last dimension (the CPU
    /// kernels' NHWC activations, or `[B, C]`): the same numbers, channel by channel.
    pub fn apply_channels_last(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            InputQuant::PerChannel(us) => x.contiguous()?.apply_op1_no_bwd(&ChannelsLastOp(us)),
            _ => self.apply(x),
        }
    }

    /// Fake-quantize `x` (`[B, C, ...]`).
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            InputQuant::Pow2(g) => fake_quant(x, g),
            InputQuant::Uniform(u) => {
                if x.device().is_cpu() {
                    x.contiguous()?.apply_op1_no_bwd(&UniformOp(u))
                } else {
                    let inv = (1.0 / u.scale) as f64;
                    x.affine(inv, 0.0)?
                        .clamp(u.lo as f32, u.hi as f32)?
                        .affine(1.0, MAGIC)?
                        .affine(1.0, -MAGIC)?
                        .affine(u.scale as f64, 0.0)
                }
            }
            InputQuant::PerChannel(us) => {
                let host = x.to_device(&Device::Cpu)?.contiguous()?;
                host.apply_op1_no_bwd(&PerChannelOp(us))?
                    .to_device(x.device())
            }
        }
    }
}

struct UniformOp<'a>(&'a Uniform);

impl CustomOp1 for UniformOp<'_> {
    fn name(&self) -> &'static str {
        "mpq-uniform-quant"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let mut out = contiguous_f32(s, l)?;
        self.0.quantize_slice(&mut out);
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }
}

struct PerChannelOp<'a>(&'a [Uniform]);

impl CustomOp1 for PerChannelOp<'_> {
    fn name(&self) -> &'static str {
        "mpq-per-channel-quant"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let dims = l.shape().dims();
        if dims.len() < 2 || dims[1] != self.0.len() {
            candle_core::bail!(
                "per-channel quantizer of {} channels applied to a tensor of shape {:?}",
                self.0.len(),
                dims
            )
        }
        let mut out = contiguous_f32(s, l)?;
        let inner: usize = dims[2..].iter().product();
        for (k, plane) in out.chunks_mut(inner.max(1)).enumerate() {
            self.0[k % dims[1]].quantize_slice(plane);
        }
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }
}

struct ChannelsLastOp<'a>(&'a [Uniform]);

impl CustomOp1 for ChannelsLastOp<'_> {
    fn name(&self) -> &'static str {
        "mpq-per-channel-quant-channels-last"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let c = *l.shape().dims().last().unwrap_or(&0);
        if c != self.0.len() {
            candle_core::bail!(
                "per-channel quantizer of {} channels applied to a channels-last tensor of shape {:?}",
                self.0.len(),
                l.shape().dims()
            )
        }
        let mut out = contiguous_f32(s, l)?;
        for px in out.chunks_mut(c.max(1)) {
            for (v, u) in px.iter_mut().zip(self.0) {
                *v = u.apply(*v);
            }
        }
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }
}

fn contiguous_f32(s: &CpuStorage, l: &Layout) -> Result<Vec<f32>> {
    let CpuStorage::F32(data) = s else {
        candle_core::bail!("input quantization expects f32 tensors")
    };
    let Some((a, b)) = l.contiguous_offsets() else {
        candle_core::bail!("input quantization expects a contiguous tensor")
    };
    Ok(data[a..b].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    /// The channels-last per-channel path (the CPU kernels' NHWC activations) and the fused
    /// quantizers of the per-tensor forms compute `apply`'s numbers.
    #[test]
    fn channels_last_and_fused_forms_equal_apply() {
        let dev = Device::Cpu;
        let us: Vec<Uniform> = (0..3)
            .map(|c| {
                Uniform::from_range(-0.5 - c as f32, 1.0 + 0.7 * c as f32, 2 + c as u8).unwrap()
            })
            .collect();
        let xs: Vec<f32> = (0..2 * 3 * 4 * 5)
            .map(|k| (k as f32 * 0.37).sin() * 3.0)
            .collect();
        let nchw = Tensor::from_vec(xs.clone(), (2, 3, 4, 5), &dev).unwrap();
        let q = InputQuant::PerChannel(us.clone());
        assert!(q.quantizer().is_none());
        let want = q.apply(&nchw).unwrap();
        let nhwc = nchw.permute((0, 2, 3, 1)).unwrap();
        let got = q.apply_channels_last(&nhwc).unwrap();
        assert_eq!(values(&got.permute((0, 3, 1, 2)).unwrap()), values(&want));
        for iq in [
            InputQuant::Uniform(us[1]),
            InputQuant::Pow2(Grid::min_max(-1.0, 2.0, 4).unwrap()),
        ] {
            let mut fused = xs.clone();
            iq.quantizer().unwrap().quantize_in_place(&mut fused);
            assert_eq!(fused, values(&iq.apply(&nchw).unwrap()));
        }
    }

    #[test]
    fn uniform_tensor_path_equals_the_scalar_rule_and_the_op_path() {
        let dev = Device::Cpu;
        let u = Uniform::from_range(-0.8, 2.3, 3).unwrap();
        let xs: Vec<f32> = (-60..60)
            .map(|k| k as f32 * 0.5 * u.scale + 0.001)
            .collect();
        let t = Tensor::from_vec(xs.clone(), (2, 3, 4, 5), &dev).unwrap();
        let q = InputQuant::Uniform(u).apply(&t).unwrap();
        let want: Vec<f32> = xs.iter().map(|&x| u.apply(x)).collect();
        assert_eq!(values(&q), want);
        // The elementary-op path (what other devices run) gives the same numbers.
        let inv = (1.0 / u.scale) as f64;
        let ops = t
            .affine(inv, 0.0)
            .unwrap()
            .clamp(u.lo as f32, u.hi as f32)
            .unwrap()
            .affine(1.0, MAGIC)
            .unwrap()
            .affine(1.0, -MAGIC)
            .unwrap()
            .affine(u.scale as f64, 0.0)
            .unwrap();
        assert_eq!(values(&ops), want);
    }

    #[test]
    fn per_channel_uses_each_channel_grid() {
        let dev = Device::Cpu;
        let grids = vec![
            Uniform::from_range(0.0, 1.0, 1).unwrap(), // levels 0, 1
            Uniform::constant(0.5),
        ];
        let x = Tensor::from_vec(
            vec![0.2f32, 0.7, 0.9, -1.0, 0.4, 0.6, 3.0, 0.1],
            (2, 2, 2),
            &dev,
        )
        .unwrap();
        let q = InputQuant::PerChannel(grids).apply(&x).unwrap();
        assert_eq!(values(&q), [0.0, 1.0, 0.5, 0.5, 0.0, 1.0, 0.5, 0.5]);
        let bad = InputQuant::PerChannel(vec![Uniform::constant(1.0); 3]);
        assert!(bad.apply(&x).is_err());
    }
}
