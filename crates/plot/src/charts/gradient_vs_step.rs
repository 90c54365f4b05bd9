//! Chart (d), `gradient_vs_step`: rms of dL/dh against step at the first, middle and last
//! layer of the deepest probed net.

use std::path::Path;

use crate::axis::{Axis, Scale};
use crate::error::PlotError;
use crate::figure::{Figure, LegendEntry, Marker, Panel, Rendered, Series};
use crate::read::ResultsDir;

use super::gradients::{
    deepest_probed_depth, gradient_axis, gradient_series_kind, output_grads, probed_run,
    profile_label, ALL_ZERO,
};
use super::{categorical, labelled, run_note, seed_word, GRADIENT_VS_STEP, LABEL_BLOCK};

const LABEL_STEP_LOG: &str = "training step + 1 (log scale)";

/// First, middle and last probe layer (input side first), deduplicated for
/// very shallow nets.
pub(crate) fn three_layers(layers: &[usize]) -> Vec<(usize, &'static str)> {
    let (Some(&first), Some(&last)) = (layers.first(), layers.last()) else {
        return Vec::new();
    };
    let middle = layers[layers.len() / 2];
    let mut out = vec![(first, "first")];
    if middle != first && middle != last {
        out.push((middle, "middle"));
    }
    if last != first {
        out.push((last, "last"));
    }
    out
}

/// Chart (d): one panel per variant; ‖dL/dh‖ against step at the first,
/// middle and last layer of the deepest net.
pub(crate) fn gradient_vs_step_figure(results: &ResultsDir) -> Figure {
    let depth = deepest_probed_depth(results);
    let (groups, layout) = super::group_grid(results);
    let panels = groups
        .into_iter()
        .map(|variant| {
            let run = depth.and_then(|d| probed_run(results, &variant, d));
            let Some(run) = run else {
                let mut panel = Panel::new(variant.as_str());
                panel.empty_reason = Some(match depth {
                    Some(d) => format!("no dL/dh rows for depth {d}"),
                    None => "no gradients.csv with kind=output rows".to_owned(),
                });
                return panel;
            };
            let mut panel = Panel::new(format!(
                "{variant}, seed {}{}",
                run.summary.seed,
                run_note(&[run])
            ));
            let grads = output_grads(run);
            let mut layers: Vec<usize> = grads.values().flat_map(|m| m.keys().copied()).collect();
            layers.sort_unstable();
            layers.dedup();
            for (i, (layer, role)) in three_layers(&layers).into_iter().enumerate() {
                let points: Vec<(f64, f64)> = grads
                    .iter()
                    // Step + 1 on a log axis: the first steps, where a
                    // net's gradient collapses, get as much room as the rest.
                    .filter_map(|(&step, m)| m.get(&layer).map(|&v| (step as f64 + 1.0, v)))
                    .collect();
                let Some(zero_only) = gradient_series_kind(&points) else {
                    continue;
                };
                let color = categorical(i);
                panel.series.push(Series {
                    diverged: run.summary.is_diverged(),
                    points,
                    color,
                    dashed: false,
                    marker: None,
                });
                panel.legend.push(LegendEntry {
                    label: format!(
                        "layer {layer} ({role}){}",
                        if zero_only { ALL_ZERO } else { "" }
                    ),
                    color,
                    dashed: false,
                    marker: zero_only.then_some(Marker::Zero),
                });
            }
            panel.empty_reason = Some("no finite dL/dh values of 0 or more".to_owned());
            panel
        })
        .collect();
    let x = Axis::new(LABEL_STEP_LOG, Scale::Log);
    Figure {
        name: GRADIENT_VS_STEP,
        title: match depth {
            Some(d) => format!("rms of dL/dh vs step, depth {d}"),
            None => "rms of dL/dh vs step".to_owned(),
        },
        subtitle: Some(format!(
            "first, middle and last {} (0 = input side); seed {}",
            match profile_label(results) {
                LABEL_BLOCK => "block output",
                super::gradients::LABEL_TIME => "time step",
                _ => "layer",
            },
            seed_word(results)
        )),
        x,
        y: gradient_axis(),
        panels,
        layout,
    }
}

/// Writes chart (d), `gradient_vs_step`, into `plots_dir`.
pub fn gradient_vs_step(results: &ResultsDir, plots_dir: &Path) -> Result<Rendered, PlotError> {
    labelled(gradient_vs_step_figure(results), results).write_with(plots_dir, &results.style)
}
