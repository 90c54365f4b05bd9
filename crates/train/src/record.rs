//! `run.json` and `summary.csv`: what a run says about itself, and the one
//! row per run that the charts and reports start from.

use crate::spec::Experiment;
use crate::TrainError;
use std::path::Path;

// One definition for the writer and every reader (gradscope-format).
pub use gradscope_format::run::{FinalMetrics, GradientEnds, Status, Versions};

/// The content of `run.json`: gradscope-format's record, whose `config` is
/// the resolved experiment.
pub type RunRecord = gradscope_format::run::RunRecord<Experiment>;

/// The versions this binary was built with.
pub fn current_versions() -> Versions {
    Versions {
        gradscope: env!("CARGO_PKG_VERSION").to_string(),
        // Pinned with `=` in the workspace Cargo.toml.
        tch: "0.24.0".to_string(),
        // Read from the wheel at build time by crates/build-libtorch.rs.
        libtorch: env!("GRADSCOPE_LIBTORCH_VERSION").to_string(),
    }
}

/// Reads a `run.json` strictly (every field, and an experiment that
/// parses).
pub fn read_record(path: &Path) -> Result<RunRecord, TrainError> {
    let text = std::fs::read_to_string(path).map_err(TrainError::io(path))?;
    serde_json::from_str(&text).map_err(|source| TrainError::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes a `run.json` (atomically).
pub fn write_record(record: &RunRecord, path: &Path) -> Result<(), TrainError> {
    let text = serde_json::to_string_pretty(record).map_err(|source| TrainError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    write_file(path, format!("{text}\n").as_bytes())
}

/// Writes `summary.csv` (atomically) from run records, in the given order
/// ([`gradscope_format::rows::summary_csv`]).
pub fn write_summary(path: &Path, records: &[RunRecord]) -> Result<(), TrainError> {
    let bytes = gradscope_format::rows::summary_csv(records).map_err(|source| TrainError::Csv {
        path: path.to_path_buf(),
        source,
    })?;
    write_file(path, &bytes)
}

/// [`gradscope_format::durable::write_atomic`], its error as a
/// [`TrainError`] naming the path.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    gradscope_format::durable::write_atomic(path, bytes)
        .map_err(|(path, source)| TrainError::Io { path, source })
}
