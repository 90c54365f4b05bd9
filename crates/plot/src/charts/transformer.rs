//! The transformer family's charts (issue 35), drawn after the common ones
//! for transformer results only, from the readings of
//! `gradscope_format::tokens`:
//!
//! - `ffn_gradient_profile`: each block's FFN output weight gradient ‖∇W‖
//!   at step 0 against the block, one panel per layout, one line per depth
//!   (Xiong et al. 2020, Fig. 3: post-LN's grows toward the output, pre-LN's
//!   is flat). Step 0 precedes any update, so a warm-up cannot change it:
//!   each layout's first run at each depth is drawn (smallest seed).
//! - `top_ffn_gradient_vs_depth`: the last block's value against the depth,
//!   mean over every run at that depth (markers), with Xiong et al.'s
//!   scaling dashed through the shallowest depth's measurement: flat for
//!   post-LN, 1/√L for pre-LN. A scaling, not a constant, so only its slope
//!   compares.
//! - `rank_collapse`: each block output's rank-collapse residual
//!   ‖X − 1·x̄ᵀ‖_F / ‖X‖_F (Dong, Cordonnier & Loukas 2021) against the
//!   block, at the first probed step (solid) and the last (dashed), one
//!   panel per layout and swept setting, one colour per depth.

use std::path::Path;

use gradscope_format::tokens::{ffn_gradients, probed_steps, rank1_profile};
use gradscope_theory::transformer::{scaling, Layout as Xiong};

use crate::axis::{Axis, Bounds, Scale};
use crate::error::PlotError;
use crate::figure::{Figure, Layout, LegendEntry, Marker, Panel, Rendered, Series};
use crate::read::{ResultsDir, RunData};

use super::{categorical, depth_axis, depth_color, labelled};

/// Xiong et al.'s Fig. 3 reading per block at step 0.
pub const FFN_GRADIENT_PROFILE: &str = "ffn_gradient_profile";
/// The top block's FFN gradient against depth, with Xiong et al.'s scaling.
pub const TOP_FFN_GRADIENT_VS_DEPTH: &str = "top_ffn_gradient_vs_depth";
/// The rank-collapse residual per block.
pub const RANK_COLLAPSE: &str = "rank_collapse";

const LABEL_BLOCK: &str = "block (0 = input side)";
const THEORY_COLOR: plotters::style::RGBColor = plotters::style::RGBColor(0, 0, 0);

/// The layouts in the order their panels are drawn.
const LAYOUTS: [&str; 5] = ["plain", "residual", "rezero", "post-ln", "pre-ln"];

/// Whether `results` are a transformer's.
pub(crate) fn is_transformer(results: &ResultsDir) -> bool {
    results.family().as_deref() == Some("transformer")
}

fn layouts(results: &ResultsDir) -> Vec<&'static str> {
    LAYOUTS
        .into_iter()
        .filter(|l| results.runs.iter().any(|r| r.summary.variant == *l))
        .collect()
}

/// The run of `layout` at `depth` with gradient rows, smallest seed
/// (any swept setting: step 0 is the same in each).
fn first_run<'a>(results: &'a ResultsDir, layout: &str, depth: u32) -> Option<&'a RunData> {
    results
        .runs
        .iter()
        .filter(|r| r.summary.variant == layout && r.summary.depth == depth)
        .filter(|r| r.gradients.as_ref().is_some_and(|g| !g.is_empty()))
        .min_by_key(|r| r.summary.seed)
}

fn as_points(profile: &[(usize, f64)]) -> Vec<(f64, f64)> {
    profile.iter().map(|&(b, v)| (b as f64, v)).collect()
}

pub(crate) fn ffn_gradient_profile_figure(results: &ResultsDir) -> Figure {
    let depths = results.depths();
    let mut panels = Vec::new();
    for layout in layouts(results) {
        let mut panel = Panel::new(layout);
        for (i, &d) in depths.iter().enumerate() {
            let Some(run) = first_run(results, layout, d) else {
                continue;
            };
            let profile = ffn_gradients(run.gradients.as_deref().unwrap_or_default(), 0);
            if profile.is_empty() {
                continue;
            }
            let color = depth_color(i, depths.len());
            panel.series.push(Series {
                points: as_points(&profile),
                color,
                dashed: false,
                marker: None,
            });
            panel.legend.push(LegendEntry {
                label: format!("{d} blocks, seed {}", run.summary.seed),
                color,
                dashed: false,
                marker: None,
            });
        }
        if panel.series.is_empty() {
            panel.empty_reason = Some("no blockNN.mlp weight rows at step 0".into());
        }
        panels.push(panel);
    }
    let mut x = Axis::new(LABEL_BLOCK, Scale::Linear);
    x.integer = true;
    Figure {
        name: FFN_GRADIENT_PROFILE,
        title: "FFN weight gradient per block at initialization".to_owned(),
        subtitle: Some(
            "‖∇W‖ of each block's second FFN matrix at step 0, log axis (Xiong et al. 2020, Fig. 3: post-LN's grows toward the output, pre-LN's is flat)"
                .to_owned(),
        ),
        x,
        y: Axis::new("‖∇W_FFN2‖ at step 0, log scale", Scale::Log),
        panels,
        layout: Layout::Row,
    }
}

/// The top block's FFN ‖∇W‖ at step 0 per depth, mean over `layout`'s
/// runs there.
fn top_points(results: &ResultsDir, layout: &str) -> Vec<(f64, f64)> {
    results
        .depths()
        .into_iter()
        .filter_map(|d| {
            let v: Vec<f64> = results
                .runs
                .iter()
                .filter(|r| r.summary.variant == layout && r.summary.depth == d)
                .filter_map(|r| {
                    ffn_gradients(r.gradients.as_deref()?, 0)
                        .last()
                        .map(|p| p.1)
                })
                .collect();
            (!v.is_empty()).then(|| (f64::from(d), v.iter().sum::<f64>() / v.len() as f64))
        })
        .collect()
}

pub(crate) fn top_ffn_gradient_vs_depth_figure(results: &ResultsDir) -> Figure {
    let mut panels = Vec::new();
    for (i, layout) in layouts(results).into_iter().enumerate() {
        let mut panel = Panel::new(layout);
        let points = top_points(results, layout);
        if points.is_empty() {
            panel.empty_reason = Some("no blockNN.mlp weight rows at step 0".into());
            panels.push(panel);
            continue;
        }
        let color = categorical(i);
        panel.series.push(Series {
            points: points.clone(),
            color,
            dashed: false,
            marker: Some(Marker::Circle),
        });
        panel.legend.push(LegendEntry {
            label: "measured, mean over runs".to_owned(),
            color,
            dashed: false,
            marker: Some(Marker::Circle),
        });
        if let (Some(x), Some(&anchor)) = (Xiong::of_variant(layout), points.first()) {
            let line: Vec<(f64, f64)> = points
                .iter()
                .filter_map(|&(d, _)| Some((d, scaling(x, anchor, d)?)))
                .collect();
            panel.series.push(Series {
                points: line,
                color: THEORY_COLOR,
                dashed: true,
                marker: None,
            });
            panel.legend.push(LegendEntry {
                label: match x {
                    Xiong::PostLn => "Xiong et al.: L^0 (through the first point)".to_owned(),
                    Xiong::PreLn => "Xiong et al.: L^-1/2 (through the first point)".to_owned(),
                },
                color: THEORY_COLOR,
                dashed: true,
                marker: None,
            });
        }
        panels.push(panel);
    }
    let mut x = depth_axis(&results.depths(), false);
    x.label = x.label.replace("weight layers", "blocks");
    Figure {
        name: TOP_FFN_GRADIENT_VS_DEPTH,
        title: "Top block's FFN gradient against depth".to_owned(),
        subtitle: Some(
            "‖∇W‖ of the last block's second FFN matrix at step 0; dashed: Xiong et al.'s scaling (a bound up to constants, drawn through the shallowest depth)"
                .to_owned(),
        ),
        x,
        y: Axis::new("top ‖∇W_FFN2‖ at step 0, log scale", Scale::Log),
        panels,
        layout: Layout::Row,
    }
}

pub(crate) fn rank_collapse_figure(results: &ResultsDir) -> Figure {
    let depths = results.depths();
    let mut groups: Vec<String> = Vec::new();
    for layout in layouts(results) {
        for r in results.runs.iter().filter(|r| r.summary.variant == layout) {
            let g = r.summary.group();
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
    }
    let mut panels = Vec::new();
    for group in &groups {
        let mut panel = Panel::new(group.clone());
        for (i, &d) in depths.iter().enumerate() {
            let Some(run) = results
                .runs
                .iter()
                .filter(|r| r.summary.group() == *group && r.summary.depth == d)
                .filter(|r| r.activations.is_some())
                .min_by_key(|r| r.summary.seed)
            else {
                continue;
            };
            let rows = run.activations.as_deref().unwrap_or_default();
            let Some((first, last)) = probed_steps(rows) else {
                continue;
            };
            let color = depth_color(i, depths.len());
            for (step, dashed) in [(first, false), (last, true)] {
                let profile = rank1_profile(rows, step);
                panel.series.push(Series {
                    points: as_points(&profile),
                    color,
                    dashed,
                    marker: None,
                });
                panel.legend.push(LegendEntry {
                    label: format!("{d} blocks, step {step}"),
                    color,
                    dashed,
                    marker: None,
                });
            }
        }
        if panel.series.is_empty() {
            panel.empty_reason = Some("no rank1 rows in activations.csv".into());
        }
        panels.push(panel);
    }
    let mut x = Axis::new(LABEL_BLOCK, Scale::Linear);
    x.integer = true;
    let mut y = Axis::new("rank1 = ‖X − 1·x̄ᵀ‖_F / ‖X‖_F", Scale::Linear);
    y.bounds = Bounds::Fraction;
    Figure {
        name: RANK_COLLAPSE,
        title: "Rank collapse of the tokens per block".to_owned(),
        subtitle: Some(
            "distance of each block output's token matrix from one repeated vector (0 = every token the same; Dong et al. 2021), smallest seed; solid = first probed step, dashed = last"
                .to_owned(),
        ),
        x,
        y,
        panels,
        layout: Layout::Row,
    }
}

/// Writes the three transformer charts into `plots_dir`.
pub fn transformer_charts(
    results: &ResultsDir,
    plots_dir: &Path,
) -> Result<Vec<Rendered>, PlotError> {
    [
        ffn_gradient_profile_figure(results),
        top_ffn_gradient_vs_depth_figure(results),
        rank_collapse_figure(results),
    ]
    .into_iter()
    .map(|fig| labelled(fig, results).write_with(plots_dir, &results.style))
    .collect()
}
