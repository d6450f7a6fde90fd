//! Networks as an ordered list of quantizable layers (every conv, depthwise conv and linear, in
//! forward order) with a per-layer (weight bits, activation bits) setting that can be switched
//! between evaluations for free: quantized weights and activation calibration are computed once
//! per (layer, bit-width). Also BN folding, safetensors loading in torchvision names, the fast
//! depthwise convolution, and the embedded models' training; and the post-training baselines
//! (MMSE, ACIQ, AdaRound, LAPQ: `ptq`), which plug into the same model as per-(layer, pair)
//! replacements of the spec's quantizer.
//!
//! Knows nothing of manifests, Parquet or search strategies.

pub mod arch;
pub mod bench;
pub mod compare;
pub mod depthwise;
pub mod kernels;
pub mod layer;
pub mod prefix;
pub mod ptq;
pub mod qmodel;
pub mod train;
pub mod unfold;
pub mod weights;

#[cfg(test)]
mod test_util;

pub use arch::{Arch, ArchName, Block, LayerKind, LayerRunner, LayerSpec, MaxPool, Stage};
pub use qmodel::{MethodLayer, QuantModel};
pub use weights::{load_weights, WeightsError, WeightsFormat};
