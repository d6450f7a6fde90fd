//! `mpq run`: one manifest from resolution to Parquet. Everything that can be wrong with the
//! input (manifest, weights file, data, device) is checked before anything is created under
//! results/. The run directory is created when the search starts, with the run's input key and
//! the journal of its evaluations (so a killed run resumes where it stopped); the tables are
//! written when the search has finished, each file atomically, `runs.parquet` last.
use crate::evaluator::{Journaled, JournaledError, ModelEvaluator};
use crate::fingerprint::{input_key, CODE_VERSION};
use crate::journal::Journal;
use crate::manifest::{self, BetaSetting, DeviceSpec, Resolved, StrategyName};
use crate::progress::SearchProgress;
use crate::store::{self, CandidateRow, LayerRow, RunRow, RunTables, StepRow};
use anyhow::{bail, Context, Result};
use candle_core::Device;
use mpq_data::Batch;
use mpq_models::qmodel::Precision;
use mpq_models::{load_weights, Arch, QuantModel};
use mpq_quant::{rel_size, size_bits, BitPair};
use mpq_search::{Beta, Problem, Strategy};
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
    /// Evaluations answered from the journal of an interrupted run.
    pub resumed_evals: usize,
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
///
/// `RAYON_NUM_THREADS` is always set: without it candle 0.11 looks up the CPU affinity mask in
/// /proc on every matrix product. Candle's element-wise operations run in the calling thread
/// (`CANDLE_NUM_THREADS=1`, unless set): its pool for them spins while it waits and serves one
/// caller at a time, so concurrent evaluations would queue on it, and even one evaluation at a
/// time ran 14% slower with it (docs/benchmarks.md). Matrix products still use every thread.
/// Neither setting changes a result: each output element is computed by the same arithmetic.
pub fn set_threads(threads: usize) {
    let n = if threads > 0 {
        threads
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    };
    if std::env::var_os("RAYON_NUM_THREADS").is_none() || threads > 0 {
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global();
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
pub(crate) struct Calibrated {
    pub model: QuantModel,
    pub search: Vec<Batch>,
    pub low: BitPair,
    pub high: BitPair,
    pub fp32_top1: f64,
    pub int8_top1: f64,
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
pub fn search_batch_size(m: &manifest::Manifest) -> usize {
    let b = m.runtime.batch_size;
    if m.search.strategy != StrategyName::ScreenedGreedy {
        return b;
    }
    let screen = (m.data.search_images as f64 * m.search.screen_fraction).ceil() as usize;
    b.min(screen.max(1))
}

pub(crate) fn calibrate(p: &Prepared) -> Result<Calibrated> {
    let m = &p.resolved.manifest;
    let (low, high) = (m.quant.pair, m.quant.high);
    let data = crate::dataset::load(
        &m.data,
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
    let (calib, search) = (data.calib, data.search);
    let (n_calib, n_search, n_skipped) = (data.n_calib, data.n_search, data.skipped.len());
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
        n_calib,
        n_search,
        n_skipped,
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

/// The search a manifest asks for.
pub fn strategy_of(m: &manifest::Manifest) -> Strategy {
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
pub fn problem_of(m: &manifest::Manifest, arch: &Arch) -> Problem {
    Problem {
        layer_params: arch.n_weights(),
        searchable: (!m.search.layers.is_empty()).then(|| m.search.layers.clone()),
        max_steps: (m.search.max_steps > 0).then_some(m.search.max_steps),
    }
}

/// Run a manifest to the end and write its tables. An interrupted run of the same inputs
/// (same input key) is resumed from its journal.
pub fn run(path: &Path, opts: &RunOptions) -> Result<RunOutcome> {
    crate::interrupt::install().context("installing the SIGTERM/SIGUSR1 handlers")?;
    let prepared = prepare(path, &opts.sets)?;
    let m = &prepared.resolved.manifest;
    let (files, missing) = crate::reproduce::inputs(m);
    if let Some(first) = missing.first() {
        bail!("{}: {first}", path.display());
    }
    let key = input_key(&prepared.resolved, &files)?;
    let t0 = Instant::now();
    let Calibrated {
        model,
        search,
        low,
        high,
        fp32_top1,
        int8_top1,
        n_calib,
        n_search,
        n_skipped,
    } = calibrate(&prepared)?;
    let Prepared { resolved, arch, .. } = prepared;
    let m = &resolved.manifest;
    let n = model.n_layers();
    let strategy = strategy_of(m);
    let problem = problem_of(m, &arch);

    // Everything is checked: from here on the run has a directory.
    let results_dir = Path::new(&m.runtime.results_dir);
    let open = store::open_run(results_dir, &m.experiment.name, &key, SystemTime::now())?;
    let mut journal = Journal::open(&open.dir.join(store::JOURNAL_FILE))?;
    let replayable = journal.len();
    let started_at =
        store::run_id_start(&open.run_id).unwrap_or_else(|| store::rfc3339(SystemTime::now()));

    let mut progress = SearchProgress::new(&m.experiment.name, opts.quiet);
    let inner = ModelEvaluator::new(&model, &search, low, high, &m.runtime)?;
    let mut eval = Journaled::new(inner, &mut journal);
    let result =
        mpq_search::run(strategy, &problem, &mut eval, &mut progress).map_err(|e| match e {
            mpq_search::SearchError::Eval(JournaledError::Interrupted(stop)) => {
                anyhow::Error::new(stop).context(path.display().to_string())
            }
            e => anyhow::anyhow!("{}: search: {e}", path.display()),
        })?;
    let replayed = eval.hits;
    progress.finish();
    let wall_s = t0.elapsed().as_secs_f64();
    let run_id = open.run_id.clone();
    let n_weights = arch.n_weights();
    let name = |i: usize| arch.layers[i].name.clone();
    let joined = |v: &[usize]| {
        v.iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let n_search = n_search as u32;
    let steps: Vec<StepRow> = result
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
                low_layers: joined(&s.low),
                work: s.work,
            }
        })
        .collect();
    let screen_images = |full: bool| -> u32 {
        match (full, result.screen_parts) {
            (false, Some((p, _))) => search[..p].iter().map(|b| b.labels.len() as u32).sum(),
            _ => n_search,
        }
    };
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
            n_images: screen_images(c.full),
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
    let evals = result.evals();
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
        n_search_images: n_search,
        n_calib_images: n_calib as u32,
        skipped_images: n_skipped as u32,
        started_at,
        finished_at: store::rfc3339(SystemTime::now()),
        status: "finished".into(),
        wall_s,
        evals: evals as u64,
        suite: crate::reproduce::suite_of(path),
        paper_model: Some(m.experiment.paper_model.clone()).filter(|s| !s.is_empty()),
        manifest_path: path.display().to_string(),
        beta_setting: m.search.beta.to_string(),
        input_key: key.key.clone(),
        code_version: CODE_VERSION.to_string(),
        search_layers: (!m.search.layers.is_empty()).then(|| joined(&result.searchable)),
        max_steps: problem.max_steps.map(|k| k as u32),
        work: result.work(),
        evals_replayed: replayed as u64,
    };
    store::write_run(
        &open.dir,
        &RunTables {
            steps,
            candidates,
            layers,
            run,
        },
    )?;
    drop(open.lock);
    Ok(RunOutcome {
        dir: open.dir,
        run_id,
        fp32_top1,
        int8_top1,
        n_layers: n,
        evals,
        wall_s,
        resumed_evals: replayable.min(replayed),
    })
}
