//! Loading the stored runs: every finished run directory under `results/`, concatenated.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::Context;
use polars::prelude::{
    Column, DataFrame, DataType, ParquetReader, PlSmallStr, PolarsResult, SerReader,
};
use walkdir::WalkDir;

/// The tables of every finished run, one frame per table, rows of all runs concatenated.
/// Columns are the union over the files (a column missing from one file is null in its rows).
/// Both frames are empty (no columns) when no finished run was found.
#[derive(Clone, Debug, Default)]
pub struct Results {
    /// One row per run (`runs.parquet`).
    pub runs: DataFrame,
    /// One row per search step of every run (`steps.parquet`).
    pub steps: DataFrame,
}

pub(crate) fn read_parquet(path: &Path) -> anyhow::Result<DataFrame> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    ParquetReader::new(file)
        .finish()
        .with_context(|| format!("reading Parquet file {}", path.display()))
}

fn is_hidden(e: &walkdir::DirEntry) -> bool {
    e.depth() > 0 && e.file_name().to_string_lossy().starts_with('.')
}

/// The run directories under `results_dir`: those holding a `runs.parquet`, sorted by path.
/// Dot-files and dot-directories are skipped.
fn run_dirs(results_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for e in WalkDir::new(results_dir)
        .follow_links(true)
        .into_iter()
        .filter_entry(|e| !is_hidden(e))
    {
        let e = e.with_context(|| format!("walking {}", results_dir.display()))?;
        if e.file_type().is_file() && e.file_name() == "runs.parquet" {
            if let Some(dir) = e.path().parent() {
                dirs.push(dir.to_path_buf());
            }
        }
    }
    dirs.sort();
    Ok(dirs)
}

/// Loads every finished run under `results_dir` (`results_dir/<experiment>/<run_id>/`): all
/// `runs.parquet` files, and the `steps.parquet` files beside them. A directory without
/// `runs.parquet` is an unfinished run and is ignored, as are dot-files and dot-directories. A
/// missing `results_dir` gives empty results. Errors name the offending file.
pub fn load_results(results_dir: &Path) -> anyhow::Result<Results> {
    if !results_dir.exists() {
        return Ok(Results::default());
    }
    load_run_dirs(&run_dirs(results_dir)?)
}

/// One table (`steps`, `candidates`, `layers` or `runs`) of every finished run under
/// `results_dir`, rows of all runs concatenated (columns unioned as in [`load_results`]). Empty
/// (no columns) when no finished run has that table.
pub fn load_table(results_dir: &Path, table: &str) -> anyhow::Result<DataFrame> {
    if !results_dir.exists() {
        return Ok(DataFrame::empty());
    }
    let mut frames = Vec::new();
    for dir in run_dirs(results_dir)? {
        let f = dir.join(format!("{table}.parquet"));
        if f.is_file() {
            frames.push(read_parquet(&f)?);
        }
    }
    concat_diagonal(frames).with_context(|| format!("concatenating {table}.parquet files"))
}

/// Stacks frames whose columns may differ: the result has the union of the columns (in order of
/// first appearance, each with its first non-null dtype); a frame lacking a column gets nulls
/// there, and a column of another dtype is cast.
pub(crate) fn concat_diagonal(frames: Vec<DataFrame>) -> PolarsResult<DataFrame> {
    let mut schema: Vec<(PlSmallStr, DataType)> = Vec::new();
    for df in &frames {
        for c in df.columns() {
            match schema.iter_mut().find(|(n, _)| n == c.name()) {
                Some((_, dt)) => {
                    if *dt == DataType::Null {
                        *dt = c.dtype().clone();
                    }
                }
                None => schema.push((c.name().clone(), c.dtype().clone())),
            }
        }
    }
    let mut out: Option<DataFrame> = None;
    for df in frames {
        let h = df.height();
        let cols = schema
            .iter()
            .map(|(name, dt)| match df.column(name.as_str()) {
                Ok(c) if c.dtype() == dt => Ok(c.clone()),
                Ok(c) => c.cast(dt),
                Err(_) => Ok(Column::full_null(name.clone(), h, dt)),
            })
            .collect::<PolarsResult<Vec<Column>>>()?;
        let df = DataFrame::new(h, cols)?;
        match out.as_mut() {
            None => out = Some(df),
            Some(o) => {
                o.vstack_mut_owned(df)?;
            }
        }
    }
    Ok(match out {
        Some(mut o) => {
            o.rechunk_mut();
            o
        }
        None => DataFrame::empty(),
    })
}

/// The values of column `name` as strings; all null when the column is missing.
pub(crate) fn strings(df: &DataFrame, name: &str) -> PolarsResult<Vec<Option<String>>> {
    match df.column(name) {
        Ok(c) => Ok(c
            .cast(&DataType::String)?
            .str()?
            .iter()
            .map(|s| s.map(str::to_string))
            .collect()),
        Err(_) => Ok(vec![None; df.height()]),
    }
}

/// The values of column `name` as f64; all null when the column is missing.
pub(crate) fn floats(df: &DataFrame, name: &str) -> PolarsResult<Vec<Option<f64>>> {
    match df.column(name) {
        Ok(c) => Ok(c.cast(&DataType::Float64)?.f64()?.iter().collect()),
        Err(_) => Ok(vec![None; df.height()]),
    }
}

/// The values of column `name` as i64; all null when the column is missing.
pub(crate) fn ints(df: &DataFrame, name: &str) -> PolarsResult<Vec<Option<i64>>> {
    match df.column(name) {
        Ok(c) => Ok(c.cast(&DataType::Int64)?.i64()?.iter().collect()),
        Err(_) => Ok(vec![None; df.height()]),
    }
}

/// The `runs.parquet` and `steps.parquet` of the given run directories, concatenated as in
/// [`load_results`] (a directory without `steps.parquet` contributes no steps).
pub(crate) fn load_run_dirs(dirs: &[PathBuf]) -> anyhow::Result<Results> {
    let mut runs = Vec::new();
    let mut steps = Vec::new();
    for dir in dirs {
        runs.push(read_parquet(&dir.join("runs.parquet"))?);
        let s = dir.join("steps.parquet");
        if s.is_file() {
            steps.push(read_parquet(&s)?);
        }
    }
    Ok(Results {
        runs: concat_diagonal(runs).context("concatenating runs.parquet files")?,
        steps: concat_diagonal(steps).context("concatenating steps.parquet files")?,
    })
}
