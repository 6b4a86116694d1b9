//! Measures training-sampler throughput: `cargo run --release -p hrm-data --example sampler_speed -- <dataset> [batch] [batches]`.

use hrm_data::sampler::{Prefetcher, SampleEvent, SamplerConfig, TrainSampler};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = PathBuf::from(
        args.first()
            .ok_or("usage: sampler_speed <dataset> [batch] [batches]")?,
    );
    let batch: usize = args.get(1).map_or(Ok(768), |s| s.parse())?;
    let count: usize = args.get(2).map_or(Ok(2000), |s| s.parse())?;
    let t0 = Instant::now();
    let data = Arc::new(hrm_data::load_split(&dir, "train")?);
    println!(
        "loaded {} examples in {:.1} s",
        data.num_examples(),
        t0.elapsed().as_secs_f64()
    );
    let config = SamplerConfig {
        global_batch_size: batch,
        epochs_per_iter: 10000,
        seed: 0,
    };
    let mut sampler = TrainSampler::new(Arc::clone(&data), config)?;
    time_batches("direct", batch, count, || sampler.next_event().event);
    let mut pf = Prefetcher::spawn(TrainSampler::new(data, config)?, 8);
    time_batches("prefetch", batch, count, || pf.next_event().event);
    Ok(())
}

/// Draws `count` batches from `next` and prints the rate under `label`.
fn time_batches(label: &str, batch: usize, count: usize, mut next: impl FnMut() -> SampleEvent) {
    let t0 = Instant::now();
    let mut n = 0;
    while n < count {
        if let SampleEvent::Batch(_) = next() {
            n += 1;
        }
    }
    let s = t0.elapsed().as_secs_f64();
    println!(
        "{label}: {n} batches of {batch} in {s:.2} s = {:.0} batches/s",
        n as f64 / s
    );
}
