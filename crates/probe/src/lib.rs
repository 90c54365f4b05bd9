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

/// The numbers one probe step brings back, per probe point, input side first.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeRecord {
    /// L2 norm of each weight gradient; `None` for a point without a weight
    /// (NaN where libtorch left the gradient undefined).
    pub weight_l2: Vec<Option<f64>>,
    pub weight_rms: Vec<Option<f64>>,
    /// L2 norm of dL/dh at each probe point's output.
    pub output_l2: Vec<f64>,
    pub output_rms: Vec<f64>,
    /// Statistics of each response, in forward order.
    pub responses: Vec<ResponseStats>,
}

/// Mean, std and saturated fraction of one response.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResponseStats {
    /// The probe point the response follows.
    pub point: usize,
    pub mean: f64,
    pub std: f64,
    pub saturation: f64,
}

impl ProbeRecord {
    /// True when every gradient norm is finite (a NaN or Inf means the run
    /// has diverged).
    pub fn all_finite(&self) -> bool {
        self.weight_l2
            .iter()
            .flatten()
            .chain(&self.output_l2)
            .all(|v| v.is_finite())
    }
}

/// Probing for one network: which layers, and how big their outputs are.
#[derive(Debug)]
pub struct Probe {
    /// Per probe point: elements of the weight (`None`: no weight), and the
    /// shape of one example's output.
    weight_numel: Vec<Option<f64>>,
    output_shapes: Vec<Vec<i64>>,
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
        let weight_grads: Vec<Tensor> = net
            .probe_points()
            .iter()
            .filter_map(|p| p.weight.as_ref())
            .map(grad_of)
            .collect();
        let tap_grads: Vec<Tensor> = taps.iter().map(grad_of).collect();
        let response_values: Vec<Tensor> = responses.iter().map(|(_, r)| r.detach()).collect();

        let l2 = |x: &Tensor, dims: &[i64]| x.norm_scalaropt_dim(2, dims, false).unsqueeze(0);
        let activation = self.activation;
        let stats = |x: &Tensor, dims: &[i64]| {
            let (std, mean) = x.std_mean_dim(dims, false, false);
            let saturated =
                activation
                    .saturated(x)
                    .to_kind(Kind::Float)
                    .mean_dim(dims, false, Kind::Float);
            Tensor::stack(&[mean, std, saturated], 0)
        };
        let (w_part, w_order) = grouped(&weight_grads, l2);
        let (o_part, o_order) = grouped(&tap_grads, l2);
        let (s_part, s_order) = grouped(&response_values, stats);
        let parts: Vec<Tensor> = w_part.into_iter().chain(o_part).chain(s_part).collect();
        let host: Vec<f32> = if parts.is_empty() {
            Vec::new()
        } else {
            Vec::try_from(Tensor::cat(&parts, 0).to_device(Device::Cpu))?
        };
        let host: Vec<f64> = host.into_iter().map(f64::from).collect();

        let (w_len, o_len) = (weight_grads.len(), tap_grads.len());
        let weight_norms = ungroup(&host[..w_len], &w_order, 1).remove(0);
        let output_l2 = ungroup(&host[w_len..w_len + o_len], &o_order, 1).remove(0);
        let mut st = ungroup(&host[w_len + o_len..], &s_order, 3);
        let (saturation, std, mean) = (
            st.pop().unwrap_or_default(),
            st.pop().unwrap_or_default(),
            st.pop().unwrap_or_default(),
        );

        let mut weight_norms = weight_norms.into_iter();
        let weight_l2: Vec<Option<f64>> = self
            .weight_numel
            .iter()
            .map(|w| w.and_then(|_| weight_norms.next()))
            .collect();
        // Taps share the batch size, so one example's numel times the batch.
        let batch = taps.first().map(|t| t.size()[0]).unwrap_or(1) as f64;
        let output_numel: Vec<f64> = self
            .output_shapes
            .iter()
            .map(|s| s.iter().product::<i64>() as f64 * batch)
            .collect();
        debug_assert_eq!(output_l2.len(), n);
        Ok(ProbeRecord {
            weight_rms: weight_l2
                .iter()
                .zip(&self.weight_numel)
                .map(|(v, n)| Some(v.as_ref()? / n.as_ref()?.sqrt()))
                .collect(),
            output_rms: output_l2
                .iter()
                .zip(&output_numel)
                .map(|(v, n)| v / n.sqrt())
                .collect(),
            weight_l2,
            output_l2,
            responses: responses
                .iter()
                .enumerate()
                .map(|(i, (point, _))| ResponseStats {
                    point: *point,
                    mean: mean[i],
                    std: std[i],
                    saturation: saturation[i],
                })
                .collect(),
        })
    }
}

/// Tensors larger than this are reduced one by one: stacking them would copy
/// megabytes (CNN feature maps) to save one op dispatch, and measured slower.
const GROUP_MAX_NUMEL: i64 = 1 << 16;

/// Applies `reduce` once per group of same-shape small tensors (one per
/// large tensor): `reduce` gets the stack `[g, ...shape]` and the dims to
/// reduce, and returns `[k, g]`. Returns each group's flattened results
/// (still on the device) and the groups' member indices in the order their
/// values appear.
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
            reduce(&stacked.to_kind(Kind::Float), &dims).flatten(0, -1)
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
    use gradscope_models::{Init, Norm, Variant};
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
        let probe = Probe::new(&net);
        let x = Tensor::randn([5, 6], (Kind::Float, Device::Cpu));
        let y = Tensor::from_slice(&[0i64, 1, 2, 3, 0]);
        let taps = probe.taps(5, Device::Cpu);
        let out = net.forward(&x, true, Some(&taps));
        out.logits.cross_entropy_for_logits(&y).backward();
        let rec = probe.collect(&net, &taps, &out.responses).unwrap();

        let logits = net.forward(&x, true, None).logits.detach();
        let expected = (logits.softmax(1, Kind::Float) - y.one_hot(4).to_kind(Kind::Float)) / 5.0;
        let expected_l2 = expected.norm().double_value(&[]);
        assert!(
            (rec.output_l2[2] - expected_l2).abs() < 1e-6 * expected_l2.max(1.0),
            "{} vs {expected_l2}",
            rec.output_l2[2]
        );
        assert!((rec.output_rms[2] - expected_l2 / 20f64.sqrt()).abs() < 1e-6);
        // The weight gradient norm equals the norm of W.grad() itself.
        let w2 = net.probe_points()[2]
            .weight
            .as_ref()
            .unwrap()
            .grad()
            .norm()
            .double_value(&[]);
        assert!((rec.weight_l2[2].unwrap() - w2).abs() < 1e-6);
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
        let probe = Probe::new(&net);
        let x = Tensor::randn([6, 1, 8, 8], (Kind::Float, Device::Cpu));
        let y = Tensor::from_slice(&[0i64, 1, 2, 0, 1, 2]);
        let taps = probe.taps(6, Device::Cpu);
        let out = net.forward(&x, true, Some(&taps));
        out.logits.cross_entropy_for_logits(&y).backward();
        let rec = probe.collect(&net, &taps, &out.responses).unwrap();
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-5 * b.abs().max(1e-6);
        for (i, t) in taps.iter().enumerate() {
            assert!(
                close(rec.output_l2[i], t.grad().norm().double_value(&[])),
                "tap {i}"
            );
        }
        for (i, p) in net.probe_points().iter().enumerate() {
            match &p.weight {
                Some(w) => assert!(
                    close(rec.weight_l2[i].unwrap(), w.grad().norm().double_value(&[])),
                    "weight {i}"
                ),
                None => assert!(rec.weight_l2[i].is_none()),
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
}
