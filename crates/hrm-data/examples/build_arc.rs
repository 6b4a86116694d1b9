//! Times a full ARC build: `cargo run --release -p hrm-data --example build_arc -- <data> <out> [arc1|arc2] [num_aug] [threads]`.

use hrm_data::{build_arc, ArcBuildConfig};
use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        return Err("usage: build_arc <data dir> <out dir> [arc1|arc2] [num_aug] [threads]".into());
    }
    let data = PathBuf::from(&args[0]);
    let out = PathBuf::from(&args[1]);
    let mut config = match args.get(2).map(String::as_str) {
        Some("arc2") => ArcBuildConfig::arc2(&data),
        _ => ArcBuildConfig::arc1(&data),
    };
    if let Some(n) = args.get(3) {
        config.num_aug = n.parse()?;
    }
    if let Some(t) = args.get(4) {
        config.threads = t.parse()?;
    }
    let t0 = Instant::now();
    let stats = build_arc(&config, &out)?;
    let secs = t0.elapsed().as_secs_f64();
    println!("{stats} | {secs:.1} s");
    Ok(())
}
