//! The report from hand-built Parquet files: loading rules, the summary table and its numbers.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use mpq_report::*;
use polars::prelude::*;

/// A temporary directory removed on drop (the crate takes no tempfile dependency).
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "mpq-report-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn write(df: &mut DataFrame, path: &Path) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    ParquetWriter::new(File::create(path).unwrap())
        .finish(df)
        .unwrap();
}

struct Run<'a> {
    experiment: &'a str,
    run_id: &'a str,
    strategy: &'a str,
    started_at: &'a str,
    beta: f64,
    fp32: f64,
    int8: f64,
    wall_s: f64,
    /// (rel_size, top1) per step, step 0 first.
    steps: &'a [(f64, f64)],
}

fn runs_df(r: &Run) -> DataFrame {
    let n = r.steps.len() as u32 - 1;
    DataFrame::new(
        1,
        vec![
            Column::new("run_id".into(), [r.run_id]),
            Column::new("experiment".into(), [r.experiment]),
            Column::new("arch".into(), ["resnet-tiny"]),
            Column::new("pair".into(), ["W4A8"]),
            Column::new("high_pair".into(), ["W8A8"]),
            Column::new("strategy".into(), [r.strategy]),
            Column::new("beta".into(), [r.beta]),
            Column::new("manifest".into(), ["[experiment]\n"]),
            Column::new("manifest_hash".into(), ["abcdef"]),
            Column::new("git_commit".into(), [None::<&str>]),
            Column::new("device".into(), ["cpu"]),
            Column::new("fp32_top1".into(), [r.fp32]),
            Column::new("int8_top1".into(), [r.int8]),
            Column::new("n_layers".into(), [n]),
            Column::new("n_search_images".into(), [512u32]),
            Column::new("n_calib_images".into(), [256u32]),
            Column::new("started_at".into(), [r.started_at]),
            Column::new("finished_at".into(), [r.started_at]),
            Column::new("status".into(), ["finished"]),
            Column::new("wall_s".into(), [r.wall_s]),
            Column::new("evals".into(), [u64::from(n * (n + 1) / 2)]),
        ],
    )
    .unwrap()
}

fn steps_df(r: &Run) -> DataFrame {
    let h = r.steps.len();
    let step: Vec<u32> = (0..h as u32).collect();
    let layer_index: Vec<Option<u32>> = (0..h as u32).map(|k| k.checked_sub(1)).collect();
    DataFrame::new(
        h,
        vec![
            Column::new("run_id".into(), vec![r.run_id; h]),
            Column::new("experiment".into(), vec![r.experiment; h]),
            Column::new("step".into(), step),
            Column::new("layer_index".into(), layer_index),
            Column::new(
                "top1".into(),
                r.steps.iter().map(|s| s.1).collect::<Vec<_>>(),
            ),
            Column::new(
                "rel_size".into(),
                r.steps.iter().map(|s| s.0).collect::<Vec<_>>(),
            ),
        ],
    )
    .unwrap()
}

fn store(results: &Path, r: &Run) -> PathBuf {
    let dir = results.join(r.experiment).join(r.run_id);
    write(&mut steps_df(r), &dir.join("steps.parquet"));
    write(&mut runs_df(r), &dir.join("runs.parquet"));
    dir
}

const GREEDY: Run = Run {
    experiment: "b-greedy",
    run_id: "20240102T000000Z-bbbbbbbb",
    strategy: "greedy",
    started_at: "2024-01-02T00:00:00Z",
    beta: 0.025,
    fp32: 0.7613,
    int8: 0.75,
    wall_s: 123.456,
    // Within 1 point of 0.75: >= 0.74. Step 3 (0.17, exactly 0.74) qualifies; step 4 (0.15,
    // 0.7399) does not, although it is smaller.
    steps: &[
        (0.25, 0.75),
        (0.22, 0.752),
        (0.19, 0.745),
        (0.17, 0.74),
        (0.15, 0.7399),
        (0.125, 0.60),
    ],
};

/// Its table row, exactly.
const GREEDY_ROW: &str = "| b-greedy | resnet-tiny | W4A8 | greedy | 0.0250 | 76.13 | 75.00 | 5 \
                          | 15 | 123.5 | 0.1700 | 74.00 | 20240102T000000Z-bbbbbbbb |";

const ONE_SHOT_LATE: Run = Run {
    experiment: "a-one-shot",
    run_id: "20240105T000000Z-aaaaaaaa",
    strategy: "one-shot",
    started_at: "2024-01-05T00:00:00Z",
    beta: 0.0,
    fp32: 0.5,
    int8: 0.5,
    wall_s: 2.0,
    // Two steps at the smallest qualifying size: the higher top-1 wins.
    steps: &[(0.25, 0.5), (0.2, 0.495), (0.2, 0.499), (0.1, 0.2)],
};

const ONE_SHOT_EARLY: Run = Run {
    experiment: "a-one-shot",
    run_id: "20240103T000000Z-cccccccc",
    strategy: "one-shot",
    started_at: "2024-01-03T00:00:00Z",
    beta: 0.0,
    fp32: 0.5,
    int8: 0.5,
    wall_s: 1.0,
    // Nothing but step 0 qualifies.
    steps: &[(0.25, 0.5), (0.2, 0.3)],
};

fn row_of<'a>(md: &'a str, run_id: &str) -> &'a str {
    md.lines()
        .find(|l| l.starts_with('|') && l.contains(run_id))
        .unwrap_or_else(|| panic!("no row for {run_id} in\n{md}"))
}

#[test]
fn summary_has_one_row_per_run_with_the_numbers_and_the_rule() {
    let tmp = TempDir::new();
    let results = tmp.path().join("results");
    store(&results, &GREEDY);
    store(&results, &ONE_SHOT_LATE);
    store(&results, &ONE_SHOT_EARLY);

    let r = load_results(&results).unwrap();
    assert_eq!(r.runs.height(), 3);
    assert_eq!(r.steps.height(), 6 + 4 + 2);

    let md = summary_markdown(&r).unwrap();
    assert_eq!(row_of(&md, GREEDY.run_id), GREEDY_ROW, "\n{md}");

    let late = row_of(&md, ONE_SHOT_LATE.run_id);
    assert!(
        late.contains("| 0.0000 | 50.00 | 50.00 | 3 | 6 | 2.0 | 0.2000 | 49.90 |"),
        "{late}"
    );
    let early = row_of(&md, ONE_SHOT_EARLY.run_id);
    assert!(
        early.contains("| 0.2500 | 50.00 |"),
        "only step 0 qualifies: {early}"
    );

    // Sorted by experiment, then start time.
    let order: Vec<usize> = [ONE_SHOT_EARLY.run_id, ONE_SHOT_LATE.run_id, GREEDY.run_id]
        .iter()
        .map(|id| md.find(row_of(&md, id)).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{md}");

    // The header and the caption stating the rule.
    assert!(md.contains(
        "| experiment | arch | pair | strategy | beta | FP32 top-1 (%) | INT8 top-1 (%) | layers \
         | evaluations | wall time (s) | best rel. size | best top-1 (%) | run_id |"
    ));
    assert!(md.contains("at most 1 point below the INT8 top-1"), "{md}");
    assert!(md.contains("smallest relative size"), "{md}");
    assert!(!md.contains("No runs were found"));
}

#[test]
fn unfinished_runs_and_dot_files_are_ignored() {
    let tmp = TempDir::new();
    let results = tmp.path();
    store(results, &GREEDY);
    // An unfinished run: steps but no runs.parquet.
    let unfinished = results.join("b-greedy").join("20240109T000000Z-dddddddd");
    write(
        &mut steps_df(&ONE_SHOT_LATE),
        &unfinished.join("steps.parquet"),
    );
    // A writer's temporary file and a dot-directory holding a complete run.
    let dir = results.join(GREEDY.experiment).join(GREEDY.run_id);
    fs::write(dir.join(".runs.parquet.123.0.tmp"), b"half a file").unwrap();
    store(&results.join(".trash"), &ONE_SHOT_EARLY);
    // Other files lying around.
    fs::write(results.join("README.md"), b"# layout\n").unwrap();

    let r = load_results(results).unwrap();
    assert_eq!(r.runs.height(), 1);
    assert_eq!(r.steps.height(), GREEDY.steps.len());
    let md = summary_markdown(&r).unwrap();
    assert_eq!(
        md.lines()
            .filter(|l| l.starts_with("| ") && l.contains("Z-"))
            .count(),
        1
    );
    assert!(md.contains(GREEDY_ROW));
}

#[test]
fn files_with_different_columns_are_concatenated_diagonally() {
    let tmp = TempDir::new();
    store(tmp.path(), &GREEDY);
    // An older run without wall_s and evals, with an extra column, and n_layers as Int64.
    let dir = tmp.path().join("c-old").join("20230101T000000Z-eeeeeeee");
    let mut runs = runs_df(&Run {
        experiment: "c-old",
        run_id: "20230101T000000Z-eeeeeeee",
        ..GREEDY
    });
    runs.drop_in_place("wall_s").unwrap();
    runs.drop_in_place("evals").unwrap();
    runs.replace("n_layers", Column::new("n_layers".into(), [5i64]))
        .unwrap();
    runs.with_column(Column::new("note".into(), ["old"]))
        .unwrap();
    write(&mut runs, &dir.join("runs.parquet"));

    let r = load_results(tmp.path()).unwrap();
    assert_eq!(r.runs.height(), 2);
    assert!(r.runs.column("note").is_ok());
    let md = summary_markdown(&r).unwrap();
    // No steps for the old run and no wall time or evaluations: dashes, never invented numbers.
    let old = row_of(&md, "20230101T000000Z-eeeeeeee");
    assert!(old.contains("| 5 | — | — | — | — |"), "{old}");
    assert!(md.contains(GREEDY_ROW));
}

#[test]
fn no_runs_gives_a_table_saying_so() {
    let tmp = TempDir::new();
    for dir in [tmp.path().to_path_buf(), tmp.path().join("missing")] {
        let r = load_results(&dir).unwrap();
        assert_eq!(r.runs.height(), 0);
        let md = summary_markdown(&r).unwrap();
        assert!(md.contains("| experiment | arch |"), "{md}");
        assert!(md.contains("No runs were found"), "{md}");
    }
}

#[test]
fn write_report_writes_summary_md_atomically() {
    let tmp = TempDir::new();
    let results = tmp.path().join("results");
    let reports = tmp.path().join("reports");
    store(&results, &GREEDY);
    let p = write_report(&results, &reports).unwrap();
    assert_eq!(p, reports.join("summary.md"));
    let md = fs::read_to_string(&p).unwrap();
    assert!(md.contains(GREEDY_ROW), "{md}");
    // Run again (replacing the file); no temporary files are left behind.
    write_report(&results, &reports).unwrap();
    let names: Vec<String> = fs::read_dir(&reports)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["summary.md"]);
    // Deterministic output: same results, same bytes.
    assert_eq!(fs::read_to_string(&p).unwrap(), md);
}

#[test]
fn write_atomic_keeps_the_target_when_it_cannot_replace_it() {
    let tmp = TempDir::new();
    let target = tmp.path().join("summary.md");
    fs::create_dir(&target).unwrap();
    assert!(write_atomic(&target, b"x").is_err());
    assert!(target.is_dir());
    assert_eq!(
        fs::read_dir(tmp.path()).unwrap().count(),
        1,
        "temporary file removed"
    );
}

#[test]
fn best_trade_off_rule() {
    let p = |step, rel_size, top1| TradeOff {
        step: Some(step),
        rel_size,
        top1,
    };
    let pts = [
        p(0, 0.25, 0.70),
        p(1, 0.2, 0.695),
        p(2, 0.15, 0.69),
        p(3, 0.1, 0.689),
    ];
    // 0.69 is exactly 1 point below 0.70 (up to rounding): it qualifies.
    assert_eq!(best_trade_off(&pts, 0.70), Some(pts[2]));
    assert_eq!(best_trade_off(&pts, 0.704), Some(pts[1]));
    assert_eq!(best_trade_off(&pts, 0.71), Some(pts[0]));
    assert_eq!(best_trade_off(&pts, 0.80), None);
    assert_eq!(best_trade_off(&[], 0.5), None);
    // Equal sizes: higher top-1, then earlier step.
    let tie = [p(5, 0.2, 0.6), p(4, 0.2, 0.6), p(3, 0.2, 0.61)];
    assert_eq!(best_trade_off(&tie, 0.6), Some(tie[2]));
    assert_eq!(best_trade_off(&tie[..2], 0.6), Some(tie[1]));
    // A step that beats the INT8 model counts too.
    assert_eq!(
        best_trade_off(&[p(0, 0.25, 0.5), p(1, 0.2, 0.9)], 0.5),
        Some(p(1, 0.2, 0.9))
    );
    assert_eq!(TRADE_OFF_TOLERANCE, 0.01);
}
