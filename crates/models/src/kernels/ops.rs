//! The graph's operations between layers on NHWC activations: layout conversion of the input
//! images, max pooling (padding is -infinity, as PyTorch's) and global average pooling.
use crate::layer::MaxPool;
use candle_core::{CpuStorage, Layout, Result, Storage, Tensor};
use rayon::prelude::*;

/// The contiguous f32 values of a CPU tensor's storage.
pub fn f32_slice<'a>(s: &'a Storage, l: &Layout) -> Result<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (Storage::Cpu(CpuStorage::F32(v)), Some((a, b))) => Ok(&v[a..b]),
        _ => candle_core::bail!("CPU kernels expect contiguous f32 tensors on the CPU"),
    }
}

/// `[B, C, H, W]` to `[B, H, W, C]` (contiguous).
pub fn to_nhwc(x: &Tensor) -> Result<Tensor> {
    x.permute((0, 2, 3, 1))?.contiguous()
}

/// `[B, H, W, C]` to `[B, C, H, W]` (contiguous).
pub fn to_nchw(x: &Tensor) -> Result<Tensor> {
    x.permute((0, 3, 1, 2))?.contiguous()
}

/// Max pooling of NHWC `x`; windows overhanging the input ignore the outside (PyTorch's
/// -infinity padding).
pub fn max_pool(x: &Tensor, p: &MaxPool) -> Result<Tensor> {
    let (n, h, w, c) = x.dims4()?;
    let x = x.contiguous()?;
    let (s, l) = x.storage_and_layout();
    let xs = f32_slice(&s, l)?;
    let (k, st, pad) = (p.kernel, p.stride, p.padding);
    let ho = (h + 2 * pad - k) / st + 1;
    let wo = (w + 2 * pad - k) / st + 1;
    let mut out = vec![0f32; n * ho * wo * c];
    out.par_chunks_mut(wo * c)
        .enumerate()
        .for_each(|(t, orow)| {
            let (img, oy) = (t / ho, t % ho);
            let rows = (0..k)
                .map(|ky| (oy * st + ky) as isize - pad as isize)
                .filter(|&iy| iy >= 0 && iy < h as isize);
            for (ox, o) in orow.chunks_exact_mut(c).enumerate() {
                o.fill(f32::NEG_INFINITY);
                for iy in rows.clone() {
                    for kx in 0..k {
                        let ix = (ox * st + kx) as isize - pad as isize;
                        if ix < 0 || ix >= w as isize {
                            continue;
                        }
                        let i = ((img * h + iy as usize) * w + ix as usize) * c;
                        for (m, v) in o.iter_mut().zip(&xs[i..i + c]) {
                            if *v > *m {
                                *m = *v;
                            }
                        }
                    }
                }
            }
        });
    Tensor::from_vec(out, (n, ho, wo, c), x.device())
}

/// Mean over the pixels of NHWC `x`: `[B, C]` (the sum in pixel order, divided by `H * W`).
pub fn global_avg_pool(x: &Tensor) -> Result<Tensor> {
    let (n, h, w, c) = x.dims4()?;
    let x = x.contiguous()?;
    let (s, l) = x.storage_and_layout();
    let xs = f32_slice(&s, l)?;
    let mut out = vec![0f32; n * c];
    let hw = h * w;
    out.par_chunks_mut(c).enumerate().for_each(|(img, o)| {
        for px in xs[img * hw * c..(img + 1) * hw * c].chunks_exact(c) {
            for (a, v) in o.iter_mut().zip(px) {
                *a += v;
            }
        }
        for a in o.iter_mut() {
            *a /= hw as f32;
        }
    });
    Tensor::from_vec(out, (n, c), x.device())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{max_diff, randn};
    use mpq_data::Rng;

    #[test]
    fn pools_match_the_nchw_ops() {
        let mut r = Rng::new(2);
        let x = randn(&[2, 19, 9, 7], &mut r);
        let xn = to_nhwc(&x).unwrap();
        let p = MaxPool {
            kernel: 3,
            stride: 2,
            padding: 1,
        };
        let want = p.apply(&x).unwrap();
        let got = to_nchw(&max_pool(&xn, &p).unwrap()).unwrap();
        assert_eq!(max_diff(&want, &got), 0.0);
        let want = x.mean(3).unwrap().mean(2).unwrap();
        let got = global_avg_pool(&xn).unwrap();
        assert!(max_diff(&want, &got) < 1e-6);
    }
}
