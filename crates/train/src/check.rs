//! `gradscope check`: everything `gradscope run` checks before it trains,
//! without loading the data or training, plus what each run will cost.
//!
//! - The dataset is measured, not loaded ([`crate::sweep::dataset_info`]:
//!   IDX headers and lengths, CIFAR-10 file sizes), with the subset and
//!   validation settings applied, so a missing folder or a `subset_train`
//!   larger than the split fails here as it would in `run`.
//! - Every network of the plan is built once on the CPU (on a one-example
//!   stand-in of the data's shape), as `run` does, which refuses shapes a
//!   family cannot take and gives each run's parameters and
//!   multiplications.
//! - Depths where the plain net and its residual twin are the same network
//!   are found by building both with one seed and comparing their outputs.
//!
//! The time estimate is rough (see [`estimate_seconds`]): it is there to
//! tell a ten-minute sweep from a ten-hour one, not to schedule a cluster.

use crate::plan::{plan, RunSpec};
use crate::shard;
use crate::spec::{Experiment, ModelSpec};
use crate::sweep::{check_against_data, dataset_info};
use crate::train_loop::build_network;
use crate::TrainError;
use gradscope_data::DatasetInfo;
use gradscope_models::{Network, Variant};
use tch::{nn, Device, Kind, Tensor};

/// Multiplications per second that one CPU thread reaches in a training
/// step, per family ([`mults_per_s`]). Fitted together with
/// [`CPU_LAYER_S`], [`CPU_NORM_S`] and [`CPU_EVAL_MULTS_PER_S`] on the
/// published experiments' recorded times (the sum of `elapsed_s` in
/// `results/*/runs/*/run.json`, one thread except `residual-inits` and
/// `resnet50-signs-shape`), minimizing the largest ratio either way between
/// estimate and measurement; docs/PERFORMANCE.md has the table. A family
/// with one published experiment (inception, rnn, transformer, bottleneck)
/// is fitted on that experiment alone, so its agreement there is by
/// construction. The fit is tested against the committed records
/// (crates/train/tests/check_calibration.rs).
pub const MLP_MULTS_PER_S: f64 = 7.7e9;
/// The CIFAR-style CNNs ([`MLP_MULTS_PER_S`]).
pub const CNN_MULTS_PER_S: f64 = 1.5e10;
/// The small Inception nets: many narrow convolutions and concatenations,
/// an order of magnitude below the plain CNNs ([`MLP_MULTS_PER_S`]).
pub const INCEPTION_MULTS_PER_S: f64 = 8.1e8;
/// The recurrent nets, whose per-time-step cost [`CPU_LAYER_S`] carries
/// ([`MLP_MULTS_PER_S`]).
pub const RNN_MULTS_PER_S: f64 = 3.0e10;
/// The transformer blocks ([`MLP_MULTS_PER_S`]).
pub const TRANSFORMER_MULTS_PER_S: f64 = 2.2e10;
/// ResNet-50/101/152 ([`MLP_MULTS_PER_S`]).
pub const BOTTLENECK_MULTS_PER_S: f64 = 3.5e10;

/// Multiplications per second of an evaluation pass (forward only, no
/// autograd) on one thread.
pub const CPU_EVAL_MULTS_PER_S: f64 = 3.0e10;

/// Fixed seconds per weight layer (for a recurrent net, per cell call) per
/// training step: launching its forward, backward and optimizer kernels,
/// which for narrow layers costs more than their arithmetic. Not divided
/// among threads.
pub const CPU_LAYER_S: f64 = 5.0e-4;

/// Extra seconds per normalization (BatchNorm) layer per training step,
/// not divided among threads.
pub const CPU_NORM_S: f64 = 4.0e-4;

/// How many published experiments (results folders with run records) the
/// constants were fitted on, how many estimates land within 1.5× of the
/// recorded time either way, and the factor within which all of them do.
/// crates/train/tests/check_calibration.rs checks all three against the
/// committed records, so `check`'s note that quotes them stays true.
pub const CALIBRATED_ON: usize = 15;
/// See [`CALIBRATED_ON`].
pub const CALIBRATED_WITHIN_1_5: usize = 8;
/// See [`CALIBRATED_ON`].
pub const CALIBRATED_BAND: f64 = 3.0;

/// One thread's training multiplications per second for `model`'s family
/// (the constants above).
pub fn mults_per_s(model: &ModelSpec) -> f64 {
    match model {
        ModelSpec::Mlp(_) => MLP_MULTS_PER_S,
        ModelSpec::Cnn(_) => CNN_MULTS_PER_S,
        ModelSpec::Inception(_) => INCEPTION_MULTS_PER_S,
        ModelSpec::Rnn(_) => RNN_MULTS_PER_S,
        ModelSpec::Transformer(_) => TRANSFORMER_MULTS_PER_S,
        ModelSpec::Bottleneck(_) => BOTTLENECK_MULTS_PER_S,
    }
}

/// How [`PlanCheck::wall_s`] splits runs among `jobs` workers: greedily,
/// longest first, each run to the worker that is free first (ties to the
/// lowest index). Returns the makespan (the busiest worker's total) and
/// each run's worker, in the order of `times`. With no workers or no runs
/// the makespan is 0.
pub fn longest_first(times: &[f64], jobs: usize) -> (f64, Vec<usize>) {
    if jobs == 0 {
        return (0.0, vec![0; times.len()]);
    }
    // The same greedy split as the shards' (longest first onto the least
    // loaded), here over seconds instead of multiplications.
    let of = crate::shard::assign(times, jobs);
    let mut load = vec![0.0f64; jobs];
    for (t, &w) in times.iter().zip(&of) {
        load[w] += t;
    }
    (load.into_iter().fold(0.0, f64::max), of)
}

/// One planned run, as `check` sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunCheck {
    pub run: RunSpec,
    /// Trainable parameters.
    pub params: i64,
    /// Multiplications of one forward pass for one example, summed over the
    /// weight layers (output values × inputs each one reads; biases and
    /// normalization left out, as `gradscope cost` counts).
    pub mults: i64,
    /// Weight layers (probe points with a weight).
    pub weight_layers: usize,
    /// Normalization layers (BatchNorm).
    pub norm_layers: usize,
    /// Rough wall-clock seconds on one CPU thread ([`estimate_seconds`]);
    /// [`RunCheck::estimate_at`] for other thread counts.
    pub estimate_s: f64,
    /// The part of `estimate_s` that threads share: the multiplications.
    pub mults_s: f64,
}

impl RunCheck {
    /// Rough wall-clock seconds on `threads` CPU threads: the
    /// multiplications go `threads` times as fast, the per-layer overheads
    /// do not.
    pub fn estimate_at(&self, threads: usize) -> f64 {
        self.estimate_s - self.mults_s + self.mults_s / threads.max(1) as f64
    }
}

/// What `check` found for the whole experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanCheck {
    /// The data as the runs will see them (after subset and validation).
    pub data: DatasetInfo,
    /// Optimizer steps per run.
    pub steps: usize,
    pub runs: Vec<RunCheck>,
    /// Depths at which the plain and residual nets are one network, each
    /// with the reason.
    pub same_twins: Vec<(usize, String)>,
    /// The mean-field prediction for each plain net it applies to
    /// (crate::theory): `(run name without its seed, decay per layer,
    /// spread)`, e.g. `("plain-tanh-glorot-d20", 0.05, 0.9)`.
    pub theory: Vec<(String, f64, f64)>,
    /// Each run's cost as shards balance it (steps × multiplications per
    /// example), in plan order.
    pub costs: Vec<f64>,
}

/// One shard of [`PlanCheck::shards`]: its runs and its share of the cost.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardPlan {
    pub runs: Vec<String>,
    /// Its cost over the whole experiment's, 0 to 1.
    pub share: f64,
    /// Its estimated wall time ([`estimate_seconds`]) on one CPU thread.
    pub estimate_s: f64,
}

impl PlanCheck {
    /// The estimate for every run together, one after another on one
    /// thread.
    pub fn total_estimate_s(&self) -> f64 {
        self.runs.iter().map(|r| r.estimate_s).sum()
    }

    /// Estimated wall time of the whole plan trained `jobs` runs at a time,
    /// each on `threads` threads: the makespan of [`longest_first`] over
    /// the runs' [`RunCheck::estimate_at`]. Workers sharing the machine's
    /// memory bandwidth are not modelled.
    pub fn wall_s(&self, jobs: usize, threads: usize) -> f64 {
        let times: Vec<f64> = self.runs.iter().map(|r| r.estimate_at(threads)).collect();
        longest_first(&times, jobs.max(1)).0
    }

    /// What `gradscope run --shard I/N` trains for each I, as
    /// [`shard::assign`] splits the runs.
    pub fn shards(&self, count: usize) -> Vec<ShardPlan> {
        let of = shard::assign(&self.costs, count);
        let total: f64 = self.costs.iter().sum::<f64>().max(f64::MIN_POSITIVE);
        // Callers refuse more shards than runs; never build more plans.
        (0..count.clamp(1, self.runs.len().max(1)))
            .map(|i| {
                let mine: Vec<usize> = (0..of.len()).filter(|&r| of[r] == i).collect();
                ShardPlan {
                    runs: mine.iter().map(|&r| self.runs[r].run.name()).collect(),
                    share: mine.iter().map(|&r| self.costs[r]).sum::<f64>() / total,
                    estimate_s: mine.iter().map(|&r| self.runs[r].estimate_s).sum(),
                }
            })
            .collect()
    }
}

/// Rough seconds to train one run on one CPU thread, and the part of it
/// that is multiplications (which more threads share, see
/// [`RunCheck::estimate_at`]): per step, `3 · batch · mults /
/// mults_per_s(family)` (the forward pass, and the backward pass's two
/// products of the same size, one for the inputs' and one for the weights'
/// gradient) plus `weight_layers · CPU_LAYER_S + norm_layers · CPU_NORM_S`
/// (kernel launches); plus the forward passes of every evaluation (the
/// held-out split every `eval_every` steps, both splits at the end) at
/// `CPU_EVAL_MULTS_PER_S`. Probing is not modelled apart (the fit's
/// records include it): every 10 steps it adds a few percent, every step
/// up to about 80% (README, `make bench`). Neither are float32 denormals,
/// which can make a deep net whose signal vanishes several times slower
/// (README's quickstart).
pub fn estimate_seconds(
    exp: &Experiment,
    data: &DatasetInfo,
    mults: i64,
    weight_layers: usize,
    norm_layers: usize,
) -> (f64, f64) {
    let t = &exp.train;
    let steps = t.total_steps(data.train) as f64;
    let mults = mults as f64;
    let overhead = weight_layers as f64 * CPU_LAYER_S + norm_layers as f64 * CPU_NORM_S;
    let evaluations = (steps / t.eval_every.max(1) as f64).floor() + 1.0;
    let eval_examples = evaluations * data.test as f64 + (data.train + data.test) as f64;
    let mults_s = steps * 3.0 * t.batch_size as f64 * mults / mults_per_s(&exp.model)
        + eval_examples * mults / CPU_EVAL_MULTS_PER_S;
    (mults_s + steps * overhead, mults_s)
}

/// A network's parameters, multiplications per example, weight layers and
/// norm layers. Multiplications come from each weighted probe point: its
/// weight's element count (out × in × k × k) times the spatial size of its
/// output (h × w, 1 for a linear layer), which is what `gradscope cost`
/// counts for the families that record their layers; a recurrent net
/// counts its weights once per time step ([`Network::unrolled_cost`]).
pub(crate) fn measure(vs: &nn::VarStore, net: &dyn Network) -> (i64, i64, usize, usize) {
    let params = vs
        .trainable_variables()
        .iter()
        .map(|v| v.numel() as i64)
        .sum();
    let mut mults = 0i64;
    let mut weight_layers = 0;
    // Points with an output: a recurrent net's weight blocks are parts of
    // matrices counted elsewhere, not layers.
    for p in net.probe_points().iter().filter(|p| p.reads.output()) {
        if let Some(w) = &p.weight {
            weight_layers += 1;
            let spatial: i64 = p.output_shape.iter().skip(1).product();
            mults = mults.saturating_add((w.numel() as i64).saturating_mul(spatial.max(1)));
        }
    }
    if let Some((unrolled, calls)) = net.unrolled_cost() {
        (mults, weight_layers) = (unrolled, calls);
    }
    // tch registers a BatchNorm's running mean under this name.
    let norm_layers = vs
        .variables()
        .keys()
        .filter(|k| k.ends_with("running_mean"))
        .count();
    (params, mults, weight_layers, norm_layers)
}

/// Checks `exp` as `gradscope run` would before training, and measures
/// every planned run. Errors are the ones `run` gives for the same file.
pub fn check_experiment(exp: &Experiment) -> Result<PlanCheck, TrainError> {
    let data = dataset_info(&crate::sweep::experiment_dataset(exp))?;
    check_against_data(exp, data.train)?;
    let stand_in = data.placeholder();
    let runs_planned = plan(exp);
    let mut runs = Vec::with_capacity(runs_planned.len());
    for run in runs_planned {
        // A run that sweeps a dataset field is measured on its own data.
        let resolved = exp.resolved(&run.setting);
        let run_data = crate::sweep::run_dataset(exp, &run);
        let own = (run_data != crate::sweep::experiment_dataset(exp))
            .then(|| dataset_info(&run_data))
            .transpose()?;
        if let Some(info) = &own {
            check_against_data(&resolved, info.train)?;
        }
        let own_stand_in = own.as_ref().map(|i| i.placeholder());
        let net_data = own_stand_in.as_ref().unwrap_or(&stand_in);
        crate::sweep::check_sequence_length(&resolved, &run, &net_data.input_shape)?;
        // A network too large for memory panics in tch: one line naming
        // the run, as `run` says it, not an uncaught panic.
        let measured = crate::panics::catch_panic(|| {
            crate::train_loop::injected_panic(&run.name(), "build");
            tch::manual_seed(run.seed as i64);
            let vs = nn::VarStore::new(Device::Cpu);
            let net = build_network(&vs.root(), exp, net_data, &run)?;
            Ok::<_, TrainError>(measure(&vs, net.as_ref()))
        })
        .map_err(|message| TrainError::Invalid {
            field: run.name(),
            message,
        })??;
        let (params, mults, weight_layers, norm_layers) = measured;
        let (estimate_s, mults_s) = estimate_seconds(exp, &data, mults, weight_layers, norm_layers);
        runs.push(RunCheck {
            run,
            params,
            mults,
            weight_layers,
            norm_layers,
            estimate_s,
            mults_s,
        });
    }
    let mut same_twins = Vec::new();
    // The rnn family has no residual twin: its cells are the twins.
    let has_twins = !matches!(exp.model, ModelSpec::Rnn(_));
    for &depth in exp.depths.iter().filter(|_| has_twins) {
        let twins = crate::panics::catch_panic(|| twins_are_one_network(exp, &data, depth))
            .map_err(|message| TrainError::Invalid {
                field: format!("depth {depth}"),
                message,
            })??;
        if let Some(why) = twins {
            same_twins.push((depth, why));
        }
    }
    // One prediction per plain net (depth and swept settings); seeds share it.
    let theory = plan(exp)
        .into_iter()
        .filter(|r| r.variant == Variant::Plain && r.seed == exp.seeds[0])
        .filter_map(|r| {
            // A recurrent net's q takes the input's power: its own data.
            let power = crate::theory::needs_sequence_input(exp, &r)
                .then(|| crate::sweep::load_dataset(&crate::sweep::run_dataset(exp, &r)).ok())
                .flatten()
                .and_then(|d| crate::theory::input_power(&d.train.x));
            let p = crate::theory::prediction(exp, &r, data.input_dim(), power)?;
            Some((r.group_name(), p.decay, p.spread))
        })
        .collect();
    let steps = exp.train.total_steps(data.train);
    let costs: Vec<f64> = runs.iter().map(|r| shard::cost(steps, r.mults)).collect();
    Ok(PlanCheck {
        costs,
        steps,
        data,
        runs,
        same_twins,
        theory,
    })
}

/// Whether the plain net and its residual twin at `depth` compute the same
/// function: both built from one seed (so with the same weights) and run
/// on one random input in eval mode. Outputs that are equal to the last
/// bit mean no shortcut took part. Returns why, for the message.
fn twins_are_one_network(
    exp: &Experiment,
    data: &DatasetInfo,
    depth: usize,
) -> Result<Option<String>, TrainError> {
    let stand_in = data.placeholder();
    let mut shape = vec![2];
    shape.extend_from_slice(&data.input_shape);
    tch::manual_seed(0);
    let x = Tensor::randn(shape.as_slice(), (Kind::Float, Device::Cpu));
    let mut outputs = Vec::new();
    for variant in [Variant::Plain, Variant::Residual] {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let run = RunSpec {
            variant,
            setting: Default::default(),
            depth,
            seed: 0,
        };
        let net = build_network(&vs.root(), exp, &stand_in, &run)?;
        outputs.push(tch::no_grad(|| net.forward(&x, false, None)));
    }
    if !outputs[0].equal(&outputs[1]) {
        return Ok(None);
    }
    Ok(Some(match &exp.model {
        ModelSpec::Mlp(_) if depth == 2 => {
            "an MLP of depth 2 is an input and an output layer with no hidden layer between them, \
             and the residual twin's shortcuts go around hidden layers only"
                .to_string()
        }
        _ => "their outputs from the same initial weights are identical".to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn exp(body: &str) -> Experiment {
        Experiment::from_json(body, Path::new("t.json")).unwrap()
    }

    const MLP: &str = r#"{"name": "t",
      "dataset": {"kind": "synthetic", "samples": 256, "test_samples": 64, "classes": 4, "features": 8},
      "model": {"family": "mlp", "width": 16, "activation": "tanh", "norm": "batchnorm"},
      "variants": ["plain", "residual"], "depths": [2, 4], "seeds": [0],
      "train": {"lr": 0.1, "batch_size": 32, "steps": 100, "eval_every": 50}}"#;

    /// The MLP's counts, worked out by hand from its layers: depth 4 is
    /// 8→16, 16→16, 16→16, 16→4 with biases, and a BatchNorm (γ, β) before
    /// each of the three nonlinearities.
    #[test]
    fn mlp_counts_match_its_layers() {
        let c = check_experiment(&exp(MLP)).unwrap();
        assert_eq!(c.steps, 100);
        assert_eq!((c.data.train, c.data.test), (256, 64));
        let d4 = c
            .runs
            .iter()
            .find(|r| r.run.depth == 4 && r.run.variant == Variant::Plain)
            .unwrap();
        assert_eq!(d4.mults, 8 * 16 + 16 * 16 * 2 + 16 * 4);
        assert_eq!(
            d4.params,
            (8 * 16 + 16) + 2 * (16 * 16 + 16) + (16 * 4 + 4) + 3 * 2 * 16
        );
        assert_eq!((d4.weight_layers, d4.norm_layers), (4, 3));
        // 100 steps at batch 32, 3 evaluations of 64 plus 320 at the end.
        let mults_s = 100.0 * 3.0 * 32.0 * d4.mults as f64 / MLP_MULTS_PER_S
            + (3.0 * 64.0 + 320.0) * d4.mults as f64 / CPU_EVAL_MULTS_PER_S;
        let expected = mults_s + 100.0 * (4.0 * CPU_LAYER_S + 3.0 * CPU_NORM_S);
        assert!(
            (d4.estimate_s - expected).abs() < 1e-12,
            "{}",
            d4.estimate_s
        );
        assert!((d4.mults_s - mults_s).abs() < 1e-12);
        // Two threads halve the multiplications, not the overheads.
        assert!((d4.estimate_at(2) - (expected - mults_s / 2.0)).abs() < 1e-12);
        assert_eq!(d4.estimate_at(1), d4.estimate_s);
    }

    /// mlp.rs puts shortcuts around hidden layers only, so at depth 2 the
    /// twins are one network; at depth 4 they are not.
    #[test]
    fn depth_two_mlp_twins_are_one_network() {
        let c = check_experiment(&exp(MLP)).unwrap();
        assert_eq!(c.same_twins.len(), 1, "{:?}", c.same_twins);
        assert_eq!(c.same_twins[0].0, 2);
        assert!(c.same_twins[0].1.contains("no hidden layer"));
    }

    /// For the families that record their layers (`gradscope cost`), the
    /// generic count from probe points must agree with theirs.
    #[test]
    fn conv_counts_agree_with_the_recorded_layer_costs() {
        let body = r#"{"name": "t",
          "dataset": {"kind": "synthetic-images", "samples": 8, "classes": 4, "shape": [3, 16, 16]},
          "model": {"family": "inception", "width": 8},
          "variants": ["plain", "residual"], "depths": [2], "seeds": [0],
          "train": {"lr": 0.1, "batch_size": 4, "steps": 1, "eval_every": 1}}"#;
        let e = exp(body);
        let c = check_experiment(&e).unwrap();
        let data = dataset_info(&e.dataset).unwrap();
        for r in &c.runs {
            let vs = nn::VarStore::new(Device::Cpu);
            let net = build_network(&vs.root(), &e, &data.placeholder(), &r.run).unwrap();
            let recorded: i64 = net.layer_costs().iter().map(|l| l.mults()).sum();
            assert!(recorded > 0);
            assert_eq!(r.mults, recorded, "{:?}", r.run);
        }
        assert!(c.same_twins.is_empty(), "{:?}", c.same_twins);
    }

    /// Greedy longest-first: 5, 4, 3, 3, 2, 1 on 2 workers go 5|4, 3→4's
    /// (7), 3→5's (8), 2→7's (9), 1→8's (9): makespan 9.
    #[test]
    fn longest_first_balances_workers() {
        let times = [3.0, 1.0, 5.0, 2.0, 4.0, 3.0];
        let (wall, of) = longest_first(&times, 2);
        assert_eq!(wall, 9.0);
        assert_eq!(of, vec![1, 0, 0, 1, 1, 0]);
        // One worker: everything in turn; more workers than runs: the
        // longest run.
        assert_eq!(longest_first(&times, 1).0, 18.0);
        assert_eq!(longest_first(&times, 10).0, 5.0);
        assert_eq!(longest_first(&[], 3), (0.0, vec![]));
        assert_eq!(longest_first(&times, 0).0, 0.0);
    }

    /// The plan's wall time with jobs and threads: the makespan of the runs
    /// at that thread count, at most the one-thread sum.
    #[test]
    fn wall_time_divides_among_jobs_and_threads() {
        let c = check_experiment(&exp(MLP)).unwrap();
        assert!((c.wall_s(1, 1) - c.total_estimate_s()).abs() < 1e-9);
        let times: Vec<f64> = c.runs.iter().map(|r| r.estimate_at(2)).collect();
        assert_eq!(c.wall_s(2, 2), longest_first(&times, 2).0);
        assert!(c.wall_s(2, 1) < c.total_estimate_s());
        assert!(c.wall_s(4, 1) >= c.runs.iter().map(|r| r.estimate_s).fold(0.0, f64::max));
    }
}
