//! `run.json` and `summary.csv`: what a run says about itself, and the one
//! row per run that the charts and reports start from.

use crate::spec::Experiment;
use crate::TrainError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

// One definition for the writer and every reader (gradscope-format).
pub use gradscope_format::run::{FinalMetrics, GradientEnds, Status};

/// Versions a result depends on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Versions {
    pub gradscope: String,
    pub tch: String,
    pub libtorch: String,
}

impl Versions {
    pub fn current() -> Versions {
        Versions {
            gradscope: env!("CARGO_PKG_VERSION").to_string(),
            // Pinned with `=` in the workspace Cargo.toml.
            tch: "0.24.0".to_string(),
            // Read from the wheel at build time by crates/build-libtorch.rs.
            libtorch: env!("GRADSCOPE_LIBTORCH_VERSION").to_string(),
        }
    }
}

/// The content of `run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub experiment: String,
    /// The experiment file the sweep was started from, as given on the
    /// command line (`gradscope report` prints how to rerun it); absent in
    /// records written before it existed.
    #[serde(default)]
    pub experiment_file: Option<String>,
    pub run: String,
    pub variant: String,
    /// The values of the settings the experiment sweeps (`{"init":
    /// "glorot"}`); empty, and left out of the file, when it sweeps none.
    /// `config` is the whole experiment, lists included.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub swept: BTreeMap<String, String>,
    pub depth: usize,
    pub seed: u64,
    pub status: Status,
    pub diverged_at_step: Option<usize>,
    pub error: Option<String>,
    pub steps_planned: usize,
    pub steps_done: usize,
    /// The steps this run went on from a checkpoint at, one per resume
    /// (`--resume` after a SIGTERM, a kill or a Slurm requeue); left out
    /// when it trained in one go.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resumed_from: Vec<usize>,
    pub params: i64,
    pub elapsed_s: f64,
    pub device: String,
    pub threads: i32,
    pub versions: Versions,
    #[serde(rename = "final")]
    pub final_metrics: FinalMetrics,
    pub gradient_ends: GradientEnds,
    pub probe_points: Vec<String>,
    pub config: Experiment,
}

impl RunRecord {
    pub fn read(path: &Path) -> Result<RunRecord, TrainError> {
        let text = std::fs::read_to_string(path).map_err(TrainError::io(path))?;
        serde_json::from_str(&text).map_err(|source| TrainError::Json {
            path: path.to_path_buf(),
            source,
        })
    }

    pub fn write(&self, path: &Path) -> Result<(), TrainError> {
        let text = serde_json::to_string_pretty(self).map_err(|source| TrainError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        write_file(path, format!("{text}\n").as_bytes())
    }
}

/// Columns of `summary.csv`: the decay and spread lead, the first/last L2
/// norms follow for comparison with older results. A swept experiment has
/// one more column per swept setting after `variant` (in
/// [`crate::plan::SWEPT_FIELDS`] order: `activation`, `init`, `norm`).
pub const SUMMARY_HEADER: [&str; 21] = [
    "run",
    "variant",
    "depth",
    "seed",
    "status",
    "steps_done",
    "params",
    "final_train_loss",
    "final_train_error",
    "final_test_loss",
    "final_test_error",
    "grad_decay_init",
    "grad_decay_theory",
    "grad_decay_final",
    "grad_spread_init",
    "grad_spread_final",
    "grad_first_init",
    "grad_last_init",
    "grad_first_final",
    "grad_last_final",
    "elapsed_s",
];

/// Writes `summary.csv` (atomically) from run records, in the given order.
pub fn write_summary(path: &Path, records: &[RunRecord]) -> Result<(), TrainError> {
    let csv_err = |source| TrainError::Csv {
        path: path.to_path_buf(),
        source,
    };
    let swept: Vec<&str> = crate::plan::SWEPT_FIELDS
        .into_iter()
        .filter(|f| records.iter().any(|r| r.swept.contains_key(*f)))
        .collect();
    let mut header: Vec<&str> = SUMMARY_HEADER[..2].to_vec();
    header.extend(&swept);
    header.extend(&SUMMARY_HEADER[2..]);
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&header).map_err(csv_err)?;
    for r in records {
        let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
        let (f, g) = (&r.final_metrics, &r.gradient_ends);
        let mut row = vec![r.run.clone(), r.variant.clone()];
        row.extend(
            swept
                .iter()
                .map(|f| r.swept.get(*f).cloned().unwrap_or_default()),
        );
        row.extend([
            r.depth.to_string(),
            r.seed.to_string(),
            r.status.as_str().to_string(),
            r.steps_done.to_string(),
            r.params.to_string(),
            opt(f.train_loss),
            opt(f.train_error),
            opt(f.test_loss),
            opt(f.test_error),
            opt(g.decay_init),
            opt(g.decay_theory),
            opt(g.decay_final),
            opt(g.spread_init),
            opt(g.spread_final),
            opt(g.init_first),
            opt(g.init_last),
            opt(g.final_first),
            opt(g.final_last),
            format!("{:.3}", r.elapsed_s),
        ]);
        w.write_record(&row).map_err(csv_err)?;
    }
    let bytes = w.into_inner().map_err(|e| TrainError::Io {
        path: path.to_path_buf(),
        source: e.into_error(),
    })?;
    write_file(path, &bytes)
}

/// [`gradscope_format::durable::write_atomic`], its error as a
/// [`TrainError`] naming the path.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    gradscope_format::durable::write_atomic(path, bytes)
        .map_err(|(path, source)| TrainError::Io { path, source })
}
