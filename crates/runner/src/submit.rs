//! `--executor slurm`: the runs a plan has to make, as a Slurm job array (`mpq_cluster`), one
//! task per run, each task `mpq run <manifest> [--repeat r] --set ...` on the shared
//! filesystem; and the record of each submission, for `mpq status` and `--wait`.
//!
//! Runs with the same results directory and the same `[resources]` go into one array (one
//! `#SBATCH` header serves all its tasks); usually that is all of them. An array's submission
//! directory is `<results_dir>/.slurm/<UTC time>/`: the batch script, the task list, the
//! tasks' logs (`logs/<job>_<task>.log`) and `submission.toml`, this module's record: the job
//! id, and for each task its manifest, experiment, repeat and the input key it was submitted
//! for. `mpq status` finds a run's task by that key, so a task submitted for other inputs is
//! never taken for the run's.
use crate::expand::RunSpec;
use crate::fingerprint::InputKey;
use crate::store;
use anyhow::{Context, Result};
use mpq_cluster::script::{task_log_path, TaskLog};
use mpq_cluster::{ArrayJob, Resources, Slurm, SlurmError, Task, TaskState, TaskStatus};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The directory of the submissions under a results directory.
pub const SUBMISSIONS_DIR: &str = ".slurm";
/// A submission's record in its directory.
pub const RECORD_FILE: &str = "submission.toml";

/// One submitted job array.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    /// The array job's id (`%A`).
    pub job: u64,
    /// RFC 3339, UTC.
    pub submitted_at: String,
    /// The host `sbatch` ran on.
    pub host: String,
    /// Task `i` is `tasks[i]`.
    pub tasks: Vec<SubmittedTask>,
    /// The submission directory (not stored: where the record was read from).
    #[serde(skip)]
    pub dir: PathBuf,
}

impl std::fmt::Display for Submission {
    /// `job 45: 3 task(s), logs in <dir>/logs`.
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "job {}: {} task(s), logs in {}",
            self.job,
            self.tasks.len(),
            self.dir.join(mpq_cluster::script::LOGS_DIR).display()
        )
    }
}

/// One task of a submission.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubmittedTask {
    pub manifest: PathBuf,
    pub experiment: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<u32>,
    /// The input key of the run it was submitted for.
    pub key: String,
}

impl Submission {
    /// The log of task `task`.
    pub fn log(&self, task: u32) -> PathBuf {
        task_log_path(&self.dir, self.job, task)
    }

    /// The index of the task submitted for input key `key`, if any.
    pub fn task_of(&self, key: &str) -> Option<u32> {
        self.tasks
            .iter()
            .position(|t| t.key == key)
            .map(|i| i as u32)
    }

    /// Why task `task` did not finish, in one line: the error `mpq` printed, else the task
    /// script's reason, else Slurm's state.
    pub fn reason(&self, task: u32, state: &TaskState) -> String {
        let log = TaskLog::read(&self.log(task)).unwrap_or_default();
        let end = log.last_end.as_ref();
        log.last_error
            .or_else(|| end.and_then(|e| e.reason.clone()))
            .or_else(|| end.map(|e| format!("exit code {}", e.exit)))
            .unwrap_or_else(|| state.to_string())
    }

    /// Whether task `task` finished its run, by Slurm's state or, once Slurm has forgotten it,
    /// by its log.
    pub fn done(&self, task: u32, state: &TaskState) -> bool {
        match state {
            TaskState::Completed => true,
            TaskState::Gone => TaskLog::read(&self.log(task))
                .ok()
                .and_then(|l| l.last_end)
                .is_some_and(|e| e.action == "done"),
            _ => false,
        }
    }
}

/// A run to submit: what it runs and the input key it is for.
pub struct ToSubmit<'a> {
    pub run: &'a RunSpec,
    pub key: &'a InputKey,
}

/// Submits `runs` (with `sets`, the user's `--set`s, before each run's own): one job array per
/// results directory and `[resources]`. Each array's directory is written before `sbatch` and
/// removed if it fails; its record is written once Slurm has taken it.
pub fn submit(runs: &[ToSubmit], sets: &[String]) -> Result<Vec<Submission>> {
    let exe = std::env::current_exe().context("finding the mpq binary")?;
    let workdir = std::env::current_dir().context("finding the working directory")?;
    let mut groups: Vec<(PathBuf, Resources, Vec<&ToSubmit>)> = vec![];
    for r in runs {
        let m = &r.run.resolved.manifest;
        match groups
            .iter_mut()
            .find(|(d, res, _)| *d == m.runtime.results_dir && *res == m.resources)
        {
            Some(g) => g.2.push(r),
            None => groups.push((m.runtime.results_dir.clone(), m.resources.clone(), vec![r])),
        }
    }
    let slurm = Slurm::new();
    let mut out = vec![];
    for (results_dir, resources, runs) in groups {
        let now = SystemTime::now();
        let base = std::path::absolute(workdir.join(&results_dir).join(SUBMISSIONS_DIR))
            .with_context(|| format!("{}: not a usable path", results_dir.display()))?;
        let stamp = store::utc_stamp(now);
        let mut dir = base.join(&stamp);
        let mut n = 1;
        while dir.exists() {
            n += 1;
            dir = base.join(format!("{stamp}-{n}"));
        }
        let job = ArrayJob {
            name: "mpq".into(),
            dir: dir.clone(),
            workdir: workdir.clone(),
            exe: exe.clone(),
            sets: sets.to_vec(),
            tasks: runs
                .iter()
                .map(|r| Task {
                    manifest: r.run.manifest.clone(),
                    sets: r.run.sets.clone(),
                    repeat: r.run.repeat,
                })
                .collect(),
            resources,
        };
        // Checked before anything is created.
        let script = job.write()?;
        let id = match slurm.submit(&script) {
            Ok(id) => id,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e.into());
            }
        };
        let s = Submission {
            job: id,
            submitted_at: store::rfc3339(now),
            host: store::hostname(),
            tasks: runs
                .iter()
                .map(|r| SubmittedTask {
                    manifest: r.run.manifest.clone(),
                    experiment: r.run.resolved.manifest.experiment.name.clone(),
                    repeat: r.run.repeat,
                    key: r.key.key.clone(),
                })
                .collect(),
            dir: dir.clone(),
        };
        let text = toml::to_string(&s).context("serializing the submission record")?;
        mpq_io::write_atomic(&dir.join(RECORD_FILE), text.as_bytes())
            .with_context(|| format!("job {id} is submitted, but its record is not"))?;
        out.push(s);
    }
    Ok(out)
}

/// The submissions recorded under `results_dir`, oldest first. A directory without a record
/// (an `sbatch` that failed) is left out; an unreadable record is an error naming it.
pub fn submissions(results_dir: &Path) -> Result<Vec<Submission>> {
    let Ok(rd) = std::fs::read_dir(results_dir.join(SUBMISSIONS_DIR)) else {
        return Ok(vec![]);
    };
    let mut dirs: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    dirs.sort();
    let mut out = vec![];
    for dir in dirs {
        let path = dir.join(RECORD_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let mut s: Submission = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.message()))?;
        s.dir = dir;
        out.push(s);
    }
    Ok(out)
}

/// Slurm's state of every task of a submission.
pub fn states(slurm: &Slurm, s: &Submission) -> Result<Vec<TaskStatus>, SlurmError> {
    slurm.states(s.job, s.tasks.len() as u32)
}

/// A task that did not finish its run.
#[derive(Clone, Debug)]
pub struct Unfinished {
    pub job: u64,
    pub task: u32,
    pub experiment: String,
    pub repeat: Option<u32>,
    pub state: TaskState,
    pub reason: String,
    pub log: PathBuf,
}

/// Waits until every task of `subs` has ended, reporting each change of their states to
/// `say`; returns the tasks that did not finish their run.
pub fn wait(subs: &[Submission], say: &mut dyn FnMut(&str)) -> Result<Vec<Unfinished>> {
    let slurm = Slurm::new();
    let mut out = vec![];
    for s in subs {
        let end = slurm.wait(
            s.job,
            s.tasks.len() as u32,
            Duration::from_secs(2),
            None,
            &mut |states| {
                say(&format!(
                    "job {}: {}",
                    s.job,
                    mpq_cluster::slurm::summary(states)
                ))
            },
        )?;
        for t in end {
            if s.done(t.task, &t.state) {
                continue;
            }
            let task = &s.tasks[t.task as usize];
            out.push(Unfinished {
                job: s.job,
                task: t.task,
                experiment: task.experiment.clone(),
                repeat: task.repeat,
                reason: s.reason(t.task, &t.state),
                log: s.log(t.task),
                state: t.state,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_find_tasks_by_key() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(SUBMISSIONS_DIR).join("20260101T000000Z");
        std::fs::create_dir_all(dir.join("logs")).unwrap();
        let s = Submission {
            job: 45,
            submitted_at: "2026-01-01T00:00:00Z".into(),
            host: "login1".into(),
            tasks: vec![
                SubmittedTask {
                    manifest: "experiments/embedded/a.toml".into(),
                    experiment: "a".into(),
                    repeat: None,
                    key: "k0".into(),
                },
                SubmittedTask {
                    manifest: "experiments/embedded/b.toml".into(),
                    experiment: "b".into(),
                    repeat: Some(1),
                    key: "k1".into(),
                },
            ],
            dir: dir.clone(),
        };
        std::fs::write(dir.join(RECORD_FILE), toml::to_string(&s).unwrap()).unwrap();
        // A directory without a record (a failed sbatch) is not a submission.
        std::fs::create_dir_all(tmp.path().join(SUBMISSIONS_DIR).join("x")).unwrap();
        let read = submissions(tmp.path()).unwrap();
        assert_eq!(read, std::slice::from_ref(&s));
        assert_eq!(s.task_of("k1"), Some(1));
        assert_eq!(s.task_of("k2"), None);
        assert_eq!(s.log(1), dir.join("logs/45_1.log"));
        // Reasons: mpq's error, else the script's, else Slurm's.
        let failed = TaskState::Failed {
            kind: mpq_cluster::FailKind::Exit,
            exit: Some(mpq_cluster::Exit::Code(1)),
        };
        assert_eq!(s.reason(0, &failed), "failed (exit code 1)");
        std::fs::write(
            s.log(0),
            "mpq-task: task=0 attempt=0 start job=46 host=n manifest=a.toml repeat=-\n\
             mpq: a.toml: model.weights: w.safetensors: not found\n\
             mpq-task: task=0 attempt=0 exit=1 action=fail\n",
        )
        .unwrap();
        assert_eq!(
            s.reason(0, &failed),
            "a.toml: model.weights: w.safetensors: not found"
        );
        assert!(!s.done(0, &TaskState::Gone));
        std::fs::write(s.log(1), "mpq-task: task=1 attempt=0 exit=0 action=done\n").unwrap();
        assert!(s.done(1, &TaskState::Gone) && s.done(0, &TaskState::Completed));
        std::fs::write(dir.join(RECORD_FILE), "job = \"x\"").unwrap();
        let e = submissions(tmp.path()).unwrap_err().to_string();
        assert!(e.contains(RECORD_FILE), "{e}");
    }
}
