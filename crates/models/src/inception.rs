//! The Inception module of Szegedy et al. (2015), its naive form, and a
//! small trainable Inception net with a residual twin.
//!
//! ```text
//!            ┌ 1×1 ─────────────────┐
//! module:  x ┼ 1×1 reduce → 3×3 ────┼ concat (channels)
//!            ┼ 1×1 reduce → 5×5 ────┤
//!            └ 3×3/1 max-pool → 1×1 ┘
//! naive:   the same without the reductions: 1×1, 3×3 and 5×5 straight on
//!          x, and the pooled x itself (its channels pass through)
//! ```
//!
//! Every convolution is followed by BN (optional) and ReLU. The 5×5 branch
//! is a real 5×5 (torchvision's GoogLeNet substitutes a 3×3). [`INCEPTION_3A`]
//! is Table 1's module (3a): 192 channels in; 64, 96→128, 16→32 and 32; 256
//! out.
//!
//! [`InceptionNet`] stacks `depth` modules with 3a's proportions scaled to
//! `width` (`width` 1×1 filters, 256/64 · `width` channels out): a 3×3 stem,
//! a 3×3/2 max-pool on maps of 16 pixels or more, the first half of the
//! modules, a 3×3/2 max-pool, the second half, global average pooling and a
//! fully connected layer. Its residual twin differs only in the shortcut:
//! every module is the plain module unchanged, M(x), its output scaled by
//! `residual_scale` (s) and added to the module's input,
//! x + s·M(x), through a 1×1 projection + BN where the channels differ (the
//! first module only: the stem has half a module's channels). s = 1 is the
//! identity shortcut of He et al.; Szegedy et al.'s (2017) Inception-ResNet
//! scaled residuals by 0.1 to 0.3, in nets of over 1000 filters.
//!
//! Probe points, in forward order: every branch convolution
//! (`module01.b3x3_reduce`, `module01.b3x3`, …), the residual projection
//! (`module01.proj`), each module's output (`module01.out`, no weight) and
//! the classifier (`fc`). Responses are the branch convolutions' BN outputs.

use crate::layers::{pool_shape, ConvUnit, LayerCost, Layers, Shape};
use crate::{mark, Activation, Init, ModelError, Network, Norm, ProbePoint, Recording, Variant};
use serde::{Deserialize, Serialize};
use tch::nn;
use tch::Tensor;

/// Filters of each branch of a module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InceptionChannels {
    pub b1x1: i64,
    pub b3x3_reduce: i64,
    pub b3x3: i64,
    pub b5x5_reduce: i64,
    pub b5x5: i64,
    pub pool_proj: i64,
}

/// Inception (3a), Szegedy et al. (2015) Table 1.
pub const INCEPTION_3A: InceptionChannels = InceptionChannels {
    b1x1: 64,
    b3x3_reduce: 96,
    b3x3: 128,
    b5x5_reduce: 16,
    b5x5: 32,
    pool_proj: 32,
};

impl InceptionChannels {
    /// 3a's proportions with `width` 1×1 filters (3a is `width = 64`).
    pub fn scaled(width: i64) -> InceptionChannels {
        let part = |n: i64| (width * n / 64).max(1);
        InceptionChannels {
            b1x1: width,
            b3x3_reduce: part(96),
            b3x3: part(128),
            b5x5_reduce: part(16),
            b5x5: part(32),
            pool_proj: part(32),
        }
    }

    /// Channels out of a module of this kind on `c_in` channels in.
    pub fn out_channels(&self, kind: ModuleKind, c_in: i64) -> i64 {
        let pool = match kind {
            ModuleKind::Reduced => self.pool_proj,
            ModuleKind::Naive => c_in,
        };
        self.b1x1 + self.b3x3 + self.b5x5 + pool
    }
}

/// The module with 1×1 reductions, or the naive one without.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModuleKind {
    Reduced,
    Naive,
}

/// One Inception module.
#[derive(Debug)]
pub struct InceptionModule {
    b1x1: ConvUnit,
    b3x3_reduce: Option<ConvUnit>,
    b3x3: ConvUnit,
    b5x5_reduce: Option<ConvUnit>,
    b5x5: ConvUnit,
    pool_proj: Option<ConvUnit>,
    /// Residual twin: `Some(None)` adds the input as is, `Some(Some(p))`
    /// through a projection; plain: `None`.
    shortcut: Option<Option<ConvUnit>>,
    /// s in x + s·M(x).
    residual_scale: f64,
    out_point: usize,
    pub output: Shape,
}

impl InceptionModule {
    /// Builds module `name` on inputs of shape `input`.
    pub fn new(
        l: &mut Layers,
        name: &str,
        input: Shape,
        ch: InceptionChannels,
        kind: ModuleKind,
        variant: Variant,
        residual_scale: f64,
    ) -> Result<InceptionModule, ModelError> {
        let n = |branch: &str| format!("{name}.{branch}");
        let reduced = kind == ModuleKind::Reduced;
        let b1x1 = l.conv(&n("b1x1"), input, ch.b1x1, 1, 1)?;
        let b3x3_reduce = reduced
            .then(|| l.conv(&n("b3x3_reduce"), input, ch.b3x3_reduce, 1, 1))
            .transpose()?;
        let into3 = b3x3_reduce.as_ref().map_or(input, |r| r.output);
        let b3x3 = l.conv(&n("b3x3"), into3, ch.b3x3, 3, 1)?;
        let b5x5_reduce = reduced
            .then(|| l.conv(&n("b5x5_reduce"), input, ch.b5x5_reduce, 1, 1))
            .transpose()?;
        let into5 = b5x5_reduce.as_ref().map_or(input, |r| r.output);
        let b5x5 = l.conv(&n("b5x5"), into5, ch.b5x5, 5, 1)?;
        let pooled = pool_shape(&n("pool"), input, 3, 1, 1)?;
        let pool_proj = reduced
            .then(|| l.conv(&n("pool_proj"), pooled, ch.pool_proj, 1, 1))
            .transpose()?;
        let output = [ch.out_channels(kind, input[0]), input[1], input[2]];
        let shortcut = match variant {
            Variant::Plain => None,
            Variant::PostLn | Variant::PreLn => unreachable!("refused by InceptionNet::new"),
            // Refused before building (ModelSpec::build); a shortcut here.
            Variant::Residual | Variant::Rezero | Variant::Highway if input[0] == output[0] => {
                Some(None)
            }
            Variant::Residual | Variant::Rezero | Variant::Highway => {
                Some(Some(l.conv(&n("proj"), input, output[0], 1, 1)?))
            }
        };
        let out_point = l.point(&n("out"), output);
        Ok(InceptionModule {
            b1x1,
            b3x3_reduce,
            b3x3,
            b5x5_reduce,
            b5x5,
            pool_proj,
            shortcut,
            residual_scale,
            out_point,
            output,
        })
    }

    pub fn forward(&self, x: &Tensor, train: bool, rec: Option<&Recording>) -> Tensor {
        // Both twins run the same module, with every branch ReLU-ended (the
        // GoogLeNet module as is); the residual twin adds the shortcut after
        // it and nothing else, so a difference between the twins is the
        // shortcut's. (An Inception-ResNet module, with linear branch ends
        // and a ReLU after the sum, would differ in two more places.)
        let conv = |u: &ConvUnit, x: &Tensor| u.forward_recorded(x, train, rec).relu();
        let y1 = conv(&self.b1x1, x);
        let r3 = self.b3x3_reduce.as_ref().map(|r| conv(r, x));
        let y3 = conv(&self.b3x3, r3.as_ref().unwrap_or(x));
        let r5 = self.b5x5_reduce.as_ref().map(|r| conv(r, x));
        let y5 = conv(&self.b5x5, r5.as_ref().unwrap_or(x));
        let pooled = x.max_pool2d([3, 3], [1, 1], [1, 1], [1, 1], false);
        let yp = match &self.pool_proj {
            Some(p) => conv(p, &pooled),
            None => pooled,
        };
        let y = Tensor::cat(&[y1, y3, y5, yp], 1);
        let y = match &self.shortcut {
            None => y,
            Some(None) => x + y * self.residual_scale,
            Some(Some(p)) => p.forward(x, train, rec) + y * self.residual_scale,
        };
        mark(y, rec, self.out_point)
    }
}

/// Configuration of the small Inception net.
#[derive(Debug, Clone, PartialEq)]
pub struct InceptionConfig {
    pub input_shape: Vec<i64>,
    pub classes: i64,
    /// Number of modules.
    pub depth: usize,
    /// 1×1 filters per module (3a: 64); the stem has `2 · width`.
    pub width: i64,
    pub kind: ModuleKind,
    pub norm: Norm,
    pub init: Init,
    pub variant: Variant,
    /// s in the residual twin's x + s·M(x) (1: He et al.'s identity
    /// shortcut); the plain twin ignores it.
    pub residual_scale: f64,
    pub channels_last: bool,
}

/// A small Inception net, plain or residual (see the module docs).
pub struct InceptionNet {
    config: InceptionConfig,
    stem: ConvUnit,
    stem_pool: bool,
    modules: Vec<InceptionModule>,
    fc: nn::Linear,
    fc_point: usize,
    points: Vec<ProbePoint>,
    costs: Vec<LayerCost>,
}

impl std::fmt::Debug for InceptionNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InceptionNet")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl InceptionNet {
    pub fn new(p: &nn::Path, config: InceptionConfig) -> Result<InceptionNet, ModelError> {
        config.variant.refuse_ln_layout()?;
        let invalid = |field: &str, message: String| ModelError::Invalid {
            field: field.to_string(),
            message,
        };
        let input = <[i64; 3]>::try_from(config.input_shape.as_slice()).map_err(|_| {
            invalid(
                "dataset",
                format!(
                    "the Inception net needs [channels, height, width] inputs, got {:?}",
                    config.input_shape
                ),
            )
        })?;
        if !(1..=64).contains(&config.depth) {
            return Err(invalid(
                "depths",
                format!("{} modules: must be between 1 and 64", config.depth),
            ));
        }
        if !(4..=1024).contains(&config.width) {
            return Err(invalid(
                "model.width",
                format!(
                    "{} must be between 4 and 1024 (the 5×5 reduction has width/4 filters)",
                    config.width
                ),
            ));
        }
        if !(config.residual_scale.is_finite() && config.residual_scale > 0.0) {
            return Err(invalid(
                "model.residual_scale",
                format!("{} must be a positive number", config.residual_scale),
            ));
        }
        let mut l = Layers::new(p.clone(), config.init, config.norm, config.channels_last);
        let stem = l.conv("stem", input, 2 * config.width, 3, 1)?;
        let stem_pool = input[1] >= 16 && input[2] >= 16;
        let mut shape = if stem_pool {
            pool_shape("stem_pool", stem.output, 3, 2, 1)?
        } else {
            stem.output
        };
        let ch = InceptionChannels::scaled(config.width);
        let half = config.depth.div_ceil(2);
        let mut modules = Vec::with_capacity(config.depth);
        for i in 0..config.depth {
            if i == half {
                shape = pool_shape("mid_pool", shape, 3, 2, 1)?;
            }
            let name = crate::point_name(i + 1, config.depth + 1, "").replace("layer", "module");
            let m = InceptionModule::new(
                &mut l,
                &name,
                shape,
                ch,
                config.kind,
                config.variant,
                config.residual_scale,
            )?;
            shape = m.output;
            modules.push(m);
        }
        let (fc, fc_point) = l.linear("fc", shape[0], config.classes);
        Ok(InceptionNet {
            config,
            stem,
            stem_pool,
            modules,
            fc,
            fc_point,
            points: l.points,
            costs: l.costs,
        })
    }
}

impl Network for InceptionNet {
    fn forward(&self, x: &Tensor, train: bool, rec: Option<&Recording>) -> Tensor {
        let x = crate::layers::input_layout(x, self.config.channels_last);
        let mut h = self.stem.forward_recorded(&x, train, rec).relu();
        if self.stem_pool {
            h = h.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        }
        let half = self.modules.len().div_ceil(2);
        for (i, m) in self.modules.iter().enumerate() {
            if i == half {
                h = h.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
            }
            h = m.forward(&h, train, rec);
        }
        crate::layers::pooled_logits(&h, &self.fc, rec, self.fc_point)
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
