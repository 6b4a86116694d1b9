//! A training-step benchmark: throughput, time per step, peak memory and model FLOP utilisation (MFU) of
//! [`Trainer::train_step`] on random data. FLOPs follow [`hrm_model::flops::train_step_flops`].

use std::time::Instant;

use hrm_model::flops::{dense_bf16_peak_flops, train_step_flops};
use hrm_model::{Batch, Model, ModelConfig, ModelKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind};

use crate::error::TrainError;
use crate::optim::AdamATan2Config;
use crate::step::{StepConfig, Trainer};

/// The model of one benchmark configuration: the paper architecture of `arch` (HRM: `ModelConfig::paper`, TRM:
/// `ModelConfig::trm`) resized to these values, with vocabulary 12, 16 puzzle identifiers, a puzzle row as wide as
/// the hidden size and `max(hidden / 64, 1)` heads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchModel {
    /// HRM or TRM.
    pub arch: ModelKind,
    /// Hidden size.
    pub hidden: i64,
    /// Sequence length without the puzzle prefix.
    pub seq: i64,
    /// Batch size (also the config's `batch_size`).
    pub batch: i64,
    /// Blocks per module: HRM's H and L modules each, TRM's single network.
    pub layers: i64,
    /// H cycles.
    pub h_cycles: i64,
    /// L cycles.
    pub l_cycles: i64,
}

impl BenchModel {
    /// The model config (forward dtype as the paper's, bfloat16; callers set it per device).
    pub fn config(&self) -> ModelConfig {
        let mut config = match self.arch {
            ModelKind::Hrm => ModelConfig {
                h_layers: self.layers,
                ..ModelConfig::paper(12, self.seq, 16)
            },
            ModelKind::Trm => ModelConfig::trm(12, self.seq, 16),
        };
        config.batch_size = self.batch;
        config.hidden_size = self.hidden;
        config.puzzle_emb_ndim = self.hidden;
        config.num_heads = (self.hidden / 64).max(1);
        config.l_layers = self.layers;
        config.h_cycles = self.h_cycles;
        config.l_cycles = self.l_cycles;
        config
    }
}

/// How [`BenchReport::peak_memory_bytes`] was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemorySource {
    /// CPU: the process's resident-set high-water mark (`VmHWM` in `/proc/self/status`). It covers the whole
    /// process lifetime and cannot be reset, so run one configuration per process.
    ProcVmHwm,
    /// CUDA: the memory `nvidia-smi` reports for this process after the run. libtorch's caching allocator keeps
    /// freed blocks, so this is the peak *reserved* memory plus the CUDA context (~0.5 GiB), not
    /// `max_memory_allocated` (which tch 0.24 does not expose).
    NvidiaSmi,
    /// No measurement was possible (no `/proc`, or no `nvidia-smi` on a CUDA machine).
    Unavailable,
}

/// What [`train_step_bench`] measured.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchReport {
    /// Sequences per second over the timed steps.
    pub samples_per_sec: f64,
    /// Mean wall time of one optimizer step, in milliseconds.
    pub ms_per_step: f64,
    /// Peak memory in bytes (see `memory_source`); 0 when unavailable.
    pub peak_memory_bytes: u64,
    /// How the peak memory was measured.
    pub memory_source: MemorySource,
    /// Steps timed.
    pub steps: u64,
    /// Sequences per step.
    pub batch_size: i64,
    /// Model FLOPs of one step ([`train_step_flops`]`(config, batch_size).total`).
    pub flops_per_step: f64,
    /// Achieved model FLOP/s: `flops_per_step` / mean step seconds.
    pub achieved_flops: f64,
    /// CUDA: the GPU model as `nvidia-smi --query-gpu=name` prints it; `None` on the CPU or without `nvidia-smi`.
    pub gpu_name: Option<String>,
    /// CUDA: the GPU's dense bf16 peak FLOP/s ([`dense_bf16_peak_flops`]); `None` on the CPU or for an unknown GPU.
    pub peak_flops: Option<f64>,
    /// `achieved_flops / peak_flops` when the peak is known.
    pub mfu: Option<f64>,
}

/// Times `steps` training steps (after 2 untimed warm-up steps) of a freshly initialised model with `config` on
/// `device`, on random batches of `batch_size` sequences, with one micro-batch and the reference optimizer
/// settings (no warmup, so every step runs at full learning rate).
///
/// Every random value comes from `ChaCha8Rng` seeded with 0, so runs are repeatable.
pub fn train_step_bench(
    config: &ModelConfig,
    batch_size: i64,
    steps: u64,
    device: Device,
) -> Result<BenchReport, TrainError> {
    const WARMUP: u64 = 2;
    if batch_size < 1 || steps < 1 {
        return Err(TrainError::Config {
            field: "bench".into(),
            message: format!("batch_size {batch_size} and steps {steps} must both be ≥ 1"),
        });
    }
    let model = Model::new(config, device, 0)?;
    let step_config = StepConfig {
        global_batch_size: batch_size,
        micro_batches: 1,
        lr: 1e-4,
        puzzle_emb_lr: 1e-2,
        puzzle_emb_weight_decay: 0.1,
        adam: AdamATan2Config::with_weight_decay(0.1),
        lr_warmup_steps: 0,
        lr_min_ratio: 1.0,
        total_steps: WARMUP + steps,
    };
    let mut trainer = Trainer::new(model, step_config)?;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let batches: Vec<Batch> = (0..2)
        .map(|_| random_batch(config, batch_size, device, &mut rng))
        .collect::<Result<_, _>>()?;
    let sync = || {
        if let Device::Cuda(i) = device {
            tch::Cuda::synchronize(i as i64);
        }
    };
    for i in 0..WARMUP {
        trainer.train_step(&batches[i as usize % 2], &mut rng)?;
    }
    sync();
    let start = Instant::now();
    for i in 0..steps {
        trainer.train_step(&batches[i as usize % 2], &mut rng)?;
    }
    sync();
    let secs = start.elapsed().as_secs_f64();
    let (peak_memory_bytes, memory_source) = match device {
        Device::Cpu => match vm_hwm_bytes() {
            Some(b) => (b, MemorySource::ProcVmHwm),
            None => (0, MemorySource::Unavailable),
        },
        _ => match nvidia_smi_process_bytes() {
            Some(b) => (b, MemorySource::NvidiaSmi),
            None => (0, MemorySource::Unavailable),
        },
    };
    let flops_per_step = train_step_flops(config, batch_size).total;
    let achieved_flops = flops_per_step * steps as f64 / secs;
    let gpu_name = match device {
        Device::Cuda(i) => nvidia_smi_gpu_name(i),
        _ => None,
    };
    let peak_flops = gpu_name.as_deref().and_then(dense_bf16_peak_flops);
    Ok(BenchReport {
        samples_per_sec: (batch_size as f64 * steps as f64) / secs,
        ms_per_step: secs * 1e3 / steps as f64,
        peak_memory_bytes,
        memory_source,
        steps,
        batch_size,
        flops_per_step,
        achieved_flops,
        mfu: peak_flops.map(|p| achieved_flops / p),
        gpu_name,
        peak_flops,
    })
}

/// A random batch: tokens uniform over the vocabulary, labels = a fixed permutation of the inputs, puzzle ids
/// uniform over the table.
fn random_batch(
    config: &ModelConfig,
    b: i64,
    device: Device,
    rng: &mut ChaCha8Rng,
) -> Result<Batch, TrainError> {
    let n = (b * config.seq_len) as usize;
    let v = config.vocab_size as i32;
    let inputs: Vec<i32> = (0..n).map(|_| rng.random_range(0..v)).collect();
    let labels: Vec<i32> = inputs.iter().map(|&x| (x + 1) % v).collect();
    let ids: Vec<i32> = (0..b)
        .map(|_| rng.random_range(0..config.num_puzzle_identifiers as i32))
        .collect();
    let batch = Batch::from_vecs(
        &inputs,
        &labels,
        &ids,
        b as usize,
        config.seq_len as usize,
        device,
    )?;
    // Touch the tensors once so that the host-to-device copies are not timed.
    let _ = batch.inputs.sum(Kind::Int64).to_device(Device::Cpu);
    Ok(batch)
}

/// The `VmHWM` line of `/proc/self/status` in bytes, if readable.
pub fn vm_hwm_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The GPU memory `nvidia-smi` attributes to this process, in bytes, if it can be queried.
pub fn nvidia_smi_process_bytes() -> Option<u64> {
    let out = std::process::Command::new("nvidia-smi")
        .args([
            "--query-compute-apps=pid,used_memory",
            "--format=csv,noheader,nounits",
        ])
        .output()
        .ok()?;
    let me = std::process::id().to_string();
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        let mut parts = l.split(',').map(str::trim);
        let pid = parts.next()?;
        let mib: u64 = parts.next()?.parse().ok()?;
        (pid == me).then_some(mib * 1024 * 1024)
    })
}

/// The model name of GPU `index` as `nvidia-smi --query-gpu=name --format=csv,noheader` prints it (e.g.
/// `NVIDIA H200`), if it can be queried. The index is libtorch's: it is mapped through `CUDA_VISIBLE_DEVICES`
/// when that is set; when nvidia-smi cannot resolve the id (e.g. a MIG UUID), the name is still returned if every
/// GPU of the machine is the same model.
pub fn nvidia_smi_gpu_name(index: usize) -> Option<String> {
    let query = |extra: &[&str]| -> Option<Vec<String>> {
        let out = std::process::Command::new("nvidia-smi")
            .args(["--query-gpu=name", "--format=csv,noheader"])
            .args(extra)
            .output()
            .ok()?;
        let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        (out.status.success() && !names.is_empty()).then_some(names)
    };
    let visible = std::env::var("CUDA_VISIBLE_DEVICES").ok();
    let id = match visible.as_deref().map(str::trim) {
        Some(v) if !v.is_empty() => v.split(',').nth(index).map(|s| s.trim().to_string()),
        _ => Some(index.to_string()),
    };
    if let Some(name) = id
        .and_then(|id| query(&["-i", &id]))
        .and_then(|n| n.into_iter().next())
    {
        return Some(name);
    }
    let all = query(&[])?;
    all.iter().all(|n| n == &all[0]).then(|| all[0].clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_models_follow_the_arch() {
        let shape = BenchModel {
            arch: ModelKind::Trm,
            hidden: 128,
            seq: 81,
            batch: 8,
            layers: 2,
            h_cycles: 1,
            l_cycles: 4,
        };
        let trm = shape.config();
        trm.validate().unwrap();
        assert_eq!(
            (trm.name, trm.l_layers, trm.prefix_len()),
            (ModelKind::Trm, 2, 16)
        );
        assert_eq!((trm.h_cycles, trm.l_cycles, trm.num_heads), (1, 4, 2));
        let hrm = BenchModel {
            arch: ModelKind::Hrm,
            ..shape
        }
        .config();
        hrm.validate().unwrap();
        assert_eq!(
            (hrm.name, hrm.h_layers, hrm.prefix_len()),
            (ModelKind::Hrm, 2, 1)
        );
    }
}

/// What [`all_reduce_bench`] measured: the gradient all-reduce of one data-parallel step.
#[derive(Debug, Clone)]
pub struct AllReduceReport {
    /// The collective's backend (`tcp`, `nccl`).
    pub backend: &'static str,
    /// Ranks.
    pub ranks: usize,
    /// Gradient bytes summed per step (every trainable parameter of the model in fp32).
    pub bytes: u64,
    /// Median milliseconds of one all-reduce of all gradients, in flat buckets.
    pub ms: f64,
    /// Median milliseconds of copying the same bytes once on the device: the baseline of the same run.
    pub copy_ms: f64,
    /// Bytes per second of the all-reduce (`bytes / time`).
    pub algo_bytes_per_sec: f64,
    /// NCCL's "bus bandwidth": the algorithm bandwidth times 2(n-1)/n, comparable across rank counts.
    pub bus_bytes_per_sec: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The shapes of the trainable parameters of `model` (so of its gradients), from a CPU instance.
fn gradient_shapes(model: &BenchModel) -> Result<Vec<Vec<i64>>, TrainError> {
    let m = Model::new(&model.config(), Device::Cpu, 0)?;
    Ok(m.named_parameters().map(|(_, p)| p.size()).collect())
}

/// The fp32 gradient bytes of one data-parallel step of `model`: what every rank of [`all_reduce_bench`] holds.
pub fn gradient_bytes(model: &BenchModel) -> Result<u64, TrainError> {
    let numel: i64 = gradient_shapes(model)?
        .iter()
        .map(|s| s.iter().product::<i64>())
        .sum();
    Ok(numel as u64 * 4)
}

/// Times the gradient all-reduce of a data-parallel step of `model` over `collectives` (one per rank, each
/// driven by its own thread; every element must belong to the same world): `rounds` timed all-reduces after
/// one warm-up, with the gradients of `model`'s parameters as fp32 tensors on `device`, through
/// [`hrm_dist::all_reduce_flat`]. The baseline is a copy of the same bytes on rank 0's device.
pub fn all_reduce_bench(
    model: &BenchModel,
    device: Device,
    collectives: Vec<Box<dyn hrm_dist::Collective>>,
    rounds: usize,
) -> Result<AllReduceReport, TrainError> {
    let shapes = gradient_shapes(model)?;
    let ranks = collectives.len();
    let backend = collectives.first().map_or("none", |c| c.backend());
    let numel: i64 = shapes.iter().map(|s| s.iter().product::<i64>()).sum();
    let bytes = numel as u64 * 4;
    let results: Vec<Result<Vec<f64>, TrainError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = collectives
            .into_iter()
            .map(|mut c| {
                let shapes = &shapes;
                scope.spawn(move || -> Result<Vec<f64>, TrainError> {
                    let device = match device {
                        Device::Cuda(_) => Device::Cuda(c.rank()),
                        d => d,
                    };
                    let grads: Vec<tch::Tensor> = shapes
                        .iter()
                        .map(|s| tch::Tensor::ones(s.as_slice(), (Kind::Float, device)))
                        .collect();
                    let mut times = Vec::with_capacity(rounds);
                    for round in 0..=rounds {
                        c.barrier()?;
                        let t0 = Instant::now();
                        hrm_dist::all_reduce_flat(c.as_mut(), &grads, hrm_dist::BUCKET_BYTES)?;
                        if let Device::Cuda(i) = device {
                            tch::Cuda::synchronize(i as i64);
                        }
                        if round > 0 {
                            times.push(t0.elapsed().as_secs_f64() * 1e3);
                        }
                    }
                    Ok(times)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(TrainError::Config {
                        field: "bench".into(),
                        message: "a rank's thread panicked".into(),
                    })
                })
            })
            .collect()
    });
    let mut per_rank = Vec::new();
    for r in results {
        per_rank.push(r?);
    }
    let ms = median(per_rank.into_iter().next().unwrap_or_default());
    let src = tch::Tensor::ones([numel], (Kind::Float, device));
    let mut dst = tch::Tensor::zeros([numel], (Kind::Float, device));
    let mut copies = Vec::new();
    for round in 0..=rounds {
        let t0 = Instant::now();
        dst.copy_(&src);
        if let Device::Cuda(i) = device {
            tch::Cuda::synchronize(i as i64);
        }
        if round > 0 {
            copies.push(t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    let algo = bytes as f64 / (ms / 1e3);
    let n = ranks as f64;
    Ok(AllReduceReport {
        backend,
        ranks,
        bytes,
        ms,
        copy_ms: median(copies),
        algo_bytes_per_sec: algo,
        bus_bytes_per_sec: algo * 2.0 * (n - 1.0) / n,
    })
}
