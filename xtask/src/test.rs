//! `cargo xtask test`: the gate CI runs (fmt, clippy, tests, the tensor-free dependency check).

use anyhow::{bail, Context, Result};
use std::process::Command;

/// Crates that must build without libtorch.
pub const TENSOR_FREE: &[&str] = &[
    "hrm-grid",
    "hrm-augment",
    "hrm-data",
    "hrm-eval",
    "hrm-recipe",
    "hrm-testkit",
    "xtask",
];

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(crate::repo_root());
    c
}

fn step(name: &str, cmd: &mut Command) -> Result<()> {
    eprintln!("\n==> {name}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start {name}"))?;
    if !status.success() {
        bail!("{name} failed ({status})");
    }
    Ok(())
}

/// Asserts that no tensor-free crate pulls in tch or torch-sys (normal and build dependencies).
pub fn check_tensor_free() -> Result<()> {
    for krate in TENSOR_FREE {
        let out = cargo()
            .args([
                "tree",
                "-p",
                krate,
                "-e",
                "normal,build",
                "--prefix",
                "none",
                "--format",
                "{p}",
            ])
            .output()
            .with_context(|| format!("cargo tree -p {krate}"))?;
        if !out.status.success() {
            bail!(
                "cargo tree -p {krate} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let tree = String::from_utf8_lossy(&out.stdout);
        if let Some(line) = tree
            .lines()
            .find(|l| l.starts_with("tch ") || l.starts_with("torch-sys "))
        {
            bail!("{krate} must not depend on libtorch, but its tree contains `{line}`");
        }
    }
    eprintln!("tensor-free crates ok: {}", TENSOR_FREE.join(", "));
    Ok(())
}

/// `cargo xtask test [extra args for cargo test]`.
pub fn run(extra: &[String]) -> Result<()> {
    crate::setup::run(&[])?;
    step(
        "cargo fmt --check",
        cargo().args(["fmt", "--all", "--", "--check"]),
    )?;
    step("tensor-free check", &mut Command::new("true")).and_then(|_| check_tensor_free())?;
    step(
        "cargo clippy -D warnings",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    step(
        "cargo test",
        cargo().args(["test", "--workspace"]).args(extra),
    )?;
    e2e_smoke()?;
    eprintln!("\nxtask test: all gates passed");
    Ok(())
}

/// The end-to-end smoke run: the `tiny` recipe through build, train (with checkpoints), predict, evaluate and
/// report, using the debug `hrm` binary the tests just built.
pub fn e2e_smoke() -> Result<()> {
    eprintln!("\n==> end-to-end smoke run (recipe `tiny`)");
    let out = crate::repo_root().join("target").join("e2e-tiny");
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("removing {}", out.display()))?;
    }
    let args: Vec<String> = [
        "--recipe",
        "tiny",
        "--debug-build",
        "--device",
        "cpu",
        "--out",
        &out.to_string_lossy(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    crate::reproduce::reproduce(crate::reproduce::Task::Arc1, &args)?;
    for f in [
        "run/metrics.jsonl",
        "run/checkpoints/latest",
        "predictions/meta.json",
        "report/report.md",
        "report/report.html",
        "report/eval.json",
    ] {
        if !out.join(f).exists() {
            bail!("the end-to-end run did not write {}", out.join(f).display());
        }
    }
    eprintln!("end-to-end smoke run ok: {}", out.display());
    Ok(())
}
