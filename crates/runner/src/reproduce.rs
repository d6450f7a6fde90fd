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
//! Every manifest is resolved and checked before anything runs.
use crate::discover::{find_manifests, suites};
use crate::fingerprint::{input_key, InputKey};
use crate::inputs::{inputs, Missing};
use crate::manifest::{self, Resolved};
use crate::store::{stored_runs, StoredRun};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Options of `mpq reproduce`.
#[derive(Clone, Debug, Default)]
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
    /// Where the reports go (normally `reports/`).
    pub reports: PathBuf,
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

/// One manifest of the plan.
#[derive(Clone, Debug)]
pub struct Entry {
    pub suite: String,
    pub manifest: PathBuf,
    pub resolved: Resolved,
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

/// Why a run with `key` is needed, given the runs already stored.
fn why_run(key: &InputKey, stored: &[StoredRun], force: bool) -> String {
    if force
        && stored
            .iter()
            .any(|r| r.finished && r.key.as_ref() == Some(key))
    {
        return "forced".into();
    }
    let latest = stored.iter().rev().find(|r| r.finished && r.key.is_some());
    match latest.and_then(|r| r.key.as_ref()) {
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

/// The plan for `opts`: every manifest of the chosen suites, resolved and classified.
pub fn plan(opts: &ReproduceOptions) -> Result<Vec<Entry>> {
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
            let resolved = manifest::load(&path, &opts.sets)?;
            let name = resolved.manifest.experiment.name.clone();
            if let Some(other) = names.insert(name.clone(), path.clone()) {
                bail!(
                    "{}: experiment.name: {name:?} is also the name of {}; results of both would mix",
                    path.display(),
                    other.display()
                );
            }
            if let Some(f) = &opts.filter {
                // The path below the experiments root: where the root itself lives must not
                // decide what a filter matches.
                let rel = path.strip_prefix(&opts.root).unwrap_or(&path);
                if !name.contains(f.as_str()) && !rel.to_string_lossy().contains(f.as_str()) {
                    continue;
                }
            }
            let m = &resolved.manifest;
            let (files, missing) = inputs(&resolved);
            let (key, action) = if !missing.is_empty() {
                (None, Action::Skip { missing })
            } else {
                let key = input_key(&resolved, &files)
                    .with_context(|| format!("{}: fingerprinting its inputs", path.display()))?;
                let stored = stored_runs(&m.runtime.results_dir, &name);
                let same = |finished: bool| {
                    stored
                        .iter()
                        .rev()
                        .find(|r| r.finished == finished && r.key.as_ref() == Some(&key))
                        .cloned()
                };
                let action = match same(true) {
                    Some(r) if !opts.force => Action::UpToDate(r),
                    _ => Action::Run {
                        why: why_run(&key, &stored, opts.force),
                        resume: same(false),
                    },
                };
                (Some(key), action)
            };
            entries.push(Entry {
                suite: suite.clone(),
                manifest: path,
                resolved,
                key,
                action,
            });
        }
    }
    Ok(entries)
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

/// A line describing an entry's action, for the plan printout.
pub fn describe(e: &Entry) -> String {
    let name = format!("{}/{}", e.suite, e.resolved.manifest.experiment.name);
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
            let m = &e.resolved.manifest;
            mpq_report::PlannedRun {
                suite: e.suite.clone(),
                experiment: m.experiment.name.clone(),
                manifest: e.manifest.clone(),
                arch: m.model.arch,
                paper_model: m.experiment.paper_model,
                pair: m.quant.pair,
                strategy: m.search.strategy,
                beta: m.search.beta,
                run_dir: e.current_run().map(|r| r.dir.clone()),
                // The planner's expansion of `experiment.repeats` (issue 14) sets it.
                repeat: None,
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
    /// Manifests run (new runs and resumed ones).
    pub ran: usize,
    /// Manifests that need a run (= `ran` unless `--dry-run`).
    pub to_run: usize,
    /// Manifests already up to date.
    pub up_to_date: usize,
    /// Manifests skipped for missing inputs.
    pub skipped: usize,
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
    for e in &entries {
        if let Action::Run { .. } = e.action {
            let o = crate::run::run(
                &e.manifest,
                &crate::RunOptions {
                    sets: opts.sets.clone(),
                    quiet: opts.quiet,
                },
            )?;
            summary.ran += 1;
            say(&format!(
                "{}/{}: {} evaluations ({} from the journal) in {:.1}s -> {}",
                e.suite,
                e.resolved.manifest.experiment.name,
                o.tables.run.evals,
                o.resumed_evals,
                o.tables.run.wall_s,
                o.dir.display()
            ));
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
    say(&format!(
        "reports: {} files under {}",
        written.len(),
        opts.reports.display()
    ));
    Ok((entries, summary))
}
