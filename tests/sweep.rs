//! Sweeps and repeats through the real `mpq`, locally: `mpq run --sweep ... --set
//! experiment.repeats=2` makes one run per point and repeat, each with its own experiment
//! name (per point), seeds (per repeat), input key and `runs` row; `mpq reproduce` of the
//! same suite and sweep finds every one of them up to date (the planner expands a manifest
//! exactly as `mpq run` does); `mpq status` says up to date, stale (what changed) and not run.
mod common;
use common::*;
use std::collections::BTreeSet;
use std::path::Path;

const MANIFEST: &str = "experiments/embedded/resnet-tiny-w4a8-greedy.toml";
const EXP: &str = "resnet-tiny-w4a8-greedy";

fn run_ok(args: &[String]) -> String {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = mpq(&a);
    assert!(out.status.success(), "mpq {args:?}: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The `runs` rows of every finished run of `experiment`: (repeat, manifest, input key), by
/// repeat.
fn runs_of(results: &Path, experiment: &str) -> Vec<(Option<u64>, String, String)> {
    let mut out = vec![];
    for e in std::fs::read_dir(results.join(experiment))
        .unwrap()
        .flatten()
    {
        let runs = e.path().join("runs.parquet");
        if !runs.is_file() {
            continue;
        }
        let df = mpq_runner::store::read_parquet(&runs).unwrap();
        out.push((
            first_u64(&df, "repeat"),
            first_str(&df, "manifest"),
            first_str(&df, "input_key"),
        ));
    }
    out.sort();
    out
}

#[test]
fn sweeps_and_repeats_expand_into_ordinary_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results");
    let mut sets = small_run_args(MANIFEST, &results);
    sets.drain(..3); // the --set pairs only
    sets.extend(strs(&[
        "--set",
        "search.max_steps=2",
        "--set",
        "experiment.repeats=2",
    ]));
    let sweep = strs(&["--sweep", "search.beta=0,0.02"]);

    // mpq run: 2 points x 2 repeats.
    let mut args = strs(&["run", MANIFEST, "--quiet"]);
    args.extend(sets.clone());
    args.extend(sweep.clone());
    let said = run_ok(&args);
    assert_eq!(said.lines().count(), 4, "{said}");
    assert!(
        said.contains(&format!("[{EXP}--beta=0.02 repeat 1]")),
        "{said}"
    );
    let mut keys = BTreeSet::new();
    for (point, beta) in [("beta=0", "0.0"), ("beta=0.02", "0.02")] {
        let exp = format!("{EXP}--{point}");
        let runs = runs_of(&results, &exp);
        assert_eq!(runs.len(), 2, "{exp}: {runs:?}");
        for (r, (repeat, manifest, key)) in runs.iter().enumerate() {
            assert_eq!(*repeat, Some(r as u64));
            // The point's value and the repeat's seeds are in its resolved manifest, which is
            // a manifest of exactly that run.
            let m: toml::Table = toml::from_str(manifest).unwrap();
            assert_eq!(m["search"]["beta"].to_string(), beta);
            assert_eq!(m["experiment"]["name"].as_str(), Some(exp.as_str()));
            assert_eq!(m["experiment"]["seed"].as_integer(), Some(r as i64));
            assert_eq!(m["data"]["seed"].as_integer(), Some(r as i64));
            assert_eq!(m["data"]["subset_seed"].as_integer(), Some(r as i64));
            assert_eq!(m["experiment"]["repeats"].as_integer(), Some(1));
            keys.insert(key.clone());
        }
    }
    assert_eq!(keys.len(), 4, "every run has its own input key");

    // The same manifest in a suite: reproduce plans the same 4 runs, all up to date.
    let exp_root = tmp.path().join("experiments");
    std::fs::create_dir_all(exp_root.join("s")).unwrap();
    std::fs::copy(root().join(MANIFEST), exp_root.join("s/m.toml")).unwrap();
    experiments_root(&exp_root);
    let suite = |cmd: &str, more: &[&str]| {
        let mut a = strs(&[cmd, "s", "--experiments", exp_root.to_str().unwrap()]);
        a.extend(sets.clone());
        a.extend(sweep.clone());
        a.extend(strs(more));
        a
    };
    let reports = tmp.path().join("reports");
    let said = run_ok(&suite(
        "reproduce",
        &["--reports", reports.to_str().unwrap()],
    ));
    assert!(said.contains("0 run, 4 up to date, 0 skipped"), "{said}");
    let said = run_ok(&suite("status", &[]));
    assert!(
        said.contains(&format!("s/{EXP}--beta=0.02 repeat 1: up to date (")),
        "{said}"
    );
    assert!(said.ends_with("4 up to date\n"), "{said}");

    // Raising the repeats plans only the new one, which has no previous run.
    let said = run_ok(&suite(
        "reproduce",
        &["--dry-run", "--set", "experiment.repeats=3"],
    ));
    assert!(said.contains("dry run: 2 to run, 4 up to date"), "{said}");
    assert!(
        said.contains(&format!("s/{EXP}--beta=0 repeat 2: run (no previous run)")),
        "{said}"
    );

    // Stale, with what changed; a point never run.
    let said = run_ok(&suite("status", &["--set", "search.max_steps=3"]));
    assert!(
        said.contains(&format!(
            "s/{EXP}--beta=0 repeat 0: stale (manifest search.max_steps: 2 -> 3)"
        )),
        "{said}"
    );
    assert!(said.ends_with("4 stale\n"), "{said}");
    let mut a = strs(&["status", "s", "--experiments", exp_root.to_str().unwrap()]);
    a.extend(sets.clone());
    a.extend(strs(&["--sweep", "search.beta=0,0.05"]));
    let said = run_ok(&a);
    assert!(
        said.contains(&format!("s/{EXP}--beta=0.05 repeat 1: not run")),
        "{said}"
    );
    assert!(said.ends_with("2 up to date, 2 not run\n"), "{said}");

    // --repeat names one run; a repeat that does not exist, or --wait run here, is an error.
    let mut a = strs(&["run", MANIFEST, "--quiet", "--repeat", "2"]);
    a.extend(sets.clone());
    let out = mpq(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("experiment.repeats: there is no repeat 2: the experiment has 2"),
        "{}",
        stderr(&out)
    );
    let out = mpq(&["run", MANIFEST, "--wait"]);
    assert_eq!(
        stderr(&out).trim(),
        "mpq: --wait: only with --executor slurm (local runs are waited for)"
    );
}
