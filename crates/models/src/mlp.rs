//! The multilayer perceptron and its residual twin.
//!
//! Depth counts weight layers, as the papers do: depth `d` is an input layer
//! (features → width), `d - 2` hidden layers (width → width) and an output
//! layer (width → classes). Between weight layers sits `norm → act`.
//!
//! ```text
//! plain:     h0 = W0 x;   h(l) = W(l) act(norm(h(l-1)));         logits = W(d-1) act(norm(h(d-2)))
//! residual:  h0 = W0 x;   h(l) = h(l-1) + W(l) act(norm(h(l-1)))  (l = 1..d-2)
//! ```
//!
//! The residual form is the pre-activation unit of He et al. (2016b,
//! "Identity mappings in deep residual networks"), one weight layer per
//! shortcut. It keeps the plain net an ordinary MLP (`Linear, act, Linear,
//! act, …`) and gives the twin exactly the same layers and, for the same
//! seed, the same initial weights. Because the shortcut adds `h(l-1)`
//! unchanged, dL/dh(l) is also the gradient at the output of `W(l)`.
//!
//! The other shortcut variants wrap the same unit u(l) = W(l) act(norm(h(l-1))):
//!
//! ```text
//! rezero:    h(l) = h(l-1) + α(l)·u(l)                  α(l) a scalar, 0 at init
//! highway:   h(l) = T·u(l) + (1 − T)·h(l-1)             T = σ(W_T(l) h(l-1) + b_T), b_T = gate_bias
//! fixup:     u(l) = s(l)·W(l)(act(h(l-1) + a(l)) + c(l)) + e(l)   (residual, init "fixup")
//! ```
//!
//! Their extra variables (α, the gates, Fixup's scalars) are created after
//! every layer of the plain net, so the same seed still gives every twin
//! the plain net's weights. `branch_init: "zero"` and Fixup start each
//! W(l) at 0 (the branch's last layer: here its only one, m = 1, so Fixup's
//! L^(−1/(2m−2)) scaling has no layer to scale), and Fixup the head too.

use crate::lesion::{join, BlockInfo, BlockPlan, Blocks, Flow, HIGHWAY_REFUSAL};
use crate::{
    mark, point_name, respond, Activation, BranchInit, Init, ModelError, Network, Norm, ProbePoint,
    Reads, Recording, Variant,
};
use tch::nn::{self, Module, ModuleT};
use tch::Tensor;

/// Configuration of an MLP; every field is recorded in `run.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct MlpConfig {
    pub input_dim: i64,
    pub classes: i64,
    /// Weight layers, at least 2.
    pub depth: usize,
    /// Units per hidden layer.
    pub width: i64,
    pub activation: Activation,
    pub init: Init,
    pub norm: Norm,
    pub variant: Variant,
    /// `zero`: each shortcut's branch starts at 0 (residual and rezero).
    pub branch_init: BranchInit,
    /// The highway gates' initial bias b_T (Srivastava et al.: −1 to −3).
    pub gate_bias: f64,
}

/// A plain MLP or its residual twin (see the module docs).
#[derive(Debug)]
pub struct Mlp {
    config: MlpConfig,
    layers: Vec<nn::Linear>,
    /// One norm before each nonlinearity (`depth - 1` of them), or none.
    norms: Vec<nn::BatchNorm>,
    points: Vec<ProbePoint>,
    /// ReZero's α per hidden layer.
    alphas: Vec<Tensor>,
    /// Highway's gate per hidden layer.
    gates: Vec<nn::Linear>,
    /// Fixup's scalars per hidden layer: the biases before the activation
    /// and before the layer, the multiplier, the bias after it.
    fixup: Vec<[Tensor; 4]>,
}

impl Mlp {
    /// Builds the net under `p`; the variables are created in layer order,
    /// so the same seed gives the plain net and its twin the same weights.
    pub fn new(p: &nn::Path, config: MlpConfig) -> Result<Mlp, ModelError> {
        config.variant.refuse_ln_layout()?;
        config.check()?;
        // The order of construction is the order of the init's random
        // draws: the twins' shared layers first, so their weights agree.
        let (mut layers, points) = linear_layers(p, &config);
        let norms = batch_norms(p, &config);
        let d = config.depth;
        let hidden = 1..d.saturating_sub(1);
        let block = |l: usize| p / point_name(l, d, "");
        let alphas = match config.variant {
            Variant::Rezero => hidden
                .clone()
                .map(|l| block(l).var("alpha", &[1], nn::Init::Const(0.0)))
                .collect(),
            _ => Vec::new(),
        };
        let gates = match config.variant {
            Variant::Highway => hidden
                .clone()
                .map(|l| {
                    let (ws_init, _) = config.init.weight_and_bias(config.width, config.width);
                    nn::linear(
                        block(l) / "gate",
                        config.width,
                        config.width,
                        nn::LinearConfig {
                            ws_init,
                            bs_init: Some(nn::Init::Const(config.gate_bias)),
                            bias: true,
                        },
                    )
                })
                .collect(),
            _ => Vec::new(),
        };
        let branches = matches!(config.variant, Variant::Residual | Variant::Rezero);
        let fixup_on = branches && config.init == Init::Fixup;
        let fixup = match fixup_on {
            true => hidden
                .clone()
                .map(|l| {
                    let b = block(l);
                    [
                        b.var("fixup_bias_act", &[1], nn::Init::Const(0.0)),
                        b.var("fixup_bias_in", &[1], nn::Init::Const(0.0)),
                        b.var("fixup_scale", &[1], nn::Init::Const(1.0)),
                        b.var("fixup_bias_out", &[1], nn::Init::Const(0.0)),
                    ]
                })
                .collect(),
            false => Vec::new(),
        };
        let zero_branches = branches && (config.branch_init == BranchInit::Zero || fixup_on);
        tch::no_grad(|| {
            let zeroed = layers.iter_mut().enumerate().filter(|(l, _)| {
                (zero_branches && hidden.contains(l)) || (fixup_on && *l == d - 1)
            });
            for (_, lin) in zeroed {
                let _ = lin.ws.zero_();
                if let Some(b) = lin.bs.as_mut() {
                    let _ = b.zero_();
                }
            }
        });
        Ok(Mlp {
            config,
            layers,
            norms,
            points,
            alphas,
            gates,
            fixup,
        })
    }

    /// The fraction of h(l-1) a highway layer `l` carries, 1 − T(h), for
    /// a batch of inputs `h`; `None` for other variants.
    pub fn carry(&self, l: usize, h: &Tensor) -> Option<Tensor> {
        let gate = self.gates.get(l.checked_sub(1)?)?;
        Some(1.0 - gate.forward(h).sigmoid())
    }

    pub fn config(&self) -> &MlpConfig {
        &self.config
    }

    /// Hidden layer `l` as a block: `h + W·act(norm(h))` in the residual
    /// twin (ReZero's α, highway's gate, Fixup's scalars where chosen),
    /// `W·act(norm(h))` in the plain one; `flow` routes the backward pass
    /// (see [`crate::lesion`]).
    fn block(
        &self,
        l: usize,
        h: &Tensor,
        train: bool,
        rec: Option<&Recording>,
        flow: Flow,
    ) -> Tensor {
        let fixup = self.fixup.get(l - 1);
        let a = match fixup {
            Some([bias_act, ..]) => self.unit_input(&(h + bias_act), l - 1, train),
            None => self.unit_input(h, l - 1, train),
        };
        let u = match fixup {
            Some([_, bias_in, scale, bias_out]) => {
                self.layers[l].forward(&(&a + bias_in)) * scale + bias_out
            }
            None => self.layers[l].forward(&a),
        };
        respond(rec, l - 1, &a);
        match self.config.variant {
            Variant::Plain => u,
            Variant::Residual => join(u, h.shallow_clone(), flow),
            Variant::Rezero => join(u * &self.alphas[l - 1], h.shallow_clone(), flow),
            Variant::Highway => {
                let t = self.gates[l - 1].forward(h).sigmoid();
                &t * u + (1.0 - &t) * h
            }
            Variant::PostLn | Variant::PreLn => unreachable!("refused by Mlp::new"),
        }
    }

    /// `act(norm(h))` for the norm after layer `l`.
    fn unit_input(&self, h: &Tensor, l: usize, train: bool) -> Tensor {
        let h = match self.norms.get(l) {
            Some(bn) => bn.forward_t(h, train),
            None => h.shallow_clone(),
        };
        self.config.activation.apply(&h)
    }
}

impl MlpConfig {
    /// The sizes an MLP can be built with.
    fn check(&self) -> Result<(), ModelError> {
        let invalid = |field: &str, message: String| ModelError::Invalid {
            field: field.to_string(),
            message,
        };
        if self.depth < 2 {
            return Err(invalid(
                "depths",
                format!("{} is below 2 (an input and an output layer)", self.depth),
            ));
        }
        if self.width < 1 {
            return Err(invalid(
                "model.width",
                format!("{} must be at least 1", self.width),
            ));
        }
        if self.input_dim < 1 || self.classes < 2 {
            return Err(invalid(
                "dataset",
                format!(
                    "input size {} and {} classes cannot feed an MLP",
                    self.input_dim, self.classes
                ),
            ));
        }
        Ok(())
    }
}

/// The `depth` linear layers (input, hidden, head) and their probe points.
fn linear_layers(p: &nn::Path, config: &MlpConfig) -> (Vec<nn::Linear>, Vec<ProbePoint>) {
    let d = config.depth;
    let mut layers = Vec::with_capacity(d);
    let mut points = Vec::with_capacity(d);
    for l in 0..d {
        let fan_in = if l == 0 {
            config.input_dim
        } else {
            config.width
        };
        let fan_out = if l == d - 1 {
            config.classes
        } else {
            config.width
        };
        let (ws_init, bs_init) = config.init.weight_and_bias(fan_in, fan_out);
        let name = point_name(l, d, "linear");
        let lin = nn::linear(
            p / point_name(l, d, "") / "linear",
            fan_in,
            fan_out,
            nn::LinearConfig {
                ws_init,
                bs_init: Some(bs_init),
                bias: true,
            },
        );
        points.push(ProbePoint {
            name,
            weight: Some(lin.ws.shallow_clone()),
            output_shape: vec![fan_out],
            // Hidden layers only: not the input layer, not the head.
            trunk: l > 0 && l < d - 1,
            reads: Reads::Output,
        });
        layers.push(lin);
    }
    (layers, points)
}

/// BatchNorm after every layer but the head, if the config asks for it.
fn batch_norms(p: &nn::Path, config: &MlpConfig) -> Vec<nn::BatchNorm> {
    let d = config.depth;
    match config.norm {
        Norm::None => Vec::new(),
        Norm::Batchnorm => (0..d - 1)
            .map(|l| {
                nn::batch_norm1d(
                    p / point_name(l, d, "") / "bn",
                    config.width,
                    nn::BatchNormConfig {
                        ws_init: nn::Init::Const(1.0),
                        bs_init: nn::Init::Const(0.0),
                        ..Default::default()
                    },
                )
            })
            .collect(),
    }
}

impl Network for Mlp {
    fn forward(&self, x: &Tensor, train: bool, rec: Option<&Recording>) -> Tensor {
        let d = self.layers.len();
        let x = x.flatten(1, -1);
        let mut h = mark(self.layers[0].forward(&x), rec, 0);
        for l in 1..d - 1 {
            h = mark(self.block(l, &h, train, rec, Flow::Both), rec, l);
        }
        let a = self.unit_input(&h, d - 2, train);
        respond(rec, d - 2, &a);
        mark(self.layers[d - 1].forward(&a), rec, d - 1)
    }

    fn probe_points(&self) -> &[ProbePoint] {
        &self.points
    }

    fn activation(&self) -> Activation {
        self.config.activation
    }

    /// The hidden layers (1 to depth − 2), each width to width.
    fn blocks(&self) -> Result<Blocks, String> {
        if self.config.variant == Variant::Highway {
            return Err(HIGHWAY_REFUSAL.into());
        }
        let d = self.layers.len();
        Ok(Blocks {
            blocks: (1..d - 1)
                .map(|l| BlockInfo {
                    name: self.points[l].name.clone(),
                    same_shape: true,
                })
                .collect(),
            residual: self.config.variant != Variant::Plain,
        })
    }

    fn forward_planned(&self, x: &Tensor, plan: &BlockPlan) -> Option<(Tensor, Tensor)> {
        self.blocks().ok()?;
        let d = self.layers.len();
        let input = self.layers[0].forward(&x.flatten(1, -1));
        let h = plan.apply(&input, |j, h, flow| self.block(j + 1, h, false, None, flow));
        let a = self.unit_input(&h, d - 2, false);
        Some((self.layers[d - 1].forward(&a), input))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn config(depth: usize, variant: Variant) -> MlpConfig {
        MlpConfig {
            input_dim: 8,
            classes: 3,
            depth,
            width: 16,
            activation: Activation::Tanh,
            init: Init::Glorot,
            norm: Norm::Batchnorm,
            variant,
            branch_init: Default::default(),
            gate_bias: -1.0,
        }
    }

    #[test]
    fn shapes_names_and_parameter_count() {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = Mlp::new(&vs.root(), config(5, Variant::Residual)).unwrap();
        let x = Tensor::randn([4, 8], (Kind::Float, Device::Cpu));
        let rec = Recording::new(net.probe_points().len());
        let out = net.forward(&x, true, Some(&rec));
        assert_eq!(out.size(), vec![4, 3]);
        let (outputs, responses) = rec.finish();
        assert!(outputs.iter().all(Option::is_some), "every point recorded");
        assert_eq!(responses.len(), 4);
        let names: Vec<&str> = net.probe_points().iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "layer00.linear",
                "layer01.linear",
                "layer02.linear",
                "layer03.linear",
                "layer04.linear"
            ]
        );
        // Linear: 8*16+16 + 3*(16*16+16) + 16*3+3; BN (gamma, beta): 4*2*16.
        let params: i64 = vs
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum();
        assert_eq!(
            params,
            (8 * 16 + 16) + 3 * (16 * 16 + 16) + (16 * 3 + 3) + 4 * 2 * 16
        );
    }

    #[test]
    fn twins_share_initial_weights_and_differ_only_by_shortcut() {
        let build = |variant| {
            tch::manual_seed(11);
            let vs = nn::VarStore::new(Device::Cpu);
            let net = Mlp::new(&vs.root(), config(4, variant)).unwrap();
            (vs, net)
        };
        let (_a, plain) = build(Variant::Plain);
        let (_b, res) = build(Variant::Residual);
        for (p, r) in plain.probe_points().iter().zip(res.probe_points()) {
            assert!(
                p.weight.as_ref().unwrap().equal(r.weight.as_ref().unwrap()),
                "{} differs",
                p.name
            );
        }
        let x = Tensor::randn([4, 8], (Kind::Float, Device::Cpu));
        let (yp, yr) = (plain.forward(&x, false, None), res.forward(&x, false, None));
        assert!(
            !yp.allclose(&yr, 1e-6, 1e-6, false),
            "the shortcut must change the output"
        );
    }

    #[test]
    fn batchnorm_gamma_starts_at_one_as_in_pytorch() {
        let vs = nn::VarStore::new(Device::Cpu);
        let _net = Mlp::new(&vs.root(), config(3, Variant::Plain)).unwrap();
        let vars = vs.variables();
        let gamma = vars.get("layer00.bn.weight").expect("bn weight exists");
        assert!(gamma.eq(1.0).all().int64_value(&[]) == 1);
    }

    #[test]
    fn pytorch_default_init_matches_its_bound() {
        // PyTorch nn.Linear: weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = MlpConfig {
            init: Init::PytorchDefault,
            norm: Norm::None,
            width: 16,
            ..config(3, Variant::Plain)
        };
        let net = Mlp::new(&vs.root(), cfg).unwrap();
        let w = net.probe_points()[1].weight.as_ref().unwrap();
        let bound = 1.0 / 16f64.sqrt();
        let max = w.abs().max().double_value(&[]);
        assert!(
            max <= bound && max > 0.8 * bound,
            "max |w| {max} vs bound {bound}"
        );
    }

    #[test]
    fn depth_below_two_is_rejected_naming_the_field() {
        let vs = nn::VarStore::new(Device::Cpu);
        let err = Mlp::new(&vs.root(), config(1, Variant::Plain)).unwrap_err();
        assert!(err.to_string().starts_with("depths:"), "{err}");
    }

    /// PyTorch's `nn.init.orthogonal_` (Saxe et al. 2014): a weight viewed
    /// as rows × cols has orthonormal rows when rows ≤ cols (W·Wᵀ = g²·I)
    /// and orthonormal columns otherwise (Wᵀ·W = g²·I), times the gain; a
    /// conv weight is viewed as out × (in·k·k). Within 1e-5 (float32 QR).
    #[test]
    fn orthogonal_init_is_orthogonal_times_its_gain() {
        let gram_is = |w: &Tensor, gain: f64, what: &str| {
            let w = w.reshape([w.size()[0], -1]).to_kind(tch::Kind::Double);
            let (rows, cols) = (w.size()[0], w.size()[1]);
            let gram = if rows <= cols {
                w.matmul(&w.tr())
            } else {
                w.tr().matmul(&w)
            };
            let n = rows.min(cols);
            let eye = Tensor::eye(n, (tch::Kind::Double, Device::Cpu)) * (gain * gain);
            let err = (gram - eye).abs().max().double_value(&[]);
            assert!(
                err < 1e-5,
                "{what} ({rows}×{cols}): max |W·Wᵀ − g²·I| = {err}"
            );
        };
        for gain in [1.0, 2.0f64.sqrt()] {
            let vs = nn::VarStore::new(Device::Cpu);
            let cfg = MlpConfig {
                init: Init::Orthogonal { gain },
                norm: Norm::None,
                width: 16,
                ..config(4, Variant::Plain)
            };
            let net = Mlp::new(&vs.root(), cfg).unwrap();
            let points = net.probe_points();
            // Input layer (rectangular), hidden layers (square), head.
            for p in points {
                gram_is(p.weight.as_ref().unwrap(), gain, &p.name);
            }
            assert_eq!(points[1].weight.as_ref().unwrap().size(), [16, 16]);
            // Biases start at 0.
            for (name, v) in vs.variables() {
                if name.ends_with("bias") {
                    assert_eq!(v.abs().max().double_value(&[]), 0.0, "{name}");
                }
            }
        }
        // A conv weight, filled in place as PyTorch fills a 4-d tensor.
        let mut w = Tensor::zeros([8, 4, 3, 3], (tch::Kind::Float, Device::Cpu));
        Init::Orthogonal { gain: 2.0 }.fill(&mut w);
        assert_eq!(w.size(), [8, 4, 3, 3]);
        gram_is(&w, 2.0, "conv");
    }

    /// `{"variance": {"weight": σ_w², "bias": σ_b²}}`: W ~ N(0, σ_w²/fan_in),
    /// b ~ N(0, σ_b²) (Poole et al. 2016); the sample variances of a wide
    /// layer are within 5% of them.
    #[test]
    fn variance_init_draws_the_mean_field_variances() {
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = MlpConfig {
            init: Init::Variance {
                weight: 2.0,
                bias: 0.05,
            },
            norm: Norm::None,
            width: 512,
            ..config(3, Variant::Plain)
        };
        let _net = Mlp::new(&vs.root(), cfg).unwrap();
        let vars = vs.variables();
        let w = &vars["layer01.linear.weight"];
        let b = &vars["layer01.linear.bias"];
        let var = |t: &Tensor| t.to_kind(tch::Kind::Double).var(false).double_value(&[]);
        let want_w = 2.0 / 512.0;
        assert!(
            (var(w) / want_w - 1.0).abs() < 0.05,
            "{} vs {want_w}",
            var(w)
        );
        assert!((var(b) / 0.05 - 1.0).abs() < 0.25, "{}", var(b));
    }

    /// dL/dh at every probe point of `net` for one batch (autograd.grad
    /// over the recorded outputs), as float64 norms.
    fn grad_norms(net: &Mlp, input_dim: i64) -> Vec<f64> {
        tch::manual_seed(11);
        let x = Tensor::randn([16, input_dim], (Kind::Float, Device::Cpu));
        let y = Tensor::arange(16, (Kind::Int64, Device::Cpu)).remainder(3);
        let rec = Recording::new(net.probe_points().len());
        let loss = net
            .forward(&x, true, Some(&rec))
            .cross_entropy_for_logits(&y);
        let (outputs, _) = rec.finish();
        let outputs: Vec<Tensor> = outputs.into_iter().map(Option::unwrap).collect();
        Tensor::run_backward(&[&loss], &outputs, false, false)
            .iter()
            .map(|g| g.to_kind(Kind::Double).norm().double_value(&[]))
            .collect()
    }

    fn built(variant: Variant, init: Init, branch_init: BranchInit) -> (nn::VarStore, Mlp) {
        tch::manual_seed(5);
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = MlpConfig {
            init,
            norm: Norm::None,
            activation: Activation::Relu,
            branch_init,
            ..config(7, variant)
        };
        let net = Mlp::new(&vs.root(), cfg).unwrap();
        (vs, net)
    }

    /// Issue 31: at init a ReZero net (α = 0, Bachlechner et al. 2020), a
    /// residual net with `branch_init: "zero"` (SkipInit) and a Fixup net
    /// (Zhang et al. 2019, last layer of each branch 0) compute exactly
    /// their shortcut path, so dL/dh is the same at every trunk point,
    /// bit for bit, and the decay per layer is exactly 0. A residual net
    /// at its plain init is not (the test can fail).
    #[test]
    fn zero_branch_variants_start_as_their_shortcut() {
        let trunk = |net: &Mlp| -> Vec<f64> {
            let g = grad_norms(net, 8);
            net.probe_points()
                .iter()
                .zip(g)
                .filter(|(p, _)| p.trunk)
                .map(|(_, g)| g)
                .collect()
        };
        for (variant, init, branch) in [
            (Variant::Rezero, Init::Kaiming, BranchInit::Default),
            (Variant::Residual, Init::Kaiming, BranchInit::Zero),
            (Variant::Rezero, Init::Glorot, BranchInit::Zero),
            (Variant::Residual, Init::Fixup, BranchInit::Default),
        ] {
            let (_vs, net) = built(variant, init, branch);
            let g = trunk(&net);
            assert_eq!(g.len(), 5);
            assert!(g[0] > 0.0 || init == Init::Fixup, "{variant:?}: {g:?}");
            assert!(
                g.iter().all(|v| *v == g[0]),
                "{variant:?} {init:?} {branch:?}: {g:?}"
            );
            // The output is the head on the input layer's output alone.
            let x = Tensor::randn([4, 8], (Kind::Float, Device::Cpu));
            let h0 = net.layers[0].forward(&x);
            let shortcut = net.layers[6].forward(&net.unit_input(&h0, 5, false));
            assert!(net.forward(&x, false, None).equal(&shortcut), "{variant:?}");
        }
        let (_vs, net) = built(Variant::Residual, Init::Kaiming, BranchInit::Default);
        let g = trunk(&net);
        assert!(g.iter().any(|v| *v != g[0]), "{g:?}");
        // The plain twin keeps its init under branch_init zero.
        let (vs, _) = built(Variant::Plain, Init::Kaiming, BranchInit::Zero);
        let w = &vs.variables()["layer03.linear.weight"];
        assert!(w.abs().max().double_value(&[]) > 0.0);
    }

    /// Issue 31: a highway layer with gate bias b carries σ(−b) of its
    /// input at init for zero-mean gate inputs (Srivastava et al. 2015:
    /// T = σ(W_T·x + b_T), carry 1 − T): exactly at x = 0, and as the
    /// batch mean for small zero-mean inputs.
    #[test]
    fn highway_carries_sigmoid_of_minus_the_gate_bias() {
        for b in [-1.0, -3.0] {
            tch::manual_seed(2);
            let vs = nn::VarStore::new(Device::Cpu);
            let cfg = MlpConfig {
                gate_bias: b,
                ..config(5, Variant::Highway)
            };
            let net = Mlp::new(&vs.root(), cfg).unwrap();
            let want = 1.0 / (1.0 + b.exp()); // σ(−b)
            let zero = Tensor::zeros([1, 16], (Kind::Float, Device::Cpu));
            let at0 = net
                .carry(2, &zero)
                .unwrap()
                .mean(Kind::Double)
                .double_value(&[]);
            assert!((at0 - want).abs() < 1e-6, "b {b}: {at0} vs {want}");
            let x = Tensor::randn([4096, 16], (Kind::Float, Device::Cpu)) * 0.01;
            let mean = net
                .carry(1, &x)
                .unwrap()
                .mean(Kind::Double)
                .double_value(&[]);
            assert!((mean - want).abs() < 1e-3, "b {b}: {mean} vs {want}");
            assert!(net.carry(0, &x).is_none(), "the input layer has no gate");
        }
    }

    /// Parameter counts: rezero adds one α per hidden layer, highway a
    /// width×width gate with its bias per hidden layer, Fixup four scalars
    /// per branch; plain and residual are the same net.
    #[test]
    fn parameter_counts_of_the_variants() {
        let count = |variant, init| {
            let (vs, _) = built(variant, init, BranchInit::Default);
            vs.trainable_variables()
                .iter()
                .map(|t| t.numel() as i64)
                .sum::<i64>()
        };
        // depth 7: input 8→16, 5 hidden 16→16, head 16→3.
        let base = (8 * 16 + 16) + 5 * (16 * 16 + 16) + (16 * 3 + 3);
        assert_eq!(count(Variant::Plain, Init::Kaiming), base);
        assert_eq!(count(Variant::Residual, Init::Kaiming), base);
        assert_eq!(count(Variant::Rezero, Init::Kaiming), base + 5);
        assert_eq!(
            count(Variant::Highway, Init::Kaiming),
            base + 5 * (16 * 16 + 16)
        );
        assert_eq!(count(Variant::Residual, Init::Fixup), base + 5 * 4);
        assert_eq!(count(Variant::Plain, Init::Fixup), base);
    }
}
