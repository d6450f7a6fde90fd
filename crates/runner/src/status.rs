//! `mpq status`: where each run of a plan stands, from what lasts (the results directory: its
//! finished runs, the journals and locks of unfinished ones; the submission records and task
//! logs under `results/.slurm/`) and what Slurm still knows (`squeue`, `sacct`).
//!
//! A run is found in a submission by its input key (`submit`), so only a task submitted for
//! exactly these inputs counts; the newest such task wins. Slurm's word decides while it
//! knows the task; once it has forgotten it (no accounting, after `MinJobAge`), the task's
//! log and the run directory do.
use crate::journal::{progress, Progress};
use crate::reproduce::{entry_name, previous_run, Action, Entry};
use crate::store::{self, lock_holder, stored_runs, Liveness, StoredRun};
use crate::submit::{self, Submission};
use anyhow::Result;
use mpq_cluster::{Slurm, SlurmError, TaskState, TaskStatus};
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

/// Where a run stands.
#[derive(Clone, Debug, PartialEq)]
pub enum RunState {
    /// A finished run with its input key.
    UpToDate {
        dir: PathBuf,
    },
    /// Finished runs, none with its input key; what changed since the latest.
    Stale {
        changes: String,
    },
    /// No run of it at all.
    NotRun,
    /// A file it reads is missing.
    Skipped {
        why: String,
    },
    /// Its Slurm task waits; Slurm's reason.
    Queued {
        task: String,
        reason: String,
    },
    /// Its search runs (on Slurm, or in a process holding its run directory's lock).
    Running {
        on: String,
        progress: Progress,
        steps: usize,
    },
    /// Its Slurm task was requeued and waits to start again.
    Requeued {
        task: String,
    },
    Suspended {
        task: String,
    },
    /// Its Slurm task failed (not to be retried by Slurm).
    Failed {
        task: String,
        reason: String,
        log: PathBuf,
    },
    /// Its Slurm task was cancelled; what the journal holds is resumed by the next run.
    Cancelled {
        task: String,
        progress: Progress,
    },
    /// An unfinished run with its key that nothing runs: the next run resumes it.
    Interrupted {
        progress: Progress,
    },
}

impl RunState {
    /// The state's name, for counts.
    pub fn name(&self) -> &'static str {
        match self {
            RunState::UpToDate { .. } => "up to date",
            RunState::Stale { .. } => "stale",
            RunState::NotRun => "not run",
            RunState::Skipped { .. } => "skipped",
            RunState::Queued { .. } => "queued",
            RunState::Running { .. } => "running",
            RunState::Requeued { .. } => "requeued",
            RunState::Suspended { .. } => "suspended",
            RunState::Failed { .. } => "failed",
            RunState::Cancelled { .. } => "cancelled",
            RunState::Interrupted { .. } => "interrupted",
        }
    }
}

/// `N evaluations journaled`.
fn journaled(p: &Progress) -> String {
    format!("{} configurations journaled", p.configurations)
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            RunState::UpToDate { dir } => write!(f, "up to date ({})", dir.display()),
            RunState::Stale { changes } => write!(f, "stale ({changes})"),
            RunState::NotRun => write!(f, "not run"),
            RunState::Skipped { why } => write!(f, "skipped ({why})"),
            RunState::Queued { task, reason } if reason.is_empty() || reason == "None" => {
                write!(f, "queued (Slurm job {task})")
            }
            RunState::Queued { task, reason } => {
                write!(f, "queued: {reason} (Slurm job {task})")
            }
            RunState::Running {
                on,
                progress,
                steps,
            } => write!(
                f,
                "running step {} of {steps}, {} ({on})",
                progress.step.max(1).min(*steps),
                journaled(progress)
            ),
            RunState::Requeued { task } => write!(f, "requeued (Slurm job {task})"),
            RunState::Suspended { task } => write!(f, "suspended (Slurm job {task})"),
            RunState::Failed { task, reason, log } => write!(
                f,
                "failed: {reason} (Slurm job {task}, log {})",
                log.display()
            ),
            RunState::Cancelled { task, progress } => write!(
                f,
                "cancelled (Slurm job {task}); {}, resumed by the next run",
                journaled(progress)
            ),
            RunState::Interrupted { progress } => write!(
                f,
                "interrupted: {}, resumed by the next run",
                journaled(progress)
            ),
        }
    }
}

/// One run of the plan and where it stands.
#[derive(Clone, Debug)]
pub struct RunStatus {
    /// `<suite>/<experiment>[ repeat r]`.
    pub name: String,
    pub state: RunState,
}

/// The steps a run's search takes: its searchable layers, or `search.max_steps`.
fn steps_of(e: &Entry) -> usize {
    let m = &e.run.resolved.manifest;
    let n = if m.search.layers.is_empty() {
        mpq_models::Arch::new(m.model.arch).layers.len()
    } else {
        m.search.layers.len()
    };
    match m.search.max_steps {
        0 => n,
        k => k.min(n),
    }
}

/// The submissions and Slurm's states of their tasks, read once per results directory.
struct Cluster {
    subs: HashMap<PathBuf, Vec<Submission>>,
    states: HashMap<u64, Vec<TaskStatus>>,
    slurm: Slurm,
    /// Slurm could not be asked (not installed, or a command failed): the line saying so.
    warning: Option<String>,
}

impl Cluster {
    /// The newest task submitted for this entry's key, and its state.
    fn task(&mut self, e: &Entry) -> Result<Option<(Submission, u32, TaskState)>> {
        let Some(key) = &e.key else { return Ok(None) };
        let dir = &e.run.resolved.manifest.runtime.results_dir;
        if !self.subs.contains_key(dir) {
            self.subs.insert(dir.clone(), submit::submissions(dir)?);
        }
        let found = self.subs[dir]
            .iter()
            .rev()
            .find_map(|s| s.task_of(&key.key).map(|t| (s.clone(), t)));
        let Some((s, t)) = found else { return Ok(None) };
        if !self.states.contains_key(&s.job) && self.warning.is_none() {
            match submit::states(&self.slurm, &s) {
                Ok(st) => {
                    self.states.insert(s.job, st);
                }
                Err(SlurmError::NotFound { command }) => {
                    self.warning = Some(format!(
                        "{command} not found: Slurm's states unknown, the task logs are used"
                    ));
                }
                Err(err) => {
                    self.warning = Some(format!("{err}; the task logs are used"));
                }
            }
        }
        let state = self
            .states
            .get(&s.job)
            .and_then(|v| v.get(t as usize))
            .map_or(TaskState::Gone, |t| t.state.clone());
        Ok(Some((s, t, state)))
    }
}

/// The latest unfinished run directory with the entry's key.
fn unfinished(e: &Entry) -> Option<StoredRun> {
    let key = e.key.as_ref()?;
    let m = &e.run.resolved.manifest;
    stored_runs(&m.runtime.results_dir, &m.experiment.name)
        .into_iter()
        .rev()
        .find(|r| !r.finished && r.key.as_ref() == Some(key))
}

fn progress_of(dir: Option<&StoredRun>) -> Progress {
    dir.and_then(|r| progress(&r.dir.join(store::JOURNAL_FILE)).ok())
        .unwrap_or_default()
}

/// Where each entry of a plan stands; and a warning line when Slurm could not be asked.
pub fn status(entries: &[Entry]) -> Result<(Vec<RunStatus>, Option<String>)> {
    let mut cluster = Cluster {
        subs: HashMap::new(),
        states: HashMap::new(),
        slurm: Slurm::new(),
        warning: None,
    };
    let mut out = vec![];
    for e in entries {
        let state = match &e.action {
            Action::UpToDate(r) => RunState::UpToDate { dir: r.dir.clone() },
            Action::Skip { missing } => RunState::Skipped {
                why: missing
                    .iter()
                    .map(|m| m.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            },
            Action::Run { .. } => not_current(e, &mut cluster)?,
        };
        out.push(RunStatus {
            name: entry_name(e),
            state,
        });
    }
    Ok((out, cluster.warning))
}

/// The state of a run without a current result.
fn not_current(e: &Entry, cluster: &mut Cluster) -> Result<RunState> {
    let dir = unfinished(e);
    let journal = progress_of(dir.as_ref());
    let steps = steps_of(e);
    // A process of this host (or one that cannot be checked from here) holding the lock.
    let holder = dir.as_ref().and_then(|r| lock_holder(&r.dir));
    let locked = holder
        .as_ref()
        .filter(|h| h.liveness() != Liveness::Dead)
        .map(|h| h.to_string());
    if let Some((s, t, state)) = cluster.task(e)? {
        let task = format!("{}_{t}", s.job);
        let log = s.log(t);
        let by_log = || mpq_cluster::TaskLog::read(&log).unwrap_or_default();
        return Ok(match state {
            TaskState::Pending { reason } => RunState::Queued { task, reason },
            TaskState::Running => RunState::Running {
                on: locked.unwrap_or_else(|| format!("Slurm job {task}")),
                progress: journal,
                steps,
            },
            TaskState::Requeued => RunState::Requeued { task },
            TaskState::Suspended => RunState::Suspended { task },
            TaskState::Cancelled => RunState::Cancelled {
                task,
                progress: journal,
            },
            // Ended without a finished run of these inputs (one may have ended since the
            // plan was made): what the directory says.
            TaskState::Completed => match dir {
                Some(_) => RunState::Interrupted { progress: journal },
                None => stale_or_not_run(e),
            },
            TaskState::Gone => {
                let l = by_log();
                match l.last_end.as_ref().map(|e| e.action.as_str()) {
                    Some("fail") => RunState::Failed {
                        reason: s.reason(t, &TaskState::Gone),
                        task,
                        log,
                    },
                    Some("stop") => RunState::Cancelled {
                        task,
                        progress: journal,
                    },
                    _ if locked.is_some() => RunState::Running {
                        on: locked.unwrap_or_default(),
                        progress: journal,
                        steps,
                    },
                    _ if dir.is_some() => RunState::Interrupted { progress: journal },
                    _ => stale_or_not_run(e),
                }
            }
            failed @ (TaskState::Failed { .. } | TaskState::Timeout) => RunState::Failed {
                reason: s.reason(t, &failed),
                task,
                log,
            },
        });
    }
    Ok(match (locked, dir) {
        (Some(on), Some(_)) => RunState::Running {
            on,
            progress: journal,
            steps,
        },
        (None, Some(_)) => RunState::Interrupted { progress: journal },
        _ => stale_or_not_run(e),
    })
}

/// Stale (what changed since the run it replaces, `reproduce::previous_run`), or not run at
/// all.
fn stale_or_not_run(e: &Entry) -> RunState {
    let m = &e.run.resolved.manifest;
    let Some(key) = &e.key else {
        return RunState::NotRun;
    };
    let stored = stored_runs(&m.runtime.results_dir, &m.experiment.name);
    match previous_run(key, &stored, e.run.repeat) {
        Some(old) => {
            let changes = key.changes_since(old);
            RunState::Stale {
                changes: if changes.is_empty() {
                    "its finished run is for other inputs".into()
                } else {
                    changes.to_string()
                },
            }
        }
        None => RunState::NotRun,
    }
}

/// Counts of each state, in a fixed order: `3 up to date, 1 running, 2 not run`.
pub fn counts(rows: &[RunStatus]) -> String {
    let mut names: Vec<&'static str> = vec![];
    let mut n: HashMap<&'static str, usize> = HashMap::new();
    for r in rows {
        let k = r.state.name();
        if !names.contains(&k) {
            names.push(k);
        }
        *n.entry(k).or_default() += 1;
    }
    names.sort_by_key(|k| ORDER.iter().position(|o| o == k));
    names
        .iter()
        .map(|k| format!("{} {k}", n[k]))
        .collect::<Vec<_>>()
        .join(", ")
}

const ORDER: [&str; 11] = [
    "up to date",
    "running",
    "queued",
    "requeued",
    "suspended",
    "interrupted",
    "cancelled",
    "failed",
    "stale",
    "not run",
    "skipped",
];
