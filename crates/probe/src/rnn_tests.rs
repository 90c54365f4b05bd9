//! Issue 34 §3, the probe through time: the recurrent family's weight
//! blocks and gate readings.

use crate::read::Readings;
use crate::tests::probed_step_reading;
use crate::{Known, Probe, ProbeRecord};
use gradscope_kernels as kernels;
use gradscope_models::rnn::{step_name, Cell, Rnn, RnnConfig};
use gradscope_models::{Activation, Init, Network, Reads};
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
