//! gradscope-kernels: every hand-written fast path of gradscope, in one
//! place, each beside the portable code that every other machine runs.
//!
//! Two callers, one small API:
//! - the probe reads each probed tensor once for all its statistics
//!   ([`read::read`], [`read::grad_sums`]);
//! - the probe's forward reading q, each unit's variance across the batch
//!   averaged over units, in one read of each output ([`spread`]);
//! - the training loop's optimizer steps each parameter in one pass
//!   ([`sgd::step`], with [`sgd::norms`] for a resumed run's first norms).
//!
//! Both split their work over [`threads::on_threads`], which runs on
//! libtorch's own OpenMP team where it can ([`team`]).
//!
//! Layout, by what a machine needs:
//! - [`x86_64`] holds the AVX2 (and FMA) code, compiled only on x86-64
//!   and taken only where the CPU has those instructions;
//! - [`portable`] holds the same sums in plain Rust (which the compiler
//!   vectorizes for whatever target it builds), used everywhere else, and
//!   inlined into the AVX2 functions on x86-64 so that both are one code;
//! - [`team`] looks up libgomp only on Linux with glibc.
//!
//! One switch, [`KERNELS_VAR`]`=portable`, forces the portable code of every
//! fast path in a process: the fused step then leaves the step to
//! libtorch's ops, the reads skip AVX2, and the threads are the crate's
//! own. `make test` runs the probe, train and CLI tests a second time
//! under it, so that what an aarch64 laptop runs is tested on x86 too.
//! Removing this crate's fast paths is removing [`x86_64`] and [`team`].

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod portable;
pub mod read;
pub mod sgd;
pub mod spread;
pub mod team;
pub mod threads;
#[cfg(all(target_arch = "x86_64", feature = "x86"))]
pub mod x86_64;

pub use read::{grad_sums, is_dense, needs_exact, read, readable, Flat, GradSums, ResponseSums};
pub use spread::batch_variance_mean;
pub use threads::{on_threads, thread_count};

/// The environment variable that picks the kernels: `portable` runs the
/// portable code of every fast path (no AVX2 reads, no fused SGD step, the
/// crate's own threads instead of libtorch's OpenMP team). Anything else,
/// or unset: the fastest the CPU has.
pub const KERNELS_VAR: &str = "GRADSCOPE_KERNELS";

/// Whether [`KERNELS_VAR`] asks for the portable kernels (read once per
/// process).
pub fn portable() -> bool {
    static PORTABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PORTABLE.get_or_init(|| {
        std::env::var(KERNELS_VAR).is_ok_and(|v| v.trim().eq_ignore_ascii_case("portable"))
    })
}

/// Whether this process may take the AVX2 code: an x86-64 CPU with AVX2,
/// and not [`portable`].
#[inline]
pub fn avx2() -> bool {
    #[cfg(all(target_arch = "x86_64", feature = "x86"))]
    {
        !portable() && std::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(all(target_arch = "x86_64", feature = "x86")))]
    {
        false
    }
}
