//! `gates`, for recurrent nets only: each gate's mean against the time
//! step at the first probed step (solid) and the last (dashed), one panel
//! per gated cell, at the longest sequence every gated cell has. The
//! LSTM's forget gate is its cell path's factor per step back (Gers et
//! al. 2000): where training moves it toward 1, dL/dc_t stops shrinking;
//! the GRU's update gate z plays the same part for h (h' = (1 − z)·n +
//! z·h).
//!
//! Read from `activations.csv`'s gate rows, `t007.gate_f` (the mean over
//! the batch and units of σ of the gate's pre-activation at step 7).

use std::collections::BTreeMap;
use std::path::Path;

use crate::axis::{Axis, Bounds, Scale};
use crate::error::PlotError;
use crate::figure::{Figure, Layout, LegendEntry, Panel, Rendered, Series};
use crate::read::{ActivationRow, ResultsDir, RunData};

use super::gradients::LABEL_TIME;
use super::{categorical, labelled, GATES};

/// The gates in the order they are drawn and coloured, with their names.
const GATE_NAMES: [(&str, &str); 5] = [
    ("f", "forget"),
    ("i", "input"),
    ("o", "output"),
    ("z", "update"),
    ("r", "reset"),
];

/// The gate a row reads (`t007.gate_f` → (7, "f")), or `None`.
pub(crate) fn gate_of(row: &ActivationRow) -> Option<(usize, &str)> {
    row.gate()
}

/// Whether a run has gate rows.
fn has_gates(run: &RunData) -> bool {
    run.activations
        .iter()
        .flatten()
        .any(|r| gate_of(r).is_some())
}

/// Mean of each gate at each time step at `step`: gate → [(t, mean)].
fn gate_profiles(run: &RunData, step: u64) -> BTreeMap<String, Vec<(f64, f64)>> {
    let mut out: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for row in run.activations.iter().flatten().filter(|r| r.step == step) {
        if let (Some((t, gate)), Some(mean)) = (gate_of(row), row.mean) {
            out.entry(gate.to_owned())
                .or_default()
                .push((t as f64, mean));
        }
    }
    for points in out.values_mut() {
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

pub(crate) fn gates_figure(results: &ResultsDir) -> Figure {
    let gated: Vec<&RunData> = results.runs.iter().filter(|r| has_gates(r)).collect();
    let groups: Vec<String> = {
        let mut g: Vec<String> = gated.iter().map(|r| r.summary.group()).collect();
        g.dedup();
        g.sort();
        g.dedup();
        g
    };
    // The longest length every gated group has, its smallest seed.
    let length = results.depths().into_iter().rev().find(|&d| {
        groups.iter().all(|g| {
            gated
                .iter()
                .any(|r| r.summary.group() == *g && r.summary.depth == d)
        })
    });
    let mut panels = Vec::new();
    for group in &groups {
        let Some(run) = length.and_then(|d| {
            gated
                .iter()
                .filter(|r| r.summary.group() == *group && r.summary.depth == d)
                .min_by_key(|r| r.summary.seed)
        }) else {
            continue;
        };
        let steps: Vec<u64> = run
            .activations
            .iter()
            .flatten()
            .filter(|r| gate_of(r).is_some())
            .map(|r| r.step)
            .collect();
        let (Some(&first), Some(&last)) = (steps.iter().min(), steps.iter().max()) else {
            continue;
        };
        let mut panel = Panel::new(format!("{group}, seed {}", run.summary.seed));
        for (at, dashed) in [(first, false), (last, true)] {
            for (gate, points) in gate_profiles(run, at) {
                let i = GATE_NAMES.iter().position(|(g, _)| *g == gate).unwrap_or(0);
                let color = categorical(i);
                panel.series.push(Series {
                    diverged: false,
                    points,
                    color,
                    dashed,
                    marker: None,
                });
                let word = GATE_NAMES.get(i).map_or(gate.as_str(), |(_, w)| *w);
                panel.legend.push(LegendEntry {
                    label: format!("{word} ({gate}), step {at}"),
                    color,
                    dashed,
                    marker: None,
                });
            }
        }
        panels.push(panel);
    }
    if panels.is_empty() {
        let mut panel = Panel::new("");
        panel.empty_reason = Some("no gate rows in activations.csv (tanh cells have none)".into());
        panels.push(panel);
    }
    let mut x = Axis::new(LABEL_TIME, Scale::Linear);
    x.integer = true;
    let mut y = Axis::new("mean gate value", Scale::Linear);
    y.bounds = Bounds::Fraction;
    Figure {
        name: GATES,
        title: match length {
            Some(d) => format!("Gates through time, length {d}"),
            None => "Gates through time".to_owned(),
        },
        subtitle: Some(
            "mean of σ(gate pre-activation) over the batch and units at each time step; solid = first probed step, dashed = last; the LSTM's forget gate is the cell path's factor per step back"
                .to_owned(),
        ),
        x,
        y,
        panels,
        layout: Layout::Row,
    }
}

/// Writes `gates` into `plots_dir`.
pub fn gates(results: &ResultsDir, plots_dir: &Path) -> Result<Rendered, PlotError> {
    labelled(gates_figure(results), results).write_with(plots_dir, &results.style)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(step: u64, name: &str, mean: f64) -> ActivationRow {
        ActivationRow {
            step,
            layer: 0,
            name: name.to_owned(),
            mean: Some(mean),
            std: None,
            saturation: None,
            dead: None,
            q: None,
            c: None,
            rank1: None,
            entropy: None,
        }
    }

    /// Gate rows are named `tNNN.gate_X`; the hidden state's rows are not
    /// gates.
    #[test]
    fn gate_rows_are_told_by_their_names() {
        assert_eq!(gate_of(&row(0, "t007.gate_f", 0.7)), Some((7, "f")));
        assert_eq!(gate_of(&row(0, "t0123.gate_z", 0.5)), Some((123, "z")));
        assert_eq!(gate_of(&row(0, "t007.h", 0.1)), None);
        assert_eq!(gate_of(&row(0, "head.linear", 0.1)), None);
    }
}
