//! The code version of results: a hash of the source that computes them (the quant, data,
//! models, search and runner crates, and Cargo.lock for the dependencies' versions), exported
//! as `MPQ_CODE_HASH`. `mpq reproduce` re-runs a manifest when it changes.
//!
//! Whole-line comments and blank lines are left out, and so are files that only test
//! (`tests.rs`, `test_util.rs`), so documentation edits do not invalidate stored results; any
//! other change does (also one that leaves the numbers alone: the safe direction).
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

const SOURCES: [&str; 5] = [
    "../quant/src",
    "../data/src",
    "../models/src",
    "../search/src",
    "src",
];
const SKIP: [&str; 2] = ["tests.rs", "test_util.rs"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs")
            && !SKIP.iter().any(|s| p.file_name().is_some_and(|n| n == *s))
        {
            out.push(p);
        }
    }
}

fn main() {
    let mut files = vec![];
    for d in SOURCES {
        println!("cargo:rerun-if-changed={d}");
        rust_files(Path::new(d), &mut files);
    }
    files.sort();
    let mut h = Sha256::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        h.update(f.to_string_lossy().as_bytes());
        for line in text.lines() {
            let t = line.trim();
            if t.is_empty() || t.starts_with("//") {
                continue;
            }
            h.update(t.as_bytes());
            h.update(b"\n");
        }
    }
    let lock = "../../Cargo.lock";
    println!("cargo:rerun-if-changed={lock}");
    h.update(std::fs::read(lock).unwrap_or_default());
    let hex: String = h
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    println!("cargo:rustc-env=MPQ_CODE_HASH={hex}");
}
