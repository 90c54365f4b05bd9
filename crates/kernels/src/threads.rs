//! Splitting a pass over tensors across threads: libtorch's OpenMP team
//! where [`crate::team`] finds it, else threads of this crate's own.

/// Splits `0..n` into `parts` near-equal ranges, each a multiple of `unit`
/// long except the last.
pub(crate) fn ranges(n: usize, parts: usize, unit: usize) -> Vec<std::ops::Range<usize>> {
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
pub(crate) fn per_thread() -> usize {
    if crate::team::available() {
        PER_THREAD
    } else {
        PER_OWN_THREAD
    }
}

const PER_THREAD: usize = 1 << 14;
const PER_OWN_THREAD: usize = 4 << 20;
