//! The manifest: schema, layering and validation.
//!
//! A manifest is TOML. Its layers, lowest priority first, each overriding the ones before it:
//! 1. built-in defaults (the `Default` impls below; `experiment.name` defaults to the manifest's
//!    file stem);
//! 2. the nearest `defaults.toml` in the manifest's directory or an ancestor (normally
//!    `experiments/defaults.toml`), skipped when there is none;
//! 3. the manifest itself;
//! 4. environment variables `MPQ_<SECTION>__<KEY>` (only names containing `__`, so other `MPQ_`
//!    variables such as `MPQ_IMAGENET_DIR` are not manifest keys);
//! 5. `--set <section>.<key>=<value>` options, in order.
//!
//! Values of layers 4 and 5 are TOML values when they parse as one (`0.02`, `64`, `"x"`), else
//! strings (`W4A4`). Unknown keys are errors, and every error is one line,
//! `<origin>: <dotted key>: <message>`, where the origin is the file the bad value came from,
//! `environment variable MPQ_X__Y`, or `--set x.y`.
use figment::error::Kind;
use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map};
use figment::{Figment, Metadata, Profile, Provider, Source};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

/// A (weight bits, activation bits) pair such as `W4A8`, each in 2..=8. The quantizer's own
/// type, re-exported: `FromStr` parses `^[Ww](\d)[Aa](\d)$` strictly, `Display` writes `W4A8`.
/// In a manifest it is that string.
pub use mpq_quant::BitPair;

/// Architectures this build can run (`model.arch`).
pub const KNOWN_ARCHS: &[&str] = &[
    "resnet-tiny",
    "mobilenet-tiny",
    "resnet18",
    "resnet50",
    "mobilenet_v2",
    "xception",
];
/// Datasets this build can load (`data.dataset`).
pub const KNOWN_DATASETS: &[&str] = &["embedded", "imagefolder", "tensors"];
/// Splits of the embedded dataset (`data.calib_split`, `data.search_split`).
pub const KNOWN_SPLITS: &[&str] = &["train", "calibration", "search", "test"];
/// Parts of an image pool (`imagefolder`, `tensors`) a split key can name; see
/// `mpq_data::subset`.
pub const KNOWN_IMAGE_SPLITS: &[&str] = &mpq_data::subset::Part::NAMES;
/// Resampling filters of `data.interpolation`.
pub const KNOWN_INTERPOLATIONS: &[&str] = &["bilinear", "bicubic"];
/// The file name of the defaults layer.
pub const DEFAULTS_FILE: &str = "defaults.toml";

/// `[experiment]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ExperimentSection {
    /// Names the run directory and every result row; defaults to the manifest's file stem.
    pub name: String,
    /// Seeds everything random in a run besides the data (the `random` strategy's order).
    pub seed: u64,
    pub description: String,
    /// The paper's network this run reproduces or stands in for (`ResNet18`, `ResNet50`,
    /// `MobileNetV2`, `Xception`; empty: none). The report puts the run next to the paper's
    /// numbers for that network.
    pub paper_model: String,
}

/// `[model]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSection {
    /// One of [`KNOWN_ARCHS`].
    pub arch: String,
    /// Safetensors file; required. Relative to the working directory.
    pub weights: PathBuf,
}

/// `[data]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataSection {
    /// One of [`KNOWN_DATASETS`].
    pub dataset: String,
    /// The image folder (`imagefolder`; empty: `$MPQ_IMAGENET_DIR`) or the prepared file
    /// (`tensors`). Relative to the working directory. Not used by `embedded`.
    pub path: PathBuf,
    /// Dataset generator seed (`embedded`).
    pub seed: u64,
    /// Seed of the draw of calibration and search images from an image pool (`imagefolder`,
    /// `tensors`).
    pub subset_seed: u64,
    /// >= 1
    pub calib_images: usize,
    /// >= 1
    pub search_images: usize,
    /// One of [`KNOWN_SPLITS`] (`embedded`) or [`KNOWN_IMAGE_SPLITS`].
    pub calib_split: String,
    /// One of [`KNOWN_SPLITS`] (`embedded`) or [`KNOWN_IMAGE_SPLITS`].
    pub search_split: String,
    /// Shorter side after resizing (`imagefolder`, `tensors`).
    pub resize: usize,
    /// Side of the center crop, <= `resize`.
    pub crop: usize,
    /// One of [`KNOWN_INTERPOLATIONS`].
    pub interpolation: String,
    /// Per-channel normalization `(x - mean) / std` of values in [0, 1].
    pub mean: [f64; 3],
    /// Each > 0.
    pub std: [f64; 3],
    /// Leave out undecodable images (counted) instead of stopping (`imagefolder`).
    pub skip_corrupt: bool,
    /// Accept class folders without images; they keep their label index (`imagefolder`).
    pub allow_empty_classes: bool,
}

/// `[quant]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuantSection {
    /// The lower pair layers are moved to.
    #[serde(with = "pair_serde")]
    pub pair: BitPair,
    /// The pair every layer starts at; differs from `pair`.
    #[serde(with = "pair_serde")]
    pub high: BitPair,
}

/// `search.strategy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StrategyName {
    /// The paper's Algorithm 1.
    #[serde(rename = "greedy")]
    Greedy,
    /// Order by single-layer sensitivity (Wu et al. 2020, as the paper extends it).
    #[serde(rename = "one-shot")]
    OneShot,
    /// Minoux's accelerated greedy (stale marginal values as upper bounds).
    #[serde(rename = "lazy-greedy")]
    LazyGreedy,
    /// Greedy that screens candidates on a fraction of the images first.
    #[serde(rename = "screened-greedy")]
    ScreenedGreedy,
    /// The best set of each size, by trying every set (small N only).
    #[serde(rename = "exhaustive")]
    Exhaustive,
    /// A seeded random order: the floor any search must beat.
    #[serde(rename = "random")]
    Random,
}

/// `search.beta`: a fixed finite beta >= 0, or `"auto"` (paper sec. 4.1). In a manifest, a
/// number (integers accepted) or the string `"auto"`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BetaSetting {
    Fixed(f64),
    Auto,
}

/// `[search]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchSection {
    pub strategy: StrategyName,
    pub beta: BetaSetting,
    /// Stop after this many steps (0: run to the end, every searchable layer moved).
    pub max_steps: usize,
    /// The searchable layers (indices in execution order); the others stay at the high pair.
    /// Empty: every layer.
    pub layers: Vec<usize>,
    /// screened-greedy: the fraction of the search images every candidate is first measured on.
    pub screen_fraction: f64,
    /// screened-greedy: candidates within `screen_z` standard errors of the best go on to the
    /// full evaluation.
    pub screen_z: f64,
    /// exhaustive: refuse when more layers than this are searchable (2^N evaluations).
    pub max_layers: usize,
}

/// `runtime.device`: `"cpu"`, `"cuda"` (= `"cuda:0"`) or `"cuda:N"`. CUDA devices parse only in
/// a build with the runner's `cuda` feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceSpec {
    Cpu,
    Cuda(usize),
}

/// `[runtime]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeSection {
    pub device: DeviceSpec,
    /// Images per forward pass, >= 1.
    pub batch_size: usize,
    /// Worker threads; 0 = all cores.
    pub threads: usize,
    /// Where run directories are written. Relative to the working directory.
    pub results_dir: PathBuf,
    /// Reuse the computation shared by configurations that differ from the current set only
    /// from some layer on (bit-identical results; false: every evaluation is a full forward
    /// pass, the naive path).
    pub prefix_reuse: bool,
    /// Evaluate the candidates of a step in parallel (bit-identical results).
    pub parallel: bool,
    /// Memory for the prefix cache, in MiB; batches beyond it are recomputed.
    pub cache_mb: usize,
}

/// A whole manifest.
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
        let pre = mpq_data::Preprocess::default();
        DataSection {
            dataset: "embedded".into(),
            path: PathBuf::new(),
            seed: 0,
            subset_seed: 0,
            calib_images: 256,
            search_images: 512,
            calib_split: "calibration".into(),
            search_split: "search".into(),
            resize: pre.resize,
            crop: pre.crop,
            interpolation: pre.interpolation.name().into(),
            // mpq_data's IMAGENET_MEAN and IMAGENET_STD, as the decimals they are written in.
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
            skip_corrupt: false,
            allow_empty_classes: false,
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
            max_steps: 0,
            layers: vec![],
            screen_fraction: 0.25,
            screen_z: 2.0,
            max_layers: 20,
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
            prefix_reuse: true,
            parallel: true,
            cache_mb: 2048,
        }
    }
}

/// `BitPair` as its string, for `#[serde(with)]` (the quant crate has no serde).
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

impl StrategyName {
    pub fn as_str(self) -> &'static str {
        match self {
            StrategyName::Greedy => "greedy",
            StrategyName::OneShot => "one-shot",
            StrategyName::LazyGreedy => "lazy-greedy",
            StrategyName::ScreenedGreedy => "screened-greedy",
            StrategyName::Exhaustive => "exhaustive",
            StrategyName::Random => "random",
        }
    }
}

impl fmt::Display for StrategyName {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl BetaSetting {
    fn fixed<E: serde::de::Error>(b: f64) -> Result<BetaSetting, E> {
        if b.is_finite() && b >= 0.0 {
            // + 0.0 turns -0.0 into 0.0, so both resolve (and hash) alike.
            Ok(BetaSetting::Fixed(b + 0.0))
        } else {
            Err(E::custom(format!(
                "beta must be a finite number >= 0 or \"auto\", got {b}"
            )))
        }
    }
}

impl fmt::Display for BetaSetting {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            BetaSetting::Fixed(b) => write!(f, "{b}"),
            BetaSetting::Auto => f.write_str("auto"),
        }
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
                f.write_str("a finite number >= 0 or \"auto\"")
            }
            fn visit_f64<E: serde::de::Error>(self, b: f64) -> Result<BetaSetting, E> {
                BetaSetting::fixed(b)
            }
            fn visit_i64<E: serde::de::Error>(self, b: i64) -> Result<BetaSetting, E> {
                BetaSetting::fixed(b as f64)
            }
            fn visit_u64<E: serde::de::Error>(self, b: u64) -> Result<BetaSetting, E> {
                BetaSetting::fixed(b as f64)
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<BetaSetting, E> {
                if s == "auto" {
                    Ok(BetaSetting::Auto)
                } else {
                    Err(E::custom(format!(
                        "beta must be a finite number >= 0 or \"auto\", got {s:?}"
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

impl FromStr for DeviceSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("device must be \"cpu\", \"cuda\" or \"cuda:N\", got {s:?}");
        let d = match s {
            "cpu" => DeviceSpec::Cpu,
            "cuda" => DeviceSpec::Cuda(0),
            _ => DeviceSpec::Cuda(
                s.strip_prefix("cuda:")
                    .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(bad)?,
            ),
        };
        if matches!(d, DeviceSpec::Cuda(_)) && !cfg!(feature = "cuda") {
            return Err(format!(
                "device {s:?} needs CUDA, and this build has none: rebuild with `--features cuda` \
                 (e.g. `cargo build --release --features cuda`)"
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

/// A manifest with every layer applied and checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    pub manifest: Manifest,
    /// The manifest file, as given.
    pub path: PathBuf,
    /// The resolved manifest as TOML: every key, in schema order (recorded in the runs table).
    /// Itself a manifest that resolves to the same `manifest`.
    pub toml: String,
    /// Hex SHA-256 of `toml`.
    pub hash: String,
}

/// A bad manifest. Displays as one line: `<file>: <key>: <message>`, or `<file>: <message>`
/// without a key. `file` is where the bad value came from: a TOML file, `environment variable
/// MPQ_X__Y`, or `--set x.y`.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub struct ManifestError {
    pub file: PathBuf,
    /// The dotted key, e.g. `quant.pair`.
    pub key: Option<String>,
    pub message: String,
}

impl ManifestError {
    fn new(file: impl Into<PathBuf>, key: Option<&str>, message: impl Into<String>) -> Self {
        ManifestError {
            file: file.into(),
            key: key.map(str::to_string),
            message: message.into(),
        }
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let msg = one_line(&self.message);
        let file = one_line(&self.file.display().to_string());
        match &self.key {
            Some(k) => write!(f, "{file}: {}: {msg}", one_line(k)),
            None => write!(f, "{file}: {msg}"),
        }
    }
}

/// Folds a multi-line message (a TOML parse error with its source excerpt) into one line: the
/// excerpt lines (`1 | a = =`, `  |     ^`) are dropped, the rest joined with `: `.
fn one_line(s: &str) -> String {
    if !s.contains(['\n', '\r']) {
        return s.to_string();
    }
    let excerpt = |l: &str| {
        let t = l.trim_start_matches(|c: char| c.is_ascii_digit() || c == ' ');
        t.starts_with('|')
    };
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !excerpt(l))
        .collect::<Vec<_>>()
        .join(": ")
}

/// One `key = value` from the environment or the command line, named after its origin.
struct KeyValue {
    origin: String,
    key: String,
    value: toml::Value,
}

impl KeyValue {
    /// `raw` is a TOML value if it parses as one, else a string.
    fn new(origin: String, key: String, raw: &str) -> KeyValue {
        let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .filter(|t| t.len() == 1)
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.to_string()));
        KeyValue { origin, key, value }
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

/// A dotted key made of non-empty `[a-z0-9_-]` parts.
pub(crate) fn valid_key(key: &str) -> bool {
    key.split('.').all(|p| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    })
}

/// `path` made absolute and with `.` and `..` folded lexically.
fn normalized(path: &Path) -> Option<PathBuf> {
    let abs = std::path::absolute(path).ok()?;
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    Some(out)
}

/// The defaults layer of a manifest: the nearest `defaults.toml` in its directory or an
/// ancestor, other than the manifest itself. Under the working directory it is returned
/// relative to it (as error messages show it), else absolute.
pub fn defaults_for(manifest: &Path) -> Option<PathBuf> {
    let abs = normalized(manifest)?;
    let found = abs
        .ancestors()
        .skip(1)
        .map(|d| d.join(DEFAULTS_FILE))
        .find(|p| p.is_file() && p != &abs)?;
    let cwd = std::env::current_dir().ok().and_then(|c| normalized(&c));
    match cwd.as_deref().and_then(|c| found.strip_prefix(c).ok()) {
        Some(rel) if manifest.is_relative() => Some(rel.to_path_buf()),
        _ => Some(found),
    }
}

/// Resolve a manifest with the process environment (its `MPQ_` variables).
pub fn load(path: &Path, sets: &[String]) -> Result<Resolved, ManifestError> {
    let env: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let k = k.into_string().ok()?;
            k.starts_with("MPQ_")
                .then(|| (k, v.to_string_lossy().into_owned()))
        })
        .collect();
    load_with_env(path, sets, &env)
}

/// Where a layer's values came from, and its priority (built-in defaults are 0).
struct Layers {
    manifest: PathBuf,
    /// Origins of layers 1.., in priority order.
    names: Vec<PathBuf>,
}

impl Layers {
    /// The origin a metadata names: its file, its name for the environment and `--set`, the
    /// manifest for built-in defaults (and anything else).
    fn origin(&self, meta: Option<&Metadata>) -> PathBuf {
        match meta {
            Some(Metadata {
                source: Some(Source::File(p)),
                ..
            }) => p.clone(),
            Some(Metadata {
                source: None, name, ..
            }) => PathBuf::from(name.to_string()),
            _ => self.manifest.clone(),
        }
    }

    /// The origin and priority of the value at `key`.
    fn of_key(&self, fig: &Figment, key: &str) -> (usize, PathBuf) {
        let meta = fig.find_metadata(key);
        let origin = self.origin(meta);
        let rank = match meta.map(|m| &m.source) {
            Some(Some(Source::Code(_))) | None => 0,
            _ => self
                .names
                .iter()
                .rposition(|n| n == &origin)
                .map_or(0, |i| i + 1),
        };
        (rank, origin)
    }
}

/// Resolve a manifest with the given environment variables (only `MPQ_<SECTION>__<KEY>` ones are
/// used; others are ignored).
pub fn load_with_env(
    path: &Path,
    sets: &[String],
    env: &[(String, String)],
) -> Result<Resolved, ManifestError> {
    if !path.is_file() {
        return Err(ManifestError::new(path, None, "manifest not found"));
    }
    let mut layers = Layers {
        manifest: path.to_path_buf(),
        names: vec![],
    };

    let mut base = Manifest::default();
    base.experiment.name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut fig = Figment::from(Serialized::defaults(base));
    if let Some(d) = defaults_for(path) {
        layers.names.push(d.clone());
        fig = fig.merge(Toml::file_exact(d));
    }
    layers.names.push(path.to_path_buf());
    fig = fig.merge(Toml::file_exact(path));

    let mut env: Vec<&(String, String)> = env
        .iter()
        .filter(|(k, _)| k.starts_with("MPQ_") && k.contains("__"))
        .collect();
    env.sort();
    for (k, v) in env {
        let origin = format!("environment variable {k}");
        let key = k["MPQ_".len()..].to_lowercase().replace("__", ".");
        if !valid_key(&key) {
            return Err(ManifestError::new(
                origin,
                None,
                "not a manifest key: expected MPQ_<SECTION>__<KEY>, e.g. MPQ_SEARCH__BETA",
            ));
        }
        layers.names.push(PathBuf::from(&origin));
        fig = fig.merge(KeyValue::new(origin, key, v));
    }
    for s in sets {
        let Some((k, v)) = s.split_once('=').filter(|(k, _)| valid_key(k.trim())) else {
            return Err(ManifestError::new(
                format!("--set {}", s.trim()),
                None,
                "expected <section>.<key>=<value>, e.g. search.beta=0.02",
            ));
        };
        let k = k.trim();
        let origin = format!("--set {k}");
        layers.names.push(PathBuf::from(&origin));
        fig = fig.merge(KeyValue::new(origin, k.to_string(), v.trim()));
    }

    let manifest: Manifest = fig.extract().map_err(|e| {
        let e = e.into_iter().next().expect("a figment error has one error");
        let file = layers.origin(e.metadata.as_ref());
        let mut key = e.path.join(".");
        let message = match &e.kind {
            Kind::UnknownField(f, expected) => {
                if e.path.last() != Some(f) {
                    key = if key.is_empty() {
                        f.clone()
                    } else {
                        format!("{key}.{f}")
                    };
                }
                format!("unknown key (expected one of: {})", expected.join(", "))
            }
            Kind::UnknownVariant(v, expected) => {
                format!(
                    "unknown value {v:?} (expected one of: {})",
                    expected.join(", ")
                )
            }
            k => k.to_string(),
        };
        ManifestError::new(file, (!key.is_empty()).then_some(key.as_str()), message)
    })?;

    check(&manifest, &fig, &layers)?;

    let toml = toml::to_string(&manifest)
        .map_err(|e| ManifestError::new(path, None, format!("cannot serialize: {e}")))?;
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

/// The checks serde cannot express, each naming where the offending key was set.
fn check(m: &Manifest, fig: &Figment, layers: &Layers) -> Result<(), ManifestError> {
    let fail = |key: &str, message: String| {
        Err(ManifestError::new(
            layers.of_key(fig, key).1,
            Some(key),
            message,
        ))
    };
    let one_of = |what: &str, v: &str, known: &[&str]| {
        format!("unknown {what} {v:?} (known: {})", known.join(", "))
    };
    if m.experiment.name.trim().is_empty() {
        return fail("experiment.name", "must not be empty".into());
    }
    if !KNOWN_ARCHS.contains(&m.model.arch.as_str()) {
        return fail(
            "model.arch",
            one_of("architecture", &m.model.arch, KNOWN_ARCHS),
        );
    }
    if m.model.weights.as_os_str().is_empty() {
        return fail(
            "model.weights",
            "required: the safetensors file of the model's weights".into(),
        );
    }
    if !KNOWN_DATASETS.contains(&m.data.dataset.as_str()) {
        return fail(
            "data.dataset",
            one_of("dataset", &m.data.dataset, KNOWN_DATASETS),
        );
    }
    let splits = if m.data.dataset == "embedded" {
        KNOWN_SPLITS
    } else {
        KNOWN_IMAGE_SPLITS
    };
    for (key, v) in [
        ("data.calib_split", &m.data.calib_split),
        ("data.search_split", &m.data.search_split),
    ] {
        if !splits.contains(&v.as_str()) {
            return fail(
                key,
                format!(
                    "unknown split {v:?} of dataset {:?} (known: {})",
                    m.data.dataset,
                    splits.join(", ")
                ),
            );
        }
    }
    if m.data.crop < 1 {
        return fail("data.crop", format!("must be >= 1, got {}", m.data.crop));
    }
    if m.data.crop > m.data.resize {
        return fail(
            "data.crop",
            format!(
                "the crop ({}) must not exceed data.resize ({})",
                m.data.crop, m.data.resize
            ),
        );
    }
    if !KNOWN_INTERPOLATIONS.contains(&m.data.interpolation.as_str()) {
        return fail(
            "data.interpolation",
            one_of("interpolation", &m.data.interpolation, KNOWN_INTERPOLATIONS),
        );
    }
    if m.data.mean.iter().any(|v| !v.is_finite()) {
        return fail(
            "data.mean",
            format!("must be finite, got {:?}", m.data.mean),
        );
    }
    if m.data.std.iter().any(|v| !v.is_finite() || *v <= 0.0) {
        return fail(
            "data.std",
            format!("must be finite and > 0, got {:?}", m.data.std),
        );
    }
    for (key, v) in [
        ("data.calib_images", m.data.calib_images),
        ("data.search_images", m.data.search_images),
        ("runtime.batch_size", m.runtime.batch_size),
    ] {
        if v < 1 {
            return fail(key, format!("must be >= 1, got {v}"));
        }
    }
    if !(m.search.screen_fraction > 0.0 && m.search.screen_fraction <= 1.0) {
        return fail(
            "search.screen_fraction",
            format!("must be in (0, 1], got {}", m.search.screen_fraction),
        );
    }
    if !(m.search.screen_z.is_finite() && m.search.screen_z >= 0.0) {
        return fail(
            "search.screen_z",
            format!("must be a finite number >= 0, got {}", m.search.screen_z),
        );
    }
    let mut seen = std::collections::BTreeSet::new();
    for &i in &m.search.layers {
        if !seen.insert(i) {
            return fail("search.layers", format!("layer {i} is listed twice"));
        }
    }
    if let Some(arch) = mpq_models::Arch::by_name(&m.model.arch) {
        let n = arch.layers.len();
        if let Some(&i) = m.search.layers.iter().find(|&&i| i >= n) {
            return fail(
                "search.layers",
                format!(
                    "layer {i} does not exist: {} has layers 0..{}",
                    m.model.arch,
                    n - 1
                ),
            );
        }
        let searchable = if m.search.layers.is_empty() {
            n
        } else {
            m.search.layers.len()
        };
        if m.search.strategy == StrategyName::Exhaustive && searchable > m.search.max_layers {
            return fail(
                "search.strategy",
                format!(
                    "exhaustive search over {searchable} layers needs 2^{searchable} evaluations; \
                     it is limited to search.max_layers = {} (restrict search.layers)",
                    m.search.max_layers
                ),
            );
        }
    }
    if m.quant.pair == m.quant.high {
        // Blame whichever of the two was set by the later layer.
        let (p, _) = layers.of_key(fig, "quant.pair");
        let (h, _) = layers.of_key(fig, "quant.high");
        let key = if h > p { "quant.high" } else { "quant.pair" };
        return fail(
            key,
            format!(
                "quant.pair and quant.high are both {}; the lower pair must differ from the high one",
                m.quant.pair
            ),
        );
    }
    Ok(())
}

/// The manifests at `path`: a file is itself; a directory gives every `*.toml` below it,
/// recursively and sorted, except files named `defaults.toml`, anything under a directory named
/// `baselines`, and hidden (`.`) directories. Symbolic links to directories are not followed.
pub fn find_manifests(path: &Path) -> Vec<PathBuf> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                if name != "baselines" && !name.starts_with('.') {
                    walk(&p, out);
                }
            } else if name.ends_with(".toml") && name != DEFAULTS_FILE && p.is_file() {
                out.push(p);
            }
        }
    }
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut out = vec![];
    walk(path, &mut out);
    out.sort();
    out
}
