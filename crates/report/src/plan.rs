//! The caller's plan (which runs are current, per suite) and the results of its runs.
//!
//! The caller (the runner, through `mpq reproduce` / `mpq report`) decides which runs are
//! current and passes one [`PlannedRun`] per manifest; a run without a result (`run_dir: None`)
//! is "not run" everywhere. This module reads the `runs.parquet` and `steps.parquet` of each
//! planned run directory (columns of `results/README.md`; a column an older file lacks is null)
//! and gives every run its labels and its place in the tables' order.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::load::{floats, ints, read_parquet, strings};
use crate::summary::TradeOff;

/// One manifest of the plan: what it asks for and, if it ran, where its up-to-date result is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedRun {
    /// The directory under `experiments/` the manifest lives in: `embedded`, `paper`, ...
    pub suite: String,
    /// The manifest's experiment name.
    pub experiment: String,
    /// The manifest file.
    pub manifest: PathBuf,
    /// The network, e.g. `resnet-tiny`, `resnet50`.
    pub arch: String,
    /// The paper's network this run reproduces or stands in for (`ResNet18`, `ResNet50`,
    /// `MobileNetV2`, `Xception`); `None` for a run with no counterpart in the paper.
    pub paper_model: Option<String>,
    /// The low pair, e.g. `W4A8`.
    pub pair: String,
    /// `greedy`, `one-shot`, `lazy-greedy`, `screened-greedy`, `exhaustive` or `random`.
    pub strategy: String,
    /// Beta as written in the manifest: `"0"`, `"0.008"`, `"auto"`.
    pub beta: String,
    /// `results/<experiment>/<run_id>/` of the up-to-date finished run; `None` = not run.
    pub run_dir: Option<PathBuf>,
}

/// The `runs.parquet` row of a finished run (the columns the reports use).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct RunInfo {
    pub run_id: String,
    pub beta: Option<f64>,
    pub fp32_top1: Option<f64>,
    pub int8_top1: Option<f64>,
    pub device: Option<String>,
    pub wall_s: Option<f64>,
    pub evals: Option<i64>,
    pub work: Option<f64>,
    pub n_layers: Option<i64>,
    pub n_search_images: Option<i64>,
    /// Comma-separated searchable layers of a reduced ground set; `None` = all layers.
    pub search_layers: Option<String>,
}

/// One row of `steps.parquet`.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Step {
    pub step: i64,
    pub top1: Option<f64>,
    pub rel_size: Option<f64>,
    pub size_bits: Option<f64>,
    pub evals: Option<i64>,
    pub work: Option<f64>,
    pub low_layers: Option<String>,
}

impl Step {
    /// Model size in MB: `size_bits / 8 / 10^6`.
    pub fn size_mb(&self) -> Option<f64> {
        self.size_bits.map(|b| b / 8.0 / 1e6)
    }
}

/// A finished run's tables.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct RunResult {
    pub info: RunInfo,
    /// Sorted by step, step 0 first.
    pub steps: Vec<Step>,
}

impl RunResult {
    /// The steps that have a relative size and a top-1, as trade-off points.
    pub fn trade_offs(&self) -> Vec<TradeOff> {
        self.steps
            .iter()
            .filter_map(|s| {
                Some(TradeOff {
                    step: Some(s.step),
                    rel_size: s.rel_size?,
                    top1: s.top1?,
                })
            })
            .collect()
    }

    /// The step numbered `k`.
    pub fn step(&self, k: Option<i64>) -> Option<&Step> {
        self.steps.iter().find(|s| Some(s.step) == k)
    }

    /// `(step, change)` of every step with a top-1: top-1 minus the run's FP32 top-1, in points.
    /// Empty when the FP32 top-1 is missing.
    pub fn changes(&self) -> Vec<(&Step, f64)> {
        let Some(fp32) = self.info.fp32_top1 else {
            return Vec::new();
        };
        self.steps
            .iter()
            .filter_map(|s| s.top1.map(|t| (s, 100.0 * (t - fp32))))
            .collect()
    }
}

/// A planned run and, when it ran, its result.
#[derive(Clone, Debug)]
pub(crate) struct Entry<'a> {
    pub plan: &'a PlannedRun,
    pub result: Option<RunResult>,
}

/// Lower-case letters and digits only: `ResNet50` and `resnet50` name the same network.
fn norm(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Strategies that use beta (one-shot and random ignore it).
fn uses_beta(strategy: &str) -> bool {
    !matches!(strategy, "one-shot" | "random")
}

/// Order of strategies in tables and legends.
fn strategy_rank(s: &str) -> usize {
    [
        "greedy",
        "lazy-greedy",
        "screened-greedy",
        "one-shot",
        "random",
        "exhaustive",
    ]
    .iter()
    .position(|x| *x == s)
    .unwrap_or(usize::MAX)
}

/// Beta settings in numeric order, `auto` (and anything else) after the numbers.
fn beta_key(b: &str) -> (u8, f64, &str) {
    match b.parse::<f64>() {
        Ok(x) if x.is_finite() => (0, x, b),
        _ => (1, 0.0, b),
    }
}

impl PlannedRun {
    /// Whether `arch` is not the paper's network itself but a stand-in for it.
    pub fn is_stand_in(&self) -> bool {
        self.paper_model
            .as_deref()
            .is_some_and(|m| norm(m) != norm(&self.arch))
    }

    /// Whether this run's `paper_model` is `model` (`ResNet50` = `resnet50`).
    pub fn stands_for(&self, model: &str) -> bool {
        self.paper_model
            .as_deref()
            .is_some_and(|m| norm(m) == norm(model))
    }

    /// The network as figures name it: `resnet50`, or `resnet-tiny (stands for ResNet50)`.
    pub fn arch_label(&self) -> String {
        match &self.paper_model {
            Some(m) if self.is_stand_in() => format!("{} (stands for {m})", self.arch),
            _ => self.arch.clone(),
        }
    }

    /// The paper's network as the claims name it: `ResNet50`, or
    /// `ResNet50 (stand-in: resnet-tiny)`.
    pub fn model_label(&self) -> String {
        match &self.paper_model {
            Some(m) if self.is_stand_in() => format!("{m} (stand-in: {})", self.arch),
            Some(m) => m.clone(),
            None => self.arch.clone(),
        }
    }

    /// Whether the manifest's beta is zero (`"0"`, `"0.0"`).
    pub fn beta_is_zero(&self) -> bool {
        self.beta.parse::<f64>().is_ok_and(|b| b == 0.0)
    }

    /// The manifest's beta as a number, `None` for `auto`.
    pub fn beta_value(&self) -> Option<f64> {
        self.beta.parse::<f64>().ok().filter(|b| b.is_finite())
    }
}

/// The beta part of a label: `β=0`, `β=0.025`, `β=auto (0.0123)` (the value the search used,
/// when the run has one), `β=auto`.
pub(crate) fn beta_label(plan: &PlannedRun, used: Option<f64>) -> String {
    match (plan.beta_value(), used) {
        (None, Some(b)) => format!("β={} ({b:.4})", plan.beta),
        _ => format!("β={}", plan.beta),
    }
}

impl Entry<'_> {
    /// The curve's label: `greedy β=0`, `greedy β=auto (0.0123)`, `one-shot`.
    pub fn label(&self) -> String {
        let p = self.plan;
        if uses_beta(&p.strategy) {
            let used = self.result.as_ref().and_then(|r| r.info.beta);
            format!("{} {}", p.strategy, beta_label(p, used))
        } else {
            p.strategy.clone()
        }
    }

    /// Whether the run searched all layers (or is not run, so not known to search fewer).
    pub fn full_ground_set(&self) -> bool {
        self.search_layers().is_none()
    }

    pub fn search_layers(&self) -> Option<&str> {
        self.result
            .as_ref()
            .and_then(|r| r.info.search_layers.as_deref())
    }

    /// The order of every table: arch, pair, strategy (greedy, lazy-greedy, screened-greedy,
    /// one-shot, random, exhaustive, others), beta (numbers ascending, then `auto`),
    /// experiment, manifest.
    pub fn order(&self, other: &Self) -> Ordering {
        let (a, b) = (self.plan, other.plan);
        (&a.arch, &a.pair)
            .cmp(&(&b.arch, &b.pair))
            .then(strategy_rank(&a.strategy).cmp(&strategy_rank(&b.strategy)))
            .then(a.strategy.cmp(&b.strategy))
            .then(
                beta_key(&a.beta)
                    .partial_cmp(&beta_key(&b.beta))
                    .unwrap_or(Ordering::Equal),
            )
            .then(a.experiment.cmp(&b.experiment))
            .then(a.manifest.cmp(&b.manifest))
    }
}

/// Reads the result of a planned run: its `runs.parquet` (the first row) and `steps.parquet`
/// (the rows of that run_id, sorted by step). A missing `steps.parquet` gives no steps.
pub(crate) fn load_run(dir: &Path) -> anyhow::Result<RunResult> {
    let runs = read_parquet(&dir.join("runs.parquet"))?;
    let ctx = || format!("reading {}", dir.join("runs.parquet").display());
    anyhow::ensure!(
        runs.height() >= 1,
        "{}: no row",
        dir.join("runs.parquet").display()
    );
    let s = |c: &str| strings(&runs, c).with_context(ctx).map(|v| v[0].clone());
    let f = |c: &str| floats(&runs, c).with_context(ctx).map(|v| v[0]);
    let i = |c: &str| ints(&runs, c).with_context(ctx).map(|v| v[0]);
    let info = RunInfo {
        run_id: s("run_id")?.unwrap_or_default(),
        beta: f("beta")?,
        fp32_top1: f("fp32_top1")?,
        int8_top1: f("int8_top1")?,
        device: s("device")?,
        wall_s: f("wall_s")?,
        evals: i("evals")?,
        work: f("work")?,
        n_layers: i("n_layers")?,
        n_search_images: i("n_search_images")?,
        search_layers: s("search_layers")?.filter(|x| !x.is_empty()),
    };
    let mut steps = Vec::new();
    let path = dir.join("steps.parquet");
    if path.is_file() {
        let df = read_parquet(&path)?;
        let ctx = || format!("reading {}", path.display());
        let run_id = strings(&df, "run_id").with_context(ctx)?;
        let step = ints(&df, "step").with_context(ctx)?;
        let top1 = floats(&df, "top1").with_context(ctx)?;
        let rel = floats(&df, "rel_size").with_context(ctx)?;
        let bits = floats(&df, "size_bits").with_context(ctx)?;
        let evals = ints(&df, "evals").with_context(ctx)?;
        let work = floats(&df, "work").with_context(ctx)?;
        let low = strings(&df, "low_layers").with_context(ctx)?;
        for r in 0..df.height() {
            let same_run = run_id[r].as_deref().is_none_or(|id| id == info.run_id);
            if let (true, Some(k)) = (same_run, step[r]) {
                steps.push(Step {
                    step: k,
                    top1: top1[r],
                    rel_size: rel[r],
                    size_bits: bits[r],
                    evals: evals[r],
                    work: work[r],
                    low_layers: low[r].clone(),
                });
            }
        }
    }
    steps.sort_by_key(|s| s.step);
    Ok(RunResult { info, steps })
}

/// The entries of one suite, results loaded, in table order.
pub(crate) fn entries<'a>(plan: &[&'a PlannedRun]) -> anyhow::Result<Vec<Entry<'a>>> {
    let mut out = Vec::with_capacity(plan.len());
    for p in plan {
        let result = match &p.run_dir {
            Some(d) => {
                Some(load_run(d).with_context(|| format!("loading the run of {}", p.experiment))?)
            }
            None => None,
        };
        out.push(Entry { plan: p, result });
    }
    out.sort_by(|a, b| a.order(b));
    Ok(out)
}
