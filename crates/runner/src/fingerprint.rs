//! Whether a stored run is still the result of its manifest, as a build system decides whether
//! a target is up to date: a run is keyed by everything its numbers depend on, and reused
//! only when the key matches.
//!
//! The key's parts, each recorded (in the run directory's `input.key`) so that `mpq reproduce
//! --dry-run` can say what changed:
//! - `code <unit>`: the hash of each unit of the code that computes results (see
//!   `codeversion`: the quantizer, data, models, searches, vocabulary, the runner's core, the
//!   dependencies' versions), fixed when `mpq` is built;
//! - `manifest <key>`: every key of the resolved manifest with its value, without the keys that
//!   cannot change a result (`runtime.results_dir`, `runtime.threads`, the speed settings
//!   `runtime.prefix_reuse`, `runtime.parallel`, `runtime.cache_mb`, `experiment.description`,
//!   `experiment.repeats` (a run is one repeat, which its seeds say) and `[resources]`);
//! - `file <path>`: each file or directory the run reads (weights, datasets). Files up to
//!   [`CONTENT_HASH_LIMIT`] are hashed by content; larger files, and every file of a directory,
//!   by size and modification time (hashing an ImageNet copy on every `reproduce` would take
//!   minutes), as make does.
use crate::codeversion;
use crate::manifest::{Manifest, Resolved};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::UNIX_EPOCH;
use walkdir::WalkDir;

/// The code units' hashes this binary was built with (`build.rs`).
pub static CODE_UNITS: LazyLock<Vec<(String, String)>> =
    LazyLock::new(|| codeversion::decode(env!("MPQ_CODE_UNITS")));

/// The code version stored with every run: one hash of all units' hashes.
pub static CODE_VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut h = mpq_io::Hasher::new();
    h.update(codeversion::encode(&CODE_UNITS));
    h.finish_hex(8)
});

/// Files up to this size are fingerprinted by content.
pub const CONTENT_HASH_LIMIT: u64 = 256 << 20;

const CODE: &str = "code ";
const MANIFEST: &str = "manifest ";
const FILE: &str = "file ";

/// A run's input key and the parts it is made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputKey {
    /// Hex SHA-256 of the parts.
    pub key: String,
    /// `(name, value)` in a fixed order: `code <unit>`..., `manifest <key>`... (sorted),
    /// `file <path>`... (sorted).
    pub parts: Vec<(String, String)>,
}

/// The manifest as far as results are concerned: the resolved manifest with the keys that do
/// not change a result reset to their defaults.
pub fn result_manifest(m: &Manifest) -> Manifest {
    let mut m = m.clone();
    let d = crate::manifest::RuntimeSection::default();
    m.runtime.results_dir = d.results_dir;
    m.runtime.threads = d.threads;
    m.runtime.prefix_reuse = d.prefix_reuse;
    m.runtime.parallel = d.parallel;
    m.runtime.cache_mb = d.cache_mb;
    m.experiment.description.clear();
    // A run is one repeat: its seeds carry the repeat (`Resolved::repeat`).
    m.experiment.repeats = crate::manifest::ExperimentSection::default().repeats;
    m.resources = mpq_cluster::Resources::default();
    m
}

/// Every leaf of a TOML table as `(dotted key, value as TOML)`, in the table's order.
pub fn flatten(prefix: &str, t: &toml::Table, out: &mut Vec<(String, String)>) {
    for (k, v) in t {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(t) => flatten(&key, t, out),
            v => out.push((key, v.to_string())),
        }
    }
}

/// The manifest keys that can change a result, with their values.
pub fn manifest_parts(m: &Manifest) -> Result<Vec<(String, String)>> {
    let table = toml::Table::try_from(result_manifest(m)).context("serializing the manifest")?;
    let mut out = vec![];
    flatten("", &table, &mut out);
    out.sort();
    Ok(out)
}

fn mtime_ns(meta: &std::fs::Metadata) -> u128 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos())
}

/// A fingerprint of a file or directory (see the module documentation). Errors name the path.
pub fn fingerprint(path: &Path) -> Result<String> {
    let meta = std::fs::metadata(path).with_context(|| format!("{}: not found", path.display()))?;
    if meta.is_file() {
        if meta.len() <= CONTENT_HASH_LIMIT {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            return Ok(format!("sha256:{}", mpq_io::sha256_hex(&bytes)));
        }
        return Ok(format!("stat:{}:{}", meta.len(), mtime_ns(&meta)));
    }
    let mut entries: Vec<(PathBuf, u64, u128)> = vec![];
    for e in WalkDir::new(path).follow_links(true) {
        let e = e.with_context(|| format!("walking {}", path.display()))?;
        if e.file_type().is_file() {
            let m = e
                .metadata()
                .with_context(|| format!("{}: cannot read metadata", e.path().display()))?;
            let rel = e
                .path()
                .strip_prefix(path)
                .unwrap_or(e.path())
                .to_path_buf();
            entries.push((rel, m.len(), mtime_ns(&m)));
        }
    }
    entries.sort();
    let mut h = mpq_io::Hasher::new();
    for (rel, len, t) in &entries {
        h.update(format!("{}\t{len}\t{t}\n", rel.display()));
    }
    Ok(format!("dir:{}:{}", entries.len(), h.finish_hex(32)))
}

/// The input key of a resolved manifest that reads `files`, with this binary's code units.
pub fn input_key(resolved: &Resolved, files: &[PathBuf]) -> Result<InputKey> {
    input_key_with(&CODE_UNITS, resolved, files)
}

/// The input key with the given code units.
pub fn input_key_with(
    units: &[(String, String)],
    resolved: &Resolved,
    files: &[PathBuf],
) -> Result<InputKey> {
    let mut parts: Vec<(String, String)> = units
        .iter()
        .map(|(u, h)| (format!("{CODE}{u}"), h.clone()))
        .collect();
    for (k, v) in manifest_parts(&resolved.manifest)? {
        parts.push((format!("{MANIFEST}{k}"), v));
    }
    let mut files: Vec<&PathBuf> = files.iter().collect();
    files.sort();
    files.dedup();
    for f in files {
        parts.push((format!("{FILE}{}", f.display()), fingerprint(f)?));
    }
    Ok(InputKey::from_parts(parts))
}

/// What differs between two input keys, by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Manifest keys with their old and new values (`None`: absent on that side).
    pub manifest: Vec<(String, Option<String>, Option<String>)>,
    /// Code units whose hash differs.
    pub code: Vec<String>,
    /// Input files whose fingerprint differs (or that appeared or disappeared).
    pub files: Vec<String>,
    /// The old key was written by an mpq whose key had no such parts (one hash for all the code
    /// and one for the manifest): nothing finer can be said.
    pub older_format: bool,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self == &Changes::default()
    }
}

impl std::fmt::Display for Changes {
    /// `manifest search.beta: 0.0 -> 0.02, quant.pair: "W4A8" -> "W4A4"; code: quant, models;
    /// files: w.safetensors`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = vec![];
        if self.older_format {
            parts.push("stored by an older mpq (its key does not say what changed)".to_string());
        }
        if !self.manifest.is_empty() {
            let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".into());
            let keys: Vec<String> = self
                .manifest
                .iter()
                .map(|(k, a, b)| format!("{k}: {} -> {}", show(a), show(b)))
                .collect();
            parts.push(format!("manifest {}", keys.join(", ")));
        }
        if !self.code.is_empty() {
            parts.push(format!("code: {}", self.code.join(", ")));
        }
        if !self.files.is_empty() {
            parts.push(format!("files: {}", self.files.join(", ")));
        }
        f.write_str(&parts.join("; "))
    }
}

impl InputKey {
    /// A key from its parts (the key is their hash).
    pub fn from_parts(parts: Vec<(String, String)>) -> InputKey {
        let text: String = parts.iter().map(|(k, v)| format!("{k}\t{v}\n")).collect();
        InputKey {
            key: mpq_io::sha256_hex(text.as_bytes()),
            parts,
        }
    }

    /// The key file's text: `key <hex>`, then one `<name>\t<value>` line per part.
    pub fn to_text(&self) -> String {
        let mut s = format!("key\t{}\n", self.key);
        for (k, v) in &self.parts {
            s.push_str(&format!("{k}\t{v}\n"));
        }
        s
    }

    /// Parses [`InputKey::to_text`]; `None` if malformed.
    pub fn from_text(text: &str) -> Option<InputKey> {
        let mut lines = text.lines();
        let key = lines.next()?.strip_prefix("key\t")?.to_string();
        let parts = lines
            .map(|l| {
                l.split_once('\t')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(InputKey { key, parts })
    }

    fn value(&self, name: &str) -> Option<&String> {
        self.parts.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// Whether two keys have the same seeds (`experiment.seed`, `data.seed`,
    /// `data.subset_seed`): the same repeat of an experiment.
    pub fn same_seeds(&self, other: &InputKey) -> bool {
        ["experiment.seed", "data.seed", "data.subset_seed"]
            .iter()
            .all(|k| {
                let name = format!("{MANIFEST}{k}");
                self.value(&name) == other.value(&name)
            })
    }

    /// What differs from an older key, part by part.
    pub fn changes_since(&self, old: &InputKey) -> Changes {
        let mut c = Changes {
            older_format: old
                .parts
                .iter()
                .any(|(k, _)| k == "code" || k == "manifest"),
            ..Changes::default()
        };
        let mut names: Vec<&String> = self.parts.iter().map(|(k, _)| k).collect();
        for (k, _) in &old.parts {
            if !names.contains(&k) {
                names.push(k);
            }
        }
        for name in names {
            let (new, was) = (self.value(name), old.value(name));
            if new == was {
                continue;
            }
            if let Some(k) = name.strip_prefix(MANIFEST) {
                if !c.older_format {
                    c.manifest.push((k.to_string(), was.cloned(), new.cloned()));
                }
            } else if let Some(u) = name.strip_prefix(CODE) {
                if !c.older_format {
                    c.code.push(u.to_string());
                }
            } else if let Some(f) = name.strip_prefix(FILE) {
                c.files.push(f.to_string());
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(parts: &[(&str, &str)]) -> InputKey {
        InputKey::from_parts(
            parts
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        )
    }

    #[test]
    fn key_text_round_trips_and_explains_changes() {
        let a = key(&[
            ("code quant", "q1"),
            ("code models", "m1"),
            ("manifest search.beta", "0.0"),
            ("file w", "f"),
        ]);
        assert_eq!(InputKey::from_text(&a.to_text()), Some(a.clone()));
        assert_eq!(InputKey::from_text("garbage"), None);
        let b = key(&[
            ("code quant", "q2"),
            ("code models", "m1"),
            ("manifest search.beta", "0.02"),
            ("manifest search.max_steps", "3"),
            ("file w", "f"),
            ("file d", "x"),
        ]);
        let c = b.changes_since(&a);
        assert_eq!(c.code, ["quant"]);
        assert_eq!(c.files, ["d"]);
        assert_eq!(
            c.to_string(),
            "manifest search.beta: 0.0 -> 0.02, search.max_steps: (none) -> 3; code: quant; files: d"
        );
        assert!(a.changes_since(&a).is_empty());
        let old = key(&[("code", "c"), ("manifest", "m"), ("file w", "g")]);
        let c = a.changes_since(&old);
        assert!(c.older_format && c.code.is_empty() && c.manifest.is_empty());
        assert_eq!(c.files, ["w"]);
    }

    #[test]
    fn repeats_are_told_apart_by_their_seeds() {
        let k = |seed: &str, beta: &str| {
            key(&[
                ("manifest data.seed", seed),
                ("manifest data.subset_seed", seed),
                ("manifest experiment.seed", seed),
                ("manifest search.beta", beta),
            ])
        };
        assert!(k("0", "0.0").same_seeds(&k("0", "0.02")));
        assert!(!k("0", "0.0").same_seeds(&k("1", "0.0")));
    }

    #[test]
    fn fingerprints_follow_content_and_directory_listings() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("w.bin");
        std::fs::write(&f, b"abc").unwrap();
        let a = fingerprint(&f).unwrap();
        assert_eq!(a, fingerprint(&f).unwrap());
        std::fs::write(&f, b"abd").unwrap();
        assert_ne!(a, fingerprint(&f).unwrap());
        let d = tmp.path().join("d");
        std::fs::create_dir_all(d.join("n01")).unwrap();
        std::fs::write(d.join("n01/a.jpg"), b"1").unwrap();
        let da = fingerprint(&d).unwrap();
        std::fs::write(d.join("n01/b.jpg"), b"2").unwrap();
        assert_ne!(da, fingerprint(&d).unwrap());
        let e = fingerprint(&tmp.path().join("missing")).unwrap_err();
        assert!(format!("{e:#}").contains("missing: not found"));
    }
}
