//! gradscope-train: from an experiment file to finished runs.
//!
//! Main types, in the order data flows through them:
//! - [`spec::Experiment`]: the experiment file, parsed with unknown fields
//!   rejected and every value validated; errors name the file and the field.
//! - [`plan::RunSpec`]: one run (variant × swept settings × depth × seed);
//!   [`plan::plan`] lists them. A setting is swept when the file gives a
//!   list ([`gradscope_models::spec::Axis`]: `"init": ["pytorch-default", "glorot"]`).
//! - [`train_loop::train_run`]: the training loop: start (or resume), the
//!   steps (one loop that reads top to bottom: forward, loss, backward,
//!   probe, step, log, evaluate), and the final passes.
//! - [`sweep::Sweep`]: the results directory: run folders (each trained in
//!   `RUN.partial/` and renamed into place when it ends), `run.json`,
//!   `summary.csv`, and what `--resume` keeps or trains again.
//! - [`lock::ResultsLock`]: one writer per results directory.
//! - [`worker`]: `run --jobs N`'s side of a sweep: runs trained in worker
//!   processes while the parent holds the lock and writes the summary.
//!
//! On trained runs (`train.save_weights`): [`landscape`] (loss surfaces,
//! Li et al. 2018) and [`lesion`] (deleting and swapping blocks, and the
//! gradient per path length, Veit et al. 2016).

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod check;
pub mod checkpoint;
#[cfg(test)]
mod fuzz;
pub mod holdings;
pub mod jacobian;
pub mod landscape;
pub mod lesion;
pub mod lock;
pub mod merge;
pub mod panics;
pub mod plan;
pub mod record;
pub mod sgd;
pub mod shard;
pub mod spec;
pub mod sweep;
pub mod theory;
mod train_checks;
pub mod train_loop;
#[cfg(test)]
mod transformer_tests;
pub mod weights;
pub mod worker;

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
    /// The probe's error; libtorch's within it in one line, as for
    /// [`TrainError::Torch`] (an out-of-memory in the backward pass lands
    /// here).
    #[error("{}", probe_line(.0))]
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
    /// Another process is writing the results directory.
    #[error("{}: another gradscope is writing this results directory ({}); wait for it to end, or stop it, and try again", path.display(), holder.as_ref().map(|h| h.to_string()).unwrap_or_else(|| "its lock file does not say who".into()))]
    Locked {
        path: PathBuf,
        holder: Option<lock::Holder>,
    },
    /// The results directory already holds runs of this experiment, with
    /// the same settings, and the caller asked neither to resume nor to
    /// restart.
    #[error("{}: already holds {count} run(s) of this experiment, {name:?} ({runs}); use --resume to keep finished runs and train only the missing and unfinished ones, or --restart to train every run again (each old run is replaced when its new one ends)", out.display())]
    Existing {
        out: PathBuf,
        count: usize,
        name: String,
        runs: String,
    },
    /// The results directory holds runs of this experiment trained with
    /// other settings than the file gives now.
    #[error("{}: already holds {count} run(s) of experiment {name:?} trained with other settings (the experiment file differs in {fields}); use --restart to train every run again with the file's settings, or --out for a results directory of its own", out.display())]
    ExistingChanged {
        out: PathBuf,
        count: usize,
        name: String,
        fields: String,
    },
    /// The results directory holds runs of another experiment (by the
    /// name their run.json records).
    #[error("{}: holds {held}, not runs of experiment {ours:?}; {advice}", out.display())]
    OtherExperiment {
        out: PathBuf,
        /// What it holds, by experiment name, file and differing settings.
        held: String,
        /// The experiment that was asked to run here.
        ours: String,
        /// What to do instead.
        advice: String,
    },
    /// A finished run to be kept by --resume was trained with other settings.
    #[error("{}: this run was trained with a different {fields} than the experiment file says; --resume only continues a sweep with the same settings (depths, seeds and variants may be added); use --restart to train every run again, or --out for a new results directory", path.display())]
    ConfigChanged { path: PathBuf, fields: String },
    /// A file that cannot be used as it is: which file and why (saved
    /// weights that do not fit the network, a run folder without them).
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },
    /// Directories `gradscope merge` cannot merge: the one at fault and why.
    #[error("{}: {message}", path.display())]
    Merge { path: PathBuf, message: String },
    /// A checkpoint that cannot be gone on from: which file and why. The
    /// run drops it and trains from step 0 rather than fail on it again.
    #[error("{}: {message}", path.display())]
    Checkpoint { path: PathBuf, message: String },
    /// libtorch's error in one line (see [`torch_line`]).
    #[error("libtorch: {}", torch_line(.0))]
    Torch(#[from] tch::TchError),
    /// A panic inside a run (tch panics on libtorch errors), caught so that
    /// it stays inside that run: its reason in one line.
    #[error("{0}")]
    Panic(String),
}

/// A libtorch error as one line: its first, without the `[enforce fail
/// at FILE:LINE]` prefix and the C++ frame list that follow (often dozens
/// of lines, which would fill the terminal and `run.json`). The whole text
/// only with `RUST_BACKTRACE` set (not `0`), for a bug report.
pub fn torch_line(e: &tch::TchError) -> String {
    torch_text(e, std::env::var("RUST_BACKTRACE").is_ok_and(|v| v != "0"))
}

fn probe_line(e: &gradscope_probe::ProbeError) -> String {
    match e {
        gradscope_probe::ProbeError::Torch(t) => format!("probe: libtorch: {}", torch_line(t)),
        e => e.to_string(),
    }
}

pub(crate) fn torch_text(e: &tch::TchError, full: bool) -> String {
    let text = match e {
        tch::TchError::Torch(t) => t.clone(),
        e => e.to_string(),
    };
    if full {
        return text;
    }
    let first = text.lines().next().unwrap_or_default().trim();
    let first = match first.find("] ") {
        Some(i) if first.starts_with('[') => first[i + 2..].trim_start_matches("data. "),
        _ => first,
    };
    first.to_owned()
}

impl TrainError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> TrainError {
        let path = path.into();
        move |source| TrainError::Io { path, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 38 §3: an out-of-memory error on the `Result` path (not a
    /// panic) carried libtorch's 38 C++ frames into the terminal and
    /// run.json; it is one line, with the whole text only on request.
    #[test]
    fn a_libtorch_error_is_one_line() {
        let text = "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory: you tried to allocate 4294967296 bytes\nException raised from allocate_cpu at alloc_cpu.cpp:117\nframe #0: c10::Error::Error(...)\nframe #1: ...";
        let e = tch::TchError::Torch(text.to_owned());
        let line = torch_text(&e, false);
        assert_eq!(
            line,
            "DefaultCPUAllocator: not enough memory: you tried to allocate 4294967296 bytes"
        );
        assert_eq!(torch_text(&e, true), text);
        // The run's own out-of-memory is tested end to end, under a
        // memory limit and without RUST_BACKTRACE (tests/trust.rs).
    }
}
