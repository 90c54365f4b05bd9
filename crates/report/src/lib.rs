//! gradscope-report: `RESULTS/report.md`, the page a results directory is
//! published with.
//!
//! [`write_report`] reads a results directory (the file contract of
//! `crates/README.md`) and writes, atomically, a Markdown report with:
//!
//! - the experiment (name, description, experiment file) and how to rerun it;
//! - a table of runs grouped by variant and depth (seeds, final train and
//!   test error as mean ± std over completed seeds, parameters, wall time,
//!   status), and a list of runs that are missing or unfinished;
//! - a generated paragraph on what the numbers show: whether plain error
//!   rises with depth and whether residual error does ([`analysis`]), the
//!   first/last-layer ‖dL/dh‖ ratios, and whether the gradients agree with
//!   He et al. (2016) §4.1 for BatchNorm nets;
//! - He et al. (2016) Table 6 beside our numbers for the CNN family, and a
//!   Glorot & Bengio (2010) section (saturation and gradient spread per
//!   layer) for sigmoid and tanh MLPs;
//! - every chart of `plots/`, linked relatively. Charts that are missing,
//!   or stale (their inputs changed since they were drawn, as recorded in
//!   `plots/inputs.json`, see `gradscope_plot::fresh`), are drawn first
//!   with gradscope-plot, so the report's text and its charts always
//!   describe the same runs.
//!
//! The page is `assemble` (the order of the sections, once per group of a
//! swept experiment) over `sections`, one module per section, each building
//! its `page::Block`s with the rules that pick its words.
//!
//! The same blocks are written as `report.html`, one file that opens
//! offline: the charts inline as SVG with every drawn value shown on hover,
//! tables that sort on a click (the `page` module writes both).
//!
//! [`compare::write_comparison`] (`gradscope compare`) puts several
//! results folders on one page, `compare.md` and a self-contained
//! `compare.html`, both written from one description (the `page` module).
//!
//! [`reproduce::verify`] (`gradscope verify`) compares a rerun's
//! summary with a published one, run by run, within the seeds' spread.
//!
//! [`export::export`] (`gradscope export`) writes every run's CSV files as
//! one long table per kind, with `run,variant,depth,seed` in front.
//!
//! Partial directories are reported, not refused: a run without `run.json`,
//! or one that is `running`, `interrupted`, `diverged` or `failed`, is marked
//! in the table and named in [`Report::problems`]. Only a path that is not a
//! results directory at all (missing, or without `runs/`) is an error
//! ([`ReportError`]). Like gradscope-plot, this crate reads files only and
//! never links tch.

#![forbid(unsafe_code)]

pub mod analysis;
mod assemble;
pub mod compare;
pub mod export;
mod jacobian;
mod landscape;
mod lesion;
mod page;
pub mod reproduce;
pub mod runs;
mod sections;
pub mod verdict;

use gradscope_format::files::{PLOTS_DIR, RUNS_DIR, SUMMARY_CSV};
use std::path::{Path, PathBuf};

use thiserror::Error;

pub use runs::{RunEntry, RunJson};

/// The same report as one self-contained HTML file, written beside it.
pub use gradscope_format::files::REPORT_HTML;
/// The file [`write_report`] writes inside the results directory.
pub use gradscope_format::files::REPORT_MD as REPORT_FILE;

/// What [`write_report`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The written file, `RESULTS/report.md`.
    pub path: PathBuf,
    /// Run folders found (plus planned runs that have none).
    pub runs: usize,
    /// One line per run that is missing or did not complete, and per file
    /// that could not be read; also listed in the report itself.
    pub problems: Vec<String>,
    /// Charts drawn because `plots/` lacked them or they were stale.
    pub charts_drawn: bool,
    /// Why the charts were drawn, or why stale-looking charts were kept;
    /// `None` when they were up to date.
    pub charts_note: Option<String>,
}

/// Why no report could be written.
#[derive(Debug, Error)]
pub enum ReportError {
    /// The path does not exist or is not a directory.
    #[error("{}: no such results directory", path.display())]
    Missing {
        /// The path that was given.
        path: PathBuf,
    },
    /// A directory without `runs/`: not what `gradscope run` writes.
    #[error(
        "{} is not a gradscope results directory: it has no runs/ folder \
         (make one with `gradscope run EXPERIMENT.json --out {}`)",
        path.display(),
        path.display()
    )]
    NotResultsDir {
        /// The directory that was given.
        path: PathBuf,
    },
    /// A per-run CSV file that `export` could not read as CSV.
    #[error("{}: {message}", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// What is wrong, and the line.
        message: String,
    },
    /// Folders that `gradscope compare` cannot compare, or whose charts
    /// could not be drawn.
    #[error(transparent)]
    Plot(#[from] gradscope_plot::PlotError),
    /// A comparison refused before reading: the path and why.
    #[error("{}: {message}", path.display())]
    Compare {
        /// The folder at fault.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// Reading the directory or writing the report failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Reads `results_dir` and writes `results_dir/report.md`.
///
/// Draws the charts first when `plots/` lacks any of
/// [`gradscope_plot::CHART_NAMES`], or when they are stale (a file they are
/// drawn from changed or appeared since), and `summary.csv` exists; a chart
/// that cannot be drawn is a problem in the report, not an error.
pub fn write_report(results_dir: &Path) -> Result<Report, ReportError> {
    write_report_live(results_dir, None)
}

/// [`write_report`]; with `reload`, `report.html` reloads itself every
/// `reload` seconds and says the sweep is running (`gradscope report
/// --watch`).
pub fn write_report_live(results_dir: &Path, reload: Option<u64>) -> Result<Report, ReportError> {
    if !results_dir.is_dir() {
        return Err(ReportError::Missing {
            path: results_dir.to_path_buf(),
        });
    }
    if !results_dir.join(RUNS_DIR).is_dir() {
        return Err(ReportError::NotResultsDir {
            path: results_dir.to_path_buf(),
        });
    }
    let mut problems = Vec::new();
    let (charts_drawn, charts_note) = draw_stale_charts(results_dir, &mut problems);
    landscape::draw_stale(results_dir, &mut problems);
    lesion::draw_stale(results_dir, &mut problems);
    jacobian::draw_stale(results_dir, &mut problems);
    let loaded = runs::load(results_dir)?;
    problems.extend(loaded.problems());
    let blocks = assemble::blocks(results_dir, &loaded, &problems);
    let path = results_dir.join(REPORT_FILE);
    write_file(&path, assemble::markdown(&blocks).as_bytes())?;
    // The same page for a browser: one file, charts inline, nothing fetched.
    let title = match blocks.first() {
        Some(page::Block::Heading(_, t)) => t.clone(),
        _ => "gradscope report".to_owned(),
    };
    write_file(
        &results_dir.join(REPORT_HTML),
        page::html_live(&title, &blocks, results_dir, reload).as_bytes(),
    )?;
    Ok(Report {
        path,
        runs: loaded.entries.len(),
        problems,
        charts_drawn,
        charts_note,
    })
}

/// Draws every chart when one is missing or any is stale; notes why it
/// could not. Returns whether it drew and why it drew (or kept) them.
fn draw_stale_charts(root: &Path, problems: &mut Vec<String>) -> (bool, Option<String>) {
    use gradscope_plot::fresh::{self, Freshness};
    let freshness = match fresh::check(root) {
        Ok(f) => f,
        Err(e) => {
            problems.push(format!("charts not checked or drawn: {e}"));
            return (false, None);
        }
    };
    if !freshness.needs_drawing() {
        return (false, None);
    }
    if !root.join(SUMMARY_CSV).is_file() {
        problems.push(format!(
            "{}: no summary.csv, so no charts could be drawn",
            root.display()
        ));
        return (false, None);
    }
    // Charts from before plots/inputs.json, or from before a chart was
    // added, in a copy without the per-run CSVs (published results commit
    // run.json and the charts, not the CSVs): drawing them again would
    // replace every line by "no data". Only the missing ones are drawn.
    if matches!(freshness, Freshness::NoRecord | Freshness::Missing(_))
        && fresh::inputs(root).is_ok_and(|inputs| !inputs.has_run_csvs())
    {
        let missing: Vec<&str> = gradscope_plot::CHART_NAMES
            .into_iter()
            .filter(|n| !root.join(PLOTS_DIR).join(format!("{n}.png")).is_file())
            .collect();
        if !missing.is_empty() {
            if let Err(e) = gradscope_plot::render_only(root, &missing) {
                problems.push(format!("charts not drawn: {e}"));
            }
        }
        return (
            !missing.is_empty(),
            Some(format!(
                "charts kept as they are: {}, and the per-run CSV files to draw them again are absent{}",
                freshness.reason(),
                if missing.is_empty() {
                    String::new()
                } else {
                    format!(" (drew only the missing: {})", missing.join(", "))
                }
            )),
        );
    }
    match gradscope_plot::render_all(root) {
        Ok(_) => (true, Some(format!("charts drawn: {}", freshness.reason()))),
        Err(e) => {
            problems.push(format!("charts not drawn: {e}"));
            (false, None)
        }
    }
}

/// [`gradscope_format::durable::write_atomic`], its error as a
/// [`ReportError`] naming the path.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    gradscope_format::durable::write_atomic(path, bytes)
        .map_err(|(path, source)| ReportError::Io { path, source })
}
