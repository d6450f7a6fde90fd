//! `mpq validate`: resolve manifests (files, or directories searched recursively) without
//! running them. Checks the schema, types, values and layering; it does not need the weights or
//! data a manifest names to exist yet (paper manifests validate before ImageNet is configured).
use crate::discover::find_manifests;
use crate::manifest;
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// The manifests under `paths`, each resolved once; the first invalid one is the error.
pub fn collect_valid(paths: &[PathBuf], sets: &[String]) -> Result<Vec<PathBuf>> {
    let mut all = vec![];
    for p in paths {
        if p.is_dir() {
            let found = find_manifests(p);
            if found.is_empty() {
                bail!("{}: no manifests (*.toml) found", p.display());
            }
            all.extend(found);
        } else {
            // A missing file is reported by the manifest loader, naming it.
            all.push(Path::new(p).to_path_buf());
        }
    }
    for m in &all {
        manifest::load(m, sets)?;
    }
    Ok(all)
}
