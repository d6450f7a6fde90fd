//! Dense convolution as explicit im2col (k*k narrowed views of the padded input stacked along a
//! new axis) followed by one batched matrix product, with candle tensor ops only.
//!
//! Why: candle's CPU backward of `conv2d` goes through a naive `conv_transpose2d` loop and a
//! convolution whose kernel is the whole gradient image, which made training the embedded
//! models about ten times slower than this. Here every backward step is a copy or a matrix
//! product. Used for training; inference keeps candle's `conv2d` (the same sums).
use candle_core::{Result, Tensor};

/// Rows and columns 0, s, 2s, ... (`n` of them) of dims 2 and 3 of `t`.
pub fn subsample(t: &Tensor, s: usize, nh: usize, nw: usize) -> Result<Tensor> {
    if s == 1 {
        return t.narrow(2, 0, nh)?.narrow(3, 0, nw);
    }
    let (b, c, h, w) = t.dims4()?;
    let fit = |t: Tensor, dim: usize, have: usize, want: usize| -> Result<Tensor> {
        if have >= want {
            t.narrow(dim, 0, want)
        } else {
            t.pad_with_zeros(dim, 0, want - have)
        }
    };
    let t = fit(t.clone(), 2, h, nh * s)?;
    let t = fit(t, 3, w, nw * s)?;
    t.reshape((b, c, nh, s, nw, s))?
        .narrow(3, 0, 1)?
        .narrow(5, 0, 1)?
        .reshape((b, c, nh, nw))
}

/// The patches of a convolution with a `k x k` kernel over `x` `[B, C, H, W]`:
/// `[B, C * k * k, Ho * Wo]`, channel-major like a weight `[O, C, k, k]` flattened.
pub fn im2col(x: &Tensor, k: usize, stride: usize, pad: usize) -> Result<Tensor> {
    let (b, c, h, wd) = x.dims4()?;
    let ho = (h + 2 * pad - k) / stride + 1;
    let wo = (wd + 2 * pad - k) / stride + 1;
    if k == 1 && pad == 0 {
        return subsample(x, stride, ho, wo)?.reshape((b, c, ho * wo));
    }
    let xp = x.pad_with_zeros(2, pad, pad)?.pad_with_zeros(3, pad, pad)?;
    let mut taps = Vec::with_capacity(k * k);
    for ky in 0..k {
        for kx in 0..k {
            let v = xp
                .narrow(2, ky, h + 2 * pad - ky)?
                .narrow(3, kx, wd + 2 * pad - kx)?;
            taps.push(subsample(&v, stride, ho, wo)?);
        }
    }
    // [B, C, k*k, Ho, Wo] -> [B, C*k*k, Ho*Wo], channel-major like the weight.
    Tensor::stack(&taps, 2)?.reshape((b, c * k * k, ho * wo))
}

/// `conv2d(x, w, padding = pad, stride)` for `w` `[O, C, k, k]`, differentiable.
pub fn conv2d_unfold(x: &Tensor, w: &Tensor, stride: usize, pad: usize) -> Result<Tensor> {
    let (b, _, h, wd) = x.dims4()?;
    let (o, c, k, _) = w.dims4()?;
    let ho = (h + 2 * pad - k) / stride + 1;
    let wo = (wd + 2 * pad - k) / stride + 1;
    let wm = w.reshape((o, c * k * k))?;
    wm.broadcast_matmul(&im2col(x, k, stride, pad)?)?
        .reshape((b, o, ho, wo))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{max_diff, randn as rand};
    use candle_core::Var;
    use mpq_data::Rng;

    #[test]
    fn equals_candle_conv2d_with_gradients() {
        let mut r = Rng::new(5);
        for &(h, k, s, p) in &[
            (8, 3, 1, 1),
            (8, 3, 2, 1),
            (9, 3, 2, 1),
            (8, 1, 2, 0),
            (7, 1, 1, 0),
        ] {
            let x = Var::from_tensor(&rand(&[2, 3, h, h], &mut r)).unwrap();
            let w = Var::from_tensor(&rand(&[4, 3, k, k], &mut r)).unwrap();
            let a = conv2d_unfold(x.as_tensor(), w.as_tensor(), s, p).unwrap();
            let b = x.as_tensor().conv2d(w.as_tensor(), p, s, 1, 1).unwrap();
            assert!(max_diff(&a, &b) < 1e-4, "forward h{h} k{k} s{s}");
            let ga = a.sqr().unwrap().sum_all().unwrap().backward().unwrap();
            let gb = b.sqr().unwrap().sum_all().unwrap().backward().unwrap();
            for v in [&x, &w] {
                assert!(
                    max_diff(
                        ga.get(v.as_tensor()).unwrap(),
                        gb.get(v.as_tensor()).unwrap()
                    ) < 1e-3
                );
            }
        }
    }
}
