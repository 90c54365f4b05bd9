//! A net's blocks run another way at test time, for the two instruments of
//! Veit, Wilber & Belongie (2016), "Residual networks behave like ensembles
//! of relatively shallow networks":
//! - a **lesion** deletes blocks (a residual block keeps only its
//!   shortcut; a plain block whose input and output shapes match becomes
//!   the identity) or swaps two blocks of the same shape;
//! - a **path** study lets the backward pass through only some residual
//!   branches: [`Flow::Branch`] at the blocks a path traverses and
//!   [`Flow::Shortcut`] at the rest. The forward pass is unchanged (the
//!   other term is detached, not removed), so the gradient that reaches
//!   the first block is exactly that path's share of the full gradient:
//!   backpropagation is linear in the gradient once the forward pass has
//!   fixed every ReLU mask and (in eval mode) every BatchNorm scale, and
//!   the 2ⁿ paths' gradients sum to the full one.
//!
//! Families opt in through [`crate::Network::blocks`] and
//! [`crate::Network::forward_planned`]: the MLP, the CIFAR CNN and the
//! bottleneck ResNet. The others say why not.

use tch::Tensor;

/// Where the backward pass may flow through one residual block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Through the branch and the shortcut: the net as trained.
    Both,
    /// Through the branch only (the shortcut's term is detached).
    Branch,
    /// Through the shortcut only (the branch's term is detached).
    Shortcut,
}

/// How a forward pass runs the blocks, position by position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockPlan {
    /// The block run at each position: `Some(j)` runs block `j` (a swap
    /// puts two blocks in each other's place); `None` deletes the
    /// position's block (its input passes unchanged).
    pub run: Vec<Option<usize>>,
    /// Where the backward pass may flow at each position.
    pub flow: Vec<Flow>,
}

impl BlockPlan {
    /// Every block in its place: the trained net.
    pub fn intact(n: usize) -> BlockPlan {
        BlockPlan {
            run: (0..n).map(Some).collect(),
            flow: vec![Flow::Both; n],
        }
    }

    /// The trained net less the blocks at `deleted`.
    pub fn deleting(n: usize, deleted: &[usize]) -> BlockPlan {
        let mut plan = BlockPlan::intact(n);
        for &i in deleted {
            plan.run[i] = None;
        }
        plan
    }

    /// The trained net with each pair of blocks in `pairs` swapped.
    pub fn swapping(n: usize, pairs: &[(usize, usize)]) -> BlockPlan {
        let mut plan = BlockPlan::intact(n);
        for &(a, b) in pairs {
            plan.run.swap(a, b);
        }
        plan
    }

    /// Runs the positions in order from `input`: a deleted one passes its
    /// input on, the others call `block(j, h, flow)` with the block `j`
    /// placed there. The one loop of every family's `forward_planned`.
    pub fn apply(&self, input: &Tensor, block: impl Fn(usize, &Tensor, Flow) -> Tensor) -> Tensor {
        let mut h = input.shallow_clone();
        for (run, &flow) in self.run.iter().zip(&self.flow) {
            if let Some(j) = *run {
                h = block(j, &h, flow);
            }
        }
        h
    }

    /// The trained net whose backward pass goes through the branches at
    /// `branches` and the shortcuts elsewhere: one path of
    /// `branches.len()` residual branches.
    pub fn path(n: usize, branches: &[usize]) -> BlockPlan {
        let mut plan = BlockPlan::intact(n);
        plan.flow = vec![Flow::Shortcut; n];
        for &i in branches {
            plan.flow[i] = Flow::Branch;
        }
        plan
    }
}

/// One block as the lesion study sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockInfo {
    /// Its output's probe point (`layer05.out`, `stage3.block1.out`).
    pub name: String,
    /// Whether its input and output have one shape: only those can be
    /// deleted or swapped (Veit et al. leave the downsampling blocks in).
    pub same_shape: bool,
}

/// A net's blocks, in forward order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocks {
    pub blocks: Vec<BlockInfo>,
    /// Whether the blocks have shortcuts (the path study needs them).
    pub residual: bool,
}

/// A residual block's output before its last nonlinearity: the branch's
/// term `u` plus the shortcut's, with `flow` detaching one of them (the
/// forward value is the same either way).
pub(crate) fn join(u: Tensor, shortcut: Tensor, flow: Flow) -> Tensor {
    match flow {
        Flow::Both => u + shortcut,
        Flow::Branch => u + shortcut.detach(),
        Flow::Shortcut => u.detach() + shortcut,
    }
}

/// Why a highway net has no lesions or paths: its shortcut is gated by a
/// function of the block's input, so deleting the branch does not leave
/// the identity, and the gate's own gradient belongs to no path.
pub const HIGHWAY_REFUSAL: &str =
    "a highway block's shortcut is gated by its input (T(h)), so deleting its branch does not leave the identity and its gradient does not split into paths";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cnn::{Cnn, CnnConfig, Shortcut};
    use crate::mlp::{Mlp, MlpConfig};
    use crate::{Activation, BranchInit, Init, Network, Norm, Variant};
    use tch::{nn, Device, Kind};

    fn cnn(variant: Variant, branch_init: BranchInit) -> (nn::VarStore, Cnn) {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = Cnn::new(
            &vs.root(),
            CnnConfig {
                input_shape: vec![1, 8, 8],
                classes: 3,
                depth: 14,
                base_width: 4,
                shortcut: Shortcut::A,
                norm: Norm::Batchnorm,
                init: Init::Kaiming,
                variant,
                branch_init,
                gate_bias: -1.0,
                channels_last: false,
            },
        )
        .unwrap();
        (vs, net)
    }

    fn mlp(variant: Variant) -> (nn::VarStore, Mlp) {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = Mlp::new(
            &vs.root(),
            MlpConfig {
                input_dim: 6,
                classes: 3,
                depth: 6,
                width: 8,
                activation: Activation::Tanh,
                init: Init::Glorot,
                norm: Norm::Batchnorm,
                variant,
                branch_init: Default::default(),
                gate_bias: -1.0,
            },
        )
        .unwrap();
        (vs, net)
    }

    fn same(a: &Tensor, b: &Tensor) -> bool {
        a.size() == b.size() && a.eq_tensor(b).all().int64_value(&[]) == 1
    }

    /// The lesion study reads errors off `forward_planned`: with every
    /// block in place it must be the net's own eval-mode forward pass, bit
    /// for bit, or every lesion would carry a difference of its own.
    #[test]
    fn the_intact_plan_is_the_forward_pass() {
        let x = Tensor::randn([4, 1, 8, 8], (Kind::Float, Device::Cpu));
        for variant in [Variant::Plain, Variant::Residual, Variant::Rezero] {
            let (_vs, net) = cnn(variant, BranchInit::Default);
            let n = net.blocks().unwrap().blocks.len();
            let (planned, _) = net.forward_planned(&x, &BlockPlan::intact(n)).unwrap();
            assert!(
                same(&planned, &net.forward(&x, false, None)),
                "cnn {variant:?}"
            );
            let (_vs, net) = mlp(variant);
            let n = net.blocks().unwrap().blocks.len();
            let x = x.flatten(1, -1).narrow(1, 0, 6);
            let (planned, _) = net.forward_planned(&x, &BlockPlan::intact(n)).unwrap();
            assert!(
                same(&planned, &net.forward(&x, false, None)),
                "mlp {variant:?}"
            );
        }
    }

    /// Veit et al.: deleting a residual block keeps its shortcut. A block
    /// whose branch outputs 0 (its last BatchNorm's γ at 0, Goyal et al.
    /// 2017) is its shortcut already, so deleting it, or swapping two of
    /// them, changes no logit; in the plain twin the same deletion does.
    #[test]
    fn deleting_a_block_keeps_its_shortcut() {
        let x = Tensor::randn([4, 1, 8, 8], (Kind::Float, Device::Cpu));
        let (_vs, net) = cnn(Variant::Residual, BranchInit::Zero);
        let blocks = net.blocks().unwrap();
        let deletable: Vec<usize> = (0..blocks.blocks.len())
            .filter(|&i| blocks.blocks[i].same_shape)
            .collect();
        let n = blocks.blocks.len();
        let intact = net.forward(&x, false, None);
        let (deleted, _) = net
            .forward_planned(&x, &BlockPlan::deleting(n, &deletable))
            .unwrap();
        assert!(same(&deleted, &intact));
        let (swapped, _) = net
            .forward_planned(&x, &BlockPlan::swapping(n, &[(deletable[0], deletable[1])]))
            .unwrap();
        assert!(same(&swapped, &intact));
        let (_vs, plain) = cnn(Variant::Plain, BranchInit::Default);
        let (deleted, _) = plain
            .forward_planned(&x, &BlockPlan::deleting(n, &deletable[..1]))
            .unwrap();
        assert!(!same(&deleted, &plain.forward(&x, false, None)));
    }

    /// He et al.'s CNN of depth 14 has 6 blocks, two of which (the first
    /// of stages 2 and 3) halve the map and double the channels: only the
    /// other 4 can be deleted (Veit et al. leave downsampling blocks in).
    #[test]
    fn blocks_that_change_shape_are_not_deletable() {
        let (_vs, net) = cnn(Variant::Residual, BranchInit::Default);
        let b = net.blocks().unwrap();
        let same: Vec<bool> = b.blocks.iter().map(|b| b.same_shape).collect();
        assert_eq!(same, vec![true, true, false, true, false, true]);
        assert!(b.blocks[2].name.ends_with(".out"));
        let (_vs, plain) = cnn(Variant::Plain, BranchInit::Default);
        assert!(!plain.blocks().unwrap().residual);
    }

    /// ResNet-50 (He et al. Table 1): 16 bottleneck blocks, the first of
    /// each of its 4 stages a convolution block that changes the shape, so
    /// 12 identity blocks can be deleted; the intact plan is the forward
    /// pass in both twins.
    #[test]
    fn resnet50_has_twelve_identity_blocks() {
        use crate::bottleneck::{Bottleneck, BottleneckConfig};
        let x = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
        for variant in [Variant::Plain, Variant::Residual] {
            let vs = nn::VarStore::new(Device::Cpu);
            let net = Bottleneck::new(
                &vs.root(),
                BottleneckConfig {
                    input_shape: vec![3, 32, 32],
                    classes: 3,
                    depth: 50,
                    width: 4,
                    norm: Norm::Batchnorm,
                    init: Init::Kaiming,
                    variant,
                    channels_last: false,
                },
            )
            .unwrap();
            // `Network::blocks`: the bottleneck net has a `blocks` of its own.
            let b = Network::blocks(&net).unwrap();
            assert_eq!(b.blocks.len(), 16);
            assert_eq!(b.blocks.iter().filter(|b| b.same_shape).count(), 12);
            assert_eq!(b.residual, variant == Variant::Residual);
            let (planned, _) = net.forward_planned(&x, &BlockPlan::intact(16)).unwrap();
            assert!(same(&planned, &net.forward(&x, false, None)), "{variant:?}");
        }
    }

    /// A highway net's gated shortcut is no identity: refused, with why.
    #[test]
    fn highway_nets_are_refused_with_the_reason() {
        let (_vs, net) = mlp(Variant::Highway);
        let why = net.blocks().unwrap_err();
        assert!(why.contains("gated"), "{why}");
        assert!(net
            .forward_planned(
                &Tensor::zeros([1, 6], (Kind::Float, Device::Cpu)),
                &BlockPlan::intact(4)
            )
            .is_none());
    }
}
