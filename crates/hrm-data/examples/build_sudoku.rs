//! Times the Sudoku substitute build: `cargo run --release -p hrm-data --example build_sudoku -- <data> <out>`.

use hrm_data::sudoku::{build_sudoku, SudokuBuildConfig};
use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        return Err("usage: build_sudoku <data dir> <out dir>".into());
    }
    let config = SudokuBuildConfig::extreme_1k(&PathBuf::from(&args[0]));
    let t0 = Instant::now();
    let stats = build_sudoku(&config, &PathBuf::from(&args[1]))?;
    println!("{stats:?}");
    println!("{:.1} s", t0.elapsed().as_secs_f64());
    Ok(())
}
