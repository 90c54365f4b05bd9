//! `run.json`: [`RunRecord`] (what the sweep writes and `--resume` and
//! `merge` read back), [`RunJson`] (the same fields read leniently, for
//! reports over published folders), a run's [`Status`], its
//! [`FinalMetrics`] and its [`GradientEnds`], one definition each (the
//! training side writes them, the charts and the report read them).
//!
//! Reading is lenient where published files need it: every field has a
//! default, and a spread may be written as a number or as text (`"inf"`:
//! JSON has no infinity, and a spread is infinite when the first trunk
//! point is exactly 0 in float32).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Versions a result depends on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Versions {
    pub gradscope: String,
    pub tch: String,
    pub libtorch: String,
}

/// The content of `run.json`, as the sweep writes it. `C` is the resolved
/// experiment: gradscope-train's `Experiment` when it writes or resumes a
/// run; a reader that only looks a field up can take any serde value.
/// Reading is strict: every field must be there (a record that lacks one
/// is a run to train again for `--resume`). Readers of published folders,
/// old ones included, use [`RunJson`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord<C> {
    pub experiment: String,
    /// The experiment file the sweep was started from, as given on the
    /// command line (`gradscope report` prints how to rerun it); absent in
    /// records written before it existed.
    #[serde(default)]
    pub experiment_file: Option<String>,
    pub run: String,
    pub variant: String,
    /// The values of the settings the experiment sweeps (`{"init":
    /// "glorot"}`); empty, and left out of the file, when it sweeps none.
    /// `config` is the whole experiment, lists included.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub swept: BTreeMap<String, String>,
    pub depth: usize,
    pub seed: u64,
    pub status: Status,
    pub diverged_at_step: Option<usize>,
    pub error: Option<String>,
    pub steps_planned: usize,
    pub steps_done: usize,
    /// The steps this run went on from a checkpoint at, one per resume
    /// (`--resume` after a SIGTERM, a kill or a Slurm requeue); left out
    /// when it trained in one go.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resumed_from: Vec<usize>,
    pub params: i64,
    pub elapsed_s: f64,
    pub device: String,
    pub threads: i32,
    pub versions: Versions,
    #[serde(rename = "final")]
    pub final_metrics: FinalMetrics,
    pub gradient_ends: GradientEnds,
    pub probe_points: Vec<String>,
    pub config: C,
}

/// `run.json` read leniently: the same fields as [`RunRecord`], each one
/// optional, so that a record from an older or newer gradscope, or one cut
/// short, still reads. The report reads run folders with it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct RunJson<C> {
    pub experiment: Option<String>,
    pub experiment_file: Option<String>,
    pub run: Option<String>,
    pub variant: Option<String>,
    pub swept: BTreeMap<String, String>,
    pub depth: Option<u32>,
    pub seed: Option<u64>,
    /// Kept as text: a status this gradscope does not know is reported,
    /// not a parse error.
    pub status: Option<String>,
    pub error: Option<String>,
    pub diverged_at_step: Option<u64>,
    pub steps_planned: Option<u64>,
    pub steps_done: Option<u64>,
    pub resumed_from: Vec<u64>,
    pub params: Option<i64>,
    pub elapsed_s: Option<f64>,
    pub device: Option<String>,
    pub threads: Option<i64>,
    #[serde(rename = "final")]
    pub final_metrics: FinalMetrics,
    pub gradient_ends: GradientEnds,
    pub probe_points: Vec<String>,
    pub config: Option<C>,
}

/// How a run ended (or that it has not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Running,
    Completed,
    /// The loss or a gradient norm became NaN or infinite.
    Diverged,
    /// Stopped by SIGINT or SIGTERM.
    Interrupted,
    /// An error stopped it (see `error`).
    Failed,
}

impl Status {
    /// The word in `run.json` and `summary.csv`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Completed => "completed",
            Status::Diverged => "diverged",
            Status::Interrupted => "interrupted",
            Status::Failed => "failed",
        }
    }
}

/// Full passes over both splits after the last step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FinalMetrics {
    pub train_loss: Option<f64>,
    pub train_error: Option<f64>,
    pub test_loss: Option<f64>,
    pub test_error: Option<f64>,
}

/// What the probe saw at the ends of the trunk: the decay per layer and
/// spread (first and last five probe steps, and the mean-field prediction)
/// and the older first/last-point norms, kept for comparison with results
/// published before; their ratio mixes in the head's own factor and
/// tensors of different sizes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GradientEnds {
    pub decay_init: Option<f64>,
    pub decay_final: Option<f64>,
    pub decay_theory: Option<f64>,
    #[serde(with = "inf_as_text")]
    pub spread_init: Option<f64>,
    #[serde(with = "inf_as_text")]
    pub spread_final: Option<f64>,
    /// The probe points the decay is fitted over.
    pub trunk_points: Vec<String>,
    /// ‖dL/dh‖ at the first and last probe point, step 0.
    pub init_first: Option<f64>,
    pub init_last: Option<f64>,
    /// The last probed step, and the same norms there.
    pub final_step: Option<u64>,
    pub final_first: Option<f64>,
    pub final_last: Option<f64>,
    /// The forward signal's fall over the trunk (log10 of the first trunk
    /// point's √q over the last one's, positive when it shrinks toward the
    /// output), medians of the first and last five probe steps, and its
    /// slope in decades per layer at the start; absent in older records.
    #[serde(with = "inf_as_text", skip_serializing_if = "Option::is_none")]
    pub forward_spread_init: Option<f64>,
    #[serde(with = "inf_as_text", skip_serializing_if = "Option::is_none")]
    pub forward_spread_final: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forward_decay_init: Option<f64>,
    /// The decay per layer of ‖∇W‖ of each trunk layer's main weight
    /// ([`crate::wgrad`]), medians of the first and last five probe steps;
    /// absent in older records, and for the rnn family.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wgrad_decay_init: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wgrad_decay_final: Option<f64>,
    /// Mean-field theory's correlation depth ξ_c = −1/ln χ_c of the run's
    /// hidden layers (gradscope-theory's `criticality`), in layers; `inf`
    /// at the edge of chaos. Plain MLPs without normalization alone;
    /// absent elsewhere and in older records.
    #[serde(with = "inf_as_text", skip_serializing_if = "Option::is_none")]
    pub xi_c: Option<f64>,
}

impl GradientEnds {
    /// first / last at step 0, when both are finite and last > 0.
    pub fn init_ratio(&self) -> Option<f64> {
        ratio(self.init_first, self.init_last)
    }

    /// first / last at the last probed step.
    pub fn final_ratio(&self) -> Option<f64> {
        ratio(self.final_first, self.final_last)
    }
}

fn ratio(first: Option<f64>, last: Option<f64>) -> Option<f64> {
    match (first, last) {
        (Some(f), Some(l)) if f.is_finite() && l.is_finite() && l > 0.0 => Some(f / l),
        _ => None,
    }
}

/// An `Option<f64>` written as a number when finite and as text (`"inf"`)
/// otherwise; read from either (text that is not a number reads as none).
mod inf_as_text {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Num {
        Finite(f64),
        Text(String),
        Other(serde::de::IgnoredAny),
    }

    pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(x) if x.is_finite() => x.serialize(s),
            Some(x) => format!("{x}").serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Ok(match Option::<Num>::deserialize(d)? {
            Some(Num::Finite(x)) => Some(x),
            Some(Num::Text(t)) => t.parse().ok(),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_infinite_spread_round_trips_as_text_and_old_files_read() {
        let ends = GradientEnds {
            spread_init: Some(f64::INFINITY),
            spread_final: Some(2.5),
            final_step: Some(1499),
            ..GradientEnds::default()
        };
        let json = serde_json::to_string(&ends).unwrap();
        assert!(json.contains("\"spread_init\":\"inf\""), "{json}");
        assert!(json.contains("\"spread_final\":2.5"), "{json}");
        assert_eq!(serde_json::from_str::<GradientEnds>(&json).unwrap(), ends);
        // A record from before the decay fields: what it lacks reads as none.
        let old: GradientEnds =
            serde_json::from_str(r#"{"init_first": 1.0, "final_step": 9}"#).unwrap();
        assert_eq!(
            (old.init_first, old.final_step, old.decay_init),
            (Some(1.0), Some(9), None)
        );
        assert_eq!(Status::Completed.as_str(), "completed");
        let s: Status = serde_json::from_str("\"diverged\"").unwrap();
        assert_eq!(s, Status::Diverged);
    }
}
