//! The viridis colour scale and the vertical colour bar that names it,
//! shared by the gradient heatmap (`heatmap.rs`) and the loss landscape
//! (`landscape.rs`).

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::figure::{Style, AXIS_DESC_SIZE, FONT, TICK_SIZE};

/// Viridis at nine stops (Smith & van der Walt's matplotlib colour map):
/// ordered in lightness, readable in grey and by colour-blind readers.
const VIRIDIS: [(u8, u8, u8); 9] = [
    (68, 1, 84),
    (71, 44, 122),
    (59, 81, 139),
    (44, 113, 142),
    (33, 144, 141),
    (39, 173, 129),
    (92, 200, 99),
    (170, 220, 50),
    (253, 231, 37),
];

/// The colour of `t` in 0..=1 on [`VIRIDIS`], linearly between stops.
pub(crate) fn colour(t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0) * (VIRIDIS.len() - 1) as f64;
    let i = (t.floor() as usize).min(VIRIDIS.len() - 2);
    let f = t - i as f64;
    let mix = |a: u8, b: u8| (f64::from(a) + f * (f64::from(b) - f64::from(a))).round() as u8;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// A colour off the scale, in a square under the bar, and what it means
/// (one line of text each, beside the square).
pub(crate) struct Swatch<'a> {
    pub colour: RGBColor,
    pub lines: &'a [&'a str],
}

/// A vertical colour bar: the viridis ramp in a black frame, labels to its
/// right, a title above it, an optional [`Swatch`] below it. Lengths are
/// unscaled pixels ([`Style::px_u32`] scales them).
pub(crate) struct ColourBar<'a> {
    /// Room above the ramp (the title sits in it).
    pub top: u32,
    /// Room below the ramp (the swatch sits in it).
    pub bottom: u32,
    pub title: &'a str,
    /// (position on the scale, 0 at the bottom and 1 at the top; label).
    pub ticks: &'a [(f64, String)],
    /// Whether a short black mark joins each label to the ramp.
    pub tick_marks: bool,
    pub swatch: Option<Swatch<'a>>,
}

/// Where a [`ColourBar`] drew its ramp, in the bar area's pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ramp {
    pub x0: i32,
    pub y0: i32,
    pub width: i32,
    pub height: i32,
}

impl Ramp {
    /// The pixel row of scale position `t` (0 the bottom edge, 1 the top).
    pub(crate) fn y(&self, t: f64) -> i32 {
        self.y0 + self.height - (t * f64::from(self.height)).round() as i32
    }
}

impl ColourBar<'_> {
    /// Draws the bar at the left of `area`; returns where its ramp is, for
    /// marks drawn across it afterwards.
    pub(crate) fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        style: &Style,
    ) -> Result<Ramp, String> {
        let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        let px = |v: u32| style.px_u32(v) as i32;
        let (_, area_h) = area.dim_in_pixel();
        let (x0, y0, width) = (px(24), px(self.top), px(24));
        let ramp = Ramp {
            x0,
            y0,
            width,
            height: (area_h as i32 - y0 - px(self.bottom)).max(40),
        };
        let (x1, height) = (x0 + width, ramp.height);
        for py in 0..height {
            let t = 1.0 - f64::from(py) / f64::from(height - 1);
            area.draw(&Rectangle::new(
                [(x0, y0 + py), (x1, y0 + py + 1)],
                colour(t).filled(),
            ))
            .map_err(err)?;
        }
        area.draw(&Rectangle::new(
            [(x0, y0), (x1, y0 + height)],
            BLACK.stroke_width(1),
        ))
        .map_err(err)?;
        // Text right of the ramp (or of the swatch): its left edge.
        let text_x = x1 + 7;
        for (t, label) in self.ticks {
            let y = ramp.y(*t);
            if self.tick_marks {
                area.draw(&PathElement::new(
                    vec![(x1, y), (x1 + 4, y)],
                    BLACK.stroke_width(1),
                ))
                .map_err(err)?;
            }
            area.draw(&Text::new(
                label.as_str(),
                (text_x, y),
                (FONT, style.px(TICK_SIZE))
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(err)?;
        }
        area.draw(&Text::new(
            self.title,
            (x0, y0 - px(26)),
            (FONT, style.px(AXIS_DESC_SIZE)).into_font(),
        ))
        .map_err(err)?;
        if let Some(swatch) = &self.swatch {
            let y = y0 + height + px(24);
            area.draw(&Rectangle::new(
                [(x0, y), (x1, y + width)],
                swatch.colour.filled(),
            ))
            .map_err(err)?;
            for (i, line) in (0..).zip(swatch.lines) {
                area.draw(&Text::new(
                    *line,
                    (text_x, y + i * px(18)),
                    (FONT, style.px(TICK_SIZE)).into_font(),
                ))
                .map_err(err)?;
            }
        }
        Ok(ramp)
    }
}
