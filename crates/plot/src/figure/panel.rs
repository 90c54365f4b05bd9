//! How one panel of a [`Figure`] is drawn: `draw_panel` and its steps, in
//! layers from the back (axes, error bars, lines, exact zeros, diverged
//! runs' ✕, then a "no data" note), and the legend in its strip beside the
//! plot. Apart from `figure.rs` because it is the plotters side of a
//! figure, while the figure's description does not depend on how a panel
//! is drawn.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::axis::{tick_label, ticks, TickedAxis};

use super::layout::PlotRect;
use super::legend::{draw_cross, draw_legend};
use super::{
    down_triangle, floor_xs, hover_number, panel_has_data, segments, Figure, HoverPoint, Marker,
    Panel, Style, AXIS_DESC_SIZE, CROSS_SIZE, FONT, GREY, HOVER_POINTS_PER_SERIES, LINE_WIDTH,
    PANEL_TITLE_SIZE, TICK_SIZE, ZERO_ROW,
};

/// The chart of one panel: plotters' context over its ticked axes.
type PanelChart<'a, DB> = ChartContext<'a, DB, Cartesian2d<TickedAxis, TickedAxis>>;

/// A drawing error as the text [`PlotError`] carries.
fn draw_err<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> String {
    e.to_string()
}

/// Draws one panel into its cell `area`, in layers from the back: axes and
/// grid, min–max bars, lines and markers, exact zeros on the bottom edge,
/// diverged runs' ✕, then a "no data" note; its legend goes into the
/// `strip` pixels at the cell's right, outside the plot. Records each
/// drawn value's pixel in `hover` for the SVG; returns the plot area.
#[allow(clippy::too_many_arguments)]
pub(super) fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    fig: &Figure,
    panel: &Panel,
    xr: (f64, f64),
    yr: (f64, f64),
    style: &Style,
    strip: u32,
    hover: &mut Vec<HoverPoint>,
) -> Result<PlotRect, String> {
    let (cell_w, _) = area.dim_in_pixel();
    let (plot_cell, strip_area) = area.split_horizontally(cell_w.saturating_sub(strip));
    let mut chart = panel_chart(&plot_cell, fig, panel, xr, yr, style)?;
    let plot = chart.plotting_area();
    let (px, py) = plot.get_base_pixel();
    let (pw, ph) = plot.dim_in_pixel();
    let rect = PlotRect {
        x: px,
        y: py,
        w: i32::try_from(pw).unwrap_or(0),
        h: i32::try_from(ph).unwrap_or(0),
    };
    draw_error_bars(&mut chart, fig, panel, xr)?;
    record_hover(&chart, fig, panel, yr, hover);
    draw_lines(&mut chart, fig, panel, yr)?;
    draw_zeros(&mut chart, fig, panel, yr)?;
    draw_crosses(&chart, fig, panel, yr, style)?;
    if !panel_has_data(panel, fig) && panel.crosses.is_empty() {
        draw_no_data(&mut chart, panel, xr, yr, style)?;
    }
    if !panel.legend.is_empty() && strip > 0 {
        let top = py - strip_area.get_base_pixel().1;
        draw_legend(&strip_area, &panel.legend, top, style)?;
    }
    Ok(rect)
}

/// `points` with every value outside the y range `yr` (drawing units) made
/// NaN, so that the line breaks there: only a diverged series, left out of
/// a shared range, has such values, and plotters would draw them over the
/// neighbouring panels.
fn clipped(points: &[(f64, f64)], fig: &Figure, yr: (f64, f64)) -> Vec<(f64, f64)> {
    let slack = (yr.1 - yr.0).abs() * 1e-9;
    points
        .iter()
        .map(|&(x, y)| {
            if fig.y.scale.usable(y) {
                let v = fig.y.scale.to_plot(y);
                if v < yr.0 - slack || v > yr.1 + slack {
                    return (x, f64::NAN);
                }
            }
            (x, y)
        })
        .collect()
}

/// Each ✕ at its value, or on the top edge when it has none or its value
/// lies outside the range.
fn draw_crosses<'a, DB: DrawingBackend + 'a>(
    chart: &PanelChart<'a, DB>,
    fig: &Figure,
    panel: &Panel,
    yr: (f64, f64),
    style: &Style,
) -> Result<(), String> {
    let area = chart.plotting_area().strip_coord_spec();
    let (bx, by) = area.get_base_pixel();
    // Two variants diverged at the same depth: their ✕ side by side, not
    // one over the other.
    let mut placed: Vec<(i32, i32)> = Vec::new();
    let step = (style.px(CROSS_SIZE) * 0.8).round() as i32;
    for c in &panel.crosses {
        if !fig.x.scale.usable(c.x) {
            continue;
        }
        let y =
            c.y.filter(|&y| fig.y.scale.usable(y))
                .map(|y| fig.y.scale.to_plot(y))
                .filter(|v| (yr.0..=yr.1).contains(v))
                .unwrap_or(yr.1);
        let (px, py) = chart.backend_coord(&(fig.x.scale.to_plot(c.x), y));
        let k = i32::try_from(placed.iter().filter(|&&p| p == (px, py)).count()).unwrap_or(0);
        placed.push((px, py));
        let shift = (k + 1) / 2 * step * if k % 2 == 1 { 1 } else { -1 };
        draw_cross(&area, (px - bx + shift, py - by), c.color, style).map_err(draw_err)?;
    }
    Ok(())
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
    // The title in a band of its own, not plotters' caption, whose gap
    // below the text is at most 5 px whatever the font: the top tick
    // label, centred on the plot's top edge, ran into it.
    let (band, area) = area.split_vertically(style.px_u32(8 + 30));
    let (w, _) = band.dim_in_pixel();
    band.draw(&Text::new(
        panel.title.clone(),
        (i32::try_from(w / 2).unwrap_or(0), style.px_u32(8) as i32),
        (FONT, style.px(PANEL_TITLE_SIZE))
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Top)),
    ))
    .map_err(err)?;
    let mut chart = ChartBuilder::on(&area)
        // Every margin grows with the text: the top one keeps the top tick
        // label clear of the title band, the right one the last x tick
        // label clear of the legend strip.
        .margin(style.px_u32(8))
        .margin_top(style.px_u32(16))
        .margin_right(style.px_u32(24))
        // Room for the tick labels and the axis description.
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
    yr: (f64, f64),
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
        let usable: Vec<(f64, f64)> = clipped(&s.points, fig, yr)
            .into_iter()
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

/// Every series' lines (broken where a value is unusable or out of range)
/// and markers.
fn draw_lines<'a, DB: DrawingBackend + 'a>(
    chart: &mut PanelChart<'a, DB>,
    fig: &Figure,
    panel: &Panel,
    yr: (f64, f64),
) -> Result<(), String> {
    let err = draw_err::<DB::ErrorType>;
    let (xscale, yscale) = (fig.x.scale, fig.y.scale);
    for s in &panel.series {
        let style = ShapeStyle::from(s.color).stroke_width(LINE_WIDTH);
        for seg in segments(&clipped(&s.points, fig, yr), xscale, yscale) {
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
        }
    }
    Ok(())
}

/// Exact zeros: ▼ with its tip on the bottom edge, one row per colour.
fn draw_zeros<'a, DB: DrawingBackend + 'a>(
    chart: &mut PanelChart<'a, DB>,
    fig: &Figure,
    panel: &Panel,
    yr: (f64, f64),
) -> Result<(), String> {
    let err = draw_err::<DB::ErrorType>;
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
    }
    Ok(())
}

/// "no data" in the middle of an empty panel, with the reason below it.
fn draw_no_data<'a, DB: DrawingBackend + 'a>(
    chart: &mut PanelChart<'a, DB>,
    panel: &Panel,
    xr: (f64, f64),
    yr: (f64, f64),
    style: &Style,
) -> Result<(), String> {
    let err = draw_err::<DB::ErrorType>;
    let mid = ((xr.0 + xr.1) / 2.0, (yr.0 + yr.1) / 2.0);
    let font = (FONT, style.px(22.0))
        .into_font()
        .color(&GREY)
        .pos(Pos::new(HPos::Center, VPos::Center));
    chart
        .draw_series([Text::new("no data".to_owned(), mid, font)])
        .map_err(err)?;
    if let Some(reason) = &panel.empty_reason {
        let below = (mid.0, yr.0 + (yr.1 - yr.0) * 0.40);
        let font = (FONT, style.px(13.0))
            .into_font()
            .color(&GREY)
            .pos(Pos::new(HPos::Center, VPos::Center));
        chart
            .draw_series([Text::new(reason.clone(), below, font)])
            .map_err(err)?;
    }
    Ok(())
}
