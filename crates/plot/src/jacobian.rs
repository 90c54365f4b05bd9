//! The chart of `gradscope jacobian` (Pennington, Schoenholz & Ganguli
//! 2017, Fig. 1 and 4), from `jacobian_summary.csv` and each run's
//! `jacobian.csv`: `jacobian_spectrum`, the density of the trunk
//! Jacobian's singular values on a log axis, one panel per activation, a
//! colour per init, solid at init and dashed after training. Dynamical
//! isometry is a narrow peak at 1.

use std::path::{Path, PathBuf};

use gradscope_format::files::{JACOBIAN_CSV, JACOBIAN_SUMMARY_CSV, PLOTS_DIR, RUNS_DIR};
use gradscope_format::jacobian::{JacobianRow, JacobianSummaryRow};

use crate::axis::{Axis, Scale};
use crate::charts::categorical;
use crate::error::PlotError;
use crate::figure::{Figure, Layout, LegendEntry, Marker, Panel, Series, Style};

pub const JACOBIAN_SPECTRUM: &str = "jacobian_spectrum";

/// Bins of each density, evenly spaced in ln s over the panel's range.
const BINS: usize = 40;

/// One run's spectrum at one step: its summary row and its singular values.
pub(crate) struct SpectrumLine {
    pub summary: JacobianSummaryRow,
    pub values: Vec<f64>,
}

/// The density of `values` per unit of ln s over `bins` even bins of ln s
/// from `lo` to `hi`, as (bin centre s, density); zeros (ln s = −∞) and
/// values outside the range are left out of the counts but not of the
/// total, so a curve's area is the share of its values it shows.
pub fn log_density(values: &[f64], lo: f64, hi: f64, bins: usize) -> Vec<(f64, f64)> {
    if values.is_empty() || bins == 0 || lo.is_nan() || hi.is_nan() || hi <= lo {
        return Vec::new();
    }
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0usize; bins];
    for &v in values.iter().filter(|v| **v > 0.0 && v.is_finite()) {
        let l = v.ln();
        if l < lo || l > hi {
            continue;
        }
        let i = (((l - lo) / width) as usize).min(bins - 1);
        counts[i] += 1;
    }
    let n = values.len() as f64;
    counts
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let centre = lo + (i as f64 + 0.5) * width;
            (centre.exp(), c as f64 / (n * width))
        })
        .collect()
}

/// One panel per activation, a line per run and step.
pub(crate) fn spectrum_panels(lines: &[SpectrumLine]) -> Vec<Panel> {
    let mut activations: Vec<&str> = lines
        .iter()
        .map(|l| l.summary.activation.as_str())
        .collect();
    activations.sort_unstable();
    activations.dedup();
    let mut inits: Vec<&str> = lines.iter().map(|l| l.summary.init.as_str()).collect();
    inits.sort_unstable();
    inits.dedup();
    activations
        .into_iter()
        .map(|act| {
            let mine: Vec<&SpectrumLine> = lines
                .iter()
                .filter(|l| l.summary.activation == act)
                .collect();
            let logs = mine
                .iter()
                .flat_map(|l| l.values.iter())
                .filter(|v| **v > 0.0 && v.is_finite())
                .map(|v| v.ln());
            let (lo, hi) = logs.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), l| {
                (lo.min(l), hi.max(l))
            });
            // An isometric spectrum has no width: give it one of ±0.5 in ln s.
            let (lo, hi) = if hi - lo < 1e-3 {
                (lo - 0.5, hi + 0.5)
            } else {
                (lo, hi)
            };
            let depth = mine.first().map_or(0, |l| l.summary.depth);
            let mut panel = Panel::new(format!("{act}, depth {depth}"));
            for l in mine {
                let s = &l.summary;
                let rank = inits.iter().position(|i| *i == s.init).unwrap_or(0);
                let color = categorical(rank);
                let dashed = s.step > 0;
                let points = log_density(&l.values, lo, hi, BINS);
                panel.legend.push(LegendEntry {
                    label: format!(
                        "{}, {}, seed {}",
                        s.init,
                        if dashed {
                            format!("step {}", s.step)
                        } else {
                            "init".into()
                        },
                        s.seed
                    ),
                    color,
                    dashed,
                    marker: points.is_empty().then_some(Marker::Absent),
                });
                if !points.is_empty() {
                    panel.series.push(Series {
                        diverged: false,
                        points,
                        color,
                        dashed,
                        marker: None,
                    });
                }
            }
            panel.empty_reason = Some("no positive singular values".into());
            panel
        })
        .collect()
}

/// Draws `jacobian_spectrum` into the folder's `plots/`. Without
/// `jacobian_summary.csv`, nothing is drawn (`Ok` of no files).
pub fn render_jacobian(results_dir: &Path, style: Style) -> Result<Vec<PathBuf>, PlotError> {
    let summary_path = results_dir.join(JACOBIAN_SUMMARY_CSV);
    let Some(summary) = crate::read::read_rows::<JacobianSummaryRow>(&summary_path)? else {
        return Ok(Vec::new());
    };
    let mut lines = Vec::new();
    for (i, s) in summary.into_iter().enumerate() {
        // A name read from a file is never a path (`../x`, `/x`).
        if !gradscope_format::names::is_folder_name(&s.run) {
            return Err(PlotError::BadRunName {
                path: summary_path.clone(),
                line: i as u64 + 2,
                run: s.run.clone(),
            });
        }
        let rows: Vec<JacobianRow> =
            crate::read::read_rows(&results_dir.join(RUNS_DIR).join(&s.run).join(JACOBIAN_CSV))?
                .unwrap_or_default();
        let values = rows
            .iter()
            .filter(|r| r.step == s.step)
            .map(|r| r.singular_value)
            .collect();
        lines.push(SpectrumLine { summary: s, values });
    }
    let fig = Figure {
        name: JACOBIAN_SPECTRUM,
        title: "Singular values of the trunk's input-output Jacobian".into(),
        subtitle: Some(
            "J = dh(last hidden)/dh(first hidden), exact (autograd, float64), a few training inputs pooled; density per unit ln s; solid at init, dashed after training; zeros left out".into(),
        ),
        x: Axis::new("singular value s", Scale::Log),
        y: Axis::new("density per unit ln s", Scale::Linear),
        panels: spectrum_panels(&lines),
        layout: Layout::Row,
    };
    if fig.panels.is_empty() {
        return Ok(Vec::new());
    }
    let r = fig.write_with(&results_dir.join(PLOTS_DIR), &style)?;
    Ok(vec![r.png, r.svg])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(activation: &str, init: &str, step: usize, values: Vec<f64>) -> SpectrumLine {
        SpectrumLine {
            summary: JacobianSummaryRow {
                run: format!("plain-{activation}-{init}-d100-s0"),
                variant: "plain".into(),
                depth: 100,
                seed: 0,
                swept: String::new(),
                activation: activation.into(),
                init: init.into(),
                step,
                examples: 1,
                singular_values: values.len(),
                mean_sq: 1.0,
                log_spread: None,
                condition: None,
                final_train_error: None,
            },
            values,
        }
    }

    /// The density integrates (Σ density × bin width in ln s) to the share
    /// of the values in range, 1 when all are, and a zero is left out.
    #[test]
    fn the_density_integrates_to_the_share_shown() {
        let values = [0.5, 1.0, 1.0, 2.0, 0.0];
        let (lo, hi) = (0.25f64.ln(), 4.0f64.ln());
        let d = log_density(&values, lo, hi, 8);
        assert_eq!(d.len(), 8);
        let width = (hi - lo) / 8.0;
        let area: f64 = d.iter().map(|(_, y)| y * width).sum();
        assert!((area - 0.8).abs() < 1e-12, "{area}");
        // Bin centres are geometric: the middle two straddle s = 1.
        assert!(d[3].0 < 1.0 && d[4].0 > 1.0);
        assert!(log_density(&[], lo, hi, 8).is_empty());
    }

    /// A panel per activation; each holds its runs' lines, init solid and
    /// trained dashed, and an isometric spectrum (all s = 1) still draws.
    #[test]
    fn a_panel_per_activation_with_init_and_trained_lines() {
        let lines = vec![
            line("tanh", "orthogonal", 0, vec![1.0; 16]),
            line("tanh", "variance-w1-b0", 0, vec![0.1, 0.5, 1.0, 3.0]),
            line("tanh", "orthogonal", 300, vec![0.9, 1.1]),
            line("relu", "orthogonal1.41", 0, vec![0.0, 0.2, 2.0]),
        ];
        let panels = spectrum_panels(&lines);
        assert_eq!(panels.len(), 2);
        assert!(panels[0].title.starts_with("relu"));
        assert!(panels[1].title.starts_with("tanh"));
        assert_eq!(panels[1].series.len(), 3);
        assert_eq!(
            panels[1]
                .series
                .iter()
                .map(|s| s.dashed)
                .collect::<Vec<_>>(),
            vec![false, false, true]
        );
        // The isometric line has all its mass in the bin holding s = 1.
        let iso = &panels[1].series[0].points;
        assert_eq!(iso.iter().filter(|(_, y)| *y > 0.0).count(), 1);
    }
}
