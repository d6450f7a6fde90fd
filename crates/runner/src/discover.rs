//! Finding manifests and suites on disk: which `*.toml` files under a directory are manifests,
//! which directories under the experiments root are suites, and the suite a manifest belongs
//! to.
use crate::manifest::{defaults_for, DEFAULTS_FILE};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use walkdir::WalkDir;

/// Directories whose files are not manifests (published numbers of other methods).
const NOT_MANIFESTS: &str = "baselines";

fn skipped_dir(e: &walkdir::DirEntry) -> bool {
    let name = e.file_name().to_string_lossy();
    e.depth() > 0 && e.file_type().is_dir() && (name == NOT_MANIFESTS || name.starts_with('.'))
}

/// The manifests at `path`: a file is itself; a directory gives every `*.toml` below it,
/// recursively and sorted, except files named `defaults.toml`, anything under a directory named
/// `baselines`, and hidden (`.`) directories. Symbolic links to directories are not followed.
pub fn find_manifests(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut out: Vec<PathBuf> = WalkDir::new(path)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| !skipped_dir(e))
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy();
            e.file_type().is_file() && name.ends_with(".toml") && name != DEFAULTS_FILE
        })
        .map(|e| e.into_path())
        .collect();
    out.sort();
    out
}

/// The suites under `root`: its subdirectories holding manifests, sorted (`baselines/` and
/// hidden directories excluded).
pub fn suites(root: &Path) -> Result<Vec<String>> {
    let rd = std::fs::read_dir(root)
        .with_context(|| format!("{}: cannot read the experiments directory", root.display()))?;
    let mut out: Vec<String> = rd
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != NOT_MANIFESTS && !n.starts_with('.'))
        .filter(|n| !find_manifests(&root.join(n)).is_empty())
        .collect();
    out.sort();
    Ok(out)
}

/// The suite of a manifest: the directory directly under the one holding the nearest
/// `defaults.toml` (normally `experiments/`), else the manifest's own directory's name.
pub fn suite_of(manifest: &Path) -> Option<String> {
    let abs = std::path::absolute(manifest).ok()?;
    if let Some(defaults) = defaults_for(manifest) {
        let root = std::path::absolute(defaults).ok()?.parent()?.to_path_buf();
        if let Ok(rel) = abs.strip_prefix(&root) {
            let mut comps = rel.components();
            let first = comps.next()?;
            if comps.next().is_some() {
                return Some(first.as_os_str().to_string_lossy().into_owned());
            }
        }
    }
    Some(abs.parent()?.file_name()?.to_string_lossy().into_owned())
}
