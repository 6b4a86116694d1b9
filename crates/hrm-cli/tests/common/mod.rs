//! Helpers shared by the process-level tests of `hrm train`: the synthetic dataset and recipe, running `hrm`,
//! signals and the metrics log.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `hrm` binary of this build.
pub const HRM: &str = env!("CARGO_BIN_EXE_hrm");

/// Writes the synthetic dataset and a recipe file of 120 nominal steps (40 epochs, evaluation every 10).
pub fn setup(tmp: &Path) -> (PathBuf, PathBuf) {
    let data = tmp.join("data");
    hrm_train::synthetic::write_dataset(&data, 8, 1).expect("synthetic dataset");
    let recipe = tmp.join("tiny.toml");
    let text = hrm_train::synthetic::TINY_RECIPE
        .replace("epochs = 8", "epochs = 40")
        .replace("eval_interval = 4", "eval_interval = 10");
    std::fs::write(&recipe, text).unwrap();
    (data, recipe)
}

/// `hrm <args>` with no default dataset folder and no inherited launcher variables.
pub fn hrm_command(args: &[&str]) -> Command {
    let mut c = Command::new(HRM);
    c.args(args)
        .env("HRM_DATASETS_DIR", "/nonexistent-hrm-datasets")
        .env_remove("WORLD_SIZE")
        .env_remove("SLURM_NTASKS");
    c
}

/// Runs `hrm <args>` and returns its output.
pub fn hrm(args: &[&str]) -> Output {
    hrm_command(args).output().expect("running hrm")
}

/// Runs `hrm <args>` and asserts that it succeeds, showing its stderr when not.
pub fn hrm_ok(args: &[&str]) -> Output {
    let out = hrm(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `train RECIPE --dataset DATA --run RUN --device cpu --quiet`.
pub fn train_args<'a>(recipe: &'a str, data: &'a str, run: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        recipe,
        "--dataset",
        data,
        "--run",
        run,
        "--device",
        "cpu",
        "--quiet",
    ]
}

/// The lines of a run's `metrics.jsonl`.
pub fn lines(run: &Path) -> Vec<String> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .expect("metrics.jsonl")
        .lines()
        .map(str::to_string)
        .collect()
}

/// Sends `signal` (`INT`, `TERM`) to a process with the `kill` command.
pub fn send_signal(pid: u32, signal: &str) {
    let ok = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .expect("running kill")
        .success();
    assert!(ok, "kill -{signal} {pid}");
}
