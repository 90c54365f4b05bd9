//! Chart (e), `layer_response_std`: the std of every layer response, in forward order and
//! sorted (He et al. 2016, Fig. 7).

use std::collections::BTreeMap;
use std::path::Path;

use crate::axis::{Axis, Bounds, Scale};
use crate::error::PlotError;
use crate::figure::{Figure, Layout, LegendEntry, Marker, Panel, Rendered, Series};
use crate::read::{ResultsDir, RunData};

use super::{
    depth_color, labelled, response_run, response_words, run_note, seed_word, LAYER_RESPONSE_STD,
};

const LABEL_RESPONSE_STD: &str = "std of layer response";

const LABEL_RESPONSE_SORTED: &str = "layer index (sorted by magnitude)";

const LABEL_RESPONSE_FORWARD: &str = "layer index (responses in forward order)";

/// The layer responses of one run at the last step its `activations.csv`
/// holds: the data of chart (e), `layer_response_std`.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseStds {
    /// The step the rows come from (the run's last probed step).
    pub step: u64,
    /// `(layer, std)` per response at that step, in `layer` order; response
    /// `i` (0-based) is drawn at x = `i`. `layer` is the probe-point
    /// index, which skips the points that have no response (a CNN's block
    /// outputs). A std that is missing, NaN, ±Inf or negative is NaN here,
    /// a gap in the line.
    pub forward: Vec<(usize, f64)>,
    /// The finite stds of `forward`, largest first; drawn at x = 0, 1, ….
    pub sorted: Vec<f64>,
}

/// The responses of `run` at its last probed step, or `None` when it has no
/// `activations.csv` rows. A `layer` listed twice at that step keeps its
/// last row.
pub fn layer_response_stds(run: &RunData) -> Option<ResponseStds> {
    let rows = run.activations.as_deref()?;
    let step = rows.iter().map(|r| r.step).max()?;
    let mut by_layer: BTreeMap<usize, f64> = BTreeMap::new();
    // A recurrent net's gates (the `gates` chart) and a Transformer's
    // attention heads are readings of their own, not layer responses.
    let responses = rows.iter().filter(|r| r.is_layer_response());
    for row in responses.filter(|r| r.step == step) {
        let std = row
            .std
            .filter(|v| v.is_finite() && *v >= 0.0)
            .unwrap_or(f64::NAN);
        by_layer.insert(row.layer, std);
    }
    let forward: Vec<(usize, f64)> = by_layer.into_iter().collect();
    let mut sorted: Vec<f64> = forward
        .iter()
        .map(|&(_, v)| v)
        .filter(|v| v.is_finite())
        .collect();
    sorted.sort_by(|a, b| b.total_cmp(a));
    Some(ResponseStds {
        step,
        forward,
        sorted,
    })
}

/// A linear std axis until the drawn stds span more than this ratio (two
/// decades), then a log one.
const RESPONSE_LOG_SPAN: f64 = 100.0;

/// Chart (e), after He et al. 2016, Fig. 7: two stacked panels, the std of
/// every layer response in forward order (top) and sorted in descending
/// order (bottom), at each run's last probed step. One line per (variant,
/// depth), smallest seed; colour by depth as in the other charts, `plain`
/// dashed and every other variant solid, as the paper draws plain and
/// ResNet. The std axis is linear from 0, as in the paper, unless the
/// positive stds span more than two decades (a collapsed or exploding net):
/// then it is a log axis, which drops stds of exactly 0, and says so in its
/// label.
pub(crate) fn layer_response_std_figure(results: &ResultsDir) -> Figure {
    let depths = results.depths();
    let mut top = Panel::new("layers in their original order");
    let mut bottom = Panel::new("responses ranked in descending order");
    top.x_label = Some(LABEL_RESPONSE_FORWARD.to_owned());
    bottom.x_label = Some(LABEL_RESPONSE_SORTED.to_owned());
    let mut steps: Vec<u64> = Vec::new();
    for variant in results.groups() {
        let dashed = variant == "plain" || variant.starts_with("plain, ");
        for (i, &depth) in depths.iter().enumerate() {
            let Some(run) = response_run(results, &variant, depth) else {
                continue;
            };
            let Some(stds) = layer_response_stds(run) else {
                continue;
            };
            let color = depth_color(i, depths.len());
            let mut label = format!("{variant} d{depth}{}", run_note(&[run]));
            let nothing = stds.sorted.is_empty();
            if nothing {
                label.push_str(&format!(" — no finite std at step {}", stds.step));
            } else {
                steps.push(stds.step);
                top.series.push(Series {
                    diverged: run.summary.is_diverged(),
                    // Counted from 0 on the input side, as every chart.
                    points: (0u32..)
                        .zip(&stds.forward)
                        .map(|(x, &(_, v))| (f64::from(x), v))
                        .collect(),
                    color,
                    dashed,
                    marker: None,
                });
                bottom.series.push(Series {
                    diverged: run.summary.is_diverged(),
                    points: (0u32..)
                        .zip(&stds.sorted)
                        .map(|(x, &v)| (f64::from(x), v))
                        .collect(),
                    color,
                    dashed,
                    marker: None,
                });
            }
            for panel in [&mut top, &mut bottom] {
                panel.legend.push(LegendEntry {
                    label: label.clone(),
                    color,
                    dashed,
                    marker: nothing.then_some(Marker::Absent),
                });
            }
        }
    }
    for panel in [&mut top, &mut bottom] {
        panel.empty_reason = Some("no activations.csv with a finite std".to_owned());
    }

    let positive: Vec<f64> = top
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|&(_, v)| v))
        .filter(|&v| v.is_finite() && v > 0.0)
        .collect();
    let min = positive.iter().copied().fold(f64::INFINITY, f64::min);
    let max = positive.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let y = if max / min > RESPONSE_LOG_SPAN {
        Axis::new(format!("{LABEL_RESPONSE_STD}, log scale"), Scale::Log)
    } else {
        let mut y = Axis::new(LABEL_RESPONSE_STD, Scale::Linear);
        y.bounds = Bounds::FromZero;
        y
    };
    let mut x = Axis::new(LABEL_RESPONSE_FORWARD, Scale::Linear);
    x.integer = true;
    let step = match steps.first() {
        Some(s) if steps.iter().all(|t| t == s) => format!("step {s}, the last probed step"),
        _ => "last probed step of each run".to_owned(),
    };
    Figure {
        name: LAYER_RESPONSE_STD,
        title: "Standard deviations of layer responses".to_owned(),
        subtitle: Some(format!(
            "{step}; seed {}; dashed = plain, solid = residual\n{}",
            seed_word(results),
            response_words(results)
        )),
        x,
        y,
        panels: vec![top, bottom],
        layout: Layout::Column,
    }
}

/// Writes chart (e), `layer_response_std`, into `plots_dir`.
pub fn layer_response_std(results: &ResultsDir, plots_dir: &Path) -> Result<Rendered, PlotError> {
    labelled(layer_response_std_figure(results), results).write_with(plots_dir, &results.style)
}
