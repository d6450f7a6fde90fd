//! The building blocks of a graph that the architectures and the CPU kernels share: a
//! quantizable layer's shape, the activations and max pooling. Their own module, so that
//! `arch` (which runs the kernels) and `kernels` (which run these layers) do not import each
//! other.
use candle_core::{Result, Tensor};

use mpq_vocab::LayerKind;

/// One quantizable layer: its weight is `<name>.weight`, its optional bias `<name>.bias`, and
/// the batch-norm that follows it (folded before quantization) is `<bn>.{weight, bias,
/// running_mean, running_var}`.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerSpec {
    pub name: String,
    pub bn: Option<String>,
    pub kind: LayerKind,
    pub in_ch: usize,
    pub out_ch: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub bias: bool,
}

impl LayerSpec {
    pub fn weight_shape(&self) -> Vec<usize> {
        match self.kind {
            LayerKind::Conv => vec![self.out_ch, self.in_ch, self.kernel, self.kernel],
            LayerKind::Depthwise => vec![self.out_ch, 1, self.kernel, self.kernel],
            LayerKind::Linear => vec![self.out_ch, self.in_ch],
        }
    }
    /// `n_i`: weight elements, bias excluded.
    pub fn n_weights(&self) -> u64 {
        self.weight_shape().iter().product::<usize>() as u64
    }
    /// Fan-in of one output unit (for initialisation).
    pub fn fan_in(&self) -> usize {
        self.weight_shape()[1..].iter().product()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Relu,
    Relu6,
}

impl Activation {
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Activation::Relu => x.relu(),
            Activation::Relu6 => x.clamp(0f32, 6f32),
        }
    }
}

/// Max pooling with PyTorch's `nn.MaxPool2d(kernel, stride, padding)` semantics: the padding
/// is -infinity (never a maximum), the output side is `floor((n + 2p - k) / s) + 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

impl MaxPool {
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let p = self.padding;
        let x = if p == 0 {
            x.clone()
        } else {
            let (b, c, h, w) = x.dims4()?;
            let ninf = |shape: (usize, usize, usize, usize)| {
                Tensor::full(f32::NEG_INFINITY, shape, x.device())?.to_dtype(x.dtype())
            };
            let cols = ninf((b, c, h, p))?;
            let x = Tensor::cat(&[&cols, x, &cols], 3)?;
            let rows = ninf((b, c, p, w + 2 * p))?;
            Tensor::cat(&[&rows, &x, &rows], 2)?
        };
        x.max_pool2d_with_stride(self.kernel, self.stride)
    }
}
