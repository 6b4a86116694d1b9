//! The `hrm` command-line tool: build-data, train, predict, solve, import, export, eval, report, bench, info.

/// `println!` that returns the write error instead of panicking, so `hrm eval --json | head` ends quietly
/// when the reader closes the pipe (see `main`).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}

mod bench;
mod build_data;
mod eval;
mod import;
mod info;
mod launch;
mod predict;
mod solve;
mod threads;
mod train;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// HRM (Hierarchical Reasoning Model) in Rust on libtorch.
#[derive(Debug, Parser)]
#[command(name = "hrm", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build a dataset (arc1, arc2, sudoku, maze) in HRM's on-disk layout.
    BuildData(build_data::Args),
    /// Train a recipe into a run folder (or continue one with --resume).
    Train(train::Args),
    /// Write a predictions folder from a run's checkpoint.
    Predict(predict::Args),
    /// Answer new ARC tasks with a trained run (fit fresh puzzle rows, vote) and write submission.json.
    Solve(solve::Args),
    /// Make a run folder from an official PyTorch run folder (step_<N> or checkpoint beside all_config.yaml).
    Import(import::ImportArgs),
    /// Write a run's checkpoint as an official PyTorch run folder (step_<N> and all_config.yaml).
    Export(import::ExportArgs),
    /// Score a predictions folder against a dataset (any implementation's predictions in the .npy form).
    Eval(eval::EvalArgs),
    /// Score predictions and write report.md, report.html and training curves.
    Report(eval::ReportArgs),
    /// Benchmarks: training-step speed and memory, sampler throughput.
    Bench(bench::Args),
    /// Print the libtorch build, CUDA availability and the device that would be used.
    Info(info::Args),
}

/// SIGINT and SIGTERM request a graceful stop ([`hrm_train::stop`]: `hrm train` finishes its step and writes a
/// checkpoint, `hrm predict` discards its unfinished output); a second signal ends the process at once (exit 130).
fn install_stop_handler() -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let flag = hrm_train::stop::flag();
    for sig in [SIGINT, SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 130, std::sync::Arc::clone(&flag))?;
        signal_hook::flag::register(sig, std::sync::Arc::clone(&flag))?;
    }
    Ok(())
}

/// Library events (`tracing`) to stderr, filtered by `RUST_LOG` (default `info`: warnings and errors, in the
/// plain form of the tool's own lines; `RUST_LOG=debug` adds checkpoints and evaluations).
fn install_subscriber() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .with_target(false)
        .try_init();
}

fn main() -> std::process::ExitCode {
    install_subscriber();
    let cli = Cli::parse();
    if matches!(
        cli.command,
        Command::Train(_) | Command::Predict(_) | Command::Solve(_)
    ) {
        if let Err(e) = install_stop_handler() {
            eprintln!("{}", error_report(&e));
            return std::process::ExitCode::FAILURE;
        }
    }
    let result = match cli.command {
        Command::BuildData(a) => build_data::run(a),
        Command::Train(a) => train::run(a),
        Command::Predict(a) => predict::run(a),
        Command::Solve(a) => solve::run(a),
        Command::Import(a) => import::run_import(a),
        Command::Export(a) => import::run_export(a),
        Command::Eval(a) => eval::run_eval(a),
        Command::Report(a) => eval::run_report(a),
        Command::Info(a) => info::run(a),
        Command::Bench(a) => bench::run(a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // A closed standard output (`hrm eval --json | head`) is the reader's choice, not an error.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}", error_report(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// `Error: <message>` and, under `Caused by:`, each cause of the chain that the lines before it do not already
/// say (library errors often quote their source, and the same words twice only make the reader look for a
/// difference).
fn error_report(e: &anyhow::Error) -> String {
    let mut out = format!("Error: {e}");
    let mut said = vec![e.to_string()];
    let mut header = false;
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if text.trim().is_empty() || said.iter().any(|s| s.contains(text.trim())) {
            continue;
        }
        if !header {
            out.push_str("\n\nCaused by:");
            header = true;
        }
        for line in text.lines() {
            out.push_str(&format!("\n    {line}"));
        }
        said.push(text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_quoted_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let e = anyhow::Error::new(io)
            .context("file r/recipe.toml: No such file or directory")
            .context("reading the run");
        let text = error_report(&e);
        assert_eq!(
            text.matches("No such file or directory").count(),
            1,
            "{text}"
        );
        assert!(
            text.starts_with("Error: reading the run\n\nCaused by:\n    file r/recipe.toml"),
            "{text}"
        );
        let plain = error_report(&anyhow::anyhow!("one line"));
        assert_eq!(plain, "Error: one line");
    }
}
