//! Depthwise convolution without candle's grouped path, which runs one convolution per channel
//! (hundreds of tiny convolutions per layer for MobileNetV2 or Xception).
//!
//! Two implementations, both exact to f32 rounding of the same sums:
//! - [`depthwise_cpu`]: a direct kernel (one pass over each channel plane, planes in parallel
//!   with rayon), used for inference on the CPU;
//! - [`depthwise_ops`]: shift-and-multiply-accumulate with candle tensor ops (k*k narrowed views
//!   of the padded input times per-channel taps). It runs on any device and is differentiable,
//!   so training and CUDA use it.
//!
//! [`depthwise`] picks between them; [`depthwise_candle`] is candle's grouped path, kept for the
//! benchmark and as the reference in tests.
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Output side of a convolution.
pub fn out_size(n: usize, k: usize, stride: usize, pad: usize) -> usize {
    (n + 2 * pad - k) / stride + 1
}

/// Depthwise convolution of `x` `[B, C, H, W]` with `w` `[C, 1, k, k]` (no bias), fastest path
/// for the device; tensors that track gradients take the differentiable path.
pub fn depthwise(x: &Tensor, w: &Tensor, stride: usize, pad: usize) -> Result<Tensor> {
    if x.device().is_cpu() && !x.track_op() && !w.track_op() {
        depthwise_cpu(x, w, stride, pad)
    } else {
        depthwise_ops(x, w, stride, pad)
    }
}

/// candle's grouped convolution (one convolution per channel).
pub fn depthwise_candle(x: &Tensor, w: &Tensor, stride: usize, pad: usize) -> Result<Tensor> {
    let c = x.dim(1)?;
    x.conv2d(w, pad, stride, 1, c)
}

/// Shift-and-accumulate with tensor ops (any device, differentiable).
pub fn depthwise_ops(x: &Tensor, w: &Tensor, stride: usize, pad: usize) -> Result<Tensor> {
    let (b, c, h, wd) = x.dims4()?;
    let k = w.dim(2)?;
    let xp = x.pad_with_zeros(2, pad, pad)?.pad_with_zeros(3, pad, pad)?;
    let (h1, w1) = (out_size(h, k, 1, pad), out_size(wd, k, 1, pad));
    let mut acc: Option<Tensor> = None;
    for ky in 0..k {
        for kx in 0..k {
            let tap = w
                .narrow(2, ky, 1)?
                .narrow(3, kx, 1)?
                .reshape((1, c, 1, 1))?;
            let term = xp
                .narrow(2, ky, h1)?
                .narrow(3, kx, w1)?
                .broadcast_mul(&tap)?;
            acc = Some(match acc {
                None => term,
                Some(a) => (a + term)?,
            });
        }
    }
    let y = acc.expect("kernel of size >= 1");
    if stride == 1 {
        return Ok(y);
    }
    // Keep rows and columns 0, s, 2s, ... of the stride-1 result.
    let (ho, wo) = (out_size(h, k, stride, pad), out_size(wd, k, stride, pad));
    let fit = |t: Tensor, dim: usize, have: usize, want: usize| -> Result<Tensor> {
        if have >= want {
            t.narrow(dim, 0, want)
        } else {
            t.pad_with_zeros(dim, 0, want - have)
        }
    };
    let y = fit(y, 2, h1, ho * stride)?;
    let y = fit(y, 3, w1, wo * stride)?;
    y.reshape((b, c, ho, stride, wo, stride))?
        .narrow(3, 0, 1)?
        .narrow(5, 0, 1)?
        .reshape((b, c, ho, wo))
}

struct DepthwiseCpu {
    stride: usize,
    pad: usize,
}

impl CustomOp2 for DepthwiseCpu {
    fn name(&self) -> &'static str {
        "mpq-depthwise"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(x), CpuStorage::F32(w)) = (xs, ws) else {
            candle_core::bail!("depthwise kernel expects f32 tensors")
        };
        let (Some((xa, xb)), Some((wa, wb))) = (xl.contiguous_offsets(), wl.contiguous_offsets())
        else {
            candle_core::bail!("depthwise kernel expects contiguous tensors")
        };
        let (x, w) = (&x[xa..xb], &w[wa..wb]);
        let (b, c, h, wd) = xl.shape().dims4()?;
        let k = wl.shape().dims4()?.2;
        let (s, p) = (self.stride, self.pad);
        let (ho, wo) = (out_size(h, k, s, p), out_size(wd, k, s, p));
        let mut out = vec![0f32; b * c * ho * wo];
        out.par_chunks_mut(ho * wo)
            .enumerate()
            .for_each(|(plane, o)| {
                let ch = plane % c;
                let src = &x[plane * h * wd..(plane + 1) * h * wd];
                let taps = &w[ch * k * k..(ch + 1) * k * k];
                for ky in 0..k {
                    for oy in 0..ho {
                        let iy = (oy * s + ky) as isize - p as isize;
                        if iy < 0 || iy >= h as isize {
                            continue;
                        }
                        let row = &src[iy as usize * wd..(iy as usize + 1) * wd];
                        let orow = &mut o[oy * wo..(oy + 1) * wo];
                        for kx in 0..k {
                            let t = taps[ky * k + kx];
                            // ox such that 0 <= ox * s + kx - p < wd
                            let lo = (p.saturating_sub(kx)).div_ceil(s);
                            let hi = ((wd + p).saturating_sub(kx).div_ceil(s)).min(wo);
                            if lo >= hi {
                                continue;
                            }
                            if s == 1 {
                                let base = lo + kx - p;
                                for (ov, iv) in
                                    orow[lo..hi].iter_mut().zip(&row[base..base + (hi - lo)])
                                {
                                    *ov += t * iv;
                                }
                            } else {
                                for (ox, ov) in orow.iter_mut().enumerate().take(hi).skip(lo) {
                                    *ov += t * row[ox * s + kx - p];
                                }
                            }
                        }
                    }
                }
            });
        Ok((CpuStorage::F32(out), Shape::from((b, c, ho, wo))))
    }
}

/// The direct CPU kernel. Accumulation order per output: (ky, kx) ascending, as candle's path.
pub fn depthwise_cpu(x: &Tensor, w: &Tensor, stride: usize, pad: usize) -> Result<Tensor> {
    x.contiguous()?
        .apply_op2_no_bwd(&w.contiguous()?, &DepthwiseCpu { stride, pad })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use mpq_data::Rng;

    fn rand(shape: &[usize], r: &mut Rng) -> Tensor {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| r.normal() as f32).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
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

    #[test]
    fn all_paths_agree_with_candle_grouped_conv() {
        let mut r = Rng::new(3);
        for &(h, w, k, s, p) in &[
            (8, 8, 3, 1, 1),
            (9, 7, 3, 2, 1),
            (8, 8, 3, 2, 1),
            (6, 6, 5, 1, 2),
            (7, 7, 3, 1, 0),
            (10, 10, 5, 2, 2),
        ] {
            let x = rand(&[2, 5, h, w], &mut r);
            let wt = rand(&[5, 1, k, k], &mut r);
            let reference = depthwise_candle(&x, &wt, s, p).unwrap();
            let fast = depthwise_cpu(&x, &wt, s, p).unwrap();
            let ops = depthwise_ops(&x, &wt, s, p).unwrap();
            assert!(
                max_diff(&reference, &fast) < 1e-5,
                "cpu kernel {h}x{w} k{k} s{s} p{p}"
            );
            assert!(
                max_diff(&reference, &ops) < 1e-5,
                "ops path {h}x{w} k{k} s{s} p{p}"
            );
        }
    }

    #[test]
    fn ops_path_is_differentiable() {
        let mut r = Rng::new(4);
        let x = candle_core::Var::from_tensor(&rand(&[1, 2, 5, 5], &mut r)).unwrap();
        let w = candle_core::Var::from_tensor(&rand(&[2, 1, 3, 3], &mut r)).unwrap();
        let y = depthwise(x.as_tensor(), w.as_tensor(), 2, 1).unwrap();
        let g = y.sum_all().unwrap().backward().unwrap();
        let gw = g.get(w.as_tensor()).unwrap();
        // d(sum y)/dw[c, ky, kx] = sum of the inputs that tap touches.
        let gref = depthwise_candle(x.as_tensor(), w.as_tensor(), 2, 1)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert!(max_diff(gw, gref.get(w.as_tensor()).unwrap()) < 1e-5);
    }
}
