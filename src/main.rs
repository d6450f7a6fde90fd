//! `mpq`: command-line entry point. Argument parsing into typed values and one call per
//! command (`mpq_runner::commands`); the work lives in the crates.
use anyhow::Result;
use clap::{Parser, Subcommand};
use mpq_runner::commands;
use mpq_runner::reproduce::ReproduceOptions;
use mpq_vocab::{ArchName, BitPair, Executor, Interpolation};
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
    /// results/<experiment>/<run_id>/*.parquet. A manifest with experiment.repeats = k is k
    /// runs; with --sweep, every point is a run.
    Run {
        #[arg(required = true)]
        manifests: Vec<PathBuf>,
        /// Override a manifest key, e.g. --set search.beta=0.02 (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        #[command(flatten)]
        sweep: SweepArgs,
        /// Only this repeat (0-based) of each manifest (experiment.repeats).
        #[arg(long)]
        repeat: Option<u32>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        #[command(flatten)]
        exec: ExecArgs,
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
        #[command(flatten)]
        sweep: SweepArgs,
        /// No progress bars.
        #[arg(long)]
        quiet: bool,
        /// Where the reports go.
        #[arg(long, default_value = "reports")]
        reports: PathBuf,
        #[command(flatten)]
        exec: ExecArgs,
    },
    /// Where each run of the suites stands: up to date, stale (what changed), not run,
    /// queued, running (step k of N), requeued, failed (why), interrupted, cancelled.
    Status {
        /// Suites (directories under the experiments root); default: all.
        suites: Vec<String>,
        #[arg(long, default_value = "experiments")]
        experiments: PathBuf,
        /// Only manifests whose experiment name, or path below the experiments root, contains
        /// this.
        #[arg(long)]
        filter: Option<String>,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        #[command(flatten)]
        sweep: SweepArgs,
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
        /// An embedded architecture.
        #[arg(long)]
        arch: ArchName,
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
        arch: ArchName,
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

/// `--sweep`, on the commands that expand manifests into runs.
#[derive(clap::Args)]
struct SweepArgs {
    /// Run each manifest at every value of a key, e.g. --sweep search.beta=0,0.02
    /// (repeatable: the cartesian product); each point is a run with its own experiment name.
    #[arg(long = "sweep", value_name = "KEY=V1,V2,...")]
    sweeps: Vec<String>,
}

/// Where the runs are made.
#[derive(clap::Args)]
struct ExecArgs {
    /// local: in this process; slurm: as one Slurm job array (docs/cluster.md).
    #[arg(long, default_value_t = Executor::Local)]
    executor: Executor,
    /// With --executor slurm: wait until the job array has ended (then write the reports).
    #[arg(long)]
    wait: bool,
}

impl ExecArgs {
    /// The executor, and whether to wait for it.
    fn checked(self) -> Result<(Executor, bool)> {
        if self.wait && self.executor != Executor::Slurm {
            anyhow::bail!("--wait: only with --executor slurm (local runs are waited for)");
        }
        Ok((self.executor, self.wait))
    }
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
        #[arg(long = "pair", default_values_t = [BitPair::W6A6, BitPair::W4A8, BitPair::W4A4])]
        pairs: Vec<BitPair>,
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
        /// An architecture (repeatable: one table row each).
        #[arg(long, required = true)]
        arch: Vec<ArchName>,
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
        #[arg(long, default_value_t = Interpolation::Bilinear)]
        interpolation: Interpolation,
        /// Per-channel mean, e.g. 0.5,0.5,0.5 [default: ImageNet's].
        #[arg(long, value_delimiter = ',')]
        mean: Option<Vec<f32>>,
        /// Per-channel standard deviation [default: ImageNet's].
        #[arg(long, value_delimiter = ',')]
        std: Option<Vec<f32>>,
        /// f16 or f32.
        #[arg(long, default_value = "f16", value_parser = parse_dtype)]
        dtype: mpq_data::StoredDtype,
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

fn parse_dtype(s: &str) -> Result<mpq_data::StoredDtype, String> {
    mpq_data::StoredDtype::parse(s).ok_or_else(|| format!("expected f16 or f32, got {s:?}"))
}

fn main() -> ExitCode {
    match dispatch(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mpq: {}", format!("{e:#}").replace('\n', " "));
            // Stopped at the journal by SIGTERM/SIGUSR1: resumable (docs/cluster.md).
            if e.chain()
                .any(|c| c.is::<mpq_runner::interrupt::Interrupted>())
            {
                return ExitCode::from(mpq_cluster::EXIT_INTERRUPTED);
            }
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Run {
            manifests,
            sets,
            sweep,
            repeat,
            quiet,
            exec,
        } => {
            let (executor, wait) = exec.checked()?;
            commands::run(
                &manifests,
                &commands::RunArgs {
                    sets,
                    sweeps: sweep.sweeps,
                    repeat,
                    quiet,
                    executor,
                    wait,
                },
            )
        }
        Cmd::Reproduce {
            suites,
            experiments,
            filter,
            force,
            dry_run,
            sets,
            sweep,
            quiet,
            reports,
            exec,
        } => {
            let (executor, wait) = exec.checked()?;
            commands::reproduce(&ReproduceOptions {
                root: experiments,
                suites,
                filter,
                force,
                dry_run,
                quiet,
                sets,
                sweeps: sweep.sweeps,
                executor,
                wait,
                reports,
            })
        }
        Cmd::Status {
            suites,
            experiments,
            filter,
            sets,
            sweep,
        } => commands::status(&ReproduceOptions {
            root: experiments,
            suites,
            filter,
            sets,
            sweeps: sweep.sweeps,
            ..Default::default()
        }),
        Cmd::Eval { manifest, sets } => commands::eval(&manifest, &sets),
        Cmd::Validate { paths, sets } => commands::validate(&paths, &sets),
        Cmd::Train {
            arch,
            out,
            epochs,
            images_per_epoch,
            seed,
            threads,
        } => commands::train(
            arch,
            &commands::TrainOptions {
                out,
                epochs,
                images_per_epoch,
                seed,
                threads,
            },
        ),
        Cmd::Report {
            suites,
            experiments,
            out,
            sets,
        } => commands::report(&ReproduceOptions {
            root: experiments,
            suites,
            sets,
            reports: out,
            ..Default::default()
        }),
        Cmd::Query {
            sql,
            results,
            format,
            out,
        } => commands::query(&sql, &results, format, out.as_deref()),
        Cmd::Bench { what } => match what {
            BenchCmd::Depthwise { reps } => commands::bench_depthwise(reps),
            BenchCmd::Search {
                models,
                pairs,
                sets,
            } => commands::bench_search_cmd(&mpq_runner::bench::BenchOptions {
                exe: std::env::current_exe()?,
                manifests: models,
                pairs,
                sets,
            }),
            BenchCmd::Forward {
                arch,
                batch,
                size,
                reps,
                threads,
                candle,
            } => commands::bench_forward(&arch, batch, size, reps, threads, candle),
            BenchCmd::SearchPath { manifest, sets } => {
                commands::bench_search_path(&manifest, &sets)
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
        } => commands::data_prepare(
            &folder,
            &out,
            &commands::PrepareArgs {
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
        ),
        Cmd::Logits {
            arch,
            weights,
            input,
            out,
            folded,
        } => commands::logits(arch, &weights, &input, &out, folded),
    }
}
