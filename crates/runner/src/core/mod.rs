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
use mpq_models::prefix::PrefixEvaluator;
use mpq_models::ptq::{self, MethodName, MethodReport};
use mpq_models::qmodel::Precision;
use mpq_models::{load_weights, Arch, QuantModel};
use mpq_quant::BiasCorrection;
use mpq_quant::{rel_size, size_bits, BitPair};
use mpq_search::{Beta, Problem, SearchResult, Strategy};
use mpq_stats::Correctness;
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

/// The held-out images of a run (`data.test_images` of `data.test_split`: images neither
/// calibration nor search saw) and the FP32 model's result on each.
pub struct HeldOut {
    pub batches: Vec<Batch>,
    /// [`mpq_data::Dataset::digest`] of the images: runs with the same digest were scored on
    /// the same images, in the same order.
    pub digest: String,
    pub fp32: Correctness,
}

/// A calibrated model and its search images.
pub struct Calibrated {
    pub model: QuantModel,
    pub search: Vec<Batch>,
    /// `None` when the run scores no held-out image (`data.test_images = 0`).
    pub test: Option<HeldOut>,
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
    /// What the post-training method spent (`None`: the spec's quantizer, nothing applied).
    pub method: Option<MethodReport>,
}

/// Runs the manifest's post-training method (`quant.method`) for every pair of `pairs` but the
/// high one, on the calibration images, each under the uniform configuration at that pair
/// ([`ptq::PtqConfig::configuration`]), and installs its layers in `model`: a configuration then
/// computes each layer at the low pair with the method's layer, at the high pair with the
/// spec's quantizer. `None` for `rtn` without bias correction (nothing to install).
fn apply_method(
    model: &mut QuantModel,
    m: &Manifest,
    pairs: &[BitPair],
    calib: &[Batch],
) -> Result<Option<MethodReport>> {
    let cfg = m.quant.ptq();
    if cfg.method == MethodName::Rtn && cfg.bias_correction() == BiasCorrection::Off {
        return Ok(None);
    }
    let n = model.n_layers();
    let configs: Vec<Vec<BitPair>> = pairs
        .iter()
        .filter(|&&q| q != m.quant.high)
        .map(|&q| cfg.configuration(n, q, m.quant.high))
        .collect();
    Ok(Some(ptq::apply(model, &cfg, &configs, calib)?))
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
    calibrate_pairs(p, &[m.quant.high, m.quant.pair])
}

/// [`calibrate`], with every pair of `pairs` prepared (the manifest's two among them).
fn calibrate_pairs(p: &Prepared, pairs: &[BitPair]) -> Result<Calibrated> {
    let m = &p.resolved.manifest;
    let (low, high) = (m.quant.pair, m.quant.high);
    let data = dataset::load(
        &p.resolved.data,
        Counts {
            calib: m.data.calib_images,
            search: m.data.search_images,
            test: m.data.test_images,
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
    let test = match data.test_digest {
        Some(digest) => Some(HeldOut {
            fp32: Correctness::from_bools(model.hits(&data.test, Precision::Fp32)?),
            batches: data.test,
            digest,
        }),
        None => None,
    };
    model.prepare(pairs, &data.calib)?;
    let method = apply_method(&mut model, m, pairs, &data.calib)?;
    model.set_config(&vec![high; model.n_layers()]);
    let high_top1 = model.accuracy(&data.search, Precision::Quantized)?;
    Ok(Calibrated {
        model,
        search: data.search,
        test,
        low,
        high,
        fp32_top1,
        high_top1,
        method,
        n_calib: data.n_calib,
        n_search: data.n_search,
        n_skipped: data.skipped.len(),
    })
}

/// What `mpq eval` reports: per-image results of the FP32 model and of every layer at each of
/// several pairs, on the held-out images (the search images when the manifest asks for none).
pub struct Evaluation {
    /// Whether the images are the held-out ones (`data.test_images` of `data.test_split`).
    pub held_out: bool,
    pub fp32: Correctness,
    /// Every layer at the pair: the high pair, W8A8, W6A6, W4A4 and the manifest's low pair,
    /// each once, in that order.
    pub uniform: Vec<(BitPair, Correctness)>,
}

/// FP32 and uniform-precision results of a manifest's model (`mpq eval`).
pub fn evaluate(p: &Prepared) -> Result<Evaluation> {
    let m = &p.resolved.manifest;
    let mut pairs: Vec<BitPair> = vec![];
    for q in [
        m.quant.high,
        BitPair::W8A8,
        BitPair::W6A6,
        BitPair::W4A4,
        m.quant.pair,
    ] {
        if !pairs.contains(&q) {
            pairs.push(q);
        }
    }
    let mut c = calibrate_pairs(p, &pairs)?;
    let n = c.model.n_layers();
    let (held_out, fp32, batches) = match c.test.take() {
        Some(t) => (true, t.fp32, t.batches),
        None => {
            let hits = c.model.hits(&c.search, Precision::Fp32)?;
            (
                false,
                Correctness::from_bools(hits),
                std::mem::take(&mut c.search),
            )
        }
    };
    let mut uniform = vec![];
    for q in pairs {
        c.model.set_config(&vec![q; n]);
        let hits = c.model.hits(&batches, Precision::Quantized)?;
        uniform.push((q, Correctness::from_bools(hits)));
    }
    Ok(Evaluation {
        held_out,
        fp32,
        uniform,
    })
}

/// Per-image results on the held-out images: every layer at the high pair (step 0's
/// configuration) and every step of a search, in step order.
pub struct HeldOutScores {
    pub high: Correctness,
    pub steps: Vec<Correctness>,
    /// Seconds the scoring took.
    pub seconds: f64,
}

/// Per-image results on the held-out images of every step's configuration of a search, and of
/// every layer at the high pair (step 0's configuration). The steps are scored in order, each
/// committed as the base of a prefix cache on the held-out images (`runtime.prefix_reuse`,
/// within `runtime.cache_mb`), so that a step is computed from its first layer that differs
/// from the step before; the results are those of full forward passes either way.
pub fn score_held_out(
    c: &Calibrated,
    test: &HeldOut,
    result: &SearchResult,
    runtime: &crate::manifest::RuntimeSection,
) -> Result<HeldOutScores> {
    let t0 = std::time::Instant::now();
    let budget = if runtime.prefix_reuse {
        runtime.cache_mb << 20
    } else {
        0
    };
    let mut e = PrefixEvaluator::new(&c.model, &test.batches, c.low, c.high, budget)?;
    let n = c.model.n_layers();
    let high = Correctness::from_bools(e.hits(&vec![false; n])?);
    let mut steps = Vec::with_capacity(result.steps.len());
    for s in &result.steps {
        let mut low = vec![false; n];
        for &i in &s.low {
            low[i] = true;
        }
        e.commit(&low);
        steps.push(Correctness::from_bools(e.hits(&low)?));
    }
    Ok(HeldOutScores {
        high,
        steps,
        seconds: t0.elapsed().as_secs_f64(),
    })
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
        StrategyName::Uniform => Strategy::Uniform,
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

/// The run's four tables, from its calibration, its search's result and the held-out scores
/// of its steps (`None` when it scored no held-out image).
pub fn tables(
    p: &Prepared,
    c: &Calibrated,
    result: &SearchResult,
    held: Option<&HeldOutScores>,
    facts: RunFacts,
) -> RunTables {
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
        .enumerate()
        .map(|(k, s)| {
            let test = held.map(|h| &h.steps[k]);
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
                test_top1: test.map(Correctness::top1),
                test_correct: test.map(Correctness::to_hex),
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
        n_test_images: held.and(c.test.as_ref()).map(|t| t.fp32.len() as u32),
        test_digest: held.and(c.test.as_ref()).map(|t| t.digest.clone()),
        fp32_test_top1: held.and(c.test.as_ref()).map(|t| t.fp32.top1()),
        high_test_top1: held.map(|h| h.high.top1()),
        fp32_test_correct: held.and(c.test.as_ref()).map(|t| t.fp32.to_hex()),
        test_s: held.map(|h| h.seconds),
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
        method: Some(m.quant.method),
        method_s: c.method.as_ref().map(|r| r.wall_s),
        method_passes: c.method.as_ref().map(|r| r.forward_passes),
        method_iterations: c.method.as_ref().map(|r| r.iterations),
    };
    RunTables {
        steps,
        candidates,
        layers,
        run,
    }
}
