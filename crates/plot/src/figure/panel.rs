//! How one panel of a [`Figure`] is drawn: `draw_panel` and its steps, in
//! layers from the back (axes, error bars, lines, exact zeros, then a "no
//! data" note or the legend), and where the legend goes. Apart from
//! `figure.rs` because it is the plotters side of a figure, while the
//! figure's description and layout do not depend on how a panel is drawn.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::axis::{tick_label, ticks, TickedAxis};

use super::{
    down_triangle, floor_xs, hover_number, panel_has_data, segments, Figure, HoverPoint, Marker,
    Panel, Style, AXIS_DESC_SIZE, FONT, GREY, HOVER_POINTS_PER_SERIES, LEGEND_GLYPH, LEGEND_MARGIN,
    LEGEND_SIZE, LINE_WIDTH, PANEL_TITLE_SIZE, TICK_SIZE, ZERO_HEIGHT, ZERO_ROW,
};

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
pub(super) fn draw_panel<'a, DB: DrawingBackend + 'a>(
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
pub(super) fn legend_position(
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
