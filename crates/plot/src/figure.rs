//! A backend-independent description of a chart ([`Figure`]: panels side by
//! side, or stacked, sharing both axes) and its renderer, which draws the same figure to
//! PNG and SVG and writes each file atomically. How one panel is drawn is
//! `figure/panel.rs`.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::axis::{axis_extent, Axis, Scale};
use crate::error::PlotError;

mod panel;

use panel::draw_panel;

/// Draws one chart as `DIR/NAME.png` and `DIR/NAME.svg`, each into a
/// temporary file renamed into place ([`finish`]), and gives back the two
/// paths; `draw` is evaluated once per backend with `$root` bound to that
/// backend's drawing area. A macro because the two backends are different
/// types, and a closure cannot be generic over them. (Line charts go through
/// `Figure::write_with`, which also adds the SVG's hover layer.)
macro_rules! write_png_and_svg {
    ($dir:expr, $name:expr, $size:expr, |$root:ident| $draw:expr) => {{
        let (dir, name, size) = ($dir, $name, $size);
        let png = dir.join(format!("{name}.png"));
        let svg = dir.join(format!("{name}.svg"));
        // The image encoder picks the format from the temporary file's
        // extension, which durable::temp_beside keeps.
        $crate::figure::replace(&png, name, "png", |tmp| {
            let $root = plotters::prelude::BitMapBackend::new(tmp, size).into_drawing_area();
            $draw.and_then(|()| $root.present().map_err(|e| e.to_string()))
        })?;
        let mut text = String::new();
        let drawn = {
            let $root =
                plotters::prelude::SVGBackend::with_string(&mut text, size).into_drawing_area();
            $draw.and_then(|()| $root.present().map_err(|e| e.to_string()))
        };
        drawn.map_err(|message| $crate::figure::draw_error(&svg, name, "svg", message))?;
        $crate::figure::replace(&svg, name, "svg", |tmp| {
            std::fs::write(tmp, text.as_bytes()).map_err(|e| e.to_string())
        })?;
        (png, svg)
    }};
}

/// Family name the embedded font is registered under; every text style of
/// this crate uses it.
pub(crate) const FONT: &str = "sans-serif";

/// DejaVu Sans, compiled in: plotters is built without system font support,
/// so no text can be drawn unless a font is registered.
static FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Registers the embedded font once per process, before the first drawing.
pub(crate) fn ensure_font() -> Result<(), PlotError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(PlotError::Font)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Marker {
    Circle,
    Triangle,
    /// ▼ alone, no line: the legend of a series whose values are all
    /// exactly 0, drawn on the bottom edge of a `zero_floor` log axis.
    Zero,
    /// No line and no marker: the legend of a series with nothing to draw
    /// (every value NaN), kept so that its run is still accounted for.
    Absent,
}

/// The note a figure carries under its subtitle when it draws exact zeros
/// on the bottom edge.
pub(crate) const ZERO_NOTE: &str =
    "▼ values that are exactly 0 in float32 are drawn on the bottom edge";

/// A line through `points` (data units). Points that the axes cannot show
/// break the line; a point left alone between gaps is drawn as a dot so that
/// it is not lost. Exact zeros on a `zero_floor` log axis also break the
/// line, and are drawn as ▼ on the bottom edge.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub points: Vec<(f64, f64)>,
    pub color: RGBColor,
    pub dashed: bool,
    pub marker: Option<Marker>,
}

/// A vertical bar from `lo` to `hi` at `x`, shifted sideways by `shift`
/// times the x span so that two bars at the same x stay apart.
#[derive(Debug, Clone)]
pub(crate) struct ErrorBar {
    pub x: f64,
    pub lo: f64,
    pub hi: f64,
    pub color: RGBColor,
    pub shift: f64,
}

#[derive(Debug, Clone)]
pub(crate) struct LegendEntry {
    pub label: String,
    pub color: RGBColor,
    pub dashed: bool,
    pub marker: Option<Marker>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Panel {
    pub title: String,
    pub series: Vec<Series>,
    pub error_bars: Vec<ErrorBar>,
    pub legend: Vec<LegendEntry>,
    /// Shown under "no data" when the panel has nothing to draw.
    pub empty_reason: Option<String>,
    /// This panel's x-axis label, when it differs from the figure's (the
    /// extent is still shared).
    pub x_label: Option<String>,
}

impl Panel {
    pub(crate) fn new(title: impl Into<String>) -> Self {
        Panel {
            title: title.into(),
            ..Panel::default()
        }
    }
}

/// How a figure arranges its panels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// Side by side (plain beside residual).
    Row,
    /// Stacked top to bottom (two views of the same lines).
    Column,
}

/// A chart: panels side by side (or stacked) sharing both axes, so that
/// plain and residual can be compared by eye.
#[derive(Debug, Clone)]
pub(crate) struct Figure {
    /// File stem under `plots/`.
    pub name: &'static str,
    pub title: String,
    pub subtitle: Option<String>,
    pub x: Axis,
    pub y: Axis,
    pub panels: Vec<Panel>,
    pub layout: Layout,
}

/// The files one chart was written to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Chart name, the file stem.
    pub name: &'static str,
    /// The PNG file.
    pub png: PathBuf,
    /// The SVG file.
    pub svg: PathBuf,
    /// False when the chart had no data and shows a "no data" note instead.
    pub has_data: bool,
}

/// How big a chart is drawn: `gradscope plot --width --height
/// --font-scale`. The defaults suit a slide on a projector (16 px tick
/// labels) as well as a page.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Style {
    /// The whole figure's width in pixels; `None`: 600 per panel side by
    /// side (at least 800), 900 for stacked panels.
    pub width: Option<u32>,
    /// The whole figure's height in pixels; `None`: 500 for a row of
    /// panels, 400 more per stacked panel.
    pub height: Option<u32>,
    /// Multiplies every text size (and the room kept for axis labels).
    pub font_scale: f64,
}

impl Default for Style {
    fn default() -> Style {
        Style {
            width: None,
            height: None,
            font_scale: 1.0,
        }
    }
}

impl Style {
    /// A text size or a text-bound margin, scaled.
    pub(crate) fn px(&self, base: f64) -> f64 {
        base * self.font_scale
    }

    pub(crate) fn px_u32(&self, base: u32) -> u32 {
        (f64::from(base) * self.font_scale).round() as u32
    }
}

const PANEL_WIDTH: u32 = 600;
const MIN_WIDTH: u32 = 800;
const HEIGHT: u32 = 500;
/// A stacked figure: its width, and the height of each panel (the header
/// and the last panel's share take the rest of [`HEIGHT`]).
const COLUMN_WIDTH: u32 = 900;
/// Height added per extra row when a row of panels wraps.
const GRID_ROW_HEIGHT: u32 = 420;
/// Most panels side by side before a row wraps: a comparison of two
/// folders that each sweep a setting has eight panels, and eight in one
/// row are too narrow to read.
const MAX_ROW_PANELS: usize = 4;

/// Rows and columns for `n` panels laid out as a row: one row up to
/// [`MAX_ROW_PANELS`], then as few rows as that allows, filled evenly
/// (8 panels: 2 × 4; 6: 2 × 3; 5: 2 × 3).
pub(crate) fn row_grid(n: usize) -> (usize, usize) {
    let n = n.max(1);
    let rows = n.div_ceil(MAX_ROW_PANELS);
    (rows, n.div_ceil(rows))
}
const STACKED_PANEL_HEIGHT: u32 = 400;

impl Figure {
    fn size(&self, style: &Style) -> (u32, u32) {
        let n = u32::try_from(self.panels.len().max(1)).unwrap_or(u32::MAX);
        let (w, h) = match self.layout {
            Layout::Row => {
                let (rows, cols) = row_grid(self.panels.len());
                let (rows, cols) = (rows as u32, cols as u32);
                (
                    (PANEL_WIDTH.saturating_mul(cols)).max(MIN_WIDTH),
                    HEIGHT.saturating_add(GRID_ROW_HEIGHT.saturating_mul(rows - 1)),
                )
            }
            Layout::Column => (
                COLUMN_WIDTH,
                HEIGHT.saturating_add(STACKED_PANEL_HEIGHT.saturating_mul(n - 1)),
            ),
        };
        (style.width.unwrap_or(w), style.height.unwrap_or(h))
    }

    /// Whether any panel has at least one drawable point (exact zeros drawn
    /// on the bottom edge included).
    pub(crate) fn has_data(&self) -> bool {
        self.panels.iter().any(|p| panel_has_data(p, self))
    }

    /// Whether some series has exact zeros drawn on the bottom edge, which
    /// the header then explains with [`ZERO_NOTE`].
    fn has_floor_zeros(&self) -> bool {
        self.panels
            .iter()
            .flat_map(|p| &p.series)
            .any(|s| !floor_xs(&s.points, &self.x, &self.y).is_empty())
    }

    /// Writes `DIR/NAME.png` and `DIR/NAME.svg`, each through a temporary
    /// file in `DIR` renamed into place, so a reader never sees half a file.
    pub(crate) fn write(&self, dir: &Path) -> Result<Rendered, PlotError> {
        self.write_with(dir, &Style::default())
    }

    /// [`Figure::write`] at a given size and text scale.
    pub(crate) fn write_with(&self, dir: &Path, style: &Style) -> Result<Rendered, PlotError> {
        ensure_font()?;
        fs::create_dir_all(dir).map_err(|source| PlotError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let png = dir.join(format!("{}.png", self.name));
        let svg = dir.join(format!("{}.svg", self.name));
        let size = self.size(style);

        // The image encoder picks the format from the extension, which the
        // temporary name keeps.
        replace(&png, self.name, "png", |tmp| {
            let root = BitMapBackend::new(tmp, size).into_drawing_area();
            draw_figure(&root, self, style, &mut Vec::new())
                .and_then(|()| root.present().map_err(|e| e.to_string()))
        })?;

        let mut text = String::new();
        let mut hover = Vec::new();
        let drawn = {
            let root = SVGBackend::with_string(&mut text, size).into_drawing_area();
            draw_figure(&root, self, style, &mut hover)
                .and_then(|()| root.present().map_err(|e| e.to_string()))
        };
        drawn.map_err(|message| draw_error(&svg, self.name, "svg", message))?;
        let text = with_hover_layer(&text, &hover);
        replace(&svg, self.name, "svg", |tmp| {
            fs::write(tmp, text.as_bytes()).map_err(|e| e.to_string())
        })?;

        Ok(Rendered {
            name: self.name,
            png,
            svg,
            has_data: self.has_data(),
        })
    }
}

/// Most values of one series the hover layer keeps (evenly spaced, the
/// last always): enough to read a line anywhere, few enough that a chart
/// of 1500-step curves stays a small file.
const HOVER_POINTS_PER_SERIES: usize = 150;

/// One drawn value: where it is in the SVG and what it says.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HoverPoint {
    pub px: i32,
    pub py: i32,
    /// Series, then `x label: value`, then `y label: value`, one per line.
    pub text: String,
}

/// A value for a reader: four significant digits, scientific where that
/// is shorter (gradients of 1e-12 and steps of 1500 both read exactly).
fn hover_number(v: f64) -> String {
    if v == 0.0 || (1e-3..1e5).contains(&v.abs()) {
        let s = format!("{v:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_owned()
    } else {
        format!("{v:.3e}")
    }
}

/// The SVG with a transparent circle over every [`HoverPoint`], each with
/// its text as an SVG `<title>` (a tooltip in any viewer) and as
/// `data-v` (which report.html's script shows). Appended last, so the
/// circles sit above the lines.
fn with_hover_layer(svg: &str, points: &[HoverPoint]) -> String {
    let Some(end) = svg.rfind("</svg>") else {
        return svg.to_owned();
    };
    let mut layer = String::from("<g class=\"gs-hover\">\n");
    for p in points {
        let text = xml_escape(&p.text);
        layer.push_str(&format!(
            "<circle class=\"gs-pt\" cx=\"{}\" cy=\"{}\" r=\"6\" fill=\"transparent\" data-v=\"{text}\"><title>{text}</title></circle>\n",
            p.px, p.py
        ));
    }
    layer.push_str("</g>\n");
    format!("{}{layer}{}", &svg[..end], &svg[end..])
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A drawing error of `chart` in `format`, for `dest`.
pub(crate) fn draw_error(
    dest: &Path,
    chart: &str,
    format: &'static str,
    message: String,
) -> PlotError {
    PlotError::Draw {
        chart: chart.to_owned(),
        format,
        path: dest.to_path_buf(),
        message,
    }
}

/// Writes the chart file `dest` through `gradscope_format::durable`: `draw`
/// writes the temporary file it is given (hidden, ending in `format`'s
/// extension), which then replaces `dest` durably, so a reader or an
/// interruption never sees half a chart.
pub(crate) fn replace(
    dest: &Path,
    chart: &str,
    format: &'static str,
    draw: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), PlotError> {
    use gradscope_format::durable::{replace_with, ReplaceError};
    replace_with(dest, draw).map_err(|e| match e {
        ReplaceError::Write(_, message) => draw_error(dest, chart, format, message),
        ReplaceError::Io(path, source) => PlotError::Io { path, source },
    })
}

fn panel_has_data(panel: &Panel, fig: &Figure) -> bool {
    panel.series.iter().any(|s| {
        s.points
            .iter()
            .any(|&(x, y)| fig.x.scale.usable(x) && (fig.y.scale.usable(y) || fig.y.on_floor(y)))
    })
}

/// Whether a series has a line or dot to draw on these scales; charts use
/// it to leave empty series (and their legend entries) out.
pub(crate) fn drawable(points: &[(f64, f64)], x: Scale, y: Scale) -> bool {
    points.iter().any(|&(px, py)| x.usable(px) && y.usable(py))
}

/// Whether a series has values of exactly 0 at a placeable x, which a
/// `zero_floor` log axis draws as ▼ on its bottom edge.
pub(crate) fn has_zeros(points: &[(f64, f64)], x: Scale) -> bool {
    points.iter().any(|&(px, py)| x.usable(px) && py == 0.0)
}

/// Drawing x of the points that go on the bottom edge ([`Axis::on_floor`]).
fn floor_xs(points: &[(f64, f64)], x: &Axis, y: &Axis) -> Vec<f64> {
    points
        .iter()
        .filter(|&&(px, py)| x.scale.usable(px) && y.on_floor(py))
        .map(|&(px, _)| x.scale.to_plot(px))
        .collect()
}

/// A ▼ pointing down at `(centre_x, tip_y)`, in pixels relative to its anchor.
fn down_triangle(centre_x: i32, tip_y: i32) -> Vec<(i32, i32)> {
    vec![
        (centre_x, tip_y),
        (centre_x - ZERO_HALF_WIDTH, tip_y - ZERO_HEIGHT),
        (centre_x + ZERO_HALF_WIDTH, tip_y - ZERO_HEIGHT),
    ]
}

/// Runs of consecutive drawable points, in drawing coordinates.
fn segments(points: &[(f64, f64)], x: Scale, y: Scale) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current = Vec::new();
    for &(px, py) in points {
        if x.usable(px) && y.usable(py) {
            current.push((x.to_plot(px), y.to_plot(py)));
        } else if !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

// Text sizes at font scale 1, in pixels: tick labels of 16 px read on a
// projector (issue 19 asked for about that).
pub(crate) const TITLE_SIZE: f64 = 24.0;
pub(crate) const SUBTITLE_SIZE: f64 = 15.0;
pub(crate) const PANEL_TITLE_SIZE: f64 = 20.0;
pub(crate) const AXIS_DESC_SIZE: f64 = 17.0;
pub(crate) const TICK_SIZE: f64 = 16.0;
const LEGEND_SIZE: f64 = 15.0;
const LINE_WIDTH: u32 = 2;
const LEGEND_MARGIN: i32 = 8;
const LEGEND_GLYPH: i32 = 26;
const GREY: RGBColor = RGBColor(90, 90, 90);
/// Size of the ▼ drawn for an exact zero, and the rise between the rows of
/// ▼ of differently coloured series (so that two series both 0 at the same
/// x stay visible).
const ZERO_HALF_WIDTH: i32 = 4;
const ZERO_HEIGHT: i32 = 7;
const ZERO_ROW: i32 = 8;

fn draw_figure<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    fig: &Figure,
    style: &Style,
    hover: &mut Vec<HoverPoint>,
) -> Result<(), String> {
    // One line per `\n` of the subtitle, then the zero note.
    let mut notes: Vec<&str> = fig.subtitle.iter().flat_map(|s| s.lines()).collect();
    if fig.has_floor_zeros() {
        notes.push(ZERO_NOTE);
    }
    let body = draw_header(root, &fig.title, &notes, style)?;

    // Shared extents: the same axes in every panel make the panels comparable.
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for panel in &fig.panels {
        for s in &panel.series {
            for &(x, y) in &s.points {
                if fig.x.scale.usable(x) && fig.y.scale.usable(y) {
                    xs.push(x);
                    ys.push(y);
                } else if fig.x.scale.usable(x) && fig.y.on_floor(y) {
                    // Drawn on the bottom edge: the y extent only keeps
                    // that edge clear of the data.
                    xs.push(x);
                    ys.push(y);
                }
            }
        }
        for b in &panel.error_bars {
            if fig.x.scale.usable(b.x) {
                ys.extend([b.lo, b.hi]);
            }
        }
    }
    if let Some(t) = &fig.x.ticks {
        xs.extend(t.iter().copied());
    }
    let xr = axis_extent(&fig.x, &xs);
    let yr = axis_extent(&fig.y, &ys);

    let n = fig.panels.len().max(1);
    let areas = match fig.layout {
        Layout::Row => body.split_evenly(row_grid(n)),
        Layout::Column => body.split_evenly((n, 1)),
    };
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
    for (area, panel) in areas.iter().zip(panels) {
        draw_panel(area, fig, panel, xr, yr, style, hover)?;
    }
    Ok(())
}

/// Fills `root` white and draws a chart's title and its note lines,
/// centred; returns the area below them.
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
        (centre, 8),
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
    use super::panel::legend_position;
    use super::*;

    #[test]
    fn segments_break_at_unusable_points() {
        let pts = [
            (0.0, 1.0),
            (1.0, 0.0),
            (2.0, 10.0),
            (3.0, 100.0),
            (4.0, f64::NAN),
            (5.0, 1.0),
        ];
        let segs = segments(&pts, Scale::Linear, Scale::Log);
        assert_eq!(
            segs,
            vec![
                vec![(0.0, 0.0)],
                vec![(2.0, 1.0), (3.0, 2.0)],
                vec![(5.0, 0.0)]
            ]
        );
    }

    #[test]
    fn legend_avoids_drawn_lines() {
        let range = ((0.0, 1.0), (0.0, 1.0));
        // A line along the top: the legend goes to a lower corner.
        let top: Vec<(f64, f64)> = (0..=100).map(|i| (f64::from(i) / 100.0, 0.98)).collect();
        let (_, y) = legend_position(&top, range, (100, 60), (500, 400));
        assert!(y > 200, "legend at y={y} covers the top line");
        // Lines at top, middle and bottom: the legend sits between them.
        let three: Vec<(f64, f64)> = [0.02, 0.5, 0.98]
            .iter()
            .flat_map(|&y| (0..=100).map(move |i| (f64::from(i) / 100.0, y)))
            .collect();
        let (_, y) = legend_position(&three, range, (100, 60), (500, 400));
        let (ytop, ybottom) = (f64::from(y), f64::from(y + 60));
        for line_y in [0.02, 0.5, 0.98] {
            let py = (1.0 - line_y) * 400.0;
            assert!(
                py < ytop || py > ybottom,
                "legend {ytop}..{ybottom} covers {py}"
            );
        }
    }
}
