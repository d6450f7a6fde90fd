//! The summary table of a suite (`summary.md`) from runs written as the runner writes them:
//! one row per finished run with its numbers, the best trade-off rule, the order.

use std::fs;
use std::path::{Path, PathBuf};

use mpq_report::*;
use mpq_vocab::{ArchName, BetaSetting, BitPair, RunRow, RunTables, StepRow, StrategyName};

struct Run<'a> {
    experiment: &'a str,
    run_id: &'a str,
    strategy: &'a str,
    started_at: &'a str,
    beta: f64,
    fp32: f64,
    high: f64,
    wall_s: f64,
    /// (rel_size, top1) per step, step 0 first.
    steps: &'a [(f64, f64)],
}

/// Writes `r` under `results` with the vocabulary's rows and returns its plan entry.
fn store(results: &Path, r: &Run) -> PlannedRun {
    let dir = results.join(r.experiment).join(r.run_id);
    let strategy: StrategyName = r.strategy.parse().unwrap();
    let n = r.steps.len() as u32 - 1;
    let steps = r
        .steps
        .iter()
        .enumerate()
        .map(|(k, &(rel_size, top1))| StepRow {
            run_id: r.run_id.into(),
            experiment: r.experiment.into(),
            arch: ArchName::ResnetTiny,
            pair: BitPair::W4A8,
            strategy,
            beta: r.beta,
            step: k as u32,
            layer: None,
            layer_index: (k as u32).checked_sub(1),
            top1,
            objective: None,
            params_low: 0,
            size_bits: 0,
            rel_size,
            evals: 0,
            elapsed_s: 0.0,
            low_layers: String::new(),
            work: 0.0,
            test_top1: None,
            test_correct: None,
        })
        .collect();
    let run = RunRow {
        run_id: r.run_id.into(),
        experiment: r.experiment.into(),
        arch: ArchName::ResnetTiny,
        pair: BitPair::W4A8,
        high_pair: BitPair::W8A8,
        strategy,
        beta: r.beta,
        manifest: "[experiment]\n".into(),
        manifest_hash: "abcdef".into(),
        git_commit: None,
        device: "cpu".into(),
        fp32_top1: r.fp32,
        high_top1: r.high,
        n_test_images: None,
        test_digest: None,
        fp32_test_top1: None,
        high_test_top1: None,
        fp32_test_correct: None,
        test_s: None,
        n_layers: n,
        n_search_images: 512,
        n_calib_images: 256,
        skipped_images: 0,
        started_at: r.started_at.into(),
        finished_at: r.started_at.into(),
        status: "finished".into(),
        wall_s: r.wall_s,
        evals: u64::from(n * (n + 1) / 2),
        suite: Some("s".into()),
        paper_model: None,
        manifest_path: "m.toml".into(),
        beta_setting: BetaSetting::Fixed(r.beta),
        input_key: "k".into(),
        code_version: "v".into(),
        search_layers: None,
        max_steps: None,
        work: 0.0,
        evals_replayed: 0,
        repeat: None,
        method: None,
        method_s: None,
        method_passes: None,
        method_iterations: None,
    };
    mpq_tables::write_run(
        &dir,
        &RunTables {
            steps,
            candidates: vec![],
            layers: vec![],
            run,
        },
    )
    .unwrap();
    PlannedRun {
        suite: "s".into(),
        experiment: r.experiment.into(),
        manifest: PathBuf::from(format!("{}.toml", r.experiment)),
        arch: ArchName::ResnetTiny,
        paper_model: None,
        pair: BitPair::W4A8,
        strategy,
        beta: BetaSetting::Fixed(r.beta),
        run_dir: Some(dir),
        repeat: None,
        method: Default::default(),
    }
}

fn baselines_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/baselines")
}

/// The suite's summary.md for `plan`.
fn summary(tmp: &Path, plan: &[PlannedRun]) -> String {
    let reports = tmp.join("reports");
    write_reports(plan, &baselines_dir(), &reports).unwrap();
    fs::read_to_string(reports.join("s/summary.md")).unwrap()
}

const GREEDY: Run = Run {
    experiment: "b-greedy",
    run_id: "20240102T000000Z-bbbbbbbb",
    strategy: "greedy",
    started_at: "2024-01-02T00:00:00Z",
    beta: 0.025,
    fp32: 0.7613,
    high: 0.75,
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
/// (512 search images: 76.13% = 390, 75.00% = 384 and 74.00% = 379 of them, with their Wilson
/// intervals; no held-out images.)
const GREEDY_ROW: &str =
    "| b-greedy | resnet-tiny | W4A8 | greedy | 0.0250 | 76.13 [72.30, 79.66] \
                          | 75.00 [71.07, 78.56] | — | — | — | 5 | 15 | 123.5 | 0.1700 | 74.00 \
                          [70.06, 77.63] | — | 20240102T000000Z-bbbbbbbb |";

const ONE_SHOT_LATE: Run = Run {
    experiment: "a-one-shot",
    run_id: "20240105T000000Z-aaaaaaaa",
    strategy: "one-shot",
    started_at: "2024-01-05T00:00:00Z",
    beta: 0.0,
    fp32: 0.5,
    high: 0.5,
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
    high: 0.5,
    wall_s: 1.0,
    // Nothing but step 0 qualifies.
    steps: &[(0.25, 0.5), (0.2, 0.3)],
};

/// The row of `run_id` in the summary's table of finished runs.
fn row_of<'a>(md: &'a str, run_id: &str) -> &'a str {
    let finished = md.find("## Finished runs").map_or(md, |i| &md[i..]);
    finished
        .lines()
        .find(|l| l.starts_with('|') && l.contains(run_id))
        .unwrap_or_else(|| panic!("no row for {run_id} in\n{md}"))
}

#[test]
fn summary_has_one_row_per_run_with_the_numbers_and_the_rule() {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results");
    let plan: Vec<PlannedRun> = [&GREEDY, &ONE_SHOT_LATE, &ONE_SHOT_EARLY]
        .into_iter()
        .map(|r| store(&results, r))
        .collect();
    let md = summary(tmp.path(), &plan);
    assert_eq!(row_of(&md, GREEDY.run_id), GREEDY_ROW, "\n{md}");

    let late = row_of(&md, ONE_SHOT_LATE.run_id);
    assert!(
        late.contains(
            "| 0.0000 | 50.00 [45.69, 54.31] | 50.00 [45.69, 54.31] | — | — | — | 3 | 6 | 2.0 | \
             0.2000 | 49.90 [45.49, 54.12] | — |"
        ),
        "{late}"
    );
    let early = row_of(&md, ONE_SHOT_EARLY.run_id);
    assert!(
        early.contains("| 0.2500 | 50.00 [45.69, 54.31] | — |"),
        "only step 0 qualifies: {early}"
    );

    // Sorted by experiment, then start time (among the finished runs' rows).
    let finished = &md[md.find("## Finished runs").unwrap()..];
    let order: Vec<usize> = [ONE_SHOT_EARLY.run_id, ONE_SHOT_LATE.run_id, GREEDY.run_id]
        .iter()
        .map(|id| finished.find(row_of(finished, id)).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{md}");

    // The header and the caption stating the rule.
    assert!(md.contains(
        "| experiment | arch | pair | strategy | beta | FP32 top-1 (%) [95% Wilson] | all-high \
         top-1 (%) [95% Wilson] | held-out images | held-out FP32 top-1 (%) [95% Wilson] | \
         held-out all-high top-1 (%) [95% Wilson] | layers | evaluations | wall time (s) | best \
         rel. size | best top-1 (%) [95% Wilson] | best held-out top-1 (%) [95% Wilson] | run_id |"
    ));
    assert!(md.contains("at most 1 point below the all-high"), "{md}");
    assert!(md.contains("smallest relative size"), "{md}");
    assert!(!md.contains("No runs were found"));
}

#[test]
fn no_finished_run_gives_a_table_saying_so() {
    let tmp = tempfile::tempdir().unwrap();
    let mut p = store(&tmp.path().join("results"), &GREEDY);
    p.run_dir = None;
    let md = summary(tmp.path(), &[p]);
    assert!(md.contains("| experiment | arch |"), "{md}");
    assert!(md.contains("No runs were found"), "{md}");
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
    // A step that beats the all-high model counts too.
    assert_eq!(
        best_trade_off(&[p(0, 0.25, 0.5), p(1, 0.2, 0.9)], 0.5),
        Some(p(1, 0.2, 0.9))
    );
    assert_eq!(TRADE_OFF_TOLERANCE, 0.01);
}
