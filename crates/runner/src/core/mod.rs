//! The run's core: the code that computes a run's numbers from its resolved manifest, and
//! nothing else (no files written, no messages, no progress display). Loading the model and
//! data, calibrating, the search's evaluator, the strategy and problem a manifest asks for, and
//! the result rows built from what the search returned: each row type is built here and only
//! here.
//!
//! This module is one unit of the code version (`codeversion`): editing it makes stored runs
//! stale; editing the rest of the runner (planning, the CLI, messages, the store, benchmarks)
//! does not.
pub mod dataset;
pub mod evaluator;

use crate::manifest::{Manifest, Resolved};
use crate::system::{make_device, set_threads};
use anyhow::Result;
use candle_core::{Device, Tensor};
use dataset::Counts;
use mpq_data::Batch;
use mpq_models::qmodel::Precision;
use mpq_models::{load_weights, Arch, QuantModel};
use mpq_quant::{rel_size, size_bits, BitPair};
use mpq_search::{Beta, Problem, SearchResult, Strategy};
use mpq_vocab::{BetaSetting, CandidateRow, LayerRow, RunRow, RunTables, StepRow, StrategyName};
use std::collections::HashMap;
use std::path::Path;

/// Everything a run needs, loaded and checked; nothing written yet.
pub struct Prepared {
    pub resolved: Resolved,
    pub arch: Arch,
    pub device: Device,
    pub weights: HashMap<String, Tensor>,
}

/// Load what a resolved manifest names (threads, device, weights), failing with one line on
/// bad input.
pub fn prepare(resolved: Resolved) -> Result<Prepared> {
    let m = &resolved.manifest;
    set_threads(m.runtime.threads);
    let device = make_device(m.runtime.device)
        .map_err(|e| anyhow::anyhow!("{}: runtime.device: {e:#}", resolved.path.display()))?;
    let arch = Arch::new(m.model.arch);
    let weights = load_weights(&m.model.weights, &arch, &device)?;
    Ok(Prepared {
        resolved,
        arch,
        device,
        weights,
    })
}

/// A calibrated model and its search images.
pub struct Calibrated {
    pub model: QuantModel,
    pub search: Vec<Batch>,
    pub low: BitPair,
    pub high: BitPair,
    pub fp32_top1: f64,
    /// Every layer at the high pair.
    pub high_top1: f64,
    /// Images actually used (fewer than asked when undecodable ones were skipped).
    pub n_calib: usize,
    pub n_search: usize,
    /// Undecodable images left out (`data.skip_corrupt`).
    pub n_skipped: usize,
}

/// Images per batch of the search images: `runtime.batch_size`, except for screened greedy,
/// whose screening parts are whole batches: there a batch holds at most
/// `ceil(search_images * screen_fraction)` images, so that the screening part is about
/// `screen_fraction` of the images (with 512 images, batches of 256 would make it half).
pub fn search_batch_size(m: &Manifest) -> usize {
    let b = m.runtime.batch_size;
    if m.search.strategy != StrategyName::ScreenedGreedy {
        return b;
    }
    let screen = (m.data.search_images as f64 * m.search.screen_fraction).ceil() as usize;
    b.min(screen.max(1))
}

/// Loads the data, folds and calibrates the model, and scores the FP32 and all-high models.
pub fn calibrate(p: &Prepared) -> Result<Calibrated> {
    let m = &p.resolved.manifest;
    let (low, high) = (m.quant.pair, m.quant.high);
    let data = dataset::load(
        &p.resolved.data,
        Counts {
            calib: m.data.calib_images,
            search: m.data.search_images,
        },
        &p.resolved.path,
        p.arch.num_classes,
        (m.runtime.batch_size, search_batch_size(m)),
        &p.device,
    )?;
    if let Some((file, why)) = data.skipped.first() {
        eprintln!(
            "{}: {} undecodable image(s) skipped (data.skip_corrupt), e.g. {}: {why}",
            p.resolved.path.display(),
            data.skipped.len(),
            file.display()
        );
    }
    let mut model = QuantModel::new(p.arch.clone(), p.weights.clone(), &p.device)?;
    let fp32_top1 = model.accuracy(&data.search, Precision::Fp32)?;
    model.prepare(&[high, low], &data.calib)?;
    model.set_config(&vec![high; model.n_layers()]);
    let high_top1 = model.accuracy(&data.search, Precision::Quantized)?;
    Ok(Calibrated {
        model,
        search: data.search,
        low,
        high,
        fp32_top1,
        high_top1,
        n_calib: data.n_calib,
        n_search: data.n_search,
        n_skipped: data.skipped.len(),
    })
}

/// Top-1 of the FP32 model, of every layer at the high pair and of every layer at the low
/// pair, on the manifest's search images (`mpq eval`).
pub fn evaluate(p: &Prepared) -> Result<(f64, f64, f64)> {
    let mut c = calibrate(p)?;
    let n = c.model.n_layers();
    c.model.set_config(&vec![c.low; n]);
    let low_top1 = c.model.accuracy(&c.search, Precision::Quantized)?;
    Ok((c.fp32_top1, c.high_top1, low_top1))
}

/// The search a manifest asks for.
pub fn strategy_of(m: &Manifest) -> Strategy {
    let beta = match m.search.beta {
        BetaSetting::Fixed(b) => Beta::Fixed(b),
        BetaSetting::Auto => Beta::Auto,
    };
    match m.search.strategy {
        StrategyName::Greedy => Strategy::Greedy { beta },
        StrategyName::OneShot => Strategy::OneShot,
        StrategyName::LazyGreedy => Strategy::LazyGreedy { beta },
        StrategyName::ScreenedGreedy => Strategy::ScreenedGreedy {
            beta,
            fraction: m.search.screen_fraction,
            z: m.search.screen_z,
        },
        StrategyName::Exhaustive => Strategy::Exhaustive {
            beta,
            max_layers: m.search.max_layers,
        },
        StrategyName::Random => Strategy::Random {
            seed: m.experiment.seed,
        },
    }
}

/// The search problem of a manifest on `arch`: its layers, the searchable ones, the step limit.
pub fn problem_of(m: &Manifest, arch: &Arch) -> Problem {
    Problem {
        layer_params: arch.n_weights(),
        searchable: (!m.search.layers.is_empty()).then(|| m.search.layers.clone()),
        max_steps: (m.search.max_steps > 0).then_some(m.search.max_steps),
    }
}

/// What a run records beside what it computed: where and when it ran.
pub struct RunFacts<'a> {
    pub run_id: &'a str,
    pub manifest_path: &'a Path,
    pub suite: Option<String>,
    pub input_key: String,
    pub code_version: String,
    pub git_commit: Option<String>,
    pub device: String,
    pub started_at: String,
    pub finished_at: String,
    pub wall_s: f64,
    /// Evaluations answered from the journal of an interrupted run.
    pub evals_replayed: u64,
}

/// The run's four tables, from its calibration and its search's result.
pub fn tables(p: &Prepared, c: &Calibrated, result: &SearchResult, facts: RunFacts) -> RunTables {
    let (resolved, arch) = (&p.resolved, &p.arch);
    let m = &resolved.manifest;
    let (low, high) = (c.low, c.high);
    let run_id = facts.run_id.to_string();
    let n_weights = arch.n_weights();
    let name = |i: usize| arch.layers[i].name.clone();
    let joined = |v: &[usize]| {
        v.iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let strategy = result.strategy.name();
    let n_search = c.n_search as u32;
    let steps = result
        .steps
        .iter()
        .map(|s| {
            let bits = size_bits(
                &n_weights,
                |i| {
                    if s.low.contains(&i) {
                        low.w
                    } else {
                        high.w
                    }
                },
            );
            StepRow {
                run_id: run_id.clone(),
                experiment: m.experiment.name.clone(),
                arch: arch.name,
                pair: low,
                strategy,
                beta: result.beta,
                step: s.step as u32,
                layer: s.layer_index.map(name),
                layer_index: s.layer_index.map(|j| j as u32),
                top1: s.top1,
                objective: s.objective,
                params_low: s.params_low,
                size_bits: bits,
                rel_size: rel_size(bits, &n_weights),
                evals: s.evals as u64,
                elapsed_s: s.elapsed_s,
                low_layers: joined(&s.low),
                work: s.work,
            }
        })
        .collect();
    let screen_images = |full: bool| -> u32 {
        match (full, result.screen_parts) {
            (false, Some((p, _))) => c.search[..p].iter().map(|b| b.labels.len() as u32).sum(),
            _ => n_search,
        }
    };
    let candidates = result
        .candidates
        .iter()
        .map(|x| CandidateRow {
            run_id: run_id.clone(),
            step: x.step as u32,
            layer: name(x.layer_index),
            layer_index: x.layer_index as u32,
            top1: x.top1,
            objective: x.objective,
            n_images: screen_images(x.full),
        })
        .collect();
    let layers = arch
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| LayerRow {
            run_id: run_id.clone(),
            layer_index: i as u32,
            layer: l.name.clone(),
            kind: l.kind,
            n_weights: l.n_weights(),
        })
        .collect();
    let problem = problem_of(m, arch);
    let run = RunRow {
        run_id: run_id.clone(),
        experiment: m.experiment.name.clone(),
        arch: arch.name,
        pair: low,
        high_pair: high,
        strategy,
        beta: result.beta,
        manifest: resolved.toml.clone(),
        manifest_hash: resolved.hash.clone(),
        git_commit: facts.git_commit,
        device: facts.device,
        fp32_top1: c.fp32_top1,
        high_top1: c.high_top1,
        n_layers: arch.layers.len() as u32,
        n_search_images: n_search,
        n_calib_images: c.n_calib as u32,
        skipped_images: c.n_skipped as u32,
        started_at: facts.started_at,
        finished_at: facts.finished_at,
        status: "finished".into(),
        wall_s: facts.wall_s,
        evals: result.evals() as u64,
        suite: facts.suite,
        paper_model: m.experiment.paper_model,
        manifest_path: facts.manifest_path.display().to_string(),
        beta_setting: m.search.beta,
        input_key: facts.input_key,
        code_version: facts.code_version,
        search_layers: (!m.search.layers.is_empty()).then(|| joined(&result.searchable)),
        max_steps: problem.max_steps.map(|k| k as u32),
        work: result.work(),
        evals_replayed: facts.evals_replayed,
        repeat: resolved.repeat,
    };
    RunTables {
        steps,
        candidates,
        layers,
        run,
    }
}
