//! `gradscope jacobian`: the singular values of an MLP trunk's input–output
//! Jacobian at init and after training (Pennington, Schoenholz & Ganguli
//! 2017), written beside the runs (see `gradscope_train::jacobian`).

use anyhow::{Context, Result};
use gradscope_format::durable::write_atomic;
use gradscope_format::files::{JACOBIAN_CSV, JACOBIAN_SUMMARY_CSV, RUNS_DIR, SUMMARY_CSV};
use gradscope_format::jacobian::{read_summary, JacobianSummaryRow, Spectrum};
use gradscope_format::landscape::Weights;
use gradscope_format::rows::SummaryRow;
use gradscope_train::jacobian::{check_run, run_spectra, step_of, RunSpectra};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

/// The options of `gradscope jacobian`.
#[derive(clap::Args)]
pub struct Args {
    /// Run folders of MLP runs, e.g. results/isometry/runs/plain-tanh-orthogonal-d100-s0.
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// The weights to take the Jacobian at: the initial ones (rebuilt from
    /// the run's seed), the trained ones (model.ot, from
    /// "train.save_weights": true), or both.
    #[arg(long, value_enum, default_value_t = At::Both)]
    pub at: At,
    /// Inputs the Jacobian is taken at (the first training examples).
    #[arg(long, default_value_t = 4)]
    pub examples: usize,
    /// Results folder to write into: OUT/runs/RUN/jacobian.csv,
    /// OUT/jacobian_summary.csv, OUT/plots/jacobian_spectrum
    /// [default: the results folder the runs are in].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// libtorch intra-op threads [default: the number of CPUs].
    #[arg(long)]
    pub threads: Option<i32>,
    /// Where to compute.
    #[arg(long, value_enum, default_value_t = super::DeviceArg::Auto)]
    pub device: super::DeviceArg,
}

/// `--at`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum At {
    Init,
    Trained,
    Both,
}

impl At {
    fn weights(self) -> Vec<Weights> {
        match self {
            At::Init => vec![Weights::Init],
            At::Trained => vec![Weights::Trained],
            At::Both => vec![Weights::Init, Weights::Trained],
        }
    }
}

pub fn jacobian(args: Args, style: gradscope_plot::Style) -> Result<()> {
    anyhow::ensure!(
        (1..=256).contains(&args.examples),
        "--examples: {} must be from 1 to 256",
        args.examples
    );
    let at = args.at.weights();
    // Every run folder is checked before anything is created or written.
    let (names, out) = super::run_folders(&args.runs, args.out.as_deref(), |run| {
        Ok(check_run(run, &at)?)
    })?;
    super::set_threads(args.threads)?;
    let device = super::device(args.device)?;
    let (stop, _lock) = super::start_writing(&out)?;
    let summary_path = out.join(JACOBIAN_SUMMARY_CSV);
    let mut summary = read_summary(&out)
        .map_err(anyhow::Error::msg)?
        .unwrap_or_default();
    let errors = final_errors(&out);
    for (run_dir, name) in args.runs.iter().zip(&names) {
        anyhow::ensure!(
            !stop.load(Ordering::SeqCst),
            "interrupted before {}; the runs before it were written",
            run_dir.display()
        );
        let started = std::time::Instant::now();
        let spectra = run_spectra(run_dir, &at, args.examples, device)
            .with_context(|| run_dir.display().to_string())?;
        let dir = out.join(RUNS_DIR).join(name);
        std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
        let mut w = csv::Writer::from_writer(Vec::new());
        for row in &spectra.rows {
            w.serialize(row)?;
        }
        let path = dir.join(JACOBIAN_CSV);
        write_atomic(&path, &w.into_inner()?)
            .map_err(|(p, e)| anyhow::anyhow!("{}: {e}", p.display()))?;
        for &wt in &at {
            let row = summary_row(
                &spectra,
                wt,
                args.examples,
                errors.get(name).copied().flatten(),
            );
            eprintln!(
                "{name} ({}, step {}): mean s² {:.4}, spread of ln s {}, max/min {} ({:.1} s)",
                wt.as_str(),
                row.step,
                row.mean_sq,
                opt(row.log_spread),
                opt(row.condition),
                started.elapsed().as_secs_f64()
            );
            summary.retain(|r| r.key() != row.key());
            summary.push(row);
        }
        summary.sort_by(|a, b| {
            (&a.activation, &a.init, a.depth, a.seed, a.step).cmp(&(
                &b.activation,
                &b.init,
                b.depth,
                b.seed,
                b.step,
            ))
        });
        // Written after every run, so an interruption keeps the runs done.
        let mut w = csv::Writer::from_writer(Vec::new());
        for r in &summary {
            w.serialize(r)?;
        }
        write_atomic(&summary_path, &w.into_inner()?)
            .map_err(|(p, e)| anyhow::anyhow!("{}: {e}", p.display()))?;
        println!("{}", path.display());
    }
    for p in gradscope_plot::render_jacobian(&out, style)? {
        println!("{}", p.display());
    }
    println!("{}", summary_path.display());
    Ok(())
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(
        || "undefined (a zero singular value)".into(),
        |v| format!("{v:.4}"),
    )
}

/// Each run's final training error from `out/summary.csv`; empty where the
/// folder has none or it does not read (the summary's column is then empty).
fn final_errors(out: &Path) -> std::collections::BTreeMap<String, Option<f64>> {
    let Ok(mut r) = csv::Reader::from_path(out.join(SUMMARY_CSV)) else {
        return Default::default();
    };
    r.deserialize::<SummaryRow>()
        .filter_map(Result::ok)
        .map(|row| (row.run, row.final_train_error))
        .collect()
}

/// The summary row of `spectra` at `at`: the readings of every example's
/// singular values together.
fn summary_row(
    spectra: &RunSpectra,
    at: Weights,
    examples: usize,
    final_train_error: Option<f64>,
) -> JacobianSummaryRow {
    let record = &spectra.record;
    let step = step_of(record, at);
    let values: Vec<f64> = spectra
        .rows
        .iter()
        .filter(|r| r.step == step)
        .map(|r| r.singular_value)
        .collect();
    let s = Spectrum::of(&values);
    JacobianSummaryRow {
        run: record.run.clone(),
        variant: record.variant.clone(),
        depth: record.depth as u32,
        seed: record.seed,
        swept: record
            .swept
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(";"),
        activation: spectra.activation.clone(),
        init: spectra.init.clone(),
        step,
        examples: examples.min(values.len()),
        singular_values: values.len(),
        mean_sq: s.map_or(f64::NAN, |s| s.mean_sq),
        log_spread: s.and_then(|s| s.log_spread),
        condition: s.and_then(|s| s.condition),
        final_train_error,
    }
}
