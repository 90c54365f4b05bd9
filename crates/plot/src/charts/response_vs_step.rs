//! Charts (f) and (g), `saturation_vs_step` and `activation_mean_vs_step`: one column of
//! `activations.csv` per layer against step (Glorot and Bengio 2010, Fig. 2). One
//! layout for both, so they differ only in the column and the words.

use std::collections::BTreeMap;
use std::path::Path;

use crate::axis::{Axis, Bounds, Scale};
use crate::error::PlotError;
use crate::figure::{drawable, Figure, LegendEntry, Panel, Rendered, Series};
use crate::read::ResultsDir;

use super::{
    depth_color, labelled, response_run, response_words, run_note, seed_word,
    ACTIVATION_MEAN_VS_STEP, LABEL_STEP, SATURATION_VS_STEP,
};

const LABEL_ACTIVATION_MEAN: &str = "mean of layer response";

const LABEL_DEAD: &str = "fraction of dead units";

const LABEL_SATURATION: &str = "saturated fraction of units";

/// Most layers chart (f) draws per panel: beyond this a legend is unreadable,
/// so it keeps evenly spaced layers, always the first and the last.
const SATURATION_MAX_LINES: usize = 8;

/// The deepest depth at which every variant has a run with activation rows
/// (so the panels of chart (f) compare twins); else the deepest any has.
fn deepest_response_depth(results: &ResultsDir) -> Option<u32> {
    let variants = results.groups();
    let has = |v: &str, d: u32| response_run(results, v, d).is_some();
    let depths = results.depths();
    depths
        .iter()
        .rev()
        .find(|&&d| variants.iter().all(|v| has(v, d)))
        .or_else(|| {
            depths
                .iter()
                .rev()
                .find(|&&d| variants.iter().any(|v| has(v, d)))
        })
        .copied()
}

/// At most `max` of `layers` (sorted), evenly spaced, first and last kept.
pub(crate) fn spaced_layers(layers: &[usize], max: usize) -> Vec<usize> {
    if layers.len() <= max || max < 2 {
        return layers
            .iter()
            .copied()
            .take(max.max(layers.len().min(1)))
            .collect();
    }
    let mut out: Vec<usize> = (0..max)
        .map(|i| layers[i * (layers.len() - 1) / (max - 1)])
        .collect();
    out.dedup();
    out
}

/// Which column of `activations.csv` charts (f) and (g) draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResponseStat {
    /// Chart (f): the saturated fraction.
    Saturation,
    /// Chart (g): the mean.
    Mean,
}

/// Chart (f), after Glorot and Bengio 2010, Fig. 2: one panel per variant at
/// the deepest depth with activation rows (smallest seed); one line per
/// layer response, coloured from input side (navy) to output side (red),
/// saturated fraction against step. Their finding for sigmoid nets with the
/// standard init is that the top hidden layer saturates first and stays
/// saturated for a long time: its line is the last (red) one.
pub(crate) fn saturation_figure(results: &ResultsDir) -> Figure {
    response_figure(results, ResponseStat::Saturation)
}

/// Charts (f) and (g): the same layout, one column of activations.csv. For
/// (g) the sigmoid top layer's mean sinking toward 0 is Glorot and Bengio's
/// Fig. 2 itself; saturation below 0.01 may come later or not at all.
pub(crate) fn response_figure(results: &ResultsDir, stat: ResponseStat) -> Figure {
    let depth = deepest_response_depth(results);
    // For ReLU about half of every response is 0 by construction, so chart
    // (f) draws the dead units instead: zero for every example of the batch.
    let relu = results.activation() == "relu";
    let conv = results.family().is_some_and(|f| f != "mlp");
    let mut thinned = false;
    let (groups, layout) = super::group_grid(results);
    let panels = groups
        .into_iter()
        .map(|variant| {
            let Some(run) = depth.and_then(|d| response_run(results, &variant, d)) else {
                let mut panel = Panel::new(variant.as_str());
                panel.empty_reason = Some("no activations.csv rows".to_owned());
                return panel;
            };
            let mut panel = Panel::new(format!(
                "{variant}, seed {}{}",
                run.summary.seed,
                run_note(&[run])
            ));
            let mut by_layer: BTreeMap<usize, Vec<(f64, f64)>> = BTreeMap::new();
            // Gates have their own chart (`gates`), attention heads their
            // entropy.
            let rows = run.activations.iter().flatten();
            for row in rows.filter(|r| r.is_layer_response()) {
                by_layer.entry(row.layer).or_default().push((
                    row.step as f64,
                    match stat {
                        ResponseStat::Saturation if relu => row.dead,
                        ResponseStat::Saturation => row.saturation,
                        ResponseStat::Mean => row.mean,
                    }
                    .unwrap_or(f64::NAN),
                ));
            }
            let layers: Vec<usize> = by_layer.keys().copied().collect();
            let shown = spaced_layers(&layers, SATURATION_MAX_LINES);
            thinned |= shown.len() < layers.len();
            for &layer in &shown {
                let points = by_layer.remove(&layer).unwrap_or_default();
                if !drawable(&points, Scale::Linear, Scale::Linear) {
                    continue;
                }
                let position = layers.iter().position(|&l| l == layer).unwrap_or(0);
                let color = depth_color(position, layers.len());
                panel.series.push(Series {
                    diverged: run.summary.is_diverged(),
                    points,
                    color,
                    dashed: false,
                    marker: None,
                });
                let role = if Some(&layer) == layers.last() && layers.len() > 1 {
                    " (top)"
                } else {
                    ""
                };
                panel.legend.push(LegendEntry {
                    label: format!("layer {layer}{role}"),
                    color,
                    dashed: false,
                    marker: None,
                });
            }
            panel.empty_reason = Some("no finite values".to_owned());
            panel
        })
        .collect();
    let mut x = Axis::new(LABEL_STEP, Scale::Linear);
    x.integer = true;
    let thinned = if thinned {
        " (evenly spaced subset)"
    } else {
        ""
    };
    let at_depth = depth.map(|d| format!(", depth {d}")).unwrap_or_default();
    let (name, title, y, subtitle) = match stat {
        ResponseStat::Saturation if relu => {
            let mut y = Axis::new(LABEL_DEAD, Scale::Linear);
            y.bounds = Bounds::Fraction;
            (
                SATURATION_VS_STEP,
                format!("Dead units vs step{at_depth}"),
                y,
                format!("ReLU units (features{}) that are 0 for every example of the probed batch; one line per layer{thinned}; seed {}\n{}", if conv { ", or channels of a feature map" } else { "" }, seed_word(results), response_words(results)),
            )
        }
        ResponseStat::Saturation => {
            let mut y = Axis::new(LABEL_SATURATION, Scale::Linear);
            y.bounds = Bounds::Fraction;
            (
                SATURATION_VS_STEP,
                format!("Saturation vs step{at_depth}"),
                y,
                format!("sigmoid < 0.01 or > 0.99, tanh |a| > 0.99; one line per layer{thinned}; seed {}\n{}", seed_word(results), response_words(results)),
            )
        }
        ResponseStat::Mean => {
            let mut y = Axis::new(LABEL_ACTIVATION_MEAN, Scale::Linear);
            y.bounds = Bounds::FromZero;
            (
                ACTIVATION_MEAN_VS_STEP,
                format!("Mean activation vs step{at_depth}"),
                y,
                format!(
                    "one line per layer{thinned}; seed {}\n{}",
                    seed_word(results),
                    response_words(results)
                ),
            )
        }
    };
    Figure {
        name,
        title,
        subtitle: Some(subtitle),
        x,
        y,
        panels,
        layout,
    }
}

/// Writes chart (f), `saturation_vs_step`, into `plots_dir`.
pub fn saturation_vs_step(results: &ResultsDir, plots_dir: &Path) -> Result<Rendered, PlotError> {
    labelled(saturation_figure(results), results).write_with(plots_dir, &results.style)
}

/// Writes chart (g), `activation_mean_vs_step`, into `plots_dir`.
pub fn activation_mean_vs_step(
    results: &ResultsDir,
    plots_dir: &Path,
) -> Result<Rendered, PlotError> {
    labelled(response_figure(results, ResponseStat::Mean), results)
        .write_with(plots_dir, &results.style)
}
