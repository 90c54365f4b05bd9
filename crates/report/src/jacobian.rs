//! The report's Jacobian section (Pennington, Schoenholz & Ganguli 2017),
//! when `gradscope jacobian` has written `jacobian_summary.csv`: each run's
//! spectrum readings at init and after training, and a reading of each
//! spectrum at init.
//!
//! The rules, each unit-tested here:
//! - a spectrum is **concentrated** when the standard deviation of ln s is
//!   at most [`CONCENTRATED`] (most singular values within a factor
//!   e^0.25 ≈ 1.3 of each other's geometric mean), **wide** when it is at
//!   least [`WIDE`] (a factor e ≈ 2.7 or more), neither in between
//!   ([`width_reading`]).

use std::path::Path;

use gradscope_format::files::{JACOBIAN_CSV, JACOBIAN_SUMMARY_CSV, PLOTS_DIR, RUNS_DIR};
use gradscope_format::jacobian::{read_summary, JacobianSummaryRow};
use gradscope_plot::JACOBIAN_SPECTRUM;

use crate::page::Block;

/// The widest spread of ln s still read as concentrated.
pub(crate) const CONCENTRATED: f64 = 0.25;
/// The narrowest spread of ln s read as wide.
pub(crate) const WIDE: f64 = 1.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Width {
    Concentrated,
    Between,
    Wide,
}

/// How wide a spectrum with this spread of ln s is (`None`: a zero
/// singular value, as wide as it gets).
pub(crate) fn width_reading(log_spread: Option<f64>) -> Width {
    match log_spread {
        Some(s) if s <= CONCENTRATED => Width::Concentrated,
        Some(s) if s < WIDE => Width::Between,
        _ => Width::Wide,
    }
}

fn word(w: Width) -> &'static str {
    match w {
        Width::Concentrated => "concentrated",
        Width::Between => "neither concentrated nor wide",
        Width::Wide => "wide",
    }
}

/// Draws `jacobian_spectrum` when a Jacobian file is newer than it or it
/// is missing; a chart that cannot be drawn is a problem in the report.
pub(crate) fn draw_stale(root: &Path, problems: &mut Vec<String>) {
    let summary = root.join(JACOBIAN_SUMMARY_CSV);
    if !summary.is_file() {
        return;
    }
    let modified = |p: &Path| p.metadata().and_then(|m| m.modified()).ok();
    let newest = std::fs::read_dir(root.join(RUNS_DIR))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join(JACOBIAN_CSV))
        .chain([summary])
        .filter_map(|p| modified(&p))
        .max();
    let drawn = modified(
        &root
            .join(PLOTS_DIR)
            .join(format!("{JACOBIAN_SPECTRUM}.png")),
    );
    if drawn.is_none() || newest > drawn {
        let style = gradscope_plot::fresh::recorded_style(root);
        if let Err(e) = gradscope_plot::render_jacobian(root, style) {
            problems.push(format!("jacobian chart not drawn: {e}"));
        }
    }
}

/// `digits` decimals, or scientific notation where that would hide the
/// value: a collapsed spectrum's mean s² of 1e-30 is not "0.0000".
fn num(v: Option<f64>, digits: usize) -> String {
    match v {
        Some(v) if v.is_finite() && v != 0.0 && !(1e-3..1e4).contains(&v.abs()) => {
            format!("{v:.3e}")
        }
        Some(v) if v.is_finite() => format!("{v:.digits$}"),
        Some(v) => format!("{v}"),
        None => "–".into(),
    }
}

pub(crate) fn section(root: &Path) -> Vec<Block> {
    let read = read_summary(root);
    if matches!(read, Ok(None)) {
        return Vec::new();
    }
    let mut out = vec![Block::Heading(
        2,
        "The Jacobian's spectrum (Pennington et al. 2017)".to_owned(),
    )];
    // The error already names the file.
    let rows: Vec<JacobianSummaryRow> = match read {
        Ok(rows) => rows.unwrap_or_default(),
        Err(e) => {
            out.push(Block::Para(format!("Not read: {e}")));
            return out;
        }
    };
    let Some(r0) = rows.first() else {
        return out;
    };
    out.push(Block::Para(format!(
        "`gradscope jacobian` rebuilt each run's net (at init from its seed, after training from model.ot), cast it to float64 and took the Jacobian J = ∂h(d−2)/∂h(0) of its trunk, from the first hidden pre-activation to the last, exactly (one backward pass per row) at the first {} training inputs. \
Its singular values s read: the mean of s² (1 at criticality), the standard deviation of ln s (the spectrum's width on a log axis) and max s / min s.",
        r0.examples
    )));
    out.push(Block::Para("What the paper found: at criticality, orthogonal weights in a tanh net concentrate the spectrum near 1 (dynamical isometry) and that net learns fastest, while a ReLU net's spectrum stays wide under Gaussian and orthogonal weights alike.".to_owned()));
    let header = [
        "run",
        "activation",
        "init",
        "step",
        "mean s²",
        "std of ln s",
        "max/min",
        "final train error %",
    ]
    .map(str::to_owned)
    .to_vec();
    let table = rows
        .iter()
        .map(|r| {
            vec![
                r.run.clone(),
                r.activation.clone(),
                r.init.clone(),
                r.step.to_string(),
                num(Some(r.mean_sq), 4),
                num(r.log_spread, 3),
                num(r.condition, 3),
                num(r.final_train_error.map(|e| 100.0 * e), 2),
            ]
        })
        .collect();
    out.push(Block::Table(header, table));
    out.push(Block::Para(format!(
        "What the numbers show (at init; concentrated: std of ln s ≤ {CONCENTRATED}, wide: ≥ {WIDE}):"
    )));
    let items = rows
        .iter()
        .filter(|r| r.step == 0)
        .map(|r| {
            format!(
                "{} with {} weights: **{}** (std of ln s {}, mean s² {}){}",
                r.activation,
                r.init,
                word(width_reading(r.log_spread)),
                num(r.log_spread, 3),
                num(Some(r.mean_sq), 3),
                r.final_train_error
                    .map(|e| format!("; final train error {:.2}%", 100.0 * e))
                    .unwrap_or_default()
            )
        })
        .collect();
    out.push(Block::List(items));
    if root
        .join(PLOTS_DIR)
        .join(format!("{JACOBIAN_SPECTRUM}.png"))
        .is_file()
    {
        out.push(Block::Heading(3, JACOBIAN_SPECTRUM.to_owned()));
        out.push(Block::Para("*Density of the singular values on a log axis, one panel per activation, a colour per init; solid at init, dashed after training (Pennington et al. Fig. 1 and 4).*".to_owned()));
        out.push(Block::Chart(JACOBIAN_SPECTRUM.to_owned(), String::new()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_by_the_spread_of_ln_s() {
        assert_eq!(width_reading(Some(0.0)), Width::Concentrated);
        assert_eq!(width_reading(Some(CONCENTRATED)), Width::Concentrated);
        assert_eq!(width_reading(Some(0.5)), Width::Between);
        assert_eq!(width_reading(Some(WIDE)), Width::Wide);
        // A zero singular value: ln s = −∞, the widest spectrum there is.
        assert_eq!(width_reading(None), Width::Wide);
    }

    #[test]
    fn tiny_and_huge_numbers_keep_their_size() {
        assert_eq!(num(Some(1.0779e-30), 4), "1.078e-30");
        assert_eq!(num(Some(8.7e20), 3), "8.700e20");
        assert_eq!(num(Some(0.3416), 4), "0.3416");
        assert_eq!(num(Some(0.0), 4), "0.0000");
        assert_eq!(num(None, 4), "–");
    }
}
