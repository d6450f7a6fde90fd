//! Reports from stored results: reads the Parquet tables under `results/` and writes Markdown
//! (later also SVG figures) under `reports/`.
//!
//! Job and invariants:
//! - knows nothing of candle or of running models: its only input is the Parquet layout
//!   documented in `results/README.md` (`results/<experiment>/<run_id>/{steps,runs,...}.parquet`);
//! - a run directory without `runs.parquet` is an unfinished run and is skipped, as are dot-files
//!   and dot-directories (temporary files of writers in progress);
//! - every file it writes is written atomically (temporary file in the same directory, then a
//!   rename), see [`write_atomic`];
//! - it never invents a number: a value missing from the tables is shown as `—`.
//!
//! Entry points: [`load_results`] (all runs and steps), [`summary_markdown`] (one table row per
//! run), [`write_report`] (both, into `reports/summary.md`) and [`query::query`] (SQL over every
//! run's tables).

mod fsutil;
mod load;
pub mod query;
mod summary;

use std::path::{Path, PathBuf};

use anyhow::Context;

pub use fsutil::write_atomic;
pub use load::{load_results, load_table, Results};
pub use summary::{best_trade_off, summary_markdown, TradeOff, TRADE_OFF_TOLERANCE};

/// Loads `results_dir` and writes `reports_dir/summary.md` (creating `reports_dir`), atomically.
/// Returns the path written.
pub fn write_report(results_dir: &Path, reports_dir: &Path) -> anyhow::Result<PathBuf> {
    let results = load_results(results_dir)?;
    let md = summary_markdown(&results)?;
    std::fs::create_dir_all(reports_dir)
        .with_context(|| format!("creating {}", reports_dir.display()))?;
    let path = reports_dir.join("summary.md");
    write_atomic(&path, md.as_bytes())?;
    Ok(path)
}
