//! gradscope-probe's build script: libtorch's link settings (shared with
//! the other crates, `../build-libtorch.rs`) and the gradient hook's C++
//! (`csrc/grad_hook.cpp`), compiled against the headers of the libtorch
//! that torch-sys links, with the C++ settings torch-sys compiles its own
//! wrapper with (the same string ABI above all: a mismatch would pass
//! `std::string`s between two layouts).

#[allow(dead_code)]
#[path = "../build-libtorch.rs"]
mod libtorch;

use std::path::PathBuf;

fn main() {
    let Some(lib) = libtorch::link() else {
        panic!(
            "gradscope-probe: torch-sys did not say where libtorch is (DEP_TCH_LIBTORCH_LIB); \
             build through the Makefile, which sets LIBTORCH_USE_PYTORCH=1 and its venv"
        );
    };
    let (include, abi) = headers_and_abi(&lib);
    println!("cargo:rerun-if-changed=csrc/grad_hook.cpp");
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .include(&include)
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .file("csrc/grad_hook.cpp")
        .compile("gradscope_grad_hook");
}

/// libtorch's include folder and its C++ string ABI (`0` or `1`), found as
/// torch-sys finds them: from the Python wheel's torch with
/// `LIBTORCH_USE_PYTORCH` (the Makefile's way), else from
/// `LIBTORCH_INCLUDE` (or the folder beside `lib`) and `LIBTORCH_CXX11_ABI`
/// (default 1).
fn headers_and_abi(lib: &std::path::Path) -> (PathBuf, String) {
    let beside_lib = lib.join("..").join("include");
    for var in [
        "LIBTORCH_USE_PYTORCH",
        "LIBTORCH_INCLUDE",
        "LIBTORCH_CXX11_ABI",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    if std::env::var_os("LIBTORCH_USE_PYTORCH").is_some() {
        // torch-sys's choice of interpreter.
        let python = if std::env::var_os("VIRTUAL_ENV").is_some() {
            "python"
        } else {
            "python3"
        };
        let out = std::process::Command::new(python)
            .args([
                "-c",
                "import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))",
            ])
            .output()
            .unwrap_or_else(|e| panic!("gradscope-probe: running {python}: {e}"));
        let abi = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if abi != "0" && abi != "1" {
            panic!(
                "gradscope-probe: {python} did not tell torch's C++ ABI (stdout {abi:?}, stderr {:?})",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        return (beside_lib, abi);
    }
    let include = std::env::var_os("LIBTORCH_INCLUDE")
        .map(|p| PathBuf::from(p).join("include"))
        .unwrap_or(beside_lib);
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".to_string());
    (include, abi)
}
