//! The caller's plan (which runs are current, per suite) and the results of its runs.
//!
//! The caller (the runner, through `mpq reproduce` / `mpq report`) decides which runs are
//! current and passes one [`PlannedRun`] per manifest; a run without a result (`run_dir: None`)
//! is "not run" everywhere. This module reads the `runs` and `steps` rows of each planned run
//! directory (the vocabulary's row types, through `mpq_tables`) and gives every run its labels
//! and its place in the tables' order.

use std::cmp::Ordering;
use std::path::PathBuf;

use anyhow::Context;
use mpq_stats::Correctness;
use mpq_vocab::{
    ArchName, BetaSetting, BitPair, MethodName, PaperModel, RunRow, StepRow, StrategyName,
};

use crate::rules::TradeOff;

/// One manifest of the plan: what it asks for and, if it ran, where its up-to-date result is.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedRun {
    /// The directory under `experiments/` the manifest lives in: `embedded`, `paper`, ...
    pub suite: String,
    /// The manifest's experiment name.
    pub experiment: String,
    /// The manifest file.
    pub manifest: PathBuf,
    pub arch: ArchName,
    /// The paper's network this run reproduces or stands in for; `None` for a run with no
    /// counterpart in the paper.
    pub paper_model: Option<PaperModel>,
    /// The low pair.
    pub pair: BitPair,
    pub strategy: StrategyName,
    /// Beta as set in the manifest.
    pub beta: BetaSetting,
    /// `results/<experiment>/<run_id>/` of the up-to-date finished run; `None` = not run.
    pub run_dir: Option<PathBuf>,
    /// index of this run among its experiment's repeats (experiment.repeats > 1); null: a single run
    pub repeat: Option<u32>,
    /// `quant.method`: the post-training method of the layers at the low pair.
    pub method: MethodName,
}

/// A finished run's `runs` row and its steps (sorted by step, step 0 first).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RunResult {
    pub run: RunRow,
    pub steps: Vec<StepRow>,
}

/// Model size in MB of a step: `size_bits / 8 / 10^6`.
pub(crate) fn size_mb(s: &StepRow) -> f64 {
    s.size_bits as f64 / 8.0 / 1e6
}

impl RunResult {
    /// The step numbered `k`.
    pub fn step(&self, k: Option<i64>) -> Option<&StepRow> {
        self.steps.iter().find(|s| Some(i64::from(s.step)) == k)
    }
}

/// Which images a top-1 was measured on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Score {
    /// The images the search chose on (`steps.top1`).
    Search,
    /// Held-out images neither calibration nor search saw (`steps.test_top1`).
    HeldOut,
}

impl Score {
    /// How tables and axes name it.
    pub fn describe(self) -> &'static str {
        match self {
            Score::Search => "on the search images",
            Score::HeldOut => "on the held-out images",
        }
    }

    /// Held-out when every one of `results` has held-out scores (and there is at least one),
    /// else the search images.
    pub fn of<'a>(results: impl IntoIterator<Item = &'a RunResult>) -> Score {
        let mut any = false;
        for r in results {
            if !r.has_held_out() {
                return Score::Search;
            }
            any = true;
        }
        if any {
            Score::HeldOut
        } else {
            Score::Search
        }
    }
}

impl RunResult {
    /// Whether the run scored held-out images for the FP32 model and every step.
    pub fn has_held_out(&self) -> bool {
        let r = &self.run;
        r.n_test_images.is_some_and(|n| n > 0)
            && r.fp32_test_top1.is_some()
            && r.high_test_top1.is_some()
            && self.steps.iter().all(|s| s.test_top1.is_some())
    }

    /// Images a top-1 of this run was measured on.
    pub fn images(&self, score: Score) -> u32 {
        match score {
            Score::Search => self.run.n_search_images,
            Score::HeldOut => self.run.n_test_images.unwrap_or(0),
        }
    }

    /// The FP32 model's top-1.
    pub fn fp32(&self, score: Score) -> Option<f64> {
        match score {
            Score::Search => Some(self.run.fp32_top1),
            Score::HeldOut => self.run.fp32_test_top1,
        }
    }

    /// Every layer at the high pair.
    pub fn high(&self, score: Score) -> Option<f64> {
        match score {
            Score::Search => Some(self.run.high_top1),
            Score::HeldOut => self.run.high_test_top1,
        }
    }

    /// The steps as trade-off points with the top-1 of `score` (steps without one left out).
    pub fn points(&self, score: Score) -> Vec<TradeOff> {
        self.steps
            .iter()
            .filter_map(|s| {
                Some(TradeOff {
                    step: Some(i64::from(s.step)),
                    rel_size: s.rel_size,
                    top1: step_top1(s, score)?,
                })
            })
            .collect()
    }

    /// The FP32 model's per-image held-out result.
    pub fn fp32_correct(&self) -> Option<Correctness> {
        correctness(&self.run, self.run.fp32_test_correct.as_deref())
    }

    /// Step `s`'s per-image held-out result.
    pub fn step_correct(&self, s: &StepRow) -> Option<Correctness> {
        correctness(&self.run, s.test_correct.as_deref())
    }
}

/// A step's top-1 on `score`'s images.
pub(crate) fn step_top1(s: &StepRow, score: Score) -> Option<f64> {
    match score {
        Score::Search => Some(s.top1),
        Score::HeldOut => s.test_top1,
    }
}

fn correctness(run: &RunRow, hex: Option<&str>) -> Option<Correctness> {
    Correctness::from_hex(run.n_test_images? as usize, hex?).ok()
}

/// A planned run and, when it ran, its result.
#[derive(Clone, Debug)]
pub(crate) struct Entry<'a> {
    pub plan: &'a PlannedRun,
    pub result: Option<RunResult>,
}

impl PlannedRun {
    /// Whether `arch` is not the paper's network itself but a stand-in for it.
    pub fn is_stand_in(&self) -> bool {
        self.paper_model
            .is_some_and(|m| self.arch.paper_model() != Some(m))
    }

    /// Whether the run quantizes with the spec's quantizer (`quant.method = "rtn"`): only such
    /// runs stand for the paper's method in the claims, table 1 and figure 7.
    pub fn uses_spec_quantizer(&self) -> bool {
        self.method == MethodName::Rtn
    }

    /// Whether this run's `paper_model` is `model`.
    pub fn stands_for(&self, model: PaperModel) -> bool {
        self.paper_model == Some(model)
    }

    /// The network as figures name it: `resnet50`, or `resnet-tiny (stands for ResNet50)`.
    pub fn arch_label(&self) -> String {
        match self.paper_model {
            Some(m) if self.is_stand_in() => format!("{} (stands for {m})", self.arch),
            _ => self.arch.to_string(),
        }
    }

    /// The paper's network as the claims name it: `ResNet50`, or
    /// `ResNet50 (stand-in: resnet-tiny)`.
    pub fn model_label(&self) -> String {
        match self.paper_model {
            Some(m) if self.is_stand_in() => format!("{m} (stand-in: {})", self.arch),
            Some(m) => m.to_string(),
            None => self.arch.to_string(),
        }
    }

    /// Whether the manifest's beta is zero.
    pub fn beta_is_zero(&self) -> bool {
        self.beta == BetaSetting::Fixed(0.0)
    }
}

/// The beta part of a label: `β=0`, `β=0.025`, `β=auto (0.0123)` (the value the search used,
/// when the run has one), `β=auto`.
pub(crate) fn beta_label(plan: &PlannedRun, used: Option<f64>) -> String {
    match (plan.beta, used) {
        (BetaSetting::Auto, Some(b)) => format!("β={} ({b:.4})", plan.beta),
        _ => format!("β={}", plan.beta),
    }
}

impl Entry<'_> {
    /// The curve's label: `greedy β=0`, `greedy β=auto (0.0123)`, `one-shot`; a repeat of a
    /// repeated experiment ends with ` #r`.
    pub fn label(&self) -> String {
        let p = self.plan;
        let mut base = if p.strategy.uses_beta() {
            let used = self.result.as_ref().map(|r| r.run.beta);
            format!("{} {}", p.strategy, beta_label(p, used))
        } else {
            p.strategy.to_string()
        };
        if p.method != MethodName::Rtn {
            base = format!("{base} over {}", p.method);
        }
        match p.repeat {
            Some(r) => format!("{base} #{r}"),
            None => base,
        }
    }

    /// Whether the run searched all layers (or is not run, so not known to search fewer).
    pub fn full_ground_set(&self) -> bool {
        self.search_layers().is_none()
    }

    pub fn search_layers(&self) -> Option<&str> {
        self.result
            .as_ref()
            .and_then(|r| r.run.search_layers.as_deref())
            .filter(|s| !s.is_empty())
    }

    /// The order of every table: arch (by name), pair, strategy (the vocabulary's order),
    /// beta (numbers ascending, then `auto`), experiment, manifest, repeat.
    pub fn order(&self, other: &Self) -> Ordering {
        let (a, b) = (self.plan, other.plan);
        (a.arch.as_str(), a.pair, a.strategy)
            .cmp(&(b.arch.as_str(), b.pair, b.strategy))
            .then(
                a.beta
                    .order_key()
                    .partial_cmp(&b.beta.order_key())
                    .unwrap_or(Ordering::Equal),
            )
            .then(a.experiment.cmp(&b.experiment))
            .then(a.manifest.cmp(&b.manifest))
            .then(a.repeat.cmp(&b.repeat))
    }
}

/// Reads the result of a planned run: its `runs` row and its steps.
pub(crate) fn load_run(dir: &std::path::Path) -> anyhow::Result<RunResult> {
    let t = mpq_tables::read_run(dir)?;
    Ok(RunResult {
        run: t.run,
        steps: t.steps,
    })
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
