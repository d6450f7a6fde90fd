//! The result store: the only writer under `results/`.
//!
//! A run is stored as one directory, `results/<experiment>/<run_id>/`, holding four Parquet
//! tables: `steps.parquet`, `candidates.parquet`, `layers.parquet` and `runs.parquet`. The layout
//! and every column are documented in `results/README.md`; the column names are the project's
//! contract with its users and never change (new columns may be added).
//!
//! Invariants:
//! - every file is written through a temporary file in the same directory (`.<name>.<unique>.tmp`),
//!   fsynced, then renamed onto its final name, so a killed process never leaves a half-written
//!   table; a failed write removes its temporary file and leaves any previous file untouched;
//! - `runs.parquet` is written last, so a directory without it is an unfinished run (readers,
//!   such as the report crate, skip it);
//! - only plain Parquet types: UTF-8 strings, Float64, UInt32 and UInt64, with nulls for `None`
//!   (no categoricals, no nested types), so pandas, DuckDB and polars all read the files.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use polars::prelude::{
    Column, DataFrame, IntoColumn, NamedFrom, ParquetCompression, ParquetReader, ParquetWriter,
    PolarsResult, SerReader, Series,
};

/// One row of `steps`: the configuration after search step `step` (step 0 = every layer at the
/// high pair, W8A8).
#[derive(Clone, Debug, PartialEq)]
pub struct StepRow {
    pub run_id: String,
    pub experiment: String,
    pub arch: String,
    /// The low bit pair of the run, e.g. `W4A8`.
    pub pair: String,
    pub strategy: String,
    pub beta: f64,
    pub step: u32,
    /// Name of the layer moved to the low pair at this step (`None` at step 0).
    pub layer: Option<String>,
    pub layer_index: Option<u32>,
    /// Top-1 accuracy as a fraction in 0..=1.
    pub top1: f64,
    /// Objective `acc * (ln params)^beta`; `None` where `ln 0` would be needed.
    pub objective: Option<f64>,
    /// Weights of the layers at the low pair.
    pub params_low: u64,
    /// Model size in bits, `sum_i n_i * w_bits(i)`.
    pub size_bits: u64,
    /// `size_bits / (32 * total weights)`.
    pub rel_size: f64,
    /// Evaluations spent so far (cumulative; step 0 is not counted).
    pub evals: u64,
    pub elapsed_s: f64,
    /// The layers at the low pair after this step, sorted indices joined by commas (`""` at
    /// step 0). Needed where sets are not nested (exhaustive).
    pub low_layers: String,
    /// Cost so far in full-evaluation equivalents (a partial evaluation on a fraction of the
    /// images counts that fraction).
    pub work: f64,
}

/// One row of `candidates`: a configuration evaluated while choosing step `step`.
#[derive(Clone, Debug, PartialEq)]
pub struct CandidateRow {
    pub run_id: String,
    pub step: u32,
    pub layer: String,
    pub layer_index: u32,
    pub top1: f64,
    pub objective: Option<f64>,
    /// Images the top-1 was measured on (fewer than the run's search images for a partial,
    /// screening evaluation).
    pub n_images: u32,
}

/// One row of `layers`: a quantizable layer of the run's network, in execution order.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerRow {
    pub run_id: String,
    pub layer_index: u32,
    pub layer: String,
    pub kind: String,
    pub n_weights: u64,
}

/// The single row of `runs`: what was run, where, with which code, and the reference accuracies.
#[derive(Clone, Debug, PartialEq)]
pub struct RunRow {
    pub run_id: String,
    pub experiment: String,
    pub arch: String,
    pub pair: String,
    pub high_pair: String,
    pub strategy: String,
    pub beta: f64,
    /// The resolved manifest, as TOML text.
    pub manifest: String,
    pub manifest_hash: String,
    pub git_commit: Option<String>,
    pub device: String,
    pub fp32_top1: f64,
    /// Top-1 with every layer at the high pair.
    pub int8_top1: f64,
    pub n_layers: u32,
    pub n_search_images: u32,
    pub n_calib_images: u32,
    /// Undecodable images left out of the calibration and search images (`data.skip_corrupt`).
    pub skipped_images: u32,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub finished_at: String,
    pub status: String,
    pub wall_s: f64,
    pub evals: u64,
    /// The suite the manifest belongs to (`embedded`, `paper`, ...).
    pub suite: Option<String>,
    /// The paper's network this run reproduces or stands in for.
    pub paper_model: Option<String>,
    /// The manifest file, as given.
    pub manifest_path: String,
    /// `search.beta` as set: a number or `auto` (`beta` holds the value used).
    pub beta_setting: String,
    /// Hash of everything the results depend on (see `fingerprint`).
    pub input_key: String,
    /// Hash of the source that computes results.
    pub code_version: String,
    /// The searchable layers when the search was restricted to some (comma-separated indices).
    pub search_layers: Option<String>,
    /// Steps the search was limited to (`search.max_steps`; null: no limit).
    pub max_steps: Option<u32>,
    /// The search's cost in full-evaluation equivalents.
    pub work: f64,
    /// Evaluations answered from the journal of an interrupted run (0 for a run that went
    /// through at once).
    pub evals_replayed: u64,
}

/// All four tables of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct RunTables {
    pub steps: Vec<StepRow>,
    pub candidates: Vec<CandidateRow>,
    pub layers: Vec<LayerRow>,
    pub run: RunRow,
}

/// A column named `name` from the values `f` takes on `rows`.
fn col<R, V>(rows: &[R], name: &str, f: impl Fn(&R) -> V) -> Column
where
    Series: NamedFrom<Vec<V>, [V]>,
{
    Series::new(name.into(), rows.iter().map(f).collect::<Vec<V>>()).into_column()
}

/// A UTF-8 column (`String` dtype even when `rows` is empty).
fn str_col<R>(rows: &[R], name: &str, f: impl Fn(&R) -> &str) -> Column {
    Series::new(name.into(), rows.iter().map(f).collect::<Vec<&str>>()).into_column()
}

/// A nullable UTF-8 column.
fn opt_str_col<R>(rows: &[R], name: &str, f: impl Fn(&R) -> Option<&str>) -> Column {
    Series::new(
        name.into(),
        rows.iter().map(f).collect::<Vec<Option<&str>>>(),
    )
    .into_column()
}

/// The `steps` table.
pub fn steps_frame(rows: &[StepRow]) -> PolarsResult<DataFrame> {
    DataFrame::new(
        rows.len(),
        vec![
            str_col(rows, "run_id", |r| &r.run_id),
            str_col(rows, "experiment", |r| &r.experiment),
            str_col(rows, "arch", |r| &r.arch),
            str_col(rows, "pair", |r| &r.pair),
            str_col(rows, "strategy", |r| &r.strategy),
            col(rows, "beta", |r| r.beta),
            col(rows, "step", |r| r.step),
            opt_str_col(rows, "layer", |r| r.layer.as_deref()),
            col(rows, "layer_index", |r| r.layer_index),
            col(rows, "top1", |r| r.top1),
            col(rows, "objective", |r| r.objective),
            col(rows, "params_low", |r| r.params_low),
            col(rows, "size_bits", |r| r.size_bits),
            col(rows, "rel_size", |r| r.rel_size),
            col(rows, "evals", |r| r.evals),
            col(rows, "elapsed_s", |r| r.elapsed_s),
            str_col(rows, "low_layers", |r| &r.low_layers),
            col(rows, "work", |r| r.work),
        ],
    )
}

/// The `candidates` table.
pub fn candidates_frame(rows: &[CandidateRow]) -> PolarsResult<DataFrame> {
    DataFrame::new(
        rows.len(),
        vec![
            str_col(rows, "run_id", |r| &r.run_id),
            col(rows, "step", |r| r.step),
            str_col(rows, "layer", |r| &r.layer),
            col(rows, "layer_index", |r| r.layer_index),
            col(rows, "top1", |r| r.top1),
            col(rows, "objective", |r| r.objective),
            col(rows, "n_images", |r| r.n_images),
        ],
    )
}

/// The `layers` table.
pub fn layers_frame(rows: &[LayerRow]) -> PolarsResult<DataFrame> {
    DataFrame::new(
        rows.len(),
        vec![
            str_col(rows, "run_id", |r| &r.run_id),
            col(rows, "layer_index", |r| r.layer_index),
            str_col(rows, "layer", |r| &r.layer),
            str_col(rows, "kind", |r| &r.kind),
            col(rows, "n_weights", |r| r.n_weights),
        ],
    )
}

/// The `runs` table (normally one row).
pub fn runs_frame(rows: &[RunRow]) -> PolarsResult<DataFrame> {
    DataFrame::new(
        rows.len(),
        vec![
            str_col(rows, "run_id", |r| &r.run_id),
            str_col(rows, "experiment", |r| &r.experiment),
            str_col(rows, "arch", |r| &r.arch),
            str_col(rows, "pair", |r| &r.pair),
            str_col(rows, "high_pair", |r| &r.high_pair),
            str_col(rows, "strategy", |r| &r.strategy),
            col(rows, "beta", |r| r.beta),
            str_col(rows, "manifest", |r| &r.manifest),
            str_col(rows, "manifest_hash", |r| &r.manifest_hash),
            opt_str_col(rows, "git_commit", |r| r.git_commit.as_deref()),
            str_col(rows, "device", |r| &r.device),
            col(rows, "fp32_top1", |r| r.fp32_top1),
            col(rows, "int8_top1", |r| r.int8_top1),
            col(rows, "n_layers", |r| r.n_layers),
            col(rows, "n_search_images", |r| r.n_search_images),
            col(rows, "n_calib_images", |r| r.n_calib_images),
            col(rows, "skipped_images", |r| r.skipped_images),
            str_col(rows, "started_at", |r| &r.started_at),
            str_col(rows, "finished_at", |r| &r.finished_at),
            str_col(rows, "status", |r| &r.status),
            col(rows, "wall_s", |r| r.wall_s),
            col(rows, "evals", |r| r.evals),
            opt_str_col(rows, "suite", |r| r.suite.as_deref()),
            opt_str_col(rows, "paper_model", |r| r.paper_model.as_deref()),
            str_col(rows, "manifest_path", |r| &r.manifest_path),
            str_col(rows, "beta_setting", |r| &r.beta_setting),
            str_col(rows, "input_key", |r| &r.input_key),
            str_col(rows, "code_version", |r| &r.code_version),
            opt_str_col(rows, "search_layers", |r| r.search_layers.as_deref()),
            col(rows, "max_steps", |r| r.max_steps),
            col(rows, "work", |r| r.work),
            col(rows, "evals_replayed", |r| r.evals_replayed),
        ],
    )
}

/// A name for a temporary file next to `path`: `.<file name>.<pid>.<counter>.tmp`, unique within
/// this machine for the life of the process.
fn temp_path(path: &Path) -> anyhow::Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .with_context(|| format!("{}: not a file path", path.display()))?;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = format!(".{}.{}.{n}.tmp", name.to_string_lossy(), std::process::id());
    Ok(path.with_file_name(tmp))
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Makes a rename in `dir` durable. Best effort: not every platform can open a directory.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Writes `path` atomically through `write`: into a temporary file in the same directory
/// (`.<name>.<unique>.tmp`), fsynced, then renamed onto `path`. On any error the temporary file
/// is removed and a previous file at `path` is left as it was.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let tmp = temp_path(path)?;
    let attempt = || -> anyhow::Result<()> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        let mut w = BufWriter::new(file);
        write(&mut w).with_context(|| format!("writing {}", tmp.display()))?;
        w.flush()?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
            .with_context(|| format!("syncing {}", tmp.display()))?;
        drop(file);
        fs::rename(&tmp, path)
            .with_context(|| format!("renaming {} onto {}", tmp.display(), path.display()))?;
        Ok(())
    };
    match attempt() {
        Ok(()) => {
            sync_dir(parent_dir(path));
            Ok(())
        }
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e.context(format!("writing {}", path.display())))
        }
    }
}

/// Writes `bytes` to `path` atomically (see [`write_atomic_with`]).
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_atomic_with(path, |w| Ok(w.write_all(bytes)?))
}

/// Writes `df` to `path` as Parquet (zstd), atomically (see [`write_atomic_with`]).
pub fn write_parquet_atomic(df: &mut DataFrame, path: &Path) -> anyhow::Result<()> {
    write_atomic_with(path, |w| {
        ParquetWriter::new(w)
            .with_compression(ParquetCompression::Zstd(None))
            .finish(df)?;
        Ok(())
    })
}

/// Creates `dir` and writes the run's four tables into it, each atomically, `runs.parquet` last
/// (its presence marks a finished run).
pub fn write_run(dir: &Path, t: &RunTables) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tables: [(&str, PolarsResult<DataFrame>); 4] = [
        ("steps.parquet", steps_frame(&t.steps)),
        ("candidates.parquet", candidates_frame(&t.candidates)),
        ("layers.parquet", layers_frame(&t.layers)),
        ("runs.parquet", runs_frame(std::slice::from_ref(&t.run))),
    ];
    for (name, df) in tables {
        let path = dir.join(name);
        let mut df = df.with_context(|| format!("building the table for {}", path.display()))?;
        write_parquet_atomic(&mut df, &path)?;
    }
    Ok(())
}

/// Reads one Parquet file; errors name the file.
pub fn read_parquet(path: &Path) -> anyhow::Result<DataFrame> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    ParquetReader::new(file)
        .finish()
        .with_context(|| format!("reading Parquet file {}", path.display()))
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
    let (y, mo, d, h, mi, s) = utc_fields(now);
    let short: String = manifest_hash
        .chars()
        .take(8)
        .collect::<String>()
        .to_ascii_lowercase();
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z-{short}")
}

/// The input key of a run (see `fingerprint`), written when its directory is created.
pub const KEY_FILE: &str = "input.key";
/// The journal of its evaluations (see `journal`).
pub const JOURNAL_FILE: &str = "journal.log";
/// Held while a process runs it: the process id.
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

/// Whether process `pid` is alive (Linux: `/proc/<pid>`; elsewhere a lock is never stale).
fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

/// Takes the lock of a run directory; a lock left by a dead process is taken over.
pub fn lock_run(dir: &Path) -> anyhow::Result<RunLock> {
    let path = dir.join(LOCK_FILE);
    for _ in 0..2 {
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut f) => {
                write!(f, "{}", std::process::id())?;
                f.sync_all()?;
                return Ok(RunLock(path));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let pid = fs::read_to_string(&path)
                    .ok()
                    .and_then(|s| s.trim().parse::<u32>().ok());
                if let Some(pid) = pid.filter(|&p| p != std::process::id() && process_alive(p)) {
                    anyhow::bail!(
                        "{}: another mpq process (pid {pid}) is running this experiment",
                        dir.display()
                    );
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
    write_file_atomic(&dir.join(KEY_FILE), key.to_text().as_bytes())?;
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
