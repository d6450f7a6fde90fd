//! `mpq reproduce` as a build system: runs what is missing or stale, nothing else; suites whose
//! inputs are missing are skipped with one line, or fail with it when asked for by name.
mod common;
use common::*;
use std::path::Path;

fn write(p: &Path, text: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn manifest(name: &str, beta: &str) -> String {
    format!(
        "[experiment]\nname = \"{name}\"\n[model]\narch = \"resnet-tiny\"\n\
         weights = \"experiments/embedded/weights/resnet-tiny.safetensors\"\n\
         [search]\nbeta = {beta}\n"
    )
}

/// An experiments root with a small runnable suite `s` and a suite `p` whose weights are missing.
fn root_with_suites(tmp: &Path) -> std::path::PathBuf {
    let root = tmp.join("experiments");
    for f in ["literature.toml", "paper.toml"] {
        let text = std::fs::read_to_string(common::root().join("experiments/baselines").join(f));
        write(&root.join("baselines").join(f), &text.unwrap());
    }
    write(
        &root.join("defaults.toml"),
        &format!(
            "[data]\nsearch_images = 32\ncalib_images = 16\n[search]\nmax_steps = 2\n\
             [runtime]\nresults_dir = \"{}\"\n",
            tmp.join("results").display()
        ),
    );
    write(&root.join("s/a.toml"), &manifest("a", "0.0"));
    write(&root.join("s/b.toml"), &manifest("b", "0.0"));
    write(
        &root.join("p/c.toml"),
        "[experiment]\nname = \"c\"\n[model]\narch = \"resnet-tiny\"\nweights = \"nowhere/w.safetensors\"\n",
    );
    root
}

fn reproduce(root: &Path, extra: &[&str]) -> (bool, String, String) {
    let reports = root.parent().unwrap().join("reports");
    let mut a = vec![
        "reproduce",
        "--quiet",
        "--experiments",
        root.to_str().unwrap(),
        "--reports",
        reports.to_str().unwrap(),
    ];
    a.extend_from_slice(extra);
    let o = mpq(&a);
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr(&o),
    )
}

fn lines_with<'a>(out: &'a str, what: &str) -> Vec<&'a str> {
    out.lines().filter(|l| l.contains(what)).collect()
}

#[test]
fn only_missing_or_stale_manifests_run() {
    // The directory holding the experiments root contains "a": `--filter a` below must match
    // manifest a only, not every path under the root.
    let tmp = tempfile::Builder::new().prefix("mpq-a-").tempdir().unwrap();
    let root = root_with_suites(tmp.path());

    let (ok, out, err) = reproduce(&root, &["s"]);
    assert!(ok, "{err}");
    assert!(out.contains("s/a: run (no previous run)"), "{out}");
    assert!(out.contains("s/b: run (no previous run)"), "{out}");
    assert!(out.contains("2 run, 0 up to date, 0 skipped"), "{out}");
    // The reports of every planned suite, the index linking them.
    let reports = tmp.path().join("reports");
    let index = std::fs::read_to_string(reports.join("README.md")).unwrap();
    for f in [
        "s/fig5-w4a8-resnet-tiny.svg",
        "s/claims.md",
        "s/search-cost.md",
        "s/table1.md",
    ] {
        assert!(reports.join(f).is_file(), "{f}");
        assert!(index.contains(f), "the index links {f}");
    }

    // Nothing changed: nothing runs.
    let (ok, out, _) = reproduce(&root, &["s"]);
    assert!(ok);
    assert!(out.contains("0 run, 2 up to date, 0 skipped"), "{out}");
    assert_eq!(lines_with(&out, ": up to date").len(), 2, "{out}");

    // One manifest's beta changes: that one runs, and the dry run says why.
    write(&root.join("s/b.toml"), &manifest("b", "0.02"));
    let (ok, out, _) = reproduce(&root, &["s", "--dry-run"]);
    assert!(ok);
    assert!(
        out.contains("s/b: run (changed since the last run: manifest search.beta: 0.0 -> 0.02)"),
        "{out}"
    );
    assert!(out.contains("s/a: up to date"), "{out}");
    assert!(
        out.contains("dry run: 1 to run, 1 up to date, 0 skipped"),
        "{out}"
    );
    let (ok, out, _) = reproduce(&root, &["s"]);
    assert!(ok);
    assert!(out.contains("1 run, 1 up to date, 0 skipped"), "{out}");
    let runs = |e: &str| {
        std::fs::read_dir(tmp.path().join("results").join(e))
            .unwrap()
            .count()
    };
    assert_eq!(
        (runs("a"), runs("b")),
        (1, 2),
        "a kept its run, b has a new one"
    );

    // --force runs what is up to date; a filter narrows it.
    let (ok, out, _) = reproduce(&root, &["s", "--force", "--filter", "a"]);
    assert!(ok);
    assert!(out.contains("s/a: run (forced)"), "{out}");
    assert!(out.contains("1 run, 0 up to date, 0 skipped"), "{out}");
}

#[test]
fn suites_with_missing_inputs_are_skipped_or_fail_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let root = root_with_suites(tmp.path());
    // Every suite: p is skipped with one line naming what is missing; s runs.
    let (ok, out, err) = reproduce(&root, &["--dry-run"]);
    assert!(ok, "{err}");
    let skipped = lines_with(&out, "p: 1 of 1 manifests skipped");
    assert_eq!(skipped.len(), 1, "{out}");
    assert!(
        skipped[0].contains("nowhere/w.safetensors: file not found"),
        "{out}"
    );
    // Asked for by name: an error, one line, nothing run.
    let (ok, out, err) = reproduce(&root, &["p"]);
    assert!(!ok);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("p: 1 of 1 manifests skipped"), "{err}");
    assert!(
        err.contains("nowhere/w.safetensors: file not found"),
        "{err}"
    );
    assert!(out.is_empty(), "{out}");
    assert!(!tmp.path().join("results").exists());
    // A suite that does not exist.
    let (ok, _, err) = reproduce(&root, &["nope"]);
    assert!(!ok);
    assert!(err.contains("no suite \"nope\""), "{err}");
}

#[test]
fn the_paper_suite_validates_and_without_imagenet_fails_with_one_line() {
    let o = mpq(&["validate", "experiments/paper"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("34 manifest(s) valid"), "{out}");

    let tmp = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_mpq"))
        .args(["reproduce", "paper", "--quiet", "--reports"])
        .arg(tmp.path().join("reports"))
        .arg("--set")
        .arg(format!(
            "runtime.results_dir={}",
            tmp.path().join("results").display()
        ))
        .current_dir(root())
        .env_remove("MPQ_IMAGENET_DIR")
        .output()
        .unwrap();
    let err = stderr(&o);
    assert!(!o.status.success());
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("paper: 34 of 34 manifests skipped")
            && err.contains("data.path: empty, and MPQ_IMAGENET_DIR is not set")
            && err.contains("experiments/paper/README.md"),
        "{err}"
    );
    assert!(o.stdout.is_empty());
    assert!(!tmp.path().join("results").exists());
    assert!(!tmp.path().join("reports").exists());
}
