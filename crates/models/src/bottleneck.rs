//! The ImageNet ResNets of He et al. (2016, Table 1) built from bottleneck
//! blocks: ResNet-50 (and -101, -152), with a plain twin.
//!
//! ```text
//! stage 1   7×7/2 conv, w filters, BN, ReLU; 3×3/2 max-pool
//! stage 2   convolution block + 2 identity blocks    (w, w, 4w)      stride 1
//! stage 3   convolution block + 3 identity blocks    (2w, 2w, 8w)    stride 2
//! stage 4   convolution block + 5 identity blocks    (4w, 4w, 16w)   stride 2
//! stage 5   convolution block + 2 identity blocks    (8w, 8w, 32w)   stride 2
//! end       global average pool, fully connected
//! ```
//!
//! With `w = 64` that is ResNet-50's (64,64,256) … (512,512,2048). Both
//! blocks have the main path 1×1 → 3×3 → 1×1 with BN after each
//! convolution and ReLU between them:
//!
//! ```text
//! identity block:     y = relu(main(x) + x)                 (shapes match)
//! convolution block:  y = relu(main(x) + bn(conv1×1/s(x)))  (shapes change)
//! plain twin:         y = relu(main(x))                     (no shortcut at all)
//! ```
//!
//! The stride of a convolution block sits on its first 1×1 convolution, as
//! in He et al.'s original model and the Keras ResNet50 that the usual
//! explanation follows; torchvision's "v1.5" moves it to the 3×3, which
//! changes the multiplications but not the parameters. Convolutions have no
//! bias (BN's β plays its part), so with `w = 64` and 6 classes the net has
//! torchvision's `resnet50(num_classes=6)` count, 23,520,326 parameters.
//!
//! The max-pool pads by 1 (torchvision), so a 64×64 input gives maps of
//! 32, 16, 16, 8, 4 and 2 pixels through stages 1–5.
//!
//! Probe points, in forward order: every convolution (`stage1.conv`,
//! `stage3.block1.conv2`, `stage3.block1.proj`), every block's output
//! (`stage3.block1.out`, no weight) and the classifier (`fc`). Responses are
//! the main-path convolutions' BN outputs.

use crate::layers::{pool_shape, ConvUnit, LayerCost, Layers, Shape};
use crate::lesion::{join, BlockInfo, BlockPlan, Blocks, Flow};
use crate::{mark, Activation, Init, ModelError, Network, Norm, ProbePoint, Recording, Variant};
use tch::nn;
use tch::Tensor;

/// Configuration of a bottleneck ResNet.
#[derive(Debug, Clone, PartialEq)]
pub struct BottleneckConfig {
    /// `[channels, height, width]` of one input (SIGNS: `[3, 64, 64]`).
    pub input_shape: Vec<i64>,
    pub classes: i64,
    /// 50, 101 or 152 weight layers.
    pub depth: usize,
    /// Filters of the stem and of stage 2's first convolutions (64).
    pub width: i64,
    pub norm: Norm,
    pub init: Init,
    pub variant: Variant,
    pub channels_last: bool,
}

/// Blocks per stage (stages 2–5) of the depths He et al. Table 1 lists.
pub fn stage_blocks(depth: usize) -> Result<[usize; 4], String> {
    match depth {
        50 => Ok([3, 4, 6, 3]),
        101 => Ok([3, 4, 23, 3]),
        152 => Ok([3, 8, 36, 3]),
        _ => Err(format!(
            "{depth} is not a bottleneck ResNet depth (50, 101 or 152)"
        )),
    }
}

/// Which of the two blocks of the explanation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// Input and output shapes match; the shortcut is the identity.
    Identity,
    /// The shape changes; the shortcut is a strided 1×1 convolution + BN.
    Convolution,
}

/// One bottleneck block (identity or convolution).
#[derive(Debug)]
pub struct BottleneckBlock {
    pub kind: BlockKind,
    c1: ConvUnit,
    c2: ConvUnit,
    c3: ConvUnit,
    /// The convolution block's projection (residual twin only).
    proj: Option<ConvUnit>,
    variant: Variant,
    out_point: usize,
    pub output: Shape,
}

impl BottleneckBlock {
    /// Builds a block named `name` (`stage3.block1`) with filters
    /// `(f1, f2, f3)`. An identity block must get an input of shape
    /// `[f3, h, w]` and stride 1: anything else is an error naming the block.
    pub fn new(
        l: &mut Layers,
        name: &str,
        kind: BlockKind,
        input: Shape,
        filters: (i64, i64, i64),
        stride: i64,
        variant: Variant,
    ) -> Result<BottleneckBlock, ModelError> {
        let (f1, f2, f3) = filters;
        if kind == BlockKind::Identity && (input[0] != f3 || stride != 1) {
            return Err(ModelError::Invalid {
                field: "model".into(),
                message: format!(
                    "identity block {name}: its input has {} channels and stride {stride}, but it outputs {f3} channels at stride 1; an identity block needs matching shapes (use a convolution block)",
                    input[0]
                ),
            });
        }
        let c1 = l.conv(&format!("{name}.conv1"), input, f1, 1, stride)?;
        let c2 = l.conv(&format!("{name}.conv2"), c1.output, f2, 3, 1)?;
        let c3 = l.conv(&format!("{name}.conv3"), c2.output, f3, 1, 1)?;
        let proj = match (kind, variant) {
            (BlockKind::Convolution, Variant::Residual) => {
                Some(l.conv(&format!("{name}.proj"), input, f3, 1, stride)?)
            }
            _ => None,
        };
        let output = c3.output;
        let out_point = l.point(&format!("{name}.out"), output);
        Ok(BottleneckBlock {
            kind,
            c1,
            c2,
            c3,
            proj,
            variant,
            out_point,
            output,
        })
    }

    pub fn forward(&self, x: &Tensor, train: bool, rec: Option<&Recording>) -> Tensor {
        self.forward_flow(x, train, rec, Flow::Both)
    }

    /// [`BottleneckBlock::forward`] with the backward pass routed by `flow`
    /// (see [`crate::lesion`]).
    pub fn forward_flow(
        &self,
        x: &Tensor,
        train: bool,
        rec: Option<&Recording>,
        flow: Flow,
    ) -> Tensor {
        let u = self.c1.forward_recorded(x, train, rec).relu();
        let u = self.c2.forward_recorded(&u, train, rec).relu();
        let u = self.c3.forward_recorded(&u, train, rec);
        let y = match (self.variant, &self.proj) {
            (Variant::Plain, _) => u,
            // Rezero and highway are refused before building
            // (ModelSpec::build): the identity shortcut here.
            (_, Some(p)) => join(u, p.forward(x, train, rec), flow),
            (_, None) => join(u, x.shallow_clone(), flow),
        };
        mark(y.relu(), rec, self.out_point)
    }
}

/// A bottleneck ResNet, plain or residual (see the module docs).
pub struct Bottleneck {
    config: BottleneckConfig,
    stem: ConvUnit,
    blocks: Vec<BottleneckBlock>,
    fc: nn::Linear,
    fc_point: usize,
    points: Vec<ProbePoint>,
    costs: Vec<LayerCost>,
}

impl std::fmt::Debug for Bottleneck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bottleneck")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Bottleneck {
    pub fn new(p: &nn::Path, config: BottleneckConfig) -> Result<Bottleneck, ModelError> {
        config.variant.refuse_ln_layout()?;
        let invalid = |field: &str, message: String| ModelError::Invalid {
            field: field.to_string(),
            message,
        };
        let stages = stage_blocks(config.depth).map_err(|m| invalid("depths", m))?;
        let input = <[i64; 3]>::try_from(config.input_shape.as_slice()).map_err(|_| {
            invalid(
                "dataset",
                format!(
                    "a bottleneck ResNet needs [channels, height, width] inputs, got {:?}",
                    config.input_shape
                ),
            )
        })?;
        // Five halvings (stem, max-pool, stages 3–5) need 32×32 to leave a
        // 1×1 map; below that a stride-2 layer would see a 1×1 map.
        if input[1] < 32 || input[2] < 32 {
            let [c, h, w] = input;
            return Err(invalid(
                "dataset",
                format!("input {c}×{h}×{w} is too small for the five stride-2 downsamplings of a bottleneck ResNet (need at least 32×32; the first layer to fail would be {})", first_failing_layer(h.min(w))),
            ));
        }
        if !(1..=1024).contains(&config.width) {
            return Err(invalid(
                "model.width",
                format!("{} must be between 1 and 1024", config.width),
            ));
        }
        let mut l = Layers::new(p.clone(), config.init, config.norm, config.channels_last);
        let stem = l.conv("stage1.conv", input, config.width, 7, 2)?;
        let mut shape = pool_shape("stage1.pool", stem.output, 3, 2, 1)?;
        let mut blocks = Vec::new();
        for (s, &n) in stages.iter().enumerate() {
            let f = config.width << s;
            let stride = if s == 0 { 1 } else { 2 };
            for b in 0..n {
                let (kind, stride) = if b == 0 {
                    (BlockKind::Convolution, stride)
                } else {
                    (BlockKind::Identity, 1)
                };
                let name = format!("stage{}.block{}", s + 2, b + 1);
                let block = BottleneckBlock::new(
                    &mut l,
                    &name,
                    kind,
                    shape,
                    (f, f, 4 * f),
                    stride,
                    config.variant,
                )?;
                shape = block.output;
                blocks.push(block);
            }
        }
        let (fc, fc_point) = l.linear("fc", shape[0], config.classes);
        Ok(Bottleneck {
            config,
            stem,
            blocks,
            fc,
            fc_point,
            points: l.points,
            costs: l.costs,
        })
    }

    pub fn config(&self) -> &BottleneckConfig {
        &self.config
    }

    pub fn blocks(&self) -> &[BottleneckBlock] {
        &self.blocks
    }
}

/// The layer whose input would first be a 1×1 map, for an input of `size`
/// pixels (the side that runs out first).
fn first_failing_layer(size: i64) -> &'static str {
    const HALVINGS: [&str; 5] = [
        "stage1.conv",
        "stage1.pool",
        "stage3.block1.conv1",
        "stage4.block1.conv1",
        "stage5.block1.conv1",
    ];
    let mut s = size;
    for name in HALVINGS {
        if s < 2 {
            return name;
        }
        s = (s + 1) / 2;
    }
    // Unreachable for size < 32; kept total rather than panicking.
    "stage5.block1.conv1"
}

impl Network for Bottleneck {
    fn forward(&self, x: &Tensor, train: bool, rec: Option<&Recording>) -> Tensor {
        let x = crate::layers::input_layout(x, self.config.channels_last);
        let h = self.stem.forward_recorded(&x, train, rec).relu();
        let mut h = h.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        for b in &self.blocks {
            h = b.forward(&h, train, rec);
        }
        crate::layers::pooled_logits(&h, &self.fc, rec, self.fc_point)
    }

    fn probe_points(&self) -> &[ProbePoint] {
        &self.points
    }

    fn activation(&self) -> Activation {
        Activation::Relu
    }

    fn blocks(&self) -> Result<Blocks, String> {
        Ok(Blocks {
            blocks: self
                .blocks
                .iter()
                .map(|b| BlockInfo {
                    name: self.points[b.out_point].name.clone(),
                    same_shape: b.kind == BlockKind::Identity,
                })
                .collect(),
            residual: self.config.variant != Variant::Plain,
        })
    }

    fn forward_planned(&self, x: &Tensor, plan: &BlockPlan) -> Option<(Tensor, Tensor)> {
        let x = crate::layers::input_layout(x, self.config.channels_last);
        let h = self.stem.forward_recorded(&x, false, None).relu();
        let input = h.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        let h = plan.apply(&input, |j, h, flow| {
            self.blocks[j].forward_flow(h, false, None, flow)
        });
        let logits = crate::layers::pooled_logits(&h, &self.fc, None, self.fc_point);
        Some((logits, input))
    }

    fn layer_costs(&self) -> &[LayerCost] {
        &self.costs
    }
}
