//! Benchmarks one train step configuration per process (so VmHWM is per configuration) and prints one JSON line.
//!
//! Usage: `bench_cycles [--hidden 128] [--seq 81] [--batch 16] [--cycles 2x2] [--steps 5] [--layers 4]
//! [--device cpu|cuda] [--threads N] [--dtype f32|bf16]`.

use hrm_model::{ForwardDtype, ModelConfig};
use hrm_train::bench::train_step_bench;
use tch::Device;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |flag: &str, default: &str| -> String {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_else(|| default.to_string())
    };
    let hidden: i64 = get("--hidden", "128").parse()?;
    let seq: i64 = get("--seq", "81").parse()?;
    let batch: i64 = get("--batch", "16").parse()?;
    let steps: u64 = get("--steps", "5").parse()?;
    let layers: i64 = get("--layers", "4").parse()?;
    let cycles = get("--cycles", "2x2");
    let (h, l) = cycles
        .split_once('x')
        .ok_or("--cycles takes HxL, e.g. 2x2")?;
    let (h_cycles, l_cycles): (i64, i64) = (h.parse()?, l.parse()?);
    let device = match get("--device", "cpu").as_str() {
        "cpu" => Device::Cpu,
        "cuda" => Device::Cuda(0),
        other => return Err(format!("unknown device {other}").into()),
    };
    let threads: i32 = get("--threads", "0").parse()?;
    if threads > 0 {
        tch::set_num_threads(threads);
    }
    let mut config = ModelConfig::paper(12, seq, 16);
    config.batch_size = batch;
    config.hidden_size = hidden;
    config.puzzle_emb_ndim = hidden;
    config.num_heads = (hidden / 64).max(1);
    config.h_layers = layers;
    config.l_layers = layers;
    config.h_cycles = h_cycles;
    config.l_cycles = l_cycles;
    config.forward_dtype = match get("--dtype", "f32").as_str() {
        "bf16" => ForwardDtype::Bfloat16,
        _ => ForwardDtype::Float32,
    };
    let r = train_step_bench(&config, batch, steps, device)?;
    println!(
        "{{\"hidden\":{hidden},\"seq\":{seq},\"batch\":{batch},\"cycles\":\"{cycles}\",\"layers\":{layers},\"device\":\"{device:?}\",\"samples_per_sec\":{:.2},\"ms_per_step\":{:.2},\"peak_memory_mib\":{:.1},\"memory_source\":\"{:?}\"}}",
        r.samples_per_sec,
        r.ms_per_step,
        r.peak_memory_bytes as f64 / (1024.0 * 1024.0),
        r.memory_source
    );
    Ok(())
}
