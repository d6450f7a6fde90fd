//! `mpq run`: one manifest from resolution to Parquet. Everything that can be wrong with the
//! input (manifest, weights file, device) is checked before anything is created under results/;
//! the run directory is written only when the search has finished, each file atomically.
use crate::manifest::{self, BetaSetting, DeviceSpec, Resolved, StrategyName};
use crate::progress::SearchProgress;
use crate::store::{self, CandidateRow, LayerRow, RunRow, RunTables, StepRow};
use anyhow::{bail, Context, Result};
use candle_core::Device;
use mpq_data::Batch;
use mpq_models::qmodel::Precision;
use mpq_models::{load_weights, Arch, QuantModel};
use mpq_quant::{rel_size, size_bits, BitPair};
use mpq_search::{Beta, Evaluator, Problem, Strategy};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

/// Options of `mpq run` beyond the manifest.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// `--set key=value` overrides.
    pub sets: Vec<String>,
    /// No progress bar.
    pub quiet: bool,
}

/// What a finished run produced.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    pub dir: PathBuf,
    pub run_id: String,
    pub fp32_top1: f64,
    pub int8_top1: f64,
    pub n_layers: usize,
    pub evals: usize,
    pub wall_s: f64,
}

/// The candle device a manifest asks for.
pub fn make_device(spec: &DeviceSpec) -> Result<Device> {
    match spec {
        DeviceSpec::Cpu => Ok(Device::Cpu),
        DeviceSpec::Cuda(i) => {
            if !cfg!(feature = "cuda") {
                bail!("device cuda:{i} needs a build with `--features cuda`");
            }
            Device::new_cuda(*i).with_context(|| format!("cannot open CUDA device {i}"))
        }
    }
}

/// A human-readable name of the device, for the runs table.
pub fn device_name(spec: &DeviceSpec) -> String {
    match spec {
        DeviceSpec::Cpu => format!("cpu ({} threads)", rayon::current_num_threads()),
        DeviceSpec::Cuda(i) => format!("cuda:{i}"),
    }
}

/// Use `threads` worker threads for candle and rayon (0 = all cores). Effective once per
/// process, before the first parallel operation.
pub fn set_threads(threads: usize) {
    if threads > 0 {
        std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global();
    }
}

/// The commit of the working tree (`+dirty` when it has uncommitted changes), if in a git
/// checkout.
pub fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let mut c = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let dirty = std::process::Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false);
    if dirty {
        c.push_str("+dirty");
    }
    Some(c)
}

/// Evaluates configurations on the search images.
struct ModelEvaluator<'a> {
    model: &'a mut QuantModel,
    batches: &'a [Batch],
    low: BitPair,
    high: BitPair,
}

impl Evaluator for ModelEvaluator<'_> {
    type Error = candle_core::Error;
    fn accuracy(&mut self, low: &[bool]) -> candle_core::Result<f64> {
        self.model.set_low(low, self.low, self.high);
        self.model.accuracy(self.batches, Precision::Quantized)
    }
}

/// Everything a run needs, loaded and checked; nothing written yet.
pub struct Prepared {
    pub resolved: Resolved,
    pub arch: Arch,
    pub device: Device,
    pub weights: std::collections::HashMap<String, candle_core::Tensor>,
}

/// Resolve the manifest and load what it names, failing with one line on bad input.
pub fn prepare(path: &Path, sets: &[String]) -> Result<Prepared> {
    let resolved = manifest::load(path, sets)?;
    let m = &resolved.manifest;
    set_threads(m.runtime.threads);
    let device = make_device(&m.runtime.device)
        .map_err(|e| anyhow::anyhow!("{}: runtime.device: {e:#}", path.display()))?;
    let arch = Arch::by_name(&m.model.arch).ok_or_else(|| {
        anyhow::anyhow!(
            "{}: model.arch: unknown architecture {:?}",
            path.display(),
            m.model.arch
        )
    })?;
    let weights = load_weights(&m.model.weights, &arch, &device)?;
    Ok(Prepared {
        resolved,
        arch,
        device,
        weights,
    })
}

/// A calibrated model and its search images.
struct Calibrated {
    model: QuantModel,
    search: Vec<Batch>,
    low: BitPair,
    high: BitPair,
    fp32_top1: f64,
    int8_top1: f64,
}

fn calibrate(p: &Prepared) -> Result<Calibrated> {
    let m = &p.resolved.manifest;
    let (low, high) = (m.quant.pair, m.quant.high);
    let data = crate::dataset::load(
        &m.data,
        &p.resolved.path,
        p.arch.num_classes,
        m.runtime.batch_size,
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
    let (calib, search) = (data.calib, data.search);
    let mut model = QuantModel::new(p.arch.clone(), p.weights.clone(), &p.device)?;
    let fp32_top1 = model.accuracy(&search, Precision::Fp32)?;
    model.prepare(&[high, low], &calib)?;
    model.set_config(&vec![high; model.n_layers()]);
    let int8_top1 = model.accuracy(&search, Precision::Quantized)?;
    Ok(Calibrated {
        model,
        search,
        low,
        high,
        fp32_top1,
        int8_top1,
    })
}

/// Top-1 of the FP32 model, of every layer at the high pair and of every layer at the low
/// pair, on the manifest's search images (`mpq eval`).
pub fn evaluate(path: &Path, sets: &[String]) -> Result<(f64, f64, f64)> {
    let p = prepare(path, sets)?;
    let mut c = calibrate(&p)?;
    let n = c.model.n_layers();
    c.model.set_config(&vec![c.low; n]);
    let low_top1 = c.model.accuracy(&c.search, Precision::Quantized)?;
    Ok((c.fp32_top1, c.int8_top1, low_top1))
}

/// Run a manifest to the end and write its tables.
pub fn run(path: &Path, opts: &RunOptions) -> Result<RunOutcome> {
    let prepared = prepare(path, &opts.sets)?;
    let started = SystemTime::now();
    let t0 = Instant::now();
    let Calibrated {
        mut model,
        search,
        low,
        high,
        fp32_top1,
        int8_top1,
    } = calibrate(&prepared)?;
    let Prepared { resolved, arch, .. } = prepared;
    let m = &resolved.manifest;
    let n = model.n_layers();

    let strategy = match m.search.strategy {
        StrategyName::Greedy => Strategy::Greedy {
            beta: match m.search.beta {
                BetaSetting::Fixed(b) => Beta::Fixed(b),
                BetaSetting::Auto => Beta::Auto,
            },
        },
        StrategyName::OneShot => Strategy::OneShot,
    };
    let n_weights = arch.n_weights();
    let problem = Problem {
        layer_params: n_weights.clone(),
    };
    let mut progress = SearchProgress::new(&m.experiment.name, strategy, n, opts.quiet);
    let mut eval = ModelEvaluator {
        model: &mut model,
        batches: &search,
        low,
        high,
    };
    let result = mpq_search::run(strategy, &problem, &mut eval, &mut progress)
        .map_err(|e| anyhow::anyhow!("{}: search: {e}", path.display()))?;
    progress.finish();
    let wall_s = t0.elapsed().as_secs_f64();

    let run_id = store::new_run_id(&resolved.hash, started);
    let name = |i: usize| arch.layers[i].name.clone();
    let mut is_low = vec![false; n];
    let steps: Vec<StepRow> = result
        .steps
        .iter()
        .map(|s| {
            if let Some(j) = s.layer_index {
                is_low[j] = true;
            }
            let bits = size_bits(&n_weights, |i| if is_low[i] { low.w } else { high.w });
            StepRow {
                run_id: run_id.clone(),
                experiment: m.experiment.name.clone(),
                arch: arch.name.clone(),
                pair: low.to_string(),
                strategy: strategy.name().to_string(),
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
            }
        })
        .collect();
    let candidates = result
        .candidates
        .iter()
        .map(|c| CandidateRow {
            run_id: run_id.clone(),
            step: c.step as u32,
            layer: name(c.layer_index),
            layer_index: c.layer_index as u32,
            top1: c.top1,
            objective: c.objective,
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
            kind: l.kind.name().to_string(),
            n_weights: l.n_weights(),
        })
        .collect();
    let evals = result.steps.last().map(|s| s.evals).unwrap_or(0);
    let run = RunRow {
        run_id: run_id.clone(),
        experiment: m.experiment.name.clone(),
        arch: arch.name.clone(),
        pair: low.to_string(),
        high_pair: high.to_string(),
        strategy: strategy.name().to_string(),
        beta: result.beta,
        manifest: resolved.toml.clone(),
        manifest_hash: resolved.hash.clone(),
        git_commit: git_commit(),
        device: device_name(&m.runtime.device),
        fp32_top1,
        int8_top1,
        n_layers: n as u32,
        n_search_images: m.data.search_images as u32,
        n_calib_images: m.data.calib_images as u32,
        started_at: store::rfc3339(started),
        finished_at: store::rfc3339(SystemTime::now()),
        status: "finished".into(),
        wall_s,
        evals: evals as u64,
    };
    let dir = store::run_dir(
        Path::new(&m.runtime.results_dir),
        &m.experiment.name,
        &run_id,
    );
    store::write_run(
        &dir,
        &RunTables {
            steps,
            candidates,
            layers,
            run,
        },
    )?;
    Ok(RunOutcome {
        dir,
        run_id,
        fp32_top1,
        int8_top1,
        n_layers: n,
        evals,
        wall_s,
    })
}
