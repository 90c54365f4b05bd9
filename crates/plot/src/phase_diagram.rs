//! `phase_diagram`: the final training error of every (σ_w², depth) cell of
//! a swept `variance` init as colour, with 6ξ_c from mean-field theory as
//! a curve and the order-to-chaos edge χ₁ = 1 as a vertical line
//! (Schoenholz et al. 2017, Fig. 5). Drawn only where [`crate::phase`]
//! finds a diagram: an MLP with one nonlinearity, a variance init swept
//! over two or more σ_w² at one σ_b², and two or more depths.
//!
//! x is σ_w² on a linear axis, each cell spanning halfway to its
//! neighbours, ticked at the swept values; y is the depth on a log axis,
//! each cell spanning to the geometric midpoints. Each cell also prints
//! its error in percent, and a cell whose trainability disagrees with
//! theory's prediction (depth ≤ 6ξ_c) is framed in red, so that the count
//! the report gives can be checked by eye.

use std::fs;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::colour_bar::{colour, ColourBar};
use crate::error::PlotError;
use crate::figure::{
    draw_header, ensure_font, Rendered, Style, AXIS_DESC_SIZE, FONT, PANEL_TITLE_SIZE, TICK_SIZE,
};
use crate::phase::{depth_limit, phase_of, Phase, TRAINABLE_MARGIN, XI_MULTIPLE};
use crate::read::ResultsDir;

/// The chart's name.
pub const PHASE_DIAGRAM: &str = "phase_diagram";

/// The frame of a cell that disagrees with the prediction, and the theory
/// curve's colour: a red that viridis does not have.
const MISMATCH: RGBColor = RGBColor(220, 30, 60);

/// Points of the 6ξ_c curve across the σ_w² axis. Each costs a
/// two-dimensional quadrature per bisection step of c* (about half a
/// second in chaos), so the curve is computed once for both files, and
/// 60 points (a step near 0.07 in σ_w² on the published axis) keep a
/// redraw within a minute.
const CURVE_POINTS: usize = 60;

/// Whether `results` have a phase diagram to draw.
pub fn has_phase_diagram(results: &ResultsDir) -> bool {
    phase_of(results).is_ok()
}

/// Writes `plots_dir/phase_diagram.png` and `.svg`, or a "no data" note
/// where [`phase_of`] finds no diagram.
pub fn phase_diagram(results: &ResultsDir, plots_dir: &Path) -> Result<Rendered, PlotError> {
    ensure_font()?;
    fs::create_dir_all(plots_dir).map_err(|source| PlotError::Io {
        path: plots_dir.to_path_buf(),
        source,
    })?;
    let style = results.style;
    let phase = phase_of(results);
    let has_data = phase
        .as_ref()
        .is_ok_and(|p| p.cells.iter().any(|c| c.error.is_some()));
    let size = (style.width.unwrap_or(1000), style.height.unwrap_or(680));
    let title = match results.config_str("/experiment") {
        Some(name) => format!("Trainable depth against σ_w² — {name}"),
        None => "Trainable depth against σ_w²".to_owned(),
    };
    let settings = results.settings();
    let words = match &phase {
        Ok(p) => format!(
            "colour: final training error; trainable = at least {:.0} points below chance ({:.0}%); red curve: {XI_MULTIPLE:.0}ξ_c from mean-field theory (σ_b² = {}); dashed: χ₁ = 1; red frame: trainability disagrees with depth ≤ {XI_MULTIPLE:.0}ξ_c",
            TRAINABLE_MARGIN * 100.0,
            p.chance * 100.0,
            p.sb
        ),
        Err(_) => String::new(),
    };
    let curve = phase.as_ref().map(curve).unwrap_or_default();
    let (png, svg) = write_png_and_svg!(plots_dir, PHASE_DIAGRAM, size, |root| draw(
        &root, &title, &settings, &words, &phase, &curve, &style
    ));
    Ok(Rendered {
        name: PHASE_DIAGRAM,
        png,
        svg,
        has_data,
    })
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    settings: &str,
    words: &str,
    phase: &Result<Phase, String>,
    curve: &[(f64, Option<f64>)],
    style: &Style,
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let notes: Vec<&str> = [settings, words]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    let body = draw_header(root, title, &notes, style)?;
    let phase = match phase {
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
    let bar_w = style.px_u32(170);
    let (panel, bar) = body.split_horizontally(body.dim_in_pixel().0.saturating_sub(bar_w));

    let xs = edges(&phase.weights);
    let depths: Vec<f64> = phase.depths.iter().map(|&d| f64::from(d)).collect();
    let ys = log_edges(&depths);
    let (x0, x1) = (xs[0], xs[xs.len() - 1]);
    let (y0, y1) = (ys[0], ys[ys.len() - 1]);
    let mut chart = ChartBuilder::on(&panel)
        .caption(
            format!(
                "final training error, one cell per run (σ_b² = {})",
                phase.sb
            ),
            (FONT, style.px(PANEL_TITLE_SIZE)),
        )
        .margin(8)
        .margin_right(16)
        .x_label_area_size(style.px_u32(56))
        .y_label_area_size(style.px_u32(70))
        .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
        .map_err(err)?;
    // The ticks are the swept values, drawn by hand below: plotters'
    // own would fall between them.
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(0)
        .y_labels(0)
        .x_desc("σ_w² (weight variance × fan-in)")
        .y_desc("depth (weight layers), log scale")
        .axis_desc_style((FONT, style.px(AXIS_DESC_SIZE)))
        .draw()
        .map_err(err)?;

    let scale = phase.chance.max(1e-9);
    let mut cells = Vec::new();
    let mut labels = Vec::new();
    let mut frames = Vec::new();
    for cell in &phase.cells {
        let (Some(i), Some(j)) = (
            phase.weights.iter().position(|&w| w == cell.sw),
            phase.depths.iter().position(|&d| d == cell.depth),
        ) else {
            continue;
        };
        let rect = [(xs[i], ys[j]), (xs[i + 1], ys[j + 1])];
        let centre = (cell.sw, f64::from(cell.depth));
        match cell.error {
            Some(e) => {
                let t = (e / scale).clamp(0.0, 1.0);
                cells.push(Rectangle::new(rect, colour(t).filled()));
                // Viridis is dark below about 0.6: white text there.
                let ink = if t < 0.6 { WHITE } else { BLACK };
                let mut text = format!("{:.0}", e * 100.0);
                if cell.diverged > 0 {
                    text.push('*');
                }
                labels.push((text, centre, ink));
            }
            None if cell.diverged > 0 => labels.push(("div.".to_owned(), centre, BLACK)),
            None => {}
        }
        if cell.agrees() == Some(false) {
            frames.push(Rectangle::new(rect, MISMATCH.stroke_width(3)));
        }
    }
    chart.draw_series(cells).map_err(err)?;
    chart.draw_series(frames).map_err(err)?;
    let font = (FONT, style.px(TICK_SIZE)).into_font();
    for (text, at, ink) in labels {
        chart
            .draw_series(std::iter::once(Text::new(
                text,
                at,
                font.clone()
                    .color(&ink)
                    .pos(Pos::new(HPos::Center, VPos::Center)),
            )))
            .map_err(err)?;
    }

    // The edge χ₁ = 1, where it falls on the axis.
    if let Some(edge) = phase.edge.filter(|e| (x0..=x1).contains(e)) {
        chart
            .draw_series(DashedLineSeries::new(
                vec![(edge, y0), (edge, y1)],
                9,
                5,
                BLACK.stroke_width(2),
            ))
            .map_err(err)?;
        let (px, py) = chart.backend_coord(&(edge, y1));
        root.draw(&Text::new(
            format!("χ₁ = 1 (σ_w² = {edge:.2})"),
            (px + 6, py + 4),
            font.clone()
                .color(&BLACK)
                .pos(Pos::new(HPos::Left, VPos::Top)),
        ))
        .map_err(err)?;
    }

    // 6ξ_c over a fine grid, cut where it leaves the axis: each piece
    // inside is drawn, reaching to the edge it crosses.
    for piece in pieces(curve, y0, y1) {
        chart
            .draw_series(LineSeries::new(piece, MISMATCH.stroke_width(3)))
            .map_err(err)?;
    }

    // Ticks: the swept σ_w² under the x axis, the depths left of the y
    // axis.
    for &w in &phase.weights {
        let (px, py) = chart.backend_coord(&(w, y0));
        root.draw(&PathElement::new(
            vec![(px, py), (px, py + 5)],
            BLACK.stroke_width(1),
        ))
        .map_err(err)?;
        root.draw(&Text::new(
            format_weight(w),
            (px, py + 8),
            font.clone()
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Top)),
        ))
        .map_err(err)?;
    }
    for &d in &depths {
        let (px, py) = chart.backend_coord(&(x0, d));
        root.draw(&PathElement::new(
            vec![(px - 5, py), (px, py)],
            BLACK.stroke_width(1),
        ))
        .map_err(err)?;
        root.draw(&Text::new(
            format!("{d:.0}"),
            (px - 8, py),
            font.clone()
                .color(&BLACK)
                .pos(Pos::new(HPos::Right, VPos::Center)),
        ))
        .map_err(err)?;
    }

    // The colour bar, 0 to chance, with the trainable threshold marked.
    let top = (phase.chance * 10.0).floor() as i32;
    let ticks: Vec<(f64, String)> = (0..=top)
        .step_by(2)
        .map(|k| (f64::from(k) / 10.0 / scale, format!("{}%", k * 10)))
        .chain(std::iter::once((
            1.0,
            format!("{:.0}% chance", phase.chance * 100.0),
        )))
        .collect();
    let ramp = ColourBar {
        top: 40,
        bottom: 110,
        title: "train error",
        ticks: &ticks,
        tick_marks: true,
        swatch: None,
    }
    .draw(&bar, style)?;
    let threshold = ((phase.chance - TRAINABLE_MARGIN) / scale).clamp(0.0, 1.0);
    let y = ramp.y(threshold);
    bar.draw(&PathElement::new(
        vec![(ramp.x0 - 4, y), (ramp.x0 + ramp.width + 4, y)],
        MISMATCH.stroke_width(2),
    ))
    .map_err(err)?;
    let below = ramp.y0 + ramp.height + style.px_u32(20) as i32;
    for (k, line) in ["red line on the bar:", "trainable below it"]
        .iter()
        .enumerate()
    {
        bar.draw(&Text::new(
            *line,
            (ramp.x0, below + k as i32 * style.px_u32(18) as i32),
            (FONT, style.px(TICK_SIZE)).into_font(),
        ))
        .map_err(err)?;
    }
    Ok(())
}

/// 6ξ_c at [`CURVE_POINTS`] + 1 values of σ_w² across the x axis (the
/// swept values' cell edges), each swept value among them so that the
/// curve passes through the table's numbers.
fn curve(phase: &Phase) -> Vec<(f64, Option<f64>)> {
    let xs = edges(&phase.weights);
    let (x0, x1) = (xs[0], xs[xs.len() - 1]);
    let mut at: Vec<f64> = (0..=CURVE_POINTS)
        .map(|k| x0 + (x1 - x0) * k as f64 / CURVE_POINTS as f64)
        .chain(phase.weights.iter().copied())
        .chain(phase.edge)
        .filter(|w| (x0..=x1).contains(w))
        .collect();
    at.sort_by(f64::total_cmp);
    at.dedup();
    at.into_iter()
        .map(|sw| (sw, depth_limit(phase.act, sw, phase.sb)))
        .collect()
}

/// "1.76", "4": a swept σ_w² as its tick says it.
fn format_weight(w: f64) -> String {
    let s = format!("{w:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Cell edges on a linear axis: halfway between neighbours, and as far out
/// again past the ends (a lone value spans ± 0.5).
fn edges(values: &[f64]) -> Vec<f64> {
    match values {
        [] => vec![0.0, 1.0],
        [v] => vec![v - 0.5, v + 0.5],
        _ => {
            let n = values.len();
            let mut out = vec![values[0] - 0.5 * (values[1] - values[0])];
            out.extend(values.windows(2).map(|w| 0.5 * (w[0] + w[1])));
            out.push(values[n - 1] + 0.5 * (values[n - 1] - values[n - 2]));
            out
        }
    }
}

/// [`edges`] on a log axis: geometric midpoints (values above 0).
fn log_edges(values: &[f64]) -> Vec<f64> {
    let logs: Vec<f64> = values.iter().map(|v| v.max(1e-9).ln()).collect();
    edges(&logs).into_iter().map(f64::exp).collect()
}

/// The pieces of a curve that lie within [lo, hi]: where it leaves, the
/// piece ends on the bound (linearly between the two samples in log y),
/// so that a curve that shoots up at the edge reaches the top of the plot
/// and comes back down rather than being drawn along it. Missing values
/// break the curve.
fn pieces(curve: &[(f64, Option<f64>)], lo: f64, hi: f64) -> Vec<Vec<(f64, f64)>> {
    let inside = |y: f64| (lo..=hi).contains(&y);
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    let mut prev: Option<(f64, f64)> = None;
    for &(x, y) in curve {
        let Some(y) = y.filter(|y| !y.is_nan()) else {
            if current.len() >= 2 {
                out.push(std::mem::take(&mut current));
            }
            current.clear();
            prev = None;
            continue;
        };
        if let Some((px, py)) = prev {
            // Where the segment from prev to here crosses a bound.
            let cross = |bound: f64| {
                let (a, b, c) = (py.max(1e-300).ln(), y.max(1e-300).ln(), bound.ln());
                let t = if b.is_finite() && a.is_finite() && b != a {
                    ((c - a) / (b - a)).clamp(0.0, 1.0)
                } else if inside(py) {
                    1.0
                } else {
                    0.0
                };
                (px + t * (x - px), bound)
            };
            match (inside(py), inside(y)) {
                (true, false) => {
                    current.push(cross(if y > hi { hi } else { lo }));
                    if current.len() >= 2 {
                        out.push(std::mem::take(&mut current));
                    }
                    current.clear();
                }
                (false, true) => {
                    current.push(cross(if py > hi { hi } else { lo }));
                }
                _ => {}
            }
        }
        if inside(y) {
            current.push((x, y));
        }
        prev = Some((x, y));
    }
    if current.len() >= 2 {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_span_halfway_to_their_neighbours() {
        assert_eq!(edges(&[1.0, 2.0, 4.0]), vec![0.5, 1.5, 3.0, 5.0]);
        let log = log_edges(&[10.0, 100.0]);
        assert!((log[1] - 1000f64.sqrt()).abs() < 1e-9, "{log:?}");
        assert!((log[0] - 10f64.sqrt()).abs() < 1e-9, "{log:?}");
    }

    /// A curve that spikes out of the axis comes back as two pieces, each
    /// ending on the top bound; missing values break it too.
    #[test]
    fn the_curve_is_cut_where_it_leaves_the_axis() {
        let curve = [
            (0.0, Some(10.0)),
            (1.0, Some(50.0)),
            (2.0, Some(f64::INFINITY)),
            (3.0, Some(50.0)),
            (4.0, None),
            (5.0, Some(20.0)),
            (6.0, Some(30.0)),
        ];
        let p = pieces(&curve, 5.0, 100.0);
        assert_eq!(p.len(), 3, "{p:?}");
        assert_eq!(p[0][..2], [(0.0, 10.0), (1.0, 50.0)]);
        assert_eq!(p[0].last().unwrap().1, 100.0);
        assert_eq!(p[1][0].1, 100.0);
        assert_eq!(*p[1].last().unwrap(), (3.0, 50.0));
        assert_eq!(p[2], vec![(5.0, 20.0), (6.0, 30.0)]);
        assert_eq!(format_weight(1.76), "1.76");
        assert_eq!(format_weight(4.0), "4");
    }
}
