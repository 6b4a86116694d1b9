//! The unused-dependency check of `cargo xtask test`: `cargo machete`, installed from crates.io when missing.
//!
//! machete looks in each crate's sources (src, tests, benches, build.rs) for every dependency its `Cargo.toml`
//! declares and prints `<crate> -- <Cargo.toml>:` followed by the unused names. A dependency kept for a reason
//! the sources do not show (torch-sys, declared so that build.rs gets `DEP_TCH_LIBTORCH_LIB`) is listed under
//! `[package.metadata.cargo-machete] ignored` in that crate's `Cargo.toml`.

use anyhow::{bail, Context, Result};

/// The machete release the check installs (`cargo install --locked`).
const MACHETE_VERSION: &str = "0.9.2";

/// `cargo machete`; machete takes a set `CARGO_PKG_NAME` (which `cargo run` sets for xtask) as a sign that it
/// was started directly, not by cargo, and would then read `machete` as a folder to scan.
fn machete() -> std::process::Command {
    let mut c = crate::cargo();
    c.arg("machete").env_remove("CARGO_PKG_NAME");
    c
}

fn machete_installed() -> bool {
    machete()
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Installs cargo-machete when `cargo machete` is not available.
fn ensure_machete() -> Result<()> {
    if machete_installed() {
        return Ok(());
    }
    eprintln!("deps: installing cargo-machete {MACHETE_VERSION} from crates.io (once per machine)");
    let status = crate::cargo()
        .args([
            "install",
            "--locked",
            "cargo-machete",
            "--version",
            MACHETE_VERSION,
        ])
        .status()
        .context("could not start cargo install")?;
    if !status.success() {
        bail!("`cargo install cargo-machete` failed ({status}); install it by hand or check the network");
    }
    Ok(())
}

/// Fails, naming each crate and its unused dependencies, when a declared dependency is used by no source file.
pub fn check_unused() -> Result<()> {
    ensure_machete()?;
    let out = machete()
        .arg("--skip-target-dir")
        .output()
        .context("could not start cargo machete")?;
    let report = String::from_utf8_lossy(&out.stdout);
    if out.status.code() != Some(0) && out.status.code() != Some(1) {
        bail!(
            "cargo machete failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if !out.status.success() {
        bail!(
            "declared but unused dependencies (remove them, or list a dependency used in a way the sources do not \
             show under [package.metadata.cargo-machete] ignored):\n{report}"
        );
    }
    eprintln!("unused dependencies: none");
    Ok(())
}
