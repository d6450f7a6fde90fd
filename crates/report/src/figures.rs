//! The paper's figures as SVG (plotters' SVG backend, no system fonts: text is SVG `<text>`).
//!
//! - Figures 4-6 ([`size_figure`]): top-1 (%) against model size (MB = `size_bits / 8 / 10^6`)
//!   at every step, one curve per finished run of one (suite, pair, arch) that searched all
//!   layers, the FP32 and all-W8A8 top-1 as dashed levels. Fig. 4 = W6A6, 5 = W4A8, 6 = W4A4;
//!   other pairs get a figure of their own with no paper number.
//! - Figure 7 ([`literature_figure`]): accuracy change (points) against relative size (W-comp),
//!   the methods of `literature.toml` as labelled points, the post-training methods this suite
//!   measured on the network standing for ResNet50 at W4A4 as triangles named in the legend,
//!   and the suite's greedy W4A4 runs standing for ResNet50 as curves.
//! - A figure per repeated experiment ([`repeats_figure`]): each repeat as a thin line, their
//!   mean as the curve and the 95% interval of the mean as a band.
//!
//! Top-1 is measured on the held-out images when every run a figure draws has them, else on
//! the search images ([`Score::of`]); the y axis says which. A repeated experiment (see
//! `repeats`) is one curve in figures 4-7: the mean over its repeats per step, with the
//! Student-t 95% interval of the mean as a band.
//!
//! A figure whose runs are all "not run" is still written: its plot area says "no results" and
//! names the planned runs. Planned runs without results are named in a note under the plot, never
//! drawn. Output is deterministic: integer pixel coordinates, no timestamps.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::baselines::Method;
use crate::plan::{size_mb, step_top1, Entry, Score};
use crate::repeats::Repeated;
use mpq_vocab::BitPair;

/// Pixel size of every figure.
const SIZE: (u32, u32) = (860, 600);
/// Height of one note line under the plot.
const NOTE_H: u32 = 18;
/// Font of every text.
const FONT: &str = "sans-serif";

/// Curve colours, in legend order (one curve, one colour; cycled past 9 curves).
const PALETTE: [RGBColor; 9] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
    RGBColor(188, 189, 34),
];

/// Colour of the FP32 level.
const FP32_COLOR: RGBColor = RGBColor(0, 0, 0);
/// Colour of the all-W8A8 level.
const INT8_COLOR: RGBColor = RGBColor(128, 128, 128);
/// Colour of the literature points of figure 7.
const MARKER_COLOR: RGBColor = RGBColor(64, 64, 64);

/// The colour of the `i`-th curve, as SVG writes it (`#1F77B4`).
pub fn curve_color_hex(i: usize) -> String {
    let RGBColor(r, g, b) = PALETTE[i % PALETTE.len()];
    format!("#{r:02X}{g:02X}{b:02X}")
}

/// One line through labelled points.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Curve {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    /// A band around the line, `(x, lo, hi)` in x order (empty: none).
    pub band: Vec<(f64, f64, f64)>,
    /// A thin line without markers or legend entry (one repeat of a repeated experiment).
    pub thin: bool,
}

impl Curve {
    fn plain(label: String, points: Vec<(f64, f64)>) -> Curve {
        Curve {
            label,
            points,
            band: vec![],
            thin: false,
        }
    }
}

/// A horizontal level across the plot.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Level {
    pub label: String,
    pub y: f64,
    pub fp32: bool,
}

/// A labelled point.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Marker {
    pub label: String,
    pub x: f64,
    pub y: f64,
    /// Measured by this project, not a published number: drawn as a triangle in a colour of
    /// its own and named in the legend (several share one W-comp, so labels beside the points
    /// would overlap).
    pub measured: bool,
}

/// Everything one SVG shows.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Plot {
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    pub curves: Vec<Curve>,
    pub levels: Vec<Level>,
    pub markers: Vec<Marker>,
    /// Lines of text under the plot.
    pub notes: Vec<String>,
    /// Where the legend goes (the corner the data leave empty).
    pub legend: LegendAt,
}

/// The corner of the plot holding the legend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LegendAt {
    UpperLeft,
    LowerRight,
}

/// The paper's figure number of a pair's size figure.
pub fn figure_number(pair: BitPair) -> Option<u32> {
    match pair {
        BitPair::W6A6 => Some(4),
        BitPair::W4A8 => Some(5),
        BitPair::W4A4 => Some(6),
        _ => None,
    }
}

/// `lo..hi` padded by 5% of the span on each side (a single value gets a small span).
fn padded(lo: f64, hi: f64) -> (f64, f64) {
    let span = hi - lo;
    let pad = if span > 0.0 {
        0.05 * span
    } else {
        (0.05 * lo.abs()).max(1e-3)
    };
    (lo - pad, hi + pad)
}

/// Decimals of tick labels for a range: one significant digit of a tenth of the span (plotters
/// puts up to about ten labels on an axis), so neighbouring labels differ.
fn decimals(lo: f64, hi: f64) -> usize {
    let step = (hi - lo) / 10.0;
    if step <= 0.0 || !step.is_finite() {
        return 2;
    }
    (-step.log10()).ceil().clamp(0.0, 6.0) as usize
}

/// The least and greatest finite value, `None` when there is none.
fn bounds(v: &[f64]) -> Option<(f64, f64)> {
    v.iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

fn err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing SVG: {e}")
}

/// Renders `plot` as an SVG document.
pub(crate) fn render(plot: &Plot) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let notes_h = NOTE_H * plot.notes.len() as u32;
        let (area, notes) = root.split_vertically(SIZE.1 - notes_h);
        let xs: Vec<f64> = plot
            .curves
            .iter()
            .flat_map(|c| c.points.iter().map(|p| p.0))
            .chain(plot.markers.iter().map(|m| m.x))
            .collect();
        let ys: Vec<f64> = plot
            .curves
            .iter()
            .flat_map(|c| {
                c.points
                    .iter()
                    .map(|p| p.1)
                    .chain(c.band.iter().flat_map(|b| [b.1, b.2]))
            })
            .chain(plot.markers.iter().map(|m| m.y))
            .collect();
        let xr = bounds(&xs);
        // The levels count only when there is data to plot against.
        let yr = xr.and(bounds(
            &ys.iter()
                .copied()
                .chain(plot.levels.iter().map(|l| l.y))
                .collect::<Vec<_>>(),
        ));
        match (xr, yr) {
            (Some((x0, x1)), Some((y0, y1))) => {
                draw_chart(&area, plot, padded(x0, x1), padded(y0, y1))?
            }
            _ => draw_empty(&area, plot)?,
        }
        for (i, note) in plot.notes.iter().enumerate() {
            notes
                .draw(&Text::new(
                    note.as_str(),
                    (12, (i as u32 * NOTE_H) as i32 + 2),
                    (FONT, 13).into_font().color(&BLACK),
                ))
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// A plot without data: the title, the axis descriptions and "no results".
fn draw_empty(area: &DrawingArea<SVGBackend, Shift>, plot: &Plot) -> anyhow::Result<()> {
    let font = |size| (FONT, size).into_font().color(&BLACK);
    area.draw(&Text::new(plot.title.as_str(), (20, 14), font(18)))
        .map_err(err)?;
    let why = if plot.curves.is_empty() && plot.markers.is_empty() {
        "no results: no planned run of this figure has finished"
    } else {
        "no results: no step of the finished runs has both a size and a top-1"
    };
    area.draw(&Text::new(why, (60, 260), font(16)))
        .map_err(err)?;
    area.draw(&Text::new(
        format!("x: {}", plot.x_desc),
        (60, 300),
        font(13),
    ))
    .map_err(err)?;
    area.draw(&Text::new(
        format!("y: {}", plot.y_desc),
        (60, 320),
        font(13),
    ))
    .map_err(err)
}

fn draw_chart(
    area: &DrawingArea<SVGBackend, Shift>,
    plot: &Plot,
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> anyhow::Result<()> {
    let mut chart = ChartBuilder::on(area)
        .caption(plot.title.as_str(), (FONT, 18))
        .margin(14)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(err)?;
    let (dx, dy) = (decimals(x0, x1), decimals(y0, y1));
    let fx = move |x: &f64| format!("{x:.dx$}");
    let fy = move |y: &f64| format!("{y:.dy$}");
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_desc(plot.x_desc.as_str())
        .y_desc(plot.y_desc.as_str())
        .x_label_formatter(&fx)
        .y_label_formatter(&fy)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()
        .map_err(err)?;

    for level in &plot.levels {
        let color = if level.fp32 { FP32_COLOR } else { INT8_COLOR };
        let style = color.stroke_width(1);
        chart
            .draw_series(DashedLineSeries::new(
                vec![(x0, level.y), (x1, level.y)],
                6,
                4,
                style,
            ))
            .map_err(err)?
            .label(level.label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
    }
    let mut i = 0;
    for curve in &plot.curves {
        let color = PALETTE[i % PALETTE.len()];
        if curve.thin {
            // The thin lines of a repeated experiment share the colour of the curve after them.
            chart
                .draw_series(LineSeries::new(
                    curve.points.iter().copied(),
                    color.mix(0.45).stroke_width(1),
                ))
                .map_err(err)?;
            continue;
        }
        i += 1;
        if !curve.band.is_empty() {
            let outline: Vec<(f64, f64)> = curve
                .band
                .iter()
                .map(|b| (b.0, b.2))
                .chain(curve.band.iter().rev().map(|b| (b.0, b.1)))
                .collect();
            chart
                .draw_series(std::iter::once(Polygon::new(
                    outline,
                    color.mix(0.2).filled(),
                )))
                .map_err(err)?;
        }
        chart
            .draw_series(LineSeries::new(
                curve.points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(err)?
            .label(curve.label.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 4), (x + 18, y + 4)], color.filled()));
        chart
            .draw_series(
                curve
                    .points
                    .iter()
                    .map(|p| Circle::new(*p, 3, color.filled())),
            )
            .map_err(err)?;
    }
    for m in plot.markers.iter().filter(|m| m.measured) {
        let color = PALETTE[i % PALETTE.len()];
        i += 1;
        chart
            .draw_series(std::iter::once(TriangleMarker::new(
                (m.x, m.y),
                7,
                color.filled(),
            )))
            .map_err(err)?
            .label(m.label.as_str())
            .legend(move |(x, y)| TriangleMarker::new((x + 9, y), 6, color.filled()));
    }
    for m in plot.markers.iter().filter(|m| !m.measured) {
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((m.x, m.y))
                    + Circle::new((0, 0), 5, MARKER_COLOR.filled())
                    + Text::new(
                        m.label.clone(),
                        (8, -16),
                        (FONT, 12).into_font().color(&MARKER_COLOR),
                    ),
            ))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(match plot.legend {
            LegendAt::UpperLeft => SeriesLabelPosition::UpperLeft,
            LegendAt::LowerRight => SeriesLabelPosition::LowerRight,
        })
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    Ok(())
}

/// The x axis of figures 4-6.
pub const SIZE_X_DESC: &str = "model size (MB = size_bits / 8 / 10^6)";
/// The x axis of figure 7.
pub const LIT_X_DESC: &str = "relative size (W-comp = model bits / FP32 bits)";

/// The y axis of figures 4-6 for a score.
pub(crate) fn size_y_desc(score: Score) -> String {
    format!("top-1 (%) {}", score.describe())
}

/// The y axis of figure 7 for a score.
pub(crate) fn lit_y_desc(score: Score) -> String {
    format!(
        "accuracy change (top-1 − FP32 top-1, points) {}",
        score.describe()
    )
}

/// One reference level source: a label and its FP32 and all-high top-1.
struct LevelSource {
    label: String,
    fp32: Option<f64>,
    high: Option<f64>,
}

/// The levels of a set of runs: each distinct FP32 and all-W8A8 top-1, labelled with its value
/// (and, when the runs disagree, with the runs that measured it).
fn levels(sources: &[LevelSource], high: BitPair) -> Vec<Level> {
    let mut out = Vec::new();
    for fp32 in [true, false] {
        let mut vals: Vec<(f64, Vec<String>)> = Vec::new();
        for src in sources {
            let Some(v) = (if fp32 { src.fp32 } else { src.high }) else {
                continue;
            };
            if !v.is_finite() {
                continue;
            }
            match vals.iter_mut().find(|(x, _)| *x == v) {
                Some((_, who)) => who.push(src.label.clone()),
                None => vals.push((v, vec![src.label.clone()])),
            }
        }
        let name = if fp32 {
            "FP32".to_string()
        } else {
            format!("all {high}")
        };
        let several = vals.len() > 1;
        for (v, who) in vals {
            let label = if several {
                format!("{name}: {:.2} % ({})", 100.0 * v, who.join(", "))
            } else {
                format!("{name}: {:.2} %", 100.0 * v)
            };
            out.push(Level {
                label,
                y: 100.0 * v,
                fp32,
            });
        }
    }
    out
}

/// Labels of `entries`, with ` [experiment]` appended where two would be the same.
fn unique_labels(entries: &[&Entry]) -> Vec<String> {
    let labels: Vec<String> = entries.iter().map(|e| e.label()).collect();
    labels
        .iter()
        .zip(entries)
        .map(|(l, e)| {
            if labels.iter().filter(|x| *x == l).count() > 1 {
                format!("{l} [{}]", e.plan.experiment)
            } else {
                l.clone()
            }
        })
        .collect()
}

/// The note naming the planned runs without results, if any.
fn not_run_note(entries: &[&Entry]) -> Option<String> {
    let missing: Vec<String> = entries
        .iter()
        .filter(|e| e.result.is_none())
        .map(|e| format!("{} ({})", e.label(), e.plan.experiment))
        .collect();
    (!missing.is_empty()).then(|| format!("not run: {}", missing.join("; ")))
}

/// What a figure draws for a set of planned runs: the single runs' curves, one mean curve with
/// a band per repeated experiment among them (its repeats' results), and the levels.
struct Drawn {
    curves: Vec<Curve>,
    sources: Vec<LevelSource>,
    high: BitPair,
}

/// The curves of `entries` with `point(step) = (x, y)` on `score`; `change` draws the top-1
/// minus the run's FP32 top-1 instead of the top-1.
fn drawn(
    entries: &[&Entry],
    repeated: &[Repeated],
    score: Score,
    change: bool,
    x_of: fn(&mpq_vocab::StepRow) -> f64,
) -> Drawn {
    let singles: Vec<&Entry> = entries
        .iter()
        .copied()
        .filter(|e| e.result.is_some() && e.plan.repeat.is_none())
        .collect();
    let labels = unique_labels(&singles);
    let mut curves = Vec::new();
    let mut sources = Vec::new();
    for (e, label) in singles.iter().zip(labels) {
        let r = e.result.as_ref().expect("finished");
        let fp32 = r.fp32(score);
        let points = r
            .steps
            .iter()
            .filter_map(|s| {
                let t = step_top1(s, score)?;
                let y = if change {
                    100.0 * (t - fp32?)
                } else {
                    100.0 * t
                };
                Some((x_of(s), y))
            })
            .collect();
        curves.push(Curve::plain(label.clone(), points));
        sources.push(LevelSource {
            label,
            fp32,
            high: r.high(score),
        });
    }
    for rep in repeated {
        let members: Vec<&Entry> = entries
            .iter()
            .copied()
            .filter(|e| e.plan.repeat.is_some() && e.plan.experiment == rep.experiment)
            .collect();
        if rep.steps.is_empty() || members.is_empty() {
            continue;
        }
        let x = |st: &crate::repeats::StepSummary| {
            if change {
                st.rel_size
            } else {
                st.size_mb
            }
        };
        let summary = |st: &crate::repeats::StepSummary| {
            if change {
                st.change
            } else {
                st.top1
            }
        };
        let base = members[0].label();
        let base = base
            .rsplit_once(" #")
            .map_or(base.as_str(), |b| b.0)
            .to_string();
        let label = format!(
            "{base} [{}], mean of {} repeats (95% band)",
            rep.experiment, rep.steps[0].top1.k
        );
        curves.push(Curve {
            label: label.clone(),
            points: rep
                .steps
                .iter()
                .map(|st| (x(st), summary(st).mean))
                .collect(),
            band: rep
                .steps
                .iter()
                .map(|st| (x(st), summary(st).interval.lo, summary(st).interval.hi))
                .collect(),
            thin: false,
        });
        let done: Vec<_> = members.iter().filter_map(|e| e.result.as_ref()).collect();
        let mean = |f: &dyn Fn(&crate::plan::RunResult) -> Option<f64>| {
            let v: Option<Vec<f64>> = done.iter().map(|r| f(r)).collect();
            v.map(|v| v.iter().sum::<f64>() / v.len() as f64)
        };
        sources.push(LevelSource {
            label: format!("mean of [{}]", rep.experiment),
            fp32: mean(&|r| r.fp32(score)),
            high: mean(&|r| r.high(score)),
        });
    }
    let high = entries
        .iter()
        .find_map(|e| e.result.as_ref())
        .map_or(BitPair::W8A8, |r| r.run.high_pair);
    Drawn {
        curves,
        sources,
        high,
    }
}

/// Figure 4, 5 or 6 (by `pair`) for one architecture of one suite: `entries` are the suite's
/// planned runs of that arch and pair that search all layers (finished or not), `repeated` the
/// suite's repeated experiments. One curve per finished single run, point per step with a size
/// and a top-1, in step order; one mean curve with its band per repeated experiment.
pub(crate) fn size_figure(
    suite: &str,
    pair: BitPair,
    entries: &[&Entry],
    repeated: &[Repeated],
) -> Plot {
    let arch = entries
        .first()
        .map(|e| e.plan.arch_label())
        .unwrap_or_default();
    let fig = match figure_number(pair) {
        Some(n) => format!("Fig. {n}"),
        None => "No paper figure".to_string(),
    };
    let score = Score::of(entries.iter().filter_map(|e| e.result.as_ref()));
    let d = drawn(entries, repeated, score, false, size_mb);
    let mut notes = Vec::new();
    notes.extend(not_run_note(entries));
    Plot {
        title: format!("{fig} ({pair}, {suite} suite): {arch}"),
        x_desc: SIZE_X_DESC.to_string(),
        y_desc: size_y_desc(score),
        levels: levels(&d.sources, d.high),
        curves: d.curves,
        markers: Vec::new(),
        notes,
        legend: LegendAt::UpperLeft,
    }
}

/// The figure of one repeated experiment: every finished repeat as a thin line (top-1 against
/// model size), the mean over the repeats per step as the curve and the 95% interval of the
/// mean as a band.
pub(crate) fn repeats_figure(suite: &str, rep: &Repeated) -> Plot {
    let entries: Vec<&Entry> = rep.entries.to_vec();
    let mut curves = Vec::new();
    for e in &entries {
        let Some(r) = &e.result else { continue };
        curves.push(Curve {
            label: e.label(),
            points: r
                .steps
                .iter()
                .filter_map(|s| Some((size_mb(s), 100.0 * step_top1(s, rep.score)?)))
                .collect(),
            band: vec![],
            thin: true,
        });
    }
    let d = drawn(
        &entries,
        std::slice::from_ref(rep),
        rep.score,
        false,
        size_mb,
    );
    curves.extend(d.curves);
    let mut notes = vec![format!(
        "thin lines: the {} finished repeats; curve: their mean per step; band: the Student-t \
         95% interval of the mean",
        rep.finished()
    )];
    notes.extend(not_run_note(&entries));
    let arch = entries
        .first()
        .map(|e| format!("{} {}", e.plan.arch_label(), e.plan.pair))
        .unwrap_or_default();
    Plot {
        title: format!("Repeats ({suite} suite): {} — {arch}", rep.experiment),
        x_desc: SIZE_X_DESC.to_string(),
        y_desc: size_y_desc(rep.score),
        levels: levels(&d.sources, d.high),
        curves,
        markers: Vec::new(),
        notes,
        legend: LegendAt::UpperLeft,
    }
}

/// How far below the lowest literature change figure 7's y axis reaches (points); greedy steps
/// below are left out of the plot (and counted in a note), as the paper's figure shows only the
/// region of the published methods.
pub const FIG7_Y_MARGIN: f64 = 4.0;

/// Figure 7 for one suite: the literature methods as labelled points, this suite's measured
/// post-training methods standing for ResNet50 at W4A4 (`measured`: finished uniform runs,
/// `crate::methods`) as triangles named in the legend, and one curve per finished greedy
/// W4A4 run standing for ResNet50 (`entries`, already selected; a repeated experiment among
/// them as its mean with a band), each step at (relative size, top-1 minus the run's FP32
/// top-1 in points), held-out when every run drawn has held-out scores.
pub(crate) fn literature_figure(
    suite: &str,
    literature: &[Method],
    entries: &[&Entry],
    repeated: &[Repeated],
    measured: &[crate::methods::Measured],
) -> Plot {
    let score = Score::of(
        entries
            .iter()
            .filter_map(|e| e.result.as_ref())
            .chain(measured.iter().map(|m| m.run)),
    );
    let measured_markers: Vec<Marker> = measured
        .iter()
        .filter_map(|m| {
            let y = match score {
                Score::HeldOut => m.change_vs_fp32()?.points,
                Score::Search => m.search_change(),
            };
            Some(Marker {
                label: format!(
                    "{} {} (measured, {}): {y:+.2}",
                    m.entry.plan.method, m.entry.plan.pair, m.entry.plan.arch
                ),
                x: m.step.rel_size,
                y,
                measured: true,
            })
        })
        .collect();
    let floor = literature
        .iter()
        .map(|m| m.change)
        .chain(measured_markers.iter().map(|m| m.y))
        .fold(f64::INFINITY, f64::min)
        - FIG7_Y_MARGIN;
    let d = drawn(entries, repeated, score, true, |s| s.rel_size);
    let mut notes = Vec::new();
    let mut curves = Vec::new();
    for mut c in d.curves {
        let n = c.points.len();
        c.points.retain(|p| p.1 >= floor);
        c.band.retain(|b| b.1 >= floor);
        if c.points.len() < n {
            notes.push(format!(
                "{}: {} of {n} steps below {floor:.1} points not shown",
                c.label,
                n - c.points.len(),
            ));
        }
        c.label = format!("{}, {suite} suite", c.label);
        curves.push(c);
    }
    if let Some(e) = entries.iter().find(|e| e.plan.is_stand_in()) {
        notes.push(format!("this suite's curves: {}", e.plan.arch_label()));
    }
    if entries.is_empty() {
        notes.push(
            "this suite plans no greedy W4A4 run standing for ResNet50: literature points only"
                .to_string(),
        );
    }
    notes.extend(not_run_note(entries));
    let markers = literature
        .iter()
        .map(|m| Marker {
            label: format!("{} (W{}A{})", m.name, m.weight_bits, m.act_bits),
            x: m.w_comp,
            y: m.change,
            measured: false,
        })
        .chain(measured_markers)
        .collect();
    Plot {
        title: format!(
            "Fig. 7 ({suite} suite): accuracy change against relative size, ResNet50 4-bit"
        ),
        x_desc: LIT_X_DESC.to_string(),
        y_desc: lit_y_desc(score),
        curves,
        levels: Vec::new(),
        markers,
        notes,
        legend: LegendAt::LowerRight,
    }
}
