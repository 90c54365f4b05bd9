//! `gradscope run`: plans an experiment, trains every run of it (or of one
//! shard) with a progress bar, and leaves the results directory complete
//! or, when stopped, with every finished run and an honest status for the
//! rest.

use super::{device, duration, set_threads, stop_on_ctrl_c, DeviceArg};
use anyhow::{bail, Context, Result};
use gradscope_format::files;
use gradscope_train::plan::RunSpec;
use gradscope_train::record::{RunRecord, Status};
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
pub(crate) const PROGRESS_AT_LEAST: Duration = Duration::from_secs(60);

/// The options of `gradscope run`.
#[derive(clap::Args)]
pub(crate) struct RunArgs {
    /// The experiment file (JSON), e.g. experiments/quickstart.json.
    experiment: PathBuf,
    /// Results directory [default: results/NAME, NAME from the file].
    #[arg(long)]
    out: Option<PathBuf>,
    /// libtorch intra-op threads of each run [default: the number of CPUs
    /// divided by --jobs].
    #[arg(long)]
    threads: Option<i32>,
    /// Train N runs at a time, each in a process of its own (longest runs
    /// first). Each run's CSVs are the same, byte for byte, as with
    /// --jobs 1 at the same --threads. On a GPU, the N runs share it.
    #[arg(long, value_name = "N", default_value_t = 1)]
    jobs: usize,
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
    let session = Session::prepare(args)?;
    session.say_what_preparing_found();
    let failed = session.train_all()?;
    session.finish(&failed)
}

impl RunArgs {
    /// What to do with runs already in the results directory.
    fn existing(&self) -> Existing {
        match (self.resume, self.restart, self.force) {
            (true, _, _) => Existing::Resume,
            (_, true, true) => Existing::Replace,
            (_, true, false) => Existing::Restart,
            _ => Existing::Refuse,
        }
    }
}

/// `results/NAME`, or `results/NAME/shards/I` for shard I.
fn default_out(name: &str, shard: Option<Shard>) -> PathBuf {
    match shard {
        Some(s) => Path::new(files::RESULTS_DIR)
            .join(name)
            .join(files::SHARDS_DIR)
            .join(s.index.to_string()),
        None => Path::new(files::RESULTS_DIR).join(name),
    }
}

/// One `gradscope run` once its sweep is prepared: what the steps below
/// share.
struct Session {
    args: RunArgs,
    sweep: Sweep,
    /// The results directory.
    out: PathBuf,
    device: Device,
    threads: i32,
    /// Set by Ctrl-C and SIGTERM.
    stop: Arc<AtomicBool>,
}

impl Session {
    /// Reads the experiment, takes the results directory (and its lock),
    /// and works out which runs to train.
    fn prepare(args: RunArgs) -> Result<Session> {
        let shard = args.shard.as_deref().map(Shard::parse).transpose()?;
        let path = args.experiment.as_path();
        let exp = Experiment::from_file(path)?;
        if args.jobs == 0 {
            bail!("--jobs: 0 must be at least 1");
        }
        // Runs side by side split the machine's cores between them.
        let per_run = args
            .threads
            .or((args.jobs > 1).then(|| (super::default_threads() / args.jobs as i32).max(1)));
        let threads = set_threads(per_run)?;
        let device = self::device(args.device)?;
        let out = args
            .out
            .clone()
            .unwrap_or_else(|| default_out(&exp.name, shard));
        // Ctrl-C and SIGTERM ask the loop to stop after its current step (or
        // evaluation chunk); the files written so far stay valid, and the lock
        // is released on the way out. Installed before the lock is taken, so a
        // Ctrl-C while the data load cannot kill the process holding it.
        let stop = stop_on_ctrl_c()?;
        let command: Vec<String> = std::env::args().collect();
        let sweep = Sweep::prepare(
            exp,
            &out,
            device,
            threads,
            args.existing(),
            shard,
            &command.join(" "),
        )
        .with_context(|| path.display().to_string())?
        .with_experiment_file(path);
        Ok(Session {
            args,
            sweep,
            out,
            device,
            threads,
            stop,
        })
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// What preparing found: notes, a stale lock taken over, the runs a
    /// resume keeps.
    fn say_what_preparing_found(&self) {
        let (sweep, out) = (&self.sweep, &self.out);
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
    }

    /// Trains the pending runs, one after the other or `--jobs` at a time,
    /// until they are done or Ctrl-C stops them; returns the names of the
    /// runs that failed.
    fn train_all(&self) -> Result<Vec<String>> {
        let runs = self.sweep.pending();
        let steps = self.sweep.steps() as u64;
        let all_steps: u64 = runs.iter().map(|r| self.sweep.run_steps(r) as u64).sum();
        let bar = progress_bar(all_steps);
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let jobs = self.args.jobs.min(runs.len()).max(1);
        eprintln!(
            "{}: {} to train on {:?}{} with {}{} into {}",
            self.args.experiment.display(),
            plural(runs.len(), "run", "runs"),
            self.device,
            if jobs > 1 {
                format!(", {jobs} at a time")
            } else {
                String::new()
            },
            plural(self.threads as usize, "thread", "threads"),
            if jobs > 1 { " each" } else { "" },
            self.out.display()
        );
        if jobs > 1 {
            let pool = super::jobs::Pool {
                sweep: &self.sweep,
                jobs,
                threads: self.threads,
                device: self.args.device,
                resume: self.args.resume,
                stop: &self.stop,
                every: self.progress_every(),
                bar: bar.as_ref(),
            };
            let failed = pool.train(runs);
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            return failed;
        }
        let mut failed: Vec<String> = Vec::new();
        for (i, run) in runs.iter().enumerate() {
            if self.stopped() {
                break;
            }
            if let Some(b) = &bar {
                b.set_message(run.name());
            }
            let tag = format!("[{}/{}] {}", i + 1, runs.len(), run.name());
            let record = self.train_one(run, &tag, i as u64 * steps, bar.as_ref())?;
            let line = outcome(&tag, &record);
            match &bar {
                Some(b) => b.println(line),
                None => eprintln!("{line}"),
            }
            if record.status == Status::Failed {
                failed.push(run.name());
            }
            if self.stopped() {
                break;
            }
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        Ok(failed)
    }

    /// Trains one run, moving the bar from `base` steps on, or without a
    /// terminal, printing progress lines tagged `tag`.
    fn train_one(
        &self,
        run: &RunSpec,
        tag: &str,
        base: u64,
        bar: Option<&ProgressBar>,
    ) -> Result<RunRecord> {
        let steps = self.sweep.steps();
        let every = self.progress_every();
        if bar.is_none() {
            eprintln!("{tag}: training {steps} steps");
        }
        let started = Instant::now();
        let mut last_line = started;
        let record = self.sweep.run(run, &self.stop, &mut |done| match bar {
            Some(b) => b.set_position(base + done as u64),
            None if done < steps
                && (done % every == 0 || last_line.elapsed() >= PROGRESS_AT_LEAST) =>
            {
                last_line = Instant::now();
                let secs = started.elapsed().as_secs_f64();
                eprintln!("{}", progress_line(tag, done, steps, secs));
            }
            None => {}
        })?;
        Ok(record)
    }

    /// Without a terminal (a log file, a pipe, a batch job) there is no
    /// bar: a line when a run starts and one every this many steps (and at
    /// least once a minute) say where the sweep is.
    fn progress_every(&self) -> usize {
        self.args
            .progress_every
            .unwrap_or((self.sweep.steps() / 10).max(1))
            .max(1)
    }

    /// After the runs: summary.csv, the charts and the report, then the
    /// exit status (130 when stopped, an error naming the failed runs).
    fn finish(&self, failed: &[String]) -> Result<ExitCode> {
        let (out, no_plot) = (&self.out, self.args.no_plot);
        let summary = self.sweep.write_summary()?;
        eprintln!("wrote {}", summary.display());
        if !no_plot {
            super::results::plot(out, gradscope_plot::fresh::recorded_style(out))?;
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
                super::results::report(out)?;
            }
        }
        if self.stopped() {
            eprintln!(
                "interrupted: finished runs and the current run's rows are kept in {}; `gradscope run {} --resume{}` continues",
                out.display(),
                self.args.experiment.display(),
                if self.args.out.is_some() { format!(" --out {}", out.display()) } else { String::new() }
            );
            return Ok(ExitCode::from(130));
        }
        if !failed.is_empty() {
            bail!(
                "{} run(s) failed: {} (each run.json says why)",
                failed.len(),
                list_some(failed)
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// The progress bar over all `steps`, where stderr is a terminal.
fn progress_bar(steps: u64) -> Option<ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(steps);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} steps, eta {eta}  {msg}",
            )
            .expect("static template")
            .progress_chars("=> "),
        );
        bar
    })
}

/// A progress line without a terminal: run `tag` at step `done` of `steps`
/// after `secs`.
pub(crate) fn progress_line(tag: &str, done: usize, steps: usize, secs: f64) -> String {
    format!(
        "{tag}: step {done}/{steps} ({:.0}%), {}, {:.1} steps/s",
        100.0 * done as f64 / steps.max(1) as f64,
        duration(secs),
        done as f64 / secs.max(1e-9)
    )
}

/// The line that says how run `tag` ended.
pub(crate) fn outcome(tag: &str, record: &RunRecord) -> String {
    let pct = |v: Option<f64>| {
        v.map(|v| format!("{:.1}%", 100.0 * v))
            .unwrap_or_else(|| "-".into())
    };
    format!(
        "{tag} {} after {} steps in {}: train error {}, test error {}{}",
        record.status.as_str(),
        record.steps_done,
        duration(record.elapsed_s),
        pct(record.final_metrics.train_error),
        pct(record.final_metrics.test_error),
        match (&record.error, record.diverged_at_step) {
            (Some(e), _) => format!(" ({e})"),
            (None, Some(step)) => format!(" (a NaN or infinite loss or gradient at step {step})"),
            _ => String::new(),
        },
    )
}
