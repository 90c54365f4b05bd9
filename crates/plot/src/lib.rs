//! gradscope-plot: charts from a gradscope results directory.
//!
//! It reads only files (the contract in `crates/README.md`), never tch:
//!
//! - [`ResultsDir`] loads `summary.csv` ([`SummaryRow`]) and, per run
//!   ([`RunData`]), `metrics.csv` ([`MetricRow`]), `gradients.csv`
//!   ([`GradientRow`]) and `activations.csv` ([`ActivationRow`]).
//! - [`render_all`] loads a directory and writes the eight charts to
//!   `RESULTS/plots/NAME.png` and `NAME.svg`; [`train_error_vs_step`],
//!   [`error_vs_depth`], [`gradient_profile`], [`gradient_vs_step`],
//!   [`gradient_heatmap`] (every layer at every probed step),
//!   [`layer_response_std`], [`saturation_vs_step`] and
//!   [`activation_mean_vs_step`] write one chart each
//!   and return its [`Rendered`]
//!   files; [`layer_response_stds`] is the data of the last one for a run.
//! - [`fresh`] says whether the charts in `plots/` still show the files
//!   they were drawn from: [`render_all`] records their inputs (sizes and
//!   content hashes) in `plots/inputs.json`, and [`fresh::check`] compares
//!   that record with the files as they are now, so that `gradscope report`
//!   redraws stale charts rather than only missing ones.
//! - [`cost_vs_time`] draws `gradscope cost`'s chart: multiplications
//!   against measured forward time, per layer and per target.
//! - [`loss_landscape`] and [`loss_slice`] draw `gradscope landscape`'s
//!   charts from [`LandscapePanel`]s: log10 loss over (α, β) per net on
//!   one colour scale, with contour lines (marching squares) and the
//!   trained weights marked; and the loss along δ at β = 0, one line per
//!   net (Li et al. 2018: plain deep nets chaotic, residual ones a bowl).
//! - [`compare`] joins several results folders into one set of charts,
//!   each run labelled by its folder (`gradscope compare`).
//! - [`PlotError`] is the one error type; it names the file at fault.
//!
//! Every line chart is a grid of panels, at most three columns (a row per
//! compared folder or swept value, a column per variant), each legend in a
//! strip beside its plot; [`Style`] sets the size, the font scale (which
//! every margin, title and legend follows) and [`YScale`], shared or
//! per-panel y ranges. A diverged run never sets a shared range, and is
//! marked ✕ with the step it diverged at.
//!
//! Empty data never fail a chart: a panel with nothing drawable says
//! "no data" (and why), and [`Rendered::has_data`] reports it, so the
//! sixteen files always exist. Values a log axis cannot show (zero, negative, NaN,
//! ±Inf) are dropped and break the line there, except on the gradient
//! charts, where a value that is exactly 0 in float32 is drawn as ▼ on
//! the bottom edge, a series that is all 0 keeps its legend entry (marked
//! "all exactly 0 in float32"), and the subtitle says so. A log axis spans every
//! drawn value, rounded out to whole decades and then to its label step, so
//! that both of its ends carry a label.

#![forbid(unsafe_code)]

mod axis;
mod charts;
mod colour_bar;
pub mod compare;
mod cost;
mod error;
#[macro_use]
mod figure;
pub mod fresh;
mod heatmap;
mod jacobian;
mod landscape;
mod lesion;
pub mod phase;
mod phase_diagram;
mod read;

use std::path::{Path, PathBuf};

pub use charts::{
    activation_mean_vs_step, error_vs_depth, forward_signal, gates, gradient_profile,
    gradient_vs_step, layer_response_std, layer_response_stds, render_charts, saturation_vs_step,
    train_error_vs_step, ResponseStds, ACTIVATION_MEAN_VS_STEP, CHART_NAMES, ERROR_VS_DEPTH, GATES,
    GRADIENT_PROFILE, GRADIENT_VS_STEP, LAYER_RESPONSE_STD, MLP_CHARTS, RECURRENT_CHARTS,
    SATURATION_VS_STEP, TRAIN_ERROR_VS_STEP, TRANSFORMER_CHARTS,
};
pub use cost::{cost_vs_time, CostPoint, COST_VS_TIME};
pub use error::PlotError;
pub use figure::{Rendered, Style, YScale};
pub use heatmap::{gradient_heatmap, GRADIENT_HEATMAP};
pub use jacobian::{log_density, render_jacobian, JACOBIAN_SPECTRUM};
pub use landscape::{
    loss_landscape, loss_slice, render_landscape, LandscapePanel, LOSS_LANDSCAPE, LOSS_SLICE,
};
pub use lesion::{render_lesion, LESION_K, LESION_SINGLE, PATH_GRADIENT};
pub use phase_diagram::{has_phase_diagram, phase_diagram, PHASE_DIAGRAM};
pub use read::{
    ActivationRow, GradientRow, MetricRow, ResultsDir, RunData, SummaryRow, KIND_OUTPUT,
    SPLIT_TRAIN, STATUS_COMPLETED, STATUS_DIVERGED,
};

/// Loads `results_dir` and writes every chart into `results_dir/plots/`.
///
/// Returns the written files, PNG then SVG for each chart in
/// [`CHART_NAMES`] order (sixteen paths). Then records what they were
/// drawn from in `plots/inputs.json` ([`fresh`]).
/// The charts are drawn at the size they were last drawn at (recorded in
/// `plots/inputs.json`), so that `gradscope report` redrawing stale charts
/// keeps a size chosen with `gradscope plot --width`.
pub fn render_all(results_dir: &Path) -> Result<Vec<PathBuf>, PlotError> {
    render_all_with(results_dir, fresh::recorded_style(results_dir))
}

/// Draws only the charts named in `names` (of [`CHART_NAMES`]) into
/// `results_dir/plots/`, leaving the others and `plots/inputs.json` as they
/// are: for a published copy without its per-run CSV files, where drawing
/// the others again would replace their lines by "no data".
pub fn render_only(results_dir: &Path, names: &[&str]) -> Result<Vec<PathBuf>, PlotError> {
    let mut results = ResultsDir::load(results_dir)?;
    results.style = fresh::recorded_style(results_dir);
    let dir = results.plots_dir();
    let mut written = Vec::new();
    for &name in names {
        let r = match name {
            TRAIN_ERROR_VS_STEP => train_error_vs_step(&results, &dir)?,
            ERROR_VS_DEPTH => error_vs_depth(&results, &dir)?,
            GRADIENT_PROFILE => gradient_profile(&results, &dir)?,
            GRADIENT_VS_STEP => gradient_vs_step(&results, &dir)?,
            GRADIENT_HEATMAP => gradient_heatmap(&results, &dir)?,
            LAYER_RESPONSE_STD => layer_response_std(&results, &dir)?,
            SATURATION_VS_STEP => saturation_vs_step(&results, &dir)?,
            ACTIVATION_MEAN_VS_STEP => activation_mean_vs_step(&results, &dir)?,
            GATES => gates(&results, &dir)?,
            PHASE_DIAGRAM => phase_diagram(&results, &dir)?,
            _ => continue,
        };
        written.extend([r.png, r.svg]);
    }
    Ok(written)
}

/// [`render_all`] at a given size and text scale (`gradscope plot --width
/// --height --font-scale`).
pub fn render_all_with(results_dir: &Path, style: Style) -> Result<Vec<PathBuf>, PlotError> {
    // Hashed before loading: a file that changes while the charts are
    // drawn then differs from the record, and the next check redraws.
    let inputs = fresh::inputs(results_dir)?;
    let mut results = ResultsDir::load(results_dir)?;
    results.style = style;
    let rendered = render_charts(&results, &results.plots_dir())?;
    fresh::record(&results.plots_dir(), &inputs, &style)?;
    Ok(rendered.into_iter().flat_map(|r| [r.png, r.svg]).collect())
}
