//! The body of each `mpq` command: it calls the library and prints what the user reads. The
//! binary (`src/main.rs`) only parses arguments into these functions' typed parameters.
//! Nothing here computes a result, so editing a message never makes a stored run stale.
use crate::bench::{bench_search, search_path, BenchOptions};
use crate::expand;
use crate::fingerprint::input_key;
use crate::inputs::inputs;
use crate::reproduce::{plan, reproduce as bring_up_to_date, write_reports, ReproduceOptions};
use crate::run as run_mod;
use crate::submit::{self, Submission, ToSubmit, Unfinished};
use crate::system::set_threads;
use crate::validate::collect_valid;
use anyhow::{anyhow, bail, Result};
use mpq_data::prepare::{prepare_folder, PrepareOptions};
use mpq_data::{Interpolation, OnBadImage, Preprocess, StoredDtype};
use mpq_models::qmodel::Precision;
use mpq_models::{Arch, ArchName};
use mpq_stats::{wilson, Correctness, Paired, LEVEL_95};
use mpq_vocab::Executor;
use std::path::{Path, PathBuf};

/// Options of `mpq run` beyond the manifests.
#[derive(Clone, Debug)]
pub struct RunArgs {
    /// `--set key=value` overrides.
    pub sets: Vec<String>,
    /// `--sweep key=v1,v2,...`: every manifest runs at each point of their product.
    pub sweeps: Vec<String>,
    /// Only this repeat of each manifest (`experiment.repeats`).
    pub repeat: Option<u32>,
    pub quiet: bool,
    pub executor: Executor,
    /// `--executor slurm`: wait for the job array to end.
    pub wait: bool,
}

/// `mpq run`: every run of every manifest (its sweep points and repeats), each checked
/// before the first one runs; here, or as a Slurm job array.
pub fn run(manifests: &[PathBuf], a: &RunArgs) -> Result<()> {
    let sweep = crate::sweep::expand(&a.sweeps, &a.sets)?;
    let mut runs = vec![];
    for manifest in collect_valid(manifests, &a.sets)? {
        runs.extend(expand::runs(&manifest, &a.sets, &sweep, a.repeat)?);
    }
    if a.executor == Executor::Slurm {
        // What each run reads must be there before anything is submitted.
        let mut keys = vec![];
        for r in &runs {
            let (files, missing) = inputs(&r.resolved);
            if let Some(first) = missing.first() {
                bail!("{}: {first}", r.manifest.display());
            }
            keys.push(input_key(&r.resolved, &files)?);
        }
        let to_submit: Vec<ToSubmit> = runs
            .iter()
            .zip(&keys)
            .map(|(run, key)| ToSubmit { run, key })
            .collect();
        let subs = submit::submit(&to_submit, &a.sets)?;
        return slurm_outcome(
            &subs,
            a.wait,
            "when they have finished, their results are in the results directory",
        );
    }
    for spec in runs {
        let label = spec.label();
        let manifest = spec.manifest.clone();
        let o = run_mod::run_resolved(spec.resolved, a.quiet)?;
        let r = &o.tables.run;
        let resumed = if o.resumed_evals > 0 {
            format!(
                " ({} answered from the journal of an interrupted run)",
                o.resumed_evals
            )
        } else {
            String::new()
        };
        let which = if label == manifest_stem(&manifest) {
            String::new()
        } else {
            format!(" [{label}]")
        };
        println!(
            "{}{which}: {} layers, FP32 top-1 {:.2}%, all-{} top-1 {:.2}%, {} evaluations{resumed} in {:.1}s -> {}",
            manifest.display(),
            r.n_layers,
            100.0 * r.fp32_top1,
            r.high_pair,
            100.0 * r.high_top1,
            r.evals,
            r.wall_s,
            o.dir.display()
        );
    }
    Ok(())
}

fn manifest_stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// After a submission: the job ids and how to follow them; with `wait`, waits, then names
/// every task that did not finish its run (an error if there is one).
fn slurm_outcome(subs: &[Submission], wait: bool, then: &str) -> Result<()> {
    for s in subs {
        println!("submitted {s}");
    }
    if !wait {
        println!("follow them with `mpq status`; {then}");
        return Ok(());
    }
    let unfinished = submit::wait(subs, &mut |l| println!("{l}"))?;
    unfinished_error(&unfinished, subs.iter().map(|s| s.tasks.len()).sum())
}

/// One line per task that did not finish its run, then the error saying how many.
fn unfinished_error(unfinished: &[Unfinished], tasks: usize) -> Result<()> {
    for u in unfinished {
        let repeat = u.repeat.map(|r| format!(" repeat {r}")).unwrap_or_default();
        println!(
            "{}{repeat}: {} (job {}_{}): {} (log {})",
            u.experiment,
            u.state,
            u.job,
            u.task,
            u.reason,
            u.log.display()
        );
    }
    if !unfinished.is_empty() {
        bail!(
            "{} of {tasks} Slurm task(s) did not finish their run (listed above)",
            unfinished.len()
        );
    }
    Ok(())
}

/// `mpq reproduce`.
pub fn reproduce(opts: &ReproduceOptions) -> Result<()> {
    let (_, s) = bring_up_to_date(opts, &mut |l| println!("{l}"))?;
    if opts.dry_run {
        println!(
            "dry run: {} to run, {} up to date, {} skipped",
            s.to_run, s.up_to_date, s.skipped
        );
        return Ok(());
    }
    if !s.submitted.is_empty() && !opts.wait {
        println!(
            "{} submitted, {} up to date, {} skipped; follow them with `mpq status`; when they \
             have finished, `mpq report` writes the reports (or use --wait)",
            s.to_run, s.up_to_date, s.skipped
        );
        return Ok(());
    }
    if let Some(n) = s.reports {
        println!("reports: {n} files under {}", opts.reports.display());
    }
    println!(
        "{} run, {} up to date, {} skipped",
        s.ran, s.up_to_date, s.skipped
    );
    unfinished_error(&s.unfinished, s.to_run)
}

/// `mpq status`: where each run of the plan stands, then the counts.
pub fn status(opts: &ReproduceOptions) -> Result<()> {
    let entries = plan(opts)?;
    let (rows, warning) = crate::status::status(&entries)?;
    if let Some(w) = warning {
        println!("{w}");
    }
    for r in &rows {
        println!("{}: {}", r.name, r.state);
    }
    println!("{}", crate::status::counts(&rows));
    Ok(())
}

/// `mpq eval`: FP32 and every layer at W8A8, W6A6, W4A4 (and the manifest's pairs), on the
/// held-out images, each top-1 with its 95% Wilson interval and each change against FP32 with
/// the exact McNemar p-value (the same images, compared image by image).
pub fn eval(manifest: &Path, sets: &[String]) -> Result<()> {
    let (r, e) = run_mod::evaluate(manifest, sets)?;
    let m = &r.manifest;
    let (count, split, which) = if e.held_out {
        (m.data.test_images, m.data.test_split, "held-out")
    } else {
        (
            m.data.search_images,
            m.data.search_split,
            "search (data.test_images = 0)",
        )
    };
    println!(
        "{}: {} on {} {which} images of split \"{split}\"; top-1 with its 95% Wilson interval, \
         change against FP32 with the exact McNemar p-value",
        manifest.display(),
        m.model.arch,
        count.min(e.fp32.len()),
    );
    let top1 = |c: &Correctness| -> Result<String> {
        let i = wilson(c.correct(), c.len() as u64, LEVEL_95)?;
        Ok(format!(
            "{:6.2}% [{:.2}, {:.2}]",
            100.0 * c.top1(),
            100.0 * i.lo,
            100.0 * i.hi
        ))
    };
    println!("  {:<9} {}", "FP32", top1(&e.fp32)?);
    for (pair, c) in &e.uniform {
        let p = Paired::of(c, &e.fp32)?;
        println!(
            "  all {:<5} {}  {:+.2} points (p = {:.3})",
            pair.to_string(),
            top1(c)?,
            100.0 * p.difference(),
            p.mcnemar()
        );
    }
    Ok(())
}

/// `mpq validate`.
pub fn validate(paths: &[PathBuf], sets: &[String]) -> Result<()> {
    let n = collect_valid(paths, sets)?.len();
    println!("{n} manifest(s) valid");
    Ok(())
}

/// Options of `mpq train` beyond the architecture (`None`: the architecture's default).
#[derive(Clone, Debug, Default)]
pub struct TrainOptions {
    pub out: Option<PathBuf>,
    pub epochs: Option<usize>,
    pub images_per_epoch: Option<usize>,
    pub seed: Option<u64>,
    /// Worker threads (0 = all cores).
    pub threads: usize,
}

/// `mpq train`: an embedded model on the embedded dataset, saved as safetensors.
pub fn train(arch: ArchName, o: &TrainOptions) -> Result<()> {
    set_threads(o.threads);
    if !arch.is_embedded() {
        let embedded: Vec<String> = ArchName::embedded().map(|a| a.to_string()).collect();
        return Err(anyhow!(
            "--arch: {arch} is not an embedded model ({})",
            embedded.join(", ")
        ));
    }
    let mut cfg = mpq_models::train::TrainConfig::for_arch(arch);
    cfg.epochs = o.epochs.unwrap_or(cfg.epochs);
    cfg.images_per_epoch = o.images_per_epoch.unwrap_or(cfg.images_per_epoch);
    cfg.seed = o.seed.unwrap_or(cfg.seed);
    let out = o.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!("experiments/embedded/weights/{arch}.safetensors"))
    });
    let t = std::time::Instant::now();
    let w = mpq_models::train::train(&Arch::new(arch), &cfg, &mut |l| println!("{arch} {l}"))?;
    mpq_models::weights::save_weights(&w, &out)?;
    println!(
        "{arch}: trained in {:.0}s -> {}",
        t.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(())
}

/// `mpq report`: the reports of the plan's current runs, running nothing.
pub fn report(opts: &ReproduceOptions) -> Result<()> {
    let entries = plan(opts)?;
    let written = write_reports(&entries, &opts.root, &opts.reports)?;
    println!(
        "reports: {} files under {}",
        written.len(),
        opts.reports.display()
    );
    Ok(())
}

/// `mpq query`: to `out`, or standard output.
pub fn query(
    sql: &str,
    results: &Path,
    format: mpq_report::query::Format,
    out: Option<&Path>,
) -> Result<()> {
    let mut df = mpq_report::query::query(results, sql)?;
    match out {
        Some(path) => {
            let mut buf = Vec::new();
            mpq_report::query::write(&mut df, format, &mut buf)?;
            mpq_io::write_atomic(path, &buf)?;
        }
        None => mpq_report::query::write(&mut df, format, &mut std::io::stdout().lock())?,
    }
    Ok(())
}

/// `mpq bench depthwise`.
pub fn bench_depthwise(reps: usize) -> Result<()> {
    print!("{}", mpq_models::bench::depthwise_markdown(reps)?);
    Ok(())
}

/// `mpq bench search`.
pub fn bench_search_cmd(o: &BenchOptions) -> Result<()> {
    bench_search(o, &mut |l| println!("{l}"))?;
    Ok(())
}

/// `mpq bench search-path` (a child of `mpq bench search`).
pub fn bench_search_path(manifest: &Path, sets: &[String]) -> Result<()> {
    print!("{}", search_path(manifest, sets)?);
    Ok(())
}

/// `mpq bench forward`: one Markdown row per architecture.
pub fn bench_forward(
    archs: &[ArchName],
    batch: usize,
    size: Option<usize>,
    reps: usize,
    threads: usize,
    candle: bool,
) -> Result<()> {
    set_threads(threads);
    println!("{}", mpq_models::bench::ForwardBench::MARKDOWN_HEADER);
    for &a in archs {
        let a = Arch::new(a);
        let b = mpq_models::bench::forward(&a, batch, size.unwrap_or(a.input[1]), reps, candle)?;
        println!("{}", b.markdown_row());
    }
    Ok(())
}

/// Options of `mpq data prepare` (see `mpq_data::prepare`).
#[derive(Clone, Debug)]
pub struct PrepareArgs {
    pub resize: usize,
    pub crop: usize,
    pub interpolation: Interpolation,
    pub mean: Option<Vec<f32>>,
    pub std: Option<Vec<f32>>,
    pub dtype: StoredDtype,
    pub skip_corrupt: bool,
    pub allow_empty_classes: bool,
    pub threads: usize,
}

/// `mpq data prepare`.
pub fn data_prepare(folder: &Path, out: &Path, a: &PrepareArgs) -> Result<()> {
    set_threads(a.threads);
    let triple = |flag: &str, v: &Option<Vec<f32>>, d: [f32; 3]| -> Result<[f32; 3]> {
        v.clone().map_or(Ok(d), |v| {
            v.try_into()
                .map_err(|_| anyhow!("--{flag}: expected three comma-separated numbers"))
        })
    };
    let opts = PrepareOptions {
        preprocess: Preprocess {
            resize: a.resize,
            crop: a.crop,
            interpolation: a.interpolation,
            mean: triple("mean", &a.mean, mpq_data::preprocess::IMAGENET_MEAN)?,
            std: triple("std", &a.std, mpq_data::preprocess::IMAGENET_STD)?,
        },
        dtype: a.dtype,
        on_bad: if a.skip_corrupt {
            OnBadImage::Skip
        } else {
            OnBadImage::Fail
        },
        allow_empty: a.allow_empty_classes,
        ..PrepareOptions::default()
    };
    let t = std::time::Instant::now();
    let mut last = std::time::Instant::now();
    let r = prepare_folder(folder, out, &opts, &mut |done, total| {
        if last.elapsed().as_secs() >= 10 || done == total {
            eprintln!("{done}/{total} images");
            last = std::time::Instant::now();
        }
    })?;
    for (file, why) in &r.skipped {
        eprintln!("skipped {}: {why}", file.display());
    }
    println!(
        "{}: {} images of {} classes ({} skipped) in {:.0}s -> {}",
        folder.display(),
        r.images,
        r.classes,
        r.skipped.len(),
        t.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(())
}

/// `mpq logits`.
pub fn logits(
    arch: ArchName,
    weights: &Path,
    input: &Path,
    out: &Path,
    folded: bool,
) -> Result<()> {
    let precision = if folded {
        Precision::Fp32Folded
    } else {
        Precision::Fp32
    };
    mpq_models::compare::logits_file(&Arch::new(arch), weights, input, out, precision)
}
