//! `gradscope landscape`: loss-landscape slices of trained runs (Li et al.
//! 2018), written beside the runs they were taken from, with their
//! summary and charts (see `gradscope_train::landscape` for the method).

use anyhow::{bail, Context, Result};
use gradscope_format::durable::write_atomic;
use gradscope_format::files::{LANDSCAPE_SUMMARY_CSV, RUNS_DIR};
use gradscope_format::landscape::{
    landscape_file, read_summary, Grid, LandscapeSummaryRow, Surface, Weights,
};
use gradscope_train::landscape::{check_run_at, evaluate_run, Landscape, Options};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use tch::Device;

/// The options of `gradscope landscape`.
#[derive(clap::Args)]
pub struct Args {
    /// Run folders trained with "save_weights": true, e.g.
    /// results/landscape/runs/plain-d20-s0 results/landscape/runs/residual-d20-s0.
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// Points per side of the (α, β) grid (odd: the centre is the weights
    /// themselves).
    #[arg(long, default_value_t = 25)]
    pub grid: usize,
    /// The grid spans [-SPAN, SPAN] along each filter-normalized direction.
    #[arg(long, default_value_t = 1.0)]
    pub span: f64,
    /// Training images the loss is the mean of (the first ones).
    #[arg(long, default_value_t = 2048)]
    pub samples: usize,
    /// Seeds of the two random directions, e.g. 0,1,2: one grid per seed
    /// and run, so that each reading has a spread (Li et al. draw one pair).
    #[arg(long, value_delimiter = ',', default_value = "0")]
    pub seed: Vec<u64>,
    /// Centre the grids on the trained weights (model.ot) or on the run's
    /// initial weights, built again from its seed: the control that tells
    /// the architecture's surface from what training made of it.
    #[arg(long, value_enum, default_value_t = At::Trained)]
    pub at: At,
    /// Results folder to write into: OUT/runs/RUN/landscape*.csv,
    /// OUT/landscape_summary.csv, OUT/plots/loss_landscape and loss_slice
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

/// `--at`: which weights the grids are centred on.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum At {
    Trained,
    Init,
}

impl From<At> for Weights {
    fn from(a: At) -> Weights {
        match a {
            At::Trained => Weights::Trained,
            At::Init => Weights::Init,
        }
    }
}

pub fn landscape(args: Args, style: gradscope_plot::Style) -> Result<()> {
    let at = Weights::from(args.at);
    let mut seeds = args.seed.clone();
    seeds.sort_unstable();
    seeds.dedup();
    let first = Options {
        grid: args.grid,
        span: args.span,
        samples: args.samples,
        seed: seeds[0],
        at,
    };
    first.validate()?;
    // Every run folder is checked before anything is created or written.
    let (names, out) = super::run_folders(&args.runs, args.out.as_deref(), |run| {
        Ok(check_run_at(run, at).map(drop)?)
    })?;
    super::set_threads(args.threads)?;
    let device = super::device(args.device)?;
    let (stop, _lock) = super::start_writing(&out)?;
    let mut study = Study::new(out, first, device, stop)?;
    let grids = args
        .runs
        .iter()
        .zip(&names)
        .flat_map(|(run, name)| seeds.iter().map(move |&seed| (run, name, seed)));
    for (run_dir, name, seed) in grids {
        let path = study.grid(run_dir, name, seed)?;
        println!("{}", path.display());
    }
    for r in gradscope_plot::render_landscape(&study.out, style)? {
        println!("{}", r.png.display());
    }
    println!("{}", study.summary_path.display());
    Ok(())
}

/// What the grids of one `gradscope landscape` share: where they go, the
/// options of the first (the others differ in their seed), and the summary
/// they add to.
struct Study {
    out: PathBuf,
    first: Options,
    device: Device,
    /// Set by Ctrl-C.
    stop: Arc<AtomicBool>,
    summary_path: PathBuf,
    summary: Vec<LandscapeSummaryRow>,
}

impl Study {
    /// The study of results folder `out`, with the summary rows it holds.
    fn new(out: PathBuf, first: Options, device: Device, stop: Arc<AtomicBool>) -> Result<Study> {
        let summary_path = out.join(LANDSCAPE_SUMMARY_CSV);
        let summary = read_summary(&out)
            .map_err(anyhow::Error::msg)?
            .unwrap_or_default();
        Ok(Study {
            out,
            first,
            device,
            stop,
            summary_path,
            summary,
        })
    }

    /// One grid of run `name` with the directions of `seed`: evaluated,
    /// written to OUT/runs/NAME/ and added to the summary. Returns the
    /// grid's file.
    fn grid(&mut self, run_dir: &Path, name: &str, seed: u64) -> Result<PathBuf> {
        let opts = Options { seed, ..self.first };
        let l = self.evaluate(run_dir, name, &opts)?;
        let dir = self.out.join(RUNS_DIR).join(name);
        std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
        let mut w = csv::Writer::from_writer(Vec::new());
        for row in &l.rows {
            w.serialize(row)?;
        }
        let path = dir.join(landscape_file(opts.at, seed));
        write_atomic(&path, &w.into_inner()?)
            .map_err(|(p, e)| anyhow::anyhow!("{}: {e}", p.display()))?;
        let row = summary_row(&l, &opts)?;
        eprintln!(
            "{name} ({} weights, directions {seed}): loss {:.4} at the centre; {} local minima, {:.0}% non-convex, roughness {:.3} decades ({:.0} s)",
            opts.at.as_str(),
            row.centre_loss.unwrap_or(f64::NAN),
            row.local_minima,
            row.nonconvex_fraction.unwrap_or(f64::NAN) * 100.0,
            row.roughness.unwrap_or(f64::NAN),
            l.elapsed_s
        );
        self.add_to_summary(row)?;
        Ok(path)
    }

    /// Evaluates the grid `opts` around run `run_dir` (named `name`), with a
    /// progress bar or, without a terminal, progress lines.
    fn evaluate(&self, run_dir: &Path, name: &str, opts: &Options) -> Result<Landscape> {
        let seed = opts.seed;
        let total = (opts.grid * opts.grid) as u64;
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} points, eta {eta}  {msg}",
                )
                .expect("static template")
                .progress_chars("=> "),
            );
            bar.set_message(format!("{name}, directions {seed}"));
            bar
        });
        eprintln!(
            "{}: {}×{} grid around the {} weights, directions of seed {seed}, over ±{} on {} training images, {:?}",
            run_dir.display(),
            opts.grid,
            opts.grid,
            opts.at.as_str(),
            opts.span,
            opts.samples,
            self.device
        );
        // Without a terminal (a log, make), a line at every tenth of the grid.
        let started = std::time::Instant::now();
        let mut progress = |done: usize, total: usize| match &bar {
            Some(b) => b.set_position(done as u64),
            None if done.is_multiple_of(total.div_ceil(10).max(1)) && done < total => eprintln!(
                "{name}: {done}/{total} points, {:.0} s",
                started.elapsed().as_secs_f64()
            ),
            None => {}
        };
        let landscape = evaluate_run(run_dir, opts, self.device, &self.stop, &mut progress)
            .with_context(|| run_dir.display().to_string())?;
        if let Some(b) = &bar {
            b.finish_and_clear();
        }
        let Some(l) = landscape else {
            bail!(
                "{}: interrupted; nothing of its grid was written (runs before it were)",
                run_dir.display()
            );
        };
        Ok(l)
    }

    /// Puts `row` in the summary (in place of an older row of the same
    /// grid) and writes it.
    fn add_to_summary(&mut self, row: LandscapeSummaryRow) -> Result<()> {
        let summary = &mut self.summary;
        summary.retain(|r| r.key() != row.key());
        summary.push(row);
        // Plain before residual at each depth, as the charts' panels go.
        summary.sort_by(|a, b| {
            let key = |r: &LandscapeSummaryRow| {
                (
                    r.depth,
                    r.variant.clone(),
                    r.weights,
                    r.seed,
                    r.direction_seed,
                )
            };
            key(a).cmp(&key(b))
        });
        // Written after every run, so an interruption keeps the runs done.
        let mut w = csv::Writer::from_writer(Vec::new());
        for r in summary.iter() {
            w.serialize(r)?;
        }
        write_atomic(&self.summary_path, &w.into_inner()?)
            .map_err(|(p, e)| anyhow::anyhow!("{}: {e}", p.display()))?;
        Ok(())
    }
}

/// The summary row of grid `l`, taken with `opts`.
fn summary_row(l: &Landscape, opts: &Options) -> Result<LandscapeSummaryRow> {
    let surface = Surface::from_rows(&l.rows).map_err(|e| anyhow::anyhow!(e))?;
    Ok(LandscapeSummaryRow::read(
        &surface,
        Grid {
            run: l.record.run.clone(),
            variant: l.record.variant.clone(),
            depth: l.record.depth as u32,
            seed: l.record.seed,
            weights: opts.at,
            grid: opts.grid,
            span: opts.span,
            samples: l.samples,
            direction_seed: opts.seed,
            elapsed_s: l.elapsed_s,
        },
    ))
}
