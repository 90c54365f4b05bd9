//! glibc's allocator settings for a training process.
//!
//! libtorch allocates every activation and gradient with `malloc`. glibc
//! serves a block above its mmap threshold (dynamic: it starts at 128 KiB
//! and follows the largest block freed) with a fresh `mmap`, and gives the
//! pages back on `free`; it also trims the heap's free top. Either way a
//! block of a few megabytes allocated and freed every step comes back as
//! fresh pages, which the kernel faults in and zeroes on first touch. A
//! probe step keeps every dL/dh alive until its backward pass ends, so it
//! needs more such pages than a plain step: in `make bench` a CNN-20 probe
//! step's backward pass took 30 ms longer than a plain one (as long as the
//! probe's whole reading of its tensors), and with these settings it takes
//! no longer.
//!
//! The settings keep freed blocks of up to 32 MiB (glibc's most) in the
//! heap for reuse, and keep up to 256 MiB of free heap top (more is given
//! back). With 2 GiB kept, CNN-56's peak RSS in `make bench` was about
//! 50 MB higher, with no faster steps. `make bench` gives the PyTorch side the same settings
//! through glibc's `MALLOC_*_` variables, so that the comparison is fair.
//! A user who sets those variables keeps their own values.

/// glibc's mmap threshold, at its maximum on 64-bit (`HEAP_MAX_SIZE / 2`).
pub const MMAP_THRESHOLD: i32 = 32 << 20;
/// Free heap top kept before glibc trims it.
pub const TRIM_THRESHOLD: i32 = 256 << 20;

/// The variables glibc reads for the same two settings, as the bench gives
/// them to the PyTorch side.
pub fn env_vars() -> [(&'static str, String); 2] {
    [
        ("MALLOC_MMAP_THRESHOLD_", MMAP_THRESHOLD.to_string()),
        ("MALLOC_TRIM_THRESHOLD_", TRIM_THRESHOLD.to_string()),
    ]
}

/// Whether the user set either variable (glibc has then applied theirs,
/// and they are left alone, here and on the bench's PyTorch side).
pub fn user_set() -> bool {
    env_vars()
        .iter()
        .any(|(name, _)| std::env::var_os(name).is_some())
}

/// Applies the settings to this process, unless [`user_set`].
pub fn keep_freed_memory() {
    if user_set() {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // From glibc's <malloc.h>.
        const M_TRIM_THRESHOLD: i32 = -1;
        const M_MMAP_THRESHOLD: i32 = -3;
        extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        // SAFETY: mallopt only changes the allocator's thresholds; it is
        // called before any other thread of this process exists. A value
        // glibc refuses leaves its default (mallopt returns 0).
        unsafe {
            mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        }
    }
}
