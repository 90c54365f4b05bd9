//! The charts of `gradscope lesion` (Veit, Wilber & Belongie 2016), from
//! `lesion_summary.csv` and each run's `lesion.csv` and `paths.csv`:
//! - `lesion_single`: test error after deleting each single block, every
//!   run a line, one panel per depth (their Fig. 3);
//! - `lesion_k`: mean test error after deleting k random blocks (Fig. 5);
//! - `path_gradient`: per path length k, the share of the paths and the
//!   share of the gradient they carry, at the trained and at the initial
//!   weights (Fig. 6).

use std::path::{Path, PathBuf};

use gradscope_format::files::{LESION_CSV, LESION_SUMMARY_CSV, PATHS_CSV, PLOTS_DIR, RUNS_DIR};
use gradscope_format::lesion::{LesionKind, LesionRow, LesionSummaryRow, PathRow};
use plotters::style::RGBColor;

use crate::axis::{Axis, Scale};
use crate::charts::categorical;
use crate::error::PlotError;
use crate::figure::{Figure, Layout, LegendEntry, Marker, Panel, Series, Style};

pub const LESION_SINGLE: &str = "lesion_single";
pub const LESION_K: &str = "lesion_k";
pub const PATH_GRADIENT: &str = "path_gradient";

/// One run's rows, with its summary line.
struct RunLesions {
    summary: LesionSummaryRow,
    lesions: Vec<LesionRow>,
    paths: Vec<PathRow>,
}

/// Plain in one colour family, residual in another, seeds by shade.
fn run_color(variant: &str, seed_rank: usize) -> RGBColor {
    categorical(if variant == "plain" {
        2 * seed_rank + 1
    } else {
        2 * seed_rank
    })
}

fn entry(label: String, color: RGBColor, dashed: bool, marker: Option<Marker>) -> LegendEntry {
    LegendEntry {
        label,
        color,
        dashed,
        marker,
    }
}

/// A panel per depth, a line per run from `points(run)`.
fn per_depth(
    runs: &[RunLesions],
    points: impl Fn(&RunLesions) -> Vec<(f64, f64)>,
    empty: &str,
) -> Vec<Panel> {
    let mut depths: Vec<u32> = runs.iter().map(|r| r.summary.depth).collect();
    depths.dedup();
    let mut seeds: Vec<u64> = runs.iter().map(|r| r.summary.seed).collect();
    seeds.sort_unstable();
    seeds.dedup();
    depths
        .into_iter()
        .map(|depth| {
            let mut panel = Panel::new(format!("depth {depth}"));
            for r in runs.iter().filter(|r| r.summary.depth == depth) {
                let rank = seeds.iter().position(|&s| s == r.summary.seed).unwrap_or(0);
                let color = run_color(&r.summary.variant, rank);
                let pts = points(r);
                let marker = (pts.len() <= 40).then_some(Marker::Circle);
                panel.legend.push(entry(
                    format!("{}, seed {}", r.summary.variant, r.summary.seed),
                    color,
                    false,
                    if pts.is_empty() {
                        Some(Marker::Absent)
                    } else {
                        marker
                    },
                ));
                if !pts.is_empty() {
                    panel.series.push(Series {
                        diverged: false,
                        points: pts,
                        color,
                        dashed: false,
                        marker,
                    });
                }
            }
            panel.empty_reason = Some(empty.to_owned());
            panel
        })
        .collect()
}

/// Test error (%) after deleting each single block, by block index.
fn single_points(r: &RunLesions) -> Vec<(f64, f64)> {
    r.lesions
        .iter()
        .filter(|l| l.lesion == LesionKind::Delete)
        .filter_map(|l| Some((l.blocks.parse::<f64>().ok()?, 100.0 * l.test_error)))
        .collect()
}

/// Mean test error (%) over the draws of each k, with k = 0 the intact net.
fn k_points(r: &RunLesions) -> Vec<(f64, f64)> {
    let mut out = vec![];
    if let Some(l) = r.lesions.iter().find(|l| l.lesion == LesionKind::None) {
        out.push((0.0, 100.0 * l.test_error));
    }
    let max_k = r.lesions.iter().map(|l| l.k).max().unwrap_or(0);
    for k in 1..=max_k {
        let e: Vec<f64> = r
            .lesions
            .iter()
            .filter(|l| l.lesion == LesionKind::DeleteK && l.k == k)
            .map(|l| l.test_error)
            .collect();
        if !e.is_empty() {
            out.push((k as f64, 100.0 * e.iter().sum::<f64>() / e.len() as f64));
        }
    }
    out
}

/// Each length's share of the summed totals of one `weights`.
fn shares(rows: &[PathRow], weights: &str, of: impl Fn(&PathRow) -> f64) -> Vec<(f64, f64)> {
    let rows: Vec<&PathRow> = rows.iter().filter(|r| r.weights == weights).collect();
    let sum: f64 = rows.iter().map(|r| of(r)).filter(|v| v.is_finite()).sum();
    if sum <= 0.0 {
        return Vec::new();
    }
    rows.iter().map(|r| (r.k as f64, of(r) / sum)).collect()
}

/// One panel per residual run with paths (its first seed per depth).
fn path_panels(runs: &[RunLesions]) -> Vec<Panel> {
    let mut panels = Vec::new();
    let mut seen: Vec<u32> = Vec::new();
    for r in runs.iter().filter(|r| !r.paths.is_empty()) {
        if seen.contains(&r.summary.depth) {
            continue;
        }
        seen.push(r.summary.depth);
        let n = r.paths.iter().map(|p| p.k).max().unwrap_or(0);
        let mut panel = Panel::new(format!(
            "{}, depth {} ({n} blocks), seed {}",
            r.summary.variant, r.summary.depth, r.summary.seed
        ));
        let lines = [
            (
                "paths of each length",
                shares(&r.paths, "trained", |p| p.paths),
                categorical(7),
                true,
            ),
            (
                "gradient, trained",
                shares(&r.paths, "trained", |p| p.total),
                categorical(0),
                false,
            ),
            (
                "gradient, at init",
                shares(&r.paths, "init", |p| p.total),
                categorical(3),
                false,
            ),
        ];
        for (label, points, color, dashed) in lines {
            panel.legend.push(entry(
                label.to_owned(),
                color,
                dashed,
                if points.is_empty() {
                    Some(Marker::Absent)
                } else {
                    None
                },
            ));
            if !points.is_empty() {
                panel.series.push(Series {
                    diverged: false,
                    points,
                    color,
                    dashed,
                    marker: None,
                });
            }
        }
        panel.empty_reason = Some("no path lengths were measured".into());
        panels.push(panel);
    }
    panels
}

/// Draws the lesion charts of a results folder into its `plots/`. Without
/// `lesion_summary.csv`, nothing is drawn (`Ok` of no files); without a
/// residual run's `paths.csv`, no `path_gradient`.
pub fn render_lesion(results_dir: &Path, style: Style) -> Result<Vec<PathBuf>, PlotError> {
    let summary_path = results_dir.join(LESION_SUMMARY_CSV);
    let Some(summary) = crate::read::read_rows::<LesionSummaryRow>(&summary_path)? else {
        return Ok(Vec::new());
    };
    let mut runs = Vec::new();
    for (i, s) in summary.into_iter().enumerate() {
        // A name read from a file is never a path (`../x`, `/x`).
        if !gradscope_format::names::is_folder_name(&s.run) {
            return Err(PlotError::BadRunName {
                path: summary_path.clone(),
                line: i as u64 + 2,
                run: s.run.clone(),
            });
        }
        let dir = results_dir.join(RUNS_DIR).join(&s.run);
        let lesions = crate::read::read_rows(&dir.join(LESION_CSV))?.unwrap_or_default();
        let paths = crate::read::read_rows(&dir.join(PATHS_CSV))?.unwrap_or_default();
        runs.push(RunLesions {
            summary: s,
            lesions,
            paths,
        });
    }
    runs.sort_by(|a, b| {
        (a.summary.depth, &a.summary.variant, a.summary.seed).cmp(&(
            b.summary.depth,
            &b.summary.variant,
            b.summary.seed,
        ))
    });
    let samples = runs.first().map_or(0, |r| r.summary.samples);
    let plots = results_dir.join(PLOTS_DIR);
    let error_axis = || Axis::new("test error (%)", Scale::Linear);
    let figures = [
        Figure {
            name: LESION_SINGLE,
            title: "Test error after deleting one block".into(),
            subtitle: Some(format!(
                "each block whose input and output shapes match, deleted alone (a residual block keeps its shortcut, a plain one becomes the identity); eval mode, {samples} test images"
            )),
            x: Axis::new("deleted block (index in forward order)", Scale::Linear),
            y: error_axis(),
            panels: per_depth(&runs, single_points, "no block could be deleted"),
            layout: Layout::Row,
        },
        Figure {
            name: LESION_K,
            title: "Test error after deleting k blocks at random".into(),
            subtitle: Some(format!(
                "mean over the draws of each k (k = 0: the intact net); eval mode, {samples} test images"
            )),
            x: Axis::new("blocks deleted, k", Scale::Linear),
            y: error_axis(),
            panels: per_depth(&runs, k_points, "no block could be deleted"),
            layout: Layout::Row,
        },
        Figure {
            name: PATH_GRADIENT,
            title: "Which path lengths carry the gradient".into(),
            subtitle: Some(
                "share of all paths of each length (dashed), and of the gradient reaching the first block through them: mean over the measured paths × their number".into(),
            ),
            x: Axis::new("residual branches on the path, k", Scale::Linear),
            y: Axis::new("share", Scale::Linear),
            panels: path_panels(&runs),
            layout: Layout::Row,
        },
    ];
    let mut written = Vec::new();
    for fig in figures {
        if fig.panels.is_empty() {
            continue;
        }
        let r = fig.write_with(&plots, &style)?;
        written.extend([r.png, r.svg]);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(weights: &str, k: usize, paths: f64, total: f64) -> PathRow {
        PathRow {
            weights: weights.into(),
            k,
            paths,
            measured: 1,
            mean_grad: total / paths,
            total,
            full_grad: 1.0,
        }
    }

    /// The shares of one set of weights sum to 1, and the other weights'
    /// rows are not mixed in.
    #[test]
    fn shares_are_normalized_per_weights() {
        let rows = vec![
            path("trained", 0, 1.0, 1.0),
            path("trained", 1, 2.0, 3.0),
            path("init", 0, 1.0, 100.0),
        ];
        let s = shares(&rows, "trained", |p| p.total);
        assert_eq!(s, vec![(0.0, 0.25), (1.0, 0.75)]);
        assert!(shares(&rows, "none", |p| p.total).is_empty());
    }
}
