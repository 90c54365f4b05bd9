//! `forward_signal` (issue 36 §1), drawn for the mlp family: at step 0,
//! per trunk layer, q (the batch variance of each pre-activation unit,
//! averaged over units: activations.csv's `q`) and 1 − c (c the
//! correlation between two inputs' pre-activations: its `c`), one pair of
//! panels per variant, with mean-field theory dashed where it applies
//! (plain nets without normalization).
//!
//! The theory is gradscope-theory's length and correlation maps
//! ([`signal_profile`]) iterated from the first layer's measured q and c
//! with the hidden layers' σ_w², σ_b² (the init's, at fan-in = fan-out =
//! the width). The measured q is a variance across the batch, not
//! Poole et al.'s second moment: with the second moment q₂ and the mean
//! correlation c̄ over the batch's pairs, the mean over units of the batch
//! variance is q₂·(1 − c̄)·(1 − 1/B), so the first layer's q₂ is read as
//! q/(1 − c) and the theory's q drawn as q₂·(1 − c) (B of a probed batch
//! is over 100: the last factor is under 1%).

use std::path::Path;

use gradscope_theory::criticality::{signal_profile, Signal};
use gradscope_theory::{Act, InitKind};
use serde_json::Value;

use crate::axis::{Axis, Scale};
use crate::error::PlotError;
use crate::figure::{Figure, Layout, LegendEntry, Panel, Rendered, Series};
use crate::read::{ResultsDir, RunData};

use super::{depth_color, labelled, response_run, seed_word};

/// The chart's name under `plots/`.
pub const FORWARD_SIGNAL: &str = "forward_signal";

/// One run's step-0 readings per trunk layer, input side first: `(q, c)`,
/// either `None` where not read.
pub(crate) fn step0_signal(run: &RunData) -> Vec<(Option<f64>, Option<f64>)> {
    let Some(rows) = run.activations.as_deref() else {
        return Vec::new();
    };
    let mut at0: Vec<_> = rows
        .iter()
        .filter(|r| r.step == 0 && r.is_layer_response())
        .map(|r| (r.layer, r.q, r.c))
        .collect();
    at0.sort_by_key(|r| r.0);
    at0.dedup_by_key(|r| r.0);
    at0.into_iter().map(|(_, q, c)| (q, c)).collect()
}

fn act_of(name: &str) -> Option<Act> {
    match name {
        "sigmoid" => Some(Act::Sigmoid),
        "tanh" => Some(Act::Tanh),
        "relu" => Some(Act::Relu),
        _ => None,
    }
}

/// An init as run.json's config writes it (`"glorot"`, `{"variance":
/// {"weight": 2, "bias": 0}}`, …), as the theory reads it; `None` for a
/// form it does not know.
pub(crate) fn init_of(v: &Value) -> Option<InitKind> {
    if let Some(name) = v.as_str() {
        return match name {
            "pytorch-default" => Some(InitKind::PytorchDefault),
            "glorot" => Some(InitKind::Glorot),
            // A plain net's Fixup is the He init alone.
            "kaiming" | "fixup" => Some(InitKind::Kaiming),
            "orthogonal" => Some(InitKind::Orthogonal { gain: 1.0 }),
            _ => None,
        };
    }
    let num = |form: &str, field: &str| v.get(form)?.get(field)?.as_f64();
    if let Some(std) = num("normal", "std") {
        return Some(InitKind::Normal { std });
    }
    if let (Some(weight), Some(bias)) = (num("variance", "weight"), num("variance", "bias")) {
        return Some(InitKind::Variance { weight, bias });
    }
    v.get("orthogonal").map(|o| InitKind::Orthogonal {
        gain: o.get("gain").and_then(Value::as_f64).unwrap_or(1.0),
    })
}

/// (φ, σ_w², σ_b²) of a run's hidden layers where mean-field theory
/// applies: a plain MLP without normalization whose activation and init
/// the theory knows (the run's own where the experiment sweeps them).
pub(crate) fn mean_field(results: &ResultsDir, run: &RunData) -> Option<(Act, f64, f64)> {
    let s = &run.summary;
    if s.variant != "plain" || results.family().as_deref() != Some("mlp") {
        return None;
    }
    let norm = s
        .norm
        .clone()
        .or_else(|| results.config_str("/config/model/norm"))?;
    if norm != "none" {
        return None;
    }
    let act = act_of(
        &s.activation
            .clone()
            .or_else(|| results.config_str("/config/model/activation"))?,
    )?;
    let init = match &s.init {
        Some(name) => init_of(&Value::String(name.clone()))?,
        None => init_of(&results.config_value("/config/model/init")?)?,
    };
    let width = results.config_value("/config/model/width")?.as_f64()?;
    let (sw, sb) = init.variances(width, width);
    Some((act, sw, sb))
}

/// The theory's (q, 1 − c) at each of `layers` layers from the first
/// layer's measured q and c (see the module's text); `None` where the
/// first layer's readings do not allow it.
pub(crate) fn theory_profile(
    act: Act,
    sw: f64,
    sb: f64,
    first: (f64, f64),
    layers: usize,
) -> Option<Vec<(f64, f64)>> {
    let (q, c) = first;
    let gap = 1.0 - c;
    // NaN is read as missing: it passes no comparison.
    if layers == 0 || q <= 0.0 || !q.is_finite() || gap.is_nan() || gap <= 0.0 {
        return None;
    }
    let start = Signal { q: q / gap, c, gap };
    Some(
        signal_profile(act, sw, sb, start, layers - 1)
            .into_iter()
            // Past float64's resolution of c (a gap of 1e-16) no float
            // tells the inputs apart, and the measured lines cannot follow
            // there: the theory stops, rather than stretching the axis to
            // gaps of 1e-40.
            .take_while(|s| s.gap >= THEORY_FLOOR)
            .map(|s| (s.q * s.gap, s.gap))
            .collect(),
    )
}

/// The smallest 1 − c the theory is drawn to.
pub(crate) const THEORY_FLOOR: f64 = 1e-16;

/// Positive and finite, else NaN (a gap in a log line).
fn positive(v: Option<f64>) -> f64 {
    v.filter(|v| v.is_finite() && *v > 0.0).unwrap_or(f64::NAN)
}

pub(crate) fn forward_signal_figure(results: &ResultsDir) -> Figure {
    let depths = results.depths();
    let mut panels = Vec::new();
    let mut theory_drawn = false;
    for variant in results.groups() {
        let mut q_panel = Panel::new(format!("{variant}: q"));
        let mut c_panel = Panel::new(format!("{variant}: 1 − c"));
        for (i, &depth) in depths.iter().enumerate() {
            let Some(run) = response_run(results, &variant, depth) else {
                continue;
            };
            let signal = step0_signal(run);
            if signal.iter().all(|(q, c)| q.is_none() && c.is_none()) {
                continue;
            }
            let color = depth_color(i, depths.len());
            let x = |l: usize| l as f64;
            q_panel.series.push(Series {
                diverged: false,
                points: (0..)
                    .zip(&signal)
                    .map(|(l, s)| (x(l), positive(s.0)))
                    .collect(),
                color,
                dashed: false,
                marker: None,
            });
            c_panel.series.push(Series {
                diverged: false,
                points: (0..)
                    .zip(&signal)
                    .map(|(l, s)| (x(l), positive(s.1.map(|c| 1.0 - c))))
                    .collect(),
                color,
                dashed: false,
                marker: None,
            });
            let theory = mean_field(results, run).and_then(|(act, sw, sb)| {
                let first = signal.first().copied()?;
                theory_profile(act, sw, sb, (first.0?, first.1?), signal.len())
            });
            if let Some(t) = &theory {
                theory_drawn = true;
                for (panel, pick) in [(&mut q_panel, 0), (&mut c_panel, 1)] {
                    panel.series.push(Series {
                        diverged: false,
                        points: (0..)
                            .zip(t)
                            .map(|(l, p)| (x(l), positive(Some(if pick == 0 { p.0 } else { p.1 }))))
                            .collect(),
                        color,
                        dashed: true,
                        marker: None,
                    });
                }
            }
            for panel in [&mut q_panel, &mut c_panel] {
                panel.legend.push(LegendEntry {
                    label: format!("d{depth}"),
                    color,
                    dashed: false,
                    marker: None,
                });
            }
        }
        for panel in [&mut q_panel, &mut c_panel] {
            panel.empty_reason = Some("no step-0 q or c in activations.csv".to_owned());
        }
        panels.push(q_panel);
        panels.push(c_panel);
    }
    let mut x = Axis::new("layer (0 = input side)", Scale::Linear);
    x.integer = true;
    Figure {
        name: FORWARD_SIGNAL,
        title: "Forward signal at step 0: q and the correlation between inputs".to_owned(),
        subtitle: Some(format!(
            "seed {}; solid = measured{}; q is the batch variance per unit, c the correlation of two inputs' pre-activations (1 − c = 0: inputs indistinguishable)",
            seed_word(results),
            if theory_drawn {
                ", dashed = mean-field theory from the first layer (plain nets)"
            } else {
                ""
            }
        )),
        x,
        y: Axis::new("q, and 1 − c (log scale)", Scale::Log),
        panels,
        layout: Layout::Row,
    }
}

/// Writes `forward_signal` into `plots_dir`.
pub fn forward_signal(results: &ResultsDir, plots_dir: &Path) -> Result<Rendered, PlotError> {
    labelled(forward_signal_figure(results), results).write_with(plots_dir, &results.style)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The inits as run.json writes them read as the train crate maps
    /// them for the MLP's prediction; an unknown form reads as none.
    #[test]
    fn inits_read_as_the_theory_knows_them() {
        assert_eq!(init_of(&json!("glorot")), Some(InitKind::Glorot));
        assert_eq!(init_of(&json!("fixup")), Some(InitKind::Kaiming));
        assert_eq!(
            init_of(&json!({"variance": {"weight": 2.0, "bias": 0.05}})),
            Some(InitKind::Variance {
                weight: 2.0,
                bias: 0.05
            })
        );
        assert_eq!(
            init_of(&json!({"orthogonal": {}})),
            Some(InitKind::Orthogonal { gain: 1.0 })
        );
        assert_eq!(init_of(&json!("lsuv")), None);
    }

    /// ReLU at σ_w² = 2, σ_b² = 0 keeps the second moment: from q = 0.5,
    /// c = 0 (second moment 0.5) the theory's next c is 1/π (the
    /// arc-cosine kernel) and its drawn q 0.5·(1 − 1/π); a first layer
    /// with c = 1 or q = 0 has no theory.
    #[test]
    fn the_theory_starts_from_the_first_layer() {
        let t = theory_profile(Act::Relu, 2.0, 0.0, (0.5, 0.0), 3).unwrap();
        assert_eq!(t.len(), 3);
        assert!((t[0].0 - 0.5).abs() < 1e-12 && (t[0].1 - 1.0).abs() < 1e-12);
        let pi = std::f64::consts::PI;
        assert!((t[1].1 - (1.0 - 1.0 / pi)).abs() < 1e-12, "{t:?}");
        assert!((t[1].0 - 0.5 * (1.0 - 1.0 / pi)).abs() < 1e-12, "{t:?}");
        assert!(theory_profile(Act::Relu, 2.0, 0.0, (0.5, 1.0), 3).is_none());
        // Sigmoid at PyTorch's default (σ_w² = 1/3): the gap shrinks by
        // about e^(−1/0.26) a layer, and the drawn theory stops at 1e-16.
        let t = theory_profile(Act::Sigmoid, 1.0 / 3.0, 1.0 / 192.0, (0.33, 0.03), 40).unwrap();
        assert!(
            t.len() < 20 && t.iter().all(|p| p.1 >= THEORY_FLOOR),
            "{t:?}"
        );
        assert!(theory_profile(Act::Relu, 2.0, 0.0, (0.0, 0.3), 3).is_none());
    }
}
