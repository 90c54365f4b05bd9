// gradscope-probe's one piece of C++: a gradient hook on a tensor, which
// tch (0.24) does not expose. libtorch calls the hook with dL/dh as its
// autograd engine produces it, so the probe reads each dL/dh once, while
// it is fresh, and never keeps it: keeping every dL/dh until the backward
// pass ends (as `autograd.grad(loss, outputs)` does) made each later
// gradient land in fresh memory and slowed a CNN's backward pass (issue
// 14). See `hook.rs` for the Rust side and the safety contract.
#include <ATen/core/Tensor.h>

#include <cstddef>
#include <cstring>
#include <exception>

extern "C" {

// Called with a new `at::Tensor*` (a reference to the gradient) that the
// callee owns, or with nullptr for an undefined gradient. Must not throw.
typedef void (*gradscope_grad_fn)(void *ctx, size_t point, at::Tensor *grad);

}  // extern "C"

static void copy_message(const char *what, char *err, size_t err_len) {
  if (err_len == 0) return;
  std::strncpy(err, what, err_len - 1);
  err[err_len - 1] = '\0';
}

// Runs `body`: 0, or 1 and the exception's message in `err` (libtorch's
// without its C++ stack trace). No exception crosses into Rust.
template <class Body>
static int guarded(Body body, char *err, size_t err_len) {
  try {
    body();
    return 0;
  } catch (const c10::Error &e) {
    copy_message(e.what_without_backtrace(), err, err_len);
  } catch (const std::exception &e) {
    copy_message(e.what(), err, err_len);
  }
  return 1;
}

extern "C" {

// Registers `fn(ctx, point, grad)` as a gradient hook of `t`. Returns 0 and
// the hook's handle, or 1 and libtorch's message (a tensor that does not
// require grad, for one).
int gradscope_register_grad_hook(const at::Tensor *t, gradscope_grad_fn fn, void *ctx,
                                 size_t point, unsigned *handle, char *err,
                                 size_t err_len) {
  return guarded(
      [&] {
        *handle = t->register_hook([fn, ctx, point](const at::Tensor &grad) {
          fn(ctx, point, grad.defined() ? new at::Tensor(grad) : nullptr);
        });
      },
      err, err_len);
}

// Removes a hook `gradscope_register_grad_hook` registered. Returns 0, or 1
// and libtorch's message.
int gradscope_remove_hook(const at::Tensor *t, unsigned handle, char *err, size_t err_len) {
  return guarded([&] { t->remove_hook(handle); }, err, err_len);
}

}  // extern "C"
