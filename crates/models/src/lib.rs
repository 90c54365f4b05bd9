//! gradscope-models: the networks gradscope trains, each a plain net with a
//! residual twin built by the same code.
//!
//! Main types: the [`Network`] trait (forward pass, optionally recorded in
//! a [`Recording`], and ordered [`ProbePoint`]s), [`mlp::Mlp`] with its [`mlp::MlpConfig`],
//! and the options shared by families: [`Activation`], [`Init`], [`Norm`],
//! [`Variant`].
//!
//! A probe point is a place where gradscope reads dL/dh, the gradient that
//! arrives at a layer's output. tch has no backward hooks, so on a probe
//! step the caller passes a [`Recording`]: the network puts each probe
//! point's output tensor in it (the tensor itself, in the autograd graph),
//! and one backward pass that asks for the gradients of those tensors
//! (`Tensor::run_backward`, PyTorch's `autograd.grad`) captures dL/dh as it
//! flows past. Nothing is added to the forward pass and nothing is copied.
//! Without a recording a forward pass keeps nothing beyond what autograd
//! saves for backward.

#![forbid(unsafe_code)]

pub mod bottleneck;
pub mod cnn;
pub mod cost;
pub mod inception;
pub mod layers;
pub mod lesion;
pub mod mlp;
pub mod rnn;
pub mod spec;
pub mod transformer;
pub mod validate;

use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use tch::Tensor;

/// Errors from building a network.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A setting that cannot build a network; `field` is named as in the
    /// experiment file.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
}

/// The nonlinearity between weight layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Sigmoid,
    Tanh,
    Relu,
}

impl Activation {
    pub fn apply(self, x: &Tensor) -> Tensor {
        match self {
            Activation::Sigmoid => x.sigmoid(),
            Activation::Tanh => x.tanh(),
            Activation::Relu => x.relu(),
        }
    }

    /// Which units sit in the flat part of this nonlinearity, given its
    /// output `a`: sigmoid within 0.01 of 0 or 1 and tanh within 0.01 of ±1
    /// (where the derivative is below about 0.01–0.02, Glorot & Bengio 2010
    /// §3), relu exactly 0 (a unit that passes no gradient). A bool tensor
    /// of `a`'s shape, left on the device.
    pub fn saturated(self, a: &Tensor) -> Tensor {
        match self {
            Activation::Sigmoid => a.lt(0.01).logical_or(&a.gt(0.99)),
            Activation::Tanh => a.abs().gt(0.99),
            Activation::Relu => a.le(0.0),
        }
    }

    /// [`Activation::saturated`] as two bounds in float32, for the probe's
    /// one-pass reader in host memory: a value `a` is in the flat part when
    /// `a <= at_most` or `a >= at_least` (both false for NaN; a NaN bound
    /// never holds). Strict comparisons become the neighbouring float32:
    /// `a < 0.01` is `a <= 0.01f32.next_down()`. As bounds rather than a
    /// predicate, the reader compares eight values per AVX2 instruction.
    pub fn flat_bounds(self) -> (f32, f32) {
        match self {
            Activation::Sigmoid => (0.01f32.next_down(), 0.99f32.next_up()),
            Activation::Tanh => ((-0.99f32).next_down(), 0.99f32.next_up()),
            Activation::Relu => (0.0, f32::NAN),
        }
    }

    /// [`Activation::saturated`] for one value, from [`Activation::flat_bounds`].
    #[inline]
    pub fn saturated_value(self, a: f32) -> bool {
        let (at_most, at_least) = self.flat_bounds();
        a <= at_most || a >= at_least
    }
}

/// How weight layers are initialized. Biases start at zero except under
/// `PytorchDefault`, which copies PyTorch's `nn.Linear`/`nn.Conv2d` rule,
/// and `Variance`, which draws them.
///
/// Written `"orthogonal"` or `{"orthogonal": {"gain": 2}}`: the bare name
/// is read by hand (serde cannot give one variant both forms), the rest by
/// [`InitForm`]'s derive.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Init {
    /// PyTorch's default: weights and biases U(-1/√fan_in, 1/√fan_in). This is
    /// also the "standard" init of Glorot & Bengio (2010), eq. 1.
    PytorchDefault,
    /// Glorot & Bengio's normalized init, U(±√6/√(fan_in + fan_out)).
    Glorot,
    /// He et al. (2015): N(0, 2/fan_in), for ReLU nets.
    Kaiming,
    /// N(0, std²).
    Normal { std: f64 },
    /// A (semi-)orthogonal weight times `gain` (Saxe et al. 2014), as
    /// PyTorch's `nn.init.orthogonal_`: QR of a Gaussian matrix, signs
    /// fixed by diag(R), the weight viewed as rows × (everything else);
    /// biases 0.
    Orthogonal { gain: f64 },
    /// The mean-field convention (Poole et al. 2016, Schoenholz et al.
    /// 2017): W ~ N(0, weight/fan_in), b ~ N(0, bias), i.e. `weight` is
    /// σ_w² and `bias` is σ_b².
    Variance { weight: f64, bias: f64 },
    /// Fixup (Zhang et al. 2019), for residual nets without normalization:
    /// He init, each branch's non-last layers scaled by L^(−1/(2m−2)) (L
    /// branches of m layers), each branch's last layer and the classifier
    /// at 0, and scalar biases (0) and a scalar multiplier (1) per branch.
    /// A net without shortcuts gets the He init alone.
    Fixup,
}

/// The forms of [`Init`] serde reads (all but bare `"orthogonal"`).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum InitForm {
    /// PyTorch's default: weights and biases U(-1/√fan_in, 1/√fan_in).
    PytorchDefault,
    /// Glorot & Bengio's normalized init, U(±√6/√(fan_in + fan_out)).
    Glorot,
    /// He et al. (2015): N(0, 2/fan_in), for ReLU nets.
    Kaiming,
    /// N(0, std²).
    Normal { std: f64 },
    /// Orthogonal weights times `gain` (default 1); `"orthogonal"` alone is
    /// gain 1.
    Orthogonal {
        #[serde(default = "one")]
        gain: f64,
    },
    /// W ~ N(0, weight/fan_in), b ~ N(0, bias) (σ_w², σ_b²).
    Variance { weight: f64, bias: f64 },
    /// Fixup (Zhang et al. 2019), for residual nets without normalization.
    Fixup,
}

fn one() -> f64 {
    1.0
}

impl From<InitForm> for Init {
    fn from(f: InitForm) -> Init {
        match f {
            InitForm::PytorchDefault => Init::PytorchDefault,
            InitForm::Glorot => Init::Glorot,
            InitForm::Kaiming => Init::Kaiming,
            InitForm::Normal { std } => Init::Normal { std },
            InitForm::Orthogonal { gain } => Init::Orthogonal { gain },
            InitForm::Variance { weight, bias } => Init::Variance { weight, bias },
            InitForm::Fixup => Init::Fixup,
        }
    }
}

impl<'de> Deserialize<'de> for Init {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = serde_json::Value::deserialize(d)?;
        if v.as_str() == Some("orthogonal") {
            return Ok(Init::Orthogonal { gain: 1.0 });
        }
        InitForm::deserialize(v)
            .map(Init::from)
            .map_err(D::Error::custom)
    }
}

impl schemars::JsonSchema for Init {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Init".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let forms = generator.subschema_for::<InitForm>();
        schemars::json_schema!({
            "description": "How weight layers are initialized: \"pytorch-default\", \"glorot\", \"kaiming\", \"fixup\", \"orthogonal\", {\"orthogonal\": {\"gain\": 2}}, {\"normal\": {\"std\": 0.05}} or {\"variance\": {\"weight\": 2, \"bias\": 0.05}}.",
            "anyOf": [forms, { "const": "orthogonal" }]
        })
    }
}

impl Init {
    /// tch initializers for a weight of the given fans, and for its bias.
    pub fn weight_and_bias(self, fan_in: i64, fan_out: i64) -> (tch::nn::Init, tch::nn::Init) {
        use tch::nn::Init as I;
        let zero = I::Const(0.0);
        match self {
            Init::PytorchDefault => {
                let b = 1.0 / (fan_in as f64).sqrt();
                (I::Uniform { lo: -b, up: b }, I::Uniform { lo: -b, up: b })
            }
            Init::Glorot => {
                let b = (6.0 / (fan_in + fan_out) as f64).sqrt();
                (I::Uniform { lo: -b, up: b }, zero)
            }
            Init::Kaiming | Init::Fixup => {
                let std = (2.0 / fan_in as f64).sqrt();
                (
                    I::Randn {
                        mean: 0.0,
                        stdev: std,
                    },
                    zero,
                )
            }
            Init::Normal { std } => (
                I::Randn {
                    mean: 0.0,
                    stdev: std,
                },
                zero,
            ),
            // tch's orthogonal is PyTorch's for a 2-d weight; a conv
            // weight is filled by [`Init::fill`] once it exists.
            Init::Orthogonal { gain } => (I::Orthogonal { gain }, zero),
            Init::Variance { weight, bias } => (
                I::Randn {
                    mean: 0.0,
                    stdev: (weight / fan_in as f64).sqrt(),
                },
                I::Randn {
                    mean: 0.0,
                    stdev: bias.sqrt(),
                },
            ),
        }
    }

    /// The initializer to create a conv weight (4-d) with, and whether
    /// [`Init::fill`] must then refill it: tch's `f_init` would give an
    /// orthogonal weight the 2-d shape rows × cols.
    pub fn conv_weight(self, fan_in: i64, fan_out: i64) -> (tch::nn::Init, bool) {
        match self {
            Init::Orthogonal { .. } => (tch::nn::Init::Const(0.0), true),
            _ => (self.weight_and_bias(fan_in, fan_out).0, false),
        }
    }

    /// Fills an existing weight of any shape orthogonally, as PyTorch's
    /// `orthogonal_` (viewed as rows × the rest); other inits leave it.
    pub fn fill(self, w: &mut Tensor) {
        if let Init::Orthogonal { gain } = self {
            tch::no_grad(|| w.init(tch::nn::Init::Orthogonal { gain }));
        }
    }
}

/// Normalization before each nonlinearity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Norm {
    None,
    /// Batch normalization with PyTorch's defaults: gamma = 1, beta = 0,
    /// eps = 1e-5, momentum = 0.1 (tch's own default gamma is U(0,1)).
    Batchnorm,
}

/// A plain net or its residual twin.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    Plain,
    /// Identity shortcuts: y = x + F(x).
    Residual,
    /// ReZero (Bachlechner et al. 2020): y = x + α·F(x), α a learnable
    /// scalar per block that starts at 0 (MLP and CNN families).
    Rezero,
    /// Highway (Srivastava et al. 2015): y = T(x)·F(x) + (1 − T(x))·x with
    /// the gate T(x) = σ(W_T·x + b_T), b_T starting at `model.gate_bias`
    /// (MLP and CNN families).
    Highway,
    /// The original Transformer's layout (Vaswani et al. 2017), x ←
    /// LN(x + F(x)) around each sublayer: the shortcut passes through a
    /// LayerNorm (transformer family).
    #[serde(rename = "post-ln")]
    PostLn,
    /// x ← x + F(LN(x)) with a final LN (Xiong et al. 2020): the identity
    /// path is clean (transformer family).
    #[serde(rename = "pre-ln")]
    PreLn,
}

impl Variant {
    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Plain => "plain",
            Variant::Residual => "residual",
            Variant::Rezero => "rezero",
            Variant::Highway => "highway",
            Variant::PostLn => "post-ln",
            Variant::PreLn => "pre-ln",
        }
    }

    /// Whether the net has shortcuts around its blocks (every variant but
    /// plain).
    pub fn has_shortcut(self) -> bool {
        self != Variant::Plain
    }

    /// Whether this is one of the Transformer's LayerNorm layouts
    /// (`post-ln`, `pre-ln`), which only the transformer family builds.
    pub fn is_ln_layout(self) -> bool {
        matches!(self, Variant::PostLn | Variant::PreLn)
    }

    /// The refusal of a LayerNorm layout by a family without one, for its
    /// constructor (a net built past it would have no layout to follow).
    pub(crate) fn refuse_ln_layout(self) -> Result<(), ModelError> {
        if self.is_ln_layout() {
            return Err(ModelError::Invalid {
                field: "variants".into(),
                message: format!(
                    "{:?} is built for the transformer family only",
                    self.as_str()
                ),
            });
        }
        Ok(())
    }
}

/// How the last layer of each residual branch starts (`model.branch_init`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum BranchInit {
    /// As `model.init` says.
    #[default]
    Default,
    /// At 0, so that each block starts as its shortcut: zero-γ of the
    /// branch's last BatchNorm with BN (Goyal et al. 2017), the branch's
    /// last weight layer otherwise (SkipInit, De & Smith 2020). Only nets
    /// with shortcuts; the plain twin keeps `model.init`.
    Zero,
}

impl BranchInit {
    pub fn is_default(&self) -> bool {
        *self == BranchInit::Default
    }
}

/// A place where gradscope reads gradients: a weight layer's output, or a
/// block's output (and, in the recurrent family, a weight block alone or
/// a gate's responses alone: see [`Reads`]).
#[derive(Debug)]
pub struct ProbePoint {
    /// Zero-padded, input side first (`layer07.linear`), so names sort in
    /// layer order.
    pub name: String,
    /// The layer's weight (a shallow clone: same storage, same `grad()`);
    /// `None` for a point with no weight of its own, such as a block output.
    pub weight: Option<Tensor>,
    /// Shape of the layer's output for one example (without the batch
    /// dimension).
    pub output_shape: Vec<i64>,
    /// Whether the point is on the trunk: one kind of point in depth order
    /// whose dL/dh the decay per layer is fitted over. The MLP's hidden
    /// layers; the block (or module) outputs of the conv families. The input
    /// layer, the head and the convs inside blocks are not (their own factors
    /// are not depth, and mixing kinds makes a sawtooth).
    pub trunk: bool,
    /// What the probe reads there besides the weight.
    pub reads: Reads,
}

/// What the probe reads at a [`ProbePoint`] besides its weight.
///
/// Every point of the feed-forward families is an [`Reads::Output`]. The
/// other two exist because a recurrent net's time steps share weights
/// that are not layer outputs of their own: a gate block is a row block
/// of one parameter (PyTorch stacks an LSTM's four gates in one W), and
/// the gates are sigmoids inside libtorch's cell op, never a probed
/// output. Such points write no `output` row, and nothing is fitted over
/// them (they are never on the trunk).
#[derive(Debug)]
pub enum Reads {
    /// dL/dh at the point's output, which the forward pass records with
    /// `mark`, and the responses that follow it, measured against the
    /// network's [`Network::activation`].
    Output,
    /// The weight alone, which is rows `first_row..first_row + n` of
    /// `parameter` (`weight` is that narrowed view, n its rows): its
    /// gradient is the same rows of the parameter's gradient. Nothing is
    /// recorded at the point.
    WeightRows { parameter: Tensor, first_row: i64 },
    /// Responses alone, measured against this nonlinearity rather than
    /// the network's (an LSTM's sigmoid gates in a net whose responses are
    /// tanh). Nothing is recorded but the responses.
    Responses(Activation),
    /// As [`Reads::Output`] at a block output of tokens (`[batch, tokens,
    /// width]`, a Transformer block's): dL/dh there, and, from the output
    /// the forward pass records, how far each example's token matrix X
    /// is from rank 1, ‖X − 1·x̄ᵀ‖_F / ‖X‖_F (Dong, Cordonnier & Loukas
    /// 2021's residual; x̄ the mean token), in activations.csv.
    Tokens,
    /// An attention's probabilities (`[batch, heads, queries, keys]`,
    /// recorded as the point's response) alone: each head's mean entropy
    /// over queries, in nats, in activations.csv. No weight is read at
    /// the point and nothing is fitted over it.
    Attention { heads: i64 },
}

impl Reads {
    /// Whether the forward pass records the point's output (dL/dh is read
    /// there).
    pub fn output(&self) -> bool {
        matches!(self, Reads::Output | Reads::Tokens)
    }
}

/// What a probed forward pass records (see the crate docs): each probe
/// point's output, and the responses (`(probe point index, tensor)` in
/// forward order; see each network's docs for what a response is) that
/// `activations.csv` summarizes.
///
/// A `RefCell` rather than `&mut`: the families record from nested blocks
/// and closures, which a shared reference reaches without re-borrowing.
pub struct Recording<'a> {
    outputs: RefCell<Vec<Option<Tensor>>>,
    responses: RefCell<Vec<(usize, Tensor)>>,
    /// Reads a response as it is recorded; true when it did, and the
    /// response is not kept.
    reader: Option<RefCell<ResponseReader<'a>>>,
}

type ResponseReader<'a> = Box<dyn FnMut(usize, &Tensor) -> bool + 'a>;

impl std::fmt::Debug for Recording<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recording")
            .field("outputs", &self.outputs.borrow().len())
            .field("responses", &self.responses.borrow().len())
            .field("reads_responses", &self.reader.is_some())
            .finish()
    }
}

impl<'a> Recording<'a> {
    /// An empty recording for a network with `points` probe points.
    pub fn new(points: usize) -> Recording<'a> {
        Recording {
            outputs: RefCell::new((0..points).map(|_| None).collect()),
            responses: RefCell::new(Vec::new()),
            reader: None,
        }
    }

    /// A recording that hands each response to `read` as the forward pass
    /// makes it, and keeps only those `read` declines (returns false for).
    /// A response that autograd does not save (a BN output) then lives no
    /// longer than the forward pass needs it, rather than until the probe
    /// reads it after backward: in CNN-56 that held 120 MB more at a
    /// probe step's peak.
    pub fn reading(points: usize, read: impl FnMut(usize, &Tensor) -> bool + 'a) -> Recording<'a> {
        Recording {
            reader: Some(RefCell::new(Box::new(read))),
            ..Recording::new(points)
        }
    }

    /// The probe points' outputs (`None` for a point the pass did not
    /// reach, a bug in the network) and the responses that were kept.
    pub fn finish(self) -> (Vec<Option<Tensor>>, Vec<(usize, Tensor)>) {
        (self.outputs.into_inner(), self.responses.into_inner())
    }

    fn output(&self, point: usize, h: &Tensor) {
        if let Some(slot) = self.outputs.borrow_mut().get_mut(point) {
            *slot = Some(h.shallow_clone());
        }
    }

    fn response(&self, point: usize, r: &Tensor) {
        if let Some(read) = &self.reader {
            if (read.borrow_mut())(point, r) {
                return;
            }
        }
        self.responses.borrow_mut().push((point, r.shallow_clone()));
    }
}

/// A network with ordered probe points.
pub trait Network {
    /// Forward pass to the logits; with `rec`, every probe point's output
    /// and every response are recorded in it.
    fn forward(&self, x: &Tensor, train: bool, rec: Option<&Recording>) -> Tensor;

    /// Probe points, input side first.
    fn probe_points(&self) -> &[ProbePoint];

    /// The nonlinearity whose saturation the responses are measured against.
    fn activation(&self) -> Activation;

    /// The weight layers with their shapes, multiplications and parameters,
    /// in forward order, for `gradscope cost`; empty for families that do
    /// not record them.
    fn layer_costs(&self) -> &[layers::LayerCost] {
        &[]
    }

    /// Multiplications per example and the weight-layer calls of one
    /// forward pass, where they are not one per weighted probe point: a
    /// recurrent net applies its weights once per time step. `None`: count
    /// the weighted probe points (what `gradscope check` does by default).
    fn unrolled_cost(&self) -> Option<(i64, usize)> {
        None
    }

    /// The blocks a lesion can delete or swap and a path study can route
    /// (see [`lesion`]), or why this net has none that can.
    fn blocks(&self) -> Result<lesion::Blocks, String> {
        Err(
            "its blocks are not addressable by a lesion (the mlp, cnn and bottleneck families are)"
                .into(),
        )
    }

    /// A forward pass in eval mode with the blocks run as `plan` says;
    /// returns the logits and the tensor that enters the first block (the
    /// path study's gradient is taken there). `None` where [`Network::blocks`]
    /// is an error. The caller checks `plan` against `blocks`: a deleted or
    /// swapped block must be `same_shape`.
    fn forward_planned(&self, _x: &Tensor, _plan: &lesion::BlockPlan) -> Option<(Tensor, Tensor)> {
        None
    }
}

/// Records `h` as the output of probe point `i`, if recording; returns it.
pub(crate) fn mark(h: Tensor, rec: Option<&Recording>, i: usize) -> Tensor {
    if let Some(r) = rec {
        r.output(i, &h);
    }
    h
}

/// Records `r` as a response of probe point `i`, if recording.
pub(crate) fn respond(rec: Option<&Recording>, i: usize, r: &Tensor) {
    if let Some(rec) = rec {
        rec.response(i, r);
    }
}

/// Zero-padded probe-point name: `layer07.linear` (two digits, or more when
/// the net has 100 layers or more, so names always sort in order). With an
/// empty `kind` it is just `layer07`, the var-store path segment (tch forbids
/// `.` inside a segment; `p / "layer07" / "linear"` stores `layer07.linear.weight`).
pub fn point_name(index: usize, count: usize, kind: &str) -> String {
    let digits = count.saturating_sub(1).to_string().len().max(2);
    if kind.is_empty() {
        format!("layer{index:0digits$}")
    } else {
        format!("layer{index:0digits$}.{kind}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The probe reads saturation in host memory from the bounds and on
    /// other devices with libtorch's comparisons: both must call the same
    /// values saturated, at the thresholds (a float32 step either side),
    /// at 0, ±∞ and NaN.
    #[test]
    fn flat_bounds_agree_with_libtorch_comparisons() {
        let mut values = vec![
            0.0f32,
            -0.0,
            1.0,
            -1.0,
            0.5,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
        ];
        values.extend([f32::from_bits(1), -f32::from_bits(1), f32::MIN_POSITIVE]);
        for t in [0.01f32, 0.99, -0.99, -0.01] {
            let mut v = t;
            for _ in 0..3 {
                v = v.next_down();
            }
            for _ in 0..7 {
                values.push(v);
                v = v.next_up();
            }
        }
        let x = Tensor::from_slice(&values);
        for act in [Activation::Sigmoid, Activation::Tanh, Activation::Relu] {
            let libtorch: Vec<bool> = Vec::try_from(act.saturated(&x)).unwrap();
            for (v, want) in values.iter().zip(libtorch) {
                assert_eq!(act.saturated_value(*v), want, "{act:?} at {v:e}");
            }
        }
    }
}
