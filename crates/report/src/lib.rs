//! Reports from stored results: reads the Parquet tables of finished runs and writes Markdown
//! tables and SVG figures under `reports/`: the paper's figures 4-7 and table 1, its claims
//! beside this project's measurements, the search cost and the gap to the exhaustive optimum.
//!
//! Job and invariants:
//! - knows nothing of candle or of running models: its only inputs are the Parquet layout
//!   documented in `results/README.md` (`results/<experiment>/<run_id>/{steps,runs,...}.parquet`)
//!   and the TOML files of `experiments/baselines/` (published numbers);
//! - the caller decides which runs are current and passes a plan ([`PlannedRun`]); a planned run
//!   without a result is "not run" in every table and absent from the figures;
//! - a run directory without `runs.parquet` is an unfinished run and is skipped by
//!   [`load_results`], as are dot-files and dot-directories (temporary files of writers);
//! - every file it writes is written atomically (temporary file in the same directory, then a
//!   rename), see [`write_atomic`];
//! - it never invents a number: a value missing from the tables is shown as `—`, and the only
//!   numbers not measured by this project are the published ones of `experiments/baselines/`;
//! - deterministic: the same input gives the same bytes (no timestamps, stable orders).
//!
//! Entry points: [`write_reports`] (everything, per suite of a plan), [`write_report`] (the
//! older single `summary.md` of every run under `results/`), [`load_results`],
//! [`summary_markdown`], [`load_baselines`], the selection rules of [`rules`], and
//! [`query::query`] (SQL over every run's tables, `mpq query`).

mod baselines;
mod claims;
mod figures;
mod fmt;
mod fsutil;
mod load;
mod plan;
pub mod query;
mod reports;
pub mod rules;
mod summary;
mod tables;

use std::path::{Path, PathBuf};

use anyhow::Context;

pub use baselines::{
    load_baselines, Baselines, GreedyVsOneShot, Method, Paper, PaperResult, SearchTime, Table1,
};
pub use figures::{curve_color_hex, figure_number, FIG7_Y_MARGIN};
pub use fmt::{DASH, NOT_RUN};
pub use fsutil::write_atomic;
pub use load::{load_results, load_table, Results};
pub use plan::PlannedRun;
pub use reports::{size_figure_name, write_reports};
pub use summary::{best_trade_off, summary_markdown, TradeOff, TRADE_OFF_TOLERANCE};

/// Loads `results_dir` and writes `reports_dir/summary.md` (creating `reports_dir`), atomically:
/// one row per finished run found under `results_dir`, current or not. Returns the path written.
/// [`write_reports`] writes the per-suite reports of a plan.
pub fn write_report(results_dir: &Path, reports_dir: &Path) -> anyhow::Result<PathBuf> {
    let results = load_results(results_dir)?;
    let md = summary_markdown(&results)?;
    std::fs::create_dir_all(reports_dir)
        .with_context(|| format!("creating {}", reports_dir.display()))?;
    let path = reports_dir.join("summary.md");
    write_atomic(&path, md.as_bytes())?;
    Ok(path)
}
