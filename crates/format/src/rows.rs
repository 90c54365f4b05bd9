//! The rows of `metrics.csv`, `activations.csv` and `summary.csv` (serde
//! both ways: the training side writes these types and the charts and the
//! report read them; `gradients.csv`'s row is [`crate::GradientRow`]).
//!
//! Each header constant is the struct's field order, and a test holds the
//! two together. Numbers are written as before the types moved here, so
//! published files and new ones read the same: probe readings with
//! [`crate::num`], epochs with four decimals and seconds with three.
//! Columns added later read as `None` from older files.

use crate::names::{describe, numeric_fields, SWEPT_FIELDS};
use crate::run::{RunRecord, Status};
use serde::{Deserialize, Serialize};

/// Columns of `metrics.csv`, in order.
pub const METRICS_HEADER: [&str; 8] = [
    "step",
    "epoch",
    "split",
    "loss",
    "error",
    "lr",
    "grad_norm",
    "elapsed_s",
];
/// Columns of `activations.csv`, in order.
pub const ACTIVATIONS_HEADER: [&str; 11] = [
    "step",
    "layer",
    "name",
    "mean",
    "std",
    "saturation",
    "dead",
    "q",
    "c",
    "rank1",
    "entropy",
];
/// Columns of `summary.csv` without the swept settings' columns, which
/// follow `variant` where the experiment sweeps them (in
/// [`SWEPT_FIELDS`] order): the decay and spread lead, the first/last L2
/// norms follow for comparison with older results.
pub const SUMMARY_HEADER: [&str; 26] = [
    "run",
    "variant",
    "depth",
    "seed",
    "status",
    "steps_done",
    "params",
    "final_train_loss",
    "final_train_error",
    "final_test_loss",
    "final_test_error",
    "grad_decay_init",
    "grad_decay_theory",
    "grad_decay_final",
    "wgrad_decay_init",
    "wgrad_decay_final",
    "grad_spread_init",
    "grad_spread_final",
    "grad_first_init",
    "grad_last_init",
    "grad_first_final",
    "grad_last_final",
    "fwd_spread_init",
    "fwd_spread_final",
    "xi_c",
    "elapsed_s",
];

/// `split` of the on-the-fly training rows of `metrics.csv`.
pub const SPLIT_TRAIN: &str = "train";
/// `split` of the held-out evaluations.
pub const SPLIT_TEST: &str = "test";

/// One row of `metrics.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricRow {
    /// Training step.
    pub step: u64,
    /// Epoch (may be fractional).
    #[serde(serialize_with = "fixed4")]
    pub epoch: Option<f64>,
    /// [`SPLIT_TRAIN`] or [`SPLIT_TEST`].
    pub split: String,
    /// Loss (NaN once a run diverged).
    #[serde(serialize_with = "crate::opt_num")]
    pub loss: Option<f64>,
    /// Error as a fraction in [0, 1].
    #[serde(serialize_with = "crate::opt_num")]
    pub error: Option<f64>,
    /// Learning rate at this step.
    #[serde(serialize_with = "crate::opt_num")]
    pub lr: Option<f64>,
    /// Train rows: the global L2 norm of the gradient (every parameter as
    /// one vector) before any clipping, the mean over the steps since the
    /// last train row, as `loss` and `error` are (Pascanu et al. 2013's
    /// reading of exploding gradients). Empty on test rows and in files
    /// from before the column.
    #[serde(default, serialize_with = "crate::opt_num")]
    pub grad_norm: Option<f64>,
    /// Seconds since the run started.
    #[serde(serialize_with = "fixed3")]
    pub elapsed_s: Option<f64>,
}

/// One row of `activations.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivationRow {
    /// Training step.
    pub step: u64,
    /// Probe point index, 0 nearest the input; not contiguous where some
    /// probe points have no response (a CNN's block outputs).
    pub layer: usize,
    /// Probe point name.
    pub name: String,
    /// Mean of the response: for an MLP the value after the nonlinearity,
    /// for a CNN the BN output of a 3×3 conv (before the nonlinearity).
    #[serde(serialize_with = "crate::opt_num")]
    pub mean: Option<f64>,
    /// Standard deviation of that response.
    #[serde(serialize_with = "crate::opt_num")]
    pub std: Option<f64>,
    /// Fraction of the response's values in the flat part of the
    /// nonlinearity (for ReLU: zeros, about one half by construction).
    #[serde(serialize_with = "crate::opt_num")]
    pub saturation: Option<f64>,
    /// Fraction of units that are in the flat part for every example of
    /// the probed batch (for ReLU: dead units); absent in older files.
    #[serde(default, serialize_with = "crate::opt_num")]
    pub dead: Option<f64>,
    /// The forward signal at the probe point the response follows: q, the
    /// variance across the probed batch of each unit of the point's output
    /// (an MLP's pre-activation h; a conv's output before BN), averaged over
    /// units, in float64 (Poole et al. 2016's q, taken over the batch).
    /// When it falls by orders of magnitude with depth the inputs become
    /// indistinguishable to the layers above: forward collapse. Absent in
    /// older files, and where the point has no output of its own (an rnn's
    /// gate readings).
    #[serde(default, serialize_with = "crate::opt_num")]
    pub q: Option<f64>,
    /// The correlation between inputs at the same output (Poole et al.
    /// 2016's c, taken over the layer's units): for 32 fixed disjoint
    /// pairs of examples of the probed batch, (0, 1), (2, 3), … (fewer in
    /// a smaller batch), c_ab = q_ab / √(q_aa·q_bb), where q_ab is the
    /// mean over units of h_a,i·h_b,i (no centring), averaged over the
    /// pairs where it is defined, in float64. 1 when the layer maps every
    /// pair of inputs to parallel vectors: the inputs are
    /// indistinguishable to the layers above (forward collapse). Read
    /// where the output is `[batch, features]` (an MLP's pre-activation,
    /// a recurrent step's hidden state); empty elsewhere (feature maps,
    /// blocks of tokens), where the point has no output, where no pair
    /// has both lengths above 0, and in older files.
    #[serde(default, serialize_with = "crate::opt_num")]
    pub c: Option<f64>,
    /// At a block output of tokens (a Transformer block's, `[batch, tokens,
    /// width]`): how far each example's token matrix X is from rank 1, as
    /// Dong, Cordonnier & Loukas (2021) measure it, ‖X − 1·x̄ᵀ‖_F / ‖X‖_F
    /// with x̄ the mean token (1·x̄ᵀ is the matrix of identical rows nearest
    /// X in Frobenius norm), averaged over the probed batch, in float64. 0
    /// when every token is the same vector (rank collapse), 1 when the
    /// tokens have mean 0. Empty on every other row, in older files, and
    /// where it is undefined: an example whose X is 0 (0/0) makes the
    /// batch's mean undefined.
    #[serde(default, serialize_with = "crate::opt_num")]
    pub rank1: Option<f64>,
    /// On an attention head's row (`block03.attn.probs.h0`, see
    /// [`ActivationRow::head`]): the entropy −Σ_keys p·ln p of the head's
    /// attention probabilities (0·ln 0 = 0), in nats, averaged over the
    /// probed batch and the queries, in float64. ln(keys) is uniform
    /// attention over every key, 0 attention to one key. A head's row has
    /// no other reading (every other column is empty). Empty on every
    /// other row and in older files.
    #[serde(default, serialize_with = "crate::opt_num")]
    pub entropy: Option<f64>,
}

/// The suffix of an attention head's row name before the head's index:
/// `block03.attn.probs.h0` is head 0 of point `block03.attn.probs`.
pub const HEAD_SUFFIX: &str = ".h";

/// The name of head `head`'s row at attention point `point`
/// (`block03.attn.probs.h0`), as [`ActivationRow::head`] reads it back.
pub fn head_name(point: &str, head: usize) -> String {
    format!("{point}{HEAD_SUFFIX}{head}")
}

impl ActivationRow {
    /// The attention head this row reads, as (attention point, head):
    /// `block03.attn.probs.h0` is ("block03.attn.probs", 0); `None` for
    /// any other row (an rnn's `t007.h`, whose suffix has no digits,
    /// included). Only a row whose `entropy` is set is a head's: a name
    /// alone could be any point's.
    pub fn head(&self) -> Option<(&str, usize)> {
        self.entropy?;
        let (point, head) = self.name.rsplit_once(HEAD_SUFFIX)?;
        if point.is_empty() || head.is_empty() || !head.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some((point, head.parse().ok()?))
    }

    /// Whether the row is a layer's response, the reading the response
    /// charts and the per-layer tables draw: not a recurrent gate's or an
    /// attention head's (each has its own reading), and not a row that
    /// carries only the forward signal (a block of tokens with no
    /// response of its own: q and rank1 alone).
    pub fn is_layer_response(&self) -> bool {
        self.gate().is_none()
            && self.head().is_none()
            && (self.mean.is_some() || self.std.is_some() || self.saturation.is_some())
    }

    /// The recurrent gate this row reads, as (time step, gate):
    /// `t007.gate_f` is (7, "f"); `None` for any other row (an rnn's
    /// `t007.h` included).
    pub fn gate(&self) -> Option<(usize, &str)> {
        let (step, gate) = self.name.split_once(".gate_")?;
        Some((step.strip_prefix('t')?.parse().ok()?, gate))
    }
}

/// One row of `summary.csv`: one run of the sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    /// Run directory name, `VARIANT[-SWEPT…]-dDEPTH-sSEED`.
    pub run: String,
    /// Network variant, e.g. `plain` or `residual`.
    pub variant: String,
    /// The run's activation, init and norm (and cell) where the experiment sweeps them
    /// (a column each, present only then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub norm: Option<String>,
    /// The rnn family's cell (`tanh`, `lstm`, `gru`) where the experiment
    /// sweeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cell: Option<String>,
    /// Depth in weight layers.
    pub depth: u32,
    /// Seed of the run.
    pub seed: u64,
    /// `completed`, `diverged`, `interrupted`, `failed` or `running`
    /// ([`Status::as_str`]).
    pub status: String,
    /// Steps actually trained.
    pub steps_done: Option<u64>,
    /// Number of trainable parameters.
    pub params: Option<u64>,
    /// Final full-pass training loss.
    #[serde(serialize_with = "plain")]
    pub final_train_loss: Option<f64>,
    /// Final full-pass training error (fraction).
    #[serde(serialize_with = "plain")]
    pub final_train_error: Option<f64>,
    /// Final held-out loss.
    #[serde(serialize_with = "plain")]
    pub final_test_loss: Option<f64>,
    /// Final held-out error (fraction).
    #[serde(serialize_with = "plain")]
    pub final_test_error: Option<f64>,
    /// Decay per layer of dL/dh over the trunk (decades per layer, positive
    /// when the gradient shrinks toward the input), median of the first five
    /// probe steps; absent in older files.
    #[serde(default, serialize_with = "plain")]
    pub grad_decay_init: Option<f64>,
    /// The mean-field prediction of the decay per layer at initialization
    /// (plain MLPs it applies to; empty elsewhere).
    #[serde(default, serialize_with = "plain")]
    pub grad_decay_theory: Option<f64>,
    /// The same over the last five probe steps.
    #[serde(default, serialize_with = "plain")]
    pub grad_decay_final: Option<f64>,
    /// Decay per layer of the weight gradients: the least-squares slope of
    /// log10 ‖∇W‖ of each trunk layer's main weight against its position
    /// (the MLP's hidden layer's own weight, a conv block's last conv on
    /// the residual branch, a Transformer block's FFN output weight; see
    /// [`crate::wgrad`]), in `grad_decay_init`'s units and sign, median of
    /// the first five probe steps. Empty for the rnn family (its trunk is
    /// time, its weights shared), and in older files.
    #[serde(default, serialize_with = "plain")]
    pub wgrad_decay_init: Option<f64>,
    /// The same over the last five probe steps.
    #[serde(default, serialize_with = "plain")]
    pub wgrad_decay_final: Option<f64>,
    /// log10(last trunk rms / first trunk rms), first five probe steps
    /// (`inf` when the first is exactly 0 in float32).
    #[serde(default, serialize_with = "plain")]
    pub grad_spread_init: Option<f64>,
    /// The same over the last five probe steps.
    #[serde(default, serialize_with = "plain")]
    pub grad_spread_final: Option<f64>,
    /// ‖dL/dh‖ at the first probe point, step 0 (the older reading: its
    /// ratio to the last mixes in the head's factor).
    #[serde(serialize_with = "plain")]
    pub grad_first_init: Option<f64>,
    /// ‖dL/dh‖ at the last probe point, step 0.
    #[serde(serialize_with = "plain")]
    pub grad_last_init: Option<f64>,
    /// ‖dL/dh‖ at the first probe point, last probed step.
    #[serde(serialize_with = "plain")]
    pub grad_first_final: Option<f64>,
    /// ‖dL/dh‖ at the last probe point, last probed step.
    #[serde(serialize_with = "plain")]
    pub grad_last_final: Option<f64>,
    /// The forward signal's fall over the trunk: log10 of the first trunk
    /// point's spread across the batch (√q) over the last one's, median of
    /// the first five probe steps; positive when the signal shrinks toward
    /// the output, above 2 a forward collapse. Absent in older files.
    #[serde(default, serialize_with = "plain")]
    pub fwd_spread_init: Option<f64>,
    /// The same over the last five probe steps.
    #[serde(default, serialize_with = "plain")]
    pub fwd_spread_final: Option<f64>,
    /// Mean-field theory's correlation depth ξ_c = −1/ln χ_c in layers
    /// (Schoenholz et al. 2017), from the run's activation and init: plain
    /// MLPs without normalization; `inf` at the edge of chaos (χ_c = 1);
    /// empty elsewhere and in older files.
    #[serde(default, serialize_with = "plain")]
    pub xi_c: Option<f64>,
    /// Wall-clock seconds of the run.
    #[serde(serialize_with = "fixed3")]
    pub elapsed_s: Option<f64>,
    /// The results folder the run was read from, when several are drawn
    /// together (`gradscope compare`); not a column of `summary.csv`.
    #[serde(skip)]
    pub source: Option<String>,
    /// The run's values of the swept numeric fields (`("train.lr",
    /// "0.1")`), in [`SWEPT_FIELDS`] order. Each is a column after the
    /// model settings' columns; serde cannot name columns at run time, so
    /// [`summary_csv`] writes them and [`SummaryRow::read_numbers`] reads
    /// them.
    #[serde(skip)]
    pub numbers: Vec<(String, String)>,
}

impl SummaryRow {
    /// The row of a run record. `swept` names the swept settings that get a
    /// column (a run without a value for one gets an empty field).
    pub fn from_record<C>(r: &RunRecord<C>, swept: &[&str]) -> SummaryRow {
        let column = |field: &str| {
            swept
                .contains(&field)
                .then(|| r.swept.get(field).cloned().unwrap_or_default())
        };
        let (f, g) = (&r.final_metrics, &r.gradient_ends);
        SummaryRow {
            run: r.run.clone(),
            variant: r.variant.clone(),
            activation: column("activation"),
            init: column("init"),
            norm: column("norm"),
            cell: column("cell"),
            depth: r.depth as u32,
            seed: r.seed,
            status: r.status.as_str().to_string(),
            steps_done: Some(r.steps_done as u64),
            params: Some(r.params.max(0) as u64),
            final_train_loss: f.train_loss,
            final_train_error: f.train_error,
            final_test_loss: f.test_loss,
            final_test_error: f.test_error,
            grad_decay_init: g.decay_init,
            grad_decay_theory: g.decay_theory,
            grad_decay_final: g.decay_final,
            wgrad_decay_init: g.wgrad_decay_init,
            wgrad_decay_final: g.wgrad_decay_final,
            grad_spread_init: g.spread_init,
            grad_spread_final: g.spread_final,
            grad_first_init: g.init_first,
            grad_last_init: g.init_last,
            grad_first_final: g.final_first,
            grad_last_final: g.final_last,
            fwd_spread_init: g.forward_spread_init,
            fwd_spread_final: g.forward_spread_final,
            xi_c: g.xi_c,
            elapsed_s: Some(r.elapsed_s),
            source: None,
            numbers: swept
                .iter()
                .filter(|f| f.contains('.'))
                .map(|f| (f.to_string(), r.swept.get(*f).cloned().unwrap_or_default()))
                .collect(),
        }
    }

    /// Fills [`SummaryRow::numbers`] from a `summary.csv` row read with
    /// `headers`: every column named by a numeric sweep field.
    pub fn read_numbers(&mut self, headers: &csv::StringRecord, record: &csv::StringRecord) {
        self.numbers = numeric_fields()
            .iter()
            .filter_map(|f| {
                let i = headers.iter().position(|h| h == *f)?;
                Some((f.to_string(), record.get(i)?.to_string()))
            })
            .collect();
    }

    /// Whether the run stopped because its loss became non-finite.
    pub fn is_diverged(&self) -> bool {
        self.status == Status::Diverged.as_str()
    }

    /// What the charts draw as one panel or one line family: the variant,
    /// followed by the swept settings' values where the experiment sweeps
    /// any (`plain, tanh, init glorot, no norm`); just `plain` otherwise.
    pub fn group(&self) -> String {
        let swept = [
            ("activation", &self.activation),
            ("init", &self.init),
            ("norm", &self.norm),
            ("cell", &self.cell),
        ];
        let mut parts = vec![self.variant.clone()];
        for (field, value) in swept {
            if let Some(v) = value {
                parts.push(describe(field, v));
            }
        }
        for (field, v) in &self.numbers {
            parts.push(describe(field, v));
        }
        match &self.source {
            Some(folder) => format!("{folder}: {}", parts.join(", ")),
            None => parts.join(", "),
        }
    }
}

/// The bytes of `summary.csv` for these records, in their order. A swept
/// setting gets a column when any record sweeps it.
pub fn summary_csv<C>(records: &[RunRecord<C>]) -> Result<Vec<u8>, csv::Error> {
    let swept: Vec<&str> = SWEPT_FIELDS
        .into_iter()
        .filter(|f| records.iter().any(|r| r.swept.contains_key(*f)))
        .collect();
    let mut w = csv::Writer::from_writer(Vec::new());
    if records.is_empty() {
        w.write_record(SUMMARY_HEADER)?;
    }
    let numbers = swept.iter().filter(|f| f.contains('.')).count();
    if numbers == 0 {
        for r in records {
            w.serialize(SummaryRow::from_record(r, &swept))?;
        }
        return w.into_inner().map_err(|e| csv::Error::from(e.into_error()));
    }
    // Numeric sweep columns go after the model settings' (which serde
    // writes after `variant`): each row is serialized without a header,
    // then the columns are put in.
    let at = 2 + swept.len() - numbers;
    let mut header: Vec<&str> = SUMMARY_HEADER[..2].to_vec();
    header.extend(&swept);
    header.extend(&SUMMARY_HEADER[2..]);
    w.write_record(&header)?;
    for r in records {
        let row = SummaryRow::from_record(r, &swept);
        let mut one = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        one.serialize(&row)?;
        let bytes = one
            .into_inner()
            .map_err(|e| csv::Error::from(e.into_error()))?;
        let mut fields = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(bytes.as_slice())
            .into_records()
            .next()
            .transpose()?
            .unwrap_or_default()
            .iter()
            .map(str::to_string)
            .collect::<Vec<_>>();
        for (i, (_, v)) in row.numbers.iter().enumerate() {
            fields.insert(at + i, v.clone());
        }
        w.write_record(&fields)?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// Full precision, as `f64`'s `Display` writes it (`summary.csv` always
/// has; `inf` for an infinite spread).
fn plain<S: serde::Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_str(&v.to_string()),
        None => s.serialize_str(""),
    }
}

fn fixed4<S: serde::Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_str(&format!("{v:.4}")),
        None => s.serialize_str(""),
    }
}

fn fixed3<S: serde::Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_str(&format!("{v:.3}")),
        None => s.serialize_str(""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{FinalMetrics, GradientEnds, Versions};
    use std::collections::BTreeMap;

    fn header_of<T: Serialize>(row: &T) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize(row).unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        text.lines().next().unwrap().to_string()
    }

    fn record(run: &str, swept: &[(&str, &str)]) -> RunRecord<()> {
        RunRecord {
            experiment: "e".into(),
            experiment_file: None,
            run: run.into(),
            variant: "plain".into(),
            swept: swept
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            depth: 8,
            seed: 1,
            status: Status::Diverged,
            diverged_at_step: Some(3),
            error: None,
            steps_planned: 10,
            steps_done: 3,
            resumed_from: vec![],
            params: 42,
            elapsed_s: 1.23456,
            device: "cpu".into(),
            threads: 1,
            versions: Versions {
                gradscope: "0".into(),
                tch: "0".into(),
                libtorch: "0".into(),
            },
            final_metrics: FinalMetrics {
                train_loss: Some(f64::NAN),
                ..FinalMetrics::default()
            },
            gradient_ends: GradientEnds {
                decay_init: Some(0.125),
                wgrad_decay_init: Some(0.5),
                xi_c: Some(f64::INFINITY),
                spread_init: Some(f64::INFINITY),
                init_first: Some(1e-40),
                ..GradientEnds::default()
            },
            probe_points: vec![],
            config: (),
        }
    }

    #[test]
    fn headers_are_the_field_order_of_the_row_types() {
        // The header constants are what crates/README.md documents; a field
        // added to a row type without its column (or the reverse) fails here.
        let m = MetricRow {
            step: 0,
            epoch: Some(0.5),
            split: SPLIT_TRAIN.into(),
            loss: Some(1.0),
            error: None,
            lr: Some(0.1),
            grad_norm: Some(3.0),
            elapsed_s: Some(2.0),
        };
        assert_eq!(header_of(&m), METRICS_HEADER.join(","));
        let a = ActivationRow {
            step: 0,
            layer: 1,
            name: "layer01.linear".into(),
            mean: Some(0.0),
            std: None,
            saturation: Some(0.5),
            dead: Some(0.0),
            q: Some(1e-12),
            c: None,
            rank1: Some(0.5),
            entropy: None,
        };
        assert_eq!(header_of(&a), ACTIVATIONS_HEADER.join(","));
        let text = String::from_utf8(summary_csv(&[record("plain-d8-s1", &[])]).unwrap()).unwrap();
        assert_eq!(text.lines().next().unwrap(), SUMMARY_HEADER.join(","));
    }

    #[test]
    fn rows_write_as_before_and_read_back() {
        let m = MetricRow {
            step: 7,
            epoch: Some(0.123456),
            split: SPLIT_TEST.into(),
            loss: Some(f64::NAN),
            error: Some(2e-41),
            lr: Some(0.1),
            grad_norm: None,
            elapsed_s: Some(1.23456),
        };
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize(&m).unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert_eq!(
            text.lines().nth(1),
            Some("7,0.1235,test,NaN,2e-41,0.1,,1.235")
        );
        let back: MetricRow = csv::Reader::from_reader(text.as_bytes())
            .deserialize()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(
            (back.step, back.error, back.elapsed_s),
            (7, Some(2e-41), Some(1.235))
        );
        assert!(back.loss.unwrap().is_nan());
        // An activations file from before the `dead` column reads it as none.
        let old: ActivationRow = csv::Reader::from_reader(
            "step,layer,name,mean,std,saturation\n0,1,x,0.5,1,0\n".as_bytes(),
        )
        .deserialize()
        .next()
        .unwrap()
        .unwrap();
        assert_eq!((old.layer, old.dead), (1, None));
        // Nor from before `rank1` and `entropy`.
        let old: ActivationRow = csv::Reader::from_reader(
            "step,layer,name,mean,std,saturation,dead,q\n0,1,x.h0,0.5,1,0,0,2\n".as_bytes(),
        )
        .deserialize()
        .next()
        .unwrap()
        .unwrap();
        assert_eq!((old.q, old.rank1, old.entropy), (Some(2.0), None, None));
        assert_eq!(old.c, None, "a file from before the c column");
        assert_eq!(old.head(), None, "no entropy: not a head's row");
    }

    /// A head's row name reads back as its point and head; an rnn's
    /// `t007.h`, a gate and a row without an entropy do not.
    #[test]
    fn head_rows_name_their_point_and_head() {
        let row = |name: &str, entropy: Option<f64>| ActivationRow {
            step: 0,
            layer: 3,
            name: name.into(),
            mean: None,
            std: None,
            saturation: None,
            dead: None,
            q: None,
            c: None,
            rank1: None,
            entropy,
        };
        let name = head_name("block03.attn.probs", 12);
        assert_eq!(name, "block03.attn.probs.h12");
        assert_eq!(
            row(&name, Some(1.0)).head(),
            Some(("block03.attn.probs", 12))
        );
        assert_eq!(row(&name, None).head(), None);
        for other in ["t007.h", "t007.gate_f", ".h1", "x.h1a", "layer01.linear"] {
            assert_eq!(row(other, Some(1.0)).head(), None, "{other}");
        }
    }

    /// The response charts and per-layer tables draw layer responses
    /// only: not a head's entropy, a gate, or a row of q and rank1 alone.
    #[test]
    fn layer_responses_leave_out_heads_gates_and_forward_only_rows() {
        let row = |name: &str, mean: Option<f64>, entropy: Option<f64>| ActivationRow {
            step: 0,
            layer: 3,
            name: name.into(),
            mean,
            std: mean,
            saturation: None,
            dead: None,
            q: Some(1.0),
            c: None,
            rank1: None,
            entropy,
        };
        assert!(row("layer03.linear", Some(0.5), None).is_layer_response());
        assert!(row("block03", Some(0.5), None).is_layer_response());
        assert!(!row("block03", None, None).is_layer_response());
        assert!(!row("block03.attn.probs.h1", None, Some(1.2)).is_layer_response());
        assert!(!row("t007.gate_f", Some(0.5), None).is_layer_response());
    }

    #[test]
    fn summary_columns_for_swept_settings_and_full_precision_numbers() {
        let bytes = summary_csv(&[
            record("plain-tanh-d8-s1", &[("activation", "tanh")]),
            record("plain-d8-s1", &[]),
        ])
        .unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("run,variant,activation,depth,"),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].starts_with(
                "plain-tanh-d8-s1,plain,tanh,8,1,diverged,3,42,NaN,,,,0.125,,,0.5,,inf,,0.0000"
            ),
            "{}",
            lines[1]
        );
        assert!(lines[1].ends_with(",1.235"), "{}", lines[1]);
        assert!(
            lines[2].starts_with("plain-d8-s1,plain,,8,"),
            "{}",
            lines[2]
        );
        let rows: Vec<SummaryRow> = csv::Reader::from_reader(text.as_bytes())
            .deserialize()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows[0].activation.as_deref(), Some("tanh"));
        assert_eq!(rows[1].activation, None);
        assert_eq!(rows[0].grad_first_init, Some(1e-40));
        assert_eq!(rows[0].grad_spread_init, Some(f64::INFINITY));
        assert_eq!(
            (rows[0].wgrad_decay_init, rows[0].wgrad_decay_final),
            (Some(0.5), None)
        );
        // ξ_c at the edge of chaos is ∞, written `inf`.
        assert_eq!(rows[0].xi_c, Some(f64::INFINITY));
        assert!(lines[1].ends_with(",inf,1.235"), "{}", lines[1]);
        assert!(rows[0].is_diverged());
        assert_eq!(rows[0].group(), "plain, tanh");
    }

    /// A summary.csv written before the wgrad columns (the header of
    /// docs/FILES.md until then) reads them as none.
    #[test]
    fn a_summary_without_the_wgrad_columns_reads() {
        let text = "run,variant,depth,seed,status,steps_done,params,final_train_loss,final_train_error,final_test_loss,final_test_error,grad_decay_init,grad_decay_theory,grad_decay_final,grad_spread_init,grad_spread_final,grad_first_init,grad_last_init,grad_first_final,grad_last_final,fwd_spread_init,fwd_spread_final,elapsed_s\n\
                    plain-d8-s1,plain,8,1,completed,10,42,0.1,0.02,0.2,0.03,0.85,0.8,0.6,9.1,7.2,1e-9,0.1,1e-5,0.1,0.3,0.4,1.000\n";
        let row: SummaryRow = csv::Reader::from_reader(text.as_bytes())
            .deserialize()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(row.grad_decay_init, Some(0.85));
        assert_eq!((row.wgrad_decay_init, row.wgrad_decay_final), (None, None));
        assert_eq!(row.xi_c, None, "nor xi_c");
    }

    /// A swept number gets its own column after the model settings', and
    /// reads back into the row's group (a chart panel per value).
    #[test]
    fn numeric_sweep_columns_follow_the_model_settings() {
        let bytes = summary_csv(&[
            record(
                "plain-tanh-lr0.1-d8-s1",
                &[("activation", "tanh"), ("train.lr", "0.1")],
            ),
            record(
                "plain-relu-lr0.01-d8-s1",
                &[("activation", "relu"), ("train.lr", "0.01")],
            ),
        ])
        .unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("run,variant,activation,train.lr,depth,"),
            "{}",
            lines[0]
        );
        assert!(
            lines[2].starts_with("plain-relu-lr0.01-d8-s1,plain,relu,0.01,8,1,"),
            "{}",
            lines[2]
        );
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let headers = reader.headers().unwrap().clone();
        let record = reader.records().next().unwrap().unwrap();
        let mut row: SummaryRow = record.deserialize(Some(&headers)).unwrap();
        row.read_numbers(&headers, &record);
        assert_eq!(row.numbers, [("train.lr".to_string(), "0.1".to_string())]);
        assert_eq!(row.group(), "plain, tanh, lr 0.1");
        assert_eq!(row.depth, 8);
    }
}
