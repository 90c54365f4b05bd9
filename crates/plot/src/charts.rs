//! The charts of the file contract (the heatmap is in `heatmap.rs`), each built as a [`Figure`] from a
//! loaded [`ResultsDir`] and written as PNG and SVG.
//!
//! A chart whose data are missing is still written, with a "no data" note
//! in the empty panel, so that `plots/` always holds the same sixteen files
//! and a report that links them never breaks; [`Rendered::has_data`] says
//! which charts are empty.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::style::RGBColor;

use crate::axis::{Axis, Bounds, Scale};
use crate::error::PlotError;
use crate::figure::{
    drawable, has_zeros, ErrorBar, Figure, Layout, LegendEntry, Marker, Panel, Rendered, Series,
};
use crate::read::{ResultsDir, RunData, SummaryRow, SPLIT_TRAIN, STATUS_COMPLETED};

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
const LABEL_TRAIN_ERROR: &str = "training error (fraction)";
const LABEL_STEP_LOG: &str = "training step + 1 (log scale)";
const LABEL_FINAL_ERROR: &str = "final error (fraction)";
/// The identity task's error: ‖f(x) − x‖² / ‖x‖² (1 = outputting zeros).
const LABEL_TRAIN_RECON: &str = "relative reconstruction error ‖f(x) − x‖²/‖x‖²";
const LABEL_FINAL_RECON: &str = "final relative reconstruction error";
const LABEL_GRAD: &str = "rms of dL/dh per element";
const LABEL_LAYER: &str = "layer (0 = input side)";
const LABEL_BLOCK: &str = "block output (0 = input side)";
const LABEL_DEPTH: &str = "depth (weight layers)";
const LABEL_RESPONSE_FORWARD: &str = "layer index (responses in forward order)";
const LABEL_RESPONSE_SORTED: &str = "layer index (sorted by magnitude)";
const LABEL_RESPONSE_STD: &str = "std of layer response";
const LABEL_SATURATION: &str = "saturated fraction of units";
const LABEL_DEAD: &str = "fraction of dead units";
const LABEL_ACTIVATION_MEAN: &str = "mean of layer response";
/// Most layers chart (f) draws per panel: beyond this a legend is unreadable,
/// so it keeps evenly spaced layers, always the first and the last.
const SATURATION_MAX_LINES: usize = 8;
/// Legend suffix of a gradient series whose values are all exactly 0: it has
/// no line, only ▼ on the bottom edge.
const ALL_ZERO: &str = " — all exactly 0 in float32";

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

const STYLE_KEY: RGBColor = RGBColor(90, 90, 90);
/// The theory line of the gradient profile: black, dashed, apart from the
/// depth colours of the measured lines.
const THEORY_COLOR: RGBColor = RGBColor(0, 0, 0);

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
        subtitle: Some(if several_seeds {
            "on-the-fly minibatch error, one line per depth, mean over seeds".to_owned()
        } else {
            "on-the-fly minibatch error, one line per depth".to_owned()
        }),
        x,
        y,
        panels,
        layout: Layout::Row,
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

    let x = depth_axis(&depths);
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

/// The x axis of a chart over depth, ticked at the depths that were run.
pub(crate) fn depth_axis(depths: &[u32]) -> Axis {
    // Depths usually double (4, 8, 16, …): a log axis spaces them evenly.
    // Depths close together (CIFAR's 20, 32, 44, 56) read better linearly.
    let spread_out = match (depths.first(), depths.last()) {
        (Some(&lo), Some(&hi)) => lo > 0 && f64::from(hi) / f64::from(lo) >= 4.0,
        _ => false,
    };
    let mut x = if spread_out {
        Axis::new(format!("{LABEL_DEPTH}, log scale"), Scale::Log)
    } else {
        Axis::new(LABEL_DEPTH, Scale::Linear)
    };
    x.ticks = Some(depths.iter().map(|&d| f64::from(d)).collect());
    x
}

/// The y axis of the gradient charts: log scale, with exact zeros (a float32
/// tensor of zeros: the backward pass itself underflowed, as in a sigmoid
/// plain net of depth 64) drawn on the bottom edge rather than silently
/// dropped. The probe accumulates in float64, so anything else reads its
/// true value however small.
fn gradient_axis() -> Axis {
    let mut y = Axis::new(LABEL_GRAD, Scale::Log);
    y.zero_floor = true;
    y
}

/// How a gradient series shows on [`gradient_axis`]: `None` when it has
/// nothing to show, else whether it has only zeros (no line, ▼ only).
fn gradient_series_kind(points: &[(f64, f64)]) -> Option<bool> {
    if drawable(points, Scale::Linear, Scale::Log) {
        Some(false)
    } else if has_zeros(points, Scale::Linear) {
        Some(true)
    } else {
        None
    }
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

/// The kind of probe point the gradient charts draw for a run: the name
/// suffix of its trunk points (`linear` for an MLP's layers, `out` for the
/// block outputs of a CNN or ResNet), so that one line never mixes block
/// outputs with the convs inside the blocks (the sawtooth of issue 12).
/// `None` for files without the `trunk` column: every point is drawn.
fn trunk_kind(run: &RunData) -> Option<&str> {
    run.gradients
        .iter()
        .flatten()
        .find(|r| r.trunk)
        .map(|r| r.name.rsplit('.').next().unwrap_or(&r.name))
}

/// Per-element rms of dL/dh of one run, as `step -> [(position, rms)]`
/// sorted by position: the points of the run's trunk kind (see
/// [`trunk_kind`]) numbered 0, 1, … from the input side. Rows without a
/// value are kept as NaN: the renderer drops them and breaks the line.
/// Files written before the rms column fall back to the L2 norm.
fn output_grads(run: &RunData) -> BTreeMap<u64, BTreeMap<usize, f64>> {
    let kind = trunk_kind(run);
    let rows: Vec<&crate::read::GradientRow> = run
        .gradients
        .iter()
        .flatten()
        .filter(|r| r.is_output())
        .filter(|r| kind.is_none_or(|k| r.name.rsplit('.').next() == Some(k)))
        .collect();
    let mut layers: Vec<usize> = rows.iter().map(|r| r.layer).collect();
    layers.sort_unstable();
    layers.dedup();
    let mut out: BTreeMap<u64, BTreeMap<usize, f64>> = BTreeMap::new();
    for row in rows {
        let position = layers.binary_search(&row.layer).unwrap_or_default();
        out.entry(row.step)
            .or_default()
            .insert(position, row.rms.or(row.l2).unwrap_or(f64::NAN));
    }
    out
}

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

/// The x label of a gradient profile: layers of an MLP, block outputs of a
/// conv family.
fn profile_label(results: &ResultsDir) -> &'static str {
    let kinds: Vec<&str> = results.runs.iter().filter_map(trunk_kind).collect();
    if kinds.is_empty() || kinds.iter().all(|k| *k == "linear") {
        LABEL_LAYER
    } else {
        LABEL_BLOCK
    }
}

/// The run of a (variant, depth) group with the smallest seed among those
/// that have dL/dh rows; one seed per line keeps the gradient charts about
/// one network rather than an average of several.
pub(crate) fn probed_run<'a>(
    results: &'a ResultsDir,
    variant: &str,
    depth: u32,
) -> Option<&'a RunData> {
    runs_of(results, variant, depth)
        .into_iter()
        .filter(|r| r.gradients.iter().flatten().any(|g| g.is_output()))
        .min_by_key(|r| r.summary.seed)
}

/// Chart (c): one panel per variant; per depth ‖dL/dh‖ against layer at the
/// first probed step (solid) and the last (dashed).
pub(crate) fn gradient_profile_figure(results: &ResultsDir) -> Figure {
    let depths = results.depths();
    let mut first_steps: Vec<u64> = Vec::new();
    let mut last_steps: Vec<u64> = Vec::new();
    let mut panels: Vec<Panel> = results
        .groups()
        .into_iter()
        .map(|variant| {
            let mut panel = Panel::new(variant.as_str());
            let mut theory_drawn = false;
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
                        points,
                        color,
                        dashed,
                        marker: None,
                    });
                }
                // Theory: a straight line of the predicted decay per layer
                // through the measured last trunk point at initialization.
                if let (Some(decay), Some(trunk)) =
                    (run.summary.grad_decay_theory, trunk_positions(run))
                {
                    if let (Some(&top), Some(&y_top)) =
                        (trunk.last(), trunk.last().and_then(|t| at_first.get(t)))
                    {
                        if y_top > 0.0 && y_top.is_finite() {
                            let points = trunk
                                .iter()
                                .map(|&p| (p as f64, y_top * 10f64.powf(-decay * (top - p) as f64)))
                                .collect();
                            panel.series.push(Series {
                                points,
                                color: THEORY_COLOR,
                                dashed: true,
                                marker: None,
                            });
                            theory_drawn = true;
                        }
                    }
                }
                if any {
                    first_steps.push(first);
                    last_steps.push(last);
                    panel.legend.push(LegendEntry {
                        label: format!(
                            "d{depth}{}{}",
                            status_note([run.summary.status.as_str()]),
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
                    label: "theory (mean field, at init)".to_owned(),
                    color: THEORY_COLOR,
                    dashed: true,
                    marker: None,
                });
            }
            panel.empty_reason = Some("no gradients.csv with kind=output rows".to_owned());
            panel
        })
        .collect();

    // Which steps solid and dashed mean, said once per panel in the legend;
    // a number only when every line agrees on it.
    let same = |v: &[u64]| v.first().filter(|f| v.iter().all(|s| s == *f)).copied();
    let solid = match same(&first_steps) {
        Some(s) => format!("step {s}"),
        None => "first probed step".to_owned(),
    };
    let dashed = match same(&last_steps) {
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

    let mut x = Axis::new(profile_label(results), Scale::Linear);
    x.integer = true;
    Figure {
        name: GRADIENT_PROFILE,
        title: "Gradient profile: rms of dL/dh per layer".to_owned(),
        subtitle: Some(format!(
            "one kind of point per line ({}); one line per depth, seed {}; solid = initialization, dashed = last probed step",
            match profile_label(results) {
                LABEL_BLOCK => "block outputs",
                _ => "every layer's output",
            },
            seed_word(results)
        )),
        x,
        y: gradient_axis(),
        panels,
        layout: Layout::Row,
    }
}

/// The depth chart (d) follows: the deepest depth every variant has dL/dh
/// for, so that the panels compare twins; else the deepest any variant has.
pub(crate) fn deepest_probed_depth(results: &ResultsDir) -> Option<u32> {
    let variants = results.groups();
    let probed = |v: &str, d: u32| probed_run(results, v, d).is_some();
    let depths = results.depths();
    depths
        .iter()
        .rev()
        .find(|&&d| variants.iter().all(|v| probed(v, d)))
        .or_else(|| {
            depths
                .iter()
                .rev()
                .find(|&&d| variants.iter().any(|v| probed(v, d)))
        })
        .copied()
}

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
    let panels = results
        .groups()
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
                status_note([run.summary.status.as_str()])
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
                _ => "layer",
            },
            seed_word(results)
        )),
        x,
        y: gradient_axis(),
        panels,
        layout: Layout::Row,
    }
}

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
    for row in rows.iter().filter(|r| r.step == step) {
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

/// The run of a (variant, depth) group with the smallest seed among those
/// that have activation rows.
fn response_run<'a>(results: &'a ResultsDir, variant: &str, depth: u32) -> Option<&'a RunData> {
    runs_of(results, variant, depth)
        .into_iter()
        .filter(|r| r.activations.as_ref().is_some_and(|a| !a.is_empty()))
        .min_by_key(|r| r.summary.seed)
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
            let mut label = format!(
                "{variant} d{depth}{}",
                status_note([run.summary.status.as_str()])
            );
            let nothing = stds.sorted.is_empty();
            if nothing {
                label.push_str(&format!(" — no finite std at step {}", stds.step));
            } else {
                steps.push(stds.step);
                top.series.push(Series {
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
    let panels = results
        .groups()
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
                status_note([run.summary.status.as_str()])
            ));
            let mut by_layer: BTreeMap<usize, Vec<(f64, f64)>> = BTreeMap::new();
            for row in run.activations.iter().flatten() {
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
        layout: Layout::Row,
    }
}

/// Writes chart (a), `train_error_vs_step`, into `plots_dir`.
pub fn train_error_vs_step(results: &ResultsDir, plots_dir: &Path) -> Result<Rendered, PlotError> {
    labelled(train_error_figure(results), results).write_with(plots_dir, &results.style)
}

/// Writes chart (b), `error_vs_depth`, into `plots_dir`.
pub fn error_vs_depth(results: &ResultsDir, plots_dir: &Path) -> Result<Rendered, PlotError> {
    labelled(error_vs_depth_figure(results), results).write_with(plots_dir, &results.style)
}

/// Writes chart (c), `gradient_profile`, into `plots_dir`.
pub fn gradient_profile(results: &ResultsDir, plots_dir: &Path) -> Result<Rendered, PlotError> {
    labelled(gradient_profile_figure(results), results).write_with(plots_dir, &results.style)
}

/// Writes chart (d), `gradient_vs_step`, into `plots_dir`.
pub fn gradient_vs_step(results: &ResultsDir, plots_dir: &Path) -> Result<Rendered, PlotError> {
    labelled(gradient_vs_step_figure(results), results).write_with(plots_dir, &results.style)
}

/// Writes chart (e), `layer_response_std`, into `plots_dir`.
pub fn layer_response_std(results: &ResultsDir, plots_dir: &Path) -> Result<Rendered, PlotError> {
    labelled(layer_response_std_figure(results), results).write_with(plots_dir, &results.style)
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

/// Writes all eight charts into `plots_dir`, in [`CHART_NAMES`] order.
pub fn render_charts(results: &ResultsDir, plots_dir: &Path) -> Result<Vec<Rendered>, PlotError> {
    Ok(vec![
        train_error_vs_step(results, plots_dir)?,
        error_vs_depth(results, plots_dir)?,
        gradient_profile(results, plots_dir)?,
        gradient_vs_step(results, plots_dir)?,
        crate::heatmap::gradient_heatmap(results, plots_dir)?,
        layer_response_std(results, plots_dir)?,
        saturation_vs_step(results, plots_dir)?,
        activation_mean_vs_step(results, plots_dir)?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::{ActivationRow, GradientRow, MetricRow};

    fn summary(variant: &str, depth: u32, seed: u64, status: &str) -> SummaryRow {
        SummaryRow {
            run: format!("{variant}-d{depth}-s{seed}"),
            variant: variant.to_owned(),
            activation: None,
            init: None,
            norm: None,
            depth,
            seed,
            status: status.to_owned(),
            steps_done: None,
            params: None,
            final_train_loss: None,
            final_train_error: None,
            final_test_loss: None,
            final_test_error: None,
            grad_decay_init: None,
            grad_decay_theory: None,
            grad_decay_final: None,
            grad_spread_init: None,
            grad_spread_final: None,
            grad_first_init: None,
            grad_last_init: None,
            grad_first_final: None,
            grad_last_final: None,
            fwd_spread_init: None,
            fwd_spread_final: None,
            elapsed_s: None,
            source: None,
            numbers: Vec::new(),
        }
    }

    fn run(variant: &str, depth: u32, seed: u64, status: &str) -> RunData {
        RunData {
            summary: summary(variant, depth, seed, status),
            metrics: None,
            gradients: None,
            activations: None,
        }
    }

    fn train_row(step: u64, error: f64) -> MetricRow {
        MetricRow {
            step,
            epoch: None,
            split: SPLIT_TRAIN.to_owned(),
            loss: None,
            error: Some(error),
            lr: None,
            grad_norm: None,
            elapsed_s: None,
        }
    }

    fn grad_rows(depth: usize, step: u64) -> Vec<GradientRow> {
        (0..depth)
            .map(|layer| GradientRow {
                step,
                layer,
                name: format!("layer{layer:02}.linear"),
                kind: "output".to_owned(),
                trunk: layer > 0 && layer + 1 < depth,
                l2: Some(1.0),
                rms: Some(0.5),
                zero_fraction: Some(0.0),
                weight_norm: None,
                relative: None,
            })
            .collect()
    }

    #[test]
    fn status_notes() {
        assert_eq!(status_note(["completed", "completed"]), "");
        assert_eq!(status_note(["diverged"]), " (diverged)");
        assert_eq!(status_note(["completed", "diverged"]), " (1/2 diverged)");
        assert_eq!(
            status_note(["failed", "diverged", "diverged"]),
            " (1/3 failed, 2/3 diverged)"
        );
    }

    #[test]
    fn train_error_is_averaged_over_finite_seeds_at_equal_steps() {
        let mut a = run("plain", 4, 0, "completed");
        a.metrics = Some(vec![
            train_row(0, 0.8),
            train_row(10, 0.4),
            train_row(20, 0.2),
        ]);
        let mut b = run("plain", 4, 1, "diverged");
        b.metrics = Some(vec![
            train_row(0, 0.6),
            train_row(10, f64::NAN),
            // Test rows are not part of the training curve.
            MetricRow {
                split: "test".to_owned(),
                ..train_row(10, 0.0)
            },
        ]);
        let curve = mean_train_error(&[&a, &b]);
        assert_eq!(curve.len(), 3);
        assert!((curve[0].1 - 0.7).abs() < 1e-12);
        assert!((curve[1].1 - 0.4).abs() < 1e-12);
        assert!((curve[2].1 - 0.2).abs() < 1e-12);

        // A step where every seed is NaN stays, as a gap.
        let mut c = run("plain", 4, 2, "diverged");
        c.metrics = Some(vec![train_row(0, 0.5), train_row(10, f64::NAN)]);
        let curve = mean_train_error(&[&c]);
        assert!(curve[1].1.is_nan());
    }

    #[test]
    fn layers_first_middle_last() {
        assert_eq!(
            three_layers(&[0, 1, 2, 3, 4, 5, 6, 7]),
            vec![(0, "first"), (4, "middle"), (7, "last")]
        );
        assert_eq!(three_layers(&[0, 1]), vec![(0, "first"), (1, "last")]);
        assert_eq!(three_layers(&[3]), vec![(3, "first")]);
        assert!(three_layers(&[]).is_empty());
    }

    #[test]
    fn deepest_depth_prefers_one_every_variant_has() {
        let mut runs = Vec::new();
        for (variant, depth) in [
            ("plain", 8),
            ("plain", 32),
            ("residual", 8),
            ("residual", 16),
        ] {
            let mut r = run(variant, depth, 0, "completed");
            r.gradients = Some(grad_rows(depth as usize, 0));
            runs.push(r);
        }
        let results = ResultsDir {
            root: "r".into(),
            runs,
            record: None,
            style: Default::default(),
        };
        assert_eq!(deepest_probed_depth(&results), Some(8));

        // No common depth: the deepest any variant has.
        let results = ResultsDir {
            root: "r".into(),
            runs: results
                .runs
                .into_iter()
                .filter(|r| r.summary.depth != 8)
                .collect(),
            record: None,
            style: Default::default(),
        };
        assert_eq!(deepest_probed_depth(&results), Some(32));
    }

    #[test]
    fn depth_colours_are_ordered_and_distinct() {
        let colours: Vec<RGBColor> = (0..6).map(|i| depth_color(i, 6)).collect();
        for w in colours.windows(2) {
            let d = |a: u8, b: u8| (i32::from(a) - i32::from(b)).abs();
            let dist = d(w[0].0, w[1].0) + d(w[0].1, w[1].1) + d(w[0].2, w[1].2);
            assert!(dist > 60, "{:?} and {:?} look alike", w[0], w[1]);
        }
        assert_eq!(depth_color(0, 1), depth_color(0, 6));
    }

    #[test]
    fn profile_uses_smallest_probed_seed_and_both_steps() {
        let mut s1 = run("plain", 4, 1, "completed");
        let mut rows = grad_rows(4, 0);
        rows.extend(grad_rows(4, 99));
        s1.gradients = Some(rows);
        // Seed 0 has no gradients.csv: seed 1 is the smallest present.
        let s0 = run("plain", 4, 0, "completed");
        let results = ResultsDir {
            root: "r".into(),
            runs: vec![s0, s1],
            record: None,
            style: Default::default(),
        };
        let fig = gradient_profile_figure(&results);
        assert_eq!(fig.panels.len(), 1);
        let panel = &fig.panels[0];
        assert_eq!(panel.series.len(), 2);
        assert!(!panel.series[0].dashed && panel.series[1].dashed);
        let labels: Vec<&str> = panel.legend.iter().map(|e| e.label.as_str()).collect();
        assert_eq!(labels, ["d4", "step 0", "step 99"]);
    }

    #[test]
    fn error_vs_depth_bars_only_with_several_seeds() {
        let mut a = run("plain", 4, 0, "completed");
        a.summary.final_train_error = Some(0.2);
        a.summary.final_test_error = Some(0.3);
        let mut b = run("plain", 4, 1, "diverged");
        b.summary.final_train_error = Some(0.4);
        b.summary.final_test_error = Some(f64::NAN);
        let results = ResultsDir {
            root: "r".into(),
            runs: vec![a, b],
            record: None,
            style: Default::default(),
        };
        let fig = error_vs_depth_figure(&results);
        let panel = &fig.panels[0];
        let train = &panel.series[0];
        assert!((train.points[0].1 - 0.3).abs() < 1e-12);
        // Train has two finite seeds (a bar), test only one (no bar).
        assert_eq!(panel.error_bars.len(), 1);
        assert_eq!(panel.legend[0].label, "plain train (1/2 diverged)");
        assert_eq!(panel.legend[1].label, "plain test");
    }

    fn act_rows(step: u64, stds: &[f64]) -> Vec<ActivationRow> {
        stds.iter()
            .enumerate()
            .map(|(i, &std)| ActivationRow {
                dead: None,
                q: None,
                step,
                // Every third probe point has no response, as in a CNN.
                layer: i + i / 2,
                name: format!("layer{i:02}.conv"),
                mean: None,
                std: Some(std),
                saturation: None,
            })
            .collect()
    }

    fn response_results(plain: &[f64], residual: &[f64]) -> ResultsDir {
        let mut runs = Vec::new();
        for (variant, stds) in [("plain", plain), ("residual", residual)] {
            // Seed 1 comes first in the file but is not the one drawn.
            let mut s1 = run(variant, 8, 1, "completed");
            s1.activations = Some(act_rows(9, &[99.0; 3]));
            let mut s0 = run(variant, 8, 0, "interrupted");
            let mut rows = act_rows(0, &[1.0; 3]);
            rows.extend(act_rows(9, stds));
            s0.activations = Some(rows);
            runs.extend([s1, s0]);
        }
        ResultsDir {
            root: "r".into(),
            runs,
            record: None,
            style: Default::default(),
        }
    }

    #[test]
    fn response_std_draws_smallest_seed_plain_dashed_residual_solid() {
        let fig = layer_response_std_figure(&response_results(&[0.5, 2.0, 1.0], &[0.8, 0.9]));
        assert_eq!(fig.layout, Layout::Column);
        assert_eq!(fig.panels.len(), 2);
        let (top, bottom) = (&fig.panels[0], &fig.panels[1]);
        assert_eq!(
            top.x_label.as_deref(),
            Some("layer index (responses in forward order)")
        );
        assert_eq!(
            bottom.x_label.as_deref(),
            Some("layer index (sorted by magnitude)")
        );
        let dashes: Vec<bool> = top.series.iter().map(|s| s.dashed).collect();
        assert_eq!(dashes, [true, false]);
        // Positions count from 0 on the input side, as in every chart.
        assert_eq!(top.series[0].points, [(0.0, 0.5), (1.0, 2.0), (2.0, 1.0)]);
        assert_eq!(
            bottom.series[0].points,
            [(0.0, 2.0), (1.0, 1.0), (2.0, 0.5)]
        );
        assert_eq!(bottom.series[1].points, [(0.0, 0.9), (1.0, 0.8)]);
        let labels: Vec<&str> = top.legend.iter().map(|e| e.label.as_str()).collect();
        assert_eq!(
            labels,
            ["plain d8 (interrupted)", "residual d8 (interrupted)"]
        );
        assert_eq!(fig.y.scale, Scale::Linear);
        assert_eq!(fig.y.bounds, Bounds::FromZero);
        assert!(fig.subtitle.is_some_and(|s| s.contains("step 9")));
    }

    /// A 64-layer legend is unreadable: chart (f) keeps at most eight,
    /// evenly spaced, always with the input-side and the top layer.
    #[test]
    fn saturation_keeps_first_and_top_layers_when_thinning() {
        let all: Vec<usize> = (0..63).collect();
        let kept = spaced_layers(&all, 8);
        assert_eq!(kept.len(), 8);
        assert_eq!((kept[0], kept[7]), (0, 62));
        assert!(kept.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(spaced_layers(&[0, 1, 2], 8), vec![0, 1, 2]);
        assert!(spaced_layers(&[], 8).is_empty());
    }

    /// One line per layer of the deepest run, top layer labelled, and the
    /// saturation of each step on the y axis.
    #[test]
    fn saturation_draws_each_layer_of_the_deepest_run() {
        let mut shallow = run("plain", 4, 0, "completed");
        shallow.activations = Some(act_rows(0, &[1.0; 3]));
        let mut deep = run("plain", 8, 0, "completed");
        let mut rows = Vec::new();
        for step in [0u64, 10] {
            for layer in 0..3 {
                rows.push(ActivationRow {
                    dead: None,
                    q: None,
                    step,
                    layer,
                    name: format!("layer{layer:02}.linear"),
                    mean: None,
                    std: None,
                    saturation: Some(0.1 * layer as f64 + step as f64 / 100.0),
                });
            }
        }
        deep.activations = Some(rows);
        let results = ResultsDir {
            root: "r".into(),
            runs: vec![shallow, deep],
            record: None,
            style: Default::default(),
        };
        let fig = saturation_figure(&results);
        assert_eq!(fig.title, "Saturation vs step, depth 8");
        let panel = &fig.panels[0];
        assert_eq!(panel.series.len(), 3);
        assert_eq!(
            panel.series[2].points,
            [(0.0, 0.2), (10.0, 0.30000000000000004)]
        );
        let labels: Vec<&str> = panel.legend.iter().map(|e| e.label.as_str()).collect();
        assert_eq!(labels, ["layer 0", "layer 1", "layer 2 (top)"]);
        // Chart (g) draws the mean column of the same rows; these have none.
        let fig = response_figure(&results, ResponseStat::Mean);
        assert_eq!(fig.name, ACTIVATION_MEAN_VS_STEP);
        assert!(!fig.has_data());
    }

    #[test]
    fn response_std_axis_turns_log_beyond_two_decades() {
        // 0.01 to 0.99: under two decades, linear.
        let fig = layer_response_std_figure(&response_results(&[0.01, 0.99], &[0.5]));
        assert_eq!(fig.y.scale, Scale::Linear);
        // 0.001 to 0.5: more than two decades, log; NaN and 0 do not count.
        let fig = layer_response_std_figure(&response_results(
            &[0.001, f64::NAN, 0.0],
            &[0.5, f64::INFINITY],
        ));
        assert_eq!(fig.y.scale, Scale::Log);
        assert!(fig.y.label.ends_with("log scale"), "{}", fig.y.label);
        // Nothing finite at all: no line, an entry that says so, no data.
        let fig = layer_response_std_figure(&response_results(&[f64::NAN], &[f64::NAN]));
        assert!(!fig.has_data());
        assert!(fig.panels[0].series.is_empty());
        assert_eq!(fig.panels[0].legend[0].marker, Some(Marker::Absent));
        assert!(fig.panels[0].legend[0]
            .label
            .ends_with("no finite std at step 9"));
    }
}
