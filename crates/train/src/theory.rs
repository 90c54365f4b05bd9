//! The mean-field prediction (gradscope-theory) for a run of an experiment:
//! which runs it applies to, and the numbers `summary.csv`, `check` and the
//! report put beside the measured decay: a plain MLP's decay per layer, or
//! a tanh RNN's decay per time step (whose q the input's power enters, so
//! it needs the run's own data, see [`input_power`]).

use crate::plan::RunSpec;
use crate::spec::{Experiment, ModelSpec};
use gradscope_models::rnn::Cell;
use gradscope_models::spec::RnnSpec;
use gradscope_models::{Activation, Init, Norm, Variant};
use gradscope_theory::criticality::criticality;
use gradscope_theory::recurrent::{predict_tanh, TanhRnn};
use gradscope_theory::{predict, Act, InitKind, Mlp, Prediction};
use tch::{Kind, Tensor};

/// The prediction for one run (its variant, depth and swept settings), or
/// `None` where the theory does not apply: residual nets, the conv families,
/// BatchNorm with sigmoid or tanh, fewer than two hidden layers, gated
/// recurrent cells, the copy task. `sequence` is the run's
/// [`input_power`], which only [`needs_sequence_input`]'s runs read.
pub fn prediction(
    exp: &Experiment,
    run: &RunSpec,
    input_dim: i64,
    sequence: Option<SequenceInput>,
) -> Option<Prediction> {
    let exp = exp.resolved(&run.setting);
    let m = match &exp.model {
        ModelSpec::Mlp(m) => m,
        ModelSpec::Rnn(r) if needs_sequence_input(&exp, run) => {
            return rnn_prediction(r, sequence?, run.depth)
        }
        _ => return None,
    };
    if run.variant != Variant::Plain {
        return None;
    }
    predict(&Mlp {
        act: act(m.activation.value()),
        init: init_kind(m.init.value()),
        batchnorm: m.norm.value() == Norm::Batchnorm,
        input_dim: input_dim as f64,
        width: m.width as f64,
        depth: run.depth,
    })
}

fn act(a: Activation) -> Act {
    match a {
        Activation::Sigmoid => Act::Sigmoid,
        Activation::Tanh => Act::Tanh,
        Activation::Relu => Act::Relu,
    }
}

/// The mean-field setting of a run's hidden layers, (φ, σ_w², σ_b²), where
/// the forward maps apply: a plain MLP without normalization (BatchNorm
/// resets q every layer, and a residual branch adds its input back, so
/// neither iterates the plain maps).
pub fn mean_field(exp: &Experiment, run: &RunSpec) -> Option<(Act, f64, f64)> {
    let exp = exp.resolved(&run.setting);
    let ModelSpec::Mlp(m) = &exp.model else {
        return None;
    };
    if run.variant != Variant::Plain || m.norm.value() != Norm::None {
        return None;
    }
    let width = m.width as f64;
    let (sw, sb) = init_kind(m.init.value()).variances(width, width);
    Some((act(m.activation.value()), sw, sb))
}

/// ξ_c = −1/ln χ_c of the run's hidden layers ([`mean_field`];
/// gradscope-theory's `criticality`), in layers: ∞ at the edge of chaos;
/// `None` where the theory does not apply or lengths have no finite
/// fixed point.
pub fn xi_c(exp: &Experiment, run: &RunSpec) -> Option<f64> {
    let (act, sw, sb) = mean_field(exp, run)?;
    criticality(act, sw, sb).map(|c| c.xi_c)
}

fn init_kind(init: Init) -> InitKind {
    match init {
        Init::PytorchDefault => InitKind::PytorchDefault,
        Init::Glorot => InitKind::Glorot,
        // A plain net's Fixup is the He init alone.
        Init::Kaiming | Init::Fixup => InitKind::Kaiming,
        Init::Normal { std } => InitKind::Normal { std },
        Init::Variance { weight, bias } => InitKind::Variance { weight, bias },
        Init::Orthogonal { gain } => InitKind::Orthogonal { gain },
    }
}

/// Whether the run's prediction reads its [`SequenceInput`]: a tanh RNN
/// whose loss reads the last step only (the copy task's reads k steps,
/// whose direct terms the profile does not model; gated cells have no
/// prediction). `check` loads the data, and the training loop reduces
/// them, for these runs alone.
pub fn needs_sequence_input(exp: &Experiment, run: &RunSpec) -> bool {
    let exp = exp.resolved(&run.setting);
    matches!(&exp.model, ModelSpec::Rnn(r) if r.cell.value() == Cell::Tanh)
        && exp.dataset.output_steps().is_none()
}

/// The tanh RNN's decay per time step: the
/// variances as gradscope-models' rnn sets them (PyTorch's rule, every
/// weight and bias U(±1/√width), or each block as a layer of its own with
/// biases 0).
fn rnn_prediction(r: &RnnSpec, input: SequenceInput, length: usize) -> Option<Prediction> {
    let width = r.width as f64;
    let (sigma_w, input_weight_var, sigma_b) = match r.init.value() {
        Init::PytorchDefault => (1.0 / 3.0, 1.0 / (3.0 * width), 2.0 / (3.0 * width)),
        other => {
            let kind = init_kind(other);
            let fan_in = input.features as f64;
            let (su, _) = kind.variances(fan_in, width);
            (kind.variances(width, width).0, su / fan_in, 0.0)
        }
    };
    predict_tanh(&TanhRnn {
        sigma_w,
        input_weight_var,
        sigma_b,
        input_power: input.power,
        width,
        layers: r.layers,
        length,
    })
}

/// What a recurrent net's theory needs of its input sequences.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SequenceInput {
    /// Features per step (W_ih's fan-in).
    pub features: i64,
    /// Σ_f E[x_f²] averaged over examples and steps: what the data add to
    /// q each step.
    pub power: f64,
}

/// The [`SequenceInput`] of `[examples, steps, features]` inputs; `None`
/// for inputs of another rank.
pub fn input_power(x: &Tensor) -> Option<SequenceInput> {
    (x.dim() == 3).then(|| SequenceInput {
        features: x.size()[2],
        power: x
            .to_kind(Kind::Double)
            .square()
            .sum_dim_intlist(-1, false, Kind::Double)
            .mean(Kind::Double)
            .double_value(&[]),
    })
}
