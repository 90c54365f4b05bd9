//! Chart (h), `gradient_heatmap`: every layer at every probed step in one
//! picture, for the deepest net every group has dL/dh for (smallest seed),
//! one panel per group (plain beside its residual twin).
//!
//! x is the step, y the probe point (input side at the bottom), and the
//! colour is log10 of the per-element rms of dL/dh on one colour scale for
//! all panels, with a labelled colour bar. A value that is exactly 0 in
//! float32 (the backward pass underflowed) has a colour of its own, named
//! under the bar; a cell with no finite reading is left white. It shows at
//! a glance where and when the gradient vanishes, which a line per layer
//! cannot once a net has dozens of layers.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::charts::{deepest_probed_depth, probed_run, seed_word};
use crate::colour_bar::{colour, ColourBar, Swatch};
use crate::error::PlotError;
use crate::figure::{
    draw_header, ensure_font, Rendered, Style, AXIS_DESC_SIZE, FONT, PANEL_TITLE_SIZE, TICK_SIZE,
};
use crate::read::ResultsDir;

/// Chart (h): log10 rms of dL/dh, layer × step.
pub const GRADIENT_HEATMAP: &str = "gradient_heatmap";

/// The colour of an exact zero: a red no value of the scale has.
const ZERO: RGBColor = RGBColor(220, 30, 60);

/// One panel: its title and its cells.
struct Grid {
    title: String,
    /// Probed steps, ascending.
    steps: Vec<u64>,
    layers: usize,
    /// What the rows are: layers, or a recurrent net's time steps.
    y_label: &'static str,
    /// rms of dL/dh by (step, layer).
    rms: BTreeMap<(u64, usize), f64>,
}

/// The panels, or why there are none.
fn grids(results: &ResultsDir) -> Result<Vec<Grid>, String> {
    let Some(depth) = deepest_probed_depth(results) else {
        return Err("no run has dL/dh rows in gradients.csv".into());
    };
    // A recurrent net's rows are its time steps: the trunk's h_t alone,
    // not the LSTM's cell states and the head after them.
    let time = crate::charts::through_time(results);
    let grids: Vec<Grid> = results
        .groups()
        .into_iter()
        .filter_map(|group| {
            let run = probed_run(results, &group, depth)?;
            let mut rms = BTreeMap::new();
            let mut steps = BTreeSet::new();
            let mut layers = 0;
            let rows = run.gradients.iter().flatten();
            for g in rows.filter(|g| g.is_output() && (!time || g.trunk)) {
                steps.insert(g.step);
                layers = layers.max(g.layer + 1);
                if let Some(v) = g.rms {
                    rms.insert((g.step, g.layer), v);
                }
            }
            Some(Grid {
                title: format!(
                    "{group}, {} {depth}, seed {}",
                    if time { "length" } else { "depth" },
                    run.summary.seed
                ),
                steps: steps.into_iter().collect(),
                layers,
                y_label: if time {
                    "time step (0 = first)"
                } else {
                    "layer (0 = input side)"
                },
                rms,
            })
        })
        .collect();
    if grids.is_empty() {
        return Err(format!("no group has a depth-{depth} run with dL/dh rows"));
    }
    Ok(grids)
}

/// Writes `plots_dir/gradient_heatmap.png` and `.svg`.
pub fn gradient_heatmap(results: &ResultsDir, plots_dir: &Path) -> Result<Rendered, PlotError> {
    ensure_font()?;
    fs::create_dir_all(plots_dir).map_err(|source| PlotError::Io {
        path: plots_dir.to_path_buf(),
        source,
    })?;
    let style = results.style;
    let grids = grids(results);
    let has_data = grids
        .as_ref()
        .is_ok_and(|g| g.iter().any(|g| !g.rms.is_empty()));
    let n = grids.as_ref().map_or(1, Vec::len) as u32;
    let size = (
        style.width.unwrap_or((600 * n).max(800) + 170),
        style.height.unwrap_or(560),
    );
    let title = match results.config_str("/experiment") {
        Some(name) => format!("dL/dh of every layer at every probed step — {name}"),
        None => "dL/dh of every layer at every probed step".to_owned(),
    };
    let subtitle = format!(
        "{}colour: log10 rms of dL/dh per element; seed {}",
        match results.settings() {
            s if s.is_empty() => String::new(),
            s => format!("{s}; "),
        },
        seed_word(results)
    );
    let (png, svg) = write_png_and_svg!(plots_dir, GRADIENT_HEATMAP, size, |root| draw(
        &root, &title, &subtitle, &grids, &style
    ));
    Ok(Rendered {
        name: GRADIENT_HEATMAP,
        png,
        svg,
        has_data,
    })
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    subtitle: &str,
    grids: &Result<Vec<Grid>, String>,
    style: &Style,
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let body = draw_header(root, title, &[subtitle], style)?;
    let centre = i32::try_from(body.dim_in_pixel().0 / 2).unwrap_or(0);
    let grids = match grids {
        Ok(g) => g,
        Err(why) => {
            body.draw(&Text::new(
                format!("no data: {why}"),
                (centre, 60),
                (FONT, style.px(AXIS_DESC_SIZE))
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Center, VPos::Top)),
            ))
            .map_err(err)?;
            return Ok(());
        }
    };

    let (lo, hi) = colour_range(grids);
    let any_zero = grids.iter().any(|g| g.rms.values().any(|&v| v == 0.0));

    let bar_w = style.px_u32(170);
    let (panels, bar) = body.split_horizontally(body.dim_in_pixel().0.saturating_sub(bar_w));
    let areas = panels.split_evenly((1, grids.len().max(1)));
    let step_hi = grids
        .iter()
        .filter_map(|g| g.steps.last().copied())
        .max()
        .unwrap_or(1);
    for (area, grid) in areas.iter().zip(grids) {
        draw_grid(area, grid, step_hi, (lo, hi), style)?;
    }

    // The colour bar: decades labelled, the zero colour named below it.
    let decades = (hi - lo).round() as i32;
    let every = (decades / 8 + 1).max(1);
    let ticks: Vec<(f64, String)> = (0..=decades)
        .step_by(every as usize)
        .map(|k| (f64::from(k) / (hi - lo), format!("1e{}", lo as i32 + k)))
        .collect();
    ColourBar {
        top: 40,
        bottom: 110,
        title: "rms of dL/dh",
        ticks: &ticks,
        tick_marks: false,
        swatch: any_zero.then_some(Swatch {
            colour: ZERO,
            lines: &["exactly 0", "in float32"],
        }),
    }
    .draw(&bar, style)?;
    Ok(())
}

/// One colour scale over every panel: whole decades around the data, as
/// (lowest, highest) log10 rms; (0, 1) when nothing is positive and finite.
fn colour_range(grids: &[Grid]) -> (f64, f64) {
    let logs: Vec<f64> = grids
        .iter()
        .flat_map(|g| g.rms.values())
        .filter(|v| v.is_finite() && **v > 0.0)
        .map(|v| v.log10())
        .collect();
    let lo = logs.iter().copied().fold(f64::INFINITY, f64::min).floor();
    let hi = logs
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max)
        .ceil();
    if lo.is_finite() && hi.is_finite() {
        (lo, if hi > lo { hi } else { lo + 1.0 })
    } else {
        (0.0, 1.0)
    }
}

/// One panel: a cell per (probed step, layer), coloured on the shared scale
/// `(lo, hi)`; exact zeros in their own colour, off the scale.
fn draw_grid<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    grid: &Grid,
    step_hi: u64,
    (lo, hi): (f64, f64),
    style: &Style,
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let layers = grid.layers;
    let mut chart = ChartBuilder::on(area)
        .caption(grid.title.as_str(), (FONT, style.px(PANEL_TITLE_SIZE)))
        .margin(8)
        .margin_right(16)
        .x_label_area_size(style.px_u32(56))
        .y_label_area_size(style.px_u32(70))
        .build_cartesian_2d(
            0f64..(step_hi as f64 + 1.0),
            0f64..grid.layers.max(1) as f64,
        )
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("training step")
        .y_desc(grid.y_label)
        .x_label_formatter(&|v| format!("{v:.0}"))
        // A layer's cell spans [layer, layer + 1): label whole layers
        // that exist, at their cell's lower edge, and nothing else.
        .y_label_formatter(&|v| {
            if v.fract() == 0.0 && *v < layers as f64 {
                format!("{v:.0}")
            } else {
                String::new()
            }
        })
        .label_style((FONT, style.px(TICK_SIZE)))
        .axis_desc_style((FONT, style.px(AXIS_DESC_SIZE)))
        .draw()
        .map_err(err)?;
    // A cell spans from its step to the next probed one (the last: one
    // more step), so the picture has no gaps between probe steps.
    let mut cells = Vec::new();
    for (i, &step) in grid.steps.iter().enumerate() {
        let next = grid.steps.get(i + 1).copied().unwrap_or(step + 1);
        for layer in 0..grid.layers {
            let fill = match grid.rms.get(&(step, layer)) {
                Some(&0.0) => ZERO,
                Some(&v) if v.is_finite() && v > 0.0 => colour((v.log10() - lo) / (hi - lo)),
                _ => continue,
            };
            cells.push(Rectangle::new(
                [
                    (step as f64, layer as f64),
                    (next as f64, layer as f64 + 1.0),
                ],
                fill.filled(),
            ));
        }
    }
    chart.draw_series(cells).map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_colour_scale_runs_dark_to_light_and_zero_is_not_on_it() {
        let lightness =
            |c: RGBColor| u32::from(c.0) * 30 + u32::from(c.1) * 59 + u32::from(c.2) * 11;
        let ramp: Vec<u32> = (0..=20)
            .map(|i| lightness(colour(f64::from(i) / 20.0)))
            .collect();
        assert!(ramp.windows(2).all(|w| w[0] <= w[1]), "{ramp:?}");
        for i in 0..=100 {
            assert_ne!(colour(f64::from(i) / 100.0), ZERO);
        }
    }
}
