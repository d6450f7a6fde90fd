//! The code version is precise: editing a message in the CLI, the reproduce planner or the
//! report leaves every code unit's hash (so every stored run) as it was, while editing the
//! quantizer changes the `quant` unit, and `mpq reproduce --dry-run` names the unit that changed.
mod common;
use common::*;
use mpq_runner::codeversion::{unit_hashes, UNITS};
use std::path::Path;

/// A copy of the sources the code version reads (`crates/*/src`, `src`, `Cargo.lock`).
fn copy_sources(to: &Path) {
    let r = root();
    for e in walkdir::WalkDir::new(&r)
        .into_iter()
        .filter_entry(|e| {
            let n = e.file_name().to_string_lossy();
            e.depth() == 0 || !(n == "target" || n.starts_with('.') || n == "results")
        })
        .flatten()
    {
        let rel = e.path().strip_prefix(&r).unwrap();
        let keep =
            rel.starts_with("crates") || rel.starts_with("src") || rel == Path::new("Cargo.lock");
        if e.file_type().is_file()
            && keep
            && rel.extension().is_some_and(|x| x == "rs" || x == "lock")
        {
            let dst = to.join(rel);
            std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// Replaces the first `from` in `file` (which must contain it) with `to`.
fn edit(root: &Path, file: &str, from: &str, to: &str) {
    let p = root.join(file);
    let s = std::fs::read_to_string(&p).unwrap();
    assert!(s.contains(from), "{file} has {from:?}");
    std::fs::write(&p, s.replacen(from, to, 1)).unwrap();
}

#[test]
fn messages_outside_the_units_leave_the_code_version_alone() {
    let tmp = tempfile::tempdir().unwrap();
    copy_sources(tmp.path());
    let before = unit_hashes(tmp.path());
    assert_eq!(before.len(), UNITS.len() + 1);
    assert_eq!(before, unit_hashes(&root()), "the copy hashes as the tree");
    // A message of the CLI, of the reproduce planner, of the report.
    edit(
        tmp.path(),
        "crates/runner/src/commands.rs",
        "manifest(s) valid",
        "manifests are valid",
    );
    edit(
        tmp.path(),
        "crates/runner/src/reproduce.rs",
        "no previous run",
        "never run before",
    );
    edit(
        tmp.path(),
        "crates/report/src/claims.rs",
        "no planned run",
        "nothing planned",
    );
    edit(
        tmp.path(),
        "src/main.rs",
        "Check manifests",
        "Validate manifests",
    );
    // A comment and a unit test inside a unit.
    edit(tmp.path(), "crates/quant/src/grid.rs", "//", "// edited:");
    assert_eq!(unit_hashes(tmp.path()), before);

    // The quantizer's arithmetic: the quant unit, and only it.
    edit(
        tmp.path(),
        "crates/quant/src/grid.rs",
        "pub fn ",
        "#[inline(never)]\npub fn ",
    );
    let after = unit_hashes(tmp.path());
    let changed: Vec<&str> = before
        .iter()
        .zip(&after)
        .filter(|(a, b)| a != b)
        .map(|(a, _)| a.0.as_str())
        .collect();
    assert_eq!(changed, ["quant"]);
}

const PROBE: &str = r#"
[experiment]
name = "code-version-probe"
[model]
arch = "resnet-tiny"
weights = "experiments/embedded/weights/resnet-tiny.safetensors"
[data]
search_images = 16
calib_images = 8
[search]
strategy = "greedy"
max_steps = 1
"#;

#[test]
fn dry_run_names_the_code_unit_that_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let exps = tmp.path().join("experiments");
    std::fs::create_dir_all(exps.join("probe")).unwrap();
    std::fs::write(exps.join("probe/a.toml"), PROBE).unwrap();
    // The report beside the runs reads the published baselines of the experiments directory.
    copy_baselines(&exps);
    let results = tmp.path().join("results");
    let rd = format!("runtime.results_dir={}", results.display());
    let exps_s = exps.to_str().unwrap();
    let reports = tmp.path().join("reports");
    let reproduce = |extra: &[&str]| {
        let mut args = vec![
            "reproduce",
            "--experiments",
            exps_s,
            "--quiet",
            "--reports",
            reports.to_str().unwrap(),
            "--set",
            &rd,
        ];
        args.extend_from_slice(extra);
        let out = mpq(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let first = reproduce(&[]);
    assert!(first.contains("1 run, 0 up to date"), "{first}");
    let dry = reproduce(&["--dry-run"]);
    assert!(
        dry.contains("probe/code-version-probe: up to date"),
        "{dry}"
    );

    // The stored run as a build with another quantizer would have left it: its key's `code
    // quant` part differs (the key itself is the hash of its parts).
    let dir = single_run_dir(&results, "code-version-probe");
    let key_file = dir.join("input.key");
    let key =
        mpq_runner::fingerprint::InputKey::from_text(&std::fs::read_to_string(&key_file).unwrap())
            .unwrap();
    let parts = key
        .parts
        .iter()
        .map(|(k, v)| {
            let v = if k == "code quant" {
                "0123456789abcdef".to_string()
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect();
    let old = mpq_runner::fingerprint::InputKey::from_parts(parts);
    std::fs::write(&key_file, old.to_text()).unwrap();
    let dry = reproduce(&["--dry-run"]);
    assert!(
        dry.contains("probe/code-version-probe: run (changed since the last run: code: quant)"),
        "{dry}"
    );

    // A manifest key: named with its old and new value.
    let dry = reproduce(&["--dry-run", "--set", "data.search_images=12"]);
    assert!(
        dry.contains("manifest data.search_images: 16 -> 12; code: quant"),
        "{dry}"
    );
}
