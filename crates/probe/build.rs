//! gradscope-probe's build script: libtorch's link settings (shared with
//! the other crates, `../build-libtorch.rs`) and the gradient hook's C++
//! (`csrc/grad_hook.cpp`), compiled against the headers of the libtorch
//! that torch-sys links, with the same C++ settings torch-sys compiles its
//! own wrapper with.

#[allow(dead_code)]
#[path = "../build-libtorch.rs"]
mod libtorch;

fn main() {
    let Some(lib) = libtorch::link() else {
        panic!(
            "gradscope-probe: torch-sys did not say where libtorch is (DEP_TCH_LIBTORCH_LIB); \
             build through the Makefile, which sets LIBTORCH_USE_PYTORCH=1 and its venv"
        );
    };
    let include = lib.join("..").join("include");
    // libtorch's wheels since 2.7 use the C++11 string ABI; torch-sys reads
    // the same override.
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".to_string());
    println!("cargo:rerun-if-changed=csrc/grad_hook.cpp");
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .include(&include)
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        // libtorch's headers warn about themselves; ours are few.
        .flag_if_supported("-Wno-unused-parameter")
        .file("csrc/grad_hook.cpp")
        .compile("gradscope_grad_hook");
}
