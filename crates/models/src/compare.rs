//! `mpq logits`: a model's logits for images read from a safetensors file, written to another,
//! so that `tools/compare_logits.py` can compare this project's forward pass with PyTorch's on
//! the same weights and inputs.
use crate::qmodel::{Precision, QuantModel};
use crate::weights::{load_weights, save_weights, WeightsError};
use crate::Arch;
use candle_core::{DType, Device};
use std::collections::HashMap;
use std::path::Path;

/// Read tensor `images` (`[B, 3, H, W]`, any float dtype) from `input`, run `arch` with the
/// weights at `weights` at `precision` (`Fp32`: as stored; `Fp32Folded`: batch-norm folded),
/// and write tensor `logits` (`[B, classes]`, f32) to `out`.
pub fn logits_file(
    arch: &Arch,
    weights: &Path,
    input: &Path,
    out: &Path,
    precision: Precision,
) -> anyhow::Result<()> {
    let dev = Device::Cpu;
    let w = load_weights(weights, arch, &dev)?;
    if !input.is_file() {
        anyhow::bail!("{}: input file not found", input.display());
    }
    let mut t =
        candle_core::safetensors::load(input, &dev).map_err(|e| WeightsError::NotSafetensors {
            path: input.into(),
            reason: e.to_string().lines().next().unwrap_or("").to_string(),
        })?;
    let x = t
        .remove("images")
        .ok_or_else(|| anyhow::anyhow!("{}: tensor \"images\" is missing", input.display()))?;
    let dims = x.dims().to_vec();
    if dims.len() != 4 || dims[1] != arch.input[0] {
        anyhow::bail!(
            "{}: tensor \"images\" has shape {dims:?}, expected [B, {}, H, W]",
            input.display(),
            arch.input[0]
        );
    }
    let x = x.to_dtype(DType::F32)?;
    let m = QuantModel::new(arch.clone(), w, &dev)?;
    let y = m.logits(&x, precision)?;
    save_weights(&HashMap::from([("logits".to_string(), y)]), out)?;
    Ok(())
}
