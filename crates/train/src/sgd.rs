//! SGD with momentum and weight decay, written out so that its state (the
//! momentum buffers) can be saved in a checkpoint and loaded again.
//!
//! tch's `nn::Sgd` keeps its buffers inside libtorch's C++ optimizer, which
//! tch cannot read or write, so a run resumed with it would restart its
//! momentum from zero and train a different network. This one computes
//! exactly what libtorch's C++ `torch::optim::SGD` computes, bit for bit
//! (a test checks it against `nn::Sgd`), so runs trained before and after
//! it agree:
//!
//! ```text
//! d = grad + weight_decay · p          (only when weight_decay ≠ 0)
//! buf = d                              (first step)
//! buf = momentum · buf + d             (later steps; dampening 0)
//! p = p − lr · buf                     (buf = d when momentum = 0)
//! ```
//!
//! libtorch does `a.add_(b, alpha)` as one fused multiply-add per element;
//! tch has no `alpha` argument, and `a + alpha · b` in two ops rounds twice
//! (2642 of 10⁶ floats differ). `a.addcmul_(b, s)` with `s` a 0-dim float
//! tensor holding `alpha` rounds as `add_` does (0 of 5.2·10⁶ differ,
//! measured on libtorch 2.11's CPU kernels), so that is what is used.

use std::collections::BTreeMap;

use tch::{nn::VarStore, Kind, Tensor};

/// The optimizer: every trainable variable of a [`VarStore`] by name, and
/// its momentum buffer once it has one.
pub struct Sgd {
    params: Vec<(String, Tensor)>,
    buffers: BTreeMap<String, Tensor>,
    momentum: f64,
    weight_decay: f64,
}

impl Sgd {
    /// Optimizes the trainable variables of `vs`.
    pub fn new(vs: &VarStore, momentum: f64, weight_decay: f64) -> Sgd {
        let mut params: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        Sgd {
            params,
            buffers: BTreeMap::new(),
            momentum,
            weight_decay,
        }
    }

    /// The optimized variables, in the order [`Sgd::step_with`] takes
    /// their gradients.
    pub fn params(&self) -> Vec<&Tensor> {
        self.params.iter().map(|(_, p)| p).collect()
    }

    /// One step at learning rate `lr` with `grads`, one per variable in the
    /// order of [`Sgd::params`] (the training loop's backward pass returns
    /// them rather than leaving them in `grad()`); an undefined gradient
    /// leaves its variable as it is.
    pub fn step_with(&mut self, lr: f64, grads: &[Tensor]) {
        let _guard = tch::no_grad_guard();
        // The two scalars once per step, not per variable (the MLPs have 64).
        let Some(device) = self.params.first().map(|(_, p)| p.device()) else {
            return;
        };
        let scalar = |v: f64| Tensor::scalar_tensor(v, (Kind::Float, device));
        let (decay, step) = (scalar(self.weight_decay), scalar(-lr));
        for ((name, p), grad) in self.params.iter_mut().zip(grads) {
            if !grad.defined() {
                continue;
            }
            let grad = grad.shallow_clone();
            let d = if self.weight_decay != 0.0 {
                grad.addcmul(p, &decay)
            } else {
                grad
            };
            let d = if self.momentum != 0.0 {
                match self.buffers.get_mut(name) {
                    Some(buf) => {
                        let _ = buf.g_mul_scalar_(self.momentum);
                        let _ = buf.g_add_(&d);
                        buf.shallow_clone()
                    }
                    None => {
                        let buf = d.detach().copy();
                        self.buffers.insert(name.clone(), buf.shallow_clone());
                        buf
                    }
                }
            } else {
                d
            };
            let _ = p.addcmul_(&d, &step);
        }
    }

    /// The momentum buffers by variable name, for a checkpoint.
    pub fn buffers(&self) -> &BTreeMap<String, Tensor> {
        &self.buffers
    }

    /// Puts back buffers saved by [`Sgd::buffers`]; a name that is not one
    /// of the optimized variables is returned as an error message.
    pub fn set_buffers(&mut self, buffers: BTreeMap<String, Tensor>) -> Result<(), String> {
        for (name, buf) in &buffers {
            let Some((_, p)) = self.params.iter().find(|(n, _)| n == name) else {
                return Err(format!(
                    "momentum buffer for {name:?}, which the network does not have"
                ));
            };
            if p.size() != buf.size() {
                return Err(format!(
                    "momentum buffer for {name:?} has shape {:?}, the variable {:?}",
                    buf.size(),
                    p.size()
                ));
            }
        }
        self.buffers = buffers;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::{self, Module, OptimizerConfig};
    use tch::Device;

    fn net(vs: &VarStore) -> impl Module {
        let p = vs.root();
        nn::seq()
            .add(nn::linear(&p / "a", 6, 16, Default::default()))
            .add_fn(|x| x.tanh())
            .add(nn::linear(&p / "b", 16, 3, Default::default()))
    }

    /// Trusted reference: libtorch's own C++ SGD through tch, on gradients
    /// from `backward()`. Ours takes them as the training loop does, from
    /// one `run_backward` over the parameters. Twenty steps with momentum
    /// and weight decay and an lr change must leave every weight bit for
    /// bit the same, or results published with `nn::Sgd` would no longer be
    /// what `make` regenerates.
    #[test]
    fn matches_libtorchs_sgd_bit_for_bit() {
        let x = Tensor::randn([32, 6], (Kind::Float, Device::Cpu));
        let y = Tensor::randint(3, [32], (Kind::Int64, Device::Cpu));
        for (momentum, wd) in [(0.9, 1e-4), (0.0, 0.0), (0.9, 0.0)] {
            tch::manual_seed(7);
            let vs_ref = VarStore::new(Device::Cpu);
            let net_ref = net(&vs_ref);
            tch::manual_seed(7);
            let vs = VarStore::new(Device::Cpu);
            let net_ours = net(&vs);
            let mut reference = nn::Sgd {
                momentum,
                dampening: 0.0,
                wd,
                nesterov: false,
            }
            .build(&vs_ref, 0.1)
            .unwrap();
            let mut ours = Sgd::new(&vs, momentum, wd);
            for step in 0..20 {
                let lr = if step < 10 { 0.1 } else { 0.037 };
                reference.set_lr(lr);
                reference.zero_grad();
                net_ref.forward(&x).cross_entropy_for_logits(&y).backward();
                reference.step();
                let loss = net_ours.forward(&x).cross_entropy_for_logits(&y);
                let grads = Tensor::run_backward(&[&loss], &ours.params(), false, false);
                ours.step_with(lr, &grads);
            }
            let theirs = vs_ref.variables();
            for (name, t) in vs.variables() {
                assert!(
                    t.equal(&theirs[&name]),
                    "{name} differs (momentum {momentum}, weight decay {wd})"
                );
            }
        }
    }
}
