// gradscope-probe's one piece of C++: gradient hooks on tensors, which tch
// (0.24) does not expose. libtorch calls a hook with dL/dh as its autograd
// engine produces it, so the probe reads each dL/dh once, while it is
// fresh, and never keeps it: keeping every dL/dh until the backward pass
// ends (as `autograd.grad(loss, outputs)` does) made each later gradient
// land in fresh memory and slowed a CNN's backward pass (issue 14). See
// `hook.rs` for the Rust side.
//
// Safety: every hook of one `with_grad_hooks` shares one `Target`, owned
// jointly by the hooks' closures and the Rust side's handle. Rust disarms
// it before the callback's context goes away; disarming waits for a call
// in progress and cannot fail, so a hook that libtorch still holds (one
// `remove_hook` could not remove, or a graph kept alive) calls nothing.
#include <ATen/core/Tensor.h>

#include <cstddef>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>

extern "C" {

// Called with a new `at::Tensor*` (a reference to the gradient) that the
// callee owns, or with nullptr for an undefined gradient. Must not throw.
typedef void (*gradscope_grad_fn)(void *ctx, size_t point, at::Tensor *grad);

}  // extern "C"

namespace {

struct Target {
  std::mutex lock;
  gradscope_grad_fn fn;  // nullptr once disarmed
  void *ctx;
};

void copy_message(const char *what, char *err, size_t err_len) {
  if (err_len == 0) return;
  std::strncpy(err, what, err_len - 1);
  err[err_len - 1] = '\0';
}

// Runs `body`: 0, or 1 and the exception's message in `err` (libtorch's
// without its C++ stack trace). No exception crosses into Rust.
template <class Body>
int guarded(Body body, char *err, size_t err_len) {
  try {
    body();
    return 0;
  } catch (const c10::Error &e) {
    copy_message(e.what_without_backtrace(), err, err_len);
  } catch (const std::exception &e) {
    copy_message(e.what(), err, err_len);
  } catch (...) {
    copy_message("unknown C++ exception", err, err_len);
  }
  return 1;
}

}  // namespace

extern "C" {

// A target for `fn(ctx, ...)`, armed; null if out of memory. The caller
// owns the handle: `gradscope_target_disarm`, then `gradscope_target_free`.
void *gradscope_target_new(gradscope_grad_fn fn, void *ctx) {
  try {
    auto *t = new std::shared_ptr<Target>(std::make_shared<Target>());
    (*t)->fn = fn;
    (*t)->ctx = ctx;
    return t;
  } catch (...) {
    return nullptr;
  }
}

// After this returns, no hook of `target` calls its function again, and
// none is calling it.
void gradscope_target_disarm(void *target) {
  auto &t = *static_cast<std::shared_ptr<Target> *>(target);
  std::lock_guard<std::mutex> guard(t->lock);
  t->fn = nullptr;
  t->ctx = nullptr;
}

void gradscope_target_free(void *target) {
  delete static_cast<std::shared_ptr<Target> *>(target);
}

// Registers a gradient hook of `t` that calls the target with `point`.
// Returns 0 and the hook's handle, or 1 and libtorch's message (a tensor
// that does not require grad, for one).
int gradscope_register_grad_hook(const at::Tensor *t, void *target, size_t point,
                                 unsigned *handle, char *err, size_t err_len) {
  std::shared_ptr<Target> shared = *static_cast<std::shared_ptr<Target> *>(target);
  return guarded(
      [&] {
        *handle = t->register_hook([shared, point](const at::Tensor &grad) {
          std::lock_guard<std::mutex> guard(shared->lock);
          if (shared->fn != nullptr) {
            shared->fn(shared->ctx, point, grad.defined() ? new at::Tensor(grad) : nullptr);
          }
        });
      },
      err, err_len);
}

// Removes a hook `gradscope_register_grad_hook` registered. Returns 0, or 1
// and libtorch's message (the hook may then stay, disarmed).
int gradscope_remove_hook(const at::Tensor *t, unsigned handle, char *err, size_t err_len) {
  return guarded([&] { t->remove_hook(handle); }, err, err_len);
}

}  // extern "C"
