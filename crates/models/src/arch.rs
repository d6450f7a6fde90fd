//! Architectures: the ordered quantizable layers (with torchvision-style tensor names) and the
//! forward graph that connects them. The graph is written once and run by different
//! [`LayerRunner`]s: training (autograd, batch-norm in training mode), FP32 evaluation and the
//! quantized evaluation. Layer `i` is the i-th quantizable layer the forward executes, which is
//! the index every search uses (spec section 1): a residual block's downsample comes after the
//! block's second convolution, as in torchvision's `BasicBlock.forward`.
use candle_core::{Result, Tensor, D};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerKind {
    /// Dense 2-D convolution (groups = 1).
    Conv,
    /// Depthwise 2-D convolution (groups = channels, one filter per channel).
    Depthwise,
    /// Fully connected.
    Linear,
}

impl LayerKind {
    pub fn name(&self) -> &'static str {
        match self {
            LayerKind::Conv => "conv",
            LayerKind::Depthwise => "depthwise",
            LayerKind::Linear => "linear",
        }
    }
}

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

/// A block of the graph; fields are layer indices.
#[derive(Clone, Debug, PartialEq)]
pub enum Block {
    /// torchvision `BasicBlock`: relu(bn2(conv2(relu(bn1(conv1 x)))) + downsample(x)).
    Basic {
        conv1: usize,
        conv2: usize,
        downsample: Option<usize>,
    },
    /// torchvision `InvertedResidual`: [expand 1x1, act], depthwise 3x3, act, project 1x1,
    /// plus the input when `residual`.
    InvertedResidual {
        expand: Option<usize>,
        dw: usize,
        project: usize,
        residual: bool,
    },
}

impl Block {
    /// The block's quantizable layers in execution order (ascending indices).
    pub fn layers(&self) -> Vec<usize> {
        match *self {
            Block::Basic {
                conv1,
                conv2,
                downsample,
            } => [Some(conv1), Some(conv2), downsample]
                .into_iter()
                .flatten()
                .collect(),
            Block::InvertedResidual {
                expand,
                dw,
                project,
                ..
            } => [expand, Some(dw), Some(project)]
                .into_iter()
                .flatten()
                .collect(),
        }
    }
}

/// One piece of the forward graph between two cut points where the whole state of the
/// computation is a single tensor. The forward pass is the stages in order; a computation can
/// start at any stage from that stage's input (prefix reuse, see `crate::prefix`). Every stage's
/// layers are a contiguous range of layer indices, in execution order.
#[derive(Clone, Debug, PartialEq)]
pub enum Stage {
    /// Layer `i` followed by the activation (stem and head convolutions).
    ConvAct(usize),
    Block(Block),
    /// Global average pooling over the spatial dimensions, then the classifier layer `i`
    /// (its output is the logits; no activation).
    PoolClassifier(usize),
}

impl Stage {
    /// The stage's quantizable layers in execution order.
    pub fn layers(&self) -> Vec<usize> {
        match self {
            Stage::ConvAct(i) | Stage::PoolClassifier(i) => vec![*i],
            Stage::Block(b) => b.layers(),
        }
    }
}

/// A network: the layers in forward order and how they connect.
#[derive(Clone, Debug, PartialEq)]
pub struct Arch {
    pub name: String,
    pub layers: Vec<LayerSpec>,
    /// The forward graph: stem, blocks, head and classifier, in order.
    pub stages: Vec<Stage>,
    pub act: Activation,
    pub input: [usize; 3],
    pub num_classes: usize,
}

/// Runs one quantizable layer (its convolution or product plus folded or training batch-norm,
/// no activation). The graph calls it for layer `i` with that layer's input.
pub trait LayerRunner {
    fn layer(&mut self, i: usize, x: &Tensor) -> Result<Tensor>;
}

impl Arch {
    pub const EMBEDDED: [&'static str; 2] = ["resnet-tiny", "mobilenet-tiny"];

    /// The architecture called `name`, if this build knows it.
    pub fn by_name(name: &str) -> Option<Arch> {
        match name {
            "resnet-tiny" => Some(resnet_tiny()),
            "mobilenet-tiny" => Some(mobilenet_tiny()),
            _ => None,
        }
    }

    pub fn n_weights(&self) -> Vec<u64> {
        self.layers.iter().map(|l| l.n_weights()).collect()
    }

    /// `stage_of_layer()[i]`: the stage that runs layer `i`.
    pub fn stage_of_layer(&self) -> Vec<usize> {
        let mut of = vec![usize::MAX; self.layers.len()];
        for (s, st) in self.stages.iter().enumerate() {
            for i in st.layers() {
                of[i] = s;
            }
        }
        debug_assert!(
            of.iter().all(|&s| s != usize::MAX),
            "every layer in a stage"
        );
        of
    }

    /// Logits for a batch `[B, C, H, W]`: every stage in order.
    pub fn forward(&self, x: &Tensor, r: &mut dyn LayerRunner) -> Result<Tensor> {
        self.forward_from(0, x, r)
    }

    /// Logits from the input `x` of stage `first` (the output of stage `first - 1`).
    pub fn forward_from(
        &self,
        first: usize,
        x: &Tensor,
        r: &mut dyn LayerRunner,
    ) -> Result<Tensor> {
        let mut x = x.clone();
        for s in first..self.stages.len() {
            x = self.run_stage(s, &x, r)?;
        }
        Ok(x)
    }

    /// Output of stage `s` for its input `x`.
    pub fn run_stage(&self, s: usize, x: &Tensor, r: &mut dyn LayerRunner) -> Result<Tensor> {
        let act = |t: &Tensor| self.act.apply(t);
        match self.stages[s] {
            Stage::ConvAct(i) => act(&r.layer(i, x)?),
            Stage::PoolClassifier(i) => {
                let pooled = x.mean(D::Minus1)?.mean(D::Minus1)?;
                r.layer(i, &pooled)
            }
            Stage::Block(Block::Basic {
                conv1,
                conv2,
                downsample,
            }) => {
                let y = act(&r.layer(conv1, x)?)?;
                let y = r.layer(conv2, &y)?;
                let identity = match downsample {
                    Some(d) => r.layer(d, x)?,
                    None => x.clone(),
                };
                act(&(y + identity)?)
            }
            Stage::Block(Block::InvertedResidual {
                expand,
                dw,
                project,
                residual,
            }) => {
                let mut y = x.clone();
                if let Some(e) = expand {
                    y = act(&r.layer(e, &y)?)?;
                }
                y = act(&r.layer(dw, &y)?)?;
                y = r.layer(project, &y)?;
                if residual {
                    y + x
                } else {
                    Ok(y)
                }
            }
        }
    }
}

/// Builds layer lists in forward order.
struct Builder {
    layers: Vec<LayerSpec>,
}

impl Builder {
    #[allow(clippy::too_many_arguments)]
    fn conv(
        &mut self,
        name: &str,
        bn: &str,
        kind: LayerKind,
        i: usize,
        o: usize,
        k: usize,
        s: usize,
    ) -> usize {
        self.layers.push(LayerSpec {
            name: name.to_string(),
            bn: Some(bn.to_string()),
            kind,
            in_ch: i,
            out_ch: o,
            kernel: k,
            stride: s,
            padding: k / 2,
            bias: false,
        });
        self.layers.len() - 1
    }
    fn linear(&mut self, name: &str, i: usize, o: usize) -> usize {
        self.layers.push(LayerSpec {
            name: name.to_string(),
            bn: None,
            kind: LayerKind::Linear,
            in_ch: i,
            out_ch: o,
            kernel: 1,
            stride: 1,
            padding: 0,
            bias: true,
        });
        self.layers.len() - 1
    }
}

/// The embedded residual network: a small ResNet for 32x32 inputs (3x3 stride-2 stem without
/// max-pool, three stages of two `BasicBlock`s, widths 16-32-64 at 16x16, 8x8, 4x4) in
/// torchvision's tensor names. N = 16.
pub fn resnet_tiny() -> Arch {
    let mut b = Builder { layers: vec![] };
    let stem = b.conv("conv1", "bn1", LayerKind::Conv, 3, 16, 3, 2);
    let mut blocks = vec![];
    let mut inp = 16;
    for (stage, &(width, stride)) in [(16, 1), (32, 2), (64, 2)].iter().enumerate() {
        for blk in 0..2 {
            let p = format!("layer{}.{blk}", stage + 1);
            let s = if blk == 0 { stride } else { 1 };
            let conv1 = b.conv(
                &format!("{p}.conv1"),
                &format!("{p}.bn1"),
                LayerKind::Conv,
                inp,
                width,
                3,
                s,
            );
            let conv2 = b.conv(
                &format!("{p}.conv2"),
                &format!("{p}.bn2"),
                LayerKind::Conv,
                width,
                width,
                3,
                1,
            );
            let downsample = (s != 1 || inp != width).then(|| {
                b.conv(
                    &format!("{p}.downsample.0"),
                    &format!("{p}.downsample.1"),
                    LayerKind::Conv,
                    inp,
                    width,
                    1,
                    s,
                )
            });
            blocks.push(Block::Basic {
                conv1,
                conv2,
                downsample,
            });
            inp = width;
        }
    }
    let fc = b.linear("fc", inp, 10);
    Arch {
        name: "resnet-tiny".into(),
        layers: b.layers,
        stages: [Stage::ConvAct(stem)]
            .into_iter()
            .chain(blocks.into_iter().map(Stage::Block))
            .chain([Stage::PoolClassifier(fc)])
            .collect(),
        act: Activation::Relu,
        input: [3, 32, 32],
        num_classes: 10,
    }
}

/// The embedded inverted-residual network: MobileNetV2's structure scaled to 32x32 inputs
/// (3x3 stride-2 stem, settings (t, c, n, s) = (1,16,1,1), (4,24,2,2), (4,32,2,2), (4,48,1,1),
/// a 1x1 head to 128 channels), in torchvision's tensor names. N = 20.
pub fn mobilenet_tiny() -> Arch {
    let mut b = Builder { layers: vec![] };
    let stem = b.conv("features.0.0", "features.0.1", LayerKind::Conv, 3, 16, 3, 2);
    let mut blocks = vec![];
    let mut inp = 16;
    let mut f = 1;
    for &(t, c, n, s) in &[(1, 16, 1, 1), (4, 24, 2, 2), (4, 32, 2, 2), (4, 48, 1, 1)] {
        for k in 0..n {
            let stride = if k == 0 { s } else { 1 };
            let hidden = inp * t;
            let p = format!("features.{f}.conv");
            let (expand, dw, project) = if t == 1 {
                let dw = b.conv(
                    &format!("{p}.0.0"),
                    &format!("{p}.0.1"),
                    LayerKind::Depthwise,
                    hidden,
                    hidden,
                    3,
                    stride,
                );
                let pr = b.conv(
                    &format!("{p}.1"),
                    &format!("{p}.2"),
                    LayerKind::Conv,
                    hidden,
                    c,
                    1,
                    1,
                );
                (None, dw, pr)
            } else {
                let ex = b.conv(
                    &format!("{p}.0.0"),
                    &format!("{p}.0.1"),
                    LayerKind::Conv,
                    inp,
                    hidden,
                    1,
                    1,
                );
                let dw = b.conv(
                    &format!("{p}.1.0"),
                    &format!("{p}.1.1"),
                    LayerKind::Depthwise,
                    hidden,
                    hidden,
                    3,
                    stride,
                );
                let pr = b.conv(
                    &format!("{p}.2"),
                    &format!("{p}.3"),
                    LayerKind::Conv,
                    hidden,
                    c,
                    1,
                    1,
                );
                (Some(ex), dw, pr)
            };
            blocks.push(Block::InvertedResidual {
                expand,
                dw,
                project,
                residual: stride == 1 && inp == c,
            });
            inp = c;
            f += 1;
        }
    }
    let head = b.conv(
        &format!("features.{f}.0"),
        &format!("features.{f}.1"),
        LayerKind::Conv,
        inp,
        128,
        1,
        1,
    );
    let fc = b.linear("classifier.1", 128, 10);
    Arch {
        name: "mobilenet-tiny".into(),
        layers: b.layers,
        stages: [Stage::ConvAct(stem)]
            .into_iter()
            .chain(blocks.into_iter().map(Stage::Block))
            .chain([Stage::ConvAct(head), Stage::PoolClassifier(fc)])
            .collect(),
        act: Activation::Relu6,
        input: [3, 32, 32],
        num_classes: 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_counts_and_order() {
        let r = resnet_tiny();
        assert_eq!(r.layers.len(), 16);
        let names: Vec<&str> = r.layers.iter().map(|l| l.name.as_str()).collect();
        let i2 = names.iter().position(|n| *n == "layer2.0.conv2").unwrap();
        assert_eq!(
            names[i2 + 1],
            "layer2.0.downsample.0",
            "downsample after conv2"
        );
        assert_eq!(names[0], "conv1");
        assert_eq!(names[15], "fc");
        let m = mobilenet_tiny();
        assert_eq!(m.layers.len(), 20);
        assert_eq!(
            m.layers
                .iter()
                .filter(|l| l.kind == LayerKind::Depthwise)
                .count(),
            6
        );
        assert_eq!(m.layers[19].name, "classifier.1");
    }

    /// Prefix reuse starts a computation at a stage: the stages must run every layer exactly
    /// once, in index (execution) order.
    #[test]
    fn stages_run_every_layer_once_in_order() {
        for name in Arch::EMBEDDED {
            let a = Arch::by_name(name).unwrap();
            let order: Vec<usize> = a.stages.iter().flat_map(|s| s.layers()).collect();
            assert_eq!(order, (0..a.layers.len()).collect::<Vec<_>>(), "{name}");
            let of = a.stage_of_layer();
            assert!(of.windows(2).all(|w| w[0] <= w[1]), "{name}");
        }
    }
}
