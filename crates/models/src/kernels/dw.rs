//! Depthwise convolution on NHWC activations, vectorized over channels: per output row, the
//! input rows the kernel covers are fake-quantized once into a zero-padded buffer
//! (`mpq_quant::Quantizer`), then every output pixel is `fma` accumulated over the taps in
//! `(ky, kx)` order from zero, then `+ bias` and the activation, in one pass.
use super::{Act, Isa};
use mpq_quant::Quantizer;
use rayon::prelude::*;

/// A depthwise convolution's taps `[k * k][c]` and bias `[c]`.
#[derive(Clone, Debug)]
pub struct PackedDw {
    pub c: usize,
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
    taps: Vec<f32>,
    bias: Vec<f32>,
}

impl PackedDw {
    /// From `w` `[c, 1, k, k]` (row-major) and `bias` `[c]`.
    pub fn new(
        w: &[f32],
        bias: &[f32],
        c: usize,
        kernel: usize,
        stride: usize,
        pad: usize,
    ) -> Self {
        let kk = kernel * kernel;
        assert_eq!(w.len(), c * kk, "depthwise weight shape");
        assert_eq!(bias.len(), c, "bias shape");
        let mut taps = vec![0f32; kk * c];
        for ch in 0..c {
            for t in 0..kk {
                taps[t * c + ch] = w[ch * kk + t];
            }
        }
        PackedDw {
            c,
            kernel,
            stride,
            pad,
            taps,
            bias: bias.to_vec(),
        }
    }

    pub fn out_size(&self, n: usize) -> usize {
        (n + 2 * self.pad - self.kernel) / self.stride + 1
    }
}

thread_local! {
    static ROWS: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Depthwise convolution of `x` (NHWC `[n, h, w, c]`), input fake-quantized by `q` where
/// given, then bias and `act`. Returns the NHWC output and `(ho, wo)`.
#[allow(clippy::too_many_arguments)]
pub fn depthwise(
    p: &PackedDw,
    x: &[f32],
    n: usize,
    h: usize,
    w: usize,
    q: Option<&Quantizer>,
    act: Act,
    isa: Isa,
) -> (Vec<f32>, usize, usize) {
    assert_eq!(x.len(), n * h * w * p.c, "depthwise input shape");
    let (ho, wo) = (p.out_size(h), p.out_size(w));
    let mut out = vec![0f32; n * ho * wo * p.c];
    out.par_chunks_mut(wo * p.c)
        .enumerate()
        .for_each(|(t, orow)| {
            ROWS.with(|rows| {
                let mut rows = rows.borrow_mut();
                let row = Row {
                    p,
                    x,
                    h,
                    w,
                    q,
                    act,
                    img: t / ho,
                    oy: t % ho,
                };
                match isa {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: chosen only when the CPU has AVX-512F.
                    Isa::Avx512 => unsafe { row_avx512(&row, orow, &mut rows) },
                    _ => row.run(orow, &mut rows),
                }
            })
        });
    (out, ho, wo)
}

struct Row<'a> {
    p: &'a PackedDw,
    x: &'a [f32],
    h: usize,
    w: usize,
    q: Option<&'a Quantizer>,
    act: Act,
    img: usize,
    oy: usize,
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn row_avx512(r: &Row, orow: &mut [f32], rows: &mut Vec<f32>) {
    r.run(orow, rows)
}

impl Row<'_> {
    /// One output row.
    #[inline(always)]
    fn run(&self, orow: &mut [f32], rows: &mut Vec<f32>) {
        let p = self.p;
        let (c, k, s, pad) = (p.c, p.kernel, p.stride, p.pad);
        let wp = self.w + 2 * pad;
        rows.resize(k * wp * c, 0.0);
        // The input rows under the kernel, padded; `None` above or below the input.
        let mut valid = [false; 16];
        assert!(k <= 16, "kernel side up to 16");
        for ky in 0..k {
            let iy = (self.oy * s + ky) as isize - pad as isize;
            if iy < 0 || iy >= self.h as isize {
                continue;
            }
            valid[ky] = true;
            let dst = &mut rows[ky * wp * c..(ky + 1) * wp * c];
            dst[..pad * c].fill(0.0);
            dst[(pad + self.w) * c..].fill(0.0);
            let start = (self.img * self.h + iy as usize) * self.w * c;
            let src = &self.x[start..start + self.w * c];
            let inner = &mut dst[pad * c..(pad + self.w) * c];
            match self.q {
                Some(q) => q.quantize_into(src, inner),
                None => inner.copy_from_slice(src),
            }
        }
        const CH: usize = 64;
        for (ox, o) in orow.chunks_exact_mut(c).enumerate() {
            for c0 in (0..c).step_by(CH) {
                let len = CH.min(c - c0);
                let mut acc = [0f32; CH];
                for ky in (0..k).filter(|&ky| valid[ky]) {
                    for kx in 0..k {
                        let xi = (ky * wp + ox * s + kx) * c + c0;
                        let xv = &rows[xi..xi + len];
                        let tv = &p.taps[(ky * k + kx) * c + c0..][..len];
                        if len == CH {
                            for j in 0..CH {
                                acc[j] = xv[j].mul_add(tv[j], acc[j]);
                            }
                        } else {
                            for j in 0..len {
                                acc[j] = xv[j].mul_add(tv[j], acc[j]);
                            }
                        }
                    }
                }
                let bias = &p.bias[c0..c0 + len];
                for j in 0..len {
                    o[c0 + j] = self.act.apply(acc[j] + bias[j]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{nhwc, randn};
    use mpq_data::Rng;

    /// Against candle's grouped conv2d: strides 1 and 2, channel counts around the vector
    /// width and the 64-channel chunk, batch 1, padding 0 and 1.
    #[test]
    fn matches_candle_grouped_conv() {
        let mut r = Rng::new(8);
        for (n, c, side, k, s, pad, act) in [
            (1, 16, 7, 3, 1, 1, Act::None),
            (2, 24, 9, 3, 2, 1, Act::Relu6),
            (1, 70, 6, 3, 1, 1, Act::Relu),
            (3, 5, 8, 3, 2, 0, Act::None),
            (1, 131, 5, 5, 1, 2, Act::Relu),
        ] {
            let x = randn(&[n, c, side, side], &mut r);
            let w = randn(&[c, 1, k, k], &mut r);
            let b = randn(&[c], &mut r);
            let y = x
                .conv2d(&w, pad, s, 1, c)
                .unwrap()
                .broadcast_add(&b.reshape((1, c, 1, 1)).unwrap())
                .unwrap();
            let y = match act {
                Act::None => y,
                Act::Relu => y.relu().unwrap(),
                Act::Relu6 => y.clamp(0f32, 6f32).unwrap(),
            };
            let want = nhwc(&y);
            let p = PackedDw::new(
                &w.flatten_all().unwrap().to_vec1().unwrap(),
                &b.to_vec1().unwrap(),
                c,
                k,
                s,
                pad,
            );
            let mut outs = vec![];
            for isa in Isa::available() {
                outs.push(depthwise(&p, &nhwc(&x), n, side, side, None, act, isa).0);
            }
            for (g, e) in outs[0].iter().zip(&want) {
                assert!((g - e).abs() <= 1e-5 * (1.0 + e.abs()), "{g} vs {e}");
            }
            for o in &outs[1..] {
                assert_eq!(o, &outs[0]);
            }
        }
    }
}
