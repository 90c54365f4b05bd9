//! Chart (c), `gradient_profile`: rms of dL/dh per layer at the first and last probed step,
//! with the mean-field prediction beside it.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::style::RGBColor;

use crate::axis::{Axis, Scale};
use crate::error::PlotError;
use crate::figure::{Figure, LegendEntry, Marker, Panel, Rendered, Series};
use crate::read::{ResultsDir, RunData};

use super::gradients::{
    gradient_axis, gradient_series_kind, output_grads, probed_run, profile_label, trunk_kind,
    ALL_ZERO,
};
use super::{depth_color, labelled, run_note, seed_word, GRADIENT_PROFILE, LABEL_BLOCK};

/// The legend's key to solid and dashed lines: grey, the colour of no line.
const STYLE_KEY: RGBColor = RGBColor(90, 90, 90);

/// The theory line of the gradient profile: black, dashed, apart from the
/// depth colours of the measured lines.
const THEORY_COLOR: RGBColor = RGBColor(0, 0, 0);

/// The positions (as [`output_grads`] numbers them) of the run's trunk
/// points; `None` for files without the `trunk` column.
fn trunk_positions(run: &RunData) -> Option<Vec<usize>> {
    let kind = trunk_kind(run)?;
    let mut layers: Vec<(usize, bool)> = run
        .gradients
        .iter()
        .flatten()
        .filter(|r| r.is_output() && r.name.rsplit('.').next() == Some(kind))
        .map(|r| (r.layer, r.trunk))
        .collect();
    layers.sort_unstable();
    layers.dedup();
    Some(
        layers
            .iter()
            .enumerate()
            .filter(|(_, (_, trunk))| *trunk)
            .map(|(position, _)| position)
            .collect(),
    )
}

/// Chart (c): one panel per variant; per depth ‖dL/dh‖ against layer at the
/// first probed step (solid) and the last (dashed).
pub(crate) fn gradient_profile_figure(results: &ResultsDir) -> Figure {
    let depths = results.depths();
    let mut first_steps: Vec<u64> = Vec::new();
    let mut last_steps: Vec<u64> = Vec::new();
    let (groups, layout) = super::group_grid(results);
    let mut panels: Vec<Panel> = groups
        .into_iter()
        .map(|variant| {
            let mut panel = Panel::new(variant.as_str());
            let mut theory_drawn = false;
            let mut theory_on_measured = true;
            for (i, &depth) in depths.iter().enumerate() {
                let Some(run) = probed_run(results, &variant, depth) else {
                    continue;
                };
                let grads = output_grads(run);
                let (Some((&first, at_first)), Some((&last, at_last))) =
                    (grads.first_key_value(), grads.last_key_value())
                else {
                    continue;
                };
                let color = depth_color(i, depths.len());
                let line = |m: &BTreeMap<usize, f64>| -> Vec<(f64, f64)> {
                    m.iter().map(|(&l, &v)| (l as f64, v)).collect()
                };
                let mut any = false;
                let mut all_zero = true;
                let theory = theory_series(run, at_first);
                // Theory drawn through the very points of step 0 hides
                // them: step 0 gets dots, and the legend says so.
                let coincides = theory
                    .as_ref()
                    .is_some_and(|t| coincides(&t.points, at_first));
                for (points, dashed) in [(line(at_first), false), (line(at_last), true)] {
                    if dashed && last == first {
                        continue;
                    }
                    let Some(zero_only) = gradient_series_kind(&points) else {
                        continue;
                    };
                    any = true;
                    all_zero &= zero_only;
                    panel.series.push(Series {
                        diverged: run.summary.is_diverged(),
                        points,
                        color,
                        dashed,
                        marker: (coincides && !dashed).then_some(Marker::Circle),
                    });
                }
                if let Some(theory) = theory {
                    panel.series.push(theory);
                    theory_drawn = true;
                    theory_on_measured &= coincides;
                }
                if any {
                    first_steps.push(first);
                    last_steps.push(last);
                    panel.legend.push(LegendEntry {
                        label: format!(
                            "d{depth}{}{}",
                            run_note(&[run]),
                            if all_zero { ALL_ZERO } else { "" }
                        ),
                        color,
                        dashed: false,
                        marker: all_zero.then_some(Marker::Zero),
                    });
                }
            }
            if theory_drawn {
                panel.legend.push(LegendEntry {
                    label: if theory_on_measured {
                        "theory (mean field, at init): on step 0's dots".to_owned()
                    } else {
                        "theory (mean field, at init)".to_owned()
                    },
                    color: THEORY_COLOR,
                    dashed: true,
                    marker: None,
                });
            }
            panel.empty_reason = Some("no gradients.csv with kind=output rows".to_owned());
            panel
        })
        .collect();

    add_step_keys(&mut panels, &first_steps, &last_steps);

    let mut x = Axis::new(profile_label(results), Scale::Linear);
    x.integer = true;
    Figure {
        name: GRADIENT_PROFILE,
        title: if super::through_time(results) {
            "Gradient through time: rms of dL/dh_t per time step".to_owned()
        } else {
            "Gradient profile: rms of dL/dh per layer".to_owned()
        },
        subtitle: Some(format!(
            "one kind of point per line ({}); one line per {}, seed {}; solid = initialization, dashed = last probed step",
            match profile_label(results) {
                LABEL_BLOCK => "block outputs",
                super::gradients::LABEL_TIME => "the last layer's h_t",
                _ => "every layer's output",
            },
            if super::through_time(results) { "sequence length" } else { "depth" },
            seed_word(results)
        )),
        x,
        y: gradient_axis(),
        panels,
        layout,
    }
}

/// Writes chart (c), `gradient_profile`, into `plots_dir`.
pub fn gradient_profile(results: &ResultsDir, plots_dir: &Path) -> Result<Rendered, PlotError> {
    labelled(gradient_profile_figure(results), results).write_with(plots_dir, &results.style)
}

/// Theory: a straight line of the predicted decay per layer through the
/// measured last trunk point at initialization (`at_first`, the run's
/// first probed step); `None` where there is no prediction or no positive
/// finite point to draw it through.
fn theory_series(run: &RunData, at_first: &BTreeMap<usize, f64>) -> Option<Series> {
    let (decay, trunk) = (run.summary.grad_decay_theory?, trunk_positions(run)?);
    let (&top, &y_top) = (trunk.last()?, trunk.last().and_then(|t| at_first.get(t))?);
    if !(y_top > 0.0 && y_top.is_finite()) {
        return None;
    }
    let points = trunk
        .iter()
        .map(|&p| (p as f64, y_top * 10f64.powf(-decay * (top - p) as f64)))
        .collect();
    Some(Series {
        diverged: false,
        points,
        color: THEORY_COLOR,
        dashed: true,
        marker: None,
    })
}

/// Whether a theory line lies on the measured points it was drawn through:
/// within a twentieth of a decade at every trunk position, where the two
/// lines would be drawn as one.
fn coincides(theory: &[(f64, f64)], measured: &BTreeMap<usize, f64>) -> bool {
    let close = |&(x, t): &(f64, f64)| {
        measured
            .get(&(x as usize))
            .is_some_and(|&m| m > 0.0 && t > 0.0 && (m.log10() - t.log10()).abs() < 0.05)
    };
    !theory.is_empty() && theory.iter().all(close)
}

/// Which steps solid and dashed mean, said once per panel in the legend; a
/// number only when every line agrees on it.
fn add_step_keys(panels: &mut [Panel], first_steps: &[u64], last_steps: &[u64]) {
    let same = |v: &[u64]| v.first().filter(|f| v.iter().all(|s| s == *f)).copied();
    let solid = match same(first_steps) {
        Some(s) => format!("step {s}"),
        None => "first probed step".to_owned(),
    };
    let dashed = match same(last_steps) {
        Some(s) => format!("step {s}"),
        None => "last probed step".to_owned(),
    };
    for panel in panels.iter_mut().filter(|p| !p.legend.is_empty()) {
        panel.legend.push(LegendEntry {
            label: solid.clone(),
            color: STYLE_KEY,
            dashed: false,
            marker: None,
        });
        if panel.series.iter().any(|s| s.dashed) {
            panel.legend.push(LegendEntry {
                label: dashed.clone(),
                color: STYLE_KEY,
                dashed: true,
                marker: None,
            });
        }
    }
}
