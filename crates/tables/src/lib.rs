//! The result tables in Parquet: the one place that turns the vocabulary's row types
//! (`mpq_vocab::rows`) into polars frames and back, writes them (atomically, through `mpq_io`)
//! and reads them, for the runner's store and the report alike.
//!
//! Layout (documented column by column in `results/README.md`): a run is a directory
//! `results/<experiment>/<run_id>/` with `steps.parquet`, `candidates.parquet`,
//! `layers.parquet` and `runs.parquet`, the last written last, so a directory without it is an
//! unfinished run that readers skip.
//!
//! Only plain Parquet types: UTF-8 strings, Float64, UInt32 and UInt64, with nulls for `None`
//! (no categoricals, no nested types), so pandas, DuckDB and polars all read the files. A column
//! a file lacks (a run written before the column existed) reads as null; a renamed column
//! (`mpq_vocab::rows::RENAMED_COLUMNS`) is read under its old name too.
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use mpq_vocab::rows::{ColumnType, Row, Value, RENAMED_COLUMNS};
use mpq_vocab::{CandidateRow, LayerRow, RunRow, RunTables, StepRow};
use polars::prelude::{
    DataFrame, DataType, IntoColumn, NamedFrom, ParquetCompression, ParquetReader, ParquetWriter,
    PlSmallStr, PolarsResult, SerReader, Series,
};
use walkdir::WalkDir;

/// `rows` as a frame whose columns are the row type's, in order (typed even when empty).
pub fn frame<R: Row>(rows: &[R]) -> PolarsResult<DataFrame> {
    let cells: Vec<Vec<Value>> = rows.iter().map(Row::cells).collect();
    let columns = R::columns()
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let name: PlSmallStr = c.name.into();
            let col = cells.iter().map(|r| &r[i]);
            let s = match c.ty {
                ColumnType::Str => Series::new(
                    name,
                    col.map(|v| match v {
                        Value::Str(s) => Some(s.as_str()),
                        _ => None,
                    })
                    .collect::<Vec<_>>(),
                ),
                ColumnType::F64 => Series::new(
                    name,
                    col.map(|v| match v {
                        Value::F64(x) => Some(*x),
                        _ => None,
                    })
                    .collect::<Vec<_>>(),
                ),
                ColumnType::U32 => Series::new(
                    name,
                    col.map(|v| match v {
                        Value::U32(x) => Some(*x),
                        _ => None,
                    })
                    .collect::<Vec<_>>(),
                ),
                ColumnType::U64 => Series::new(
                    name,
                    col.map(|v| match v {
                        Value::U64(x) => Some(*x),
                        _ => None,
                    })
                    .collect::<Vec<_>>(),
                ),
            };
            s.into_column()
        })
        .collect();
    DataFrame::new(rows.len(), columns)
}

/// The cells of column `name` of `df` (old names of renamed columns accepted); all null when
/// the frame has no such column.
fn column_values<R: Row>(df: &DataFrame, name: &str, ty: ColumnType) -> Result<Vec<Value>> {
    let found = df.column(name).ok().or_else(|| {
        RENAMED_COLUMNS
            .iter()
            .filter(|(t, _, new)| *t == R::TABLE && *new == name)
            .find_map(|(_, old, _)| df.column(old).ok())
    });
    let Some(c) = found else {
        return Ok(vec![Value::Null; df.height()]);
    };
    let c = match ty {
        ColumnType::Str => c.cast(&DataType::String)?,
        ColumnType::F64 => c.cast(&DataType::Float64)?,
        ColumnType::U32 | ColumnType::U64 => c.cast(&DataType::UInt64)?,
    };
    Ok(match ty {
        ColumnType::Str => c
            .str()?
            .iter()
            .map(|v| v.map_or(Value::Null, |s| Value::Str(s.to_string())))
            .collect(),
        ColumnType::F64 => c
            .f64()?
            .iter()
            .map(|v| v.map_or(Value::Null, Value::F64))
            .collect(),
        ColumnType::U32 | ColumnType::U64 => c
            .u64()?
            .iter()
            .map(|v| v.map_or(Value::Null, Value::U64))
            .collect(),
    })
}

/// The rows of a frame of table `R` (see the module documentation for missing and renamed
/// columns). Errors name the row and the column.
pub fn rows<R: Row>(df: &DataFrame) -> Result<Vec<R>> {
    let mut columns: Vec<(&'static str, std::vec::IntoIter<Value>)> = vec![];
    for c in R::columns() {
        let v =
            column_values::<R>(df, c.name, c.ty).with_context(|| format!("column {}", c.name))?;
        columns.push((c.name, v.into_iter()));
    }
    (0..df.height())
        .map(|i| {
            R::from_cells(&mut |name| {
                columns
                    .iter_mut()
                    .find(|(n, _)| *n == name)
                    .and_then(|(_, v)| v.next())
                    .unwrap_or(Value::Null)
            })
            .map_err(|e| anyhow::anyhow!("row {i}: {e}"))
        })
        .collect()
}

/// Reads one Parquet file; errors name the file.
pub fn read_parquet(path: &Path) -> Result<DataFrame> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    ParquetReader::new(file)
        .finish()
        .with_context(|| format!("reading Parquet file {}", path.display()))
}

/// Writes `df` to `path` as Parquet (zstd), atomically.
pub fn write_parquet(df: &mut DataFrame, path: &Path) -> Result<()> {
    mpq_io::write_atomic_with(path, |w| -> Result<()> {
        ParquetWriter::new(w)
            .with_compression(ParquetCompression::Zstd(None))
            .finish(df)?;
        Ok(())
    })
    .with_context(|| format!("writing {}", path.display()))
}

/// The file of table `R` in run directory `dir`.
pub fn table_path<R: Row>(dir: &Path) -> PathBuf {
    dir.join(format!("{}.parquet", R::TABLE))
}

/// Creates `dir` and writes the run's four tables into it, each atomically, `runs.parquet`
/// last (its presence marks a finished run).
pub fn write_run(dir: &Path, t: &RunTables) -> Result<()> {
    fn one<R: Row>(dir: &Path, rows: &[R]) -> Result<()> {
        let path = table_path::<R>(dir);
        let mut df =
            frame(rows).with_context(|| format!("building the table for {}", path.display()))?;
        write_parquet(&mut df, &path)
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    one(dir, &t.steps)?;
    one(dir, &t.candidates)?;
    one(dir, &t.layers)?;
    one(dir, std::slice::from_ref(&t.run))
}

/// The rows of table `R` stored in run directory `dir` (none when its file is missing).
pub fn read_rows<R: Row>(dir: &Path) -> Result<Vec<R>> {
    let path = table_path::<R>(dir);
    if !path.is_file() {
        return Ok(vec![]);
    }
    rows(&read_parquet(&path)?).with_context(|| format!("reading {}", path.display()))
}

/// The finished run stored in `dir`: its `runs` row and the rows of its other tables that carry
/// its run id.
pub fn read_run(dir: &Path) -> Result<RunTables> {
    let runs: Vec<RunRow> = read_rows(dir)?;
    let Some(run) = runs.into_iter().next() else {
        bail!("{}: no row", table_path::<RunRow>(dir).display());
    };
    let mine = |id: &str| id == run.run_id;
    let mut steps: Vec<StepRow> = read_rows(dir)?;
    steps.retain(|s| mine(&s.run_id));
    steps.sort_by_key(|s| s.step);
    let mut candidates: Vec<CandidateRow> = read_rows(dir)?;
    candidates.retain(|c| mine(&c.run_id));
    let mut layers: Vec<LayerRow> = read_rows(dir)?;
    layers.retain(|l| mine(&l.run_id));
    Ok(RunTables {
        steps,
        candidates,
        layers,
        run,
    })
}

fn is_hidden(e: &walkdir::DirEntry) -> bool {
    e.depth() > 0 && e.file_name().to_string_lossy().starts_with('.')
}

/// The finished run directories under `results_dir` (those holding a `runs.parquet`), sorted
/// by path; dot-files and dot-directories are skipped; a missing `results_dir` has none.
pub fn run_dirs(results_dir: &Path) -> Result<Vec<PathBuf>> {
    if !results_dir.exists() {
        return Ok(vec![]);
    }
    let runs = format!("{}.parquet", RunRow::TABLE);
    let mut dirs = Vec::new();
    for e in WalkDir::new(results_dir)
        .follow_links(true)
        .into_iter()
        .filter_entry(|e| !is_hidden(e))
    {
        let e = e.with_context(|| format!("walking {}", results_dir.display()))?;
        if e.file_type().is_file() && e.file_name().to_string_lossy() == runs {
            if let Some(dir) = e.path().parent() {
                dirs.push(dir.to_path_buf());
            }
        }
    }
    dirs.sort();
    Ok(dirs)
}

/// One table (by its name: `steps`, `candidates`, `layers`, `runs`) of the given run
/// directories, rows of all runs stacked; columns are the union over the files (polars'
/// diagonal concatenation: a column a file lacks is null in its rows). Empty (no columns) when
/// no directory has the table.
pub fn concat_table(dirs: &[PathBuf], table: &str) -> Result<DataFrame> {
    let mut frames = Vec::new();
    for dir in dirs {
        let f = dir.join(format!("{table}.parquet"));
        if f.is_file() {
            frames.push(read_parquet(&f)?);
        }
    }
    if frames.is_empty() {
        return Ok(DataFrame::empty());
    }
    polars::functions::concat_df_diagonal(&frames)
        .with_context(|| format!("concatenating {table}.parquet files"))
}

/// The tables' names, in the order a run writes them.
pub const TABLES: [&str; 4] = [
    StepRow::TABLE,
    CandidateRow::TABLE,
    LayerRow::TABLE,
    RunRow::TABLE,
];

#[cfg(test)]
mod tests {
    use super::*;
    use mpq_vocab::{ArchName, BetaSetting, BitPair, LayerKind, PaperModel, StrategyName};

    fn tables(id: &str) -> RunTables {
        let step = |k: u32| StepRow {
            run_id: id.into(),
            experiment: "e".into(),
            arch: ArchName::ResnetTiny,
            pair: BitPair::W4A4,
            strategy: StrategyName::Greedy,
            beta: 0.0,
            step: k,
            layer: (k > 0).then(|| format!("l{k}")),
            layer_index: k.checked_sub(1),
            top1: 0.5 + f64::from(k) / 100.0,
            objective: (k > 0).then_some(0.3),
            params_low: u64::from(k) * 10,
            size_bits: 80 - u64::from(k),
            rel_size: 0.25,
            evals: u64::from(k),
            elapsed_s: 1.5,
            low_layers: String::new(),
            work: f64::from(k),
            test_top1: None,
            test_correct: None,
        };
        RunTables {
            steps: vec![step(1), step(0)],
            candidates: vec![CandidateRow {
                run_id: id.into(),
                step: 1,
                layer: "l1".into(),
                layer_index: 0,
                top1: 0.5,
                objective: None,
                n_images: 16,
            }],
            layers: vec![LayerRow {
                run_id: id.into(),
                layer_index: 0,
                layer: "l1".into(),
                kind: LayerKind::Conv,
                n_weights: 10,
            }],
            run: RunRow {
                run_id: id.into(),
                experiment: "e".into(),
                arch: ArchName::ResnetTiny,
                pair: BitPair::W4A4,
                high_pair: BitPair::W8A8,
                strategy: StrategyName::Greedy,
                beta: 0.0,
                manifest: "[experiment]\n".into(),
                manifest_hash: "h".into(),
                git_commit: None,
                device: "cpu".into(),
                fp32_top1: 0.9,
                high_top1: 0.8,
                n_test_images: None,
                test_digest: None,
                fp32_test_top1: None,
                high_test_top1: None,
                fp32_test_correct: None,
                test_s: None,
                n_layers: 1,
                n_search_images: 16,
                n_calib_images: 8,
                skipped_images: 0,
                started_at: "2024-01-01T00:00:00Z".into(),
                finished_at: "2024-01-01T00:00:01Z".into(),
                status: "finished".into(),
                wall_s: 1.0,
                evals: 1,
                suite: Some("embedded".into()),
                paper_model: Some(PaperModel::ResNet50),
                manifest_path: "m.toml".into(),
                beta_setting: BetaSetting::Auto,
                input_key: "k".into(),
                code_version: "v".into(),
                search_layers: None,
                max_steps: Some(1),
                work: 1.0,
                evals_replayed: 0,
                repeat: None,
                method: None,
                method_s: None,
                method_passes: None,
                method_iterations: None,
            },
        }
    }

    #[test]
    fn a_run_round_trips_with_plain_parquet_types() {
        // Under a plain (not hidden) directory: `run_dirs` skips dot-directories such as the
        // temporary directory itself.
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("e/r1");
        let t = tables("r1");
        write_run(&dir, &t).unwrap();
        let back = read_run(&dir).unwrap();
        let mut want = t.clone();
        want.steps.sort_by_key(|s| s.step);
        assert_eq!(back, want);
        let runs = read_parquet(&dir.join("runs.parquet")).unwrap();
        assert_eq!(runs.column("pair").unwrap().dtype(), &DataType::String);
        assert_eq!(runs.column("n_layers").unwrap().dtype(), &DataType::UInt32);
        assert_eq!(runs.column("evals").unwrap().dtype(), &DataType::UInt64);
        assert_eq!(runs.column("git_commit").unwrap().null_count(), 1);
        // An empty table keeps its column types.
        let empty = frame::<CandidateRow>(&[]).unwrap();
        assert_eq!(empty.column("top1").unwrap().dtype(), &DataType::Float64);
        assert_eq!(run_dirs(tmp.path()).unwrap(), [dir]);
    }

    #[test]
    fn old_column_names_are_read_and_missing_required_ones_named() {
        let dir = tempfile::tempdir().unwrap();
        let t = tables("r1");
        write_run(dir.path(), &t).unwrap();
        let path = dir.path().join("runs.parquet");
        let mut df = read_parquet(&path).unwrap();
        df.rename("high_top1", "int8_top1".into()).unwrap();
        write_parquet(&mut df, &path).unwrap();
        assert_eq!(read_run(dir.path()).unwrap().run.high_top1, 0.8);
        df.drop_in_place("fp32_top1").unwrap();
        write_parquet(&mut df, &path).unwrap();
        let e = format!("{:#}", read_run(dir.path()).unwrap_err());
        assert!(e.contains("column fp32_top1: null"), "{e}");
    }

    #[test]
    fn tables_of_several_runs_stack_with_the_union_of_their_columns() {
        let root = tempfile::tempdir().unwrap();
        let (a, b) = (root.path().join("x/r1"), root.path().join("y/r2"));
        write_run(&a, &tables("r1")).unwrap();
        write_run(&b, &tables("r2")).unwrap();
        let path = b.join("runs.parquet");
        let mut df = read_parquet(&path).unwrap();
        df.drop_in_place("suite").unwrap();
        write_parquet(&mut df, &path).unwrap();
        let dirs = run_dirs(root.path()).unwrap();
        assert_eq!(dirs, [a, b]);
        let runs = concat_table(&dirs, "runs").unwrap();
        assert_eq!(runs.height(), 2);
        assert_eq!(runs.column("suite").unwrap().null_count(), 1);
        assert_eq!(concat_table(&dirs, "steps").unwrap().height(), 4);
    }
}
