//! The names of the files and folders of a results directory, one
//! definition for the sweep that writes them and every reader:
//!
//! ```text
//! OUT/summary.csv  report.md  report.html  plots/  plots/inputs.json
//! OUT/.gradscope.lock  export/  landscape_summary.csv  jacobian_summary.csv
//! OUT/runs/RUN/run.json  metrics.csv  gradients.csv  activations.csv
//!              checkpoint.pt  model.ot  landscape*.csv  jacobian.csv
//! OUT/runs/RUN.partial/  RUN.old/          (a run training; one set aside)
//! results/NAME/shards/I/                   (a shard's default folder)
//! COMPARE_OUT/compare.md  compare.html
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
/// A run's lesion study and path study (`gradscope lesion`), and one row
/// per run of a results folder.
pub const LESION_CSV: &str = "lesion.csv";
pub const PATHS_CSV: &str = "paths.csv";
pub const LESION_SUMMARY_CSV: &str = "lesion_summary.csv";
/// A run's Jacobian singular values (`gradscope jacobian`), and one row
/// per run and step of a results folder.
pub const JACOBIAN_CSV: &str = "jacobian.csv";
pub const JACOBIAN_SUMMARY_CSV: &str = "jacobian_summary.csv";
/// The suffix of a run folder while its run trains (`runs/RUN.partial/`).
pub const PARTIAL_SUFFIX: &str = ".partial";
/// The suffix of a run folder set aside for the moment between two
/// renames, while its new copy takes its place (`runs/RUN.old/`).
pub const OLD_SUFFIX: &str = ".old";
/// The name of the run a folder of `runs/` holds, without the suffix of
/// a run training or set aside (`RUN.partial`, `RUN.old`: `RUN`).
pub fn run_of_folder(folder: &str) -> &str {
    folder
        .strip_suffix(PARTIAL_SUFFIX)
        .or_else(|| folder.strip_suffix(OLD_SUFFIX))
        .unwrap_or(folder)
}
/// Whether a folder of `runs/` is a run training or set aside.
pub fn is_transient(folder: &str) -> bool {
    folder.ends_with(PARTIAL_SUFFIX) || folder.ends_with(OLD_SUFFIX)
}
/// Held while a command writes into a results directory.
pub const LOCK_FILE: &str = ".gradscope.lock";
/// What the charts were drawn from, inside `plots/`.
pub const INPUTS_FILE: &str = "inputs.json";
/// `gradscope export`'s default folder inside a results directory.
pub const EXPORT_DIR: &str = "export";
/// `gradscope compare`'s pages.
pub const COMPARE_MD: &str = "compare.md";
pub const COMPARE_HTML: &str = "compare.html";
/// Where results go by default (`results/NAME`), and a shard's folder
/// inside (`results/NAME/shards/I`).
pub const RESULTS_DIR: &str = "results";
pub const SHARDS_DIR: &str = "shards";
