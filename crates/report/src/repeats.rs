//! Repeated experiments: the runs of one experiment repeated over seeds (`experiment.repeats`
//! above 1: repeat r uses experiment.seed + r, data.seed + r and data.subset_seed + r), summarised
//! step by step: the mean, the sample standard deviation and the Student-t 95% interval of the
//! mean over the repeats ([`mpq_stats::MeanSummary`]). Figures draw the mean as the curve and
//! the interval as a band; `summary.md` lists the numbers.
//!
//! Rules: the planned runs with a repeat index (`PlannedRun::repeat`) and the same suite and
//! experiment form one repeated experiment; its finished runs are summarised when there are at
//! least two. A step is summarised when every finished repeat has it; its size is the mean of
//! the repeats' sizes (the layers chosen may differ between repeats), its top-1 is measured on
//! the held-out images when every repeat has them, else on the search images
//! ([`Score::of`]), and its change is each repeat's top-1 minus that repeat's FP32 top-1.

use std::fmt::Write as _;

use mpq_stats::{MeanSummary, LEVEL_95};

use crate::fmt::{cell, fixed, Align, Table, NOT_RUN};
use crate::plan::{size_mb, step_top1, Entry, Score};

/// One step of a repeated experiment over its finished repeats.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StepSummary {
    pub step: u32,
    pub size_mb: f64,
    pub rel_size: f64,
    /// Top-1 in percent.
    pub top1: MeanSummary,
    /// Top-1 minus each repeat's FP32 top-1, in points.
    pub change: MeanSummary,
}

/// A repeated experiment of a suite.
#[derive(Clone, Debug)]
pub(crate) struct Repeated<'e, 'a> {
    pub experiment: String,
    /// Every planned repeat, in repeat order (finished or not).
    pub entries: Vec<&'e Entry<'a>>,
    pub score: Score,
    /// Empty when fewer than two repeats have finished.
    pub steps: Vec<StepSummary>,
}

impl Repeated<'_, '_> {
    pub fn finished(&self) -> usize {
        self.entries.iter().filter(|e| e.result.is_some()).count()
    }
}

/// The repeated experiments among `entries`, in table order of their first repeat.
pub(crate) fn repeated<'e, 'a>(entries: &'e [Entry<'a>]) -> Vec<Repeated<'e, 'a>> {
    let mut out: Vec<Repeated> = Vec::new();
    for e in entries.iter().filter(|e| e.plan.repeat.is_some()) {
        match out.iter_mut().find(|r| r.experiment == e.plan.experiment) {
            Some(r) => r.entries.push(e),
            None => out.push(Repeated {
                experiment: e.plan.experiment.clone(),
                entries: vec![e],
                score: Score::Search,
                steps: vec![],
            }),
        }
    }
    for r in &mut out {
        r.entries.sort_by_key(|e| e.plan.repeat);
        let done: Vec<_> = r.entries.iter().filter_map(|e| e.result.as_ref()).collect();
        r.score = Score::of(done.iter().copied());
        if done.len() < 2 {
            continue;
        }
        let steps: Vec<u32> = done[0].steps.iter().map(|s| s.step).collect();
        for k in steps {
            let rows: Vec<_> = done
                .iter()
                .filter_map(|d| {
                    let s = d.steps.iter().find(|s| s.step == k)?;
                    let t = step_top1(s, r.score)?;
                    let fp32 = d.fp32(r.score)?;
                    Some((size_mb(s), s.rel_size, 100.0 * t, 100.0 * (t - fp32)))
                })
                .collect();
            if rows.len() != done.len() {
                continue;
            }
            let col = |f: fn(&(f64, f64, f64, f64)) -> f64| rows.iter().map(f).collect::<Vec<_>>();
            let mean = |v: Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;
            let (Ok(top1), Ok(change)) = (
                MeanSummary::of(&col(|x| x.2), LEVEL_95),
                MeanSummary::of(&col(|x| x.3), LEVEL_95),
            ) else {
                continue;
            };
            r.steps.push(StepSummary {
                step: k,
                size_mb: mean(col(|x| x.0)),
                rel_size: mean(col(|x| x.1)),
                top1,
                change,
            });
        }
    }
    out
}

const REPEATS: [(&str, Align); 8] = [
    ("step", Align::Right),
    ("repeats", Align::Right),
    ("mean size (MB)", Align::Right),
    ("mean top-1 (%)", Align::Right),
    ("sd (points)", Align::Right),
    ("95% interval of the mean (%)", Align::Right),
    ("mean change (points)", Align::Right),
    ("95% interval of the mean change (points)", Align::Right),
];

/// The `## Repeated experiments` section of `summary.md` (empty when there are none).
pub(crate) fn repeats_markdown(entries: &[Entry]) -> String {
    let reps = repeated(entries);
    if reps.is_empty() {
        return String::new();
    }
    let mut md = String::new();
    let _ = writeln!(
        md,
        "## Repeated experiments\n\n\
         An experiment with `experiment.repeats` = k runs k times, repeat r with \
         experiment.seed + r, data.seed + r and data.subset_seed + r (other calibration, search \
         and held-out images). Per step present in every finished repeat: the mean over the \
         repeats of the model size and of the top-1 (held-out when every repeat has held-out \
         scores, else on the search images; stated per experiment), the sample standard \
         deviation, the Student-t 95% interval of the mean, and the same for the change \
         against each repeat's own FP32 top-1. Needs at least two finished repeats.\n"
    );
    for r in reps {
        let _ = writeln!(
            md,
            "### {} ({} of {} repeats finished; top-1 {})\n",
            cell(&r.experiment),
            r.finished(),
            r.entries.len(),
            r.score.describe()
        );
        let runs: Vec<String> = r
            .entries
            .iter()
            .map(|e| {
                format!(
                    "repeat {}: {}",
                    e.plan.repeat.unwrap_or(0),
                    e.result
                        .as_ref()
                        .map_or(NOT_RUN.to_string(), |x| cell(&x.run.run_id))
                )
            })
            .collect();
        let _ = writeln!(md, "Runs: {}.\n", runs.join("; "));
        let mut t = Table::new(&REPEATS);
        for s in &r.steps {
            t.push(vec![
                s.step.to_string(),
                s.top1.k.to_string(),
                fixed(Some(s.size_mb), 4),
                fixed(Some(s.top1.mean), 2),
                fixed(Some(s.top1.sd), 2),
                format!("[{:.2}, {:.2}]", s.top1.interval.lo, s.top1.interval.hi),
                format!("{:+.2}", s.change.mean),
                format!(
                    "[{:+.2}, {:+.2}]",
                    s.change.interval.lo, s.change.interval.hi
                ),
            ]);
        }
        md.push_str(&t.render("*Fewer than two repeats have finished.*"));
        md.push('\n');
    }
    md
}
