//! The input–output Jacobian of an MLP's deep trunk and its singular
//! values (Pennington, Schoenholz & Ganguli 2017; `gradscope jacobian`).
//!
//! The trunk is the map from the first hidden pre-activation h(0) = W0·x + b0
//! to the last one, h(d−2) (the input to the head's nonlinearity), so that
//! J = ∂h(d−2)/∂h(0) = W(d−2)·D(d−3)·W(d−3) ⋯ W(1)·D(0) is the square
//! width × width product of d − 2 layers that Pennington et al. study
//! (D(l) the diagonal of φ′). The input layer is left out: its 784 × width
//! shape would add a Marchenko–Pastur spread of its own that has nothing
//! to do with depth, and the head is left out as the paper leaves it out.
//!
//! J is exact: one backward pass per row of J (per unit of h(d−2)), with
//! autograd, through the network rebuilt from the run's `run.json` and
//! cast to float64 (so the smallest singular values of a 100-layer
//! product are not float32 rounding). Every example's row comes from the
//! same pass: in eval mode h(d−2) of one example depends on h(0) of that
//! example alone, so the gradient of the batch's sum of unit i is row i of
//! every example's J at once.

use crate::landscape::{check_run_at, load_run_at, TrainedRun};
use crate::record::RunRecord;
use crate::TrainError;
use gradscope_format::jacobian::JacobianRow;
use gradscope_format::landscape::Weights;
use gradscope_models::spec::{Label, ModelSpec};
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// J of every example: `output` is [B, m] and depends on `input` ([B, n],
/// part of the same graph) example by example; returns [B, m, n], row i
/// from one backward pass of Σ_b output[b, i] (see the module). The graph
/// is kept between rows and freed with the tensors.
pub fn jacobian(input: &Tensor, output: &Tensor) -> Result<Tensor, TrainError> {
    let size = output.size();
    let m = match size.as_slice() {
        [_, m] => *m,
        _ => {
            return Err(TrainError::Invalid {
                field: "jacobian".into(),
                message: format!("the trunk's output has shape {size:?}, not [batch, units]"),
            })
        }
    };
    let rows = (0..m)
        .map(|i| {
            let unit = output.select(1, i).sum(output.kind());
            let mut grads = Tensor::f_run_backward(&[unit], &[input], true, false)?;
            Ok(grads.remove(0))
        })
        .collect::<Result<Vec<Tensor>, TrainError>>()?;
    Ok(Tensor::f_stack(&rows, 1)?)
}

/// The singular values of each matrix of `j` ([B, m, n]), largest first,
/// as [B, min(m, n)] in float64 on the CPU.
pub fn singular_values(j: &Tensor) -> Result<Tensor, TrainError> {
    // torch.svd without U and V: tch's linalg_svdvals always passes a
    // driver, which libtorch refuses on the CPU.
    let (_, s, _) = j.detach().f_svd(true, false)?;
    Ok(s.f_to_kind(Kind::Double)?.f_to_device(Device::Cpu)?)
}

/// What one run's spectrum is of: the run's record and its activation and
/// init, by label (`tanh`, `variance-w1-b0`).
#[derive(Debug)]
pub struct RunSpectra {
    pub record: RunRecord,
    pub activation: String,
    pub init: String,
    /// Every singular value of every example, at each step asked for.
    pub rows: Vec<JacobianRow>,
}

/// The step a spectrum at `at` is of: 0 at init, the run's last step done.
pub fn step_of(record: &RunRecord, at: Weights) -> usize {
    match at {
        Weights::Init => 0,
        Weights::Trained => record.steps_done,
    }
}

/// Checks that `run_dir` is a run of the mlp family with what `at` needs
/// (saved weights for the trained ones); the error names the run and its
/// family, or the file and the setting that would have saved it.
pub fn check_run(run_dir: &Path, at: &[Weights]) -> Result<(), TrainError> {
    for &w in at {
        let (record, run) = check_run_at(run_dir, w)?;
        let exp = record.config.resolved(&run.setting);
        if !matches!(exp.model, ModelSpec::Mlp(_)) {
            return Err(TrainError::Invalid {
                field: run_dir.display().to_string(),
                message: format!(
                    "run {} is of the {} family; gradscope jacobian takes MLP runs only (the trunk is its chain of hidden layers)",
                    record.run,
                    exp.model.family_name()
                ),
            });
        }
        if record.depth < 3 {
            return Err(TrainError::Invalid {
                field: run_dir.display().to_string(),
                message: format!(
                    "run {} has depth {}: the trunk from the first hidden layer to the last needs depth 3 or more",
                    record.run, record.depth
                ),
            });
        }
    }
    Ok(())
}

/// The spectra of the run in `run_dir` at each of `at`, for its first
/// `examples` training inputs (see the module).
pub fn run_spectra(
    run_dir: &Path,
    at: &[Weights],
    examples: usize,
    device: Device,
) -> Result<RunSpectra, TrainError> {
    check_run(run_dir, at)?;
    let mut rows = Vec::new();
    let mut labels = None;
    for &w in at {
        let TrainedRun {
            record,
            vs,
            net,
            data,
        } = load_run_at(run_dir, device, w)?;
        // float64 in place: the layers hold shallow copies of these
        // variables, so they see the new data.
        tch::no_grad(|| {
            for (_, mut v) in vs.variables() {
                if v.is_floating_point() {
                    v.set_data(&v.to_kind(Kind::Double));
                }
            }
        });
        let n = (examples as i64).min(data.train.len());
        let x = data.train.x.narrow(0, 0, n).to_kind(Kind::Double);
        let points = net.probe_points().len();
        let rec = gradscope_models::Recording::new(points);
        let _ = net.forward(&x, false, Some(&rec));
        let (outputs, _) = rec.finish();
        let point = |i: usize| {
            outputs
                .get(i)
                .and_then(|o| o.as_ref())
                .map(|t| t.shallow_clone())
                .ok_or_else(|| TrainError::Invalid {
                    field: run_dir.display().to_string(),
                    message: format!("the forward pass recorded no output at probe point {i}"),
                })
        };
        let (first, last) = (point(0)?, point(points.saturating_sub(2))?);
        let j = jacobian(&first, &last.flatten(1, -1))?;
        let s = singular_values(&j)?;
        let s: Vec<Vec<f64>> = Vec::<Vec<f64>>::try_from(&s)?;
        let step = step_of(&record, w);
        for (example, values) in s.into_iter().enumerate() {
            for (index, singular_value) in values.into_iter().enumerate() {
                rows.push(JacobianRow {
                    step,
                    example,
                    index,
                    singular_value,
                });
            }
        }
        if labels.is_none() {
            let (_, run) = check_run_at(run_dir, w)?;
            let exp = record.config.resolved(&run.setting);
            let init = match &exp.model {
                ModelSpec::Mlp(m) => m.init.value().label(),
                _ => String::new(),
            };
            labels = Some((record, net.activation().label(), init));
        }
    }
    let (record, activation, init) = labels.ok_or_else(|| TrainError::Invalid {
        field: "--at".into(),
        message: "no weights to take the Jacobian of".into(),
    })?;
    Ok(RunSpectra {
        record,
        activation,
        init,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A random orthogonal n × n matrix: Q of the QR of a Gaussian matrix.
    fn orthogonal(n: i64) -> Tensor {
        let g = Tensor::randn([n, n], (Kind::Double, Device::Cpu));
        let (q, _) = Tensor::linalg_qr(&g, "reduced");
        q
    }

    #[test]
    fn a_linear_orthogonal_trunk_is_exactly_isometric() {
        // Saxe et al. (2014), Pennington et al. (2017) §2: a product of
        // orthogonal matrices is orthogonal, so every singular value of a
        // deep linear net with orthogonal weights is 1. Through the same
        // row-by-row Jacobian the command uses, at depth 50 and width 32,
        // for 3 examples.
        tch::manual_seed(7);
        let (b, n, depth) = (3, 32, 50);
        let input = Tensor::randn([b, n], (Kind::Double, Device::Cpu)).set_requires_grad(true);
        let mut h = input.shallow_clone();
        for _ in 0..depth {
            h = h.matmul(&orthogonal(n).tr());
        }
        let j = jacobian(&input, &h).unwrap();
        assert_eq!(j.size(), vec![b, n, n]);
        let s = Vec::<Vec<f64>>::try_from(&singular_values(&j).unwrap()).unwrap();
        assert_eq!(s.len(), b as usize);
        for values in s {
            assert_eq!(values.len(), n as usize);
            for v in values {
                assert!((v - 1.0).abs() < 1e-5, "singular value {v}");
            }
        }
    }

    #[test]
    fn the_jacobian_of_a_known_map_is_its_matrix() {
        // h = tanh(x)·Aᵀ: J = A·diag(1 − tanh²(x)), per example.
        tch::manual_seed(3);
        let a = Tensor::randn([4, 5], (Kind::Double, Device::Cpu));
        let x = Tensor::randn([2, 5], (Kind::Double, Device::Cpu)).set_requires_grad(true);
        let out = x.tanh().matmul(&a.tr());
        let j = jacobian(&x, &out).unwrap();
        for e in 0..2 {
            let d: Tensor = 1.0 - x.get(e).detach().tanh().square();
            let want = &a * d.unsqueeze(0);
            let err = (j.get(e) - want).abs().max().double_value(&[]);
            assert!(err < 1e-12, "example {e}: {err}");
        }
    }

    #[test]
    fn a_trunk_output_that_is_not_a_matrix_is_refused() {
        let x = Tensor::randn([2, 3], (Kind::Double, Device::Cpu)).set_requires_grad(true);
        let out = x.unsqueeze(2);
        assert!(matches!(
            jacobian(&x, &out),
            Err(TrainError::Invalid { .. })
        ));
    }
}
