//! `mpq bench search`: the search's speed-ups measured against the paper's naive greedy search
//! on the same inputs, and how far each one's result is from it.
//!
//! For each embedded model and bit pair, every path runs in its own child process (`mpq bench
//! search-path`), so that each one's thread settings and peak memory are its own: naive greedy
//! (every configuration a full forward pass, one after the other: the paper's cost), greedy
//! with prefix reuse alone, greedy with prefix reuse and parallel candidates (the default; both
//! exact), lazy-greedy, screened-greedy, one-shot and random. Per path: evaluations, work
//! (full-evaluation equivalents), layer multiply-accumulates computed (counted by the
//! evaluator), the search's wall time, the child's peak resident memory, the ratio of time to
//! naive greedy's, and agreement with naive greedy: the leading steps choosing the same layers,
//! the largest top-1 difference at any step, and the difference of the areas under the top-1
//! against relative size curves. One run's ratio is the figure that counts: the machines are
//! noisy, and every path of a pair runs back to back.
use crate::core::evaluator::ModelEvaluator;
use crate::core::{calibrate, problem_of, strategy_of};
use crate::run::prepare;
use anyhow::{bail, Context, Result};
use mpq_quant::{rel_size, size_bits};
use mpq_vocab::{BitPair, StrategyName};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One path: its label, its strategy and evaluator settings.
pub struct PathSpec {
    pub label: &'static str,
    pub strategy: StrategyName,
    /// `runtime.prefix_reuse` and `runtime.parallel` (`None`: the manifest's).
    pub prefix_reuse: Option<bool>,
    pub parallel: Option<bool>,
}

impl PathSpec {
    /// The `--set` options that select this path.
    fn sets(&self) -> Vec<String> {
        let mut v = vec![format!("search.strategy={}", self.strategy)];
        if let Some(b) = self.prefix_reuse {
            v.push(format!("runtime.prefix_reuse={b}"));
        }
        if let Some(b) = self.parallel {
            v.push(format!("runtime.parallel={b}"));
        }
        v
    }
}

/// A path labelled by its strategy's name.
const fn path(strategy: StrategyName) -> PathSpec {
    PathSpec {
        label: strategy.as_str(),
        strategy,
        prefix_reuse: None,
        parallel: None,
    }
}

/// The paths compared, the reference first.
pub const PATHS: &[PathSpec] = &[
    PathSpec {
        label: "greedy, naive",
        strategy: StrategyName::Greedy,
        prefix_reuse: Some(false),
        parallel: None,
    },
    PathSpec {
        label: "greedy, prefix reuse",
        strategy: StrategyName::Greedy,
        prefix_reuse: Some(true),
        parallel: Some(false),
    },
    PathSpec {
        label: "greedy, prefix reuse + parallel",
        strategy: StrategyName::Greedy,
        prefix_reuse: Some(true),
        parallel: None,
    },
    path(StrategyName::LazyGreedy),
    path(StrategyName::ScreenedGreedy),
    path(StrategyName::OneShot),
    path(StrategyName::Random),
];

/// What a child reports about one search.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PathResult {
    pub evals: u64,
    pub work: f64,
    pub macs: u64,
    pub wall_s: f64,
    pub peak_rss_kib: u64,
    /// The layer added at each step 1..=N.
    pub order: Vec<u64>,
    /// Top-1 at steps 0..=N.
    pub top1: Vec<f64>,
    /// Relative size at steps 0..=N.
    pub rel_size: Vec<f64>,
}

/// Peak resident memory of this process (Linux `VmHWM`), KiB; 0 where unknown.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The child: one search of `manifest` with `sets`, reported as TOML on stdout.
pub fn search_path(manifest: &Path, sets: &[String]) -> Result<String> {
    let p = prepare(manifest, sets)?;
    let c = calibrate(&p)?;
    let m = &p.resolved.manifest;
    if m.search.strategy == StrategyName::Exhaustive {
        bail!(
            "{}: the bench compares sequential strategies",
            manifest.display()
        );
    }
    let mut eval = ModelEvaluator::new(&c.model, &c.search, c.low, c.high, &m.runtime)?;
    let t = Instant::now();
    let r = mpq_search::run(
        strategy_of(m),
        &problem_of(m, &p.arch),
        &mut eval,
        &mut mpq_search::NoObserver,
    )
    .map_err(|e| anyhow::anyhow!("{}: search: {e}", manifest.display()))?;
    let wall_s = t.elapsed().as_secs_f64();
    let n_weights = p.arch.n_weights();
    let rel: Vec<f64> = r
        .steps
        .iter()
        .map(|s| {
            let bits = size_bits(&n_weights, |i| {
                if s.low.contains(&i) {
                    c.low.w
                } else {
                    c.high.w
                }
            });
            rel_size(bits, &n_weights)
        })
        .collect();
    let out = PathResult {
        evals: r.evals() as u64,
        work: r.work(),
        macs: eval.prefix.work().macs(),
        wall_s,
        peak_rss_kib: peak_rss_kib(),
        order: r.order().iter().map(|&j| j as u64).collect(),
        top1: r.steps.iter().map(|s| s.top1).collect(),
        rel_size: rel,
    };
    Ok(toml::to_string(&out)?)
}

/// Area under a top-1 against relative size curve (trapezoids over the points sorted by size).
fn area(rel: &[f64], top1: &[f64]) -> f64 {
    let mut pts: Vec<(f64, f64)> = rel.iter().copied().zip(top1.iter().copied()).collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    pts.windows(2)
        .map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0)
        .sum()
}

/// Leading steps at which `a` and `b` add the same layer.
fn same_prefix(a: &[u64], b: &[u64]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Options of `mpq bench search`.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// The `mpq` executable to run the paths with.
    pub exe: PathBuf,
    /// Manifests of the models (their pair and strategy are overridden).
    pub manifests: Vec<PathBuf>,
    pub pairs: Vec<BitPair>,
    /// Extra `--set` options for every path (e.g. fewer search images).
    pub sets: Vec<String>,
}

fn run_child(o: &BenchOptions, manifest: &Path, sets: &[String]) -> Result<PathResult> {
    let mut cmd = std::process::Command::new(&o.exe);
    cmd.arg("bench").arg("search-path").arg(manifest);
    for s in sets {
        cmd.arg("--set").arg(s);
    }
    let out = cmd
        .output()
        .with_context(|| format!("running {}", o.exe.display()))?;
    if !out.status.success() {
        bail!(
            "bench path {sets:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    toml::from_str(&String::from_utf8_lossy(&out.stdout)).context("reading a bench path's report")
}

/// Runs every path for every model and pair; returns the Markdown table, and calls `row` with
/// each line as it is measured.
pub fn bench_search(o: &BenchOptions, row: &mut dyn FnMut(&str)) -> Result<String> {
    let mut md = String::new();
    let header = "| model | pair | path | evaluations | work | MACs (G) | wall (s) | peak RSS (MiB) | time / naive | same first steps | max top-1 diff (pt) | AUC diff (pt) |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|";
    md.push_str(header);
    md.push('\n');
    row(header);
    for manifest in &o.manifests {
        let arch = crate::manifest::load(manifest, &o.sets)?
            .manifest
            .model
            .arch;
        for pair in &o.pairs {
            let mut naive: Option<PathResult> = None;
            for p in PATHS {
                let mut sets = o.sets.clone();
                sets.push(format!("quant.pair={pair}"));
                sets.extend(p.sets());
                let r = run_child(o, manifest, &sets)?;
                let reference = naive.get_or_insert_with(|| r.clone()).clone();
                let max_diff = r
                    .top1
                    .iter()
                    .zip(&reference.top1)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max);
                let auc = area(&r.rel_size, &r.top1) - area(&reference.rel_size, &reference.top1);
                let line = format!(
                    "| {arch} | {pair} | {} | {} | {:.1} | {:.2} | {:.1} | {:.0} | {:.2} | {}/{} | {:.2} | {:+.3} |",
                    p.label,
                    r.evals,
                    r.work,
                    r.macs as f64 / 1e9,
                    r.wall_s,
                    r.peak_rss_kib as f64 / 1024.0,
                    r.wall_s / reference.wall_s,
                    same_prefix(&r.order, &reference.order),
                    reference.order.len(),
                    100.0 * max_diff,
                    100.0 * auc,
                );
                row(&line);
                let _ = writeln!(md, "{line}");
            }
        }
    }
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_and_prefixes() {
        // A unit square under a flat curve at 0.5, points given out of order.
        assert_eq!(area(&[1.0, 0.0, 0.5], &[0.5, 0.5, 0.5]), 0.5);
        // A triangle: (0,0) -> (1,1).
        assert_eq!(area(&[0.0, 1.0], &[0.0, 1.0]), 0.5);
        assert_eq!(same_prefix(&[1, 2, 3], &[1, 2, 4]), 2);
        assert_eq!(same_prefix(&[1, 2], &[1, 2]), 2);
    }
}
