//! What the loop watches as it runs: the non-finite-loss check
//! ([`Divergence`]), the training window's sums ([`Window`]) and the rows of
//! `metrics.csv` ([`Log`]).

use super::state::LoopState;
use crate::TrainError;
use gradscope_format::rows::SPLIT_TRAIN;
use gradscope_probe::writers::{MetricRow, RunWriters};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// The non-finite-loss check. On the CPU it reads every step's loss (free:
/// the value is already in memory). On CUDA a read is a host sync that
/// drains the GPU's queue, so the first non-finite step is kept on the
/// device (no sync) and read only at steps that sync anyway: probe, log,
/// evaluation and checkpoint steps, the last step, and a stop. The run is
/// still marked diverged at the exact step, and no row is written after
/// it, since every row is written at a step that reads.
pub(super) struct Divergence {
    /// On the device: the first step whose loss was not finite, or -1.
    pub(super) first_bad: Option<Tensor>,
}

impl Divergence {
    pub(super) fn new(device: Device) -> Divergence {
        Divergence::deferred(device != Device::Cpu, device)
    }

    pub(super) fn deferred(deferred: bool, device: Device) -> Divergence {
        Divergence {
            first_bad: deferred.then(|| Tensor::full([], -1, (Kind::Int64, device))),
        }
    }

    /// The first non-finite step noted so far, read now (a sync on CUDA;
    /// on the CPU every step was read already).
    pub(super) fn read(&mut self) -> Option<usize> {
        let v = self.first_bad.as_ref()?.int64_value(&[]);
        (v >= 0).then_some(v as usize)
    }

    /// Notes `step`'s loss; returns the first non-finite step once it is
    /// known (every step on the CPU, at reading steps on CUDA).
    pub(super) fn note(&mut self, loss: &Tensor, step: usize, read: bool) -> Option<usize> {
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
pub(super) struct Log {
    pub(super) out: RunWriters,
    pub(super) batch_size: usize,
    pub(super) train_examples: usize,
    pub(super) start: Instant,
}

impl Log {
    pub(super) fn new(out: RunWriters, batch_size: usize, train_examples: usize) -> Log {
        Log {
            out,
            batch_size,
            train_examples,
            start: Instant::now(),
        }
    }

    /// Seconds trained, by this process and those it resumed from.
    pub(super) fn elapsed(&self, s: &LoopState) -> f64 {
        s.trained_before + self.start.elapsed().as_secs_f64()
    }

    /// A training row: [`Log::row`] with the window's mean global
    /// gradient norm before clipping.
    pub(super) fn train_row(
        &mut self,
        s: &LoopState,
        step: usize,
        reading: (f64, f64),
        grad_norm: f64,
    ) -> Result<(), TrainError> {
        self.write(s, step, SPLIT_TRAIN, reading, Some(grad_norm))
    }

    /// One row after `step` steps: `(loss, error)` of `split` at the lr in use.
    pub(super) fn row(
        &mut self,
        s: &LoopState,
        step: usize,
        split: &str,
        reading: (f64, f64),
    ) -> Result<(), TrainError> {
        self.write(s, step, split, reading, None)
    }

    pub(super) fn write(
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

/// Sums of minibatch loss and error since the last training row, kept on the
/// device so logging costs one host copy per row, not one per step.
pub(super) struct Window {
    pub(super) sums: Tensor,
    pub(super) steps: usize,
}

impl Window {
    pub(super) fn new(device: Device) -> Window {
        Window {
            sums: Tensor::zeros([3], (Kind::Double, device)),
            steps: 0,
        }
    }

    /// Adds a step's loss, error and global gradient norm (float64).
    pub(super) fn add(&mut self, loss: &Tensor, error: &Tensor, grad_norm: &Tensor) {
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
    pub(super) fn take(&mut self) -> (f64, f64, f64) {
        let sums: Vec<f64> =
            Vec::try_from(self.sums.to_device(Device::Cpu)).unwrap_or_else(|_| vec![f64::NAN; 3]);
        let n = self.steps.max(1) as f64;
        self.sums = self.sums.zeros_like();
        self.steps = 0;
        (sums[0] / n, sums[1] / n, sums[2] / n)
    }
}
