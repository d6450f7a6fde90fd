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
use mpq_cluster::Resources;
use mpq_models::ptq::{
    AciqSettings, AdaRoundSettings, LapqSettings, MethodName, MmseSettings, PtqConfig,
};
use mpq_quant::BiasCorrection;
use mpq_vocab::{
    ArchName, BetaSetting, BitPair, DataSource, Dataset, DeviceSpec, Interpolation, PaperModel,
    PoolDraw, Split, StrategyName, Transform,
};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Component, Path, PathBuf};

/// The file name of the defaults layer.
pub const DEFAULTS_FILE: &str = "defaults.toml";

/// `[experiment]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExperimentSection {
    /// Names the run directory and every result row; defaults to the manifest's file stem.
    pub name: String,
    /// Seeds everything random in a run besides the data (the `random` strategy's order).
    pub seed: u64,
    /// The experiment is this many runs (at least 1), repeat `r` (0-based) with `experiment.seed`,
    /// `data.seed` and `data.subset_seed` each + r ([`Resolved::repeat`]).
    pub repeats: u32,
    pub description: String,
    /// The paper's network this run reproduces or stands in for (absent: none). The report
    /// puts the run next to the paper's numbers for that network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paper_model: Option<PaperModel>,
}

impl Default for ExperimentSection {
    fn default() -> Self {
        ExperimentSection {
            name: String::new(),
            seed: 0,
            repeats: 1,
            description: String::new(),
            paper_model: None,
        }
    }
}

/// `[model]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSection {
    pub arch: ArchName,
    /// Safetensors file; required. Relative to the working directory.
    pub weights: PathBuf,
}

/// `[data]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataSection {
    pub dataset: Dataset,
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
    /// One of the dataset's splits ([`Dataset::splits`]).
    pub calib_split: Split,
    /// One of the dataset's splits.
    pub search_split: Split,
    /// Held-out images every step's configuration is also scored on (0: none).
    pub test_images: usize,
    /// Where the held-out images come from: a split (part) neither calibration nor search
    /// uses.
    pub test_split: Split,
    /// Shorter side after resizing (`imagefolder`, `tensors`).
    pub resize: usize,
    /// Side of the center crop, <= `resize`.
    pub crop: usize,
    pub interpolation: Interpolation,
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
    pub pair: BitPair,
    /// The pair every layer starts at; differs from `pair`.
    pub high: BitPair,
    /// The post-training method that quantizes each layer at each pair (`rtn`: the spec's
    /// quantizer); the search then moves layers between the method's layers.
    pub method: MethodName,
    /// Bias correction of the quantized weights, with any method; unset: the method's own
    /// default (`mean` for ACIQ and LAPQ, `off` otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bias_correction: Option<BiasCorrection>,
    /// The method leaves the first and the last layer at the spec's quantizer (the published
    /// protocols keep them at 8 bits).
    pub first_last_high: bool,
    pub mmse: MmseSettings,
    pub aciq: AciqSettings,
    pub adaround: AdaRoundSettings,
    pub lapq: LapqSettings,
}

impl QuantSection {
    /// The method and its settings, as `mpq_models::ptq` takes them.
    pub fn ptq(&self) -> PtqConfig {
        PtqConfig {
            method: self.method,
            bias_correction: self.bias_correction,
            first_last_high: self.first_last_high,
            mmse: self.mmse.clone(),
            aciq: self.aciq.clone(),
            adaround: self.adaround.clone(),
            lapq: self.lapq.clone(),
        }
    }
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
    /// What each task asks a Slurm cluster for (`--executor slurm`); cannot change a result.
    pub resources: Resources,
}

impl Default for ModelSection {
    fn default() -> Self {
        ModelSection {
            arch: ArchName::ResnetTiny,
            weights: PathBuf::new(),
        }
    }
}

impl Default for DataSection {
    fn default() -> Self {
        let pre = mpq_data::Preprocess::default();
        DataSection {
            dataset: Dataset::Embedded,
            path: PathBuf::new(),
            seed: 0,
            subset_seed: 0,
            calib_images: 256,
            search_images: 2048,
            calib_split: Split::Calibration,
            search_split: Split::Search,
            test_images: 5000,
            test_split: Split::Test,
            resize: pre.resize,
            crop: pre.crop,
            interpolation: pre.interpolation,
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
        let ptq = PtqConfig::default();
        QuantSection {
            pair: BitPair::W4A8,
            high: BitPair::W8A8,
            method: ptq.method,
            bias_correction: ptq.bias_correction,
            first_last_high: ptq.first_last_high,
            mmse: ptq.mmse,
            aciq: ptq.aciq,
            adaround: ptq.adaround,
            lapq: ptq.lapq,
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
    /// The `[data]` section as the source it names, with that kind's fields.
    pub data: DataSource,
    /// Which of its experiment's repeats this run is, when `experiment.repeats` > 1 (see
    /// [`Resolved::repeat`]); `None`: the manifest's single run.
    pub repeat: Option<u32>,
}

impl Resolved {
    /// Repeat `r` (0-based) of a manifest with `experiment.repeats` = k: the same manifest with
    /// `experiment.seed`, `data.seed` and `data.subset_seed` each + r (for the embedded dataset
    /// another generated dataset, for an image pool other calibration and search images) and
    /// `experiment.repeats` = 1, so that its resolved TOML is a manifest for exactly this run.
    /// With k = 1, `r` must be 0 and the manifest is returned as it is.
    pub fn repeat(&self, r: u32) -> Result<Resolved, ManifestError> {
        let m = &self.manifest;
        let k = m.experiment.repeats;
        let fail = |key: &str, message: String| ManifestError::new(&self.path, Some(key), message);
        if r >= k {
            return Err(fail(
                "experiment.repeats",
                format!(
                    "there is no repeat {r}: the experiment has {k} (0..{})",
                    k - 1
                ),
            ));
        }
        if k == 1 {
            return Ok(self.clone());
        }
        let mut m = m.clone();
        for (key, seed) in [
            ("experiment.seed", &mut m.experiment.seed),
            ("data.seed", &mut m.data.seed),
            ("data.subset_seed", &mut m.data.subset_seed),
        ] {
            *seed = seed
                .checked_add(u64::from(r))
                .ok_or_else(|| fail(key, format!("{seed} + repeat {r} does not fit in 64 bits")))?;
        }
        m.experiment.repeats = 1;
        let mut out = resolved(m, &self.path)?;
        out.repeat = Some(r);
        Ok(out)
    }

    /// Every run of the manifest: its repeats, or itself.
    pub fn repeats(&self) -> Result<Vec<Resolved>, ManifestError> {
        (0..self.manifest.experiment.repeats)
            .map(|r| self.repeat(r))
            .collect()
    }
}

/// A checked manifest with its TOML, hash and data source.
fn resolved(manifest: Manifest, path: &Path) -> Result<Resolved, ManifestError> {
    let toml = toml::to_string(&manifest)
        .map_err(|e| ManifestError::new(path, None, format!("cannot serialize: {e}")))?;
    let hash = mpq_io::sha256_hex(toml.as_bytes());
    Ok(Resolved {
        data: data_source(&manifest.data),
        manifest,
        path: path.to_path_buf(),
        toml,
        hash,
        repeat: None,
    })
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
    resolved(manifest, path)
}

/// Whether `name` is one plain path component (it names the run directory
/// `results/<name>/`): not empty, no separator, not `.` or `..`, not hidden, no control
/// characters. `Err` says what is wrong.
pub fn check_dir_name(name: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "{name:?} {why}: it names the run directory results/<name>/, so it must be one plain \
             path component (letters, digits, '-', '_', '.', ...)"
        ))
    };
    if name.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if name.contains(['/', '\\']) {
        return bad("contains a path separator");
    }
    if name.starts_with('.') {
        return bad("starts with '.'");
    }
    if name.chars().any(char::is_control) {
        return bad("contains a control character");
    }
    match Path::new(name).components().collect::<Vec<_>>()[..] {
        [Component::Normal(_)] => Ok(()),
        _ => bad("is not a plain file name"),
    }
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
    if let Err(e) = check_dir_name(&m.experiment.name) {
        return fail("experiment.name", e);
    }
    let k = m.experiment.repeats;
    if k < 1 {
        return fail("experiment.repeats", format!("must be >= 1, got {k}"));
    }
    for (key, seed) in [
        ("experiment.seed", m.experiment.seed),
        ("data.seed", m.data.seed),
        ("data.subset_seed", m.data.subset_seed),
    ] {
        if seed.checked_add(u64::from(k - 1)).is_none() {
            return fail(
                key,
                format!("{seed} + {} repeats does not fit in 64 bits", k - 1),
            );
        }
    }
    if let Err(e) = m.resources.check() {
        return fail(&format!("resources.{}", e.key), e.message);
    }
    if m.model.weights.as_os_str().is_empty() {
        return fail(
            "model.weights",
            "required: the safetensors file of the model's weights".into(),
        );
    }
    let splits = m.data.dataset.splits();
    for (key, v) in [
        ("data.calib_split", m.data.calib_split),
        ("data.search_split", m.data.search_split),
        ("data.test_split", m.data.test_split),
    ] {
        if !splits.contains(&v) {
            let known: Vec<&str> = splits.iter().map(|s| s.as_str()).collect();
            return fail(
                key,
                format!(
                    "unknown split \"{v}\" of dataset \"{}\" (known: {})",
                    m.data.dataset,
                    known.join(", ")
                ),
            );
        }
    }
    if let Err(e) = check_held_out(&m.data) {
        return fail("data.test_split", e);
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
    let n = mpq_models::Arch::new(m.model.arch).layers.len();
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
    if m.search.max_steps > 0 && !m.search.strategy.nested() {
        return fail(
            "search.max_steps",
            format!(
                "{} finds every step at once: a step limit does not apply (leave it 0)",
                m.search.strategy
            ),
        );
    }
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
    if let Err(e) = m.quant.ptq().validate() {
        // The settings name their key: `quant.adaround.iterations: must be >= 1`.
        let (key, msg) = e.split_once(": ").unwrap_or(("quant.method", e.as_str()));
        return fail(key, msg.to_string());
    }
    if let (DeviceSpec::Cuda(_), false) = (m.runtime.device, cfg!(feature = "cuda")) {
        return fail(
            "runtime.device",
            format!(
                "device \"{}\" needs CUDA, and this build has none: rebuild with `--features cuda` \
                 (e.g. `cargo build --release --features cuda`)",
                m.runtime.device
            ),
        );
    }
    Ok(())
}

/// Held-out images must be ones neither calibration nor search saw: `data.test_split` differs
/// from both other splits, and none of the three is a pool's `all` (which overlaps every
/// part). Nothing to check when no held-out image is asked for (`data.test_images = 0`).
fn check_held_out(d: &DataSection) -> Result<(), String> {
    if d.test_images == 0 {
        return Ok(());
    }
    let zero = "(or set data.test_images = 0 to score no held-out images)";
    for (key, v) in [
        ("data.calib_split", d.calib_split),
        ("data.search_split", d.search_split),
    ] {
        if v == d.test_split {
            return Err(format!(
                "\"{v}\" is also {key}: held-out images must be ones neither calibration nor \
                 search saw {zero}"
            ));
        }
    }
    if let Some((key, _)) = [
        ("data.calib_split", d.calib_split),
        ("data.search_split", d.search_split),
        ("data.test_split", d.test_split),
    ]
    .into_iter()
    .find(|(_, v)| *v == Split::All)
    {
        return Err(format!(
            "{key} is \"all\", which overlaps every part of the pool: held-out images must be \
             ones neither calibration nor search saw {zero}"
        ));
    }
    Ok(())
}

/// The source a checked `[data]` section names (its splits are valid for its dataset).
fn data_source(d: &DataSection) -> DataSource {
    let transform = Transform {
        resize: d.resize,
        crop: d.crop,
        interpolation: d.interpolation,
        mean: d.mean,
        std: d.std,
    };
    let draw = || PoolDraw {
        subset_seed: d.subset_seed,
        calib: d.calib_split.pool().expect("checked split"),
        search: d.search_split.pool().expect("checked split"),
        test: d.test_split.pool().expect("checked split"),
    };
    let path = (!d.path.as_os_str().is_empty()).then(|| d.path.clone());
    match d.dataset {
        Dataset::Embedded => DataSource::Embedded {
            seed: d.seed,
            calib: d.calib_split.synth().expect("checked split"),
            search: d.search_split.synth().expect("checked split"),
            test: d.test_split.synth().expect("checked split"),
        },
        Dataset::ImageFolder => DataSource::ImageFolder {
            folder: path,
            draw: draw(),
            transform,
            skip_corrupt: d.skip_corrupt,
            allow_empty_classes: d.allow_empty_classes,
        },
        Dataset::Tensors => DataSource::Tensors {
            file: d.path.clone(),
            draw: draw(),
            transform,
        },
    }
}
