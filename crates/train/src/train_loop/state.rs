//! What the loop carries from one step to the next besides the network
//! and the optimizer ([`LoopState`], all of it checkpointed), and the
//! minibatch order ([`Batches`]).

use super::watch::Window;
use crate::checkpoint;
use crate::plan::RunSpec;
use crate::record::GradientEnds;
use crate::sgd::Sgd;
use crate::spec::{Experiment, ModelSpec, TrainSpec, Warmup};
use crate::TrainError;
use gradscope_data::rng::SplitMix64;
use gradscope_data::{Dataset, Split};
use gradscope_format::decay::ProfileWindow;
use gradscope_format::wgrad::{main_weights, profile, Point};
use gradscope_probe::writers::RunWriters;
use gradscope_probe::ProbeRecord;
use std::path::Path;
use tch::{nn, Device, Kind, Tensor};

/// What the loop carries from one step to the next, besides the network
/// and the optimizer: all of it goes into a checkpoint.
pub(super) struct LoopState {
    pub(super) steps_done: usize,
    pub(super) lr: f64,
    pub(super) warming: bool,
    pub(super) order: Batches,
    pub(super) augment_rng: Option<SplitMix64>,
    pub(super) window: Window,
    pub(super) profiles: ProfileWindow,
    /// The forward signal's profiles (√q over the trunk, output side
    /// first, so that the window's spread is its fall toward the output).
    pub(super) forward: ProfileWindow,
    /// Per trunk point, the probe point of its main weight
    /// ([`gradscope_format::wgrad::main_weights`]); empty for the rnn
    /// family.
    pub(super) main_weights: Vec<Option<usize>>,
    /// The profiles of ‖∇W‖ of those weights; `None` for the rnn family
    /// and for a run resumed from a checkpoint that predates them, whose
    /// first probe steps are gone.
    pub(super) wgrad: Option<ProfileWindow>,
    pub(super) ends: GradientEnds,
    /// Seconds trained by the processes before this one (resumed runs).
    pub(super) trained_before: f64,
}

impl LoopState {
    /// The state before the first step of a run.
    pub(super) fn new(
        exp: &Experiment,
        data: &Dataset,
        run: &RunSpec,
        points: &[String],
        trunk: &[bool],
        weighted: &[bool],
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
        let power = crate::theory::needs_sequence_input(exp, run)
            .then(|| crate::theory::input_power(&data.train.x))
            .flatten();
        ends.decay_theory =
            crate::theory::prediction(exp, run, data.input_dim(), power).map(|p| p.decay);
        ends.xi_c = crate::theory::xi_c(exp, run);
        // The rnn's trunk is time: every step applies the same weights, so
        // no trunk point has a weight of its own to fit a slope over.
        let main_weights = if matches!(exp.model, ModelSpec::Rnn(_)) {
            Vec::new()
        } else {
            let shape: Vec<Point> = points
                .iter()
                .zip(trunk)
                .zip(weighted)
                .map(|((name, &trunk), &weight)| Point {
                    name,
                    weight,
                    trunk,
                })
                .collect();
            main_weights(&shape)
        };
        let wgrad = (!main_weights.is_empty()).then(ProfileWindow::new);
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
            main_weights,
            wgrad,
            ends,
            trained_before: 0.0,
        };
        s.lr = s.lr_at(t, 0);
        s
    }

    /// The lr of `step`: He et al.'s warm-up lr while it lasts, else the
    /// schedule's (with a linear warm-up's ramp).
    pub(super) fn lr_at(&self, t: &TrainSpec, step: usize) -> f64 {
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
    pub(super) fn record_probe(&mut self, step: usize, rec: &ProbeRecord, trunk: &[bool]) -> bool {
        self.profiles.push(rec.trunk_profile(trunk));
        self.forward.push(forward_profile(rec, trunk));
        if let Some(wgrad) = &mut self.wgrad {
            // Pushed before the finiteness check, as the dL/dh profile is:
            // a diverged step's non-finite norms drop out of its fit.
            let norm = |i: usize| Some(rec.weight.get(i)?.as_ref()?.grad.l2);
            wgrad.push(profile(&self.main_weights, norm));
        }
        let (first, last) = (
            rec.output.iter().flatten().next().map(|o| o.l2),
            rec.output.iter().flatten().next_back().map(|o| o.l2),
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
    pub(super) fn gradient_ends(&self) -> GradientEnds {
        let mut ends = self.ends.clone();
        let r = self.profiles.readings();
        (ends.decay_init, ends.decay_final) = (r.decay_init, r.decay_final);
        (ends.spread_init, ends.spread_final) = (r.spread_init, r.spread_final);
        let f = self.forward.readings();
        (ends.forward_spread_init, ends.forward_spread_final) = (f.spread_init, f.spread_final);
        ends.forward_decay_init = f.decay_init;
        if let Some(w) = self.wgrad.as_ref().map(ProfileWindow::readings) {
            (ends.wgrad_decay_init, ends.wgrad_decay_final) = (w.decay_init, w.decay_final);
        }
        ends
    }

    /// Writes `dir/checkpoint.pt` for the state after `steps_done` steps;
    /// `pending_eval`: the held-out pass due after that step has not run.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn save(
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
            wgrad: self.wgrad.clone(),
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
    pub(super) fn restore(
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
        // An older checkpoint has no weight profiles: the run goes on
        // without the reading rather than with its first steps missing.
        self.wgrad = st.wgrad;
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
pub(super) fn forward_profile(rec: &ProbeRecord, trunk: &[bool]) -> Vec<f64> {
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

/// Minibatches drawn without replacement, reshuffled every epoch from the
/// run seed with our own generator (independent of libtorch's global RNG).
/// The last partial batch of an epoch is dropped, so every step sees
/// `batch` examples.
pub(super) struct Batches {
    pub(super) rng: SplitMix64,
    pub(super) order: Tensor,
    pub(super) at: i64,
    pub(super) n: i64,
    pub(super) batch: i64,
    pub(super) device: Device,
}

impl Batches {
    pub(super) fn new(n: i64, batch: i64, seed: u64, device: Device) -> Batches {
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

    pub(super) fn reshuffle(&mut self) {
        self.order =
            Tensor::from_slice(&self.rng.permutation(self.n as usize)).to_device(self.device);
        self.at = 0;
    }

    pub(super) fn next(&mut self, split: &Split) -> (Tensor, Tensor) {
        if self.at + self.batch > self.n {
            self.reshuffle();
        }
        let idx = self.order.narrow(0, self.at, self.batch);
        self.at += self.batch;
        (split.x.index_select(0, &idx), split.y.index_select(0, &idx))
    }
}
