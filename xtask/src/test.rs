//! `cargo xtask test`: the gate CI runs (fmt, the architecture and unused-dependency checks, clippy, tests, e2e,
//! and in CI the build of the GPU bundle).

use anyhow::{bail, Context, Result};
use std::process::Command;

use crate::cargo;

fn step(name: &str, cmd: &mut Command) -> Result<()> {
    eprintln!(
        "
==> {name}"
    );
    crate::run_step(cmd, name)
}

/// `cargo xtask test [extra args for cargo test]`.
pub fn run(extra: &[String]) -> Result<()> {
    crate::setup::run(true)?;
    step(
        "cargo fmt --check",
        cargo().args(["fmt", "--all", "--", "--check"]),
    )?;
    eprintln!("\n==> architecture rules");
    crate::arch::check(crate::arch::Scope::All)?;
    crate::tidy::check(&crate::repo_root())?;
    eprintln!("\n==> unused dependencies");
    crate::deps::check_unused()?;
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
    if std::env::var_os("CI").is_some() {
        ci_bundle()?;
    }
    eprintln!("\nxtask test: all gates passed");
    println!(
        "tests: {} passed, {} failed, {} skipped",
        counts.0, counts.1, counts.2
    );
    Ok(())
}

/// In CI (`CI` set): the GPU bundle builds (not runs) into `target/gpu-bundle` and stays under its size limit.
fn ci_bundle() -> Result<()> {
    let started = std::time::Instant::now();
    let out = crate::repo_root().join("target").join("gpu-bundle");
    let dir = crate::bundle::run(&crate::bundle::Options { out: Some(out) })?;
    let bytes = crate::bundle::folder_bytes(&dir)?;
    if bytes >= crate::bundle::MAX_BYTES {
        bail!("the GPU bundle weighs {bytes} bytes, over its limit");
    }
    eprintln!(
        "gpu bundle built in {:.0} s ({:.1} MiB; not run: CI has no GPU)",
        started.elapsed().as_secs_f64(),
        bytes as f64 / (1024.0 * 1024.0)
    );
    Ok(())
}

/// Runs `cargo test --workspace`, echoing its output, and sums its `test result:` lines into
/// (passed, failed, ignored).
fn cargo_test(extra: &[String]) -> Result<(u64, u64, u64)> {
    use std::io::{BufRead, BufReader};
    eprintln!("\n==> cargo test");
    let mut cmd = cargo();
    // `hrm` chooses its CPU threads from the cores other processes leave free, so tests that compare two runs
    // would depend on the load of the tests beside them: pin every process to all cores (libtorch's default),
    // unless the caller chose.
    if std::env::var_os("OMP_NUM_THREADS").is_none() {
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
        cmd.env("OMP_NUM_THREADS", cores.to_string());
    }
    let mut child = cmd
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

/// The end-to-end smoke runs: the `tiny` (HRM) and `trm-tiny` (TRM with EMA) recipes through build, train (with checkpoints), predict, evaluate and
/// report, using the debug `hrm` binary the tests just built.
pub fn e2e_smoke() -> Result<()> {
    for recipe in E2E_RECIPES {
        e2e_run(recipe)?;
    }
    Ok(())
}

/// The end-to-end recipes: the HRM smoke run and its TRM twin (with EMA).
const E2E_RECIPES: [&str; 2] = ["tiny", "trm-tiny"];

/// Builds, trains, predicts and reports one small recipe through `reproduce`, checking every output exists.
fn e2e_run(recipe: &str) -> Result<()> {
    eprintln!("\n==> end-to-end smoke run (recipe `{recipe}`)");
    let out = crate::repo_root()
        .join("target")
        .join(format!("e2e-{recipe}"));
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("removing {}", out.display()))?;
    }
    let options = crate::reproduce::Options {
        recipe: Some(recipe.into()),
        debug_build: true,
        no_build: true,
        device: crate::reproduce::Device::Cpu,
        out: Some(out.clone()),
        ..Default::default()
    };
    crate::reproduce::reproduce(hrm_grid::Task::Arc1, &options)?;
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
