//! Whether a stored run is still the result of its manifest, as a build system decides whether
//! a target is up to date: a run is keyed by everything its numbers depend on, and reused
//! only when the key matches.
//!
//! The key's parts, each recorded so that `mpq reproduce --dry-run` can say why a run is stale:
//! - `code`: the hash of the source that computes results (see `build.rs`);
//! - `manifest`: the hash of the resolved manifest without the keys that cannot change a
//!   result (`runtime.results_dir`, `runtime.threads`, the speed settings `runtime.prefix_reuse`,
//!   `runtime.parallel`, `runtime.cache_mb`, and `experiment.description`);
//! - `file <path>`: each file or directory the run reads (weights, datasets). Files up to
//!   [`CONTENT_HASH_LIMIT`] are hashed by content; larger files, and every file of a directory,
//!   by size and modification time (hashing an ImageNet copy on every `reproduce` would take
//!   minutes), as make does.
use crate::manifest::{Manifest, Resolved};
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;
use walkdir::WalkDir;

/// The code version stored with every run.
pub const CODE_VERSION: &str = env!("MPQ_CODE_HASH");

/// Files up to this size are fingerprinted by content.
pub const CONTENT_HASH_LIMIT: u64 = 256 << 20;

/// A run's input key and the parts it is made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputKey {
    /// Hex SHA-256 of the parts.
    pub key: String,
    /// `(name, value)` in a fixed order: `code`, `manifest`, then `file <path>` sorted.
    pub parts: Vec<(String, String)>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
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
    m
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
            return Ok(format!("sha256:{}", sha256(&bytes)));
        }
        return Ok(format!("stat:{}:{}", meta.len(), mtime_ns(&meta)));
    }
    let mut h = Sha256::new();
    let mut n = 0u64;
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
    for (rel, len, t) in entries {
        h.update(format!("{}\t{len}\t{t}\n", rel.display()).as_bytes());
        n += 1;
    }
    Ok(format!("dir:{n}:{}", hex(&h.finalize())))
}

/// The input key of a resolved manifest that reads `files`.
pub fn input_key(resolved: &Resolved, files: &[PathBuf]) -> Result<InputKey> {
    let manifest = toml::to_string(&result_manifest(&resolved.manifest))
        .context("serializing the manifest")?;
    let mut parts = vec![
        ("code".to_string(), CODE_VERSION.to_string()),
        ("manifest".to_string(), sha256(manifest.as_bytes())),
    ];
    let mut files: Vec<&PathBuf> = files.iter().collect();
    files.sort();
    files.dedup();
    for f in files {
        parts.push((format!("file {}", f.display()), fingerprint(f)?));
    }
    let text: String = parts.iter().map(|(k, v)| format!("{k}\t{v}\n")).collect();
    Ok(InputKey {
        key: sha256(text.as_bytes()),
        parts,
    })
}

impl InputKey {
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

    /// Why `self` differs from an older key: the names of the parts that changed, appeared or
    /// disappeared (e.g. `["manifest", "file weights.safetensors"]`).
    pub fn changed_since(&self, old: &InputKey) -> Vec<String> {
        let mut out = vec![];
        for (k, v) in &self.parts {
            match old.parts.iter().find(|(ok, _)| ok == k) {
                Some((_, ov)) if ov == v => {}
                _ => out.push(k.clone()),
            }
        }
        for (k, _) in &old.parts {
            if !self.parts.iter().any(|(nk, _)| nk == k) {
                out.push(k.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_text_round_trips_and_explains_changes() {
        let a = InputKey {
            key: "k1".into(),
            parts: vec![
                ("code".into(), "c".into()),
                ("manifest".into(), "m1".into()),
                ("file w".into(), "f".into()),
            ],
        };
        assert_eq!(InputKey::from_text(&a.to_text()), Some(a.clone()));
        assert_eq!(InputKey::from_text("garbage"), None);
        let mut b = a.clone();
        b.parts[1].1 = "m2".into();
        b.parts.push(("file d".into(), "x".into()));
        assert_eq!(b.changed_since(&a), vec!["manifest", "file d"]);
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
