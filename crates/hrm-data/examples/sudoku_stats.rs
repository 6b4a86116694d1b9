//! Prints solver-effort quantiles per tdoku file: `cargo run --release -p hrm-data --example sudoku_stats -- <data>`.

use hrm_data::sudoku::{read_puzzle_file, solve_all};
use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: sudoku_stats <data>")?,
    );
    let dir = data.join("sudoku-sources");
    let mut names: Vec<String> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("puzzles"))
        .collect();
    names.sort();
    for name in names {
        let puzzles = read_puzzle_file(&dir.join(&name))?;
        let t0 = Instant::now();
        let res = solve_all(&puzzles, 0);
        let secs = t0.elapsed().as_secs_f64();
        let mut g: Vec<u64> = res
            .iter()
            .filter(|r| r.solutions == 1)
            .map(|r| r.guesses)
            .collect();
        g.sort_unstable();
        let q = |f: f64| {
            g.get(((g.len() as f64 - 1.0) * f) as usize)
                .copied()
                .unwrap_or(0)
        };
        let counts = |k: u32| res.iter().filter(|r| r.solutions == k).count();
        println!(
            "{name}: {} puzzles, unique {}, none {}, multi {} | guesses q10 {} q50 {} q90 {} max {} | >=10: {} | {secs:.1} s",
            puzzles.len(), counts(1), counts(0), counts(2), q(0.1), q(0.5), q(0.9), q(1.0),
            g.iter().filter(|&&x| x >= 10).count()
        );
    }
    Ok(())
}
