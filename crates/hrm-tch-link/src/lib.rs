//! hrm-tch-link: what the `build.rs` of each tch crate (`hrm-model`, `hrm-train`, `hrm-cli`) prints to cargo.
//!
//! A crate's `build.rs` is `fn main() { hrm_tch_link::emit() }`, with `torch-sys` as a direct dependency (so cargo
//! sets `DEP_TCH_LIBTORCH_LIB`) and this crate as a build-dependency; each crate thus builds on its own, also as a
//! git dependency of another workspace. Link arguments apply only to the crate's own binaries, tests and benches,
//! which is why every tch crate with such targets has the script.

use std::path::{Path, PathBuf};

/// Prints the cargo directives: rerun conditions, the rpath, and the eager `libtorch_cuda` link when present.
pub fn emit() {
    // `build.rs` exists at the root of every crate that calls this, so cargo reruns only when it changes.
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Some(lib) = std::env::var_os("DEP_TCH_LIBTORCH_LIB") else {
        println!(
            "cargo:warning=DEP_TCH_LIBTORCH_LIB is not set: add torch-sys as a direct dependency"
        );
        return;
    };
    for arg in link_args(Path::new(&lib)) {
        println!("cargo:rustc-link-arg={arg}");
    }
}

/// The linker arguments for libtorch's `lib/` folder `lib`.
///
/// The rpath is the canonical folder (symlinks such as the clone's `.libtorch` resolved), so a binary copied or
/// installed elsewhere still finds libtorch without `LD_LIBRARY_PATH`. `libtorch_cuda.so`, when present, is
/// linked with `--no-as-needed`: rustc passes `--as-needed`, and without the library `tch::Cuda::is_available()`
/// is false on a GPU machine.
pub fn link_args(lib: &Path) -> Vec<String> {
    let lib: PathBuf = lib.canonicalize().unwrap_or_else(|_| lib.to_path_buf());
    let mut args = vec![format!("-Wl,-rpath,{}", lib.display())];
    if lib.join("libtorch_cuda.so").exists() {
        args.extend(["-Wl,--no-as-needed", "-ltorch_cuda", "-Wl,--as-needed"].map(String::from));
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpath_is_the_resolved_folder_and_cuda_is_linked_only_when_present() {
        let base = std::env::temp_dir().join(format!("hrm-tch-link-test-{}", std::process::id()));
        let real = base.join("site-packages").join("torch").join("lib");
        std::fs::create_dir_all(&real).unwrap();
        let link = base.join(".libtorch");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(base.join("site-packages"), &link).unwrap();
        let via_link = link.join("torch").join("lib");
        let canonical = real.canonicalize().unwrap();

        let args = link_args(&via_link);
        assert_eq!(args, vec![format!("-Wl,-rpath,{}", canonical.display())]);

        std::fs::write(real.join("libtorch_cuda.so"), b"").unwrap();
        let args = link_args(&via_link);
        assert_eq!(args.len(), 4);
        assert_eq!(args[2], "-ltorch_cuda");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
