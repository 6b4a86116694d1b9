//! A training run's place in a data-parallel world (hrm-spec 7; the reference's `pretrain.py` under
//! `torchrun`): connecting to the other ranks, what rank 0 tells them about the run folder it opened, the
//! agreement on stopping, and the metric sums and carries collected from every rank.
//!
//! Rank 0 owns the run folder: it opens or resumes it, writes the metrics, the TensorBoard events and the
//! checkpoints. The other ranks read the dataset, and when resuming they load the same checkpoint (so a run
//! on several nodes resumes from a run folder on storage every node sees).

use std::collections::HashMap;
use std::path::PathBuf;

use hrm_dist::{Backend, Collective, Timeouts, WorldEnv};
use hrm_model::{ActMetrics, Carry};
use tch::{Device, Kind, Tensor};

use crate::run_error::RunError;
use crate::stop::StopReason;

/// How a run joins a data-parallel world.
#[derive(Debug, Clone)]
pub struct DistOptions {
    /// This process's rank, the world size and rank 0's address.
    pub env: WorldEnv,
    /// NCCL (CUDA) or TCP (CPU).
    pub backend: Backend,
    /// How long the rendezvous and one collective may wait.
    pub timeouts: Timeouts,
}

impl DistOptions {
    /// The world of this process from torchrun's or Slurm's variables (`None` in a single process), with the
    /// backend from `HRM_DIST_BACKEND` (`nccl` or `tcp`; default: NCCL on CUDA, TCP on CPU) and the timeouts
    /// from `HRM_DIST_TIMEOUT_S` and `HRM_DIST_OP_TIMEOUT_S`.
    pub fn from_env(device: Device) -> Result<Option<DistOptions>, RunError> {
        let Some(env) = WorldEnv::from_env()? else {
            return Ok(None);
        };
        let backend = match std::env::var("HRM_DIST_BACKEND") {
            Ok(b) if !b.is_empty() => b
                .parse::<Backend>()
                .map_err(|m| RunError::config("HRM_DIST_BACKEND", m))?,
            _ => match device {
                Device::Cuda(_) => Backend::Nccl,
                _ => Backend::Tcp,
            },
        };
        Ok(Some(DistOptions {
            env,
            backend,
            timeouts: Timeouts::from_env()?,
        }))
    }
}

/// The device of rank `local_rank` when the command asked for `device`: `cuda` (or `auto` resolved to it) means
/// `cuda:LOCAL_RANK`, one GPU per rank on each node; an explicit `cuda:N` or `cpu` is kept.
pub fn rank_device(device: Device, explicit_index: bool, local_rank: usize) -> Device {
    match device {
        Device::Cuda(_) if !explicit_index => Device::Cuda(local_rank),
        d => d,
    }
}

/// Meets the other ranks and returns the collective of the chosen backend.
pub fn connect(d: &DistOptions, device: Device) -> Result<Box<dyn Collective>, RunError> {
    Ok(match d.backend {
        Backend::Tcp => Box::new(hrm_dist::tcp::connect(&d.env, d.timeouts)?),
        Backend::Nccl => {
            let Device::Cuda(index) = device else {
                return Err(RunError::config(
                    "HRM_DIST_BACKEND",
                    "nccl needs a CUDA device (use --device cuda, or HRM_DIST_BACKEND=tcp on CPU)",
                ));
            };
            Box::new(hrm_dist::nccl::connect(&d.env, d.timeouts, index)?)
        }
    })
}

/// What rank 0 tells the other ranks once it has opened the run folder.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verdict {
    /// Train: from step 0, or from this checkpoint.
    Start(Option<PathBuf>),
    /// The resumed run had already finished at this step and checkpoint.
    Finished(u64, PathBuf),
    /// Rank 0 could not open the run; the message says why.
    Failed(String),
}

impl Verdict {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let (tag, body) = match self {
            Verdict::Start(None) => (b'N', String::new()),
            Verdict::Start(Some(p)) => (b'S', p.display().to_string()),
            Verdict::Finished(step, p) => (b'F', format!("{step}\n{}", p.display())),
            Verdict::Failed(m) => (b'E', m.clone()),
        };
        let mut v = vec![tag];
        v.extend_from_slice(body.as_bytes());
        v
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Verdict, RunError> {
        let bad = || {
            RunError::config(
                "world",
                "rank 0 sent a malformed message about the run folder",
            )
        };
        let (&tag, body) = bytes.split_first().ok_or_else(bad)?;
        let body = String::from_utf8_lossy(body).to_string();
        Ok(match tag {
            b'N' => Verdict::Start(None),
            b'S' => Verdict::Start(Some(PathBuf::from(body))),
            b'F' => {
                let (step, path) = body.split_once('\n').ok_or_else(bad)?;
                Verdict::Finished(step.parse().map_err(|_| bad())?, PathBuf::from(path))
            }
            b'E' => Verdict::Failed(body),
            _ => return Err(bad()),
        })
    }
}

/// The stop reasons as numbers the ranks take the largest of: a requested stop wins, then the time cap.
pub(crate) fn stop_code(reason: Option<StopReason>) -> u64 {
    match reason {
        None => 0,
        Some(StopReason::Completed) | Some(StopReason::AlreadyFinished) => 1,
        Some(StopReason::MaxSteps) => 2,
        Some(StopReason::MaxMinutes) => 3,
        Some(StopReason::Interrupted) => 4,
    }
}

/// The inverse of [`stop_code`].
pub(crate) fn stop_from_code(code: u64) -> Option<StopReason> {
    match code {
        0 => None,
        1 => Some(StopReason::Completed),
        2 => Some(StopReason::MaxSteps),
        3 => Some(StopReason::MaxMinutes),
        _ => Some(StopReason::Interrupted),
    }
}

/// The metric sums of every rank added (through a tensor on `device`, which NCCL needs).
pub(crate) fn sum_metrics(
    c: &mut dyn Collective,
    m: &ActMetrics,
    device: Device,
) -> Result<ActMetrics, RunError> {
    let v = [
        m.count,
        m.accuracy,
        m.exact_accuracy,
        m.q_halt_accuracy,
        m.steps,
        m.lm_loss,
        m.q_halt_loss,
        m.q_continue_loss.unwrap_or(0.0),
    ];
    let t = Tensor::from_slice(&v).to_device(device);
    c.all_reduce_sum(&t)?;
    let s = hrm_model::host::read_f64(&t).map_err(RunError::tch("reading the summed metrics"))?;
    Ok(ActMetrics {
        count: s[0],
        accuracy: s[1],
        exact_accuracy: s[2],
        q_halt_accuracy: s[3],
        steps: s[4],
        lm_loss: s[5],
        q_halt_loss: s[6],
        q_continue_loss: m.q_continue_loss.map(|_| s[7]),
    })
}

/// Every rank's carries in global order (rank r's micro-batch j is entry r·k + j), gathered for rank 0's
/// checkpoint. Every rank must call it (the carries of a step are all set or all unset on every rank).
pub(crate) fn gather_carries(
    c: &mut dyn Collective,
    carries: &[Option<Carry>],
) -> Result<Vec<Option<Carry>>, RunError> {
    let (world, k) = (c.world_size(), carries.len());
    let mut gathered: Vec<Option<Carry>> = (0..world * k).map(|_| None).collect();
    for (j, carry) in carries.iter().enumerate() {
        let Some(carry) = carry else { continue };
        let mut named: HashMap<String, Tensor> = HashMap::new();
        for (name, t) in carry.named_tensors() {
            let t = if t.kind() == Kind::Bool {
                t.to_kind(Kind::Uint8)
            } else {
                t
            };
            let all = c.all_gather(&t.contiguous())?;
            for (r, part) in all.chunk(world as i64, 0).into_iter().enumerate() {
                named.insert(format!("mb{}.{name}", r * k + j), part);
            }
        }
        for r in 0..world {
            let g = r * k + j;
            gathered[g] = Some(Carry::from_named_tensors(&named, &format!("mb{g}."))?);
        }
    }
    Ok(gathered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_round_trip() {
        for v in [
            Verdict::Start(None),
            Verdict::Start(Some(PathBuf::from("runs/x/checkpoints/step_4"))),
            Verdict::Finished(12, PathBuf::from("/a b/step_12")),
            Verdict::Failed("runs/x already holds checkpoints".into()),
        ] {
            assert_eq!(Verdict::decode(&v.encode()).unwrap(), v);
        }
        assert!(Verdict::decode(b"").is_err());
        assert!(Verdict::decode(b"Fx").is_err());
    }

    #[test]
    fn stop_codes_round_trip_and_rank_requests_first() {
        for r in [
            None,
            Some(StopReason::Completed),
            Some(StopReason::MaxSteps),
            Some(StopReason::MaxMinutes),
            Some(StopReason::Interrupted),
        ] {
            assert_eq!(stop_from_code(stop_code(r)), r);
        }
        assert!(stop_code(Some(StopReason::Interrupted)) > stop_code(Some(StopReason::MaxMinutes)));
    }
}
