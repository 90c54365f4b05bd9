//! `gradscope lesion`: the lesion study and the path study of Veit, Wilber
//! & Belongie (2016) on trained runs, written beside the runs (see
//! `gradscope_train::lesion` for the method), with their summary and
//! charts.

use anyhow::{bail, Context, Result};
use gradscope_format::durable::write_atomic;
use gradscope_format::files::{LESION_CSV, LESION_SUMMARY_CSV, PATHS_CSV, RUNS_DIR};
use gradscope_format::lesion::{
    effective_paths, single_deletion, LesionKind, LesionSummaryRow, PathRow, EFFECTIVE_SHARE,
};
use gradscope_train::lesion::{check_run, lesion_run, path_run, Lesions, Options};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;
use tch::Device;

/// The options of `gradscope lesion`.
#[derive(clap::Args)]
pub struct Args {
    /// Run folders trained with "save_weights": true, e.g.
    /// results/lesion/runs/plain-d20-s0 results/lesion/runs/residual-d20-s0.
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// Images of each split every error is measured on (the first ones).
    #[arg(long, default_value_t = 1000)]
    pub samples: usize,
    /// Random draws per k (deleting k blocks, swapping k pairs), and paths
    /// measured per path length.
    #[arg(long, default_value_t = 5)]
    pub per_k: usize,
    /// Seed of the draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The most blocks deleted at once (and pairs swapped) [default: every
    /// deletable block].
    #[arg(long)]
    pub max_k: Option<usize>,
    /// Training images in the path study's batch.
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Skip the path study (it runs on residual nets only).
    #[arg(long)]
    pub no_paths: bool,
    /// Results folder to write into: OUT/runs/RUN/lesion.csv and paths.csv,
    /// OUT/lesion_summary.csv, OUT/plots/lesion_* and path_gradient
    /// [default: the results folder the runs are in].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// libtorch intra-op threads [default: the number of CPUs].
    #[arg(long)]
    pub threads: Option<i32>,
    /// Where to evaluate.
    #[arg(long, value_enum, default_value_t = super::DeviceArg::Auto)]
    pub device: super::DeviceArg,
}

fn csv_bytes<T: serde::Serialize>(rows: &[T]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r)?;
    }
    Ok(w.into_inner()?)
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic(path, bytes).map_err(|(p, e)| anyhow::anyhow!("{}: {e}", p.display()))
}

/// The rows of an existing `lesion_summary.csv` (none if it is missing).
fn read_summary(path: &Path) -> Result<Vec<LesionSummaryRow>> {
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let mut r = csv::Reader::from_path(path).with_context(|| path.display().to_string())?;
    r.deserialize()
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{}: not a lesion summary", path.display()))
}

pub fn lesion(args: Args, style: gradscope_plot::Style) -> Result<()> {
    let opts = Options {
        samples: args.samples,
        per_k: args.per_k,
        seed: args.seed,
        batch: args.batch,
        max_k: args.max_k,
    };
    opts.validate()?;
    // Every run folder is checked before anything is written, and before
    // the folder to write into is worked out from the first one.
    let (names, out) = super::run_folders(&args.runs, args.out.as_deref(), |run| {
        Ok(check_run(run).map(drop)?)
    })?;
    super::set_threads(args.threads)?;
    let device = super::device(args.device)?;
    let (stop, _lock) = super::start_writing(&out)?;
    let summary_path = out.join(LESION_SUMMARY_CSV);
    let mut study = Study {
        summary: read_summary(&summary_path)?,
        summary_path,
        out,
        opts,
        path_study: !args.no_paths,
        device,
        stop,
    };
    for (run_dir, name) in args.runs.iter().zip(&names) {
        let dir = study.run(run_dir, name)?;
        println!("{}", dir.join(LESION_CSV).display());
    }
    for p in gradscope_plot::render_lesion(&study.out, style)? {
        println!("{}", p.display());
    }
    println!("{}", study.summary_path.display());
    Ok(())
}

/// What the runs of one `gradscope lesion` share: where they go, the
/// options, and the summary they add to.
struct Study {
    out: PathBuf,
    opts: Options,
    /// Whether to run the path study (on residual nets).
    path_study: bool,
    device: Device,
    /// Set by Ctrl-C.
    stop: Arc<AtomicBool>,
    summary_path: PathBuf,
    summary: Vec<LesionSummaryRow>,
}

impl Study {
    /// Both studies of run `run_dir` (named `name`), written to
    /// OUT/runs/NAME/ (returned) and added to the summary.
    fn run(&mut self, run_dir: &Path, name: &str) -> Result<PathBuf> {
        let started = Instant::now();
        let l = self.lesions(run_dir, name, started)?;
        let paths = if !self.path_study || !l.blocks.residual {
            None
        } else {
            Some(self.paths(run_dir, name, &l)?)
        };
        let dir = self.out.join(RUNS_DIR).join(name);
        std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
        write(&dir.join(LESION_CSV), &csv_bytes(&l.rows)?)?;
        if let Some(p) = &paths {
            write(&dir.join(PATHS_CSV), &csv_bytes(p)?)?;
        }
        let row = summary_row(&l, paths.as_deref(), started);
        eprintln!(
            "{name}: test error {:.2}% intact, {} after deleting one block (median){}; {:.0} s",
            100.0 * row.intact_test_error,
            row.delete_median_test_error
                .map_or("—".into(), |median| format!("{:.2}%", 100.0 * median)),
            row.effective_lo
                .zip(row.effective_hi)
                .map_or(String::new(), |(lo, hi)| format!(
                    "; {:.0}% of the gradient through paths of {lo}–{hi} of {} blocks",
                    100.0 * EFFECTIVE_SHARE,
                    row.blocks
                )),
            row.elapsed_s
        );
        self.add_to_summary(row)?;
        Ok(dir)
    }

    /// The lesion study of one run, with a progress line every 30 s.
    fn lesions(&self, run_dir: &Path, name: &str, started: Instant) -> Result<Lesions> {
        let opts = &self.opts;
        eprintln!(
            "{}: lesions on the first {} training and test images, {} draws per k, seed {}, {:?}",
            run_dir.display(),
            opts.samples,
            opts.per_k,
            opts.seed,
            self.device
        );
        let mut last_line = Instant::now();
        let mut progress = |done: usize, total: usize| {
            // A line every 30 s: a study of a 56-layer net takes minutes.
            if last_line.elapsed().as_secs() >= 30 || done == total {
                eprintln!(
                    "{name}: {done}/{total} lesions, {:.0} s",
                    started.elapsed().as_secs_f64()
                );
                last_line = Instant::now();
            }
        };
        let Some(l) = lesion_run(run_dir, opts, self.device, &self.stop, &mut progress)
            .with_context(|| run_dir.display().to_string())?
        else {
            bail!(
                "{}: interrupted; nothing of its lesions was written (runs before it were)",
                run_dir.display()
            );
        };
        Ok(l)
    }

    /// The path study of one run (residual nets), whose lesions are `l`.
    fn paths(&self, run_dir: &Path, name: &str, l: &Lesions) -> Result<Vec<PathRow>> {
        let opts = &self.opts;
        eprintln!(
            "{name}: paths of every length through {} blocks, {} per length, batch of {}",
            l.blocks.blocks.len(),
            opts.per_k,
            opts.batch
        );
        match path_run(run_dir, opts, self.device, &self.stop)
            .with_context(|| run_dir.display().to_string())?
        {
            Some(p) => Ok(p),
            None => bail!(
                "{}: interrupted; nothing of its lesions or paths was written (runs before it were)",
                run_dir.display()
            ),
        }
    }

    /// Puts `row` in the summary (in place of an older row of its run) and
    /// writes it.
    fn add_to_summary(&mut self, row: LesionSummaryRow) -> Result<()> {
        let summary = &mut self.summary;
        summary.retain(|r| r.run != row.run);
        summary.push(row);
        summary.sort_by(|a, b| (a.depth, &a.variant, a.seed).cmp(&(b.depth, &b.variant, b.seed)));
        // Written after every run, so an interruption keeps the runs done.
        write(&self.summary_path, &csv_bytes(summary)?)
    }
}

/// The summary row of a run's lesions `l` and paths, started at `started`.
fn summary_row(l: &Lesions, paths: Option<&[PathRow]>, started: Instant) -> LesionSummaryRow {
    let intact = l
        .rows
        .iter()
        .find(|r| r.lesion == LesionKind::None)
        .map_or(f64::NAN, |r| r.test_error);
    let single = single_deletion(&l.rows);
    let trained: Vec<_> = paths
        .iter()
        .copied()
        .flatten()
        .filter(|r| r.weights == "trained")
        .cloned()
        .collect();
    let effective = effective_paths(&trained, EFFECTIVE_SHARE);
    LesionSummaryRow {
        run: l.record.run.clone(),
        variant: l.record.variant.clone(),
        depth: l.record.depth as u32,
        seed: l.record.seed,
        blocks: l.blocks.blocks.len(),
        deletable: l.blocks.blocks.iter().filter(|b| b.same_shape).count(),
        samples: l.samples,
        intact_test_error: intact,
        chance_error: 1.0 - 1.0 / l.classes.max(1) as f64,
        delete_median_test_error: single.map(|s| s.0),
        delete_max_test_error: single.map(|s| s.1),
        effective_lo: effective.map(|e| e.0),
        effective_hi: effective.map(|e| e.1),
        peak_k: effective.map(|e| e.2),
        elapsed_s: started.elapsed().as_secs_f64(),
    }
}
