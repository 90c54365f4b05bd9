//! The one error type of this crate.

use std::path::PathBuf;

use thiserror::Error;

/// Everything that can go wrong while loading results or drawing charts.
///
/// Every variant names the file or directory involved, because the user's next
/// step is always to open that file.
#[derive(Debug, Error)]
pub enum PlotError {
    /// The directory has no `summary.csv`, so it is not a results directory
    /// (or the sweep that should have written it never finished).
    #[error("{} is not a gradscope results directory: it has no summary.csv", path.display())]
    NotResultsDir {
        /// The directory that was given.
        path: PathBuf,
    },

    /// A file exists but could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// Folders that `gradscope compare` cannot put side by side.
    #[error("cannot compare {}: {message}", path.display())]
    Compare {
        /// The folder at fault.
        path: PathBuf,
        /// Why.
        message: String,
    },

    /// A CSV file does not follow the file contract.
    #[error(
        "malformed CSV {}{}{}: {message}",
        path.display(),
        line.map(|l| format!(", line {l}")).unwrap_or_default(),
        column.as_ref().map(|c| format!(", column `{c}`")).unwrap_or_default()
    )]
    Csv {
        /// The CSV file.
        path: PathBuf,
        /// 1-based line of the bad record (the header is line 1), when known.
        line: Option<u64>,
        /// Name of the offending column, when the error is about one field.
        column: Option<String>,
        /// What is wrong, without the position (which is in `line`/`column`).
        message: String,
        /// The csv crate's error.
        #[source]
        source: csv::Error,
    },

    /// A `run` value in summary.csv that is not a plain directory name; it
    /// is refused rather than joined onto a path (it could point outside the
    /// results directory).
    #[error("{}, line {line}: run name {run:?} is not a plain directory name", path.display())]
    BadRunName {
        /// The summary.csv file.
        path: PathBuf,
        /// 1-based line of the row.
        line: u64,
        /// The offending run name.
        run: String,
    },

    /// The font compiled into the crate could not be registered with plotters.
    #[error("the embedded DejaVu Sans font could not be registered with plotters")]
    Font,

    /// plotters failed while drawing or encoding a chart.
    #[error("drawing chart {chart} ({format}) into {} failed: {message}", path.display())]
    Draw {
        /// The chart name, e.g. `gradient_profile`.
        chart: String,
        /// `png` or `svg`.
        format: &'static str,
        /// The file being written.
        path: PathBuf,
        /// plotters' error message.
        message: String,
    },
}
