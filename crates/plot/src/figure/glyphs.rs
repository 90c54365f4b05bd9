//! Text in the PNG charts placed glyph by glyph as the font says.
//!
//! plotters 0.3.7 rasterizes text through ab_glyph but draws each glyph's
//! pixels from the pen position, dropping the glyph's left side bearing
//! (`px_bounds().min.x`; only the vertical offset is kept). Glyphs with a
//! bearing of a pixel or more (n, m, k, h at 15 px) then sit a pixel to
//! the left of those with less (o, e, a), so a subtitle reads "o ne line
//! per depth" and "k aiming". The SVG is not affected: it writes text
//! elements that the viewer lays out.
//!
//! [`GlyphFix`] wraps a bitmap backend and draws text itself, with the
//! bearing, at sub-pixel pen positions (ab_glyph positions each outline
//! before rasterizing it), and kerning as plotters applies it; every other
//! drawing call goes through unchanged.

use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, ScaleFont};
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
};

use super::FONT_BYTES;

/// The embedded font, parsed once.
fn font() -> Option<&'static FontRef<'static>> {
    static FONT: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(FONT_BYTES).ok())
        .as_ref()
}

/// A backend whose text is drawn with each glyph's side bearing.
pub(crate) struct GlyphFix<B>(pub B);

/// Every glyph of `text` at `size` px laid out from (0, 0) at the top of
/// the line: for each covered pixel, its offset and coverage.
fn rasterize(font: &FontRef<'static>, size: f32, text: &str, mut put: impl FnMut(i32, i32, f32)) {
    let scaled = font.as_scaled(size);
    let mut pen = 0f32;
    let mut prev = None;
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(p) = prev {
            pen += scaled.kern(p, id);
        }
        prev = Some(id);
        let glyph = id.with_scale_and_position(size, ab_glyph::point(pen, 0.0));
        if let Some(outline) = scaled.outline_glyph(glyph) {
            let b = outline.px_bounds();
            // The vertical placement is plotters' own (the baseline
            // `size / 2` below the top), so that text sits where its
            // layout box says; the horizontal one keeps the bearing.
            let (x0, y0) = (b.min.x as i32, (size / 2.0 + b.min.y) as i32);
            outline.draw(|x, y, cov| put(x0 + x as i32, y0 + y as i32, cov));
        }
        pen += scaled.h_advance(id);
    }
}

impl<B: DrawingBackend> DrawingBackend for GlyphFix<B> {
    type ErrorType = B::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.0.get_size()
    }
    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.0.ensure_prepared()
    }
    fn present(&mut self) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.0.present()
    }
    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.0.draw_pixel(point, color)
    }
    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.0.draw_line(from, to, style)
    }
    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.0.draw_rect(upper_left, bottom_right, style, fill)
    }
    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.0.draw_path(path, style)
    }
    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.0.draw_circle(center, radius, style, fill)
    }
    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.0.fill_polygon(vert, style)
    }
    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.0.blit_bitmap(pos, size, src)
    }
    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<B::ErrorType>> {
        self.0.estimate_text_size(text, style)
    }

    /// plotters' own `draw_text` (anchor from the layout box, then the
    /// rotation), with [`rasterize`] in place of the font's `draw`.
    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        let Some(font) = font() else {
            return self.0.draw_text(text, style, pos);
        };
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let ((min_x, min_y), (max_x, max_y)) = style
            .layout_box(text)
            .map_err(|e| DrawingErrorKind::FontError(Box::new(e)))?;
        let (width, height) = (max_x - min_x, max_y - min_y);
        let dx = match style.anchor().h_pos {
            HPos::Left => 0,
            HPos::Right => -width,
            HPos::Center => -width / 2,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0,
            VPos::Center => -height / 2,
            VPos::Bottom => -height,
        };
        let trans = style.transform();
        let (w, h) = self.0.get_size();
        let mut pixels = Vec::new();
        rasterize(font, style.size() as f32, text, |x, y, cov| {
            pixels.push((x, y, cov));
        });
        for (x, y, cov) in pixels {
            let (x, y) = trans.transform(x + dx - min_x, y + dy - min_y);
            let (x, y) = (pos.0 + x, pos.1 + y);
            if x >= 0 && x < w as i32 && y >= 0 && y < h as i32 {
                let c = BackendColor {
                    alpha: color.alpha * f64::from(cov),
                    rgb: color.rgb,
                };
                self.0.draw_pixel((x, y), c)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The columns of `text` that any glyph covers, from [`rasterize`].
    fn ink(text: &str) -> Vec<i32> {
        let mut cols = Vec::new();
        rasterize(font().expect("font"), 15.0, text, |x, _, cov| {
            if cov > 0.3 {
                cols.push(x);
            }
        });
        cols.sort_unstable();
        cols.dedup();
        cols
    }

    /// The blank columns between the glyphs of "one": with the bearings
    /// the gaps o–n and n–e are within a pixel of each other (plotters'
    /// own drawing made the second two pixels wider: "o ne").
    #[test]
    fn one_has_even_gaps() {
        let cols = ink("one");
        let gaps: Vec<i32> = cols
            .windows(2)
            .filter(|w| w[1] - w[0] > 1)
            .map(|w| w[1] - w[0] - 1)
            .collect();
        assert!(gaps.len() <= 2, "{cols:?}");
        if let [a, b] = gaps[..] {
            assert!((a - b).abs() <= 1, "gaps {gaps:?} in {cols:?}");
        }
    }

    #[test]
    fn the_font_has_a_cross() {
        let f = font().expect("font");
        assert_ne!(f.glyph_id('✕').0, 0, "DejaVu Sans draws ✕");
    }
}
