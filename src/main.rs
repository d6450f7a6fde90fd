//! `mpq`: command-line entry point. Argument parsing and dispatch only; the work lives in the
//! crates (runner, models, data, report).
use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "mpq",
    version,
    about = "Greedy mixed-precision post-training quantization, reproduced"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run manifests (files, or directories of them): calibrate, search, write
    /// results/<experiment>/<run_id>/*.parquet.
    Run {
        #[arg(required = true)]
        manifests: Vec<PathBuf>,
        /// Override a manifest key, e.g. --set search.beta=0.02 (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Bring suites up to date (run every manifest whose results are missing or stale, resume
    /// interrupted runs), then regenerate the reports.
    Reproduce {
        /// Suites (directories under the experiments root); default: all.
        suites: Vec<String>,
        /// The experiments root.
        #[arg(long, default_value = "experiments")]
        experiments: PathBuf,
        /// Only manifests whose experiment name, or path below the experiments root, contains
        /// this.
        #[arg(long)]
        filter: Option<String>,
        /// Run even what is up to date.
        #[arg(long)]
        force: bool,
        /// List what would run and why, and stop.
        #[arg(long)]
        dry_run: bool,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// No progress bars.
        #[arg(long)]
        quiet: bool,
        /// Where the reports go.
        #[arg(long, default_value = "reports")]
        reports: PathBuf,
    },
    /// Top-1 of a manifest's model in FP32, all at the high pair and all at the low pair.
    Eval {
        manifest: PathBuf,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
    /// Check manifests (files or directories of them) without running them.
    Validate {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
    /// Train an embedded model on the embedded dataset and save its weights.
    Train {
        /// resnet-tiny or mobilenet-tiny.
        #[arg(long)]
        arch: String,
        /// Output safetensors file [default: experiments/embedded/weights/<arch>.safetensors].
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long)]
        epochs: Option<usize>,
        #[arg(long)]
        images_per_epoch: Option<usize>,
        #[arg(long)]
        seed: Option<u64>,
        /// Worker threads (0 = all cores).
        #[arg(long, default_value_t = 0)]
        threads: usize,
    },
    /// Regenerate the reports (figures, tables) of every suite from the up-to-date results,
    /// without running anything: a manifest without a current run shows as "not run".
    Report {
        /// Suites (directories under the experiments root); default: all.
        suites: Vec<String>,
        #[arg(long, default_value = "experiments")]
        experiments: PathBuf,
        #[arg(long, default_value = "reports")]
        out: PathBuf,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
    /// SQL over every finished run's tables (steps, candidates, layers, runs), e.g.
    /// `mpq query "SELECT arch, pair, strategy, max(top1) FROM steps GROUP BY 1,2,3"`.
    Query {
        sql: String,
        #[arg(long, default_value = "results")]
        results: PathBuf,
        /// table, csv, json or parquet.
        #[arg(long, default_value = "table")]
        format: mpq_report::query::Format,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        what: BenchCmd,
    },
    /// Datasets.
    Data {
        #[command(subcommand)]
        what: DataCmd,
    },
    /// A model's logits for images from a safetensors file (tensor `images`), written as tensor
    /// `logits` (for tools/compare_logits.py).
    Logits {
        #[arg(long)]
        arch: String,
        /// Safetensors or .pth state dict in the reference library's names.
        #[arg(long)]
        weights: PathBuf,
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Batch-norm folded into the weights (what the quantized model starts from) instead
        /// of applied as stored.
        #[arg(long)]
        folded: bool,
    },
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Depthwise convolution: candle's grouped path against this project's fast paths.
    Depthwise {
        #[arg(long, default_value_t = 5)]
        reps: usize,
    },
    /// Search cost: naive greedy against prefix reuse, parallel candidates and the faster
    /// strategies, on the same inputs, with their agreement (a Markdown table).
    Search {
        /// Manifests of the models to measure (pair and strategy are overridden).
        #[arg(long = "model", default_values = [
            "experiments/embedded/resnet-tiny-w4a8-greedy.toml",
            "experiments/embedded/mobilenet-tiny-w4a8-greedy.toml",
        ])]
        models: Vec<PathBuf>,
        /// Bit pairs.
        #[arg(long = "pair", default_values = ["W6A6", "W4A8", "W4A4"])]
        pairs: Vec<String>,
        /// Extra overrides for every path, e.g. --set data.search_images=256.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
    /// One path of `bench search` (run by it in a child process): a search, reported as TOML.
    #[command(hide = true)]
    SearchPath {
        manifest: PathBuf,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
    /// Images per second of an architecture's forward pass (FP32 folded, and W8A8 calibrated
    /// on a few random images) on random weights and inputs, and where the W8A8 time goes.
    Forward {
        /// One of the known architectures (repeatable: one table row each).
        #[arg(long, required = true)]
        arch: Vec<String>,
        #[arg(long, default_value_t = 32)]
        batch: usize,
        /// Input side [default: the architecture's, 224 or 299].
        #[arg(long)]
        size: Option<usize>,
        #[arg(long, default_value_t = 3)]
        reps: usize,
        /// Worker threads (0 = all cores).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Measure the device-generic candle tensor-op path instead of the CPU kernels.
        #[arg(long)]
        candle: bool,
    },
}

#[derive(Subcommand)]
enum DataCmd {
    /// Decode an image folder (one subfolder per class) once with torchvision's evaluation
    /// transform into a prepared tensor file (docs/datasets.md).
    Prepare {
        folder: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 256)]
        resize: usize,
        #[arg(long, default_value_t = 224)]
        crop: usize,
        /// bilinear or bicubic.
        #[arg(long, default_value = "bilinear")]
        interpolation: String,
        /// Per-channel mean, e.g. 0.5,0.5,0.5 [default: ImageNet's].
        #[arg(long, value_delimiter = ',')]
        mean: Option<Vec<f32>>,
        /// Per-channel standard deviation [default: ImageNet's].
        #[arg(long, value_delimiter = ',')]
        std: Option<Vec<f32>>,
        /// f16 or f32.
        #[arg(long, default_value = "f16")]
        dtype: String,
        /// Leave out undecodable images (counted) instead of stopping.
        #[arg(long)]
        skip_corrupt: bool,
        /// Accept class folders without images (they keep their label index).
        #[arg(long)]
        allow_empty_classes: bool,
        /// Worker threads (0 = all cores).
        #[arg(long, default_value_t = 0)]
        threads: usize,
    },
}

fn main() -> ExitCode {
    match dispatch(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mpq: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Run {
            manifests,
            sets,
            quiet,
        } => {
            // Every manifest is checked before the first one runs.
            let files = mpq_runner::validate::collect_valid(&manifests, &sets)?;
            for manifest in files {
                let o = mpq_runner::run(
                    &manifest,
                    &mpq_runner::RunOptions {
                        sets: sets.clone(),
                        quiet,
                    },
                )?;
                let resumed = if o.resumed_evals > 0 {
                    format!(
                        " ({} answered from the journal of an interrupted run)",
                        o.resumed_evals
                    )
                } else {
                    String::new()
                };
                println!(
                    "{}: {} layers, FP32 top-1 {:.2}%, W8A8 top-1 {:.2}%, {} evaluations{resumed} in {:.1}s -> {}",
                    manifest.display(),
                    o.n_layers,
                    100.0 * o.fp32_top1,
                    100.0 * o.int8_top1,
                    o.evals,
                    o.wall_s,
                    o.dir.display()
                );
            }
            Ok(())
        }
        Cmd::Reproduce {
            suites,
            experiments,
            filter,
            force,
            dry_run,
            sets,
            quiet,
            reports,
        } => {
            let opts = mpq_runner::reproduce::ReproduceOptions {
                root: experiments,
                suites,
                filter,
                force,
                dry_run,
                quiet,
                sets,
                reports,
            };
            let (_, s) = mpq_runner::reproduce::reproduce(&opts, &mut |l| println!("{l}"))?;
            if dry_run {
                println!(
                    "dry run: {} to run, {} up to date, {} skipped",
                    s.to_run, s.up_to_date, s.skipped
                );
            } else {
                println!(
                    "{} run, {} up to date, {} skipped",
                    s.ran, s.up_to_date, s.skipped
                );
            }
            Ok(())
        }
        Cmd::Eval { manifest, sets } => {
            let r = mpq_runner::manifest::load(&manifest, &sets)?;
            let (fp32, high, low) = mpq_runner::run::evaluate(&manifest, &sets)?;
            let q = &r.manifest.quant;
            println!(
                "{}: {} on {} {} images: FP32 {:.2}%, all {} {:.2}%, all {} {:.2}%",
                manifest.display(),
                r.manifest.model.arch,
                r.manifest.data.search_images,
                r.manifest.data.search_split,
                100.0 * fp32,
                q.high,
                100.0 * high,
                q.pair,
                100.0 * low
            );
            Ok(())
        }
        Cmd::Validate { paths, sets } => {
            let n = mpq_runner::validate::collect_valid(&paths, &sets)?.len();
            println!("{n} manifest(s) valid");
            Ok(())
        }
        Cmd::Train {
            arch,
            out,
            epochs,
            images_per_epoch,
            seed,
            threads,
        } => {
            mpq_runner::run::set_threads(threads);
            let a = mpq_models::Arch::by_name(&arch)
                .filter(|a| mpq_models::Arch::EMBEDDED.contains(&a.name.as_str()))
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "--arch: {arch:?} is not an embedded model ({:?})",
                        mpq_models::Arch::EMBEDDED
                    )
                })?;
            let mut cfg = mpq_models::train::TrainConfig::for_arch(&arch);
            cfg.epochs = epochs.unwrap_or(cfg.epochs);
            cfg.images_per_epoch = images_per_epoch.unwrap_or(cfg.images_per_epoch);
            cfg.seed = seed.unwrap_or(cfg.seed);
            let out = out.unwrap_or_else(|| {
                PathBuf::from(format!("experiments/embedded/weights/{arch}.safetensors"))
            });
            let t = std::time::Instant::now();
            let w = mpq_models::train::train(&a, &cfg, &mut |l| println!("{arch} {l}"))?;
            mpq_models::weights::save_weights(&w, &out)?;
            println!(
                "{arch}: trained in {:.0}s -> {}",
                t.elapsed().as_secs_f64(),
                out.display()
            );
            Ok(())
        }
        Cmd::Report {
            suites,
            experiments,
            out,
            sets,
        } => {
            let opts = mpq_runner::reproduce::ReproduceOptions {
                root: experiments.clone(),
                suites,
                sets,
                ..Default::default()
            };
            let entries = mpq_runner::reproduce::plan(&opts)?;
            let written = mpq_runner::reproduce::write_reports(&entries, &experiments, &out)?;
            println!("reports: {} files under {}", written.len(), out.display());
            Ok(())
        }
        Cmd::Query {
            sql,
            results,
            format,
            out,
        } => {
            let mut df = mpq_report::query::query(&results, &sql)?;
            match out {
                Some(path) => {
                    let mut buf = Vec::new();
                    mpq_report::query::write(&mut df, format, &mut buf)?;
                    mpq_report::write_atomic(&path, &buf)?;
                }
                None => mpq_report::query::write(&mut df, format, &mut std::io::stdout().lock())?,
            }
            Ok(())
        }
        Cmd::Bench { what } => match what {
            BenchCmd::Depthwise { reps } => {
                print!("{}", mpq_models::bench::depthwise_markdown(reps)?);
                Ok(())
            }
            BenchCmd::Search {
                models,
                pairs,
                sets,
            } => {
                let o = mpq_runner::bench::BenchOptions {
                    exe: std::env::current_exe()?,
                    manifests: models,
                    pairs,
                    sets,
                };
                mpq_runner::bench::bench_search(&o, &mut |l| println!("{l}"))?;
                Ok(())
            }
            BenchCmd::Forward {
                arch,
                batch,
                size,
                reps,
                threads,
                candle,
            } => {
                mpq_runner::run::set_threads(threads);
                let archs = arch
                    .iter()
                    .map(|a| {
                        mpq_models::Arch::by_name(a)
                            .ok_or_else(|| anyhow::anyhow!("--arch: unknown architecture {a:?}"))
                    })
                    .collect::<Result<Vec<_>>>()?;
                println!("{}", mpq_models::bench::ForwardBench::MARKDOWN_HEADER);
                for a in &archs {
                    let b = mpq_models::bench::forward(
                        a,
                        batch,
                        size.unwrap_or(a.input[1]),
                        reps,
                        candle,
                    )?;
                    println!("{}", b.markdown_row());
                }
                Ok(())
            }
            BenchCmd::SearchPath { manifest, sets } => {
                print!("{}", mpq_runner::bench::search_path(&manifest, &sets)?);
                Ok(())
            }
        },
        Cmd::Data {
            what:
                DataCmd::Prepare {
                    folder,
                    out,
                    resize,
                    crop,
                    interpolation,
                    mean,
                    std,
                    dtype,
                    skip_corrupt,
                    allow_empty_classes,
                    threads,
                },
        } => {
            use mpq_data::prepare::{prepare_folder, PrepareOptions};
            mpq_runner::run::set_threads(threads);
            let triple = |flag: &str, v: Option<Vec<f32>>, d: [f32; 3]| -> Result<[f32; 3]> {
                v.map_or(Ok(d), |v| {
                    v.try_into().map_err(|_| {
                        anyhow::anyhow!("--{flag}: expected three comma-separated numbers")
                    })
                })
            };
            let pre = mpq_data::Preprocess {
                resize,
                crop,
                interpolation: mpq_data::Interpolation::parse(&interpolation).ok_or_else(|| {
                    anyhow::anyhow!(
                        "--interpolation: expected bilinear or bicubic, got {interpolation:?}"
                    )
                })?,
                mean: triple("mean", mean, mpq_data::preprocess::IMAGENET_MEAN)?,
                std: triple("std", std, mpq_data::preprocess::IMAGENET_STD)?,
            };
            let opts = PrepareOptions {
                preprocess: pre,
                dtype: mpq_data::StoredDtype::parse(&dtype).ok_or_else(|| {
                    anyhow::anyhow!("--dtype: expected f16 or f32, got {dtype:?}")
                })?,
                on_bad: if skip_corrupt {
                    mpq_data::OnBadImage::Skip
                } else {
                    mpq_data::OnBadImage::Fail
                },
                allow_empty: allow_empty_classes,
                ..PrepareOptions::default()
            };
            let t = std::time::Instant::now();
            let mut last = std::time::Instant::now();
            let r = prepare_folder(&folder, &out, &opts, &mut |done, total| {
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
        Cmd::Logits {
            arch,
            weights,
            input,
            out,
            folded,
        } => {
            let a = mpq_models::Arch::by_name(&arch)
                .ok_or_else(|| anyhow::anyhow!("--arch: unknown architecture {arch:?}"))?;
            let precision = if folded {
                mpq_models::qmodel::Precision::Fp32Folded
            } else {
                mpq_models::qmodel::Precision::Fp32
            };
            mpq_models::compare::logits_file(&a, &weights, &input, &out, precision)
        }
    }
}
