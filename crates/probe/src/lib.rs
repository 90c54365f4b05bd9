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
    pub fn collect(
        &self,
        net: &dyn Network,
        taps: &[Tensor],
        responses: &[(usize, Tensor)],
    ) -> Result<ProbeRecord, ProbeError> {
        let n = self.len();
        let norm_of_grad = |t: &Tensor| {
            let g = t.grad();
            if g.defined() {
                g.detach().to_kind(Kind::Float).norm()
            } else {
                Tensor::from(f32::NAN).to_device(t.device())
            }
        };
        let mut parts: Vec<Tensor> = Vec::with_capacity(2 * n + 3 * responses.len());
        let weights: Vec<&Tensor> = net
            .probe_points()
            .iter()
            .filter_map(|p| p.weight.as_ref())
            .collect();
        let n_weights = weights.len();
        parts.extend(weights.into_iter().map(norm_of_grad));
        parts.extend(taps.iter().map(norm_of_grad));
        for (_, r) in responses {
            let r = r.detach();
            let (std, mean) = r.std_mean(false);
            parts.push(mean);
            parts.push(std);
            parts.push(self.activation.saturation_fraction(&r));
        }
        let host: Vec<f32> = Vec::try_from(Tensor::stack(&parts, 0).to_device(Device::Cpu))?;
        let host: Vec<f64> = host.into_iter().map(f64::from).collect();

        let mut weight_norms = host[..n_weights].iter().copied();
        let weight_l2: Vec<Option<f64>> = self
            .weight_numel
            .iter()
            .map(|w| w.and_then(|_| weight_norms.next()))
            .collect();
        let output_l2 = host[n_weights..n_weights + n].to_vec();
        let stats = &host[n_weights + n..];
        // Taps share the batch size, so one example's numel times the batch.
        let batch = taps.first().map(|t| t.size()[0]).unwrap_or(1) as f64;
        let output_numel: Vec<f64> = self
            .output_shapes
            .iter()
            .map(|s| s.iter().product::<i64>() as f64 * batch)
            .collect();
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
                .zip(stats.chunks_exact(3))
                .map(|((point, _), s)| ResponseStats {
                    point: *point,
                    mean: s[0],
                    std: s[1],
                    saturation: s[2],
                })
                .collect(),
        })
    }
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
}
