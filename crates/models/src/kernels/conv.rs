//! Dense convolution (and fully connected layers, as 1x1 convolutions on 1x1 images) on NHWC
//! activations: an implicit GEMM `out[pixel, cout] = sum_k A[pixel, k] * W[k, cout]` with
//! `k = (ky, kx, cin)`, where `A` is never materialized: a block of pixel rows is gathered
//! (im2col) from the input into a small buffer just before use, with the layer's input
//! fake quantization applied while copying (through `mpq_quant::Quantizer`, the quantizer's own
//! arithmetic). The weights are packed once per layer and bit-width into column panels of
//! `NB` output channels. A register-blocked micro-kernel computes `MR` pixels by up to `NB`
//! channels; after the last block of `K`, the work after the convolution (bias, residual add,
//! ReLU or ReLU6) is applied to the registers before the single store.
//!
//! Every output value is `fma` accumulated over `k = 0, 1, ..., K-1` in that order, starting
//! from zero (partial sums across `K` blocks go through memory unchanged), then `+ bias`, then
//! `+ residual`, then the activation. That order is the same for the AVX-512 and the portable
//! micro-kernels and does not depend on the pixel tiling, the batch size or the thread count:
//! a result is a function of the image alone (tested).
use super::{Act, Isa};
use mpq_quant::Quantizer;
use rayon::prelude::*;

/// Pixels per micro-kernel call.
pub const MR: usize = 6;
/// Output channels per weight panel (4 vectors of 16).
const NB: usize = 64;
/// Length of a block of `K` (the packed pixel rows hold `MC x KC` values).
const KC: usize = 256;
/// Pixels per parallel task (a multiple of `MR`).
const MC: usize = 96;

/// One panel of the packed weights: output channels `n0 .. n0 + width`, `nv` vectors of 16
/// (`width` rounded up, zero padded), stored `[K][nv * 16]` from `off`.
#[derive(Clone, Debug)]
struct Panel {
    n0: usize,
    width: usize,
    nv: usize,
    off: usize,
}

/// A dense convolution's weights and bias, packed for [`conv`].
#[derive(Clone, Debug)]
pub struct PackedConv {
    pub cin: usize,
    pub cout: usize,
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
    panels: Vec<Panel>,
    data: Vec<f32>,
    /// Per panel, `nv * 16` values (zero padded), at `panel.off / K`.
    bias: Vec<f32>,
}

impl PackedConv {
    /// Pack `w` `[cout, cin, kernel, kernel]` (row-major, as PyTorch stores it) and `bias`
    /// `[cout]`.
    pub fn new(
        w: &[f32],
        bias: &[f32],
        cout: usize,
        cin: usize,
        kernel: usize,
        stride: usize,
        pad: usize,
    ) -> PackedConv {
        assert_eq!(w.len(), cout * cin * kernel * kernel, "weight shape");
        assert_eq!(bias.len(), cout, "bias shape");
        let kk = kernel * kernel * cin;
        let mut panels = vec![];
        let mut data = vec![];
        let mut packed_bias = vec![];
        for n0 in (0..cout).step_by(NB) {
            let width = NB.min(cout - n0);
            let nv = width.div_ceil(16);
            let off = data.len();
            data.resize(off + kk * nv * 16, 0.0);
            for ky in 0..kernel {
                for kx in 0..kernel {
                    for c in 0..cin {
                        let k = (ky * kernel + kx) * cin + c;
                        let row = &mut data[off + k * nv * 16..off + (k + 1) * nv * 16];
                        for (j, v) in row.iter_mut().enumerate().take(width) {
                            *v = w[(((n0 + j) * cin + c) * kernel + ky) * kernel + kx];
                        }
                    }
                }
            }
            packed_bias.extend((0..nv * 16).map(|j| if j < width { bias[n0 + j] } else { 0.0 }));
            panels.push(Panel { n0, width, nv, off });
        }
        PackedConv {
            cin,
            cout,
            kernel,
            stride,
            pad,
            panels,
            data,
            bias: packed_bias,
        }
    }

    /// `K`: the length of every output value's sum.
    pub fn k_len(&self) -> usize {
        self.kernel * self.kernel * self.cin
    }

    /// Output side for an input side `n`.
    pub fn out_size(&self, n: usize) -> usize {
        (n + 2 * self.pad - self.kernel) / self.stride + 1
    }
}

/// Input geometry of one call.
#[derive(Clone, Copy, Debug)]
struct Geom {
    h: usize,
    w: usize,
    ho: usize,
    wo: usize,
}

/// The convolution of `x` (NHWC `[n, h, w, cin]`) by `p`, its input fake-quantized by `q`
/// where given, then `+ bias`, `+ residual` (NHWC, the output's shape) and `act`. Returns the
/// NHWC output `[n, ho, wo, cout]` and `(ho, wo)`.
#[allow(clippy::too_many_arguments)]
pub fn conv(
    p: &PackedConv,
    x: &[f32],
    n: usize,
    h: usize,
    w: usize,
    q: Option<&Quantizer>,
    residual: Option<&[f32]>,
    act: Act,
    isa: Isa,
) -> (Vec<f32>, usize, usize) {
    assert_eq!(x.len(), n * h * w * p.cin, "conv input shape");
    let (ho, wo) = (p.out_size(h), p.out_size(w));
    let g = Geom { h, w, ho, wo };
    let mut out = vec![0f32; n * ho * wo * p.cout];
    if let Some(r) = residual {
        assert_eq!(r.len(), out.len(), "residual shape");
    }
    out.par_chunks_mut(MC * p.cout)
        .enumerate()
        .for_each(|(t, chunk)| {
            BUF.with(|buf| {
                let mut buf = buf.borrow_mut();
                let task = Task {
                    p,
                    g,
                    x,
                    q,
                    residual,
                    act,
                    p0: t * MC,
                };
                match isa {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: `Isa::Avx512` is only chosen when the CPU has AVX-512F.
                    Isa::Avx512 => unsafe { task_avx512(&task, chunk, &mut buf) },
                    _ => run_task::<Portable>(&task, chunk, &mut buf),
                }
            })
        });
    (out, ho, wo)
}

thread_local! {
    /// Each worker's buffer of packed pixel rows, reused across calls.
    static BUF: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

struct Task<'a> {
    p: &'a PackedConv,
    g: Geom,
    x: &'a [f32],
    q: Option<&'a Quantizer>,
    residual: Option<&'a [f32]>,
    act: Act,
    /// First pixel of the task.
    p0: usize,
}

/// What the micro-kernel does after its sums: nothing (a partial sum over a block of `K`), or
/// the epilogue.
struct Epi {
    last: bool,
    bias: *const f32,
    /// Residual tile (row stride = the output's) or null.
    residual: *const f32,
    act: Act,
}

/// One micro-kernel implementation: `MR` rows of `a` (row stride `lda`, `kc` values each)
/// times `kc` rows of `b` (`NV * 16` values each) into the `MR x width` tile at `c` (row
/// stride `ldc`), accumulating onto the tile unless `first`. All `MR` rows exist (a partial
/// tile goes through a buffer, see `run_task`): no data-dependent branch inside, so the
/// accumulators stay in registers.
trait Micro {
    /// # Safety
    /// Pointers valid for the described extents; the ISA available.
    #[allow(clippy::too_many_arguments)]
    unsafe fn micro<const NV: usize>(
        kc: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        width: usize,
        first: bool,
        epi: &Epi,
    );
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn task_avx512(t: &Task, chunk: &mut [f32], buf: &mut Vec<f32>) {
    run_task::<Avx512>(t, chunk, buf)
}

/// One task: pixels `p0 .. p0 + chunk.len() / cout` (all output channels).
#[inline(always)]
fn run_task<M: Micro>(t: &Task, chunk: &mut [f32], buf: &mut Vec<f32>) {
    let p = t.p;
    let cout = p.cout;
    let mc = chunk.len() / cout;
    let mc_pad = mc.div_ceil(MR) * MR;
    let kk = p.k_len();
    if buf.len() < MC * KC {
        buf.resize(MC * KC, 0.0);
    }
    for k0 in (0..kk).step_by(KC) {
        let kc = KC.min(kk - k0);
        pack_rows(t, mc, mc_pad, k0, kc, &mut buf[..mc_pad * kc]);
        let first = k0 == 0;
        let last = k0 + kc == kk;
        for (pi, pan) in p.panels.iter().enumerate() {
            let b = p.data[pan.off + k0 * pan.nv * 16..].as_ptr();
            let bias = p.bias[pi * NB..].as_ptr();
            for r0 in (0..mc).step_by(MR) {
                let rows = MR.min(mc - r0);
                let a = buf[r0 * kc..].as_ptr();
                let residual = t.residual.map(|r| &r[(t.p0 + r0) * cout + pan.n0..]);
                let out = &mut chunk[r0 * cout + pan.n0..];
                // The micro-kernel is called from plain functions only: a closure is compiled
                // without the target features of the function it is written in, and a
                // micro-kernel inlined into it would lose its vector instructions.
                let epi = |residual: *const f32| Epi {
                    last,
                    bias,
                    residual,
                    act: t.act,
                };
                if rows == MR {
                    let e = epi(residual.map_or(std::ptr::null(), |r| r.as_ptr()));
                    // SAFETY: `a` holds MR rows of kc values (the buffer is padded to mc_pad
                    // rows), `b` kc rows of nv * 16, the output and residual MR rows of
                    // `width` values at stride cout, `bias` nv * 16 values.
                    unsafe {
                        micro::<M>(
                            pan.nv,
                            kc,
                            a,
                            b,
                            out.as_mut_ptr(),
                            cout,
                            pan.width,
                            first,
                            &e,
                        )
                    };
                } else {
                    // The last pixels of the output: a full tile in a buffer, copied back.
                    let w = pan.width;
                    let mut tile = [0f32; MR * NB];
                    let mut res = [0f32; MR * NB];
                    for r in 0..rows {
                        tile[r * NB..r * NB + w].copy_from_slice(&out[r * cout..r * cout + w]);
                        if let Some(rs) = residual {
                            res[r * NB..r * NB + w].copy_from_slice(&rs[r * cout..r * cout + w]);
                        }
                    }
                    let rp = if residual.is_some() {
                        res.as_ptr()
                    } else {
                        std::ptr::null()
                    };
                    // SAFETY: as above, with MR x NB tiles.
                    unsafe {
                        micro::<M>(pan.nv, kc, a, b, tile.as_mut_ptr(), NB, w, first, &epi(rp))
                    };
                    for r in 0..rows {
                        out[r * cout..r * cout + w].copy_from_slice(&tile[r * NB..r * NB + w]);
                    }
                }
            }
        }
    }
}

/// The micro-kernel for `nv` vectors of output channels.
///
/// # Safety
/// As [`Micro::micro`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn micro<M: Micro>(
    nv: usize,
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    width: usize,
    first: bool,
    epi: &Epi,
) {
    match nv {
        1 => M::micro::<1>(kc, a, kc, b, c, ldc, width, first, epi),
        2 => M::micro::<2>(kc, a, kc, b, c, ldc, width, first, epi),
        3 => M::micro::<3>(kc, a, kc, b, c, ldc, width, first, epi),
        _ => M::micro::<4>(kc, a, kc, b, c, ldc, width, first, epi),
    }
}

/// Gather rows `0..mc` (pixels `p0..`) of `A[:, k0..k0 + kc]` into `dst` (`mc_pad` rows of
/// `kc`; rows past `mc` are zero): the im2col of the task's pixels, zero where the window
/// overhangs the input (padding), fake-quantized by `t.q` elsewhere.
#[inline(always)]
fn pack_rows(t: &Task, mc: usize, mc_pad: usize, k0: usize, kc: usize, dst: &mut [f32]) {
    let p = t.p;
    let Geom { h, w, ho, wo } = t.g;
    let (kw, s, pad, cin) = (p.kernel, p.stride, p.pad, p.cin);
    let seg = kw * cin; // one kernel row of K
    let k1 = k0 + kc;
    for r in 0..mc_pad {
        let row = &mut dst[r * kc..(r + 1) * kc];
        if r >= mc {
            row.fill(0.0);
            continue;
        }
        let pix = t.p0 + r;
        let (img, rest) = (pix / (ho * wo), pix % (ho * wo));
        let (oy, ox) = (rest / wo, rest % wo);
        // Kernel columns inside the input: ix = ox * s + kx - pad in [0, w).
        let kx_lo = pad.saturating_sub(ox * s).min(kw);
        let kx_hi = (w + pad).saturating_sub(ox * s).clamp(kx_lo, kw);
        for ky in k0 / seg..k1.div_ceil(seg) {
            let (a, b) = ((ky * seg).max(k0), ((ky + 1) * seg).min(k1));
            let out = &mut row[a - k0..b - k0];
            let iy = (oy * s + ky) as isize - pad as isize;
            if iy < 0 || iy >= h as isize {
                out.fill(0.0);
                continue;
            }
            // Inside: K positions [lo, hi) of this kernel row.
            let lo = (ky * seg + kx_lo * cin).clamp(a, b);
            let hi = (ky * seg + kx_hi * cin).clamp(lo, b);
            out[..lo - a].fill(0.0);
            out[hi - a..].fill(0.0);
            if lo < hi {
                // K position ky * seg + kx_lo * cin is input pixel (iy, ox * s + kx_lo - pad).
                let start = ((img * h + iy as usize) * w + ox * s + kx_lo - pad) * cin
                    + (lo - (ky * seg + kx_lo * cin));
                let src = &t.x[start..start + (hi - lo)];
                let dst = &mut out[lo - a..hi - a];
                match t.q {
                    Some(q) => q.quantize_into(src, dst),
                    None => dst.copy_from_slice(src),
                }
            }
        }
    }
}

/// The reference micro-kernel: scalar `f32::mul_add`, the same operations in the same order
/// as the vector kernels (bit-identical results, tested).
struct Portable;

impl Micro for Portable {
    #[inline(always)]
    unsafe fn micro<const NV: usize>(
        kc: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        width: usize,
        first: bool,
        epi: &Epi,
    ) {
        let mut acc = [[0f32; 64]; MR];
        for (r, acc_r) in acc.iter_mut().enumerate() {
            if !first {
                for (j, v) in acc_r.iter_mut().enumerate().take(width) {
                    *v = *c.add(r * ldc + j);
                }
            }
        }
        for k in 0..kc {
            let bk = std::slice::from_raw_parts(b.add(k * NV * 16), NV * 16);
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let av = *a.add(r * lda + k);
                for (v, bv) in acc_r.iter_mut().zip(bk) {
                    *v = av.mul_add(*bv, *v);
                }
            }
        }
        for (r, acc_r) in acc.iter().enumerate() {
            for (j, &v) in acc_r.iter().enumerate().take(width) {
                *c.add(r * ldc + j) = v;
            }
        }
        if epi.last {
            finish_tile(c, ldc, width, epi);
        }
    }
}

#[cfg(target_arch = "x86_64")]
struct Avx512;

#[cfg(target_arch = "x86_64")]
impl Micro for Avx512 {
    #[inline(always)]
    unsafe fn micro<const NV: usize>(
        kc: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        width: usize,
        first: bool,
        epi: &Epi,
    ) {
        use std::arch::x86_64::*;
        // Index loops with constant bounds only: the accumulators must stay in registers.
        let tail = width - (NV - 1) * 16;
        let last_mask: __mmask16 = if tail >= 16 {
            0xffff
        } else {
            (1u16 << tail) - 1
        };
        let mut masks = [0xffffu16; NV];
        masks[NV - 1] = last_mask;
        let mut acc = [[_mm512_setzero_ps(); NV]; MR];
        if !first {
            #[allow(clippy::needless_range_loop)]
            for r in 0..MR {
                for v in 0..NV {
                    acc[r][v] = _mm512_maskz_loadu_ps(masks[v], c.add(r * ldc + v * 16));
                }
            }
        }
        let rows_a: [*const f32; MR] = std::array::from_fn(|r| a.add(r * lda));
        for k in 0..kc {
            let bp = b.add(k * NV * 16);
            let mut bv = [_mm512_setzero_ps(); NV];
            #[allow(clippy::needless_range_loop)]
            for v in 0..NV {
                bv[v] = _mm512_loadu_ps(bp.add(v * 16));
            }
            #[allow(clippy::needless_range_loop)]
            for r in 0..MR {
                let av = _mm512_set1_ps(*rows_a[r].add(k));
                for v in 0..NV {
                    acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
                }
            }
        }
        // Straight-line stores (the epilogue's branches stay out of this loop nest, which
        // LLVM then unrolls fully and keeps in registers), then the epilogue on the tile.
        #[allow(clippy::needless_range_loop)]
        for r in 0..MR {
            for v in 0..NV {
                _mm512_mask_storeu_ps(c.add(r * ldc + v * 16), masks[v], acc[r][v]);
            }
        }
        if epi.last {
            finish_tile(c, ldc, width, epi);
        }
    }
}

/// The epilogue on a stored `MR x width` tile of sums: `+ bias`, `+ residual`, activation
/// (shared by the micro-kernels, so they round alike).
///
/// # Safety
/// `c` (and `epi.residual` unless null) valid for `MR` rows of `width` at stride `ldc`.
#[inline(always)]
unsafe fn finish_tile(c: *mut f32, ldc: usize, width: usize, epi: &Epi) {
    let bias = std::slice::from_raw_parts(epi.bias, width);
    for r in 0..MR {
        let row = std::slice::from_raw_parts_mut(c.add(r * ldc), width);
        for (y, b) in row.iter_mut().zip(bias) {
            *y += b;
        }
        if !epi.residual.is_null() {
            let res = std::slice::from_raw_parts(epi.residual.add(r * ldc), width);
            for (y, x) in row.iter_mut().zip(res) {
                *y += x;
            }
        }
        match epi.act {
            Act::None => {}
            Act::Relu => row.iter_mut().for_each(|y| *y = Act::Relu.apply(*y)),
            Act::Relu6 => row.iter_mut().for_each(|y| *y = Act::Relu6.apply(*y)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{nhwc as nchw_to_nhwc, randn};
    use candle_core::{Device, Tensor};
    use mpq_data::Rng;
    use mpq_quant::Grid;

    /// candle's conv2d + bias (+ residual, act) on NCHW, as NHWC values.
    #[allow(clippy::too_many_arguments)]
    fn reference(
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        s: usize,
        pad: usize,
        res: Option<&Tensor>,
        act: Act,
    ) -> Tensor {
        let mut y = x
            .conv2d(w, pad, s, 1, 1)
            .unwrap()
            .broadcast_add(&b.reshape((1, (), 1, 1)).unwrap())
            .unwrap();
        if let Some(r) = res {
            y = (y + r).unwrap();
        }
        match act {
            Act::None => y,
            Act::Relu => y.relu().unwrap(),
            Act::Relu6 => y.clamp(0f32, 6f32).unwrap(),
        }
    }

    /// Odd shapes against candle's conv2d: stride 2, padding, 1x1 with stride, channel counts
    /// not multiples of 16 (and above 64: several panels), batch 1, `K` over one block,
    /// residual and activations; values within f32 rounding of the sums, and the AVX-512 and
    /// portable kernels bit-identical.
    #[test]
    fn matches_candle_conv2d_on_odd_shapes() {
        let mut r = Rng::new(3);
        // (batch, cin, cout, side, kernel, stride, pad, residual, act)
        let cases = [
            (1, 3, 16, 9, 3, 1, 1, false, Act::None),
            (2, 5, 7, 11, 3, 2, 1, false, Act::Relu),
            (1, 17, 33, 8, 1, 2, 0, false, Act::None),
            (3, 24, 70, 7, 1, 1, 0, true, Act::Relu6),
            (2, 3, 20, 15, 7, 2, 3, true, Act::Relu),
            (1, 40, 129, 6, 3, 1, 1, true, Act::Relu),
            (2, 300, 19, 5, 3, 1, 1, false, Act::None),
            (1, 8, 9, 6, 3, 1, 0, false, Act::Relu),
            (1, 6, 5, 4, 5, 2, 2, false, Act::None),
        ];
        for (n, cin, cout, side, k, s, pad, with_res, act) in cases {
            let x = randn(&[n, cin, side, side], &mut r);
            let w = randn(&[cout, cin, k, k], &mut r);
            let b = randn(&[cout], &mut r);
            let ho = (side + 2 * pad - k) / s + 1;
            let res = with_res.then(|| randn(&[n, cout, ho, ho], &mut r));
            let want = nchw_to_nhwc(&reference(&x, &w, &b, s, pad, res.as_ref(), act));
            let p = PackedConv::new(
                &w.flatten_all().unwrap().to_vec1().unwrap(),
                &b.to_vec1().unwrap(),
                cout,
                cin,
                k,
                s,
                pad,
            );
            let xs = nchw_to_nhwc(&x);
            let rs = res.as_ref().map(nchw_to_nhwc);
            let mut outs = vec![];
            for isa in Isa::available() {
                let (got, h2, w2) = conv(&p, &xs, n, side, side, None, rs.as_deref(), act, isa);
                assert_eq!((h2, w2), (ho, ho));
                outs.push(got);
            }
            let got = &outs[0];
            // |error| <= K * eps * sum |terms|: bound it by K * eps * (|max| + 1) generously.
            let kk = (cin * k * k) as f32;
            for (i, (g, e)) in got.iter().zip(&want).enumerate() {
                let tol = kk * f32::EPSILON * 4.0 * (1.0 + e.abs()) * 2.0;
                assert!(
                    (g - e).abs() <= tol,
                    "case {:?} index {i}: {g} vs {e}",
                    (n, cin, cout, side, k, s, pad)
                );
            }
            for o in &outs[1..] {
                assert_eq!(
                    o.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    "ISAs agree bit for bit"
                );
            }
        }
    }

    /// The input quantization applied while packing is the quantizer's: the same as
    /// quantizing the input first. And a pixel's output does not depend on the batch it is in.
    #[test]
    fn fused_input_quantization_and_batch_independence() {
        let mut r = Rng::new(4);
        let (n, cin, cout, side) = (5, 19, 40, 9);
        let x = randn(&[n, cin, side, side], &mut r);
        let w = randn(&[cout, cin, 3, 3], &mut r);
        let b = randn(&[cout], &mut r);
        let p = PackedConv::new(
            &w.flatten_all().unwrap().to_vec1().unwrap(),
            &b.to_vec1().unwrap(),
            cout,
            cin,
            3,
            2,
            1,
        );
        let g = Grid {
            lo: -1.3,
            e: -4,
            bits: 5,
        };
        let q = Quantizer::new(&g);
        let xs = nchw_to_nhwc(&x);
        let mut xq = xs.clone();
        mpq_quant::quantize_slice(&mut xq, &g);
        for isa in Isa::available() {
            let (fused, _, _) = conv(&p, &xs, n, side, side, Some(&q), None, Act::Relu, isa);
            let (first, _, _) = conv(&p, &xq, n, side, side, None, None, Act::Relu, isa);
            assert_eq!(fused, first);
            // The last image alone gives the same values as inside the batch.
            let per = cin * side * side;
            let (one, ho, wo) = conv(
                &p,
                &xs[(n - 1) * per..],
                1,
                side,
                side,
                Some(&q),
                None,
                Act::Relu,
                isa,
            );
            assert_eq!(&fused[(n - 1) * ho * wo * cout..], &one[..]);
        }
        let _ = Device::Cpu;
    }
}
