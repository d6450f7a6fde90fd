//! The manifest: schema, layering and validation. A manifest is TOML; its layers, lowest
//! priority first: built-in defaults, the nearest `defaults.toml` in the manifest's directory or
//! an ancestor (normally `experiments/defaults.toml`), the manifest itself, `MPQ_SECTION__KEY`
//! environment variables, and `--set section.key=value` options. Unknown keys are errors, and
//! every error is one line naming where the bad value came from and its dotted key.
use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map};
use figment::{Figment, Metadata, Profile, Provider};
use mpq_quant::BitPair;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::{Path, PathBuf};

/// Architectures this build can run.
pub const KNOWN_ARCHS: &[&str] = &["resnet-tiny", "mobilenet-tiny"];
/// Datasets this build can load.
pub const KNOWN_DATASETS: &[&str] = &["embedded"];
/// Splits of the embedded dataset.
pub const KNOWN_SPLITS: &[&str] = &["train", "calibration", "search", "test"];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ExperimentSection {
    pub name: String,
    pub seed: u64,
    pub description: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSection {
    pub arch: String,
    pub weights: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataSection {
    pub dataset: String,
    pub seed: u64,
    pub calib_images: usize,
    pub search_images: usize,
    pub calib_split: String,
    pub search_split: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuantSection {
    #[serde(with = "pair_serde")]
    pub pair: BitPair,
    #[serde(with = "pair_serde")]
    pub high: BitPair,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum StrategyName {
    #[serde(rename = "greedy")]
    Greedy,
    #[serde(rename = "one-shot")]
    OneShot,
}

/// A fixed beta (>= 0) or `"auto"` (paper sec. 4.1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BetaSetting {
    Fixed(f64),
    Auto,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchSection {
    pub strategy: StrategyName,
    pub beta: BetaSetting,
}

/// `"cpu"`, `"cuda"` (= `"cuda:0"`) or `"cuda:N"`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DeviceSpec {
    Cpu,
    Cuda(usize),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeSection {
    pub device: DeviceSpec,
    pub batch_size: usize,
    /// Worker threads; 0 = all cores.
    pub threads: usize,
    pub results_dir: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Manifest {
    pub experiment: ExperimentSection,
    pub model: ModelSection,
    pub data: DataSection,
    pub quant: QuantSection,
    pub search: SearchSection,
    pub runtime: RuntimeSection,
}

impl Default for ModelSection {
    fn default() -> Self {
        ModelSection {
            arch: "resnet-tiny".into(),
            weights: PathBuf::new(),
        }
    }
}
impl Default for DataSection {
    fn default() -> Self {
        DataSection {
            dataset: "embedded".into(),
            seed: 0,
            calib_images: 256,
            search_images: 512,
            calib_split: "calibration".into(),
            search_split: "search".into(),
        }
    }
}
impl Default for QuantSection {
    fn default() -> Self {
        QuantSection {
            pair: BitPair { w: 4, a: 8 },
            high: BitPair::W8A8,
        }
    }
}
impl Default for SearchSection {
    fn default() -> Self {
        SearchSection {
            strategy: StrategyName::Greedy,
            beta: BetaSetting::Fixed(0.0),
        }
    }
}
impl Default for RuntimeSection {
    fn default() -> Self {
        RuntimeSection {
            device: DeviceSpec::Cpu,
            batch_size: 256,
            threads: 0,
            results_dir: "results".into(),
        }
    }
}

mod pair_serde {
    use super::*;
    pub fn serialize<S: Serializer>(p: &BitPair, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&p.to_string())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BitPair, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for BetaSetting {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            BetaSetting::Fixed(b) => s.serialize_f64(*b),
            BetaSetting::Auto => s.serialize_str("auto"),
        }
    }
}

impl<'de> Deserialize<'de> for BetaSetting {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = BetaSetting;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number >= 0 or \"auto\"")
            }
            fn visit_f64<E: serde::de::Error>(self, b: f64) -> Result<BetaSetting, E> {
                if b.is_finite() && b >= 0.0 {
                    Ok(BetaSetting::Fixed(b))
                } else {
                    Err(E::custom(format!(
                        "beta must be a number >= 0 or \"auto\", got {b}"
                    )))
                }
            }
            fn visit_i64<E: serde::de::Error>(self, b: i64) -> Result<BetaSetting, E> {
                self.visit_f64(b as f64)
            }
            fn visit_u64<E: serde::de::Error>(self, b: u64) -> Result<BetaSetting, E> {
                self.visit_f64(b as f64)
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<BetaSetting, E> {
                if s == "auto" {
                    Ok(BetaSetting::Auto)
                } else {
                    Err(E::custom(format!(
                        "beta must be a number >= 0 or \"auto\", got {s:?}"
                    )))
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

impl std::str::FromStr for DeviceSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("device must be \"cpu\", \"cuda\" or \"cuda:N\", got {s:?}");
        let d = match s {
            "cpu" => DeviceSpec::Cpu,
            "cuda" => DeviceSpec::Cuda(0),
            _ => DeviceSpec::Cuda(
                s.strip_prefix("cuda:")
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(bad)?,
            ),
        };
        if matches!(d, DeviceSpec::Cuda(_)) && !cfg!(feature = "cuda") {
            return Err(format!(
                "device {s:?} needs a build with `--features cuda` (this build is CPU only)"
            ));
        }
        Ok(d)
    }
}

impl Serialize for DeviceSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for DeviceSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A manifest with every layer applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    pub manifest: Manifest,
    pub path: PathBuf,
    /// The resolved manifest as TOML, every key present (recorded in the runs table).
    pub toml: String,
    /// Hex SHA-256 of `toml`.
    pub hash: String,
}

/// A bad manifest: one line, `<source>: <key>: <message>`.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub struct ManifestError {
    pub file: PathBuf,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let msg = self.message.replace('\n', " ");
        match &self.key {
            Some(k) => write!(f, "{}: {k}: {msg}", self.file.display()),
            None => write!(f, "{}: {msg}", self.file.display()),
        }
    }
}

/// One `key = value` from the environment or the command line, named after its origin.
struct KeyValue {
    origin: String,
    key: String,
    value: toml::Value,
}

impl KeyValue {
    fn new(origin: String, key: &str, raw: &str) -> KeyValue {
        let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.to_string()));
        KeyValue {
            origin,
            key: key.to_string(),
            value,
        }
    }
}

impl Provider for KeyValue {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.origin.clone())
    }
    fn data(&self) -> figment::Result<Map<Profile, Dict>> {
        Serialized::default(&self.key, &self.value).data()
    }
}

/// The nearest `defaults.toml` in the manifest's directory or an ancestor.
fn find_defaults(path: &Path) -> Option<PathBuf> {
    let abs = std::path::absolute(path).ok()?;
    abs.ancestors()
        .skip(1)
        .map(|d| d.join("defaults.toml"))
        .find(|p| p.is_file() && p != &abs)
}

/// Resolve a manifest with the process environment.
pub fn load(path: &Path, sets: &[String]) -> Result<Resolved, ManifestError> {
    let env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("MPQ_"))
        .collect();
    load_with_env(path, sets, &env)
}

/// Resolve a manifest with the given environment variables (only `MPQ_X__Y` ones are used).
pub fn load_with_env(
    path: &Path,
    sets: &[String],
    env: &[(String, String)],
) -> Result<Resolved, ManifestError> {
    let err = |file: &Path, key: Option<&str>, message: String| ManifestError {
        file: file.to_path_buf(),
        key: key.map(str::to_string),
        message,
    };
    if !path.is_file() {
        return Err(err(path, None, "manifest not found".into()));
    }
    let mut base = Manifest::default();
    base.experiment.name = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let mut fig = Figment::from(Serialized::defaults(base));
    if let Some(d) = find_defaults(path) {
        fig = fig.merge(Toml::file_exact(d));
    }
    fig = fig.merge(Toml::file_exact(path));
    let mut env: Vec<&(String, String)> = env
        .iter()
        .filter(|(k, _)| k.starts_with("MPQ_") && k.contains("__"))
        .collect();
    env.sort();
    for (k, v) in env {
        let key = k["MPQ_".len()..].to_lowercase().replace("__", ".");
        fig = fig.merge(KeyValue::new(format!("environment variable {k}"), &key, v));
    }
    for s in sets {
        let Some((k, v)) = s.split_once('=') else {
            return Err(err(
                Path::new("--set"),
                Some(s),
                "expected key=value".into(),
            ));
        };
        let k = k.trim();
        fig = fig.merge(KeyValue::new(format!("--set {k}"), k, v.trim()));
    }
    let source_of = |fig: &Figment, key: &str| -> PathBuf {
        match fig.find_metadata(key) {
            Some(m) => match &m.source {
                Some(figment::Source::File(p)) => p.clone(),
                _ => PathBuf::from(m.name.to_string()),
            },
            None => path.to_path_buf(),
        }
    };
    let manifest: Manifest = fig.extract().map_err(|e| {
        let e = e.into_iter().next().expect("at least one error");
        let file = match e.metadata.as_ref() {
            Some(m) => match &m.source {
                Some(figment::Source::File(p)) => p.clone(),
                _ => PathBuf::from(m.name.to_string()),
            },
            None => path.to_path_buf(),
        };
        let mut key = e.path.join(".");
        let message = match &e.kind {
            figment::error::Kind::UnknownField(f, expected) => {
                if e.path.last() != Some(f) {
                    key = if key.is_empty() {
                        f.clone()
                    } else {
                        format!("{key}.{f}")
                    };
                }
                format!("unknown key (expected one of: {})", expected.join(", "))
            }
            k => k.to_string(),
        };
        err(&file, (!key.is_empty()).then_some(key.as_str()), message)
    })?;

    // Checks serde cannot express.
    let check = |ok: bool, key: &str, message: String| -> Result<(), ManifestError> {
        if ok {
            Ok(())
        } else {
            Err(err(&source_of(&fig, key), Some(key), message))
        }
    };
    let m = &manifest;
    check(
        !m.experiment.name.is_empty(),
        "experiment.name",
        "must not be empty".into(),
    )?;
    check(
        KNOWN_ARCHS.contains(&m.model.arch.as_str()),
        "model.arch",
        format!(
            "unknown architecture {:?} (known: {})",
            m.model.arch,
            KNOWN_ARCHS.join(", ")
        ),
    )?;
    check(
        !m.model.weights.as_os_str().is_empty(),
        "model.weights",
        "a weights file is required".into(),
    )?;
    check(
        KNOWN_DATASETS.contains(&m.data.dataset.as_str()),
        "data.dataset",
        format!(
            "unknown dataset {:?} (known: {})",
            m.data.dataset,
            KNOWN_DATASETS.join(", ")
        ),
    )?;
    for (key, v) in [
        ("data.calib_split", &m.data.calib_split),
        ("data.search_split", &m.data.search_split),
    ] {
        check(
            KNOWN_SPLITS.contains(&v.as_str()),
            key,
            format!("unknown split {v:?} (known: {})", KNOWN_SPLITS.join(", ")),
        )?;
    }
    check(
        m.data.calib_images >= 1,
        "data.calib_images",
        "must be >= 1".into(),
    )?;
    check(
        m.data.search_images >= 1,
        "data.search_images",
        "must be >= 1".into(),
    )?;
    check(
        m.runtime.batch_size >= 1,
        "runtime.batch_size",
        "must be >= 1".into(),
    )?;
    check(
        m.quant.pair != m.quant.high,
        "quant.pair",
        format!("the lower pair {} equals the high pair", m.quant.pair),
    )?;

    let toml = toml::to_string(&manifest)
        .map_err(|e| err(path, None, format!("cannot serialize: {e}")))?;
    let hash = Sha256::digest(toml.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(Resolved {
        manifest,
        path: path.to_path_buf(),
        toml,
        hash,
    })
}

/// A file: itself. A directory: every `*.toml` below it, sorted, except `defaults.toml` files
/// and anything under a `baselines` directory.
pub fn find_manifests(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut out = vec![];
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().to_string();
            if p.is_dir() {
                if name != "baselines" && !name.starts_with('.') {
                    walk(&p, out);
                }
            } else if name.ends_with(".toml") && name != "defaults.toml" {
                out.push(p);
            }
        }
    }
    walk(path, &mut out);
    out.sort();
    out
}
