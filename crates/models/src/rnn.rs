//! The recurrent family (issue 34): a tanh (Elman) RNN, an LSTM or a GRU,
//! unrolled over time with libtorch's own cell ops (`rnn_tanh_cell`,
//! `lstm_cell`, `gru_cell`), never the fused sequence kernels, which keep
//! h_t inside one call where the probe cannot see it.
//!
//! - **The plain twin is the tanh cell.** The LSTM's cell state and the
//!   GRU's update gate are additive paths through time, the recurrent form
//!   of a shortcut; `model.cell` takes the role `variants` plays in the
//!   feed-forward families, which is why this family builds only
//!   [`Variant::Plain`].
//! - **Depth is the sequence length.** The data are `[T, features]` per
//!   example; the network runs the T steps its data have, and
//!   [`Rnn::new`] refuses a depth that is not T (gradscope-train makes the
//!   sequence data at each run's depth).
//! - **Probe points**, input side (earliest step) first: the last layer's
//!   h_t at index t, named `t007.h`, all on the trunk, so `gradients.csv`'s
//!   `layer` is the time step and the decay per layer is the decay per
//!   time step. The LSTM's cell state c_t follows as `t007.c` at index
//!   T + t (off the trunk: one kind of point is fitted). The head is next,
//!   `head.linear`, off the trunk. Then the weight blocks and the gates
//!   (below), which have no output and are never on the trunk.
//! - **The head** reads the last hidden state (one output per example),
//!   or, for a sequence target ([`Rnn::with_sequence_head`]: the copy
//!   task's), each of the last k steps' with one linear map shared by
//!   them (`[batch, k, outputs]`).
//! - **Weights**: the time steps share them, so each matrix is written
//!   once. `t000.h` carries the last layer's recurrent weight W_hh whole
//!   (its gradient is the sum over every step, the one the vanishing
//!   product W_hhᵀ·diag(φ') acts on) and `head.linear` the head's. After
//!   the head, every matrix of every layer has a weight-only point
//!   ([`Reads::WeightRows`]), one per gate block, named by its var-store
//!   path and gate: `cell0.w_ih.i`, `cell0.w_ih.f`, …, `cell0.w_hh.o`,
//!   `cell1.w_ih.i`, … (layer, then W_ih before W_hh, then the gates in
//!   PyTorch's order); the tanh cell has one block per matrix, written
//!   `cell0.w_ih` and `cell0.w_hh`. Each writes only a `weight` row:
//!   ‖∇W_block‖ (the same rows of the parameter's gradient) and ‖W_block‖.
//!   The last layer's W_hh is thus written twice, whole on `t000.h` (kept
//!   where it was) and by block.
//! - **Gates**: last after the weight blocks, the last layer's gates at
//!   every time step as responses in `activations.csv` (no gradient row):
//!   the LSTM's forget, input and output gates, `t007.gate_f` at index
//!   G + t, `t007.gate_i` at G + T + t, `t007.gate_o` at G + 2T + t; the
//!   GRU's update and reset gates, `t007.gate_z` and `t007.gate_r` (G the
//!   first gate point). libtorch's cell ops keep the gates inside, so a
//!   recorded forward pass computes them again from the step's x_t and
//!   h_{t−1} with the same weights, without autograd; an unrecorded one
//!   does not ([`CellWeights::gates`]). Their `saturation` is the sigmoid's
//!   flat part (σ < 0.01 or > 0.99), as for any sigmoid response.
//! - PyTorch's layouts: gates stacked along W's rows, `i, f, g, o` for the
//!   LSTM and `r, z, n` for the GRU (the `torch.nn.LSTMCell` and
//!   `torch.nn.GRUCell` docs).

use crate::{
    mark, respond, Activation, Init, ModelError, Network, ProbePoint, Reads, Recording, Variant,
};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

/// The recurrent cell (`model.cell`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Cell {
    /// Elman's h' = tanh(W_ih x + b_ih + W_hh h + b_hh): the plain twin.
    Tanh,
    /// Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al.
    /// 2000: the cell state is the additive path through time.
    Lstm,
    /// Cho et al. 2014: h' = (1 − z)·n + z·h.
    Gru,
}

impl Cell {
    /// Gate blocks stacked in W_ih's and W_hh's rows.
    pub fn gates(self) -> i64 {
        match self {
            Cell::Tanh => 1,
            Cell::Lstm => 4,
            Cell::Gru => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Cell::Tanh => "tanh",
            Cell::Lstm => "lstm",
            Cell::Gru => "gru",
        }
    }

    /// The gate blocks' names, in W's row order (PyTorch's); empty for the
    /// tanh cell, whose one block is the whole matrix.
    pub fn gate_names(self) -> &'static [&'static str] {
        match self {
            Cell::Tanh => &[],
            Cell::Lstm => &["i", "f", "g", "o"],
            Cell::Gru => &["r", "z", "n"],
        }
    }

    /// The sigmoid gates the probe reads, as (name, block in W's rows):
    /// the LSTM's forget, input and output gates (g is the tanh candidate,
    /// not a gate) and the GRU's update and reset gates (n is the
    /// candidate). Each is σ(W_i·x + b_i + W_h·h + b_h) of its own block.
    pub fn read_gates(self) -> &'static [(&'static str, i64)] {
        match self {
            Cell::Tanh => &[],
            Cell::Lstm => &[("f", 1), ("i", 0), ("o", 3)],
            Cell::Gru => &[("z", 1), ("r", 0)],
        }
    }
}

/// Settings of one recurrent net.
#[derive(Debug, Clone)]
pub struct RnnConfig {
    /// Features per time step.
    pub input_size: i64,
    /// Time steps (the depth of a run).
    pub length: usize,
    /// Outputs of the head.
    pub outputs: i64,
    /// Hidden size.
    pub width: i64,
    /// Stacked layers (1 or more).
    pub layers: usize,
    pub cell: Cell,
    pub init: Init,
    /// Added to the LSTM's forget-gate bias (in b_ih; b_hh's forget block
    /// starts at 0), so the total forget bias starts at this value.
    pub forget_bias: f64,
}

/// One layer's weights, in PyTorch's layout.
#[derive(Debug)]
pub struct CellWeights {
    pub w_ih: Tensor,
    pub w_hh: Tensor,
    pub b_ih: Tensor,
    pub b_hh: Tensor,
}

impl CellWeights {
    fn new(p: &nn::Path, cell: Cell, input: i64, hidden: i64, c: &RnnConfig) -> CellWeights {
        let rows = cell.gates() * hidden;
        // PyTorch's nn.RNN/LSTM/GRU default: every weight and bias
        // U(±1/√hidden). Other inits: each gate block of W_ih and W_hh as
        // a layer of its own (an orthogonal W_hh is orthogonal per gate),
        // biases 0.
        let bound = 1.0 / (hidden as f64).sqrt();
        let uniform = nn::Init::Uniform {
            lo: -bound,
            up: bound,
        };
        let (w_init, b_init) = match c.init {
            Init::PytorchDefault => (uniform, uniform),
            _ => (nn::Init::Const(0.0), nn::Init::Const(0.0)),
        };
        let mut w_ih = p.var("w_ih", &[rows, input], w_init);
        let mut w_hh = p.var("w_hh", &[rows, hidden], w_init);
        let b_ih = p.var("b_ih", &[rows], b_init);
        let b_hh = p.var("b_hh", &[rows], b_init);
        tch::no_grad(|| {
            if c.init != Init::PytorchDefault {
                for g in 0..cell.gates() {
                    for (w, fan_in) in [(&mut w_ih, input), (&mut w_hh, hidden)] {
                        let mut block = w.narrow(0, g * hidden, hidden);
                        let (init, _) = c.init.weight_and_bias(fan_in, hidden);
                        block.init(init);
                    }
                }
            }
            if cell == Cell::Lstm {
                // Gates i, f, g, o: the forget block is the second.
                let _ = b_ih.narrow(0, hidden, hidden).fill_(c.forget_bias);
                let _ = b_hh.narrow(0, hidden, hidden).zero_();
            }
        });
        CellWeights {
            w_ih,
            w_hh,
            b_ih,
            b_hh,
        }
    }

    /// The gates of [`Cell::read_gates`] at one step with input `x` and
    /// previous hidden state `h`, each `[batch, hidden]`, by the formulas of
    /// `torch.nn.LSTMCell` and `torch.nn.GRUCell` with this layer's
    /// weights: libtorch's cell ops compute them inside and return only h
    /// (and c). Without autograd: a reading, not a part of the graph. Two
    /// matrix products for all the blocks (the GRU's n block among them,
    /// whose sum is not its pre-activation and is not read).
    pub fn gates(&self, cell: Cell, x: &Tensor, h: &Tensor) -> Vec<Tensor> {
        let hidden = self.w_hh.size()[1];
        tch::no_grad(|| {
            let pre =
                x.matmul(&self.w_ih.tr()) + &self.b_ih + h.matmul(&self.w_hh.tr()) + &self.b_hh;
            cell.read_gates()
                .iter()
                .map(|&(_, block)| pre.narrow(1, block * hidden, hidden).sigmoid())
                .collect()
        })
    }

    /// One step of `cell`: the new (h, c); c is `None` but for the LSTM.
    pub fn step(
        &self,
        cell: Cell,
        x: &Tensor,
        h: &Tensor,
        c: Option<&Tensor>,
    ) -> (Tensor, Option<Tensor>) {
        let (b_ih, b_hh) = (Some(&self.b_ih), Some(&self.b_hh));
        match cell {
            Cell::Tanh => (x.rnn_tanh_cell(h, &self.w_ih, &self.w_hh, b_ih, b_hh), None),
            Cell::Gru => (x.gru_cell(h, &self.w_ih, &self.w_hh, b_ih, b_hh), None),
            Cell::Lstm => {
                let c = c.expect("an LSTM step needs its cell state");
                let (h, c) = x.lstm_cell(&[h, c], &self.w_ih, &self.w_hh, b_ih, b_hh);
                (h, Some(c))
            }
        }
    }
}

/// An unrolled recurrent net with a linear head on the last hidden state
/// (or on each of the last `k`).
#[derive(Debug)]
pub struct Rnn {
    config: RnnConfig,
    layers: Vec<CellWeights>,
    head: nn::Linear,
    points: Vec<ProbePoint>,
    /// `Some(k)`: the head reads each of the last k steps.
    head_steps: Option<usize>,
    /// The index of `head.linear` among the points, and of the first gate
    /// point (the module docs give the order).
    head_point: usize,
    first_gate: usize,
}

/// `t007.h`: the time step zero-padded to the length's digits (at least
/// 3), so names of one kind sort in time order.
pub fn step_name(t: usize, length: usize, kind: &str) -> String {
    let digits = length.saturating_sub(1).to_string().len().max(3);
    format!("t{t:0digits$}.{kind}")
}

impl Rnn {
    pub fn new(p: &nn::Path, config: RnnConfig) -> Result<Rnn, ModelError> {
        let invalid = |field: &str, message: String| ModelError::Invalid {
            field: field.into(),
            message,
        };
        if config.length == 0 {
            return Err(invalid(
                "depths",
                "a sequence length of 0: give 1 or more".into(),
            ));
        }
        if config.layers == 0 {
            return Err(invalid("model.layers", "0: give 1 or more".into()));
        }
        if config.width < 1 {
            return Err(invalid(
                "model.width",
                format!("{} must be 1 or more", config.width),
            ));
        }
        let mut layers = Vec::with_capacity(config.layers);
        for l in 0..config.layers {
            let input = if l == 0 {
                config.input_size
            } else {
                config.width
            };
            let path = p / format!("cell{l}");
            layers.push(CellWeights::new(
                &path,
                config.cell,
                input,
                config.width,
                &config,
            ));
        }
        let (head_w, head_b) = match config.init {
            Init::PytorchDefault => {
                let b = 1.0 / (config.width as f64).sqrt();
                let u = nn::Init::Uniform { lo: -b, up: b };
                (u, u)
            }
            other => other.weight_and_bias(config.width, config.outputs),
        };
        let head = nn::linear(
            p / "head",
            config.width,
            config.outputs,
            nn::LinearConfig {
                ws_init: head_w,
                bs_init: Some(head_b),
                bias: true,
            },
        );
        let mut points = step_points(&config, &layers[config.layers - 1]);
        let head_point = points.len();
        points.push(ProbePoint {
            name: "head.linear".into(),
            weight: Some(head.ws.shallow_clone()),
            output_shape: vec![config.outputs],
            trunk: false,
            reads: Reads::Output,
        });
        for (l, weights) in layers.iter().enumerate() {
            points.extend(block_points(l, config.cell, weights));
        }
        let first_gate = points.len();
        points.extend(gate_points(&config));
        Ok(Rnn {
            config,
            layers,
            head,
            points,
            head_steps: None,
            head_point,
            first_gate,
        })
    }

    /// The head on each of the last `k` steps' h_t (one weight shared by
    /// the steps, as a per-step softmax layer is), for a target of `k`
    /// steps: the output is `[batch, k, outputs]`. A field of its own, not
    /// of [`RnnConfig`], so that every config written so far still builds.
    pub fn with_sequence_head(mut self, k: usize) -> Result<Rnn, ModelError> {
        if k == 0 || k > self.config.length {
            return Err(ModelError::Invalid {
                field: "depths".into(),
                message: format!(
                    "a sequence length of {} cannot output at its last {k} steps",
                    self.config.length
                ),
            });
        }
        self.head_steps = Some(k);
        let head = self.points.last_mut().expect("the head's probe point");
        head.output_shape = vec![k as i64, self.config.outputs];
        Ok(self)
    }

    pub fn config(&self) -> &RnnConfig {
        &self.config
    }

    /// Each layer's weights, input side first.
    pub fn cells(&self) -> &[CellWeights] {
        &self.layers
    }

    /// The index of gate `k` (in [`Cell::read_gates`] order) at step `t`
    /// among the probe points.
    pub fn gate_point(&self, k: usize, t: usize) -> usize {
        self.first_gate + k * self.config.length + t
    }

    /// Records the last layer's gates at step `t` (input `x`, previous
    /// hidden state `h`) as the responses of their points, when recording;
    /// without a recording (a step that is not probed) it computes nothing,
    /// so training costs what it did.
    fn read_gates(
        &self,
        rec: Option<&Recording>,
        w: &CellWeights,
        x: &Tensor,
        h: &Tensor,
        t: usize,
    ) {
        if rec.is_none() || self.config.cell.read_gates().is_empty() {
            return;
        }
        for (k, gate) in w.gates(self.config.cell, x, h).iter().enumerate() {
            respond(rec, self.gate_point(k, t), gate);
        }
    }
}

impl Network for Rnn {
    /// `x` is `[batch, T, features]`; the output is the head on the last
    /// layer's h_T (`[batch, outputs]`), or on each of its last k h_t
    /// (`[batch, k, outputs]`). Each layer starts from h_0 = c_0 = 0.
    fn forward(&self, x: &Tensor, _train: bool, rec: Option<&Recording>) -> Tensor {
        let c = &self.config;
        let (batch, t_len) = (x.size()[0], c.length);
        let zeros = || Tensor::zeros([batch, c.width], (x.kind(), x.device()));
        let mut inputs: Vec<Tensor> = (0..t_len as i64).map(|t| x.select(1, t)).collect();
        for (l, weights) in self.layers.iter().enumerate() {
            let top = l + 1 == self.layers.len();
            let (mut h, mut cs) = (zeros(), (c.cell == Cell::Lstm).then(zeros));
            let mut outputs = Vec::with_capacity(t_len);
            for (t, x_t) in inputs.iter().enumerate() {
                if top {
                    self.read_gates(rec, weights, x_t, &h, t);
                }
                let (h_new, c_new) = weights.step(c.cell, x_t, &h, cs.as_ref());
                h = h_new;
                cs = c_new;
                if top {
                    h = mark(h, rec, t);
                    respond(rec, t, &h);
                    if let Some(c_t) = cs.take() {
                        cs = Some(mark(c_t, rec, t_len + t));
                    }
                }
                outputs.push(h.shallow_clone());
            }
            inputs = outputs;
        }
        let read = match self.head_steps {
            None => inputs
                .last()
                .expect("a sequence of 1 step or more")
                .shallow_clone(),
            Some(k) => Tensor::stack(&inputs[t_len - k..], 1),
        };
        mark(read.apply(&self.head), rec, self.head_point)
    }

    fn probe_points(&self) -> &[ProbePoint] {
        &self.points
    }

    /// Each layer's cell runs T times: gates × width × (inputs + width)
    /// multiplications each, one cell call; the head runs once.
    fn unrolled_cost(&self) -> Option<(i64, usize)> {
        let c = &self.config;
        let t = c.length as i64;
        let per_step: i64 = self
            .layers
            .iter()
            .map(|w| w.w_ih.numel() as i64 + w.w_hh.numel() as i64)
            .sum();
        // A sequence head runs once per step it reads.
        let reads = self.head_steps.unwrap_or(1);
        let head = c.width * c.outputs * reads as i64;
        Some((t * per_step + head, c.length * c.layers + reads))
    }

    /// Tanh for every cell: the hidden state passes through tanh. The
    /// gates are sigmoids, and their points say so ([`Reads::Responses`]).
    fn activation(&self) -> Activation {
        Activation::Tanh
    }
}

/// The points of the time steps: h_t on the trunk, carrying the last
/// layer's W_hh at t = 0, then the LSTM's c_t.
fn step_points(config: &RnnConfig, last: &CellWeights) -> Vec<ProbePoint> {
    let (t_len, w) = (config.length, config.width);
    let mut points: Vec<ProbePoint> = (0..t_len)
        .map(|t| ProbePoint {
            name: step_name(t, t_len, "h"),
            weight: (t == 0).then(|| last.w_hh.shallow_clone()),
            output_shape: vec![w],
            trunk: true,
            reads: Reads::Output,
        })
        .collect();
    if config.cell == Cell::Lstm {
        points.extend((0..t_len).map(|t| ProbePoint {
            name: step_name(t, t_len, "c"),
            weight: None,
            output_shape: vec![w],
            trunk: false,
            reads: Reads::Output,
        }));
    }
    points
}

/// Layer `l`'s weight-only points: each gate block of W_ih, then of W_hh
/// (`cell0.w_hh.f`), or each matrix whole for the tanh cell (`cell0.w_hh`).
fn block_points(l: usize, cell: Cell, weights: &CellWeights) -> Vec<ProbePoint> {
    let hidden = weights.w_hh.size()[1];
    let mut points = Vec::new();
    for (matrix, w) in [("w_ih", &weights.w_ih), ("w_hh", &weights.w_hh)] {
        let blocks: Vec<(String, i64)> = match cell.gate_names() {
            [] => vec![(format!("cell{l}.{matrix}"), 0)],
            gates => (0..)
                .zip(gates)
                .map(|(g, name)| (format!("cell{l}.{matrix}.{name}"), g * hidden))
                .collect(),
        };
        let rows = w.size()[0] / blocks.len() as i64;
        points.extend(blocks.into_iter().map(|(name, first_row)| ProbePoint {
            name,
            weight: Some(w.narrow(0, first_row, rows)),
            output_shape: Vec::new(),
            trunk: false,
            reads: Reads::WeightRows {
                parameter: w.shallow_clone(),
                first_row,
            },
        }));
    }
    points
}

/// The gate points of the last layer: every time step of one gate, then
/// of the next, in [`Cell::read_gates`] order (`t007.gate_f`). Responses
/// only, measured as sigmoids: a gate is saturated where σ < 0.01 or
/// σ > 0.99, the flat part [`Activation::saturated`] gives any sigmoid
/// response.
fn gate_points(config: &RnnConfig) -> Vec<ProbePoint> {
    let t_len = config.length;
    config
        .cell
        .read_gates()
        .iter()
        .flat_map(|(gate, _)| {
            (0..t_len).map(move |t| ProbePoint {
                name: step_name(t, t_len, &format!("gate_{gate}")),
                weight: None,
                output_shape: vec![config.width],
                trunk: false,
                reads: Reads::Responses(Activation::Sigmoid),
            })
        })
        .collect()
}

/// Refuses every variant but plain: the cell is this family's twin axis.
pub fn check_variant(variant: Variant) -> Result<(), String> {
    if variant == Variant::Plain {
        return Ok(());
    }
    Err(format!(
        "{:?}: the rnn family builds only \"plain\"; its shortcut twins are model.cell \"lstm\" and \"gru\"",
        variant.as_str()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn config(cell: Cell, init: Init) -> RnnConfig {
        RnnConfig {
            input_size: 3,
            length: 6,
            outputs: 1,
            width: 5,
            layers: 1,
            cell,
            init,
            forget_bias: 1.0,
        }
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).abs().max().double_value(&[])
    }

    /// One step by hand, in the formulas of PyTorch's `nn.RNNCell`,
    /// `nn.LSTMCell` (gates i, f, g, o) and `nn.GRUCell` (r, z, n) docs.
    fn hand_step(
        w: &CellWeights,
        cell: Cell,
        x: &Tensor,
        h: &Tensor,
        c: &Tensor,
    ) -> (Tensor, Tensor) {
        let gi = x.matmul(&w.w_ih.tr()) + &w.b_ih;
        let gh = h.matmul(&w.w_hh.tr()) + &w.b_hh;
        match cell {
            Cell::Tanh => ((gi + gh).tanh(), c.shallow_clone()),
            Cell::Lstm => {
                let g = (gi + gh).chunk(4, 1);
                let (i, f, gg, o) = (g[0].sigmoid(), g[1].sigmoid(), g[2].tanh(), g[3].sigmoid());
                let c2 = f * c + i * gg;
                (o * c2.tanh(), c2)
            }
            Cell::Gru => {
                let (a, b) = (gi.chunk(3, 1), gh.chunk(3, 1));
                let r = (&a[0] + &b[0]).sigmoid();
                let z = (&a[1] + &b[1]).sigmoid();
                let n = (&a[2] + r * &b[2]).tanh();
                let h2 = (1.0 - &z) * n + z * h;
                (h2, c.shallow_clone())
            }
        }
    }

    /// Issue 34: libtorch's cell ops, unrolled, equal the hand-written
    /// cells of PyTorch's documentation at every step.
    #[test]
    fn unrolled_cells_equal_hand_written_ones() {
        tch::manual_seed(0);
        for cell in [Cell::Tanh, Cell::Lstm, Cell::Gru] {
            let vs = nn::VarStore::new(Device::Cpu);
            let net = Rnn::new(&vs.root(), config(cell, Init::PytorchDefault)).unwrap();
            let w = &net.cells()[0];
            let x = Tensor::randn([4, 6, 3], (Kind::Float, Device::Cpu));
            let zeros = Tensor::zeros([4, 5], (Kind::Float, Device::Cpu));
            let (mut h, mut c) = (zeros.shallow_clone(), zeros.shallow_clone());
            let (mut h2, mut c2) = (zeros.shallow_clone(), zeros.shallow_clone());
            for t in 0..6 {
                let x_t = x.select(1, t);
                let (a, b) = w.step(cell, &x_t, &h, Some(&c));
                (h, c) = (a, b.unwrap_or_else(|| zeros.shallow_clone()));
                (h2, c2) = hand_step(w, cell, &x_t, &h2, &c2);
                assert!(max_diff(&h, &h2) < 1e-6, "{cell:?} h at step {t}");
                assert!(max_diff(&c, &c2) < 1e-6, "{cell:?} c at step {t}");
            }
        }
    }

    /// Issue 34 §3: the gates a recorded pass reads are σ of the gate
    /// pre-activations of the `nn.LSTMCell` docs (i = σ(W_ii x + b_ii +
    /// W_hi h + b_hi), f, o likewise from their blocks) and of the
    /// `nn.GRUCell` docs (r, z), computed here by hand from x_t and the
    /// recorded h_{t−1} (h_{−1} = 0) at every step.
    #[test]
    fn gate_readings_are_the_documented_gates() {
        tch::manual_seed(4);
        for (cell, names) in [
            (Cell::Lstm, ["f", "i", "o"].as_slice()),
            (Cell::Gru, &["z", "r"]),
        ] {
            let vs = nn::VarStore::new(Device::Cpu);
            let net = Rnn::new(&vs.root(), config(cell, Init::PytorchDefault)).unwrap();
            let w = &net.cells()[0];
            let x = Tensor::randn([4, 6, 3], (Kind::Float, Device::Cpu));
            let rec = Recording::new(net.probe_points().len());
            let _ = net.forward(&x, true, Some(&rec));
            let (outputs, responses) = rec.finish();
            let gates = cell.gates();
            for t in 0..6 {
                let h = match t {
                    0 => Tensor::zeros([4, 5], (Kind::Float, Device::Cpu)),
                    _ => outputs[t - 1].as_ref().unwrap().detach(),
                };
                let gi = (x.select(1, t as i64).matmul(&w.w_ih.tr()) + &w.b_ih).chunk(gates, 1);
                let gh = (h.matmul(&w.w_hh.tr()) + &w.b_hh).chunk(gates, 1);
                let block = |name: &str| cell.gate_names().iter().position(|g| *g == name).unwrap();
                for (k, name) in names.iter().enumerate() {
                    let b = block(name);
                    let want = (&gi[b] + &gh[b]).sigmoid();
                    let point = net.gate_point(k, t);
                    assert_eq!(
                        net.probe_points()[point].name,
                        step_name(t, 6, &format!("gate_{name}"))
                    );
                    let got: Vec<&Tensor> = responses
                        .iter()
                        .filter(|(p, _)| *p == point)
                        .map(|(_, r)| r)
                        .collect();
                    assert_eq!(got.len(), 1, "{cell:?} {name} at {t}");
                    assert!(max_diff(got[0], &want) < 1e-6, "{cell:?} {name} at {t}");
                    assert!(!got[0].requires_grad(), "a reading, outside autograd");
                }
            }
            // h_t's own responses are as before: one per step, in front.
            let h_rows: Vec<usize> = responses
                .iter()
                .map(|(p, _)| *p)
                .filter(|p| *p < 6)
                .collect();
            assert_eq!(h_rows, (0..6).collect::<Vec<_>>());
        }
    }

    /// Each weight-only point is its gate block: the rows of W_ih or W_hh
    /// that PyTorch's layout gives the gate, as a view of the parameter.
    #[test]
    fn weight_points_are_the_gate_blocks_of_every_layer() {
        for (cell, gates) in [(Cell::Tanh, 1), (Cell::Lstm, 4), (Cell::Gru, 3)] {
            let vs = nn::VarStore::new(Device::Cpu);
            let mut c = config(cell, Init::Glorot);
            c.layers = 2;
            let net = Rnn::new(&vs.root(), c).unwrap();
            let blocks: Vec<&ProbePoint> = net
                .probe_points()
                .iter()
                .filter(|p| matches!(p.reads, Reads::WeightRows { .. }))
                .collect();
            assert_eq!(blocks.len(), 2 * 2 * gates);
            for p in &blocks {
                let Reads::WeightRows {
                    parameter,
                    first_row,
                } = &p.reads
                else {
                    unreachable!()
                };
                let weight = p.weight.as_ref().unwrap();
                assert_eq!(weight.size()[0], 5, "{}", p.name);
                assert!(
                    weight.equal(&parameter.narrow(0, *first_row, 5)),
                    "{}",
                    p.name
                );
                let layer: usize = p.name[4..5].parse().unwrap();
                let matrix = if p.name.contains("w_ih") {
                    &net.cells()[layer].w_ih
                } else {
                    &net.cells()[layer].w_hh
                };
                assert_eq!(parameter.data_ptr(), matrix.data_ptr(), "{}", p.name);
                if let Some(gate) = p.name.split('.').nth(2) {
                    let g = cell.gate_names().iter().position(|n| *n == gate).unwrap();
                    assert_eq!(*first_row, 5 * g as i64, "{}", p.name);
                }
            }
            let names: Vec<&str> = blocks.iter().map(|p| p.name.as_str()).collect();
            match cell {
                Cell::Tanh => assert_eq!(
                    names,
                    ["cell0.w_ih", "cell0.w_hh", "cell1.w_ih", "cell1.w_hh"]
                ),
                Cell::Gru => {
                    assert_eq!(names[..3], ["cell0.w_ih.r", "cell0.w_ih.z", "cell0.w_ih.n"])
                }
                Cell::Lstm => assert_eq!(names[15], "cell1.w_hh.o"),
            }
        }
    }

    /// The LSTM's forget-gate bias starts at `forget_bias` (b_ih + b_hh's
    /// second gate block).
    #[test]
    fn lstm_forget_bias_is_set() {
        let vs = nn::VarStore::new(Device::Cpu);
        let mut c = config(Cell::Lstm, Init::Glorot);
        c.forget_bias = 2.5;
        let net = Rnn::new(&vs.root(), c).unwrap();
        let w = &net.cells()[0];
        let f = (&w.b_ih + &w.b_hh).narrow(0, 5, 5);
        assert!(max_diff(&f, &f.full_like(2.5)) == 0.0);
    }

    /// dL/dh_t that a recording gives (the tensor the probe reads) is the
    /// total gradient through the recurrence: for the tanh cell it obeys
    /// BPTT's dL/dh_t = W_hhᵀ (dL/dh_{t+1} ⊙ (1 − h_{t+1}²)) (Pascanu et
    /// al. 2013, eq. 3), checked here by hand from the recorded h_t.
    #[test]
    fn recorded_gradients_follow_backpropagation_through_time() {
        tch::manual_seed(1);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = Rnn::new(&vs.root(), config(Cell::Tanh, Init::PytorchDefault)).unwrap();
        let x = Tensor::randn([4, 6, 3], (Kind::Float, Device::Cpu));
        let rec = Recording::new(net.probe_points().len());
        let loss = net.forward(&x, true, Some(&rec)).square().sum(Kind::Float);
        let (outputs, _) = rec.finish();
        let hs: Vec<Tensor> = outputs[..6]
            .iter()
            .map(|o| o.as_ref().unwrap().shallow_clone())
            .collect();
        let grads = Tensor::run_backward(&[&loss], &hs, false, false);
        let w_hh = &net.cells()[0].w_hh;
        for t in 0..5 {
            let h_next = hs[t + 1].detach();
            let local: Tensor = 1.0 - h_next.square();
            let want = (&grads[t + 1] * local).matmul(w_hh);
            assert!(max_diff(&grads[t], &want) < 1e-6, "step {t}");
        }
        // The last step's gradient is the head's alone.
        let out = hs[5].detach().apply(&net.head);
        let want = (out * 2.0).matmul(&net.head.ws);
        assert!(max_diff(&grads[5], &want) < 1e-6);
    }

    /// A linear RNN, h_{t+1} = W h_t + U x_t, with orthogonal W passes the
    /// gradient back unchanged in norm: ‖dL/dh_t‖ = ‖(Wᵀ)^{T−t} dL/dh_T‖ is
    /// the same at every t, a decay of exactly 0 (Saxe et al. 2014;
    /// Arjovsky et al. 2016). Built by hand (libtorch has no identity
    /// cell) from the family's own orthogonal W_hh.
    #[test]
    fn linear_rnn_with_orthogonal_recurrence_keeps_the_gradient_norm() {
        tch::manual_seed(2);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = Rnn::new(
            &vs.root(),
            config(Cell::Tanh, Init::Orthogonal { gain: 1.0 }),
        )
        .unwrap();
        let w = &net.cells()[0];
        let eye = w.w_hh.matmul(&w.w_hh.tr());
        assert!(max_diff(&eye, &Tensor::eye(5, (Kind::Float, Device::Cpu))) < 1e-5);
        let x = Tensor::randn([4, 20, 3], (Kind::Float, Device::Cpu));
        let mut h = Tensor::zeros([4, 5], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let mut hs = Vec::new();
        for t in 0..20 {
            h = h.matmul(&w.w_hh.tr()) + x.select(1, t).matmul(&w.w_ih.tr());
            hs.push(h.shallow_clone());
        }
        let loss = h.sum(Kind::Float);
        let grads = Tensor::run_backward(&[&loss], &hs, false, false);
        let norms: Vec<f64> = grads.iter().map(|g| g.norm().double_value(&[])).collect();
        for (t, n) in norms.iter().enumerate() {
            assert!((n / norms[19] - 1.0).abs() < 1e-5, "step {t}: {norms:?}");
        }
    }

    /// The sequence head is the last-state head applied at each of the
    /// last k steps: its step k − 1 is the plain head's output, and step
    /// j reads h at T − k + j (checked against a net whose length ends
    /// there, same seed, same weights).
    #[test]
    fn a_sequence_head_reads_each_of_the_last_k_steps() {
        let build = |length: usize, k: Option<usize>| {
            tch::manual_seed(3);
            let vs = nn::VarStore::new(Device::Cpu);
            let mut c = config(Cell::Gru, Init::PytorchDefault);
            (c.length, c.outputs) = (length, 4);
            let net = Rnn::new(&vs.root(), c).unwrap();
            let net = match k {
                Some(k) => net.with_sequence_head(k).unwrap(),
                None => net,
            };
            (vs, net)
        };
        let x = Tensor::randn([2, 6, 3], (Kind::Float, Device::Cpu));
        let (_vs, seq) = build(6, Some(3));
        let out = seq.forward(&x, false, None);
        assert_eq!(out.size(), [2, 3, 4]);
        assert_eq!(seq.probe_points().last().unwrap().output_shape, [3, 4]);
        for (j, length) in [(0, 4), (1, 5), (2, 6)] {
            let (_vs, short) = build(length, None);
            let want = short.forward(&x.narrow(1, 0, length as i64), false, None);
            assert!(max_diff(&out.select(1, j), &want) < 1e-6, "step {j}");
        }
        let (_vs, net) = build(6, None);
        let e = net.with_sequence_head(7).unwrap_err();
        assert!(e.to_string().starts_with("depths: "), "{e}");
    }

    #[test]
    fn probe_points_are_time_steps_then_cell_states_then_the_head() {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = Rnn::new(&vs.root(), config(Cell::Lstm, Init::PytorchDefault)).unwrap();
        let names: Vec<&str> = net.probe_points().iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names[..2], ["t000.h", "t001.h"]);
        assert_eq!(names[6], "t000.c");
        assert_eq!(names[12], "head.linear");
        let trunk = net.probe_points().iter().filter(|p| p.trunk).count();
        assert_eq!(trunk, 6);
        let outputs = |p: &&ProbePoint| p.reads.output();
        let weights = net
            .probe_points()
            .iter()
            .filter(outputs)
            .filter(|p| p.weight.is_some())
            .count();
        assert_eq!(weights, 2, "W_hh on t000.h, and the head");
        // Then every gate block of W_ih and W_hh, then the gates.
        assert_eq!(
            names[13..21],
            [
                "cell0.w_ih.i",
                "cell0.w_ih.f",
                "cell0.w_ih.g",
                "cell0.w_ih.o",
                "cell0.w_hh.i",
                "cell0.w_hh.f",
                "cell0.w_hh.g",
                "cell0.w_hh.o"
            ]
        );
        assert_eq!(names[21], "t000.gate_f");
        assert_eq!(names[27], "t000.gate_i");
        assert_eq!(names[38], "t005.gate_o");
        assert_eq!(names.len(), 39);
        assert_eq!(net.gate_point(2, 5), 38);
        assert!(net.probe_points()[13..].iter().all(|p| !p.trunk));
        assert_eq!(net.probe_points().iter().filter(outputs).count(), 13);
        let e = Rnn::new(
            &vs.root(),
            RnnConfig {
                length: 0,
                ..config(Cell::Gru, Init::Glorot)
            },
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with("depths: a sequence length of 0"),
            "{e}"
        );
    }
}
