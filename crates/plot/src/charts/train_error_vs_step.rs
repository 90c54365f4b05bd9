//! Chart (a), `train_error_vs_step`: training error against step, one line per depth.

use std::collections::BTreeMap;
use std::path::Path;

use crate::axis::{Axis, Bounds, Scale};
use crate::error::PlotError;
use crate::figure::{drawable, Figure, Layout, LegendEntry, Panel, Rendered, Series};
use crate::read::{ResultsDir, RunData, SPLIT_TRAIN};

use super::{depth_color, labelled, mean, runs_of, status_note, LABEL_STEP, TRAIN_ERROR_VS_STEP};

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

/// Chart (a): one panel per variant, one line per depth (mean over seeds).
pub(crate) fn train_error_figure(results: &ResultsDir) -> Figure {
    let depths = results.depths();
    let mut several_seeds = false;
    let panels = results
        .groups()
        .into_iter()
        .map(|variant| {
            let mut panel = Panel::new(variant.as_str());
            for (i, &depth) in depths.iter().enumerate() {
                let group = runs_of(results, &variant, depth);
                let curve = mean_train_error(&group);
                if !drawable(&curve, Scale::Linear, Scale::Linear) {
                    continue;
                }
                several_seeds |= group.iter().filter(|r| r.metrics.is_some()).count() > 1;
                let color = depth_color(i, depths.len());
                panel.series.push(Series {
                    points: curve,
                    color,
                    dashed: false,
                    marker: None,
                });
                panel.legend.push(LegendEntry {
                    label: format!(
                        "d{depth}{}",
                        status_note(group.iter().map(|r| r.summary.status.as_str()))
                    ),
                    color,
                    dashed: false,
                    marker: None,
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
            "on-the-fly minibatch error, one line per {}{}",
            if super::through_time(results) {
                "sequence length"
            } else {
                "depth"
            },
            if several_seeds {
                ", mean over seeds"
            } else {
                ""
            }
        )),
        x,
        y,
        panels,
        layout: Layout::Row,
    }
}

/// Writes chart (a), `train_error_vs_step`, into `plots_dir`.
pub fn train_error_vs_step(results: &ResultsDir, plots_dir: &Path) -> Result<Rendered, PlotError> {
    labelled(train_error_figure(results), results).write_with(plots_dir, &results.style)
}
