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
//! Safety contract, kept by [`with_grad_hooks`]'s scope: a hook holds a raw
//! pointer to its closure, so every hook is removed before the closure can
//! go away, and a panic in the closure is caught before it could unwind
//! into libtorch's C++ and is resumed after the body.

use std::any::Any;
use std::ffi::{c_char, c_int, c_uint, c_void, CStr};
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use tch::{TchError, Tensor};
use torch_sys::C_tensor;

type GradFn = unsafe extern "C" fn(ctx: *mut c_void, point: usize, grad: *mut C_tensor);

extern "C" {
    fn gradscope_register_grad_hook(
        t: *const C_tensor,
        f: GradFn,
        ctx: *mut c_void,
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

/// What the C++ side holds a pointer to while the hooks are registered.
struct Context<'a> {
    on_grad: &'a (dyn Fn(usize, Tensor) + Sync),
    /// The first panic of `on_grad`, resumed once the hooks are gone.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

/// Called by libtorch (on CPU, on the thread that runs the backward pass;
/// on CUDA, on the device's autograd thread).
unsafe extern "C" fn call(ctx: *mut c_void, point: usize, grad: *mut C_tensor) {
    // SAFETY: `ctx` is the `Context` that `with_grad_hooks` keeps alive
    // until it has removed this hook.
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

/// Runs `body` with `on_grad(i, gradient)` hooked to each of `tensors`:
/// a backward pass inside `body` that produces the gradient at `tensors[i]`
/// calls it once with that gradient, accumulated over every use of the
/// tensor, before it flows on. Every hook is removed before this returns.
/// Errors: a tensor that does not require grad (libtorch's message).
pub fn with_grad_hooks<R>(
    tensors: &[Tensor],
    on_grad: &(dyn Fn(usize, Tensor) + Sync),
    body: impl FnOnce() -> R,
) -> Result<R, TchError> {
    let ctx = Context {
        on_grad,
        panic: Mutex::new(None),
    };
    let mut hooks = Hooks {
        registered: Vec::with_capacity(tensors.len()),
    };
    for (i, t) in tensors.iter().enumerate() {
        let mut handle: c_uint = 0;
        let mut err = [0 as c_char; 512];
        // SAFETY: `t` is a live tensor; `ctx` outlives the hook (`hooks`
        // removes it on every way out of this function, before `ctx` is
        // dropped: locals drop in reverse order).
        let rc = unsafe {
            gradscope_register_grad_hook(
                t.as_ptr(),
                call,
                &ctx as *const Context as *mut c_void,
                i,
                &mut handle,
                err.as_mut_ptr(),
                err.len(),
            )
        };
        if rc != 0 {
            return Err(TchError::Torch(message(&err)));
        }
        hooks.registered.push((t, handle));
    }
    let out = body();
    hooks.remove_all()?;
    if let Some(panic) = ctx.panic.lock().unwrap_or_else(|e| e.into_inner()).take() {
        std::panic::resume_unwind(panic);
    }
    Ok(out)
}

/// The hooks registered so far; removed when dropped (a panic in `body`).
struct Hooks<'t> {
    registered: Vec<(&'t Tensor, c_uint)>,
}

impl Hooks<'_> {
    fn remove_all(&mut self) -> Result<(), TchError> {
        let mut first_error = None;
        for (t, handle) in self.registered.drain(..) {
            let mut err = [0 as c_char; 512];
            // SAFETY: `t` is live and `handle` is the one its registration
            // returned.
            let rc =
                unsafe { gradscope_remove_hook(t.as_ptr(), handle, err.as_mut_ptr(), err.len()) };
            if rc != 0 && first_error.is_none() {
                first_error = Some(TchError::Torch(message(&err)));
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for Hooks<'_> {
    fn drop(&mut self) {
        let _ = self.remove_all();
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
