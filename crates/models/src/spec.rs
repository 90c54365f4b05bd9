//! The model section of an experiment file: each family's options (serde,
//! defaults, the JSON Schema), sweep axes, and [`ModelSpec::build`], which
//! makes the network a run trains. gradscope-train's experiment file holds
//! a `ModelSpec` and checks it against the sections around it (depths,
//! dataset, task); the network constructors take the resolved values.
//!
//! Sweep axes: a setting (`activation`, `init`, `norm`) takes one value or
//! a list (`"init": ["pytorch-default", "glorot"]`); the plan runs every
//! combination, and each run trains the experiment resolved to its own
//! values, whose axes hold one value each. An axis is written back the way
//! it was given, so files and `run.json` round-trip.
//!
//! [`ModelSpec`] is a tagged object (`"family": "cnn"`), read with
//! gradscope-data's `spec::Section` so that an error
//! inside it keeps its path (`model.activation`).

use crate::bottleneck::{Bottleneck, BottleneckConfig};
use crate::cnn::{Cnn, CnnConfig, Shortcut};
use crate::inception::{InceptionConfig, InceptionNet, ModuleKind};
use crate::mlp::{Mlp, MlpConfig};
use crate::rnn::{Cell, Rnn, RnnConfig};
use crate::transformer::{Transformer, TransformerConfig};
use crate::{Activation, BranchInit, Init, ModelError, Network, Norm, Variant};
use gradscope_data::spec::Section;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt::Debug;
use tch::nn;

/// One value, or the non-empty list of values a sweep runs over.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis<T>(Vec<T>);

impl<T: Copy + PartialEq> Axis<T> {
    pub fn one(value: T) -> Axis<T> {
        Axis(vec![value])
    }

    /// Every value, in the file's order.
    pub fn values(&self) -> &[T] {
        &self.0
    }

    /// Whether the experiment sweeps this setting (two values or more).
    pub fn is_swept(&self) -> bool {
        self.0.len() > 1
    }

    /// The setting of one run. In a resolved experiment (every run's own
    /// config) this is the only value; in a swept one it is the first, so
    /// callers that build a network resolve first.
    pub fn value(&self) -> T {
        self.0[0]
    }
}

impl<T: Serialize> Serialize for Axis<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => one.serialize(s),
            many => many.serialize(s),
        }
    }
}

impl<'de, T: serde::de::DeserializeOwned + Copy + PartialEq + Debug + Label> Deserialize<'de>
    for Axis<T>
{
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = serde_json::Value::deserialize(d)?;
        let serde_json::Value::Array(items) = value else {
            // One value: the element type's own message, unchanged.
            return T::deserialize(value)
                .map(Axis::one)
                .map_err(D::Error::custom);
        };
        if items.is_empty() {
            return Err(D::Error::custom(
                "an empty list: give one value, or a list of the values to sweep over",
            ));
        }
        let mut out: Vec<T> = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let v = T::deserialize(item)
                .map_err(|e| D::Error::custom(format!("list item {}: {e}", i + 1)))?;
            if out.contains(&v) {
                return Err(D::Error::custom(format!(
                    "lists {} twice; each value of a sweep runs once",
                    v.label()
                )));
            }
            out.push(v);
        }
        Ok(Axis(out))
    }
}

impl<T: schemars::JsonSchema> schemars::JsonSchema for Axis<T> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        format!("Axis_of_{}", T::schema_name()).into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let one = generator.subschema_for::<T>();
        schemars::json_schema!({
            "description": "One value, or a list of values to sweep over (every combination of the swept settings is run).",
            "anyOf": [
                one.clone(),
                { "type": "array", "items": one, "minItems": 1, "uniqueItems": true }
            ]
        })
    }
}

/// How a setting's value is written in summary.csv and in run names.
pub trait Label {
    /// As in the experiment file: `tanh`, `pytorch-default`, `normal0.05`
    /// (run names use it too, via gradscope_format::names).
    fn label(&self) -> String;
}

impl Label for Activation {
    fn label(&self) -> String {
        match self {
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
        }
        .to_string()
    }
}

impl Label for Init {
    fn label(&self) -> String {
        match self {
            Init::PytorchDefault => "pytorch-default".to_string(),
            Init::Glorot => "glorot".to_string(),
            Init::Kaiming => "kaiming".to_string(),
            Init::Normal { std } => format!("normal{std}"),
            Init::Orthogonal { gain } if *gain == 1.0 => "orthogonal".to_string(),
            Init::Orthogonal { gain } => format!("orthogonal{gain}"),
            Init::Variance { weight, bias } => format!("variance-w{weight}-b{bias}"),
            Init::Fixup => "fixup".to_string(),
        }
    }
}

impl Init {
    /// The init a [`Label`] names (`glorot`, `normal0.05`, `orthogonal2`,
    /// `variance-w2-b0.05`): labels read back, so a run name or a
    /// `summary.csv` column says exactly which init it was.
    pub fn from_label(label: &str) -> Option<Init> {
        let num = |s: &str| s.parse::<f64>().ok();
        Some(match label {
            "pytorch-default" => Init::PytorchDefault,
            "glorot" => Init::Glorot,
            "kaiming" => Init::Kaiming,
            "fixup" => Init::Fixup,
            "orthogonal" => Init::Orthogonal { gain: 1.0 },
            l => {
                if let Some(std) = l.strip_prefix("normal") {
                    Init::Normal { std: num(std)? }
                } else if let Some(gain) = l.strip_prefix("orthogonal") {
                    Init::Orthogonal { gain: num(gain)? }
                } else {
                    let (w, b) = l.strip_prefix("variance-w")?.split_once("-b")?;
                    Init::Variance {
                        weight: num(w)?,
                        bias: num(b)?,
                    }
                }
            }
        })
    }
}

impl Label for Norm {
    fn label(&self) -> String {
        match self {
            Norm::None => "none",
            Norm::Batchnorm => "batchnorm",
        }
        .to_string()
    }
}

/// The network family and its options, tagged by `family`.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(tag = "family", rename_all = "lowercase")]
pub enum ModelSpec {
    Mlp(MlpSpec),
    Cnn(CnnSpec),
    /// ResNet-50/101/152 (depth 50, 101 or 152).
    Bottleneck(BottleneckSpec),
    /// The small Inception net (depth = number of modules).
    Inception(InceptionSpec),
    /// Recurrent nets unrolled over time (depth = sequence length; see
    /// [`RnnSpec`]).
    Rnn(RnnSpec),
    /// Self-attention blocks on token sequences or image patches (depth =
    /// number of blocks; see [`TransformerSpec`]).
    Transformer(TransformerSpec),
}

/// Options of the transformer family (see gradscope-models::transformer).
///
/// - `variants`: `plain` (x ← LN(F(x))), `residual` (x ← x + F(x)),
///   `rezero` (x ← x + α·F(x), α from 0), `post-ln` (x ← LN(x + F(x)),
///   Vaswani et al. 2017) and `pre-ln` (x ← x + F(LN(x)) and a final LN,
///   Xiong et al. 2020); not `highway`.
/// - `depths` count blocks. The data are images (a small ViT on p×p
///   patches with a class token) or token sequences with their own
///   `dataset.length`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransformerSpec {
    /// d, the width of every token; `heads` divides it. A list sweeps it
    /// (`heads`, `mlp_ratio` and `patch` take one value).
    #[schemars(with = "gradscope_data::spec::NumberOrList<i64>")]
    pub width: i64,
    /// Attention heads (default 4), each of width / heads dimensions.
    #[serde(default = "default_heads")]
    pub heads: i64,
    /// The MLP's hidden width as a multiple of `width` (default 4).
    #[serde(default = "default_mlp_ratio")]
    pub mlp_ratio: i64,
    /// The side of the square patches an image is cut into (default 4);
    /// it divides the image's height and width. Images only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<i64>,
    /// Causal self-attention: each position attends to itself and earlier
    /// ones only (default false).
    #[serde(default, skip_serializing_if = "is_false")]
    pub causal: bool,
    /// The weight layers' init (default `pytorch-default`); the token
    /// embedding, the class token and the positions start N(0, 0.02²)
    /// whatever it is.
    #[serde(default = "default_init")]
    pub init: Axis<Init>,
}

fn default_heads() -> i64 {
    4
}
fn default_mlp_ratio() -> i64 {
    4
}
fn is_false(b: &bool) -> bool {
    !*b
}

/// Options of the recurrent family (see gradscope-models::rnn).
///
/// - `variants` must be `["plain"]`: the cell is the plain-against-shortcut
///   axis (the tanh cell is the plain net, the LSTM's and GRU's additive
///   paths through time its shortcut twins), so sweep `cell` instead.
/// - `depths` are sequence lengths: each run's data are made at its depth
///   (a sequence dataset without a `length` of its own), and the run folder
///   `plain-tanh-d50-s0` is the tanh RNN on sequences of 50 steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RnnSpec {
    /// Hidden size.
    #[schemars(with = "gradscope_data::spec::NumberOrList<i64>")]
    pub width: i64,
    /// `tanh` (Elman, the plain twin), `lstm` or `gru`, or a list of them
    /// to sweep over.
    pub cell: Axis<Cell>,
    /// Stacked layers (default 1); the probe reads the last one's h_t.
    #[serde(default = "one_layer")]
    #[schemars(with = "gradscope_data::spec::NumberOrList<usize>")]
    pub layers: usize,
    /// The LSTM's initial forget-gate bias (default 1, Gers et al. 2000;
    /// Jozefowicz et al. 2015); other cells ignore it.
    #[serde(
        default = "default_forget_bias",
        skip_serializing_if = "is_default_forget_bias"
    )]
    #[schemars(with = "gradscope_data::spec::NumberOrList<f64>")]
    pub forget_bias: f64,
    /// The weights' init (default `pytorch-default`, PyTorch's nn.LSTM
    /// rule U(±1/√width) for every weight and bias); any other init fills
    /// each gate block of W_ih and W_hh as a layer of its own
    /// (`orthogonal`: an orthogonal W_hh per gate), biases 0.
    #[serde(default = "default_init")]
    pub init: Axis<Init>,
}

fn one_layer() -> usize {
    1
}
fn default_forget_bias() -> f64 {
    1.0
}
fn is_default_forget_bias(b: &f64) -> bool {
    *b == 1.0
}

impl Label for Cell {
    fn label(&self) -> String {
        self.as_str().to_string()
    }
}

/// Options of the bottleneck ResNets (see gradscope-models::bottleneck).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BottleneckSpec {
    /// Filters of the stem and stage 2 (64 in ResNet-50).
    #[serde(default = "default_bottleneck_width")]
    #[schemars(with = "gradscope_data::spec::NumberOrList<i64>")]
    pub width: i64,
    #[serde(default = "default_cnn_norm")]
    pub norm: Axis<Norm>,
    #[serde(default = "default_cnn_init")]
    pub init: Axis<Init>,
    #[serde(default = "yes")]
    pub channels_last: bool,
}

fn default_bottleneck_width() -> i64 {
    64
}

/// Options of the small Inception net (see gradscope-models::inception).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InceptionSpec {
    /// 1×1 filters per module (Inception 3a: 64).
    #[serde(default = "default_inception_width")]
    #[schemars(with = "gradscope_data::spec::NumberOrList<i64>")]
    pub width: i64,
    /// `reduced` (default, with 1×1 reductions) or `naive`.
    #[serde(default = "default_module")]
    pub module: ModuleKind,
    #[serde(default = "default_cnn_norm")]
    pub norm: Axis<Norm>,
    #[serde(default = "default_cnn_init")]
    pub init: Axis<Init>,
    #[serde(default = "yes")]
    pub channels_last: bool,
    /// The residual twin's s in x + s·M(x): 1 (default) is He et al.'s
    /// identity shortcut, 0.1 to 0.3 Inception-ResNet's scaled residual.
    #[serde(
        default = "default_residual_scale",
        skip_serializing_if = "is_default_residual_scale"
    )]
    #[schemars(with = "gradscope_data::spec::NumberOrList<f64>")]
    pub residual_scale: f64,
}

fn default_residual_scale() -> f64 {
    1.0
}
fn is_default_residual_scale(s: &f64) -> bool {
    *s == 1.0
}

fn default_inception_width() -> i64 {
    16
}
fn default_module() -> ModuleKind {
    ModuleKind::Reduced
}

/// Options of the He et al. CIFAR CNN family (see gradscope-models::cnn).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CnnSpec {
    /// Filters of the first stage (16 in the paper).
    #[serde(default = "default_cnn_width")]
    #[schemars(with = "gradscope_data::spec::NumberOrList<i64>")]
    pub width: i64,
    /// `a` (zero-padded identity, the paper's CIFAR choice) or `b` (1×1 projection).
    #[serde(default = "default_shortcut")]
    pub shortcut: Shortcut,
    /// `batchnorm` (default) or `none`.
    #[serde(default = "default_cnn_norm")]
    pub norm: Axis<Norm>,
    /// `kaiming` (default, He et al.) or any MLP init.
    #[serde(default = "default_cnn_init")]
    pub init: Axis<Init>,
    /// Channels-last memory (faster convolutions on CPU; see README).
    #[serde(default = "yes")]
    pub channels_last: bool,
    /// `zero`: each block's last BN γ starts at 0 (zero-γ, Goyal et al.
    /// 2017; the block's second conv without BN), for the `residual` and
    /// `rezero` variants; default: as `init`.
    #[serde(default, skip_serializing_if = "BranchInit::is_default")]
    pub branch_init: BranchInit,
    /// The `highway` variant's initial gate bias b_T (default −1).
    #[serde(
        default = "default_gate_bias",
        skip_serializing_if = "is_default_gate_bias"
    )]
    #[schemars(with = "gradscope_data::spec::NumberOrList<f64>")]
    pub gate_bias: f64,
}

fn default_cnn_width() -> i64 {
    16
}
fn default_shortcut() -> Shortcut {
    Shortcut::A
}
fn default_cnn_norm() -> Axis<Norm> {
    Axis::one(Norm::Batchnorm)
}
fn default_cnn_init() -> Axis<Init> {
    Axis::one(Init::Kaiming)
}

/// Options of the MLP family (see gradscope-models).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MlpSpec {
    #[schemars(with = "gradscope_data::spec::NumberOrList<i64>")]
    pub width: i64,
    /// `sigmoid`, `tanh` or `relu`, or a list of them to sweep over.
    pub activation: Axis<Activation>,
    /// `pytorch-default` (default), `glorot`, `kaiming`, `orthogonal`,
    /// `{"orthogonal": {"gain": 2}}`, `{"normal": {"std": 0.02}}` or
    /// `{"variance": {"weight": 2, "bias": 0.05}}` (σ_w², σ_b²), or a list
    /// of them to sweep over.
    #[serde(default = "default_init")]
    pub init: Axis<Init>,
    /// `none` (default) or `batchnorm`, or both to sweep over.
    #[serde(default = "default_norm")]
    pub norm: Axis<Norm>,
    /// `zero`: the last layer of each residual branch starts at 0 (the
    /// `residual` and `rezero` variants), so every block starts as the
    /// identity (SkipInit; zero-γ with BatchNorm); default: as `init`.
    #[serde(default, skip_serializing_if = "BranchInit::is_default")]
    pub branch_init: BranchInit,
    /// The `highway` variant's initial gate bias b_T (default −1;
    /// Srivastava et al. used −1 to −3): at init a gate with zero-mean
    /// inputs carries σ(−b_T) of its input.
    #[serde(
        default = "default_gate_bias",
        skip_serializing_if = "is_default_gate_bias"
    )]
    #[schemars(with = "gradscope_data::spec::NumberOrList<f64>")]
    pub gate_bias: f64,
}

fn default_gate_bias() -> f64 {
    -1.0
}
fn is_default_gate_bias(b: &f64) -> bool {
    *b == -1.0
}

fn default_init() -> Axis<Init> {
    Axis::one(Init::PytorchDefault)
}
fn default_norm() -> Axis<Norm> {
    Axis::one(Norm::None)
}

fn yes() -> bool {
    true
}

impl ModelSpec {
    /// The family's name as the experiment file spells it.
    pub fn family_name(&self) -> &'static str {
        match self {
            ModelSpec::Mlp(_) => "mlp",
            ModelSpec::Cnn(_) => "cnn",
            ModelSpec::Bottleneck(_) => "bottleneck",
            ModelSpec::Inception(_) => "inception",
            ModelSpec::Rnn(_) => "rnn",
            ModelSpec::Transformer(_) => "transformer",
        }
    }

    /// The network of one run: this (resolved) model section on inputs of
    /// `input_shape` with the `head` given, `depth` layers as the family
    /// counts them. Channels-last memory only `on_cpu`: it pays off where
    /// libtorch has NHWC kernels for it; on CUDA cuDNN picks its layout.
    pub fn build(
        &self,
        p: &nn::Path,
        input_shape: &[i64],
        head: Head,
        depth: usize,
        variant: Variant,
        on_cpu: bool,
    ) -> Result<Box<dyn Network>, ModelError> {
        let classes = head.outputs;
        if head.steps.is_some() && !matches!(self, ModelSpec::Rnn(_) | ModelSpec::Transformer(_)) {
            return Err(ModelError::Invalid {
                field: "model.family".into(),
                message: format!(
                    "{:?} has one output per example; a target of several steps (dataset kind \"copy\") needs \"rnn\" or \"transformer\"",
                    self.family_name()
                ),
            });
        }
        let only_mlp_cnn = matches!(variant, Variant::Rezero | Variant::Highway)
            && matches!(self, ModelSpec::Bottleneck(_) | ModelSpec::Inception(_));
        if only_mlp_cnn {
            return Err(ModelError::Invalid {
                field: "variants".into(),
                message: format!(
                    "{:?} is built for the mlp and cnn families only",
                    variant.as_str()
                ),
            });
        }
        Ok(match self {
            ModelSpec::Mlp(m) => Box::new(Mlp::new(
                p,
                MlpConfig {
                    input_dim: input_shape.iter().product(),
                    classes,
                    depth,
                    width: m.width,
                    activation: m.activation.value(),
                    init: m.init.value(),
                    norm: m.norm.value(),
                    variant,
                    branch_init: m.branch_init,
                    gate_bias: m.gate_bias,
                },
            )?),
            ModelSpec::Cnn(c) => Box::new(Cnn::new(
                p,
                CnnConfig {
                    input_shape: input_shape.to_vec(),
                    classes,
                    depth,
                    base_width: c.width,
                    shortcut: c.shortcut,
                    norm: c.norm.value(),
                    init: c.init.value(),
                    variant,
                    branch_init: c.branch_init,
                    gate_bias: c.gate_bias,
                    channels_last: c.channels_last && on_cpu,
                },
            )?),
            ModelSpec::Bottleneck(b) => Box::new(Bottleneck::new(
                p,
                BottleneckConfig {
                    input_shape: input_shape.to_vec(),
                    classes,
                    depth,
                    width: b.width,
                    norm: b.norm.value(),
                    init: b.init.value(),
                    variant,
                    channels_last: b.channels_last && on_cpu,
                },
            )?),
            ModelSpec::Inception(i) => Box::new(InceptionNet::new(
                p,
                InceptionConfig {
                    input_shape: input_shape.to_vec(),
                    classes,
                    depth,
                    width: i.width,
                    kind: i.module,
                    norm: i.norm.value(),
                    init: i.init.value(),
                    variant,
                    residual_scale: i.residual_scale,
                    channels_last: i.channels_last && on_cpu,
                },
            )?),
            ModelSpec::Rnn(r) => build_rnn(r, p, input_shape, head, depth, variant)?,
            ModelSpec::Transformer(t) => Box::new(Transformer::new(
                p,
                TransformerConfig {
                    input_shape: input_shape.to_vec(),
                    outputs: classes,
                    steps: head.steps,
                    depth,
                    width: t.width,
                    heads: t.heads,
                    mlp_ratio: t.mlp_ratio,
                    patch: t.patch,
                    causal: t.causal,
                    init: t.init.value(),
                    variant,
                },
            )?),
        })
    }
}

/// A network's output: `outputs` values per example, or per step of a
/// target of `steps` steps (the copy task's), which the rnn and
/// transformer families give, at their last `steps` time steps (positions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub outputs: i64,
    pub steps: Option<usize>,
}

/// The rnn family's network: plain only, on `[length, features]` data
/// whose length is the run's depth.
fn build_rnn(
    r: &RnnSpec,
    p: &nn::Path,
    input_shape: &[i64],
    head: Head,
    depth: usize,
    variant: Variant,
) -> Result<Box<dyn Network>, ModelError> {
    crate::rnn::check_variant(variant).map_err(|message| ModelError::Invalid {
        field: "variants".into(),
        message,
    })?;
    // Sequence data are [T, features]; the net runs T steps.
    let (length, input_size) = match input_shape {
        [t, f] => (*t as usize, *f),
        other => {
            return Err(ModelError::Invalid {
                field: "model.family".into(),
                message: format!(
                    "rnn needs sequence data ([length, features] per example), not {other:?}"
                ),
            })
        }
    };
    if length != depth {
        return Err(ModelError::Invalid {
                field: "depths".into(),
                message: format!(
                    "{depth} is not the data's sequence length {length} (for the rnn family a depth is the length)"
                ),
            });
    }
    let net = Rnn::new(
        p,
        RnnConfig {
            input_size,
            length,
            outputs: head.outputs,
            width: r.width,
            layers: r.layers,
            cell: r.cell.value(),
            init: r.init.value(),
            forget_bias: r.forget_bias,
        },
    )?;
    Ok(match head.steps {
        Some(k) => Box::new(net.with_sequence_head(k)?),
        None => Box::new(net),
    })
}

impl<'de> Deserialize<'de> for ModelSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let section = Section("model");
        let (family, rest) =
            section.take_tag::<D::Error>(serde_json::Value::deserialize(d)?, "family")?;
        match family.as_str() {
            "mlp" => Ok(ModelSpec::Mlp(section.tagged(rest)?)),
            "cnn" => Ok(ModelSpec::Cnn(section.tagged(rest)?)),
            "bottleneck" => Ok(ModelSpec::Bottleneck(section.tagged(rest)?)),
            "inception" => Ok(ModelSpec::Inception(section.tagged(rest)?)),
            "rnn" => Ok(ModelSpec::Rnn(section.tagged(rest)?)),
            "transformer" => Ok(ModelSpec::Transformer(section.tagged(rest)?)),
            other => Err(section.error(
                "family",
                format!("unknown model family {other:?}, expected one of \"mlp\", \"cnn\", \"bottleneck\", \"inception\", \"rnn\", \"transformer\""),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn one_value_and_a_list_both_parse_and_write_back_as_given() {
        let one: Axis<Init> = parse(r#""glorot""#).unwrap();
        assert_eq!(one.values(), [Init::Glorot]);
        assert!(!one.is_swept());
        assert_eq!(serde_json::to_string(&one).unwrap(), r#""glorot""#);

        let text = r#"["pytorch-default",{"normal":{"std":0.05}}]"#;
        let many: Axis<Init> = parse(text).unwrap();
        assert_eq!(
            many.values(),
            [Init::PytorchDefault, Init::Normal { std: 0.05 }]
        );
        assert!(many.is_swept());
        assert_eq!(serde_json::to_string(&many).unwrap(), text);
    }

    #[test]
    fn empty_lists_duplicates_and_bad_items_are_refused_by_position() {
        let e = parse::<Axis<Norm>>("[]").unwrap_err();
        assert!(e.contains("empty list"), "{e}");
        let e = parse::<Axis<Activation>>(r#"["tanh", "tanh"]"#).unwrap_err();
        assert!(e.contains("lists tanh twice"), "{e}");
        let e = parse::<Axis<Activation>>(r#"["tanh", "softplus"]"#).unwrap_err();
        assert!(e.contains("list item 2") && e.contains("softplus"), "{e}");
    }

    #[test]
    fn labels_are_the_files_own_words() {
        assert_eq!(Norm::None.label(), "none");
        assert_eq!(Init::Normal { std: 0.05 }.label(), "normal0.05");
        assert_eq!(Init::PytorchDefault.label(), "pytorch-default");
    }

    /// Issue 31: every init's label reads back as that init, and the two
    /// spellings of orthogonal parse to the same init.
    #[test]
    fn every_init_label_reads_back() {
        for init in [
            Init::PytorchDefault,
            Init::Glorot,
            Init::Kaiming,
            Init::Normal { std: 0.05 },
            Init::Orthogonal { gain: 1.0 },
            Init::Orthogonal { gain: 1.5 },
            Init::Variance {
                weight: 2.0,
                bias: 0.05,
            },
        ] {
            assert_eq!(
                Init::from_label(&init.label()),
                Some(init),
                "{}",
                init.label()
            );
            let written = serde_json::to_string(&init).unwrap();
            assert_eq!(parse::<Init>(&written).unwrap(), init, "{written}");
        }
        assert_eq!(
            parse::<Init>(r#""orthogonal""#).unwrap(),
            parse::<Init>(r#"{"orthogonal": {}}"#).unwrap()
        );
        assert_eq!(
            parse::<Init>(r#"{"variance": {"weight": 1.5, "bias": 0}}"#).unwrap(),
            Init::Variance {
                weight: 1.5,
                bias: 0.0
            }
        );
        assert!(parse::<Init>(r#""xavier""#)
            .unwrap_err()
            .contains("unknown variant"));
    }
}
