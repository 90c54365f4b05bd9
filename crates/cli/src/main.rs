//! `gradscope`: run vanishing-gradient experiments, check their plans, draw
//! their charts.
//!
//! This binary is thin glue: parsing and training live in gradscope-train,
//! drawing in gradscope-plot. It owns the things only a program has: the
//! command line, the thread count, the device, Ctrl-C, and the progress bar.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use gradscope_train::plan::plan;
use gradscope_train::record::Status;
use gradscope_train::spec::Experiment;
use gradscope_train::sweep::Sweep;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tch::Device;

#[derive(Parser)]
#[command(
    name = "gradscope",
    version,
    about = "Vanishing-gradient experiments on libtorch: train plain nets and their residual twins at many depths, record every layer's gradient, draw the charts.",
    after_help = "Start with: gradscope check experiments/quickstart.json, then gradscope run experiments/quickstart.json"
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
    /// RESULTS/summary.csv and RESULTS/plots/. A run that already has a folder is
    /// trained again from scratch. Ctrl-C stops after the current step, marks the
    /// run "interrupted" and keeps everything already written.
    Run {
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
    },
    /// Validate an experiment file and print its plan of runs, without
    /// training anything.
    Check {
        /// The experiment file (JSON).
        experiment: PathBuf,
    },
    /// Draw the charts of a results directory (one that has summary.csv)
    /// into RESULTS/plots/ as PNG and SVG.
    Plot {
        /// The results directory, e.g. results/quickstart.
        results: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum DeviceArg {
    Auto,
    Cpu,
    Cuda,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run {
            experiment,
            out,
            threads,
            device,
            no_plot,
        } => run(&experiment, out, threads, device, no_plot),
        Command::Check { experiment } => check(&experiment).map(|()| ExitCode::SUCCESS),
        Command::Plot { results } => plot(&results).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn check(path: &Path) -> Result<()> {
    let exp = Experiment::from_file(path)?;
    let runs = plan(&exp);
    println!("{}: ok", path.display());
    if !exp.description.is_empty() {
        println!("  {}", exp.description);
    }
    println!(
        "  {} runs ({} variants × {} depths × {} seeds), {} each, probe every {} steps",
        runs.len(),
        exp.variants.len(),
        exp.depths.len(),
        exp.seeds.len(),
        match (exp.train.steps, exp.train.epochs) {
            (Some(s), _) => format!("{s} steps"),
            (_, Some(e)) => format!("{e} epochs"),
            _ => "?".into(),
        },
        exp.probe.every
    );
    println!("  results: results/{}/", exp.name);
    for r in &runs {
        println!("  {}", r.name());
    }
    Ok(())
}

fn plot(results: &Path) -> Result<()> {
    let written = gradscope_plot::render_all(results)
        .with_context(|| format!("drawing the charts of {}", results.display()))?;
    for f in written {
        println!("{}", f.display());
    }
    Ok(())
}

fn run(
    path: &Path,
    out: Option<PathBuf>,
    threads: Option<i32>,
    device: DeviceArg,
    no_plot: bool,
) -> Result<ExitCode> {
    let exp = Experiment::from_file(path)?;
    let threads = match threads {
        Some(n) if n < 1 => bail!("--threads: {n} must be at least 1"),
        Some(n) => n,
        None => std::thread::available_parallelism()
            .map(|n| n.get() as i32)
            .unwrap_or(1),
    };
    tch::set_num_threads(threads);
    let device = match device {
        DeviceArg::Cpu => Device::Cpu,
        DeviceArg::Auto => Device::cuda_if_available(),
        DeviceArg::Cuda if tch::Cuda::is_available() => Device::Cuda(0),
        DeviceArg::Cuda => {
            bail!("--device cuda: libtorch sees no CUDA device on this machine (try --device cpu)")
        }
    };
    let out = out.unwrap_or_else(|| Path::new("results").join(&exp.name));
    let sweep =
        Sweep::prepare(exp, &out, device, threads).with_context(|| path.display().to_string())?;

    // Ctrl-C and SIGTERM ask the loop to stop after its current step; the
    // files written so far stay valid.
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst))
            .context("installing the Ctrl-C handler")?;
    }

    let runs = sweep.runs().to_vec();
    let steps = sweep.steps() as u64;
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(steps * runs.len() as u64);
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
        "{}: {} runs on {device:?} with {threads} threads into {}",
        path.display(),
        runs.len(),
        out.display()
    );

    let mut failed = 0;
    for (i, run) in runs.iter().enumerate() {
        let base = i as u64 * steps;
        if let Some(b) = &bar {
            b.set_message(run.name());
        }
        let record = sweep.run(run, &stop, &mut |done| {
            if let Some(b) = &bar {
                b.set_position(base + done as u64);
            }
        })?;
        let pct = |v: Option<f64>| {
            v.map(|v| format!("{:.1}%", 100.0 * v))
                .unwrap_or_else(|| "-".into())
        };
        let line = format!(
            "[{}/{}] {} {} after {} steps in {:.1}s: train error {}, test error {}{}",
            i + 1,
            runs.len(),
            record.run,
            record.status.as_str(),
            record.steps_done,
            record.elapsed_s,
            pct(record.final_metrics.train_error),
            pct(record.final_metrics.test_error),
            record
                .error
                .as_ref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default(),
        );
        match &bar {
            Some(b) => b.println(line),
            None => eprintln!("{line}"),
        }
        if record.status == Status::Failed {
            failed += 1;
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
        plot(&out)?;
    }
    if stop.load(Ordering::SeqCst) {
        eprintln!(
            "interrupted: finished runs and the current run's rows are kept in {}",
            out.display()
        );
        return Ok(ExitCode::from(130));
    }
    if failed > 0 {
        bail!("{failed} run(s) failed; see their run.json");
    }
    Ok(ExitCode::SUCCESS)
}
