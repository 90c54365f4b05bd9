//! The training loop: one function, top to bottom, like a paper's appendix.
//!
//! ```text
//! seed → build net → for each step:
//!     minibatch → forward (recording probe points on probe steps) → loss
//!     → backward (returning the gradients; dL/dh too on probe steps)
//!     → probe (read dL/dh and weight gradients) → optimizer step
//!     → log training error → evaluate held-out split
//! → final full passes over both splits
//! ```

use crate::checkpoint;
use crate::plan::RunSpec;
use crate::record::{FinalMetrics, GradientEnds, Status};
use crate::sgd::{Adam, Sgd};
use crate::spec::{Experiment, Optimizer, Task, TrainSpec, Warmup};
use crate::TrainError;
use gradscope_data::prep::augment;
use gradscope_data::rng::SplitMix64;
use gradscope_data::{Dataset, Split};
use gradscope_format::decay::ProfileWindow;
use gradscope_format::rows::{SPLIT_TEST, SPLIT_TRAIN};
use gradscope_models::Network;
use gradscope_probe::writers::{MetricRow, RunWriters};
use gradscope_probe::{Gradients, Known, Probe, ProbeRecord};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tch::nn;
use tch::{Device, Kind, Tensor};

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
    };
    let on_cpu = data.train.x.device() == Device::Cpu;
    Ok(exp.model.build(
        p,
        &data.input_shape,
        classes,
        run.depth,
        run.variant,
        on_cpu,
    )?)
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
    let t = &exp.train;
    let steps = t.total_steps(data.train.len() as usize);
    let device = data.train.x.device();
    let resumed = checkpoint::load(dir, &run.name(), exp, data.train.len())?;

    // The same seed gives the plain net and its twin the same initial weights.
    tch::manual_seed(run.seed as i64);
    let vs = nn::VarStore::new(device);
    let net = build_network(&vs.root(), exp, data, run)?;
    let mut opt = make_optimizer(&vs, t);
    let probe = Probe::new(net.as_ref(), &opt.params());
    let points: Vec<String> = net.probe_points().iter().map(|p| p.name.clone()).collect();
    let mut s = LoopState::new(exp, data, run, &points, probe.trunk());
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
    let mut log = Log::new(writers, t.batch_size, data.train.len() as usize);
    let save = |s: &LoopState, log: &mut Log, opt: &Sgd, pending_eval: bool| {
        let elapsed = log.elapsed(s);
        s.save(
            dir,
            &run.name(),
            exp,
            &vs,
            opt,
            &mut log.out,
            pending_eval,
            elapsed,
        )
    };

    let mut status = Status::Completed;
    let mut diverged_at_step = None;
    if let Some(step) = pending_eval {
        match evaluate(net.as_ref(), &data.test, exp.task, stop) {
            Some(reading) => log.row(&s, step, SPLIT_TEST, reading)?,
            None if step > 0 => {
                save(&s, &mut log, &opt, true)?;
                status = Status::Interrupted;
            }
            None => status = Status::Interrupted,
        }
    }

    let first_step = s.steps_done;
    let inject = injected_step(&run.name());
    let mut divergence = Divergence::new(device);
    for step in first_step..steps {
        if status != Status::Completed {
            break;
        }
        if inject == Some(step) {
            injected_panic(&run.name(), &step.to_string());
        }
        let stopping = stop.load(Ordering::SeqCst);
        let saving = stopping
            || t.checkpoint_every
                .is_some_and(|every| step > first_step && step.is_multiple_of(every));
        // Never save weights a non-finite loss has already spoilt (on CUDA
        // the check may not have been read since).
        if let Some(bad) = saving.then(|| divergence.read()).flatten() {
            (status, diverged_at_step) = (Status::Diverged, Some(bad));
            s.steps_done = bad;
            break;
        }
        if saving {
            save(&s, &mut log, &opt, false)?;
        }
        if stopping {
            status = Status::Interrupted;
            break;
        }
        s.lr = s.lr_at(t, step);
        let (mut x, y) = s.order.next(&data.train);
        if let Some(rng) = s.augment_rng.as_mut() {
            x = augment(&x, rng);
        }

        // Probe steps record each probe point's output and read the
        // responses; other steps keep nothing and pay nothing for probing.
        let probing = exp.probe.probes(step, steps);
        let recording = probing.then(|| probe.recording());
        let logits = net.forward(&x, true, recording.as_ref());
        let (loss, error) = objective(exp.task, &logits, &x, &y);
        // Read the check only where this step reads the device anyway.
        let done = step + 1;
        let reads = probing || t.syncs_after(done, steps) || stop.load(Ordering::SeqCst);
        if let Some(bad) = divergence.note(&loss, step, reads) {
            (status, diverged_at_step) = (Status::Diverged, Some(bad));
            s.steps_done = bad;
            break;
        }

        // One backward pass returns every parameter's gradient and, on a
        // probe step, dL/dh at every probe point, read by a gradient hook
        // as it is produced. Nothing accumulates in `grad()`, so there is
        // nothing to zero: in `make bench` that saved the MLPs a zero and
        // an add per parameter per step.
        let (outputs, responses) = recording.map(|r| r.finish()).unwrap_or_default();
        let mut grads = probe.backward(&loss, &opt.params(), outputs)?;
        // The global norm before clipping, for metrics.csv (kept on the
        // device: no sync), and the clipping when the file asks for it.
        let norm = clip_grad_norm(&mut grads.params, t.clip_grad_norm);

        // A probe step records the gradients of this minibatch at the
        // weights that produced it.
        if probing {
            let rec = probe_and_step(&probe, net.as_ref(), &mut opt, s.lr, &grads, &responses)?;
            log.out.probe(step, &rec)?;
            if !s.record_probe(step, &rec, probe.trunk()) {
                (status, diverged_at_step) = (Status::Diverged, Some(step));
                break;
            }
        } else {
            opt.step_with(s.lr, &grads.params);
        }
        s.window.add(&loss, &error, &norm);
        s.steps_done = done;

        if done.is_multiple_of(t.log_every()) || done == steps {
            let (loss, error, grad_norm) = s.window.take();
            log.train_row(&s, done, (loss, error), grad_norm)?;
            // He et al.'s warm-up ends once training error is below the bar.
            if let Some((_, until)) = t.warmup.as_ref().and_then(Warmup::until_error) {
                s.warming &= error >= until;
            }
        }
        if done.is_multiple_of(t.eval_every) || done == steps {
            let Some(reading) = evaluate(net.as_ref(), &data.test, exp.task, stop) else {
                save(&s, &mut log, &opt, true)?;
                status = Status::Interrupted;
                break;
            };
            log.row(&s, done, SPLIT_TEST, reading)?;
        }
        progress(done);
    }

    // Every row of the steps is in the files before the final passes, which
    // take a while, and before anything reads them.
    log.out.finish()?;

    // Final numbers are full passes in eval mode, so runs compare on the same
    // footing whatever their minibatch noise.
    let mut final_metrics = FinalMetrics::default();
    if status == Status::Completed {
        match final_passes(net.as_ref(), data, exp.task, stop) {
            Some(m) => final_metrics = m,
            // All steps done but the final passes cut short: not a result.
            None => {
                save(&s, &mut log, &opt, false)?;
                status = Status::Interrupted;
            }
        }
    }
    if status == Status::Completed && t.save_weights {
        crate::weights::save(dir, &vs)?;
    }
    if status != Status::Interrupted {
        checkpoint::remove(dir)?;
    }
    Ok(RunOutcome {
        status,
        steps_done: s.steps_done,
        resumed_from: (first_step > 0).then_some(first_step),
        diverged_at_step,
        final_metrics,
        gradient_ends: s.gradient_ends(),
        params: vs
            .trainable_variables()
            .iter()
            .map(Tensor::numel)
            .sum::<usize>() as i64,
        probe_points: points,
        elapsed_s: log.elapsed(&s),
    })
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

/// The non-finite-loss check. On the CPU it reads every step's loss (free:
/// the value is already in memory). On CUDA a read is a host sync that
/// drains the GPU's queue, so the first non-finite step is kept on the
/// device (no sync) and read only at steps that sync anyway: probe, log,
/// evaluation and checkpoint steps, the last step, and a stop. The run is
/// still marked diverged at the exact step, and no row is written after
/// it, since every row is written at a step that reads.
struct Divergence {
    /// On the device: the first step whose loss was not finite, or -1.
    first_bad: Option<Tensor>,
}

impl Divergence {
    fn new(device: Device) -> Divergence {
        Divergence::deferred(device != Device::Cpu, device)
    }

    fn deferred(deferred: bool, device: Device) -> Divergence {
        Divergence {
            first_bad: deferred.then(|| Tensor::full([], -1, (Kind::Int64, device))),
        }
    }

    /// The first non-finite step noted so far, read now (a sync on CUDA;
    /// on the CPU every step was read already).
    fn read(&mut self) -> Option<usize> {
        let v = self.first_bad.as_ref()?.int64_value(&[]);
        (v >= 0).then_some(v as usize)
    }

    /// Notes `step`'s loss; returns the first non-finite step once it is
    /// known (every step on the CPU, at reading steps on CUDA).
    fn note(&mut self, loss: &Tensor, step: usize, read: bool) -> Option<usize> {
        let Some(first_bad) = self.first_bad.as_mut() else {
            return (!loss.double_value(&[]).is_finite()).then_some(step);
        };
        let new_bad = loss.isfinite().logical_not().logical_and(&first_bad.lt(0));
        let here = Tensor::full([], step as i64, (Kind::Int64, first_bad.device()));
        *first_bad = here.where_self(&new_bad, first_bad);
        if !read {
            return None;
        }
        let v = first_bad.int64_value(&[]);
        (v >= 0).then_some(v as usize)
    }
}

/// `metrics.csv` rows, with the epoch and the wall time filled in.
struct Log {
    out: RunWriters,
    batch_size: usize,
    train_examples: usize,
    start: Instant,
}

impl Log {
    fn new(out: RunWriters, batch_size: usize, train_examples: usize) -> Log {
        Log {
            out,
            batch_size,
            train_examples,
            start: Instant::now(),
        }
    }

    /// Seconds trained, by this process and those it resumed from.
    fn elapsed(&self, s: &LoopState) -> f64 {
        s.trained_before + self.start.elapsed().as_secs_f64()
    }

    /// A training row: [`Log::row`] with the window's mean global
    /// gradient norm before clipping.
    fn train_row(
        &mut self,
        s: &LoopState,
        step: usize,
        reading: (f64, f64),
        grad_norm: f64,
    ) -> Result<(), TrainError> {
        self.write(s, step, SPLIT_TRAIN, reading, Some(grad_norm))
    }

    /// One row after `step` steps: `(loss, error)` of `split` at the lr in use.
    fn row(
        &mut self,
        s: &LoopState,
        step: usize,
        split: &str,
        reading: (f64, f64),
    ) -> Result<(), TrainError> {
        self.write(s, step, split, reading, None)
    }

    fn write(
        &mut self,
        s: &LoopState,
        step: usize,
        split: &str,
        (loss, error): (f64, f64),
        grad_norm: Option<f64>,
    ) -> Result<(), TrainError> {
        Ok(self.out.metrics(&MetricRow {
            step: step as u64,
            epoch: Some((step * self.batch_size) as f64 / self.train_examples as f64),
            split: split.to_owned(),
            loss: Some(loss),
            error: Some(error),
            lr: Some(s.lr),
            grad_norm,
            elapsed_s: Some(self.elapsed(s)),
        })?)
    }
}

/// Full passes over both splits after the last step; `None` when `stop`
/// cut one short.
fn final_passes(
    net: &dyn Network,
    data: &Dataset,
    task: Task,
    stop: &AtomicBool,
) -> Option<FinalMetrics> {
    let (train_loss, train_error) = evaluate(net, &data.train, task, stop)?;
    let (test_loss, test_error) = evaluate(net, &data.test, task, stop)?;
    Some(FinalMetrics {
        train_loss: Some(train_loss),
        train_error: Some(train_error),
        test_loss: Some(test_loss),
        test_error: Some(test_error),
    })
}

/// The step `GRADSCOPE_INJECT_PANIC=RUN:STEP` names for this run, if any.
fn injected_step(run: &str) -> Option<usize> {
    let v = std::env::var("GRADSCOPE_INJECT_PANIC").ok()?;
    v.strip_prefix(&format!("{run}:"))?.parse().ok()
}

/// What the loop carries from one step to the next, besides the network
/// and the optimizer: all of it goes into a checkpoint.
struct LoopState {
    steps_done: usize,
    lr: f64,
    warming: bool,
    order: Batches,
    augment_rng: Option<SplitMix64>,
    window: Window,
    profiles: ProfileWindow,
    /// The forward signal's profiles (√q over the trunk, output side
    /// first, so that the window's spread is its fall toward the output).
    forward: ProfileWindow,
    ends: GradientEnds,
    /// Seconds trained by the processes before this one (resumed runs).
    trained_before: f64,
}

impl LoopState {
    /// The state before the first step of a run.
    fn new(
        exp: &Experiment,
        data: &Dataset,
        run: &RunSpec,
        points: &[String],
        trunk: &[bool],
    ) -> LoopState {
        let t = &exp.train;
        let device = data.train.x.device();
        let mut ends = GradientEnds {
            trunk_points: points
                .iter()
                .zip(trunk)
                .filter(|(_, t)| **t)
                .map(|(name, _)| name.clone())
                .collect(),
            ..GradientEnds::default()
        };
        ends.decay_theory = crate::theory::prediction(exp, run, data.input_dim()).map(|p| p.decay);
        let mut s = LoopState {
            steps_done: 0,
            lr: 0.0,
            warming: t.warmup.as_ref().is_some_and(|w| w.until_error().is_some()),
            order: Batches::new(data.train.len(), t.batch_size as i64, run.seed, device),
            augment_rng: exp
                .dataset
                .augment()
                .then(|| SplitMix64::new(run.seed ^ 0xA06_3E47)),
            window: Window::new(device),
            profiles: ProfileWindow::new(),
            forward: ProfileWindow::new(),
            ends,
            trained_before: 0.0,
        };
        s.lr = s.lr_at(t, 0);
        s
    }

    /// The lr of `step`: He et al.'s warm-up lr while it lasts, else the
    /// schedule's (with a linear warm-up's ramp).
    fn lr_at(&self, t: &TrainSpec, step: usize) -> f64 {
        match (
            t.warmup.as_ref().and_then(Warmup::until_error),
            self.warming,
        ) {
            (Some((lr, _)), true) => lr,
            _ => t.warmed_lr(step),
        }
    }

    /// Keeps what a probe step says for `run.json`: the trunk's profile and
    /// the first and last probe points' norms. False when a reading is not
    /// finite (the run has diverged).
    fn record_probe(&mut self, step: usize, rec: &ProbeRecord, trunk: &[bool]) -> bool {
        self.profiles.push(rec.trunk_profile(trunk));
        self.forward.push(forward_profile(rec, trunk));
        let (first, last) = (
            rec.output.first().map(|o| o.l2),
            rec.output.last().map(|o| o.l2),
        );
        if step == 0 {
            (self.ends.init_first, self.ends.init_last) = (first, last);
        }
        (
            self.ends.final_step,
            self.ends.final_first,
            self.ends.final_last,
        ) = (Some(step as u64), first, last);
        rec.all_finite()
    }

    /// The gradient readings for `run.json`: the ends, and the decay and
    /// spread medians of the first and last probe steps.
    fn gradient_ends(&self) -> GradientEnds {
        let mut ends = self.ends.clone();
        let r = self.profiles.readings();
        (ends.decay_init, ends.decay_final) = (r.decay_init, r.decay_final);
        (ends.spread_init, ends.spread_final) = (r.spread_init, r.spread_final);
        let f = self.forward.readings();
        (ends.forward_spread_init, ends.forward_spread_final) = (f.spread_init, f.spread_final);
        ends.forward_decay_init = f.decay_init;
        ends
    }

    /// Writes `dir/checkpoint.pt` for the state after `steps_done` steps;
    /// `pending_eval`: the held-out pass due after that step has not run.
    #[allow(clippy::too_many_arguments)]
    fn save(
        &self,
        dir: &Path,
        run: &str,
        exp: &Experiment,
        vs: &nn::VarStore,
        opt: &Sgd,
        out: &mut RunWriters,
        pending_eval: bool,
        elapsed_s: f64,
    ) -> Result<(), TrainError> {
        let state = checkpoint::LoopState {
            format: checkpoint::FORMAT,
            run: run.to_owned(),
            steps_done: self.steps_done,
            lr: self.lr,
            warming: self.warming,
            pending_eval,
            order_rng: self.order.rng.state(),
            order_at: self.order.at,
            augment_rng: self.augment_rng.as_ref().map(SplitMix64::state),
            window_steps: self.window.steps,
            profiles: self.profiles.clone(),
            forward: self.forward.clone(),
            ends: self.ends.clone(),
            csv_bytes: out.lengths()?,
            elapsed_s,
            config: exp.clone(),
            checksum: 0,
        };
        let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        checkpoint::save(
            dir,
            &state,
            checkpoint::Tensors {
                vars,
                momentum: opt.buffers(),
                order: &self.order.order,
                window: &self.window.sums,
            },
        )
    }

    /// Puts a checkpoint's state back into this state, the network's
    /// variables and the optimizer; returns the step whose held-out pass
    /// is still due, if one is.
    fn restore(
        &mut self,
        ck: checkpoint::Checkpoint,
        file: &Path,
        vs: &nn::VarStore,
        opt: &mut Sgd,
        device: Device,
    ) -> Result<Option<usize>, TrainError> {
        // Whatever does not fit the network drops the checkpoint (see
        // `Sweep::run`) rather than failing every resume.
        let bad = |message: String| TrainError::Checkpoint {
            path: file.to_path_buf(),
            message,
        };
        let _guard = tch::no_grad_guard();
        for (name, mut var) in vs.variables() {
            let saved = ck
                .vars
                .get(&name)
                .ok_or_else(|| bad(format!("has no variable {name:?}: it is another network's")))?;
            if saved.size() != var.size() {
                return Err(bad(format!(
                    "variable {name:?} has shape {:?}, the network's {:?}",
                    saved.size(),
                    var.size()
                )));
            }
            var.copy_(saved);
        }
        let momentum = ck
            .momentum
            .into_iter()
            .map(|(n, m)| (n, m.to_device(device)))
            .collect();
        opt.set_buffers(momentum).map_err(bad)?;
        let st = ck.state;
        self.steps_done = st.steps_done;
        self.lr = st.lr;
        self.warming = st.warming;
        self.order.rng = SplitMix64::new(st.order_rng);
        self.order.order = ck.order.to_device(device);
        self.order.at = st.order_at;
        self.augment_rng = st.augment_rng.map(SplitMix64::new);
        // A checkpoint from before the gradient-norm column summed two.
        let sums = ck.window.to_device(device);
        self.window.sums = match sums.size()[..] {
            [2] => Tensor::cat(&[sums, Tensor::zeros([1], (Kind::Double, device))], 0),
            _ => sums,
        };
        self.window.steps = st.window_steps;
        self.profiles = st.profiles;
        self.forward = st.forward;
        self.ends = st.ends;
        self.trained_before = st.elapsed_s;
        Ok(st.pending_eval.then_some(st.steps_done))
    }
}

/// √q of the trunk points, output side first: the forward signal's
/// profile read the way the gradient's is, so that its spread
/// (`log10(first / last)` of this order) is the decades √q falls from the
/// first trunk point to the last, positive when inputs grow less
/// distinguishable with depth.
fn forward_profile(rec: &ProbeRecord, trunk: &[bool]) -> Vec<f64> {
    let mut profile: Vec<f64> = rec
        .forward
        .iter()
        .zip(trunk)
        .filter(|(_, t)| **t)
        .map(|(q, _)| q.sqrt())
        .collect();
    profile.reverse();
    profile
}

/// The minibatch loss to minimize and its error (both scalar tensors on the
/// device): cross-entropy and the misclassified fraction, or, for the
/// identity task, the mean squared error and the relative reconstruction
/// error ‖f(x) − x‖² / ‖x‖² (see [`Task::Identity`]).
pub fn objective(task: Task, out: &Tensor, x: &Tensor, y: &Tensor) -> (Tensor, Tensor) {
    match task {
        Task::Classify => {
            let loss = out.cross_entropy_for_logits(y);
            let error = out
                .argmax(-1, false)
                .ne_tensor(y)
                .to_kind(Kind::Double)
                .mean(Kind::Double);
            (loss, error)
        }
        Task::Identity => {
            let target = x.flatten(1, -1);
            let diff = out - &target;
            let loss = diff.square().mean(Kind::Float);
            let error = diff.detach().square().sum(Kind::Double)
                / target.square().sum(Kind::Double).clamp_min(1e-30);
            (loss, error)
        }
    }
}

/// Mean loss and error over a whole split, in eval mode, in chunks so memory
/// stays bounded. The error of each chunk is weighted by its size (for the
/// identity task, a close approximation of the split's ratio). `None` when
/// `stop` is set before the pass is done (a full pass over a large split can
/// take minutes).
pub fn evaluate(
    net: &dyn Network,
    split: &Split,
    task: Task,
    stop: &AtomicBool,
) -> Option<(f64, f64)> {
    // 256, not more: with 1024-image chunks the evaluation pass set the peak
    // RSS of a CNN-20 run (1492 MB against 1069 MB, measured with bench-one).
    const CHUNK: i64 = 256;
    let _guard = tch::no_grad_guard();
    let n = split.len();
    let device = split.x.device();
    let mut loss_sum = Tensor::zeros([], (Kind::Double, device));
    let mut error_sum = Tensor::zeros([], (Kind::Double, device));
    let mut at = 0;
    while at < n {
        if stop.load(Ordering::SeqCst) {
            return None;
        }
        let len = CHUNK.min(n - at);
        let (x, y) = (split.x.narrow(0, at, len), split.y.narrow(0, at, len));
        let out = net.forward(&x, false, None);
        let (loss, error) = objective(task, &out, &x, &y);
        loss_sum += loss.to_kind(Kind::Double) * len as f64;
        error_sum += error * len as f64;
        at += len;
    }
    let n = n.max(1) as f64;
    Some((
        loss_sum.double_value(&[]) / n,
        error_sum.double_value(&[]) / n,
    ))
}

/// Minibatches drawn without replacement, reshuffled every epoch from the
/// run seed with our own generator (independent of libtorch's global RNG).
/// The last partial batch of an epoch is dropped, so every step sees
/// `batch` examples.
struct Batches {
    rng: SplitMix64,
    order: Tensor,
    at: i64,
    n: i64,
    batch: i64,
    device: Device,
}

impl Batches {
    fn new(n: i64, batch: i64, seed: u64, device: Device) -> Batches {
        // A different stream from the init seed's, so data order and init vary independently.
        let rng = SplitMix64::new(seed ^ 0x5EED_0FBA_7C4E_5A11);
        let mut b = Batches {
            rng,
            order: Tensor::zeros([0], (Kind::Int64, device)),
            at: n,
            n,
            batch,
            device,
        };
        b.reshuffle();
        b
    }

    fn reshuffle(&mut self) {
        self.order =
            Tensor::from_slice(&self.rng.permutation(self.n as usize)).to_device(self.device);
        self.at = 0;
    }

    fn next(&mut self, split: &Split) -> (Tensor, Tensor) {
        if self.at + self.batch > self.n {
            self.reshuffle();
        }
        let idx = self.order.narrow(0, self.at, self.batch);
        self.at += self.batch;
        (split.x.index_select(0, &idx), split.y.index_select(0, &idx))
    }
}

/// Sums of minibatch loss and error since the last training row, kept on the
/// device so logging costs one host copy per row, not one per step.
struct Window {
    sums: Tensor,
    steps: usize,
}

impl Window {
    fn new(device: Device) -> Window {
        Window {
            sums: Tensor::zeros([3], (Kind::Double, device)),
            steps: 0,
        }
    }

    /// Adds a step's loss, error and global gradient norm (float64).
    fn add(&mut self, loss: &Tensor, error: &Tensor, grad_norm: &Tensor) {
        self.sums += Tensor::stack(
            &[
                loss.detach().to_kind(Kind::Double),
                error.detach(),
                grad_norm.to_kind(Kind::Double),
            ],
            0,
        );
        self.steps += 1;
    }

    /// Mean loss, error and gradient norm over the window, then starts a
    /// new window.
    fn take(&mut self) -> (f64, f64, f64) {
        let sums: Vec<f64> =
            Vec::try_from(self.sums.to_device(Device::Cpu)).unwrap_or_else(|_| vec![f64::NAN; 3]);
        let n = self.steps.max(1) as f64;
        self.sums = self.sums.zeros_like();
        self.steps = 0;
        (sums[0] / n, sums[1] / n, sums[2] / n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
