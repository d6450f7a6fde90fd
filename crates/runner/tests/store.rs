//! The result store: Parquet round trips of every table, atomic writes, timestamps and run ids.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mpq_runner::store::*;
use mpq_tables::{frame, rows, write_parquet};
use mpq_vocab::{
    ArchName, BetaSetting, BitPair, CandidateRow, LayerKind, LayerRow, RunRow, RunTables, StepRow,
    StrategyName,
};
use polars::prelude::*;

fn strs(df: &DataFrame, c: &str) -> Vec<Option<String>> {
    let col = df.column(c).unwrap();
    assert_eq!(col.dtype(), &DataType::String, "{c}");
    col.str()
        .unwrap()
        .iter()
        .map(|s| s.map(str::to_string))
        .collect()
}
fn step(k: u32, layer: Option<(&str, u32)>, top1: f64, objective: Option<f64>) -> StepRow {
    StepRow {
        run_id: "20240101T000000Z-deadbeef".into(),
        experiment: "exp-a".into(),
        arch: ArchName::ResnetTiny,
        pair: BitPair::W4A8,
        strategy: StrategyName::Greedy,
        beta: 0.025,
        step: k,
        layer: layer.map(|l| l.0.to_string()),
        layer_index: layer.map(|l| l.1),
        top1,
        objective,
        params_low: 1000 * u64::from(k),
        size_bits: 80_000 - 4000 * u64::from(k),
        rel_size: (80_000 - 4000 * u64::from(k)) as f64 / 320_000.0,
        evals: u64::from(k) * 3,
        elapsed_s: 0.5 * f64::from(k),
        low_layers: (0..k).map(|i| i.to_string()).collect::<Vec<_>>().join(","),
        work: 2.5 * f64::from(k),
        test_top1: None,
        test_correct: None,
    }
}

fn tables() -> RunTables {
    let run_id = "20240101T000000Z-deadbeef".to_string();
    RunTables {
        steps: vec![
            step(0, None, 0.75, None),
            step(
                1,
                Some(("layer1.0.conv1", 3)),
                0.745,
                Some(0.745 * 6.9f64.powf(0.025)),
            ),
            step(2, Some(("fc", 0)), 0.7, Some(1.25)),
        ],
        candidates: vec![
            CandidateRow {
                run_id: run_id.clone(),
                step: 1,
                layer: "fc".into(),
                layer_index: 0,
                top1: 0.5,
                objective: None,
                n_images: 128,
            },
            CandidateRow {
                run_id: run_id.clone(),
                step: 1,
                layer: "layer1.0.conv1".into(),
                layer_index: 3,
                top1: 0.745,
                objective: Some(0.8),
                n_images: 512,
            },
        ],
        layers: vec![
            LayerRow {
                run_id: run_id.clone(),
                layer_index: 0,
                layer: "conv1".into(),
                kind: LayerKind::Conv,
                n_weights: 864,
            },
            LayerRow {
                run_id: run_id.clone(),
                layer_index: 1,
                layer: "fc".into(),
                kind: LayerKind::Linear,
                n_weights: 5_000_000_000,
            },
        ],
        run: run_row(&run_id, Some("0123456789abcdef0123456789abcdef01234567")),
    }
}

fn run_row(run_id: &str, git_commit: Option<&str>) -> RunRow {
    RunRow {
        run_id: run_id.into(),
        experiment: "exp-a".into(),
        arch: ArchName::ResnetTiny,
        pair: BitPair::W4A8,
        high_pair: BitPair::W8A8,
        strategy: StrategyName::Greedy,
        beta: 0.025,
        manifest: "[experiment]\nname = \"exp-a\"\n# quotes \" and unicode: β\n".into(),
        manifest_hash: "deadbeef00112233".into(),
        git_commit: git_commit.map(str::to_string),
        device: "cpu".into(),
        fp32_top1: 0.76,
        high_top1: 0.75,
        n_test_images: None,
        test_digest: None,
        fp32_test_top1: None,
        high_test_top1: None,
        fp32_test_correct: None,
        test_s: None,
        n_layers: 2,
        n_search_images: 512,
        n_calib_images: 256,
        skipped_images: 0,
        started_at: "2024-01-01T00:00:00Z".into(),
        finished_at: "2024-01-01T00:01:40Z".into(),
        status: "finished".into(),
        wall_s: 100.25,
        evals: 6,
        suite: Some("embedded".into()),
        paper_model: None,
        manifest_path: "experiments/embedded/exp-a.toml".into(),
        beta_setting: BetaSetting::Auto,
        input_key: "0a1b".into(),
        code_version: "c0de".into(),
        search_layers: Some("0,1".into()),
        max_steps: None,
        work: 5.75,
        evals_replayed: 3,
        repeat: None,
        method: None,
        method_s: None,
        method_passes: None,
        method_iterations: None,
    }
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn write_run_round_trips_every_table() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tables();
    let dir = run_dir(tmp.path(), "exp-a", &t.run.run_id);
    assert_eq!(
        dir,
        tmp.path().join("exp-a").join("20240101T000000Z-deadbeef")
    );
    write_run(&dir, &t).unwrap();
    assert_eq!(
        names_in(&dir),
        [
            "candidates.parquet",
            "layers.parquet",
            "runs.parquet",
            "steps.parquet"
        ],
        "four tables, no temporary files"
    );

    let steps = read_parquet(&dir.join("steps.parquet")).unwrap();
    assert_eq!(rows::<StepRow>(&steps).unwrap(), t.steps);
    let cands = read_parquet(&dir.join("candidates.parquet")).unwrap();
    assert_eq!(rows::<CandidateRow>(&cands).unwrap(), t.candidates);
    let layers = read_parquet(&dir.join("layers.parquet")).unwrap();
    assert_eq!(rows::<LayerRow>(&layers).unwrap(), t.layers);
    let runs = read_parquet(&dir.join("runs.parquet")).unwrap();
    assert_eq!(rows::<RunRow>(&runs).unwrap(), vec![t.run.clone()]);

    // Nulls are real nulls, not empty strings or NaN.
    assert_eq!(steps.column("layer").unwrap().null_count(), 1);
    assert_eq!(steps.column("layer_index").unwrap().null_count(), 1);
    assert_eq!(steps.column("objective").unwrap().null_count(), 1);
    assert_eq!(cands.column("objective").unwrap().null_count(), 1);
}

#[test]
fn contract_columns_exist_in_order() {
    let t = tables();
    let names = |df: DataFrame| -> Vec<String> {
        df.get_column_names()
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    assert_eq!(
        names(frame(&t.steps).unwrap()),
        [
            "run_id",
            "experiment",
            "arch",
            "pair",
            "strategy",
            "beta",
            "step",
            "layer",
            "layer_index",
            "top1",
            "objective",
            "params_low",
            "size_bits",
            "rel_size",
            "evals",
            "elapsed_s",
            "low_layers",
            "work",
            "test_top1",
            "test_correct"
        ]
    );
    assert_eq!(
        names(frame(&t.candidates).unwrap()),
        [
            "run_id",
            "step",
            "layer",
            "layer_index",
            "top1",
            "objective",
            "n_images"
        ]
    );
    assert_eq!(
        names(frame(&t.layers).unwrap()),
        ["run_id", "layer_index", "layer", "kind", "n_weights"]
    );
    let runs = names(frame(std::slice::from_ref(&t.run)).unwrap());
    for c in [
        "run_id",
        "experiment",
        "manifest",
        "manifest_hash",
        "git_commit",
        "device",
        "fp32_top1",
        "high_top1",
        "n_layers",
        "n_search_images",
        "n_calib_images",
        "started_at",
        "finished_at",
        "status",
    ] {
        assert!(runs.iter().any(|n| n == c), "runs lacks {c}");
    }
}

#[test]
fn empty_tables_and_null_git_commit_round_trip_with_their_types() {
    let tmp = tempfile::tempdir().unwrap();
    let mut t = tables();
    t.steps.clear();
    t.candidates.clear();
    t.layers.clear();
    t.run = run_row("r", None);
    write_run(tmp.path(), &t).unwrap();
    let steps = read_parquet(&tmp.path().join("steps.parquet")).unwrap();
    assert_eq!(steps.height(), 0);
    assert_eq!(steps.width(), 20);
    assert!(
        rows::<StepRow>(&steps).unwrap().is_empty(),
        "dtypes survive an empty table"
    );
    let cands = read_parquet(&tmp.path().join("candidates.parquet")).unwrap();
    assert!(rows::<CandidateRow>(&cands).unwrap().is_empty());
    let layers = read_parquet(&tmp.path().join("layers.parquet")).unwrap();
    assert!(rows::<LayerRow>(&layers).unwrap().is_empty());
    let runs = read_parquet(&tmp.path().join("runs.parquet")).unwrap();
    assert_eq!(rows::<RunRow>(&runs).unwrap(), vec![t.run.clone()]);
    assert_eq!(strs(&runs, "git_commit"), vec![None]);
}

#[test]
fn atomic_write_replaces_the_previous_file_and_leaves_no_temporary() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("t.parquet");
    let mut a = frame(&tables().layers).unwrap();
    write_parquet(&mut a, &path).unwrap();
    assert_eq!(names_in(tmp.path()), ["t.parquet"]);
    let mut b = frame(&tables().layers[..1]).unwrap();
    write_parquet(&mut b, &path).unwrap();
    assert_eq!(names_in(tmp.path()), ["t.parquet"]);
    assert_eq!(read_parquet(&path).unwrap().height(), 1);
}

#[test]
fn failed_write_onto_a_directory_cleans_up_and_leaves_it_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("steps.parquet");
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("keep"), b"x").unwrap();
    let mut df = frame(&tables().steps).unwrap();
    let err = write_parquet(&mut df, &path).unwrap_err();
    assert!(format!("{err:#}").contains("steps.parquet"), "{err:#}");
    assert_eq!(
        names_in(tmp.path()),
        ["steps.parquet"],
        "temporary file removed"
    );
    assert_eq!(std::fs::read(path.join("keep")).unwrap(), b"x");
}

#[test]
fn failed_write_in_a_read_only_directory_keeps_the_previous_file() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ro");
    std::fs::create_dir(&dir).unwrap();
    let path = dir.join("runs.parquet");
    let t = tables();
    let mut old = frame(std::slice::from_ref(&t.run)).unwrap();
    write_parquet(&mut old, &path).unwrap();
    let before = std::fs::read(&path).unwrap();

    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    // Root ignores directory permissions; then there is nothing to test here.
    let probe = dir.join(".probe");
    let root = std::fs::write(&probe, b"").is_ok();
    let _ = std::fs::remove_file(&probe);
    if !root {
        let mut new = frame(&[t.run.clone(), run_row("other", None)]).unwrap();
        let err = write_parquet(&mut new, &path).unwrap_err();
        assert!(format!("{err:#}").contains("runs.parquet"), "{err:#}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "previous file intact"
        );
        assert_eq!(names_in(&dir), ["runs.parquet"]);
    } else {
        eprintln!("running as root: read-only directory check skipped");
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn failed_write_keeps_the_previous_file_even_as_root() {
    // The target is a non-empty directory: the final rename fails whoever runs the test (root
    // included), after the table was written to its temporary file, which must not remain.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("steps.parquet");
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("previous"), b"previous").unwrap();
    let mut df = frame(&tables().steps).unwrap();
    assert!(write_parquet(&mut df, &path).is_err());
    assert_eq!(std::fs::read(path.join("previous")).unwrap(), b"previous");
    assert_eq!(names_in(tmp.path()), ["steps.parquet"]);
}

#[test]
fn write_run_into_an_unwritable_place_fails_without_runs_parquet() {
    let tmp = tempfile::tempdir().unwrap();
    // A file where the run directory's parent should be: create_dir_all fails.
    std::fs::write(tmp.path().join("exp"), b"").unwrap();
    let dir = tmp.path().join("exp").join("run");
    let err = write_run(&dir, &tables()).unwrap_err();
    assert!(format!("{err:#}").contains("exp"), "{err:#}");

    // runs.parquet is a directory: the other tables are written, runs.parquet is not.
    let dir = tmp.path().join("exp2").join("run");
    std::fs::create_dir_all(dir.join("runs.parquet")).unwrap();
    assert!(write_run(&dir, &tables()).is_err());
    assert!(dir.join("steps.parquet").is_file());
    assert!(dir.join("runs.parquet").is_dir());
    assert_eq!(
        names_in(&dir),
        [
            "candidates.parquet",
            "layers.parquet",
            "runs.parquet",
            "steps.parquet"
        ]
    );
}

#[test]
fn read_parquet_errors_name_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope.parquet");
    let err = read_parquet(&missing).unwrap_err();
    assert!(format!("{err:#}").contains("nope.parquet"), "{err:#}");
    let garbage = tmp.path().join("garbage.parquet");
    std::fs::write(&garbage, b"this is not parquet").unwrap();
    let err = read_parquet(&garbage).unwrap_err();
    assert!(format!("{err:#}").contains("garbage.parquet"), "{err:#}");
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[test]
fn rfc3339_on_known_instants() {
    assert_eq!(rfc3339(at(0)), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(at(951_782_400)), "2000-02-29T00:00:00Z");
    assert_eq!(rfc3339(at(951_868_799)), "2000-02-29T23:59:59Z");
    assert_eq!(rfc3339(at(951_868_800)), "2000-03-01T00:00:00Z");
    assert_eq!(rfc3339(at(1_234_567_890)), "2009-02-13T23:31:30Z");
    assert_eq!(rfc3339(at(1_704_067_199)), "2023-12-31T23:59:59Z");
    assert_eq!(rfc3339(at(1_709_164_800)), "2024-02-29T00:00:00Z");
    assert_eq!(rfc3339(at(4_102_444_800)), "2100-01-01T00:00:00Z");
    assert_eq!(
        rfc3339(at(4_107_542_400)),
        "2100-03-01T00:00:00Z",
        "2100 is no leap year"
    );
    // Sub-second parts are dropped, not rounded.
    assert_eq!(
        rfc3339(at(59) + Duration::from_millis(999)),
        "1970-01-01T00:00:59Z"
    );
    // Before the epoch.
    assert_eq!(
        rfc3339(UNIX_EPOCH - Duration::from_secs(1)),
        "1969-12-31T23:59:59Z"
    );
    assert_eq!(
        rfc3339(UNIX_EPOCH - Duration::from_millis(500)),
        "1969-12-31T23:59:59Z"
    );
}

#[test]
fn rfc3339_agrees_with_a_day_by_day_calendar() {
    // Walk 1970-01-01 .. 2101-01-01 one day at a time with a naive calendar.
    let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mut days = 0u64;
    for y in 1970..2101i64 {
        for m in 1..=12u32 {
            let len = match m {
                2 if leap(y) => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            for d in 1..=len {
                let want = format!("{y:04}-{m:02}-{d:02}T12:34:56Z");
                assert_eq!(rfc3339(at(days * 86_400 + 45_296)), want);
                days += 1;
            }
        }
    }
}

#[test]
fn run_ids_are_utc_time_and_short_hash() {
    assert_eq!(
        new_run_id("0123456789abcdef", at(951_782_400)),
        "20000229T000000Z-01234567"
    );
    assert_eq!(
        new_run_id("DEADBEEFcafe", at(1_234_567_890)),
        "20090213T233130Z-deadbeef"
    );
    assert_eq!(new_run_id("abc", at(0)), "19700101T000000Z-abc");
    // Run ids of one manifest sort by start time.
    let a = new_run_id("ff", at(1_000_000_000));
    let b = new_run_id("ff", at(1_000_000_001));
    assert!(a < b);
}
