//! Gradient hooks: libtorch calls a Rust closure with the gradient at a
//! tensor as its autograd engine produces it (the C++ of
//! `csrc/grad_hook.cpp`; tch has no hook API).
//!
//! Why the probe wants them: asking autograd for dL/dh at every probe point
//! (`autograd.grad(loss, params + outputs)`) keeps every dL/dh alive until
//! the backward pass ends, 107 MB on CNN-20, and each later gradient then
//! lands in fresh memory instead of the block the last one freed. A hook
//! reads the gradient the moment it exists and lets libtorch free it as a
//! plain backward pass would.
//!
//! Safety: a hook holds a raw pointer to its closure's context, through a
//! target that the C++ side shares among the hooks of one call. Before the
//! context goes away [`with_grad_hooks`] disarms the target, which waits
//! for a call in progress and cannot fail, so a hook that libtorch still
//! holds afterwards (one `remove_hook` could not remove, after an in-place
//! op gave the tensor a new `grad_fn`; or a backward pass that outlives
//! the body on another thread) calls nothing. A panic in the closure is
//! caught before it could unwind into libtorch's C++ and is resumed after
//! the body.

use std::any::Any;
use std::ffi::{c_char, c_int, c_uint, c_void, CStr};
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use tch::{TchError, Tensor};
use torch_sys::C_tensor;

type GradFn = unsafe extern "C" fn(ctx: *mut c_void, point: usize, grad: *mut C_tensor);

extern "C" {
    fn gradscope_target_new(f: GradFn, ctx: *mut c_void) -> *mut c_void;
    fn gradscope_target_disarm(target: *mut c_void);
    fn gradscope_target_free(target: *mut c_void);
    fn gradscope_register_grad_hook(
        t: *const C_tensor,
        target: *mut c_void,
        point: usize,
        handle: *mut c_uint,
        err: *mut c_char,
        err_len: usize,
    ) -> c_int;
    fn gradscope_remove_hook(
        t: *const C_tensor,
        handle: c_uint,
        err: *mut c_char,
        err_len: usize,
    ) -> c_int;
}

/// What the C++ side holds a pointer to while the target is armed.
struct Context<'a> {
    on_grad: &'a (dyn Fn(usize, Tensor) + Sync),
    /// The first panic of `on_grad`, resumed once the hooks are disarmed.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

/// Called by libtorch (on CPU, on the thread that runs the backward pass;
/// on CUDA, on the device's autograd thread), one call at a time.
unsafe extern "C" fn call(ctx: *mut c_void, point: usize, grad: *mut C_tensor) {
    // SAFETY: an armed target's `ctx` is the `Context` that
    // `with_grad_hooks` keeps alive until it has disarmed the target.
    let ctx = unsafe { &*(ctx as *const Context) };
    if grad.is_null() {
        // An undefined gradient: as if the hook had not been called.
        return;
    }
    // SAFETY: the C++ side hands over a new `at::Tensor` that we own.
    let grad = unsafe { Tensor::from_ptr(grad) };
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| (ctx.on_grad)(point, grad)));
    if let Err(panic) = outcome {
        let mut slot = ctx.panic.lock().unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert(panic);
    }
}

/// The C++ target of one call's hooks; disarmed and released when dropped,
/// on every way out of [`with_grad_hooks`], before its context.
struct Target(*mut c_void);

impl Drop for Target {
    fn drop(&mut self) {
        // SAFETY: `self.0` came from `gradscope_target_new` and is released
        // once, here.
        unsafe {
            gradscope_target_disarm(self.0);
            gradscope_target_free(self.0);
        }
    }
}

/// Runs `body` with `on_grad(i, gradient)` hooked to each of `tensors`:
/// a backward pass inside `body` that produces the gradient at `tensors[i]`
/// calls it once with that gradient, accumulated over every use of the
/// tensor, before it flows on. libtorch calls a tensor's hook only where
/// the pass runs its `grad_fn`: a leaf, or a tensor from which the pass
/// reaches none of the tensors it differentiates for, gets no call. Once
/// this returns, `on_grad` is never called again (the hooks are removed,
/// and disarmed in any case). Errors: a tensor that does not require grad
/// (libtorch's message).
pub fn with_grad_hooks<R>(
    tensors: &[Tensor],
    on_grad: &(dyn Fn(usize, Tensor) + Sync),
    body: impl FnOnce() -> R,
) -> Result<R, TchError> {
    let ctx = Context {
        on_grad,
        panic: Mutex::new(None),
    };
    // SAFETY: `call` has the signature the C++ side calls; `ctx` outlives
    // `target`, which is declared after it and so dropped (disarmed) first.
    let raw = unsafe { gradscope_target_new(call, &ctx as *const Context as *mut c_void) };
    if raw.is_null() {
        return Err(TchError::Torch("gradient hooks: out of memory".into()));
    }
    let target = Target(raw);
    let mut registered = Vec::with_capacity(tensors.len());
    for (i, t) in tensors.iter().enumerate() {
        let mut handle: c_uint = 0;
        let mut err = [0 as c_char; 512];
        // SAFETY: `t` is a live tensor and `target` a live target.
        let rc = unsafe {
            gradscope_register_grad_hook(
                t.as_ptr(),
                target.0,
                i,
                &mut handle,
                err.as_mut_ptr(),
                err.len(),
            )
        };
        if rc != 0 {
            remove(&registered);
            return Err(TchError::Torch(message(&err)));
        }
        registered.push((t, handle));
    }
    let out = body();
    remove(&registered);
    drop(target);
    if let Some(panic) = ctx.panic.lock().unwrap_or_else(|e| e.into_inner()).take() {
        std::panic::resume_unwind(panic);
    }
    Ok(out)
}

/// Removes the hooks, as far as libtorch can: one it cannot remove (the
/// tensor got a new `grad_fn` from an in-place op) stays on the old graph,
/// where the disarmed target makes it call nothing.
fn remove(registered: &[(&Tensor, c_uint)]) {
    for (t, handle) in registered {
        let mut err = [0 as c_char; 512];
        // SAFETY: `t` is live and `handle` is the one its registration
        // returned.
        unsafe { gradscope_remove_hook(t.as_ptr(), *handle, err.as_mut_ptr(), err.len()) };
    }
}

fn message(err: &[c_char]) -> String {
    // SAFETY: the C++ side writes a NUL-terminated string into `err` (and
    // it starts zeroed).
    unsafe { CStr::from_ptr(err.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// The hook sees the gradient at the tensor itself, summed over its
    /// uses: y = x·w, used twice (z = y² + 3y), so dz/dy = 2y + 3.
    #[test]
    fn hook_sees_the_accumulated_gradient() {
        let x = Tensor::from_slice(&[1.0f32, -2.0, 0.5]);
        let w = Tensor::from_slice(&[2.0f32]).set_requires_grad(true);
        let y = &x * &w;
        let z = (&y * &y + &y * 3.0).sum(Kind::Float);
        let seen = Mutex::new(Vec::new());
        let on_grad = |i: usize, g: Tensor| {
            seen.lock()
                .unwrap()
                .push((i, Vec::<f32>::try_from(g).unwrap()))
        };
        let grads = with_grad_hooks(std::slice::from_ref(&y), &on_grad, || {
            Tensor::run_backward(&[&z], &[&w], false, false)
        })
        .unwrap();
        let seen = seen.into_inner().unwrap();
        assert_eq!(seen, vec![(0, vec![7.0, -5.0, 5.0])]);
        // dz/dw = Σ x·(2y + 3) = 7 + 10 + 2.5
        assert_eq!(grads[0].double_value(&[0]), 19.5);
    }

    /// Removed hooks stay silent: a second backward pass through a graph
    /// kept for it does not call the closure again.
    #[test]
    fn hooks_are_gone_after_the_scope() {
        let w = Tensor::ones([2], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let y = &w * 2.0;
        let z = y.sum(Kind::Float);
        let calls = Mutex::new(0);
        let on_grad = |_: usize, _: Tensor| *calls.lock().unwrap() += 1;
        with_grad_hooks(std::slice::from_ref(&y), &on_grad, || {
            Tensor::run_backward(&[&z], &[&w], true, false)
        })
        .unwrap();
        Tensor::run_backward(&[&z], &[&w], false, false);
        assert_eq!(*calls.lock().unwrap(), 1);
    }

    /// A hook libtorch cannot remove (an in-place op in the body gave the
    /// tensor a new `grad_fn`, and the old graph is kept) stays disarmed:
    /// a later backward pass through the old graph does not call the
    /// closure, whose context is gone (this was a use after free).
    #[test]
    fn a_hook_that_cannot_be_removed_calls_nothing_afterwards() {
        let w = Tensor::ones([2], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let y = &w * 2.0;
        let z = y.sum(Kind::Float);
        let calls = Mutex::new(0);
        let on_grad = |_: usize, _: Tensor| *calls.lock().unwrap() += 1;
        with_grad_hooks(std::slice::from_ref(&y), &on_grad, || {
            let mut again = y.shallow_clone();
            let _ = again.g_add_scalar_(1.0);
            // The hook lives on in the old graph.
            Tensor::run_backward(&[&z], &[&w], true, false);
        })
        .unwrap();
        assert_eq!(*calls.lock().unwrap(), 1);
        Tensor::run_backward(&[&z], &[&w], false, false);
        assert_eq!(*calls.lock().unwrap(), 1, "called after the scope");
    }

    /// A tensor outside autograd gets libtorch's error, not a crash.
    #[test]
    fn a_tensor_without_grad_is_an_error() {
        let t = Tensor::ones([2], (Kind::Float, Device::Cpu));
        let err = with_grad_hooks(std::slice::from_ref(&t), &|_, _| {}, || ()).unwrap_err();
        assert!(
            err.to_string()
                .contains("cannot register a hook on a variable that doesn't require gradient"),
            "{err}"
        );
        // One line: the message, not libtorch's C++ stack trace.
        assert!(!err.to_string().contains('\n'), "{err}");
    }

    /// A panic in the closure reaches the caller (after the hooks are
    /// removed), instead of unwinding through libtorch.
    #[test]
    fn a_panic_in_the_hook_reaches_the_caller() {
        let w = Tensor::ones([2], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let y = &w * 2.0;
        let z = y.sum(Kind::Float);
        let panicked = std::panic::catch_unwind(AssertUnwindSafe(|| {
            with_grad_hooks(
                std::slice::from_ref(&y),
                &|_, _| panic!("from the hook"),
                || Tensor::run_backward(&[&z], &[&w], false, false),
            )
        }));
        let payload = panicked.unwrap_err();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"from the hook"));
    }
}
