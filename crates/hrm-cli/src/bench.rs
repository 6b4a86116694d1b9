//! `hrm bench`: training-step throughput, peak memory and MFU (one child process per configuration), and data
//! sampler throughput.

use anyhow::{bail, Context, Result};
use hrm_model::ModelKind;
use hrm_recipe::DtypeSetting;
use hrm_train::bench::{train_step_bench, BenchModel};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

/// Arguments of `hrm bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, clap::Subcommand)]
enum What {
    /// Training steps of an HRM or a TRM: samples/s, ms/step, peak memory, achieved FLOP/s and MFU.
    TrainStep(TrainStepArgs),
    /// The training sampler of a built dataset: batches/s.
    Sampler(SamplerArgs),
    /// The gradient all-reduce of one data-parallel step: ms, bandwidth, and a same-size copy as baseline.
    AllReduce(AllReduceArgs),
    /// Training-step speed alone, then beside competing CPU-bound processes (a shared machine): both rates and
    /// their ratio, with the threads each run chose.
    Contention(ContentionArgs),
    /// A busy loop on one core for `--seconds` (the competitor of `bench contention`).
    #[command(hide = true)]
    Spin(SpinArgs),
}

/// Arguments of `hrm bench contention`.
#[derive(Debug, Clone, clap::Args)]
pub struct ContentionArgs {
    /// The training step measured (one `--cycles` configuration; `--threads 0` measures the default).
    #[command(flatten)]
    step: TrainStepArgs,
    /// Competing processes, each a busy loop on one core.
    #[arg(long, default_value_t = 1)]
    competitors: usize,
}

/// Arguments of `hrm bench spin`.
#[derive(Debug, Clone, clap::Args)]
pub struct SpinArgs {
    /// Seconds to spin (it also stops when its parent is gone).
    #[arg(long, default_value_t = 600)]
    seconds: u64,
}

/// Arguments of `hrm bench all-reduce`.
#[derive(Debug, Clone, clap::Args)]
pub struct AllReduceArgs {
    /// Model: `hrm` or `trm` (the gradients are its parameters).
    #[arg(long, default_value = "hrm")]
    arch: String,
    /// Hidden size.
    #[arg(long, default_value_t = 512)]
    hidden: i64,
    /// Sequence length without the puzzle prefix.
    #[arg(long, default_value_t = 900)]
    seq: i64,
    /// Blocks per module.
    #[arg(long, default_value_t = 4)]
    layers: i64,
    /// Ranks, each a thread of this process (on CUDA: one GPU each, through NCCL; on CPU: TCP on loopback).
    /// Each holds the model's gradients, so the memory grows with the ranks; more than fit is refused.
    #[arg(long, default_value_t = 2, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1024))]
    ranks: usize,
    /// Timed all-reduces (after one warm-up).
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// `cpu`, `cuda` or `auto`.
    #[arg(long, default_value = "auto")]
    device: String,
}

/// Arguments of `hrm bench train-step`.
#[derive(Debug, Clone, clap::Args)]
pub struct TrainStepArgs {
    /// Model: `hrm` or `trm` (TRM: one network of `--layers` blocks, a 16-token puzzle prefix).
    #[arg(long, default_value = "hrm")]
    arch: String,
    /// Hidden size (heads = hidden / 64, at least 1).
    #[arg(long, default_value_t = 512)]
    hidden: i64,
    /// Sequence length without the puzzle prefix (900 for ARC and Maze, 81 for Sudoku).
    #[arg(long, default_value_t = 900)]
    seq: i64,
    /// Batch size.
    #[arg(long, default_value_t = 16)]
    batch: i64,
    /// Blocks per module (HRM: H and L each; TRM: its single network).
    #[arg(long, default_value_t = 4)]
    layers: i64,
    /// H x L cycles, e.g. `2x2`; a comma-separated list runs each in its own process (e.g. `2x2,4x4,8x8`).
    #[arg(long, default_value = "2x2")]
    cycles: String,
    /// Timed steps (after two warm-up steps).
    #[arg(long, default_value_t = 3)]
    steps: u64,
    /// `cpu`, `cuda` or `auto`.
    #[arg(long, default_value = "auto")]
    device: String,
    /// `f32`, `bf16` or `auto` (bf16 on CUDA).
    #[arg(long, default_value = "auto")]
    dtype: String,
    /// libtorch CPU threads (0 = as `hrm train` chooses: the cores other processes leave free at start).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Print one JSON line per configuration.
    #[arg(long)]
    json: bool,
}

/// Arguments of `hrm bench sampler`.
#[derive(Debug, clap::Args)]
pub struct SamplerArgs {
    /// A built dataset folder.
    dataset: PathBuf,
    /// Global batch size.
    #[arg(long, default_value_t = 768)]
    batch: usize,
    /// Batches to draw.
    #[arg(long, default_value_t = 200)]
    batches: usize,
    /// Also measure through the background prefetcher.
    #[arg(long)]
    prefetch: bool,
}

/// Runs `hrm bench`.
pub fn run(args: Args) -> Result<()> {
    match args.what {
        What::TrainStep(a) => train_step(a),
        What::Sampler(a) => sampler(a),
        What::AllReduce(a) => all_reduce(a),
        What::Contention(a) => contention(a),
        What::Spin(a) => {
            spin(a.seconds);
            Ok(())
        }
    }
}

/// Burns one core until `seconds` pass or the parent process is gone.
fn spin(seconds: u64) {
    let (start, parent) = (Instant::now(), std::os::unix::process::parent_id());
    let mut x = 0u64;
    while start.elapsed().as_secs() < seconds && std::os::unix::process::parent_id() == parent {
        for i in 0..1_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
        }
    }
}

/// The arguments of a `bench train-step --json` child measuring `a` at `cycles`.
fn step_child_args(a: &TrainStepArgs, cycles: &str) -> Vec<String> {
    let v = |x: &dyn ToString| x.to_string();
    vec![
        "bench".into(),
        "train-step".into(),
        "--json".into(),
        "--cycles".into(),
        cycles.into(),
        "--arch".into(),
        v(&a.arch),
        "--hidden".into(),
        v(&a.hidden),
        "--seq".into(),
        v(&a.seq),
        "--batch".into(),
        v(&a.batch),
        "--layers".into(),
        v(&a.layers),
        "--steps".into(),
        v(&a.steps),
        "--device".into(),
        v(&a.device),
        "--dtype".into(),
        v(&a.dtype),
        "--threads".into(),
        v(&a.threads),
    ]
}

/// Runs one `bench train-step --json` child and returns its JSON line.
fn step_child(a: &TrainStepArgs, cycles: &str) -> Result<serde_json::Value> {
    let exe = std::env::current_exe().context("locating the hrm binary")?;
    let out = Command::new(&exe)
        .args(step_child_args(a, cycles))
        .output()
        .context("running a bench child process")?;
    if !out.status.success() {
        bail!(
            "bench for cycles {cycles} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(serde_json::from_str(
        String::from_utf8_lossy(&out.stdout).trim(),
    )?)
}

/// `hrm bench contention`: the training step alone, then beside `competitors` busy loops.
fn contention(a: ContentionArgs) -> Result<()> {
    if a.step.cycles.contains(',') {
        bail!("--cycles: bench contention measures one configuration, e.g. --cycles 2x2");
    }
    let exe = std::env::current_exe().context("locating the hrm binary")?;
    eprintln!("bench contention: alone ...");
    let alone = step_child(&a.step, &a.step.cycles)?;
    eprintln!(
        "bench contention: beside {} busy process(es) ...",
        a.competitors
    );
    let mut spinners = Vec::new();
    for _ in 0..a.competitors {
        spinners.push(Command::new(&exe).args(["bench", "spin"]).spawn()?);
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let shared = step_child(&a.step, &a.step.cycles);
    for mut s in spinners {
        let _ = s.kill();
        let _ = s.wait();
    }
    let shared = shared?;
    let rate = |v: &serde_json::Value| v["samples_per_sec"].as_f64().unwrap_or(f64::NAN);
    let threads = |v: &serde_json::Value| v["threads"].as_u64().unwrap_or(0);
    let ratio = rate(&shared) / rate(&alone);
    if a.step.json {
        outln!(
            "{}",
            serde_json::json!({
                "alone": alone, "shared": shared, "competitors": a.competitors, "ratio": ratio,
            })
        );
        return Ok(());
    }
    outln!(
        "alone: {:.2} samples/s with {} threads | beside {} busy process(es): {:.2} samples/s with {} threads | \
         ratio {:.2}",
        rate(&alone),
        threads(&alone),
        a.competitors,
        rate(&shared),
        threads(&shared),
        ratio
    );
    Ok(())
}

fn all_reduce(a: AllReduceArgs) -> Result<()> {
    use hrm_dist::{Backend, Collective, WorldEnv};
    use hrm_train::world::{rank_device, DistOptions};
    let device = hrm_train::run::parse_device(&a.device)?;
    let model = BenchModel {
        arch: a.arch.parse()?,
        hidden: a.hidden,
        seq: a.seq,
        batch: 1,
        layers: a.layers,
        h_cycles: 1,
        l_cycles: 1,
    };
    let backend = match device {
        tch::Device::Cuda(_) => Backend::Nccl,
        _ => Backend::Tcp,
    };
    if !device.is_cuda() {
        check_all_reduce_memory(a.ranks, hrm_train::bench::gradient_bytes(&model)?)?;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    // The ranks meet concurrently, one thread each, as `hrm train` ranks do.
    let joined: Vec<Result<Box<dyn Collective>, hrm_train::RunError>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..a.ranks)
            .map(|rank| {
                s.spawn(move || {
                    let dist = DistOptions {
                        env: WorldEnv {
                            rank,
                            local_rank: rank,
                            world_size: a.ranks,
                            master_addr: "127.0.0.1".into(),
                            master_port: port,
                        },
                        backend,
                        timeouts: hrm_dist::default_timeouts(),
                    };
                    hrm_train::world::connect(&dist, rank_device(device, false, rank))
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("a rank's rendezvous thread panicked"))
            .collect()
    });
    let collectives = joined.into_iter().collect::<Result<Vec<_>, _>>()?;
    let r = hrm_train::bench::all_reduce_bench(&model, device, collectives, a.rounds)?;
    outln!(
        "all-reduce {} x {} ranks: {:.1} MiB of gradients in {:.2} ms (median of {}); algorithm {:.2} GB/s, bus {:.2} GB/s; \
         a same-size copy on one device {:.2} ms (ratio {:.1}x)",
        r.backend,
        r.ranks,
        r.bytes as f64 / (1u64 << 20) as f64,
        r.ms,
        a.rounds,
        r.algo_bytes_per_sec / 1e9,
        r.bus_bytes_per_sec / 1e9,
        r.copy_ms,
        r.ms / r.copy_ms.max(1e-9)
    );
    Ok(())
}

fn train_step(a: TrainStepArgs) -> Result<()> {
    let arch: ModelKind = a.arch.parse()?;
    let list: Vec<&str> = a.cycles.split(',').map(str::trim).collect();
    if list.len() > 1 {
        return train_step_each(&a, &list);
    }
    train_step_one(&a, arch)
}

/// Runs one child process per cycles configuration, so each peak-memory figure is its own, and prints a
/// table (or the children's JSON lines).
fn train_step_each(a: &TrainStepArgs, list: &[&str]) -> Result<()> {
    if !a.json {
        outln!(
            "{:>8} {:>10} {:>12} {:>14} {:>16} {:>10}",
            "cycles",
            "ms/step",
            "samples/s",
            "peak MiB",
            "FLOP/s",
            "MFU"
        );
    }
    // Progress on stderr, one line per configuration with an ETA: a configuration's time is taken as
    // proportional to its block calls per segment, H·(L + 1), measured on the ones done so far.
    let weight = |c: &str| -> f64 {
        c.split_once('x')
            .and_then(|(h, l)| Some(h.parse::<f64>().ok()? * (l.parse::<f64>().ok()? + 1.0)))
            .unwrap_or(1.0)
    };
    let total_weight: f64 = list.iter().map(|c| weight(c)).sum();
    let (start, mut done_weight) = (std::time::Instant::now(), 0.0);
    for (i, &c) in list.iter().enumerate() {
        let eta = match done_weight > 0.0 {
            true => {
                let per = start.elapsed().as_secs_f64() / done_weight;
                format!(", eta {:.0} s", per * (total_weight - done_weight))
            }
            false => String::new(),
        };
        eprintln!(
            "bench {}/{}: cycles {c}, {} steps after 2 warm-up ({:.0} s so far{eta})",
            i + 1,
            list.len(),
            a.steps,
            start.elapsed().as_secs_f64()
        );
        let v = step_child(a, c)?;
        done_weight += weight(c);
        if a.json {
            outln!("{v}");
        } else {
            let mfu = match v["mfu"].as_f64() {
                Some(m) => format!("{:.2}%", m * 100.0),
                None if v["device"].as_str() == Some("Cpu") => "n/a (CPU)".into(),
                None => "unknown".into(),
            };
            outln!(
                "{:>8} {:>10.1} {:>12.2} {:>14.1} {:>16} {:>10}",
                c,
                v["ms_per_step"].as_f64().unwrap_or(f64::NAN),
                v["samples_per_sec"].as_f64().unwrap_or(f64::NAN),
                v["peak_memory_mib"].as_f64().unwrap_or(f64::NAN),
                flop_rate(
                    v["achieved_flops"].as_f64().unwrap_or(f64::NAN),
                    v["device"].as_str() != Some("Cpu")
                ),
                mfu
            );
        }
    }
    Ok(())
}

/// Measures one cycles configuration in this process.
fn train_step_one(a: &TrainStepArgs, arch: ModelKind) -> Result<()> {
    let device = hrm_train::run::parse_device(&a.device)?;
    let threads = match device {
        tch::Device::Cpu => crate::threads::set(a.threads, None).threads,
        _ => tch::get_num_threads().max(1) as usize,
    };
    let (h, l) = a
        .cycles
        .split_once('x')
        .context("--cycles takes HxL, e.g. 2x2")?;
    let mut config = BenchModel {
        arch,
        hidden: a.hidden,
        seq: a.seq,
        batch: a.batch,
        layers: a.layers,
        h_cycles: h.parse().context("H cycles")?,
        l_cycles: l.parse().context("L cycles")?,
    }
    .config();
    let setting: DtypeSetting = match a.dtype.as_str() {
        "bf16" => DtypeSetting::Bfloat16,
        "f32" => DtypeSetting::Float32,
        other => other.parse()?,
    };
    config.forward_dtype = setting.resolve(device.is_cuda());
    let r = train_step_bench(&config, a.batch, a.steps, device)?;
    let mib = r.peak_memory_bytes as f64 / (1024.0 * 1024.0);
    if a.json {
        outln!(
            "{}",
            serde_json::json!({
                "arch": arch.as_str(), "hidden": a.hidden, "seq": a.seq, "batch": a.batch, "layers": a.layers,
                "cycles": a.cycles, "device": format!("{device:?}"),
                "dtype": format!("{:?}", config.forward_dtype),
                "samples_per_sec": r.samples_per_sec, "ms_per_step": r.ms_per_step,
                "peak_memory_mib": mib, "memory_source": format!("{:?}", r.memory_source),
                "flops_per_step": r.flops_per_step, "achieved_flops": r.achieved_flops, "mfu": r.mfu,
                "gpu_name": r.gpu_name, "peak_flops": r.peak_flops, "threads": threads,
            })
        );
    } else {
        let mfu = match (device.is_cuda(), &r.gpu_name, r.peak_flops, r.mfu) {
            (false, ..) => "MFU: n/a (CPU)".to_string(),
            (true, Some(name), Some(peak), Some(mfu)) => format!(
                "MFU {:.2}% of {name} dense bf16 peak {:.0} TFLOP/s",
                mfu * 100.0,
                peak / 1e12
            ),
            (true, Some(name), ..) => format!("MFU: peak unknown ({name})"),
            (true, None, ..) => "MFU: peak unknown (no GPU name from nvidia-smi)".to_string(),
        };
        outln!(
            "{arch} cycles {} | {threads} threads | {:.1} ms/step | {:.2} samples/s | peak memory {:.1} MiB ({:?}) | {:.3} GFLOP/step | {} | {mfu}",
            a.cycles,
            r.ms_per_step,
            r.samples_per_sec,
            mib,
            r.memory_source,
            r.flops_per_step / 1e9,
            flop_rate(r.achieved_flops, device.is_cuda()),
        );
    }
    Ok(())
}

/// A FLOP rate: GFLOP/s on the CPU, TFLOP/s on a GPU.
fn flop_rate(flops: f64, cuda: bool) -> String {
    if !cuda {
        format!("{:.2} GFLOP/s", flops / 1e9)
    } else {
        format!("{:.1} TFLOP/s", flops / 1e12)
    }
}

fn sampler(a: SamplerArgs) -> Result<()> {
    use hrm_data::sampler::{Prefetcher, SamplerConfig, TrainSampler};
    let data = Arc::new(
        hrm_data::load_split(&a.dataset, "train")
            .with_context(|| format!("loading {}", a.dataset.display()))?,
    );
    let config = SamplerConfig {
        global_batch_size: a.batch,
        epochs_per_iter: 1000,
        seed: 0,
    };
    let mut sampler = TrainSampler::new(data.clone(), config)?;
    let start = Instant::now();
    let mut n = 0;
    while n < a.batches {
        if sampler.next_batch().is_some() {
            n += 1;
        }
    }
    let direct = n as f64 / start.elapsed().as_secs_f64();
    outln!(
        "sampler: {direct:.1} batches/s at batch {} ({:.0} examples/s)",
        a.batch,
        direct * a.batch as f64
    );
    if a.prefetch {
        let mut pf = Prefetcher::spawn(TrainSampler::new(data, config)?, 8);
        let start = Instant::now();
        let mut n = 0;
        while n < a.batches {
            if let hrm_data::sampler::SampleEvent::Batch(_) = pf.next_event().event {
                n += 1;
            }
        }
        let rate = n as f64 / start.elapsed().as_secs_f64();
        outln!("prefetcher: {rate:.1} batches/s");
    }
    Ok(())
}

/// Bytes of one flat all-reduce bucket ([`hrm_dist::all_reduce_flat`], DDP's 25 MiB).
const BUCKET_BYTES: u64 = 25 << 20;

/// Refuses a CPU all-reduce bench whose ranks cannot fit in the available memory, with the numbers: every rank
/// holds the gradients and a bucket, and rank 0 receives one bucket from each rank per round.
fn check_all_reduce_memory(ranks: usize, gradient_bytes: u64) -> Result<()> {
    let ranks = ranks as u64;
    let needed = ranks * (gradient_bytes + 2 * BUCKET_BYTES) + gradient_bytes;
    let Some(available) = hrm_data::budget::available_memory_bytes() else {
        return Ok(());
    };
    if needed > available {
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        bail!(
            "--ranks {ranks}: the ranks would hold about {:.1} GiB ({:.1} MiB of gradients each, plus buckets), \
             but {:.1} GiB of memory is available; use fewer ranks or a smaller model (--hidden, --layers)",
            gib(needed),
            gradient_bytes as f64 / (1u64 << 20) as f64,
            gib(available)
        );
    }
    Ok(())
}
