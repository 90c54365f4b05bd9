//! The loss-landscape charts (Li et al. 2018, "Visualizing the Loss
//! Landscape of Neural Nets"): plain deep nets have a chaotic surface,
//! their residual twins a smooth bowl.
//!
//! - [`loss_landscape`]: one panel per surface, side by side (wrapping
//!   after four like the other multi-panel charts), each a heatmap of
//!   log10 of the loss over (α, β) on ONE colour scale shared by all
//!   panels, with contour lines at ten evenly spaced levels of that scale
//!   (marching squares, [`contour_segments`]) and a red × at (0, 0), the
//!   trained weights.
//! - [`loss_slice`]: the 1-D slice along δ (β = 0), loss against α on a
//!   log axis, one line per surface; drawn by the crate's [`Figure`], so
//!   it has the same axes, legend placement and SVG hover layer as the
//!   other line charts.
//!
//! The surfaces come from `gradscope_format::landscape::Surface`; a loss
//! that is NaN, infinite, zero or negative has no place on a log scale and
//! leaves its cell grey.

use std::fs;
use std::path::Path;

use gradscope_format::landscape::Surface;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::axis::{Axis, Scale};
use crate::charts::categorical;
use crate::colour_bar::{colour, ColourBar, Swatch};
use crate::error::PlotError;
use crate::figure::{
    draw_header, drawable, ensure_font, row_grid, Figure, Layout, LegendEntry, Marker, Panel,
    Rendered, Series, Style, AXIS_DESC_SIZE, FONT, PANEL_TITLE_SIZE, TICK_SIZE,
};

/// Chart: log10 loss over the (α, β) plane, one panel per surface.
pub const LOSS_LANDSCAPE: &str = "loss_landscape";
/// Chart: loss along δ at β = 0, one line per surface.
pub const LOSS_SLICE: &str = "loss_slice";

/// One panel: its title (e.g. "plain, depth 56, seed 0") and its surface.
#[derive(Debug, Clone, PartialEq)]
pub struct LandscapePanel {
    pub title: String,
    pub surface: Surface,
}

const LABEL_ALPHA: &str = "α (direction δ)";
const LABEL_BETA: &str = "β (direction η)";

/// Contour levels per chart, evenly spaced inside the shared colour scale.
const LEVELS: usize = 10;
/// Most labels on the colour bar.
const MAX_BAR_TICKS: usize = 8;
/// Default size of one heatmap panel (the plot is about square once the
/// tick labels and the axis description have their room) and of the
/// colour bar beside them.
const PANEL_WIDTH: u32 = 480;
const ROW_HEIGHT: u32 = 470;
const HEADER_HEIGHT: u32 = 70;
const BAR_WIDTH: u32 = 150;
/// A cell whose loss cannot be placed on the scale.
const MISSING: RGBColor = RGBColor(215, 215, 215);
/// The trained weights' marker: a red that viridis does not have.
const CENTRE: RGBColor = RGBColor(220, 30, 60);

/// A panel's grid as log10 loss, `z[j * alphas.len() + i]`, NaN where the
/// loss is not finite and positive; `None` when the surface is not a grid
/// (no points, axes of the wrong length for its losses, a non-finite
/// coordinate), which is then drawn as "no data" rather than panicking.
fn log_grid(s: &Surface) -> Option<Vec<f64>> {
    let (n, m) = (s.alphas.len(), s.betas.len());
    let finite_axes = s.alphas.iter().chain(&s.betas).all(|v| v.is_finite());
    if n == 0 || m == 0 || s.loss.len() != n * m || !finite_axes {
        return None;
    }
    Some(
        s.loss
            .iter()
            .map(|&l| {
                if l.is_finite() && l > 0.0 {
                    l.log10()
                } else {
                    f64::NAN
                }
            })
            .collect(),
    )
}

/// The colour scale shared by every panel, in log10 of the loss: the
/// range of all finite cells rounded out to tenths of a decade (whole
/// decades would waste most of the colours on a surface that spans a
/// factor of three), at least a tenth wide.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ColourScale {
    lo: f64,
    hi: f64,
}

impl ColourScale {
    fn of(grids: &[Option<Vec<f64>>]) -> Option<ColourScale> {
        let finite = grids.iter().flatten().flatten().copied();
        let (min, max) = finite
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            });
        if !(min.is_finite() && max.is_finite()) {
            return None;
        }
        let lo = (min * 10.0).floor() / 10.0;
        let hi = (max * 10.0).ceil() / 10.0;
        Some(ColourScale {
            lo,
            hi: hi.max(lo + 0.1),
        })
    }

    /// Where `v` (log10 loss) is on the scale, 0 at the bottom.
    fn t(&self, v: f64) -> f64 {
        (v - self.lo) / (self.hi - self.lo)
    }

    /// The contour levels: [`LEVELS`] evenly spaced strictly inside the
    /// scale (its ends would trace only the single lowest and highest
    /// cells).
    fn levels(&self) -> Vec<f64> {
        (1..=LEVELS)
            .map(|k| self.lo + (self.hi - self.lo) * k as f64 / (LEVELS + 1) as f64)
            .collect()
    }
}

/// A contour line's colour at scale position `t`: white over the dark end
/// of viridis, black over the light end, so every level stays visible.
fn line_colour(t: f64) -> RGBColor {
    let c = colour(t);
    // Rec. 601 luma, 0..=255.
    let luma = 0.299 * f64::from(c.0) + 0.587 * f64::from(c.1) + 0.114 * f64::from(c.2);
    if luma < 128.0 {
        WHITE
    } else {
        BLACK
    }
}

/// The segments of the level set `z = level` of a grid, by marching
/// squares: `z[j * xs.len() + i]` is the value at (`xs[i]`, `ys[j]`).
///
/// Each cell of four neighbouring points is classified by which corners
/// are at or above the level; on every edge whose two corners differ the
/// crossing is placed by linear interpolation, and the crossings are
/// joined in pairs. Two diagonally opposite corners above and the other
/// two below (the saddle cases) are told apart by the cell centre, the
/// mean of the four corners: if it is on the same side as the first pair,
/// those two corners are joined through the centre and the line cuts off
/// the other two. A cell with a NaN corner has no segments: where the
/// surface is unknown no line is invented.
///
/// An edge's crossing is computed from its corners in grid order whichever
/// cell asks, so neighbouring cells share their endpoints exactly and a
/// contour that closes inside the grid is a closed chain of segments.
pub(crate) fn contour_segments(
    xs: &[f64],
    ys: &[f64],
    z: &[f64],
    level: f64,
) -> Vec<[(f64, f64); 2]> {
    let (n, m) = (xs.len(), ys.len());
    let mut out = Vec::new();
    if n < 2 || m < 2 || z.len() != n * m || !level.is_finite() {
        return out;
    }
    let at = |i: usize, j: usize| z[j * n + i];
    // The crossing on the edge from grid point a to grid point b (b one
    // step right of or above a), if the level separates them.
    let cross = |a: (usize, usize), b: (usize, usize)| -> Option<(f64, f64)> {
        let (za, zb) = (at(a.0, a.1), at(b.0, b.1));
        if (za >= level) == (zb >= level) {
            return None;
        }
        // za and zb are on opposite sides, so they differ and 0 < t ≤ 1.
        let t = (level - za) / (zb - za);
        let (xa, ya) = (xs[a.0], ys[a.1]);
        let (xb, yb) = (xs[b.0], ys[b.1]);
        Some((xa + t * (xb - xa), ya + t * (yb - ya)))
    };
    for j in 0..m - 1 {
        for i in 0..n - 1 {
            // Corners counter-clockwise from the bottom left.
            let corners = [at(i, j), at(i + 1, j), at(i + 1, j + 1), at(i, j + 1)];
            if corners.iter().any(|v| v.is_nan()) {
                continue;
            }
            // Edges: bottom, right, top, left, each between grid points in
            // grid order (see above).
            let edges = [
                cross((i, j), (i + 1, j)),
                cross((i + 1, j), (i + 1, j + 1)),
                cross((i, j + 1), (i + 1, j + 1)),
                cross((i, j), (i, j + 1)),
            ];
            let crossed: Vec<(f64, f64)> = edges.iter().flatten().copied().collect();
            match crossed.len() {
                2 => out.push([crossed[0], crossed[1]]),
                4 => {
                    let [b, r, t, l] = edges.map(|e| e.unwrap_or_default());
                    let centre = corners.iter().sum::<f64>() / 4.0;
                    if (centre >= level) == (corners[0] >= level) {
                        // Bottom-left and top-right joined through the
                        // centre: cut off bottom-right and top-left.
                        out.push([b, r]);
                        out.push([t, l]);
                    } else {
                        // Cut off bottom-left and top-right.
                        out.push([l, b]);
                        out.push([r, t]);
                    }
                }
                // 0: the level misses the cell. An odd count cannot occur:
                // going round the cell, the side changes an even number of
                // times.
                _ => {}
            }
        }
    }
    out
}

/// The edges of the cells centred on `v`'s points: halfway between
/// neighbours, and half a step beyond the ends.
fn cell_edges(v: &[f64]) -> Vec<f64> {
    match v {
        [] => Vec::new(),
        [only] => vec![only - 0.5, only + 0.5],
        _ => {
            let n = v.len();
            let mut e = Vec::with_capacity(n + 1);
            e.push(v[0] - (v[1] - v[0]) / 2.0);
            e.extend(v.windows(2).map(|w| (w[0] + w[1]) / 2.0));
            e.push(v[n - 1] + (v[n - 1] - v[n - 2]) / 2.0);
            e
        }
    }
}

/// A loss value as a colour-bar label: plain decimals from 0.001 to 9999,
/// else `3e-5` style.
fn loss_label(mantissa: f64, exponent: i32) -> String {
    let value = mantissa * 10f64.powi(exponent);
    if (-3..=3).contains(&exponent) {
        let fractional = usize::from(mantissa.fract() != 0.0);
        let decimals = usize::try_from(-exponent).unwrap_or(0) + fractional;
        format!("{value:.decimals$}")
    } else {
        let m = format!("{mantissa:.1}");
        let m = m.trim_end_matches('0').trim_end_matches('.');
        format!("{m}e{exponent}")
    }
}

/// A loss value to three significant digits (the colour bar's ends, when
/// no round value falls inside a very narrow scale).
fn loss_value_label(log: f64) -> String {
    let v = 10f64.powf(log);
    if (1e-3..1e4).contains(&v) {
        let decimals = usize::try_from(2 - log.floor() as i64).unwrap_or(0);
        let s = format!("{v:.decimals$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s
        }
    } else {
        format!("{v:.2e}")
    }
}

/// The colour bar's labels, (log10 loss, text), ascending: round loss
/// values (1, 2, 3, 5 times a power of ten, or finer or coarser as the
/// scale's span asks), as many as fit in [`MAX_BAR_TICKS`].
fn bar_ticks(lo: f64, hi: f64) -> Vec<(f64, String)> {
    const SETS: [&[f64]; 5] = [
        &[1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0],
        &[1.0, 2.0, 3.0, 5.0],
        &[1.0, 2.0, 5.0],
        &[1.0, 3.0],
        &[1.0],
    ];
    // A hair of slack so that an end at exactly log10(0.3) keeps its label.
    let inside = |v: f64| v >= lo - 1e-9 && v <= hi + 1e-9;
    let (first, last) = (lo.floor() as i32, hi.ceil() as i32);
    for set in SETS {
        let ticks: Vec<(f64, String)> = (first..=last)
            .flat_map(|k| set.iter().map(move |&m| (k, m)))
            .map(|(k, m)| (f64::from(k) + m.log10(), loss_label(m, k)))
            .filter(|&(v, _)| inside(v))
            .collect();
        if ticks.len() > MAX_BAR_TICKS {
            continue;
        }
        if ticks.len() >= 2 {
            return ticks;
        }
        // A scale too narrow for two round values even at the finest
        // step: label its ends instead.
        return vec![(lo, loss_value_label(lo)), (hi, loss_value_label(hi))];
    }
    // Many decades: every k-th decade.
    let every = [2, 5, 10, 20, 50, 100]
        .into_iter()
        .find(|&k| (first..=last).filter(|d| d % k == 0).count() <= MAX_BAR_TICKS)
        .unwrap_or(200);
    (first..=last)
        .filter(|d| d % every == 0)
        .map(|d| (f64::from(d), loss_label(1.0, d)))
        .filter(|&(v, _)| inside(v))
        .collect()
}

/// A linear axis tick: at most two decimals, no trailing zeros, no "-0".
fn coord_label(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

/// What the heatmap chart draws once the input is known to have data.
struct Prepared<'a> {
    panels: &'a [LandscapePanel],
    /// Each panel's [`log_grid`].
    grids: Vec<Option<Vec<f64>>>,
    scale: ColourScale,
}

fn prepare(panels: &[LandscapePanel]) -> Result<Prepared<'_>, String> {
    if panels.is_empty() {
        return Err("no loss-landscape surfaces were given".to_owned());
    }
    let grids: Vec<Option<Vec<f64>>> = panels.iter().map(|p| log_grid(&p.surface)).collect();
    let Some(scale) = ColourScale::of(&grids) else {
        return Err("no surface has a finite, positive loss".to_owned());
    };
    Ok(Prepared {
        panels,
        grids,
        scale,
    })
}

/// Writes `plots_dir/loss_landscape.png` and `.svg`.
///
/// One heatmap of log10 loss per panel, side by side (more than four wrap
/// into rows), on one colour scale for all of them; contour lines at ten
/// evenly spaced levels of that scale; a red × at (0, 0). With no panels,
/// or none with a finite positive loss, the files say "no data" and
/// [`Rendered::has_data`] is false.
pub fn loss_landscape(
    panels: &[LandscapePanel],
    title: &str,
    subtitle: &str,
    plots_dir: &Path,
    style: Style,
) -> Result<Rendered, PlotError> {
    ensure_font()?;
    fs::create_dir_all(plots_dir).map_err(|source| PlotError::Io {
        path: plots_dir.to_path_buf(),
        source,
    })?;
    let prepared = prepare(panels);
    let has_data = prepared.is_ok();
    let (rows, cols) = row_grid(panels.len());
    let (rows, cols) = (
        u32::try_from(rows).unwrap_or(1),
        u32::try_from(cols).unwrap_or(1),
    );
    let size = (
        style
            .width
            .unwrap_or((PANEL_WIDTH * cols + BAR_WIDTH).max(800)),
        style.height.unwrap_or(HEADER_HEIGHT + ROW_HEIGHT * rows),
    );
    let (png, svg) = write_png_and_svg!(plots_dir, LOSS_LANDSCAPE, size, |root| draw(
        &root, title, subtitle, &prepared, &style
    ));
    Ok(Rendered {
        name: LOSS_LANDSCAPE,
        png,
        svg,
        has_data,
    })
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    subtitle: &str,
    prepared: &Result<Prepared<'_>, String>,
    style: &Style,
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let notes: Vec<&str> = subtitle.lines().collect();
    let body = draw_header(root, title, &notes, style)?;
    let prepared = match prepared {
        Ok(p) => p,
        Err(why) => {
            let centre = i32::try_from(body.dim_in_pixel().0 / 2).unwrap_or(0);
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
    let scale = prepared.scale;
    let levels = scale.levels();

    let bar_w = style.px_u32(BAR_WIDTH);
    let (panels, bar) = body.split_horizontally(body.dim_in_pixel().0.saturating_sub(bar_w));
    let areas = panels.split_evenly(row_grid(prepared.panels.len()));
    let mut any_missing = false;
    for ((area, panel), grid) in areas.iter().zip(prepared.panels).zip(&prepared.grids) {
        any_missing |= draw_panel(area, panel, grid.as_deref(), scale, &levels, style)?;
    }
    draw_bar(&bar, scale, &levels, any_missing, style)
}

/// One heatmap with its contours and centre marker; returns whether any
/// cell was left grey.
fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &LandscapePanel,
    grid: Option<&[f64]>,
    scale: ColourScale,
    levels: &[f64],
    style: &Style,
) -> Result<bool, String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let s = &panel.surface;
    // Each grid point is drawn as the cell around it: the colour is the
    // measured value, not a smoothed one.
    let (xe, ye) = (cell_edges(&s.alphas), cell_edges(&s.betas));
    let extent = |e: &[f64]| {
        let lo = e.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = e.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if grid.is_some() && hi > lo {
            (lo, hi)
        } else {
            (-1.0, 1.0)
        }
    };
    let (xr, yr) = (extent(&xe), extent(&ye));
    let mut chart = ChartBuilder::on(area)
        .caption(panel.title.as_str(), (FONT, style.px(PANEL_TITLE_SIZE)))
        .margin(8)
        .margin_right(16)
        .x_label_area_size(style.px_u32(56))
        .y_label_area_size(style.px_u32(70))
        .build_cartesian_2d(xr.0..xr.1, yr.0..yr.1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(LABEL_ALPHA)
        .y_desc(LABEL_BETA)
        .x_label_formatter(&|v| coord_label(*v))
        .y_label_formatter(&|v| coord_label(*v))
        .label_style((FONT, style.px(TICK_SIZE)))
        .axis_desc_style((FONT, style.px(AXIS_DESC_SIZE)))
        .draw()
        .map_err(err)?;

    let no_data = |why: &str| {
        let mid = ((xr.0 + xr.1) / 2.0, (yr.0 + yr.1) / 2.0);
        Text::new(
            format!("no data: {why}"),
            mid,
            (FONT, style.px(TICK_SIZE))
                .into_font()
                .color(&RGBColor(90, 90, 90))
                .pos(Pos::new(HPos::Center, VPos::Center)),
        )
    };
    let Some(z) = grid else {
        chart
            .draw_series([no_data("not a grid of losses")])
            .map_err(err)?;
        return Ok(false);
    };
    let n = s.alphas.len();
    let mut missing = false;
    let cells: Vec<_> = z
        .iter()
        .enumerate()
        .map(|(k, &v)| {
            let (i, j) = (k % n, k / n);
            let fill = if v.is_nan() {
                missing = true;
                MISSING
            } else {
                colour(scale.t(v))
            };
            Rectangle::new([(xe[i], ye[j]), (xe[i + 1], ye[j + 1])], fill.filled())
        })
        .collect();
    chart.draw_series(cells).map_err(err)?;
    if z.iter().all(|v| v.is_nan()) {
        chart
            .draw_series([no_data("no finite, positive loss")])
            .map_err(err)?;
        return Ok(true);
    }

    for &level in levels {
        let line = ShapeStyle::from(line_colour(scale.t(level))).stroke_width(1);
        let segments = contour_segments(&s.alphas, &s.betas, z, level);
        chart
            .draw_series(
                segments
                    .into_iter()
                    .map(|[a, b]| PathElement::new(vec![a, b], line)),
            )
            .map_err(err)?;
    }

    // The trained weights, with a white halo so that the cross reads on
    // any colour.
    let inside = |r: (f64, f64)| r.0 <= 0.0 && 0.0 <= r.1;
    if inside(xr) && inside(yr) {
        let size = style.px_u32(7) as i32;
        chart
            .draw_series([
                Cross::new((0.0, 0.0), size, WHITE.stroke_width(5)),
                Cross::new((0.0, 0.0), size, CENTRE.stroke_width(2)),
            ])
            .map_err(err)?;
    }
    Ok(missing)
}

/// The shared colour bar: loss values labelled, each contour level marked
/// across it in its line colour, the grey of a missing cell named below.
fn draw_bar<DB: DrawingBackend>(
    bar: &DrawingArea<DB, Shift>,
    scale: ColourScale,
    levels: &[f64],
    any_missing: bool,
    style: &Style,
) -> Result<(), String> {
    let ticks: Vec<(f64, String)> = bar_ticks(scale.lo, scale.hi)
        .into_iter()
        .map(|(v, label)| (scale.t(v), label))
        .collect();
    let ramp = ColourBar {
        top: 48,
        bottom: 90,
        title: "loss",
        ticks: &ticks,
        tick_marks: true,
        swatch: any_missing.then_some(Swatch {
            colour: MISSING,
            lines: &["not finite"],
        }),
    }
    .draw(bar, style)?;
    // Inside the frame, which stays whole.
    for &level in levels {
        let t = scale.t(level);
        let y = ramp.y(t);
        bar.draw(&PathElement::new(
            vec![(ramp.x0 + 1, y), (ramp.x0 + ramp.width - 1, y)],
            ShapeStyle::from(line_colour(t)).stroke_width(1),
        ))
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Writes `plots_dir/loss_slice.png` and `.svg`.
///
/// The loss along δ on the grid row nearest β = 0
/// ([`Surface::slice_alpha`]), one line per panel, on a log y axis, with
/// the panels' titles as the legend. With no panels, or no finite positive
/// loss on any slice, the files say "no data" and [`Rendered::has_data`]
/// is false.
pub fn loss_slice(
    panels: &[LandscapePanel],
    title: &str,
    subtitle: &str,
    plots_dir: &Path,
    style: Style,
) -> Result<Rendered, PlotError> {
    slice_figure(panels, title, subtitle).write_with(plots_dir, &style)
}

fn slice_figure(panels: &[LandscapePanel], title: &str, subtitle: &str) -> Figure {
    let (x, y) = (
        Axis::new(LABEL_ALPHA, Scale::Linear),
        Axis::new("loss, log scale", Scale::Log),
    );
    let mut panel = Panel::new("along δ, at β = 0");
    for (i, p) in panels.iter().enumerate() {
        // A malformed surface (losses not matching its axes) would make
        // slice_alpha index out of bounds; it has no slice.
        let points = if log_grid(&p.surface).is_some() {
            p.surface.slice_alpha()
        } else {
            Vec::new()
        };
        let color = categorical(i);
        let shown = drawable(&points, x.scale, y.scale);
        // Markers show where the loss was measured, while they are few
        // enough not to blur into the line.
        let marker = (points.len() <= 41).then_some(Marker::Circle);
        panel.legend.push(LegendEntry {
            label: if shown {
                p.title.clone()
            } else {
                format!("{} (no finite loss)", p.title)
            },
            color,
            dashed: false,
            // The entry stays, so that every surface is accounted for.
            marker: if shown { marker } else { Some(Marker::Absent) },
        });
        if shown {
            panel.series.push(Series {
                diverged: false,
                points,
                color,
                dashed: false,
                marker,
            });
        }
    }
    panel.empty_reason = Some(if panels.is_empty() {
        "no loss-landscape surfaces were given".to_owned()
    } else {
        "no surface has a finite, positive loss at β = 0".to_owned()
    });
    Figure {
        name: LOSS_SLICE,
        title: title.to_owned(),
        subtitle: (!subtitle.is_empty()).then(|| subtitle.to_owned()),
        x,
        y,
        panels: vec![panel],
        layout: Layout::Row,
    }
}

/// Draws both landscape charts of a results folder into its `plots/`
/// from `landscape_summary.csv` and each run's `runs/RUN/landscape.csv`
/// (written by `gradscope landscape`): one panel per run, in the summary's
/// order (by depth, plain before residual). Without a summary, nothing is
/// drawn (`Ok` of no charts).
pub fn render_landscape(results_dir: &Path, style: Style) -> Result<Vec<Rendered>, PlotError> {
    use gradscope_format::files::{LANDSCAPE_SUMMARY_CSV, PLOTS_DIR, RUNS_DIR, RUN_JSON};
    use gradscope_format::landscape::{LandscapeRow, LandscapeSummaryRow, Weights};
    let Some(all) =
        crate::read::read_rows::<LandscapeSummaryRow>(&results_dir.join(LANDSCAPE_SUMMARY_CSV))?
    else {
        return Ok(Vec::new());
    };
    // One panel per net: its first grid around the trained weights (the
    // lowest training seed and direction seed); the report reads them all.
    let mut summary: Vec<LandscapeSummaryRow> = Vec::new();
    for r in all.iter().filter(|r| r.weights == Weights::Trained) {
        let first =
            |o: &LandscapeSummaryRow| (o.seed, o.direction_seed) < (r.seed, r.direction_seed);
        let same_net = |o: &&LandscapeSummaryRow| o.variant == r.variant && o.depth == r.depth;
        if !all
            .iter()
            .filter(|o| o.weights == Weights::Trained)
            .filter(same_net)
            .any(first)
        {
            summary.push(r.clone());
        }
    }
    let mut panels = Vec::new();
    let mut notes = Vec::new();
    for (i, r) in summary.iter().enumerate() {
        // A name read from a file is never a path (`../x`, `/x`).
        if !gradscope_format::names::is_folder_name(&r.run) {
            return Err(PlotError::BadRunName {
                path: results_dir.join(LANDSCAPE_SUMMARY_CSV),
                line: i as u64 + 2,
                run: r.run.clone(),
            });
        }
        let path = results_dir.join(RUNS_DIR).join(&r.run).join(r.file());
        let rows: Vec<LandscapeRow> = crate::read::read_rows(&path)?.unwrap_or_default();
        match Surface::from_rows(&rows) {
            Ok(surface) => panels.push(LandscapePanel {
                title: format!("{}, depth {}, seed {}", r.variant, r.depth, r.seed),
                surface,
            }),
            Err(why) => notes.push(format!("{}: {why}", path.display())),
        }
    }
    if let Some(note) = notes.first() {
        return Err(PlotError::Io {
            path: results_dir.join(LANDSCAPE_SUMMARY_CSV),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, note.clone()),
        });
    }
    let first = summary.first();
    // The experiment's name, from the first run's run.json (read alone:
    // loading the whole folder would read every per-step CSV).
    let experiment = first.and_then(|r| {
        let json = results_dir.join(RUNS_DIR).join(&r.run).join(RUN_JSON);
        let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(json).ok()?).ok()?;
        v.get("experiment")?.as_str().map(str::to_owned)
    });
    let title = match experiment {
        Some(name) => format!("Training loss around the trained weights — {name}"),
        None => "Training loss around the trained weights".to_owned(),
    };
    let subtitle = match first {
        Some(r) => format!(
            "two random filter-normalized directions (seed {}), {}×{} grid over ±{}, loss on {} training images, eval mode",
            r.direction_seed, r.grid, r.grid, r.span, r.samples
        ),
        None => String::new(),
    };
    let plots = results_dir.join(PLOTS_DIR);
    Ok(vec![
        loss_landscape(&panels, &title, &subtitle, &plots, style)?,
        loss_slice(&panels, &title, &subtitle, &plots, style)?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradscope_format::landscape::grid_axis;

    /// The marching-squares input for `f` on `n` points per side over
    /// [−1, 1].
    fn sampled(n: usize, f: impl Fn(f64, f64) -> f64) -> (Vec<f64>, Vec<f64>) {
        let axis = grid_axis(n, 1.0);
        let z = axis
            .iter()
            .flat_map(|&b| axis.iter().map(move |&a| (a, b)))
            .map(|(a, b)| f(a, b))
            .collect();
        (axis, z)
    }

    #[test]
    fn contours_of_a_radial_function_are_circles() {
        // The level set α² + β² = r² is the circle of radius r. On an edge
        // (β fixed) the linear interpolation of α² lies above the parabola
        // by at most h²/4 (h the grid step), so a crossing found at
        // interpolated value r² has true value in [r² − h²/4, r²]: its
        // radius is in [r − h²/(4r), r].
        let n = 41;
        let (axis, z) = sampled(n, |a, b| a * a + b * b);
        let h = axis[1] - axis[0];
        for r in [0.3, 0.6, 0.9] {
            let segments = contour_segments(&axis, &axis, &z, r * r);
            // A circle through a grid of step h crosses about 2πr/h·√2
            // cells; at least its circumference over h of them.
            assert!(
                segments.len() as f64 >= 2.0 * std::f64::consts::PI * r / h,
                "r={r}: {} segments",
                segments.len()
            );
            let tol = h * h / (4.0 * r) + 1e-12;
            for &(x, y) in segments.iter().flatten() {
                let radius = x.hypot(y);
                assert!(
                    radius <= r + 1e-12 && radius >= r - tol,
                    "r={r}: endpoint ({x}, {y}) at radius {radius}"
                );
            }
            // The circle lies inside the grid, so the segments form a
            // closed curve: every endpoint is shared by exactly two.
            let mut ends: Vec<(u64, u64)> = segments
                .iter()
                .flatten()
                .map(|&(x, y)| (x.to_bits(), y.to_bits()))
                .collect();
            ends.sort_unstable();
            for run in ends.chunk_by(|a, b| a == b) {
                assert_eq!(run.len(), 2, "r={r}: an endpoint used {} times", run.len());
            }
        }
    }

    #[test]
    fn no_contour_outside_the_data_or_through_a_nan() {
        let (axis, z) = sampled(9, |a, b| a * a + b * b);
        // The values span 0..=2.
        assert!(contour_segments(&axis, &axis, &z, 2.5).is_empty());
        assert!(contour_segments(&axis, &axis, &z, -0.1).is_empty());
        // One cell whose corners straddle 0.5, but one corner is unknown.
        let xs = [0.0, 1.0];
        assert!(contour_segments(&xs, &xs, &[0.0, 1.0, f64::NAN, 1.0], 0.5).is_empty());
        // The same cell with that corner known has its segment.
        assert_eq!(
            contour_segments(&xs, &xs, &[0.0, 1.0, 0.0, 1.0], 0.5),
            vec![[(0.5, 0.0), (0.5, 1.0)]]
        );
        // A grid of the wrong size draws nothing rather than panicking.
        assert!(contour_segments(&xs, &xs, &[0.0, 1.0, 0.0], 0.5).is_empty());
    }

    #[test]
    fn a_saddle_is_resolved_by_the_cell_centre() {
        let xs = [0.0, 1.0];
        // High at bottom-left and top-right, low at the other two.
        let z = [1.0, 0.0, 0.0, 1.0];
        // Centre 0.5 is above 0.4: the high corners join through it, and
        // the lines cut off the low corners (1, 0) and (0, 1).
        let cut_low = contour_segments(&xs, &xs, &z, 0.4);
        assert_eq!(cut_low.len(), 2);
        for seg in &cut_low {
            let near = |c: (f64, f64)| seg.iter().all(|p| (p.0 - c.0).hypot(p.1 - c.1) < 0.5);
            assert!(near((1.0, 0.0)) || near((0.0, 1.0)), "{seg:?}");
        }
        // Centre 0.5 is below 0.6: the low corners join, the lines cut off
        // the high corners (0, 0) and (1, 1).
        let cut_high = contour_segments(&xs, &xs, &z, 0.6);
        assert_eq!(cut_high.len(), 2);
        for seg in &cut_high {
            let near = |c: (f64, f64)| seg.iter().all(|p| (p.0 - c.0).hypot(p.1 - c.1) < 0.5);
            assert!(near((0.0, 0.0)) || near((1.0, 1.0)), "{seg:?}");
        }
    }

    #[test]
    fn the_colour_bar_labels_round_losses_inside_the_scale() {
        for (lo, hi) in [
            (-1.0, 0.5),
            (-0.3, -0.2),
            (0.2, 0.3),
            (0.0, 0.1),
            (-2.0, 5.0),
            (-9.0, 12.0),
            (-1.3, 0.7),
        ] {
            let ticks = bar_ticks(lo, hi);
            assert!(
                (2..=MAX_BAR_TICKS).contains(&ticks.len()),
                "{lo}..{hi}: {ticks:?}"
            );
            assert!(ticks.windows(2).all(|w| w[0].0 < w[1].0), "{ticks:?}");
            assert!(ticks.iter().all(|t| t.0 >= lo - 1e-9 && t.0 <= hi + 1e-9));
            // Each label says the loss at its place.
            for (v, label) in &ticks {
                let said: f64 = label.parse().unwrap();
                assert!((said.log10() - v).abs() < 0.01, "{label} at {v}");
            }
        }
        let labels: Vec<String> = bar_ticks(-1.0, 0.5).into_iter().map(|t| t.1).collect();
        assert_eq!(labels, ["0.1", "0.2", "0.3", "0.5", "1", "2", "3"]);
    }

    fn panels() -> Vec<LandscapePanel> {
        vec![
            LandscapePanel {
                title: "residual (bowl)".to_owned(),
                surface: Surface::of(9, 1.0, |a, b| 0.1 + a * a + b * b),
            },
            LandscapePanel {
                title: "plain (sines)".to_owned(),
                surface: Surface::of(9, 1.0, |a, b| {
                    10f64.powf(0.5 + (4.0 * a).sin() * (4.0 * b).sin())
                }),
            },
        ]
    }

    /// The chart's two files exist and are not empty, and nothing else
    /// (no temporary file) is left in the folder.
    fn written(r: &Rendered, dir: &Path, name: &str) {
        assert_eq!(r.name, name);
        assert_eq!(r.png, dir.join(format!("{name}.png")));
        assert_eq!(r.svg, dir.join(format!("{name}.svg")));
        for f in [&r.png, &r.svg] {
            assert!(
                fs::metadata(f).unwrap().len() > 0,
                "{} is empty",
                f.display()
            );
        }
        let png = fs::read(&r.png).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let svg = fs::read_to_string(&r.svg).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    }

    fn only_charts(dir: &Path) {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "loss_landscape.png",
                "loss_landscape.svg",
                "loss_slice.png",
                "loss_slice.svg"
            ]
        );
    }

    #[test]
    fn both_charts_draw_two_surfaces() {
        let dir = tempfile::tempdir().unwrap();
        let panels = panels();
        let r = loss_landscape(
            &panels,
            "Loss landscape",
            "log10 loss",
            dir.path(),
            Style::default(),
        )
        .unwrap();
        written(&r, dir.path(), LOSS_LANDSCAPE);
        assert!(r.has_data);
        let svg = fs::read_to_string(&r.svg).unwrap();
        for text in [
            "residual (bowl)",
            "plain (sines)",
            "loss",
            "α (direction δ)",
        ] {
            assert!(svg.contains(text), "the SVG lacks {text:?}");
        }
        let r = loss_slice(&panels, "Loss along δ", "", dir.path(), Style::default()).unwrap();
        written(&r, dir.path(), LOSS_SLICE);
        assert!(r.has_data);
        let svg = fs::read_to_string(&r.svg).unwrap();
        assert!(svg.contains("residual (bowl)") && svg.contains("gs-hover"));
        only_charts(dir.path());
    }

    #[test]
    fn no_surfaces_still_make_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let r = loss_landscape(&[], "Loss landscape", "", dir.path(), Style::default()).unwrap();
        written(&r, dir.path(), LOSS_LANDSCAPE);
        assert!(!r.has_data);
        assert!(fs::read_to_string(&r.svg).unwrap().contains("no data"));
        let r = loss_slice(&[], "Loss along δ", "", dir.path(), Style::default()).unwrap();
        written(&r, dir.path(), LOSS_SLICE);
        assert!(!r.has_data);
        assert!(fs::read_to_string(&r.svg).unwrap().contains("no data"));
        only_charts(dir.path());
    }

    #[test]
    fn surfaces_without_a_finite_loss_have_no_data() {
        let dir = tempfile::tempdir().unwrap();
        let nan = LandscapePanel {
            title: "diverged".to_owned(),
            surface: Surface::of(5, 1.0, |_, _| f64::NAN),
        };
        // Losses that do not match the axes: not a grid, not a panic.
        let broken = LandscapePanel {
            title: "broken".to_owned(),
            surface: Surface {
                alphas: vec![0.0, 1.0],
                betas: vec![0.0, 1.0],
                loss: vec![1.0],
            },
        };
        let both = [nan, broken];
        let r = loss_landscape(&both, "t", "s", dir.path(), Style::default()).unwrap();
        assert!(!r.has_data);
        let r = loss_slice(&both, "t", "s", dir.path(), Style::default()).unwrap();
        assert!(!r.has_data);
        only_charts(dir.path());
    }

    #[test]
    fn more_than_four_surfaces_wrap_and_share_one_scale() {
        let dir = tempfile::tempdir().unwrap();
        let mut many = panels();
        many.extend(panels());
        many.push(LandscapePanel {
            title: "partly diverged".to_owned(),
            surface: Surface::of(7, 0.5, |a, _| if a > 0.3 { f64::INFINITY } else { 2.0 }),
        });
        let r = loss_landscape(&many, "t", "s", dir.path(), Style::default()).unwrap();
        assert!(r.has_data);
        let grids: Vec<_> = many.iter().map(|p| log_grid(&p.surface)).collect();
        let scale = ColourScale::of(&grids).unwrap();
        // The bowl's lowest loss is 0.1 (log −1). On the 9-point grid the
        // sines peak at 4α = 4β = ±2: log loss 0.5 + sin²(2) ≈ 1.33,
        // rounded out to the next tenth of a decade.
        assert_eq!(scale.lo, -1.0);
        assert_eq!(scale.hi, 1.4, "{scale:?}");
        assert_eq!(scale.levels().len(), LEVELS);
        assert!(scale.levels().iter().all(|&l| l > scale.lo && l < scale.hi));
    }
}
