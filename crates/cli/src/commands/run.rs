//! `gradscope run`: plans an experiment, trains every run of it (or of one
//! shard) with a progress bar, and leaves the results directory complete
//! or, when stopped, with every finished run and an honest status for the
//! rest.

use super::{device, duration, set_threads, DeviceArg};
use anyhow::{bail, Context, Result};
use gradscope_format::files;
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

/// Without a terminal, a progress line at least this often during a run.
pub(crate) const PROGRESS_AT_LEAST: Duration = Duration::from_secs(60);

/// The options of `gradscope run`.
#[derive(clap::Args)]
pub(crate) struct RunArgs {
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

pub(crate) fn run(args: RunArgs) -> Result<ExitCode> {
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
        super::results::plot(&out, gradscope_plot::fresh::recorded_style(&out))?;
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
            super::results::report(&out)?;
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
