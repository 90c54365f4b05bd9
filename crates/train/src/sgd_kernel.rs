//! The optimizer step as one pass over each parameter, on the CPU.
//!
//! [`crate::sgd::Sgd`] written as libtorch ops goes over a parameter's
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
//! The same pass sums the squares of the updated weights in float64, so a
//! probe step that follows knows every ‖W‖ without reading W again (the
//! weights are as large as their gradients on the MLPs).
//!
//! Only where libtorch's own CPU kernels use fused multiply-adds: x86-64
//! with AVX2 and FMA, libtorch's AVX2 kernels. Elsewhere (another CPU,
//! `ATEN_CPU_CAPABILITY=default`, CUDA) the step stays libtorch's ops.

use std::ops::Range;

use tch::{Device, Kind, Tensor};

/// The step's scalars, in float32 as libtorch's kernels take them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scalars {
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
pub(crate) enum Buffer {
    /// No momentum: the step is `d`.
    None,
    /// The first step: the buffer (uninitialized) is set to `d`.
    First,
    /// Later steps: `b = m · b + d`.
    Later,
}

/// One parameter's step: raw views of three tensors of one layout.
pub(crate) struct Slot {
    p: *mut f32,
    g: *const f32,
    /// Null for [`Buffer::None`].
    b: *mut f32,
    len: usize,
    buffer: Buffer,
}

// SAFETY: the threads of one step write disjoint ranges of each slot's `p`
// and `b` (see `step`), and read `g`, which nothing writes during it.
unsafe impl Sync for Slot {}

impl Slot {
    /// The step of `p` by `g` (and its buffer `b`, which there is unless
    /// `buffer` is [`Buffer::None`]), if all are float32 tensors in host
    /// memory, contiguous and of one shape; `None` otherwise (the caller
    /// uses libtorch's ops).
    pub fn new(p: &Tensor, g: &Tensor, b: Option<&Tensor>, buffer: Buffer) -> Option<Slot> {
        let fits = |t: &Tensor| {
            t.device() == Device::Cpu
                && t.kind() == Kind::Float
                && t.is_contiguous()
                && t.size() == p.size()
        };
        if !fits(p)
            || !fits(g)
            || b.is_some_and(|b| !fits(b))
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

/// Whether this process can take the fused step: the CPU has AVX2 and FMA
/// and libtorch has not been told to use its unvectorized kernels.
pub(crate) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let scalar_kernels =
            std::env::var("ATEN_CPU_CAPABILITY").is_ok_and(|c| c.eq_ignore_ascii_case("default"));
        !scalar_kernels && is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Steps every slot and returns Σp² (float64) of each, after the step.
/// The elements of all slots are split evenly over libtorch's threads.
///
/// # Safety
/// [`available`] must be true, and the tensors behind the slots must stay
/// alive and untouched by anything else until this returns.
pub(crate) unsafe fn step(slots: &[Slot], s: Scalars) -> Vec<f64> {
    let total: usize = slots.iter().map(|s| s.len).sum();
    let parts = gradscope_probe::onepass::thread_count(total);
    let starts: Vec<usize> = slots
        .iter()
        .scan(0, |at, s| {
            let start = *at;
            *at += s.len;
            Some(start)
        })
        .collect();
    let sums = gradscope_probe::onepass::on_threads(parts, |part| {
        let range = total * part / parts..total * (part + 1) / parts;
        let mut sums = Vec::new();
        for (i, (slot, &start)) in slots.iter().zip(&starts).enumerate() {
            let own = range.start.max(start)..range.end.min(start + slot.len);
            if own.is_empty() {
                continue;
            }
            let local = own.start - start..own.end - start;
            // SAFETY: `available` (the caller's promise), and `local` is
            // within the slot and no other part's.
            sums.push((i, unsafe { step_range(slot, local, s) }));
        }
        sums
    });
    // Each slot's partial sums added in part order: the same sum for the
    // same thread count.
    let mut out = vec![0.0; slots.len()];
    for (i, sum) in sums.into_iter().flatten() {
        out[i] += sum;
    }
    out
}

/// The step of `range` of one slot; returns Σp² of it after the step.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn step_range(slot: &Slot, range: Range<usize>, s: Scalars) -> f64 {
    let n = range.len();
    // SAFETY: the slot's tensors hold `len` floats each; `range` is within
    // them and no other thread's.
    let (p, g) = unsafe {
        (
            std::slice::from_raw_parts_mut(slot.p.add(range.start), n),
            std::slice::from_raw_parts(slot.g.add(range.start), n),
        )
    };
    let b: &mut [f32] = if slot.b.is_null() {
        &mut []
    } else {
        // SAFETY: as above.
        unsafe { std::slice::from_raw_parts_mut(slot.b.add(range.start), n) }
    };
    // One body per case, so that the compiler vectorizes each without a
    // branch per element.
    match (s.decays, slot.buffer) {
        (false, Buffer::None) => body::<false, 0>(p, g, b, s),
        (false, Buffer::First) => body::<false, 1>(p, g, b, s),
        (false, Buffer::Later) => body::<false, 2>(p, g, b, s),
        (true, Buffer::None) => body::<true, 0>(p, g, b, s),
        (true, Buffer::First) => body::<true, 1>(p, g, b, s),
        (true, Buffer::Later) => body::<true, 2>(p, g, b, s),
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn step_range(_: &Slot, _: Range<usize>, _: Scalars) -> f64 {
    unreachable!("the fused step is only taken where `available` says so")
}

/// Float64 lanes of Σp²: eight independent sums, so that the additions
/// need not wait on each other (and vectorize) while each lane keeps a
/// fixed order.
const LANES: usize = 8;

/// The step of one element (see the module's overview); `BUF` is 0 (no
/// momentum), 1 (first step) or 2 (later steps).
#[inline(always)]
fn element<const DECAY: bool, const BUF: u8>(p: &mut f32, g: f32, b: &mut f32, s: Scalars) -> f32 {
    let d = if DECAY { p.mul_add(s.decay, g) } else { g };
    let d = match BUF {
        0 => d,
        1 => {
            *b = d;
            d
        }
        _ => {
            *b = *b * s.momentum + d;
            *b
        }
    };
    *p = d.mul_add(s.step, *p);
    *p
}

#[inline(always)]
fn body<const DECAY: bool, const BUF: u8>(
    p: &mut [f32],
    g: &[f32],
    b: &mut [f32],
    s: Scalars,
) -> f64 {
    let mut lanes = [0.0f64; LANES];
    let mut spare = [0.0f32; LANES];
    let whole = p.len() / LANES * LANES;
    let (p_body, p_tail) = p.split_at_mut(whole);
    let (g_body, g_tail) = g.split_at(whole);
    let (b_body, b_tail) = if BUF == 0 {
        (&mut [][..], &mut [][..])
    } else {
        b.split_at_mut(whole)
    };
    for (k, (pc, gc)) in p_body
        .chunks_exact_mut(LANES)
        .zip(g_body.chunks_exact(LANES))
        .enumerate()
    {
        let bc: &mut [f32] = if BUF == 0 {
            &mut spare
        } else {
            &mut b_body[k * LANES..(k + 1) * LANES]
        };
        for j in 0..LANES {
            let w = f64::from(element::<DECAY, BUF>(&mut pc[j], gc[j], &mut bc[j], s));
            lanes[j] += w * w;
        }
    }
    let mut sum: f64 = lanes.iter().sum();
    for (j, (pv, &gv)) in p_tail.iter_mut().zip(g_tail).enumerate() {
        let bv = if BUF == 0 {
            &mut spare[0]
        } else {
            &mut b_tail[j]
        };
        let w = f64::from(element::<DECAY, BUF>(pv, gv, bv, s));
        sum += w * w;
    }
    sum
}
