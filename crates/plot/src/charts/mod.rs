//! The charts of the file contract (the heatmap is in `heatmap.rs`), each built as a [`Figure`] from a
//! loaded [`ResultsDir`] and written as PNG and SVG.
//!
//! One module per chart, each holding its figure builder and the function
//! that writes it, named as the chart: `train_error_vs_step` (a),
//! `error_vs_depth` (b), `gradient_profile` (c), `gradient_vs_step` (d),
//! `layer_response_std` (e) and `response_vs_step` (f and g, one layout).
//! `gradients` holds what the gradient charts and the heatmap read from
//! `gradients.csv`; this file holds the chart names, the colours and the
//! helpers every chart shares (status notes, seed words, the depth axis,
//! [`labelled`]), so that `compare` and the heatmap draw with the same ones.
//!
//! A chart whose data are missing is still written, with a "no data" note
//! in the empty panel, so that `plots/` always holds the same sixteen files
//! and a report that links them never breaks; [`Rendered::has_data`] says
//! which charts are empty.

use std::path::Path;

use plotters::style::RGBColor;

use crate::axis::{Axis, Scale};
use crate::error::PlotError;
use crate::figure::{Figure, Layout, Rendered};
use crate::read::{ResultsDir, RunData, STATUS_COMPLETED, STATUS_DIVERGED};

mod error_vs_depth;
mod forward_signal;
mod gates;
mod gradient_profile;
mod gradient_vs_step;
mod gradients;
mod layer_response_std;
mod response_vs_step;
#[cfg(test)]
mod tests;
mod train_error_vs_step;
mod transformer;

use crate::phase_diagram::{has_phase_diagram, phase_diagram};
pub use error_vs_depth::error_vs_depth;
pub(crate) use error_vs_depth::error_vs_depth_figure;
pub use forward_signal::{forward_signal, FORWARD_SIGNAL};
pub use gates::gates;
pub use gradient_profile::gradient_profile;
pub(crate) use gradient_profile::gradient_profile_figure;
pub use gradient_vs_step::gradient_vs_step;
pub(crate) use gradients::{deepest_probed_depth, probed_run};
pub use layer_response_std::{layer_response_std, layer_response_stds, ResponseStds};
pub use response_vs_step::{activation_mean_vs_step, saturation_vs_step};
pub(crate) use response_vs_step::{response_figure, ResponseStat};
pub(crate) use train_error_vs_step::train_error_figure;
pub use train_error_vs_step::train_error_vs_step;
pub use transformer::{
    transformer_charts, FFN_GRADIENT_PROFILE, RANK_COLLAPSE, TOP_FFN_GRADIENT_VS_DEPTH,
};

/// Chart (a): training error against step.
pub const TRAIN_ERROR_VS_STEP: &str = "train_error_vs_step";

/// Chart (b): final error against depth.
pub const ERROR_VS_DEPTH: &str = "error_vs_depth";

/// Chart (c): ‖dL/dh‖ per layer.
pub const GRADIENT_PROFILE: &str = "gradient_profile";

/// Chart (d): ‖dL/dh‖ against step for three layers.
pub const GRADIENT_VS_STEP: &str = "gradient_vs_step";

/// Chart (e): standard deviation of each layer response, in forward order
/// and sorted (He et al. 2016, Fig. 7).
pub const LAYER_RESPONSE_STD: &str = "layer_response_std";

/// Chart (f): fraction of saturated units per layer against step (Glorot and
/// Bengio 2010, Fig. 2).
pub const SATURATION_VS_STEP: &str = "saturation_vs_step";

/// Chart (g): mean of each layer response against step (Glorot and Bengio
/// 2010, Fig. 2, which plots mean and spread of the sigmoid outputs).
pub const ACTIVATION_MEAN_VS_STEP: &str = "activation_mean_vs_step";

/// A recurrent net's gates against the time step (the LSTM's forget,
/// input and output gates, the GRU's update and reset gates).
pub const GATES: &str = "gates";

/// The charts drawn only for recurrent nets, after [`CHART_NAMES`].
pub const RECURRENT_CHARTS: [&str; 1] = [GATES];

/// The charts drawn only for the mlp family, after [`CHART_NAMES`]: the
/// forward signal q and c per layer against mean-field theory.
pub const MLP_CHARTS: [&str; 1] = [FORWARD_SIGNAL];

/// The charts drawn only for Transformers, after [`CHART_NAMES`].
pub const TRANSFORMER_CHARTS: [&str; 3] = [
    FFN_GRADIENT_PROFILE,
    TOP_FFN_GRADIENT_VS_DEPTH,
    RANK_COLLAPSE,
];

/// The chart names, in the order [`render_charts`] writes them.
pub const CHART_NAMES: [&str; 8] = [
    TRAIN_ERROR_VS_STEP,
    ERROR_VS_DEPTH,
    GRADIENT_PROFILE,
    GRADIENT_VS_STEP,
    crate::heatmap::GRADIENT_HEATMAP,
    LAYER_RESPONSE_STD,
    SATURATION_VS_STEP,
    ACTIVATION_MEAN_VS_STEP,
];

const LABEL_STEP: &str = "training step";

const LABEL_BLOCK: &str = "block output (0 = input side)";

const LABEL_DEPTH: &str = "depth (weight layers)";
/// The depth axis of a recurrent net: its sequence length.
const LABEL_LENGTH: &str = "sequence length (time steps)";

/// Whether `results` are a recurrent net's (`model.family` rnn), whose
/// depth is the sequence length and whose layers are its time steps: the
/// charts say so.
pub(crate) fn through_time(results: &ResultsDir) -> bool {
    results.family().as_deref() == Some("rnn")
}

/// Categorical colours (Tableau 10) for variants and for the three layers of
/// chart (d): distinct hues for things that have no order.
const CATEGORICAL: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

pub(crate) fn categorical(i: usize) -> RGBColor {
    CATEGORICAL[i % CATEGORICAL.len()]
}

/// Colour of the `i`-th of `n` depths: an ordered ramp from navy through
/// teal and green to amber and red, so that deeper reads as "further along"
/// and the same depth has the same colour in every panel. Hand-picked rather
/// than viridis, whose neighbouring greens are hard to tell apart and whose
/// yellow end vanishes on white.
pub(crate) fn depth_color(i: usize, n: usize) -> RGBColor {
    const STOPS: [(f64, f64, f64); 6] = [
        (35.0, 45.0, 120.0),
        (40.0, 110.0, 190.0),
        (25.0, 160.0, 150.0),
        (105.0, 175.0, 50.0),
        (230.0, 155.0, 20.0),
        (205.0, 55.0, 30.0),
    ];
    let t = if n <= 1 {
        0.0
    } else {
        i.min(n - 1) as f64 / (n - 1) as f64
    };
    let pos = t * (STOPS.len() - 1) as f64;
    let k = (pos.floor() as usize).min(STOPS.len() - 2);
    let f = pos - k as f64;
    let (a, b) = (STOPS[k], STOPS[k + 1]);
    let mix = |u: f64, v: f64| (u + (v - u) * f).round().clamp(0.0, 255.0) as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Legend suffix for a group of runs: empty when all completed, otherwise
/// e.g. " (diverged)" when every run diverged or " (1/2 diverged)".
pub(crate) fn status_note<'a>(statuses: impl IntoIterator<Item = &'a str>) -> String {
    let statuses: Vec<&str> = statuses.into_iter().collect();
    let total = statuses.len();
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for s in statuses {
        if s == STATUS_COMPLETED || s.is_empty() {
            continue;
        }
        match counts.iter_mut().find(|(name, _)| *name == s) {
            Some((_, c)) => *c += 1,
            None => counts.push((s, 1)),
        }
    }
    if counts.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = counts
        .iter()
        .map(|&(s, c)| {
            if c == total {
                s.to_owned()
            } else {
                format!("{c}/{total} {s}")
            }
        })
        .collect();
    format!(" ({})", parts.join(", "))
}

/// The groups in the order their panels are drawn, and the layout that
/// puts them in a grid: one row per folder or swept value (the group
/// without its variant), one column per variant, so that a folder's
/// plain/residual pair stays on one row. Groups that do not fill such a
/// grid (a variant missing from some row, more than three variants) keep
/// the order of `summary.csv` and wrap as a row does.
pub(crate) fn group_grid(results: &ResultsDir) -> (Vec<String>, Layout) {
    let mut rows: Vec<String> = Vec::new();
    let mut cols: Vec<String> = Vec::new();
    let mut cells: Vec<(usize, usize, String)> = Vec::new();
    for run in &results.runs {
        let group = run.summary.group();
        if cells.iter().any(|c| c.2 == group) {
            continue;
        }
        let mut rest = run.summary.clone();
        rest.variant.clear();
        let row = rest.group();
        let col = run.summary.variant.clone();
        let index = |list: &mut Vec<String>, key: String| {
            list.iter().position(|k| *k == key).unwrap_or_else(|| {
                list.push(key);
                list.len() - 1
            })
        };
        let (r, c) = (index(&mut rows, row), index(&mut cols, col));
        cells.push((r, c, group));
    }
    let full = cells.len() == rows.len() * cols.len();
    if rows.len() < 2 || cols.len() > crate::figure::MAX_COLUMNS || !full {
        return (results.groups(), Layout::Row);
    }
    cells.sort_by_key(|c| (c.0, c.1));
    (
        cells.into_iter().map(|c| c.2).collect(),
        Layout::Grid { cols: cols.len() },
    )
}

/// [`status_note`] for runs, with the step where they diverged, as
/// `run.json` records it: " (diverged at step 40)", " (1/2 diverged at
/// step 40)", " (diverged at steps 3–7)"; just "diverged" where no record
/// says.
pub(crate) fn run_note(runs: &[&RunData]) -> String {
    let note = status_note(runs.iter().map(|r| r.summary.status.as_str()));
    match diverged_steps(runs) {
        Some(steps) => note.replacen(STATUS_DIVERGED, &format!("{STATUS_DIVERGED} at {steps}"), 1),
        None => note,
    }
}

/// "step 40" or "steps 3–7": where the diverged ones of `runs` diverged;
/// `None` when none diverged or none says where.
pub(crate) fn diverged_steps(runs: &[&RunData]) -> Option<String> {
    let steps: Vec<u64> = runs
        .iter()
        .filter(|r| r.summary.is_diverged())
        .filter_map(|r| r.diverged_at_step)
        .collect();
    let (lo, hi) = (steps.iter().min()?, steps.iter().max()?);
    Some(if lo == hi {
        format!("step {lo}")
    } else {
        format!("steps {lo}–{hi}")
    })
}

fn runs_of<'a>(results: &'a ResultsDir, variant: &str, depth: u32) -> Vec<&'a RunData> {
    results
        .runs
        .iter()
        .filter(|r| r.summary.group() == variant && r.summary.depth == depth)
        .collect()
}

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        f64::NAN
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

/// Mean, min and max over the finite values; `None` when there are none.
pub(crate) fn spread(
    values: impl IntoIterator<Item = Option<f64>>,
) -> Option<(f64, f64, f64, usize)> {
    let v: Vec<f64> = values
        .into_iter()
        .flatten()
        .filter(|x| x.is_finite())
        .collect();
    if v.is_empty() {
        return None;
    }
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some((mean(&v), min, max, v.len()))
}

/// The x axis of a chart over depth, ticked at the depths that were run.
pub(crate) fn depth_axis(depths: &[u32], through_time: bool) -> Axis {
    let label = if through_time {
        LABEL_LENGTH
    } else {
        LABEL_DEPTH
    };
    // Depths usually double (4, 8, 16, …): a log axis spaces them evenly.
    // Depths close together (CIFAR's 20, 32, 44, 56) read better linearly.
    let spread_out = match (depths.first(), depths.last()) {
        (Some(&lo), Some(&hi)) => lo > 0 && f64::from(hi) / f64::from(lo) >= 4.0,
        _ => false,
    };
    let mut x = if spread_out {
        Axis::new(format!("{label}, log scale"), Scale::Log)
    } else {
        Axis::new(label, Scale::Linear)
    };
    x.ticks = Some(depths.iter().map(|&d| f64::from(d)).collect());
    x
}

/// "0" (or "0–2" style where groups differ): the seed the one-seed charts
/// draw, the smallest of each group, said as a number rather than as "the
/// smallest seed".
pub(crate) fn seed_word(results: &ResultsDir) -> String {
    let seeds: std::collections::BTreeSet<u64> =
        results.runs.iter().map(|r| r.summary.seed).collect();
    match seeds.first() {
        Some(s) => s.to_string(),
        None => "0".to_owned(),
    }
}

/// The run of a (variant, depth) group with the smallest seed among those
/// that have activation rows.
fn response_run<'a>(results: &'a ResultsDir, variant: &str, depth: u32) -> Option<&'a RunData> {
    runs_of(results, variant, depth)
        .into_iter()
        .filter(|r| r.activations.as_ref().is_some_and(|a| !a.is_empty()))
        .min_by_key(|r| r.summary.seed)
}

/// What a layer response is, for the subtitles of the response charts: the
/// residual MLP's units read the residual stream, which grows with depth,
/// so their saturation is not a block's (issue 19 §4).
fn response_words(results: &ResultsDir) -> &'static str {
    let conv = results.family().is_some_and(|f| f != "mlp");
    let residual = results.runs.iter().any(|r| r.summary.variant == "residual");
    match (conv, residual) {
        (true, _) => "response = BN output of each 3×3 conv, before the shortcut's addition and the ReLU",
        (false, true) => "response = act(norm(h)), what the next layer reads; in the residual net h is the residual stream (the running sum of every block's output)",
        (false, false) => "response = act(norm(h)), each hidden layer's output after the nonlinearity",
    }
}

/// Puts the experiment's name into the title and the settings that matter
/// (family, activation, init, norm) as the subtitle's first line, so that a
/// chart on a slide says what it is about. Nothing is added when no
/// `run.json` can be read.
pub(crate) fn labelled(mut fig: Figure, results: &ResultsDir) -> Figure {
    if let Some(name) = results.config_str("/experiment") {
        fig.title = format!("{} — {name}", fig.title);
    }
    let settings = results.settings();
    if !settings.is_empty() {
        fig.subtitle = Some(match fig.subtitle {
            Some(s) => format!("{settings}\n{s}"),
            None => settings,
        });
    }
    fig
}

/// Writes all eight charts into `plots_dir`, in [`CHART_NAMES`] order, and
/// for a recurrent net [`RECURRENT_CHARTS`] (a Transformer
/// [`TRANSFORMER_CHARTS`]) after them, and `phase_diagram` last where
/// the experiment sweeps a variance init over σ_w² and depth
/// ([`crate::phase_diagram`]).
pub fn render_charts(results: &ResultsDir, plots_dir: &Path) -> Result<Vec<Rendered>, PlotError> {
    let mut out = vec![
        train_error_vs_step(results, plots_dir)?,
        error_vs_depth(results, plots_dir)?,
        gradient_profile(results, plots_dir)?,
        gradient_vs_step(results, plots_dir)?,
        crate::heatmap::gradient_heatmap(results, plots_dir)?,
        layer_response_std(results, plots_dir)?,
        saturation_vs_step(results, plots_dir)?,
        activation_mean_vs_step(results, plots_dir)?,
    ];
    if through_time(results) {
        out.push(gates(results, plots_dir)?);
    }
    if transformer::is_transformer(results) {
        out.extend(transformer_charts(results, plots_dir)?);
    }
    // A swept variance init: the phase diagram of trainable depth.
    if has_phase_diagram(results) {
        out.push(phase_diagram(results, plots_dir)?);
    }
    if results.family().as_deref() == Some("mlp") {
        out.push(forward_signal(results, plots_dir)?);
    }
    Ok(out)
}
