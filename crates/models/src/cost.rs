//! The named layers, modules and models that `gradscope cost` counts.
//!
//! Each target is built as a real network on a var store, so its
//! [`LayerCost`] rows come from the layers that exist and its forward pass
//! can be timed. The single-layer and module targets reproduce the standard
//! 1×1 argument on a 28×28×192 input (Szegedy et al. 2015, §4 and Table 1):
//!
//! | target | multiplications |
//! |---|---|
//! | `conv5x5` | 28·28·32 · 5·5·192 = 120,422,400 |
//! | `reduce5x5` | 28·28·16 · 192 + 28·28·32 · 5·5·16 = 2,408,448 + 10,035,200 |
//! | `inception-3a` | 128,049,152 (the paper's "128M") |
//! | `inception-3a-naive` | 303,464,448 |
//!
//! The one-layer, two-layer and module targets have no BN (the argument is
//! about the convolutions' weights), so their parameters are the weights
//! alone; the ResNet blocks and nets keep their BN.

use crate::bottleneck::{BlockKind, Bottleneck, BottleneckBlock, BottleneckConfig};
use crate::cnn::{Cnn, CnnConfig, Shortcut};
use crate::inception::{InceptionConfig, InceptionModule, InceptionNet, ModuleKind, INCEPTION_3A};
use crate::layers::{ConvUnit, LayerCost, Layers, Shape};
use crate::{Activation, Init, ModelError, Network, Norm, ProbePoint, Recording, Variant};
use tch::nn;
use tch::Tensor;

/// A target `gradscope cost` knows.
#[derive(Debug, Clone, Copy)]
pub struct TargetInfo {
    pub name: &'static str,
    pub about: &'static str,
    /// `[channels, height, width]` used unless the caller gives one.
    pub default_input: Shape,
    /// Classes of the targets that end in a classifier.
    pub default_classes: Option<i64>,
}

/// Every target, in the order `gradscope cost` shows them by default.
pub const TARGETS: &[TargetInfo] = &[
    TargetInfo {
        name: "conv5x5",
        about: "one 5×5 convolution with 32 filters",
        default_input: [192, 28, 28],
        default_classes: None,
    },
    TargetInfo {
        name: "reduce5x5",
        about: "a 1×1 reduction to 16 channels, then the 5×5 with 32 filters",
        default_input: [192, 28, 28],
        default_classes: None,
    },
    TargetInfo {
        name: "inception-3a-naive",
        about: "Inception (3a) without the 1×1 reductions",
        default_input: [192, 28, 28],
        default_classes: None,
    },
    TargetInfo {
        name: "inception-3a",
        about: "Inception (3a), Szegedy et al. (2015) Table 1",
        default_input: [192, 28, 28],
        default_classes: None,
    },
    TargetInfo {
        name: "identity-block",
        about: "ResNet-50 identity block, filters (64, 64, 256)",
        default_input: [256, 56, 56],
        default_classes: None,
    },
    TargetInfo {
        name: "conv-block",
        about: "ResNet-50 convolution block, filters (128, 128, 512), stride 2",
        default_input: [256, 56, 56],
        default_classes: None,
    },
    TargetInfo {
        name: "resnet50",
        about: "ResNet-50 (SIGNS setting: 64×64×3, 6 classes)",
        default_input: [3, 64, 64],
        default_classes: Some(6),
    },
    TargetInfo {
        name: "resnet20",
        about: "He et al. (2016) CIFAR ResNet-20, option A shortcuts",
        default_input: [3, 32, 32],
        default_classes: Some(10),
    },
    TargetInfo {
        name: "resnet56",
        about: "He et al. (2016) CIFAR ResNet-56, option A shortcuts",
        default_input: [3, 32, 32],
        default_classes: Some(10),
    },
    TargetInfo {
        name: "resnet110",
        about: "He et al. (2016) CIFAR ResNet-110, option A shortcuts",
        default_input: [3, 32, 32],
        default_classes: Some(10),
    },
    TargetInfo {
        name: "inception-net",
        about: "gradscope's small Inception net, 4 modules of width 16",
        default_input: [1, 28, 28],
        default_classes: Some(10),
    },
];

/// The names, for error messages.
pub fn target_names() -> String {
    TARGETS
        .iter()
        .map(|t| t.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Looks a target up by name.
pub fn target(name: &str) -> Result<&'static TargetInfo, ModelError> {
    TARGETS
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| ModelError::Invalid {
            field: "target".into(),
            message: format!("unknown target {name:?}; valid targets: {}", target_names()),
        })
}

/// Builds target `name` under `p` on inputs of shape `input` (default: the
/// target's own), with `classes` outputs where it ends in a classifier.
pub fn build(
    p: &nn::Path,
    name: &str,
    input: Option<Shape>,
    classes: Option<i64>,
) -> Result<Box<dyn Network>, ModelError> {
    let info = target(name)?;
    let input = input.unwrap_or(info.default_input);
    let classes = classes.or(info.default_classes).unwrap_or(1);
    let bare = || Layers::new(p.clone(), Init::Kaiming, Norm::None, false);
    let net: Box<dyn Network> = match name {
        "conv5x5" => {
            let mut l = bare();
            let c = l.conv("conv5x5", input, 32, 5, 1)?;
            Box::new(Chain::new(l, vec![c]))
        }
        "reduce5x5" => {
            let mut l = bare();
            let r = l.conv("reduce1x1", input, 16, 1, 1)?;
            let c = l.conv("conv5x5", r.output, 32, 5, 1)?;
            Box::new(Chain::new(l, vec![r, c]))
        }
        "inception-3a" | "inception-3a-naive" => {
            let kind = if name.ends_with("naive") {
                ModuleKind::Naive
            } else {
                ModuleKind::Reduced
            };
            let mut l = bare();
            let m =
                InceptionModule::new(&mut l, "3a", input, INCEPTION_3A, kind, Variant::Plain, 1.0)?;
            Box::new(Standalone::new(l, move |x, train, rec| {
                m.forward(x, train, rec)
            }))
        }
        "identity-block" | "conv-block" => {
            let (kind, filters, stride) = if name == "identity-block" {
                (BlockKind::Identity, (64, 64, 256), 1)
            } else {
                (BlockKind::Convolution, (128, 128, 512), 2)
            };
            let mut l = Layers::new(p.clone(), Init::Kaiming, Norm::Batchnorm, false);
            let b = BottleneckBlock::new(
                &mut l,
                "block",
                kind,
                input,
                filters,
                stride,
                Variant::Residual,
            )?;
            Box::new(Standalone::new(l, move |x, train, rec| {
                b.forward(x, train, rec)
            }))
        }
        "resnet50" => Box::new(Bottleneck::new(
            p,
            BottleneckConfig {
                input_shape: input.to_vec(),
                classes,
                depth: 50,
                width: 64,
                norm: Norm::Batchnorm,
                init: Init::Kaiming,
                variant: Variant::Residual,
                channels_last: false,
            },
        )?),
        "resnet20" | "resnet56" | "resnet110" => Box::new(Cnn::new(
            p,
            CnnConfig {
                input_shape: input.to_vec(),
                classes,
                depth: name["resnet".len()..].parse().unwrap_or(20),
                base_width: 16,
                shortcut: Shortcut::A,
                norm: Norm::Batchnorm,
                init: Init::Kaiming,
                variant: Variant::Residual,
                branch_init: Default::default(),
                gate_bias: -1.0,
                channels_last: false,
            },
        )?),
        "inception-net" => Box::new(InceptionNet::new(
            p,
            InceptionConfig {
                input_shape: input.to_vec(),
                classes,
                depth: 4,
                width: 16,
                kind: ModuleKind::Reduced,
                norm: Norm::Batchnorm,
                init: Init::Kaiming,
                variant: Variant::Residual,
                residual_scale: 1.0,
                channels_last: false,
            },
        )?),
        // Every name in TARGETS has an arm above; this guards a new entry
        // added there without one.
        _ => {
            return Err(ModelError::Invalid {
                field: "target".into(),
                message: format!("target {name:?} is listed but has no builder"),
            })
        }
    };
    Ok(net)
}

/// The rows of `costs` for `layer`: the layer of that name, or every layer
/// of the module or block it names (`stage3.block1`, `3a`). An unknown name
/// is an error listing every valid one.
pub fn select<'a>(costs: &'a [LayerCost], layer: &str) -> Result<Vec<&'a LayerCost>, ModelError> {
    let prefix = format!("{layer}.");
    let rows: Vec<&LayerCost> = costs
        .iter()
        .filter(|c| c.name == layer || c.name.starts_with(&prefix))
        .collect();
    if rows.is_empty() {
        let mut names: Vec<String> = Vec::new();
        for c in costs {
            // Every module prefix of the name, then the name itself.
            let parts: Vec<&str> = c.name.split('.').collect();
            for end in 1..=parts.len() {
                let n = parts[..end].join(".");
                if !names.contains(&n) {
                    names.push(n);
                }
            }
        }
        return Err(ModelError::Invalid {
            field: "layer".into(),
            message: format!(
                "unknown layer or module {layer:?}; valid names: {}",
                names.join(", ")
            ),
        });
    }
    Ok(rows)
}

/// Convolutions one after another, each followed by ReLU.
struct Chain {
    convs: Vec<ConvUnit>,
    points: Vec<ProbePoint>,
    costs: Vec<LayerCost>,
}

impl Chain {
    fn new(l: Layers, convs: Vec<ConvUnit>) -> Chain {
        Chain {
            convs,
            points: l.points,
            costs: l.costs,
        }
    }
}

impl Network for Chain {
    fn forward(&self, x: &Tensor, train: bool, rec: Option<&Recording>) -> Tensor {
        let mut h = x.shallow_clone();
        for c in &self.convs {
            h = c.forward_recorded(&h, train, rec).relu();
        }
        h
    }
    fn probe_points(&self) -> &[ProbePoint] {
        &self.points
    }
    fn activation(&self) -> Activation {
        Activation::Relu
    }
    fn layer_costs(&self) -> &[LayerCost] {
        &self.costs
    }
}

type ForwardFn = dyn Fn(&Tensor, bool, Option<&Recording>) -> Tensor;

/// A module or block as a network of its own: its output is the "logits".
struct Standalone {
    forward: Box<ForwardFn>,
    points: Vec<ProbePoint>,
    costs: Vec<LayerCost>,
}

impl Standalone {
    fn new(
        l: Layers,
        forward: impl Fn(&Tensor, bool, Option<&Recording>) -> Tensor + 'static,
    ) -> Standalone {
        Standalone {
            forward: Box::new(forward),
            points: l.points,
            costs: l.costs,
        }
    }
}

impl Network for Standalone {
    fn forward(&self, x: &Tensor, train: bool, rec: Option<&Recording>) -> Tensor {
        (self.forward)(x, train, rec)
    }
    fn probe_points(&self) -> &[ProbePoint] {
        &self.points
    }
    fn activation(&self) -> Activation {
        Activation::Relu
    }
    fn layer_costs(&self) -> &[LayerCost] {
        &self.costs
    }
}
