//! gradscope-probe: per-layer gradient and activation statistics, and the
//! CSV files they stream into.
//!
//! Main types: [`Probe`] (makes the zero taps for a probe step and reduces
//! everything a probe step measures to one small tensor), [`ProbeRecord`]
//! (the host-side numbers of one probe step) and [`writers::RunWriters`]
//! (`metrics.csv`, `gradients.csv`, `activations.csv`, flushed as written).
//!
//! Why one tensor: reading each norm with `double_value` would sync with the
//! device once per layer per statistic. Instead every norm and moment is
//! computed on the device, stacked, and copied to the host once per probe
//! step.

pub mod writers;

use gradscope_models::{Activation, Network};
use tch::{Device, Kind, Tensor};

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
    /// dL/dh at each probe point's output.
    pub output: Vec<GradStats>,
    /// Statistics of each response, in forward order.
    pub responses: Vec<ResponseStats>,
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
            .chain(self.output.iter().map(|o| o.l2))
            .all(|v| v.is_finite())
    }

    /// Per-element rms of dL/dh at the trunk points, input side first: the
    /// profile whose slope is the decay per layer.
    pub fn trunk_profile(&self, trunk: &[bool]) -> Vec<f64> {
        self.output
            .iter()
            .zip(trunk)
            .filter(|(_, t)| **t)
            .map(|(o, _)| o.rms)
            .collect()
    }
}

/// Probing for one network: which layers, and how big their outputs are.
#[derive(Debug)]
pub struct Probe {
    /// Per probe point: elements of the weight (`None`: no weight), and the
    /// shape of one example's output.
    weight_numel: Vec<Option<f64>>,
    output_shapes: Vec<Vec<i64>>,
    trunk: Vec<bool>,
    activation: Activation,
}

impl Probe {
    pub fn new(net: &dyn Network) -> Probe {
        let points = net.probe_points();
        Probe {
            weight_numel: points
                .iter()
                .map(|p| p.weight.as_ref().map(|w| w.numel() as f64))
                .collect(),
            output_shapes: points.iter().map(|p| p.output_shape.clone()).collect(),
            trunk: points.iter().map(|p| p.trunk).collect(),
            activation: net.activation(),
        }
    }

    /// Number of probe points.
    pub fn len(&self) -> usize {
        self.output_shapes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.output_shapes.is_empty()
    }

    /// Which probe points are on the trunk (see `ProbePoint::trunk`).
    pub fn trunk(&self) -> &[bool] {
        &self.trunk
    }

    /// Zero tensors that require grad, one per probe point, for a batch of
    /// `batch` examples. Adding them changes nothing in the forward pass;
    /// after backward their `grad()` is dL/dh.
    pub fn taps(&self, batch: i64, device: Device) -> Vec<Tensor> {
        self.output_shapes
            .iter()
            .map(|shape| {
                let mut full = vec![batch];
                full.extend_from_slice(shape);
                Tensor::zeros(full, (Kind::Float, device)).set_requires_grad(true)
            })
            .collect()
    }

    /// Reduces one probe step to host numbers: call after `backward()` and
    /// before the optimizer step. One device→host copy.
    ///
    /// Every statistic is accumulated in float64 from the float32 tensor
    /// without copying it to float64 (the reductions' `dtype` argument), so
    /// a gradient of 1e-30 per element reads 1e-30: squaring it in float32
    /// would give 0, and that blinded the probe exactly where gradients
    /// vanish. A statistic reads 0 only when the tensor is all zeros, and
    /// `zero_fraction` says how much of it is.
    ///
    /// Small tensors of the same shape are reduced together (one stack and
    /// one reduction per distinct shape, not one per layer): a probe step is
    /// hundreds of tiny ops otherwise, and their dispatch cost, not the
    /// arithmetic, dominated the MLP's probe time in `make bench`.
    pub fn collect(
        &self,
        net: &dyn Network,
        taps: &[Tensor],
        responses: &[(usize, Tensor)],
    ) -> Result<ProbeRecord, ProbeError> {
        let n = self.len();
        let grad_of = |t: &Tensor| {
            let g = t.grad();
            if g.defined() {
                g.detach()
            } else {
                t.detach().full_like(f64::NAN)
            }
        };
        let weights: Vec<&Tensor> = net
            .probe_points()
            .iter()
            .filter_map(|p| p.weight.as_ref())
            .collect();
        let weight_grads: Vec<Tensor> = weights.iter().map(|w| grad_of(w)).collect();
        let weights: Vec<Tensor> = weights.iter().map(|w| w.detach()).collect();
        let tap_grads: Vec<Tensor> = taps.iter().map(grad_of).collect();
        let response_values: Vec<Tensor> = responses.iter().map(|(_, r)| r.detach()).collect();

        let activation = self.activation;
        let stats = |x: &Tensor, dims: &[i64]| response_stats(x, dims, activation);
        let (wg_part, wg_order) = grouped(&weight_grads, grad_stats);
        let (w_part, w_order) = grouped(&weights, |x, dims| l2_fast(x, dims).unsqueeze(0));
        let (o_part, o_order) = grouped(&tap_grads, grad_stats);
        let (s_part, s_order) = grouped(&response_values, stats);
        let parts: Vec<Tensor> = wg_part
            .into_iter()
            .chain(w_part)
            .chain(o_part)
            .chain(s_part)
            .collect();
        let host: Vec<f64> = if parts.is_empty() {
            Vec::new()
        } else {
            Vec::try_from(Tensor::cat(&parts, 0).to_device(Device::Cpu))?
        };

        let (w, o) = (weights.len(), tap_grads.len());
        let mut at = 0;
        let mut take = |len: usize, groups: &[Vec<usize>], k: usize| {
            let part = ungroup(&host[at..at + k * len], groups, k);
            at += k * len;
            part
        };
        let mut wg = take(w, &wg_order, 2);
        let mut wn = take(w, &w_order, 1);
        let mut og = take(o, &o_order, 2);
        let mut st = take(response_values.len(), &s_order, 4);
        // Norms taken in float32 that may have lost squares out of its
        // range are taken again in float64 (see `l2_fast`): exact where
        // gradients vanish, one pass elsewhere.
        refine_norms(&mut wg[0], &weight_grads);
        refine_norms(&mut wn[0], &weights);
        refine_norms(&mut og[0], &tap_grads);
        refine_stds(&mut st[1], &response_values, activation);

        let weight_numel: Vec<f64> = self.weight_numel.iter().flatten().copied().collect();
        let mut weight_stats = (0..w).map(|i| WeightStats {
            grad: GradStats {
                l2: wg[0][i],
                rms: wg[0][i] / weight_numel[i].sqrt(),
                zero_fraction: 1.0 - wg[1][i] / weight_numel[i],
            },
            norm: wn[0][i],
        });
        let weight: Vec<Option<WeightStats>> = self
            .weight_numel
            .iter()
            .map(|numel| numel.and_then(|_| weight_stats.next()))
            .collect();
        // Taps share the batch size, so one example's numel times the batch.
        let batch = taps.first().map(|t| t.size()[0]).unwrap_or(1) as f64;
        let output: Vec<GradStats> = self
            .output_shapes
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let numel = s.iter().product::<i64>() as f64 * batch;
                GradStats {
                    l2: og[0][i],
                    rms: og[0][i] / numel.sqrt(),
                    zero_fraction: 1.0 - og[1][i] / numel,
                }
            })
            .collect();
        debug_assert_eq!(output.len(), n);
        Ok(ProbeRecord {
            weight,
            output,
            responses: responses
                .iter()
                .enumerate()
                .map(|(i, (point, _))| ResponseStats {
                    point: *point,
                    mean: st[0][i],
                    std: st[1][i],
                    saturation: st[2][i],
                    dead: st[3][i],
                })
                .collect(),
        })
    }
}

/// L2 norm over `dims`, accumulated in float64 (each float32 element is
/// widened before it is squared, inside the reduction: no float64 copy).
fn l2(x: &Tensor, dims: &[i64]) -> Tensor {
    x.norm_scalaropt_dim_dtype(2, dims, false, Kind::Double)
}

/// L2 norm over `dims` in the tensor's own float32, as float64: one read of
/// the tensor, where the float64 norm above first casts a whole float64
/// copy of it (in `make bench`, the copies were the largest share of a CNN
/// probe step). It is exact to float32 precision unless a square left
/// float32's range: elements below about 1.1e-19 square to 0 (their share
/// of the norm is then at most √numel·1.1e-19) and above about 1.8e19
/// overflow. [`needs_exact`] tells those cases from the value, and the
/// probe takes them again with [`l2`].
fn l2_fast(x: &Tensor, dims: &[i64]) -> Tensor {
    x.norm_scalaropt_dim(2, dims, false).to_kind(Kind::Double)
}

/// Whether a float32 norm of `numel` elements may have lost squares out of
/// float32's range: not finite, or so small that the squares it could have
/// dropped (at most √numel·1.1e-19) reach its seventh digit.
fn needs_exact(norm: f64, numel: f64) -> bool {
    !norm.is_finite() || norm < numel.sqrt() * 1e-11
}

/// Replaces each float32 norm of `tensors` that [`needs_exact`] by its
/// float64 norm, on the host (rare, so one sync each is fine).
fn refine_norms(norms: &mut [f64], tensors: &[Tensor]) {
    for (norm, t) in norms.iter_mut().zip(tensors) {
        if needs_exact(*norm, t.numel() as f64) {
            let dims: Vec<i64> = (0..t.dim() as i64).collect();
            *norm = l2(t, &dims).double_value(&[]);
        }
    }
}

/// The same for the responses' stds, whose norm is over the centred
/// values, √n·std: those that need it are taken again with [`l2`].
fn refine_stds(stds: &mut [f64], responses: &[Tensor], activation: Activation) {
    for (std, x) in stds.iter_mut().zip(responses) {
        let n = x.numel() as f64;
        if needs_exact(*std * n.sqrt(), n) {
            // As `grouped` gives it: a stack of one, reduced over the rest.
            let dims: Vec<i64> = (1..=x.dim() as i64).collect();
            let exact = response_stats_with(&x.unsqueeze(0), &dims, activation, l2);
            *std = exact.double_value(&[1, 0]);
        }
    }
}

/// `[2, g]`: the L2 norm and the count of non-zero elements of each tensor.
fn grad_stats(x: &Tensor, dims: &[i64]) -> Tensor {
    let nonzero = x.count_nonzero_dim_intlist(dims).to_kind(Kind::Double);
    Tensor::stack(&[l2_fast(x, dims), nonzero], 0)
}

/// `[4, g]`: mean, population std, saturated fraction and dead-unit
/// fraction of each response, all in float64.
///
/// The std is exact without a float64 copy: with c the mean rounded to
/// float32, Σ(x − c)² is taken in float64 from the float32 differences, and
/// Var = Σ(x − c)²/n − (mean − c)². Centring first avoids the cancellation of
/// E[x²] − mean², which loses every digit when the spread is small next to
/// the mean (a collapsed layer).
fn response_stats(x: &Tensor, dims: &[i64], activation: Activation) -> Tensor {
    response_stats_with(x, dims, activation, l2_fast)
}

/// [`response_stats`] with the centred norm taken by `norm` ([`l2_fast`],
/// or [`l2`] where the fast one may have lost squares).
fn response_stats_with(
    x: &Tensor,
    dims: &[i64],
    activation: Activation,
    norm: fn(&Tensor, &[i64]) -> Tensor,
) -> Tensor {
    let numel: i64 = dims.iter().map(|&d| x.size()[d as usize]).product();
    let count = numel as f64;
    let mean = x.sum_dim_intlist(dims, true, Kind::Double) / count;
    let c = mean.to_kind(x.kind());
    let ss = norm(&(x - &c), dims).square() / count;
    // [g, 1, 1, ...] → [g]
    let flat = |t: &Tensor| t.flatten(1, -1).squeeze_dim(1);
    let mean = flat(&mean);
    let offset = &mean - flat(&c).to_kind(Kind::Double);
    let var = (ss - offset.square()).clamp_min(0.0);
    let flat_part = activation.saturated(x);
    let saturated = flat_part.sum_dim_intlist(dims, false, Kind::Double) / count;
    // Dead units: a unit (feature, or channel of a feature map: dim 2 of
    // the stack) in the flat part for every example and position of the
    // batch. For ReLU that is a unit that passes no gradient at all; the
    // saturated fraction above is about one half by construction.
    let dead = if x.dim() >= 3 {
        let per_unit: Vec<i64> = dims.iter().copied().filter(|&d| d != 2).collect();
        let units = x.size()[2] as f64;
        let active =
            flat_part
                .logical_not()
                .sum_dim_intlist(per_unit.as_slice(), false, Kind::Int64);
        active
            .eq(0)
            .sum_dim_intlist([1i64].as_slice(), false, Kind::Double)
            / units
    } else {
        // No batch and unit axes to tell apart.
        saturated.full_like(f64::NAN)
    };
    Tensor::stack(&[mean, var.sqrt(), saturated, dead], 0)
}

/// Tensors larger than this are reduced one by one: stacking them would copy
/// megabytes (CNN feature maps) to save one op dispatch, and measured slower.
const GROUP_MAX_NUMEL: i64 = 1 << 16;

/// Applies `reduce` once per group of same-shape small tensors (one per
/// large tensor): `reduce` gets the stack `[g, ...shape]` and the dims to
/// reduce, and returns `[k, g]` in float64. Returns each group's flattened
/// results (still on the device) and the groups' member indices in the
/// order their values appear.
fn grouped(
    tensors: &[Tensor],
    reduce: impl Fn(&Tensor, &[i64]) -> Tensor,
) -> (Vec<Tensor>, Vec<Vec<usize>>) {
    let mut groups: Vec<(Vec<i64>, Vec<usize>)> = Vec::new();
    for (i, t) in tensors.iter().enumerate() {
        let shape = t.size();
        let small = t.numel() as i64 <= GROUP_MAX_NUMEL;
        match groups
            .iter_mut()
            .find(|(s, m)| small && *s == shape && tensors[m[0]].numel() as i64 <= GROUP_MAX_NUMEL)
        {
            Some((_, members)) => members.push(i),
            None => groups.push((shape, vec![i])),
        }
    }
    let parts: Vec<Tensor> = groups
        .iter()
        .map(|(shape, members)| {
            // A group of one is a view, not a copy.
            let stacked = match members.as_slice() {
                [only] => tensors[*only].unsqueeze(0),
                _ => Tensor::stack(&members.iter().map(|&i| &tensors[i]).collect::<Vec<_>>(), 0),
            };
            let dims: Vec<i64> = (1..=shape.len() as i64).collect();
            reduce(&stacked, &dims).flatten(0, -1)
        })
        .collect();
    (parts, groups.into_iter().map(|(_, m)| m).collect())
}

/// Inverse of [`grouped`] on the host: `k` statistics per tensor, back in
/// the tensors' own order.
fn ungroup(values: &[f64], groups: &[Vec<usize>], k: usize) -> Vec<Vec<f64>> {
    let n: usize = groups.iter().map(Vec::len).sum();
    let mut out = vec![vec![f64::NAN; n]; k];
    let mut at = 0;
    for members in groups {
        let g = members.len();
        for (s, stat) in out.iter_mut().enumerate() {
            for (j, &i) in members.iter().enumerate() {
                stat[i] = values[at + s * g + j];
            }
        }
        at += k * g;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradscope_models::mlp::{Mlp, MlpConfig};
    use gradscope_models::{Forward, Init, Norm, Variant};
    use tch::nn;

    /// The tap trick must give the same dL/dh as autograd on the tensor
    /// itself: compare with `torch.autograd.grad` of the loss with respect to
    /// the logits, which for mean cross-entropy is (softmax - onehot) / batch.
    #[test]
    fn taps_read_exact_output_gradient() {
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
            },
        )
        .unwrap();
        let x = Tensor::randn([5, 6], (Kind::Float, Device::Cpu));
        let y = Tensor::from_slice(&[0i64, 1, 2, 3, 0]);
        let (_, _, rec) = probed_step(&net, &x, &y);

        let logits = net.forward(&x, true, None).logits.detach();
        let expected = (logits.softmax(1, Kind::Float) - y.one_hot(4).to_kind(Kind::Float)) / 5.0;
        let expected_l2 = expected.norm().double_value(&[]);
        assert!(
            (rec.output[2].l2 - expected_l2).abs() < 1e-6 * expected_l2.max(1.0),
            "{} vs {expected_l2}",
            rec.output[2].l2
        );
        assert!((rec.output[2].rms - expected_l2 / 20f64.sqrt()).abs() < 1e-6);
        // The weight gradient norm equals the norm of W.grad() itself.
        let w2 = net.probe_points()[2]
            .weight
            .as_ref()
            .unwrap()
            .grad()
            .norm()
            .double_value(&[]);
        let w = rec.weight[2].unwrap();
        assert!((w.grad.l2 - w2).abs() < 1e-6);
        // ‖W‖ and the relative gradient come with it.
        let w_norm = net.probe_points()[2]
            .weight
            .as_ref()
            .unwrap()
            .norm()
            .double_value(&[]);
        assert!((w.norm - w_norm).abs() < 1e-6 * w_norm);
        assert!((w.relative() - w2 / w_norm).abs() < 1e-6 * (w2 / w_norm));
        assert!(rec.all_finite());
        assert_eq!(rec.responses.len(), 2);
        assert_eq!(rec.responses[1].point, 1);
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
                channels_last: false,
            },
        )
        .unwrap();
        let x = Tensor::randn([6, 1, 8, 8], (Kind::Float, Device::Cpu));
        let y = Tensor::from_slice(&[0i64, 1, 2, 0, 1, 2]);
        let (taps, out, rec) = probed_step(&net, &x, &y);
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-5 * b.abs().max(1e-6);
        for (i, t) in taps.iter().enumerate() {
            assert!(
                close(rec.output[i].l2, t.grad().norm().double_value(&[])),
                "tap {i}"
            );
        }
        for (i, p) in net.probe_points().iter().enumerate() {
            match &p.weight {
                Some(w) => assert!(
                    close(
                        rec.weight[i].unwrap().grad.l2,
                        w.grad().norm().double_value(&[])
                    ),
                    "weight {i}"
                ),
                None => assert!(rec.weight[i].is_none()),
            }
        }
        assert_eq!(rec.responses.len(), out.responses.len());
        for (r, (point, t)) in rec.responses.iter().zip(&out.responses) {
            let (std, mean) = t.detach().std_mean(false);
            let sat = t
                .le(0.0)
                .to_kind(Kind::Float)
                .mean(Kind::Float)
                .double_value(&[]);
            assert_eq!(r.point, *point);
            assert!(
                close(r.std, std.double_value(&[]))
                    && (r.mean - mean.double_value(&[])).abs() < 1e-5
                    && close(r.saturation, sat),
                "response {point}"
            );
        }
    }

    /// One probed step as the training loop takes it: taps, a forward pass
    /// in train mode, mean cross-entropy backward, collect. Returns the taps
    /// (their `grad()` is dL/dh), the forward pass and the record.
    fn probed_step(
        net: &dyn Network,
        x: &Tensor,
        y: &Tensor,
    ) -> (Vec<Tensor>, Forward, ProbeRecord) {
        let probe = Probe::new(net);
        let taps = probe.taps(x.size()[0], Device::Cpu);
        let out = net.forward(x, true, Some(&taps));
        out.logits.cross_entropy_for_logits(y).backward();
        let rec = probe.collect(net, &taps, &out.responses).unwrap();
        (taps, out, rec)
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
            let stats = host_grad_stats(&[small.shallow_clone(), small, large]);
            for (i, numel) in [(0, 32.0f64), (1, 32.0), (2, 90_000.0)] {
                let exact = f64::from(value).abs() * numel.sqrt();
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
            for g in 0..3 {
                let row = d.get(g);
                let mean = row.mean(Kind::Double).double_value(&[]);
                let std = row.std(false).double_value(&[]);
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
            },
        )
        .unwrap();
        let x = Tensor::randn([128, 64], (Kind::Float, Device::Cpu));
        let y = Tensor::arange(128, (Kind::Int64, Device::Cpu)).remainder(10);
        let (taps, _, rec) = probed_step(&net, &x, &y);
        for (i, t) in taps.iter().enumerate() {
            let exact = t
                .grad()
                .to_kind(Kind::Double)
                .square()
                .sum(Kind::Double)
                .sqrt()
                .double_value(&[]);
            let got = rec.output[i].l2;
            assert!(got > 0.0 && exact > 0.0, "point {i}: {got:e} / {exact:e}");
            assert!(
                (got - exact).abs() <= 1e-6 * exact,
                "point {i}: {got:e} vs {exact:e}"
            );
            assert_eq!(rec.output[i].zero_fraction, 0.0, "point {i}");
        }
        // The instrument sees the vanishing: the input layer's rms is far
        // below float32's squaring limit (~1e-19).
        assert!(rec.output[0].rms < 1e-19, "{:e}", rec.output[0].rms);
        assert_eq!(
            Probe::new(&net).trunk().iter().filter(|t| **t).count(),
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
            probed_step(&net, &x, &y).2
        };
        let (a, b) = (read(1.0), read(4.0));
        let rel = |x: f64, y: f64| (x - y).abs() / y.abs();
        assert!(rel(b.output[2].rms * 4.0, a.output[2].rms) < 1e-3);
        let (wa, wb) = (a.weight[2].unwrap(), b.weight[2].unwrap());
        assert!(rel(wb.norm, 4.0 * wa.norm) < 1e-6);
        assert!(rel(wb.grad.l2 * 4.0, wa.grad.l2) < 1e-3);
        assert!(rel(wb.grad.l2 * wb.norm, wa.grad.l2 * wa.norm) < 1e-3);
        // The relative gradient falls as 1/‖W‖²: the angular step shrinks.
        assert!(rel(wb.relative() * 16.0, wa.relative()) < 1e-3);
        // The other layers do not see the change.
        assert!(rel(b.output[3].rms, a.output[3].rms) < 1e-3);
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
        let (_, _, rec) = probed_step(&net, &x, &y);
        let first = rec.responses[0];
        assert_eq!(first.point, 0);
        assert_eq!(first.dead, 4.0 / 16.0, "{first:?}");
        assert!(
            first.saturation > first.dead && first.saturation < 0.9,
            "{first:?}"
        );
    }
}
