//! Shared build script for every package that links libtorch (data, models,
//! probe, train, cli): each names it with `build = "../build-libtorch.rs"`.
//!
//! Why it exists (measured on the project's Linux machines):
//! - without an rpath to libtorch's folder, test binaries and `gradscope`
//!   fail to start unless the user sets `LD_LIBRARY_PATH`;
//! - without `--no-as-needed -ltorch`, the linker drops libtorch_cuda (no
//!   symbol of it is referenced directly) and CUDA is silently unavailable
//!   even on a GPU machine.
//!
//! It also exports the libtorch version it links against, read from the
//! wheel's `torch/version.py`, so `run.json` can record it truthfully.
//!
//! The probe's own build script includes this file as a module and calls
//! [`link`], then compiles its C++ against the headers beside `lib`.

fn main() {
    link();
}

/// Prints the link settings and returns libtorch's `lib` folder (`None`
/// where torch-sys did not say it).
pub fn link() -> Option<std::path::PathBuf> {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:rustc-env=GRADSCOPE_LIBTORCH_VERSION=unknown");
        return None;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    // GNU ld and lld (Linux) drop a library no symbol is taken from unless
    // told not to; Apple's ld64 keeps every library it is given and has no
    // such flag (it would refuse to link), so macOS gets the -ltorch only.
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os != "macos" && target_os != "ios" {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
    }
    println!("cargo:rustc-link-arg=-ltorch");

    let version_py = std::path::Path::new(&lib).join("..").join("version.py");
    let version = std::fs::read_to_string(&version_py)
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("__version__ = "))
                .map(|v| v.trim().trim_matches(|c| c == '\'' || c == '"').to_string())
        })
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=GRADSCOPE_LIBTORCH_VERSION={version}");
    Some(lib.into())
}
