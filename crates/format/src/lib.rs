//! gradscope-format: the parts of gradscope's file contract that the
//! training side writes and the chart and report side reads, in one crate
//! that links neither tch nor plotters.
//!
//! - [`GradientRow`] and [`GRADIENTS_HEADER`]: one row of `gradients.csv`
//!   (serde both ways, so the writer and every reader share one type).
//! - [`decay`]: the headline readings of a gradient profile (decay per
//!   layer, spread, medians over probe steps), computed the same way by
//!   the training loop (for `run.json` and `summary.csv`) and by the report.
//! - [`wgrad`]: which weight is each trunk layer's main weight, and the
//!   decay per layer of those weights' gradients.
//! - [`tokens`]: a Transformer's readings per block (its FFN weight
//!   gradients, rank collapse and attention entropy) from those rows.
//! - [`names`]: run folder names, with the values of swept settings, and
//!   [`names::is_folder_name`], which a name read from a file must pass
//!   before it is joined onto a path.
//! - [`run`]: `run.json`'s [`run::Status`], [`run::FinalMetrics`] and
//!   [`run::GradientEnds`], one definition each for writer and readers.
//! - [`durable::write_atomic`]: the one atomic, fsynced file write every
//!   crate uses for run.json, summary.csv, reports and checkpoints; it
//!   cleans the temporary files of writers that died.
//! - [`num`]: how numbers are written, so that a gradient of 1e-40 reads
//!   back as 1e-40 and never as 0.
//!
//! - [`rows`]: the rows of `metrics.csv`, `activations.csv` and
//!   `summary.csv` with their headers, and [`rows::summary_csv`], which
//!   writes the summary from run records.
//! - [`run::RunRecord`]: `run.json` as the sweep writes it (generic over the
//!   experiment type, which lives in gradscope-train), and [`run::RunJson`],
//!   the same fields read leniently.
//! - [`files`]: the file and folder names of a results directory.
//! - [`landscape`]: the rows of `landscape.csv` and `landscape_summary.csv`
//!   and the readings of a loss surface (local minima, non-convex share,
//!   roughness).
//! - [`lesion`]: the rows of `lesion.csv`, `paths.csv` and
//!   `lesion_summary.csv`, and their readings (single deletions, the
//!   effective path lengths).

#![forbid(unsafe_code)]

pub mod decay;
pub mod durable;
pub mod files;
pub mod jacobian;
pub mod landscape;
pub mod lesion;
pub mod names;
pub mod rows;
pub mod run;
pub mod tokens;
pub mod wgrad;

use serde::{Deserialize, Serialize};

/// Columns of `gradients.csv`, in order.
pub const GRADIENTS_HEADER: [&str; 10] = [
    "step",
    "layer",
    "name",
    "kind",
    "trunk",
    "l2",
    "rms",
    "zero_fraction",
    "weight_norm",
    "relative",
];

/// `kind` of the dL/dh rows: the gradient that arrives at a probe point's
/// output, the quantity that vanishes.
pub const KIND_OUTPUT: &str = "output";
/// `kind` of the weight-gradient rows.
pub const KIND_WEIGHT: &str = "weight";

/// One row of `gradients.csv`. Every statistic was accumulated in float64
/// from the float32 tensor, so a value reads 0 only when the tensor is all
/// zeros (`zero_fraction` = 1).
///
/// Files written before a column existed read it as `None` (or `false`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradientRow {
    /// Training step (0 is before the first update).
    pub step: u64,
    /// Probe point index, 0 nearest the input.
    pub layer: usize,
    /// Probe point name, e.g. `layer03.linear` or `block07.out`.
    pub name: String,
    /// [`KIND_WEIGHT`] (the weight gradient) or [`KIND_OUTPUT`] (dL/dh).
    pub kind: String,
    /// Whether the point is on the trunk: the hidden layers of an MLP, the
    /// block (or module) outputs of a CNN, ResNet or Inception net. These
    /// points, one kind in depth order without the input layer and the
    /// head, are what the decay per layer is fitted over.
    #[serde(default)]
    pub trunk: bool,
    /// L2 norm of the whole tensor (batch included for dL/dh).
    #[serde(serialize_with = "opt_num")]
    pub l2: Option<f64>,
    /// Per-element root mean square, `l2 / sqrt(numel)`: comparable across
    /// tensors of different sizes.
    #[serde(serialize_with = "opt_num")]
    pub rms: Option<f64>,
    /// Fraction of the tensor's elements that are exactly 0 in float32.
    #[serde(default, serialize_with = "opt_num")]
    pub zero_fraction: Option<f64>,
    /// ‖W‖ of the weight (weight rows only).
    #[serde(default, serialize_with = "opt_num")]
    pub weight_norm: Option<f64>,
    /// ‖∇W‖ / ‖W‖, the relative gradient (weight rows only): how far one
    /// step of plain SGD turns the weight, which with BatchNorm after the
    /// layer is what sets how fast it learns.
    #[serde(default, serialize_with = "opt_num")]
    pub relative: Option<f64>,
}

impl GradientRow {
    /// Whether this row is dL/dh at the point's output.
    pub fn is_output(&self) -> bool {
        self.kind == KIND_OUTPUT
    }

    /// Whether the tensor was all zeros in float32: the only case in which
    /// a statistic reads 0.
    pub fn exactly_zero(&self) -> bool {
        self.zero_fraction == Some(1.0) || (self.zero_fraction.is_none() && self.l2 == Some(0.0))
    }

    /// ‖∇W‖·‖W‖: unchanged when W is rescaled, as a BatchNorm net's function
    /// is (dL/dW scales as 1/‖W‖ there). It is the gradient with respect to
    /// the weight's direction, so a fall in it is a vanishing gradient, not
    /// a growing weight. Weight rows only.
    pub fn scale_free(&self) -> Option<f64> {
        Some(self.l2? * self.weight_norm?)
    }
}

/// Every row of the CSV file at `path`. The error names the file (and
/// the csv crate's line and field), for the readers of the summaries
/// and per-run files the post-hoc commands write.
pub fn read_csv_rows<T: serde::de::DeserializeOwned>(
    path: &std::path::Path,
) -> Result<Vec<T>, String> {
    let with_path = |e: csv::Error| format!("{}: {e}", path.display());
    csv::Reader::from_path(path)
        .map_err(with_path)?
        .deserialize()
        .collect::<Result<Vec<_>, _>>()
        .map_err(with_path)
}

/// [`read_csv_rows`] of a file that may not exist: `Ok(None)` when there
/// is none.
pub fn read_optional_csv<T: serde::de::DeserializeOwned>(
    path: &std::path::Path,
) -> Result<Option<Vec<T>>, String> {
    if !path.is_file() {
        return Ok(None);
    }
    read_csv_rows(path).map(Some)
}

/// Text for a number in gradscope's CSV files: the shortest text that reads
/// back to the same float32 where the value is a normal float32 (or 0), and
/// seven significant digits in float64 otherwise, so that a reading below
/// float32's normal range (1.2e-38) is never written as 0 or rounded to a
/// denormal. NaN and infinities are `NaN`, `inf`, `-inf` (Rust and pandas
/// both parse them).
pub fn num(v: f64) -> String {
    let mut s = String::new();
    push_num(&mut s, v);
    s
}

/// Appends [`num`]'s text for `v` to `out`: the probe's CSV rows are
/// written this way, with no string allocated per number (a probe step
/// writes hundreds).
pub fn push_num(out: &mut String, v: f64) {
    use std::fmt::Write;
    // Writing to a String cannot fail.
    if !v.is_finite() {
        let _ = write!(out, "{v}");
        return;
    }
    let single = v as f32;
    if v == 0.0 || (single.is_normal() && single.is_finite()) {
        let a = single.abs();
        if v == 0.0 || (1e-4..1e7).contains(&a) {
            let _ = write!(out, "{single}");
        } else {
            let _ = write!(out, "{single:e}");
        }
    } else {
        // Seven significant digits, trailing zeros of the mantissa trimmed.
        let s = format!("{v:.6e}");
        match s.split_once('e') {
            Some((m, e)) if m.contains('.') => {
                let m = m.trim_end_matches('0').trim_end_matches('.');
                let _ = write!(out, "{m}e{e}");
            }
            _ => out.push_str(&s),
        }
    }
}

/// Writes an optional number with [`num`] (empty when `None`). Reading
/// needs no counterpart: Rust's float parser reads that text, `NaN` and
/// `inf` included, and the csv reader names the file, line and column of a
/// value it cannot parse.
pub(crate) fn opt_num<S: serde::Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_str(&num(*v)),
        None => s.serialize_str(""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_below_float32_range_keep_their_value() {
        // Normal float32 values keep the shortest float32 text.
        assert_eq!(num(0.25), "0.25");
        assert_eq!(num(1e-30), "1e-30");
        assert_eq!(num(f64::from(0.1f32)), "0.1");
        assert_eq!(num(0.0), "0");
        // Below float32's normal range the float64 value is written, not a
        // denormal's rounding or 0.
        assert_eq!(num(1.234_567_89e-40), "1.234568e-40");
        assert_eq!(num(3e-60), "3e-60");
        for v in [1e-40, 4.2e-46, 7.7e-100, 1e-5, 123456789.0] {
            let back: f64 = num(v).parse().unwrap();
            assert!((back - v).abs() <= 1e-6 * v.abs(), "{v} -> {}", num(v));
        }
        assert_eq!(num(f64::NAN), "NaN");
        assert_eq!(num(f64::INFINITY), "inf");
    }

    #[test]
    fn gradient_rows_round_trip_and_old_files_read() {
        let row = GradientRow {
            step: 3,
            layer: 1,
            name: "layer01.linear".into(),
            kind: KIND_WEIGHT.into(),
            trunk: true,
            l2: Some(2e-41),
            rms: Some(1e-42),
            zero_fraction: Some(0.0),
            weight_norm: Some(4.0),
            relative: Some(5e-42),
        };
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize(&row).unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert_eq!(
            text,
            format!(
                "{}\n3,1,layer01.linear,weight,true,2e-41,1e-42,0,4,5e-42\n",
                GRADIENTS_HEADER.join(",")
            )
        );
        let back: GradientRow = read_one(&text);
        assert_eq!(back, row);
        assert!((back.scale_free().unwrap() - 8e-41).abs() < 1e-50);
        // A file written before the precision fix: six columns only.
        let old = read_one("step,layer,name,kind,l2,rms\n0,2,layer02.linear,output,0,0\n");
        assert!(!old.trunk && old.zero_fraction.is_none() && old.exactly_zero());
    }

    fn read_one(text: &str) -> GradientRow {
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let row = r.deserialize().next().unwrap();
        row.unwrap()
    }
}
