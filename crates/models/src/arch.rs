//! Architectures: the ordered quantizable layers (with the reference library's tensor names:
//! torchvision's for the ResNets and MobileNetV2, timm's `legacy_xception` for Xception) and the
//! forward graph that connects them. The graph is written once and run by different
//! [`LayerRunner`]s: training (autograd, batch-norm in training mode), FP32 evaluation and the
//! quantized evaluation. Layer `i` is the i-th quantizable layer the forward executes, which is
//! the index every search uses (spec section 1): a residual block's downsample comes after the
//! block's second convolution, as in torchvision's `BasicBlock.forward`.
use candle_core::{Result, Tensor, D};
use mpq_data::synth::{NUM_CLASSES, SIDE};

/// An architecture's name (the vocabulary's type): [`Arch::new`] builds each one.
pub use mpq_vocab::ArchName;
/// The kind of a quantizable layer: dense convolution, depthwise convolution, fully connected
/// (the vocabulary's type).
pub use mpq_vocab::LayerKind;

pub use crate::layer::{Activation, LayerSpec, MaxPool};

/// A block of the graph; fields are layer indices.
#[derive(Clone, Debug, PartialEq)]
pub enum Block {
    /// torchvision `BasicBlock`: relu(bn2(conv2(relu(bn1(conv1 x)))) + downsample(x)).
    Basic {
        conv1: usize,
        conv2: usize,
        downsample: Option<usize>,
    },
    /// torchvision `Bottleneck` (stride on the 3x3, "ResNet v1.5"):
    /// relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1 x))))))) + downsample(x)).
    Bottleneck {
        conv1: usize,
        conv2: usize,
        conv3: usize,
        downsample: Option<usize>,
    },
    /// timm `legacy_xception` `Block`: `units` separable convolutions (depthwise layer, then
    /// pointwise layer with the batch-norm), each preceded by a ReLU except the first when
    /// `relu_first` is false; then the optional max pool; plus the skip branch, which sees the
    /// block's input before any ReLU (timm's first ReLU is not in-place): `skip` (a strided 1x1
    /// convolution with batch-norm) or the input itself. No activation after the sum.
    Xception {
        units: Vec<(usize, usize)>,
        relu_first: bool,
        pool: Option<MaxPool>,
        skip: Option<usize>,
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
            Block::Bottleneck {
                conv1,
                conv2,
                conv3,
                downsample,
            } => [Some(conv1), Some(conv2), Some(conv3), downsample]
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
            Block::Xception {
                ref units, skip, ..
            } => units
                .iter()
                .flat_map(|&(dw, pw)| [dw, pw])
                .chain(skip)
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
    /// Layer `i`, the activation, then max pooling (the ResNet stem).
    ConvActPool(usize, MaxPool),
    /// A separable convolution: depthwise layer `dw` (no batch-norm, no activation), pointwise
    /// layer `pw` (with its batch-norm), then the activation (Xception's `conv3`, `conv4`).
    SepConvAct {
        dw: usize,
        pw: usize,
    },
    Block(Block),
    /// Global average pooling over the spatial dimensions, then the classifier layer `i`
    /// (its output is the logits; no activation).
    PoolClassifier(usize),
}

impl Stage {
    /// The stage's quantizable layers in execution order.
    pub fn layers(&self) -> Vec<usize> {
        match self {
            Stage::ConvAct(i) | Stage::ConvActPool(i, _) | Stage::PoolClassifier(i) => vec![*i],
            Stage::SepConvAct { dw, pw } => vec![*dw, *pw],
            Stage::Block(b) => b.layers(),
        }
    }
}

/// A network: the layers in forward order and how they connect.
#[derive(Clone, Debug, PartialEq)]
pub struct Arch {
    pub name: ArchName,
    pub layers: Vec<LayerSpec>,
    /// The forward graph: stem, blocks, head and classifier, in order.
    pub stages: Vec<Stage>,
    pub act: Activation,
    pub input: [usize; 3],
    pub num_classes: usize,
}

/// What the graph does right after a layer: add a residual tensor, then an activation. A
/// runner may fuse it into the layer ([`LayerRunner::layer_post`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct Post<'a> {
    pub residual: Option<&'a Tensor>,
    pub act: Option<Activation>,
}

impl<'a> Post<'a> {
    pub const NONE: Post<'static> = Post {
        residual: None,
        act: None,
    };

    pub fn act(act: Activation) -> Post<'a> {
        Post {
            residual: None,
            act: Some(act),
        }
    }

    /// With candle ops: `act(y + residual)`.
    pub fn apply(&self, y: Tensor) -> Result<Tensor> {
        let y = match self.residual {
            Some(r) => (y + r)?,
            None => y,
        };
        match self.act {
            Some(a) => a.apply(&y),
            None => Ok(y),
        }
    }
}

/// How a runner lays out the activations between layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActLayout {
    /// `[B, C, H, W]` candle tensors, the graph's own ops (any device, autograd).
    Nchw,
    /// `[B, H, W, C]` on the CPU with the `crate::kernels` operations; the stage-0 input is
    /// already NHWC.
    Nhwc,
}

/// Runs one quantizable layer (its convolution or product plus folded or training batch-norm,
/// no activation). The graph calls it for layer `i` with that layer's input.
pub trait LayerRunner {
    fn layer(&mut self, i: usize, x: &Tensor) -> Result<Tensor>;

    /// Layer `i`, then `post`. A runner whose kernels fuse `post` overrides this; whatever it
    /// returns is what the graph uses at that point.
    fn layer_post(&mut self, i: usize, x: &Tensor, post: Post<'_>) -> Result<Tensor> {
        post.apply(self.layer(i, x)?)
    }

    /// The activation layout this runner works in.
    fn layout(&self) -> ActLayout {
        ActLayout::Nchw
    }
}

impl Arch {
    /// The architecture `name` (one constructor per name: a new [`ArchName`] does not compile
    /// until it is built here).
    pub fn new(name: ArchName) -> Arch {
        match name {
            ArchName::ResnetTiny => resnet_tiny(),
            ArchName::MobilenetTiny => mobilenet_tiny(),
            ArchName::Resnet18 => resnet18(),
            ArchName::Resnet50 => resnet50(),
            ArchName::MobilenetV2 => mobilenet_v2(),
            ArchName::Xception => xception(),
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

    /// Output of stage `s` for its input `x`. The work after a layer (residual add,
    /// activation) is passed to the runner with the layer ([`Post`]), in the order of the
    /// reference implementation: a residual block adds its two branches after both ran, so
    /// the add goes with the branch that runs last (the downsample or skip convolution when
    /// there is one).
    pub fn run_stage(&self, s: usize, x: &Tensor, r: &mut dyn LayerRunner) -> Result<Tensor> {
        let act = Some(self.act);
        let with_act = Post::act(self.act);
        let nhwc = r.layout() == ActLayout::Nhwc;
        let pool = |p: &MaxPool, x: &Tensor| {
            if nhwc {
                crate::kernels::ops::max_pool(x, p)
            } else {
                p.apply(x)
            }
        };
        // `act(y + identity)` where identity is the downsample of x, or x itself.
        let residual_end =
            |r: &mut dyn LayerRunner, y_last: usize, y_in: &Tensor, ds: Option<usize>| match ds {
                Some(d) => {
                    let y = r.layer(y_last, y_in)?;
                    r.layer_post(
                        d,
                        x,
                        Post {
                            residual: Some(&y),
                            act,
                        },
                    )
                }
                None => r.layer_post(
                    y_last,
                    y_in,
                    Post {
                        residual: Some(x),
                        act,
                    },
                ),
            };
        match &self.stages[s] {
            &Stage::ConvAct(i) => r.layer_post(i, x, with_act),
            Stage::ConvActPool(i, p) => pool(p, &r.layer_post(*i, x, with_act)?),
            &Stage::SepConvAct { dw, pw } => {
                let y = r.layer(dw, x)?;
                r.layer_post(pw, &y, with_act)
            }
            &Stage::PoolClassifier(i) => {
                let pooled = if nhwc {
                    crate::kernels::ops::global_avg_pool(x)?
                } else {
                    x.mean(D::Minus1)?.mean(D::Minus1)?
                };
                r.layer(i, &pooled)
            }
            &Stage::Block(Block::Basic {
                conv1,
                conv2,
                downsample,
            }) => {
                let y = r.layer_post(conv1, x, with_act)?;
                residual_end(r, conv2, &y, downsample)
            }
            &Stage::Block(Block::Bottleneck {
                conv1,
                conv2,
                conv3,
                downsample,
            }) => {
                let y = r.layer_post(conv1, x, with_act)?;
                let y = r.layer_post(conv2, &y, with_act)?;
                residual_end(r, conv3, &y, downsample)
            }
            &Stage::Block(Block::InvertedResidual {
                expand,
                dw,
                project,
                residual,
            }) => {
                let mut y = x.clone();
                if let Some(e) = expand {
                    y = r.layer_post(e, &y, with_act)?;
                }
                y = r.layer_post(dw, &y, with_act)?;
                r.layer_post(
                    project,
                    &y,
                    Post {
                        residual: residual.then_some(x),
                        act: None,
                    },
                )
            }
            Stage::Block(Block::Xception {
                units,
                relu_first,
                pool: block_pool,
                skip,
            }) => {
                // Each unit but the first is preceded by the activation, applied with the
                // previous unit's pointwise layer; the first one's, when there is one, is
                // applied to the block input on its own (the skip branch sees x before it).
                let mut y = if *relu_first {
                    self.act.apply(x)?
                } else {
                    x.clone()
                };
                let last = units.len() - 1;
                for (k, &(dw, pw)) in units.iter().enumerate() {
                    let d = r.layer(dw, &y)?;
                    y = if k < last {
                        r.layer_post(pw, &d, with_act)?
                    } else if skip.is_none() && block_pool.is_none() {
                        // No skip convolution: the input is added to the last unit's output.
                        return r.layer_post(
                            pw,
                            &d,
                            Post {
                                residual: Some(x),
                                act: None,
                            },
                        );
                    } else {
                        r.layer(pw, &d)?
                    };
                }
                if let Some(p) = block_pool {
                    y = pool(p, &y)?;
                }
                match skip {
                    Some(sk) => r.layer_post(
                        *sk,
                        x,
                        Post {
                            residual: Some(&y),
                            act: None,
                        },
                    ),
                    None => y + x,
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
    fn new() -> Builder {
        Builder { layers: vec![] }
    }

    /// A convolution with batch-norm `bn`, padding `k / 2` (what every torchvision convolution
    /// here uses), no bias.
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
        self.conv_padded(name, Some(bn), kind, i, o, k, s, k / 2)
    }

    /// A convolution without bias, with an explicit padding and optional batch-norm.
    #[allow(clippy::too_many_arguments)]
    fn conv_padded(
        &mut self,
        name: &str,
        bn: Option<&str>,
        kind: LayerKind,
        i: usize,
        o: usize,
        k: usize,
        s: usize,
        padding: usize,
    ) -> usize {
        self.layers.push(LayerSpec {
            name: name.to_string(),
            bn: bn.map(str::to_string),
            kind,
            in_ch: i,
            out_ch: o,
            kernel: k,
            stride: s,
            padding,
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

/// The embedded residual network: a small ResNet for the embedded 32x32 images, in
/// torchvision's tensor names: a 3x3 stride-2 stem convolution to 12 channels with 2x2 max
/// pooling (ImageNet ResNets' stem, scaled: 32 -> 16 -> 8), three stages of two `BasicBlock`s,
/// widths 12-24-48 at 8x8, 4x4, 2x2, and `fc` to the dataset's classes. N = 16; about 1.0 M
/// multiply-accumulates per image, so that the embedded suite's searches, scored on thousands
/// of images, fit on two CPU cores. (The pooling is 2x2 stride 2, not torchvision's 3x3 stride 2
/// padding 1: candle has no backward pass for overlapping max pooling.)
pub fn resnet_tiny() -> Arch {
    let mut b = Builder::new();
    let stem = b.conv("conv1", "bn1", LayerKind::Conv, 3, 12, 3, 2);
    let blocks = resnet_layers(&mut b, 12, &[(12, 2, 1), (24, 2, 2), (48, 2, 2)], false);
    let fc = b.linear("fc", 48, NUM_CLASSES);
    let pool = MaxPool {
        kernel: 2,
        stride: 2,
        padding: 0,
    };
    Arch {
        name: ArchName::ResnetTiny,
        layers: b.layers,
        stages: [Stage::ConvActPool(stem, pool)]
            .into_iter()
            .chain(blocks.into_iter().map(Stage::Block))
            .chain([Stage::PoolClassifier(fc)])
            .collect(),
        act: Activation::Relu,
        input: [3, SIDE, SIDE],
        num_classes: NUM_CLASSES,
    }
}

/// torchvision's `ResNet._make_layer` for every stage `(planes, blocks, stride)`, named
/// `layer1`, `layer2`, ...: `BasicBlock`s (expansion 1) or `Bottleneck`s (expansion 4, stride
/// on the 3x3). A block gets a downsample (1x1 convolution and batch-norm, after its other
/// convolutions in execution order) when its stride is not 1 or its width changes.
fn resnet_layers(
    b: &mut Builder,
    mut inplanes: usize,
    stages: &[(usize, usize, usize)],
    bottleneck: bool,
) -> Vec<Block> {
    let mut blocks = vec![];
    for (li, &(planes, n, stride)) in stages.iter().enumerate() {
        for k in 0..n {
            let p = format!("layer{}.{k}", li + 1);
            let s = if k == 0 { stride } else { 1 };
            let out = if bottleneck { planes * 4 } else { planes };
            let conv = |b: &mut Builder, c: usize, i: usize, o: usize, k: usize, s: usize| {
                b.conv(
                    &format!("{p}.conv{c}"),
                    &format!("{p}.bn{c}"),
                    LayerKind::Conv,
                    i,
                    o,
                    k,
                    s,
                )
            };
            let block = if bottleneck {
                let conv1 = conv(b, 1, inplanes, planes, 1, 1);
                let conv2 = conv(b, 2, planes, planes, 3, s);
                let conv3 = conv(b, 3, planes, out, 1, 1);
                let downsample = downsample(b, &p, inplanes, out, s);
                Block::Bottleneck {
                    conv1,
                    conv2,
                    conv3,
                    downsample,
                }
            } else {
                let conv1 = conv(b, 1, inplanes, planes, 3, s);
                let conv2 = conv(b, 2, planes, planes, 3, 1);
                let downsample = downsample(b, &p, inplanes, out, s);
                Block::Basic {
                    conv1,
                    conv2,
                    downsample,
                }
            };
            blocks.push(block);
            inplanes = out;
        }
    }
    blocks
}

fn downsample(b: &mut Builder, p: &str, i: usize, o: usize, s: usize) -> Option<usize> {
    (s != 1 || i != o).then(|| {
        b.conv(
            &format!("{p}.downsample.0"),
            &format!("{p}.downsample.1"),
            LayerKind::Conv,
            i,
            o,
            1,
            s,
        )
    })
}

/// torchvision's ImageNet ResNet: 7x7 stride-2 stem with batch-norm, ReLU and 3x3 stride-2
/// max pool (padding 1), four stages at widths 64-128-256-512 (strides 1, 2, 2, 2), global
/// average pooling and `fc` to 1000 classes. Input 224x224.
fn resnet(name: ArchName, blocks_per_stage: [usize; 4], bottleneck: bool) -> Arch {
    let mut b = Builder::new();
    let stem = b.conv("conv1", "bn1", LayerKind::Conv, 3, 64, 7, 2);
    let stages: Vec<(usize, usize, usize)> = [64, 128, 256, 512]
        .into_iter()
        .zip(blocks_per_stage)
        .zip([1, 2, 2, 2])
        .map(|((p, n), s)| (p, n, s))
        .collect();
    let blocks = resnet_layers(&mut b, 64, &stages, bottleneck);
    let fc = b.linear("fc", if bottleneck { 2048 } else { 512 }, 1000);
    let pool = MaxPool {
        kernel: 3,
        stride: 2,
        padding: 1,
    };
    Arch {
        name,
        layers: b.layers,
        stages: [Stage::ConvActPool(stem, pool)]
            .into_iter()
            .chain(blocks.into_iter().map(Stage::Block))
            .chain([Stage::PoolClassifier(fc)])
            .collect(),
        act: Activation::Relu,
        input: [3, 224, 224],
        num_classes: 1000,
    }
}

/// torchvision `resnet18`: `BasicBlock`s [2, 2, 2, 2]. N = 21 (20 convolutions, three of them
/// downsamples, and `fc`).
pub fn resnet18() -> Arch {
    resnet(ArchName::Resnet18, [2, 2, 2, 2], false)
}

/// torchvision `resnet50`: `Bottleneck`s [3, 4, 6, 3]. N = 54 (53 convolutions, four of them
/// downsamples, and `fc`).
pub fn resnet50() -> Arch {
    resnet(ArchName::Resnet50, [3, 4, 6, 3], true)
}

/// The inverted-residual network of torchvision's `MobileNetV2` layout: `features.0` (3x3
/// stride-2 convolution, batch-norm, ReLU6), one `InvertedResidual` per repetition of each
/// setting `(t, c, n, s)` as `features.1`, `features.2`, ..., a 1x1 head convolution to
/// `head` channels, global average pooling and `classifier.1`.
fn inverted_residual_net(
    name: ArchName,
    stem: usize,
    settings: &[(usize, usize, usize, usize)],
    head: usize,
    input: usize,
    num_classes: usize,
) -> Arch {
    let mut b = Builder::new();
    let stem_layer = b.conv(
        "features.0.0",
        "features.0.1",
        LayerKind::Conv,
        3,
        stem,
        3,
        2,
    );
    let mut blocks = vec![];
    let mut inp = stem;
    let mut f = 1;
    for &(t, c, n, s) in settings {
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
    let head_layer = b.conv(
        &format!("features.{f}.0"),
        &format!("features.{f}.1"),
        LayerKind::Conv,
        inp,
        head,
        1,
        1,
    );
    let fc = b.linear("classifier.1", head, num_classes);
    Arch {
        name,
        layers: b.layers,
        stages: [Stage::ConvAct(stem_layer)]
            .into_iter()
            .chain(blocks.into_iter().map(Stage::Block))
            .chain([Stage::ConvAct(head_layer), Stage::PoolClassifier(fc)])
            .collect(),
        act: Activation::Relu6,
        input: [3, input, input],
        num_classes,
    }
}

/// The embedded inverted-residual network: MobileNetV2's structure scaled to the embedded
/// 32x32 images (3x3 stride-2 stem to 16 channels, settings (t, c, n, s) = (1,16,1,2),
/// (4,24,2,1), (4,32,2,2), (4,48,1,1): 16x16, then 8x8 from the first block's depthwise layer,
/// 4x4; a 1x1 head to 128 channels), in torchvision's tensor names. N = 20, six of them
/// depthwise; about 1.3 M multiply-accumulates per image.
pub fn mobilenet_tiny() -> Arch {
    inverted_residual_net(
        ArchName::MobilenetTiny,
        16,
        &[(1, 16, 1, 2), (4, 24, 2, 1), (4, 32, 2, 2), (4, 48, 1, 1)],
        128,
        SIDE,
        NUM_CLASSES,
    )
}

/// torchvision `mobilenet_v2` (width 1.0): stem 32, settings (1,16,1,1), (6,24,2,2),
/// (6,32,3,2), (6,64,4,2), (6,96,3,1), (6,160,3,2), (6,320,1,1), head 1280, 1000 classes.
/// N = 53 (52 convolutions, 17 of them depthwise, and `classifier.1`).
pub fn mobilenet_v2() -> Arch {
    inverted_residual_net(
        ArchName::MobilenetV2,
        32,
        &[
            (1, 16, 1, 1),
            (6, 24, 2, 2),
            (6, 32, 3, 2),
            (6, 64, 4, 2),
            (6, 96, 3, 1),
            (6, 160, 3, 2),
            (6, 320, 1, 1),
        ],
        1280,
        224,
        1000,
    )
}

/// timm `legacy_xception` (the Keras-ported Xception): `conv1` (3x3 stride 2, padding 0) and
/// `conv2` (3x3, padding 0), each with batch-norm and ReLU; blocks `block1`..`block12`; the
/// separable convolutions `conv3`, `conv4` (batch-norms `bn3`, `bn4`, then ReLU); global average
/// pooling and `fc`. A separable convolution is two quantizable layers: the depthwise `conv1`
/// (no batch-norm) and the 1x1 `pointwise` (with the batch-norm that follows). Input 299x299.
/// N = 75: 2 stem convolutions, 12 blocks with 2 or 3 separable convolutions each (32 of them,
/// 64 layers), 4 skip convolutions (`block1`, `block2`, `block3`, `block12`), 2 separable head
/// convolutions (4 layers) and `fc`.
pub fn xception() -> Arch {
    let mut b = Builder::new();
    let conv1 = b.conv_padded("conv1", Some("bn1"), LayerKind::Conv, 3, 32, 3, 2, 0);
    let conv2 = b.conv_padded("conv2", Some("bn2"), LayerKind::Conv, 32, 64, 3, 1, 0);
    // (in, out, reps, stride, start_with_relu, grow_first), as timm's constructor.
    let mut specs = vec![
        (64, 128, 2, 2, false, true),
        (128, 256, 2, 2, true, true),
        (256, 728, 2, 2, true, true),
    ];
    specs.extend([(728, 728, 3, 1, true, true); 8]);
    specs.push((728, 1024, 2, 2, true, false));
    let mut stages = vec![Stage::ConvAct(conv1), Stage::ConvAct(conv2)];
    let sep = |b: &mut Builder, p: &str, bn: &str, i: usize, o: usize| -> (usize, usize) {
        let dw = b.conv_padded(
            &format!("{p}.conv1"),
            None,
            LayerKind::Depthwise,
            i,
            i,
            3,
            1,
            1,
        );
        let pw = b.conv_padded(
            &format!("{p}.pointwise"),
            Some(bn),
            LayerKind::Conv,
            i,
            o,
            1,
            1,
            0,
        );
        (dw, pw)
    };
    for (n, &(inc, outc, reps, stride, relu_first, grow_first)) in specs.iter().enumerate() {
        let p = format!("block{}", n + 1);
        // timm builds `rep` as [ReLU, SeparableConv2d, BatchNorm2d] per repetition and drops
        // the first ReLU when the block does not start with one: module indices shift by one.
        let shift = usize::from(!relu_first);
        let mut units = vec![];
        for i in 0..reps {
            let (ci, co) = if grow_first {
                (if i == 0 { inc } else { outc }, outc)
            } else {
                (inc, if i < reps - 1 { inc } else { outc })
            };
            let (s_idx, bn_idx) = (3 * i + 1 - shift, 3 * i + 2 - shift);
            units.push(sep(
                &mut b,
                &format!("{p}.rep.{s_idx}"),
                &format!("{p}.rep.{bn_idx}"),
                ci,
                co,
            ));
        }
        let skip = (outc != inc || stride != 1).then(|| {
            b.conv_padded(
                &format!("{p}.skip"),
                Some(format!("{p}.skipbn").as_str()),
                LayerKind::Conv,
                inc,
                outc,
                1,
                stride,
                0,
            )
        });
        let pool = (stride != 1).then_some(MaxPool {
            kernel: 3,
            stride,
            padding: 1,
        });
        stages.push(Stage::Block(Block::Xception {
            units,
            relu_first,
            pool,
            skip,
        }));
    }
    let (dw3, pw3) = sep(&mut b, "conv3", "bn3", 1024, 1536);
    stages.push(Stage::SepConvAct { dw: dw3, pw: pw3 });
    let (dw4, pw4) = sep(&mut b, "conv4", "bn4", 1536, 2048);
    stages.push(Stage::SepConvAct { dw: dw4, pw: pw4 });
    let fc = b.linear("fc", 2048, 1000);
    stages.push(Stage::PoolClassifier(fc));
    Arch {
        name: ArchName::Xception,
        layers: b.layers,
        stages,
        act: Activation::Relu,
        input: [3, 299, 299],
        num_classes: 1000,
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
        for &name in ArchName::ALL {
            let a = Arch::new(name);
            assert_eq!(a.name, name);
            let order: Vec<usize> = a.stages.iter().flat_map(|s| s.layers()).collect();
            assert_eq!(order, (0..a.layers.len()).collect::<Vec<_>>(), "{name}");
            let of = a.stage_of_layer();
            assert!(of.windows(2).all(|w| w[0] <= w[1]), "{name}");
        }
    }

    fn names(a: &Arch) -> Vec<&str> {
        a.layers.iter().map(|l| l.name.as_str()).collect()
    }

    fn follows(a: &Arch, first: &str, then: &str) {
        let n = names(a);
        let i = n.iter().position(|x| *x == first).expect(first);
        assert_eq!(n[i + 1], then, "{}: {then} right after {first}", a.name);
    }

    fn count(a: &Arch, kind: LayerKind) -> usize {
        a.layers.iter().filter(|l| l.kind == kind).count()
    }

    #[test]
    fn paper_networks_have_the_reference_layer_counts_and_order() {
        let r18 = resnet18();
        assert_eq!(r18.layers.len(), 21);
        assert_eq!((names(&r18)[0], names(&r18)[20]), ("conv1", "fc"));
        follows(&r18, "layer2.0.conv2", "layer2.0.downsample.0");
        follows(&r18, "layer2.0.downsample.0", "layer2.1.conv1");
        assert_eq!(r18.layers[0].padding, 3);
        assert!(matches!(r18.stages[0], Stage::ConvActPool(0, _)));

        let r50 = resnet50();
        assert_eq!(r50.layers.len(), 54);
        follows(&r50, "layer1.0.conv3", "layer1.0.downsample.0");
        follows(&r50, "layer4.0.conv3", "layer4.0.downsample.0");
        let c2 = &r50.layers[names(&r50)
            .iter()
            .position(|n| *n == "layer2.0.conv2")
            .unwrap()];
        assert_eq!((c2.kernel, c2.stride), (3, 2), "stride on the 3x3 (v1.5)");
        assert_eq!(r50.layers[53].in_ch, 2048);

        let mb = mobilenet_v2();
        assert_eq!(mb.layers.len(), 53);
        assert_eq!(count(&mb, LayerKind::Depthwise), 17);
        assert_eq!(names(&mb)[1], "features.1.conv.0.0");
        assert_eq!(names(&mb)[51], "features.18.0");
        assert_eq!(names(&mb)[52], "classifier.1");
        assert_eq!(mb.layers[51].weight_shape(), vec![1280, 320, 1, 1]);

        let x = xception();
        assert_eq!(x.layers.len(), 75);
        assert_eq!(count(&x, LayerKind::Depthwise), 34);
        assert_eq!((x.layers[0].padding, x.layers[1].padding), (0, 0));
        // block1 starts without a ReLU: its first separable convolution is rep.0.
        follows(&x, "conv2", "block1.rep.0.conv1");
        follows(&x, "block1.rep.3.pointwise", "block1.skip");
        follows(&x, "block1.skip", "block2.rep.1.conv1");
        follows(&x, "block4.rep.7.pointwise", "block5.rep.1.conv1");
        follows(&x, "block12.rep.4.pointwise", "block12.skip");
        follows(&x, "block12.skip", "conv3.conv1");
        let b12 = names(&x)
            .iter()
            .position(|n| *n == "block12.rep.1.pointwise")
            .unwrap();
        assert_eq!(x.layers[b12].out_ch, 728, "block12 grows last");
        assert_eq!(x.layers[b12].bn.as_deref(), Some("block12.rep.2"));
        assert_eq!(
            x.layers[b12 - 1].bn,
            None,
            "no batch-norm between depthwise and pointwise"
        );
        assert_eq!(names(&x)[74], "fc");
    }

    #[test]
    fn max_pool_pads_with_minus_infinity() {
        use candle_core::Device;
        // All inputs negative: zero padding would put 0 on the border outputs.
        let v: Vec<f32> = (0..16).map(|i| -1.0 - i as f32).collect();
        let x = Tensor::from_vec(v, (1, 1, 4, 4), &Device::Cpu).unwrap();
        let p = MaxPool {
            kernel: 3,
            stride: 2,
            padding: 1,
        };
        let y = p.apply(&x).unwrap();
        assert_eq!(y.dims(), &[1, 1, 2, 2]);
        // Windows centred on (0,0), (0,2), (2,0), (2,2): the largest value is the top-left one.
        let got = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(got, vec![-1.0, -2.0, -5.0, -6.0]);
    }
}
