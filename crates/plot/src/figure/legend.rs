//! A panel's legend, drawn in a strip to the right of its plot area.
//!
//! A legend inside the plot always covers some chart's data (fashion-mlp's
//! plain depth-64 line showed through it; layer_response_std's hid the
//! depth-64 tail), so it has a place of its own: one entry per line from
//! the plot's top edge down, glyph then label. Every size here is scaled
//! by the font scale, and the strip's width is measured from the labels,
//! so a larger font widens the strip rather than spilling over the data.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    down_triangle, LegendEntry, Marker, Panel, Style, CROSS, CROSS_SIZE, FONT, LEGEND_SIZE,
    LINE_WIDTH,
};

/// Sizes of a legend at a font scale, in pixels.
struct Metrics {
    font: f64,
    /// Room on either side of the entries.
    pad: i32,
    /// Length of an entry's line sample.
    glyph: i32,
    /// Between sample and label.
    gap: i32,
    /// From one entry to the next.
    line: i32,
}

impl Metrics {
    fn new(style: &Style) -> Metrics {
        let s = |v: f64| style.px(v).round() as i32;
        Metrics {
            font: style.px(LEGEND_SIZE),
            pad: s(10.0),
            glyph: s(24.0),
            gap: s(6.0),
            line: s(LEGEND_SIZE * 1.45),
        }
    }

    fn text_width(&self, text: &str) -> i32 {
        (FONT, self.font)
            .into_font()
            .box_size(text)
            .map_or(0, |(w, _)| i32::try_from(w).unwrap_or(i32::MAX))
    }

    /// Strip width for `entries`: both pads, the sample, the gap and the
    /// widest label.
    fn width(&self, entries: &[LegendEntry]) -> i32 {
        let text = entries
            .iter()
            .map(|e| self.text_width(&e.label))
            .max()
            .unwrap_or(0);
        2 * self.pad + self.glyph + self.gap + text
    }
}

/// The width of the legend strip beside every panel: the widest legend of
/// any panel (0 when none has one), at most `cap` pixels.
pub(super) fn strip_width(panels: &[Panel], style: &Style, cap: Option<u32>) -> u32 {
    let m = Metrics::new(style);
    let w = panels
        .iter()
        .filter(|p| !p.legend.is_empty())
        .map(|p| m.width(&p.legend))
        .max()
        .unwrap_or(0);
    let w = u32::try_from(w).unwrap_or(0);
    cap.map_or(w, |c| w.min(c))
}

/// `label` cut to `max` pixels with "…" where it is longer.
fn fit(m: &Metrics, label: &str, max: i32) -> String {
    if m.text_width(label) <= max {
        return label.to_owned();
    }
    let mut chars: Vec<char> = label.chars().collect();
    while !chars.is_empty() {
        chars.pop();
        let cut: String = chars.iter().collect::<String>() + "…";
        if m.text_width(&cut) <= max {
            return cut;
        }
    }
    String::new()
}

/// Draws `entries` into `strip` (a panel's legend strip), the first at
/// `top` pixels below the strip's top edge.
pub(super) fn draw_legend<DB: DrawingBackend>(
    strip: &DrawingArea<DB, Shift>,
    entries: &[LegendEntry],
    top: i32,
    style: &Style,
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let m = Metrics::new(style);
    let (w, _) = strip.dim_in_pixel();
    let max_text = i32::try_from(w).unwrap_or(0) - 2 * m.pad - m.glyph - m.gap;
    let width = (f64::from(LINE_WIDTH) * style.font_scale.max(1.0)).round() as u32;
    let font = (FONT, m.font)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (i, entry) in (0..).zip(entries) {
        let y = top + m.line / 2 + i * m.line;
        let x = m.pad;
        draw_sample(strip, entry, (x, y), m.glyph, width, style).map_err(err)?;
        let label = fit(&m, &entry.label, max_text);
        strip
            .draw(&Text::new(label, (x + m.glyph + m.gap, y), font.clone()))
            .map_err(err)?;
    }
    Ok(())
}

/// An entry's sample at `(x, y)`, `len` pixels long: its line, solid or
/// dashed (none for an all-zero, absent or diverged entry), with its
/// marker in the middle.
fn draw_sample<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entry: &LegendEntry,
    (x, y): (i32, i32),
    len: i32,
    width: u32,
    style: &Style,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let color = entry.color;
    let stroke = ShapeStyle::from(color).stroke_width(width);
    let line = !matches!(
        entry.marker,
        Some(Marker::Zero | Marker::Absent | Marker::Cross)
    );
    if line && entry.dashed {
        let third = len / 3;
        area.draw(&PathElement::new(vec![(x, y), (x + third, y)], stroke))?;
        area.draw(&PathElement::new(
            vec![(x + len - third, y), (x + len, y)],
            stroke,
        ))?;
    } else if line {
        area.draw(&PathElement::new(vec![(x, y), (x + len, y)], stroke))?;
    }
    let mid = x + len / 2;
    let r = (4.0 * style.font_scale.max(1.0)).round() as i32;
    match entry.marker {
        Some(Marker::Circle) => area.draw(&Circle::new((mid, y), r, color.filled()))?,
        Some(Marker::Triangle) => {
            area.draw(&TriangleMarker::new((mid, y), r + 1, color.filled()))?;
        }
        Some(Marker::Zero) => {
            area.draw(&Polygon::new(down_triangle(mid, y + r), color.filled()))?;
        }
        Some(Marker::Cross) => draw_cross(area, (mid, y), color, style)?,
        Some(Marker::Absent) | None => {}
    }
    Ok(())
}

/// A ✕ centred on `(x, y)` pixels of `area`: the glyph, so that the SVG
/// says what it is (a text "✕"), in the run's colour.
pub(super) fn draw_cross<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (x, y): (i32, i32),
    color: RGBColor,
    style: &Style,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    area.draw(&Text::new(
        CROSS.to_owned(),
        (x, y),
        (FONT, style.px(CROSS_SIZE))
            .into_font()
            .color(&color)
            .pos(Pos::new(HPos::Center, VPos::Center)),
    ))
}
