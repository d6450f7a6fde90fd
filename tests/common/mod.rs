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

/// `mpq run <manifest>` on a small slice of the embedded data (64 search images, 32
/// calibration images), results under `results`.
pub fn small_run_args(manifest: &str, results: &Path) -> Vec<String> {
    [
        "run",
        manifest,
        "--quiet",
        "--set",
        &format!("runtime.results_dir={}", results.display()),
        "--set",
        "data.search_images=64",
        "--set",
        "data.calib_images=32",
        "--set",
        "data.test_images=256",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The first row of a string column.
pub fn first_str(df: &polars::prelude::DataFrame, column: &str) -> String {
    df.column(column)
        .unwrap()
        .str()
        .unwrap()
        .get(0)
        .unwrap()
        .to_string()
}

/// The first row of an integer column.
pub fn first_u64(df: &polars::prelude::DataFrame, column: &str) -> Option<u64> {
    let c = df.column(column).unwrap();
    c.cast(&polars::prelude::DataType::UInt64)
        .unwrap()
        .u64()
        .unwrap()
        .get(0)
}

/// Copies the project's published baselines (`experiments/baselines/`, which the reports read)
/// into the experiments root `exp_root` of a test.
pub fn copy_baselines(exp_root: &Path) {
    std::fs::create_dir_all(exp_root.join("baselines")).unwrap();
    for f in ["literature.toml", "paper.toml"] {
        let from = root().join("experiments/baselines").join(f);
        std::fs::copy(from, exp_root.join("baselines").join(f)).unwrap();
    }
}

/// Prepares `exp_root` as an experiments root: the project's `defaults.toml` and baselines.
pub fn experiments_root(exp_root: &Path) {
    std::fs::create_dir_all(exp_root).unwrap();
    std::fs::copy(
        root().join("experiments/defaults.toml"),
        exp_root.join("defaults.toml"),
    )
    .unwrap();
    copy_baselines(exp_root);
}
