//! The fast CPU forward path: the graph's layers and operations on NHWC activations, with the
//! work around each convolution fused into it.
//!
//! Why: candle 0.11's CPU convolution copies im2col columns element by element through generic
//! code, and the tensor ops around a layer (bias, activation, fake quantization, residual add)
//! each allocate and pass over memory again. Here a layer is one pass: its input is
//! fake-quantized while the convolution gathers it ([`conv`], [`dw`]), and bias, residual add
//! and activation are applied to the sums before they are stored. Activations stay NHWC
//! between layers (channels contiguous: the gather copies runs of channels and the vectors run
//! over output channels); the images are converted once on entry.
//!
//! Weights are packed once per layer and bit-width ([`Packed`]). The CPU's vector extension is
//! detected at run time ([`Isa`]); the AVX-512 and portable kernels compute the same operations
//! in the same order, so results do not depend on the machine's vector width, the thread count
//! or the batch an image is in. The candle path (`crate::qmodel`'s tensor ops) stays the
//! device-generic one, used on CUDA, for training and calibration, and as the tests'
//! reference.
pub mod conv;
pub mod dw;
pub mod ops;

use crate::layer::{Activation, LayerSpec};
use candle_core::{Result, Tensor};
use mpq_quant::Quantizer;
use mpq_vocab::LayerKind;

/// The activation fused after a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    None,
    Relu,
    Relu6,
}

impl From<Option<Activation>> for Act {
    fn from(a: Option<Activation>) -> Act {
        match a {
            None => Act::None,
            Some(Activation::Relu) => Act::Relu,
            Some(Activation::Relu6) => Act::Relu6,
        }
    }
}

impl Act {
    /// On one value: ReLU is `y` if `y > 0`, else 0 (as `_mm512_max_ps(y, 0)`, also for -0
    /// and NaN); ReLU6 is then `t` if `t < 6`, else 6.
    #[inline(always)]
    pub fn apply(self, y: f32) -> f32 {
        let relu = if y > 0.0 { y } else { 0.0 };
        match self {
            Act::None => y,
            Act::Relu => relu,
            Act::Relu6 => {
                if relu < 6.0 {
                    relu
                } else {
                    6.0
                }
            }
        }
    }
}

/// The vector extension the kernels use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// Scalar `f32::mul_add`: any CPU (the reference the others are tested against).
    Portable,
    /// 16-wide AVX-512F.
    Avx512,
}

impl Isa {
    /// The fastest this CPU supports.
    pub fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Isa::Avx512;
        }
        Isa::Portable
    }

    /// Every extension this CPU can run, fastest first (for tests).
    pub fn available() -> Vec<Isa> {
        let mut v = vec![Isa::detect()];
        if v[0] != Isa::Portable {
            v.push(Isa::Portable);
        }
        v
    }
}

/// One layer's weights packed for the kernels.
#[derive(Clone, Debug)]
pub enum Packed {
    /// Dense convolution or fully connected layer (a 1x1 convolution on 1x1 images).
    Dense(conv::PackedConv),
    Depthwise(dw::PackedDw),
}

impl Packed {
    /// Pack layer `l`'s weight `w` (the reference library's shape) and bias `b`.
    pub fn new(l: &LayerSpec, w: &Tensor, b: &Tensor) -> Result<Packed> {
        let wv = w.flatten_all()?.to_vec1::<f32>()?;
        let bv = b.flatten_all()?.to_vec1::<f32>()?;
        Ok(match l.kind {
            LayerKind::Conv => Packed::Dense(conv::PackedConv::new(
                &wv, &bv, l.out_ch, l.in_ch, l.kernel, l.stride, l.padding,
            )),
            LayerKind::Linear => {
                Packed::Dense(conv::PackedConv::new(&wv, &bv, l.out_ch, l.in_ch, 1, 1, 0))
            }
            LayerKind::Depthwise => Packed::Depthwise(dw::PackedDw::new(
                &wv, &bv, l.out_ch, l.kernel, l.stride, l.padding,
            )),
        })
    }

    /// The layer on `x` (NHWC `[B, H, W, C]`, or `[B, C]` for a fully connected layer), its
    /// input fake-quantized by `q` where given, then `+ residual` (the output's shape) and
    /// `act`. Output NHWC (`[B, classes]` for a fully connected layer).
    pub fn forward(
        &self,
        x: &Tensor,
        q: Option<&Quantizer>,
        residual: Option<&Tensor>,
        act: Act,
        isa: Isa,
    ) -> Result<Tensor> {
        let (n, h, w) = match x.rank() {
            2 => (x.dim(0)?, 1, 1),
            _ => {
                let (n, h, w, _) = x.dims4()?;
                (n, h, w)
            }
        };
        let res_guard = residual.map(|r| r.storage_and_layout());
        let res = match (&res_guard, residual) {
            (Some((s, l)), Some(_)) => Some(ops::f32_slice(s, l)?),
            _ => None,
        };
        let (s, l) = x.storage_and_layout();
        let xs = ops::f32_slice(&s, l)?;
        let dev = x.device();
        match self {
            Packed::Dense(p) => {
                let (y, ho, wo) = conv::conv(p, xs, n, h, w, q, res, act, isa);
                if x.rank() == 2 {
                    Tensor::from_vec(y, (n, p.cout), dev)
                } else {
                    Tensor::from_vec(y, (n, ho, wo, p.cout), dev)
                }
            }
            Packed::Depthwise(p) => {
                if res.is_some() {
                    candle_core::bail!("depthwise kernel: no residual input");
                }
                let (y, ho, wo) = dw::depthwise(p, xs, n, h, w, q, act, isa);
                Tensor::from_vec(y, (n, ho, wo, p.c), dev)
            }
        }
    }
}
