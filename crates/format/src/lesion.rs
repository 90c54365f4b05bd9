//! The files of the lesion and path studies (Veit, Wilber & Belongie 2016)
//! and the readings the report takes from them:
//! - `RUN/lesion.csv` ([`LesionRow`]): one row per lesion of a trained net;
//! - `RUN/paths.csv` ([`PathRow`]): per path length k, the gradient that
//!   reaches the first block through paths of k residual branches;
//! - `lesion_summary.csv` ([`LesionSummaryRow`]): one row per run, with
//!   [`single_deletion`] and [`effective_paths`].

use serde::{Deserialize, Serialize};

/// What a row of `lesion.csv` did to the net.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LesionKind {
    /// Nothing: the trained net (the baseline every lesion is read against).
    None,
    /// One block deleted.
    Delete,
    /// k blocks deleted, drawn at random.
    DeleteK,
    /// k random pairs of same-shape blocks swapped.
    Swap,
}

/// One lesion's row of `lesion.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LesionRow {
    pub lesion: LesionKind,
    /// The blocks it touched, by index in forward order, separated by
    /// spaces (`3 7`); swaps as `a-b` pairs.
    pub blocks: String,
    /// How many blocks were deleted, or pairs swapped.
    pub k: usize,
    /// The draw (0 for the deterministic lesions).
    pub sample: usize,
    /// Fractions of the stated images, in eval mode.
    pub train_error: f64,
    pub test_error: f64,
    pub train_loss: f64,
}

/// Columns of `lesion.csv`.
pub const LESION_HEADER: [&str; 7] = [
    "lesion",
    "blocks",
    "k",
    "sample",
    "train_error",
    "test_error",
    "train_loss",
];

/// One path length's row of `paths.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathRow {
    /// `trained` or `init` (the control: the run's initial weights).
    pub weights: String,
    /// Residual branches on the path.
    pub k: usize,
    /// C(n, k): how many paths have that length.
    pub paths: f64,
    /// Paths of that length measured: all of them where there are at most
    /// as many as asked for, else that many drawn at random.
    pub measured: usize,
    /// The mean over the measured paths of ‖dL/dx‖ at the first block's
    /// input x, for one batch.
    pub mean_grad: f64,
    /// `paths × mean_grad`: the length's estimated share of the gradient.
    pub total: f64,
    /// ‖dL/dx‖ of the full backward pass (every path at once), the same on
    /// every row of one `weights`.
    pub full_grad: f64,
}

/// Columns of `paths.csv`.
pub const PATHS_HEADER: [&str; 7] = [
    "weights",
    "k",
    "paths",
    "measured",
    "mean_grad",
    "total",
    "full_grad",
];

/// One run's row of `lesion_summary.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LesionSummaryRow {
    pub run: String,
    pub variant: String,
    pub depth: u32,
    pub seed: u64,
    /// Blocks, and those a lesion can delete (same input and output shape).
    pub blocks: usize,
    pub deletable: usize,
    /// Images each error is measured on.
    pub samples: usize,
    /// The trained net's test error, and a guess's (1 − 1/classes).
    pub intact_test_error: f64,
    pub chance_error: f64,
    /// Over the single-block deletions: the median and the largest test
    /// error.
    #[serde(serialize_with = "crate::opt_num")]
    pub delete_median_test_error: Option<f64>,
    #[serde(serialize_with = "crate::opt_num")]
    pub delete_max_test_error: Option<f64>,
    /// The path study's effective lengths at the trained weights: the
    /// shortest range of k holding [`EFFECTIVE_SHARE`] of the gradient,
    /// and the length that carries most (empty for plain nets).
    #[serde(serialize_with = "opt_usize")]
    pub effective_lo: Option<usize>,
    #[serde(serialize_with = "opt_usize")]
    pub effective_hi: Option<usize>,
    #[serde(serialize_with = "opt_usize")]
    pub peak_k: Option<usize>,
    pub elapsed_s: f64,
}

fn opt_usize<S: serde::Serializer>(v: &Option<usize>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_str(&v.to_string()),
        None => s.serialize_str(""),
    }
}

/// The share of the summed path contributions that the effective range of
/// lengths holds. Veit et al. call lengths 5–17 of 54 "effective" from the
/// histogram; 90% is this tool's stated reading of "most".
pub const EFFECTIVE_SHARE: f64 = 0.9;

/// The median and the largest test error over a run's single-block
/// deletions (`None` for a net without deletable blocks).
pub fn single_deletion(rows: &[LesionRow]) -> Option<(f64, f64)> {
    let mut errors: Vec<f64> = rows
        .iter()
        .filter(|r| r.lesion == LesionKind::Delete)
        .map(|r| r.test_error)
        .collect();
    if errors.is_empty() {
        return None;
    }
    errors.sort_by(f64::total_cmp);
    let n = errors.len();
    let median = if n % 2 == 1 {
        errors[n / 2]
    } else {
        (errors[n / 2 - 1] + errors[n / 2]) / 2.0
    };
    Some((median, errors[n - 1]))
}

/// The effective path lengths of one `weights`' rows: the shortest range
/// `lo..=hi` of k whose totals hold at least `share` of the sum over all
/// k, and the k of the largest total. `None` without a positive total.
pub fn effective_paths(rows: &[PathRow], share: f64) -> Option<(usize, usize, usize)> {
    let mut rows: Vec<&PathRow> = rows.iter().filter(|r| r.total.is_finite()).collect();
    rows.sort_by_key(|r| r.k);
    let sum: f64 = rows.iter().map(|r| r.total).sum();
    if rows.is_empty() || sum <= 0.0 {
        return None;
    }
    let peak = rows
        .iter()
        .max_by(|a, b| a.total.total_cmp(&b.total))
        .map(|r| r.k)?;
    let mut best: Option<(usize, usize)> = None;
    for i in 0..rows.len() {
        let mut held = 0.0;
        for j in i..rows.len() {
            held += rows[j].total;
            if held >= share * sum {
                let (lo, hi) = (rows[i].k, rows[j].k);
                if best.is_none_or(|(a, b)| hi - lo < b - a) {
                    best = Some((lo, hi));
                }
                break;
            }
        }
    }
    best.map(|(lo, hi)| (lo, hi, peak))
}

/// C(n, k) in float64 (exact up to n of about 60; ResNet-110 has 54
/// blocks).
pub fn binomial(n: usize, k: usize) -> f64 {
    if k > n {
        return 0.0;
    }
    let k = k.min(n - k);
    (0..k).fold(1.0, |c, i| c * (n - i) as f64 / (i + 1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(k: usize, total: f64) -> PathRow {
        PathRow {
            weights: "trained".into(),
            k,
            paths: 1.0,
            measured: 1,
            mean_grad: total,
            total,
            full_grad: 1.0,
        }
    }

    /// Veit et al. Fig. 6: the paths of a 54-block net are binomially
    /// distributed in length, C(54, 27) the most numerous.
    #[test]
    fn binomial_counts_paths() {
        assert_eq!(binomial(4, 2), 6.0);
        assert_eq!(binomial(54, 0), 1.0);
        assert_eq!(binomial(54, 54), 1.0);
        assert_eq!(binomial(3, 4), 0.0);
        let all: f64 = (0..=20).map(|k| binomial(20, k)).sum();
        assert_eq!(all, (1u64 << 20) as f64, "2ⁿ paths in all");
        assert!((binomial(54, 27) - 1.946_939_425_648_112e15).abs() < 1.0);
    }

    /// The effective range is the shortest window of lengths holding 90%
    /// of the gradient, not the lengths that are most numerous.
    #[test]
    fn effective_paths_is_the_shortest_window_holding_the_share() {
        let rows: Vec<PathRow> = [0.0, 1.0, 5.0, 3.0, 0.5, 0.5]
            .iter()
            .enumerate()
            .map(|(k, t)| path(k, *t))
            .collect();
        // Sum 10: k 1..=3 hold 9 (90%); nothing shorter does.
        assert_eq!(effective_paths(&rows, 0.9), Some((1, 3, 2)));
        // All of it needs 1..=5 (k 0 holds nothing).
        assert_eq!(effective_paths(&rows, 1.0), Some((1, 5, 2)));
        assert_eq!(effective_paths(&[path(0, 0.0)], 0.9), None);
    }

    /// A single deletion's reading is the median over the deletable
    /// blocks; other lesions do not count.
    #[test]
    fn single_deletion_reads_only_single_deletions() {
        let row = |lesion, e| LesionRow {
            lesion,
            blocks: String::new(),
            k: 1,
            sample: 0,
            train_error: e,
            test_error: e,
            train_loss: 0.0,
        };
        let rows = vec![
            row(LesionKind::None, 0.05),
            row(LesionKind::Delete, 0.10),
            row(LesionKind::Delete, 0.30),
            row(LesionKind::Delete, 0.20),
            row(LesionKind::Delete, 0.90),
            row(LesionKind::DeleteK, 0.99),
        ];
        assert_eq!(single_deletion(&rows), Some((0.25, 0.90)));
        assert_eq!(single_deletion(&rows[..1]), None);
    }

    #[test]
    fn headers_match_the_rows() {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize(path(2, 1.0)).unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert_eq!(text.lines().next().unwrap(), PATHS_HEADER.join(","));
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize(LesionRow {
            lesion: LesionKind::DeleteK,
            blocks: "1 2".into(),
            k: 2,
            sample: 0,
            train_error: 0.1,
            test_error: 0.2,
            train_loss: 0.3,
        })
        .unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert_eq!(text.lines().next().unwrap(), LESION_HEADER.join(","));
        assert!(text.contains("delete_k,1 2,2,0,"));
    }
}
