//! Loss-landscape slices of a trained run (Li et al. 2018, "Visualizing the
//! Loss Landscape of Neural Nets"; `gradscope landscape`).
//!
//! A run trained with `train.save_weights` leaves `model.ot`. Its network
//! is rebuilt from the run's own `run.json` (the experiment and the run's
//! variant, depth, seed and swept values), the weights θ are loaded, and two
//! random directions δ and η are drawn from a seed and **filter-normalized**
//! as Li et al. (§4) do: every filter (the slice of a weight along its
//! output unit or channel, dimension 0) is rescaled to the norm of the same
//! filter of θ, and the entries of BatchNorm and bias parameters (every
//! parameter of one dimension) are 0. Without this the scale of a direction
//! would differ between nets and layers, and sharper-looking minima could be
//! an artefact of weight scale (BN nets are invariant to it).
//!
//! The training loss L(θ + αδ + βη) and error are then evaluated on a fixed
//! sample (the first `samples` training examples, without augmentation) in
//! eval mode (BatchNorm with its running statistics, as trained) for α and
//! β on a square grid over [−span, span]. The grid's evaluation is the hot
//! loop: each point costs one forward pass over the sample in chunks of 256
//! without autograd, plus one update of the weights in place.
//!
//! With [`Weights::Init`] the grid is centred on the run's initial weights
//! instead: the network is built again after seeding libtorch with the
//! run's seed, as training did, so θ is the run's own θ₀ on CPU (a control:
//! what the architecture's surface looks like before training).

use crate::plan::{plan, RunSpec};
use crate::record::{read_record, RunRecord};
use crate::sweep::load_dataset;
use crate::train_loop::{build_network, evaluate};
use crate::TrainError;
use gradscope_data::Split;
use gradscope_format::files::RUN_JSON;
use gradscope_format::landscape::{grid_axis, LandscapeRow, Weights};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Instant;
use tch::{nn, Device, Kind, Tensor};

/// The grid and sample of `gradscope landscape`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// Points per side: odd, so that (0, 0), the trained weights, is one.
    pub grid: usize,
    /// Half-width of the grid, in units of the filter-normalized directions
    /// (1 moves every filter by its own norm).
    pub span: f64,
    /// Training examples the loss is the mean of.
    pub samples: usize,
    /// Seed of the random directions.
    pub seed: u64,
    /// The weights the grid is centred on.
    pub at: Weights,
}

impl Options {
    /// Checks the options; the error names the option.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |field: &str, message: String| {
            Err(TrainError::Invalid {
                field: field.to_owned(),
                message,
            })
        };
        if self.grid < 3 || self.grid > 501 || self.grid.is_multiple_of(2) {
            return bad(
                "--grid",
                format!(
                    "{} must be odd and from 3 to 501, so that the grid holds the trained weights at its centre",
                    self.grid
                ),
            );
        }
        if let Some(why) = gradscope_format::landscape::span_problem(self.span) {
            return bad("--span", why);
        }
        if self.samples == 0 {
            return bad("--samples", "must be at least 1".to_owned());
        }
        Ok(())
    }
}

/// One run's landscape.
#[derive(Debug)]
pub struct Landscape {
    /// The run's `run.json`.
    pub record: RunRecord,
    /// The grid, β-major (every α of the first β, then of the next).
    pub rows: Vec<LandscapeRow>,
    /// The training examples the loss is the mean of (fewer than asked
    /// when the training split is smaller).
    pub samples: usize,
    /// Seconds the grid took.
    pub elapsed_s: f64,
}

/// A trained run, loaded: its network with the saved weights on `device`.
pub struct TrainedRun {
    pub record: RunRecord,
    pub vs: nn::VarStore,
    pub net: Box<dyn gradscope_models::Network>,
    pub data: gradscope_data::Dataset,
}

/// Rebuilds the network of the run in `run_dir` from its `run.json` and
/// loads its saved weights. Errors name the file: no `run.json`, a run
/// that is not in its experiment's plan, no `model.ot` (with how to save
/// one), weights of another network.
pub fn load_run(run_dir: &Path, device: Device) -> Result<TrainedRun, TrainError> {
    load_run_at(run_dir, device, Weights::Trained)
}

/// [`load_run`] with the weights `at` chooses: the saved ones, or the
/// run's initial ones, built again from its seed (no `model.ot` needed).
pub fn load_run_at(run_dir: &Path, device: Device, at: Weights) -> Result<TrainedRun, TrainError> {
    let (record, run) = check_run_at(run_dir, at)?;
    let data = load_dataset(&crate::sweep::run_dataset(&record.config, &run))?.to_device(device);
    // The seed training set before building the net (train_loop::train_run).
    tch::manual_seed(run.seed as i64);
    let mut vs = nn::VarStore::new(device);
    let net = build_network(&vs.root(), &record.config, &data, &run)?;
    if at == Weights::Trained {
        crate::weights::load(run_dir, &mut vs)?;
    }
    Ok(TrainedRun {
        record,
        vs,
        net,
        data,
    })
}

/// What can be checked of a run folder without loading anything large: a
/// `run.json` that reads, a run its experiment plans, and saved weights.
/// Returns the record and the run.
pub fn check_run(run_dir: &Path) -> Result<(RunRecord, RunSpec), TrainError> {
    check_run_at(run_dir, Weights::Trained)
}

/// [`check_run`] for a grid centred on `at`: the initial weights need no
/// saved ones.
pub fn check_run_at(run_dir: &Path, at: Weights) -> Result<(RunRecord, RunSpec), TrainError> {
    let json = run_dir.join(RUN_JSON);
    if !json.is_file() {
        return Err(TrainError::File {
            path: run_dir.to_path_buf(),
            message: format!("no {RUN_JSON}: not a run folder (give runs/RUN of a results folder)"),
        });
    }
    let record = read_record(&json)?;
    let run: RunSpec = plan(&record.config)
        .into_iter()
        .find(|r| r.name() == record.run)
        .ok_or_else(|| TrainError::File {
            path: json.clone(),
            message: format!(
                "run {:?} is not one of the runs its experiment plans",
                record.run
            ),
        })?;
    if at == Weights::Trained {
        crate::weights::check(run_dir)?;
    }
    Ok((record, run))
}

/// One parameter with its trained value and its two directions.
struct Param {
    var: Tensor,
    theta: Tensor,
    delta: Tensor,
    eta: Tensor,
}

/// A random direction for `theta`, filter-normalized (see the module):
/// each slice along dimension 0 has the norm of `theta`'s slice; zeros for
/// a parameter of one dimension (BatchNorm's γ and β, biases).
pub fn filter_normalized(theta: &Tensor) -> Tensor {
    if theta.dim() <= 1 {
        return theta.zeros_like();
    }
    let d = theta.randn_like();
    let filters = theta.size()[0];
    let norms = |t: &Tensor| {
        t.reshape([filters, -1])
            .square()
            .sum_dim_intlist([1i64].as_slice(), false, Kind::Float)
            .sqrt()
    };
    // A filter of θ that is all zeros gets a zero direction.
    let scale = norms(theta) / norms(&d).clamp_min(1e-30);
    let mut shape = vec![filters];
    shape.resize(theta.dim(), 1);
    d * scale.reshape(shape)
}

/// The trainable parameters in path order, with θ and both directions,
/// drawn from `seed` (δ for every parameter, then η).
fn directions(vs: &nn::VarStore, seed: u64) -> Vec<Param> {
    let mut vars: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    tch::manual_seed(seed as i64);
    let _g = tch::no_grad_guard();
    let thetas: Vec<Tensor> = vars.iter().map(|(_, v)| v.detach().copy()).collect();
    let deltas: Vec<Tensor> = thetas.iter().map(filter_normalized).collect();
    let etas: Vec<Tensor> = thetas.iter().map(filter_normalized).collect();
    vars.into_iter()
        .zip(thetas)
        .zip(deltas.into_iter().zip(etas))
        .map(|(((_, var), theta), (delta, eta))| Param {
            var,
            theta,
            delta,
            eta,
        })
        .collect()
}

/// Evaluates the landscape of the run in `run_dir` (see the module).
/// `progress(done, total)` is told after every grid point; `Ok(None)` when
/// `stop` was set before the grid was done (nothing of it is kept).
pub fn evaluate_run(
    run_dir: &Path,
    opts: &Options,
    device: Device,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Option<Landscape>, TrainError> {
    opts.validate()?;
    let TrainedRun {
        record,
        vs,
        net,
        data,
    } = load_run_at(run_dir, device, opts.at)?;
    let n = (opts.samples as i64).min(data.train.len());
    let sample = Split {
        x: data.train.x.narrow(0, 0, n),
        y: data.train.y.narrow(0, 0, n),
    };
    let params = directions(&vs, opts.seed);
    let axis = grid_axis(opts.grid, opts.span);
    let total = axis.len() * axis.len();
    let started = Instant::now();
    let mut rows = Vec::with_capacity(total);
    for &beta in &axis {
        for &alpha in &axis {
            tch::no_grad(|| {
                for p in &params {
                    let moved = &p.theta + &p.delta * alpha + &p.eta * beta;
                    p.var.shallow_clone().copy_(&moved);
                }
            });
            let Some((loss, error)) = evaluate(net.as_ref(), &sample, record.config.task, stop)
            else {
                return Ok(None);
            };
            rows.push(LandscapeRow {
                alpha,
                beta,
                loss: Some(loss),
                error: Some(error),
            });
            progress(rows.len(), total);
        }
    }
    Ok(Some(Landscape {
        record,
        rows,
        samples: n as usize,
        elapsed_s: started.elapsed().as_secs_f64(),
    }))
}
