//! `mpq reproduce`: every manifest of the chosen suites brought up to date, like a build
//! system, then the reports regenerated.
//!
//! A suite is a directory directly under the experiments root (`experiments/embedded/`,
//! `experiments/paper/`). For each manifest the plan says one of:
//! - up to date: a finished run with the manifest's input key exists (see `fingerprint`: the
//!   resolved manifest, the files it reads, the code version); nothing runs;
//! - run: no finished run has that key; the reason names what changed since the latest
//!   finished run (which manifest keys, old -> new; which input files; which code units) or
//!   says there is none; an unfinished run with that key is resumed from its journal;
//! - skipped: a file it reads is missing (a paper manifest without ImageNet or weights). A
//!   suite with such manifests gets one line saying what to configure; asking for that suite by
//!   name makes it an error.
//!
//! A manifest plans as one entry per run it stands for (`expand`): per point of the
//! `--sweep`s and per repeat (`experiment.repeats`), each with its own input key and action.
//!
//! Every manifest is resolved and checked before anything runs. The runs to make are made in
//! this process (`--executor local`) or submitted as a Slurm job array (`--executor slurm`,
//! `submit`), then, with `--wait` once the array has ended, the reports are written.
use crate::discover::{find_manifests, suites};
use crate::expand::{self, RunSpec};
use crate::fingerprint::{input_key, InputKey};
use crate::inputs::{inputs, Missing};
use crate::store::{stored_runs, StoredRun};
use crate::submit::{self, Submission, ToSubmit, Unfinished};
use anyhow::{bail, Context, Result};
use mpq_vocab::Executor;
use std::path::{Path, PathBuf};

/// Options of `mpq reproduce`.
#[derive(Clone, Debug)]
pub struct ReproduceOptions {
    /// The experiments root (normally `experiments/`).
    pub root: PathBuf,
    /// Suites to bring up to date; empty: every suite under the root.
    pub suites: Vec<String>,
    /// Only manifests whose experiment name or path contains this.
    pub filter: Option<String>,
    /// Run even what is up to date.
    pub force: bool,
    /// Print the plan and stop.
    pub dry_run: bool,
    /// No progress bars.
    pub quiet: bool,
    /// `--set` overrides applied to every manifest.
    pub sets: Vec<String>,
    /// `--sweep key=v1,v2,...` arguments: every manifest runs at each point of their product.
    pub sweeps: Vec<String>,
    /// Where the runs are made.
    pub executor: Executor,
    /// `--executor slurm`: wait for the job array to end, then write the reports.
    pub wait: bool,
    /// Where the reports go (normally `reports/`).
    pub reports: PathBuf,
}

impl Default for ReproduceOptions {
    fn default() -> Self {
        ReproduceOptions {
            root: PathBuf::new(),
            suites: vec![],
            filter: None,
            force: false,
            dry_run: false,
            quiet: false,
            sets: vec![],
            sweeps: vec![],
            executor: Executor::Local,
            wait: false,
            reports: PathBuf::new(),
        }
    }
}

/// What to do with one manifest.
#[derive(Clone, Debug)]
pub enum Action {
    /// A finished run with the same input key.
    UpToDate(StoredRun),
    /// Run it; `why` says what changed; `resume` is an unfinished run with the same key.
    Run {
        why: String,
        resume: Option<StoredRun>,
    },
    /// A file it reads is missing.
    Skip { missing: Vec<Missing> },
}

/// One run of the plan: a manifest, or one of its sweep points or repeats.
#[derive(Clone, Debug)]
pub struct Entry {
    pub suite: String,
    pub run: RunSpec,
    pub key: Option<InputKey>,
    pub action: Action,
}

impl Entry {
    /// The finished, up-to-date run of this manifest, if any.
    pub fn current_run(&self) -> Option<&StoredRun> {
        match &self.action {
            Action::UpToDate(r) => Some(r),
            _ => None,
        }
    }
}

/// The latest finished run a run with `key` replaces: the experiment's latest, or for one of
/// several repeats the latest of the same repeat (same seeds), so that a new repeat is "no
/// previous run" rather than a change of seeds.
pub fn previous_run<'a>(
    key: &InputKey,
    stored: &'a [StoredRun],
    repeat: Option<u32>,
) -> Option<&'a InputKey> {
    stored
        .iter()
        .rev()
        .filter(|r| r.finished)
        .filter_map(|r| r.key.as_ref())
        .find(|k| repeat.is_none() || key.same_seeds(k))
}

/// Why a run with `key` is needed, given the runs already stored.
fn why_run(key: &InputKey, stored: &[StoredRun], force: bool, repeat: Option<u32>) -> String {
    if force
        && stored
            .iter()
            .any(|r| r.finished && r.key.as_ref() == Some(key))
    {
        return "forced".into();
    }
    match previous_run(key, stored, repeat) {
        None => "no previous run".into(),
        Some(old) => {
            let changed = key.changes_since(old);
            if changed.is_empty() {
                "no previous run".into()
            } else {
                format!("changed since the last run: {changed}")
            }
        }
    }
}

/// The plan for `opts`: every run of every manifest of the chosen suites, resolved and
/// classified.
pub fn plan(opts: &ReproduceOptions) -> Result<Vec<Entry>> {
    let sweep = crate::sweep::expand(&opts.sweeps, &opts.sets)?;
    let all = suites(&opts.root)?;
    let chosen: Vec<String> = if opts.suites.is_empty() {
        all.clone()
    } else {
        for s in &opts.suites {
            if !all.contains(s) {
                bail!(
                    "{}: no suite {s:?} (suites: {})",
                    opts.root.display(),
                    all.join(", ")
                );
            }
        }
        opts.suites.clone()
    };
    let mut entries = vec![];
    let mut names: std::collections::HashMap<String, PathBuf> = Default::default();
    for suite in chosen {
        for path in find_manifests(&opts.root.join(&suite)) {
            for point in expand::points(&path, &opts.sets, &sweep)? {
                let name = point.resolved.manifest.experiment.name.clone();
                if let Some(other) = names.insert(name.clone(), path.clone()) {
                    bail!(
                        "{}: experiment.name: {name:?} is also the name of {}; results of both would mix",
                        path.display(),
                        other.display()
                    );
                }
                if let Some(f) = &opts.filter {
                    // The path below the experiments root: where the root itself lives must
                    // not decide what a filter matches.
                    let rel = path.strip_prefix(&opts.root).unwrap_or(&path);
                    if !name.contains(f.as_str()) && !rel.to_string_lossy().contains(f.as_str()) {
                        continue;
                    }
                }
                for run in expand::repeats(&point)? {
                    let (key, action) = classify(&run, opts.force)?;
                    entries.push(Entry {
                        suite: suite.clone(),
                        run,
                        key,
                        action,
                    });
                }
            }
        }
    }
    Ok(entries)
}

/// The input key of a run and what to do with it.
fn classify(run: &RunSpec, force: bool) -> Result<(Option<InputKey>, Action)> {
    let resolved = &run.resolved;
    let m = &resolved.manifest;
    let (files, missing) = inputs(resolved);
    if !missing.is_empty() {
        return Ok((None, Action::Skip { missing }));
    }
    let key = input_key(resolved, &files)
        .with_context(|| format!("{}: fingerprinting its inputs", run.manifest.display()))?;
    let stored = stored_runs(&m.runtime.results_dir, &m.experiment.name);
    let same = |finished: bool| {
        stored
            .iter()
            .rev()
            .find(|r| r.finished == finished && r.key.as_ref() == Some(&key))
            .cloned()
    };
    let action = match same(true) {
        Some(r) if !force => Action::UpToDate(r),
        _ => Action::Run {
            why: why_run(&key, &stored, force, run.repeat),
            resume: same(false),
        },
    };
    Ok((Some(key), action))
}

/// One line per suite with skipped manifests: what is missing and how to configure it.
pub fn skipped_suites(entries: &[Entry], root: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = vec![];
    let mut suites: Vec<&str> = entries.iter().map(|e| e.suite.as_str()).collect();
    suites.dedup();
    for suite in suites {
        let skipped: Vec<&Entry> = entries
            .iter()
            .filter(|e| e.suite == suite && matches!(e.action, Action::Skip { .. }))
            .collect();
        if skipped.is_empty() {
            continue;
        }
        let mut reasons: Vec<&Missing> = vec![];
        for e in &skipped {
            if let Action::Skip { missing } = &e.action {
                for m in missing {
                    if !reasons.contains(&m) {
                        reasons.push(m);
                    }
                }
            }
        }
        // What every manifest of the suite lacks (the data) first, then per-model weights.
        reasons.sort();
        let shown = reasons.len().min(3);
        let more = if reasons.len() > shown {
            format!(" and {} more", reasons.len() - shown)
        } else {
            String::new()
        };
        let readme = root.join(suite).join("README.md");
        let see = if readme.is_file() {
            format!(" (see {})", readme.display())
        } else {
            String::new()
        };
        out.push((
            suite.to_string(),
            format!(
                "{suite}: {} of {} manifests skipped, inputs missing: {}{more}{see}",
                skipped.len(),
                entries.iter().filter(|e| e.suite == suite).count(),
                reasons[..shown]
                    .iter()
                    .map(|r| r.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        ));
    }
    out
}

/// `<suite>/<experiment>[ repeat r]`: how messages name an entry.
pub fn entry_name(e: &Entry) -> String {
    format!("{}/{}", e.suite, e.run.label())
}

/// A line describing an entry's action, for the plan printout.
pub fn describe(e: &Entry) -> String {
    let name = entry_name(e);
    match &e.action {
        Action::UpToDate(r) => format!("{name}: up to date ({})", r.dir.display()),
        Action::Run { why, resume: None } => format!("{name}: run ({why})"),
        Action::Run {
            why,
            resume: Some(r),
        } => format!("{name}: resume {} ({why})", r.dir.display()),
        Action::Skip { missing } => {
            let why: Vec<String> = missing.iter().map(|m| m.to_string()).collect();
            format!("{name}: skipped ({})", why.join("; "))
        }
    }
}

/// The report crate's plan: every manifest of `entries` with its up-to-date run, if any.
pub fn report_plan(entries: &[Entry]) -> Vec<mpq_report::PlannedRun> {
    entries
        .iter()
        .map(|e| {
            let m = &e.run.resolved.manifest;
            mpq_report::PlannedRun {
                suite: e.suite.clone(),
                experiment: m.experiment.name.clone(),
                manifest: e.run.manifest.clone(),
                arch: m.model.arch,
                paper_model: m.experiment.paper_model,
                pair: m.quant.pair,
                strategy: m.search.strategy,
                beta: m.search.beta,
                run_dir: e.current_run().map(|r| r.dir.clone()),
                repeat: e.run.repeat,
                method: m.quant.method,
            }
        })
        .collect()
}

/// Writes the reports of `entries` (their suites, their current runs) under `reports_dir`,
/// with the published numbers of `root/baselines/`. Returns the files written.
pub fn write_reports(entries: &[Entry], root: &Path, reports_dir: &Path) -> Result<Vec<PathBuf>> {
    mpq_report::write_reports(&report_plan(entries), &root.join("baselines"), reports_dir)
}

/// What `mpq reproduce` did.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Runs made here (new runs and resumed ones).
    pub ran: usize,
    /// Runs needed (= `ran` with the local executor, unless `--dry-run`).
    pub to_run: usize,
    /// Runs already up to date.
    pub up_to_date: usize,
    /// Runs skipped for missing inputs.
    pub skipped: usize,
    /// `--executor slurm`: the job arrays submitted.
    pub submitted: Vec<Submission>,
    /// `--executor slurm --wait`: the tasks that did not finish their run.
    pub unfinished: Vec<Unfinished>,
    /// Whether the reports were written (not after a submission without `--wait`).
    pub reports: Option<usize>,
}

/// Brings the chosen suites up to date (see the module documentation), reporting each line of
/// progress to `say`. A suite named in `opts.suites` whose manifests cannot run is an error
/// (its one-line reason); otherwise such suites are reported and skipped.
pub fn reproduce(
    opts: &ReproduceOptions,
    say: &mut dyn FnMut(&str),
) -> Result<(Vec<Entry>, Summary)> {
    let entries = plan(opts)?;
    let skipped = skipped_suites(&entries, &opts.root);
    for (suite, line) in &skipped {
        if opts.suites.contains(suite) {
            bail!("{line}");
        }
    }
    let mut summary = Summary::default();
    for e in &entries {
        match &e.action {
            Action::Skip { .. } => summary.skipped += 1,
            Action::UpToDate(_) => summary.up_to_date += 1,
            Action::Run { .. } => summary.to_run += 1,
        }
        if !matches!(e.action, Action::Skip { .. }) {
            say(&describe(e));
        }
    }
    for (_, line) in &skipped {
        say(line);
    }
    if opts.dry_run {
        return Ok((entries, summary));
    }
    let to_run: Vec<&Entry> = entries
        .iter()
        .filter(|e| matches!(e.action, Action::Run { .. }))
        .collect();
    match opts.executor {
        Executor::Local => {
            for e in &to_run {
                let o = crate::run::run_resolved(e.run.resolved.clone(), opts.quiet)?;
                summary.ran += 1;
                say(&format!(
                    "{}: {} evaluation{} ({} from the journal) in {:.1}s -> {}",
                    entry_name(e),
                    o.tables.run.evals,
                    if o.tables.run.evals == 1 { "" } else { "s" },
                    o.resumed_evals,
                    o.tables.run.wall_s,
                    o.dir.display()
                ));
            }
        }
        Executor::Slurm if to_run.is_empty() => {}
        Executor::Slurm => {
            let runs: Vec<ToSubmit> = to_run
                .iter()
                .map(|e| ToSubmit {
                    run: &e.run,
                    key: e.key.as_ref().expect("a run to make has its key"),
                })
                .collect();
            summary.submitted = submit::submit(&runs, &opts.sets)?;
            for s in &summary.submitted {
                say(&format!("submitted {s}"));
            }
            if !opts.wait {
                return Ok((entries, summary));
            }
            summary.unfinished = submit::wait(&summary.submitted, say)?;
            summary.ran = to_run.len() - summary.unfinished.len();
        }
    }
    // Everything that could run is now up to date: plan again to find the current runs.
    let entries = if summary.ran > 0 {
        plan(&ReproduceOptions {
            force: false,
            ..opts.clone()
        })?
    } else {
        entries
    };
    let written = write_reports(&entries, &opts.root, &opts.reports)?;
    summary.reports = Some(written.len());
    Ok((entries, summary))
}
