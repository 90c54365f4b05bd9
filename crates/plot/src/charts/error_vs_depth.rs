//! Chart (b), `error_vs_depth`: final train and test error against depth, one line per variant.

use std::path::Path;

use crate::axis::{Axis, Bounds, Scale};
use crate::error::PlotError;
use crate::figure::{ErrorBar, Figure, Layout, LegendEntry, Marker, Panel, Rendered, Series};
use crate::read::{ResultsDir, RunData, SummaryRow};

use super::{categorical, depth_axis, labelled, spread, status_note, ERROR_VS_DEPTH};

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
    for (vi, variant) in results.groups().into_iter().enumerate() {
        let color = categorical(vi);
        let runs: Vec<&RunData> = results
            .runs
            .iter()
            .filter(|r| r.summary.group() == variant)
            .collect();
        let note = status_note(runs.iter().map(|r| r.summary.status.as_str()));
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
                let at_depth = runs.iter().filter(|r| r.summary.depth == depth);
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
            if points.is_empty() {
                continue;
            }
            panel.series.push(Series {
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
        subtitle: Some(if several_seeds {
            "full pass after the last step; mean over seeds, bars span min–max; dashed = test"
                .to_owned()
        } else {
            "full pass after the last step; solid = train, dashed = test".to_owned()
        }),
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
