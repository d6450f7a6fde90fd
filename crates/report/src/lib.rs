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
//! - it reads runs as the vocabulary's row types (`mpq_vocab::rows`, through `mpq_tables`), the
//!   same types the runner writes;
//! - every file it writes is written atomically (`mpq_io`);
//! - it never invents a number: a value missing from the tables is shown as `—`, and the only
//!   numbers not measured by this project are the published ones of `experiments/baselines/`;
//! - deterministic: the same input gives the same bytes (no timestamps, stable orders).
//!
//! Entry points: [`write_reports`] (everything, per suite of a plan), [`load_baselines`], the
//! selection rules of [`rules`], and [`query::query`] (SQL over every run's tables, `mpq
//! query`).

mod baselines;
mod claims;
mod evidence;
mod figures;
mod fmt;
mod methods;
mod plan;
pub mod query;
mod repeats;
mod reports;
pub mod rules;
mod summary;
mod tables;

pub use baselines::{
    load_baselines, Baselines, GreedyVsMethods, GreedyVsOneShot, Method, Paper, PaperResult,
    SearchTime, Table1,
};
pub use evidence::{Verdict, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED};
pub use figures::{curve_color_hex, figure_number, FIG7_Y_MARGIN};
pub use fmt::{DASH, NOT_RUN};
pub use plan::PlannedRun;
pub use reports::{size_figure_name, write_reports};
pub use rules::TradeOff;
pub use summary::{best_trade_off, TRADE_OFF_TOLERANCE};
