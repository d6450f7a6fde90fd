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
    /// RFC 3339, UTC.
    pub started_at: String,
    pub finished_at: String,
    pub status: String,
    pub wall_s: f64,
    pub evals: u64,
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
            str_col(rows, "started_at", |r| &r.started_at),
            str_col(rows, "finished_at", |r| &r.finished_at),
            str_col(rows, "status", |r| &r.status),
            col(rows, "wall_s", |r| r.wall_s),
            col(rows, "evals", |r| r.evals),
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

/// Writes `df` to `path` as Parquet (zstd), atomically: into a temporary file in the same
/// directory (`.<name>.<unique>.tmp`), fsynced, then renamed onto `path`. On any error the
/// temporary file is removed and a previous file at `path` is left as it was.
pub fn write_parquet_atomic(df: &mut DataFrame, path: &Path) -> anyhow::Result<()> {
    let tmp = temp_path(path)?;
    let write = |df: &mut DataFrame| -> anyhow::Result<()> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        let mut w = BufWriter::new(file);
        ParquetWriter::new(&mut w)
            .with_compression(ParquetCompression::Zstd(None))
            .finish(df)
            .with_context(|| format!("writing Parquet to {}", tmp.display()))?;
        w.flush()?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
            .with_context(|| format!("syncing {}", tmp.display()))?;
        drop(file);
        fs::rename(&tmp, path)
            .with_context(|| format!("renaming {} onto {}", tmp.display(), path.display()))?;
        Ok(())
    };
    match write(df) {
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
