//! The optimizer step as one pass over each parameter, on the CPU.
//!
//! The training crate's SGD written as libtorch ops goes over a parameter's
//! memory four times a step (the weight decay's `addcmul` into a new
//! tensor, the momentum buffer's `mul_` and `add_`, the update's
//! `addcmul_`), with one dispatch per op per parameter: in `make bench`
//! that was 0.89 ms of an MLP-plain step of 5.1 ms. Here each element goes
//! through the same float32 operations, with the same roundings, in one
//! pass:
//!
//! ```text
//! d = fma(p, wd, g)            addcmul with value 1: one fused multiply-add
//! b = round(round(m · b) + d)  mul_ then add_: two roundings
//! p = fma(b, −lr, p)           addcmul_
//! ```
//!
//! That libtorch's kernels round so was measured, not assumed: on 10⁶
//! random elements and on lengths that leave a scalar tail, 0 elements
//! differed from these, and the unfused forms differed in up to 10%. The
//! test `fused_step_matches_libtorch_ops_bit_for_bit` holds it.
//!
//! Each block of [`BLOCK`] updated weights is then summed in float64
//! (squares) while it is still in cache, so a probe step that follows
//! knows every ‖W‖ without reading W again from memory (the weights are as
//! large as their gradients on the MLPs). The sum has one order whatever
//! the threads: each parameter in blocks, each block in eight lanes
//! ([`sum_squares`]), the blocks added in order. So a run resumed from a
//! checkpoint, whose first norms come from [`norms`] (the same function,
//! without a step), writes the numbers of a run that was never stopped.
//!
//! On a probe step each block's gradient is read back too, while it is in
//! cache ([`crate::read::grad_sums`]), for the probe's ‖∇W‖
//! and zero fraction: the probe then reads no weight gradient from memory.
//!
//! Only where libtorch's own CPU kernels use fused multiply-adds: x86-64
//! with AVX2 and FMA. libtorch 2.11 ran its AVX2 kernels on the AVX-512
//! machine this was measured on; the bit-for-bit test holds the claim
//! wherever it runs. Elsewhere (another CPU, `ATEN_CPU_CAPABILITY=default`,
//! CUDA) the step stays libtorch's ops.

use std::ops::Range;

use crate::read::GradSums;
use tch::{Device, Kind, Tensor};

/// The step's scalars, in float32 as libtorch's kernels take them.
#[derive(Debug, Clone, Copy)]
pub struct Scalars {
    /// Whether there is weight decay at all (libtorch's path tests the
    /// float64 value, which may round to a float32 0).
    pub decays: bool,
    pub decay: f32,
    pub momentum: f32,
    /// −lr.
    pub step: f32,
}

/// How a parameter's momentum buffer is updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Buffer {
    /// No momentum: the step is `d`.
    None,
    /// The first step: the buffer (uninitialized) is set to `d`.
    First,
    /// Later steps: `b = m · b + d`.
    Later,
}

/// One parameter's step: raw views of three tensors of one layout.
pub struct Slot {
    pub(crate) p: *mut f32,
    pub(crate) g: *const f32,
    /// Null for [`Buffer::None`].
    pub(crate) b: *mut f32,
    pub(crate) len: usize,
    // Read only by the x86-64 step; elsewhere no slot is ever stepped.
    #[cfg_attr(not(all(target_arch = "x86_64", feature = "x86")), allow(dead_code))]
    pub(crate) buffer: Buffer,
}

// SAFETY: the threads of one step write disjoint ranges of each slot's `p`
// and `b` (see `step`), and read `g`, which nothing writes during it.
unsafe impl Sync for Slot {}

impl Slot {
    /// The step of `p` by `g` (and its buffer `b`, which there is unless
    /// `buffer` is [`Buffer::None`]), if all are float32 tensors in host
    /// memory of one shape and one dense layout (contiguous, or a conv
    /// weight's channels-last); `None` otherwise (the caller uses
    /// libtorch's ops).
    pub fn new(p: &Tensor, g: &Tensor, b: Option<&Tensor>, buffer: Buffer) -> Option<Slot> {
        if !fits(p)
            || !same_layout(p, g)
            || b.is_some_and(|b| !same_layout(p, b))
            || b.is_some() == (buffer == Buffer::None)
        {
            return None;
        }
        Some(Slot {
            p: p.data_ptr() as *mut f32,
            g: g.data_ptr() as *const f32,
            b: b.map_or(std::ptr::null_mut(), |b| b.data_ptr() as *mut f32),
            len: p.numel(),
            buffer,
        })
    }
}

/// Whether `p` can be stepped in place by the fused step: float32 in host
/// memory, its elements dense in some order of the dims.
pub fn fits(p: &Tensor) -> bool {
    p.device() == Device::Cpu
        && p.kind() == Kind::Float
        && crate::read::is_dense(&p.size(), &p.stride())
}

/// Whether `t` can go with `p` in one pass over memory: the same shape and
/// strides (so that the i-th float of each is the same element), on the
/// same terms as [`fits`].
pub fn same_layout(p: &Tensor, t: &Tensor) -> bool {
    fits(t) && t.size() == p.size() && t.stride() == p.stride()
}

/// True when no two of `slots`' memories overlap (every `p`, `g` and `b`
/// apart from all the others). libtorch's ops refuse to write a tensor
/// that overlaps its input; the fused step, which writes through raw
/// pointers, leaves such a step to them.
pub fn disjoint(slots: &[Slot]) -> bool {
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for s in slots {
        for ptr in [s.p as usize, s.g as usize, s.b as usize] {
            if ptr != 0 {
                spans.push((ptr, ptr + s.len * std::mem::size_of::<f32>()));
            }
        }
    }
    spans.sort_unstable();
    spans.windows(2).all(|w| w[0].1 <= w[1].0)
}

/// Whether this process can take the fused step: the CPU has AVX2 and FMA
/// and libtorch has not been told to use its unvectorized kernels, nor
/// gradscope its portable ones (`GRADSCOPE_KERNELS=portable`).
pub fn available() -> bool {
    if crate::portable() {
        return false;
    }
    #[cfg(all(target_arch = "x86_64", feature = "x86"))]
    {
        let scalar_kernels =
            std::env::var("ATEN_CPU_CAPABILITY").is_ok_and(|c| c.eq_ignore_ascii_case("default"));
        !scalar_kernels && is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }
    #[cfg(not(all(target_arch = "x86_64", feature = "x86")))]
    {
        false
    }
}

/// Elements per block of the norm's sum (and the smallest share of a
/// thread): see the module's overview.
pub const BLOCK: usize = 1 << 14;

/// Every slot's blocks, in slot order: `(slot, range within it)`.
fn blocks(lens: &[usize]) -> Vec<(usize, Range<usize>)> {
    lens.iter()
        .enumerate()
        .flat_map(|(i, &len)| {
            (0..len.div_ceil(BLOCK)).map(move |k| (i, k * BLOCK..((k + 1) * BLOCK).min(len)))
        })
        .collect()
}

/// Runs `work` on every block of slots of `lens` elements, the blocks split
/// in runs over libtorch's threads, and adds each slot's block results in
/// block order.
fn per_block(lens: &[usize], work: impl Fn(usize, Range<usize>) -> Sums + Sync) -> Vec<Sums> {
    let blocks = blocks(lens);
    let total: usize = lens.iter().sum();
    let parts = crate::threads::thread_count(total).min(blocks.len().max(1));
    let sums = crate::threads::on_threads(parts, |part| {
        let run = blocks.len() * part / parts..blocks.len() * (part + 1) / parts;
        blocks[run]
            .iter()
            .map(|(i, range)| (*i, work(*i, range.clone())))
            .collect::<Vec<_>>()
    });
    let mut out = vec![Sums::default(); lens.len()];
    for (i, block) in sums.into_iter().flatten() {
        out[i].add(block);
    }
    out
}

/// What the step reads back of one slot (or one block of it).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sums {
    /// Σp² after the step.
    pub weights: f64,
    /// Σg² and the non-zero count of the gradient, where asked for.
    pub grads: GradSums,
}

impl Sums {
    fn add(&mut self, other: Sums) {
        self.weights += other.weights;
        self.grads.add(other.grads);
    }
}

/// Steps every slot and returns Σp² (float64) of each, after the step,
/// and, with `read_grads`, its gradient's sums (else zeros).
///
/// # Safety
/// [`available`] must be true, the slots [`disjoint`], and the tensors
/// behind them alive and untouched by anything else until this returns.
pub unsafe fn step(slots: &[Slot], s: Scalars, read_grads: bool) -> Vec<Sums> {
    let lens: Vec<usize> = slots.iter().map(|s| s.len).collect();
    #[cfg(all(target_arch = "x86_64", feature = "x86"))]
    {
        // SAFETY: `available` (the caller's promise); each block is within
        // its slot and in no other part, and the slots do not overlap.
        per_block(&lens, |i, range| unsafe {
            crate::x86_64::step_range(&slots[i], range, s, read_grads)
        })
    }
    #[cfg(not(all(target_arch = "x86_64", feature = "x86")))]
    {
        let _ = (lens, s, read_grads);
        unreachable!("the fused step is only taken where `available` says so")
    }
}

/// Σp² of each of `params` (each must [`fit`](fits)), summed as [`step`]
/// sums it after a step: the norms a probe step takes before this process
/// has stepped (its first step, or the first after a resume).
pub fn norms(params: &[&Tensor]) -> Vec<f64> {
    let views: Vec<&[f32]> = params
        .iter()
        .map(|p| {
            assert!(fits(p), "norms of dense float32 host tensors only");
            // SAFETY: a dense float32 tensor in host memory holds `numel`
            // floats from its data pointer; `params` keeps it alive, and
            // nothing writes it while this reads (between steps).
            unsafe { std::slice::from_raw_parts(p.data_ptr() as *const f32, p.numel()) }
        })
        .collect();
    let lens: Vec<usize> = views.iter().map(|v| v.len()).collect();
    per_block(&lens, |i, range| Sums {
        weights: sum_squares(&views[i][range]),
        grads: GradSums::default(),
    })
    .into_iter()
    .map(|s| s.weights)
    .collect()
}

/// Σx² in float64, in eight lanes: the one order of every norm here.
pub(crate) fn sum_squares(x: &[f32]) -> f64 {
    let mut lanes = [0.0f64; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for j in 0..LANES {
            let w = f64::from(c[j]);
            lanes[j] += w * w;
        }
    }
    let mut sum: f64 = lanes.iter().sum();
    for &v in tail {
        let w = f64::from(v);
        sum += w * w;
    }
    sum
}

/// Float64 lanes of Σx² ([`sum_squares`]): eight independent sums, so
/// that the additions need not wait on each other (and vectorize) while
/// each lane keeps a fixed order.
const LANES: usize = 8;
