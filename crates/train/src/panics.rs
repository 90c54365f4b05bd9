//! A libtorch error inside one run, caught: tch panics on libtorch errors
//! (out of memory while a network is built or trained), and a sweep must
//! report that run as failed, once, naming it, and go on with the others.

thread_local! {
    /// How many [`catch_panic`] calls are running on this thread.
    static CATCHING: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Runs `f`; a panic in it (tch panics on libtorch errors: out of memory
/// while a network is built or trained) comes back as its one-line reason
/// ([`panic_reason`]). While `f` runs, [`panic_is_caught`] is true on this
/// thread, so a panic hook can stay quiet: the caller reports the failure
/// itself, once, naming the file and the run.
pub fn catch_panic<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    CATCHING.with(|c| c.set(c.get() + 1));
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(c.get() - 1));
    caught.map_err(|payload| panic_reason(payload.as_ref()))
}

/// Whether a panic on this thread now would be caught by [`catch_panic`].
pub fn panic_is_caught() -> bool {
    CATCHING.with(|c| c.get() > 0)
}

/// What a caught panic says, in one line: for a libtorch error, its
/// message without the C++ frame list that follows it (`libtorch:
/// DefaultCPUAllocator: not enough memory: you tried to allocate …`).
pub fn panic_reason(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("a panic without a message");
    // tch's unwrap: `...: Torch("MESSAGE\nException raised from ...")`,
    // the newlines escaped by Debug.
    if let Some(start) = text.find("Torch(\"") {
        let inner = &text[start + 7..];
        let end = [inner.find("\\n"), inner.find('\n'), inner.rfind("\")")]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(inner.len());
        let msg = inner[..end].trim();
        // libtorch prefixes `[enforce fail at FILE:LINE] data. `.
        let msg = match msg.find("] ") {
            Some(i) if msg.starts_with('[') => msg[i + 2..].trim_start_matches("data. "),
            _ => msg,
        };
        return format!("libtorch: {msg}");
    }
    text.lines().next().unwrap_or(text).to_owned()
}
