//! Loading weights in the architecture's tensor names (the reference library's state-dict
//! names: `<layer>.weight`, `<bn>.running_mean`, ...) from safetensors files or PyTorch `.pth`
//! state dicts, with every problem reported as one line naming the file and the tensor; and
//! batch-norm folding (spec section 1 and 7).
use crate::arch::{Arch, ArchName};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const BN_EPS: f64 = 1e-5;

#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("{path}: weights file not found")]
    Missing { path: PathBuf },
    #[error("{path}: not a readable safetensors file ({reason})")]
    NotSafetensors { path: PathBuf, reason: String },
    #[error("{path}: not a readable PyTorch state dict ({reason}); export it to safetensors with tools/export_weights.py")]
    NotPth { path: PathBuf, reason: String },
    #[error("{path}: tensor {tensor:?} is missing (needed by arch {arch})")]
    MissingTensor {
        path: PathBuf,
        tensor: String,
        arch: ArchName,
    },
    #[error("{path}: tensor {tensor:?} has shape {found:?}, arch {arch} needs {expected:?}")]
    Shape {
        path: PathBuf,
        tensor: String,
        arch: ArchName,
        found: Vec<usize>,
        expected: Vec<usize>,
    },
    #[error("{path}: tensor {tensor:?} has {count} non-finite value(s) (NaN or infinite), e.g. {example} at flat index {index}")]
    NonFinite {
        path: PathBuf,
        tensor: String,
        count: usize,
        example: f32,
        index: usize,
    },
    #[error("{path}: {reason}")]
    Other { path: PathBuf, reason: String },
}

/// Every tensor an architecture needs, with its shape.
pub fn expected_tensors(arch: &Arch) -> Vec<(String, Vec<usize>)> {
    let mut v = vec![];
    for l in &arch.layers {
        v.push((format!("{}.weight", l.name), l.weight_shape()));
        if l.bias {
            v.push((format!("{}.bias", l.name), vec![l.out_ch]));
        }
        if let Some(bn) = &l.bn {
            for t in ["weight", "bias", "running_mean", "running_var"] {
                v.push((format!("{bn}.{t}"), vec![l.out_ch]));
            }
        }
    }
    v
}

/// The formats [`load_weights`] reads, chosen by file extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightsFormat {
    /// `.safetensors` (and any other extension).
    Safetensors,
    /// `.pth` / `.pt`: a PyTorch state dict saved by `torch.save` (zip format), read with
    /// candle's pickle reader; a checkpoint holding it under `state_dict` or `model` works too.
    Pth,
}

impl WeightsFormat {
    pub fn of(path: &Path) -> WeightsFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("pth") || e.eq_ignore_ascii_case("pt") => {
                WeightsFormat::Pth
            }
            _ => WeightsFormat::Safetensors,
        }
    }
}

/// Load and check the weights of `arch` from a safetensors file or a `.pth`/`.pt` state dict
/// (by extension; tensors converted to f32 on `device`). Extra tensors (e.g.
/// `num_batches_tracked`) are ignored.
pub fn load_weights(
    path: &Path,
    arch: &Arch,
    device: &Device,
) -> Result<HashMap<String, Tensor>, WeightsError> {
    if !path.is_file() {
        return Err(WeightsError::Missing { path: path.into() });
    }
    let raw = match WeightsFormat::of(path) {
        WeightsFormat::Safetensors => {
            candle_core::safetensors::load(path, device).map_err(|e| {
                WeightsError::NotSafetensors {
                    path: path.into(),
                    reason: first_line(&e.to_string()),
                }
            })?
        }
        WeightsFormat::Pth => load_pth(path, device)?,
    };
    check_weights(path, arch, raw)
}

/// The tensors of a `.pth` state dict: the top-level dict, or the one under `state_dict` or
/// `model` when the top level holds no tensor (a training checkpoint).
fn load_pth(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>, WeightsError> {
    let bad = |e: candle_core::Error| WeightsError::NotPth {
        path: path.into(),
        reason: first_line(&e.to_string()),
    };
    let mut found = candle_core::pickle::read_all_with_key(path, None).map_err(bad)?;
    for key in ["state_dict", "model"] {
        if !found.is_empty() {
            break;
        }
        // A file without that key is not an error here: the next key (or the error below).
        found = candle_core::pickle::read_all_with_key(path, Some(key)).unwrap_or_default();
    }
    if found.is_empty() {
        return Err(WeightsError::NotPth {
            path: path.into(),
            reason: "no tensors found at the top level or under state_dict or model".into(),
        });
    }
    found
        .into_iter()
        .map(|(k, t)| Ok::<_, WeightsError>((k, t.to_device(device).map_err(bad)?)))
        .collect()
}

/// Check a loaded tensor map against `arch` (names and shapes), converting to f32.
pub fn check_weights(
    path: &Path,
    arch: &Arch,
    mut raw: HashMap<String, Tensor>,
) -> Result<HashMap<String, Tensor>, WeightsError> {
    let mut out = HashMap::new();
    for (name, shape) in expected_tensors(arch) {
        let t = raw
            .remove(&name)
            .ok_or_else(|| WeightsError::MissingTensor {
                path: path.into(),
                tensor: name.clone(),
                arch: arch.name,
            })?;
        if t.dims() != shape.as_slice() {
            return Err(WeightsError::Shape {
                path: path.into(),
                tensor: name,
                arch: arch.name,
                found: t.dims().to_vec(),
                expected: shape,
            });
        }
        let other = |e: candle_core::Error| WeightsError::Other {
            path: path.into(),
            reason: format!("tensor {name:?}: {}", first_line(&e.to_string())),
        };
        let t = t.to_dtype(DType::F32).map_err(other)?;
        let values = t
            .flatten_all()
            .and_then(|v| v.to_vec1::<f32>())
            .map_err(other)?;
        let mut bad = values.iter().enumerate().filter(|(_, v)| !v.is_finite());
        if let Some((index, &example)) = bad.next() {
            return Err(WeightsError::NonFinite {
                path: path.into(),
                tensor: name,
                count: 1 + bad.count(),
                example,
                index,
            });
        }
        out.insert(name, t);
    }
    Ok(out)
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

/// Fold batch-norm into the preceding layer, in f32 as spec section 7:
/// `s = g / sqrt(v + eps)`, `W' = W * s` per output channel, `b' = (b - m) * s + beta`.
pub fn fold_bn(
    w: &Tensor,
    b: Option<&Tensor>,
    gamma: &Tensor,
    beta: &Tensor,
    mean: &Tensor,
    var: &Tensor,
    eps: f64,
) -> candle_core::Result<(Tensor, Tensor)> {
    let out = w.dim(0)?;
    let s = (gamma / (var + eps)?.sqrt()?)?;
    let mut bshape = vec![1usize; w.rank()];
    bshape[0] = out;
    let w2 = w.broadcast_mul(&s.reshape(bshape)?)?;
    let b0 = match b {
        Some(b) => b.clone(),
        None => Tensor::zeros(out, DType::F32, w.device())?,
    };
    let b2 = ((b0 - mean)? * s)?.add(beta)?;
    Ok((w2, b2))
}

/// Write tensors to a safetensors file atomically (temporary file, then rename).
pub fn save_weights(tensors: &HashMap<String, Tensor>, path: &Path) -> Result<(), WeightsError> {
    let other = |e: &dyn std::fmt::Display| WeightsError::Other {
        path: path.into(),
        reason: first_line(&e.to_string()),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| other(&e))?;
    }
    let file = mpq_io::AtomicFile::create(path).map_err(|e| other(&e))?;
    candle_core::safetensors::save(tensors, file.temp_path()).map_err(|e| other(&e))?;
    file.commit().map_err(|e| other(&e))
}
