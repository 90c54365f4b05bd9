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

mod bench;
mod bench_kernels;
mod cost;
mod examples;
mod landscape;
mod list;
mod malloc;
mod slurm;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use gradscope_format::files;
use gradscope_train::check::{self, check_experiment};
use gradscope_train::record::Status;
use gradscope_train::shard::Shard;
use gradscope_train::spec::Experiment;
use gradscope_train::sweep::{list_some, Existing, Sweep};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tch::Device;

/// Without a terminal, a progress line at least this often during a run.
const PROGRESS_AT_LEAST: Duration = Duration::from_secs(60);

/// A wall time for people: milliseconds below a second (a tiny run's "0 s"
/// says nothing), seconds below two minutes, then minutes.
fn duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        "?".into()
    } else if secs < 1.0 {
        format!("{:.0} ms", secs * 1000.0)
    } else if secs < 120.0 {
        format!("{secs:.1} s")
    } else {
        format!("{:.1} min", secs / 60.0)
    }
}

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
    Run(RunArgs),
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
        options: slurm::Options,
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
    Bench {
        /// A/B pairs per workload and probe setting.
        #[arg(long, default_value_t = 5)]
        pairs: usize,
        /// Threads for both sides [default: the number of CPUs].
        #[arg(long)]
        threads: Option<i32>,
        /// Where both sides run (auto: CUDA when a GPU is visible).
        #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
        device: DeviceArg,
        /// Python of the venv that holds torch (runs bench/pytorch_reference.py).
        #[arg(long, default_value = "python3")]
        python: PathBuf,
        /// Where to write bench.csv and bench.md.
        #[arg(long, default_value = "results/bench")]
        out: PathBuf,
        /// Multiplies the timed steps per measurement (200 MLP, 20 CNN-20, 10 CNN-56).
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        /// Steps of the memory-growth run (RSS after a tenth of them and after all).
        #[arg(long, default_value_t = 10_000)]
        memory_steps: usize,
        /// Compare gradscope's fast kernels with their portable code
        /// (GRADSCOPE_KERNELS=portable) instead of PyTorch: OUT/kernels.{csv,md}.
        #[arg(long)]
        kernels: bool,
    },
    /// One benchmark measurement in this process (used by `bench`).
    #[command(hide = true)]
    BenchOne {
        #[arg(long, value_enum)]
        workload: bench::Workload,
        #[arg(long, value_enum)]
        probe: bench::Probe,
        #[arg(long)]
        steps: usize,
        #[arg(long, default_value_t = 10)]
        warmup: usize,
        #[arg(long, default_value_t = 1)]
        threads: i32,
        #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
        device: DeviceArg,
        /// Comma-separated timed-step counts at which to record RSS.
        #[arg(long, default_value = "")]
        rss_at: String,
    },
    /// Count the multiplications and parameters of a named layer, module or
    /// model, layer by layer, and time its libtorch forward pass.
    ///
    /// Targets: conv5x5, reduce5x5 (the 1×1 argument on 28×28×192),
    /// inception-3a-naive, inception-3a (Szegedy et al. Table 1),
    /// identity-block, conv-block (ResNet-50), resnet50, resnet20, resnet56,
    /// resnet110 (He et al.'s CIFAR nets), inception-net.
    /// Without targets, all of them. Writes OUT/cost.csv and
    /// OUT/plots/cost_vs_time.{png,svg}.
    Cost {
        /// Targets to count (default: every target).
        targets: Vec<String>,
        /// Only this layer, or the layers of this module/block
        /// (e.g. stage3.block1, 3a.b5x5); needs exactly one target.
        #[arg(long)]
        layer: Option<String>,
        /// Input as CHANNELSxHEIGHTxWIDTH [default: each target's own].
        #[arg(long)]
        input: Option<String>,
        /// Classes of the targets that end in a classifier [default: 6 for resnet50, 10 for inception-net].
        #[arg(long)]
        classes: Option<i64>,
        /// Images per timed forward pass.
        #[arg(long, default_value_t = 8)]
        batch: i64,
        /// Timed forward passes (the median is reported).
        #[arg(long, default_value_t = 20)]
        repeats: usize,
        /// libtorch intra-op threads [default: the number of CPUs].
        #[arg(long)]
        threads: Option<i32>,
        /// Where to time the forward passes.
        #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
        device: DeviceArg,
        /// Counts only: skip timing and the chart.
        #[arg(long)]
        no_time: bool,
        /// Where to write cost.csv and plots/.
        #[arg(long, default_value = "results/cost")]
        out: PathBuf,
    },
    /// Draw the charts of a results directory (one that has summary.csv)
    /// into RESULTS/plots/ as PNG and SVG.
    ///
    /// Sizes: each chart is 600 px wide per panel side by side (at least
    /// 800) and 500 px high, with 16 px tick labels; --width, --height and
    /// --font-scale change that, and `gradscope report` keeps the size when
    /// it redraws stale charts.
    Plot {
        /// The results directory, e.g. results/quickstart.
        results: PathBuf,
        #[command(flatten)]
        style: StyleArgs,
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
        style: StyleArgs,
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
        args: landscape::Args,
        #[command(flatten)]
        style: StyleArgs,
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

/// The options of `gradscope run`.
#[derive(clap::Args)]
struct RunArgs {
    /// The experiment file (JSON), e.g. experiments/quickstart.json.
    experiment: PathBuf,
    /// Results directory [default: results/NAME, NAME from the file].
    #[arg(long)]
    out: Option<PathBuf>,
    /// libtorch intra-op threads [default: the number of CPUs].
    #[arg(long)]
    threads: Option<i32>,
    /// Where to train: auto picks CUDA when a GPU is visible.
    #[arg(long, value_enum, default_value_t = DeviceArg::Auto)]
    device: DeviceArg,
    /// Do not draw the charts at the end.
    #[arg(long)]
    no_plot: bool,
    /// Continue a sweep: keep completed and diverged runs, train the missing,
    /// interrupted, failed and unfinished (killed) ones again.
    #[arg(long, conflicts_with = "restart")]
    resume: bool,
    /// Train every run again: the charts, summary.csv, report and export
    /// go at once (they describe the old runs), so do run folders the
    /// plan no longer has; each old run is replaced when its new one ends.
    /// Refused if RESULTS holds another experiment's runs, unless --force.
    #[arg(long)]
    restart: bool,
    /// With --restart: delete another experiment's runs too.
    #[arg(long, requires = "restart")]
    force: bool,
    /// Without a terminal (log file, pipe): a progress line every this
    /// many steps [default: a tenth of a run], and at least once a minute.
    #[arg(long, value_name = "STEPS")]
    progress_every: Option<usize>,
    /// Train only shard I of N (0-based, as SLURM_ARRAY_TASK_ID): the
    /// runs are split by estimated cost (steps × multiplications per
    /// example), the same way in every process; `check --shards N`
    /// prints the split. Default --out: results/NAME/shards/I.
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
}

/// Chart size options, shared by `plot` and `compare`.
#[derive(clap::Args)]
struct StyleArgs {
    /// Width of every chart in pixels (200 to 10000).
    #[arg(long, value_name = "PX")]
    width: Option<u32>,
    /// Height of every chart in pixels (200 to 10000).
    #[arg(long, value_name = "PX")]
    height: Option<u32>,
    /// Multiplies every text size, e.g. 1.5 for a large room (0.25 to 5).
    #[arg(long, value_name = "X", default_value_t = 1.0)]
    font_scale: f64,
}

impl StyleArgs {
    /// The style, or which option is out of range.
    fn style(&self) -> Result<gradscope_plot::Style> {
        for (flag, px) in [("--width", self.width), ("--height", self.height)] {
            if let Some(px) = px.filter(|p| !(200..=10_000).contains(p)) {
                bail!("{flag}: {px} pixels is outside 200 to 10000");
            }
        }
        if !(0.25..=5.0).contains(&self.font_scale) {
            bail!("--font-scale: {} is outside 0.25 to 5", self.font_scale);
        }
        Ok(gradscope_plot::Style {
            width: self.width,
            height: self.height,
            font_scale: self.font_scale,
        })
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum DeviceArg {
    Auto,
    Cpu,
    Cuda,
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
        if gradscope_train::sweep::panic_is_caught() {
            return;
        }
        let at = info.location().map_or(String::new(), |l| {
            format!(" (at {}:{})", l.file(), l.line())
        });
        eprintln!(
            "gradscope: {}{at}",
            gradscope_train::sweep::panic_reason(info.payload())
        );
    }));
}

/// Runs one subcommand.
fn dispatch(command: Command) -> Result<ExitCode> {
    match command {
        Command::Run(args) => run(args),
        Command::Merge {
            results,
            out,
            no_plot,
        } => merge(&results, &out, no_plot).map(|()| ExitCode::SUCCESS),
        Command::Slurm {
            experiment,
            options,
            submit,
        } => slurm_cmd(&experiment, &options, submit).map(|()| ExitCode::SUCCESS),
        Command::Check { experiment, shards } => {
            check(&experiment, shards).map(|()| ExitCode::SUCCESS)
        }
        Command::Example { name: None } => print_stdout(&format!(
            "gradscope example NAME prints one of these experiment files:\n{}",
            examples::list()
        ))
        .map(|()| ExitCode::SUCCESS),
        Command::Example { name: Some(name) } => examples::example(&name)
            .map_err(anyhow::Error::msg)
            .and_then(print_stdout)
            .map(|()| ExitCode::SUCCESS),
        Command::List => print_stdout(&list::listing()).map(|()| ExitCode::SUCCESS),
        Command::Schema => {
            print_stdout(&gradscope_train::spec::experiment_schema()).map(|()| ExitCode::SUCCESS)
        }
        Command::Export { results, out } => {
            export(&results, out.as_deref()).map(|()| ExitCode::SUCCESS)
        }
        Command::Plot { results, style } => style
            .style()
            .and_then(|style| plot(&results, style))
            .map(|()| ExitCode::SUCCESS),
        Command::Compare {
            results,
            out,
            style,
        } => style
            .style()
            .and_then(|style| compare(&results, &out, style))
            .map(|()| ExitCode::SUCCESS),
        Command::Landscape { args, style } => style
            .style()
            .and_then(|style| landscape::landscape(args, style))
            .map(|()| ExitCode::SUCCESS),
        Command::Verify { results, against } => verify(&results, &against),
        Command::Report {
            results,
            watch: None,
        } => report(&results).map(|()| ExitCode::SUCCESS),
        Command::Report {
            results,
            watch: Some(every),
        } => watch(&results, every).map(|()| ExitCode::SUCCESS),
        Command::Cost {
            targets,
            layer,
            input,
            classes,
            batch,
            repeats,
            threads,
            device,
            no_time,
            out,
        } => (|| {
            let query = cost::Query {
                targets,
                layer,
                input: input.as_deref().map(cost::parse_shape).transpose()?,
                classes,
                batch,
                repeats,
                threads: threads.unwrap_or_else(default_threads),
                device: self::device(device)?,
                no_time,
                out,
            };
            print_stdout(&cost::run(&query)?).map(|()| ExitCode::SUCCESS)
        })(),
        Command::Bench {
            pairs,
            threads,
            device,
            python,
            out,
            scale,
            memory_steps,
            kernels,
        } => {
            let threads = threads.unwrap_or_else(default_threads);
            // Both sides are told the device by name (the Python side too).
            let device = match self::device(device) {
                Ok(Device::Cpu) => "cpu".to_owned(),
                Ok(_) => "cuda".to_owned(),
                Err(e) => return Err(e),
            };
            let suite = bench::Suite {
                pairs,
                threads,
                device,
                python,
                out,
                scale,
                memory_steps,
            };
            if kernels {
                bench_kernels::suite(&suite)
            } else {
                bench::suite(&suite)
            }
            .map(|()| ExitCode::SUCCESS)
        }
        Command::BenchOne {
            workload,
            probe,
            steps,
            warmup,
            threads,
            device,
            rss_at,
        } => (|| {
            let device = self::device(device)?;
            let rss_at = rss_at
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse()
                        .with_context(|| format!("--rss-at: {s:?} is not a step count"))
                })
                .collect::<Result<Vec<usize>>>()?;
            let v = bench::bench_one(&bench::One {
                workload,
                probe,
                steps,
                warmup,
                threads,
                device,
                rss_at,
            })?;
            print_stdout(&format!("{v}\n")).map(|()| ExitCode::SUCCESS)
        })(),
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

/// Prints to stdout; a closed pipe (`gradscope check x | head`) is not an
/// error worth a panic or a message.
fn print_stdout(text: &str) -> Result<()> {
    use std::io::Write as _;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("writing to stdout"),
        _ => Ok(()),
    }
}

fn default_threads() -> i32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as i32)
        .unwrap_or(1)
}

/// `gradscope verify`: the differences, then the one line.
fn verify(results: &Path, against: &Path) -> Result<ExitCode> {
    let a = gradscope_report::reproduce::verify(results, against)?;
    let mut text = String::new();
    const SHOWN: usize = 12;
    for d in a.differences.iter().take(SHOWN) {
        match d.tolerance {
            Some(t) => outln!(
                text,
                "  {}: {} {} against {} (tolerance {t:.4})",
                d.run,
                d.what,
                d.ours,
                d.reference
            ),
            None => outln!(
                text,
                "  {}: {} {} against {}",
                d.run,
                d.what,
                d.ours,
                d.reference
            ),
        }
    }
    if a.differences.len() > SHOWN {
        outln!(
            text,
            "  and {} more differences",
            a.differences.len() - SHOWN
        );
    }
    outln!(text, "{}", a.line());
    print_stdout(&text)?;
    Ok(if a.reproduced() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn check(path: &Path, shards: Option<usize>) -> Result<()> {
    if shards == Some(0) {
        bail!("--shards: 0 shards cannot train anything (give 1 or more)");
    }
    let exp = Experiment::from_file(path)?;
    // Everything `run` checks before it trains, without loading or training.
    let checked = check_experiment(&exp).with_context(|| path.display().to_string())?;
    let runs = &checked.runs;
    let budget = match (exp.train.steps, exp.train.epochs) {
        (Some(s), _) => format!("{s} steps"),
        (_, Some(e)) => format!("{e} epochs ({} steps)", checked.steps),
        _ => "?".into(),
    };
    let d = &checked.data;
    let shape: Vec<String> = d.input_shape.iter().map(i64::to_string).collect();
    let mut text = String::new();
    outln!(text, "{}: ok", path.display());
    if !exp.description.is_empty() {
        outln!(text, "  {}", exp.description);
    }
    outln!(
        text,
        "  data: {}, {} training and {} held-out examples of {}, {} classes",
        d.name,
        d.train,
        d.test,
        shape.join("×"),
        d.classes
    );
    let swept = exp.swept();
    let mut factors = vec![format!("{} variants", exp.variants.len())];
    factors.extend(swept.iter().map(|(f, v)| match f.contains('.') {
        true => format!("{} {f} values", v.len()),
        false => format!("{} {f}s", v.len()),
    }));
    factors.push(format!("{} depths", exp.depths.len()));
    factors.push(format!("{} seeds", exp.seeds.len()));
    outln!(
        text,
        "  {} runs ({}), {budget} each, probe every {} steps",
        runs.len(),
        factors.join(" × "),
        exp.probe.every
    );
    for (field, values) in &swept {
        outln!(
            text,
            "  sweeps {} over {}",
            gradscope_format::names::path(field),
            values.join(", ")
        );
    }
    outln!(text, "  results: results/{}/", exp.name);
    let width = runs
        .iter()
        .map(|r| r.run.name().len())
        .max()
        .unwrap_or(3)
        .max(3);
    outln!(
        text,
        "  {:width$}  {:>12}  {:>16}  {:>10}",
        "run",
        "parameters",
        "mults/example",
        "est. time"
    );
    for r in runs {
        outln!(
            text,
            "  {:width$}  {:>12}  {:>16}  {:>10}",
            r.run.name(),
            r.params,
            r.mults,
            duration(r.estimate_s)
        );
    }
    outln!(
        text,
        "  estimated time: {} for all {} runs on 2 CPU threads (rough; see below)",
        duration(checked.total_estimate_s()),
        runs.len()
    );
    if let Some(n) = shards {
        if n > runs.len() {
            bail!(
                "--shards: {n} shards for {} runs would leave {} of them with nothing to train (give at most {})",
                runs.len(),
                n - runs.len(),
                runs.len()
            );
        }
        let plans = checked.shards(n);
        let largest = plans.iter().map(|p| p.share).fold(0.0, f64::max);
        outln!(
            text,
            "  {n} shards (run --shard I/{n}), split by steps × multiplications per example; \
             the largest has {:.1}% of the cost (an even split: {:.1}%)",
            100.0 * largest,
            100.0 / n as f64
        );
        for (i, p) in plans.iter().enumerate() {
            outln!(
                text,
                "  shard {i}: {:5.1}% of the cost, est. {}: {}",
                100.0 * p.share,
                duration(p.estimate_s),
                if p.runs.is_empty() {
                    "no runs".to_owned()
                } else {
                    p.runs.join(", ")
                }
            );
        }
    }
    for (net, decay, spread) in &checked.theory {
        outln!(
            text,
            "  {net}: theory predicts {decay:.2} decades per layer, a first hidden layer {} the last",
            if *spread >= 0.0 {
                format!("{spread:.1} decades below")
            } else {
                format!("{:.1} decades above", -spread)
            }
        );
    }
    if !checked.theory.is_empty() {
        outln!(
            text,
            "  (mean-field theory at initialization: Poole et al. 2016, Schoenholz et al. 2017; with BatchNorm and ReLU, Yang et al. 2019)"
        );
        let orthogonal = match &exp.model {
            gradscope_train::spec::ModelSpec::Mlp(m) => m
                .init
                .values()
                .iter()
                .any(|i| matches!(i, gradscope_models::Init::Orthogonal { .. })),
            _ => false,
        };
        if orthogonal {
            outln!(
                text,
                "  (orthogonal weights of gain g: the same mean-field χ as σ_w² = g², Saxe et al. 2014)"
            );
        }
    }
    for (depth, why) in &checked.same_twins {
        outln!(
            text,
            "  note: at depth {depth} the plain and residual nets are the same network ({why}); \
             comparing them there shows nothing about shortcuts"
        );
    }
    outln!(
        text,
        "  The estimate is rough (expect within a factor of two): per step 3 × batch × \
         multiplications / {:.0e} per second (forward and backward), plus {} ms per weight \
         layer and {} ms per BatchNorm layer (kernel launches), plus the evaluation passes at \
         {:.0e} per second; constants measured on this project's 2-core CPU machine. Probing, other thread \
         counts and GPUs are not modelled.",
        check::CPU_MULTS_PER_S,
        check::CPU_LAYER_S * 1e3,
        check::CPU_NORM_S * 1e3,
        check::CPU_EVAL_MULTS_PER_S
    );
    print_stdout(&text)
}

fn export(results: &Path, out: Option<&Path>) -> Result<()> {
    let e = gradscope_report::export::export(results, out)?;
    for s in &e.skipped {
        eprintln!("export: skipped {s}");
    }
    let mut text = String::new();
    for (path, rows) in &e.files {
        outln!(
            text,
            "{} ({rows} rows from {} runs)",
            path.display(),
            e.runs
        );
    }
    if e.files.is_empty() {
        bail!("{}: no run has a CSV file to export", results.display());
    }
    print_stdout(&text)
}

fn plot(results: &Path, style: gradscope_plot::Style) -> Result<()> {
    let written = gradscope_plot::render_all_with(results, style)
        .with_context(|| format!("drawing the charts of {}", results.display()))?;
    let mut text = String::new();
    for f in written {
        outln!(text, "{}", f.display());
    }
    print_stdout(&text)
}

fn compare(results: &[PathBuf], out: &Path, style: gradscope_plot::Style) -> Result<()> {
    let c = gradscope_report::compare::write_comparison(results, out, style)?;
    let differing = if c.differing.is_empty() {
        "no settings differ".to_owned()
    } else {
        format!("settings that differ: {}", c.differing.join(", "))
    };
    eprintln!(
        "compare: {} runs from {} folders; {differing}",
        c.runs,
        results.len()
    );
    print_stdout(&format!("{}\n{}\n", c.markdown.display(), c.html.display()))
}

fn slurm_cmd(path: &Path, o: &slurm::Options, submit: bool) -> Result<()> {
    let exp = Experiment::from_file(path)?;
    let runs = gradscope_train::plan::plan(&exp).len();
    if o.shards > runs {
        bail!(
            "--shards: {} shards for {runs} runs would leave {} array tasks with nothing to train (give at most {runs})",
            o.shards,
            o.shards - runs
        );
    }
    let s = slurm::write(path, &exp.name, o)?;
    let mut text = String::new();
    outln!(text, "{}", s.sweep.display());
    outln!(text, "{}", s.merge.display());
    if submit {
        let (array, merge) = slurm::submit(&s)?;
        eprintln!(
            "slurm: submitted the array as job {array} ({} tasks) and the merge as job {merge} (after the array ends)",
            o.shards
        );
        outln!(text, "{array}");
        outln!(text, "{merge}");
    } else {
        eprintln!(
            "slurm: submit with
  array=$(sbatch --parsable {})
  sbatch --dependency=afterany:$array {}",
            slurm::quote_path(&s.sweep),
            slurm::quote_path(&s.merge)
        );
    }
    print_stdout(&text)
}

fn merge(results: &[PathBuf], out: &Path, no_plot: bool) -> Result<()> {
    let command: Vec<String> = std::env::args().collect();
    let m = gradscope_train::merge::merge(results, out, &command.join(" "))?;
    eprintln!(
        "merge: {} run(s) of {:?} in {} ({} copied now, {} already there)",
        m.runs.len(),
        m.experiment,
        out.display(),
        m.copied.len(),
        m.runs.len().saturating_sub(m.copied.len())
    );
    if !m.missing.is_empty() {
        eprintln!(
            "merge: {} planned run(s) are in none of the directories: {}",
            m.missing.len(),
            m.missing.join(", ")
        );
    }
    if !no_plot {
        gradscope_plot::render_all(out)
            .with_context(|| format!("drawing the charts of {}", out.display()))?;
        report(out)?;
    }
    print_stdout(&format!("{}\n", m.summary.display()))
}

/// `gradscope report --watch`: rewrites the report whenever the files it
/// is drawn from change (`plot::fresh::inputs`: sizes and hashes), while
/// the sweep holding RESULTS's lock runs; then once more, without the
/// reload, and ends.
fn watch(results: &Path, every: u64) -> Result<()> {
    if every == 0 {
        bail!("--watch: 0 seconds between checks would spin (give 1 or more)");
    }
    let mut seen = None;
    loop {
        let running = gradscope_train::lock::live_holder(results);
        let inputs = gradscope_plot::fresh::inputs(results).ok();
        if running.is_none() {
            let r = gradscope_report::write_report(results)?;
            eprintln!(
                "report --watch: no sweep is writing {}; final report written",
                results.display()
            );
            return print_stdout(&format!("{}\n", r.path.display()));
        }
        if inputs.is_some() && inputs != seen {
            // A reader that catches a file mid-write tries again next time.
            match gradscope_report::write_report_live(results, Some(every)) {
                Ok(r) => {
                    eprintln!(
                        "report --watch: {} and report.html rewritten",
                        r.path.display()
                    );
                    seen = inputs;
                }
                Err(e) => eprintln!("report --watch: {e}; trying again in {every} s"),
            }
        }
        std::thread::sleep(std::time::Duration::from_secs(every));
    }
}

fn report(results: &Path) -> Result<()> {
    let r = gradscope_report::write_report(results)?;
    if let Some(note) = &r.charts_note {
        eprintln!("report: {note}");
    }
    for p in &r.problems {
        eprintln!("report: {p}");
    }
    // report.md, then the page to open in a browser beside it.
    let html = r.path.with_file_name(files::REPORT_HTML);
    print_stdout(&format!("{}\n{}\n", r.path.display(), html.display()))
}

/// Sets libtorch's intra-op threads from `--threads` (default: the number
/// of CPUs); returns the number set.
fn set_threads(threads: Option<i32>) -> Result<i32> {
    let threads = match threads {
        Some(n) if n < 1 => bail!("--threads: {n} must be at least 1"),
        Some(n) => n,
        None => default_threads(),
    };
    tch::set_num_threads(threads);
    Ok(threads)
}

/// The device `--device` names; CUDA only where libtorch sees one.
fn device(device: DeviceArg) -> Result<Device> {
    Ok(match device {
        DeviceArg::Cpu => Device::Cpu,
        DeviceArg::Auto => Device::cuda_if_available(),
        DeviceArg::Cuda if tch::Cuda::is_available() => Device::Cuda(0),
        DeviceArg::Cuda => {
            bail!("--device cuda: libtorch sees no CUDA device on this machine (try --device cpu)")
        }
    })
}

fn run(args: RunArgs) -> Result<ExitCode> {
    let RunArgs {
        experiment,
        out,
        threads,
        device,
        no_plot,
        resume,
        restart,
        force,
        progress_every,
        shard,
    } = args;
    let existing = match (resume, restart, force) {
        (true, _, _) => Existing::Resume,
        (_, true, true) => Existing::Replace,
        (_, true, false) => Existing::Restart,
        _ => Existing::Refuse,
    };
    let shard = shard.as_deref().map(Shard::parse).transpose()?;
    let path = experiment.as_path();
    let exp = Experiment::from_file(path)?;
    let threads = set_threads(threads)?;
    let device = self::device(device)?;
    let out_given = out.is_some();
    let out = out.unwrap_or_else(|| match shard {
        Some(s) => Path::new(files::RESULTS_DIR)
            .join(&exp.name)
            .join(files::SHARDS_DIR)
            .join(s.index.to_string()),
        None => Path::new(files::RESULTS_DIR).join(&exp.name),
    });
    // Ctrl-C and SIGTERM ask the loop to stop after its current step (or
    // evaluation chunk); the files written so far stay valid, and the lock
    // is released on the way out. Installed before the lock is taken, so a
    // Ctrl-C while the data load cannot kill the process holding it.
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst))
            .context("installing the Ctrl-C handler")?;
    }
    let command: Vec<String> = std::env::args().collect();
    let sweep = Sweep::prepare(
        exp,
        &out,
        device,
        threads,
        existing,
        shard,
        &command.join(" "),
    )
    .with_context(|| path.display().to_string())?
    .with_experiment_file(path);
    for note in sweep.notes() {
        eprintln!("{}: {note}", out.display());
    }
    if let Some(h) = sweep.stale_lock() {
        eprintln!(
            "{}: took over a stale lock left by {h}, which is no longer running",
            out.display()
        );
    }
    if !sweep.kept().is_empty() {
        let kept: Vec<String> = sweep
            .kept()
            .iter()
            .map(|(r, s)| format!("{} {}", r.name(), s.as_str()))
            .collect();
        eprintln!(
            "resuming: keeping {} finished run(s) ({}); training {}",
            kept.len(),
            list_some(&kept),
            sweep.pending().len()
        );
    }

    let runs = sweep.pending().to_vec();
    let steps = sweep.steps() as u64;
    let all_steps: u64 = runs.iter().map(|r| sweep.run_steps(r) as u64).sum();
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(all_steps);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} steps, eta {eta}  {msg}",
            )
            .expect("static template")
            .progress_chars("=> "),
        );
        bar
    });
    eprintln!(
        "{}: {} runs to train on {device:?} with {threads} threads into {}",
        path.display(),
        runs.len(),
        out.display()
    );

    let mut failed: Vec<String> = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let base = i as u64 * steps;
        if let Some(b) = &bar {
            b.set_message(run.name());
        }
        // Without a terminal (a log file, a pipe, a batch job) there is no
        // bar: a line when the run starts and one every `every` steps (and
        // at least once a minute) say where the sweep is.
        let tag = format!("[{}/{}] {}", i + 1, runs.len(), run.name());
        let every = progress_every
            .unwrap_or((steps as usize / 10).max(1))
            .max(1);
        if bar.is_none() {
            eprintln!("{tag}: training {steps} steps");
        }
        let started = Instant::now();
        let mut last_line = started;
        let record = sweep.run(run, &stop, &mut |done| match &bar {
            Some(b) => b.set_position(base + done as u64),
            None if done < steps as usize
                && (done % every == 0 || last_line.elapsed() >= PROGRESS_AT_LEAST) =>
            {
                last_line = Instant::now();
                let secs = started.elapsed().as_secs_f64();
                eprintln!(
                    "{tag}: step {done}/{steps} ({:.0}%), {}, {:.1} steps/s",
                    100.0 * done as f64 / steps.max(1) as f64,
                    duration(secs),
                    done as f64 / secs.max(1e-9)
                );
            }
            None => {}
        })?;
        let pct = |v: Option<f64>| {
            v.map(|v| format!("{:.1}%", 100.0 * v))
                .unwrap_or_else(|| "-".into())
        };
        let line = format!(
            "{tag} {} after {} steps in {}: train error {}, test error {}{}",
            record.status.as_str(),
            record.steps_done,
            duration(record.elapsed_s),
            pct(record.final_metrics.train_error),
            pct(record.final_metrics.test_error),
            match (&record.error, record.diverged_at_step) {
                (Some(e), _) => format!(" ({e})"),
                (None, Some(step)) =>
                    format!(" (a NaN or infinite loss or gradient at step {step})"),
                _ => String::new(),
            },
        );
        match &bar {
            Some(b) => b.println(line),
            None => eprintln!("{line}"),
        }
        if record.status == Status::Failed {
            failed.push(run.name());
        }
        if stop.load(Ordering::SeqCst) {
            break;
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let summary = sweep.write_summary()?;
    eprintln!("wrote {}", summary.display());
    if !no_plot {
        plot(&out, gradscope_plot::fresh::recorded_style(&out))?;
    }
    // A report from before this run (kept by --resume) now describes other
    // runs: write it again, or say that it is out of date.
    if out.join(gradscope_report::REPORT_FILE).is_file() {
        if no_plot {
            eprintln!(
                "{}: report.md predates these runs; `gradscope report {}` writes it again",
                out.display(),
                out.display()
            );
        } else {
            report(&out)?;
        }
    }
    if stop.load(Ordering::SeqCst) {
        eprintln!(
            "interrupted: finished runs and the current run's rows are kept in {}; `gradscope run {} --resume{}` continues",
            out.display(),
            path.display(),
            if out_given { format!(" --out {}", out.display()) } else { String::new() }
        );
        return Ok(ExitCode::from(130));
    }
    if !failed.is_empty() {
        bail!(
            "{} run(s) failed: {} (each run.json says why)",
            failed.len(),
            list_some(&failed)
        );
    }
    Ok(ExitCode::SUCCESS)
}
