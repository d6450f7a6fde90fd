//! Depthwise convolution without candle's grouped path, which runs one convolution per channel
//! (hundreds of tiny convolutions per layer for MobileNetV2 or Xception).
//!
//! Two implementations, both exact to f32 rounding of the same sums:
//! - [`depthwise_cpu`]: a direct kernel (one pass over each channel plane, planes in parallel
//!   with rayon) with direct backward kernels, used on the CPU for inference and training;
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
/// for the device (both are differentiable).
pub fn depthwise(x: &Tensor, w: &Tensor, stride: usize, pad: usize) -> Result<Tensor> {
    if x.device().is_cpu() {
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

#[derive(Clone, Copy)]
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

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = g.contiguous()?;
        let gx = g.apply_op2_no_bwd(
            &w.contiguous()?,
            &GradInput {
                p: *self,
                x_shape: x.dims4()?,
            },
        )?;
        let gw = x.contiguous()?.apply_op2_no_bwd(
            &g,
            &GradWeight {
                p: *self,
                k: w.dim(2)?,
            },
        )?;
        Ok((Some(gx), Some(gw)))
    }
}

/// Geometry of one channel plane: input `h x wd`, kernel `k`, stride `s`, padding `p`, output
/// `ho x wo`.
#[derive(Clone, Copy)]
struct Plane {
    h: usize,
    wd: usize,
    k: usize,
    s: usize,
    p: usize,
    ho: usize,
    wo: usize,
}

/// Visit every (output position, tap) pair of one channel plane: `f(out_index, in_index, tap)`.
#[inline]
fn for_each_tap(g: Plane, mut f: impl FnMut(usize, usize, usize)) {
    let Plane {
        h,
        wd,
        k,
        s,
        p,
        ho,
        wo,
    } = g;
    for ky in 0..k {
        for oy in 0..ho {
            let iy = (oy * s + ky) as isize - p as isize;
            if iy < 0 || iy >= h as isize {
                continue;
            }
            for kx in 0..k {
                let lo = (p.saturating_sub(kx)).div_ceil(s);
                let hi = ((wd + p).saturating_sub(kx).div_ceil(s)).min(wo);
                for ox in lo..hi {
                    f(
                        oy * wo + ox,
                        iy as usize * wd + ox * s + kx - p,
                        ky * k + kx,
                    );
                }
            }
        }
    }
}

fn f32_slice<'a>(st: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    match (st, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
        _ => candle_core::bail!("depthwise kernels expect contiguous f32 tensors"),
    }
}

/// Gradient of the input: scatter `grad_out * tap` back to the input positions.
struct GradInput {
    p: DepthwiseCpu,
    x_shape: (usize, usize, usize, usize),
}

impl CustomOp2 for GradInput {
    fn name(&self) -> &'static str {
        "mpq-depthwise-grad-input"
    }
    fn cpu_fwd(
        &self,
        gs: &CpuStorage,
        gl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (g, w) = (f32_slice(gs, gl)?, f32_slice(ws, wl)?);
        let (b, c, h, wd) = self.x_shape;
        let k = wl.shape().dims4()?.2;
        let (ho, wo) = (gl.shape().dims4()?.2, gl.shape().dims4()?.3);
        let (s, p) = (self.p.stride, self.p.pad);
        let mut out = vec![0f32; b * c * h * wd];
        out.par_chunks_mut(h * wd)
            .enumerate()
            .for_each(|(plane, o)| {
                let gp = &g[plane * ho * wo..(plane + 1) * ho * wo];
                let taps = &w[(plane % c) * k * k..(plane % c + 1) * k * k];
                for_each_tap(
                    Plane {
                        h,
                        wd,
                        k,
                        s,
                        p,
                        ho,
                        wo,
                    },
                    |oi, ii, t| o[ii] += gp[oi] * taps[t],
                );
            });
        Ok((CpuStorage::F32(out), Shape::from((b, c, h, wd))))
    }
}

/// Gradient of the taps: correlate input and `grad_out`, summed over the batch.
struct GradWeight {
    p: DepthwiseCpu,
    k: usize,
}

impl CustomOp2 for GradWeight {
    fn name(&self) -> &'static str {
        "mpq-depthwise-grad-weight"
    }
    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, g) = (f32_slice(xs, xl)?, f32_slice(gs, gl)?);
        let (b, c, h, wd) = xl.shape().dims4()?;
        let (ho, wo) = (gl.shape().dims4()?.2, gl.shape().dims4()?.3);
        let (k, s, p) = (self.k, self.p.stride, self.p.pad);
        let mut out = vec![0f32; c * k * k];
        out.par_chunks_mut(k * k).enumerate().for_each(|(ch, o)| {
            for n in 0..b {
                let plane = n * c + ch;
                let xp = &x[plane * h * wd..(plane + 1) * h * wd];
                let gp = &g[plane * ho * wo..(plane + 1) * ho * wo];
                for_each_tap(
                    Plane {
                        h,
                        wd,
                        k,
                        s,
                        p,
                        ho,
                        wo,
                    },
                    |oi, ii, t| o[t] += gp[oi] * xp[ii],
                );
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((c, 1, k, k))))
    }
}

/// The direct CPU kernel (with its backward, also direct kernels).
pub fn depthwise_cpu(x: &Tensor, w: &Tensor, stride: usize, pad: usize) -> Result<Tensor> {
    x.contiguous()?
        .apply_op2(&w.contiguous()?, DepthwiseCpu { stride, pad })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{max_diff, randn as rand};
    use mpq_data::Rng;

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
    fn gradients_of_both_fast_paths_equal_candle_grouped_conv() {
        let mut r = Rng::new(4);
        for &(h, s, p) in &[(5, 2, 1), (6, 1, 1), (7, 2, 1), (6, 1, 0)] {
            let x = candle_core::Var::from_tensor(&rand(&[2, 3, h, h], &mut r)).unwrap();
            let w = candle_core::Var::from_tensor(&rand(&[3, 1, 3, 3], &mut r)).unwrap();
            let grads = |f: fn(&Tensor, &Tensor, usize, usize) -> Result<Tensor>| {
                // sum(y^2): the output gradient differs per position.
                let g = f(x.as_tensor(), w.as_tensor(), s, p)
                    .unwrap()
                    .sqr()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap();
                (
                    g.get(x.as_tensor()).unwrap().clone(),
                    g.get(w.as_tensor()).unwrap().clone(),
                )
            };
            let (rx, rw) = grads(depthwise_candle);
            for (name, f) in [
                (
                    "cpu",
                    depthwise_cpu as fn(&Tensor, &Tensor, usize, usize) -> Result<Tensor>,
                ),
                ("ops", depthwise_ops),
            ] {
                let (gx, gw) = grads(f);
                assert!(max_diff(&gx, &rx) < 1e-4, "{name} grad x, h{h} s{s} p{p}");
                assert!(max_diff(&gw, &rw) < 1e-3, "{name} grad w, h{h} s{s} p{p}");
            }
        }
    }
}
