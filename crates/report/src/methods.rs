//! The post-training methods this project measured (issue 13): runs with `search.strategy =
//! "uniform"`, one configuration each (every layer at the run's pair by `quant.method`), set
//! beside greedy's curve on the same network, pair and images. Table 1's measured part, the
//! claims' "greedy beats the other methods" and figure 7's measured points read them here.
//!
//! Rules (stated in table1.md and claims.md too):
//! - a baseline is a finished uniform run over all layers; its configuration is step 1;
//! - greedy's side is every greedy run over all layers of the same arch and pair (the spec's
//!   quantizer or another method under it) scored on the same images ([`Images::same`]): the
//!   same held-out images (same `test_digest`), so that every comparison is paired image by
//!   image, or, for runs without held-out scores (the paper suite searches on every image),
//!   the same data settings, compared on the search images without a paired interval;
//! - greedy's smallest model within a baseline's change is chosen on the search images (the
//!   change of the baseline's configuration against the FP32 model there, which both runs
//!   measured on the same search images), by [`smallest_within_change`], and then reported on
//!   the held-out images.

use crate::evidence::PairedChange;
use crate::plan::{step_top1, Entry, RunResult, Score};
use crate::rules::{smallest_within_change, TradeOff};
use mpq_vocab::{ArchName, BitPair, RunRow, StepRow, StrategyName};

/// A finished uniform run and its single configuration (step 1).
pub(crate) struct Measured<'e, 'a> {
    pub entry: &'e Entry<'a>,
    pub run: &'e RunResult,
    pub step: &'e StepRow,
}

impl<'e, 'a> Measured<'e, 'a> {
    /// The configuration's top-1 on `score`'s images.
    pub fn top1(&self, score: Score) -> Option<f64> {
        step_top1(self.step, score)
    }

    /// Its held-out change against the run's FP32 model, paired.
    pub fn change_vs_fp32(&self) -> Option<PairedChange> {
        PairedChange::of(
            &self.run.step_correct(self.step)?,
            &self.run.fp32_correct()?,
        )
    }

    /// Its change against FP32 on the search images, in points.
    pub fn search_change(&self) -> f64 {
        100.0 * (self.step.top1 - self.run.run.fp32_top1)
    }

    /// The method's settings, from the run's resolved manifest: bias correction,
    /// `first_last_high` and the method's own table (`quant.<method>`), as `key=value` pairs.
    pub fn settings(&self) -> String {
        settings(&self.run.run.manifest, &self.entry.plan.method.to_string())
    }
}

/// `key=value` pairs of the quant settings that shape `method` in a resolved manifest's text.
pub(crate) fn settings(manifest: &str, method: &str) -> String {
    let Ok(v) = manifest.parse::<toml::Table>() else {
        return crate::fmt::DASH.to_string();
    };
    let Some(q) = v.get("quant").and_then(|q| q.as_table()) else {
        return crate::fmt::DASH.to_string();
    };
    let mut parts = Vec::new();
    for key in ["bias_correction", "first_last_high"] {
        if let Some(x) = q.get(key) {
            parts.push(format!("{key}={}", value(x)));
        }
    }
    if let Some(own) = q.get(method).and_then(|t| t.as_table()) {
        for (k, x) in own {
            parts.push(format!("{k}={}", value(x)));
        }
    }
    parts.join(", ")
}

/// A setting as a table shows it: strings bare, floats with at most 4 decimals.
fn value(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Float(f) => {
            let s = format!("{f:.4}");
            let s = s.trim_end_matches('0');
            s.strip_suffix('.').unwrap_or(s).to_string()
        }
        toml::Value::Array(a) => {
            let items: Vec<String> = a.iter().map(value).collect();
            format!("[{}]", items.join(", "))
        }
        other => other.to_string(),
    }
}

/// The finished uniform runs over all layers among `entries`, in table order.
pub(crate) fn measured<'e, 'a>(entries: &'e [Entry<'a>]) -> Vec<Measured<'e, 'a>> {
    entries
        .iter()
        .filter(|e| e.plan.strategy == StrategyName::Uniform && e.full_ground_set())
        .filter_map(|e| {
            let run = e.result.as_ref()?;
            let step = run.steps.iter().find(|s| s.step == 1)?;
            Some(Measured {
                entry: e,
                run,
                step,
            })
        })
        .collect()
}

/// The (arch, pair) groups that have planned uniform runs, in table order.
pub(crate) fn groups(entries: &[Entry]) -> Vec<(ArchName, BitPair)> {
    let mut keys: Vec<(ArchName, BitPair)> = entries
        .iter()
        .filter(|e| e.plan.strategy == StrategyName::Uniform)
        .map(|e| (e.plan.arch, e.plan.pair))
        .collect();
    keys.dedup();
    keys
}

/// The finished greedy runs over all layers of `arch` at `pair` scored on `m`'s held-out
/// images (any method under the search).
pub(crate) fn greedy_beside<'e, 'a>(entries: &'e [Entry<'a>], m: &Measured) -> Vec<&'e Entry<'a>> {
    entries
        .iter()
        .filter(|e| {
            e.plan.strategy == StrategyName::Greedy
                && e.plan.arch == m.entry.plan.arch
                && e.plan.pair == m.entry.plan.pair
                && e.full_ground_set()
                && e.result
                    .as_ref()
                    .is_some_and(|r| Images::of(&r.run).same(&Images::of(&m.run.run)))
        })
        .collect()
}

/// What says which images a run scored: its held-out digest, its resolved manifest (whose
/// `[data]` table draws the images) and its number of search images.
pub(crate) struct Images<'r> {
    pub test_digest: Option<&'r str>,
    pub manifest: &'r str,
    pub n_search_images: u32,
}

impl<'r> Images<'r> {
    pub fn of(r: &'r RunRow) -> Images<'r> {
        Images {
            test_digest: r.test_digest.as_deref(),
            manifest: &r.manifest,
            n_search_images: r.n_search_images,
        }
    }

    /// Whether two runs scored the same images: the same held-out digest when both have
    /// one; when neither has held-out scores, the same `[data]` table in their resolved
    /// manifests and the same number of search images (the same draw of search images).
    pub fn same(&self, other: &Images) -> bool {
        match (self.test_digest, other.test_digest) {
            (Some(x), Some(y)) => x == y,
            (None, None) => {
                let data = |m: &str| m.parse::<toml::Table>().ok()?.get("data").cloned();
                let d = data(self.manifest);
                self.n_search_images == other.n_search_images
                    && d.is_some()
                    && d == data(other.manifest)
            }
            _ => false,
        }
    }
}

/// Greedy's answer to one baseline: its smallest model whose change on the search images is
/// no worse than the baseline's, and how it scores against the baseline on the held-out images.
pub(crate) struct Answer<'r> {
    pub point: TradeOff,
    pub step: &'r StepRow,
    /// Greedy's step against the baseline's configuration, image by image.
    pub versus: Option<PairedChange>,
    /// Greedy's step against its FP32 model.
    pub change: Option<PairedChange>,
}

/// Greedy run `g`'s smallest model within `m`'s change (see the module rules); `None` when no
/// step qualifies.
pub(crate) fn answer<'r>(g: &'r RunResult, m: &Measured) -> Option<Answer<'r>> {
    let point =
        smallest_within_change(&g.points(Score::Search), g.run.fp32_top1, m.search_change())?;
    let step = g.step(point.step)?;
    let versus = g
        .step_correct(step)
        .zip(m.run.step_correct(m.step))
        .and_then(|(a, b)| PairedChange::of(&a, &b));
    let change = g
        .step_correct(step)
        .zip(g.fp32_correct())
        .and_then(|(a, b)| PairedChange::of(&a, &b));
    Some(Answer {
        point,
        step,
        versus,
        change,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_the_method_table_and_the_shared_switches() {
        let text = "[quant]\npair = \"W4A4\"\nmethod = \"adaround\"\nfirst_last_high = false\n\
                    bias_correction = \"mean\"\n[quant.adaround]\niterations = 20\nseed = 0\n\
                    learning_rate = 0.03\n[quant.lapq]\nnorms = [2.0, 2.2222222222222223]\n";
        assert_eq!(
            settings(text, "adaround"),
            "bias_correction=mean, first_last_high=false, iterations=20, learning_rate=0.03, seed=0"
        );
        assert_eq!(
            settings(text, "lapq"),
            "bias_correction=mean, first_last_high=false, norms=[2, 2.2222]"
        );
        assert_eq!(
            settings(text, "rtn"),
            "bias_correction=mean, first_last_high=false"
        );
        assert_eq!(settings("not toml [", "rtn"), crate::fmt::DASH);
    }

    #[test]
    fn same_images_by_digest_or_else_by_data_settings() {
        let run = |test_digest, manifest, n_search_images| Images {
            test_digest,
            manifest,
            n_search_images,
        };
        let same = |a: Images, b: Images| a.same(&b);
        let d0 = "[data]\nseed = 0\n[search]\nbeta = 0\n";
        let d0b = "[data]\nseed = 0\n[search]\nbeta = 1\n";
        let d1 = "[data]\nseed = 1\n";
        assert!(same(run(Some("a"), d0, 8), run(Some("a"), d1, 9)));
        assert!(!same(run(Some("a"), d0, 8), run(Some("b"), d0, 8)));
        assert!(!same(run(Some("a"), d0, 8), run(None, d0, 8)));
        assert!(same(run(None, d0, 8), run(None, d0b, 8)));
        assert!(!same(run(None, d0, 8), run(None, d1, 8)));
        assert!(!same(run(None, d0, 8), run(None, d0, 9)));
        assert!(
            !same(run(None, "", 8), run(None, "", 8)),
            "no [data]: not known"
        );
    }
}
