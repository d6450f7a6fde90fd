//! The runs a manifest stands for. A manifest is one run, unless
//! - `--sweep`s are given: one run per point of their cartesian product (`sweep`), each an
//!   ordinary manifest with the point's values and its own experiment name
//!   (`<name>--beta=0.02`), set with `--set` after the user's own;
//! - `experiment.repeats` = k > 1: within each point, k runs of one experiment (same name),
//!   repeat r with the seeds + r (`Resolved::repeat`).
//!
//! `mpq run` runs every one of them, `mpq reproduce` plans each one (its own input key, its
//! own up-to-date check, its own Slurm task), and a Slurm task runs one of them as
//! `mpq run <manifest> [--repeat r] --set <the point's sets>`.
use crate::manifest::{self, Resolved};
use crate::sweep::{point_names, Point};
use anyhow::Result;
use std::path::{Path, PathBuf};

/// One run of a manifest.
#[derive(Clone, Debug)]
pub struct RunSpec {
    /// The manifest file.
    pub manifest: PathBuf,
    /// The sweep point (empty without a sweep).
    pub point: Point,
    /// The `--set`s that make the point (its values, then its experiment name), applied after
    /// the user's own; empty without a sweep.
    pub sets: Vec<String>,
    /// Which repeat (`experiment.repeats` > 1); `None`: the point's single run.
    pub repeat: Option<u32>,
    /// The run's resolved manifest (the point's, with the repeat's seeds).
    pub resolved: Resolved,
}

impl RunSpec {
    /// `<experiment>`, `<experiment> repeat r`: how messages name the run.
    pub fn label(&self) -> String {
        label(&self.resolved)
    }
}

/// How messages name a run: its experiment name, and its repeat if it is one of several.
pub fn label(r: &Resolved) -> String {
    match r.repeat {
        Some(k) => format!("{} repeat {k}", r.manifest.experiment.name),
        None => r.manifest.experiment.name.clone(),
    }
}

/// `experiment.name=<name>` as `--set` takes it (a TOML string, so that a name such as `1` or
/// `true` stays a string).
fn name_set(name: &str) -> String {
    format!("experiment.name={}", toml::Value::String(name.to_string()))
}

/// The manifest's points (`points`, from `sweep::expand`; `[Point::default()]` for none), each
/// resolved with `sets` then its own values and name.
pub fn points(path: &Path, sets: &[String], points: &[Point]) -> Result<Vec<RunSpec>> {
    let base = manifest::load(path, sets)?;
    if points.iter().all(|p| p.values.is_empty()) {
        return Ok(vec![RunSpec {
            manifest: path.to_path_buf(),
            point: Point::default(),
            sets: vec![],
            repeat: None,
            resolved: base,
        }]);
    }
    let names = point_names(&base.manifest.experiment.name, points)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut out = vec![];
    for (p, name) in points.iter().zip(names) {
        let mut own = p.sets();
        own.push(name_set(&name));
        let all: Vec<String> = sets.iter().chain(&own).cloned().collect();
        out.push(RunSpec {
            manifest: path.to_path_buf(),
            point: p.clone(),
            sets: own,
            repeat: None,
            resolved: manifest::load(path, &all)?,
        });
    }
    Ok(out)
}

/// Every run of a manifest: its points, each with its repeats (`only`: that repeat alone, an
/// error if there is none such).
pub fn runs(
    path: &Path,
    sets: &[String],
    sweep: &[Point],
    only: Option<u32>,
) -> Result<Vec<RunSpec>> {
    let mut out = vec![];
    for p in points(path, sets, sweep)? {
        match only {
            Some(r) => {
                let resolved = p.resolved.repeat(r)?;
                out.push(RunSpec {
                    repeat: resolved.repeat,
                    resolved,
                    ..p
                });
            }
            None => out.extend(repeats(&p)?),
        }
    }
    Ok(out)
}

/// The repeats of one point (itself when `experiment.repeats` = 1).
pub fn repeats(point: &RunSpec) -> Result<Vec<RunSpec>> {
    Ok(point
        .resolved
        .repeats()?
        .into_iter()
        .map(|resolved| RunSpec {
            repeat: resolved.repeat,
            resolved,
            ..point.clone()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::expand;

    fn manifest(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("m.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    const BASE: &str = "[model]\nweights = \"w.safetensors\"\n";

    #[test]
    fn points_and_repeats() {
        let tmp = tempfile::tempdir().unwrap();
        let m = manifest(
            tmp.path(),
            &format!("{BASE}[experiment]\nseed = 5\nrepeats = 3\n[data]\nseed = 7\n"),
        );
        let sweep = expand(&["search.beta=0,0.02".to_string()], &[]).unwrap();
        let runs = runs(&m, &["data.calib_images=32".into()], &sweep, None).unwrap();
        let one = super::runs(&m, &[], &sweep, Some(2)).unwrap();
        assert_eq!(one.len(), 2);
        assert_eq!(one[1].label(), "m--beta=0.02 repeat 2");
        let e = super::runs(&m, &[], &sweep, Some(3))
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("there is no repeat 3: the experiment has 3 (0..2)"),
            "{e}"
        );
        assert_eq!(runs.len(), 6);
        let labels: Vec<String> = runs.iter().map(RunSpec::label).collect();
        assert_eq!(labels[0], "m--beta=0 repeat 0");
        assert_eq!(labels[5], "m--beta=0.02 repeat 2");
        let r = &runs[4].resolved.manifest;
        assert_eq!(r.experiment.name, "m--beta=0.02");
        assert_eq!(r.search.beta, mpq_vocab::BetaSetting::Fixed(0.02));
        assert_eq!(r.data.calib_images, 32);
        assert_eq!(
            (r.experiment.seed, r.data.seed, r.data.subset_seed),
            (6, 8, 1)
        );
        // A repeat's resolved manifest is a manifest of exactly that run.
        assert_eq!(r.experiment.repeats, 1);
        assert_eq!(runs[4].repeat, Some(1));
        assert_eq!(runs[4].resolved.repeat, Some(1));
        assert_eq!(
            runs[4].sets,
            ["search.beta=0.02", "experiment.name=\"m--beta=0.02\""]
        );
        // Different repeats, different input keys; same repeat of two points too.
        let keys: std::collections::BTreeSet<String> = runs
            .iter()
            .map(|r| crate::fingerprint::input_key(&r.resolved, &[]).unwrap().key)
            .collect();
        assert_eq!(keys.len(), 6);
    }

    #[test]
    fn a_single_run_is_the_manifest() {
        let tmp = tempfile::tempdir().unwrap();
        let m = manifest(tmp.path(), &format!("{BASE}[experiment]\nname = \"1\"\n"));
        let runs = runs(&m, &[], &expand(&[], &[]).unwrap(), None).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].repeat, None);
        assert!(runs[0].sets.is_empty());
        assert_eq!(runs[0].label(), "1");
        // Repeat 0 of one is the manifest itself; there is no repeat 1.
        let r = &runs[0].resolved;
        assert_eq!(r.repeat(0).unwrap(), *r);
        let e = r.repeat(1).unwrap_err().to_string();
        assert!(
            e.ends_with("experiment.repeats: there is no repeat 1: the experiment has 1 (0..0)"),
            "{e}"
        );
        // A name that reads as a number stays a string through the point's --set.
        let sweep = expand(&["data.seed=1,2".to_string()], &[]).unwrap();
        let runs = super::runs(&m, &[], &sweep, None).unwrap();
        assert_eq!(runs[1].resolved.manifest.experiment.name, "1--seed=2");
    }
}
