//! The AVX2 (and FMA) code of the fast paths, compiled only on x86-64 and
//! called only where [`crate::avx2`] (or [`crate::sgd::available`]) found
//! the instructions at run time, as libtorch picks its own kernels.
//!
//! - The probe's reads: [`crate::portable`]'s bodies compiled with AVX2
//!   enabled (four float64 or eight float32 lanes per register, where the
//!   default x86-64 target has half that), and a response's sums written
//!   out with intrinsics where the compiler's own vectorization kept sums
//!   in memory.
//! - The fused SGD step, one pass per parameter ([`step_range`]).

use std::ops::Range;

use crate::portable::{
    flat_sums_body, grad_sums_blocks, prefetch, response_part_body, PER_LANE, PREFETCH_AHEAD,
    RESPONSE_LANES,
};
use crate::read::{Flat, GradSums, ResponseSums};
use crate::sgd::{Buffer, Scalars, Slot, Sums};

#[target_feature(enable = "avx2")]
pub(crate) unsafe fn grad_sums_avx2(x: &[f32]) -> GradSums {
    grad_sums_blocks(x)
}

#[target_feature(enable = "avx2")]
pub(crate) unsafe fn response_part_avx2(
    v: &[f32],
    unit: Option<(usize, usize)>,
    threads: usize,
    part: usize,
    flat: Flat,
    exact: bool,
) -> ResponseSums {
    response_part_body(v, unit, threads, part, flat, exact)
}

/// All ones in the lanes of `v` in the flat part (`v <= lo` or `v >= hi`),
/// zeros elsewhere: ordered comparisons, false for NaN, as
/// [`Flat::contains`].
#[target_feature(enable = "avx2")]
#[inline]
fn flat_mask(
    v: std::arch::x86_64::__m256,
    lo: std::arch::x86_64::__m256,
    hi: std::arch::x86_64::__m256,
) -> std::arch::x86_64::__m256 {
    use std::arch::x86_64::*;
    _mm256_or_ps(
        _mm256_cmp_ps::<_CMP_LE_OQ>(v, lo),
        _mm256_cmp_ps::<_CMP_GE_OQ>(v, hi),
    )
}

/// [`flat_sums_body`] in float32 with AVX2, written out: sixteen lanes of
/// each sum in six registers. Left to the compiler, the same loop kept
/// some sums in memory or shuffled values between lanes, and a response
/// took twice as long to read as a gradient of the same size. With
/// `TRACK`, ors each value's "outside the flat part" into `seen` (a
/// multiple of 16 columns), from the comparisons the count makes anyway.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn flat_sums_avx2<const TRACK: bool>(
    x: &[f32],
    shift: f32,
    flat: Flat,
    seen: &mut [u32],
) -> [f64; 3] {
    use std::arch::x86_64::*;
    // Two registers of eight: the lanes of `flat_sums_body`, so that each
    // lane takes PER_LANE values per flush in both.
    const STEP: usize = RESPONSE_LANES;
    const _: () = assert!(STEP == 16);
    let (shift_v, lo, hi, one) = (
        _mm256_set1_ps(shift),
        _mm256_set1_ps(flat.at_most),
        _mm256_set1_ps(flat.at_least),
        _mm256_set1_ps(1.0),
    );
    // Both halves of both registers of a sum, in float64.
    let widen = |a: __m256, b: __m256| {
        let a = _mm256_add_pd(
            _mm256_cvtps_pd(_mm256_castps256_ps128(a)),
            _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(a)),
        );
        let b = _mm256_add_pd(
            _mm256_cvtps_pd(_mm256_castps256_ps128(b)),
            _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(b)),
        );
        _mm256_add_pd(a, b)
    };
    let mut wide = [_mm256_setzero_pd(); 3];
    let ones = _mm256_set1_epi32(-1);
    // The column of the step's first value.
    let mut col = 0;
    let blocks = x.chunks_exact(STEP * PER_LANE);
    let rest = blocks.remainder();
    for block in blocks {
        let zero = _mm256_setzero_ps();
        let (mut s0, mut s1, mut q0, mut q1, mut f0, mut f1) = (zero, zero, zero, zero, zero, zero);
        for c in block.chunks_exact(STEP) {
            // The 16 floats are one cache line where the tensor is aligned.
            prefetch(c.as_ptr().wrapping_add(PREFETCH_AHEAD));
            // SAFETY: `c` holds 16 floats; unaligned loads of 8 each.
            let (a, b) = unsafe {
                (
                    _mm256_loadu_ps(c.as_ptr()),
                    _mm256_loadu_ps(c.as_ptr().add(8)),
                )
            };
            let (da, db) = (_mm256_sub_ps(a, shift_v), _mm256_sub_ps(b, shift_v));
            s0 = _mm256_add_ps(s0, da);
            s1 = _mm256_add_ps(s1, db);
            q0 = _mm256_add_ps(q0, _mm256_mul_ps(da, da));
            q1 = _mm256_add_ps(q1, _mm256_mul_ps(db, db));
            let (fa, fb) = (flat_mask(a, lo, hi), flat_mask(b, lo, hi));
            f0 = _mm256_add_ps(f0, _mm256_and_ps(fa, one));
            f1 = _mm256_add_ps(f1, _mm256_and_ps(fb, one));
            if TRACK {
                // SAFETY: `col + 16 <= seen.len()`, a multiple of 16.
                unsafe {
                    let at = seen.as_mut_ptr().add(col).cast::<__m256i>();
                    let live_a = _mm256_andnot_si256(_mm256_castps_si256(fa), ones);
                    let live_b = _mm256_andnot_si256(_mm256_castps_si256(fb), ones);
                    _mm256_storeu_si256(at, _mm256_or_si256(_mm256_loadu_si256(at), live_a));
                    let at = at.add(1);
                    _mm256_storeu_si256(at, _mm256_or_si256(_mm256_loadu_si256(at), live_b));
                }
                col += STEP;
                if col == seen.len() {
                    col = 0;
                }
            }
        }
        wide[0] = _mm256_add_pd(wide[0], widen(s0, s1));
        wide[1] = _mm256_add_pd(wide[1], widen(q0, q1));
        wide[2] = _mm256_add_pd(wide[2], widen(f0, f1));
    }
    let tail = flat_sums_body::<f32>(rest, shift, flat);
    if TRACK {
        for &v in rest {
            seen[col] |= u32::from(!flat.contains(v));
            col = (col + 1) % seen.len();
        }
    }
    let mut out = [0f64; 3];
    for (k, w) in wide.iter().enumerate() {
        let mut lanes = [0f64; 4];
        // SAFETY: four float64 into a four-element array.
        unsafe { _mm256_storeu_pd(lanes.as_mut_ptr(), *w) };
        out[k] = lanes.iter().sum::<f64>() + tail[k];
    }
    out
}

#[target_feature(enable = "avx2")]
pub(crate) unsafe fn flat_sums_exact_avx2(x: &[f32], shift: f64, flat: Flat) -> [f64; 3] {
    use std::arch::x86_64::*;
    const STEP: usize = RESPONSE_LANES;
    let (shift_v, lo, hi, one) = (
        _mm256_set1_pd(shift),
        _mm256_set1_ps(flat.at_most),
        _mm256_set1_ps(flat.at_least),
        _mm256_set1_ps(1.0),
    );
    let zero = _mm256_setzero_pd();
    // Four float64 registers of each sum: the 16 values of a step.
    let (mut s, mut q) = ([zero; 4], [zero; 4]);
    let mut counted = zero;
    let blocks = x.chunks_exact(STEP * PER_LANE);
    let rest = blocks.remainder();
    for block in blocks {
        // The flat count in float32 lanes, as `flat_sums_avx2` keeps it:
        // at most PER_LANE per lane before it is widened, so exact.
        let (mut f0, mut f1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        for c in block.chunks_exact(STEP) {
            prefetch(c.as_ptr().wrapping_add(PREFETCH_AHEAD));
            // SAFETY: `c` holds 16 floats; unaligned loads of 8 each.
            let (a, b) = unsafe {
                (
                    _mm256_loadu_ps(c.as_ptr()),
                    _mm256_loadu_ps(c.as_ptr().add(8)),
                )
            };
            let halves = [
                _mm256_castps256_ps128(a),
                _mm256_extractf128_ps::<1>(a),
                _mm256_castps256_ps128(b),
                _mm256_extractf128_ps::<1>(b),
            ];
            for k in 0..4 {
                // Exact: a float32 widened, less a float32 shift.
                let d = _mm256_sub_pd(_mm256_cvtps_pd(halves[k]), shift_v);
                s[k] = _mm256_add_pd(s[k], d);
                q[k] = _mm256_add_pd(q[k], _mm256_mul_pd(d, d));
            }
            let (fa, fb) = (flat_mask(a, lo, hi), flat_mask(b, lo, hi));
            f0 = _mm256_add_ps(f0, _mm256_and_ps(fa, one));
            f1 = _mm256_add_ps(f1, _mm256_and_ps(fb, one));
        }
        let f = _mm256_add_ps(f0, f1);
        counted = _mm256_add_pd(
            counted,
            _mm256_add_pd(
                _mm256_cvtps_pd(_mm256_castps256_ps128(f)),
                _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(f)),
            ),
        );
    }
    let total = |v: [__m256d; 4]| {
        let v = _mm256_add_pd(_mm256_add_pd(v[0], v[1]), _mm256_add_pd(v[2], v[3]));
        let mut lanes = [0f64; 4];
        // SAFETY: four float64 into a four-element array.
        unsafe { _mm256_storeu_pd(lanes.as_mut_ptr(), v) };
        lanes.iter().sum::<f64>()
    };
    let tail = flat_sums_body::<f64>(rest, shift, flat);
    [
        total(s) + tail[0],
        total(q) + tail[1],
        total([counted, zero, zero, zero]) + tail[2],
    ]
}

/// The step of `range` (one block) of one slot; returns Σp² of it after
/// the step, and the gradient's sums with `read_grads`, read back while
/// the block is in cache.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn step_range(
    slot: &Slot,
    range: Range<usize>,
    s: Scalars,
    read_grads: bool,
) -> Sums {
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
    Sums {
        weights: crate::sgd::sum_squares(p),
        grads: if read_grads {
            crate::read::grad_sums(g)
        } else {
            GradSums::default()
        },
    }
}

/// The step of one element (see the module's overview); `BUF` is 0 (no
/// momentum), 1 (first step) or 2 (later steps). Only [`step_range`] calls it (and
/// `body`): elsewhere the step is libtorch's.
#[inline(always)]
fn element<const DECAY: bool, const BUF: u8>(p: &mut f32, g: f32, b: &mut f32, s: Scalars) {
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
}

#[inline(always)]
fn body<const DECAY: bool, const BUF: u8>(p: &mut [f32], g: &[f32], b: &mut [f32], s: Scalars) {
    if BUF == 0 {
        // No buffer: `element` does not touch its `b`.
        let mut none = 0.0;
        for (pv, &gv) in p.iter_mut().zip(g) {
            element::<DECAY, BUF>(pv, gv, &mut none, s);
        }
    } else {
        for ((pv, &gv), bv) in p.iter_mut().zip(g).zip(b.iter_mut()) {
            element::<DECAY, BUF>(pv, gv, bv, s);
        }
    }
}
