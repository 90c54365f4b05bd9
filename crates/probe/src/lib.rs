//! gradscope-probe: per-layer gradient and activation statistics, and the
//! CSV files they stream into.
//!
//! Main types: [`Probe`] (a probe step's backward pass, which reads dL/dh
//! at every probe point through a gradient hook as libtorch produces it
//! ([`hook`]), and the reduction of everything the step measures to host
//! numbers), [`ProbeRecord`] (those numbers) and
//! [`writers::RunWriters`] (`metrics.csv`, `gradients.csv`,
//! `activations.csv`, flushed as written).
//!
//! Cost: a probe step must read every probed tensor at least once (`make
//! bench` times that floor). In host memory [`gradscope_kernels`] reads each tensor
//! exactly once for all its statistics. On CUDA, reading each norm with
//! `double_value` would sync with the device once per layer per statistic;
//! instead every norm and moment is computed on the device, stacked, and
//! copied to the host once per probe step.

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod hook;
mod read;
#[cfg(test)]
mod rnn_tests;
#[cfg(test)]
mod token_tests;
pub mod writers;

pub use read::{attention_entropy, forward_c, forward_q, rank_collapse, CORRELATION_PAIRS};
use read::{read_on_host, response_reading, Probed, Readings};

use gradscope_kernels as kernels;

use gradscope_models::{Activation, Network, ProbePoint, Reads, Recording};
use std::cell::RefCell;
use tch::Tensor;

/// Errors of the probe and its writers.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Csv {
        path: String,
        #[source]
        source: csv::Error,
    },
    #[error("probe: {0}")]
    Torch(#[from] tch::TchError),
    /// A network that did not record one of its probe points' outputs (a
    /// bug in the network's forward pass).
    #[error("probe point {0}: the forward pass did not record its output")]
    Unrecorded(String),
    /// A recorded tensor whose layout is not the one its reading needs (a
    /// bug in the network: see [`Reads::Tokens`] and [`Reads::Attention`]).
    #[error("probe: {0}")]
    Shape(String),
}

/// Norm, per-element rms and exact-zero fraction of one gradient tensor,
/// each accumulated in float64.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GradStats {
    pub l2: f64,
    /// `l2 / sqrt(numel)`.
    pub rms: f64,
    /// Fraction of elements that are exactly 0 in float32.
    pub zero_fraction: f64,
}

/// A weight's gradient statistics and the weight's own norm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WeightStats {
    pub grad: GradStats,
    /// ‖W‖ at the probe step (before the optimizer step).
    pub norm: f64,
}

impl WeightStats {
    /// ‖∇W‖ / ‖W‖ (NaN for a zero weight).
    pub fn relative(&self) -> f64 {
        if self.norm > 0.0 {
            self.grad.l2 / self.norm
        } else {
            f64::NAN
        }
    }
}

/// The numbers one probe step brings back, per probe point, input side first.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeRecord {
    /// The weight gradient of each point; `None` for a point without a
    /// weight (NaN statistics where libtorch left the gradient undefined).
    pub weight: Vec<Option<WeightStats>>,
    /// dL/dh at each probe point's output; `None` for a point without one
    /// (a weight block or a gate reading, see [`Reads`]).
    pub output: Vec<Option<GradStats>>,
    /// Statistics of each response, in forward order.
    pub responses: Vec<ResponseStats>,
    /// The forward signal at each probe point's output: q, the variance
    /// across the batch of each unit, averaged over units, in float64
    /// (NaN where the point was not recorded, or has no output). See
    /// [`forward_q`].
    pub forward: Vec<f64>,
    /// The correlation between inputs at each probe point's output
    /// ([`forward_c`]): NaN where the point was not recorded, has no
    /// output, or its output is not `[batch, features]`; empty where
    /// nothing was recorded.
    pub correlation: Vec<f64>,
    /// The rank-collapse residual of each [`Reads::Tokens`] point's output
    /// ([`rank_collapse`]), per probe point: `None` at every other point,
    /// NaN where it is undefined; empty where nothing was recorded.
    pub rank1: Vec<Option<f64>>,
    /// Each head's mean attention entropy at each [`Reads::Attention`]
    /// point that recorded its probabilities, in forward order.
    pub entropy: Vec<HeadEntropy>,
}

/// The attention entropy of every head at one [`Reads::Attention`] point
/// ([`attention_entropy`]).
#[derive(Debug, Clone, PartialEq)]
pub struct HeadEntropy {
    /// The probe point.
    pub point: usize,
    /// Per head, in nats: ln(keys) for uniform attention, 0 for one key.
    pub heads: Vec<f64>,
}

/// Mean, std and saturated fraction of one response.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResponseStats {
    /// The probe point the response follows.
    pub point: usize,
    pub mean: f64,
    /// Population standard deviation.
    pub std: f64,
    pub saturation: f64,
    /// Fraction of units (features, or channels of a feature map) in the
    /// flat part for every example of the probed batch: dead ReLUs.
    pub dead: f64,
}

impl ProbeRecord {
    /// True when every gradient norm is finite (a NaN or Inf means the run
    /// has diverged).
    pub fn all_finite(&self) -> bool {
        self.weight
            .iter()
            .flatten()
            .map(|w| w.grad.l2)
            .chain(self.output.iter().flatten().map(|o| o.l2))
            .all(|v| v.is_finite())
    }

    /// Per-element rms of dL/dh at the trunk points, input side first: the
    /// profile whose slope is the decay per layer.
    pub fn trunk_profile(&self, trunk: &[bool]) -> Vec<f64> {
        self.output
            .iter()
            .zip(trunk)
            .filter(|(_, t)| **t)
            .map(|(o, _)| o.map_or(f64::NAN, |o| o.rms))
            .collect()
    }
}

/// Probing for one network: which layers, and how big their outputs are.
#[derive(Debug)]
pub struct Probe {
    names: Vec<String>,
    /// Per probe point: its weight, if it has one.
    weights: Vec<Option<WeightSlot>>,
    output_shapes: Vec<Vec<i64>>,
    /// Per probe point: whether dL/dh is read at its output
    /// ([`Reads::output`]).
    outputs: Vec<bool>,
    trunk: Vec<bool>,
    /// The network's nonlinearity, and per probe point the one its
    /// responses are measured against (the network's but where the point
    /// says otherwise, [`Reads::Responses`]).
    activation: Activation,
    activations: Vec<Activation>,
    /// Per probe point: whether it is a block output of tokens, whose
    /// rank-collapse residual is read ([`Reads::Tokens`]).
    tokens: Vec<bool>,
    /// Per probe point: its heads, where its response is an attention's
    /// probabilities ([`Reads::Attention`]).
    heads: Vec<Option<i64>>,
    /// Responses read during the forward pass (see [`Probe::recording`]),
    /// until [`Probe::collect`] takes them.
    read_early: RefCell<Vec<ResponseStats>>,
}

/// A probe point's weight, as the probe finds it among the optimized
/// parameters.
#[derive(Debug, Clone, Copy)]
struct WeightSlot {
    /// Elements of the weight (of the block, for a block).
    numel: f64,
    /// The index of the weight's parameter among the optimized ones
    /// (`None`: not optimized).
    param: Option<usize>,
    /// For a block of rows of the parameter ([`Reads::WeightRows`]): its
    /// first row and row count. Its gradient is those rows of the
    /// parameter's, and what is [`Known`] of the whole parameter does not
    /// hold for it.
    rows: Option<(i64, i64)>,
}

impl WeightSlot {
    /// `point`'s weight among `params`, matched by storage and shape (the
    /// same tensor, or a shallow clone of it); a block by its parameter.
    fn of(point: &ProbePoint, params: &[&Tensor]) -> Option<WeightSlot> {
        let w = point.weight.as_ref()?;
        let param_of = |w: &Tensor| {
            params
                .iter()
                .position(|p| p.data_ptr() == w.data_ptr() && p.size() == w.size())
        };
        let (param, rows) = match &point.reads {
            Reads::WeightRows {
                parameter,
                first_row,
            } => {
                let rows = w.size().first().copied().unwrap_or(1);
                (param_of(parameter), Some((*first_row, rows)))
            }
            Reads::Output | Reads::Tokens | Reads::Responses(_) | Reads::Attention { .. } => {
                (param_of(w), None)
            }
        };
        Some(WeightSlot {
            numel: w.numel() as f64,
            param,
            rows,
        })
    }
}

/// The gradients one probe step's backward pass returns.
#[derive(Debug)]
pub struct Gradients {
    /// Of each optimized parameter, in the order they were given (undefined
    /// for one the loss does not reach).
    pub params: Vec<Tensor>,
    /// dL/dh at the output of each probe point that has one
    /// ([`Reads::output`]), in point order: for the feed-forward families,
    /// every point.
    pub outputs: Vec<OutputGrad>,
    /// The forward reading q of each probe point's output ([`forward_q`]),
    /// taken from the recorded outputs before the backward pass frees
    /// what autograd does not keep; NaN for a point without an output.
    pub forward: Vec<f64>,
    /// The correlation c of each probe point's output ([`forward_c`]),
    /// read with `forward`; NaN where it is not read.
    pub correlation: Vec<f64>,
    /// The rank-collapse residual of each [`Reads::Tokens`] point's output
    /// ([`rank_collapse`]), read from the recorded outputs at the same
    /// time as `forward`: `None` at every other point, NaN where it is
    /// undefined; empty when nothing was recorded.
    pub rank1: Vec<Option<f64>>,
}

/// dL/dh at one probe point, as the backward pass left it.
#[derive(Debug)]
pub enum OutputGrad {
    /// Read as libtorch produced it ([`gradscope_kernels`], host memory): the
    /// gradient itself is gone.
    Read {
        sums: kernels::GradSums,
        numel: usize,
    },
    /// Kept for [`Probe::collect`]: on another device (CUDA), or asked for
    /// with [`Probe::backward_keeping`]. NaN where the loss does not
    /// depend on the point.
    Kept(Tensor),
}

impl OutputGrad {
    /// The kept tensor (`None` for one read during the backward pass).
    pub fn kept(&self) -> Option<&Tensor> {
        match self {
            OutputGrad::Kept(t) => Some(t),
            OutputGrad::Read { .. } => None,
        }
    }
}

/// What a probe step knows without reading it, per optimized parameter
/// (indexed as the parameters given to [`Probe::new`]; `None`, or past the
/// end, for one not known). See [`Probe::collect_knowing`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Known<'a> {
    /// ‖p‖ in float64.
    pub norms: &'a [Option<f64>],
    /// Σg² and the non-zero count of the parameter's gradient.
    pub grads: &'a [Option<kernels::GradSums>],
}

/// Responses this large (1 MiB of float32) are read during the forward
/// pass. What reading early saves is memory: a kept response that autograd
/// does not save for backward (a BN output) would live through backward
/// only for the probe, 120 MB at CNN-56's probe-step peak. Small ones cost
/// little memory kept, and read together with everything else after
/// backward they cost less time: one read per forward-pass call cost an
/// MLP's probe step 0.35 ms in all, the same reads in `collect` 0.22 ms.
pub const READ_EARLY_FROM: usize = 1 << 18;

impl Probe {
    /// Probing for `net`, whose optimizer steps `params` (the same tensors,
    /// or shallow clones of them, as the probe points' weights).
    pub fn new(net: &dyn Network, params: &[&Tensor]) -> Probe {
        let points = net.probe_points();
        let activation = net.activation();
        Probe {
            names: points.iter().map(|p| p.name.clone()).collect(),
            weights: points.iter().map(|p| WeightSlot::of(p, params)).collect(),
            output_shapes: points.iter().map(|p| p.output_shape.clone()).collect(),
            outputs: points.iter().map(|p| p.reads.output()).collect(),
            trunk: points.iter().map(|p| p.trunk).collect(),
            activation,
            activations: points
                .iter()
                .map(|p| match p.reads {
                    Reads::Responses(a) => a,
                    Reads::Output
                    | Reads::Tokens
                    | Reads::WeightRows { .. }
                    | Reads::Attention { .. } => activation,
                })
                .collect(),
            tokens: points
                .iter()
                .map(|p| matches!(p.reads, Reads::Tokens))
                .collect(),
            heads: points
                .iter()
                .map(|p| match p.reads {
                    Reads::Attention { heads } => Some(heads),
                    _ => None,
                })
                .collect(),
            read_early: RefCell::new(Vec::new()),
        }
    }

    /// The recording for one probe step's forward pass. Responses in host
    /// memory of [`READ_EARLY_FROM`] elements or more are read as the pass
    /// makes them ([`gradscope_kernels`], one read each) and not kept; smaller ones,
    /// and all of them elsewhere (CUDA), are kept and read in
    /// [`Probe::collect`].
    pub fn recording(&self) -> Recording<'_> {
        self.recording_from(READ_EARLY_FROM)
    }

    /// [`Probe::recording`], reading early the responses of `elements` or
    /// more.
    fn recording_from(&self, elements: usize) -> Recording<'_> {
        self.read_early.borrow_mut().clear();
        Recording::reading(self.len(), move |point, r| {
            // Attention probabilities are kept for their entropy, which
            // `collect` reads (autograd keeps them for backward anyway).
            let attention = self.heads.get(point).is_some_and(Option::is_some);
            if attention || !kernels::readable(r) || r.numel() < elements {
                return false;
            }
            let activation = self.activation_of(point);
            let (_, sums) = read_on_host(&[], std::slice::from_ref(r), activation);
            let [mean, std, saturation, dead] = response_reading(&sums[0]);
            self.read_early.borrow_mut().push(ResponseStats {
                point,
                mean,
                std,
                saturation,
                dead,
            });
            true
        })
    }

    /// Number of probe points.
    pub fn len(&self) -> usize {
        self.output_shapes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.output_shapes.is_empty()
    }

    /// The nonlinearity the responses of `point` are measured against.
    fn activation_of(&self, point: usize) -> Activation {
        self.activations
            .get(point)
            .copied()
            .unwrap_or(self.activation)
    }

    /// Which probe points are on the trunk (see `ProbePoint::trunk`).
    pub fn trunk(&self) -> &[bool] {
        &self.trunk
    }

    /// The backward pass of a training step, in place of
    /// `loss.backward()`: one pass that returns the gradient of every
    /// parameter in `params` and, given a probe step's recorded `outputs`
    /// (empty on other steps), dL/dh at every probe point. The parameters'
    /// `grad()` is left as it was: the optimizer takes the returned
    /// gradients.
    ///
    /// dL/dh is taken by a gradient hook on each output ([`hook`]) as the
    /// engine produces it, accumulated over every use of the output (what
    /// PyTorch's `torch.autograd.grad(loss, outputs)` returns). In host
    /// memory the hook reads it there and then ([`OutputGrad::Read`]), so
    /// it is freed as in a plain backward pass; elsewhere it is kept.
    /// Unlike `autograd.grad`, a hook sees only what the pass runs: an
    /// output that is a leaf, or from which no parameter is reached, reads
    /// NaN like one the loss does not depend on (no network records such
    /// an output: each is a layer's output above its weights).
    pub fn backward(
        &self,
        loss: &Tensor,
        params: &[&Tensor],
        outputs: Vec<Option<Tensor>>,
    ) -> Result<Gradients, ProbeError> {
        self.backward_with(loss, params, outputs, true)
    }

    /// [`Probe::backward`], keeping every dL/dh as a tensor
    /// ([`OutputGrad::Kept`]): what `make bench` times its floor on, and
    /// what tests compare with.
    pub fn backward_keeping(
        &self,
        loss: &Tensor,
        params: &[&Tensor],
        outputs: Vec<Option<Tensor>>,
    ) -> Result<Gradients, ProbeError> {
        self.backward_with(loss, params, outputs, false)
    }

    fn backward_with(
        &self,
        loss: &Tensor,
        params: &[&Tensor],
        outputs: Vec<Option<Tensor>>,
        read: bool,
    ) -> Result<Gradients, ProbeError> {
        // The outputs of the points that have one; the others record none.
        let outputs: Vec<Tensor> = outputs
            .into_iter()
            .zip(&self.names)
            .zip(&self.outputs)
            .filter(|(_, has)| **has)
            .map(|((o, name), _)| o.ok_or_else(|| ProbeError::Unrecorded(name.clone())))
            .collect::<Result<_, _>>()?;
        let forward = self.per_point(forward_q(&outputs)?);
        let correlation = self.per_point(forward_c(&outputs)?);
        // Before the backward pass, like q: it frees the block outputs
        // that autograd does not save.
        let rank1 = self.rank1_of(&outputs)?;
        let arrived: Vec<std::sync::Mutex<Option<OutputGrad>>> = outputs
            .iter()
            .map(|_| std::sync::Mutex::new(None))
            .collect();
        let on_grad = |point: usize, g: Tensor| {
            let grad = if read && kernels::readable(&g) {
                let (sums, _) = kernels::read(std::slice::from_ref(&g), &[], kernels::Flat::NONE);
                OutputGrad::Read {
                    sums: sums[0],
                    numel: g.numel(),
                }
            } else {
                OutputGrad::Kept(g)
            };
            if let Some(slot) = arrived.get(point) {
                *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(grad);
            }
        };
        let grads = hook::with_grad_hooks(&outputs, &on_grad, || {
            Tensor::f_run_backward(&[loss], params, false, false)
        })??;
        let outputs = arrived
            .into_iter()
            .zip(&outputs)
            .map(|(slot, h)| {
                slot.into_inner()
                    .unwrap_or_else(|e| e.into_inner())
                    // A point the loss does not depend on.
                    .unwrap_or_else(|| OutputGrad::Kept(h.detach().full_like(f64::NAN)))
            })
            .collect();
        Ok(Gradients {
            params: grads,
            outputs,
            forward,
            correlation,
            rank1,
        })
    }

    /// The rank-collapse residual ([`rank_collapse`]) of the outputs
    /// (`outputs`: those of the points that have one, in point order) of
    /// the [`Reads::Tokens`] points, per probe point (`None` elsewhere);
    /// empty for an empty recording.
    fn rank1_of(&self, outputs: &[Tensor]) -> Result<Vec<Option<f64>>, ProbeError> {
        if outputs.is_empty() {
            return Ok(Vec::new());
        }
        // Each point with an output, as its index and its output.
        let with_output = (0..self.len()).filter(|&i| self.outputs[i]).zip(outputs);
        let mut points = Vec::new();
        let mut tokens = Vec::new();
        for (i, h) in with_output.filter(|(i, _)| self.tokens[*i]) {
            self.expect_dims(i, h, 3, "[batch, tokens, width]")?;
            points.push(i);
            tokens.push(h.shallow_clone());
        }
        let mut rank1 = vec![None; self.len()];
        for (i, r) in points.into_iter().zip(rank_collapse(&tokens)?) {
            rank1[i] = Some(r);
        }
        Ok(rank1)
    }

    /// An error naming probe point `point` unless `t` has `dims`
    /// dimensions (`layout` names them).
    fn expect_dims(
        &self,
        point: usize,
        t: &Tensor,
        dims: usize,
        layout: &str,
    ) -> Result<(), ProbeError> {
        if t.dim() == dims {
            return Ok(());
        }
        let name = self.names.get(point).map_or("?", String::as_str);
        Err(ProbeError::Shape(format!(
            "probe point {name} recorded {:?}, not {layout}",
            t.size()
        )))
    }

    /// The attention entropy ([`attention_entropy`]) of each response that
    /// is an attention's probabilities, checked against the point's heads.
    fn entropy_of(&self, probs: &[(usize, Tensor)]) -> Result<Vec<HeadEntropy>, ProbeError> {
        for (point, p) in probs {
            self.expect_dims(*point, p, 4, "[batch, heads, queries, keys]")?;
            let heads = self.heads.get(*point).copied().flatten();
            if heads != Some(p.size()[1]) {
                return Err(ProbeError::Shape(format!(
                    "probe point {} recorded {:?}, whose heads are not its {heads:?}",
                    self.names[*point],
                    p.size()
                )));
            }
        }
        let tensors: Vec<Tensor> = probs.iter().map(|(_, p)| p.shallow_clone()).collect();
        Ok(probs
            .iter()
            .zip(attention_entropy(&tensors)?)
            .map(|((point, _), heads)| HeadEntropy {
                point: *point,
                heads,
            })
            .collect())
    }

    /// `q` of the points with an output, in point order, as one value per
    /// point, NaN for those without; empty stays empty (no recording).
    fn per_point(&self, q: Vec<f64>) -> Vec<f64> {
        if q.is_empty() {
            return q;
        }
        let mut q = q.into_iter();
        self.outputs
            .iter()
            .map(|&has| if has { q.next() } else { None }.unwrap_or(f64::NAN))
            .collect()
    }

    /// Reduces one probe step to host numbers: call after
    /// [`Probe::backward`] and before the optimizer step. `responses` are
    /// those the recording kept; those read during the forward pass are
    /// added in front.
    ///
    /// Every statistic is accumulated in float64 from the float32 tensors
    /// without a float64 copy of them, so a gradient of 1e-30 per element
    /// reads 1e-30: squaring it in float32 would give 0, and that blinded
    /// the probe exactly where gradients vanish. A statistic reads 0 only
    /// when the tensor is all zeros, and `zero_fraction` says how much of
    /// it is.
    ///
    /// In host memory every tensor is read once ([`gradscope_kernels`]); on another
    /// device (CUDA) libtorch's reductions compute the same numbers there,
    /// with one device→host copy per probe step.
    pub fn collect(
        &self,
        net: &dyn Network,
        grads: &Gradients,
        responses: &[(usize, Tensor)],
    ) -> Result<ProbeRecord, ProbeError> {
        self.collect_knowing(net, grads, responses, Known::default())
    }

    /// [`Probe::collect`], given what is `known` of some optimized
    /// parameters: a probe point whose weight's norm is known does not
    /// read the weight, and one whose gradient's sums are known does not
    /// read the gradient. The training loop passes the norms its
    /// optimizer's last step computed and the gradient sums this step's
    /// read, which saves a read of every weight and every weight gradient
    /// (on the MLPs, half of what a probe step reads).
    pub fn collect_knowing(
        &self,
        net: &dyn Network,
        grads: &Gradients,
        responses: &[(usize, Tensor)],
        known: Known,
    ) -> Result<ProbeRecord, ProbeError> {
        // Attention probabilities are read for their entropy alone, not
        // as responses of the network's nonlinearity.
        let (probs, responses): (Vec<_>, Vec<_>) = responses
            .iter()
            .map(|(point, r)| (*point, r.shallow_clone()))
            .partition(|(point, _)| self.heads.get(*point).is_some_and(Option::is_some));
        let responses = responses.as_slice();
        let entropy = self.entropy_of(&probs)?;
        let t = self.tensors(net, grads, responses, known);
        let readings = if t.all().all(kernels::readable) {
            Readings::onepass(&t, self.activation)
        } else {
            Readings::libtorch(&t, self.activation)?
        };
        let mut record = self.record(&readings, &t, grads, responses);
        record.entropy = entropy;
        let early = std::mem::take(&mut *self.read_early.borrow_mut());
        record.responses.extend(early);
        // In forward order, whichever were read early (a stable sort: a
        // point's responses keep their order).
        record.responses.sort_by_key(|r| r.point);
        Ok(record)
    }

    /// The tensors a probe step reads, detached, with NaN in place of a
    /// gradient libtorch left undefined.
    fn tensors(
        &self,
        net: &dyn Network,
        grads: &Gradients,
        responses: &[(usize, Tensor)],
        known: Known,
    ) -> Probed {
        let or_nan = |g: Option<&Tensor>, like: &Tensor| match g {
            Some(g) if g.defined() => g.detach(),
            _ => like.detach().full_like(f64::NAN),
        };
        let mut weight_grads = Vec::new();
        let mut weights = Vec::new();
        let mut known_norms = Vec::new();
        let mut known_grads = Vec::new();
        for (p, w) in net.probe_points().iter().zip(&self.weights) {
            if let (Some(weight), Some(WeightSlot { rows, param, .. })) = (&p.weight, w) {
                if let Some((first, n)) = rows {
                    // A block: those rows of the parameter's gradient, read
                    // with its own norm (the known sums are the whole's).
                    let g = param
                        .map(|i| &grads.params[i])
                        .filter(|g| g.defined())
                        .and_then(|g| g.f_narrow(0, *first, *n).ok());
                    weight_grads.push(or_nan(g.as_ref(), weight));
                    known_grads.push(None);
                    weights.push(weight.detach());
                    known_norms.push(None);
                    continue;
                }
                let grad = param.and_then(|i| known.grads.get(i).copied().flatten());
                if grad.is_none() {
                    weight_grads.push(or_nan(param.map(|i| &grads.params[i]), weight));
                }
                known_grads.push(grad);
                let norm = param.and_then(|i| known.norms.get(i).copied().flatten());
                if norm.is_none() {
                    weights.push(weight.detach());
                }
                known_norms.push(norm);
            }
        }
        let outputs = grads
            .outputs
            .iter()
            .filter_map(OutputGrad::kept)
            .map(Tensor::detach)
            .collect();
        Probed {
            weight_grads,
            weights,
            known_norms,
            known_grads,
            outputs,
            responses: responses.iter().map(|(_, r)| r.detach()).collect(),
            response_activations: responses
                .iter()
                .map(|(point, _)| self.activation_of(*point))
                .collect(),
        }
    }

    fn record(
        &self,
        r: &Readings,
        t: &Probed,
        grads: &Gradients,
        responses: &[(usize, Tensor)],
    ) -> ProbeRecord {
        let stats = |(l2, nonzero): (f64, f64), numel: f64| GradStats {
            l2,
            rms: l2 / numel.sqrt(),
            zero_fraction: 1.0 - nonzero / numel,
        };
        // A weight's norm and its gradient's sums are the ones given, or
        // else the next ones read.
        let mut read_norms = r.weights.iter();
        let mut read_grads = r.weight_grads.iter();
        let mut known = t.known_grads.iter().zip(&t.known_norms);
        let weight = self
            .weights
            .iter()
            .map(|w| {
                let numel = w.as_ref()?.numel;
                let (known_grad, known_norm) = known.next()?;
                let g = match known_grad {
                    Some(s) => (s.l2(), s.nonzero as f64),
                    None => *read_grads.next()?,
                };
                let norm = match known_norm {
                    Some(norm) => *norm,
                    None => *read_norms.next()?,
                };
                Some(WeightStats {
                    grad: stats(g, numel),
                    norm,
                })
            })
            .collect();
        // Read during the backward pass, or else the next one read now;
        // none for a point without an output.
        let mut read_outputs = r.outputs.iter();
        let mut arrived = grads.outputs.iter();
        let output = self
            .outputs
            .iter()
            .map(|&has| {
                if !has {
                    return None;
                }
                Some(match arrived.next()? {
                    OutputGrad::Read { sums, numel } => {
                        stats((sums.l2(), sums.nonzero as f64), *numel as f64)
                    }
                    OutputGrad::Kept(t) => {
                        let reading = read_outputs.next().copied();
                        stats(reading.unwrap_or((f64::NAN, f64::NAN)), t.numel() as f64)
                    }
                })
            })
            .collect();
        ProbeRecord {
            weight,
            output,
            responses: responses
                .iter()
                .zip(&r.responses)
                .map(|((point, _), s)| ResponseStats {
                    point: *point,
                    mean: s[0],
                    std: s[1],
                    saturation: s[2],
                    dead: s[3],
                })
                .collect(),
            forward: grads.forward.clone(),
            correlation: grads.correlation.clone(),
            rank1: grads.rank1.clone(),
            entropy: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::*;
    use gradscope_models::mlp::{Mlp, MlpConfig};
    use gradscope_models::{Init, Norm, Recording, Variant};
    use tch::nn;
    use tch::{Device, Kind};

    /// The forward reading q of a collapsed layer (issue 30: the
    /// quickstart's hidden layer 6 has a spread of 4e-6 around a mean near
    /// 0.3) read from the float32 tensor agrees with a float64 copy's
    /// variance to 1e-4 relative; a conv map's units are every channel and
    /// position; a batch of one has no spread (NaN).
    #[test]
    fn forward_q_reads_a_collapsed_layer_exactly() {
        tch::manual_seed(3);
        let opts = (Kind::Float, Device::Cpu);
        let collapsed = (Tensor::randn([128, 64], opts) * 4e-6 + 0.3).to_kind(Kind::Float);
        let map = Tensor::randn([16, 3, 5, 5], opts) * 2.0;
        let one = Tensor::randn([1, 8], opts);
        let q = forward_q(&[collapsed.shallow_clone(), map.shallow_clone(), one]).unwrap();
        let reference = |h: &Tensor| {
            let h = h.to_kind(Kind::Double);
            let centred = &h - h.mean_dim(0, true, Kind::Double);
            centred
                .square()
                .mean_dim(0, false, Kind::Double)
                .mean(Kind::Double)
                .double_value(&[])
        };
        let want = reference(&collapsed);
        assert!(want > 1e-12 && want < 1e-10, "{want}");
        assert!((q[0] - want).abs() <= 1e-4 * want, "{} vs {want}", q[0]);
        let want = reference(&map);
        assert!((q[1] - want).abs() <= 1e-6 * want, "{} vs {want}", q[1]);
        assert!(q[2].is_nan());
    }

    /// c by hand (Poole et al. 2016's q_ab/√(q_aa·q_bb), no centring):
    /// the pair (0, 1) is orthogonal (0), (2, 3) parallel (1), so the mean
    /// is ½; a pair with a zero vector is left out, and with no defined
    /// pair c is NaN, as it is for a feature map, a batch of one, and
    /// examples past the 32 pairs read (where the batch's last row's
    /// sign would otherwise flip the answer). A collapsed layer (every row
    /// the same vector plus 1e-6 noise) reads within 1e-9 of 1.
    #[test]
    fn forward_c_is_the_mean_correlation_of_fixed_pairs() {
        let opts = (Kind::Float, Device::Cpu);
        let t = |v: &[f32], rows: i64| Tensor::from_slice(v).reshape([rows, -1]);
        let half = t(&[1., 0., 0., 1., 2., 2., 1., 1.], 4);
        let zero = t(&[0., 0., 1., 1., 3., 0., -1., 0.], 4);
        let none = t(&[0., 0., 1., 1.], 2);
        let map = Tensor::ones([4, 2, 3, 3], opts);
        let one = Tensor::ones([1, 8], opts);
        let mut long = vec![1f32; 2 * 66];
        long[2 * 65] = -1.0; // row 65: beyond pair 31, never read
        let long = t(&long, 66);
        tch::manual_seed(5);
        let row = Tensor::randn([1, 64], opts);
        let collapsed = row.repeat([128, 1]) + Tensor::randn([128, 64], opts) * 1e-6;
        let c = forward_c(&[half, zero, none, map, one, long, collapsed]).unwrap();
        assert!((c[0] - 0.5).abs() < 1e-15, "{c:?}");
        assert!((c[1] + 1.0).abs() < 1e-15, "(3, 0)·(−1, 0): {c:?}");
        assert!(c[2].is_nan() && c[3].is_nan() && c[4].is_nan(), "{c:?}");
        assert_eq!(c[5], 1.0);
        assert!((c[6] - 1.0).abs() < 1e-9, "{c:?}");
        assert!(forward_c(&[]).unwrap().is_empty());
    }

    /// The captured dL/dh must be the gradient at the tensor itself:
    /// compare the logits' with the closed form for mean cross-entropy,
    /// (softmax − onehot) / batch. The weight gradients must be the ones
    /// `backward()` leaves in `grad()`, bit for bit (the same autograd
    /// engine, asked for them directly).
    #[test]
    fn captured_gradients_are_exact() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = Mlp::new(
            &vs.root(),
            MlpConfig {
                input_dim: 6,
                classes: 4,
                depth: 3,
                width: 8,
                activation: gradscope_models::Activation::Tanh,
                init: Init::Glorot,
                norm: Norm::None,
                variant: Variant::Plain,
                branch_init: Default::default(),
                gate_bias: -1.0,
            },
        )
        .unwrap();
        let x = Tensor::randn([5, 6], (Kind::Float, Device::Cpu));
        let y = Tensor::from_slice(&[0i64, 1, 2, 3, 0]);
        let (grads, _, rec) = probed_step(&vs, &net, &x, &y);

        let logits = net.forward(&x, true, None).detach();
        let expected = (logits.softmax(1, Kind::Float) - y.one_hot(4).to_kind(Kind::Float)) / 5.0;
        let expected_l2 = expected.norm().double_value(&[]);
        assert!(
            (rec.output[2].unwrap().l2 - expected_l2).abs() < 1e-6 * expected_l2.max(1.0),
            "{} vs {expected_l2}",
            rec.output[2].unwrap().l2
        );
        assert!((rec.output[2].unwrap().rms - expected_l2 / 20f64.sqrt()).abs() < 1e-6);
        assert!(grads.outputs[2]
            .kept()
            .unwrap()
            .allclose(&expected, 1e-6, 1e-7, false));

        // The same step with `backward()`: every parameter's gradient.
        net.forward(&x, true, None)
            .cross_entropy_for_logits(&y)
            .backward();
        for (p, g) in vs.trainable_variables().iter().zip(&grads.params) {
            assert!(p.grad().equal(g), "a parameter's gradient differs");
        }
        let w2 = net.probe_points()[2].weight.as_ref().unwrap();
        let w = rec.weight[2].unwrap();
        assert!((w.grad.l2 - w2.grad().norm().double_value(&[])).abs() < 1e-6);
        // ‖W‖ and the relative gradient come with it.
        let w_norm = w2.norm().double_value(&[]);
        assert!(
            (w.norm - w_norm).abs() < 1e-6 * w_norm,
            "{} vs {w_norm}",
            w.norm
        );
        assert!((w.relative() - w.grad.l2 / w_norm).abs() < 1e-6 * w.relative());
        assert!(rec.all_finite());
        assert_eq!(rec.responses.len(), 2);
        assert_eq!(rec.responses[1].point, 1);
    }

    /// The hooks see dL/dh exactly as PyTorch's `autograd.grad(loss,
    /// outputs)` returns it, bit for bit, including at outputs used twice
    /// (a residual MLP's skip and branch) and in channels-last CNNs; and
    /// reading it in the hook gives the record that reading it after the
    /// backward pass gives. (The hook splits a tensor over threads by its
    /// own size, the later read by the whole step's: on large tensors the
    /// two group float32 lanes differently and agree to float32 precision;
    /// at these sizes both read on one thread.)
    #[test]
    fn hooked_gradients_are_autograds_and_read_the_same() {
        let check = |vs: &nn::VarStore, net: &dyn Network, x: &Tensor, y: &Tensor| {
            let params = vs.trainable_variables();
            let params: Vec<&Tensor> = params.iter().collect();
            let probe = Probe::new(net, &params);
            // The reference: autograd asked for the outputs' gradients.
            let rec = Recording::new(probe.len());
            let loss = net.forward(x, true, Some(&rec)).cross_entropy_for_logits(y);
            let (outputs, _) = rec.finish();
            let outputs: Vec<Tensor> = outputs.into_iter().map(Option::unwrap).collect();
            let inputs: Vec<&Tensor> = params.iter().copied().chain(&outputs).collect();
            let mut reference = Tensor::run_backward(&[&loss], &inputs, false, false);
            let reference_outputs = reference.split_off(params.len());

            let (kept, _, kept_rec) = probed_step(vs, net, x, y);
            for (i, (g, r)) in kept.outputs.iter().zip(&reference_outputs).enumerate() {
                assert!(g.kept().unwrap().equal(r), "dL/dh at point {i}");
            }
            for (g, r) in kept.params.iter().zip(&reference) {
                assert!(g.equal(r), "a parameter's gradient");
            }
            let (read, _, read_rec) = read_step(vs, net, x, y);
            assert!(read
                .outputs
                .iter()
                .all(|g| matches!(g, OutputGrad::Read { .. })));
            let read_outputs = read_rec.output.iter().flatten();
            for (i, (a, b)) in read_outputs
                .zip(kept_rec.output.iter().flatten())
                .enumerate()
            {
                assert!(
                    (a.l2 - b.l2).abs() <= 1e-12 * b.l2 && a.l2 > 0.0,
                    "point {i}: {} vs {}",
                    a.l2,
                    b.l2
                );
                assert_eq!(a.zero_fraction, b.zero_fraction, "point {i}");
            }
        };
        tch::manual_seed(2);
        let vs = nn::VarStore::new(Device::Cpu);
        let mlp = Mlp::new(
            &vs.root(),
            MlpConfig {
                input_dim: 6,
                classes: 4,
                depth: 6,
                width: 16,
                activation: Activation::Relu,
                init: Init::Kaiming,
                norm: Norm::None,
                variant: Variant::Residual,
                branch_init: Default::default(),
                gate_bias: -1.0,
            },
        )
        .unwrap();
        let x = Tensor::randn([12, 6], (Kind::Float, Device::Cpu));
        let y = Tensor::arange(12, (Kind::Int64, Device::Cpu)).remainder(4);
        check(&vs, &mlp, &x, &y);
        for channels_last in [false, true] {
            let vs = nn::VarStore::new(Device::Cpu);
            let cnn = small_cnn(&vs, channels_last);
            let x = Tensor::randn([6, 1, 8, 8], (Kind::Float, Device::Cpu));
            let y = Tensor::from_slice(&[0i64, 1, 2, 0, 1, 2]);
            check(&vs, &cnn, &x, &y);
        }
    }

    /// Grouping tensors by shape must not change any number: compare every
    /// statistic with the same reduction done one tensor at a time, on a CNN
    /// whose probe points have many different shapes (and some no weight).
    #[test]
    fn grouped_reductions_equal_per_tensor_ones() {
        use gradscope_models::cnn::{Cnn, CnnConfig, Shortcut};
        tch::manual_seed(1);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = Cnn::new(
            &vs.root(),
            CnnConfig {
                input_shape: vec![1, 8, 8],
                classes: 3,
                depth: 14,
                base_width: 4,
                shortcut: Shortcut::B,
                norm: Norm::Batchnorm,
                init: Init::Kaiming,
                variant: Variant::Residual,
                branch_init: Default::default(),
                gate_bias: -1.0,
                channels_last: false,
            },
        )
        .unwrap();
        let x = Tensor::randn([6, 1, 8, 8], (Kind::Float, Device::Cpu));
        let y = Tensor::from_slice(&[0i64, 1, 2, 0, 1, 2]);
        let (grads, responses, _) = probed_step(&vs, &net, &x, &y);
        // The libtorch path, which CUDA takes; `onepass_equals_libtorch`
        // checks the host path against it.
        let probe = Probe::new(&net, &vs.trainable_variables().iter().collect::<Vec<_>>());
        let t = probe.tensors(&net, &grads, &responses, Known::default());
        let r = probe.record(
            &Readings::libtorch(&t, Activation::Relu).unwrap(),
            &t,
            &grads,
            &responses,
        );
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-5 * b.abs().max(1e-6);
        for (i, g) in grads.outputs.iter().enumerate() {
            let g = g.kept().unwrap();
            assert!(
                close(r.output[i].unwrap().l2, g.norm().double_value(&[])),
                "point {i}"
            );
        }
        let params = vs.trainable_variables();
        for (i, p) in net.probe_points().iter().enumerate() {
            match &p.weight {
                Some(w) => {
                    let k = params
                        .iter()
                        .position(|q| q.data_ptr() == w.data_ptr())
                        .unwrap();
                    let expected = grads.params[k].norm().double_value(&[]);
                    assert!(close(r.weight[i].unwrap().grad.l2, expected), "weight {i}");
                }
                None => assert!(r.weight[i].is_none()),
            }
        }
        assert_eq!(r.responses.len(), responses.len());
        for (s, (point, t)) in r.responses.iter().zip(&responses) {
            let (std, mean) = t.detach().std_mean(false);
            let sat = t
                .le(0.0)
                .to_kind(Kind::Float)
                .mean(Kind::Float)
                .double_value(&[]);
            assert_eq!(s.point, *point);
            assert!(
                close(s.std, std.double_value(&[]))
                    && (s.mean - mean.double_value(&[])).abs() < 1e-5
                    && close(s.saturation, sat),
                "response {point}"
            );
        }
    }

    /// The host path reads each tensor once ([`gradscope_kernels`]); it must give
    /// what libtorch's reductions give (the path CUDA takes, checked above
    /// against per-tensor libtorch norms), on NCHW and channels-last CNNs
    /// and on MLPs with each activation's flat part: norms and moments to
    /// float32 precision, counts and dead units exactly.
    #[test]
    fn onepass_equals_libtorch() {
        let check = |vs: &nn::VarStore, net: &dyn Network, x: &Tensor, y: &Tensor| {
            let (grads, responses, _) = probed_step(vs, net, x, y);
            let params = vs.trainable_variables();
            let probe = Probe::new(net, &params.iter().collect::<Vec<_>>());
            let t = probe.tensors(net, &grads, &responses, Known::default());
            assert!(t.all().all(kernels::readable));
            let a = Readings::onepass(&t, net.activation());
            let b = Readings::libtorch(&t, net.activation()).unwrap();
            let close = |a: f64, b: f64| (a - b).abs() <= 1e-5 * b.abs() || a == b;
            for (x, y) in a
                .weight_grads
                .iter()
                .chain(&a.outputs)
                .zip(b.weight_grads.iter().chain(&b.outputs))
            {
                assert!(close(x.0, y.0), "norm {} vs {}", x.0, y.0);
                assert_eq!(x.1, y.1, "non-zero count");
            }
            for (x, y) in a.weights.iter().zip(&b.weights) {
                assert!(close(*x, *y), "weight norm {x} vs {y}");
            }
            for (x, y) in a.responses.iter().zip(&b.responses) {
                assert!(
                    (x[0] - y[0]).abs() <= 1e-5 * y[1].max(y[0].abs()),
                    "mean {x:?} vs {y:?}"
                );
                assert!(close(x[1], y[1]), "std {x:?} vs {y:?}");
                assert_eq!(x[2], y[2], "saturated {x:?} vs {y:?}");
                assert!(
                    x[3] == y[3] || (x[3].is_nan() && y[3].is_nan()),
                    "dead {x:?} vs {y:?}"
                );
            }
            assert_eq!(a.responses.len(), b.responses.len());
        };
        for channels_last in [false, true] {
            tch::manual_seed(2);
            let vs = nn::VarStore::new(Device::Cpu);
            let net = small_cnn(&vs, channels_last);
            let x = Tensor::randn([6, 1, 8, 8], (Kind::Float, Device::Cpu));
            let y = Tensor::from_slice(&[0i64, 1, 2, 0, 1, 2]);
            check(&vs, &net, &x, &y);
        }
        for activation in [Activation::Sigmoid, Activation::Tanh, Activation::Relu] {
            tch::manual_seed(3);
            let vs = nn::VarStore::new(Device::Cpu);
            let net = Mlp::new(
                &vs.root(),
                MlpConfig {
                    input_dim: 8,
                    classes: 4,
                    depth: 6,
                    width: 16,
                    activation,
                    // Large weights: many units in the flat parts.
                    init: Init::Normal { std: 2.0 },
                    norm: Norm::None,
                    variant: Variant::Plain,
                    branch_init: Default::default(),
                    gate_bias: -1.0,
                },
            )
            .unwrap();
            let x = Tensor::randn([32, 8], (Kind::Float, Device::Cpu));
            let y = Tensor::arange(32, (Kind::Int64, Device::Cpu)).remainder(4);
            check(&vs, &net, &x, &y);
        }
    }

    /// Reading the responses during the forward pass (what the training
    /// loop does with large ones) must give the record that keeping them
    /// for `collect` gives, number for number and in the same order: the
    /// same one-pass reading, earlier. In this CNN the three stages'
    /// responses have 1536, 768 and 384 elements: all are read early from
    /// 0 elements, the first stage's from 1000, none by default (all are
    /// below `READ_EARLY_FROM`).
    #[test]
    fn responses_read_early_equal_responses_kept() {
        let step = |early: Option<usize>| {
            tch::manual_seed(4);
            let vs = nn::VarStore::new(Device::Cpu);
            let net = small_cnn(&vs, true);
            let x = Tensor::randn([6, 1, 8, 8], (Kind::Float, Device::Cpu));
            let y = Tensor::from_slice(&[0i64, 1, 2, 0, 1, 2]);
            let (_, responses, record) = probed_step_reading(&vs, &net, &x, &y, early, true);
            (responses.len(), record)
        };
        // Compared through Debug, which prints every f64 exactly and NaN
        // as NaN: a conv output's correlation c is NaN (not read on
        // feature maps), and NaN != NaN would fail an equal record.
        let same = |a: &ProbeRecord, b: &ProbeRecord| format!("{a:?}") == format!("{b:?}");
        let kept = step(None);
        assert_eq!(kept.0, 7, "a response per conv");
        let default = step(Some(READ_EARLY_FROM));
        assert_eq!(default.0, kept.0, "small ones are kept by default");
        assert!(same(&default.1, &kept.1), "small ones are kept by default");
        let (early, mixed) = (step(Some(0)), step(Some(1000)));
        assert_eq!(early.0, 0, "all read early");
        assert!(same(&early.1, &kept.1));
        assert_eq!(mixed.0, 4, "the first stage's 3 read early");
        assert!(same(&mixed.1, &kept.1));
    }

    /// Norms and gradient sums handed to `collect_knowing` take the place
    /// of reading those weights and gradients, and change nothing else:
    /// given some of them as marker values, each point reports the marker
    /// where it was given and its own reading where not, and every other
    /// number equals `collect`'s.
    #[test]
    fn known_norms_and_gradients_replace_only_what_is_read() {
        tch::manual_seed(5);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = small_cnn(&vs, false);
        let x = Tensor::randn([6, 1, 8, 8], (Kind::Float, Device::Cpu));
        let y = Tensor::from_slice(&[0i64, 1, 2, 0, 1, 2]);
        let (grads, responses, read) = probed_step(&vs, &net, &x, &y);
        let params = vs.trainable_variables();
        let params: Vec<&Tensor> = params.iter().collect();
        let probe = Probe::new(&net, &params);
        // Every other parameter's norm known (BN's γ and β among them,
        // which are no probe point's weight).
        let known: Vec<Option<f64>> = (0..params.len())
            .map(|i| (i % 2 == 0).then_some(1234.5))
            .collect();
        // Every third parameter's gradient sums known: Σg² = 16, half of
        // it non-zero.
        let known_grads: Vec<Option<kernels::GradSums>> = params
            .iter()
            .enumerate()
            .map(|(i, p)| {
                (i % 3 == 0).then_some(kernels::GradSums {
                    sum_sq: 16.0,
                    nonzero: p.numel() as u64 / 2,
                })
            })
            .collect();
        let given = probe
            .collect_knowing(
                &net,
                &grads,
                &responses,
                Known {
                    norms: &known,
                    grads: &known_grads,
                },
            )
            .unwrap();
        let (mut markers, mut grad_markers) = (0, 0);
        for ((p, w_read), w_given) in net
            .probe_points()
            .iter()
            .zip(&read.weight)
            .zip(&given.weight)
        {
            let (Some(w_read), Some(w_given)) = (w_read, w_given) else {
                assert_eq!(w_read.is_none(), w_given.is_none());
                continue;
            };
            let i = params
                .iter()
                .position(|q| q.data_ptr() == p.weight.as_ref().unwrap().data_ptr())
                .unwrap();
            if i % 2 == 0 {
                assert_eq!(w_given.norm, 1234.5, "{}: the given norm", p.name);
                markers += 1;
            } else {
                assert_eq!(w_given.norm, w_read.norm, "{}: its own norm", p.name);
            }
            if i % 3 == 0 {
                assert_eq!(w_given.grad.l2, 4.0, "{}: the given Σg²", p.name);
                let n = params[i].numel() as f64;
                let zero = 1.0 - (params[i].numel() / 2) as f64 / n;
                assert_eq!(w_given.grad.zero_fraction, zero, "{}", p.name);
                grad_markers += 1;
            } else {
                assert_eq!(w_given.grad, w_read.grad, "{}: its own gradient", p.name);
            }
        }
        assert!(markers > 0, "some probe point's weight had a given norm");
        assert!(grad_markers > 0, "some probe point had given gradient sums");
        assert_eq!(given.output, read.output);
        assert_eq!(given.responses, read.responses);
    }

    /// A residual CNN-8 with BN on 1×8×8 inputs, widths 4, 8 and 16: its
    /// three stages' responses differ in size (1536, 768 and 384 elements
    /// at batch 6).
    fn small_cnn(vs: &nn::VarStore, channels_last: bool) -> gradscope_models::cnn::Cnn {
        use gradscope_models::cnn::{Cnn, CnnConfig, Shortcut};
        Cnn::new(
            &vs.root(),
            CnnConfig {
                input_shape: vec![1, 8, 8],
                classes: 3,
                depth: 8,
                base_width: 4,
                shortcut: Shortcut::A,
                norm: Norm::Batchnorm,
                init: Init::Kaiming,
                variant: Variant::Residual,
                branch_init: Default::default(),
                gate_bias: -1.0,
                channels_last,
            },
        )
        .unwrap()
    }

    /// One probed step with the responses kept for `collect`: a recorded
    /// forward pass in train mode, mean cross-entropy, the probe's backward
    /// pass, collect. Returns the gradients, the responses and the record.
    /// Every dL/dh is kept ([`Probe::backward_keeping`]), for tests that
    /// look at the tensors; [`read_step`] is the training loop's path.
    fn probed_step(
        vs: &nn::VarStore,
        net: &dyn Network,
        x: &Tensor,
        y: &Tensor,
    ) -> (Gradients, Vec<(usize, Tensor)>, ProbeRecord) {
        probed_step_reading(vs, net, x, y, None, true)
    }

    /// Issue 34: the probe's dL/dh_t (and the LSTM's dL/dc_t), read by
    /// its hooks during the backward pass as the training loop reads them,
    /// equals autograd's gradient of the loss with respect to each step's
    /// state (`Tensor::run_backward` with the states as inputs, PyTorch's
    /// `autograd.grad`), at every time step.
    #[test]
    fn rnn_gradients_per_time_step_equal_autograd() {
        use gradscope_models::rnn::{Cell, Rnn, RnnConfig};
        for cell in [Cell::Tanh, Cell::Lstm, Cell::Gru] {
            tch::manual_seed(3);
            let vs = nn::VarStore::new(Device::Cpu);
            let config = RnnConfig {
                input_size: 2,
                length: 8,
                outputs: 3,
                width: 6,
                layers: 2,
                cell,
                init: Init::PytorchDefault,
                forget_bias: 1.0,
            };
            let net = Rnn::new(&vs.root(), config).unwrap();
            let x = Tensor::randn([5, 8, 2], (Kind::Float, Device::Cpu));
            let y = Tensor::from_slice(&[0i64, 1, 2, 0, 1]);
            let (_, _, rec) = read_step(&vs, &net, &x, &y);

            let again = Recording::new(net.probe_points().len());
            let loss = net
                .forward(&x, true, Some(&again))
                .cross_entropy_for_logits(&y);
            let (outputs, _) = again.finish();
            // The points with an output (the weight blocks and gates after
            // the head have none, and record none).
            let has: Vec<usize> = (0..outputs.len())
                .filter(|&i| net.probe_points()[i].reads.output())
                .collect();
            assert!(has.iter().all(|&i| outputs[i].is_some()));
            let states: Vec<Tensor> = has
                .iter()
                .map(|&i| outputs[i].as_ref().unwrap().shallow_clone())
                .collect();
            let grads = Tensor::run_backward(&[&loss], &states, false, false);
            assert_eq!(rec.output.len(), outputs.len());
            assert_eq!(rec.output.iter().flatten().count(), states.len());
            for (&i, g) in has.iter().zip(&grads) {
                let want = g.norm().double_value(&[]);
                let got = rec.output[i].unwrap().l2;
                assert!(
                    (got - want).abs() <= 1e-6 * want.max(1e-12),
                    "{cell:?} point {i}: {got} vs {want}"
                );
            }
        }
    }

    /// [`probed_step`] as the training loop takes it: dL/dh read by the
    /// hooks during the backward pass ([`Probe::backward`]).
    fn read_step(
        vs: &nn::VarStore,
        net: &dyn Network,
        x: &Tensor,
        y: &Tensor,
    ) -> (Gradients, Vec<(usize, Tensor)>, ProbeRecord) {
        probed_step_reading(vs, net, x, y, None, false)
    }

    /// [`probed_step`], with the responses of `early` elements or more
    /// read during the forward pass (`Probe::recording`, as the training
    /// loop does).
    pub(crate) fn probed_step_reading(
        vs: &nn::VarStore,
        net: &dyn Network,
        x: &Tensor,
        y: &Tensor,
        early: Option<usize>,
        keep: bool,
    ) -> (Gradients, Vec<(usize, Tensor)>, ProbeRecord) {
        let params = vs.trainable_variables();
        let params: Vec<&Tensor> = params.iter().collect();
        let probe = Probe::new(net, &params);
        let rec = match early {
            Some(elements) => probe.recording_from(elements),
            None => Recording::new(probe.len()),
        };
        let loss = net.forward(x, true, Some(&rec)).cross_entropy_for_logits(y);
        let (outputs, responses) = rec.finish();
        let grads = if keep {
            probe.backward_keeping(&loss, &params, outputs).unwrap()
        } else {
            probe.backward(&loss, &params, outputs).unwrap()
        };
        let record = probe.collect(net, &grads, &responses).unwrap();
        (grads, responses, record)
    }

    /// Norms in float64 over groups (several small tensors stacked) and over
    /// one large tensor alone, both paths of `grouped`.
    fn host_grad_stats(tensors: &[Tensor]) -> Vec<Vec<f64>> {
        let (parts, order) = grouped(tensors, grad_stats);
        let host: Vec<f64> = Vec::try_from(Tensor::cat(&parts, 0)).unwrap();
        let mut stats = ungroup(&host, &order, 2);
        // As `Probe::collect` does: float32 norms, float64 where needed.
        refine_norms(&mut stats[0], tensors);
        stats
    }

    /// Issue 11, §1: a float32 gradient of 1e-30 per element, or of
    /// denormals near 1e-40, squares to 0 in float32; the probe must read
    /// its norm within 1e-6 of the float64 answer (computed here from the
    /// exact element values: l2 = |v|·√n).
    #[test]
    fn norms_of_tiny_and_denormal_gradients_are_exact() {
        let opts = (Kind::Float, Device::Cpu);
        // The last is the smallest float32 denormal, 2^-149.
        for value in [1e-30f32, 1.0e-40, -3.3e-42, f32::from_bits(1)] {
            assert!(value != 0.0);
            let small = Tensor::full([4, 8], f64::from(value), opts);
            let large = Tensor::full([300, 300], f64::from(value), opts);
            let tensors = [small.shallow_clone(), small, large];
            let stats = host_grad_stats(&tensors);
            // The host path: one read, float64 sums.
            let (host, _) = kernels::read(&tensors, &[], kernels::Flat::NONE);
            for (i, numel) in [(0, 32.0f64), (1, 32.0), (2, 90_000.0)] {
                let exact = f64::from(value).abs() * numel.sqrt();
                assert!(
                    (host[i].l2() - exact).abs() <= 1e-6 * exact,
                    "{value:e}: one-pass l2 {:e} vs {exact:e}",
                    host[i].l2()
                );
                assert_eq!(host[i].nonzero as f64, numel);
                let l2 = stats[0][i];
                let rms = l2 / numel.sqrt();
                assert!(
                    (l2 - exact).abs() <= 1e-6 * exact,
                    "{value:e}: l2 {l2:e} vs {exact:e}"
                );
                assert!((rms - f64::from(value).abs()).abs() <= 1e-6 * f64::from(value).abs());
                assert_eq!(stats[1][i], numel, "no element is zero");
            }
        }
        // Only a tensor of zeros reads 0, and it says so.
        let z = Tensor::zeros([10], opts);
        let _ = z.narrow(0, 0, 3).fill_(1e-38);
        let (host, _) = kernels::read(&[z.shallow_clone()], &[], kernels::Flat::NONE);
        assert!(host[0].l2() > 0.0);
        assert_eq!(host[0].nonzero, 3);
        let stats = host_grad_stats(&[z]);
        assert!(stats[0][0] > 0.0);
        assert_eq!(stats[1][0], 3.0);
    }

    /// Issue 11, §1: response mean and std in float64, exact for tiny
    /// values and for a spread far below the mean, against a float64 copy.
    #[test]
    fn response_statistics_are_exact_in_float64() {
        let opts = (Kind::Float, Device::Cpu);
        let tiny = Tensor::randn([3, 64], opts) * 1e-30;
        let narrow = Tensor::randn([3, 64], opts) * 1e-6 + 0.999;
        for x in [tiny, narrow] {
            // [group, batch, units], as `grouped` stacks responses.
            let dims = [1i64, 2];
            let mut stats: Vec<f64> = Vec::try_from(
                response_stats(&x.unsqueeze(1), &dims, Activation::Sigmoid).flatten(0, -1),
            )
            .unwrap();
            // As `Probe::collect` does: the stds (rows 3..6 of the [4, 3]
            // result) taken again in float64 where float32 lost squares.
            let rows: Vec<Tensor> = (0..3).map(|g| x.get(g).unsqueeze(0)).collect();
            refine_stds(&mut stats[3..6], &rows, Activation::Sigmoid);
            let d = x.to_kind(Kind::Double);
            let rows: Vec<Tensor> = (0..3).map(|g| x.get(g)).collect();
            let (_, host) = kernels::read(&[], &rows, kernels::Flat::NONE);
            for g in 0..3 {
                let row = d.get(g);
                let mean = row.mean(Kind::Double).double_value(&[]);
                let std = row.std(false).double_value(&[]);
                let h = &host[g as usize];
                assert!(
                    (h.mean() - mean).abs() <= 1e-9 * mean.abs(),
                    "one-pass mean {g}"
                );
                assert!(
                    (h.std() - std).abs() <= 1e-6 * std,
                    "one-pass std {g}: {} vs {std}",
                    h.std()
                );
                assert!(
                    (stats[g as usize] - mean).abs() <= 1e-9 * mean.abs(),
                    "mean {g}"
                );
                assert!(
                    (stats[3 + g as usize] - std).abs() <= 1e-6 * std,
                    "std {g}: {} vs {std}",
                    stats[3 + g as usize]
                );
            }
        }
    }

    /// Issue 11, §1: in a plain sigmoid MLP of depth 32 and width 64 with
    /// PyTorch's default init, dL/dh at the input side is about 1e-27 per
    /// element at step 0 (0.85 decades per layer, Glorot & Bengio 2010's
    /// vanishing), which a float32 sum of squares read as 0. Every probe
    /// point must read non-zero and match a float64 norm of the same
    /// gradient tensor, computed here from a float64 copy.
    #[test]
    fn deep_sigmoid_mlp_gradients_read_exactly_at_every_layer() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = Mlp::new(
            &vs.root(),
            MlpConfig {
                input_dim: 64,
                classes: 10,
                depth: 32,
                width: 64,
                activation: Activation::Sigmoid,
                init: Init::PytorchDefault,
                norm: Norm::None,
                variant: Variant::Plain,
                branch_init: Default::default(),
                gate_bias: -1.0,
            },
        )
        .unwrap();
        let x = Tensor::randn([128, 64], (Kind::Float, Device::Cpu));
        let y = Tensor::arange(128, (Kind::Int64, Device::Cpu)).remainder(10);
        // The training loop's record (dL/dh read by the hooks), against
        // the same step's gradients kept.
        let (_, _, rec) = read_step(&vs, &net, &x, &y);
        let (grads, _, _) = probed_step(&vs, &net, &x, &y);
        for (i, g) in grads.outputs.iter().enumerate() {
            let exact = g
                .kept()
                .unwrap()
                .to_kind(Kind::Double)
                .square()
                .sum(Kind::Double)
                .sqrt()
                .double_value(&[]);
            let got = rec.output[i].unwrap().l2;
            assert!(got > 0.0 && exact > 0.0, "point {i}: {got:e} / {exact:e}");
            assert!(
                (got - exact).abs() <= 1e-6 * exact,
                "point {i}: {got:e} vs {exact:e}"
            );
            assert_eq!(rec.output[i].unwrap().zero_fraction, 0.0, "point {i}");
        }
        // The instrument sees the vanishing: the input layer's rms is far
        // below float32's squaring limit (~1e-19).
        assert!(
            rec.output[0].unwrap().rms < 1e-19,
            "{:e}",
            rec.output[0].unwrap().rms
        );
        assert_eq!(
            Probe::new(&net, &[]).trunk().iter().filter(|t| **t).count(),
            30,
            "hidden layers 1..=30 are the trunk"
        );
    }

    /// Issue 11, §3: BatchNorm after a layer makes the net's function
    /// independent of that layer's weight scale, so dL/dh before the BN
    /// scales as 1/‖W‖ (Ioffe & Szegedy 2015 §3.3; van Laarhoven 2017).
    /// Multiplying a hidden weight by 4 must divide its dL/dh and ∇W by 4
    /// and leave the probe's scale-free ‖∇W‖·‖W‖ where it was.
    #[test]
    fn batchnorm_gradients_scale_as_one_over_the_weight_and_the_product_does_not() {
        let read = |scale: f64| {
            tch::manual_seed(3);
            let vs = nn::VarStore::new(Device::Cpu);
            let net = Mlp::new(
                &vs.root(),
                MlpConfig {
                    input_dim: 8,
                    classes: 4,
                    depth: 5,
                    width: 16,
                    activation: Activation::Relu,
                    init: Init::Kaiming,
                    norm: Norm::Batchnorm,
                    variant: Variant::Plain,
                    branch_init: Default::default(),
                    gate_bias: -1.0,
                },
            )
            .unwrap();
            tch::no_grad(|| {
                let mut w = net.probe_points()[2]
                    .weight
                    .as_ref()
                    .unwrap()
                    .shallow_clone();
                let _ = w.g_mul_scalar_(scale);
            });
            tch::manual_seed(4);
            let x = Tensor::randn([32, 8], (Kind::Float, Device::Cpu));
            let y = Tensor::arange(32, (Kind::Int64, Device::Cpu)).remainder(4);
            probed_step(&vs, &net, &x, &y).2
        };
        let (a, b) = (read(1.0), read(4.0));
        let rel = |x: f64, y: f64| (x - y).abs() / y.abs();
        assert!(rel(b.output[2].unwrap().rms * 4.0, a.output[2].unwrap().rms) < 1e-3);
        let (wa, wb) = (a.weight[2].unwrap(), b.weight[2].unwrap());
        assert!(rel(wb.norm, 4.0 * wa.norm) < 1e-6);
        assert!(rel(wb.grad.l2 * 4.0, wa.grad.l2) < 1e-3);
        assert!(rel(wb.grad.l2 * wb.norm, wa.grad.l2 * wa.norm) < 1e-3);
        // The relative gradient falls as 1/‖W‖²: the angular step shrinks.
        assert!(rel(wb.relative() * 16.0, wa.relative()) < 1e-3);
        // The other layers do not see the change.
        assert!(rel(b.output[3].unwrap().rms, a.output[3].unwrap().rms) < 1e-3);
    }

    /// Issue 12, §3: about half of a ReLU response is 0 by construction,
    /// which says nothing about dead units. A unit whose bias is −100 is 0
    /// for every example (dead); `dead` must count exactly those, while
    /// `saturation` stays near one half.
    #[test]
    fn dead_units_are_zero_for_the_whole_batch() {
        tch::manual_seed(5);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = Mlp::new(
            &vs.root(),
            MlpConfig {
                input_dim: 8,
                classes: 4,
                depth: 3,
                width: 16,
                activation: Activation::Relu,
                init: Init::Kaiming,
                norm: Norm::None,
                variant: Variant::Plain,
                branch_init: Default::default(),
                gate_bias: -1.0,
            },
        )
        .unwrap();
        // Kill units 0..4 of the first hidden layer's input (layer 0's output).
        tch::no_grad(|| {
            let b = vs
                .variables()
                .into_iter()
                .find(|(name, _)| name == "layer00.linear.bias")
                .unwrap()
                .1;
            let _ = b.narrow(0, 0, 4).fill_(-100.0);
        });
        let x = Tensor::randn([64, 8], (Kind::Float, Device::Cpu));
        let y = Tensor::arange(64, (Kind::Int64, Device::Cpu)).remainder(4);
        let (_, _, rec) = probed_step(&vs, &net, &x, &y);
        let first = rec.responses[0];
        assert_eq!(first.point, 0);
        assert_eq!(first.dead, 4.0 / 16.0, "{first:?}");
        assert!(
            first.saturation > first.dead && first.saturation < 0.9,
            "{first:?}"
        );
    }
}
