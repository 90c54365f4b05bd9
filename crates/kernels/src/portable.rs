//! The portable code of the probe's reads: plain Rust that the compiler
//! vectorizes for whatever target it builds. On x86-64 with AVX2 the same
//! bodies are inlined into [`crate::x86_64`]'s functions, compiled there
//! with AVX2 enabled, so the two paths are one code; where the compiler's
//! vectorization fell short (a response's three sums, the float64 lanes)
//! `x86_64` writes the loop out with intrinsics instead.
//!
//! Every sum is taken in independent lanes flushed to float64: see
//! [`LANES`] and [`PER_LANE`].

use crate::read::{flat_sums_exact, flat_sums_fast, needs_exact, Flat, GradSums, ResponseSums};
use crate::threads::ranges;

/// Independent accumulators, so that the compiler keeps them in vector
/// registers (one running sum is a chain of dependent additions). Counts
/// are lanes of the same type (exact: a lane counts at most [`PER_LANE`]
/// values between flushes): one lane type vectorizes.
pub(crate) const LANES: usize = 32;

/// Lanes of a response's read, which keeps three sums (a gradient's keeps
/// two): with [`LANES`] of each, AVX2's sixteen registers would not hold
/// them all, and the sums would be kept in memory.
pub(crate) const RESPONSE_LANES: usize = 16;

/// Values a float32 lane sums before its total is added in float64: its
/// rounding stays at float32's precision (a relative error of at most
/// 32 units in the last place, typically √32), and a count stays exact.
pub(crate) const PER_LANE: usize = 32;

/// A lane type: float32 for the fast read (eight values per AVX2
/// register, no widening), float64 for the exact one.
pub(crate) trait Lane:
    Copy + Default + std::ops::Sub<Output = Self> + std::ops::Mul<Output = Self> + std::ops::AddAssign
{
    const ONE: Self;
    fn of(x: f32) -> Self;
    fn wide(self) -> f64;
}

impl Lane for f32 {
    const ONE: f32 = 1.0;
    fn of(x: f32) -> f32 {
        x
    }
    fn wide(self) -> f64 {
        f64::from(self)
    }
}

impl Lane for f64 {
    const ONE: f64 = 1.0;
    fn of(x: f32) -> f64 {
        f64::from(x)
    }
    fn wide(self) -> f64 {
        self
    }
}

/// Values read in one lane type at a time: 16 KiB, which is still in L1
/// when a block whose float32 read [`needs_exact`] is read again in
/// float64.
pub(crate) const EXACT_BLOCK: usize = 4 * LANES * PER_LANE;

#[inline(always)]
pub(crate) fn grad_sums_blocks(x: &[f32]) -> GradSums {
    let mut total = GradSums::default();
    let mut exact = false;
    for block in x.chunks(EXACT_BLOCK) {
        if !exact {
            let fast = grad_sums_body::<f32>(block);
            // All exact zeros (a dead layer's gradient) read 0 in either.
            exact = fast.nonzero > 0 && needs_exact(fast.sum_sq.sqrt(), block.len() as f64);
            if !exact {
                total.add(fast);
                continue;
            }
        }
        total.add(grad_sums_body::<f64>(block));
    }
    total
}

/// How far ahead of the values being summed the reads ask for memory, in
/// floats (8 KiB). The hardware prefetcher alone kept too few lines in
/// flight: a tensor not in cache read at 12–15 GB/s, libtorch's own sum of
/// it at 16–17 GB/s, and with this at 17–20 GB/s (two threads, `make
/// bench`'s machine, CNN-20's response and gradient shapes). 4 KiB ahead
/// slowed the gradient read down, to about 15 GB/s even from cache.
pub(crate) const PREFETCH_AHEAD: usize = 2048;

/// Asks for the cache line at `at` (never dereferenced: a prefetch past
/// the end of a tensor does not fault, hence `wrapping_add` above).
#[inline(always)]
pub(crate) fn prefetch(at: *const f32) {
    #[cfg(all(target_arch = "x86_64", feature = "x86"))]
    // SAFETY: a prefetch is a hint; it reads nothing and cannot fault.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(at.cast());
    }
    #[cfg(not(all(target_arch = "x86_64", feature = "x86")))]
    let _ = at;
}

#[inline(always)]
pub(crate) fn grad_sums_body<L: Lane>(x: &[f32]) -> GradSums {
    let (mut sum_sq, mut nonzero) = ([0f64; LANES], [0f64; LANES]);
    for block in x.chunks(LANES * PER_LANE) {
        let mut sq = [L::default(); LANES];
        let mut nz = [L::default(); LANES];
        let chunks = block.chunks_exact(LANES);
        let rest = chunks.remainder();
        for c in chunks {
            prefetch(c.as_ptr().wrapping_add(PREFETCH_AHEAD));
            prefetch(c.as_ptr().wrapping_add(PREFETCH_AHEAD + 16));
            for i in 0..LANES {
                let v = L::of(c[i]);
                sq[i] += v * v;
                nz[i] += if c[i] != 0.0 { L::ONE } else { L::default() };
            }
        }
        for (i, &r) in rest.iter().enumerate() {
            sq[i] += L::of(r) * L::of(r);
            nz[i] += if r != 0.0 { L::ONE } else { L::default() };
        }
        flush(&mut sum_sq, &sq);
        flush(&mut nonzero, &nz);
    }
    GradSums {
        sum_sq: sum_sq.iter().sum(),
        nonzero: nonzero.iter().sum::<f64>() as u64,
    }
}

/// The mean of a sample of up to 1024 elements, rounded to float32: a
/// shift within a few stds of the mean, known before the one read, that
/// both lane types subtract exactly as given. The sample is 64 evenly
/// spaced runs of 16 neighbours (a pixel's channels, or a stretch of one
/// channel), so that it touches 64 cache lines and pages, not 1024: for a
/// small response 1024 lone elements were every line of it, a second read.
pub(crate) fn sample_mean(v: &[f32]) -> f64 {
    const RUNS: usize = 64;
    const RUN: usize = 16;
    if v.is_empty() {
        return 0.0;
    }
    let (mut sum, mut n) = (0f64, 0usize);
    if v.len() <= RUNS * RUN {
        sum = v.iter().map(|&x| f64::from(x)).sum();
        n = v.len();
    } else {
        let start = |r: usize| (v.len() - RUN) * r / (RUNS - 1);
        // The runs are far apart and rarely in cache: asked for all at
        // once, their misses overlap, where summing run after run waited
        // for each in turn.
        for r in 0..RUNS {
            prefetch(v[start(r)..].as_ptr());
            prefetch(v[start(r) + RUN - 1..].as_ptr());
        }
        for r in 0..RUNS {
            let start = start(r);
            sum += v[start..start + RUN]
                .iter()
                .map(|&x| f64::from(x))
                .sum::<f64>();
            n += RUN;
        }
    }
    f64::from((sum / n as f64) as f32)
}

/// A range of whole rows, where a row is one position's units side by
/// side (a feature vector, or a pixel's channels in NHWC), or one unit's
/// run of consecutive elements (a channel's H·W in NCHW); in float64 lanes
/// throughout if `exact`.
///
/// The sums are taken around the mean of a sample of the part itself
/// ([`sample_mean`]), and [`ResponseSums::add`] brings the parts' sums to
/// one shift. The sample is read by the thread that then reads the part,
/// so its cache misses overlap across threads and warm the lines it reads
/// next; taken for the whole tensor before the threads started, it was
/// about a seventh of the MLP probe step's reading time in `make bench`.
///
/// The sums do not depend on which unit a value belongs to, so they are
/// taken over the values in memory order, as [`grad_sums`] takes its own.
/// Which units are active is found block by block, each block again while
/// it is still in cache, and only until every unit has been seen active
/// (for a live layer: within the first block).
#[inline(always)]
pub(crate) fn response_part_body(
    v: &[f32],
    unit: Option<(usize, usize)>,
    threads: usize,
    part: usize,
    flat: Flat,
    mut exact: bool,
) -> ResponseSums {
    let units = unit.map_or(0, |u| u.0);
    // Parts are whole rows: `units` values side by side, or one unit's
    // run of `stride`.
    let row = match unit {
        None => 1,
        Some((units, 1)) => units.max(1),
        Some((_, stride)) => stride.max(1),
    };
    let range = ranges(v.len(), threads, row)[part].clone();
    let v = &v[range.clone()];
    let shift = sample_mean(v);
    let mut out = ResponseSums {
        count: v.len() as u64,
        shift,
        sum: 0.0,
        sum_sq: 0.0,
        saturated: 0,
        unit_active: vec![false; units],
    };
    if v.is_empty() {
        // No values here (a dim of size 0, which may be the unit axis, or
        // more threads than rows): nothing to sum, and no unit seen.
        return out;
    }
    // Exact in both lane types: `sample_mean` rounded the shift to float32.
    let shift32 = shift as f32;
    // Sums `values`; with `seen` (rows of `seen.len()` values from the
    // first), also marks its columns that hold a value outside the flat
    // part, in the same read where the float32 read is kept.
    let mut add = |values: &[f32], mut seen: Option<&mut [u32]>| {
        if let Some(cols) = seen.as_deref_mut() {
            if !EXACT_BLOCK.is_multiple_of(cols.len()) {
                // A block would start inside a row.
                active_columns(values, cols, flat);
                seen = None;
            }
        }
        for block in values.chunks(EXACT_BLOCK) {
            if !exact {
                let fast = flat_sums_fast(block, shift32, flat, seen.as_deref_mut());
                exact = needs_exact(fast[1].sqrt(), block.len() as f64);
                if !exact {
                    out.sum += fast[0];
                    out.sum_sq += fast[1];
                    out.saturated += fast[2] as u64;
                    continue;
                }
            }
            let [sum, sum_sq, saturated] = flat_sums_exact(block, shift, flat);
            if let Some(cols) = seen.as_deref_mut() {
                active_columns(block, cols, flat);
            }
            out.sum += sum;
            out.sum_sq += sum_sq;
            out.saturated += saturated as u64;
        }
    };
    let Some((units, stride)) = unit else {
        add(v, None);
        return out;
    };
    let mut active = vec![false; units];
    if stride == 1 {
        // Column j of a block holds unit j mod `units`: several rows side
        // by side when the units are few, so that a row has at least 64.
        let width = units * (64 / units).max(1);
        let (body, rest) = v.split_at(v.len() / width * width);
        let mut seen = vec![0u32; width];
        let mut all = false;
        // Then fewer than `width` values: whole rows of `units`.
        let blocks = body
            .chunks(width * PER_LANE)
            .map(|b| (b, width))
            .chain((!rest.is_empty()).then_some((rest, units)));
        for (block, width) in blocks {
            if all {
                add(block, None);
            } else {
                add(block, Some(&mut seen[..width]));
                for row in seen[..width].chunks(units) {
                    for (a, &s) in active.iter_mut().zip(row) {
                        *a |= s != 0;
                    }
                }
                all = active.iter().all(|&a| a);
            }
        }
    } else {
        // Each row is one unit's run; rows cycle through the units. A live
        // unit's row shows a value outside the flat part within its first
        // few values.
        let first_row = range.start / stride;
        let rows_per_block = (LANES * PER_LANE).div_ceil(stride);
        for (b, block) in v.chunks(stride * rows_per_block).enumerate() {
            add(block, None);
            for (k, row) in block.chunks_exact(stride).enumerate() {
                let a = &mut active[(first_row + b * rows_per_block + k) % units];
                *a = *a || row.iter().any(|&x| !flat.contains(x));
            }
        }
    }
    out.unit_active = active;
    out
}

/// Σ(x − shift), Σ(x − shift)² and the saturated count of `x`, in
/// [`RESPONSE_LANES`] lanes of `L` flushed to float64 lanes every
/// [`PER_LANE`] values per lane. (Where the compiler vectorizes this
/// itself, it keeps some of the sums in memory; see [`flat_sums_avx2`].)
#[inline(always)]
pub(crate) fn flat_sums_body<L: Lane>(x: &[f32], shift: L, flat: Flat) -> [f64; 3] {
    const N: usize = RESPONSE_LANES;
    let mut wide = [[0f64; N]; 3];
    for block in x.chunks(N * PER_LANE) {
        let (mut s, mut q, mut f) = ([L::default(); N], [L::default(); N], [L::default(); N]);
        for (i, &x) in block.iter().enumerate() {
            let d = L::of(x) - shift;
            s[i % N] += d;
            q[i % N] += d * d;
            f[i % N] += if flat.contains(x) {
                L::ONE
            } else {
                L::default()
            };
        }
        flush(&mut wide[0], &s);
        flush(&mut wide[1], &q);
        flush(&mut wide[2], &f);
    }
    wide.map(|w| w.iter().sum())
}

/// Adds `L` lanes into float64 lanes, lane by lane: a few vector
/// additions, where one running float64 total would be a chain of
/// dependent ones as long as the lanes.
#[inline(always)]
pub(crate) fn flush<L: Lane, const N: usize>(wide: &mut [f64; N], lanes: &[L; N]) {
    for (w, l) in wide.iter_mut().zip(lanes) {
        *w += l.wide();
    }
}

/// Marks in `seen` (one entry per column, non-zero once seen) the columns
/// of `block`'s rows that hold a value outside the flat part. An integer
/// or: a float max (the earlier form) vectorized with NaN checks and
/// blends, and was a third of a response's read in `make bench`.
#[inline(always)]
pub(crate) fn active_columns(block: &[f32], seen: &mut [u32], flat: Flat) {
    for row in block.chunks_exact(seen.len()) {
        for (s, &x) in seen.iter_mut().zip(row) {
            *s |= u32::from(!flat.contains(x));
        }
    }
}
