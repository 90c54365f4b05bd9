//! The mean-field prediction (gradscope-theory) for a run of an experiment:
//! which runs it applies to, and the numbers `summary.csv`, `check` and the
//! report put beside the measured decay.

use crate::plan::RunSpec;
use crate::spec::{Experiment, ModelSpec};
use gradscope_models::{Activation, Init, Norm, Variant};
use gradscope_theory::{predict, Act, InitKind, Mlp, Prediction};

/// The prediction for one run (its variant, depth and swept settings), or
/// `None` where the theory does not apply: residual nets, the conv families,
/// BatchNorm with sigmoid or tanh, fewer than two hidden layers.
pub fn prediction(exp: &Experiment, run: &RunSpec, input_dim: i64) -> Option<Prediction> {
    let exp = exp.resolved(&run.setting);
    let ModelSpec::Mlp(m) = &exp.model else {
        return None;
    };
    if run.variant != Variant::Plain {
        return None;
    }
    predict(&Mlp {
        act: match m.activation.value() {
            Activation::Sigmoid => Act::Sigmoid,
            Activation::Tanh => Act::Tanh,
            Activation::Relu => Act::Relu,
        },
        init: match m.init.value() {
            Init::PytorchDefault => InitKind::PytorchDefault,
            Init::Glorot => InitKind::Glorot,
            // A plain net's Fixup is the He init alone.
            Init::Kaiming | Init::Fixup => InitKind::Kaiming,
            Init::Normal { std } => InitKind::Normal { std },
            Init::Variance { weight, bias } => InitKind::Variance { weight, bias },
            Init::Orthogonal { gain } => InitKind::Orthogonal { gain },
        },
        batchnorm: m.norm.value() == Norm::Batchnorm,
        input_dim: input_dim as f64,
        width: m.width as f64,
        depth: run.depth,
    })
}
