//! Issue 34 §3, the probe through time: the recurrent family's weight
//! blocks and gate readings, and the decay of a linear recurrence.

use crate::read::Readings;
use crate::tests::probed_step_reading;
use crate::{Known, Probe, ProbeRecord};
use gradscope_kernels as kernels;
use gradscope_models::rnn::{step_name, Cell, Rnn, RnnConfig};
use gradscope_models::{Activation, Init, Network, ProbePoint, Reads, Recording};
use tch::{nn, Device, Kind, Tensor};

fn rnn(vs: &nn::VarStore, cell: Cell, layers: usize, forget_bias: f64) -> Rnn {
    let config = RnnConfig {
        input_size: 2,
        length: 7,
        outputs: 3,
        width: 6,
        layers,
        cell,
        init: Init::PytorchDefault,
        forget_bias,
    };
    Rnn::new(&vs.root(), config).unwrap()
}

fn batch() -> (Tensor, Tensor) {
    let x = Tensor::randn([5, 7, 2], (Kind::Float, Device::Cpu));
    (x, Tensor::from_slice(&[0i64, 1, 2, 0, 1]))
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs().max(1e-30)
}

/// Issue 34 §3: a gate block's `weight` row is the block's rows of
/// autograd's gradient of its parameter (`Tensor::run_backward`, PyTorch's
/// `autograd.grad`, asked for every parameter), read as the training loop
/// reads it: ‖∇W_block‖, its rms and zero fraction, ‖W_block‖ and their
/// ratio, for every matrix of both layers of each cell. The blocks of the
/// last layer's W_hh add up to the whole one on `t000.h`. Given what the
/// loop knows of the whole parameters (their norms and gradient sums), the
/// blocks still read their own.
#[test]
fn gate_blocks_read_the_rows_of_autograds_gradient() {
    for cell in [Cell::Tanh, Cell::Lstm, Cell::Gru] {
        tch::manual_seed(6);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = rnn(&vs, cell, 2, 1.0);
        let (x, y) = batch();
        let (grads, responses, rec) = probed_step_reading(&vs, &net, &x, &y, None, false);
        let params = vs.trainable_variables();
        let loss = net.forward(&x, true, None).cross_entropy_for_logits(&y);
        let want = Tensor::run_backward(&[&loss], &params, false, false);
        let mut blocks = 0;
        let mut last_hh = 0.0;
        for (i, p) in net.probe_points().iter().enumerate() {
            let Reads::WeightRows {
                parameter,
                first_row,
            } = &p.reads
            else {
                continue;
            };
            let k = params
                .iter()
                .position(|q| q.data_ptr() == parameter.data_ptr())
                .unwrap();
            let rows = p.weight.as_ref().unwrap().size()[0];
            let g = want[k].narrow(0, *first_row, rows).to_kind(Kind::Double);
            let l2 = g.norm().double_value(&[]);
            let zero = g.eq(0.0).to_kind(Kind::Double).mean(Kind::Double);
            let w = parameter.narrow(0, *first_row, rows).to_kind(Kind::Double);
            let norm = w.norm().double_value(&[]);
            let got = rec.weight[i].unwrap();
            let name = &p.name;
            assert!(
                close(got.grad.l2, l2, 1e-6),
                "{name}: {} vs {l2}",
                got.grad.l2
            );
            let rms = l2 / (g.numel() as f64).sqrt();
            assert!(close(got.grad.rms, rms, 1e-6), "{name}");
            assert_eq!(got.grad.zero_fraction, zero.double_value(&[]), "{name}");
            assert!(close(got.norm, norm, 1e-6), "{name}");
            assert!(close(got.relative(), l2 / norm, 1e-6), "{name}");
            assert!(rec.output[i].is_none(), "{name}: no output row");
            if name.starts_with("cell1.w_hh") {
                last_hh += got.grad.l2 * got.grad.l2;
            }
            blocks += 1;
        }
        assert_eq!(blocks, 2 * 2 * cell.gates() as usize, "{cell:?}");
        let whole = rec.weight[0].unwrap().grad.l2;
        assert!(
            close(last_hh.sqrt(), whole, 1e-6),
            "{cell:?}: W_hh by blocks"
        );

        let refs: Vec<&Tensor> = params.iter().collect();
        let probe = Probe::new(&net, &refs);
        let norms: Vec<Option<f64>> = params
            .iter()
            .map(|p| Some(p.norm().double_value(&[])))
            .collect();
        let (sums, _) = kernels::read(&grads.params, &[], kernels::Flat::NONE);
        let sums: Vec<Option<kernels::GradSums>> = sums.into_iter().map(Some).collect();
        let known = Known {
            norms: &norms,
            grads: &sums,
        };
        let given = probe
            .collect_knowing(&net, &grads, &responses, known)
            .unwrap();
        for (i, (a, b)) in given.weight.iter().zip(&rec.weight).enumerate() {
            assert_eq!(a.is_some(), b.is_some(), "{cell:?} point {i}");
            if let (Some(a), Some(b)) = (a, b) {
                assert!(close(a.grad.l2, b.grad.l2, 1e-6), "{cell:?} point {i}");
                assert!(close(a.norm, b.norm, 1e-6), "{cell:?} point {i}");
            }
        }
    }
}

/// The gate readings of a probed step, at each gate point: `saturation`
/// is the sigmoid's flat part ([`Activation::saturated`], σ < 0.01 or
/// σ > 0.99), h_t's stays tanh's (|a| > 0.99). An LSTM whose forget bias is
/// −8 has its forget gate near σ(−8) ≈ 3e-4: saturated as a sigmoid, and
/// never as tanh would count it. The host's one-pass reading, libtorch's
/// (the CUDA path) and the reading during the forward pass agree.
#[test]
fn gate_rows_are_read_as_sigmoids() {
    for cell in [Cell::Lstm, Cell::Gru] {
        tch::manual_seed(7);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = rnn(&vs, cell, 1, -8.0);
        let (x, y) = batch();
        let (grads, responses, rec) = probed_step_reading(&vs, &net, &x, &y, None, true);
        let gates = cell.read_gates().len();
        assert_eq!(
            responses.len(),
            7 + 7 * gates,
            "h_t, then each gate per step"
        );
        for (point, r) in &responses {
            let p = &net.probe_points()[*point];
            let got = rec.responses.iter().find(|s| s.point == *point).unwrap();
            let act = match p.reads {
                Reads::Responses(a) => a,
                _ => Activation::Tanh,
            };
            let mean_of = |t: Tensor| t.to_kind(Kind::Double).mean(Kind::Double).double_value(&[]);
            let saturation = mean_of(act.saturated(r));
            assert_eq!(got.saturation, saturation, "{}", p.name);
            assert!(
                close(got.mean, mean_of(r.shallow_clone()), 1e-6),
                "{}",
                p.name
            );
            if p.name.ends_with("gate_f") {
                assert!(saturation > 0.9, "{}: {saturation}", p.name);
                assert_eq!(mean_of(Activation::Tanh.saturated(r)), 0.0);
            }
        }
        let first = format!("gate_{}", cell.read_gates()[0].0);
        assert_eq!(
            net.probe_points()[net.gate_point(0, 3)].name,
            step_name(3, 7, &first)
        );

        let params = vs.trainable_variables();
        let probe = Probe::new(&net, &params.iter().collect::<Vec<_>>());
        let t = probe.tensors(&net, &grads, &responses, Known::default());
        let a = Readings::onepass(&t, net.activation());
        let b = Readings::libtorch(&t, net.activation()).unwrap();
        for (x, y) in a.responses.iter().zip(&b.responses) {
            assert_eq!(x[2], y[2], "saturated {x:?} vs {y:?}");
            assert!((x[0] - y[0]).abs() <= 1e-6, "mean {x:?} vs {y:?}");
        }
        let early = |from: usize| -> ProbeRecord {
            tch::manual_seed(7);
            let vs = nn::VarStore::new(Device::Cpu);
            let net = rnn(&vs, cell, 1, -8.0);
            let (x, y) = batch();
            probed_step_reading(&vs, &net, &x, &y, Some(from), true).2
        };
        assert_eq!(early(0).responses, rec.responses, "read during the pass");
    }
}

/// A linear recurrence, h_t = W h_{t−1} + U x_t, as a network of its own:
/// the rnn family has no identity cell, and its probe points are the
/// family's (h_t on the trunk, W on `t000.h`).
struct LinearRnn {
    w_hh: Tensor,
    w_ih: Tensor,
    head: nn::Linear,
    points: Vec<ProbePoint>,
}

impl LinearRnn {
    /// Every h_t, and the head on the last.
    fn states(&self, x: &Tensor) -> (Vec<Tensor>, Tensor) {
        let (batch, width) = (x.size()[0], self.w_hh.size()[0]);
        let mut h = Tensor::zeros([batch, width], (Kind::Float, Device::Cpu));
        let mut hs = Vec::new();
        for t in 0..x.size()[1] {
            h = h.matmul(&self.w_hh.tr()) + x.select(1, t).matmul(&self.w_ih.tr());
            hs.push(h.shallow_clone());
        }
        (hs, h.apply(&self.head))
    }
}

impl Network for LinearRnn {
    fn forward(&self, x: &Tensor, _train: bool, _rec: Option<&Recording>) -> Tensor {
        self.states(x).1
    }
    fn probe_points(&self) -> &[ProbePoint] {
        &self.points
    }
    fn activation(&self) -> Activation {
        Activation::Tanh
    }
}

/// Issue 34: a linear RNN with an orthogonal W passes the gradient back
/// unchanged in norm, ‖dL/dh_t‖ = ‖dL/dh_T·W^{T−t}‖ = ‖dL/dh_T‖ (Saxe et al.
/// 2014; Arjovsky et al. 2016), so its decay per time step is exactly 0.
/// Read through the probe as a run reads it (its hooks, the trunk profile,
/// the decay fit of `gradscope_format::decay`), with the rnn family's own
/// orthogonal W_hh; the states are handed to the probe's backward pass as
/// a recording would hand them.
#[test]
fn linear_rnn_with_orthogonal_recurrence_has_a_decay_of_zero() {
    tch::manual_seed(8);
    let (t_len, width) = (32, 16);
    let vs = nn::VarStore::new(Device::Cpu);
    let config = RnnConfig {
        input_size: 3,
        length: t_len,
        outputs: 4,
        width,
        layers: 1,
        cell: Cell::Tanh,
        init: Init::Orthogonal { gain: 1.0 },
        forget_bias: 0.0,
    };
    let family = Rnn::new(&(vs.root() / "family"), config).unwrap();
    let cells = &family.cells()[0];
    let (w_hh, w_ih) = (cells.w_hh.shallow_clone(), cells.w_ih.shallow_clone());
    let head = nn::linear(vs.root() / "head", width, 4, Default::default());
    let points = (0..t_len)
        .map(|t| ProbePoint {
            name: step_name(t, t_len, "h"),
            weight: (t == 0).then(|| w_hh.shallow_clone()),
            output_shape: vec![width],
            trunk: true,
            reads: Reads::Output,
        })
        .collect();
    let net = LinearRnn {
        w_hh,
        w_ih,
        head,
        points,
    };
    let x = Tensor::randn([8, t_len as i64, 3], (Kind::Float, Device::Cpu));
    let y = Tensor::from_slice(&[0i64, 1, 2, 3, 0, 1, 2, 3]);
    // The parameters the recurrence uses (not the family net's others).
    let bias = net.head.bs.as_ref().unwrap();
    let params = [&net.w_hh, &net.w_ih, &net.head.ws, bias];
    let probe = Probe::new(&net, &params);
    let (hs, logits) = net.states(&x);
    let loss = logits.cross_entropy_for_logits(&y);
    let grads = probe
        .backward(&loss, &params, hs.into_iter().map(Some).collect())
        .unwrap();
    let rec = probe.collect(&net, &grads, &[]).unwrap();
    let profile = rec.trunk_profile(probe.trunk());
    assert_eq!(profile.len(), t_len);
    let last = profile[t_len - 1];
    for (t, rms) in profile.iter().enumerate() {
        assert!(close(*rms, last, 1e-5), "step {t}: {profile:?}");
    }
    let decay = gradscope_format::decay::decay_per_layer(&profile).unwrap();
    assert!(decay.abs() < 1e-6, "{decay}");
}
