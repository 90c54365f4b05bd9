//! A backend-independent description of a chart ([`Figure`]: a grid of
//! panels, at most three side by side, or a stack, sharing the x axis and,
//! unless [`YScale`] says otherwise, the y axis) and its renderer, which
//! draws the same figure to PNG and SVG and writes each file atomically.
//! Where the panels go and which y range each gets is `figure/layout.rs`;
//! how one panel is drawn is `figure/panel.rs`; its legend, in a strip
//! beside the plot area rather than over the data, is `figure/legend.rs`.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;

use crate::axis::{Axis, Scale};
use crate::error::PlotError;

mod glyphs;
mod layout;
mod legend;
mod panel;

pub(crate) use glyphs::GlyphFix;

use layout::{draw_figure, PlotRect};
pub(crate) use layout::{draw_header, row_grid, MAX_COLUMNS};

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
            let $root = $crate::figure::GlyphFix(plotters::prelude::BitMapBackend::new(tmp, size))
                .into_drawing_area();
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
    /// ✕ alone, no line: the legend of a [`Cross`], a diverged run.
    Cross,
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
    /// Drawn from a run that diverged: its values never set a shared y
    /// range (one blown-up run would flatten every panel), and where they
    /// lie outside the range the line breaks there.
    pub diverged: bool,
}

/// A ✕ where a run diverged: at `(x, y)`, or on the top edge when `y` is
/// `None` (a diverged run has no value to place it at).
#[derive(Debug, Clone)]
pub(crate) struct Cross {
    pub x: f64,
    pub y: Option<f64>,
    pub color: RGBColor,
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
    /// Diverged runs, drawn as ✕ above the lines.
    pub crosses: Vec<Cross>,
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
    /// Side by side (plain beside residual), wrapping into rows of at most
    /// three ([`layout::row_grid`]).
    Row,
    /// Stacked top to bottom (two views of the same lines).
    Column,
    /// Rows of `cols` panels: one row per folder or swept value, one
    /// column per variant, so that a plain/residual pair is never split
    /// across rows. More than three columns wrap as [`Layout::Row`] does.
    Grid { cols: usize },
}

/// A chart: panels in a grid (or stacked) sharing the x axis and by
/// default the y axis, so that plain and residual can be compared by eye.
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

/// Whether the panels of a chart share one y range (`gradscope plot
/// --y-scale`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum YScale {
    /// Shared, except on a log axis whose panels' ranges differ by many
    /// decades (a plain net's gradient spanning 10⁻⁶⁰ beside a residual
    /// net's three decades), where a shared axis flattens the narrow panel
    /// into a line: then each panel gets its own.
    #[default]
    Auto,
    /// One y range for every panel, so heights compare across panels.
    Shared,
    /// Each panel its own y range and tick labels.
    Panel,
}

/// How big a chart is drawn: `gradscope plot --width --height
/// --font-scale --y-scale`. The defaults suit a slide on a projector (16 px
/// tick labels) as well as a page.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Style {
    /// The whole figure's width in pixels; `None`: 600 per panel column
    /// plus its legend strip (at least 800), 900 plus the strip for
    /// stacked panels.
    pub width: Option<u32>,
    /// The whole figure's height in pixels; `None`: 500 for one row of
    /// panels, 420 more per further row, 400 more per stacked panel.
    pub height: Option<u32>,
    /// Multiplies every text size and the room kept for text: margins,
    /// axis label areas, titles and legend strips.
    pub font_scale: f64,
    /// Shared or per-panel y ranges. Absent from a record written before
    /// it existed, which then reads as the default.
    #[serde(default)]
    pub y_scale: YScale,
}

impl Default for Style {
    fn default() -> Style {
        Style {
            width: None,
            height: None,
            font_scale: 1.0,
            y_scale: YScale::Auto,
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

impl Figure {
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
        let size = layout::size(self, style);

        // The image encoder picks the format from the extension, which the
        // temporary name keeps.
        replace(&png, self.name, "png", |tmp| {
            let root = GlyphFix(BitMapBackend::new(tmp, size)).into_drawing_area();
            draw_figure(&root, self, style, &mut Vec::new(), &mut Vec::new())
                .and_then(|()| root.present().map_err(|e| e.to_string()))
        })?;

        let mut text = String::new();
        let mut hover = Vec::new();
        let mut plot_rects = Vec::new();
        let drawn = {
            let root = SVGBackend::with_string(&mut text, size).into_drawing_area();
            draw_figure(&root, self, style, &mut hover, &mut plot_rects)
                .and_then(|()| root.present().map_err(|e| e.to_string()))
        };
        drawn.map_err(|message| draw_error(&svg, self.name, "svg", message))?;
        // The hover layer last, above everything (the plot areas too).
        let text = with_hover_layer(&with_plot_areas(&text, &plot_rects), &hover);
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

/// The SVG with every panel's plot area as an invisible
/// `<rect class="gs-plot">`: where the data are, so that a reader of the
/// file (and the tests, which check that no legend text lies inside one)
/// need not infer it from tick marks.
fn with_plot_areas(svg: &str, rects: &[PlotRect]) -> String {
    let Some(end) = svg.rfind("</svg>") else {
        return svg.to_owned();
    };
    let mut layer = String::from("<g class=\"gs-plot-areas\">\n");
    for r in rects {
        layer.push_str(&format!(
            "<rect class=\"gs-plot\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"none\" pointer-events=\"none\"/>\n",
            r.x, r.y, r.w, r.h
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
const GREY: RGBColor = RGBColor(90, 90, 90);
/// Size of the ▼ drawn for an exact zero, and the rise between the rows of
/// ▼ of differently coloured series (so that two series both 0 at the same
/// x stay visible).
const ZERO_HALF_WIDTH: i32 = 4;
const ZERO_HEIGHT: i32 = 7;
const ZERO_ROW: i32 = 8;
/// A diverged run's mark, and its text size at font scale 1.
pub(crate) const CROSS: &str = "✕";
pub(crate) const CROSS_SIZE: f64 = 18.0;

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
}
