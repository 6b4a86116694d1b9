//! Data-parallel collectives for training on several processes (hrm-spec 7; the reference's `pretrain.py` with
//! `torch.distributed`): the [`Collective`] trait the trainer talks to, the world a process belongs to (read
//! from torchrun's or Slurm's variables, [`WorldEnv`]), and three backends: NCCL for CUDA tensors ([`nccl`],
//! through `cudarc`, loaded at run time), TCP for CPU ranks ([`tcp`], which is also the rendezvous and the
//! control channel of the NCCL backend) and an in-process backend for tests ([`local`]).
//!
//! `hrm-train` asks this crate for a world and never sees NCCL.

use std::ops::Range;
use std::time::Duration;

use tch::{Kind, Tensor};

mod env;
pub mod local;
pub mod nccl;
pub mod tcp;
mod wire;

pub use env::{Backend, Timeouts, WorldEnv};

/// What can go wrong in a distributed run. Every message names the rank that saw it and, where one is
/// involved, the peer and the address.
#[derive(Debug, thiserror::Error)]
pub enum DistError {
    /// A launch variable is missing or malformed.
    #[error("environment variable {var}: {message}")]
    Env {
        /// The variable.
        var: String,
        /// What is wrong with it.
        message: String,
    },
    /// The ranks could not meet.
    #[error("rendezvous at {addr} failed on rank {rank} of {world}: {message}")]
    Rendezvous {
        /// `MASTER_ADDR:MASTER_PORT`.
        addr: String,
        /// This process's rank.
        rank: usize,
        /// The world size.
        world: usize,
        /// What happened.
        message: String,
    },
    /// A collective failed: a peer died, timed out, disagreed on the operation or sent data of another shape.
    #[error("collective `{op}` failed on rank {rank}: {message}")]
    Collective {
        /// The operation.
        op: &'static str,
        /// This process's rank.
        rank: usize,
        /// What happened.
        message: String,
    },
    /// NCCL (or the CUDA runtime beside it) could not be loaded or returned an error.
    #[error("NCCL on rank {rank}: {message}")]
    Nccl {
        /// This process's rank.
        rank: usize,
        /// What happened.
        message: String,
    },
    /// A libtorch call failed.
    #[error("{context}: {source}")]
    Tch {
        /// What was being done.
        context: String,
        /// The libtorch error.
        #[source]
        source: tch::TchError,
    },
}

impl DistError {
    pub(crate) fn tch(context: impl Into<String>) -> impl FnOnce(tch::TchError) -> DistError {
        let context = context.into();
        move |source| DistError::Tch { context, source }
    }
}

/// The collective operations data-parallel training needs, over the ranks of one world. Every rank must call
/// the same operations in the same order (as with `torch.distributed`); a backend that can tell reports a
/// mismatch as an error rather than hanging. Tensor operations keep the tensor's device: NCCL works on CUDA
/// tensors in place, the host backends copy through host memory.
pub trait Collective: Send + std::fmt::Debug {
    /// This process's rank, 0-based.
    fn rank(&self) -> usize;
    /// The number of ranks.
    fn world_size(&self) -> usize;
    /// The backend's name (`nccl`, `tcp`, `local`).
    fn backend(&self) -> &'static str;
    /// Replaces `t` (contiguous; f32, f64, i32 or i64) on every rank by the sum over ranks, added in rank order
    /// by the host backends (so every rank holds identical bits).
    fn all_reduce_sum(&mut self, t: &Tensor) -> Result<(), DistError>;
    /// The ranks' tensors concatenated along dimension 0 in rank order; every rank's tensor must have the same
    /// shape and kind.
    fn all_gather(&mut self, t: &Tensor) -> Result<Tensor, DistError>;
    /// Replaces `t` on every rank by rank `root`'s (same shape and kind on every rank).
    fn broadcast(&mut self, t: &Tensor, root: usize) -> Result<(), DistError>;
    /// The largest of the ranks' values, through host memory only (no device synchronisation): how the ranks
    /// agree on stopping.
    fn max_u64(&mut self, value: u64) -> Result<u64, DistError>;
    /// Rank `root`'s bytes on every rank (host memory; `bytes` is ignored on the other ranks).
    fn broadcast_bytes(&mut self, bytes: Vec<u8>, root: usize) -> Result<Vec<u8>, DistError>;
    /// Waits until every rank has called it.
    fn barrier(&mut self) -> Result<(), DistError> {
        self.max_u64(0).map(|_| ())
    }
}

/// The contiguous part of `n` items that rank `rank` of `world` takes (the reference's per-rank slice of a
/// global batch): `n / world` items each; `n` must be a multiple of `world` (checked by the caller's config).
pub fn shard(n: usize, rank: usize, world: usize) -> Range<usize> {
    let per = n / world.max(1);
    rank * per..(rank + 1) * per
}

/// Gradient bucket size of [`all_reduce_flat`]: PyTorch DDP's default, 25 MiB.
pub const BUCKET_BYTES: usize = 25 << 20;

/// Sums `tensors` over ranks in place, packed into flat buckets of at most `bucket_bytes` (one collective per
/// bucket rather than one per tensor, as DDP does). Tensors of one bucket share a kind and a device; a tensor
/// larger than a bucket gets one of its own.
pub fn all_reduce_flat(
    c: &mut dyn Collective,
    tensors: &[Tensor],
    bucket_bytes: usize,
) -> Result<(), DistError> {
    let mut start = 0;
    while start < tensors.len() {
        let first = &tensors[start];
        let (kind, device) = (first.kind(), first.device());
        let mut end = start;
        let mut bytes = 0usize;
        while end < tensors.len() {
            let t = &tensors[end];
            let b = t.numel() * t.kind().elt_size_in_bytes();
            if t.kind() != kind || t.device() != device || (end > start && bytes + b > bucket_bytes)
            {
                break;
            }
            bytes += b;
            end += 1;
        }
        let group = &tensors[start..end];
        if group.len() == 1 && first.is_contiguous() {
            c.all_reduce_sum(first)?;
        } else {
            let flat: Vec<Tensor> = group.iter().map(|t| t.reshape([-1])).collect();
            let flat =
                Tensor::f_cat(&flat, 0).map_err(DistError::tch("packing a gradient bucket"))?;
            c.all_reduce_sum(&flat)?;
            let mut offset = 0i64;
            for t in group {
                let n = t.numel() as i64;
                let part = flat.narrow(0, offset, n).view(t.size().as_slice());
                t.shallow_clone()
                    .f_copy_(&part)
                    .map_err(DistError::tch("unpacking a gradient bucket"))?;
                offset += n;
            }
        }
        start = end;
    }
    Ok(())
}

/// Whether the host backends can sum tensors of this kind.
pub(crate) fn summable(kind: Kind) -> bool {
    matches!(kind, Kind::Float | Kind::Double | Kind::Int | Kind::Int64)
}

/// The default timeouts, for callers that build a world without the environment.
pub fn default_timeouts() -> Timeouts {
    Timeouts {
        rendezvous: Duration::from_secs(120),
        collective: Duration::from_secs(1800),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_disjoint_and_cover() {
        for world in 1..=8usize {
            let n = 24 * world;
            let mut seen = vec![0u8; n];
            for r in 0..world {
                for i in shard(n, r, world) {
                    seen[i] += 1;
                }
            }
            assert!(seen.iter().all(|&c| c == 1), "world {world}");
        }
    }
}
