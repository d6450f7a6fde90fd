//! The result store: the only writer under `results/`.
//!
//! A run is stored as one directory, `results/<experiment>/<run_id>/`, holding its input key
//! (`input.key`), the journal of its evaluations (`journal.log`), a lock while a process runs
//! it, and, when it has finished, its four Parquet tables (written by `mpq_tables`, documented
//! in `results/README.md`; the column names are the project's contract with its users).
//!
//! Invariants:
//! - every file is written atomically (`mpq_io`): a killed process never leaves a half-written
//!   file, and a failed write leaves any previous file untouched;
//! - `runs.parquet` is written last, so a directory without it is an unfinished run (readers,
//!   such as the report crate, skip it);
//! - the experiment name is one plain path component (checked by the manifest loader), so a
//!   run directory is always directly under `results/<experiment>/`.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use mpq_vocab::RunTables;

pub use mpq_tables::read_parquet;

/// Writes a finished run's tables into its directory, `runs.parquet` last.
pub fn write_run(dir: &Path, t: &RunTables) -> anyhow::Result<()> {
    mpq_tables::write_run(dir, t)
}

/// The directory of one run: `results_dir/experiment/run_id`.
pub fn run_dir(results_dir: &Path, experiment: &str, run_id: &str) -> PathBuf {
    results_dir.join(experiment).join(run_id)
}

/// Seconds since the Unix epoch (negative before it), rounded down.
fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => {
            let d = e.duration();
            -(d.as_secs() as i64) - i64::from(d.subsec_nanos() > 0)
        }
    }
}

/// The proleptic Gregorian (year, month, day) of `days` since 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// UTC calendar fields (year, month, day, hour, minute, second) of `t`.
fn utc_fields(t: SystemTime) -> (i64, u32, u32, u32, u32, u32) {
    let s = unix_seconds(t);
    let (y, mo, d) = civil_from_days(s.div_euclid(86_400));
    let sod = s.rem_euclid(86_400) as u32;
    (y, mo, d, sod / 3600, sod / 60 % 60, sod % 60)
}

/// `t` as RFC 3339 in UTC with whole seconds, e.g. `2000-02-29T00:00:00Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = utc_fields(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// A run id: the UTC start time and the first 8 characters of the manifest hash,
/// `YYYYMMDDTHHMMSSZ-<hash8>`, e.g. `20240131T235959Z-0123abcd`. Sorting run ids of one manifest
/// sorts them by start time.
pub fn new_run_id(manifest_hash: &str, now: SystemTime) -> String {
    let short: String = manifest_hash
        .chars()
        .take(8)
        .collect::<String>()
        .to_ascii_lowercase();
    format!("{}-{short}", utc_stamp(now))
}

/// `t` in UTC as `YYYYMMDDTHHMMSSZ` (a run id's start, a Slurm submission's directory).
pub fn utc_stamp(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = utc_fields(t);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

/// The input key of a run (see `fingerprint`), written when its directory is created.
pub const KEY_FILE: &str = "input.key";
/// The journal of its evaluations (see `journal`).
pub const JOURNAL_FILE: &str = "journal.log";
/// Held while a process runs it: its pid, host and Slurm task ([`LockHolder`]).
pub const LOCK_FILE: &str = "lock";

/// A run directory found under `results/<experiment>/`.
#[derive(Clone, Debug)]
pub struct StoredRun {
    pub dir: PathBuf,
    pub run_id: String,
    /// Its input key (`None` for a directory of an older version without one).
    pub key: Option<crate::fingerprint::InputKey>,
    /// Whether `runs.parquet` is there: a finished run.
    pub finished: bool,
}

/// The run directories of `experiment`, sorted by run id (start time).
pub fn stored_runs(results_dir: &Path, experiment: &str) -> Vec<StoredRun> {
    let Ok(rd) = fs::read_dir(results_dir.join(experiment)) else {
        return vec![];
    };
    let mut runs: Vec<StoredRun> = rd
        .flatten()
        .filter(|e| e.path().is_dir() && !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| {
            let dir = e.path();
            StoredRun {
                run_id: e.file_name().to_string_lossy().into_owned(),
                key: fs::read_to_string(dir.join(KEY_FILE))
                    .ok()
                    .and_then(|t| crate::fingerprint::InputKey::from_text(&t)),
                finished: dir.join("runs.parquet").is_file(),
                dir,
            }
        })
        .collect();
    runs.sort_by(|a, b| a.run_id.cmp(&b.run_id));
    runs
}

/// Removes the lock file when dropped.
#[derive(Debug)]
pub struct RunLock(PathBuf);

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Who holds a run directory's lock: `pid=<pid> host=<host>[ job=<Slurm job>]` (a lock of an
/// older mpq holds only the pid, and is taken as this host's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockHolder {
    pub pid: u32,
    /// The host the process runs on; `None`: an older lock (this host).
    pub host: Option<String>,
    /// The Slurm task it runs as (`<array job>_<task>`, or the job id), if any.
    pub job: Option<String>,
}

/// Whether a lock's holder still runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    Alive,
    /// Gone: the lock may be taken over.
    Dead,
    /// On another host, not a previous attempt of this Slurm task: no way to tell from here.
    Unknown,
}

impl LockHolder {
    /// This process.
    pub fn this_process() -> LockHolder {
        LockHolder {
            pid: std::process::id(),
            host: Some(hostname()),
            job: slurm_task(),
        }
    }

    pub fn to_text(&self) -> String {
        let mut s = format!("pid={}", self.pid);
        if let Some(h) = &self.host {
            s.push_str(&format!(" host={h}"));
        }
        if let Some(j) = &self.job {
            s.push_str(&format!(" job={j}"));
        }
        s
    }

    /// Parses [`LockHolder::to_text`], or an older lock's bare pid.
    pub fn parse(text: &str) -> Option<LockHolder> {
        let t = text.trim();
        if let Ok(pid) = t.parse() {
            return Some(LockHolder {
                pid,
                host: None,
                job: None,
            });
        }
        let field = |k: &str| {
            t.split(' ')
                .find_map(|w| w.strip_prefix(k)?.strip_prefix('='))
                .map(str::to_string)
        };
        Some(LockHolder {
            pid: field("pid")?.parse().ok()?,
            host: field("host"),
            job: field("job"),
        })
    }

    /// Whether the holder still runs, as far as this process can tell: a process of this host
    /// by its pid; one of another host only when it was a previous attempt of the Slurm task
    /// this process runs as (Slurm runs one attempt at a time, and a requeued task may start on
    /// another node where the old pid means nothing).
    pub fn liveness(&self) -> Liveness {
        self.liveness_for(&LockHolder::this_process())
    }

    /// [`LockHolder::liveness`] as seen by process `me`.
    fn liveness_for(&self, me: &LockHolder) -> Liveness {
        let here = self.host.is_none() || self.host == me.host;
        if here {
            if self.pid != me.pid && process_alive(self.pid) {
                Liveness::Alive
            } else {
                Liveness::Dead
            }
        } else if self.job.is_some() && self.job == me.job {
            Liveness::Dead
        } else {
            Liveness::Unknown
        }
    }
}

impl std::fmt::Display for LockHolder {
    /// `pid 12 on node3 (Slurm job 45_2)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {}", self.pid)?;
        if let Some(h) = &self.host {
            write!(f, " on {h}")?;
        }
        if let Some(j) = &self.job {
            write!(f, " (Slurm job {j})")?;
        }
        Ok(())
    }
}

/// This machine's host name (`/proc/sys/kernel/hostname`, else `$HOSTNAME`).
pub fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && !h.contains(char::is_whitespace))
        .unwrap_or_else(|| "localhost".into())
}

/// The Slurm task this process runs as: `<array job>_<task>` for an array task, else the
/// job id; `None` outside Slurm.
fn slurm_task() -> Option<String> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    match (var("SLURM_ARRAY_JOB_ID"), var("SLURM_ARRAY_TASK_ID")) {
        (Some(j), Some(t)) => Some(format!("{j}_{t}")),
        _ => var("SLURM_JOB_ID"),
    }
    .filter(|j| !j.contains(char::is_whitespace))
}

/// Whether process `pid` is alive (Linux: `/proc/<pid>`; elsewhere a lock is never stale).
fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

/// Who holds the lock of a run directory, if anyone.
pub fn lock_holder(dir: &Path) -> Option<LockHolder> {
    fs::read_to_string(dir.join(LOCK_FILE))
        .ok()
        .and_then(|t| LockHolder::parse(&t))
}

/// Takes the lock of a run directory; a lock left by a process that is gone (see
/// [`LockHolder::liveness`]) is taken over.
pub fn lock_run(dir: &Path) -> anyhow::Result<RunLock> {
    let path = dir.join(LOCK_FILE);
    for _ in 0..2 {
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut f) => {
                write!(f, "{}", LockHolder::this_process().to_text())?;
                f.sync_all()?;
                return Ok(RunLock(path));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if let Some(h) = lock_holder(dir) {
                    match h.liveness() {
                        Liveness::Alive => anyhow::bail!(
                            "{}: another mpq process ({h}) is running this experiment",
                            dir.display()
                        ),
                        Liveness::Unknown => anyhow::bail!(
                            "{}: locked by mpq {h}, which cannot be checked from {}; if it no \
                             longer runs, remove {}",
                            dir.display(),
                            hostname(),
                            path.display()
                        ),
                        Liveness::Dead => {}
                    }
                }
                fs::remove_file(&path)
                    .with_context(|| format!("removing the stale lock {}", path.display()))?;
            }
            Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
        }
    }
    anyhow::bail!("{}: cannot take the lock", dir.display())
}

/// A run directory ready to be written: new, or an unfinished one resumed.
#[derive(Debug)]
pub struct OpenRun {
    pub dir: PathBuf,
    pub run_id: String,
    /// The directory existed (an interrupted run with the same input key).
    pub resumed: bool,
    pub lock: RunLock,
}

/// Opens the run directory of `experiment` for `key`: the latest unfinished run with that key
/// if there is one (resume), else a new one (with its key file written atomically).
pub fn open_run(
    results_dir: &Path,
    experiment: &str,
    key: &crate::fingerprint::InputKey,
    now: SystemTime,
) -> anyhow::Result<OpenRun> {
    let unfinished = stored_runs(results_dir, experiment)
        .into_iter()
        .rev()
        .find(|r| !r.finished && r.key.as_ref().is_some_and(|k| k.key == key.key));
    if let Some(r) = unfinished {
        let lock = lock_run(&r.dir)?;
        return Ok(OpenRun {
            dir: r.dir,
            run_id: r.run_id,
            resumed: true,
            lock,
        });
    }
    let mut run_id = new_run_id(&key.key, now);
    let mut dir = run_dir(results_dir, experiment, &run_id);
    // Two runs of one manifest started within a second: suffix the later one.
    let mut n = 1;
    while dir.exists() {
        n += 1;
        run_id = format!("{}-{n}", new_run_id(&key.key, now));
        dir = run_dir(results_dir, experiment, &run_id);
    }
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let lock = lock_run(&dir)?;
    mpq_io::write_atomic(&dir.join(KEY_FILE), key.to_text().as_bytes())?;
    Ok(OpenRun {
        dir,
        run_id,
        resumed: false,
        lock,
    })
}

/// The start time encoded in a run id (`YYYYMMDDTHHMMSSZ-...`), as RFC 3339.
pub fn run_id_start(run_id: &str) -> Option<String> {
    let t = run_id.get(..16)?;
    let b = t.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        t.get(r.clone())
            .filter(|s| s.bytes().all(|c| c.is_ascii_digit()))
    };
    if b.get(8) != Some(&b'T') || b.get(15) != Some(&b'Z') {
        return None;
    }
    Some(format!(
        "{}-{}-{}T{}:{}:{}Z",
        digits(0..4)?,
        digits(4..6)?,
        digits(6..8)?,
        digits(9..11)?,
        digits(11..13)?,
        digits(13..15)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_holders() {
        let me = LockHolder {
            pid: std::process::id(),
            host: Some("node1".into()),
            job: Some("45_2".into()),
        };
        assert_eq!(me.to_text(), format!("pid={} host=node1 job=45_2", me.pid));
        assert_eq!(LockHolder::parse(&me.to_text()), Some(me.clone()));
        assert_eq!(
            me.to_string(),
            format!("pid {} on node1 (Slurm job 45_2)", me.pid)
        );
        let old = LockHolder::parse("123\n").unwrap();
        assert_eq!((old.pid, old.host, old.job), (123, None, None));
        assert_eq!(LockHolder::parse("host=x"), None);
        // A live process of this host (this test's parent, pid 1's child tree: pid 1 exists).
        let init = LockHolder {
            pid: 1,
            host: Some("node1".into()),
            job: None,
        };
        assert_eq!(init.liveness_for(&me), Liveness::Alive);
        // This process itself, or a finished one: gone.
        assert_eq!(me.liveness_for(&me), Liveness::Dead);
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let gone = LockHolder {
            pid,
            ..init.clone()
        };
        assert_eq!(gone.liveness_for(&me), Liveness::Dead);
        // Another host: its pid says nothing here. A previous attempt of this very Slurm task
        // is gone (Slurm runs one attempt at a time); anything else cannot be told.
        let there = LockHolder {
            pid: 1,
            host: Some("node2".into()),
            job: Some("45_2".into()),
        };
        assert_eq!(there.liveness_for(&me), Liveness::Dead);
        let other_job = LockHolder {
            job: Some("45_3".into()),
            ..there.clone()
        };
        assert_eq!(other_job.liveness_for(&me), Liveness::Unknown);
        let no_job = LockHolder { job: None, ..there };
        assert_eq!(no_job.liveness_for(&me), Liveness::Unknown);
    }

    #[test]
    fn a_lock_of_another_host_is_not_taken_over() {
        let tmp = tempfile::tempdir().unwrap();
        let other = LockHolder {
            pid: std::process::id(),
            host: Some("elsewhere-node".into()),
            job: None,
        };
        fs::write(tmp.path().join(LOCK_FILE), other.to_text()).unwrap();
        let e = lock_run(tmp.path()).unwrap_err().to_string();
        assert!(e.contains("cannot be checked from"), "{e}");
        // An older lock of a process that is gone is taken over, and the new one names us.
        fs::write(tmp.path().join(LOCK_FILE), "4294967295").unwrap();
        let lock = lock_run(tmp.path()).unwrap();
        let h = lock_holder(tmp.path()).unwrap();
        assert_eq!(h.pid, std::process::id());
        assert_eq!(h.host, Some(hostname()));
        drop(lock);
        assert!(lock_holder(tmp.path()).is_none());
    }
}
