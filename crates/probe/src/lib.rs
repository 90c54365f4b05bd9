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
    /// L2 norm of each weight gradient (NaN where the gradient is undefined).
    pub weight_l2: Vec<f64>,
    pub weight_rms: Vec<f64>,
    /// L2 norm of dL/dh at each probe point's output.
    pub output_l2: Vec<f64>,
    pub output_rms: Vec<f64>,
    /// Mean, std and saturated fraction of each response.
    pub response_mean: Vec<f64>,
    pub response_std: Vec<f64>,
    pub response_saturation: Vec<f64>,
}

impl ProbeRecord {
    /// True when every gradient norm is finite (a NaN or Inf means the run
    /// has diverged).
    pub fn all_finite(&self) -> bool {
        self.weight_l2
            .iter()
            .chain(&self.output_l2)
            .all(|v| v.is_finite())
    }
}

/// Probing for one network: which layers, and how big their outputs are.
#[derive(Debug)]
pub struct Probe {
    /// Per probe point: elements of the weight, and of one example's output.
    weight_numel: Vec<f64>,
    output_shapes: Vec<Vec<i64>>,
    activation: Activation,
}

impl Probe {
    pub fn new(net: &dyn Network) -> Probe {
        let points = net.probe_points();
        Probe {
            weight_numel: points.iter().map(|p| p.weight.numel() as f64).collect(),
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
        responses: &[Tensor],
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
        parts.extend(net.probe_points().iter().map(|p| norm_of_grad(&p.weight)));
        parts.extend(taps.iter().map(norm_of_grad));
        for r in responses {
            let r = r.detach();
            let (std, mean) = r.std_mean(false);
            parts.push(mean);
            parts.push(std);
            parts.push(self.activation.saturation_fraction(&r));
        }
        let host: Vec<f32> = Vec::try_from(Tensor::stack(&parts, 0).to_device(Device::Cpu))?;
        let host: Vec<f64> = host.into_iter().map(f64::from).collect();

        let weight_l2 = host[..n].to_vec();
        let output_l2 = host[n..2 * n].to_vec();
        let stats = &host[2 * n..];
        // Taps share the batch size, so one example's numel times the batch.
        let batch = taps.first().map(|t| t.size()[0]).unwrap_or(1) as f64;
        let output_numel: Vec<f64> = self
            .output_shapes
            .iter()
            .map(|s| s.iter().product::<i64>() as f64 * batch)
            .collect();
        Ok(ProbeRecord {
            weight_rms: rms(&weight_l2, &self.weight_numel),
            output_rms: rms(&output_l2, &output_numel),
            weight_l2,
            output_l2,
            response_mean: stats.iter().step_by(3).copied().collect(),
            response_std: stats.iter().skip(1).step_by(3).copied().collect(),
            response_saturation: stats.iter().skip(2).step_by(3).copied().collect(),
        })
    }
}

/// RMS from an L2 norm: ‖g‖ / √numel.
fn rms(l2: &[f64], numel: &[f64]) -> Vec<f64> {
    l2.iter().zip(numel).map(|(v, n)| v / n.sqrt()).collect()
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
        let w2 = net.probe_points()[2].weight.grad().norm().double_value(&[]);
        assert!((rec.weight_l2[2] - w2).abs() < 1e-6);
        assert!(rec.all_finite());
        assert_eq!(rec.response_std.len(), 2);
    }
}
