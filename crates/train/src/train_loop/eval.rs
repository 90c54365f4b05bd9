//! The objective a run minimizes, and the full passes that measure it on
//! a whole split: held-out evaluation during training, and the final
//! numbers of both splits.

use crate::record::FinalMetrics;
use crate::spec::Task;
use gradscope_data::{Dataset, Split};
use gradscope_models::Network;
use std::sync::atomic::{AtomicBool, Ordering};
use tch::{Kind, Tensor};

/// The minibatch loss to minimize and its error (both scalar tensors on the
/// device): cross-entropy and the misclassified fraction (for a target of
/// k steps, `y` `[n, k]` and `out` `[n, k, classes]`, the copy task's:
/// the mean cross-entropy per step and the per-symbol error rate), or, for the
/// identity task, the mean squared error and the relative reconstruction
/// error ‖f(x) − x‖² / ‖x‖² (see [`Task::Identity`]), for the regression
/// task the mean squared error and MSE / Var(target) (see
/// [`Task::Regression`]; the adding problem's variance, 1/6, the only
/// regression data so far).
pub fn objective(task: Task, out: &Tensor, x: &Tensor, y: &Tensor) -> (Tensor, Tensor) {
    match task {
        Task::Classify => {
            // Steps as examples for the loss (libtorch's cross-entropy takes
            // the classes in dimension 1); a one-step target is left as it
            // was, so its numbers stay the same to the bit.
            let loss = match out.dim() {
                3 => out.flatten(0, 1).cross_entropy_for_logits(&y.flatten(0, 1)),
                _ => out.cross_entropy_for_logits(y),
            };
            // Argmax over the classes, compared per step: the mean is the
            // per-symbol error rate.
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
        Task::Regression => {
            let diff = out.flatten(0, -1) - y.to_kind(out.kind());
            let loss = diff.square().mean(Kind::Float);
            let error = diff.detach().square().mean(Kind::Double)
                / gradscope_data::sequences::ADDING_TARGET_VARIANCE;
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

/// Full passes over both splits after the last step; `None` when `stop`
/// cut one short.
pub(super) fn final_passes(
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

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// A target of k steps (the copy task's): the loss is the mean
    /// cross-entropy over every (example, step), as PyTorch's
    /// `F.cross_entropy(out.flatten(0, 1), y.flatten())` gives, and the
    /// error the fraction of wrong symbols; uniform logits score ln K,
    /// the chance loss.
    #[test]
    fn a_target_of_several_steps_is_scored_per_symbol() {
        let out = Tensor::from_slice(&[
            2.0f32, 0.0, 0.0, /**/ 0.0, 3.0, 0.0, // example 0: 0, 1
            0.0, 0.0, 1.0, /**/ 1.0, 0.0, 0.0, // example 1: 2, 0
        ])
        .reshape([2, 2, 3]);
        let y = Tensor::from_slice(&[0i64, 2, 2, 0]).reshape([2, 2]);
        let x = Tensor::zeros([2, 5, 4], (Kind::Float, Device::Cpu));
        let (loss, error) = objective(Task::Classify, &out, &x, &y);
        assert_eq!(error.double_value(&[]), 0.25, "one symbol in four wrong");
        let want = out
            .reshape([4, 3])
            .log_softmax(-1, Kind::Float)
            .gather(1, &y.reshape([4, 1]), false)
            .mean(Kind::Float)
            .neg();
        assert!((loss.double_value(&[]) - want.double_value(&[])).abs() < 1e-6);
        let uniform = Tensor::zeros([2, 2, 3], (Kind::Float, Device::Cpu));
        let (loss, _) = objective(Task::Classify, &uniform, &x, &y);
        assert!((loss.double_value(&[]) - 3f64.ln()).abs() < 1e-6);
    }
}
