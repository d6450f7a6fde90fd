//! The code version of results: one hash per *unit* of the code that computes them, so that a
//! stored run is stale exactly when that code changed, and `mpq reproduce --dry-run` can say
//! which unit did.
//!
//! The units ([`UNITS`]) are the quantizer, the data crate, the models' forward passes, the
//! searches (and the stats crate's seeded generator and per-image bitsets), the vocabulary's names and
//! conversions, and the runner's core (`src/core/`), plus
//! `dependencies`: the versions (from `Cargo.lock`) of every external package those crates
//! depend on, directly or not. The CLI, messages, progress display, planning, the result store,
//! benchmarks and reports are not in any unit: editing them leaves stored runs up to date.
//!
//! A unit's hash covers its `.rs` files (paths relative to the workspace and contents) with
//! whole-line comments and blank lines left out, and without test code: files named `tests.rs`
//! or `test_util.rs`, directories named `tests`, and everything from a column-0 `#[cfg(test)]`
//! line to the end of a file (a file's unit tests come last in it; a tidy test checks that).
//!
//! This file is compiled twice: by `build.rs`, which exports the hashes to the binary as
//! `MPQ_CODE_UNITS`, and into the library, where tests recompute them on edited copies.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A unit of the code that computes results.
pub struct Unit {
    pub name: &'static str,
    /// Its source directory, relative to the workspace root.
    pub dir: &'static str,
    /// Files (names) of that directory left out: they do not compute results.
    pub skip: &'static [&'static str],
}

/// The units, in the order the key lists them.
pub const UNITS: &[Unit] = &[
    Unit {
        name: "quant",
        dir: "crates/quant/src",
        skip: &[],
    },
    Unit {
        name: "data",
        dir: "crates/data/src",
        // `mpq data prepare`: a prepared file is an input, fingerprinted by its content.
        skip: &["prepare.rs"],
    },
    Unit {
        name: "models",
        dir: "crates/models/src",
        // Benchmarks, the logits export and training: no run calls them.
        skip: &["bench.rs", "compare.rs", "train.rs"],
    },
    Unit {
        name: "search", // tidy: not a vocabulary name (the crate, not the split)
        dir: "crates/search/src",
        skip: &[],
    },
    Unit {
        name: "stats",
        dir: "crates/stats/src",
        // Its seeded generator (the random strategy's order) and the per-image bitsets (the
        // held-out columns `test_top1`, `test_correct`) compute results; the intervals and
        // tests only describe them.
        skip: &["interval.rs", "paired.rs", "repeats.rs", "special.rs"],
    },
    Unit {
        name: "vocab",
        dir: "crates/vocab/src",
        // The result rows' declarations: a new column computes nothing.
        skip: &["rows.rs"],
    },
    Unit {
        name: "runner-core",
        dir: "crates/runner/src/core",
        skip: &[],
    },
];

/// The name of the dependencies' unit.
pub const DEPENDENCIES: &str = "dependencies";

/// The workspace packages whose external dependencies are part of the code version: those
/// the units' code links (the runner's core uses candle).
pub const RESULT_PACKAGES: &[&str] = &[
    "mpq-quant",
    "mpq-data",
    "mpq-models",
    "mpq-search",
    "mpq-vocab",
    "candle-core",
    "candle-nn",
];

/// Workspace packages those depend on that compute nothing (files and hashes).
pub const NOT_RESULT_PACKAGES: &[&str] = &["mpq-io"];

const TEST_FILES: [&str; 2] = ["tests.rs", "test_util.rs"];
const TEST_DIR: &str = "tests";

/// The `.rs` files of a unit, sorted, test files and directories left out.
pub fn unit_files(root: &Path, unit: &Unit) -> Vec<PathBuf> {
    fn walk(dir: &Path, unit: &Unit, top: bool, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                if name != TEST_DIR {
                    walk(&p, unit, false, out);
                }
            } else if name.ends_with(".rs")
                && !TEST_FILES.contains(&name.as_str())
                && !(top && unit.skip.contains(&name.as_str()))
            {
                out.push(p);
            }
        }
    }
    let mut out = vec![];
    walk(&root.join(unit.dir), unit, true, &mut out);
    out.sort();
    out
}

/// The lines of a source file that count: no blank lines, no whole-line comments, nothing from
/// a column-0 `#[cfg(test)]` on.
pub fn counted_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .take_while(|l| *l != "#[cfg(test)]")
        .map(str::trim)
        .filter(|t| !t.is_empty() && !t.starts_with("//"))
}

/// One package of `Cargo.lock`.
#[derive(Debug, Default)]
struct LockPackage {
    version: String,
    source: Option<String>,
    dependencies: Vec<String>,
}

/// The packages of a `Cargo.lock`, by name (several versions of one name are kept apart by
/// version).
fn parse_lock(text: &str) -> BTreeMap<(String, String), LockPackage> {
    let mut out = BTreeMap::new();
    let mut cur: Option<(String, LockPackage)> = None;
    let mut in_deps = false;
    let unquote = |s: &str| s.trim().trim_end_matches(',').trim_matches('"').to_string();
    let mut flush = |cur: &mut Option<(String, LockPackage)>| {
        if let Some((name, p)) = cur.take() {
            out.insert((name, p.version.clone()), p);
        }
    };
    for line in text.lines() {
        let t = line.trim();
        if t == "[[package]]" {
            flush(&mut cur);
            cur = Some((String::new(), LockPackage::default()));
            in_deps = false;
            continue;
        }
        let Some((name, p)) = cur.as_mut() else {
            continue;
        };
        if in_deps {
            if t == "]" {
                in_deps = false;
            } else if !t.is_empty() {
                p.dependencies.push(unquote(t));
            }
        } else if let Some(v) = t.strip_prefix("name = ") {
            *name = unquote(v);
        } else if let Some(v) = t.strip_prefix("version = ") {
            p.version = unquote(v);
        } else if let Some(v) = t.strip_prefix("source = ") {
            p.source = Some(unquote(v));
        } else if let Some(v) = t.strip_prefix("dependencies = [") {
            in_deps = !v.contains(']');
        }
    }
    flush(&mut cur);
    out
}

/// The packages of `lock` that `roots` depend on, directly or not, roots included: `(name,
/// version, source)`, sorted; `source` is `None` for workspace packages.
pub fn dependency_closure(lock: &str, roots: &[&str]) -> Vec<(String, String, Option<String>)> {
    let pkgs = parse_lock(lock);
    let find = |spec: &str| -> Vec<(String, String)> {
        let mut parts = spec.split_whitespace();
        let name = parts.next().unwrap_or_default();
        let version = parts.next();
        pkgs.keys()
            .filter(|(n, v)| n == name && version.is_none_or(|want| want == v))
            .cloned()
            .collect()
    };
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    let mut todo: Vec<(String, String)> = roots.iter().flat_map(|r| find(r)).collect();
    while let Some(k) = todo.pop() {
        if !seen.insert(k.clone()) {
            continue;
        }
        for d in &pkgs[&k].dependencies {
            todo.extend(find(d));
        }
    }
    seen.into_iter()
        .map(|k| {
            let source = pkgs[&k].source.clone();
            (k.0, k.1, source)
        })
        .collect()
}

/// Every unit's hash (16 hex digits), in [`UNITS`] order, then [`DEPENDENCIES`]: the
/// versions and sources of the external packages in the closure of [`RESULT_PACKAGES`] in the
/// workspace's `Cargo.lock`.
pub fn unit_hashes(root: &Path) -> Vec<(String, String)> {
    let mut out = vec![];
    for unit in UNITS {
        let mut h = mpq_io::Hasher::new();
        for f in unit_files(root, unit) {
            let rel = f.strip_prefix(root).unwrap_or(&f);
            h.update(rel.to_string_lossy().as_bytes());
            h.update(b"\n");
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            for line in counted_lines(&text) {
                h.update(line.as_bytes());
                h.update(b"\n");
            }
        }
        out.push((unit.name.to_string(), h.finish_hex(8)));
    }
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap_or_default();
    let mut h = mpq_io::Hasher::new();
    for (name, version, source) in dependency_closure(&lock, RESULT_PACKAGES) {
        if let Some(source) = source {
            h.update(format!("{name} {version} {source}\n"));
        }
    }
    out.push((DEPENDENCIES.to_string(), h.finish_hex(8)));
    out
}

/// `unit=hash;unit=hash;...`, how `build.rs` hands the hashes to the binary.
pub fn encode(units: &[(String, String)]) -> String {
    units
        .iter()
        .map(|(u, h)| format!("{u}={h}"))
        .collect::<Vec<_>>()
        .join(";")
}

/// The inverse of [`encode`].
pub fn decode(s: &str) -> Vec<(String, String)> {
    s.split(';')
        .filter_map(|p| p.split_once('='))
        .map(|(u, h)| (u.to_string(), h.to_string()))
        .collect()
}
