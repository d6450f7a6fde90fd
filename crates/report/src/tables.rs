//! The Markdown tables besides the claims: table 1 (`table1.md`), the search cost
//! (`search-cost.md`), the gap to the exhaustive optimum (`exhaustive.md`) and the list of
//! planned runs (head of `summary.md`).

use std::fmt::Write as _;

use crate::baselines::Baselines;
use crate::claims::run_cell;
use crate::evidence::{pct_ci, PairedChange};
use crate::fmt::{cell, fixed, int, Align, Table, DASH, NOT_RUN};
use crate::methods::{answer, greedy_beside, groups, measured};
use crate::plan::{Entry, Score};
use crate::rules::{change_points, smallest_within_change};
use mpq_vocab::{ArchName, BitPair, PaperModel, StrategyName};

/// A pair as table 1 writes it, `4/4`.
fn w_a(pair: BitPair) -> String {
    format!("{}/{}", pair.w, pair.a)
}

/// The runs table 1 and figure 7 show for this project: the suite's greedy W4A4 runs over all
/// layers with the spec's quantizer whose paper model is ResNet50.
pub(crate) fn resnet50_w4a4_greedy<'e, 'a>(entries: &'e [Entry<'a>]) -> Vec<&'e Entry<'a>> {
    entries
        .iter()
        .filter(|e| {
            e.plan.stands_for(PaperModel::ResNet50)
                && e.plan.pair == BitPair::W4A4
                && e.plan.strategy == StrategyName::Greedy
                && e.full_ground_set()
                && e.plan.uses_spec_quantizer()
        })
        .collect()
}

const TABLE1: [(&str, Align); 8] = [
    ("method", Align::Left),
    ("year", Align::Right),
    ("W/A", Align::Left),
    ("baseline (%) [95% Wilson]", Align::Right),
    ("top-1 (%) [95% Wilson]", Align::Right),
    ("change (points) [95% paired]", Align::Right),
    ("W-comp", Align::Right),
    ("source", Align::Left),
];

/// The ImageNet validation images the literature's numbers were measured on.
const IMAGENET_VAL: u32 = 50_000;

const MEASURED: [(&str, Align); 9] = [
    ("method", Align::Left),
    ("settings", Align::Left),
    ("W-comp", Align::Right),
    ("top-1 (%) [95% Wilson]", Align::Right),
    ("change (points) [95% paired]", Align::Right),
    ("method time (s)", Align::Right),
    ("method iterations", Align::Right),
    ("scored on", Align::Left),
    ("run", Align::Left),
];

const ANSWER: [(&str, Align); 9] = [
    ("greedy run", Align::Left),
    ("within the change of", Align::Left),
    ("that change on the search images (points)", Align::Right),
    ("step", Align::Right),
    ("W-comp", Align::Right),
    ("top-1 (%) [95% Wilson]", Align::Right),
    ("change (points) [95% paired]", Align::Right),
    ("greedy − method (points) [95% paired]", Align::Right),
    ("McNemar p", Align::Right),
];

/// Table 1's measured part: per (arch, pair) with uniform runs, each method's configuration
/// and greedy's smallest model within each one's change (`crate::methods`).
fn measured_section(md: &mut String, entries: &[Entry]) {
    let all = measured(entries);
    let _ = writeln!(
        md,
        "## Measured on this suite's networks\n\n\
         Every post-training method this suite ran (`search.strategy = \"uniform\"`: every layer \
         at the pair by `quant.method`, one configuration; `rtn` is the spec's quantizer), on the \
         same model, data and FP32 model as greedy, scored on the run's held-out images (images \
         neither calibration nor search saw) with the 95% Wilson interval of the top-1 and the \
         95% paired bootstrap interval of the change against the FP32 model (the search images, \
         without intervals, when a run has no held-out scores). *W-comp* = model bits / FP32 \
         bits; *method time* and *iterations*: `runs.method_s` and `runs.method_iterations` \
         (AdaRound's Adam steps, LAPQ's loss evaluations, 0 for the closed-form methods).\n\n\
         Then greedy's answer to each method: for every greedy run over all layers of the same \
         network and pair scored on the same images (the same held-out images; for runs \
         without held-out scores, the same data settings, and the differences are then on the \
         search images, without intervals) (the spec's quantizer, or `over` another method), \
         the smallest model among its steps whose change against the FP32 model on the search \
         images is no worse than the method's change there (ties: higher top-1, then earlier \
         step; chosen on the search images, as the paper's table picks its \
         operating point), reported on the held-out images, with its difference to the method's \
         configuration image by image (95% paired bootstrap interval, exact McNemar p).\n"
    );
    let keys = groups(entries);
    if keys.is_empty() {
        let _ = writeln!(
            md,
            "This suite plans no uniform run of a post-training method.\n"
        );
    }
    for (arch, pair) in keys {
        let planned: Vec<&Entry> = entries
            .iter()
            .filter(|e| {
                e.plan.strategy == StrategyName::Uniform
                    && e.plan.arch == arch
                    && e.plan.pair == pair
            })
            .collect();
        let mine: Vec<_> = all
            .iter()
            .filter(|m| m.entry.plan.arch == arch && m.entry.plan.pair == pair)
            .collect();
        let _ = writeln!(md, "### {} at {pair}\n", planned[0].plan.arch_label());
        let mut t = Table::new(&MEASURED);
        if let Some(m) = mine.first() {
            let score = Score::of([m.run]);
            t.push(vec![
                "FP32".to_string(),
                DASH.to_string(),
                "1".to_string(),
                pct_ci(m.run.fp32(score), m.run.images(score)),
                DASH.to_string(),
                DASH.to_string(),
                DASH.to_string(),
                score.describe().to_string(),
                cell(&m.run.run.run_id),
            ]);
        }
        for e in &planned {
            let Some(m) = mine.iter().find(|m| std::ptr::eq(m.entry, *e)) else {
                let mut row = vec![e.plan.method.to_string()];
                row.extend(std::iter::repeat_n(NOT_RUN.to_string(), 7));
                row.push(cell(&e.plan.experiment));
                t.push(row);
                continue;
            };
            let score = Score::of([m.run]);
            let change = match (score, m.change_vs_fp32()) {
                (Score::HeldOut, Some(c)) => c.cell(),
                _ => format!("{:+.3}", m.search_change()),
            };
            t.push(vec![
                e.plan.method.to_string(),
                cell(&m.settings()),
                fixed(Some(m.step.rel_size), 4),
                pct_ci(m.top1(score), m.run.images(score)),
                change,
                fixed(m.run.run.method_s, 2),
                int(m.run.run.method_iterations.map(|i| i as i64)),
                score.describe().to_string(),
                format!("{} [{}]", cell(&m.run.run.run_id), cell(&e.plan.experiment)),
            ]);
        }
        md.push_str(&t.render(""));
        md.push('\n');
        let mut a = Table::new(&ANSWER);
        for m in &mine {
            for g in greedy_beside(entries, m) {
                let r = g.result.as_ref().expect("finished");
                let mut row = vec![
                    format!("{} [{}]", cell(&g.label()), cell(&g.plan.experiment)),
                    m.entry.plan.method.to_string(),
                    format!("{:+.3}", m.search_change()),
                ];
                match answer(r, m) {
                    None => row.extend(std::iter::repeat_n(DASH.to_string(), 6)),
                    Some(ans) => {
                        let score = Score::of([r, m.run]);
                        row.push(int(ans.point.step));
                        row.push(fixed(Some(ans.point.rel_size), 4));
                        row.push(pct_ci(
                            crate::plan::step_top1(ans.step, score),
                            r.images(score),
                        ));
                        // Without paired held-out scores: the differences on the search
                        // images, without an interval.
                        row.push(ans.change.map_or_else(
                            || format!("{:+.3}", 100.0 * (ans.step.top1 - r.run.fp32_top1)),
                            |c| c.cell(),
                        ));
                        row.push(ans.versus.map_or_else(
                            || {
                                format!(
                                    "{:+.3} (search images)",
                                    100.0 * (ans.step.top1 - m.step.top1)
                                )
                            },
                            |c| c.cell(),
                        ));
                        row.push(
                            ans.versus
                                .map_or(DASH.to_string(), |c| format!("{:.3}", c.p_value)),
                        );
                    }
                }
                a.push(row);
            }
        }
        md.push_str(
            &a.render("*No finished greedy run of this network and pair on the same images.*"),
        );
        md.push('\n');
    }
}

/// `table1.md` of one suite.
pub(crate) fn table1_markdown(suite: &str, entries: &[Entry], b: &Baselines) -> String {
    let reference = b.reference_method();
    let threshold = reference.change;
    let mut t = Table::new(&TABLE1);
    for m in &b.literature {
        t.push(vec![
            cell(&m.name),
            m.year.to_string(),
            format!("{}/{}", m.weight_bits, m.act_bits),
            pct_ci(Some(m.baseline / 100.0), IMAGENET_VAL),
            pct_ci(Some(m.top1 / 100.0), IMAGENET_VAL),
            format!("{}", m.change),
            format!("{}", m.w_comp),
            cell(&m.source),
        ]);
    }
    let ours = resnet50_w4a4_greedy(entries);
    for e in &ours {
        let mut row = vec![
            format!("Greedy search, this project: {}", run_cell(e)),
            DASH.to_string(),
            w_a(e.plan.pair),
        ];
        let Some(r) = &e.result else {
            row.extend(std::iter::repeat_n(NOT_RUN.to_string(), 5));
            t.push(row);
            continue;
        };
        // Chosen on the search images, reported on the held-out ones when the run has them.
        let score = Score::of([r]);
        let n = r.images(score);
        row.push(pct_ci(r.fp32(score), n));
        match smallest_within_change(&r.points(Score::Search), r.run.fp32_top1, threshold) {
            Some(p) => {
                let s = r.step(p.step);
                let top1 = s.and_then(|s| crate::plan::step_top1(s, score));
                row.push(pct_ci(top1, n));
                let paired =
                    s.and_then(|s| PairedChange::of(&r.step_correct(s)?, &r.fp32_correct()?));
                row.push(match (paired, top1, r.fp32(score)) {
                    (Some(c), _, _) => c.cell(),
                    (None, Some(t), Some(f)) => format!("{:+.3}", 100.0 * (t - f)),
                    _ => DASH.to_string(),
                });
                row.push(fixed(Some(p.rel_size), 4));
                row.push(cell(&format!(
                    "run {}, step {} of {} (search-image change {:+.3}); top-1 {} ({} images)",
                    r.run.run_id,
                    int(p.step),
                    r.run.n_layers,
                    change_points(&p, r.run.fp32_top1),
                    score.describe(),
                    n
                )));
            }
            None => {
                row.extend(std::iter::repeat_n(DASH.to_string(), 3));
                row.push(cell(&format!(
                    "run {}: no step's change on the search images is {} points or better",
                    r.run.run_id, threshold
                )));
            }
        }
        t.push(row);
    }
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Table 1: greedy against other post-training methods ({suite} suite)\n\n\
         Generated by `mpq report` from the suite's current runs and \
         `experiments/baselines/literature.toml`; do not edit. First what this project \
         measured, then, apart, the paper's table (published ImageNet ResNet50 numbers).\n"
    );
    measured_section(&mut md, entries);
    let _ = writeln!(
        md,
        "## Published: ResNet50 4-bit on ImageNet (appendix table 1 of the paper)\n\n\
         The literature rows are each paper's published numbers \
         (*baseline* = that paper's own FP32 top-1, *change* = top-1 − baseline, *W-comp* = \
         model bits / FP32 bits), with the Wilson 95% interval of a top-1 over the {IMAGENET_VAL} \
         ImageNet validation images. This project's rows: one per greedy W4A4 run over all \
         layers standing for ResNet50; the step is chosen on the search images: of its steps \
         (step 0 included), the smallest model whose change against the run's own FP32 top-1 on \
         the search images is no worse than the paper's own row ({}, {} points); ties to the \
         higher top-1, then the earlier step. That step is then reported on the run's held-out \
         images (images neither calibration nor search saw; the search images when the run has \
         none, as its *source* says): *baseline* = the FP32 model's held-out top-1, *top-1* and \
         *change* with their 95% Wilson and paired bootstrap intervals. `{NOT_RUN}`: planned but \
         without a result.\n",
        reference.name, threshold
    );
    if ours.iter().any(|e| e.plan.is_stand_in()) {
        let _ = writeln!(
            md,
            "This suite's rows come from a stand-in network, not ImageNet ResNet50: they show \
             the rule at work, not a comparable number.\n"
        );
    }
    md.push_str(&t.render(""));
    if ours.is_empty() {
        let _ = writeln!(
            md,
            "\nThis suite plans no greedy W4A4 run standing for ResNet50: only the published rows."
        );
    }
    md
}

const COST: [(&str, Align); 16] = [
    ("experiment", Align::Left),
    ("arch", Align::Left),
    ("pair", Align::Left),
    ("strategy", Align::Left),
    ("β", Align::Left),
    ("method", Align::Left),
    ("search layers", Align::Left),
    ("evaluations", Align::Right),
    ("work (full evaluations)", Align::Right),
    ("method time (s)", Align::Right),
    ("method passes", Align::Right),
    ("method iterations", Align::Right),
    ("wall time (s)", Align::Right),
    ("device", Align::Left),
    ("search images", Align::Right),
    ("run_id", Align::Left),
];

const RELATIVE: [(&str, Align); 7] = [
    ("arch", Align::Left),
    ("pair", Align::Left),
    ("search layers", Align::Left),
    ("run", Align::Left),
    ("evaluations / greedy's", Align::Right),
    ("work / greedy's", Align::Right),
    ("wall time / greedy's", Align::Right),
];

/// The searched-layers cell of a run that searched every layer.
const ALL_LAYERS: &str = "all"; // tidy: not a vocabulary name (every layer, not the split)

fn search_layers_cell(e: &Entry) -> String {
    match (&e.result, e.search_layers()) {
        (None, _) => DASH.to_string(),
        (Some(_), None) => ALL_LAYERS.to_string(),
        (Some(_), Some(s)) => cell(s),
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => format!("{:.3}", a / b),
        _ => DASH.to_string(),
    }
}

/// `search-cost.md` of one suite.
pub(crate) fn search_cost_markdown(suite: &str, entries: &[Entry]) -> String {
    let mut t = Table::new(&COST);
    for e in entries {
        let p = e.plan;
        let mut row = vec![
            cell(&p.experiment),
            p.arch.to_string(),
            p.pair.to_string(),
            p.strategy.to_string(),
            cell(&crate::plan::beta_label(
                p,
                e.result.as_ref().map(|r| r.run.beta),
            ))
            .replace("β=", ""),
            p.method.to_string(),
            search_layers_cell(e),
        ];
        match &e.result {
            None => row.extend(std::iter::repeat_n(NOT_RUN.to_string(), 9)),
            Some(r) => {
                let i = &r.run;
                row.push(i.evals.to_string());
                row.push(fixed(Some(i.work), 1));
                row.push(fixed(i.method_s, 2));
                row.push(int(i.method_passes.map(|x| x as i64)));
                row.push(int(i.method_iterations.map(|x| x as i64)));
                row.push(fixed(Some(i.wall_s), 1));
                row.push(cell(&i.device));
                row.push(i.n_search_images.to_string());
                row.push(cell(&i.run_id));
            }
        }
        t.push(row);
    }

    // Relative cost per (arch, pair, search layers), against the group's greedy run with beta 0,
    // else its first greedy run in table order.
    let mut rel = Table::new(&RELATIVE);
    let mut groups: Vec<(ArchName, BitPair, Option<&str>)> = Vec::new();
    for e in entries.iter().filter(|e| e.result.is_some()) {
        let k = (e.plan.arch, e.plan.pair, e.search_layers());
        if !groups.contains(&k) {
            groups.push(k);
        }
    }
    for (arch, pair, layers) in groups {
        let members: Vec<&Entry> = entries
            .iter()
            .filter(|e| {
                e.result.is_some()
                    && e.plan.arch == arch
                    && e.plan.pair == pair
                    && e.search_layers() == layers
            })
            .collect();
        let greedy: Vec<&&Entry> = members
            .iter()
            .filter(|e| e.plan.strategy == StrategyName::Greedy)
            .collect();
        let reference = greedy
            .iter()
            .find(|e| e.plan.beta_is_zero())
            .or(greedy.first())
            .map(|e| **e);
        for e in &members {
            let r = e.result.as_ref().expect("finished");
            let g = reference.and_then(|g| g.result.as_ref());
            let is_ref = reference.is_some_and(|g| std::ptr::eq(g, *e));
            rel.push(vec![
                arch.to_string(),
                pair.to_string(),
                cell(layers.unwrap_or(ALL_LAYERS)),
                format!(
                    "{} [{}]{}",
                    cell(&e.label()),
                    cell(&e.plan.experiment),
                    if is_ref { " (reference)" } else { "" }
                ),
                ratio(Some(r.run.evals as f64), g.map(|g| g.run.evals as f64)),
                ratio(Some(r.run.work), g.map(|g| g.run.work)),
                ratio(Some(r.run.wall_s), g.map(|g| g.run.wall_s)),
            ]);
        }
    }

    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Search cost ({suite} suite)\n\n\
         Generated by `mpq report` from the suite's current runs; do not edit. One row per \
         planned run. *Evaluations*: configurations the search evaluated (the all-W8A8 model not \
         counted); *work*: the search's cost in full-evaluation equivalents (a partial \
         evaluation on fewer images counts as that fraction); *method*: `quant.method`, the \
         post-training method of the layers at the low pair, with its cost: *method time* \
         (seconds, part of the wall time), *passes* (forward passes of the network over the \
         calibration images) and *iterations* (AdaRound's Adam steps over all layers, LAPQ's \
         loss evaluations, 0 for the closed-form methods; `—` when nothing was applied: `rtn` \
         without bias correction); *wall time*: the whole run; \
         *search layers*: `all`, or the reduced ground set searched. `{NOT_RUN}`: planned but \
         without a result; `{DASH}`: not recorded.\n"
    );
    md.push_str(&t.render("*The plan has no run in this suite.*"));
    let _ = writeln!(
        md,
        "\n## Relative to greedy\n\n\
         Per arch, pair and searched layers, each finished run's evaluations, work and wall time \
         divided by those of the reference greedy run (the group's greedy run with β = 0, else \
         its first greedy run in this order); `{DASH}` where the group has no finished greedy \
         run.\n"
    );
    md.push_str(&rel.render("*No finished run.*"));
    md
}

/// `exhaustive.md` of one suite: for every exhaustive run, the other finished runs of the same
/// arch, pair and searched layers, step by step.
pub(crate) fn exhaustive_markdown(suite: &str, entries: &[Entry]) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Gap to the exhaustive optimum ({suite} suite)\n\n\
         Generated by `mpq report` from the suite's current runs; do not edit. An exhaustive run \
         evaluates every set of k layers and keeps the best (its step k; sets of different k need \
         not be nested). For each, the other finished runs with the same arch, pair and searched \
         layers, at the same k: *top-1* in % on the search images (what the searches optimise) \
         with its Wilson 95% interval, *gap* = optimal top-1 − its top-1 in points, *ratio* = \
         its top-1 / optimal top-1. `{NOT_RUN}`: planned but without a result.\n"
    );
    let ex: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.plan.strategy == StrategyName::Exhaustive)
        .collect();
    if ex.is_empty() {
        let _ = writeln!(md, "This suite plans no exhaustive run.");
        return md;
    }
    for x in ex {
        let _ = writeln!(
            md,
            "## {} {}, {} [{}]\n",
            cell(&x.plan.arch_label()),
            x.plan.pair,
            cell(&x.label()),
            cell(&x.plan.experiment)
        );
        let Some(xr) = &x.result else {
            let _ = writeln!(md, "Exhaustive run: {NOT_RUN}.\n");
            continue;
        };
        let layers = x.search_layers();
        let _ = writeln!(
            md,
            "Searched layers: {}. Run {}.\n",
            layers.map_or(ALL_LAYERS.to_string(), cell),
            cell(&xr.run.run_id)
        );
        let same = |e: &&Entry| {
            !std::ptr::eq(*e, x) && e.plan.arch == x.plan.arch && e.plan.pair == x.plan.pair
        };
        let others: Vec<&Entry> = entries
            .iter()
            .filter(|e| same(e) && e.result.is_some() && e.search_layers() == layers)
            .collect();
        let missing: Vec<&Entry> = entries
            .iter()
            .filter(|e| same(e) && e.result.is_none())
            .collect();
        let labels: Vec<String> = others
            .iter()
            .map(|e| format!("{} [{}]", e.label(), e.plan.experiment))
            .collect();
        let mut header: Vec<(String, Align)> = vec![
            ("k".into(), Align::Right),
            ("optimal top-1 (%) [95% Wilson]".into(), Align::Right),
            ("optimal set".into(), Align::Left),
        ];
        for l in &labels {
            header.push((format!("{} top-1 (%) [95% Wilson]", cell(l)), Align::Right));
            header.push((format!("{} gap (points)", cell(l)), Align::Right));
            header.push((format!("{} ratio", cell(l)), Align::Right));
        }
        let mut t = Table {
            header,
            rows: Vec::new(),
        };
        for s in &xr.steps {
            let mut row = vec![
                s.step.to_string(),
                pct_ci(Some(s.top1), xr.run.n_search_images),
                if s.low_layers.is_empty() {
                    "{}".to_string()
                } else {
                    format!("{{{}}}", cell(&s.low_layers))
                },
            ];
            for o in &others {
                let top1 = o
                    .result
                    .as_ref()
                    .and_then(|r| r.step(Some(i64::from(s.step))))
                    .map(|st| st.top1);
                let n = o.result.as_ref().map_or(0, |r| r.run.n_search_images);
                row.push(pct_ci(top1, n));
                let opt = s.top1;
                let (gap, ratio) = match top1 {
                    Some(t) => (Some(100.0 * (opt - t)), (opt != 0.0).then(|| t / opt)),
                    None => (None, None),
                };
                row.push(fixed(gap, 2));
                row.push(fixed(ratio, 4));
            }
            t.push(row);
        }
        md.push_str(&t.render("*The exhaustive run has no steps.*"));
        if !missing.is_empty() {
            let names: Vec<String> = missing
                .iter()
                .map(|e| format!("{} [{}]", e.label(), e.plan.experiment))
                .collect();
            let _ = writeln!(
                md,
                "\nPlanned on this arch and pair, {NOT_RUN} (searched layers unknown until run): {}.",
                cell(&names.join("; "))
            );
        }
        md.push('\n');
    }
    md
}

const PLANNED: [(&str, Align); 10] = [
    ("experiment", Align::Left),
    ("repeat", Align::Right),
    ("manifest", Align::Left),
    ("arch", Align::Left),
    ("paper model", Align::Left),
    ("pair", Align::Left),
    ("strategy", Align::Left),
    ("β (manifest)", Align::Left),
    ("β (used)", Align::Right),
    ("result", Align::Left),
];

/// The planned runs of a suite, one row each, with the run_id of the result or `not run`.
pub(crate) fn planned_markdown(entries: &[Entry]) -> String {
    let mut t = Table::new(&PLANNED);
    for e in entries {
        let p = e.plan;
        t.push(vec![
            cell(&p.experiment),
            p.repeat.map_or(DASH.to_string(), |r| r.to_string()),
            cell(&p.manifest.display().to_string()),
            p.arch.to_string(),
            p.paper_model.map_or(DASH.to_string(), |m| m.to_string()),
            p.pair.to_string(),
            p.strategy.to_string(),
            p.beta.to_string(),
            fixed(e.result.as_ref().map(|r| r.run.beta), 4),
            e.result
                .as_ref()
                .map_or(NOT_RUN.to_string(), |r| cell(&r.run.run_id)),
        ]);
    }
    t.render("*The plan has no run in this suite.*")
}
