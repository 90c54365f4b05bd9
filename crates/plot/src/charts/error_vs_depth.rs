//! Chart (b), `error_vs_depth`: final train and test error against depth, one line per variant.

use std::path::Path;

use crate::axis::{Axis, Bounds, Scale};
use crate::error::PlotError;
use crate::figure::{
    Cross, ErrorBar, Figure, Layout, LegendEntry, Marker, Panel, Rendered, Series,
};
use crate::read::{ResultsDir, RunData, SummaryRow};

use super::{categorical, depth_axis, labelled, run_note, spread, ERROR_VS_DEPTH};

const LABEL_FINAL_RECON: &str = "final relative reconstruction error";

const LABEL_FINAL_ERROR: &str = "final error (fraction)";

/// How chart (b) draws one split: train solid with dots, test dashed with
/// triangles, their min–max bars nudged apart so both stay visible.
struct SplitStyle {
    name: &'static str,
    dashed: bool,
    marker: Marker,
    shift: f64,
    value: fn(&SummaryRow) -> Option<f64>,
}

const SPLITS: [SplitStyle; 2] = [
    SplitStyle {
        name: "train",
        dashed: false,
        marker: Marker::Circle,
        shift: -0.004,
        value: |r| r.final_train_error,
    },
    SplitStyle {
        name: "test",
        dashed: true,
        marker: Marker::Triangle,
        shift: 0.004,
        value: |r| r.final_test_error,
    },
];

/// Chart (b): one panel; per variant a solid train line and a dashed test
/// line over depth, mean over seeds with min–max bars.
pub(crate) fn error_vs_depth_figure(results: &ResultsDir) -> Figure {
    let depths = results.depths();
    let mut panel = Panel::new("");
    let mut several_seeds = false;
    let mut any_diverged = false;
    for (vi, variant) in results.groups().into_iter().enumerate() {
        let color = categorical(vi);
        let runs: Vec<&RunData> = results
            .runs
            .iter()
            .filter(|r| r.summary.group() == variant)
            .collect();
        let note = run_note(&runs);
        // Depths at which every run diverged: no trained error to draw, so
        // the lines break there and a ✕ on the top edge says why.
        let diverged: Vec<u32> = depths
            .iter()
            .copied()
            .filter(|&d| {
                let at: Vec<&&RunData> = runs.iter().filter(|r| r.summary.depth == d).collect();
                !at.is_empty() && at.iter().all(|r| r.summary.is_diverged())
            })
            .collect();
        for split in SPLITS {
            let SplitStyle {
                name: split,
                dashed,
                marker,
                shift,
                value,
            } = split;
            let mut points = Vec::new();
            for &depth in &depths {
                if diverged.contains(&depth) {
                    points.push((f64::from(depth), f64::NAN));
                    continue;
                }
                // A diverged seed's "final" error is not a trained net's:
                // the mean is over the others, and the legend counts it.
                let at_depth = runs
                    .iter()
                    .filter(|r| r.summary.depth == depth && !r.summary.is_diverged());
                if let Some((m, lo, hi, n)) = spread(at_depth.map(|r| value(&r.summary))) {
                    points.push((f64::from(depth), m));
                    if n > 1 {
                        several_seeds = true;
                        panel.error_bars.push(ErrorBar {
                            x: f64::from(depth),
                            lo,
                            hi,
                            color,
                            shift,
                        });
                    }
                }
            }
            if !points.iter().any(|p| p.1.is_finite()) {
                continue;
            }
            panel.series.push(Series {
                diverged: false,
                points,
                color,
                dashed,
                marker: Some(marker),
            });
            // The status note goes on the train entry only, once per variant.
            let label = if dashed {
                format!("{variant} {split}")
            } else {
                format!("{variant} {split}{note}")
            };
            panel.legend.push(LegendEntry {
                label,
                color,
                dashed,
                marker: Some(marker),
            });
        }
        for &depth in &diverged {
            let at: Vec<&RunData> = runs
                .iter()
                .copied()
                .filter(|r| r.summary.depth == depth)
                .collect();
            any_diverged = true;
            panel.crosses.push(Cross {
                x: f64::from(depth),
                y: None,
                color,
            });
            panel.legend.push(LegendEntry {
                label: format!("{variant} d{depth}{}", run_note(&at)),
                color,
                dashed: false,
                marker: Some(Marker::Cross),
            });
        }
    }
    panel.empty_reason = Some("summary.csv has no final errors".to_owned());

    let x = depth_axis(&depths, super::through_time(results));
    let identity = results.task() == "identity";
    let mut y = Axis::new(
        if identity {
            LABEL_FINAL_RECON
        } else {
            LABEL_FINAL_ERROR
        },
        Scale::Linear,
    );
    y.bounds = Bounds::Fraction;
    Figure {
        name: ERROR_VS_DEPTH,
        title: if identity {
            "Final reconstruction error vs depth (identity task)".to_owned()
        } else if super::through_time(results) {
            "Final error vs sequence length".to_owned()
        } else {
            "Final error vs depth".to_owned()
        },
        subtitle: Some(format!(
            "{}{}",
            if several_seeds {
                "full pass after the last step; mean over seeds that did not diverge, bars span min–max; dashed = test"
            } else {
                "full pass after the last step; solid = train, dashed = test"
            },
            if any_diverged {
                "; ✕ = every run at that depth diverged"
            } else {
                ""
            }
        )),
        x,
        y,
        panels: vec![panel],
        layout: Layout::Row,
    }
}

/// Writes chart (b), `error_vs_depth`, into `plots_dir`.
pub fn error_vs_depth(results: &ResultsDir, plots_dir: &Path) -> Result<Rendered, PlotError> {
    labelled(error_vs_depth_figure(results), results).write_with(plots_dir, &results.style)
}
