//! The batch script of a job array: one task per manifest, each running the same `mpq` binary
//! on its line of a task list, in the shared results directory, with the stop-and-requeue
//! protocol below. Rendered as text (tested as text) and written with its task list into a
//! submission directory.
//!
//! ## The protocol (exit codes and requeues)
//! `mpq run` stops at its journal on SIGTERM or SIGUSR1 and exits with [`EXIT_INTERRUPTED`]
//! (75, sysexits' `EX_TEMPFAIL`); the journal makes the next attempt resume where it stopped.
//! The task script runs `mpq` in the background and forwards both signals to it, then:
//! - `mpq` exited 0: the task is done (COMPLETED).
//! - 75 after SIGUSR1, the signal Slurm sends `signal_before_s` seconds before the time limit
//!   (`--signal=B:USR1@N`): the task requeues itself (`scontrol requeue $SLURM_JOB_ID`) unless
//!   it has already been restarted `max_restarts` times (`SLURM_RESTART_COUNT`), in which case
//!   it gives up and fails with 75: a task that cannot get past its time limit is not
//!   retried forever.
//! - 75 after SIGTERM: Slurm is preempting, requeueing (`scontrol requeue`) or cancelling the
//!   job; Slurm decides what follows (`--requeue` lets it requeue on preemption and node
//!   failure), the script does not requeue.
//! - anything else (a bad manifest, a missing file, an error): the task fails with that code
//!   and is not requeued.
//!
//! Each attempt appends `mpq-task:` lines to the task's log (`logs/<array job>_<task>.log`,
//! `--open-mode=append`), which [`TaskLog`] reads back: when it started, how it ended, and the
//! error `mpq` printed.
use crate::resources::{ResourceError, Resources};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// `mpq`'s exit code when it stopped at its journal on a signal and can be resumed.
pub const EXIT_INTERRUPTED: u8 = 75;

/// The task list's file name in the submission directory.
pub const TASKS_FILE: &str = "tasks.tsv";
/// The batch script's file name in the submission directory.
pub const SCRIPT_FILE: &str = "job.sbatch";
/// Where the tasks' logs go in the submission directory.
pub const LOGS_DIR: &str = "logs";
/// The prefix of the lines the task script adds to its log.
pub const RECORD_PREFIX: &str = "mpq-task:";

/// One task: `mpq run <manifest> [--repeat <repeat>] --set <set>...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Task {
    pub manifest: PathBuf,
    /// `key=value` overrides, as `--set` takes them.
    pub sets: Vec<String>,
    /// Which repeat of the manifest (`experiment.repeats` > 1) the task runs; `None`: the
    /// manifest's only run.
    pub repeat: Option<u32>,
}

/// A job array to submit.
#[derive(Clone, Debug, PartialEq)]
pub struct ArrayJob {
    /// The job's name in squeue (made one plain word).
    pub name: String,
    /// The submission directory (absolute): the script, the task list and the logs go there.
    pub dir: PathBuf,
    /// The working directory of every task (absolute): where relative manifest, weights and
    /// results paths resolve, normally the project's root on the shared filesystem.
    pub workdir: PathBuf,
    /// The `mpq` binary the tasks run (absolute, on the shared filesystem).
    pub exe: PathBuf,
    /// `--set` overrides for every task, before each task's own.
    pub sets: Vec<String>,
    pub tasks: Vec<Task>,
    pub resources: Resources,
}

/// Why a job array cannot be written or submitted.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Resources(#[from] ResourceError),
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Control characters (a newline, a tab) would break a line of the task list or the script.
fn plain_field(what: &str, s: &str) -> Result<(), JobError> {
    if s.chars().any(char::is_control) {
        return Err(JobError::Invalid(format!(
            "{what} {s:?}: control characters (tab, newline) are not allowed"
        )));
    }
    Ok(())
}

/// A `--set` of the task list: one non-empty field.
fn set_field(s: &str) -> Result<(), JobError> {
    if s.trim().is_empty() {
        return Err(JobError::Invalid("an empty --set".into()));
    }
    plain_field("--set", s)
}

/// A path that goes on an `#SBATCH` line: absolute, no whitespace, quotes or control characters
/// (sbatch's own parsing of those lines is not a shell's).
fn sbatch_path(what: &str, p: &Path) -> Result<String, JobError> {
    let s = p
        .to_str()
        .ok_or_else(|| JobError::Invalid(format!("{what} {}: not valid UTF-8", p.display())))?;
    if !p.is_absolute() {
        return Err(JobError::Invalid(format!(
            "{what} {s}: not an absolute path"
        )));
    }
    if s.chars()
        .any(|c| c.is_whitespace() || c.is_control() || "\"'\\%".contains(c))
    {
        return Err(JobError::Invalid(format!(
            "{what} {s:?}: whitespace, quotes, '%' and '\\' are not supported in batch script paths"
        )));
    }
    Ok(s.to_string())
}

/// `s` as one single-quoted shell word.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A job name: the name's characters that are letters, digits, `.`, `_`, `-` (others `_`).
fn job_name(name: &str) -> String {
    let n: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if n.is_empty() {
        "mpq".into()
    } else {
        n
    }
}

impl ArrayJob {
    /// Checks everything that goes into the files.
    pub fn check(&self) -> Result<(), JobError> {
        self.resources.check()?;
        if self.tasks.is_empty() {
            return Err(JobError::Invalid(
                "a job array needs at least one task".into(),
            ));
        }
        sbatch_path("submission directory", &self.dir)?;
        sbatch_path("working directory", &self.workdir)?;
        if !self.exe.is_absolute() {
            return Err(JobError::Invalid(format!(
                "mpq binary {}: not an absolute path",
                self.exe.display()
            )));
        }
        plain_field("mpq binary", &self.exe.to_string_lossy())?;
        for s in &self.sets {
            set_field(s)?;
        }
        for t in &self.tasks {
            let m = t.manifest.to_str().ok_or_else(|| {
                JobError::Invalid(format!(
                    "manifest {}: not valid UTF-8",
                    t.manifest.display()
                ))
            })?;
            if m.is_empty() {
                return Err(JobError::Invalid("a task without a manifest".into()));
            }
            plain_field("manifest", m)?;
            for s in &t.sets {
                set_field(s)?;
            }
        }
        Ok(())
    }

    /// The task list: line `i + 1` is task `i`: its manifest, its repeat (`-` for none) and its
    /// `--set`s, separated by tabs.
    pub fn render_tasks(&self) -> String {
        let mut out = String::new();
        for t in &self.tasks {
            out.push_str(&t.manifest.to_string_lossy());
            out.push('\t');
            match t.repeat {
                Some(r) => write!(out, "{r}").unwrap(),
                None => out.push('-'),
            }
            for s in self.sets.iter().chain(&t.sets) {
                out.push('\t');
                out.push_str(s);
            }
            out.push('\n');
        }
        out
    }

    /// The batch script. Call [`ArrayJob::check`] first.
    pub fn render_script(&self) -> String {
        let r = &self.resources;
        let dir = self.dir.to_string_lossy();
        let n = self.tasks.len();
        let mut array = format!("0-{}", n - 1);
        if r.max_parallel > 0 {
            write!(array, "%{}", r.max_parallel).unwrap();
        }
        let mut s = String::new();
        s.push_str("#!/bin/bash\n");
        writeln!(
            s,
            "# Generated by mpq: {n} task(s), one per line of {TASKS_FILE}; see docs/cluster.md."
        )
        .unwrap();
        let mut opt = |o: String| writeln!(s, "#SBATCH {o}").unwrap();
        opt(format!("--job-name={}", job_name(&self.name)));
        opt(format!("--array={array}"));
        opt(format!("--output={dir}/{LOGS_DIR}/%A_%a.log"));
        opt("--open-mode=append".into());
        opt("--requeue".into());
        opt(format!("--signal=B:USR1@{}", r.signal_before_s));
        opt(format!("--chdir={}", self.workdir.to_string_lossy()));
        opt("--nodes=1".into());
        opt("--ntasks=1".into());
        for o in r.sbatch_options() {
            opt(o);
        }
        write!(
            s,
            r#"set -u
MPQ={exe}
TASKS={tasks}
MAX_RESTARTS={max_restarts}
INTERRUPTED={interrupted}
task=${{SLURM_ARRAY_TASK_ID:?not a Slurm array task}}
attempt=${{SLURM_RESTART_COUNT:-0}}
record() {{ echo "{prefix} task=$task attempt=$attempt $*"; }}
line=$(sed -n "$((task + 1))p" "$TASKS")
if [ -z "$line" ]; then
    record "exit=2 action=fail reason=no line $((task + 1)) in $TASKS"
    exit 2
fi
IFS=$'\t' read -r -a fields <<<"$line"
args=(run --quiet "${{fields[0]}}")
if [ "${{fields[1]}}" != - ]; then args+=(--repeat "${{fields[1]}}"); fi
# The task's threads are the CPUs it was given (without --cpus-per-task, Slurm's default
# allocation on this node), never all of the node's cores.
cpus=${{SLURM_CPUS_PER_TASK:-${{SLURM_CPUS_ON_NODE:-}}}}
if [ -n "$cpus" ]; then args+=(--set "runtime.threads=$cpus"); fi
for s in "${{fields[@]:2}}"; do args+=(--set "$s"); done
record "start job=${{SLURM_JOB_ID:-}} host=$(hostname -s) manifest=${{fields[0]}} repeat=${{fields[1]}}"
# mpq runs in the background, in a process group of its own under a wrapper that records its
# exit status, so that the signals reach this shell at once and are passed on to mpq (which
# stops at its journal); bash's `wait` can lose a child's status when a trap interrupts it.
signal=
child=
status=$(mktemp)
trap 'signal=USR1; [ -n "$child" ] && kill -USR1 -- "-$child" 2>/dev/null' USR1
trap 'signal=TERM; [ -n "$child" ] && kill -TERM -- "-$child" 2>/dev/null' TERM
set -m
(
    trap : USR1 TERM
    "$MPQ" "${{args[@]}}"
    echo "$?" >"$status"
) &
child=$!
set +m
[ -n "$signal" ] && kill -"$signal" -- "-$child" 2>/dev/null
while kill -0 "$child" 2>/dev/null; do
    sleep 1 &
    wait $!
done
rc=$(cat "$status")
rm -f "$status"
rc=${{rc:-137}}
if [ "$rc" -eq 0 ]; then
    record "exit=0 action=done"
    exit 0
fi
if [ "$rc" -ne "$INTERRUPTED" ]; then
    record "exit=$rc action=fail"
    exit "$rc"
fi
if [ "$signal" != USR1 ]; then
    record "exit=$rc action=stop reason=stopped at the journal on SIG${{signal:-TERM}}"
    exit "$rc"
fi
if [ "$attempt" -ge "$MAX_RESTARTS" ]; then
    record "exit=$rc action=fail reason=time limit reached after $attempt restart(s) (resources.max_restarts = $MAX_RESTARTS)"
    exit "$rc"
fi
record "exit=$rc action=requeue reason=time limit near"
if ! scontrol requeue "$SLURM_JOB_ID"; then
    record "exit=$rc action=fail reason=scontrol requeue $SLURM_JOB_ID failed"
fi
exit "$rc"
"#,
            exe = shell_quote(&self.exe.to_string_lossy()),
            tasks = shell_quote(&format!("{dir}/{TASKS_FILE}")),
            max_restarts = r.max_restarts,
            interrupted = EXIT_INTERRUPTED,
            prefix = RECORD_PREFIX,
        )
        .unwrap();
        s
    }

    /// Checks the job and writes the task list and the script into the submission directory
    /// (created, with its `logs/`); returns the script's path. Each file is written to a
    /// temporary file and renamed.
    pub fn write(&self) -> Result<PathBuf, JobError> {
        self.check()?;
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| JobError::Io { path, source }
        };
        let logs = self.dir.join(LOGS_DIR);
        std::fs::create_dir_all(&logs).map_err(io(&logs))?;
        let put = |name: &str, text: &str| -> Result<PathBuf, JobError> {
            let path = self.dir.join(name);
            let mut f = tempfile::NamedTempFile::new_in(&self.dir).map_err(io(&path))?;
            f.write_all(text.as_bytes()).map_err(io(&path))?;
            f.as_file().sync_all().map_err(io(&path))?;
            f.persist(&path).map_err(|e| io(&path)(e.error))?;
            Ok(path)
        };
        put(TASKS_FILE, &self.render_tasks())?;
        put(SCRIPT_FILE, &self.render_script())
    }
}

/// How one attempt of a task ended, from its `mpq-task:` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptEnd {
    pub attempt: u32,
    pub exit: i32,
    /// `done`, `fail`, `stop` (interrupted by SIGTERM) or `requeue`.
    pub action: String,
    pub reason: Option<String>,
}

/// What a task's log says about it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskLog {
    /// Attempts started.
    pub attempts: u32,
    /// How the last attempt that ended did.
    pub last_end: Option<AttemptEnd>,
    /// The last error line `mpq` printed (`mpq: ...`).
    pub last_error: Option<String>,
}

impl TaskLog {
    pub fn parse(text: &str) -> TaskLog {
        let mut log = TaskLog::default();
        for line in text.lines() {
            if let Some(e) = line.strip_prefix("mpq: ") {
                log.last_error = Some(e.to_string());
                continue;
            }
            let Some(rest) = line.strip_prefix(RECORD_PREFIX) else {
                continue;
            };
            let field = |k: &str| {
                rest.split(' ')
                    .find_map(|w| w.strip_prefix(k)?.strip_prefix('='))
            };
            if rest.contains(" start ") {
                log.attempts += 1;
                continue;
            }
            let (Some(attempt), Some(exit), Some(action)) = (
                field("attempt").and_then(|a| a.parse().ok()),
                field("exit").and_then(|a| a.parse().ok()),
                field("action"),
            ) else {
                continue;
            };
            log.last_end = Some(AttemptEnd {
                attempt,
                exit,
                action: action.to_string(),
                reason: rest.split_once(" reason=").map(|(_, r)| r.to_string()),
            });
        }
        log
    }

    /// Reads a task's log; a missing log is an empty one (the task has not started).
    pub fn read(path: &Path) -> std::io::Result<TaskLog> {
        match std::fs::read(path) {
            Ok(b) => Ok(TaskLog::parse(&String::from_utf8_lossy(&b))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TaskLog::default()),
            Err(e) => Err(e),
        }
    }
}

/// The log of task `task` of array job `job` in a submission directory.
pub fn task_log_path(dir: &Path, job: u64, task: u32) -> PathBuf {
    dir.join(LOGS_DIR).join(format!("{job}_{task}.log"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::TimeLimit;

    fn job() -> ArrayJob {
        ArrayJob {
            name: "paper suite".into(),
            dir: "/shared/mpq/results/.slurm/20260101T000000Z".into(),
            workdir: "/shared/mpq".into(),
            exe: "/shared/mpq/target/release/mp'q".into(),
            sets: vec!["runtime.results_dir=/shared/mpq/results".into()],
            tasks: vec![
                Task {
                    manifest: "experiments/paper/resnet50-w4a8-greedy.toml".into(),
                    sets: vec![],
                    repeat: None,
                },
                Task {
                    manifest: "experiments/paper/resnet18-w4a8-greedy.toml".into(),
                    sets: vec![
                        "search.beta=0.02".into(),
                        "experiment.name=r18--beta=0.02".into(),
                    ],
                    repeat: Some(2),
                },
            ],
            resources: Resources {
                partition: Some("gpu".into()),
                gpus: 1,
                cpus: 8,
                time: Some(TimeLimit::Seconds(4 * 3600)),
                max_parallel: 4,
                extra: vec!["--constraint=a100".into()],
                ..Resources::default()
            },
        }
    }

    #[test]
    fn task_list_one_line_per_task() {
        assert_eq!(
            job().render_tasks(),
            "experiments/paper/resnet50-w4a8-greedy.toml\t-\truntime.results_dir=/shared/mpq/results\n\
             experiments/paper/resnet18-w4a8-greedy.toml\t2\truntime.results_dir=/shared/mpq/results\t\
             search.beta=0.02\texperiment.name=r18--beta=0.02\n"
        );
    }

    #[test]
    fn script_options() {
        let s = job().render_script();
        let opts: Vec<&str> = s.lines().filter(|l| l.starts_with("#SBATCH")).collect();
        assert_eq!(
            opts,
            [
                "#SBATCH --job-name=paper_suite",
                "#SBATCH --array=0-1%4",
                "#SBATCH --output=/shared/mpq/results/.slurm/20260101T000000Z/logs/%A_%a.log",
                "#SBATCH --open-mode=append",
                "#SBATCH --requeue",
                "#SBATCH --signal=B:USR1@300",
                "#SBATCH --chdir=/shared/mpq",
                "#SBATCH --nodes=1",
                "#SBATCH --ntasks=1",
                "#SBATCH --partition=gpu",
                "#SBATCH --cpus-per-task=8",
                "#SBATCH --gres=gpu:1",
                "#SBATCH --time=04:00:00",
                "#SBATCH --constraint=a100",
            ]
        );
        // sbatch reads options only up to the first command.
        let first_cmd = s.lines().position(|l| !l.starts_with('#')).unwrap();
        assert!(s.lines().skip(first_cmd).all(|l| !l.starts_with("#SBATCH")));
        assert!(
            s.contains(r#"MPQ='/shared/mpq/target/release/mp'\''q'"#),
            "{s}"
        );
        assert!(s.contains("MAX_RESTARTS=10\nINTERRUPTED=75\n"));
    }

    /// The script is valid bash (`bash -n`).
    #[test]
    fn script_parses() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = job();
        j.dir = dir.path().join("sub");
        let script = j.write().unwrap();
        assert!(dir.path().join("sub/logs").is_dir());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("sub").join(TASKS_FILE)).unwrap(),
            j.render_tasks()
        );
        let out = std::process::Command::new("bash")
            .arg("-n")
            .arg(&script)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn bad_jobs_are_refused_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let refuse = |f: &dyn Fn(&mut ArrayJob)| {
            let mut j = job();
            j.dir = dir.path().join("sub");
            f(&mut j);
            let e = j.write().unwrap_err().to_string();
            assert!(!dir.path().join("sub").exists(), "nothing written: {e}");
            e
        };
        let e = refuse(&|j| j.tasks[1].sets.push("search.beta=1\nrm -rf /".into()));
        assert!(e.contains("control characters"), "{e}");
        let e = refuse(&|j| j.tasks[0].manifest = "a\tb.toml".into());
        assert!(e.starts_with("manifest \"a\\tb.toml\""), "{e}");
        let e = refuse(&|j| j.tasks[0].sets.push(" ".into()));
        assert_eq!(e, "an empty --set");
        let e = refuse(&|j| j.tasks.clear());
        assert_eq!(e, "a job array needs at least one task");
        let e = refuse(&|j| j.workdir = "/shared/my project".into());
        assert!(e.contains("whitespace"), "{e}");
        let e = refuse(&|j| j.workdir = "relative".into());
        assert!(e.contains("not an absolute path"), "{e}");
        let e = refuse(&|j| j.resources.extra = vec!["--output=/tmp/x".into()]);
        assert_eq!(e, "resources.extra: --output is set by mpq's batch script");
    }

    #[test]
    fn task_log_records() {
        let log = TaskLog::parse(
            "mpq-task: task=1 attempt=0 start job=7 host=vm manifest=a.toml\n\
             mpq-task: task=1 attempt=0 exit=75 action=requeue reason=time limit near\n\
             slurmstepd: error: *** JOB 7 ON vm CANCELLED AT 2026-01-01T00:00:00 DUE TO JOB REQUEUE ***\n\
             mpq-task: task=1 attempt=1 start job=7 host=vm manifest=a.toml\n\
             mpq: a.toml: model.weights: w.safetensors: not found\n\
             mpq-task: task=1 attempt=1 exit=1 action=fail\n",
        );
        assert_eq!(log.attempts, 2);
        assert_eq!(
            log.last_end,
            Some(AttemptEnd {
                attempt: 1,
                exit: 1,
                action: "fail".into(),
                reason: None
            })
        );
        assert_eq!(
            log.last_error.as_deref(),
            Some("a.toml: model.weights: w.safetensors: not found")
        );
        assert_eq!(TaskLog::parse(""), TaskLog::default());
        let p = task_log_path(Path::new("/s"), 7, 1);
        assert_eq!(p, Path::new("/s/logs/7_1.log"));
        assert_eq!(TaskLog::read(&p).unwrap(), TaskLog::default());
    }
}
