//! The summary table: one Markdown row per stored run.

use std::collections::HashMap;
use std::fmt::Write as _;

use polars::prelude::*;

use crate::fmt::{fixed, int, percent, text, DASH};
use crate::load::{floats, ints, strings, Results};

/// How much top-1 (a fraction: 0.01 = 1 percentage point) a step may lose against the model with
/// every layer at the high pair and still count for the "best trade-off" column.
pub const TRADE_OFF_TOLERANCE: f64 = 0.01;

/// Allowance for floating-point rounding when comparing against the tolerance, so that a step
/// exactly 1 point below qualifies.
const EPS: f64 = 1e-9;

/// One point of a run's search path: a step, its relative size and top-1 (a fraction).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TradeOff {
    pub step: Option<i64>,
    pub rel_size: f64,
    pub top1: f64,
}

/// The run's best trade-off: among `steps`, those whose top-1 is at least
/// `int8_top1 - TRADE_OFF_TOLERANCE`, the one with the smallest relative size; ties go to the
/// higher top-1, then the earlier step. Points with a NaN are ignored. `None` when no step
/// qualifies (or there are none).
pub fn best_trade_off(steps: &[TradeOff], int8_top1: f64) -> Option<TradeOff> {
    let floor = int8_top1 - TRADE_OFF_TOLERANCE - EPS;
    smallest(
        steps
            .iter()
            .filter(|p| !p.rel_size.is_nan() && !p.top1.is_nan() && p.top1 >= floor),
    )
}

/// The smallest model among `points` (relative size), ties to the higher top-1, then the
/// earlier step: the order every "smallest model that ..." rule of the reports uses.
pub(crate) fn smallest<'a>(points: impl Iterator<Item = &'a TradeOff>) -> Option<TradeOff> {
    points
        .min_by(|a, b| {
            a.rel_size
                .total_cmp(&b.rel_size)
                .then(b.top1.total_cmp(&a.top1))
                .then(a.step.cmp(&b.step))
        })
        .copied()
}

/// The steps of every run, as trade-off points keyed by run_id.
fn points_by_run(steps: &DataFrame) -> PolarsResult<HashMap<String, Vec<TradeOff>>> {
    let run_id = strings(steps, "run_id")?;
    let step = ints(steps, "step")?;
    let rel = floats(steps, "rel_size")?;
    let top1 = floats(steps, "top1")?;
    let mut map: HashMap<String, Vec<TradeOff>> = HashMap::new();
    for i in 0..steps.height() {
        if let (Some(id), Some(rel_size), Some(top1)) = (&run_id[i], rel[i], top1[i]) {
            map.entry(id.clone()).or_default().push(TradeOff {
                step: step[i],
                rel_size,
                top1,
            });
        }
    }
    Ok(map)
}

struct Row {
    experiment: Option<String>,
    started_at: Option<String>,
    run_id: Option<String>,
    cells: Vec<String>,
}

const HEADER: [(&str, bool); 13] = [
    ("experiment", false),
    ("arch", false),
    ("pair", false),
    ("strategy", false),
    ("beta", true),
    ("FP32 top-1 (%)", true),
    ("INT8 top-1 (%)", true),
    ("layers", true),
    ("evaluations", true),
    ("wall time (s)", true),
    ("best rel. size", true),
    ("best top-1 (%)", true),
    ("run_id", false),
];

/// The summary of all runs as Markdown: a title, a caption stating the rules, and a table with
/// one row per run, sorted by experiment, then start time (then run_id). Columns: experiment,
/// arch, low pair, strategy, beta (4 decimals), FP32 and all-high-pair (INT8, W8A8) top-1 in %
/// (2 decimals), number of layers, evaluations, wall time in s (1 decimal), the best trade-off's
/// relative size (4 decimals) and top-1 in % (see [`best_trade_off`]) and the run_id. Missing
/// values are shown as `—`. With no runs, the table has a single row saying so.
pub fn summary_markdown(r: &Results) -> anyhow::Result<String> {
    let runs = &r.runs;
    let points = points_by_run(&r.steps)?;
    let run_id = strings(runs, "run_id")?;
    let experiment = strings(runs, "experiment")?;
    let arch = strings(runs, "arch")?;
    let pair = strings(runs, "pair")?;
    let strategy = strings(runs, "strategy")?;
    let started_at = strings(runs, "started_at")?;
    let beta = floats(runs, "beta")?;
    let fp32 = floats(runs, "fp32_top1")?;
    let int8 = floats(runs, "int8_top1")?;
    let wall = floats(runs, "wall_s")?;
    let n_layers = ints(runs, "n_layers")?;
    let evals = ints(runs, "evals")?;

    let mut rows: Vec<Row> = (0..runs.height())
        .map(|i| {
            let best = match (&run_id[i], int8[i]) {
                (Some(id), Some(int8)) => points.get(id).and_then(|p| best_trade_off(p, int8)),
                _ => None,
            };
            Row {
                experiment: experiment[i].clone(),
                started_at: started_at[i].clone(),
                run_id: run_id[i].clone(),
                cells: vec![
                    text(&experiment[i]),
                    text(&arch[i]),
                    text(&pair[i]),
                    text(&strategy[i]),
                    fixed(beta[i], 4),
                    percent(fp32[i]),
                    percent(int8[i]),
                    int(n_layers[i]),
                    int(evals[i]),
                    fixed(wall[i], 1),
                    fixed(best.map(|b| b.rel_size), 4),
                    percent(best.map(|b| b.top1)),
                    text(&run_id[i]),
                ],
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        (&a.experiment, &a.started_at, &a.run_id).cmp(&(&b.experiment, &b.started_at, &b.run_id))
    });

    let mut md = String::new();
    md.push_str("# Summary of runs\n\n");
    let _ = writeln!(
        md,
        "Generated by `mpq report` from the Parquet files under `results/`; do not edit. \
         One row per finished run, sorted by experiment, then start time (UTC). \
         Top-1 is measured on the run's search images, in percent. \
         *pair*: the low bit pair the search moves layers to; \
         *INT8*: every layer at the high pair (W8A8); \
         *evaluations*: configurations evaluated by the search (the all-W8A8 evaluation not counted). \
         *Best trade-off* (*best rel. size*, *best top-1*): among the run's search steps, step 0 \
         included, those whose top-1 is at most {:.0} point below the INT8 top-1; of these, the \
         one with the smallest relative size (model size in bits / FP32 size), ties to the higher \
         top-1, then the earlier step. `{DASH}`: not recorded.\n",
        100.0 * TRADE_OFF_TOLERANCE
    );
    let names: Vec<&str> = HEADER.iter().map(|h| h.0).collect();
    let _ = writeln!(md, "| {} |", names.join(" | "));
    let aligns: Vec<&str> = HEADER
        .iter()
        .map(|h| if h.1 { "---:" } else { "---" })
        .collect();
    let _ = writeln!(md, "|{}|", aligns.join("|"));
    if rows.is_empty() {
        let mut cells = vec![String::new(); HEADER.len()];
        cells[0] = "*No runs were found.*".to_string();
        let _ = writeln!(md, "| {} |", cells.join(" | "));
    }
    for row in &rows {
        let _ = writeln!(md, "| {} |", row.cells.join(" | "));
    }
    Ok(md)
}
