//! `claims.md`: the paper's headline claims (`paper.toml`) beside what this project measured on
//! the same network (`paper_model`), pair and beta, with the differences; then greedy against
//! one-shot, and the greedy search's time.
//!
//! Rules (stated in the file too):
//! - runs compared with a headline result: the suite's greedy runs over all layers whose
//!   `paper_model` is the result's model and whose pair is its pair; of these, those with the
//!   paper's beta (numerically) if any, else, for a zero beta none, and for a nonzero beta every
//!   run with a nonzero beta setting (`auto` or another number), marked "β differs";
//! - for each operating point (paper size reduction r, change c): the change at the first step
//!   whose size reduction reaches r ([`first_reaching_reduction`]), and the size reduction of the
//!   smallest model whose change is no worse than c ([`smallest_within_change`]); differences are
//!   measured minus paper;
//! - greedy against one-shot: [`greedy_advantage`] per (arch, pair), every greedy run over all
//!   layers against every one-shot run;
//! - search time: the greedy runs standing for the networks of `[[search_time]]`.

use std::fmt::Write as _;

use crate::baselines::{Baselines, PaperResult};
use crate::fmt::{cell, fixed, int, signed, Align, Table, DASH, NOT_RUN};
use crate::plan::Entry;
use crate::rules::{
    change_points, first_reaching_reduction, greedy_advantage, reduction_pct,
    smallest_within_change,
};
use mpq_vocab::{ArchName, BetaSetting, BitPair, StrategyName};

/// The run cell: `greedy β=0.02, resnet-tiny (stands for ResNet50) [experiment]`.
pub(crate) fn run_cell(e: &Entry) -> String {
    cell(&format!(
        "{}, {} [{}]",
        e.label(),
        e.plan.arch_label(),
        e.plan.experiment
    ))
}

/// A paper number as written in the TOML file (shortest decimal form).
fn paper_num(x: f64) -> String {
    format!("{x}")
}

/// The runs matching a headline result, and whether their beta differs from the paper's.
fn matching<'e, 'a>(r: &PaperResult, entries: &'e [Entry<'a>]) -> (Vec<&'e Entry<'a>>, bool) {
    let base: Vec<&Entry> = entries
        .iter()
        .filter(|e| {
            e.plan.stands_for(r.model)
                && e.plan.pair == r.pair
                && e.plan.strategy == r.search
                && e.full_ground_set()
        })
        .collect();
    let same: Vec<&Entry> = base
        .iter()
        .copied()
        .filter(|e| e.plan.beta == BetaSetting::Fixed(r.beta))
        .collect();
    if !same.is_empty() || r.beta == 0.0 {
        return (same, false);
    }
    let other: Vec<&Entry> = base
        .into_iter()
        .filter(|e| !e.plan.beta_is_zero())
        .collect();
    (other, true)
}

const HEADLINE: [(&str, Align); 11] = [
    ("paper: model, pair, search, β (figure)", Align::Left),
    ("paper: size reduction (%)", Align::Right),
    ("paper: change (points)", Align::Right),
    ("this project: run", Align::Left),
    ("β", Align::Left),
    ("change at the paper's reduction (points)", Align::Right),
    ("at step (reduction %)", Align::Right),
    ("Δ change (points)", Align::Right),
    ("reduction within the paper's change (%)", Align::Right),
    ("at step (change, points)", Align::Right),
    ("Δ reduction (points)", Align::Right),
];

fn headline_table(entries: &[Entry], b: &Baselines) -> Table {
    let mut t = Table::new(&HEADLINE);
    for r in &b.paper.result {
        let claim = format!(
            "{} {} {} β={} (fig. {})",
            r.model, r.pair, r.search, r.beta, r.figure
        );
        let (runs, differs) = matching(r, entries);
        for (&red, &chg) in r.size_reduction_pct.iter().zip(&r.accuracy_change_points) {
            let paper = [cell(&claim), paper_num(red), paper_num(chg)];
            if runs.is_empty() {
                let mut row = paper.to_vec();
                row.push("no planned run".to_string());
                row.extend(std::iter::repeat_n(DASH.to_string(), 7));
                t.push(row);
                continue;
            }
            for e in &runs {
                let mut row = paper.to_vec();
                row.push(run_cell(e));
                row.push(if differs {
                    format!("differs (paper {})", r.beta)
                } else {
                    "same".to_string()
                });
                let Some(res) = &e.result else {
                    row.extend(std::iter::repeat_n(NOT_RUN.to_string(), 6));
                    t.push(row);
                    continue;
                };
                let pts = res.trade_offs();
                let fp32 = res.run.fp32_top1;
                let at = first_reaching_reduction(&pts, red);
                let at_change = at.map(|p| change_points(&p, fp32));
                row.push(fixed(at_change, 3));
                row.push(at.map_or(DASH.to_string(), |p| {
                    format!("{} ({:.2})", int(p.step), reduction_pct(&p))
                }));
                row.push(signed(at_change.map(|c| c - chg), 3));
                let within = smallest_within_change(&pts, fp32, chg);
                let within_red = within.map(|p| reduction_pct(&p));
                row.push(fixed(within_red, 2));
                row.push(within.map_or(DASH.to_string(), |p| {
                    format!("{} ({:.3})", int(p.step), change_points(&p, fp32))
                }));
                row.push(signed(within_red.map(|x| x - red), 2));
                t.push(row);
            }
        }
    }
    t
}

const VERSUS: [(&str, Align); 9] = [
    ("network", Align::Left),
    ("pair", Align::Left),
    ("greedy run", Align::Left),
    ("one-shot run", Align::Left),
    ("one-shot steps compared", Align::Right),
    ("largest advantage (points)", Align::Right),
    ("at one-shot step (size MB)", Align::Right),
    ("mean advantage (points)", Align::Right),
    ("steps above the claim's margin", Align::Right),
];

fn versus_section(md: &mut String, entries: &[Entry], b: &Baselines) {
    let claim = &b.paper.greedy_vs_one_shot;
    let mut t = Table::new(&VERSUS);
    // (arch label, whether some greedy run's largest advantage exceeds the margin), per arch.
    let mut archs: Vec<(String, bool)> = Vec::new();
    let full: Vec<&Entry> = entries.iter().filter(|e| e.full_ground_set()).collect();
    let mut keys: Vec<(ArchName, BitPair)> =
        full.iter().map(|e| (e.plan.arch, e.plan.pair)).collect();
    keys.dedup();
    for (arch, pair) in keys {
        let in_group = |e: &&Entry| e.plan.arch == arch && e.plan.pair == pair;
        let greedy: Vec<&Entry> = full
            .iter()
            .copied()
            .filter(|e| in_group(e) && e.plan.strategy == StrategyName::Greedy)
            .collect();
        let one_shot: Vec<&Entry> = full
            .iter()
            .copied()
            .filter(|e| in_group(e) && e.plan.strategy == StrategyName::OneShot)
            .collect();
        for g in &greedy {
            for o in &one_shot {
                let mut row = vec![
                    cell(&g.plan.model_label()),
                    pair.to_string(),
                    cell(&format!("{} [{}]", g.label(), g.plan.experiment)),
                    cell(&format!("{} [{}]", o.label(), o.plan.experiment)),
                ];
                let (Some(gr), Some(or)) = (&g.result, &o.result) else {
                    row.extend(std::iter::repeat_n(NOT_RUN.to_string(), 5));
                    t.push(row);
                    continue;
                };
                let adv = greedy_advantage(
                    &gr.trade_offs(),
                    &or.trade_offs(),
                    claim.min_advantage_points,
                );
                let label = g.plan.model_label();
                let above = adv.is_some_and(|a| a.max_points > claim.min_advantage_points);
                match archs.iter_mut().find(|(a, _)| *a == label) {
                    Some((_, x)) => *x |= above,
                    None => archs.push((label, above)),
                }
                match adv {
                    None => row.extend(std::iter::repeat_n(DASH.to_string(), 5)),
                    Some(a) => {
                        let size = or.step(a.max_step).map(crate::plan::size_mb);
                        row.push(a.compared.to_string());
                        row.push(signed(Some(a.max_points), 3));
                        row.push(format!("{} ({})", int(a.max_step), fixed(size, 4)));
                        row.push(signed(Some(a.mean_points), 3));
                        row.push(a.above.to_string());
                    }
                }
                t.push(row);
            }
        }
    }
    let _ = writeln!(md, "## Greedy against one-shot\n");
    let _ = writeln!(
        md,
        "Paper: {}. Measured per network and pair, for every greedy run (all layers) against \
         every one-shot run: at each one-shot step k >= 1, greedy's top-1 at that size is the best \
         top-1 among greedy's steps no larger (relative size <= the one-shot step's), and the \
         advantage is that minus one-shot's top-1, in points. *Largest* and *mean* are over the \
         one-shot steps; *steps above the claim's margin* counts advantages above {} point(s).\n",
        claim.claim,
        paper_num(claim.min_advantage_points)
    );
    md.push_str(&t.render("*No network has both a greedy and a one-shot run planned.*"));
    let n = archs.len();
    let hit: Vec<&str> = archs.iter().filter(|a| a.1).map(|a| a.0.as_str()).collect();
    if n == 0 {
        let _ = writeln!(
            md,
            "\nMeasured: no network has both a finished greedy and a finished one-shot run."
        );
    } else {
        let _ = writeln!(
            md,
            "\nMeasured: greedy's largest advantage exceeds {} point(s) on {} of {} network(s) \
             compared{}. The paper's claim needs at least {}: {}.",
            paper_num(claim.min_advantage_points),
            hit.len(),
            n,
            if hit.is_empty() {
                String::new()
            } else {
                format!(" ({})", hit.join(", "))
            },
            claim.min_networks,
            if hit.len() >= claim.min_networks as usize {
                "reproduced here"
            } else {
                "not reproduced here"
            }
        );
    }
}

const TIME: [(&str, Align); 10] = [
    ("paper: network", Align::Left),
    ("paper: search time", Align::Left),
    ("this project: run", Align::Left),
    ("device", Align::Left),
    ("search images", Align::Right),
    ("evaluations", Align::Right),
    ("work (full evaluations)", Align::Right),
    ("wall time (s)", Align::Right),
    ("wall time (h)", Align::Right),
    ("s per evaluation", Align::Right),
];

fn time_section(md: &mut String, entries: &[Entry], b: &Baselines) {
    let mut t = Table::new(&TIME);
    for st in &b.paper.search_time {
        let paper = [
            st.model.to_string(),
            format!(
                "about {} h on {} GPU(s), {} images",
                paper_num(st.hours),
                st.gpus,
                st.images
            ),
        ];
        let runs: Vec<&Entry> = entries
            .iter()
            .filter(|e| {
                e.plan.stands_for(st.model)
                    && e.plan.strategy == StrategyName::Greedy
                    && e.full_ground_set()
            })
            .collect();
        if runs.is_empty() {
            let mut row = paper.to_vec();
            row.push("no planned run".to_string());
            row.extend(std::iter::repeat_n(DASH.to_string(), 7));
            t.push(row);
        }
        for e in runs {
            let mut row = paper.to_vec();
            row.push(cell(&format!(
                "{} {}, {} [{}]",
                e.label(),
                e.plan.pair,
                e.plan.arch_label(),
                e.plan.experiment
            )));
            match &e.result {
                None => row.extend(std::iter::repeat_n(NOT_RUN.to_string(), 7)),
                Some(r) => {
                    let i = &r.run;
                    row.push(cell(&i.device));
                    row.push(i.n_search_images.to_string());
                    row.push(i.evals.to_string());
                    row.push(fixed(Some(i.work), 1));
                    row.push(fixed(Some(i.wall_s), 1));
                    row.push(fixed(Some(i.wall_s / 3600.0), 3));
                    let per = (i.evals > 0).then(|| i.wall_s / i.evals as f64);
                    row.push(fixed(per, 3));
                }
            }
            t.push(row);
        }
    }
    let _ = writeln!(md, "## Search time\n");
    let _ = writeln!(
        md,
        "The paper's greedy search times beside this project's greedy runs (all layers) of the \
         same networks or their stand-ins. *Wall time* is the whole run (data, calibration, \
         reference evaluations and search), *s per evaluation* is wall time / evaluations; the \
         top-1 of each evaluation is measured on *search images* images.\n"
    );
    md.push_str(&t.render(""));
}

/// `claims.md` of one suite.
pub(crate) fn claims_markdown(suite: &str, entries: &[Entry], b: &Baselines) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# The paper's claims against this project ({suite} suite)\n\n\
         Generated by `mpq report` from the suite's current runs and \
         `experiments/baselines/paper.toml`; do not edit. Top-1 changes are against each run's \
         own FP32 top-1 on its search images, in points; size reductions are \
         100 × (1 − relative size) in percent. `{NOT_RUN}`: a planned run without a result; \
         `{DASH}`: no value.\n"
    );
    if entries.iter().any(|e| e.plan.is_stand_in()) {
        let _ = writeln!(
            md,
            "Runs marked *stands for* use a small network standing in for the paper's, so their \
             numbers are not ImageNet numbers of that network.\n"
        );
    }
    let _ = writeln!(md, "## Headline results (figures 4-6)\n");
    let _ = writeln!(
        md,
        "Runs compared with a paper result: the suite's greedy runs over all layers whose paper \
         model and pair are the result's; of these, the ones with the paper's beta, else (for a \
         nonzero paper beta) every run with a nonzero beta setting, `auto` included \
         (*β: differs*). For each of the paper's operating points (size reduction r, change c): \
         *change at the paper's reduction* is the change at the first step whose size reduction \
         reaches r; *reduction within the paper's change* is the size reduction of the smallest \
         model (any step) whose change is no worse than c (ties: higher top-1, then earlier \
         step). Δ = measured − paper.\n"
    );
    md.push_str(&headline_table(entries, b).render(""));
    md.push('\n');
    versus_section(&mut md, entries, b);
    md.push('\n');
    time_section(&mut md, entries, b);
    md
}
