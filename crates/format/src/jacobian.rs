//! The input–output Jacobian's spectrum of a deep MLP trunk (Pennington,
//! Schoenholz & Ganguli 2017, "Resurrecting the sigmoid in deep learning
//! through dynamical isometry"): the rows of `jacobian.csv` and
//! `jacobian_summary.csv`, and the three readings of a spectrum.
//!
//! `gradscope jacobian` takes J = ∂h(d−2)/∂h(0), from the first hidden
//! pre-activation to the last one, of a few fixed training inputs, and
//! writes its singular values s. A net is *dynamically isometric* when
//! every s is near 1: then a gradient keeps its norm and direction through
//! the whole trunk. Criticality (χ = 1) only fixes the mean of s²; the
//! spread is what orthogonal weights and a tanh's linear centre improve.
//!
//! - [`Spectrum::mean_sq`]: the mean of s², ≈ χ^(d−2) (1 at criticality).
//! - [`Spectrum::log_spread`]: the standard deviation of ln s, the width
//!   of the spectrum on the log axis Pennington et al. plot (Fig. 1 and 4).
//! - [`Spectrum::condition`]: max s / min s, the Jacobian's condition
//!   number (infinite where some s is 0: a ReLU trunk that lost rank).

use serde::{Deserialize, Serialize};

/// Columns of `jacobian.csv`.
pub const JACOBIAN_HEADER: [&str; 4] = ["step", "example", "index", "singular_value"];

/// One singular value of `jacobian.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JacobianRow {
    /// 0 for the initial weights, the run's last step for its trained ones.
    pub step: usize,
    /// Which of the fixed inputs (the first training examples, in order).
    pub example: usize,
    /// Rank of the singular value, largest first.
    pub index: usize,
    pub singular_value: f64,
}

/// The readings of a set of singular values (see the module).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spectrum {
    pub count: usize,
    pub mean_sq: f64,
    /// `None` where some s is 0 or none is finite (ln s is −∞).
    pub log_spread: Option<f64>,
    /// `None` where the smallest s is 0.
    pub condition: Option<f64>,
}

impl Spectrum {
    /// The readings of `values`; `None` where there is none, or one that
    /// is negative or not finite (not a spectrum).
    pub fn of(values: &[f64]) -> Option<Spectrum> {
        if values.is_empty() || values.iter().any(|s| !s.is_finite() || *s < 0.0) {
            return None;
        }
        let n = values.len() as f64;
        let mean_sq = values.iter().map(|s| s * s).sum::<f64>() / n;
        let max = values.iter().copied().fold(0.0, f64::max);
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let positive = min > 0.0;
        let log_spread = positive.then(|| {
            let logs: Vec<f64> = values.iter().map(|s| s.ln()).collect();
            let mean = logs.iter().sum::<f64>() / n;
            (logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / n).sqrt()
        });
        Some(Spectrum {
            count: values.len(),
            mean_sq,
            log_spread,
            condition: positive.then(|| max / min),
        })
    }
}

/// One run's row of `jacobian_summary.csv`: the readings of all its fixed
/// inputs' singular values together, at one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JacobianSummaryRow {
    pub run: String,
    pub variant: String,
    pub depth: u32,
    pub seed: u64,
    /// The swept settings as `key=value` pairs joined by `;` (the init and
    /// activation the chart groups by), empty where none is swept.
    pub swept: String,
    /// The activation and init the run was built with (`tanh`, `relu`;
    /// `gaussian` or `orthogonal`), as the chart's panels and lines.
    pub activation: String,
    pub init: String,
    /// 0 for the initial weights, the run's last step for the trained ones.
    pub step: usize,
    pub examples: usize,
    pub singular_values: usize,
    pub mean_sq: f64,
    #[serde(serialize_with = "crate::opt_num")]
    pub log_spread: Option<f64>,
    #[serde(serialize_with = "crate::opt_num")]
    pub condition: Option<f64>,
    /// The run's final training error (its summary.csv row), where it has one.
    #[serde(serialize_with = "crate::opt_num")]
    pub final_train_error: Option<f64>,
}

impl JacobianSummaryRow {
    /// What a row is the reading of: its run and step.
    pub fn key(&self) -> (&str, usize) {
        (&self.run, self.step)
    }
}

/// The rows of `results_dir/jacobian_summary.csv`, `Ok(None)` when there
/// is none. The error names the file.
pub fn read_summary(
    results_dir: &std::path::Path,
) -> Result<Option<Vec<JacobianSummaryRow>>, String> {
    crate::read_optional_csv(&results_dir.join(crate::files::JACOBIAN_SUMMARY_CSV))
}

/// The rows of one run's `jacobian.csv`. The error names the file.
pub fn read_rows(path: &std::path::Path) -> Result<Vec<JacobianRow>, String> {
    crate::read_csv_rows(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12 * (1.0 + b.abs())
    }

    #[test]
    fn an_isometric_spectrum_reads_one_zero_one() {
        // Every s = 1: the definition of dynamical isometry (Pennington
        // et al. 2017 §2): mean s² = 1, no spread, condition 1.
        let s = Spectrum::of(&[1.0; 64]).unwrap();
        assert_eq!(s.count, 64);
        assert!(close(s.mean_sq, 1.0));
        assert!(close(s.log_spread.unwrap(), 0.0));
        assert!(close(s.condition.unwrap(), 1.0));
    }

    #[test]
    fn readings_of_a_constructed_spectrum() {
        // s = e^-1, 1, e: ln s = -1, 0, 1, whose population std is √(2/3);
        // mean s² = (e^-2 + 1 + e²)/3; condition e².
        let e = std::f64::consts::E;
        let s = Spectrum::of(&[1.0 / e, 1.0, e]).unwrap();
        assert!(close(s.mean_sq, (e.powi(-2) + 1.0 + e * e) / 3.0));
        assert!(close(s.log_spread.unwrap(), (2.0f64 / 3.0).sqrt()));
        assert!(close(s.condition.unwrap(), e * e));
        // A scale changes the mean s² by its square and neither the spread
        // nor the condition (both are of ln s less its mean, or a ratio).
        let t = Spectrum::of(&[2.0 / e, 2.0, 2.0 * e]).unwrap();
        assert!(close(t.mean_sq, 4.0 * s.mean_sq));
        assert!(close(t.log_spread.unwrap(), s.log_spread.unwrap()));
        assert!(close(t.condition.unwrap(), s.condition.unwrap()));
    }

    #[test]
    fn a_zero_singular_value_has_no_spread_or_condition() {
        let s = Spectrum::of(&[0.0, 1.0]).unwrap();
        assert!(close(s.mean_sq, 0.5));
        assert_eq!((s.log_spread, s.condition), (None, None));
        assert_eq!(Spectrum::of(&[]), None);
        assert_eq!(Spectrum::of(&[1.0, f64::NAN]), None);
        assert_eq!(Spectrum::of(&[-1.0]), None);
    }

    #[test]
    fn rows_round_trip_with_the_header() {
        let rows = vec![
            JacobianRow {
                step: 0,
                example: 1,
                index: 2,
                singular_value: 0.125,
            },
            JacobianRow {
                step: 300,
                example: 0,
                index: 0,
                singular_value: 3.5e-7,
            },
        ];
        let mut w = csv::Writer::from_writer(Vec::new());
        for r in &rows {
            w.serialize(r).unwrap();
        }
        let bytes = w.into_inner().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert_eq!(text.lines().next().unwrap(), JACOBIAN_HEADER.join(","));
        let back: Vec<JacobianRow> = csv::Reader::from_reader(bytes.as_slice())
            .deserialize()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(back, rows);
    }

    #[test]
    fn a_summary_row_round_trips_with_an_empty_reading() {
        let row = JacobianSummaryRow {
            run: "tanh-orth-d100-s0".into(),
            variant: "plain".into(),
            depth: 100,
            seed: 0,
            swept: "init=orthogonal".into(),
            activation: "tanh".into(),
            init: "orthogonal".into(),
            step: 0,
            examples: 4,
            singular_values: 512,
            mean_sq: 1.0,
            log_spread: None,
            condition: Some(2.5),
            final_train_error: None,
        };
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize(&row).unwrap();
        let bytes = w.into_inner().unwrap();
        let back: JacobianSummaryRow = csv::Reader::from_reader(bytes.as_slice())
            .deserialize()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(back, row);
    }
}
