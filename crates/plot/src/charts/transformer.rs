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
                diverged: false,
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
            diverged: false,
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
                diverged: false,
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
                    diverged: false,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::{ActivationRow, GradientRow, SummaryRow};

    fn run(variant: &str, depth: u32, ffn: &[f64], rank1: &[(u64, f64)]) -> RunData {
        let mut summary: SummaryRow = serde_json::from_value(serde_json::json!({
            "run": format!("{variant}-d{depth}-s0"), "variant": variant, "depth": depth,
            "seed": 0, "status": "completed", "steps_done": null, "params": null,
            "final_train_loss": null, "final_train_error": null,
            "final_test_loss": null, "final_test_error": null
        }))
        .unwrap();
        summary.numbers.clear();
        let gradients = ffn
            .iter()
            .enumerate()
            .map(|(b, &l2)| GradientRow {
                step: 0,
                layer: 8 * b + 7,
                name: format!("block{b:02}.mlp"),
                kind: "weight".into(),
                trunk: false,
                l2: Some(l2),
                rms: None,
                zero_fraction: None,
                weight_norm: None,
                relative: None,
            })
            .collect();
        let activations = rank1
            .iter()
            .flat_map(|&(step, v)| {
                (0..depth as usize).map(move |b| ActivationRow {
                    step,
                    layer: 8 * b + 8,
                    name: format!("block{b:02}"),
                    mean: Some(0.0),
                    std: Some(1.0),
                    saturation: None,
                    dead: None,
                    q: None,
                    c: None,
                    rank1: Some(v),
                    entropy: None,
                })
            })
            .collect();
        RunData {
            summary,
            metrics: None,
            gradients: Some(gradients),
            activations: Some(activations),
            diverged_at_step: None,
        }
    }

    fn results(runs: Vec<RunData>) -> ResultsDir {
        ResultsDir {
            root: "r".into(),
            runs,
            record: None,
            style: Default::default(),
        }
    }

    /// Xiong et al.'s scaling is drawn through the shallowest depth's
    /// measurement: flat for post-LN, 1/√L for pre-LN (half at 4× the
    /// depth), none for a layout their theorems do not cover; the profile
    /// draws one line per depth, the rank chart a solid first and dashed
    /// last step per depth.
    #[test]
    fn the_scaling_runs_through_the_first_depth_and_profiles_per_depth() {
        let r = results(vec![
            run("post-ln", 2, &[0.4, 0.5], &[(0, 0.3), (9, 0.9)]),
            run("post-ln", 8, &[0.4; 8], &[(0, 0.1), (9, 0.9)]),
            run("pre-ln", 2, &[1.0, 0.8], &[(0, 0.2), (9, 0.9)]),
            run("pre-ln", 8, &[0.3; 8], &[(0, 0.1), (9, 0.9)]),
            run("plain", 2, &[2.0, 2.0], &[(0, 0.0), (9, 0.5)]),
        ]);
        let fig = top_ffn_gradient_vs_depth_figure(&r);
        let titles: Vec<&str> = fig.panels.iter().map(|p| p.title.as_str()).collect();
        assert_eq!(titles, ["plain", "post-ln", "pre-ln"]);
        assert_eq!(fig.panels[0].series.len(), 1, "no theory for plain");
        let theory = |i: usize| fig.panels[i].series[1].points.clone();
        assert_eq!(theory(1), vec![(2.0, 0.5), (8.0, 0.5)]);
        let pre = theory(2);
        assert_eq!(pre[0], (2.0, 0.8));
        assert!((pre[1].1 - 0.4).abs() < 1e-12, "{pre:?}");
        let fig = ffn_gradient_profile_figure(&r);
        assert_eq!(fig.panels[1].series.len(), 2);
        assert_eq!(fig.panels[1].series[1].points.len(), 8);
        let fig = rank_collapse_figure(&r);
        let post = &fig.panels[1];
        assert_eq!(post.series.len(), 4);
        assert!(!post.series[0].dashed && post.series[1].dashed);
        assert_eq!(post.series[1].points[0], (0.0, 0.9));
    }
}
