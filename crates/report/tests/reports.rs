//! `write_reports` from hand-built Parquet fixtures: the files of every suite, the figures' SVG,
//! the selection rules of table 1 and the claims, greedy against one-shot, the search cost, the
//! exhaustive gap, "not run" for planned runs without results, determinism and the index.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use mpq_report::rules::{first_reaching_reduction, greedy_advantage, smallest_within_change};
use mpq_report::*;
use mpq_vocab::{
    ArchName, BetaSetting, BitPair, MethodName, PaperModel, RunRow, RunTables, StepRow,
    StrategyName,
};
use polars::prelude::*;

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "mpq-reports-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn put(df: &mut DataFrame, path: &Path) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    ParquetWriter::new(File::create(path).unwrap())
        .finish(df)
        .unwrap();
}

/// Every fixture network has 10^6 weights: FP32 = 4 MB, all W8A8 = 1 MB (rel_size 0.25).
const TOTAL_WEIGHTS: f64 = 1e6;

/// One planned run and, unless `steps` is empty, its result.
#[derive(Clone)]
struct Fx {
    suite: &'static str,
    exp: &'static str,
    arch: &'static str,
    paper_model: Option<&'static str>,
    pair: &'static str,
    strategy: &'static str,
    /// As in the manifest.
    beta: &'static str,
    /// The value the search used.
    beta_used: f64,
    fp32: f64,
    int8: f64,
    /// (rel_size, top1) per step, step 0 first; empty = not run.
    steps: &'static [(f64, f64)],
    /// low_layers per step (exhaustive runs), else built from the step number.
    low: Option<&'static [&'static str]>,
    search_layers: Option<&'static str>,
    evals: u64,
    work: f64,
    wall_s: f64,
    device: &'static str,
    /// Written before `int8_top1` was renamed `high_top1`.
    old: bool,
}

const BASE: Fx = Fx {
    suite: "embedded",
    exp: "",
    arch: "resnet-tiny",
    paper_model: Some("ResNet50"),
    pair: "W4A4",
    strategy: "greedy",
    beta: "0",
    beta_used: 0.0,
    fp32: 0.80,
    int8: 0.798,
    steps: &[],
    low: None,
    search_layers: None,
    evals: 10,
    work: 10.0,
    wall_s: 100.0,
    device: "cpu",
    old: false,
};

fn run_id(f: &Fx) -> String {
    format!(
        "20240101T000000Z-{}",
        &format!("{:08x}", fxhash(f.exp))[..8]
    )
}

fn fxhash(s: &str) -> u32 {
    s.bytes()
        .fold(2166136261u32, |h, b| (h ^ b as u32).wrapping_mul(16777619))
}

/// Writes the run directory of `f` under `results` (rows of the vocabulary's types, as the
/// runner writes them) and returns its plan entry.
fn store(results: &Path, f: &Fx) -> PlannedRun {
    let arch: ArchName = f.arch.parse().unwrap();
    let pair: BitPair = f.pair.parse().unwrap();
    let strategy: StrategyName = f.strategy.parse().unwrap();
    let beta: BetaSetting = f.beta.parse().unwrap();
    let paper_model: Option<PaperModel> = f.paper_model.map(|m| m.parse().unwrap());
    let mut run_dir = None;
    if !f.steps.is_empty() {
        let id = run_id(f);
        let dir = results.join(f.exp).join(&id);
        let h = f.steps.len();
        let n = (h - 1) as u32;
        let low: Vec<String> = match f.low {
            Some(l) => l.iter().map(|s| s.to_string()).collect(),
            None => (0..h)
                .map(|k| (0..k).map(|i| i.to_string()).collect::<Vec<_>>().join(","))
                .collect(),
        };
        let steps = f
            .steps
            .iter()
            .enumerate()
            .map(|(k, &(rel_size, top1))| StepRow {
                run_id: id.clone(),
                experiment: f.exp.into(),
                arch,
                pair,
                strategy,
                beta: f.beta_used,
                step: k as u32,
                layer: (k > 0).then(|| format!("l{k}")),
                layer_index: (k as u32).checked_sub(1),
                top1,
                objective: Some(top1),
                params_low: k as u64,
                size_bits: (rel_size * 32.0 * TOTAL_WEIGHTS).round() as u64,
                rel_size,
                evals: k as u64,
                elapsed_s: k as f64,
                low_layers: low[k].clone(),
                work: k as f64,
                test_top1: None,
                test_correct: None,
            })
            .collect();
        let run = RunRow {
            run_id: id.clone(),
            experiment: f.exp.into(),
            arch,
            pair,
            high_pair: BitPair::W8A8,
            strategy,
            beta: f.beta_used,
            manifest: "[experiment]\n".into(),
            manifest_hash: "abcdef".into(),
            git_commit: None,
            device: f.device.into(),
            fp32_top1: f.fp32,
            high_top1: f.int8,
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
            started_at: "2024-01-01T00:00:00Z".into(),
            finished_at: "2024-01-01T00:00:00Z".into(),
            status: "finished".into(),
            wall_s: f.wall_s,
            evals: f.evals,
            suite: Some(f.suite.into()),
            paper_model,
            manifest_path: format!("experiments/{}/{}.toml", f.suite, f.exp),
            beta_setting: beta,
            input_key: "k".into(),
            code_version: "v".into(),
            search_layers: f.search_layers.map(str::to_string),
            max_steps: None,
            work: f.work,
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
        if f.old {
            // Written before `int8_top1` was renamed `high_top1`: read under either name.
            let path = dir.join("runs.parquet");
            let mut runs = mpq_tables::read_parquet(&path).unwrap();
            runs.rename("high_top1", "int8_top1".into()).unwrap();
            put(&mut runs, &path);
        }
        run_dir = Some(dir);
    }
    PlannedRun {
        suite: f.suite.to_string(),
        experiment: f.exp.to_string(),
        manifest: PathBuf::from(format!("experiments/{}/{}.toml", f.suite, f.exp)),
        arch,
        paper_model,
        pair,
        strategy,
        beta,
        run_dir,
        repeat: None,
        method: Default::default(),
    }
}

// ---- The fixture suite "embedded": resnet-tiny standing for ResNet50, mobilenet-tiny for
// MobileNetV2. And a suite "paper" whose only run has not run.

/// Greedy W4A4, beta 0.02 (the paper's beta for ResNet50 W4A4). FP32 80 %.
/// Changes (points): step 0 -0.2, 1 -0.1, 2 -0.3, 3 -1.0, 4 -20.
const G: Fx = Fx {
    exp: "rt-w4a4-greedy-0.02",
    beta: "0.02",
    beta_used: 0.02,
    steps: &[
        (0.25, 0.798),
        (0.20, 0.799),
        (0.17, 0.797),
        (0.15, 0.790),
        (0.125, 0.60),
    ],
    ..BASE
};

/// Greedy W4A4, beta auto (0.0123 used): no step within -0.194 points of FP32.
const A: Fx = Fx {
    exp: "rt-w4a4-greedy-auto",
    beta: "auto",
    beta_used: 0.0123,
    steps: &[
        (0.25, 0.797),
        (0.21, 0.795),
        (0.16, 0.78),
        (0.14, 0.75),
        (0.125, 0.60),
    ],
    ..BASE
};

const O4: Fx = Fx {
    exp: "rt-w4a4-one-shot",
    strategy: "one-shot",
    steps: &[
        (0.25, 0.798),
        (0.20, 0.79),
        (0.17, 0.785),
        (0.15, 0.70),
        (0.125, 0.60),
    ],
    evals: 7,
    work: 7.0,
    wall_s: 50.0,
    ..BASE
};

/// Planned, not run.
const RN: Fx = Fx {
    exp: "rt-w4a4-random",
    strategy: "random",
    ..BASE
};

/// W4A8 (FP32 70.5 %): greedy beta 0, greedy beta auto and one-shot.
const Z: Fx = Fx {
    exp: "rt-w4a8-greedy-0",
    pair: "W4A8",
    fp32: 0.705,
    int8: 0.70,
    steps: &[
        (0.25, 0.70),
        (0.22, 0.70),
        (0.18, 0.69),
        (0.15, 0.66),
        (0.125, 0.50),
    ],
    ..BASE
};

const B: Fx = Fx {
    exp: "rt-w4a8-greedy-auto",
    beta: "auto",
    beta_used: 0.0123,
    steps: &[
        (0.25, 0.70),
        (0.20, 0.70),
        (0.15, 0.695),
        (0.14, 0.69),
        (0.125, 0.50),
    ],
    ..Z
};

/// Written before the rename of `int8_top1`.
const O8: Fx = Fx {
    exp: "rt-w4a8-one-shot",
    strategy: "one-shot",
    steps: &[
        (0.25, 0.70),
        (0.20, 0.695),
        (0.17, 0.67),
        (0.16, 0.60),
        (0.125, 0.50),
    ],
    evals: 7,
    old: true,
    ..Z
};

/// Exhaustive over layers 0,1,2, and greedy and random over the same layers.
const X: Fx = Fx {
    exp: "rt-w4a4-exhaustive",
    strategy: "exhaustive",
    search_layers: Some("0,1,2"),
    steps: &[(0.25, 0.798), (0.20, 0.799), (0.17, 0.797), (0.15, 0.79)],
    low: Some(&["", "1", "0,1", "0,1,2"]),
    evals: 8,
    work: 8.0,
    wall_s: 40.0,
    ..BASE
};

const GX: Fx = Fx {
    exp: "rt-w4a4-greedy-sub",
    search_layers: Some("0,1,2"),
    steps: &[(0.25, 0.798), (0.20, 0.799), (0.18, 0.795), (0.15, 0.79)],
    evals: 6,
    work: 6.0,
    wall_s: 30.0,
    ..BASE
};

const RX: Fx = Fx {
    exp: "rt-w4a4-random-sub",
    strategy: "random",
    search_layers: Some("0,1,2"),
    steps: &[(0.25, 0.798), (0.22, 0.79), (0.17, 0.78), (0.15, 0.79)],
    evals: 3,
    work: 3.0,
    wall_s: 15.0,
    ..BASE
};

/// MobileNetV2 stand-in, W6A6: greedy beta 0 (run on a GPU), greedy beta 0.008 not run.
const M0: Fx = Fx {
    exp: "mt-w6a6-greedy-0",
    arch: "mobilenet-tiny",
    paper_model: Some("MobileNetV2"),
    pair: "W6A6",
    fp32: 0.9,
    int8: 0.9,
    steps: &[(0.25, 0.9), (0.2, 0.89), (0.1875, 0.5)],
    evals: 210,
    work: 210.0,
    wall_s: 7200.0,
    device: "cuda:0",
    ..BASE
};

const M8: Fx = Fx {
    exp: "mt-w6a6-greedy-0.008",
    beta: "0.008",
    steps: &[],
    ..M0
};

const P: Fx = Fx {
    suite: "paper",
    exp: "resnet50-w4a8-greedy-0.025",
    arch: "resnet50",
    pair: "W4A8",
    beta: "0.025",
    ..BASE
};

const ALL: [Fx; 13] = [G, A, O4, RN, Z, B, O8, X, GX, RX, M0, M8, P];

fn baselines_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/baselines")
}

/// Stores every fixture, writes the reports, returns (temp dir, plan, written files).
fn setup() -> (TempDir, Vec<PlannedRun>, Vec<PathBuf>) {
    let tmp = TempDir::new();
    let results = tmp.0.join("results");
    // The plan in an arbitrary order: the reports sort it.
    let plan: Vec<PlannedRun> = ALL.iter().rev().map(|f| store(&results, f)).collect();
    let written = write_reports(&plan, &baselines_dir(), &tmp.0.join("reports")).unwrap();
    // To look at the fixture reports: MPQ_REPORT_TEST_OUT=/some/dir cargo test -p mpq-report
    if let Some(out) = std::env::var_os("MPQ_REPORT_TEST_OUT") {
        write_reports(&plan, &baselines_dir(), Path::new(&out)).unwrap();
    }
    (tmp, plan, written)
}

fn read(tmp: &TempDir, rel: &str) -> String {
    fs::read_to_string(tmp.0.join("reports").join(rel))
        .unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

fn rid(f: &Fx) -> String {
    run_id(f)
}

#[test]
fn every_suite_gets_its_files_and_the_index_links_them() {
    let (tmp, _, written) = setup();
    let reports = tmp.0.join("reports");
    let names: Vec<String> = written
        .iter()
        .map(|p| {
            p.strip_prefix(&reports)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        names,
        [
            "embedded/summary.md",
            "embedded/claims.md",
            "embedded/table1.md",
            "embedded/search-cost.md",
            "embedded/exhaustive.md",
            "embedded/fig4-w6a6-mobilenet-tiny.svg",
            "embedded/fig5-w4a8-resnet-tiny.svg",
            "embedded/fig6-w4a4-resnet-tiny.svg",
            "embedded/fig7.svg",
            "paper/summary.md",
            "paper/claims.md",
            "paper/table1.md",
            "paper/search-cost.md",
            "paper/exhaustive.md",
            "paper/fig5-w4a8-resnet50.svg",
            "paper/fig7.svg",
            "README.md",
        ]
    );
    let index = read(&tmp, "README.md");
    for n in &names[..names.len() - 1] {
        assert!(
            index.contains(&format!("]({n})")),
            "{n} not linked:\n{index}"
        );
        if n.ends_with(".svg") {
            let embedded = format!("]({n})");
            assert!(
                index
                    .lines()
                    .any(|l| l.starts_with("![") && l.ends_with(&embedded)),
                "{n} not embedded"
            );
        }
    }
    // Figures embedded as images.
    assert!(index.contains("](embedded/fig6-w4a4-resnet-tiny.svg)"));
    assert!(index.contains("![Fig. 6 (W4A4, embedded suite): resnet-tiny (stands for ResNet50)]"));
    assert!(index.contains("- [embedded](#suite-embedded): 12 planned run(s), 10 finished"));
    assert!(index.contains("- [paper](#suite-paper): 1 planned run(s), 0 finished"));
    // No temporary files left.
    for e in walk(&reports) {
        let n = e.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!n.starts_with('.'), "{n}");
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn same_input_same_bytes() {
    let (tmp, plan, _) = setup();
    let snapshot = |dir: &Path| -> BTreeMap<PathBuf, Vec<u8>> {
        walk(dir)
            .into_iter()
            .map(|p| {
                (
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    fs::read(&p).unwrap(),
                )
            })
            .collect()
    };
    let first = snapshot(&tmp.0.join("reports"));
    // Again into the same directory, with the plan in another order, and into a fresh one.
    let mut shuffled = plan.clone();
    shuffled.reverse();
    shuffled.swap(0, 5);
    write_reports(&shuffled, &baselines_dir(), &tmp.0.join("reports")).unwrap();
    assert_eq!(snapshot(&tmp.0.join("reports")), first);
    write_reports(&plan, &baselines_dir(), &tmp.0.join("again")).unwrap();
    assert_eq!(snapshot(&tmp.0.join("again")), first);
}

/// The polylines of an SVG drawn in `color` (`#RRGGBB`).
fn polylines(svg: &str, color: &str) -> usize {
    svg.lines()
        .filter(|l| l.starts_with("<polyline") && l.contains(&format!("stroke=\"{color}\"")))
        .count()
}

#[test]
fn size_figures_are_svg_with_one_polyline_per_curve() {
    let (tmp, _, _) = setup();
    let svg = read(&tmp, "embedded/fig5-w4a8-resnet-tiny.svg");
    assert!(svg.starts_with("<svg"), "{}", &svg[..100]);
    assert!(svg.trim_end().ends_with("</svg>"));
    for text in [
        "Fig. 5 (W4A8, embedded suite): resnet-tiny (stands for ResNet50)",
        "model size (MB = size_bits / 8 / 10^6)",
        "top-1 (%) on the search images",
        "\ngreedy β=0\n</text>",
        "\ngreedy β=auto (0.0123)\n</text>",
        "\none-shot\n</text>",
        "\nFP32: 70.50 %\n</text>",
        "\nall W8A8: 70.00 %\n</text>",
    ] {
        assert!(svg.contains(text), "{text} missing");
    }
    // Text is SVG text, no font files needed.
    assert!(svg.contains("<text"));
    assert!(!svg.contains("<image"));
    // Three curves, in table order: greedy β=0, greedy β=auto, one-shot; one polyline each
    // (legend entries of curves are rectangles), five points each.
    for i in 0..3 {
        assert_eq!(polylines(&svg, &curve_color_hex(i)), 1, "curve {i}");
        let circles = svg
            .lines()
            .filter(|l| l.starts_with("<circle") && l.contains(&curve_color_hex(i)))
            .count();
        assert_eq!(circles, 5, "curve {i}");
    }
    assert_eq!(polylines(&svg, &curve_color_hex(3)), 0);

    // W4A4: runs over a reduced ground set are not drawn, the random run is not run: named in
    // a note, not drawn.
    let svg = read(&tmp, "embedded/fig6-w4a4-resnet-tiny.svg");
    for text in [
        "\ngreedy β=0.02\n</text>",
        "\ngreedy β=auto (0.0123)\n</text>",
        "\none-shot\n</text>",
    ] {
        assert!(svg.contains(text), "{text} missing");
    }
    assert!(!svg.contains("exhaustive") && !svg.contains("rt-w4a4-greedy-sub"));
    assert!(svg.contains("not run: random (rt-w4a4-random)"));
    assert_eq!(polylines(&svg, &curve_color_hex(2)), 1);
    assert_eq!(polylines(&svg, &curve_color_hex(3)), 0);

    // A figure without results says so.
    let svg = read(&tmp, "paper/fig5-w4a8-resnet50.svg");
    assert!(svg.starts_with("<svg"));
    assert!(svg.contains("no results"));
    assert!(svg.contains("Fig. 5 (W4A8, paper suite): resnet50"));
    assert!(svg.contains("not run: greedy β=0.025 (resnet50-w4a8-greedy-0.025)"));
    assert_eq!(polylines(&svg, &curve_color_hex(0)), 0);
}

#[test]
fn figure_7_has_the_literature_and_the_resnet50_w4a4_greedy_runs() {
    let (tmp, _, _) = setup();
    let svg = read(&tmp, "embedded/fig7.svg");
    assert!(svg.starts_with("<svg"));
    for text in [
        "relative size (W-comp = model bits / FP32 bits)",
        "accuracy change (top-1 − FP32 top-1, points)",
        "LAPQ (W4A4)",
        "AdaRound (W4A8)",
        "Greedy search (the paper) (W4A4)",
        "greedy β=0.02, embedded suite",
        "greedy β=auto (0.0123), embedded suite",
        "curves: resnet-tiny (stands for ResNet50)",
    ] {
        assert!(svg.contains(text), "{text} missing");
    }
    // Two greedy curves (the one-shot and W4A8 runs are not in it).
    assert_eq!(polylines(&svg, &curve_color_hex(0)), 1);
    assert_eq!(polylines(&svg, &curve_color_hex(1)), 1);
    assert_eq!(polylines(&svg, &curve_color_hex(2)), 0);
    // Five literature points.
    assert_eq!(
        svg.lines()
            .filter(|l| l.contains("#404040") && l.starts_with("<circle"))
            .count(),
        5
    );
    // The last steps (-20 points) are below the axis (lowest literature change -6.1, minus 4).
    assert!(svg.contains("greedy β=0.02: 1 of 5 steps below -10.1 points not shown"));

    let svg = read(&tmp, "paper/fig7.svg");
    assert!(svg.contains("LAPQ (W4A4)"));
    assert!(svg.contains("plans no greedy W4A4 run standing for ResNet50"));
    assert_eq!(polylines(&svg, &curve_color_hex(0)), 0);
}

fn row<'a>(md: &'a str, needle: &str) -> &'a str {
    let rows: Vec<&str> = md
        .lines()
        .filter(|l| l.starts_with('|') && l.contains(needle))
        .collect();
    assert_eq!(rows.len(), 1, "rows with {needle}:\n{md}");
    rows[0]
}

#[test]
fn table_1_selects_the_smallest_step_within_the_papers_change() {
    let (tmp, _, _) = setup();
    let md = read(&tmp, "embedded/table1.md");
    // The literature rows, as published.
    assert!(
        md.contains(
            "| MMSE | 2019 | 4/4 | 76.01 [75.64, 76.38] | 75.20 [74.82, 75.57] | -0.814 | 0.154 |"
        ),
        "{md}"
    );
    assert!(md.contains(
        "| Greedy search (the paper) | 2021 | 4/4 | 74.98 [74.60, 75.36] | 74.79 [74.40, 75.16] \
             | -0.194 | 0.177 |"
    ));
    // G's changes against its FP32 (80 %): step 0 -0.2, 1 -0.1, 2 -0.3, 3 -1.0, 4 -20 points.
    // No worse than -0.194: step 1 only (step 0's -0.2 fails), so step 1 although step 2 and 3
    // are smaller.
    assert_eq!(
        row(&md, "[rt-w4a4-greedy-0.02]"),
        format!(
            "| Greedy search, this project: greedy β=0.02, resnet-tiny (stands for ResNet50) \
             [rt-w4a4-greedy-0.02] | — | 4/4 | 80.00 [76.40, 83.31] | 79.90 [76.19, 83.13] | \
             -0.100 | 0.2000 | run {}, step 1 of 4 (search-image change -0.100); top-1 on the \
             search images (512 images) |",
            rid(&G)
        )
    );
    // A: no step qualifies; said so, nothing invented.
    assert_eq!(
        row(&md, "[rt-w4a4-greedy-auto]"),
        format!(
            "| Greedy search, this project: greedy β=auto (0.0123), resnet-tiny (stands for \
             ResNet50) [rt-w4a4-greedy-auto] | — | 4/4 | 80.00 [76.40, 83.31] | — | — | — | run \
             {}: no step's change on the search images is -0.194 points or better |",
            rid(&A)
        )
    );
    // Only greedy W4A4 runs standing for ResNet50 over all layers.
    for exp in ["rt-w4a4-one-shot", "rt-w4a8-greedy-0", "rt-w4a4-greedy-sub"] {
        assert!(!md.contains(exp), "{exp}");
    }
    assert!(md.contains("stand-in network"));
    let paper = read(&tmp, "paper/table1.md");
    assert!(paper.contains("plans no greedy W4A4 run standing for ResNet50"));
}

#[test]
fn selection_rules_on_constructed_curves() {
    let p = |k, rel_size, top1| TradeOff {
        step: Some(k),
        rel_size,
        top1,
    };
    // G's curve, FP32 0.80.
    let g = [
        p(0, 0.25, 0.798),
        p(1, 0.20, 0.799),
        p(2, 0.17, 0.797),
        p(3, 0.15, 0.790),
        p(4, 0.125, 0.60),
    ];
    assert_eq!(smallest_within_change(&g, 0.80, -0.194), Some(g[1]));
    assert_eq!(smallest_within_change(&g, 0.80, -0.414), Some(g[2]));
    assert_eq!(
        smallest_within_change(&g, 0.80, -1.0),
        Some(g[3]),
        "exactly -1.0 qualifies"
    );
    assert_eq!(smallest_within_change(&g, 0.80, 0.0), None);
    // 83.5 % reduction = rel_size <= 0.165: step 3 is the first; 75 % (rel 0.25) is step 0.
    assert_eq!(first_reaching_reduction(&g, 83.5), Some(g[3]));
    assert_eq!(first_reaching_reduction(&g, 75.0), Some(g[0]));
    assert_eq!(first_reaching_reduction(&g, 90.0), None);
}

#[test]
fn claims_compare_the_paper_with_the_matching_runs() {
    let (tmp, _, _) = setup();
    let md = read(&tmp, "embedded/claims.md");
    // ResNet50 W4A4 beta 0.02 matches G exactly (the auto run A is not used for it).
    // Operating point (83.5 %, -0.414): first step with reduction >= 83.5 % is step 3
    // (rel 0.15, 85 %), change (0.790 - 0.80) * 100 = -1.000, minus -0.414 = -0.586. Smallest
    // model with change >= -0.414: steps 0 (-0.2), 1 (-0.1), 2 (-0.3) qualify, step 2 is the
    // smallest (rel 0.17, 83.00 %), 83.00 - 83.5 = -0.50.
    assert_eq!(
        row(&md, "| 83.5 | -0.414 |"),
        "| ResNet50 W4A4 greedy β=0.02 (fig. 6) | 83.5 | -0.414 | greedy β=0.02, resnet-tiny \
         (stands for ResNet50) [rt-w4a4-greedy-0.02] | same | 512 search images | 3 (85.00) | \
         79.00 [75.16, 82.22] | -1.000 | -0.586 | inconclusive (no held-out scores) | 83.00 | 2 \
         (-0.300) |"
    );
    // (85.7 %, -1.22): reduction >= 85.7 % first at step 4 (87.5 %), change -20.000,
    // -20 + 1.22 = -18.780; change >= -1.22: steps 0-3, smallest step 3 (85 %), -0.70.
    assert_eq!(
        row(&md, "| 85.7 | -1.22 |"),
        "| ResNet50 W4A4 greedy β=0.02 (fig. 6) | 85.7 | -1.22 | greedy β=0.02, resnet-tiny \
         (stands for ResNet50) [rt-w4a4-greedy-0.02] | same | 512 search images | 4 (87.50) | \
         60.00 [55.66, 64.12] | -20.000 | -18.780 | inconclusive (no held-out scores) | 85.00 | \
         3 (-1.000) |"
    );
    // ResNet50 W4A8 beta 0.025: no run with that beta, so the nonzero-beta run B (auto), marked;
    // the beta-0 run Z is not used. B's changes against 70.5 %: -0.5, -0.5, -1.0, -1.5, -20.5.
    // (84.7 %, -0.626): reduction >= 84.7 % first at step 2 (rel 0.15), -1.000, Δ -0.374;
    // change >= -0.626: steps 0 and 1, smallest step 1 (rel 0.20, 80.00 %), Δ -4.70.
    assert_eq!(
        row(&md, "| 84.7 | -0.626 |"),
        "| ResNet50 W4A8 greedy β=0.025 (fig. 5b) | 84.7 | -0.626 | greedy β=auto (0.0123), \
         resnet-tiny (stands for ResNet50) [rt-w4a8-greedy-auto] | differs (paper 0.025) | 512 \
         search images | 2 (85.00) | 69.50 [65.41, 73.36] | -1.000 | -0.374 | inconclusive (no \
         held-out scores) | 80.00 | 1 (-0.500) |"
    );
    // MobileNetV2 W6A6 beta 0.008: planned, not run.
    assert_eq!(
        row(&md, "| 80.1 | -1.1 |"),
        "| MobileNetV2 W6A6 greedy β=0.008 (fig. 4b) | 80.1 | -1.1 | greedy β=0.008, \
         mobilenet-tiny (stands for MobileNetV2) [mt-w6a6-greedy-0.008] | same | not run | not \
         run | not run | not run | not run | not run | not run | not run |"
    );
    // Xception: nothing planned.
    assert!(md.contains(
        "| Xception W6A6 greedy β=0 (fig. 4a) | 77.8 | -0.868 | no planned run | — | — | — | — \
         | — | — | — | — | — |"
    ));

    // Greedy against one-shot, W4A8 (one-shot steps k = 1..4 at rel 0.20, 0.17, 0.16, 0.125):
    // Z's best top-1 no larger: 0.69, 0.66, 0.66, 0.50 against 0.695, 0.67, 0.60, 0.50:
    // -0.5, -1.0, +6.0, 0.0 points: largest +6.000 at step 3 (0.16 * 4 MB = 0.6400 MB),
    // mean 4.5 / 4 = +1.125, one step above 1 point.
    assert_eq!(
        row(&md, "| greedy β=0 [rt-w4a8-greedy-0] |"),
        "| ResNet50 (stand-in: resnet-tiny) | W4A8 | greedy β=0 [rt-w4a8-greedy-0] | one-shot \
         [rt-w4a8-one-shot] | 4 | +6.000 | 3 (0.6400) | +1.125 | — | — | inconclusive (no \
         paired held-out scores) |"
    );
    // B: 0.70, 0.695, 0.695, 0.50: +0.5, +2.5, +9.5, 0.0: largest +9.5 at step 3, mean 3.125.
    assert_eq!(
        row(&md, "| greedy β=auto (0.0123) [rt-w4a8-greedy-auto] |"),
        "| ResNet50 (stand-in: resnet-tiny) | W4A8 | greedy β=auto (0.0123) \
         [rt-w4a8-greedy-auto] | one-shot [rt-w4a8-one-shot] | 4 | +9.500 | 3 (0.6400) | \
         +3.125 | — | — | inconclusive (no paired held-out scores) |"
    );
    // One network (resnet-tiny) compared, inconclusive without held-out scores; the claim
    // needs two, so even a reproduced resnet-tiny could not carry it.
    assert!(md.contains(
        "Per network: ResNet50 (stand-in: resnet-tiny): inconclusive. The claim needs at least \
         2 network(s). Verdict: **not reproduced**."
    ));

    // Search time: M0 ran 7200 s for 210 evaluations on cuda:0, 512 images: 2.000 h, 34.286 s
    // per evaluation; M8 not run; no ResNet18 run planned.
    assert_eq!(
        row(&md, "[mt-w6a6-greedy-0] |"),
        "| MobileNetV2 | about 2 h on 1 GPU(s), 50000 images | greedy β=0 W6A6, mobilenet-tiny \
         (stands for MobileNetV2) [mt-w6a6-greedy-0] | cuda:0 | 512 | 210 | 210.0 | 7200.0 | \
         2.000 | 34.286 | inconclusive (not comparable: stand-in network) |"
    );
    assert!(row(&md, "[mt-w6a6-greedy-0.008] | not run |").ends_with("| not run |"));
    assert!(md.contains("| ResNet18 | about 1 h on 1 GPU(s), 50000 images | no planned run |"));
}

#[test]
fn not_run_everywhere_and_no_invented_numbers() {
    let (tmp, _, _) = setup();
    for f in [
        "claims.md",
        "table1.md",
        "search-cost.md",
        "summary.md",
        "exhaustive.md",
    ] {
        let md = read(&tmp, &format!("paper/{f}"));
        // The paper suite's only run has no result: its cells are "not run", and the only
        // numbers are the paper's, the literature's, and counts of the plan.
        for l in md
            .lines()
            .filter(|l| l.contains("resnet50-w4a8-greedy-0.025"))
        {
            if l.starts_with('|') {
                assert!(l.contains("not run"), "{f}: {l}");
            }
        }
    }
    let md = read(&tmp, "paper/claims.md");
    assert_eq!(
        row(&md, "| 84.7 | -0.626 |"),
        "| ResNet50 W4A8 greedy β=0.025 (fig. 5b) | 84.7 | -0.626 | greedy β=0.025, resnet50 \
         [resnet50-w4a8-greedy-0.025] | same | not run | not run | not run | not run | not run | \
         not run | not run | not run |"
    );
    assert!(md.contains("Verdict: inconclusive (no network has both a greedy and a one-shot run)."));
    let md = read(&tmp, "paper/search-cost.md");
    assert_eq!(
        row(&md, "resnet50-w4a8-greedy-0.025"),
        "| resnet50-w4a8-greedy-0.025 | resnet50 | W4A8 | greedy | 0.025 | rtn | — | not run | \
         not run | not run | not run | not run | not run | not run | not run | not run |"
    );
    let md = read(&tmp, "paper/summary.md");
    assert!(row(&md, "resnet50-w4a8-greedy-0.025").ends_with("| — | not run |"));
    assert!(md.contains("No runs were found"));
    let md = read(&tmp, "embedded/summary.md");
    assert!(row(&md, "rt-w4a4-random |").ends_with("| — | not run |"));
    assert!(row(&md, "rt-w4a4-greedy-0.02.toml").ends_with(&format!("| 0.0200 | {} |", rid(&G))));
}

#[test]
fn search_cost_per_run_and_relative_to_greedy() {
    let (tmp, _, _) = setup();
    let md = read(&tmp, "embedded/search-cost.md");
    assert_eq!(
        row(&md, "| rt-w4a4-exhaustive |"),
        format!(
            "| rt-w4a4-exhaustive | resnet-tiny | W4A4 | exhaustive | 0 | rtn | 0,1,2 | 8 | 8.0 | — \
             | — | — | 40.0 | cpu | 512 | {} |",
            rid(&X)
        )
    );
    // The file written before the rename (`int8_top1`) is read like the others.
    assert_eq!(
        row(&md, "| rt-w4a8-one-shot |"),
        format!(
            "| rt-w4a8-one-shot | resnet-tiny | W4A8 | one-shot | 0 | rtn | all | 7 | 10.0 | — | — \
             | — | 100.0 | cpu | 512 | {} |",
            rid(&O8)
        )
    );
    assert!(md.contains("| rt-w4a4-greedy-auto | resnet-tiny | W4A4 | greedy | auto (0.0123) |"));
    // Over layers 0,1,2 the reference is GX (greedy β=0): exhaustive 8/6 evaluations, 40/30 s.
    assert!(md.contains(
        "| resnet-tiny | W4A4 | 0,1,2 | exhaustive β=0 [rt-w4a4-exhaustive] | 1.333 | 1.333 | \
         1.333 |"
    ));
    assert!(md.contains(
        "| resnet-tiny | W4A4 | 0,1,2 | random [rt-w4a4-random-sub] | 0.500 | 0.500 | 0.500 |"
    ));
    assert!(md.contains(
        "| resnet-tiny | W4A4 | 0,1,2 | greedy β=0 [rt-w4a4-greedy-sub] (reference) | 1.000 | \
         1.000 | 1.000 |"
    ));
    // Over all layers of W4A4 there is no β=0 greedy: the first greedy (β=0.02) is the
    // reference; one-shot: 7/10 evaluations, 50/100 s.
    assert!(md.contains(
        "| resnet-tiny | W4A4 | all | one-shot [rt-w4a4-one-shot] | 0.700 | 0.700 | 0.500 |"
    ));
    assert!(md.contains("| greedy β=0.02 [rt-w4a4-greedy-0.02] (reference) |"));
    // W4A8: the one-shot run (written before the rename of `int8_top1`): 7/10 evaluations,
    // 10/10 work, 100/100 s.
    assert!(md.contains(
        "| resnet-tiny | W4A8 | all | one-shot [rt-w4a8-one-shot] | 0.700 | 1.000 | 1.000 |"
    ));
}

#[test]
fn exhaustive_gap_per_k() {
    let (tmp, _, _) = setup();
    let md = read(&tmp, "embedded/exhaustive.md");
    assert!(md.contains(
        "## resnet-tiny (stands for ResNet50) W4A4, exhaustive β=0 [rt-w4a4-exhaustive]"
    ));
    assert!(md.contains("Searched layers: 0,1,2."));
    assert!(md.contains(
        "| k | optimal top-1 (%) [95% Wilson] | optimal set | greedy β=0 [rt-w4a4-greedy-sub] \
         top-1 (%) [95% Wilson] | greedy β=0 [rt-w4a4-greedy-sub] gap (points) | greedy β=0 \
         [rt-w4a4-greedy-sub] ratio | random [rt-w4a4-random-sub] top-1 (%) [95% Wilson] | \
         random [rt-w4a4-random-sub] gap (points) | random [rt-w4a4-random-sub] ratio |"
    ));
    // k = 2: optimum 0.797 ({0,1}); greedy 0.795: gap 0.20, ratio 0.795/0.797 = 0.9975;
    // random 0.78: gap 1.70, ratio 0.9787.
    assert!(
        md.contains(
            "| 2 | 79.70 [75.99, 82.95] | {0,1} | 79.50 [75.78, 82.76] | 0.20 | 0.9975 | 78.00 \
             [74.14, 81.31] | 1.70 | 0.9787 |"
        ),
        "{md}"
    );
    assert!(md.contains(
        "| 0 | 79.80 [76.19, 83.13] | {} | 79.80 [76.19, 83.13] | 0.00 | 1.0000 | 79.80 [76.19, \
         83.13] | 0.00 | 1.0000 |"
    ));
    // Full-ground-set runs are not compared; the unrun random run is named.
    assert!(!md.contains("rt-w4a4-greedy-0.02"));
    assert!(md.contains("not run (searched layers unknown until run): random [rt-w4a4-random]"));
    assert!(read(&tmp, "paper/exhaustive.md").contains("This suite plans no exhaustive run."));
}

#[test]
fn greedy_advantage_rule() {
    let p = |k, rel_size, top1| TradeOff {
        step: Some(k),
        rel_size,
        top1,
    };
    let z = [
        p(0, 0.25, 0.70),
        p(1, 0.22, 0.70),
        p(2, 0.18, 0.69),
        p(3, 0.15, 0.66),
        p(4, 0.125, 0.5),
    ];
    let o = [
        p(0, 0.25, 0.70),
        p(1, 0.20, 0.695),
        p(2, 0.17, 0.67),
        p(3, 0.16, 0.60),
        p(4, 0.125, 0.5),
    ];
    let a = greedy_advantage(&z, &o, 1.0).unwrap();
    assert_eq!(a.max_step, Some(3));
    assert!((a.max_points - 6.0).abs() < 1e-9);
    assert!((a.mean_points - 1.125).abs() < 1e-9);
    assert_eq!((a.compared, a.above), (4, 1));
    // No greedy step small enough: nothing compared.
    assert_eq!(greedy_advantage(&z[..1], &o[1..2], 1.0), None);
}

#[test]
fn bad_baselines_are_errors_naming_the_file() {
    let tmp = TempDir::new();
    fs::copy(
        baselines_dir().join("literature.toml"),
        tmp.0.join("literature.toml"),
    )
    .unwrap();
    let paper = fs::read_to_string(baselines_dir().join("paper.toml")).unwrap();
    fs::write(
        tmp.0.join("paper.toml"),
        paper.replace(
            "reference_method = \"Greedy search (the paper)\"",
            "reference_method = \"X\"",
        ),
    )
    .unwrap();
    let e = write_reports(&[], &tmp.0, &tmp.0.join("r")).unwrap_err();
    assert!(format!("{e:#}").contains("paper.toml"), "{e:#}");
    // The real files load.
    let b = load_baselines(&baselines_dir()).unwrap();
    assert_eq!(b.literature.len(), 5);
    assert_eq!(b.paper.result.len(), 5);
}

#[test]
fn an_empty_plan_writes_an_index_saying_so() {
    let tmp = TempDir::new();
    let w = write_reports(&[], &baselines_dir(), &tmp.0.join("r")).unwrap();
    assert_eq!(w, [tmp.0.join("r").join("README.md")]);
    assert!(fs::read_to_string(&w[0])
        .unwrap()
        .contains("The plan has no runs."));
}

/// A run over another post-training method is not the paper's greedy: the claims, table 1 and
/// figure 7 leave it out, and the figures of its pair draw it under its own label.
#[test]
fn runs_over_a_ptq_method_stay_out_of_the_paper_comparisons() {
    let tmp = TempDir::new();
    let results = tmp.0.join("results");
    let mut plan: Vec<PlannedRun> = ALL.iter().map(|f| store(&results, f)).collect();
    let g = plan
        .iter_mut()
        .find(|p| p.experiment == "rt-w4a4-greedy-0.02")
        .unwrap();
    g.method = MethodName::Mmse;
    write_reports(&plan, &baselines_dir(), &tmp.0.join("reports")).unwrap();
    for f in ["claims.md", "table1.md"] {
        let md = read(&tmp, &format!("embedded/{f}"));
        assert!(!md.contains("[rt-w4a4-greedy-0.02]"), "{f}:\n{md}");
        assert!(md.contains("[rt-w4a4-greedy-auto]"), "{f}");
    }
    assert!(!read(&tmp, "embedded/fig7.svg").contains("greedy β=0.02"));
    assert!(read(&tmp, "embedded/fig6-w4a4-resnet-tiny.svg").contains("greedy β=0.02 over mmse"));
}

/// Runs without held-out scores (the paper suite's) answer a method on the search images, and
/// only when their data settings are the same (same images).
#[test]
fn measured_methods_without_held_out_scores_compare_on_the_search_images() {
    // MMSE on every layer at W4A4: -0.7 points on the search images (FP32 80 %).
    const U: Fx = Fx {
        exp: "rt-w4a4-mmse",
        strategy: "uniform",
        steps: &[(0.25, 0.798), (0.125, 0.793)],
        ..BASE
    };
    for (data_g, data_u, answered) in [
        ("[data]\nseed = 0\n", "[data]\nseed = 0\n", true),
        ("[data]\nseed = 0\n", "[data]\nseed = 1\n", false),
    ] {
        let tmp = TempDir::new();
        let results = tmp.0.join("results");
        let mut plan = vec![store(&results, &G), store(&results, &U)];
        plan[1].method = MethodName::Mmse;
        for (p, data) in plan.iter().zip([data_g, data_u]) {
            let dir = p.run_dir.as_ref().unwrap();
            let mut t = mpq_tables::read_run(dir).unwrap();
            t.run.manifest = data.to_string();
            mpq_tables::write_run(dir, &t).unwrap();
        }
        write_reports(&plan, &baselines_dir(), &tmp.0.join("reports")).unwrap();
        let t1 = read(&tmp, "embedded/table1.md");
        let r = row(&t1, "[rt-w4a4-mmse]");
        assert!(
            r.contains("| -0.700 | — | — | on the search images |"),
            "{r}"
        );
        if answered {
            // G's smallest step within -0.7 points: step 2 (0.17, -0.3 points).
            let r = row(&t1, "greedy β=0.02 [rt-w4a4-greedy-0.02] | mmse");
            assert!(r.contains("| -0.700 | 2 | 0.1700 | 79.70 ["), "{r}");
            assert!(r.contains("| -0.300 | +0.400 (search images) | — |"), "{r}");
            let claims = read(&tmp, "embedded/claims.md");
            assert!(claims.contains("+0.400 (search images)"), "{claims}");
            assert!(
                claims.contains("Per method: mmse: inconclusive."),
                "{claims}"
            );
        } else {
            assert!(
                t1.contains(
                    "*No finished greedy run of this network and pair on the same images.*"
                ),
                "{t1}"
            );
        }
    }
}
