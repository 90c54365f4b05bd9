//! One read per tensor: the probe's statistics of float32 tensors in host
//! memory, each sum accumulated in float64 as the tensor is read.
//!
//! Why not libtorch's reductions on the CPU: each of them is one pass over
//! the tensor, and a probe step needs several per tensor (a norm and a
//! zero count per gradient; mean, spread, saturation and dead units per
//! response), plus the temporaries some of them write (a bool tensor for
//! each comparison). In `make bench` that made a CNN probe step cost about
//! seven reads of every probed tensor. Here every statistic of a tensor
//! comes from one read of it, split over the threads libtorch uses.
//!
//! Exactness: every float32 value is widened to float64 before it is
//! squared or summed, and the smallest float32 (1.4e-45) squares to 2e-90,
//! far inside float64's range, so no square is lost and no second pass is
//! needed for tiny gradients (libtorch's float32 norm drops squares below
//! about 1e-38). The spread is summed around a shift taken from a sample of
//! the tensor, so a collapsed layer (values all close to a large mean)
//! keeps its digits: see [`ResponseSums::std`].

use tch::{Device, Kind, Tensor};

/// The environment variable that picks the kernels: `portable` runs the
/// portable code of every fast path (no AVX2 reads, no fused SGD step, the
/// probe's own threads instead of libtorch's OpenMP team), so that the
/// code every non-x86 machine runs is tested on x86 too (`make test` runs
/// the probe, train and CLI tests again under it). Anything else, or
/// unset: the fastest the CPU has.
pub const KERNELS_VAR: &str = "GRADSCOPE_KERNELS";

/// Whether [`KERNELS_VAR`] asks for the portable kernels (read once).
pub fn portable() -> bool {
    static PORTABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PORTABLE.get_or_init(|| {
        std::env::var(KERNELS_VAR).is_ok_and(|v| v.trim().eq_ignore_ascii_case("portable"))
    })
}

/// What one read of a gradient (or weight) gives.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GradSums {
    /// Σ x², in float64.
    pub sum_sq: f64,
    /// Elements that are not exactly 0 (NaN counts as non-zero, as in
    /// libtorch's `count_nonzero`).
    pub nonzero: u64,
}

impl GradSums {
    pub fn l2(&self) -> f64 {
        self.sum_sq.sqrt()
    }

    /// Adds the sums of another part of the same tensor (threads' parts
    /// here, the optimizer's blocks in the training crate).
    pub fn add(&mut self, other: GradSums) {
        self.sum_sq += other.sum_sq;
        self.nonzero += other.nonzero;
    }
}

/// What one read of a response gives.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseSums {
    pub count: u64,
    /// The shift the sums below are taken around.
    pub shift: f64,
    /// Σ (x − shift) and Σ (x − shift)², in float64.
    pub sum: f64,
    pub sum_sq: f64,
    /// Elements in the flat part of the nonlinearity.
    pub saturated: u64,
    /// Per unit (dim 1: feature or channel), whether any element of it is
    /// outside the flat part; empty for a tensor without a unit axis.
    pub unit_active: Vec<bool>,
}

impl ResponseSums {
    pub fn mean(&self) -> f64 {
        self.shift + self.sum / self.count as f64
    }

    /// Population std: Var = Σ(x − s)²/n − (Σ(x − s)/n)². With the shift s
    /// within a few stds of the mean the subtraction loses no digits that
    /// matter, where E[x²] − mean² loses all of them for a small spread
    /// around a large mean.
    pub fn std(&self) -> f64 {
        let n = self.count as f64;
        let offset = self.sum / n;
        (self.sum_sq / n - offset * offset).max(0.0).sqrt()
    }

    pub fn saturated_fraction(&self) -> f64 {
        self.saturated as f64 / self.count as f64
    }

    /// Fraction of units in the flat part for every example and position;
    /// NaN without a unit axis.
    pub fn dead_fraction(&self) -> f64 {
        if self.unit_active.is_empty() {
            return f64::NAN;
        }
        let dead = self.unit_active.iter().filter(|a| !**a).count();
        dead as f64 / self.unit_active.len() as f64
    }

    /// Adds the sums of another part of the same response, taken around
    /// that part's own shift: Σ(x − s) = Σ(x − t) + n·(t − s) and
    /// Σ(x − s)² = Σ(x − t)² + 2(t − s)·Σ(x − t) + n·(t − s)², in float64,
    /// where the parts' shifts lie within a few stds of each other.
    fn add(&mut self, other: &ResponseSums) {
        for (a, b) in self.unit_active.iter_mut().zip(&other.unit_active) {
            *a |= *b;
        }
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            (self.shift, self.sum, self.sum_sq) = (other.shift, other.sum, other.sum_sq);
        } else {
            let (d, n) = (other.shift - self.shift, other.count as f64);
            self.sum += other.sum + n * d;
            self.sum_sq += other.sum_sq + 2.0 * d * other.sum + n * d * d;
        }
        self.count += other.count;
        self.saturated += other.saturated;
    }
}

/// Whether [`grads`] and [`responses`] can read `t` where it lies: a
/// float32 tensor in host memory.
pub fn readable(t: &Tensor) -> bool {
    t.defined() && t.device() == Device::Cpu && t.kind() == Kind::Float
}

/// The flat part of a nonlinearity, as two bounds: a value is in it when
/// `x <= at_most` or `x >= at_least` (never for NaN, nor for a NaN bound).
/// See `Activation::flat_bounds`.
#[derive(Debug, Clone, Copy)]
pub struct Flat {
    pub at_most: f32,
    pub at_least: f32,
}

impl Flat {
    /// No value is in it.
    pub const NONE: Flat = Flat {
        at_most: f32::NAN,
        at_least: f32::NAN,
    };

    #[inline(always)]
    pub fn contains(self, x: f32) -> bool {
        x <= self.at_most || x >= self.at_least
    }
}

/// A float32 tensor's elements in memory order, with its unit axis: the
/// tensor itself when its layout is dense (contiguous, channels-last or any
/// other permutation without gaps), else a contiguous copy.
struct Dense {
    tensor: Tensor,
    /// Size and stride of dim 1, when the tensor has one.
    unit: Option<(usize, usize)>,
}

impl Dense {
    fn new(t: &Tensor) -> Dense {
        // `values` reads the memory as host float32: anything else (a CUDA
        // or float16 tensor) would be undefined behaviour, so it is refused
        // here, before any pointer is taken. The probe reads only what
        // `readable` admits; another caller of `read` learns it at once.
        assert!(
            readable(t),
            "onepass::read takes defined float32 tensors in host memory, got {:?} on {:?}",
            t.kind(),
            t.device()
        );
        let tensor = if is_dense(&t.size(), &t.stride()) {
            t.shallow_clone()
        } else {
            t.contiguous()
        };
        // A unit axis of size 1 may have any stride: all its elements are
        // that one unit's, side by side.
        let unit = (tensor.dim() >= 2).then(|| match tensor.size()[1] {
            1 => (1, 1),
            units => (units as usize, tensor.stride()[1] as usize),
        });
        Dense { tensor, unit }
    }

    fn values(&self) -> &[f32] {
        let n = self.tensor.numel();
        if n == 0 {
            return &[];
        }
        // SAFETY: `readable` checked the kind (f32) and the device (host
        // memory); a dense layout holds exactly `numel` elements from its
        // data pointer on; `self.tensor` keeps the storage alive while the
        // slice is borrowed from `self`, and nothing writes to it meanwhile
        // (a probe reads a gradient in its hook before the engine passes
        // it on, and the rest after backward, where nothing runs beside).
        unsafe { std::slice::from_raw_parts(self.tensor.data_ptr() as *const f32, n) }
    }
}

/// True when the elements fill `numel` consecutive slots in some order of
/// the dims: sorted by stride, each stride is the product of the sizes
/// before it (dims of size 1 can have any stride).
pub fn is_dense(size: &[i64], stride: &[i64]) -> bool {
    let mut dims: Vec<(i64, i64)> = size
        .iter()
        .zip(stride)
        .filter(|(s, _)| **s != 1)
        .map(|(s, t)| (*t, *s))
        .collect();
    dims.sort_unstable();
    let mut expected = 1;
    for (stride, size) in dims {
        if stride != expected {
            return false;
        }
        expected *= size;
    }
    true
}

/// Splits `0..n` into `parts` near-equal ranges, each a multiple of `unit`
/// long except the last.
fn ranges(n: usize, parts: usize, unit: usize) -> Vec<std::ops::Range<usize>> {
    let blocks = n.div_ceil(unit);
    (0..parts)
        .map(|p| {
            let start = (blocks * p / parts * unit).min(n);
            let end = (blocks * (p + 1) / parts * unit).min(n);
            start..end
        })
        .collect()
}

/// Runs `work(part)` for parts `0..threads` on that many threads (the
/// calling one included: libtorch's OpenMP team where it can, see `team`)
/// and returns the results in part order. Public for other passes over
/// tensors in host memory that want the same threads (the training
/// crate's fused optimizer step).
pub fn on_threads<R: Send>(threads: usize, work: impl Fn(usize) -> R + Sync) -> Vec<R> {
    if threads <= 1 {
        return vec![work(0)];
    }
    if let Some(out) = crate::team::run(threads, &work) {
        return out;
    }
    std::thread::scope(|scope| {
        let work = &work;
        let others: Vec<_> = (1..threads).map(|p| scope.spawn(move || work(p))).collect();
        let mut out = vec![work(0)];
        out.extend(others.into_iter().map(|h| match h.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }));
        out
    })
}

/// Threads to split `elements` over: libtorch's own count (`--threads`),
/// but one per [`PER_THREAD`] elements at most. On libtorch's OpenMP team
/// a part costs little more than its read (the team is awake), so parts
/// can be small. Threads of our own (no libgomp) are started per read and
/// share the cores with libtorch's spinning workers: for those, one thread
/// read an MLP probe step (about 2M elements) faster than two.
pub fn thread_count(elements: usize) -> usize {
    let most = tch::get_num_threads().max(1) as usize;
    (elements / per_thread()).clamp(1, most)
}

/// The fewest elements a thread is given: few on libtorch's team, which
/// is awake already; many on threads of our own, which cost a start.
fn per_thread() -> usize {
    if crate::team::available() {
        PER_THREAD
    } else {
        PER_OWN_THREAD
    }
}

const PER_THREAD: usize = 1 << 14;
const PER_OWN_THREAD: usize = 4 << 20;

/// A response's elements in memory order, and its unit axis (size and
/// stride of dim 1) if it has one.
type View<'a> = (&'a [f32], Option<(usize, usize)>);

/// Everything one probe step reads, in one go (one set of threads): Σx²
/// and the non-zero count of each of `grads` (gradients, and weights whose
/// norm is wanted), and the sums of each of `responses`, whose values in
/// `flat` count as saturated. Every tensor must be [`readable`].
pub fn read(
    grads: &[Tensor],
    responses: &[Tensor],
    flat: Flat,
) -> (Vec<GradSums>, Vec<ResponseSums>) {
    let grads: Vec<Dense> = grads.iter().map(Dense::new).collect();
    let responses: Vec<Dense> = responses.iter().map(Dense::new).collect();
    // Slices, not tensors, cross threads (a tch `Tensor` is not `Sync`).
    let grad_values: Vec<&[f32]> = grads.iter().map(Dense::values).collect();
    let views: Vec<View> = responses.iter().map(|d| (d.values(), d.unit)).collect();
    let elements = grad_values
        .iter()
        .chain(views.iter().map(|(v, _)| v))
        .map(|v| v.len())
        .sum();
    let threads = thread_count(elements);
    let parts = on_threads(threads, |part| {
        let g: Vec<GradSums> = grad_values
            .iter()
            .map(|v| grad_sums(&v[ranges(v.len(), threads, 1)[part].clone()]))
            .collect();
        let r: Vec<ResponseSums> = views
            .iter()
            .map(|&(v, unit)| response_part(v, unit, threads, part, flat))
            .collect();
        (g, r)
    });
    let grads = (0..grad_values.len())
        .map(|i| {
            parts.iter().fold(GradSums::default(), |mut a, (p, _)| {
                a.add(p[i]);
                a
            })
        })
        .collect();
    let responses = (0..views.len())
        .map(|i| {
            let mut total = parts[0].1[i].clone();
            for (_, p) in &parts[1..] {
                total.add(&p[i]);
            }
            total
        })
        .collect();
    (grads, responses)
}

/// Independent accumulators, so that the compiler keeps them in vector
/// registers (one running sum is a chain of dependent additions). Counts
/// are lanes of the same type (exact: a lane counts at most [`PER_LANE`]
/// values between flushes): one lane type vectorizes.
const LANES: usize = 32;

/// Lanes of a response's read, which keeps three sums (a gradient's keeps
/// two): with [`LANES`] of each, AVX2's sixteen registers would not hold
/// them all, and the sums would be kept in memory.
const RESPONSE_LANES: usize = 16;

/// Values a float32 lane sums before its total is added in float64: its
/// rounding stays at float32's precision (a relative error of at most
/// 32 units in the last place, typically √32), and a count stays exact.
const PER_LANE: usize = 32;

/// Runs `$body` compiled for AVX2 where the CPU has it (four float64 or
/// eight float32 lanes per register; the default x86-64 target has half
/// that), else as compiled. libtorch picks its kernels the same way.
macro_rules! with_avx2 {
    ($avx2:expr, $body:expr, ($($arg:expr),*)) => {{
        #[cfg(target_arch = "x86_64")]
        {
            if !$crate::onepass::portable() && std::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2, checked just above.
                unsafe { ($avx2)($($arg),*) }
            } else {
                ($body)($($arg),*)
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            ($body)($($arg),*)
        }
    }};
}

/// A lane type: float32 for the fast read (eight values per AVX2
/// register, no widening), float64 for the exact one.
trait Lane:
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

/// Whether a sum of `n` squares taken in float32 may have lost some: not
/// finite (a square above 3.4e38), or so small that squares below
/// float32's range (elements below about 1.1e-19; they add at most
/// √n·1.1e-19 to the root) reach its seventh digit. Those are read again
/// in float64, where no square of a float32 is lost (the smallest,
/// 1.4e-45, squares to 2e-90).
pub(crate) fn needs_exact(root: f64, n: f64) -> bool {
    !root.is_finite() || root < n.sqrt() * 1e-11
}

/// Values read in one lane type at a time: 16 KiB, which is still in L1
/// when a block whose float32 read [`needs_exact`] is read again in
/// float64.
const EXACT_BLOCK: usize = 4 * LANES * PER_LANE;

/// Σx² and the non-zero count of a slice, block by block
/// ([`EXACT_BLOCK`]): each block in float32 lanes, and again in float64
/// (from L1) where [`needs_exact`] says that float32 lost some of its
/// squares; once one block needed it, the rest of the slice is read in
/// float64 only (a tensor's values are mostly of one size). Every block
/// is thus either exact or lost at most 1.2e-38 per element against a
/// mean square of at least 1e-22: 1.2e-16 of its own sum. Read whole and
/// then again, a tiny gradient (a deep plain net's first layers) cost two
/// reads from memory, and on `make bench`'s plain MLP those float64
/// re-reads took longer than all its float32 gradient reads together
/// (`perf`, probing every step). Public for passes that have
/// a gradient in cache anyway (the training crate's fused optimizer step).
pub fn grad_sums(x: &[f32]) -> GradSums {
    with_avx2!(grad_sums_avx2, grad_sums_blocks, (x))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn grad_sums_avx2(x: &[f32]) -> GradSums {
    grad_sums_blocks(x)
}

#[inline(always)]
fn grad_sums_blocks(x: &[f32]) -> GradSums {
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
const PREFETCH_AHEAD: usize = 2048;

/// Asks for the cache line at `at` (never dereferenced: a prefetch past
/// the end of a tensor does not fault, hence `wrapping_add` above).
#[inline(always)]
fn prefetch(at: *const f32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it reads nothing and cannot fault.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(at.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

#[inline(always)]
fn grad_sums_body<L: Lane>(x: &[f32]) -> GradSums {
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
fn sample_mean(v: &[f32]) -> f64 {
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

/// One thread's share of one response (its rows, see
/// [`response_part_body`]), block by block as [`grad_sums`] reads a
/// gradient: in float32 lanes, and again in float64 where the spread's
/// squares [`needs_exact`]. With the shift a float32 near the values,
/// x − shift is exact in float32 wherever the spread is small next to the
/// mean (Sterbenz), the case where digits could be lost.
fn response_part(
    v: &[f32],
    unit: Option<(usize, usize)>,
    threads: usize,
    part: usize,
    flat: Flat,
) -> ResponseSums {
    with_avx2!(
        response_part_avx2,
        response_part_body,
        (v, unit, threads, part, flat, false)
    )
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn response_part_avx2(
    v: &[f32],
    unit: Option<(usize, usize)>,
    threads: usize,
    part: usize,
    flat: Flat,
    exact: bool,
) -> ResponseSums {
    response_part_body(v, unit, threads, part, flat, exact)
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
fn response_part_body(
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
fn flat_sums_body<L: Lane>(x: &[f32], shift: L, flat: Flat) -> [f64; 3] {
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

/// [`flat_sums_body`] in float32 lanes, at its fastest; with `seen`, also
/// [`active_columns`] of `x` (rows of `seen.len()` values from the first):
/// in the same pass where AVX2 is there and the rows are a whole number of
/// its 16-value steps, which spared a dead-unit layer's response a second
/// pass over every block (a third of its read in `make bench`).
#[inline(always)]
fn flat_sums_fast(x: &[f32], shift: f32, flat: Flat, seen: Option<&mut [u32]>) -> [f64; 3] {
    #[cfg(target_arch = "x86_64")]
    if !portable() && std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe {
            match seen {
                Some(cols) if cols.len() % RESPONSE_LANES == 0 => {
                    flat_sums_avx2::<true>(x, shift, flat, cols)
                }
                Some(cols) => {
                    active_columns(x, cols, flat);
                    flat_sums_avx2::<false>(x, shift, flat, &mut [])
                }
                None => flat_sums_avx2::<false>(x, shift, flat, &mut []),
            }
        };
    }
    if let Some(cols) = seen {
        active_columns(x, cols, flat);
    }
    flat_sums_body::<f32>(x, shift, flat)
}

/// All ones in the lanes of `v` in the flat part (`v <= lo` or `v >= hi`),
/// zeros elsewhere: ordered comparisons, false for NaN, as
/// [`Flat::contains`].
#[cfg(target_arch = "x86_64")]
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
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn flat_sums_avx2<const TRACK: bool>(
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

/// [`flat_sums_body`] in float64 lanes: with AVX2 written out (as
/// [`flat_sums_avx2`]), since the compiler's vectorization of the float64
/// body read a response ten times slower than the float32 one, and a
/// deep plain net's responses (spreads below 1e-11) take this path.
#[inline(always)]
fn flat_sums_exact(x: &[f32], shift: f64, flat: Flat) -> [f64; 3] {
    with_avx2!(
        flat_sums_exact_avx2,
        flat_sums_body::<f64>,
        (x, shift, flat)
    )
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn flat_sums_exact_avx2(x: &[f32], shift: f64, flat: Flat) -> [f64; 3] {
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

/// Adds `L` lanes into float64 lanes, lane by lane: a few vector
/// additions, where one running float64 total would be a chain of
/// dependent ones as long as the lanes.
#[inline(always)]
fn flush<L: Lane, const N: usize>(wide: &mut [f64; N], lanes: &[L; N]) {
    for (w, l) in wide.iter_mut().zip(lanes) {
        *w += l.wide();
    }
}

/// Marks in `seen` (one entry per column, non-zero once seen) the columns
/// of `block`'s rows that hold a value outside the flat part. An integer
/// or: a float max (the earlier form) vectorized with NaN checks and
/// blends, and was a third of a response's read in `make bench`.
#[inline(always)]
fn active_columns(block: &[f32], seen: &mut [u32], flat: Flat) {
    for row in block.chunks_exact(seen.len()) {
        for (s, &x) in seen.iter_mut().zip(row) {
            *s |= u32::from(!flat.contains(x));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The float32 lanes must agree with the float64 ones to float32's
    /// precision on ordinary values: Σx² of a million values, and the mean
    /// and spread of a response whose spread is far below its mean.
    #[test]
    fn float32_lanes_agree_with_float64_lanes() {
        let x: Vec<f32> = (0..1_000_000)
            .map(|i| (i as f32 * 0.618).sin() * 3.0)
            .collect();
        let (a, b) = (grad_sums_body::<f32>(&x), grad_sums_body::<f64>(&x));
        assert!(
            (a.sum_sq - b.sum_sq).abs() <= 1e-6 * b.sum_sq,
            "{} vs {}",
            a.sum_sq,
            b.sum_sq
        );
        assert_eq!(a.nonzero, b.nonzero);
        let r: Vec<f32> = x.iter().map(|v| 1000.0 + v * 1e-2).collect();
        for unit in [Some((16, 1)), Some((4, 1000)), None] {
            let flat = Flat {
                at_most: f32::NEG_INFINITY,
                at_least: 1000.0f32.next_up(),
            };
            let fa = response_part_body(&r, unit, 1, 0, flat, false);
            let fb = response_part_body(&r, unit, 1, 0, flat, true);
            assert!((fa.mean() - fb.mean()).abs() <= 1e-7 * fb.std(), "{unit:?}");
            assert!((fa.std() - fb.std()).abs() <= 1e-6 * fb.std(), "{unit:?}");
            assert_eq!(fa.saturated, fb.saturated);
            assert_eq!(fa.unit_active, fb.unit_active);
        }
    }

    /// The float64 response read written out for AVX2 sums what the plain
    /// float64 body sums (the reference: one lane type, no intrinsics), to
    /// float64 rounding, and counts the same flat values, on a tensor of
    /// tiny values around a shift, with NaNs, values on both bounds and a
    /// length that leaves a tail.
    #[test]
    fn float64_response_lanes_written_out_equal_the_plain_ones() {
        let x: Vec<f32> = (0..100_003)
            .map(|i| match i % 97 {
                0 => f32::NAN,
                1 => -1.0,
                2 => 1.0,
                _ => 0.5 + (i as f32 * 0.618).sin() * 1e-12,
            })
            .collect();
        let flat = Flat {
            at_most: -1.0,
            at_least: 1.0,
        };
        let finite: Vec<f32> = x.iter().copied().filter(|v| !v.is_nan()).collect();
        for v in [&x, &finite] {
            let a = flat_sums_exact(v, 0.5, flat);
            let b = flat_sums_body::<f64>(v, 0.5, flat);
            assert_eq!(a[2], b[2], "flat count");
            for k in 0..2 {
                assert!(
                    (a[k].is_nan() && b[k].is_nan())
                        || a[k] == b[k]
                        || (a[k] - b[k]).abs() <= 1e-12 * b[k].abs(),
                    "sum {k}: {} vs {}",
                    a[k],
                    b[k]
                );
            }
        }
        assert!(flat_sums_exact(&x, 0.5, flat)[0].is_nan());
    }

    /// Which units are active is the same whether it is found in the
    /// summing pass (rows a whole number of 16-value steps wide, here 16,
    /// 128 and 256 units; 16 units make rows of 64 side by side) or in a
    /// pass of its own (48 units), on one thread and split over two: the
    /// reference is libtorch's `(x > 0).any(0)` on a ReLU output with some
    /// units dead for every example. 1,001 rows leave a tail after the
    /// last full block.
    #[test]
    fn active_units_found_while_summing_are_libtorchs() {
        tch::set_num_threads(2);
        let flat = Flat {
            at_most: 0.0,
            at_least: f32::NAN,
        };
        for units in [16i64, 48, 128, 256] {
            let x = Tensor::randn([1001, units], (Kind::Float, Device::Cpu)).relu();
            for dead in [0, 5, units - 1] {
                let _ = x.narrow(1, dead, 1).fill_(0.0);
            }
            // A unit active in one example only, in the last row (the tail).
            let _ = x.narrow(1, 3, 1).fill_(0.0);
            let _ = x.get(1000).narrow(0, 3, 1).fill_(2.0);
            let want: Vec<bool> = Vec::try_from(x.gt(0.0).any_dim(0, false)).unwrap();
            let d = Dense::new(&x);
            let one = response_part_body(d.values(), d.unit, 1, 0, flat, false);
            assert_eq!(one.unit_active, want, "{units} units, one thread");
            let exact = response_part_body(d.values(), d.unit, 1, 0, flat, true);
            assert_eq!(exact.unit_active, want, "{units} units, float64");
            let (_, two) = read(&[], &[x.shallow_clone()], flat);
            assert_eq!(two[0].unit_active, want, "{units} units, threads");
        }
    }

    /// A read split over threads (libtorch's OpenMP team, see `team`)
    /// gives what one thread's read of the whole gives: the same counts
    /// and units, and the sums to float32 rounding. 300,000 elements take
    /// two threads; rows of 48 units (channels-last, a whole number of
    /// them per thread) and runs of 75 (NCHW).
    #[test]
    fn threads_split_the_read_exactly() {
        tch::set_num_threads(2);
        // Enough rows for two threads: on the team 2500; on threads of our
        // own (GRADSCOPE_KERNELS=portable), which take more each, more.
        let rows = (2 * per_thread()).div_ceil(48 * 25).max(2500) as i64;
        let x = Tensor::randn([rows, 48, 5, 5], (Kind::Float, Device::Cpu)).relu();
        // Unit 7 is dead everywhere.
        let _ = x.narrow(1, 7, 1).fill_(0.0);
        let flat = Flat {
            at_most: 0.0,
            at_least: f32::NAN,
        };
        assert_eq!(thread_count(x.numel()), 2);
        for t in [
            x.shallow_clone(),
            x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2]),
        ] {
            let (g, r) = read(&[t.shallow_clone()], &[t.shallow_clone()], flat);
            let d = Dense::new(&t);
            let whole = response_part_body(d.values(), d.unit, 1, 0, flat, false);
            assert_eq!((r[0].count, r[0].saturated), (whole.count, whole.saturated));
            assert_eq!(r[0].unit_active, whole.unit_active);
            assert_eq!(r[0].dead_fraction(), 1.0 / 48.0);
            // The float32 lanes meet the split at other values: float32
            // rounding apart, as in `float32_lanes_agree_with_float64_lanes`.
            assert!((r[0].mean() - whole.mean()).abs() <= 1e-7 * whole.std());
            assert!((r[0].std() - whole.std()).abs() <= 1e-6 * whole.std());
            let one = grad_sums(d.values());
            assert_eq!(g[0].nonzero, one.nonzero);
            assert!((g[0].sum_sq - one.sum_sq).abs() <= 1e-6 * one.sum_sq);
        }
    }

    /// Each thread sums its part around a shift sampled from that part,
    /// and the parts' sums are brought to one shift as they are added.
    /// Rows near +1000 in one half and near −1000 in the other (a spread
    /// of 0.01 within each) put the two threads' shifts 2000 apart; the
    /// mean and std must still be the float64 ones (computed here from a
    /// float64 copy) to float32 rounding.
    #[test]
    fn parts_with_far_apart_shifts_add_up_exactly() {
        tch::set_num_threads(2);
        let opts = (Kind::Float, Device::Cpu);
        // Each half a thread's part (more rows on threads of our own).
        let rows = per_thread().div_ceil(16).max(2048) as i64;
        let half = Tensor::randn([rows, 16], opts) * 0.01;
        let x = Tensor::cat(&[&half + 1000.0, &half - 1000.0], 0);
        assert_eq!(thread_count(x.numel()), 2);
        let (_, r) = read(&[], &[x.shallow_clone()], Flat::NONE);
        let d = x.to_kind(Kind::Double);
        let mean = d.mean(Kind::Double).double_value(&[]);
        let std = d.std(false).double_value(&[]);
        assert_eq!(r[0].count, 2 * 16 * rows as u64);
        assert!(
            (r[0].mean() - mean).abs() <= 1e-6,
            "{} vs {mean}",
            r[0].mean()
        );
        assert!(
            (r[0].std() - std).abs() <= 1e-9 * std,
            "{} vs {std}",
            r[0].std()
        );
    }

    /// A tensor with a dim of size 0 (none of its units has a value) reads
    /// as empty, not as a division by zero units.
    #[test]
    fn empty_tensors_read_as_empty() {
        for shape in [[4i64, 0, 3], [0, 5, 2], [2, 3, 0]] {
            let t = Tensor::zeros(shape, (Kind::Float, Device::Cpu));
            let (g, r) = read(&[t.shallow_clone()], &[t.shallow_clone()], Flat::NONE);
            assert_eq!(g[0], GradSums::default(), "{shape:?}");
            assert_eq!(
                (r[0].count, r[0].sum, r[0].saturated),
                (0, 0.0, 0),
                "{shape:?}"
            );
            assert_eq!(r[0].unit_active.len(), shape[1] as usize, "{shape:?}");
        }
    }

    #[test]
    fn dense_layouts_are_told_from_strided_ones() {
        assert!(is_dense(&[2, 3, 4, 5], &[60, 20, 5, 1]));
        // Channels-last NCHW.
        assert!(is_dense(&[2, 3, 4, 5], &[60, 1, 15, 3]));
        // A size-1 dim's stride does not matter.
        assert!(is_dense(&[2, 1, 4], &[4, 99, 1]));
        // Every other column: gaps.
        assert!(!is_dense(&[4, 3], &[6, 2]));
        // Broadcast (stride 0): overlap.
        assert!(!is_dense(&[4, 3], &[0, 1]));
    }

    #[test]
    fn ranges_cover_everything_once_in_whole_units() {
        for (n, parts, unit) in [(10, 3, 1), (100, 2, 8), (7, 4, 3), (0, 2, 5), (5, 8, 1)] {
            let r = ranges(n, parts, unit);
            assert_eq!(r.len(), parts);
            assert_eq!(r[0].start, 0);
            assert_eq!(r.last().unwrap().end, n);
            for w in r.windows(2) {
                assert_eq!(w[0].end, w[1].start);
                assert!(w[0].start % unit == 0 || w[0].is_empty());
            }
        }
    }
}
