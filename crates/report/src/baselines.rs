//! The published numbers the report sets beside this project's: `literature.toml` (appendix
//! table 1 of the paper: other post-training methods on ResNet50) and `paper.toml` (the paper's
//! headline claims), both in `experiments/baselines/`. Only numbers from these files are shown
//! where this project has no result.

use std::path::Path;

use anyhow::{bail, Context};
use mpq_vocab::{BitPair, PaperModel, StrategyName};
use serde::Deserialize;

/// One row of `literature.toml`: a method's published ResNet50 ImageNet result.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Method {
    pub name: String,
    pub source: String,
    pub year: u32,
    pub weight_bits: u32,
    pub act_bits: u32,
    /// That paper's FP32 top-1, in %.
    pub baseline: f64,
    /// Its quantized top-1, in %.
    pub top1: f64,
    /// `top1 - baseline`, in points.
    pub change: f64,
    /// Relative weight size (model bits / 32-bit model bits).
    pub w_comp: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LiteratureFile {
    method: Vec<Method>,
}

/// One headline result of the paper (`[[result]]` of `paper.toml`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PaperResult {
    /// The paper's network.
    pub model: PaperModel,
    pub pair: BitPair,
    pub search: StrategyName,
    /// The fixed beta the paper used.
    pub beta: f64,
    pub figure: String,
    /// `100 * (1 - relative size)`, one per operating point.
    pub size_reduction_pct: Vec<f64>,
    /// Top-1 change against FP32 in points, one per operating point.
    pub accuracy_change_points: Vec<f64>,
}

/// `[greedy_vs_one_shot]` of `paper.toml`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GreedyVsOneShot {
    pub claim: String,
    pub min_advantage_points: f64,
    pub min_networks: u32,
}

/// `[greedy_vs_methods]` of `paper.toml`: greedy against the other post-training methods of
/// table 1.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GreedyVsMethods {
    pub claim: String,
    /// The network of the comparison.
    pub model: PaperModel,
    /// Greedy's pair and the methods' pair.
    pub pair: BitPair,
    /// Greedy's operating point: the relative size of the paper's row (W-comp).
    pub w_comp: f64,
    /// Greedy's top-1 over each method's, in points.
    pub min_advantage_points: f64,
}

/// `[[search_time]]` of `paper.toml`: the greedy search's duration the paper reports.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SearchTime {
    pub model: PaperModel,
    pub hours: f64,
    pub gpus: u32,
    pub images: u32,
}

/// `[table1]` of `paper.toml`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Table1 {
    /// The `name` of the paper's own row in `literature.toml`.
    pub reference_method: String,
}

/// `paper.toml`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Paper {
    pub result: Vec<PaperResult>,
    pub greedy_vs_one_shot: GreedyVsOneShot,
    pub greedy_vs_methods: GreedyVsMethods,
    pub search_time: Vec<SearchTime>,
    pub table1: Table1,
}

/// Both files of the baselines directory.
#[derive(Clone, Debug, PartialEq)]
pub struct Baselines {
    pub literature: Vec<Method>,
    pub paper: Paper,
}

impl Baselines {
    /// The paper's own row of table 1 (`paper.table1.reference_method` in the literature).
    pub fn reference_method(&self) -> &Method {
        self.literature
            .iter()
            .find(|m| m.name == self.paper.table1.reference_method)
            .expect("checked by load_baselines")
    }
}

fn read<T: for<'de> Deserialize<'de>>(path: &Path) -> anyhow::Result<T> {
    let s = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&s).with_context(|| format!("parsing {}", path.display()))
}

/// Reads `dir/literature.toml` and `dir/paper.toml` and checks them: every list has the same
/// length per result, and the reference method of table 1 is in the literature.
pub fn load_baselines(dir: &Path) -> anyhow::Result<Baselines> {
    let lit: LiteratureFile = read(&dir.join("literature.toml"))?;
    let paper: Paper = read(&dir.join("paper.toml"))?;
    let paper_path = dir.join("paper.toml");
    for r in &paper.result {
        if r.size_reduction_pct.len() != r.accuracy_change_points.len()
            || r.size_reduction_pct.is_empty()
        {
            bail!(
                "{}: result {} {}: size_reduction_pct and accuracy_change_points must have the \
                 same, nonzero length",
                paper_path.display(),
                r.model,
                r.pair
            );
        }
        if !(r.beta.is_finite() && r.beta >= 0.0) {
            bail!(
                "{}: result {} {}: beta must be a finite number >= 0, got {}",
                paper_path.display(),
                r.model,
                r.pair,
                r.beta
            );
        }
    }
    let w = paper.greedy_vs_methods.w_comp;
    if !(w > 0.0 && w <= 1.0) {
        bail!(
            "{}: greedy_vs_methods.w_comp must be in (0, 1], got {w}",
            paper_path.display()
        );
    }
    if !lit
        .method
        .iter()
        .any(|m| m.name == paper.table1.reference_method)
    {
        bail!(
            "{}: table1.reference_method {:?} is not a method of literature.toml",
            paper_path.display(),
            paper.table1.reference_method
        );
    }
    Ok(Baselines {
        literature: lit.method,
        paper,
    })
}
