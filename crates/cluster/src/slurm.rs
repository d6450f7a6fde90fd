//! Talking to Slurm through its commands (`sbatch`, `squeue`, `sacct`, `scontrol`, `scancel`),
//! as a user on a login node does: each call one command with explicit output fields, its
//! failure one line naming the command and what it printed.
use crate::state::{parse_sacct, parse_squeue, TaskState, TaskStatus, SACCT_FORMAT, SQUEUE_FORMAT};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A failed Slurm command.
#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    #[error("{command}: not found (is Slurm installed and on PATH?)")]
    NotFound { command: String },
    #[error("{command}: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("{command} failed ({status}): {message}")]
    Failed {
        command: String,
        status: String,
        message: String,
    },
    #[error("{command}: unexpected output {output:?}")]
    Output { command: String, output: String },
    #[error(transparent)]
    Parse(#[from] crate::state::ParseError),
    #[error("SLURM_CONF {0}: not found")]
    Conf(PathBuf),
    #[error("job {job}: still running after {waited_s} s: {summary}")]
    WaitTimeout {
        job: u64,
        waited_s: u64,
        summary: String,
    },
}

/// A Slurm cluster, through its commands.
#[derive(Clone, Debug, Default)]
pub struct Slurm {
    /// `SLURM_CONF` for the commands (and, through sbatch's environment, for the tasks); none:
    /// the environment's or the system's.
    conf: Option<PathBuf>,
}

/// One line: stderr's non-empty lines joined, or stdout's.
fn one_line(out: &std::process::Output) -> String {
    let text = if out.stderr.iter().any(|b| !b.is_ascii_whitespace()) {
        &out.stderr
    } else {
        &out.stdout
    };
    String::from_utf8_lossy(text)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// The job id `sbatch --parsable` prints: `<id>` or `<id>;<cluster>`.
pub fn parse_job_id(stdout: &str) -> Option<u64> {
    let t = stdout.trim();
    t.split(';')
        .next()?
        .trim()
        .parse()
        .ok()
        .filter(|_| !t.is_empty())
}

impl Slurm {
    /// The cluster of the environment (`SLURM_CONF` or the system's configuration).
    pub fn new() -> Slurm {
        Slurm::default()
    }

    /// The cluster of a `slurm.conf` (checked now: Slurm's commands retry a missing one for a
    /// minute).
    pub fn with_conf(conf: &Path) -> Result<Slurm, SlurmError> {
        if !conf.is_file() {
            return Err(SlurmError::Conf(conf.to_path_buf()));
        }
        Ok(Slurm {
            conf: Some(conf.to_path_buf()),
        })
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<String, SlurmError> {
        let mut c = Command::new(program);
        c.args(args);
        if let Some(conf) = &self.conf {
            c.env("SLURM_CONF", conf);
        }
        let shown = format!("{program} {}", args.join(" "));
        let out = c.output().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => SlurmError::NotFound {
                command: program.to_string(),
            },
            _ => SlurmError::Spawn {
                command: shown.clone(),
                source: e,
            },
        })?;
        if !out.status.success() {
            return Err(SlurmError::Failed {
                command: shown,
                status: out.status.to_string(),
                message: one_line(&out),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Submits a batch script (`sbatch --parsable`); returns the job id (of an array: `%A`).
    pub fn submit(&self, script: &Path) -> Result<u64, SlurmError> {
        let s = script.to_string_lossy();
        let out = self.run("sbatch", &["--parsable", &s])?;
        parse_job_id(&out).ok_or_else(|| SlurmError::Output {
            command: format!("sbatch --parsable {s}"),
            output: out.trim().to_string(),
        })
    }

    /// The tasks of array job `job` that the controller knows (`squeue`), finished ones
    /// included while it keeps them.
    pub fn squeue(&self, job: u64) -> Result<Vec<TaskStatus>, SlurmError> {
        let j = job.to_string();
        let out = self.run(
            "squeue",
            &[
                "--noheader",
                "--array",
                "--states=all",
                "--jobs",
                &j,
                "--Format",
                SQUEUE_FORMAT,
            ],
        );
        match out {
            Ok(text) => Ok(parse_squeue(&text)?),
            // A job the controller has forgotten (purged after MinJobAge).
            Err(SlurmError::Failed { message, .. }) if message.contains("Invalid job id") => {
                Ok(vec![])
            }
            Err(e) => Err(e),
        }
    }

    /// The tasks of `job` from accounting (`sacct`); `None` where the cluster has none.
    pub fn sacct(&self, job: u64) -> Result<Option<Vec<TaskStatus>>, SlurmError> {
        let j = job.to_string();
        let out = self.run(
            "sacct",
            &[
                "--noheader",
                "--parsable2",
                "--allocations",
                "--jobs",
                &j,
                "--format",
                SACCT_FORMAT,
            ],
        );
        match out {
            Ok(text) => Ok(Some(parse_sacct(&text)?)),
            Err(SlurmError::Failed { message, .. })
                if message.contains("accounting storage is disabled") =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The state of tasks `0..n` of `job`: squeue's, else accounting's, else
    /// [`TaskState::Gone`].
    pub fn states(&self, job: u64, n: u32) -> Result<Vec<TaskStatus>, SlurmError> {
        let live = self.squeue(job)?;
        let mut out: Vec<TaskStatus> = (0..n)
            .map(|task| TaskStatus {
                job,
                task,
                state: TaskState::Gone,
            })
            .collect();
        for t in live {
            if let Some(o) = out.get_mut(t.task as usize) {
                *o = t;
            }
        }
        if out.iter().any(|t| t.state == TaskState::Gone) {
            if let Some(acct) = self.sacct(job)? {
                for t in acct {
                    if let Some(o) = out.get_mut(t.task as usize) {
                        if o.state == TaskState::Gone {
                            *o = t;
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Requeues a task (`scontrol requeue <job>_<task>`): it is stopped (SIGTERM, then SIGKILL
    /// after the cluster's KillWait) and queued again; Slurm holds it back (BeginTime) for
    /// the cluster's credential lifetime (`AuthInfo=cred_expire`, 120 s by default) before it
    /// may start again.
    pub fn requeue(&self, job: u64, task: u32) -> Result<(), SlurmError> {
        self.run("scontrol", &["requeue", &format!("{job}_{task}")])
            .map(drop)
    }

    /// Sends a signal to a task's batch script only (`scancel --batch --signal=<sig>`): with
    /// `USR1`, what the task gets `signal_before_s` before its time limit.
    pub fn signal_batch(&self, job: u64, task: u32, signal: &str) -> Result<(), SlurmError> {
        self.run(
            "scancel",
            &[
                "--batch",
                &format!("--signal={signal}"),
                &format!("{job}_{task}"),
            ],
        )
        .map(drop)
    }

    /// Cancels a whole job (`scancel <job>`).
    pub fn cancel(&self, job: u64) -> Result<(), SlurmError> {
        self.run("scancel", &[&job.to_string()]).map(drop)
    }

    /// Polls until every task `0..n` of `job` has ended ([`TaskState::is_final`]), calling
    /// `on_change` with the states whenever they change; a few failed polls in a row (a busy
    /// controller) are retried before the error is returned. `timeout`: give up after it.
    pub fn wait(
        &self,
        job: u64,
        n: u32,
        poll: Duration,
        timeout: Option<Duration>,
        on_change: &mut dyn FnMut(&[TaskStatus]),
    ) -> Result<Vec<TaskStatus>, SlurmError> {
        let t0 = Instant::now();
        let mut last: Option<Vec<TaskStatus>> = None;
        let mut failures = 0;
        loop {
            match self.states(job, n) {
                Ok(now) => {
                    failures = 0;
                    if last.as_ref() != Some(&now) {
                        on_change(&now);
                    }
                    if now.iter().all(|t| t.state.is_final()) {
                        return Ok(now);
                    }
                    last = Some(now);
                }
                Err(e) if failures >= 5 => return Err(e),
                Err(_) => failures += 1,
            }
            if let Some(limit) = timeout {
                if t0.elapsed() >= limit {
                    return Err(SlurmError::WaitTimeout {
                        job,
                        waited_s: t0.elapsed().as_secs(),
                        summary: last.as_deref().map(summary).unwrap_or_default(),
                    });
                }
            }
            std::thread::sleep(poll);
        }
    }
}

/// `task 0: running, task 1: queued (BeginTime)`.
pub fn summary(tasks: &[TaskStatus]) -> String {
    tasks
        .iter()
        .map(|t| format!("task {}: {}", t.task, t.state))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids() {
        assert_eq!(parse_job_id("42\n"), Some(42));
        assert_eq!(parse_job_id("42;cluster2\n"), Some(42));
        assert_eq!(parse_job_id(""), None);
        assert_eq!(parse_job_id("Submitted batch job 42"), None);
    }

    /// Commands that are not there, or fail, are one-line errors naming the command; a
    /// missing configuration is caught before Slurm's one-minute retry.
    #[test]
    fn command_errors() {
        let dir = tempfile::tempdir().unwrap();
        let e = Slurm::with_conf(&dir.path().join("slurm.conf")).unwrap_err();
        assert!(e.to_string().ends_with("slurm.conf: not found"), "{e}");
        let s = Slurm::new();
        let e = s.run("mpq-no-such-command", &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "mpq-no-such-command: not found (is Slurm installed and on PATH?)"
        );
        let e = s.run(
            "sh",
            &[
                "-c",
                r"printf 'sbatch: error: no\n  partition\n' >&2; exit 1",
            ],
        );
        assert_eq!(
            e.unwrap_err().to_string(),
            r"sh -c printf 'sbatch: error: no\n  partition\n' >&2; exit 1 failed (exit status: 1): sbatch: error: no; partition"
        );
    }

    #[test]
    fn summaries() {
        let t = [
            TaskStatus {
                job: 1,
                task: 0,
                state: TaskState::Running,
            },
            TaskStatus {
                job: 1,
                task: 1,
                state: TaskState::Pending {
                    reason: "BeginTime".into(),
                },
            },
        ];
        assert_eq!(summary(&t), "task 0: running, task 1: queued (BeginTime)");
    }
}
