//! The phase diagram of trainable depth (Schoenholz, Gilmer, Ganguli &
//! Sohl-Dickstein 2017, "Deep Information Propagation", Fig. 5): a plain
//! MLP initialized with W ~ N(0, σ_w²/fan_in), b ~ N(0, σ_b²) trains only
//! while its depth is within a few times ξ_c, the depth over which
//! correlations between inputs reach their fixed point; they find the
//! boundary at about 6ξ_c, and since ξ_c diverges at the order-to-chaos
//! edge χ₁ = 1 the deepest trainable nets sit there.
//!
//! This module holds the readings and the rules that the chart
//! `phase_diagram` (in `phase_diagram.rs`) and the report's
//! criticality section both use, so that they judge each run the same way:
//!
//! - a run is **trainable** when its final training error is at least
//!   [`TRAINABLE_MARGIN`] below chance ([`trainable`]), a diverged run is
//!   not, and an unfinished one is not judged;
//! - theory **predicts** it trainable when depth ≤ 6ξ_c ([`predicted`]),
//!   ξ_c from `gradscope_theory::criticality` at the run's (σ_w², σ_b²);
//! - the two **agree** or not, cell by cell ([`Phase::agreement`]).
//!
//! Nothing here needs tch: the inits are read back from their labels in
//! summary.csv (`variance-w1.76-b0.05`, gradscope-models' `Label`).

use std::collections::BTreeSet;

use gradscope_theory::criticality::{critical_weight_variance, criticality};
use gradscope_theory::Act;

use crate::read::{ResultsDir, STATUS_COMPLETED, STATUS_DIVERGED};

/// How far below chance the final training error must be for a run to
/// count as trainable (issue 36: "at least 10 points below chance").
pub const TRAINABLE_MARGIN: f64 = 0.10;

/// The multiple of ξ_c up to which Schoenholz et al. find nets trainable.
pub const XI_MULTIPLE: f64 = 6.0;

/// (σ_w², σ_b²) of a `variance` init's label, `variance-wW-bB`; `None` for
/// any other init.
pub fn variance_label(label: &str) -> Option<(f64, f64)> {
    let (w, b) = label.strip_prefix("variance-w")?.split_once("-b")?;
    let (w, b) = (w.parse::<f64>().ok()?, b.parse::<f64>().ok()?);
    (w.is_finite() && b.is_finite()).then_some((w, b))
}

/// The theory's nonlinearity of an MLP's `model.activation`.
pub fn act_named(name: &str) -> Option<Act> {
    match name {
        "tanh" => Some(Act::Tanh),
        "sigmoid" => Some(Act::Sigmoid),
        "relu" => Some(Act::Relu),
        _ => None,
    }
}

/// The chance error of a classifier on the experiment's `dataset` section:
/// 1 − 1/classes, from `classes` where the section gives it (the synthetic
/// task's classes are balanced, so guessing scores that), else 10 for the
/// ten-class image sets; `None` for other tasks.
pub fn chance_error(dataset: &serde_json::Value) -> Option<f64> {
    let classes = match dataset.get("classes").and_then(serde_json::Value::as_f64) {
        Some(c) => c,
        None => match dataset.get("kind")?.as_str()? {
            "mnist" | "fashion-mnist" | "cifar10" => 10.0,
            _ => return None,
        },
    };
    (classes >= 2.0).then(|| 1.0 - 1.0 / classes)
}

/// Whether a final training error counts as trainable: at least
/// [`TRAINABLE_MARGIN`] below `chance` (a hair of rounding allowed, so that
/// exactly 10 points below counts).
pub fn trainable(error: f64, chance: f64) -> bool {
    error.is_finite() && error <= chance - TRAINABLE_MARGIN + 1e-9
}

/// 6ξ_c of (φ, σ_w², σ_b²): the depth up to which theory predicts a net
/// trains; ∞ at the edge, `None` where lengths have no fixed point.
pub fn depth_limit(act: Act, sw: f64, sb: f64) -> Option<f64> {
    criticality(act, sw, sb).map(|c| XI_MULTIPLE * c.xi_c)
}

/// Whether theory predicts a net of `depth` layers trainable under the
/// limit 6ξ_c.
pub fn predicted(depth: u32, limit: f64) -> bool {
    f64::from(depth) <= limit
}

/// One run as the phase diagram reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub sw: f64,
    pub sb: f64,
    pub depth: u32,
    /// The final training error, `None` when the run has none.
    pub error: Option<f64>,
    /// Whether the run diverged (then it is not trainable, whatever its
    /// last error).
    pub diverged: bool,
}

/// One (σ_w², depth) cell: the mean over its runs (seeds).
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub sw: f64,
    pub depth: u32,
    /// Mean final training error over the runs that have one.
    pub error: Option<f64>,
    /// Runs in the cell, and how many of them diverged.
    pub runs: usize,
    pub diverged: usize,
    /// Trainable by [`trainable`] on the mean error; `false` when every
    /// run diverged; `None` when no run of the cell can be judged.
    pub trainable: Option<bool>,
    /// Whether theory predicts it trainable; `None` where 6ξ_c is unknown.
    pub predicted: Option<bool>,
}

impl Cell {
    /// Whether observation and prediction agree; `None` where either is
    /// missing.
    pub fn agrees(&self) -> Option<bool> {
        Some(self.trainable? == self.predicted?)
    }
}

/// A whole phase diagram: one nonlinearity and one σ_b², ≥ 2 values of
/// σ_w² and ≥ 2 depths.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    pub act: Act,
    pub sb: f64,
    pub chance: f64,
    /// The swept σ_w², ascending.
    pub weights: Vec<f64>,
    /// The swept depths, ascending.
    pub depths: Vec<u32>,
    /// Cells by σ_w² then depth (those with runs).
    pub cells: Vec<Cell>,
    /// 6ξ_c for each of [`Phase::weights`].
    pub limits: Vec<Option<f64>>,
    /// σ_w² at χ₁ = 1 for this σ_b².
    pub edge: Option<f64>,
}

impl Phase {
    /// The diagram of `readings`, or why there is none: fewer than two
    /// σ_w² or two depths, or more than one σ_b² (the diagram is a slice
    /// at one σ_b²).
    pub fn build(act: Act, chance: f64, readings: &[Reading]) -> Result<Phase, String> {
        let sbs: BTreeSet<u64> = readings.iter().map(|r| r.sb.to_bits()).collect();
        let sb = match sbs.len() {
            0 => return Err("no run has a variance init".into()),
            1 => readings[0].sb,
            n => return Err(format!("the runs have {n} values of σ_b², not one")),
        };
        let mut weights: Vec<f64> = readings.iter().map(|r| r.sw).collect();
        weights.sort_by(f64::total_cmp);
        weights.dedup();
        let mut depths: Vec<u32> = readings.iter().map(|r| r.depth).collect();
        depths.sort_unstable();
        depths.dedup();
        if weights.len() < 2 || depths.len() < 2 {
            return Err(format!(
                "a phase diagram needs 2 or more values of σ_w² and of depth ({} and {} here)",
                weights.len(),
                depths.len()
            ));
        }
        let limits: Vec<Option<f64>> = weights.iter().map(|&sw| depth_limit(act, sw, sb)).collect();
        let mut cells = Vec::new();
        for (&sw, limit) in weights.iter().zip(&limits) {
            for &depth in &depths {
                let here: Vec<&Reading> = readings
                    .iter()
                    .filter(|r| r.sw == sw && r.depth == depth)
                    .collect();
                if here.is_empty() {
                    continue;
                }
                let diverged = here.iter().filter(|r| r.diverged).count();
                let errors: Vec<f64> = here
                    .iter()
                    .filter(|r| !r.diverged)
                    .filter_map(|r| r.error)
                    .filter(|e| e.is_finite())
                    .collect();
                let error =
                    (!errors.is_empty()).then(|| errors.iter().sum::<f64>() / errors.len() as f64);
                let trainable = match error {
                    // A diverged seed counts against the cell: it is
                    // trainable only if every seed is.
                    Some(e) => Some(diverged == 0 && trainable(e, chance)),
                    None if diverged > 0 => Some(false),
                    None => None,
                };
                cells.push(Cell {
                    sw,
                    depth,
                    error,
                    runs: here.len(),
                    diverged,
                    trainable,
                    predicted: limit.map(|l| predicted(depth, l)),
                });
            }
        }
        Ok(Phase {
            act,
            sb,
            chance,
            weights,
            depths,
            cells,
            limits,
            edge: critical_weight_variance(act, sb),
        })
    }

    /// The cell at (σ_w², depth).
    pub fn cell(&self, sw: f64, depth: u32) -> Option<&Cell> {
        self.cells.iter().find(|c| c.sw == sw && c.depth == depth)
    }

    /// (cells where observation and prediction agree, cells judged).
    pub fn agreement(&self) -> (usize, usize) {
        let judged: Vec<bool> = self.cells.iter().filter_map(Cell::agrees).collect();
        (judged.iter().filter(|a| **a).count(), judged.len())
    }

    /// The deepest depth at which some cell is trainable, and the σ_w² of
    /// its trainable cells there; `None` when no cell is trainable.
    pub fn deepest_trainable(&self) -> Option<(u32, Vec<f64>)> {
        let depth = self
            .cells
            .iter()
            .filter(|c| c.trainable == Some(true))
            .map(|c| c.depth)
            .max()?;
        let weights = self
            .cells
            .iter()
            .filter(|c| c.depth == depth && c.trainable == Some(true))
            .map(|c| c.sw)
            .collect();
        Some((depth, weights))
    }
}

/// The phase diagram of a results directory, or why it has none: the
/// experiment must be an MLP with one nonlinearity the theory knows, a
/// classification task with a chance level, and runs whose init is a
/// `variance` init (summary.csv's `init` column, which is there when the
/// init is swept).
pub fn phase_of(results: &ResultsDir) -> Result<Phase, String> {
    if results.family().as_deref() != Some("mlp") {
        return Err("not an MLP experiment".into());
    }
    let activation = results.activation();
    let act = act_named(&activation)
        .ok_or_else(|| format!("no mean-field theory for activation `{activation}`"))?;
    let chance = results
        .record
        .as_ref()
        .and_then(|r| r.pointer("/config/dataset"))
        .and_then(chance_error)
        .ok_or("the dataset has no chance level")?;
    let mut readings = Vec::new();
    for run in &results.runs {
        let s = &run.summary;
        let Some((sw, sb)) = s.init.as_deref().and_then(variance_label) else {
            return Err("the init is not a swept variance init".into());
        };
        // Different nonlinearities in one sweep would be different
        // diagrams.
        if s.activation.as_deref().is_some_and(|a| a != activation) {
            return Err("the activation is swept".into());
        }
        readings.push(Reading {
            sw,
            sb,
            depth: s.depth,
            error: if s.status == STATUS_COMPLETED || s.status == STATUS_DIVERGED {
                s.final_train_error
            } else {
                None
            },
            diverged: s.status == STATUS_DIVERGED,
        });
    }
    Phase::build(act, chance, &readings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(sw: f64, depth: u32, error: f64) -> Reading {
        Reading {
            sw,
            sb: 0.05,
            depth,
            error: Some(error),
            diverged: false,
        }
    }

    #[test]
    fn variance_labels_read_back_and_others_do_not() {
        // gradscope-models' Label writes {"variance": {"weight": 1.76,
        // "bias": 0.05}} as this.
        assert_eq!(variance_label("variance-w1.76-b0.05"), Some((1.76, 0.05)));
        assert_eq!(variance_label("variance-w2-b0"), Some((2.0, 0.0)));
        for other in ["glorot", "normal0.05", "variance-w2", "variance-wx-b1"] {
            assert_eq!(variance_label(other), None, "{other}");
        }
    }

    /// Chance is 1 − 1/classes: 0.9 for ten classes, named or given.
    #[test]
    fn chance_comes_from_the_classes() {
        use serde_json::json;
        let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-12);
        assert!(close(
            chance_error(&json!({"kind": "synthetic", "classes": 10})),
            0.9
        ));
        assert!(close(
            chance_error(&json!({"kind": "synthetic", "classes": 4})),
            0.75
        ));
        assert!(close(chance_error(&json!({"kind": "fashion-mnist"})), 0.9));
        assert_eq!(chance_error(&json!({"kind": "adding"})), None);
        assert_eq!(
            chance_error(&json!({"kind": "synthetic", "classes": 1})),
            None
        );
    }

    /// The rule: 10 points below chance or more. At chance 0.9 an error of
    /// 0.80 is trainable and 0.81 is not; NaN never is.
    #[test]
    fn trainable_means_ten_points_below_chance() {
        assert!(trainable(0.80, 0.9));
        assert!(trainable(0.1, 0.9));
        assert!(!trainable(0.81, 0.9));
        assert!(!trainable(f64::NAN, 0.9));
    }

    /// Constructed readings for tanh at σ_b² = 0.05: below the edge
    /// (σ_w² = 0.5, ξ_c about 1, so 6ξ_c under 10) depth 10 is predicted
    /// untrainable, at the edge every depth is predicted trainable. The
    /// count agrees cell by cell, a diverged run counts as untrainable,
    /// and the deepest trainable net is found.
    #[test]
    fn cells_are_judged_and_counted() {
        let edge = critical_weight_variance(Act::Tanh, 0.05).unwrap();
        let mut readings = vec![
            reading(0.5, 10, 0.89), // predicted no, observed no: agrees
            reading(0.5, 100, 0.5), // predicted no, observed yes: disagrees
            reading(edge, 10, 0.3), // yes, yes
            reading(edge, 100, 0.6),
        ];
        readings.push(Reading {
            diverged: true,
            error: None,
            ..reading(edge, 100, 0.0)
        });
        let phase = Phase::build(Act::Tanh, 0.9, &readings).unwrap();
        assert_eq!(phase.weights, vec![0.5, edge]);
        assert_eq!(phase.depths, vec![10, 100]);
        assert!(phase.limits[0].unwrap() < 10.0, "{:?}", phase.limits);
        assert!(phase.limits[1].unwrap() > 1000.0, "{:?}", phase.limits);
        let deep = phase.cell(edge, 100).unwrap();
        assert_eq!((deep.runs, deep.diverged), (2, 1));
        assert_eq!(deep.error, Some(0.6));
        assert_eq!(deep.trainable, Some(false), "a diverged seed");
        assert_eq!(phase.agreement(), (2, 4));
        assert_eq!(phase.deepest_trainable(), Some((100, vec![0.5])));
        assert!((phase.edge.unwrap() - edge).abs() < 1e-12);
    }

    #[test]
    fn a_diagram_needs_two_weights_two_depths_and_one_bias() {
        let one_depth = [reading(0.5, 10, 0.1), reading(1.0, 10, 0.1)];
        assert!(Phase::build(Act::Tanh, 0.9, &one_depth).is_err());
        let two_biases = [
            reading(0.5, 10, 0.1),
            Reading {
                sb: 0.1,
                ..reading(1.0, 20, 0.1)
            },
        ];
        let err = Phase::build(Act::Tanh, 0.9, &two_biases).unwrap_err();
        assert!(err.contains("σ_b²"), "{err}");
        assert!(Phase::build(Act::Tanh, 0.9, &[]).is_err());
    }
}
