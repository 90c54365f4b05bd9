//! A backend-independent description of a chart ([`Figure`]: panels side by
//! side, or stacked, sharing both axes) and its renderer, which draws the same figure to
//! PNG and SVG and writes each file atomically.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::axis::{axis_extent, tick_label, ticks, Axis, Scale, TickedAxis};
use crate::error::PlotError;

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

/// The chart of one panel: plotters' context over its ticked axes.
type PanelChart<'a, DB> = ChartContext<'a, DB, Cartesian2d<TickedAxis, TickedAxis>>;

/// A drawing error as the text [`PlotError`] carries.
fn draw_err<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> String {
    e.to_string()
}

/// Draws one panel, in layers from the back: axes and grid, min–max bars,
/// lines and markers, exact zeros on the bottom edge, then either a "no
/// data" note or the legend, placed where it covers the fewest drawn
/// points. Records each drawn value's pixel in `hover` for the SVG.
fn draw_panel<'a, DB: DrawingBackend + 'a>(
    area: &'a DrawingArea<DB, Shift>,
    fig: &Figure,
    panel: &Panel,
    xr: (f64, f64),
    yr: (f64, f64),
    style: &Style,
    hover: &mut Vec<HoverPoint>,
) -> Result<(), String> {
    let mut chart = panel_chart(area, fig, panel, xr, yr, style)?;
    draw_error_bars(&mut chart, fig, panel, xr)?;
    record_hover(&chart, fig, panel, hover);
    let mut drawn_points = draw_lines(&mut chart, fig, panel)?;
    drawn_points.extend(draw_zeros(&mut chart, fig, panel, yr)?);
    if !panel_has_data(panel, fig) {
        return draw_no_data(&mut chart, panel, xr, yr);
    }
    if panel.legend.is_empty() {
        return Ok(());
    }
    add_legend_entries(&mut chart, panel)?;
    draw_legend(&mut chart, panel, &drawn_points, (xr, yr), style)
}

/// The panel's axes, tick labels and grid, drawn; the chart to draw into.
fn panel_chart<'a, DB: DrawingBackend + 'a>(
    area: &'a DrawingArea<DB, Shift>,
    fig: &Figure,
    panel: &Panel,
    xr: (f64, f64),
    yr: (f64, f64),
    style: &Style,
) -> Result<PanelChart<'a, DB>, String> {
    let err = draw_err::<DB::ErrorType>;
    let xt = ticks(&fig.x, xr.0, xr.1);
    let yt = ticks(&fig.y, yr.0, yr.1);
    let mut chart = ChartBuilder::on(area)
        .caption(panel.title.as_str(), (FONT, style.px(PANEL_TITLE_SIZE)))
        .margin(8)
        .margin_right(22)
        // Room for the tick labels and the axis description, which grow
        // with the text.
        .x_label_area_size(style.px_u32(56))
        .y_label_area_size(style.px_u32(92))
        .build_cartesian_2d(TickedAxis::new(xr, &xt), TickedAxis::new(yr, &yt))
        .map_err(err)?;

    let (xscale, yscale) = (fig.x.scale, fig.y.scale);
    let x_fmt = |v: &f64| tick_label(xscale, *v, xt.decimals);
    let y_fmt = |v: &f64| tick_label(yscale, *v, yt.decimals);
    chart
        .configure_mesh()
        .x_desc(panel.x_label.as_deref().unwrap_or(fig.x.label.as_str()))
        .y_desc(fig.y.label.as_str())
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style((FONT, style.px(TICK_SIZE)))
        .axis_desc_style((FONT, style.px(AXIS_DESC_SIZE)))
        .bold_line_style(RGBColor(200, 200, 200))
        .light_line_style(RGBColor(238, 238, 238))
        .draw()
        .map_err(err)?;
    Ok(chart)
}

/// The min–max bars over seeds, each nudged by its shift.
fn draw_error_bars<'a, DB: DrawingBackend + 'a>(
    chart: &mut PanelChart<'a, DB>,
    fig: &Figure,
    panel: &Panel,
    xr: (f64, f64),
) -> Result<(), String> {
    let err = draw_err::<DB::ErrorType>;
    let (xscale, yscale) = (fig.x.scale, fig.y.scale);
    let x_span = xr.1 - xr.0;
    for bar in &panel.error_bars {
        if !(xscale.usable(bar.x) && yscale.usable(bar.lo) && yscale.usable(bar.hi)) {
            continue;
        }
        let x = xscale.to_plot(bar.x) + bar.shift * x_span;
        let (lo, hi) = (yscale.to_plot(bar.lo), yscale.to_plot(bar.hi));
        let style = ShapeStyle::from(bar.color.mix(0.8)).stroke_width(1);
        // Three calls: plotters' boxed elements would need a 'static backend.
        chart
            .draw_series([PathElement::new(vec![(x, lo), (x, hi)], style)])
            .map_err(err)?;
        for end in [lo, hi] {
            chart
                .draw_series([
                    EmptyElement::at((x, end)) + PathElement::new(vec![(-4, 0), (4, 0)], style)
                ])
                .map_err(err)?;
        }
    }

    Ok(())
}

/// Where each drawn value lands, for the SVG's hover layer: the pixel from
/// plotters' own mapping, the text from the data.
fn record_hover<'a, DB: DrawingBackend + 'a>(
    chart: &PanelChart<'a, DB>,
    fig: &Figure,
    panel: &Panel,
    hover: &mut Vec<HoverPoint>,
) {
    let (xscale, yscale) = (fig.x.scale, fig.y.scale);
    for s in &panel.series {
        // The legend entry of the same colour and dash; else of the same
        // colour (a dashed "trained" line shares its depth's entry).
        let name = panel
            .legend
            .iter()
            .find(|l| l.color == s.color && l.dashed == s.dashed)
            .or_else(|| panel.legend.iter().find(|l| l.color == s.color))
            .map_or(panel.title.as_str(), |l| l.label.as_str());
        let usable: Vec<(f64, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|&(x, y)| xscale.usable(x) && yscale.usable(y))
            .collect();
        let every = usable.len().div_ceil(HOVER_POINTS_PER_SERIES).max(1);
        for (i, &(x, y)) in usable.iter().enumerate() {
            if i % every != 0 && i + 1 != usable.len() {
                continue;
            }
            let (px, py) = chart.backend_coord(&(xscale.to_plot(x), yscale.to_plot(y)));
            hover.push(HoverPoint {
                px,
                py,
                text: format!(
                    "{}{name}\n{}: {}\n{}: {}",
                    if panel.title.is_empty() || name == panel.title {
                        String::new()
                    } else {
                        format!("{} · ", panel.title)
                    },
                    panel.x_label.as_deref().unwrap_or(fig.x.label.as_str()),
                    hover_number(x),
                    fig.y.label,
                    hover_number(y)
                ),
            });
        }
    }
}

/// Every series' lines (broken where a value is unusable) and markers; the
/// points they cover, for placing the legend.
fn draw_lines<'a, DB: DrawingBackend + 'a>(
    chart: &mut PanelChart<'a, DB>,
    fig: &Figure,
    panel: &Panel,
) -> Result<Vec<(f64, f64)>, String> {
    let err = draw_err::<DB::ErrorType>;
    let (xscale, yscale) = (fig.x.scale, fig.y.scale);
    let mut drawn_points: Vec<(f64, f64)> = Vec::new();
    for s in &panel.series {
        let style = ShapeStyle::from(s.color).stroke_width(LINE_WIDTH);
        for seg in segments(&s.points, xscale, yscale) {
            if seg.len() >= 2 {
                if s.dashed {
                    chart
                        .draw_series(DashedLineSeries::new(seg.clone(), 9, 5, style))
                        .map_err(err)?;
                } else {
                    chart
                        .draw_series(LineSeries::new(seg.clone(), style))
                        .map_err(err)?;
                }
            }
            let lone = seg.len() == 1;
            if s.marker.is_some() || lone {
                let fill = s.color.filled();
                if s.marker == Some(Marker::Triangle) {
                    chart
                        .draw_series(seg.iter().map(|&p| TriangleMarker::new(p, 5, fill)))
                        .map_err(err)?;
                } else {
                    chart
                        .draw_series(seg.iter().map(|&p| Circle::new(p, 4, fill)))
                        .map_err(err)?;
                }
            }
            drawn_points.extend(interpolate(&seg));
        }
    }
    Ok(drawn_points)
}

/// Exact zeros: ▼ with its tip on the bottom edge, one row per colour; the
/// points they cover.
fn draw_zeros<'a, DB: DrawingBackend + 'a>(
    chart: &mut PanelChart<'a, DB>,
    fig: &Figure,
    panel: &Panel,
    yr: (f64, f64),
) -> Result<Vec<(f64, f64)>, String> {
    let err = draw_err::<DB::ErrorType>;
    let mut drawn: Vec<(f64, f64)> = Vec::new();
    let mut rows: Vec<RGBColor> = Vec::new();
    for s in &panel.series {
        let xs = floor_xs(&s.points, &fig.x, &fig.y);
        if xs.is_empty() {
            continue;
        }
        let row = rows.iter().position(|&c| c == s.color).unwrap_or_else(|| {
            rows.push(s.color);
            rows.len() - 1
        });
        let tip = -i32::try_from(row).unwrap_or(0).saturating_mul(ZERO_ROW);
        let fill = s.color.filled();
        chart
            .draw_series(
                xs.iter().map(|&x| {
                    EmptyElement::at((x, yr.0)) + Polygon::new(down_triangle(0, tip), fill)
                }),
            )
            .map_err(err)?;
        drawn.extend(xs.iter().map(|&x| (x, yr.0)));
    }
    Ok(drawn)
}

/// "no data" in the middle of an empty panel, with the reason below it.
fn draw_no_data<'a, DB: DrawingBackend + 'a>(
    chart: &mut PanelChart<'a, DB>,
    panel: &Panel,
    xr: (f64, f64),
    yr: (f64, f64),
) -> Result<(), String> {
    let err = draw_err::<DB::ErrorType>;
    let mid = ((xr.0 + xr.1) / 2.0, (yr.0 + yr.1) / 2.0);
    let style = (FONT, 22.0)
        .into_font()
        .color(&GREY)
        .pos(Pos::new(HPos::Center, VPos::Center));
    chart
        .draw_series([Text::new("no data".to_owned(), mid, style)])
        .map_err(err)?;
    if let Some(reason) = &panel.empty_reason {
        let below = (mid.0, yr.0 + (yr.1 - yr.0) * 0.40);
        let style = (FONT, 13.0)
            .into_font()
            .color(&GREY)
            .pos(Pos::new(HPos::Center, VPos::Center));
        chart
            .draw_series([Text::new(reason.clone(), below, style)])
            .map_err(err)?;
    }
    Ok(())
}

/// One legend entry per [`LegendEntry`], each with its glyph.
fn add_legend_entries<'a, DB: DrawingBackend + 'a>(
    chart: &mut PanelChart<'a, DB>,
    panel: &Panel,
) -> Result<(), String> {
    let err = draw_err::<DB::ErrorType>;
    for entry in &panel.legend {
        let (color, marker) = (entry.color, entry.marker);
        // Legend sample: a solid or dashed stroke, optionally with the
        // series' marker. Parts an entry does not use are fully transparent
        // so that every entry has one concrete element type (plotters' boxed
        // elements would need a 'static backend).
        let (first, second) = if entry.dashed {
            (vec![(0, 0), (8, 0)], vec![(13, 0), (21, 0)])
        } else {
            (vec![(0, 0), (21, 0)], vec![(21, 0), (21, 0)])
        };
        let glyph = move |(x, y): (i32, i32)| {
            // An all-zero series has no line, only its ▼; an absent one
            // has neither.
            let stroke = if matches!(marker, Some(Marker::Zero | Marker::Absent)) {
                ShapeStyle::from(color.mix(0.0))
            } else {
                ShapeStyle::from(color)
            }
            .stroke_width(LINE_WIDTH);
            let fill = |m: Marker| {
                if marker == Some(m) {
                    color.filled()
                } else {
                    color.mix(0.0).filled()
                }
            };
            EmptyElement::at((x, y))
                + PathElement::new(first.clone(), stroke)
                + PathElement::new(second.clone(), stroke)
                + Circle::new((10, 0), 4, fill(Marker::Circle))
                + TriangleMarker::new((10, 0), 5, fill(Marker::Triangle))
                + Polygon::new(down_triangle(10, ZERO_HEIGHT / 2), fill(Marker::Zero))
        };
        // An empty series carries the legend entry; the lines were drawn
        // above in pieces (gaps, markers) that must not each get an entry.
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
            .map_err(err)?
            .label(entry.label.as_str())
            .legend(glyph);
    }
    Ok(())
}

/// The legend box, at the place where it covers the fewest drawn points.
fn draw_legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut PanelChart<'a, DB>,
    panel: &Panel,
    drawn_points: &[(f64, f64)],
    (xr, yr): ((f64, f64), (f64, f64)),
    style: &Style,
) -> Result<(), String> {
    let err = draw_err::<DB::ErrorType>;
    // The legend box plotters will draw: label text, glyph column, margins.
    let mut text = MultiLineText::<(i32, i32), &str>::new((0, 0), (FONT, style.px(LEGEND_SIZE)));
    for entry in &panel.legend {
        text.push_line(entry.label.as_str());
    }
    let (tw, th) = text.estimate_dimension().map_err(|e| e.to_string())?;
    let size = (
        tw + LEGEND_GLYPH + 2 * LEGEND_MARGIN,
        th + 2 * LEGEND_MARGIN,
    );
    let (pw, ph) = chart.plotting_area().dim_in_pixel();
    let area = (
        i32::try_from(pw).unwrap_or(i32::MAX),
        i32::try_from(ph).unwrap_or(i32::MAX),
    );
    let (lx, ly) = legend_position(drawn_points, (xr, yr), size, area);
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::Coordinate(lx, ly))
        .margin(LEGEND_MARGIN as u32)
        .legend_area_size(LEGEND_GLYPH as u32)
        .label_font((FONT, style.px(LEGEND_SIZE)))
        .background_style(WHITE.mix(0.8))
        .border_style(RGBColor(160, 160, 160))
        .draw()
        .map_err(err)?;
    Ok(())
}

/// Points along a drawn polyline, so that a legend is not placed over a
/// long segment between two sparse vertices.
fn interpolate(seg: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = seg.to_vec();
    for w in seg.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        for k in 1..8 {
            let t = f64::from(k) / 8.0;
            out.push((x0 + (x1 - x0) * t, y0 + (y1 - y0) * t));
        }
    }
    out
}

/// Where to put a legend of `size` pixels in a plot area of `area` pixels:
/// the place, on a grid of candidates, whose box covers the fewest drawn
/// points (corners first on a tie, as readers look there). plotters places a
/// legend only where told, and any fixed corner hides some chart's data: the
/// plain net's high training-error curve, or the vanishing end of a profile.
/// Returned as a pixel offset inside the plot area.
fn legend_position(
    points: &[(f64, f64)],
    (xr, yr): ((f64, f64), (f64, f64)),
    size: (i32, i32),
    area: (i32, i32),
) -> (i32, i32) {
    const GAP: i32 = 6;
    let (w, h) = size;
    let (aw, ah) = area;
    let pixel = |(x, y): (f64, f64)| {
        let nx = (x - xr.0) / (xr.1 - xr.0);
        let ny = (y - yr.0) / (yr.1 - yr.0);
        (nx * f64::from(aw), (1.0 - ny) * f64::from(ah))
    };
    let pixels: Vec<(f64, f64)> = points.iter().map(|&p| pixel(p)).collect();

    let left = GAP;
    let right = (aw - w - GAP).max(GAP);
    let top = GAP;
    let bottom = (ah - h - GAP).max(GAP);
    let mut candidates = vec![(right, top), (left, top), (right, bottom), (left, bottom)];
    for k in 1..8 {
        let y = top + (bottom - top) * k / 8;
        candidates.extend([(right, y), (left, y)]);
    }
    let middle = ((aw - w) / 2).max(GAP);
    for k in 0..=8 {
        candidates.push((middle, top + (bottom - top) * k / 8));
    }

    let mut best = candidates[0];
    let mut best_count = usize::MAX;
    for (x, y) in candidates {
        let (x0, x1) = (f64::from(x - 2), f64::from(x + w + 2));
        let (y0, y1) = (f64::from(y - 2), f64::from(y + h + 2));
        let count = pixels
            .iter()
            .filter(|&&(px, py)| px >= x0 && px <= x1 && py >= y0 && py <= y1)
            .count();
        if count < best_count {
            best = (x, y);
            best_count = count;
        }
    }
    best
}

#[cfg(test)]
mod tests {
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
