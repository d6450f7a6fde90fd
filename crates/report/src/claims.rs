//! `claims.md`: the paper's headline claims (`paper.toml`) beside what this project measured on
//! the same network (`paper_model`), pair and beta, with the differences; then greedy against
//! one-shot, and the greedy search's time. Every claim gets a verdict (reproduced / not
//! reproduced / inconclusive) by a written rule on held-out images (see `evidence`).
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
//! - greedy against the other post-training methods (`[greedy_vs_methods]`): every measured
//!   uniform run of another method standing for the claim's network at its pair, against
//!   every greedy run (spec's quantizer, all layers) on the same images, at greedy's
//!   first step no larger than the paper's W-comp; reproduced per pair when the paired interval
//!   of greedy's advantage lies above the margin, and overall when every method is;
//! - search time: the greedy runs standing for the networks of `[[search_time]]`;
//! - verdicts: a headline point is reproduced when the 95% paired interval of the held-out
//!   change at the paper's reduction lies at or above the paper's change, not reproduced when
//!   it lies below, inconclusive otherwise; greedy against one-shot is decided per pair of runs
//!   at the one-shot step where greedy's advantage on the search images is largest (chosen on
//!   the search images, judged on the held-out ones): reproduced when the 95% paired interval
//!   of the held-out advantage lies above the claim's margin, not reproduced when it lies at or
//!   below it; a network is reproduced when one of its pairs is, not reproduced when all are
//!   not; the claim needs `min_networks` networks; search time is judged only for the paper's
//!   own network on a GPU with the paper's image count (within twice the paper's hours), and is
//!   inconclusive (not comparable) otherwise.

use std::fmt::Write as _;

use crate::baselines::{Baselines, PaperResult};
use crate::evidence::{pct_ci, PairedChange, Verdict};
use crate::fmt::{cell, fixed, int, signed, Align, Table, DASH, NOT_RUN};
use crate::plan::{Entry, RunResult, Score};
use crate::rules::{
    first_reaching_reduction, greedy_advantage, reduction_pct, smallest_within_change,
};
use mpq_vocab::{ArchName, BetaSetting, BitPair, StrategyName};

/// The held-out change of step `k` of `r` against the run's FP32 model (same images).
fn change_vs_fp32(r: &RunResult, k: Option<i64>) -> Option<PairedChange> {
    let s = r.step(k)?;
    PairedChange::of(&r.step_correct(s)?, &r.fp32_correct()?)
}

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
                && e.plan.uses_spec_quantizer()
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

const HEADLINE: [(&str, Align); 13] = [
    ("paper: model, pair, search, β (figure)", Align::Left),
    ("paper: size reduction (%)", Align::Right),
    ("paper: change (points)", Align::Right),
    ("this project: run", Align::Left),
    ("β", Align::Left),
    ("scored on", Align::Left),
    ("at step (reduction %)", Align::Right),
    ("top-1 there (%) [95% Wilson]", Align::Right),
    ("change there (points) [95% paired]", Align::Right),
    ("Δ change (points)", Align::Right),
    ("verdict (change ≥ paper's)", Align::Left),
    (
        "reduction within the paper's change on the search images (%)",
        Align::Right,
    ),
    ("at step (change there, points)", Align::Right),
];

/// Step `k`'s change against the run's FP32 model on `score`'s images: on the held-out
/// images with its paired interval, on the search images the difference alone.
fn change_cell(r: &RunResult, k: Option<i64>, score: Score) -> (String, Option<f64>) {
    match score {
        Score::HeldOut => match change_vs_fp32(r, k) {
            Some(c) => (c.cell(), Some(c.points)),
            None => (DASH.to_string(), None),
        },
        Score::Search => match r.step(k) {
            Some(s) => {
                let c = 100.0 * (s.top1 - r.run.fp32_top1);
                (format!("{c:+.3}"), Some(c))
            }
            None => (DASH.to_string(), None),
        },
    }
}

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
                row.extend(std::iter::repeat_n(DASH.to_string(), 9));
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
                    row.extend(std::iter::repeat_n(NOT_RUN.to_string(), 8));
                    t.push(row);
                    continue;
                };
                // Held-out images when the run has them, else the search images.
                let score = Score::of([res]);
                let n = res.images(score);
                row.push(match score {
                    Score::HeldOut => format!("{n} held-out images"),
                    Score::Search => format!("{n} search images"),
                });
                // The step is chosen by its size alone, so its held-out change is unbiased.
                let pts = res.points(Score::Search);
                let at = first_reaching_reduction(&pts, red);
                row.push(at.map_or(DASH.to_string(), |p| {
                    format!("{} ({:.2})", int(p.step), reduction_pct(&p))
                }));
                let step = at.and_then(|p| res.step(p.step));
                row.push(pct_ci(
                    step.and_then(|s| crate::plan::step_top1(s, score)),
                    n,
                ));
                let (change, points) = change_cell(res, at.and_then(|p| p.step), score);
                row.push(change);
                row.push(signed(points.map(|c| c - chg), 3));
                row.push(match (at, score) {
                    (None, _) => format!("{} (no step this small)", Verdict::Inconclusive),
                    (Some(_), Score::Search) => {
                        format!("{} (no held-out scores)", Verdict::Inconclusive)
                    }
                    (Some(p), Score::HeldOut) => match change_vs_fp32(res, p.step) {
                        Some(c) => Verdict::at_least(c.interval, chg).to_string(),
                        None => format!("{} (no held-out scores)", Verdict::Inconclusive),
                    },
                });
                // Chosen on the search images (the search's own numbers), scored held out.
                let within = smallest_within_change(&pts, res.run.fp32_top1, chg);
                row.push(fixed(within.map(|p| reduction_pct(&p)), 2));
                row.push(within.map_or(DASH.to_string(), |p| {
                    format!("{} ({})", int(p.step), change_cell(res, p.step, score).0)
                }));
                t.push(row);
            }
        }
    }
    t
}

const VERSUS: [(&str, Align); 11] = [
    ("network", Align::Left),
    ("pair", Align::Left),
    ("greedy run", Align::Left),
    ("one-shot run", Align::Left),
    ("one-shot steps compared", Align::Right),
    (
        "largest advantage on the search images (points)",
        Align::Right,
    ),
    ("at one-shot step (size MB)", Align::Right),
    ("mean advantage on the search images (points)", Align::Right),
    (
        "held-out advantage there (points) [95% paired]",
        Align::Right,
    ),
    ("McNemar p", Align::Right),
    ("verdict (advantage > margin)", Align::Left),
];

/// Greedy's step compared with one-shot's step `k`: greedy's best step on the search images
/// among those no larger (the same rule as [`greedy_advantage`]), then both on the held-out
/// images, image by image.
fn held_out_advantage(g: &RunResult, o: &RunResult, k: Option<i64>) -> Option<PairedChange> {
    let os = o.step(k)?;
    let gs = g
        .steps
        .iter()
        .filter(|s| s.rel_size <= os.rel_size + crate::rules::EPS && s.top1.is_finite())
        .min_by(|a, b| b.top1.total_cmp(&a.top1).then(a.step.cmp(&b.step)))?;
    if g.run.test_digest.is_none() || g.run.test_digest != o.run.test_digest {
        return None;
    }
    PairedChange::of(&g.step_correct(gs)?, &o.step_correct(os)?)
}

fn versus_section(md: &mut String, entries: &[Entry], b: &Baselines) {
    let claim = &b.paper.greedy_vs_one_shot;
    let margin = claim.min_advantage_points;
    let mut t = Table::new(&VERSUS);
    // Per network (its label): the verdicts of its pairs of runs.
    let mut networks: Vec<(String, Vec<Verdict>)> = Vec::new();
    let full: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.full_ground_set() && e.plan.uses_spec_quantizer())
        .collect();
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
                    row.extend(std::iter::repeat_n(NOT_RUN.to_string(), 7));
                    t.push(row);
                    continue;
                };
                let adv =
                    greedy_advantage(&gr.points(Score::Search), &or.points(Score::Search), margin);
                let (verdict, why) = match adv {
                    None => {
                        row.extend(std::iter::repeat_n(DASH.to_string(), 6));
                        (Verdict::Inconclusive, " (no step to compare)")
                    }
                    Some(a) => {
                        let size = or.step(a.max_step).map(crate::plan::size_mb);
                        row.push(a.compared.to_string());
                        row.push(signed(Some(a.max_points), 3));
                        row.push(format!("{} ({})", int(a.max_step), fixed(size, 4)));
                        row.push(signed(Some(a.mean_points), 3));
                        match held_out_advantage(gr, or, a.max_step) {
                            Some(c) => {
                                row.push(c.cell());
                                row.push(format!("{:.3}", c.p_value));
                                (Verdict::above(c.interval, margin), "")
                            }
                            None => {
                                row.extend(std::iter::repeat_n(DASH.to_string(), 2));
                                (Verdict::Inconclusive, " (no paired held-out scores)")
                            }
                        }
                    }
                };
                row.push(format!("{verdict}{why}"));
                t.push(row);
                let label = g.plan.model_label();
                match networks.iter_mut().find(|(a, _)| *a == label) {
                    Some((_, v)) => v.push(verdict),
                    None => networks.push((label, vec![verdict])),
                }
            }
        }
    }
    let _ = writeln!(md, "## Greedy against one-shot\n");
    let _ = writeln!(
        md,
        "Paper: {}. Measured per network and pair, for every greedy run (all layers) against \
         every one-shot run: at each one-shot step k >= 1, greedy's top-1 at that size is the best \
         top-1 among greedy's steps no larger (relative size <= the one-shot step's), and the \
         advantage is that minus one-shot's top-1, in points, on the search images. *Largest* \
         and *mean* are over the one-shot steps.\n\n\
         **Verdict rule.** The comparison is chosen on the search images and judged on the \
         held-out images: at the one-shot step of the largest advantage, greedy's chosen step \
         and one-shot's step are scored on the same held-out images, and the advantage gets a \
         95% paired bootstrap interval (images resampled, {} resamples) and the exact McNemar \
         p-value of the discordant images. A pair of runs *reproduces* the claim when the whole \
         interval lies above {} point(s), *does not* when it lies at or below, and is \
         *inconclusive* otherwise (or without held-out scores on the same images). A network is \
         reproduced when one of its pairs is, not reproduced when all are not, inconclusive \
         otherwise; the claim needs at least {} network(s) reproduced, and is not reproduced \
         when fewer than that are reproduced or inconclusive.\n",
        claim.claim,
        crate::evidence::BOOTSTRAP_RESAMPLES,
        paper_num(margin),
        claim.min_networks,
    );
    md.push_str(&t.render("*No network has both a greedy and a one-shot run planned.*"));
    if networks.is_empty() {
        let _ = writeln!(
            md,
            "\nVerdict: {} (no network has both a greedy and a one-shot run).",
            Verdict::Inconclusive
        );
        return;
    }
    let per: Vec<(String, Verdict)> = networks
        .iter()
        .map(|(n, v)| (n.clone(), network_verdict(v)))
        .collect();
    let verdicts: Vec<Verdict> = per.iter().map(|p| p.1).collect();
    let overall = Verdict::at_least_parts(&verdicts, claim.min_networks as usize);
    let list: Vec<String> = per.iter().map(|(n, v)| format!("{n}: {v}")).collect();
    let _ = writeln!(
        md,
        "\nPer network: {}. The claim needs at least {} network(s). Verdict: **{overall}**.",
        cell(&list.join("; ")),
        claim.min_networks
    );
}

const METHODS: [(&str, Align); 10] = [
    ("network", Align::Left),
    ("greedy run", Align::Left),
    ("method run", Align::Left),
    ("greedy step (W-comp)", Align::Right),
    ("greedy top-1 (%) [95% Wilson]", Align::Right),
    ("method W-comp", Align::Right),
    ("method top-1 (%) [95% Wilson]", Align::Right),
    ("greedy − method (points) [95% paired]", Align::Right),
    ("McNemar p", Align::Right),
    ("verdict", Align::Left),
];

/// Greedy against the other post-training methods (`[greedy_vs_methods]`), on the measured
/// uniform runs (`crate::methods`).
fn methods_section(md: &mut String, entries: &[Entry], b: &Baselines) {
    let claim = &b.paper.greedy_vs_methods;
    let margin = claim.min_advantage_points;
    let reduction = 100.0 * (1.0 - claim.w_comp);
    let mut t = Table::new(&METHODS);
    // Per method: the verdicts of its pairs of runs.
    let mut per_method: Vec<(String, Vec<Verdict>)> = Vec::new();
    let methods: Vec<_> = crate::methods::measured(entries)
        .into_iter()
        .filter(|m| {
            m.entry.plan.stands_for(claim.model)
                && m.entry.plan.pair == claim.pair
                && !m.entry.plan.uses_spec_quantizer()
        })
        .collect();
    for m in &methods {
        for g in crate::methods::greedy_beside(entries, m) {
            if !g.plan.uses_spec_quantizer() {
                continue;
            }
            let gr = g.result.as_ref().expect("finished");
            let score = Score::of([gr, m.run]);
            let mut row = vec![
                cell(&g.plan.model_label()),
                cell(&format!("{} [{}]", g.label(), g.plan.experiment)),
                cell(&format!(
                    "{} [{}]",
                    m.entry.label(),
                    m.entry.plan.experiment
                )),
            ];
            let step = first_reaching_reduction(&gr.points(Score::Search), reduction)
                .and_then(|p| Some((p, gr.step(p.step)?)));
            let verdict = match step {
                None => {
                    row.extend(std::iter::repeat_n(DASH.to_string(), 6));
                    Verdict::Inconclusive
                }
                Some((p, s)) => {
                    row.push(format!("{} ({})", int(p.step), fixed(Some(p.rel_size), 4)));
                    row.push(pct_ci(crate::plan::step_top1(s, score), gr.images(score)));
                    row.push(fixed(Some(m.step.rel_size), 4));
                    row.push(pct_ci(m.top1(score), m.run.images(score)));
                    let paired = gr
                        .step_correct(s)
                        .zip(m.run.step_correct(m.step))
                        .and_then(|(a, c)| PairedChange::of(&a, &c));
                    match paired {
                        Some(c) => {
                            row.push(c.cell());
                            row.push(format!("{:.3}", c.p_value));
                            Verdict::above(c.interval, margin)
                        }
                        None => {
                            row.push(format!(
                                "{:+.3} (search images)",
                                100.0 * (s.top1 - m.step.top1)
                            ));
                            row.push(DASH.to_string());
                            Verdict::Inconclusive
                        }
                    }
                }
            };
            row.push(verdict.to_string());
            t.push(row);
            let label = m.entry.plan.method.to_string();
            match per_method.iter_mut().find(|(a, _)| *a == label) {
                Some((_, v)) => v.push(verdict),
                None => per_method.push((label, vec![verdict])),
            }
        }
    }
    let _ = writeln!(md, "## Greedy against the other post-training methods\n");
    let _ = writeln!(
        md,
        "Paper: {}. Measured on the suite's network standing for {} at {}: every finished \
         uniform run of a method other than the spec's quantizer (`quant.method`, one \
         configuration: every layer at the pair) against every greedy run with the spec's \
         quantizer over all layers of the same network and pair scored on the same images \
         (the same held-out images, or for runs without them the same data settings). \
         Greedy's operating point is chosen by size alone, as the paper's table sets it: the \
         first step whose relative size is at most the paper's W-comp, {} (a larger model than \
         the methods' uniform 4-bit one, as in the paper). The advantage is greedy's \
         top-1 there minus the method's, image by image on the held-out images (both runs' FP32 \
         model is the same, so it is also the difference of their changes).\n\n\
         **Verdict rule.** Per pair of runs: *reproduced* when the whole 95% paired interval of \
         the advantage lies above {} point(s), *not reproduced* when it lies at or below, \
         *inconclusive* otherwise (or without paired held-out scores). A method is reproduced \
         when one of its pairs is, not reproduced when all are not; the claim (\"each of the \
         other methods\") needs every measured method reproduced, and is not reproduced as soon \
         as one is not.\n",
        claim.claim,
        claim.model,
        claim.pair,
        paper_num(claim.w_comp),
        paper_num(margin),
    );
    md.push_str(
        &t.render("*No measured method has a greedy run of the same network, pair and images.*"),
    );
    if per_method.is_empty() {
        let _ = writeln!(
            md,
            "\nVerdict: {} (nothing to compare).",
            Verdict::Inconclusive
        );
        return;
    }
    let per: Vec<(String, Verdict)> = per_method
        .iter()
        .map(|(n, v)| (n.clone(), network_verdict(v)))
        .collect();
    let verdicts: Vec<Verdict> = per.iter().map(|p| p.1).collect();
    let overall = Verdict::at_least_parts(&verdicts, verdicts.len());
    let list: Vec<String> = per.iter().map(|(n, v)| format!("{n}: {v}")).collect();
    let _ = writeln!(
        md,
        "\nPer method: {}. Verdict: **{overall}**.",
        cell(&list.join("; "))
    );
}

/// A group's verdict from its pairs': reproduced when one is, not reproduced when all are not,
/// inconclusive otherwise.
fn network_verdict(v: &[Verdict]) -> Verdict {
    if v.contains(&Verdict::Reproduced) {
        Verdict::Reproduced
    } else if v.iter().all(|x| *x == Verdict::NotReproduced) {
        Verdict::NotReproduced
    } else {
        Verdict::Inconclusive
    }
}

const TIME: [(&str, Align); 11] = [
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
    ("verdict (≤ 2 × the paper's time)", Align::Left),
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
                    && e.plan.uses_spec_quantizer()
            })
            .collect();
        if runs.is_empty() {
            let mut row = paper.to_vec();
            row.push("no planned run".to_string());
            row.extend(std::iter::repeat_n(DASH.to_string(), 8));
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
                None => row.extend(std::iter::repeat_n(NOT_RUN.to_string(), 8)),
                Some(r) => {
                    let i = &r.run;
                    let comparable = !e.plan.is_stand_in()
                        && i.device.starts_with("cuda")
                        && i.n_search_images == st.images;
                    let verdict = if !comparable {
                        format!(
                            "{} (not comparable: {})",
                            Verdict::Inconclusive,
                            if e.plan.is_stand_in() {
                                "stand-in network"
                            } else if !i.device.starts_with("cuda") {
                                "not on a GPU"
                            } else {
                                "other image count"
                            }
                        )
                    } else if i.wall_s / 3600.0 <= 2.0 * st.hours {
                        Verdict::Reproduced.to_string()
                    } else {
                        Verdict::NotReproduced.to_string()
                    };
                    row.push(cell(&i.device));
                    row.push(i.n_search_images.to_string());
                    row.push(i.evals.to_string());
                    row.push(fixed(Some(i.work), 1));
                    row.push(fixed(Some(i.wall_s), 1));
                    row.push(fixed(Some(i.wall_s / 3600.0), 3));
                    let per = (i.evals > 0).then(|| i.wall_s / i.evals as f64);
                    row.push(fixed(per, 3));
                    row.push(verdict);
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
         reference evaluations, search and held-out scoring), *s per evaluation* is wall time / \
         evaluations; the top-1 of each evaluation is measured on the *search images* column's \
         images. \
         **Verdict rule**: only a run of the paper's own network on a GPU with the paper's image \
         count is comparable: reproduced when its wall time is at most twice the paper's, not \
         reproduced otherwise; any other run is inconclusive (not comparable).\n"
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
         own FP32 top-1, in points; size reductions are 100 × (1 − relative size) in percent. \
         Unless a column says otherwise, accuracies are measured on the run's *held-out* images \
         (images neither calibration nor search saw; `runs.n_test_images`), a top-1 with its \
         95% Wilson interval, and a change between two configurations on the same held-out \
         images with its 95% paired bootstrap interval (images resampled, {} resamples, seed \
         {}). Steps are chosen on the search images or by size, never on the held-out images \
         they are judged on. Verdicts: *reproduced* when the interval supports the claim, *not \
         reproduced* when it contradicts it, *inconclusive* when it contains the claim's \
         threshold (or the scores needed are missing). `{NOT_RUN}`: a planned run without a \
         result; `{DASH}`: no value.\n",
        crate::evidence::BOOTSTRAP_RESAMPLES,
        crate::evidence::BOOTSTRAP_SEED
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
         the step is the first whose size reduction reaches r (chosen by size alone), with its \
         top-1 and its change against the FP32 model, on the held-out images with a 95% paired \
         interval (*scored on*: the run's search images, without an interval, when it has no \
         held-out scores, as the paper suite's runs, which search on every image); *reduction \
         within the paper's change* is the size reduction of the smallest model (any step) \
         whose change on the search images is no worse than c (ties: higher top-1, then earlier \
         step), with that step's change. Δ = change − paper.\n\n\
         **Verdict rule** (per operating point and run): the paper claims a change no worse \
         than c at reduction r. *Reproduced* when the whole 95% interval of the held-out change \
         lies at or above c, *not reproduced* when it lies below c, *inconclusive* when it \
         contains c, when the run has no step that small, or without held-out scores.\n"
    );
    md.push_str(&headline_table(entries, b).render(""));
    md.push('\n');
    versus_section(&mut md, entries, b);
    md.push('\n');
    methods_section(&mut md, entries, b);
    md.push('\n');
    time_section(&mut md, entries, b);
    md
}
