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
//! On a CPU with AVX2 and FMA the step is one pass per parameter
//! ([`gradscope_kernels::sgd`]) that computes the same floats, and also leaves
//! each weight's norm for the probe ([`Sgd::norms`]) and, on a probe step,
//! reads each gradient's sums for it ([`Sgd::step_reading`]).
//!
//! libtorch does `a.add_(b, alpha)` as one fused multiply-add per element;
//! tch has no `alpha` argument, and `a + alpha · b` in two ops rounds twice
//! (2642 of 10⁶ floats differ). `a.addcmul_(b, s)` with `s` a 0-dim float
//! tensor holding `alpha` rounds as `add_` does (0 of 5.2·10⁶ differ,
//! measured on libtorch 2.11's CPU kernels), so that is what is used.

//!
//! The same type steps Adam and AdamW ([`Adam`]), as libtorch's C++
//! `torch::optim::Adam` and `AdamW` compute them, with libtorch's ops (never
//! the fused kernel, so the probe reads weights and gradients itself, as
//! on CUDA). Their moments live in the same map as the momentum buffers
//! (`NAME` for m, `NAME#v` for v, `#step` for the step count), so a
//! checkpoint saves and restores them with no code of its own.

use std::collections::BTreeMap;

use gradscope_kernels::GradSums;
use tch::{nn::VarStore, Device, Kind, TchError, Tensor};

/// The optimizer: every trainable variable of a [`VarStore`] by name, and
/// its momentum buffer once it has one.
pub struct Sgd {
    params: Vec<(String, Tensor)>,
    buffers: BTreeMap<String, Tensor>,
    momentum: f64,
    weight_decay: f64,
    /// ‖p‖ of each variable after the last step, where the fused step
    /// computed it; `None` before this process's first step.
    norms: Option<Vec<Option<f64>>>,
    /// Whether steps may take the fused kernel (tests turn it off to
    /// compare it with libtorch's ops).
    fuse: bool,
    /// Adam's settings when this steps Adam or AdamW instead of SGD.
    adam: Option<Adam>,
}

/// Adam's settings (`torch::optim::AdamOptions`, no AMSGrad).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adam {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// AdamW: weight decay decoupled from the gradient (p ← p·(1 − lr·wd)
    /// before the step) rather than added to it.
    pub decoupled: bool,
}

/// Key of v (the second moment) in the buffer map.
const SECOND: &str = "#v";
/// Key of Adam's step count (a one-element float64 tensor).
const STEP: &str = "#step";

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
            norms: None,
            fuse: gradscope_kernels::sgd::available(),
            adam: None,
        }
    }

    /// Adam or AdamW over the trainable variables of `vs`, with L2 (Adam)
    /// or decoupled (AdamW) `weight_decay`.
    pub fn adam(vs: &VarStore, adam: Adam, weight_decay: f64) -> Sgd {
        let mut opt = Sgd::new(vs, 0.0, weight_decay);
        opt.adam = Some(adam);
        // libtorch's ops step it; the probe reads what the kernel would.
        opt.fuse = false;
        opt
    }

    /// ‖p‖ of every variable (in the order of [`Sgd::params`]), accumulated
    /// in float64, as the last step left it: computed by the fused step
    /// where it took the variable; before this process's first step (a
    /// run's first, or the first after a resume), measured with the same
    /// sum (`gradscope_kernels::sgd::norms`), so that a resumed run writes the numbers
    /// of one never stopped; and for the others (CUDA, or a variable the
    /// last step left alone) libtorch's float64 norm, with one copy to the
    /// host for all of them. Nothing else writes the variables between
    /// steps, so a probe step takes these instead of reading the weights,
    /// and may take them before it steps.
    pub fn norms(&mut self) -> Result<&[Option<f64>], TchError> {
        let fused = self.fuse;
        let params = &self.params;
        let norms = self.norms.get_or_insert_with(|| {
            let measured: Vec<Option<&Tensor>> = params
                .iter()
                .map(|(_, p)| (fused && gradscope_kernels::sgd::fits(p)).then_some(p))
                .collect();
            let all: Vec<&Tensor> = measured.iter().flatten().copied().collect();
            let mut sums = gradscope_kernels::sgd::norms(&all).into_iter();
            measured
                .iter()
                .map(|m| m.and_then(|_| sums.next()).map(f64::sqrt))
                .collect()
        });
        let missing: Vec<usize> = (0..norms.len()).filter(|&i| norms[i].is_none()).collect();
        if !missing.is_empty() {
            let _guard = tch::no_grad_guard();
            let parts = missing
                .iter()
                .map(|&i| {
                    params[i]
                        .1
                        .f_norm_scalaropt_dtype(2, Kind::Double)
                        .and_then(|n| n.f_reshape([1]))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let host = Vec::<f64>::try_from(Tensor::f_cat(&parts, 0)?.f_to_device(Device::Cpu)?)?;
            for (i, norm) in missing.into_iter().zip(host) {
                norms[i] = Some(norm);
            }
        }
        Ok(norms)
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
        self.step(lr, grads, false);
    }

    /// Whether [`Sgd::step_reading`] reads the gradients: the fused step
    /// takes the variables (a CPU with AVX2 and FMA). Elsewhere (CUDA) a
    /// probe reads them itself, before the step.
    pub fn reads_gradients(&self) -> bool {
        self.fuse
            && self
                .params
                .first()
                .is_some_and(|(_, p)| p.device() == Device::Cpu)
    }

    /// [`Sgd::step_with`] on a probe step: also returns Σg² and the
    /// non-zero count of each gradient that the fused step read anyway
    /// (`None` for the others, which the probe then reads itself).
    pub fn step_reading(&mut self, lr: f64, grads: &[Tensor]) -> Vec<Option<GradSums>> {
        self.step(lr, grads, true)
    }

    fn step(&mut self, lr: f64, grads: &[Tensor], read_grads: bool) -> Vec<Option<GradSums>> {
        if let Some(adam) = self.adam {
            self.adam_step(adam, lr, grads);
            return vec![None; self.params.len()];
        }
        let _guard = tch::no_grad_guard();
        // The two scalars once per step, not per variable (the MLPs have 64).
        let Some(device) = self.params.first().map(|(_, p)| p.device()) else {
            return Vec::new();
        };
        // The variables the fused step took come back with their sums;
        // libtorch's ops step the rest.
        let fused = if self.reads_gradients() {
            self.fused_step(lr, grads, read_grads)
        } else {
            vec![None; self.params.len()]
        };
        let scalar = |v: f64| Tensor::scalar_tensor(v, (Kind::Float, device));
        let (decay, step) = (scalar(self.weight_decay), scalar(-lr));
        for (((name, p), grad), sums) in self.params.iter_mut().zip(grads).zip(&fused) {
            if !grad.defined() || sums.is_some() {
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
        self.norms = Some(fused.iter().map(|s| s.map(|s| s.weights.sqrt())).collect());
        fused
            .into_iter()
            .map(|s| s.filter(|_| read_grads).map(|s| s.grads))
            .collect()
    }

    /// The fused step ([`gradscope_kernels::sgd`]) of every variable it can
    /// take (float32 in host memory, dense, with a buffer of its layout):
    /// the sums of each it took (see `gradscope_kernels::sgd::step`), `None` for the
    /// others.
    fn fused_step(
        &mut self,
        lr: f64,
        grads: &[Tensor],
        read_grads: bool,
    ) -> Vec<Option<gradscope_kernels::sgd::Sums>> {
        use gradscope_kernels::sgd::{fits, same_layout, Buffer, Scalars, Slot};
        let mut taken = Vec::new();
        let mut slots = Vec::new();
        // Gradients copied into their variable's layout (a conv weight's
        // channels-last, where the gradient came contiguous), and first
        // momentum buffers: alive until the step is done, the buffers kept
        // only once it is.
        let mut held = Vec::new();
        let mut first_buffers = Vec::new();
        for (i, ((name, p), grad)) in self.params.iter().zip(grads).enumerate() {
            if !grad.defined() || !fits(p) {
                continue;
            }
            let grad = if same_layout(p, grad) {
                grad.shallow_clone()
            } else {
                let mut copy = p.empty_like();
                copy.copy_(grad);
                copy
            };
            let (buffer, b) = match (self.momentum != 0.0, self.buffers.get(name)) {
                (false, _) => (Buffer::None, None),
                (true, Some(b)) => (Buffer::Later, Some(b.shallow_clone())),
                (true, None) => (Buffer::First, Some(p.empty_like())),
            };
            let Some(slot) = Slot::new(p, &grad, b.as_ref(), buffer) else {
                continue;
            };
            if let (Buffer::First, Some(b)) = (buffer, b) {
                first_buffers.push((name.clone(), b));
            }
            slots.push(slot);
            taken.push(i);
            held.push(grad);
        }
        let mut out = vec![None; self.params.len()];
        if !gradscope_kernels::sgd::disjoint(&slots) {
            return out;
        }
        let scalars = Scalars {
            decays: self.weight_decay != 0.0,
            decay: self.weight_decay as f32,
            momentum: self.momentum as f32,
            step: -lr as f32,
        };
        // SAFETY: `available` was checked by the caller and the slots are
        // disjoint; the variables, gradients and buffers behind them are
        // held by `self`, `held` and `first_buffers` until the step
        // returns, and nothing else runs meanwhile.
        let sums = unsafe { gradscope_kernels::sgd::step(&slots, scalars, read_grads) };
        self.buffers.extend(first_buffers);
        for (i, sums) in taken.into_iter().zip(sums) {
            out[i] = Some(sums);
        }
        drop(held);
        out
    }

    /// One Adam or AdamW step, as libtorch's `adam.cpp` / `adamw.cpp`
    /// (2.x, no AMSGrad) computes it:
    ///
    /// ```text
    /// p = p · (1 − lr·wd)                     (AdamW, wd ≠ 0)
    /// g = g + wd · p                          (Adam, wd ≠ 0)
    /// m = β₁·m + (1−β₁)·g ;  v = β₂·v + (1−β₂)·g·g
    /// p = p − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε)
    /// ```
    ///
    /// libtorch's `add_(g, α)`, `addcmul_(a, b, value)` and
    /// `addcdiv_(a, b, value)` take a scalar that tch cannot pass; each is
    /// written so that its floats round as libtorch's do: `add_` as
    /// `addcmul_` by a 0-dim tensor (see the module's note), and the value
    /// of `addcmul_`/`addcdiv_` folded into the first factor, which the
    /// kernel multiplies first anyway ((value·a)·b, (value·a)/b). The test
    /// below holds the result to `nn::Adam`/`nn::AdamW` bit for bit.
    fn adam_step(&mut self, adam: Adam, lr: f64, grads: &[Tensor]) {
        let _guard = tch::no_grad_guard();
        let Some(device) = self.params.first().map(|(_, p)| p.device()) else {
            return;
        };
        let scalar = |v: f64| Tensor::scalar_tensor(v, (Kind::Float, device));
        let wd = self.weight_decay;
        let (decay, keep1) = (scalar(wd), scalar(1.0 - adam.beta1));
        // libtorch counts steps per variable; every variable steps
        // together here (an undefined gradient only at a frozen one).
        let t = self.buffers.get(STEP).map_or(0.0, |s| s.double_value(&[0])) + 1.0;
        self.buffers
            .insert(STEP.to_string(), Tensor::from_slice(&[t]).to_device(device));
        let bias1 = 1.0 - adam.beta1.powf(t);
        let bias2 = 1.0 - adam.beta2.powf(t);
        let step_size = lr / bias1;
        for ((name, p), grad) in self.params.iter_mut().zip(grads) {
            if !grad.defined() {
                continue;
            }
            if adam.decoupled && wd != 0.0 {
                let _ = p.g_mul_scalar_(1.0 - lr * wd);
            }
            let grad = if !adam.decoupled && wd != 0.0 {
                grad.addcmul(p, &decay)
            } else {
                grad.shallow_clone()
            };
            let m = self
                .buffers
                .entry(name.clone())
                .or_insert_with(|| p.zeros_like());
            let _ = m.g_mul_scalar_(adam.beta1);
            let _ = m.addcmul_(&grad, &keep1);
            let m = m.shallow_clone();
            let v = self
                .buffers
                .entry(format!("{name}{SECOND}"))
                .or_insert_with(|| p.zeros_like());
            let _ = v.g_mul_scalar_(adam.beta2);
            let _ = v.addcmul_(&grad.g_mul_scalar(1.0 - adam.beta2), &grad);
            let denom = v.sqrt().g_div_scalar(bias2.sqrt()).g_add_scalar(adam.eps);
            let _ = p.addcdiv_(&m.g_mul_scalar(-step_size), &denom);
        }
        self.norms = None;
    }

    /// The momentum buffers by variable name, for a checkpoint.
    pub fn buffers(&self) -> &BTreeMap<String, Tensor> {
        &self.buffers
    }

    /// Puts back buffers saved by [`Sgd::buffers`]; a name that is not one
    /// of the optimized variables is returned as an error message.
    pub fn set_buffers(&mut self, buffers: BTreeMap<String, Tensor>) -> Result<(), String> {
        for (name, buf) in &buffers {
            if name == STEP {
                continue;
            }
            let name = name.strip_suffix(SECOND).unwrap_or(name);
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
    /// Both ways of taking the step: the fused pass (where the CPU has it)
    /// and libtorch's ops (CUDA's way).
    #[test]
    fn matches_libtorchs_sgd_bit_for_bit() {
        let x = Tensor::randn([32, 6], (Kind::Float, Device::Cpu));
        let y = Tensor::randint(3, [32], (Kind::Int64, Device::Cpu));
        for (momentum, wd, fuse) in [
            (0.9, 1e-4, true),
            (0.0, 0.0, true),
            (0.9, 0.0, true),
            (0.9, 1e-4, false),
            (0.0, 0.0, false),
        ] {
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
            ours.fuse &= fuse;
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
                    "{name} differs (momentum {momentum}, weight decay {wd}, fused {fuse})"
                );
            }
        }
    }

    /// Trusted reference: libtorch's own C++ Adam and AdamW (`nn::Adam`,
    /// `nn::AdamW` through tch, `torch::optim::Adam`/`AdamW`). Thirty steps
    /// with and without weight decay and an lr change must leave every
    /// weight equal bit for bit: libtorch's CPU Adam is the unfused
    /// per-parameter loop of `adam.cpp`, whose ops ours repeats (see
    /// `adam_step`), so there is no fused kernel rounding differently and
    /// no ulp to allow. Then a checkpoint's round trip: the state saved by
    /// `buffers` and put back with `set_buffers` into a fresh optimizer
    /// goes on exactly as the one never stopped.
    #[test]
    fn adam_and_adamw_match_libtorchs_bit_for_bit() {
        let x = Tensor::randn([32, 6], (Kind::Float, Device::Cpu));
        let y = Tensor::randint(3, [32], (Kind::Int64, Device::Cpu));
        for (decoupled, wd) in [(false, 0.0), (false, 1e-2), (true, 0.0), (true, 5e-2)] {
            tch::manual_seed(7);
            let vs_ref = VarStore::new(Device::Cpu);
            let net_ref = net(&vs_ref);
            tch::manual_seed(7);
            let vs = VarStore::new(Device::Cpu);
            let net_ours = net(&vs);
            let (beta1, beta2, eps) = (0.85, 0.99, 1e-6);
            let mut reference = match decoupled {
                false => nn::Adam {
                    beta1,
                    beta2,
                    wd,
                    eps,
                    amsgrad: false,
                }
                .build(&vs_ref, 1e-2),
                true => nn::AdamW {
                    beta1,
                    beta2,
                    wd,
                    eps,
                    amsgrad: false,
                }
                .build(&vs_ref, 1e-2),
            }
            .unwrap();
            let adam = Adam {
                beta1,
                beta2,
                eps,
                decoupled,
            };
            let mut ours = Sgd::adam(&vs, adam, wd);
            for step in 0..30 {
                let lr = if step < 15 { 1e-2 } else { 3e-3 };
                if step == 20 {
                    // Resume: a fresh optimizer from the saved state.
                    let saved: BTreeMap<String, Tensor> = ours
                        .buffers()
                        .iter()
                        .map(|(k, v)| (k.clone(), v.copy()))
                        .collect();
                    ours = Sgd::adam(&vs, adam, wd);
                    ours.set_buffers(saved).unwrap();
                }
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
                    "{name} differs (decoupled {decoupled}, weight decay {wd}): max |Δ| {}",
                    (&t - &theirs[&name]).abs().max().double_value(&[])
                );
            }
            assert!(!ours.reads_gradients(), "Adam never takes the fused path");
        }
    }

    fn nhwc(t: &Tensor) -> Tensor {
        t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
    }

    /// Variables of sizes that split unevenly over two threads, over
    /// several blocks of the norm's sum, and leave a tail of fewer than
    /// eight floats; and two conv weights in channels-last strides, as the
    /// CNNs keep them on the CPU (`layers::channels_last`).
    fn uneven_vars(vs: &VarStore) -> Vec<Tensor> {
        let root = vs.root();
        let vars = vec![
            root.randn("a", &[70_001], 0.0, 1.0),
            root.randn("b", &[37, 129], 0.0, 1.0),
            root.randn("c", &[5], 0.0, 1.0),
            root.randn("conv", &[24, 16, 3, 3], 0.0, 1.0),
            root.randn("conv_cl_grad", &[8, 5, 3, 3], 0.0, 1.0),
        ];
        for v in &vars[3..] {
            let mut v = v.shallow_clone();
            tch::no_grad(|| v.set_data(&nhwc(&v)));
        }
        vars
    }

    /// Gradients for [`uneven_vars`] at `step`: the first conv weight's
    /// contiguous (its layout differs from the weight's), the second's in
    /// the weight's channels-last layout, and at step 2 none for `c` (a
    /// variable the loss does not reach).
    fn uneven_grads(vars: &[Tensor], step: i64) -> Vec<Tensor> {
        tch::manual_seed(100 + step);
        vars.iter()
            .enumerate()
            .map(|(i, v)| {
                let g = (v.randn_like() * 1e-2).contiguous();
                match i {
                    2 if step == 2 => Tensor::new(),
                    4 => nhwc(&g),
                    _ => g,
                }
            })
            .collect()
    }

    /// The fused step (one pass per variable, split over two threads)
    /// against the same optimizer on libtorch's ops, which
    /// `matches_libtorchs_sgd_bit_for_bit` holds to libtorch's own SGD:
    /// every weight and momentum buffer bit for bit, over steps with and
    /// without momentum and weight decay and an lr change. And the norms
    /// it leaves are the weights' norms (libtorch's float64 norm, to
    /// float64 rounding of a different summation order).
    #[test]
    #[cfg_attr(
        not(target_arch = "x86_64"),
        ignore = "the fused step is x86_64 AVX2/FMA code, compiled out here"
    )]
    fn fused_step_matches_libtorch_ops_bit_for_bit() {
        // An x86_64 CPU without AVX2 and FMA (before 2013) cannot run it;
        // `make test`'s portable pass leaves it out by name.
        if !gradscope_kernels::sgd::available() {
            eprintln!("no AVX2 and FMA: the fused step is not taken here");
            return;
        }
        tch::set_num_threads(2);
        for (momentum, wd) in [(0.9, 1e-4), (0.0, 0.0), (0.9, 0.0), (0.0, 5e-4)] {
            let make = |fuse: bool| {
                tch::manual_seed(3);
                let vs = VarStore::new(Device::Cpu);
                let vars = uneven_vars(&vs);
                let mut opt = Sgd::new(&vs, momentum, wd);
                opt.fuse = fuse;
                (vs, vars, opt)
            };
            let (vs_fused, vars_fused, mut fused) = make(true);
            let (vs_ops, vars_ops, mut ops) = make(false);
            for step in 0..6 {
                let lr = if step < 3 { 0.1 } else { 0.013 };
                // Gradients in the order of `params()` (sorted by name).
                let order = |vars: &[Tensor], opt: &Sgd| -> Vec<Tensor> {
                    let grads = uneven_grads(vars, step);
                    opt.params()
                        .iter()
                        .map(|p| {
                            let i = vars
                                .iter()
                                .position(|v| v.data_ptr() == p.data_ptr())
                                .unwrap();
                            grads[i].shallow_clone()
                        })
                        .collect()
                };
                // Every other step reads the gradients, as a probe step.
                let reading = step % 2 == 0;
                let g = order(&vars_fused, &fused);
                let read = if reading {
                    fused.step_reading(lr, &g)
                } else {
                    fused.step_with(lr, &g);
                    vec![None; g.len()]
                };
                let g_ops = order(&vars_ops, &ops);
                ops.step_with(lr, &g_ops);
                // Every norm, the fused step's and (at step 2) one measured
                // for a variable the step left alone, is the weight's.
                let norms = fused.norms().unwrap().to_vec();
                for (p, norm) in fused.params().iter().zip(norms) {
                    let norm = norm.expect("every variable has a norm");
                    let want = p.norm_scalaropt_dtype(2, Kind::Double).double_value(&[]);
                    assert!(
                        (norm - want).abs() <= 1e-12 * want,
                        "norm {norm} against libtorch's {want}"
                    );
                }
                // The gradients' sums, where read: Σg² and the non-zero
                // count of each gradient the fused step took.
                for (g, sums) in g.iter().zip(&read) {
                    match (reading && g.defined(), sums) {
                        (true, Some(sums)) => {
                            // Squared in float64, as the kernel squares.
                            let want = g
                                .to_kind(Kind::Double)
                                .square()
                                .sum(Kind::Double)
                                .double_value(&[]);
                            // The probe's float32 lanes (flushed to float64
                            // every 32 values): float32's precision.
                            assert!(
                                (sums.sum_sq - want).abs() <= 1e-6 * want,
                                "Σg² {} against libtorch's {want}",
                                sums.sum_sq
                            );
                            assert_eq!(sums.nonzero, g.count_nonzero(None).int64_value(&[]) as u64);
                        }
                        (false, None) => {}
                        (want, got) => panic!("read {got:?}, expected one: {want}"),
                    }
                }
            }
            let theirs = vs_ops.variables();
            for (name, t) in vs_fused.variables() {
                assert!(
                    t.equal(&theirs[&name]),
                    "{name} differs (momentum {momentum}, weight decay {wd})"
                );
            }
            for (name, b) in fused.buffers() {
                assert!(
                    b.equal(&ops.buffers()[name]),
                    "buffer of {name} differs (momentum {momentum}, weight decay {wd})"
                );
            }
            // A process that has not stepped (a run resumed from a
            // checkpoint) measures the same norms, bit for bit, on one
            // thread or two: the sum's order does not depend on threads.
            let stepped = fused.norms().unwrap().to_vec();
            for threads in [1, 2] {
                tch::set_num_threads(threads);
                let mut resumed = Sgd::new(&vs_fused, momentum, wd);
                assert_eq!(
                    resumed.norms().unwrap(),
                    stepped.as_slice(),
                    "{threads} thread(s)"
                );
            }
        }
    }
}
