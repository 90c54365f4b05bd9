//! The training loop, top to bottom, like a paper's appendix. `train_run`
//! starts a run (or resumes it from its checkpoint), and `Run::steps` is
//! the loop itself, one step in one place:
//!
//! ```text
//! seed → build net → for each step:
//!     minibatch → forward (recording probe points on probe steps) → loss
//!     → backward (returning the gradients; dL/dh too on probe steps)
//!     → probe (read dL/dh and weight gradients) → optimizer step
//!     → log training error → evaluate held-out split
//! → final full passes over both splits
//! ```
//!
//! What the loop carries between steps is in `state` (all of it goes into
//! a checkpoint), what it watches as it goes in `watch` (the divergence
//! check, the training window, the metrics rows), and the objective and
//! its full passes in `eval`.

use crate::checkpoint;
use crate::plan::RunSpec;
use crate::record::{FinalMetrics, GradientEnds, Status};
use crate::sgd::{Adam, Sgd};
use crate::spec::{Experiment, Optimizer, Task, TrainSpec, Warmup};
use crate::TrainError;
use gradscope_data::prep::augment;
use gradscope_data::Dataset;
use gradscope_format::rows::SPLIT_TEST;
use gradscope_models::spec::Head;
use gradscope_models::Network;
use gradscope_probe::writers::RunWriters;
use gradscope_probe::{Gradients, Known, Probe, ProbeRecord};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use tch::nn;
use tch::{Device, Kind, Tensor};

mod eval;
mod state;
mod watch;

use eval::final_passes;
pub use eval::{evaluate, objective};
use state::LoopState;
use watch::{Divergence, Log};

/// Test hook (issue 15 §6): with `GRADSCOPE_INJECT_PANIC=RUN:WHEN`, run
/// RUN panics the way a tch call does on a libtorch error, at step WHEN
/// (a number) or while its network is first built (`build`), so that tests
/// can check a failure stays inside its run. Unset, it costs one lookup
/// per run and per step check against a cached value.
pub fn injected_panic(run: &str, when: &str) {
    if std::env::var("GRADSCOPE_INJECT_PANIC").is_ok_and(|v| v == format!("{run}:{when}")) {
        panic!(
            "called `Result::unwrap()` on an `Err` value: Torch(\"[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory: you tried to allocate 4294967296 bytes (injected by GRADSCOPE_INJECT_PANIC)\\nException raised from allocate_cpu at ...\\nframe #0: ...\")"
        );
    }
}

/// What a finished (or stopped) run reports back to the sweep.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub status: Status,
    pub steps_done: usize,
    /// The step a checkpoint was resumed at, if the run went on from one.
    pub resumed_from: Option<usize>,
    pub diverged_at_step: Option<usize>,
    pub final_metrics: FinalMetrics,
    pub gradient_ends: GradientEnds,
    pub params: i64,
    pub probe_points: Vec<String>,
    pub elapsed_s: f64,
}

/// Builds the network a run asks for, under `p`.
pub fn build_network(
    p: &nn::Path,
    exp: &Experiment,
    data: &Dataset,
    run: &RunSpec,
) -> Result<Box<dyn Network>, TrainError> {
    // The run's own activation, init and norm where the file sweeps them.
    let exp = exp.resolved(&run.setting);
    // The identity task's output is the input itself.
    let classes = match exp.task {
        Task::Classify => data.classes,
        Task::Identity => data.input_dim(),
        Task::Regression => 1,
    };
    let on_cpu = data.train.x.device() == Device::Cpu;
    // The copy task's target has a step per recalled symbol: the head
    // reads each of the last that many steps.
    let head = Head {
        outputs: classes,
        steps: exp.dataset.output_steps(),
    };
    Ok(exp
        .model
        .build(p, &data.input_shape, head, run.depth, run.variant, on_cpu)?)
}

/// Trains one run, streaming its CSV files into `dir`.
///
/// When `dir` holds a checkpoint of this run (`checkpoint.pt`, see
/// [`crate::checkpoint`]), the run goes on from it: weights, momentum, data
/// order, augmentation stream and CSV files as they were at its step, so
/// that the files end up as an uninterrupted run would have written them
/// (`elapsed_s` aside). A checkpoint is saved every
/// `train.checkpoint_every` steps and whenever `stop` ends the run early;
/// it is removed once the run has an outcome.
///
/// `stop` is checked before every step and between the chunks of every
/// evaluation pass (SIGINT/SIGTERM set it), so an interruption is prompt;
/// `progress` is told how many steps are done after every step.
///
/// Divergence: the minibatch loss is checked every step (one scalar brought
/// to the host: free on CPU, a sync per step on CUDA), and every gradient
/// norm at every probe step. The first non-finite value stops the run at
/// that step with status `diverged`: nothing after it is written, so every
/// row in the CSVs belongs to a step up to it. A non-finite gradient between
/// probe steps makes the weights non-finite, so it is caught by the loss of
/// the next step.
pub fn train_run(
    exp: &Experiment,
    data: &Dataset,
    run: &RunSpec,
    dir: &Path,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(usize),
) -> Result<RunOutcome, TrainError> {
    // The run's own values of every swept field (lr, batch size, …).
    let exp = &exp.resolved(&run.setting);
    let (mut r, pending_eval) = Run::start(exp, data, run, dir, stop)?;
    let first_step = r.s.steps_done;
    let mut end = End::COMPLETED;
    if let Some(step) = pending_eval {
        end = r.evaluate_pending(step)?;
    }
    if end.status == Status::Completed {
        end = r.steps(first_step, progress)?;
    }
    r.finish(end, first_step)
}

/// A run under way: what its steps read and change.
struct Run<'a> {
    exp: &'a Experiment,
    data: &'a Dataset,
    name: String,
    dir: &'a Path,
    stop: &'a AtomicBool,
    vs: nn::VarStore,
    net: Box<dyn Network>,
    opt: Sgd,
    probe: Probe,
    points: Vec<String>,
    s: LoopState,
    log: Log,
}

/// How the steps ended.
#[derive(Clone, Copy)]
struct End {
    status: Status,
    diverged_at_step: Option<usize>,
}

impl End {
    const COMPLETED: End = End {
        status: Status::Completed,
        diverged_at_step: None,
    };
    const INTERRUPTED: End = End {
        status: Status::Interrupted,
        diverged_at_step: None,
    };

    fn diverged(step: usize) -> End {
        End {
            status: Status::Diverged,
            diverged_at_step: Some(step),
        }
    }
}

impl<'a> Run<'a> {
    /// The network, optimizer, probe and files of a run, fresh or as its
    /// checkpoint left them; with the step whose held-out evaluation is
    /// still to be written (step 0 for a fresh run).
    fn start(
        exp: &'a Experiment,
        data: &'a Dataset,
        run: &RunSpec,
        dir: &'a Path,
        stop: &'a AtomicBool,
    ) -> Result<(Run<'a>, Option<usize>), TrainError> {
        let device = data.train.x.device();
        let resumed = checkpoint::load(dir, &run.name(), exp, data.train.len())?;

        // The same seed gives the plain net and its twin the same initial weights.
        tch::manual_seed(run.seed as i64);
        let vs = nn::VarStore::new(device);
        let net = build_network(&vs.root(), exp, data, run)?;
        let mut opt = make_optimizer(&vs, &exp.train);
        let probe = Probe::new(net.as_ref(), &opt.params());
        let points: Vec<String> = net.probe_points().iter().map(|p| p.name.clone()).collect();
        let weighted: Vec<bool> = net
            .probe_points()
            .iter()
            .map(|p| p.weight.is_some())
            .collect();
        let mut s = LoopState::new(exp, data, run, &points, probe.trunk(), &weighted);
        let (writers, pending_eval) = match resumed {
            // Held-out error at initialization: the first point of every curve.
            None => (
                RunWriters::create(dir, points.clone(), probe.trunk().to_vec())?,
                Some(0),
            ),
            Some(ck) => {
                let lengths = ck.state.csv_bytes;
                let pending = s.restore(ck, &checkpoint::path(dir), &vs, &mut opt, device)?;
                let w = RunWriters::resume(dir, points.clone(), probe.trunk().to_vec(), lengths)?;
                (w, pending)
            }
        };
        let log = Log::new(writers, exp.train.batch_size, data.train.len() as usize);
        let r = Run {
            exp,
            data,
            name: run.name(),
            dir,
            stop,
            vs,
            net,
            opt,
            probe,
            points,
            s,
            log,
        };
        Ok((r, pending_eval))
    }

    /// Saves a checkpoint of the run as it stands; `pending_eval` when the
    /// held-out evaluation of the last step is not written yet.
    fn save(&mut self, pending_eval: bool) -> Result<(), TrainError> {
        let elapsed = self.log.elapsed(&self.s);
        self.s.save(
            self.dir,
            &self.name,
            self.exp,
            &self.vs,
            &self.opt,
            &mut self.log.out,
            pending_eval,
            elapsed,
        )
    }

    /// The held-out evaluation a fresh run starts with (or a resumed run
    /// was stopped in).
    fn evaluate_pending(&mut self, step: usize) -> Result<End, TrainError> {
        match evaluate(self.net.as_ref(), &self.data.test, self.exp.task, self.stop) {
            Some(reading) => self.log.row(&self.s, step, SPLIT_TEST, reading)?,
            None if step > 0 => {
                self.save(true)?;
                return Ok(End::INTERRUPTED);
            }
            None => return Ok(End::INTERRUPTED),
        }
        Ok(End::COMPLETED)
    }

    /// The steps from `first_step` on, until the last, a stop or a
    /// non-finite value.
    fn steps(
        &mut self,
        first_step: usize,
        progress: &mut dyn FnMut(usize),
    ) -> Result<End, TrainError> {
        let (exp, data, stop) = (self.exp, self.data, self.stop);
        let t = &exp.train;
        let steps = t.total_steps(data.train.len() as usize);
        let inject = injected_step(&self.name);
        let mut divergence = Divergence::new(data.train.x.device());
        for step in first_step..steps {
            if inject == Some(step) {
                injected_panic(&self.name, &step.to_string());
            }
            let stopping = stop.load(Ordering::SeqCst);
            let saving = stopping
                || t.checkpoint_every
                    .is_some_and(|every| step > first_step && step.is_multiple_of(every));
            // Never save weights a non-finite loss has already spoilt (on CUDA
            // the check may not have been read since).
            if let Some(bad) = saving.then(|| divergence.read()).flatten() {
                self.s.steps_done = bad;
                return Ok(End::diverged(bad));
            }
            if saving {
                self.save(false)?;
            }
            if stopping {
                return Ok(End::INTERRUPTED);
            }
            let s = &mut self.s;
            s.lr = s.lr_at(t, step);
            let (mut x, y) = s.order.next(&data.train);
            if let Some(rng) = s.augment_rng.as_mut() {
                x = augment(&x, rng);
            }

            // Probe steps record each probe point's output and read the
            // responses; other steps keep nothing and pay nothing for probing.
            let probing = exp.probe.probes(step, steps);
            let recording = probing.then(|| self.probe.recording());
            let logits = self.net.forward(&x, true, recording.as_ref());
            let (loss, error) = objective(exp.task, &logits, &x, &y);
            // Read the check only where this step reads the device anyway.
            let done = step + 1;
            let reads = probing || t.syncs_after(done, steps) || stop.load(Ordering::SeqCst);
            if let Some(bad) = divergence.note(&loss, step, reads) {
                s.steps_done = bad;
                return Ok(End::diverged(bad));
            }

            // One backward pass returns every parameter's gradient and, on a
            // probe step, dL/dh at every probe point, read by a gradient hook
            // as it is produced. Nothing accumulates in `grad()`, so there is
            // nothing to zero: in `make bench` that saved the MLPs a zero and
            // an add per parameter per step.
            let (outputs, responses) = recording.map(|r| r.finish()).unwrap_or_default();
            let mut grads = self.probe.backward(&loss, &self.opt.params(), outputs)?;
            // The global norm before clipping, for metrics.csv (kept on the
            // device: no sync), and the clipping when the file asks for it.
            let norm = clip_grad_norm(&mut grads.params, t.clip_grad_norm);

            // A probe step records the gradients of this minibatch at the
            // weights that produced it.
            if probing {
                let (probe, net) = (&self.probe, self.net.as_ref());
                let rec = probe_and_step(probe, net, &mut self.opt, s.lr, &grads, &responses)?;
                self.log.out.probe(step, &rec)?;
                if !s.record_probe(step, &rec, probe.trunk()) {
                    return Ok(End::diverged(step));
                }
            } else {
                self.opt.step_with(s.lr, &grads.params);
            }
            s.window.add(&loss, &error, &norm);
            s.steps_done = done;

            if done.is_multiple_of(t.log_every()) || done == steps {
                let (loss, error, grad_norm) = s.window.take();
                self.log.train_row(s, done, (loss, error), grad_norm)?;
                // He et al.'s warm-up ends once training error is below the bar.
                if let Some((_, until)) = t.warmup.as_ref().and_then(Warmup::until_error) {
                    s.warming &= error >= until;
                }
            }
            if done.is_multiple_of(t.eval_every) || done == steps {
                let Some(reading) = evaluate(self.net.as_ref(), &data.test, exp.task, stop) else {
                    self.save(true)?;
                    return Ok(End::INTERRUPTED);
                };
                self.log.row(&self.s, done, SPLIT_TEST, reading)?;
            }
            progress(done);
        }
        Ok(End::COMPLETED)
    }

    /// The files closed, the final full passes, the weights saved if asked,
    /// and the checkpoint removed once the run has an outcome.
    fn finish(mut self, end: End, first_step: usize) -> Result<RunOutcome, TrainError> {
        // Every row of the steps is in the files before the final passes, which
        // take a while, and before anything reads them.
        self.log.out.finish()?;

        // Final numbers are full passes in eval mode, so runs compare on the same
        // footing whatever their minibatch noise.
        let mut status = end.status;
        let mut final_metrics = FinalMetrics::default();
        if status == Status::Completed {
            match final_passes(self.net.as_ref(), self.data, self.exp.task, self.stop) {
                Some(m) => final_metrics = m,
                // All steps done but the final passes cut short: not a result.
                None => {
                    self.save(false)?;
                    status = Status::Interrupted;
                }
            }
        }
        if status == Status::Completed && self.exp.train.save_weights {
            crate::weights::save(self.dir, &self.vs)?;
        }
        if status != Status::Interrupted {
            checkpoint::remove(self.dir)?;
        }
        Ok(RunOutcome {
            status,
            steps_done: self.s.steps_done,
            resumed_from: (first_step > 0).then_some(first_step),
            diverged_at_step: end.diverged_at_step,
            final_metrics,
            gradient_ends: self.s.gradient_ends(),
            params: self
                .vs
                .trainable_variables()
                .iter()
                .map(Tensor::numel)
                .sum::<usize>() as i64,
            probe_points: self.points,
            elapsed_s: self.log.elapsed(&self.s),
        })
    }
}

/// A probe step's record, and the optimizer's step. ‖W‖ is taken as the
/// last step left it (see `Sgd::norms`). Where the fused step takes the
/// variables (the CPU) it reads each gradient while it has it in cache,
/// so the step comes first and the probe reads neither the weights nor
/// their gradients; elsewhere (CUDA) the probe reads the gradients, and
/// the weights the last step did not measure, in its own batched
/// reductions before the step.
fn probe_and_step(
    probe: &Probe,
    net: &dyn Network,
    opt: &mut Sgd,
    lr: f64,
    grads: &Gradients,
    responses: &[(usize, Tensor)],
) -> Result<ProbeRecord, TrainError> {
    if opt.reads_gradients() {
        let norms = opt.norms()?.to_vec();
        let grad_sums = opt.step_reading(lr, &grads.params);
        let known = Known {
            norms: &norms,
            grads: &grad_sums,
        };
        return Ok(probe.collect_knowing(net, grads, responses, known)?);
    }
    let rec = probe.collect(net, grads, responses)?;
    opt.step_with(lr, &grads.params);
    Ok(rec)
}

/// The optimizer `train.optimizer` names, with its settings.
pub fn make_optimizer(vs: &nn::VarStore, t: &TrainSpec) -> Sgd {
    match t.optimizer {
        Optimizer::Sgd => Sgd::new(vs, t.momentum, t.weight_decay),
        Optimizer::Adam | Optimizer::Adamw => Sgd::adam(
            vs,
            Adam {
                beta1: t.beta1.unwrap_or(0.9),
                beta2: t.beta2.unwrap_or(0.999),
                eps: t.eps.unwrap_or(1e-8),
                decoupled: t.optimizer == Optimizer::Adamw,
            },
            t.weight_decay,
        ),
    }
}

/// The global L2 norm of `grads` (all as one vector, in float64) before
/// clipping, as a 0-dim tensor on their device; with `max_norm`, scales
/// every gradient by min(1, max_norm / (norm + 1e-6)) in place, as
/// `torch.nn.utils.clip_grad_norm_` does (computed on the device: no
/// host sync per step).
fn clip_grad_norm(grads: &mut [Tensor], max_norm: Option<f64>) -> Tensor {
    let _guard = tch::no_grad_guard();
    let norms: Vec<Tensor> = grads
        .iter()
        .filter(|g| g.defined())
        .map(|g| g.norm_scalaropt_dtype(2, Kind::Double))
        .collect();
    if norms.is_empty() {
        return Tensor::zeros([], (Kind::Double, Device::Cpu));
    }
    let total = Tensor::stack(&norms, 0).norm();
    if let Some(max) = max_norm {
        let coef = (Tensor::full([], max, (Kind::Double, total.device())) / (&total + 1e-6))
            .clamp_max(1.0)
            .to_kind(Kind::Float);
        for g in grads.iter_mut().filter(|g| g.defined()) {
            let _ = g.g_mul_(&coef);
        }
    }
    total
}

/// The step `GRADSCOPE_INJECT_PANIC=RUN:STEP` names for this run, if any.
fn injected_step(run: &str) -> Option<usize> {
    let v = std::env::var("GRADSCOPE_INJECT_PANIC").ok()?;
    v.strip_prefix(&format!("{run}:"))?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradscope_data::Split;
    use gradscope_models::mlp::{Mlp, MlpConfig};
    use gradscope_models::{Activation, Init, Norm, Variant};

    /// The deferred (CUDA) divergence check, run on CPU tensors: a NaN at
    /// step 2 read only at step 4 is reported as step 2, and a later
    /// infinity does not move it; the eager (CPU) check reports at once.
    #[test]
    fn a_deferred_divergence_check_keeps_the_first_bad_step() {
        let losses = [1.0f32, 2.0, f32::NAN, 3.0, f32::INFINITY];
        let mut deferred = Divergence::deferred(true, Device::Cpu);
        for (step, &l) in losses.iter().enumerate() {
            let read = step == 1 || step == 4;
            let got = deferred.note(&Tensor::from(l), step, read);
            assert_eq!(got, if step == 4 { Some(2) } else { None }, "step {step}");
        }
        let mut eager = Divergence::deferred(false, Device::Cpu);
        assert_eq!(eager.note(&Tensor::from(1.0f32), 0, false), None);
        assert_eq!(eager.note(&Tensor::from(f32::NAN), 1, false), Some(1));
    }

    /// The training loop's probe step (‖W‖ taken before the step, the
    /// gradients' sums read by the fused step, the record collected after
    /// it) must record what a probe reading everything before the step
    /// records: the same step on two copies of one network, one through
    /// `probe_and_step`, one through `collect` and then the step. Norms
    /// taken after the step would differ by the update (about 1e-3 here).
    #[test]
    fn the_loops_probe_step_records_the_weights_before_the_step() {
        let step_with = |through_loop: bool| {
            tch::manual_seed(4);
            let vs = nn::VarStore::new(Device::Cpu);
            let net = Mlp::new(
                &vs.root(),
                MlpConfig {
                    input_dim: 6,
                    classes: 3,
                    depth: 5,
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
            let mut opt = Sgd::new(&vs, 0.9, 1e-4);
            let probe = Probe::new(&net, &opt.params());
            let x = Tensor::randn([12, 6], (Kind::Float, Device::Cpu));
            let y = Tensor::arange(12, (Kind::Int64, Device::Cpu)).remainder(3);
            let rec = probe.recording();
            let loss = net
                .forward(&x, true, Some(&rec))
                .cross_entropy_for_logits(&y);
            let (outputs, responses) = rec.finish();
            let grads = probe.backward(&loss, &opt.params(), outputs).unwrap();
            if through_loop {
                assert!(opt.reads_gradients() || !gradscope_kernels::sgd::available());
                probe_and_step(&probe, &net, &mut opt, 0.1, &grads, &responses).unwrap()
            } else {
                let rec = probe.collect(&net, &grads, &responses).unwrap();
                opt.step_with(0.1, &grads.params);
                rec
            }
        };
        let (looped, plain) = (step_with(true), step_with(false));
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-6 * b.abs();
        for (i, (a, b)) in looped.weight.iter().zip(&plain.weight).enumerate() {
            let (a, b) = (a.unwrap(), b.unwrap());
            assert!(
                close(a.norm, b.norm),
                "‖W‖ of point {i}: {} vs {}",
                a.norm,
                b.norm
            );
            assert!(close(a.grad.l2, b.grad.l2), "‖∇W‖ of point {i}");
            assert_eq!(a.grad.zero_fraction, b.grad.zero_fraction, "point {i}");
        }
        assert_eq!(looped.output, plain.output);
        assert_eq!(looped.responses, plain.responses);
    }

    /// An evaluation pass is where a large split spends its time, so the
    /// stop flag (set by SIGINT/SIGTERM) must end it, not only the steps.
    #[test]
    fn evaluation_stops_when_asked() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = Mlp::new(
            &vs.root(),
            MlpConfig {
                input_dim: 4,
                classes: 3,
                depth: 3,
                width: 8,
                activation: Activation::Tanh,
                init: Init::Glorot,
                norm: Norm::None,
                variant: Variant::Plain,
                branch_init: Default::default(),
                gate_bias: -1.0,
            },
        )
        .unwrap();
        // 1000 examples: four chunks of 256.
        let split = Split {
            x: Tensor::randn([1000, 4], (Kind::Float, Device::Cpu)),
            y: Tensor::zeros([1000], (Kind::Int64, Device::Cpu)),
        };
        let go = AtomicBool::new(false);
        let (loss, error) = evaluate(&net, &split, Task::Classify, &go).unwrap();
        assert!(loss.is_finite() && (0.0..=1.0).contains(&error));
        let stop = AtomicBool::new(true);
        assert_eq!(evaluate(&net, &split, Task::Classify, &stop), None);
    }

    /// Issue 31: Adam's and AdamW's moments and step count are in the
    /// checkpoint. A run stopped at step 13 (the stop flag, as SIGTERM
    /// sets it; a checkpoint is saved there) and gone on from it writes
    /// the CSV files of a run never stopped, byte for byte but the wall
    /// time, with a linear warm-up and gradient clipping on as well.
    #[test]
    fn adam_runs_resume_byte_identical() {
        for optimizer in ["adam", "adamw"] {
            let text = crate::spec::tests::GOOD
                .replace(
                    r#""momentum": 0.9"#,
                    &format!(
                        r#""momentum": 0, "optimizer": "{optimizer}", "weight_decay": 0.01, "warmup": {{"steps": 8}}, "clip_grad_norm": 0.5"#
                    ),
                )
                .replace(r#""lr": 0.1"#, r#""lr": 0.01"#)
                .replace(r#""steps": 20"#, r#""steps": 30"#)
                .replace(r#""eval_every": 10"#, r#""eval_every": 10, "log_every": 3"#);
            let exp = Experiment::from_json(&text, Path::new("exp.json")).unwrap();
            let data = crate::sweep::load_dataset(&exp.dataset).unwrap();
            let run = crate::plan::plan(&exp).remove(1);
            let tmp = tempfile::tempdir().unwrap();
            let files = |dir: &Path| -> Vec<String> {
                ["metrics.csv", "gradients.csv", "activations.csv"]
                    .iter()
                    .map(|f| {
                        let t = std::fs::read_to_string(dir.join(f)).unwrap();
                        // elapsed_s is the last column of metrics.csv.
                        t.lines()
                            .map(|l| match *f == "metrics.csv" {
                                true => l.rsplit_once(',').map_or(l, |(h, _)| h).to_string(),
                                false => l.to_string(),
                            })
                            .collect::<Vec<_>>()
                            .join("\n")
                    })
                    .collect()
            };
            let whole = tmp.path().join("whole");
            std::fs::create_dir_all(&whole).unwrap();
            let no = AtomicBool::new(false);
            let o = train_run(&exp, &data, &run, &whole, &no, &mut |_| {}).unwrap();
            assert_eq!(o.status, Status::Completed);

            let parts = tmp.path().join("parts");
            std::fs::create_dir_all(&parts).unwrap();
            let stop = AtomicBool::new(false);
            let o = train_run(&exp, &data, &run, &parts, &stop, &mut |done| {
                if done == 13 {
                    stop.store(true, Ordering::SeqCst);
                }
            })
            .unwrap();
            assert_eq!(o.status, Status::Interrupted);
            assert!(checkpoint::path(&parts).exists());
            let o = train_run(&exp, &data, &run, &parts, &no, &mut |_| {}).unwrap();
            assert_eq!((o.status, o.resumed_from), (Status::Completed, Some(13)));
            assert_eq!(files(&whole), files(&parts), "{optimizer}");
            // The pre-clip norm is recorded on every train row.
            let metrics = std::fs::read_to_string(whole.join("metrics.csv")).unwrap();
            let header: Vec<&str> = metrics.lines().next().unwrap().split(',').collect();
            let at = header.iter().position(|h| *h == "grad_norm").unwrap();
            for line in metrics.lines().skip(1).filter(|l| l.contains(",train,")) {
                let v: f64 = line.split(',').nth(at).unwrap().parse().unwrap();
                assert!(v.is_finite() && v > 0.0, "{line}");
            }
        }
    }

    /// Linear warm-up: lr·(s+1)/N over the first N steps, then the
    /// schedule (Goyal et al. 2017's ramp).
    #[test]
    fn a_linear_warmup_ramps_the_lr() {
        let text = crate::spec::tests::GOOD
            .replace(r#""steps": 20"#, r#""steps": 20, "warmup": {"steps": 4}"#);
        let exp = Experiment::from_json(&text, Path::new("exp.json")).unwrap();
        let lrs: Vec<f64> = (0..6).map(|s| exp.train.warmed_lr(s)).collect();
        assert_eq!(lrs, [0.025, 0.05, 0.07500000000000001, 0.1, 0.1, 0.1]);
    }

    /// Clipping as `torch.nn.utils.clip_grad_norm_`: the returned norm is
    /// the one before clipping, and after it the global norm is max_norm
    /// (times 1/(1+1e-6/norm)); below the bar nothing changes.
    #[test]
    fn clipping_scales_to_the_global_norm() {
        let mut grads = vec![
            Tensor::from_slice(&[3.0f32, 0.0]),
            Tensor::new(),
            Tensor::from_slice(&[4.0f32]),
        ];
        let norm = clip_grad_norm(&mut grads, Some(1.0)).double_value(&[]);
        assert_eq!(norm, 5.0);
        let after: f64 = [&grads[0], &grads[2]]
            .iter()
            .map(|g| g.square().sum(Kind::Double).double_value(&[]))
            .sum::<f64>()
            .sqrt();
        assert!((after - 1.0).abs() < 1e-6, "{after}");
        let mut small = vec![Tensor::from_slice(&[0.3f32, 0.4])];
        let norm = clip_grad_norm(&mut small, Some(1.0)).double_value(&[]);
        assert!((norm - 0.5).abs() < 1e-7);
        assert_eq!(Vec::<f32>::try_from(&small[0]).unwrap(), [0.3, 0.4]);
    }
}
