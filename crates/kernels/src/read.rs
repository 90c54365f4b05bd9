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

use crate::portable::{active_columns, flat_sums_body, grad_sums_blocks, response_part_body};
use crate::threads::{on_threads, ranges, thread_count};

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
            "read takes defined float32 tensors in host memory, got {:?} on {:?}",
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

/// Runs `$body` compiled for AVX2 where the CPU has it (four float64 or
/// eight float32 lanes per register; the default x86-64 target has half
/// that), else as compiled. libtorch picks its kernels the same way.
macro_rules! with_avx2 {
    ($avx2:ident, $body:expr, ($($arg:expr),*)) => {{
        #[cfg(all(target_arch = "x86_64", feature = "x86"))]
        {
            if $crate::avx2() {
                // SAFETY: the CPU has AVX2 (`avx2` checked it).
                unsafe { $crate::x86_64::$avx2($($arg),*) }
            } else {
                ($body)($($arg),*)
            }
        }
        #[cfg(not(all(target_arch = "x86_64", feature = "x86")))]
        {
            ($body)($($arg),*)
        }
    }};
}

/// Whether a sum of `n` squares taken in float32 may have lost some: not
/// finite (a square above 3.4e38), or so small that squares below
/// float32's range (elements below about 1.1e-19; they add at most
/// √n·1.1e-19 to the root) reach its seventh digit. Those are read again
/// in float64, where no square of a float32 is lost (the smallest,
/// 1.4e-45, squares to 2e-90).
pub fn needs_exact(root: f64, n: f64) -> bool {
    !root.is_finite() || root < n.sqrt() * 1e-11
}

/// Σx² and the non-zero count of a slice, block by block
/// ([`EXACT_BLOCK`](crate::portable::EXACT_BLOCK)): each block in float32 lanes, and again in float64
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

/// One thread's share of one response (its rows, see
/// [`response_part_body`]), block by block as [`grad_sums`] reads a
/// gradient: in float32 lanes, and again in float64 where the spread's
/// squares [`needs_exact`]. With the shift a float32 near the values,
/// x − shift is exact in float32 wherever the spread is small next to the
/// mean (Sterbenz), the case where digits could be lost.
pub(crate) fn response_part(
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

/// [`flat_sums_body`] in float32 lanes, at its fastest; with `seen`, also
/// [`active_columns`] of `x` (rows of `seen.len()` values from the first):
/// in the same pass where AVX2 is there and the rows are a whole number of
/// its 16-value steps, which spared a dead-unit layer's response a second
/// pass over every block (a third of its read in `make bench`).
#[inline(always)]
pub(crate) fn flat_sums_fast(
    x: &[f32],
    shift: f32,
    flat: Flat,
    seen: Option<&mut [u32]>,
) -> [f64; 3] {
    #[cfg(all(target_arch = "x86_64", feature = "x86"))]
    if crate::avx2() {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe {
            match seen {
                Some(cols) if cols.len() % crate::portable::RESPONSE_LANES == 0 => {
                    crate::x86_64::flat_sums_avx2::<true>(x, shift, flat, cols)
                }
                Some(cols) => {
                    active_columns(x, cols, flat);
                    crate::x86_64::flat_sums_avx2::<false>(x, shift, flat, &mut [])
                }
                None => crate::x86_64::flat_sums_avx2::<false>(x, shift, flat, &mut []),
            }
        };
    }
    if let Some(cols) = seen {
        active_columns(x, cols, flat);
    }
    flat_sums_body::<f32>(x, shift, flat)
}

/// [`flat_sums_body`] in float64 lanes: with AVX2 written out (as
/// [`flat_sums_avx2`]), since the compiler's vectorization of the float64
/// body read a response ten times slower than the float32 one, and a
/// deep plain net's responses (spreads below 1e-11) take this path.
#[inline(always)]
pub(crate) fn flat_sums_exact(x: &[f32], shift: f64, flat: Flat) -> [f64; 3] {
    with_avx2!(
        flat_sums_exact_avx2,
        flat_sums_body::<f64>,
        (x, shift, flat)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::portable::grad_sums_body;
    use crate::threads::per_thread;

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
