//! Chart (a), `train_error_vs_step`: training error against step, one line per depth.

use std::collections::BTreeMap;
use std::path::Path;

use crate::axis::{Axis, Bounds, Scale};
use crate::error::PlotError;
use crate::figure::{drawable, Cross, Figure, LegendEntry, Marker, Panel, Rendered, Series};
use crate::read::{ResultsDir, RunData, SPLIT_TRAIN};

use super::{depth_color, labelled, mean, run_note, runs_of, LABEL_STEP, TRAIN_ERROR_VS_STEP};

/// The identity task's error: ‖f(x) − x‖² / ‖x‖² (1 = outputting zeros).
const LABEL_TRAIN_RECON: &str = "relative reconstruction error ‖f(x) − x‖²/‖x‖²";

const LABEL_TRAIN_ERROR: &str = "training error (fraction)";

/// Training-error curve averaged over runs at equal steps. Non-finite values
/// (a diverged seed) are left out of the mean; a step where no run has a
/// finite value stays in as NaN so that the line breaks there.
pub(crate) fn mean_train_error(runs: &[&RunData]) -> Vec<(f64, f64)> {
    let mut by_step: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for run in runs {
        for row in run.metrics.iter().flatten() {
            if row.split != SPLIT_TRAIN {
                continue;
            }
            let values = by_step.entry(row.step).or_default();
            if let Some(e) = row.error.filter(|e| e.is_finite()) {
                values.push(e);
            }
        }
    }
    by_step
        .into_iter()
        .map(|(step, values)| (step as f64, mean(&values)))
        .collect()
}

/// The ✕ of a diverged run: at the step `run.json` names (else its first
/// train row without a finite error, else its last row), at its last
/// finite training error up to that step, or on the top edge where it has
/// none. `None` for a run that did not diverge.
fn diverged_cross(run: &RunData, color: plotters::style::RGBColor) -> Option<Cross> {
    if !run.summary.is_diverged() {
        return None;
    }
    let rows: Vec<(u64, Option<f64>)> = run
        .metrics
        .iter()
        .flatten()
        .filter(|r| r.split == SPLIT_TRAIN)
        .map(|r| (r.step, r.error.filter(|e| e.is_finite())))
        .collect();
    let step = run
        .diverged_at_step
        .or_else(|| rows.iter().find(|r| r.1.is_none()).map(|r| r.0))
        .or_else(|| rows.last().map(|r| r.0))
        .unwrap_or(0);
    let y = rows
        .iter()
        .filter(|r| r.0 <= step)
        .filter_map(|r| r.1)
        .next_back();
    Some(Cross {
        x: step as f64,
        y,
        color,
    })
}

/// Chart (a): one panel per variant, one line per depth (mean over seeds).
pub(crate) fn train_error_figure(results: &ResultsDir) -> Figure {
    let depths = results.depths();
    let mut several_seeds = false;
    let mut any_diverged = false;
    let (groups, layout) = super::group_grid(results);
    let panels = groups
        .into_iter()
        .map(|variant| {
            let mut panel = Panel::new(variant.as_str());
            for (i, &depth) in depths.iter().enumerate() {
                let group = runs_of(results, &variant, depth);
                let curve = mean_train_error(&group);
                let color = depth_color(i, depths.len());
                let crosses: Vec<Cross> = group
                    .iter()
                    .filter_map(|r| diverged_cross(r, color))
                    .collect();
                let line = drawable(&curve, Scale::Linear, Scale::Linear);
                // A run that diverged before its first finite error still
                // has its ✕ and its legend entry.
                if !line && crosses.is_empty() {
                    continue;
                }
                any_diverged |= !crosses.is_empty();
                several_seeds |= group.iter().filter(|r| r.metrics.is_some()).count() > 1;
                if line {
                    panel.series.push(Series {
                        diverged: group.iter().all(|r| r.summary.is_diverged()),
                        points: curve,
                        color,
                        dashed: false,
                        marker: None,
                    });
                }
                panel.crosses.extend(crosses);
                panel.legend.push(LegendEntry {
                    label: format!("d{depth}{}", run_note(&group)),
                    color,
                    dashed: false,
                    marker: (!line).then_some(Marker::Cross),
                });
            }
            panel.empty_reason = Some("no metrics.csv with train rows".to_owned());
            panel
        })
        .collect();
    let identity = results.task() == "identity";
    let mut y = Axis::new(
        if identity {
            LABEL_TRAIN_RECON
        } else {
            LABEL_TRAIN_ERROR
        },
        Scale::Linear,
    );
    y.bounds = Bounds::Fraction;
    let mut x = Axis::new(LABEL_STEP, Scale::Linear);
    x.integer = true;
    Figure {
        name: TRAIN_ERROR_VS_STEP,
        title: if identity {
            "Reconstruction error vs step (identity task)".to_owned()
        } else {
            "Training error vs step".to_owned()
        },
        subtitle: Some(format!(
            "on-the-fly minibatch error, one line per {}{}{}",
            if super::through_time(results) {
                "sequence length"
            } else {
                "depth"
            },
            if several_seeds {
                ", mean over seeds"
            } else {
                ""
            },
            if any_diverged {
                "; ✕ = where a run diverged"
            } else {
                ""
            }
        )),
        x,
        y,
        panels,
        layout,
    }
}

/// Writes chart (a), `train_error_vs_step`, into `plots_dir`.
pub fn train_error_vs_step(results: &ResultsDir, plots_dir: &Path) -> Result<Rendered, PlotError> {
    labelled(train_error_figure(results), results).write_with(plots_dir, &results.style)
}
