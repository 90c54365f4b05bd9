//! Where a [`Figure`]'s panels go and which y range each gets.
//!
//! Panels form a grid of at most three columns ([`grid`]): a chart of
//! eight panels in one row is too narrow to read once a browser scales it
//! to its window, and a comparison of three folders must keep each
//! folder's plain/residual pair on one row. Each panel's cell holds its
//! plot and, to its right, a legend strip as wide as the widest legend of
//! the figure ([`legend::strip_width`]), so that no legend covers data.
//!
//! The y range is shared unless [`YScale`] says otherwise; a diverged run
//! never sets a shared range (its values are left out of it, and where
//! they lie outside it its line breaks), so that one run blown up to 10⁵
//! does not flatten every other line of the chart.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::axis::{axis_extent, Scale};

use super::legend;
use super::panel::draw_panel;
use super::{
    Figure, HoverPoint, Layout, Panel, Style, YScale, FONT, GREY, SUBTITLE_SIZE, TITLE_SIZE,
    ZERO_NOTE,
};

/// Width of one panel's plot (its legend strip comes on top).
const PANEL_WIDTH: u32 = 600;
const MIN_WIDTH: u32 = 800;
/// Height of a figure with one row of panels.
const HEIGHT: u32 = 500;
/// Height added per further row of panels.
const GRID_ROW_HEIGHT: u32 = 420;
/// A stacked figure: the width of its plots, and the height added per
/// stacked panel.
const COLUMN_WIDTH: u32 = 900;
const STACKED_PANEL_HEIGHT: u32 = 400;
/// Most panels side by side: at 600 px each plus a legend, three fill a
/// wide screen; a fourth makes every tick label too small once the page
/// scales the chart to a 1400 px window.
pub(crate) const MAX_COLUMNS: usize = 3;
/// Auto picks per-panel y ranges on a log axis when the shared range spans
/// at least this many decades more than some panel's own range...
const AUTO_EXTRA_DECADES: f64 = 8.0;
/// ...and that panel's range is under this share of the shared one.
const AUTO_SHARE: f64 = 0.25;

/// Rows and columns for `n` panels laid out as a row: one row up to
/// [`MAX_COLUMNS`], then as few rows as that allows, filled evenly
/// (4 panels: 2 × 2; 6: 2 × 3; 5: 2 × 3).
pub(crate) fn row_grid(n: usize) -> (usize, usize) {
    let n = n.max(1);
    let rows = n.div_ceil(MAX_COLUMNS);
    (rows, n.div_ceil(rows))
}

/// Rows and columns of a figure's panels.
pub(crate) fn grid(fig: &Figure) -> (usize, usize) {
    let n = fig.panels.len().max(1);
    match fig.layout {
        Layout::Row => row_grid(n),
        Layout::Column => (n, 1),
        Layout::Grid { cols } if (1..=MAX_COLUMNS).contains(&cols) => (n.div_ceil(cols), cols),
        Layout::Grid { .. } => row_grid(n),
    }
}

/// The figure's size in pixels: the style's, else from the grid, each
/// column as wide as a plot plus the legend strip. Above font scale 1 the
/// default height also grows by what the larger header, panel titles and
/// x axis labels take, so that the plots keep their height.
pub(crate) fn size(fig: &Figure, style: &Style) -> (u32, u32) {
    let (rows, cols) = grid(fig);
    let (rows, cols) = (
        u32::try_from(rows).unwrap_or(1),
        u32::try_from(cols).unwrap_or(1),
    );
    let strip = legend::strip_width(&fig.panels, style, None);
    let (w, h) = match fig.layout {
        Layout::Column => (
            COLUMN_WIDTH + strip,
            HEIGHT.saturating_add(STACKED_PANEL_HEIGHT.saturating_mul(rows - 1)),
        ),
        Layout::Row | Layout::Grid { .. } => (
            (PANEL_WIDTH + strip).saturating_mul(cols).max(MIN_WIDTH),
            HEIGHT.saturating_add(GRID_ROW_HEIGHT.saturating_mul(rows - 1)),
        ),
    };
    let w = style.width.unwrap_or(w);
    let grow = (style.font_scale - 1.0).max(0.0);
    let notes = wrapped(&notes(fig, style), w, style).len() as f64;
    // Header (36 + 22 per note), then per row the title band (38), the top
    // margin (16) and the x label area (56), all at font scale 1.
    let extra = grow * (36.0 + 22.0 * notes + f64::from(rows) * 110.0);
    let h = h.saturating_add(extra.round() as u32);
    (w, style.height.unwrap_or(h))
}

/// `notes` broken at spaces into lines that fit `width` pixels at the
/// subtitle's size: a long note at a large font scale ran off both edges.
fn wrapped(notes: &[&str], width: u32, style: &Style) -> Vec<String> {
    let max = f64::from(width) * 0.96;
    let fits = |t: &str| {
        (FONT, style.px(SUBTITLE_SIZE))
            .into_font()
            .box_size(t)
            .map_or(true, |(w, _)| f64::from(w) <= max)
    };
    let mut out = Vec::new();
    for note in notes {
        let mut line = String::new();
        for word in note.split(' ') {
            let longer = if line.is_empty() {
                word.to_owned()
            } else {
                format!("{line} {word}")
            };
            if fits(&longer) || line.is_empty() {
                line = longer;
            } else {
                out.push(std::mem::replace(&mut line, word.to_owned()));
            }
        }
        out.push(line);
    }
    out
}

/// The header's note lines: one per `\n` of the subtitle, then the zero
/// note, then a word that the panels' y scales differ.
fn notes<'a>(fig: &'a Figure, style: &Style) -> Vec<&'a str> {
    let mut notes: Vec<&str> = fig.subtitle.iter().flat_map(|s| s.lines()).collect();
    if fig.has_floor_zeros() {
        notes.push(ZERO_NOTE);
    }
    if per_panel(fig, style) {
        notes.push("each panel has its own y scale");
    }
    notes
}

/// A panel's plot area in the figure's pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PlotRect {
    pub x: i32,
    pub y: i32,
    pub w: i32,
    pub h: i32,
}

/// The y values of `panel` that can set a range: drawable values and exact
/// zeros on the floor, and the ends of its bars; a diverged series' values
/// only with `diverged`.
fn panel_ys(fig: &Figure, panel: &Panel, diverged: bool) -> Vec<f64> {
    let mut ys = Vec::new();
    for s in panel.series.iter().filter(|s| diverged || !s.diverged) {
        for &(x, y) in &s.points {
            // Drawn on the bottom edge, an exact zero only keeps that edge
            // clear of the data.
            if fig.x.scale.usable(x) && (fig.y.scale.usable(y) || fig.y.on_floor(y)) {
                ys.push(y);
            }
        }
    }
    for b in &panel.error_bars {
        if fig.x.scale.usable(b.x) {
            ys.extend([b.lo, b.hi]);
        }
    }
    for c in &panel.crosses {
        if let Some(y) = c.y.filter(|&y| fig.y.scale.usable(y)) {
            ys.push(y);
        }
    }
    ys
}

/// Whether each panel gets its own y range under `style`.
pub(crate) fn per_panel(fig: &Figure, style: &Style) -> bool {
    match style.y_scale {
        YScale::Shared => false,
        YScale::Panel => fig.panels.len() > 1,
        YScale::Auto => {
            if fig.y.scale != Scale::Log || fig.panels.len() < 2 {
                return false;
            }
            let shared = shared_range(fig);
            let span = shared.1 - shared.0;
            fig.panels.iter().any(|p| {
                let ys = panel_ys(fig, p, false);
                if ys.is_empty() {
                    return false;
                }
                let (lo, hi) = axis_extent(&fig.y, &ys);
                span - (hi - lo) >= AUTO_EXTRA_DECADES && hi - lo < AUTO_SHARE * span
            })
        }
    }
}

/// The shared y range: every panel's values but a diverged run's, unless
/// only diverged runs have any.
fn shared_range(fig: &Figure) -> (f64, f64) {
    let mut ys: Vec<f64> = fig
        .panels
        .iter()
        .flat_map(|p| panel_ys(fig, p, false))
        .collect();
    if ys.is_empty() {
        ys = fig
            .panels
            .iter()
            .flat_map(|p| panel_ys(fig, p, true))
            .collect();
    }
    axis_extent(&fig.y, &ys)
}

/// The y range of each panel, in drawing units: the shared one, or under
/// [`per_panel`] each panel's own (a diverged run's values included: the
/// reader asked for that panel's scale), the shared one for an empty panel.
pub(crate) fn y_ranges(fig: &Figure, style: &Style) -> Vec<(f64, f64)> {
    let shared = shared_range(fig);
    let own = per_panel(fig, style);
    fig.panels
        .iter()
        .map(|p| {
            let ys = panel_ys(fig, p, true);
            if own && !ys.is_empty() {
                axis_extent(&fig.y, &ys)
            } else {
                shared
            }
        })
        .collect()
}

/// The shared x range, in drawing units.
fn x_range(fig: &Figure) -> (f64, f64) {
    let mut xs = Vec::new();
    for panel in &fig.panels {
        for s in &panel.series {
            for &(x, y) in &s.points {
                if fig.x.scale.usable(x) && (fig.y.scale.usable(y) || fig.y.on_floor(y)) {
                    xs.push(x);
                }
            }
        }
        xs.extend(panel.crosses.iter().map(|c| c.x));
    }
    if let Some(t) = &fig.x.ticks {
        xs.extend(t.iter().copied());
    }
    axis_extent(&fig.x, &xs)
}

/// Draws the header, then every panel in its cell of the grid; collects
/// each drawn value's pixel (`hover`) and each plot area (`rects`) for the
/// SVG.
pub(super) fn draw_figure<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    fig: &Figure,
    style: &Style,
    hover: &mut Vec<HoverPoint>,
    rects: &mut Vec<PlotRect>,
) -> Result<(), String> {
    let (w, _) = root.dim_in_pixel();
    let lines = wrapped(&notes(fig, style), w, style);
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let body = draw_header(root, &fig.title, &lines, style)?;

    let xr = x_range(fig);
    let yrs = y_ranges(fig, style);
    let areas = body.split_evenly(grid(fig));
    // The strip is as wide as the widest legend, but never more than 45%
    // of a cell (longer labels are cut with "…").
    let cell_w = areas.first().map_or(0, |a| a.dim_in_pixel().0);
    let strip = legend::strip_width(&fig.panels, style, Some(cell_w * 45 / 100));
    // No variant at all: one empty frame, so the file still says why.
    let placeholder = [Panel {
        empty_reason: Some("the results directory has no runs".to_owned()),
        ..Panel::new("")
    }];
    let panels = if fig.panels.is_empty() {
        &placeholder[..]
    } else {
        &fig.panels[..]
    };
    let shared = shared_range(fig);
    for (i, (area, panel)) in areas.iter().zip(panels).enumerate() {
        let yr = yrs.get(i).copied().unwrap_or(shared);
        let rect = draw_panel(area, fig, panel, xr, yr, style, strip, hover)?;
        rects.push(rect);
    }
    Ok(())
}

/// Fills `root` white and draws a chart's title and its note lines,
/// centred; returns the area below them. Every height grows with the font
/// scale, so that a larger title never runs into the first panel.
pub(crate) fn draw_header<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    notes: &[&str],
    style: &Style,
) -> Result<DrawingArea<DB, Shift>, String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(err)?;
    let (w, _) = root.dim_in_pixel();
    let (title_h, note_h) = (style.px_u32(36), style.px_u32(22));
    let header = title_h + note_h * u32::try_from(notes.len()).unwrap_or(0);
    let (top, body) = root.split_vertically(header);
    let centre = i32::try_from(w / 2).unwrap_or(0);
    top.draw(&Text::new(
        title.to_owned(),
        (centre, style.px_u32(8) as i32),
        (FONT, style.px(TITLE_SIZE))
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Top)),
    ))
    .map_err(err)?;
    for (line, note) in (0..).zip(notes) {
        top.draw(&Text::new(
            (*note).to_owned(),
            (centre, (title_h + (note_h - 2) * line) as i32),
            (FONT, style.px(SUBTITLE_SIZE))
                .into_font()
                .color(&GREY)
                .pos(Pos::new(HPos::Center, VPos::Top)),
        ))
        .map_err(err)?;
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_hold_at_most_three_panels() {
        assert_eq!(row_grid(1), (1, 1));
        assert_eq!(row_grid(3), (1, 3));
        assert_eq!(row_grid(4), (2, 2));
        assert_eq!(row_grid(6), (2, 3));
        assert_eq!(row_grid(8), (3, 3));
    }

    /// A note wider than the figure breaks at spaces into lines that fit,
    /// every word kept; at font scale 1.4 it takes more lines.
    #[test]
    fn long_notes_wrap_to_the_width() {
        super::super::ensure_font().expect("font");
        let note = "response = act(norm(h)), what the next layer reads; in the residual net h is the residual stream (the running sum of every block's output)";
        let at = |font_scale| {
            let style = Style {
                font_scale,
                ..Style::default()
            };
            wrapped(&[note], 600, &style)
        };
        let (one, big) = (at(1.0), at(1.4));
        assert!(one.len() >= 2, "{one:?}");
        assert!(big.len() > one.len(), "{big:?}");
        assert_eq!(big.join(" "), note);
        let style = Style::default();
        for line in &one {
            let (w, _) = (FONT, style.px(SUBTITLE_SIZE))
                .into_font()
                .box_size(line)
                .expect("size");
            assert!(w <= 600, "{line:?} is {w} px");
        }
    }
}
