//! The names of the files and folders of a results directory, one
//! definition for the sweep that writes them and every reader:
//!
//! ```text
//! OUT/summary.csv  report.md  report.html  plots/
//! OUT/runs/RUN/run.json  metrics.csv  gradients.csv  activations.csv
//!              checkpoint.pt  model.ot  landscape.csv
//! ```

/// One row per run (see [`crate::rows::SummaryRow`]).
pub const SUMMARY_CSV: &str = "summary.csv";
/// The folder of the run folders.
pub const RUNS_DIR: &str = "runs";
/// The folder of the charts.
pub const PLOTS_DIR: &str = "plots";
/// The report, as Markdown and as one self-contained page.
pub const REPORT_MD: &str = "report.md";
pub const REPORT_HTML: &str = "report.html";
/// What a run says about itself ([`crate::run::RunRecord`]).
pub const RUN_JSON: &str = "run.json";
/// The per-run CSV files ([`crate::rows`]).
pub const METRICS_CSV: &str = "metrics.csv";
pub const GRADIENTS_CSV: &str = "gradients.csv";
pub const ACTIVATIONS_CSV: &str = "activations.csv";
/// The three per-run CSV files in the order a checkpoint records their
/// lengths.
pub const RUN_CSVS: [&str; 3] = [METRICS_CSV, GRADIENTS_CSV, ACTIVATIONS_CSV];
/// A run's last checkpoint (`train.checkpoint_every`).
pub const CHECKPOINT: &str = "checkpoint.pt";
/// A run's final weights (`train.save_weights`), a tch `VarStore` file.
pub const WEIGHTS: &str = "model.ot";
/// A run's loss-landscape grid (`gradscope landscape`).
pub const LANDSCAPE_CSV: &str = "landscape.csv";
/// One row per run of a landscape folder.
pub const LANDSCAPE_SUMMARY_CSV: &str = "landscape_summary.csv";
/// The suffix of a run folder while its run trains (`runs/RUN.partial/`).
pub const PARTIAL_SUFFIX: &str = ".partial";
