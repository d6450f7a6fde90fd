//! The quantizer of the reproduced paper (Tsuji et al. 2021, eqs. 4-7), pinned down by
//! `shared/spec/quantization.md` section 2 and 7: power-of-two steps, per-channel min-max
//! weights, per-layer MSE-calibrated activations, round half to even.
//!
//! The post-training baselines' arithmetic lives here too, each in its own module and used only
//! when a run asks for it: float-step grids (`uniform`), MMSE and Lp clipping searches (`clip`),
//! ACIQ's analytical clipping and bit allocation (`aciq`), AdaRound's soft rounding (`adaround`),
//! bias correction of quantized weights
//! (`bias_correction`) and the input quantizer every method can supply (`act`).
//!
//! This crate is the only place where quantization arithmetic lives. Models call it; they never
//! re-implement it. It knows nothing of networks, files or searches.

pub mod aciq;
pub mod act;
pub mod adaround;
pub mod bias_correction;
pub mod calib;
pub mod clip;
pub mod grid;
pub mod size;
pub mod tensor;
pub mod uniform;

pub use act::InputQuant;
pub use bias_correction::{correct_weights, BiasCorrection};
pub use calib::{calibrate_values, MinMax, MseCalibrator};
pub use grid::{ceil_log2_exact, quantize_slice, quantize_weights_per_channel, Grid, Quantizer};
/// Bit pairs are part of the shared vocabulary.
pub use mpq_vocab::{BitPair, PairError};
pub use size::{rel_size, size_bits};
pub use tensor::{fake_quant, fake_quant_ops, quantize_weight_tensor};
pub use uniform::Uniform;
