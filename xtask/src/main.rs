//! `cargo xtask`: set-up, the test gate and the end-to-end pipelines of hrm-rs.

mod arch;
mod bundle;
mod deps;
mod fetch;
mod modules;
mod reproduce;
mod setup;
mod test;
mod tidy;

use anyhow::Result;
use clap::{Parser, Subcommand};
use hrm_grid::Task;
use std::path::PathBuf;

/// Set-up, the test gate and the end-to-end pipelines of hrm-rs (`cargo xtask <verb>`).
#[derive(Debug, Parser)]
#[command(
    name = "xtask",
    bin_name = "cargo xtask",
    arg_required_else_help = true
)]
struct Cli {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Debug, Subcommand)]
enum Verb {
    /// Install torch from PyPI into a cached venv and link it as `.libtorch`.
    Setup {
        /// Skip installing Debian's chromium (needed only by the report screenshot test).
        #[arg(long)]
        no_chromium: bool,
    },
    /// The full gate: setup, fmt check, architecture and dependency checks, clippy -D warnings, all tests, e2e.
    Test {
        /// Extra arguments passed on to `cargo test --workspace`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        extra: Vec<String>,
    },
    /// Assert that the tensor-free crates do not depend on tch or torch-sys.
    CheckTensorFree,
    /// Check every dependency rule among the hrm crates (layers, tensor-free, hrm-testkit as dev-dependency only).
    CheckArch,
    /// Fail on a declared dependency that no source file of its crate uses (`cargo machete`).
    CheckDeps,
    /// The end-to-end smoke run (recipe `tiny`: build, train, predict, evaluate, report).
    E2e,
    /// Build, here, a folder (< 60 MiB) that checks hrm-rs on a CUDA machine: `bash <folder>/run.sh` there.
    GpuBundle(bundle::Options),
    /// ARC-AGI-1: set up, find data, build, train, predict, evaluate, report.
    ReproduceArc1(reproduce::Options),
    /// ARC-AGI-2, as reproduce-arc1.
    ReproduceArc2(reproduce::Options),
    /// Sudoku-Extreme 1k, as reproduce-arc1.
    ReproduceSudoku(reproduce::Options),
    /// Maze-Hard 30x30, as reproduce-arc1.
    ReproduceMaze(reproduce::Options),
}

fn main() -> Result<()> {
    match Cli::parse().verb {
        Verb::Setup { no_chromium } => setup::run(!no_chromium).map(|_| ()),
        Verb::Test { extra } => test::run(&test_args(std::env::args().skip(1), extra)),
        Verb::CheckTensorFree => arch::check(arch::Scope::TensorFree),
        Verb::CheckArch => arch::check(arch::Scope::All),
        Verb::CheckDeps => deps::check_unused(),
        Verb::E2e => test::e2e_smoke(),
        Verb::GpuBundle(o) => bundle::run(&o).map(|_| ()),
        Verb::ReproduceArc1(o) => reproduce::reproduce(Task::Arc1, &o),
        Verb::ReproduceArc2(o) => reproduce::reproduce(Task::Arc2, &o),
        Verb::ReproduceSudoku(o) => reproduce::reproduce(Task::Sudoku, &o),
        Verb::ReproduceMaze(o) => reproduce::reproduce(Task::Maze, &o),
    }
}

/// The arguments for `cargo test`, verbatim: clap drops a `--` that comes first (`cargo xtask test -- --nocapture`),
/// which cargo test needs to hand `--nocapture` to the test binaries.
fn test_args(argv: impl Iterator<Item = String>, mut extra: Vec<String>) -> Vec<String> {
    let mut argv = argv.skip_while(|a| a != "test").skip(1);
    if argv.next().as_deref() == Some("--") && extra.first().map(String::as_str) != Some("--") {
        extra.insert(0, "--".into());
    }
    extra
}

/// The workspace root (the parent of this crate's folder).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// A `cargo` command (the one running xtask) in the workspace root.
pub fn cargo() -> std::process::Command {
    let mut c =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(repo_root());
    c
}

/// Runs `cmd` to completion, failing with `what` and the exit status unless it succeeds (the one command runner
/// of the verbs; the caller prints what it announces).
pub fn run_step(cmd: &mut std::process::Command, what: &str) -> Result<()> {
    let status = cmd
        .status()
        .map_err(|e| anyhow::anyhow!("could not start {what}: {e}"))?;
    if !status.success() {
        anyhow::bail!("{what} failed ({status})");
    }
    Ok(())
}

/// Runs `cmd` and parses its standard output as JSON (`what` names it in errors).
pub fn json_output(cmd: &mut std::process::Command, what: &str) -> Result<serde_json::Value> {
    use anyhow::Context;
    let out = cmd
        .output()
        .with_context(|| format!("could not start {what}"))?;
    if !out.status.success() {
        anyhow::bail!("{what} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    serde_json::from_slice(&out.stdout).with_context(|| format!("parsing the output of {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_verb_and_flag_parses() {
        let parse = |line: &str| Cli::try_parse_from(line.split_whitespace()).map(|c| c.verb);
        assert!(matches!(
            parse("x setup --no-chromium").unwrap(),
            Verb::Setup { no_chromium: true }
        ));
        let Verb::Test { extra } = parse("x test -p hrm-grid -- --nocapture").unwrap() else {
            panic!("test verb")
        };
        assert_eq!(extra, ["-p", "hrm-grid", "--", "--nocapture"]);
        let line = "x test -- --nocapture";
        let Verb::Test { extra } = parse(line).unwrap() else {
            panic!("test verb")
        };
        let argv = line.split_whitespace().map(String::from);
        assert_eq!(test_args(argv, extra), ["--", "--nocapture"]);
        for v in ["check-tensor-free", "check-arch", "check-deps", "e2e"] {
            parse(&format!("x {v}")).unwrap();
        }
        let line =
            "x reproduce-sudoku --dry-run --recipe tiny --set a.b=1 --set c.d=2 --device cpu \
                    --out /o --data-dir /d --debug-build --no-build";
        let Verb::ReproduceSudoku(o) = parse(line).unwrap() else {
            panic!("reproduce verb")
        };
        assert!(o.dry_run && o.debug_build && o.no_build);
        assert_eq!(o.sets, ["a.b=1", "c.d=2"]);
        assert_eq!(o.data, Some(PathBuf::from("/d")));
        let Verb::GpuBundle(o) = parse("x gpu-bundle --out /tmp/b").unwrap() else {
            panic!("gpu-bundle verb")
        };
        assert_eq!(o.out, Some(PathBuf::from("/tmp/b")));
        assert!(matches!(
            parse("x gpu-bundle").unwrap(),
            Verb::GpuBundle(bundle::Options { out: None })
        ));
        assert!(parse("x reproduce-maze --device tpu").is_err());
        assert!(parse("x reproduce-arc3").is_err());
    }
}
