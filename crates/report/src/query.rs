//! `mpq query`: SQL over the results of every finished run, with polars' SQL engine. The tables
//! are `steps`, `candidates`, `layers` and `runs` (the columns of `results/README.md`), each the
//! concatenation of that table over all runs, so a query can compare runs, models and
//! strategies. Output as a printed table, CSV, JSON (an array of row objects) or Parquet.
use anyhow::{bail, Context, Result};
use polars::prelude::{
    CsvWriter, DataFrame, IntoLazy, JsonFormat, JsonWriter, ParquetWriter, SerWriter,
};
use polars::sql::SQLContext;
use std::io::Write;
use std::path::Path;

/// The tables a query can name.
pub use mpq_tables::TABLES;

/// Output formats of `mpq query --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
    Parquet,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "table" => Ok(Format::Table),
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            "parquet" => Ok(Format::Parquet),
            _ => Err(format!("unknown format {s:?} (table, csv, json, parquet)")),
        }
    }
}

/// Run `sql` over the results under `results_dir`.
pub fn query(results_dir: &Path, sql: &str) -> Result<DataFrame> {
    let mut ctx = SQLContext::new();
    let mut found = false;
    let dirs = mpq_tables::run_dirs(results_dir)?;
    for t in TABLES {
        let df = mpq_tables::concat_table(&dirs, t)?;
        found |= df.width() > 0;
        ctx.register(t, df.lazy());
    }
    if !found {
        bail!("{}: no finished runs to query", results_dir.display());
    }
    let lf = ctx
        .execute(sql)
        .map_err(|e| anyhow::anyhow!("query: {}", first_line(&e.to_string())))?;
    lf.collect()
        .map_err(|e| anyhow::anyhow!("query: {}", first_line(&e.to_string())))
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

/// Write `df` to `out` in `format`.
pub fn write(df: &mut DataFrame, format: Format, out: &mut dyn Write) -> Result<()> {
    match format {
        Format::Table => writeln!(out, "{df}")?,
        Format::Csv => CsvWriter::new(out).finish(df).context("writing CSV")?,
        Format::Json => {
            JsonWriter::new(&mut *out)
                .with_json_format(JsonFormat::Json)
                .finish(df)
                .context("writing JSON")?;
            writeln!(out)?;
        }
        Format::Parquet => {
            let mut buf = Vec::new();
            ParquetWriter::new(&mut buf)
                .finish(df)
                .context("writing Parquet")?;
            out.write_all(&buf)?;
        }
    }
    Ok(())
}
