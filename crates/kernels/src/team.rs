//! The probe's reads run on libtorch's own OpenMP threads.
//!
//! libtorch runs its CPU kernels on a team of OpenMP (libgomp) threads.
//! When a kernel ends, those threads keep spinning for a while, waiting for
//! the next one. A thread of our own started right after backward therefore
//! shares a core with a spinning one: on the 2-core bench machine, two of
//! ours read a probe step's tensors no faster than one did. Handing the
//! work to the same team, through libgomp's `GOMP_parallel` (what
//! `#pragma omp parallel` compiles to, and what libtorch's `parallel_for`
//! calls), puts it on the threads that are already awake, one per core.
//!
//! libgomp is loaded with libtorch (it is one of libtorch_cpu's
//! dependencies), so its entry points are looked up in the running process
//! rather than linked; where they are missing (a libtorch built with
//! another OpenMP, or none) [`run`] says so and the caller uses threads of
//! its own.

use std::ffi::{c_char, c_void};
use std::sync::{Mutex, OnceLock};

/// `void GOMP_parallel(void (*fn)(void *), void *data, unsigned
/// num_threads, unsigned flags)`: runs `fn(data)` on a team of up to
/// `num_threads` threads (the caller is thread 0) and returns when all
/// have finished.
type Parallel = unsafe extern "C" fn(extern "C" fn(*mut c_void), *mut c_void, u32, u32);
/// `omp_get_thread_num` and `omp_get_num_threads`.
type Query = unsafe extern "C" fn() -> i32;

struct Gomp {
    parallel: Parallel,
    thread_num: Query,
    num_threads: Query,
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
extern "C" {
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
    fn dladdr(addr: *const c_void, info: *mut DlInfo) -> i32;
    fn dlopen(file: *const c_char, mode: i32) -> *mut c_void;
}

/// glibc's `Dl_info`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[repr(C)]
struct DlInfo {
    fname: *const c_char,
    fbase: *mut c_void,
    sname: *const c_char,
    saddr: *mut c_void,
}

/// glibc's `RTLD_DEFAULT` (every loaded library), `RTLD_NOW` and
/// `RTLD_NOLOAD` (only a library already loaded).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const RTLD_DEFAULT: *mut c_void = std::ptr::null_mut();
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const RTLD_NOW: i32 = 2;
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const RTLD_NOLOAD: i32 = 4;

/// libgomp's entry points, looked up once: `GOMP_parallel` wherever it is
/// loaded, and the two queries from the same library, so that a second
/// OpenMP runtime in the process (libiomp5 and libomp export the same
/// names) cannot answer for threads that are not its own.
///
/// Only with glibc on Linux, whose `RTLD_*` values these are (macOS's
/// differ, and its libtorch ships another OpenMP); elsewhere, and under
/// `GRADSCOPE_KERNELS=portable`, `None`: the reads run on threads of the
/// probe's own.
fn gomp() -> Option<&'static Gomp> {
    if crate::portable() {
        return None;
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    return None;
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    lookup()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn lookup() -> Option<&'static Gomp> {
    static GOMP: OnceLock<Option<Gomp>> = OnceLock::new();
    GOMP.get_or_init(|| {
        // SAFETY: dlsym, dladdr and dlopen with NUL-terminated names and a
        // handle they return; RTLD_NOLOAD only finds a loaded library
        // (and takes a reference to it, which is never given back: it
        // stays loaded with libtorch anyway).
        unsafe {
            let parallel = dlsym(RTLD_DEFAULT, c"GOMP_parallel".as_ptr());
            if parallel.is_null() {
                return None;
            }
            let mut info = DlInfo {
                fname: std::ptr::null(),
                fbase: std::ptr::null_mut(),
                sname: std::ptr::null(),
                saddr: std::ptr::null_mut(),
            };
            if dladdr(parallel, &mut info) == 0 || info.fname.is_null() {
                return None;
            }
            let library = dlopen(info.fname, RTLD_NOW | RTLD_NOLOAD);
            if library.is_null() {
                return None;
            }
            let thread_num = dlsym(library, c"omp_get_thread_num".as_ptr());
            let num_threads = dlsym(library, c"omp_get_num_threads".as_ptr());
            if thread_num.is_null() || num_threads.is_null() {
                return None;
            }
            // SAFETY: libgomp's exported functions, whose C signatures
            // the types above spell out.
            Some(Gomp {
                parallel: std::mem::transmute::<*mut c_void, Parallel>(parallel),
                thread_num: std::mem::transmute::<*mut c_void, Query>(thread_num),
                num_threads: std::mem::transmute::<*mut c_void, Query>(num_threads),
            })
        }
    })
    .as_ref()
}

/// Whether the reads can run on libtorch's OpenMP team.
pub(crate) fn available() -> bool {
    gomp().is_some()
}

/// What every thread of the team sees.
struct Job<'a, R> {
    parts: usize,
    work: &'a (dyn Fn(usize) -> R + Sync),
    /// Each part's result, or the panic it raised (a panic must not unwind
    /// into C).
    out: Vec<Mutex<Option<std::thread::Result<R>>>>,
    gomp: &'static Gomp,
}

/// One team thread's share: parts `tid`, `tid + team`, ... The team can be
/// smaller than asked for (inside another parallel region it is one
/// thread), so every part is still run, by someone.
extern "C" fn member<R>(data: *mut c_void) {
    // SAFETY: `data` is the `Job` that `run` passed, alive until
    // GOMP_parallel returns there.
    let job = unsafe { &*(data as *const Job<R>) };
    // SAFETY: plain queries of the calling thread's OpenMP state.
    let (tid, team) = unsafe { ((job.gomp.thread_num)(), (job.gomp.num_threads)()) };
    let (tid, team) = (tid.max(0) as usize, team.max(1) as usize);
    for part in (tid..job.parts).step_by(team) {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (job.work)(part)));
        *job.out[part].lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
    }
}

/// Runs `work(part)` for parts `0..parts` on libtorch's OpenMP team and
/// returns the results in part order; `None` where libgomp is not loaded.
/// A panic in `work` is raised again here, on the calling thread.
pub(crate) fn run<R: Send>(parts: usize, work: &(dyn Fn(usize) -> R + Sync)) -> Option<Vec<R>> {
    let gomp = gomp()?;
    let job = Job {
        parts,
        work,
        out: (0..parts).map(|_| Mutex::new(None)).collect(),
        gomp,
    };
    let threads = u32::try_from(parts).unwrap_or(u32::MAX);
    // SAFETY: `member::<R>` matches the callback type, and `job` outlives
    // the call, which returns only when every team thread is done with it.
    unsafe {
        (gomp.parallel)(
            member::<R>,
            &job as *const Job<R> as *mut c_void,
            threads,
            0,
        )
    };
    let results = job.out.into_iter().enumerate().map(|(part, slot)| {
        match slot.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(Ok(r)) => r,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            // The members cover every part between them; should one be
            // missed all the same, it is run here rather than lost.
            None => work(part),
        }
    });
    Some(results.collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// libgomp comes with libtorch, so the team is there; every part runs
    /// once, on more than one thread, and the results come back in part
    /// order.
    #[test]
    fn every_part_runs_once_on_the_team() {
        tch::set_num_threads(2);
        let threads = Mutex::new(std::collections::HashSet::new());
        let work = |part: usize| {
            threads.lock().unwrap().insert(std::thread::current().id());
            part * 10
        };
        let out = run(5, &work).expect("libgomp is loaded with libtorch");
        assert_eq!(out, vec![0, 10, 20, 30, 40]);
        assert!(
            threads.lock().unwrap().len() > 1,
            "run on the team, not the caller alone"
        );
    }

    /// A panic in one part must not unwind into libgomp: it is raised again
    /// on the calling thread, after the team has finished.
    #[test]
    fn a_panic_in_a_part_reaches_the_caller() {
        let work = |part: usize| {
            assert_ne!(part, 1, "part 1 fails");
            part
        };
        let caught = std::panic::catch_unwind(|| run(3, &work));
        let message = caught.expect_err("the panic comes back");
        let text = message
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(text.contains("part 1 fails"), "{text}");
    }
}
