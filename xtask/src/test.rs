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
    let counts = cargo_test(extra)?;
    e2e_smoke()?;
    eprintln!("\nxtask test: all gates passed");
    println!(
        "tests: {} passed, {} failed, {} skipped",
        counts.0, counts.1, counts.2
    );
    Ok(())
}

/// Runs `cargo test --workspace`, echoing its output, and sums its `test result:` lines into
/// (passed, failed, ignored).
fn cargo_test(extra: &[String]) -> Result<(u64, u64, u64)> {
    use std::io::{BufRead, BufReader};
    eprintln!("\n==> cargo test");
    let mut child = cargo()
        .args(["test", "--workspace"])
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("could not start cargo test")?;
    let mut counts = (0u64, 0u64, 0u64);
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let line = line.context("reading cargo test output")?;
            println!("{line}");
            if let Some(rest) = line.trim().strip_prefix("test result: ") {
                for part in rest.split(';') {
                    let mut words = part.split_whitespace().rev();
                    let (Some(label), Some(n)) = (words.next(), words.next()) else {
                        continue;
                    };
                    let n: u64 = n.parse().unwrap_or(0);
                    match label {
                        "passed" => counts.0 += n,
                        "failed" => counts.1 += n,
                        "ignored" => counts.2 += n,
                        _ => {}
                    }
                }
            }
        }
    }
    let status = child.wait().context("waiting for cargo test")?;
    if !status.success() {
        bail!(
            "cargo test failed ({status}): {} passed, {} failed",
            counts.0,
            counts.1
        );
    }
    Ok(counts)
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
        "--no-build",
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
