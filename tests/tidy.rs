//! Tidy tests (as rust-analyzer keeps them): documentation and structure checked against the
//! code, so a key, a column, a name or a module edge added without its counterpart fails here.
//! - every manifest key is documented in experiments/README.md;
//! - every result column is documented in its table's section of results/README.md, and every
//!   documented column exists;
//! - outside the vocabulary crate and test code, no Rust source spells a strategy,
//!   architecture, dataset, split or bit pair name as a string literal;
//! - the modules of every crate import each other without cycles;
//! - the code version's units hold: a unit's test code comes last in its file (so it can be
//!   left out of the hash), and every workspace package the result-computing crates depend on
//!   is a unit or declared to compute nothing.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use mpq_runner::codeversion;
use mpq_vocab::rows::all_tables;
use mpq_vocab::{ArchName, Dataset, MethodName, PaperModel, Split, StrategyName};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The manifest's keys, from its schema (every optional key set, so none is skipped).
fn manifest_keys() -> Vec<String> {
    let mut m = mpq_runner::manifest::Manifest::default();
    m.experiment.paper_model = Some(PaperModel::ResNet50);
    let r = &mut m.resources;
    r.partition = Some("p".into());
    r.account = Some("a".into());
    r.mem = Some(mpq_cluster::MemSize::parse("1G").unwrap());
    r.time = Some(mpq_cluster::TimeLimit::Seconds(60));
    let t = toml::Table::try_from(&m).unwrap();
    let mut out = vec![];
    mpq_runner::fingerprint::flatten("", &t, &mut out);
    out.into_iter().map(|(k, _)| k).collect()
}

#[test]
fn every_manifest_key_is_documented() {
    let doc = read("experiments/README.md");
    let keys = manifest_keys();
    assert!(keys.len() > 30, "{keys:?}");
    let missing: Vec<&String> = keys
        .iter()
        .filter(|k| !doc.contains(&format!("| `{k}` |")))
        .collect();
    assert!(
        missing.is_empty(),
        "manifest keys without a row `| `key` | ... |` in experiments/README.md: {missing:?}"
    );
}

/// The column names documented in `### <table>.parquet` of results/README.md.
fn documented_columns(doc: &str, table: &str) -> BTreeSet<String> {
    let head = format!("### {table}.parquet");
    let start = doc
        .find(&head)
        .unwrap_or_else(|| panic!("results/README.md has no section {head:?}"));
    let section = &doc[start + head.len()..];
    let section = &section[..section.find("\n#").unwrap_or(section.len())];
    section
        .lines()
        .filter_map(|l| l.strip_prefix("| "))
        .filter_map(|l| l.split(" |").next())
        .filter(|c| *c != "column" && !c.starts_with('-'))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_result_column_is_documented_and_every_documented_column_exists() {
    let doc = read("results/README.md");
    for (table, columns) in all_tables() {
        let have: BTreeSet<String> = columns.iter().map(|c| c.name.to_string()).collect();
        let documented = documented_columns(&doc, table);
        let undocumented: Vec<&String> = have.difference(&documented).collect();
        let stale: Vec<&String> = documented.difference(&have).collect();
        assert!(
            undocumented.is_empty(),
            "{table}: columns without a row in results/README.md: {undocumented:?}"
        );
        assert!(
            stale.is_empty(),
            "{table}: results/README.md documents columns that do not exist: {stale:?}"
        );
    }
}

/// The Rust files of the workspace outside the vocabulary crate and test code, with their text
/// up to a column-0 `#[cfg(test)]`.
fn production_sources() -> Vec<(PathBuf, String)> {
    let mut out = vec![];
    for top in ["src", "crates"] {
        for e in walkdir::WalkDir::new(root().join(top))
            .into_iter()
            .filter_entry(|e| {
                let n = e.file_name().to_string_lossy();
                !(e.file_type().is_dir() && (n == "tests" || n == "examples" || n == "benches"))
            })
            .flatten()
        {
            let p = e.path();
            let rel = p.strip_prefix(root()).unwrap().to_path_buf();
            let name = p.file_name().unwrap().to_string_lossy();
            if !name.ends_with(".rs")
                || name == "tests.rs"
                || name == "test_util.rs"
                || rel.starts_with("crates/vocab")
            {
                continue;
            }
            // A line marked `// tidy: not a vocabulary name` spells a word that is also a
            // name (`"all"` layers, the `search` crate) in another sense.
            let text: String = std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .filter(|l| !l.contains("// tidy: not a vocabulary name"))
                .map(|l| format!("{l}\n"))
                .collect();
            let code: String = codeversion::counted_lines(&text)
                .map(|l| format!("{l}\n"))
                .collect();
            out.push((rel, code));
        }
    }
    assert!(out.len() > 50, "found the sources");
    out
}

#[test]
fn names_are_spelled_only_in_the_vocabulary() {
    let mut names: Vec<String> = vec![];
    names.extend(StrategyName::NAMES.iter().map(|s| s.to_string()));
    names.extend(ArchName::NAMES.iter().map(|s| s.to_string()));
    names.extend(Dataset::NAMES.iter().map(|s| s.to_string()));
    names.extend(Split::NAMES.iter().map(|s| s.to_string()));
    names.extend(MethodName::NAMES.iter().map(|s| s.to_string()));
    for w in 2..=8 {
        for a in 2..=8 {
            names.push(format!("W{w}A{a}"));
        }
    }
    let mut hits = vec![];
    for (file, code) in production_sources() {
        for n in &names {
            if code.contains(&format!("\"{n}\"")) {
                hits.push(format!("{}: \"{n}\"", file.display()));
            }
        }
    }
    assert!(
        hits.is_empty(),
        "name literals outside crates/vocab (use the vocabulary's types): {hits:#?}"
    );
}

/// The top-level module a source file of a crate belongs to (`None` for the crate root).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_string_lossy();
    let m = first.trim_end_matches(".rs").to_string();
    (m != "lib" && m != "main").then_some(m)
}

/// A cycle in `edges`, if any (as the modules along it).
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(n) {
            Some(2) => return None,
            Some(1) => {
                let i = path.iter().position(|p| p == n).unwrap();
                let mut c = path[i..].to_vec();
                c.push(n.to_string());
                return Some(c);
            }
            _ => {}
        }
        state.insert(n.to_string(), 1);
        path.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, edges, state, path) {
                return Some(c);
            }
        }
        path.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in edges.keys() {
        if let Some(c) = visit(n, edges, &mut state, &mut vec![]) {
            return Some(c);
        }
    }
    None
}

#[test]
fn no_crate_has_a_module_cycle() {
    let mut srcs = vec![root().join("src")];
    for e in std::fs::read_dir(root().join("crates")).unwrap().flatten() {
        srcs.push(e.path().join("src"));
    }
    let sources = production_sources();
    for src in srcs {
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (file, code) in &sources {
            let file = root().join(file);
            let Some(from) = module_of(&src, &file) else {
                continue;
            };
            let is_module = |n: &str| {
                !n.is_empty()
                    && n != from
                    && (src.join(format!("{n}.rs")).exists() || src.join(n).is_dir())
            };
            let first_segment = |s: &str| -> String {
                s.trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect()
            };
            let to = edges.entry(from.clone()).or_default();
            for (i, _) in code.match_indices("crate::") {
                let rest = &code[i + "crate::".len()..];
                let names: Vec<String> = match rest.strip_prefix('{') {
                    // `use crate::{a, b::c}`: every first segment inside the braces.
                    Some(inner) => inner[..inner.find('}').unwrap_or(inner.len())]
                        .split(',')
                        .map(first_segment)
                        .collect(),
                    None => vec![first_segment(rest)],
                };
                to.extend(names.into_iter().filter(|n| is_module(n)));
            }
        }
        if let Some(c) = find_cycle(&edges) {
            panic!("{}: module cycle {}", src.display(), c.join(" -> "));
        }
    }
}

#[test]
fn code_units_keep_their_test_code_last() {
    let r = root();
    for unit in codeversion::UNITS {
        for f in codeversion::unit_files(&r, unit) {
            let text = std::fs::read_to_string(&f).unwrap();
            let Some(at) = text.find("\n#[cfg(test)]\n") else {
                continue;
            };
            let tail = &text[at + 1..];
            // After the attribute: one `mod` item, closed by the file's last column-0 `}`.
            let mut lines = tail.lines().skip(1);
            let head = lines.next().unwrap_or_default();
            assert!(
                ["mod ", "pub mod ", "pub(crate) mod "]
                    .iter()
                    .any(|p| head.starts_with(p)),
                "{}: #[cfg(test)] must introduce the tests module, got {head:?}",
                f.display()
            );
            let closers: Vec<&str> = tail
                .lines()
                .skip(2)
                .filter(|l| !l.is_empty() && !l.starts_with([' ', '}', '\t', '/']))
                .collect();
            assert!(
                closers.is_empty() || head.ends_with(';'),
                "{}: items after the tests module would be left out of the code version: {closers:?}",
                f.display()
            );
        }
    }
}

#[test]
fn every_result_package_is_a_unit_or_computes_nothing() {
    let lock = read("Cargo.lock");
    let closure = codeversion::dependency_closure(&lock, codeversion::RESULT_PACKAGES);
    assert!(closure.iter().any(|(n, _, _)| n == "candle-core"));
    let units: BTreeSet<String> = codeversion::UNITS
        .iter()
        .map(|u| {
            let krate = u.dir.split('/').nth(1).unwrap();
            format!("mpq-{krate}")
        })
        .collect();
    for (name, _, source) in closure {
        if source.is_none() {
            assert!(
                units.contains(&name) || codeversion::NOT_RESULT_PACKAGES.contains(&name.as_str()),
                "workspace package {name} computes results for runs but is not a unit of \
                 crates/runner/src/codeversion.rs (add it to UNITS, or to NOT_RESULT_PACKAGES \
                 if it computes nothing)"
            );
        }
    }
}
