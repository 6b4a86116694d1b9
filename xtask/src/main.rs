//! `cargo xtask`: set-up, the test gate and the end-to-end pipelines of hrm-rs.

mod fetch;
mod reproduce;
mod setup;
mod test;

use anyhow::{bail, Result};
use std::path::PathBuf;

const USAGE: &str = "\
usage: cargo xtask <verb> [args]

verbs:
  setup                 install torch==2.11.0 (PyPI) into a cached venv and link it as .libtorch
  test                  the full gate: setup, fmt check, clippy -D warnings, all tests, tensor-free check
  check-tensor-free     assert that the tensor-free crates do not depend on tch
  e2e                   the end-to-end smoke run (recipe `tiny`: build, train, predict, evaluate, report)
  reproduce-arc1        set up, find data, build, train, predict, evaluate, report (also -arc2, -sudoku, -maze)
                        options: --data DIR  --out DIR  --recipe NAME  --set k=v  --device cpu|cuda|auto
                                 --dry-run (print the plan)  --debug-build  --no-build
";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(verb) = args.first() else {
        print!("{USAGE}");
        return Ok(());
    };
    let rest = &args[1..];
    match verb.as_str() {
        "setup" => setup::run(rest).map(|_| ()),
        "test" => test::run(rest),
        "check-tensor-free" => test::check_tensor_free(),
        "e2e" => test::e2e_smoke(),
        "reproduce-arc1" => reproduce::reproduce(reproduce::Task::Arc1, rest),
        "reproduce-arc2" => reproduce::reproduce(reproduce::Task::Arc2, rest),
        "reproduce-sudoku" => reproduce::reproduce(reproduce::Task::Sudoku, rest),
        "reproduce-maze" => reproduce::reproduce(reproduce::Task::Maze, rest),
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown verb `{other}`\n\n{USAGE}"),
    }
}

/// The workspace root (the parent of this crate's folder).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}
