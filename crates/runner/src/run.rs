//! `mpq run`: one manifest from resolution to Parquet. Everything that can be wrong with the
//! input (manifest, weights file, data, device) is checked before anything is created under
//! results/. The run directory is created when the search starts, with the run's input key and
//! the journal of its evaluations (so a killed run resumes where it stopped); the run's core
//! returns its tables, which the store writes when the search has finished, each file
//! atomically, `runs.parquet` last.
use crate::core::evaluator::ModelEvaluator;
use crate::core::{self, Calibrated, Prepared, RunFacts};
use crate::discover::suite_of;
use crate::fingerprint::{input_key, CODE_VERSION};
use crate::inputs::inputs;
use crate::journal::{Journal, Journaled, JournaledError};
use crate::manifest::{self, Resolved};
use crate::progress::SearchProgress;
use crate::store;
use crate::system::{device_name, git_commit};
use anyhow::{bail, Context, Result};
use mpq_vocab::RunTables;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

/// Options of `mpq run` beyond the manifest.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// `--set key=value` overrides.
    pub sets: Vec<String>,
    /// No progress bar.
    pub quiet: bool,
    /// Which repeat of a manifest with `experiment.repeats` > 1 to run (required there).
    pub repeat: Option<u32>,
}

/// What a finished run produced.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    pub dir: PathBuf,
    pub tables: RunTables,
    /// Evaluations answered from the journal of an interrupted run.
    pub resumed_evals: usize,
}

/// Resolve a manifest and load what it names.
pub fn prepare(path: &Path, sets: &[String]) -> Result<Prepared> {
    core::prepare(manifest::load(path, sets)?)
}

/// Per-image results of the FP32 model and of every layer at each of several pairs, on the
/// manifest's held-out images (`mpq eval`; see [`core::evaluate`]).
pub fn evaluate(path: &Path, sets: &[String]) -> Result<(Resolved, core::Evaluation)> {
    let p = prepare(path, sets)?;
    let e = core::evaluate(&p)?;
    Ok((p.resolved, e))
}

/// Run a manifest to the end and write its tables. An interrupted run of the same inputs
/// (same input key) is resumed from its journal. A manifest of several repeats runs the one
/// `opts.repeat` names.
pub fn run(path: &Path, opts: &RunOptions) -> Result<RunOutcome> {
    let resolved = manifest::load(path, &opts.sets)?;
    let k = resolved.manifest.experiment.repeats;
    let resolved = match opts.repeat {
        Some(r) => resolved.repeat(r)?,
        None if k > 1 => bail!(
            "{}: experiment.repeats: {k} repeats; name the one to run (--repeat 0..{})",
            path.display(),
            k - 1
        ),
        None => resolved,
    };
    run_resolved(resolved, opts.quiet)
}

/// Run a resolved manifest (one run: see [`Resolved::repeat`]) to the end and write its
/// tables, resuming an interrupted run of the same inputs.
pub fn run_resolved(resolved: Resolved, quiet: bool) -> Result<RunOutcome> {
    crate::interrupt::install().context("installing the SIGTERM/SIGUSR1 handlers")?;
    let path = &resolved.path.clone();
    let prepared = core::prepare(resolved)?;
    let (files, missing) = inputs(&prepared.resolved);
    if let Some(first) = missing.first() {
        bail!("{}: {first}", path.display());
    }
    let key = input_key(&prepared.resolved, &files)?;
    let t0 = Instant::now();
    let calibrated = core::calibrate(&prepared)?;
    let Calibrated {
        model,
        search,
        low,
        high,
        ..
    } = &calibrated;
    let m = &prepared.resolved.manifest;

    // Everything is checked: from here on the run has a directory.
    let results_dir = Path::new(&m.runtime.results_dir);
    let open = store::open_run(results_dir, &m.experiment.name, &key, SystemTime::now())?;
    let mut journal = Journal::open(&open.dir.join(store::JOURNAL_FILE))?;
    let replayable = journal.len();
    let started_at =
        store::run_id_start(&open.run_id).unwrap_or_else(|| store::rfc3339(SystemTime::now()));

    let mut progress = SearchProgress::new(&m.experiment.name, quiet);
    let inner = ModelEvaluator::new(model, search, *low, *high, &m.runtime)?;
    let mut eval = Journaled::new(inner, &mut journal);
    let result = mpq_search::run(
        core::strategy_of(m),
        &core::problem_of(m, &prepared.arch),
        &mut eval,
        &mut progress,
    )
    .map_err(|e| match e {
        mpq_search::SearchError::Eval(JournaledError::Interrupted(stop)) => {
            anyhow::Error::new(stop).context(path.display().to_string())
        }
        e => anyhow::anyhow!("{}: search: {e}", path.display()),
    })?;
    let replayed = eval.hits;
    // The search's cache is freed before the held-out images get theirs.
    drop(eval);
    progress.finish();
    // The held-out scoring is not journaled (it is recomputed on resume): a stop asked for now
    // stops here.
    if let Some(stop) = crate::interrupt::requested() {
        return Err(anyhow::Error::new(stop).context(path.display().to_string()));
    }
    let held = match &calibrated.test {
        Some(test) => Some(core::score_held_out(
            &calibrated,
            test,
            &result,
            &m.runtime,
        )?),
        None => None,
    };
    let tables = core::tables(
        &prepared,
        &calibrated,
        &result,
        held.as_ref(),
        RunFacts {
            run_id: &open.run_id,
            manifest_path: path,
            suite: suite_of(path),
            input_key: key.key.clone(),
            code_version: CODE_VERSION.clone(),
            git_commit: git_commit(),
            device: device_name(m.runtime.device),
            started_at,
            finished_at: store::rfc3339(SystemTime::now()),
            wall_s: t0.elapsed().as_secs_f64(),
            evals_replayed: replayed as u64,
        },
    );
    store::write_run(&open.dir, &tables)?;
    drop(open.lock);
    Ok(RunOutcome {
        dir: open.dir,
        tables,
        resumed_evals: replayable.min(replayed),
    })
}
