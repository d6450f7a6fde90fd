//! Where each task of a job array is, from Slurm's own words: `squeue` (jobs the controller
//! still knows, finished ones for `MinJobAge`, 5 minutes by default) and `sacct` (accounting,
//! when the cluster has it). Both are asked for explicit fields in a fixed order with `|`
//! between them, and their states are mapped once onto [`TaskState`].
use std::fmt;

/// The `squeue --Format` this module parses (`--noheader --array --states=all`): the array
/// task's id, its array job and index, the state, the raw wait status, the reason (last, the
/// only free text).
pub const SQUEUE_FORMAT: &str =
    "JobArrayID:|,ArrayJobID:|,ArrayTaskID:|,State:|,exit_code:|,Reason:";

/// The `sacct --format` this module parses (`--parsable2 --noheader --allocations`).
pub const SACCT_FORMAT: &str = "JobID,State,ExitCode";

/// How a task ended, as far as Slurm knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// The batch script's exit code.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

impl Exit {
    /// From a raw wait status (`squeue -O exit_code`): `768` is exit code 3, `9` signal 9.
    pub fn from_wait_status(status: i32) -> Option<Exit> {
        match (status & 0x7f, (status >> 8) & 0xff) {
            (0, 0) => None,
            (0, code) => Some(Exit::Code(code)),
            (sig, _) => Some(Exit::Signal(sig)),
        }
    }

    /// From `code:signal` (`sacct`'s and `scontrol`'s ExitCode).
    pub fn from_pair(s: &str) -> Option<Exit> {
        let (c, sig) = s.split_once(':')?;
        match (
            c.trim().parse::<i32>().ok()?,
            sig.trim().parse::<i32>().ok()?,
        ) {
            (0, 0) => None,
            (_, sig) if sig != 0 => Some(Exit::Signal(sig)),
            (c, _) => Some(Exit::Code(c)),
        }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit code {c}"),
            Exit::Signal(s) => write!(f, "signal {s}"),
        }
    }
}

/// Why a task failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailKind {
    /// The script exited non-zero (FAILED).
    Exit,
    /// The task could not be started (FAILED with JobLaunchFailure, BOOT_FAIL).
    Launch,
    OutOfMemory,
    NodeFail,
    /// Preempted and not requeued.
    Preempted,
    Deadline,
    /// Anything else Slurm counts as a failure (SPECIAL_EXIT, REVOKED).
    Other,
}

/// A task's state, Slurm's many reduced to what a user of `mpq status` needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskState {
    /// Waiting to start; `reason` is Slurm's (Resources, Priority, BeginTime after a requeue).
    Pending {
        reason: String,
    },
    /// Started (configuring, running, completing, signaled).
    Running,
    /// Requeued: it will be pending again (or is held, REQUEUE_HOLD).
    Requeued,
    Suspended,
    Completed,
    Failed {
        kind: FailKind,
        exit: Option<Exit>,
    },
    /// Killed at its time limit.
    Timeout,
    Cancelled,
    /// No longer known to Slurm (purged, or never listed).
    Gone,
}

impl TaskState {
    /// From a state name as squeue's `%T`/`State` and sacct's `State` print it (sacct adds
    /// "by <uid>" to CANCELLED), with the reason and exit status for failures.
    pub fn from_slurm(state: &str, reason: &str, exit: Option<Exit>) -> TaskState {
        let name = state.split_whitespace().next().unwrap_or("");
        let failed = |kind| TaskState::Failed { kind, exit };
        match name {
            "PENDING" => TaskState::Pending {
                reason: reason.to_string(),
            },
            "RUNNING" | "CONFIGURING" | "COMPLETING" | "SIGNALING" | "STAGE_OUT" | "RESIZING" => {
                TaskState::Running
            }
            "REQUEUED" | "REQUEUE_FED" | "REQUEUE_HOLD" => TaskState::Requeued,
            "SUSPENDED" | "STOPPED" | "RESV_DEL_HOLD" => TaskState::Suspended,
            "COMPLETED" => TaskState::Completed,
            "FAILED" if reason == "JobLaunchFailure" => failed(FailKind::Launch),
            "FAILED" => failed(FailKind::Exit),
            "BOOT_FAIL" => failed(FailKind::Launch),
            "OUT_OF_MEMORY" => failed(FailKind::OutOfMemory),
            "NODE_FAIL" => failed(FailKind::NodeFail),
            "PREEMPTED" => failed(FailKind::Preempted),
            "DEADLINE" => failed(FailKind::Deadline),
            "TIMEOUT" => TaskState::Timeout,
            "CANCELLED" => TaskState::Cancelled,
            _ => failed(FailKind::Other),
        }
    }

    /// The task has ended and will not run again by itself.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            TaskState::Completed
                | TaskState::Failed { .. }
                | TaskState::Timeout
                | TaskState::Cancelled
                | TaskState::Gone
        )
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            TaskState::Pending { reason } if reason.is_empty() || reason == "None" => {
                write!(f, "queued")
            }
            TaskState::Pending { reason } => write!(f, "queued ({reason})"),
            TaskState::Running => write!(f, "running"),
            TaskState::Requeued => write!(f, "requeued"),
            TaskState::Suspended => write!(f, "suspended"),
            TaskState::Completed => write!(f, "completed"),
            TaskState::Failed { kind, exit } => {
                let what = match kind {
                    FailKind::Exit => "failed",
                    FailKind::Launch => "failed to start",
                    FailKind::OutOfMemory => "failed: out of memory",
                    FailKind::NodeFail => "failed: node failure",
                    FailKind::Preempted => "failed: preempted",
                    FailKind::Deadline => "failed: deadline",
                    FailKind::Other => "failed",
                };
                match exit {
                    Some(e) => write!(f, "{what} ({e})"),
                    None => write!(f, "{what}"),
                }
            }
            TaskState::Timeout => write!(f, "timed out"),
            TaskState::Cancelled => write!(f, "cancelled"),
            TaskState::Gone => write!(f, "gone (no longer known to Slurm)"),
        }
    }
}

/// One task of an array job and its state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskStatus {
    /// The array job's id (`%A`).
    pub job: u64,
    /// The task's index in the array (`%a`).
    pub task: u32,
    pub state: TaskState,
}

/// A line that does not have the expected fields.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{command}: unexpected output line {line:?}")]
pub struct ParseError {
    pub command: &'static str,
    pub line: String,
}

/// Parses `squeue --noheader --array --states=all --Format=`[`SQUEUE_FORMAT`]. Jobs that are
/// not array tasks are left out.
pub fn parse_squeue(text: &str) -> Result<Vec<TaskStatus>, ParseError> {
    let mut out = vec![];
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let bad = || ParseError {
            command: "squeue",
            line: line.to_string(),
        };
        let f: Vec<&str> = line.splitn(6, '|').map(str::trim).collect();
        let [_, job, task, state, status, reason] = f.as_slice() else {
            return Err(bad());
        };
        if *task == "N/A" {
            continue;
        }
        let job = job.parse().map_err(|_| bad())?;
        let task = task.parse().map_err(|_| bad())?;
        let exit = Exit::from_wait_status(status.parse().map_err(|_| bad())?);
        out.push(TaskStatus {
            job,
            task,
            state: TaskState::from_slurm(state, reason, exit),
        });
    }
    Ok(out)
}

/// Parses `sacct --parsable2 --noheader --allocations --format=`[`SACCT_FORMAT`]: rows
/// `<job>_<task>|<state>|<code>:<signal>`; other rows (plain jobs, job steps) are left out.
pub fn parse_sacct(text: &str) -> Result<Vec<TaskStatus>, ParseError> {
    let mut out = vec![];
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let bad = || ParseError {
            command: "sacct",
            line: line.to_string(),
        };
        let f: Vec<&str> = line.split('|').collect();
        let [id, state, exit] = f.as_slice() else {
            return Err(bad());
        };
        let Some((job, task)) = id.split_once('_') else {
            continue;
        };
        if task.contains(['.', '[']) {
            continue; // a step, or a pending array's unsplit range
        }
        out.push(TaskStatus {
            job: job.parse().map_err(|_| bad())?,
            task: task.parse().map_err(|_| bad())?,
            state: TaskState::from_slurm(state, "", Exit::from_pair(exit)),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded from slurm-wlm 22.05.8 (tools/slurm/cluster.sh, `--Format` as above): job 14,
    /// a 6-task array with `--time=1` whose tasks exit 0 (then requeued with `scontrol
    /// requeue`: pending on BeginTime), exit 3, `kill -9` their own shell, sleep past the limit
    /// (3, 5) and are cancelled while pending (4: no longer listed); job 19, the same script
    /// with 2 CPUs per task, a few seconds later.
    #[test]
    fn squeue_recorded() {
        let t = parse_squeue(include_str!("../testdata/squeue.txt")).unwrap();
        let of = |job: u64, task: u32| {
            t.iter()
                .find(|s| s.job == job && s.task == task)
                .map(|s| s.state.clone())
        };
        assert_eq!(t.len(), 9);
        assert_eq!(of(14, 4), None);
        assert_eq!(of(19, 0), Some(TaskState::Completed));
        assert_eq!(
            of(14, 2),
            Some(TaskState::Failed {
                kind: FailKind::Launch,
                exit: Some(Exit::Signal(9))
            })
        );
        let failed = of(14, 1).unwrap();
        assert_eq!(
            failed,
            TaskState::Failed {
                kind: FailKind::Exit,
                exit: Some(Exit::Code(3))
            }
        );
        assert_eq!(failed.to_string(), "failed (exit code 3)");
        let pending = of(14, 0).unwrap();
        assert_eq!(
            pending,
            TaskState::Pending {
                reason: "BeginTime".into()
            }
        );
        assert_eq!(pending.to_string(), "queued (BeginTime)");
        let running = of(19, 3).unwrap();
        assert_eq!(running, TaskState::Running);
        let timeout = of(14, 5).unwrap();
        assert_eq!(timeout, TaskState::Timeout);
        assert!(timeout.is_final() && !pending.is_final() && !running.is_final());
    }

    #[test]
    fn squeue_by_hand() {
        // A plain job is left out; a requeued task; a reason with a '|' stays whole.
        let t = parse_squeue(
            "12|12|N/A|RUNNING|0|None\n7_1|7|1|REQUEUED|0|None\n7_2|7|2|PENDING|0|a|b\n\
             7_3|7|3|CANCELLED|15|None\n",
        )
        .unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t[2].state, TaskState::Cancelled);
        assert_eq!(t[0].state, TaskState::Requeued);
        assert!(!t[0].state.is_final());
        assert_eq!(
            t[1].state,
            TaskState::Pending {
                reason: "a|b".into()
            }
        );
        let e = parse_squeue("7_1|7|one|RUNNING|0|None").unwrap_err();
        assert_eq!(
            e.to_string(),
            "squeue: unexpected output line \"7_1|7|one|RUNNING|0|None\""
        );
        assert!(parse_squeue("7_1|7|1").is_err());
    }

    /// Written by hand in sacct's `--parsable2` format (the test cluster has no accounting).
    #[test]
    fn sacct_by_hand() {
        let t = parse_sacct(
            "20_0|COMPLETED|0:0\n20_0.batch|COMPLETED|0:0\n20_1|CANCELLED by 0|0:15\n\
             20_2|FAILED|1:0\n20_3|OUT_OF_MEMORY|0:125\n20_[4-5]|PENDING|0:0\n21|COMPLETED|0:0\n\
             20_6|NODE_FAIL|0:0\n",
        )
        .unwrap();
        let states: Vec<String> = t.iter().map(|s| s.state.to_string()).collect();
        assert_eq!(
            states,
            [
                "completed",
                "cancelled",
                "failed (exit code 1)",
                "failed: out of memory (signal 125)",
                "failed: node failure"
            ]
        );
        assert_eq!(t[4].task, 6);
        assert!(parse_sacct("20_1|COMPLETED").is_err());
    }

    #[test]
    fn exit_statuses() {
        assert_eq!(Exit::from_wait_status(0), None);
        assert_eq!(Exit::from_wait_status(768), Some(Exit::Code(3)));
        assert_eq!(Exit::from_wait_status(75 << 8), Some(Exit::Code(75)));
        assert_eq!(Exit::from_wait_status(15), Some(Exit::Signal(15)));
        assert_eq!(Exit::from_pair("0:0"), None);
        assert_eq!(Exit::from_pair("2:0"), Some(Exit::Code(2)));
        assert_eq!(Exit::from_pair("0:9"), Some(Exit::Signal(9)));
        assert_eq!(Exit::from_pair("x"), None);
    }
}
