//! The CIFAR networks of He et al. (2016, §4.2) and their plain twins.
//!
//! Depth is `6n + 2` weight layers: a 3×3 stem convolution with 16 filters,
//! three stages of `n` two-convolution blocks with 16, 32 and 64 filters
//! (the second and third stages open with a stride-2 convolution, so maps go
//! 32→16→8 on CIFAR and 28→14→7 on 28×28 input), global average pooling and
//! a fully connected layer. Every convolution is followed by BN (optional,
//! for experiments without it), then ReLU.
//!
//! ```text
//! block, plain:     y = relu(bn2(conv2(relu(bn1(conv1(x))))))
//! block, residual:  y = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))
//! ```
//!
//! The other shortcut variants: `rezero`, y = relu(α·bn2(…) + shortcut(x))
//! with α a scalar per block at 0; `highway`, y = relu(T·bn2(…) + (1 −
//! T)·shortcut(x)) with T = σ(conv1×1(x) + b_T) (stride and channels of the
//! block, b_T = `gate_bias`). Their variables are created after every
//! layer of the plain net, so a seed still gives the same weights.
//! `branch_init: "zero"` starts each block's bn2 γ at 0 (conv2's weight
//! without BN), so a residual or rezero block starts as its shortcut.
//!
//! Where a block changes shape, the shortcut is option A (identity on every
//! other pixel, zero-padded channels: no parameters, as He et al. use on
//! CIFAR) or option B (a 1×1 stride-2 projection with BN). Both twins build
//! the same layers in the same order, so the same seed gives them the same
//! weights; option B's projections exist only in the residual net.
//!
//! Probe points, in forward order: each convolution's output (`layer07.conv`,
//! `block03.proj`) and each block's output (`block03.out`, no weight). The
//! responses (He et al. Fig. 7) are each 3×3 convolution's output after BN,
//! before the addition and the ReLU.

use crate::layers::{ConvUnit, LayerCost, Layers};
use crate::lesion::{join, BlockInfo, BlockPlan, Blocks, Flow, HIGHWAY_REFUSAL};
use crate::{
    mark, point_name, Activation, Init, ModelError, Network, Norm, ProbePoint, Recording, Variant,
};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::Tensor;

/// How a residual block bridges a change of shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Shortcut {
    /// Identity with stride-2 subsampling and zero-padded channels.
    A,
    /// 1×1 stride-2 convolution and BN.
    B,
}

/// Configuration of a He et al. CIFAR-style CNN.
#[derive(Debug, Clone, PartialEq)]
pub struct CnnConfig {
    /// `[channels, height, width]` of one input.
    pub input_shape: Vec<i64>,
    pub classes: i64,
    /// `6n + 2` weight layers.
    pub depth: usize,
    /// Filters of the first stage (16 in the paper); stages use ×1, ×2, ×4.
    pub base_width: i64,
    pub shortcut: Shortcut,
    pub norm: Norm,
    pub init: Init,
    pub variant: Variant,
    /// `zero`: each block's second unit starts at 0 (residual, rezero).
    pub branch_init: crate::BranchInit,
    /// The highway gates' initial bias.
    pub gate_bias: f64,
    /// Keep activations and weights in channels-last (NHWC) memory, the
    /// fastest convolution layout of libtorch on CPU.
    pub channels_last: bool,
}

/// Checks a depth is `6n + 2` with `n ≥ 1`; returns `n`.
pub fn blocks_per_stage(depth: usize) -> Result<usize, String> {
    if depth < 8 || !(depth - 2).is_multiple_of(6) {
        return Err(format!(
            "{depth} is not 6n+2 (8, 14, 20, 32, 44, 56, 110, …)"
        ));
    }
    Ok((depth - 2) / 6)
}

struct Block {
    c1: ConvUnit,
    c2: ConvUnit,
    /// Option B projection where the shape changes (residual twin only).
    proj: Option<ConvUnit>,
    /// Channels added by option A where the shape changes.
    pad_channels: i64,
    stride: i64,
    out_point: usize,
    /// ReZero's α.
    alpha: Option<Tensor>,
    /// Highway's gate.
    gate: Option<nn::Conv2D>,
}

/// A He et al. CIFAR CNN, plain or residual (see the module docs).
pub struct Cnn {
    config: CnnConfig,
    stem: ConvUnit,
    blocks: Vec<Block>,
    fc: nn::Linear,
    fc_point: usize,
    points: Vec<ProbePoint>,
    costs: Vec<LayerCost>,
}

impl std::fmt::Debug for Cnn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cnn")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Cnn {
    pub fn new(p: &nn::Path, config: CnnConfig) -> Result<Cnn, ModelError> {
        config.variant.refuse_ln_layout()?;
        let (n, [c, h, w]) = config.check()?;
        // The var-store paths (`layer07/conv`, `layer07/conv_bn`,
        // `block03/proj`, `layer20/fc`) and the order of creation are those
        // of the CNN before it was built with `Layers`, so a seed gives the
        // same weights (held by a checksum test).
        let mut b = Layers::new(p.clone(), config.init, config.norm, config.channels_last);
        let names = config.depth; // weight layers, for zero padding of names
        let stem = b.conv(
            &point_name(0, names, "conv"),
            [c, h, w],
            config.base_width,
            3,
            1,
        )?;
        let mut blocks = Vec::with_capacity(3 * n);
        let mut input = stem.output;
        let mut layer = 1;
        for stage in 0..3 {
            let c_out = config.base_width << stage;
            for i in 0..n {
                let stride = if stage > 0 && i == 0 { 2 } else { 1 };
                let block_no = blocks.len() + 1;
                let bname = |kind: &str| {
                    format!(
                        "block{block_no:0w$}.{kind}",
                        w = (3 * n).to_string().len().max(2)
                    )
                };
                let c1 = b.conv(&point_name(layer, names, "conv"), input, c_out, 3, stride)?;
                let mut c2 = b.conv(
                    &point_name(layer + 1, names, "conv"),
                    c1.output,
                    c_out,
                    3,
                    1,
                )?;
                let reshapes = stride != 1 || input[0] != c_out;
                if matches!(config.variant, Variant::Residual | Variant::Rezero)
                    && config.branch_init == crate::BranchInit::Zero
                {
                    c2.start_at_zero();
                }
                let proj = if config.variant.has_shortcut()
                    && config.shortcut == Shortcut::B
                    && reshapes
                {
                    Some(b.conv(&bname("proj"), input, c_out, 1, stride)?)
                } else {
                    None
                };
                let out_point = b.point(&bname("out"), c2.output);
                blocks.push(Block {
                    pad_channels: c_out - input[0],
                    stride,
                    out_point,
                    c1,
                    c2,
                    proj,
                    alpha: None,
                    gate: None,
                });
                layer += 2;
                input = blocks.last().map(|b| b.c2.output).unwrap_or(input);
            }
        }
        let (fc, fc_point) = b.linear(&point_name(layer, names, "fc"), input[0], config.classes);
        // The variants' own variables, after every layer of the plain net.
        variant_extras(p, &config, &mut blocks, stem.output[0]);
        Ok(Cnn {
            points: b.points,
            costs: b.costs,
            config,
            stem,
            blocks,
            fc,
            fc_point,
        })
    }

    pub fn config(&self) -> &CnnConfig {
        &self.config
    }
}

impl CnnConfig {
    /// Blocks per stage and the input's [channels, height, width], or why
    /// the CNN cannot be built.
    fn check(&self) -> Result<(usize, [i64; 3]), ModelError> {
        let invalid = |field: &str, message: String| ModelError::Invalid {
            field: field.to_string(),
            message,
        };
        let n = blocks_per_stage(self.depth).map_err(|m| invalid("depths", m))?;
        let [c, h, w] = <[i64; 3]>::try_from(self.input_shape.as_slice()).map_err(|_| {
            invalid(
                "dataset",
                format!(
                    "the CNN needs [channels, height, width] inputs, got {:?}",
                    self.input_shape
                ),
            )
        })?;
        // Two stride-2 stages need at least 4×4 maps to leave a 1×1 map.
        if h < 4 || w < 4 || c < 1 {
            return Err(invalid(
                "dataset",
                format!(
                    "input {c}×{h}×{w} is too small for two stride-2 stages (need at least 4×4)"
                ),
            ));
        }
        if !(1..=1024).contains(&self.base_width) {
            return Err(invalid(
                "model.width",
                format!("{} must be between 1 and 1024", self.base_width),
            ));
        }
        Ok((n, [c, h, w]))
    }
}

/// ReZero's α per block, or the highway gate per block (a 1×1 conv from
/// the block's input, at its stride), created after every layer of the
/// plain net so that a seed gives the twins the same shared weights.
fn variant_extras(p: &nn::Path, config: &CnnConfig, blocks: &mut [Block], stem_channels: i64) {
    let mut c_in = stem_channels;
    for (i, block) in blocks.iter_mut().enumerate() {
        let c_out = block.c2.output[0];
        match config.variant {
            Variant::Rezero => {
                block.alpha = Some(p.var(&format!("alpha{i}"), &[1], nn::Init::Const(0.0)));
            }
            Variant::Highway => {
                let (ws_init, _) = config.init.conv_weight(c_in, c_out);
                let mut gate = nn::conv2d(
                    p / format!("gate{i}"),
                    c_in,
                    c_out,
                    1,
                    nn::ConvConfig {
                        stride: block.stride,
                        bias: true,
                        ws_init,
                        bs_init: nn::Init::Const(config.gate_bias),
                        ..Default::default()
                    },
                );
                config.init.fill(&mut gate.ws);
                block.gate = Some(gate);
            }
            _ => {}
        }
        c_in = c_out;
    }
}

impl Cnn {
    /// One block: `relu(c2(relu(c1(h))) + shortcut(h))` in the residual
    /// twin (with ReZero's α or highway's gate where chosen), `relu(c2(…))`
    /// in the plain one; `flow` routes the backward pass (see
    /// [`crate::lesion`]).
    fn block(
        &self,
        b: &Block,
        h: &Tensor,
        train: bool,
        rec: Option<&Recording>,
        flow: Flow,
    ) -> Tensor {
        let u = b.c1.forward_recorded(h, train, rec).relu();
        let u = b.c2.forward_recorded(&u, train, rec);
        let y = match self.config.variant {
            Variant::Plain => u,
            Variant::PostLn | Variant::PreLn => unreachable!("refused by Cnn::new"),
            Variant::Residual | Variant::Rezero | Variant::Highway => {
                let shortcut = match &b.proj {
                    Some(p) => p.forward(h, train, rec),
                    None if b.stride != 1 || b.pad_channels != 0 => {
                        let s = h.slice(2, 0, None, b.stride).slice(3, 0, None, b.stride);
                        let lo = b.pad_channels / 2;
                        s.constant_pad_nd([0, 0, 0, 0, lo, b.pad_channels - lo])
                    }
                    None => h.shallow_clone(),
                };
                match (&b.alpha, &b.gate) {
                    (Some(alpha), _) => join(u * alpha, shortcut, flow),
                    (_, Some(gate)) => {
                        let t = gate.forward(h).sigmoid();
                        &t * u + (1.0 - &t) * shortcut
                    }
                    _ => join(u, shortcut, flow),
                }
            }
        };
        y.relu()
    }
}

impl Network for Cnn {
    fn forward(&self, x: &Tensor, train: bool, rec: Option<&Recording>) -> Tensor {
        let x = crate::layers::input_layout(x, self.config.channels_last);
        let mut h = self.stem.forward_recorded(&x, train, rec).relu();
        for b in &self.blocks {
            h = mark(self.block(b, &h, train, rec, Flow::Both), rec, b.out_point);
        }
        crate::layers::pooled_logits(&h, &self.fc, rec, self.fc_point)
    }

    fn probe_points(&self) -> &[ProbePoint] {
        &self.points
    }

    fn layer_costs(&self) -> &[LayerCost] {
        &self.costs
    }

    fn blocks(&self) -> Result<Blocks, String> {
        if self.config.variant == Variant::Highway {
            return Err(HIGHWAY_REFUSAL.into());
        }
        Ok(Blocks {
            blocks: self
                .blocks
                .iter()
                .map(|b| BlockInfo {
                    name: self.points[b.out_point].name.clone(),
                    same_shape: b.stride == 1 && b.pad_channels == 0 && b.proj.is_none(),
                })
                .collect(),
            residual: self.config.variant != Variant::Plain,
        })
    }

    fn forward_planned(&self, x: &Tensor, plan: &BlockPlan) -> Option<(Tensor, Tensor)> {
        self.blocks().ok()?;
        let x = crate::layers::input_layout(x, self.config.channels_last);
        let input = self.stem.forward_recorded(&x, false, None).relu();
        let h = plan.apply(&input, |j, h, flow| {
            self.block(&self.blocks[j], h, false, None, flow)
        });
        let logits = crate::layers::pooled_logits(&h, &self.fc, None, self.fc_point);
        Some((logits, input))
    }

    /// Responses are pre-ReLU BN outputs; "saturated" is the fraction the
    /// ReLU will zero.
    fn activation(&self) -> Activation {
        Activation::Relu
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn config(depth: usize, variant: Variant, shortcut: Shortcut, input: [i64; 3]) -> CnnConfig {
        CnnConfig {
            input_shape: input.to_vec(),
            classes: 10,
            depth,
            base_width: 16,
            shortcut,
            norm: Norm::Batchnorm,
            init: Init::Kaiming,
            variant,
            branch_init: Default::default(),
            gate_bias: -1.0,
            channels_last: false,
        }
    }

    fn params(vs: &nn::VarStore) -> i64 {
        vs.trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum()
    }

    /// He et al. (2016) Table 6 lists ResNet-20 at 0.27M parameters. With
    /// option A (parameter-free shortcuts), no conv biases and affine BN the
    /// exact count is 269,722: the figure the widely used PyTorch
    /// reimplementations (e.g. akamaster/pytorch_resnet_cifar10) print.
    #[test]
    fn resnet20_option_a_has_269722_parameters() {
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = Cnn::new(
            &vs.root(),
            config(20, Variant::Residual, Shortcut::A, [3, 32, 32]),
        )
        .unwrap();
        assert_eq!(params(&vs), 269_722);
        // The plain twin has exactly the same parameters under option A.
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = Cnn::new(
            &vs.root(),
            config(20, Variant::Plain, Shortcut::A, [3, 32, 32]),
        )
        .unwrap();
        assert_eq!(params(&vs), 269_722);
        // Option B adds two 1×1 projections with BN: 16·32 + 64 and 32·64 + 128.
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = Cnn::new(
            &vs.root(),
            config(20, Variant::Residual, Shortcut::B, [3, 32, 32]),
        )
        .unwrap();
        assert_eq!(params(&vs), 269_722 + 16 * 32 + 64 + 32 * 64 + 128);
    }

    #[test]
    fn forward_shapes_and_probe_points() {
        for (input, shortcut) in [([3, 32, 32], Shortcut::A), ([1, 28, 28], Shortcut::B)] {
            let vs = nn::VarStore::new(Device::Cpu);
            let net = Cnn::new(&vs.root(), config(14, Variant::Residual, shortcut, input)).unwrap();
            let x = Tensor::randn(
                [2, input[0], input[1], input[2]],
                (Kind::Float, Device::Cpu),
            );
            let rec = Recording::new(net.probe_points().len());
            let out = net.forward(&x, true, Some(&rec));
            assert_eq!(out.size(), vec![2, 10]);
            // 13 convs + 6 block outputs + fc (+ 2 projections under B).
            let extra = if shortcut == Shortcut::B { 2 } else { 0 };
            assert_eq!(net.probe_points().len(), 13 + 6 + 1 + extra);
            let (outputs, responses) = rec.finish();
            assert!(outputs.iter().all(Option::is_some), "every point recorded");
            assert_eq!(responses.len(), 13, "one response per 3×3 conv");
            // Maps go 28→14→7 (or 32→16→8) through the stages.
            let last = net
                .probe_points()
                .iter()
                .rev()
                .find(|p| p.name.ends_with(".out"))
                .unwrap();
            assert_eq!(last.output_shape, vec![64, input[1] / 4, input[2] / 4]);
            assert_eq!(net.probe_points()[0].name, "layer00.conv");
            assert_eq!(net.probe_points().last().unwrap().name, "layer13.fc");
        }
    }

    /// Every variable's path and a position-weighted sum of its values, in
    /// the var store's path order: a change of path, of creation order (the
    /// RNG draws in that order) or of init shows up here.
    fn checksum(vs: &nn::VarStore) -> (Vec<String>, f64) {
        let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let mut sum = 0.0;
        for (k, (_, t)) in vars.iter().enumerate() {
            let v: Vec<f32> = Vec::try_from(t.flatten(0, -1)).unwrap();
            for (j, x) in v.iter().enumerate() {
                sum += (k + 1) as f64 * ((j % 13) + 1) as f64 * f64::from(*x);
            }
        }
        (vars.into_iter().map(|(n, _)| n).collect(), sum)
    }

    /// Issue 15 §4: the CNN's var-store paths and init order are a contract
    /// (the same seed gives the same weights, and saved weights load by
    /// path). This checksum was taken from the CNN as built before it moved
    /// onto `layers::Layers`, and the port must keep it. It seeds
    /// libtorch's process-global RNG, so it needs a process of its own:
    /// `make test` runs it under nextest, which gives each test one.
    #[test]
    fn weights_match_the_checked_in_checksum() {
        tch::manual_seed(7);
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = Cnn::new(
            &vs.root(),
            CnnConfig {
                base_width: 4,
                ..config(8, Variant::Residual, Shortcut::B, [3, 16, 16])
            },
        )
        .unwrap();
        let (names, sum) = checksum(&vs);
        assert_eq!(names.len(), 47, "{names:?}");
        assert_eq!(names[0], "block02.proj.weight");
        assert!(names.contains(&"layer01.conv_bn.running_mean".to_string()));
        assert!(names.contains(&"layer07.fc.bias".to_string()));
        let expected = 2.297_470_529_076e4;
        assert!(
            (sum - expected).abs() <= 1e-9 * expected.abs(),
            "checksum {sum:.12e}, checked in {expected:.12e}"
        );
    }

    #[test]
    fn channels_last_gives_the_same_function() {
        // The weights are copied across rather than drawn twice from one
        // seed: the RNG is process-global, and `cargo test` runs tests in
        // threads of one process.
        let build = |cl| {
            let vs = nn::VarStore::new(Device::Cpu);
            let net = Cnn::new(
                &vs.root(),
                CnnConfig {
                    channels_last: cl,
                    ..config(8, Variant::Residual, Shortcut::A, [3, 16, 16])
                },
            )
            .unwrap();
            (vs, net)
        };
        let ((va, a), (mut vb, b)) = (build(false), build(true));
        vb.copy(&va).unwrap();
        let x = Tensor::randn([2, 3, 16, 16], (Kind::Float, Device::Cpu));
        let (ya, yb) = (a.forward(&x, false, None), b.forward(&x, false, None));
        assert!(ya.allclose(&yb, 1e-4, 1e-5, false));
    }

    #[test]
    fn impossible_shapes_are_rejected_before_training() {
        let vs = nn::VarStore::new(Device::Cpu);
        let err = Cnn::new(
            &vs.root(),
            config(21, Variant::Plain, Shortcut::A, [3, 32, 32]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("6n+2"), "{err}");
        let err = Cnn::new(
            &vs.root(),
            config(20, Variant::Plain, Shortcut::A, [3, 2, 2]),
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("dataset:"), "{err}");
        let err = Cnn::new(
            &vs.root(),
            CnnConfig {
                input_shape: vec![64],
                ..config(20, Variant::Plain, Shortcut::A, [3, 32, 32])
            },
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("dataset:"), "{err}");
    }

    /// Issue 31, the CNN family: a rezero block (α = 0) and a residual
    /// block with `branch_init: "zero"` (zero-γ with BN, Goyal et al. 2017;
    /// SkipInit without) compute exactly their shortcut at init: within a
    /// stage (identity shortcut) each block's output is its input, to the
    /// bit, since the input is post-ReLU and relu(0 + h) = h. Parameter
    /// counts: rezero one α per block, highway a 1×1 gate conv with bias
    /// per block.
    #[test]
    fn zero_branch_blocks_start_as_their_shortcut() {
        let outs = |variant, branch_init, norm| {
            tch::manual_seed(1);
            let vs = nn::VarStore::new(Device::Cpu);
            let cfg = CnnConfig {
                branch_init,
                norm,
                ..config(14, variant, Shortcut::A, [3, 16, 16])
            };
            let net = Cnn::new(&vs.root(), cfg).unwrap();
            let x = Tensor::randn([2, 3, 16, 16], (Kind::Float, Device::Cpu));
            let rec = Recording::new(net.probe_points().len());
            let _ = net.forward(&x, false, Some(&rec));
            let (outputs, _) = rec.finish();
            let block = |name: &str| {
                let i = net
                    .probe_points()
                    .iter()
                    .position(|p| p.name == name)
                    .unwrap();
                outputs[i].as_ref().unwrap().shallow_clone()
            };
            let params: i64 = vs
                .trainable_variables()
                .iter()
                .map(|t| t.numel() as i64)
                .sum();
            (block("block01.out").equal(&block("block02.out")), params)
        };
        use crate::BranchInit::{Default as D, Zero};
        for norm in [Norm::Batchnorm, Norm::None] {
            assert!(outs(Variant::Rezero, D, norm).0, "rezero {norm:?}");
            assert!(
                outs(Variant::Residual, Zero, norm).0,
                "zero branch {norm:?}"
            );
            assert!(!outs(Variant::Residual, D, norm).0, "residual {norm:?}");
        }
        let base = outs(Variant::Residual, D, Norm::Batchnorm).1;
        assert_eq!(outs(Variant::Plain, D, Norm::Batchnorm).1, base);
        assert_eq!(outs(Variant::Rezero, D, Norm::Batchnorm).1, base + 6);
        // Gates: stage 1 16→16 (×2), stage 2 16→32 and 32→32, stage 3 32→64
        // and 64→64, each 1×1 with a bias.
        let gates: i64 = [(16, 16), (16, 16), (16, 32), (32, 32), (32, 64), (64, 64)]
            .iter()
            .map(|(i, o)| i * o + o)
            .sum();
        assert_eq!(outs(Variant::Highway, D, Norm::Batchnorm).1, base + gates);
    }
}
