//! `gradscope`: run vanishing-gradient experiments, check their plans, draw
//! their charts.
//!
//! This binary is thin glue: parsing and training live in gradscope-train,
//! drawing in gradscope-plot. It owns the things only a program has: the
//! command line, the thread count, the device, Ctrl-C, and the progress bar.

#![deny(clippy::undocumented_unsafe_blocks)]

/// `writeln!` into a String (which cannot fail).
macro_rules! outln {
    ($buf:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($buf, $($arg)*);
    }};
}

mod commands;
mod malloc;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "gradscope",
    version,
    about = "Vanishing-gradient experiments on libtorch: train plain nets and their residual twins at many depths, record every layer's gradient, draw the charts.",
    after_help = "Start with:\n  gradscope example quickstart > quickstart.json\n  gradscope check quickstart.json\n  gradscope run quickstart.json\n  gradscope report results/quickstart\nWhat a file may say: gradscope list"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train every run of an experiment (variant × depth × seed), probing
    /// gradients as it goes, then draw the charts.
    ///
    /// Writes RESULTS/runs/RUN/{run.json,metrics.csv,gradients.csv,activations.csv},
    /// RESULTS/summary.csv and RESULTS/plots/. A run trains in RESULTS/runs/RUN.partial/
    /// and is renamed to RUN/ when it ends. If RESULTS already holds runs of this
    /// experiment, give --resume or --restart. One gradscope writes a results
    /// directory at a time (RESULTS/.gradscope.lock). Ctrl-C or SIGTERM stops
    /// promptly, marks the run "interrupted", keeps everything written, and exits
    /// with status 130; --resume continues.
    Run(commands::run::RunArgs),
    /// Gather the runs of several results directories (the shards of one
    /// sweep: results/NAME/shards/*) into one, then write its summary.csv,
    /// charts and report. Of two copies of a run, a completed one wins;
    /// copies trained with different settings are refused. Runs that no
    /// directory has are listed, and the rest is merged (exit status 0).
    /// Merging again is harmless.
    Merge {
        /// Results directories, e.g. results/quickstart/shards/*.
        #[arg(required = true)]
        results: Vec<PathBuf>,
        /// The merged results directory, e.g. results/quickstart.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Do not draw the charts and write the report.
        #[arg(long)]
        no_plot: bool,
    },
    /// Write a sweep as a Slurm job array: results/NAME/slurm/sweep.sbatch
    /// (N tasks, each `run EXP --shard I/N --resume --no-plot` into
    /// results/NAME/shards/I, with --requeue and --signal=B:TERM@120: a
    /// preempted task, or one near its time limit, saves a checkpoint; Slurm
    /// requeues a preempted one and it goes on from there, and a timed-out
    /// one goes on when the array is submitted again) and merge.sbatch
    /// (`merge` into results/NAME once the array has ended). --submit
    /// submits both.
    Slurm {
        /// The experiment file (JSON).
        experiment: PathBuf,
        #[command(flatten)]
        options: commands::slurm::Options,
        /// Submit the array and the merge job with sbatch and print their ids.
        #[arg(long)]
        submit: bool,
    },
    /// Check an experiment file as `run` would, without training: the file,
    /// the dataset's headers and sizes, every network of the plan; print
    /// the plan with parameters, multiplications and a rough time per run.
    Check {
        /// The experiment file (JSON).
        experiment: PathBuf,
        /// Also print which runs each of N shards trains (`run --shard
        /// I/N`) and its share of the estimated cost.
        #[arg(long, value_name = "N")]
        shards: Option<usize>,
        /// Estimate the wall time of `run --jobs N`: N runs at a time,
        /// longest first, each on --threads threads.
        #[arg(long, value_name = "N")]
        jobs: Option<usize>,
        /// Estimate at N intra-op threads per run [default: the number of
        /// CPUs divided by --jobs, at least 1, as `run` defaults].
        #[arg(long, value_name = "N")]
        threads: Option<i32>,
    },
    /// Print one of the experiment files shipped with gradscope
    /// (`gradscope example quickstart > quickstart.json`); without a name,
    /// list them.
    Example {
        /// quickstart, fashion-mlp, fashion-cnn, identity, …
        name: Option<String>,
    },
    /// Print the JSON Schema of an experiment file (as in
    /// docs/experiment.schema.json), for editors that complete and check
    /// JSON against a schema.
    Schema,
    /// List what an experiment file may say: model families and their
    /// fields, activations, inits, norms, dataset kinds and their fields.
    List,
    /// Write every run's gradients.csv, metrics.csv and activations.csv as
    /// one long table each, with run,variant,depth,seed in front
    /// (for pandas: pd.read_csv("RESULTS/export/gradients.csv")).
    Export {
        /// The results directory, e.g. results/quickstart.
        results: PathBuf,
        /// Where to write the tables [default: RESULTS/export].
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Measure training throughput and probe overhead against a PyTorch
    /// eager script on the same libtorch, and write results/bench/.
    ///
    /// Workloads: MLP depth 32 width 128 (plain, residual), He et al. CNN-20
    /// and CNN-56 on 1x28x28, batch 128; probing off, every step, every 10
    /// steps. Each measurement runs in its own process; the sides alternate
    /// A/B and B/A, and medians are reported.
    Bench(commands::bench::Args),
    /// One worker process of `run --jobs N` (started by `run`, which talks
    /// to it over stdin and stdout).
    #[command(hide = true)]
    Worker(commands::worker::WorkerArgs),
    /// One benchmark measurement in this process (used by `bench`).
    #[command(hide = true)]
    BenchOne(commands::bench::OneArgs),
    /// Count the multiplications and parameters of a named layer, module or
    /// model, layer by layer, and time its libtorch forward pass.
    ///
    /// Targets: conv5x5, reduce5x5 (the 1×1 argument on 28×28×192),
    /// inception-3a-naive, inception-3a (Szegedy et al. Table 1),
    /// identity-block, conv-block (ResNet-50), resnet50, resnet20, resnet56,
    /// resnet110 (He et al.'s CIFAR nets), inception-net.
    /// Without targets, all of them. Writes OUT/cost.csv and
    /// OUT/plots/cost_vs_time.{png,svg}.
    Cost(commands::cost::Args),
    /// Draw the charts of a results directory (one that has summary.csv)
    /// into RESULTS/plots/ as PNG and SVG.
    ///
    /// Layout: panels in a grid of at most three columns (a column per
    /// variant, a row per swept value), each with its legend beside the
    /// plot. Sizes: 600 px per column plus the legend (at least 800) and
    /// 500 px high per first row, 420 per further row, with 16 px tick
    /// labels; --width, --height, --font-scale and --y-scale change that,
    /// and `gradscope report` keeps them when it redraws stale charts.
    Plot {
        /// The results directory, e.g. results/quickstart.
        results: PathBuf,
        #[command(flatten)]
        style: commands::StyleArgs,
    },
    /// Put the runs of several results folders side by side: one set of
    /// charts in OUT/plots/ (each run labelled by its folder's name, every
    /// panel of a chart on the same axes), OUT/compare.md and a
    /// self-contained OUT/compare.html with the settings that differ
    /// between the folders and one runs table.
    ///
    /// Example: gradscope compare results/glorot-sigmoid results/glorot-tanh
    /// --out results/glorot-compare
    Compare {
        /// Two or more results directories (each with summary.csv).
        #[arg(required = true, num_args = 2..)]
        results: Vec<PathBuf>,
        /// Where the comparison goes (created; not one of the compared folders).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        #[command(flatten)]
        style: commands::StyleArgs,
    },
    /// Delete and swap the blocks of trained runs, and measure the gradient
    /// per path length (Veit et al. 2016): RUN/lesion.csv, RUN/paths.csv,
    /// lesion_summary.csv and the charts lesion_single, lesion_k and
    /// path_gradient. Takes MLP, CNN and bottleneck runs saved with
    /// "save_weights": true.
    Lesion {
        #[command(flatten)]
        args: commands::lesion::Args,
        #[command(flatten)]
        style: commands::StyleArgs,
    },
    /// The singular values of an MLP trunk's Jacobian ∂h(last hidden)/∂h(first
    /// hidden), exact by autograd in float64, at init and after training
    /// (Pennington, Schoenholz & Ganguli 2017): OUT/runs/RUN/jacobian.csv
    /// (step,example,index,singular_value), OUT/jacobian_summary.csv (mean
    /// s², spread of ln s, max/min) and OUT/plots/jacobian_spectrum. The
    /// trained spectrum needs "save_weights": true in "train".
    ///
    /// Example: gradscope jacobian results/isometry/runs/*
    Jacobian {
        #[command(flatten)]
        args: commands::jacobian::Args,
        #[command(flatten)]
        style: commands::StyleArgs,
    },
    /// Loss-landscape slices of trained runs (Li et al. 2018): the training
    /// loss at θ + αδ + βη on a grid, for two random filter-normalized
    /// directions δ, η around the saved weights θ. Writes
    /// OUT/runs/RUN/landscape.csv (alpha,beta,loss,error),
    /// OUT/landscape_summary.csv (local minima, non-convex share, roughness)
    /// and OUT/plots/loss_landscape and loss_slice. The runs must have been
    /// trained with "save_weights": true in "train".
    ///
    /// Example: gradscope landscape results/landscape/runs/plain-d20-s0
    /// results/landscape/runs/residual-d20-s0
    Landscape {
        #[command(flatten)]
        args: commands::landscape::Args,
        #[command(flatten)]
        style: commands::StyleArgs,
    },
    /// Compare a rerun with a published result, run by run: final train and
    /// test error and the decay per layer at the start and the end, each
    /// within the spread of the reference's seeds of the same net or a
    /// floor. Ends with one line, `reproduced: …` or `not reproduced: …`
    /// (exit status 1). Across CPUs expect agreement within seed noise,
    /// not bit for bit.
    ///
    /// Example: gradscope verify results/quickstart --against published/summary.csv
    Verify {
        /// The rerun: a results directory (or its summary.csv).
        results: PathBuf,
        /// The reference: a results directory or a summary.csv.
        #[arg(long, value_name = "DIR_OR_CSV")]
        against: PathBuf,
    },
    /// Write RESULTS/report.md and RESULTS/report.html (one self-contained
    /// page, to open in a browser): the runs table, what the numbers show
    /// beside the papers' numbers, and every chart (drawn first if plots/
    /// lacks one or a file it was drawn from has changed since). Prints the
    /// two paths.
    ///
    /// Missing or unfinished runs are marked in the report and listed on
    /// stderr; the exit status is still 0. A path without runs/ is an error.
    Report {
        /// The results directory, e.g. results/fashion-mlp.
        results: PathBuf,
        /// While a sweep writes RESULTS, rewrite the report (and redraw the
        /// charts) whenever new rows arrive, checking every SECONDS
        /// [default: 10]; report.html reloads itself meanwhile. Ends, with a
        /// last report, when the sweep does. Takes no lock: the sweep is
        /// never held up.
        #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "10")]
        watch: Option<u64>,
    },
}

fn main() -> ExitCode {
    malloc::keep_freed_memory();
    install_panic_hook();
    match dispatch(Cli::parse().command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_text(&e));
            ExitCode::FAILURE
        }
    }
}

fn install_panic_hook() {
    // tch turns a libtorch error (out of memory, a CUDA error) into a
    // panic, which the sweep catches per run. The default hook would print
    // libtorch's message with its whole C++ frame list first; one line
    // says it (RUST_BACKTRACE=1 shows everything).
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0") {
            return default_hook(info);
        }
        // A panic the sweep or `check` catches is reported by them, once,
        // naming the file and the run: a line here would be a second one.
        if gradscope_train::panics::panic_is_caught() {
            return;
        }
        let at = info.location().map_or(String::new(), |l| {
            format!(" (at {}:{})", l.file(), l.line())
        });
        eprintln!(
            "gradscope: {}{at}",
            gradscope_train::panics::panic_reason(info.payload())
        );
    }));
}

/// Runs one subcommand.
fn dispatch(command: Command) -> Result<ExitCode> {
    match command {
        Command::Run(args) => commands::run::run(args),
        Command::Worker(args) => commands::worker::worker(args),
        Command::Merge {
            results,
            out,
            no_plot,
        } => commands::results::merge(&results, &out, no_plot).map(|()| ExitCode::SUCCESS),
        Command::Slurm {
            experiment,
            options,
            submit,
        } => commands::slurm::command(&experiment, &options, submit).map(|()| ExitCode::SUCCESS),
        Command::Check {
            experiment,
            shards,
            jobs,
            threads,
        } => commands::check::check(&experiment, shards, jobs, threads).map(|()| ExitCode::SUCCESS),
        Command::Example { name: None } => commands::print_stdout(&format!(
            "gradscope example NAME prints one of these experiment files:\n{}",
            commands::examples::list()
        ))
        .map(|()| ExitCode::SUCCESS),
        Command::Example { name: Some(name) } => commands::examples::example(&name)
            .map_err(anyhow::Error::msg)
            .and_then(commands::print_stdout)
            .map(|()| ExitCode::SUCCESS),
        Command::List => {
            commands::print_stdout(&commands::list::listing()).map(|()| ExitCode::SUCCESS)
        }
        Command::Schema => commands::print_stdout(&gradscope_train::spec::experiment_schema())
            .map(|()| ExitCode::SUCCESS),
        Command::Export { results, out } => {
            commands::results::export(&results, out.as_deref()).map(|()| ExitCode::SUCCESS)
        }
        Command::Plot { results, style } => style
            .style()
            .and_then(|style| commands::results::plot(&results, style))
            .map(|()| ExitCode::SUCCESS),
        Command::Compare {
            results,
            out,
            style,
        } => style
            .style()
            .and_then(|style| commands::results::compare(&results, &out, style))
            .map(|()| ExitCode::SUCCESS),
        Command::Jacobian { args, style } => style
            .style()
            .and_then(|style| commands::jacobian::jacobian(args, style))
            .map(|()| ExitCode::SUCCESS),
        Command::Landscape { args, style } => style
            .style()
            .and_then(|style| commands::landscape::landscape(args, style))
            .map(|()| ExitCode::SUCCESS),
        Command::Lesion { args, style } => style
            .style()
            .and_then(|style| commands::lesion::lesion(args, style))
            .map(|()| ExitCode::SUCCESS),
        Command::Verify { results, against } => commands::results::verify(&results, &against),
        Command::Report {
            results,
            watch: None,
        } => commands::results::report(&results).map(|()| ExitCode::SUCCESS),
        Command::Report {
            results,
            watch: Some(every),
        } => commands::results::watch(&results, every).map(|()| ExitCode::SUCCESS),
        Command::Cost(args) => commands::cost::command(args).map(|()| ExitCode::SUCCESS),
        Command::Bench(args) => commands::bench::command(args).map(|()| ExitCode::SUCCESS),
        Command::BenchOne(args) => commands::bench::one_command(args).map(|()| ExitCode::SUCCESS),
    }
}

/// The error and its causes on one line, each cause once. Library errors
/// (thiserror) often put their source in their own message too ("x.json:
/// cannot read …: No such file or directory") while also returning it as
/// `source()`, and anyhow's `{:#}` would then print it twice.
fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
    }
    text
}
