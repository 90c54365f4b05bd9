//! gradscope-train: from an experiment file to finished runs.
//!
//! Main types, in the order data flows through them:
//! - [`spec::Experiment`]: the experiment file, parsed with unknown fields
//!   rejected and every value validated; errors name the file and the field.
//! - [`plan::RunSpec`]: one run (variant × depth × seed); [`plan::plan`]
//!   lists them.
//! - [`train_loop::train_run`]: the training loop, one function that reads
//!   top to bottom: forward, loss, backward, probe, step, log, evaluate.
//! - [`sweep::Sweep`]: the results directory: run folders, `run.json`,
//!   `summary.csv`.

#[cfg(test)]
mod fuzz;
pub mod plan;
pub mod record;
pub mod spec;
pub mod sweep;
pub mod train_loop;

use std::path::PathBuf;

/// Everything that can stop a sweep or a run.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Spec(#[from] spec::SpecError),
    #[error(transparent)]
    Data(#[from] gradscope_data::DataError),
    #[error(transparent)]
    Model(#[from] gradscope_models::ModelError),
    #[error(transparent)]
    Probe(#[from] gradscope_probe::ProbeError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}: {source}", path.display())]
    Csv {
        path: PathBuf,
        #[source]
        source: csv::Error,
    },
    /// A setting that only shows its problem once the data are loaded.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

impl TrainError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> TrainError {
        let path = path.into();
        move |source| TrainError::Io { path, source }
    }
}
