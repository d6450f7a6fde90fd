//! Helpers shared by the end-to-end tests: run the real `mpq` binary from the repository root.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn mpq(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mpq"))
        .args(args)
        .current_dir(root())
        .env_remove("RAYON_NUM_THREADS")
        .output()
        .expect("run mpq")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// The only run directory under `results/<experiment>/`.
pub fn single_run_dir(results: &Path, experiment: &str) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(results.join(experiment))
        .expect("experiment dir")
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}
