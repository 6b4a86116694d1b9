//! The NCCL backend: gradients, puzzle rows and carries move between GPUs through NCCL (the library PyTorch's
//! `ProcessGroupNCCL` uses, here the `libnccl.so.2` of the torch wheel), bound by `cudarc` with dynamic
//! loading, so that the workspace builds and its tests run on machines without CUDA. The rendezvous and the
//! host-side agreement (stopping, small messages) go over the TCP star of [`crate::tcp`]: rank 0 publishes the
//! NCCL unique id there.
//!
//! Collectives are enqueued on the legacy default CUDA stream (stream 0), which is the stream libtorch uses
//! when no other is set (tch never sets one), so they are ordered after the backward kernels that produced the
//! gradients and before the optimizer's kernels, without a host synchronisation.
#![allow(unsafe_code)]

use cudarc::nccl::sys as nccl;
use tch::{Device, Kind, Tensor};

use crate::wire::HostCollective;
use crate::{Collective, DistError, Timeouts, WorldEnv};

/// One rank's NCCL communicator and its TCP control channel.
pub struct NcclCollective {
    comm: nccl::ncclComm_t,
    control: HostCollective,
    device: usize,
    /// Set when a collective failed (a peer gone): the communicator is then aborted, not destroyed, since
    /// `ncclCommDestroy` would wait for operations that a dead peer never completes.
    failed: bool,
}

// SAFETY: an NCCL communicator may be used from any one thread at a time; the trainer owns this value and
// calls it from one thread.
unsafe impl Send for NcclCollective {}

impl std::fmt::Debug for NcclCollective {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NcclCollective")
            .field("rank", &self.control.rank())
            .field("world_size", &self.control.world_size())
            .field("device", &self.device)
            .finish()
    }
}

/// Whether `libnccl.so` can be loaded (cudarc looks for `libnccl.so` and a few versioned names, not the
/// wheel's `libnccl.so.2`; `cargo xtask setup` links `libnccl.so` beside libtorch, on the binaries' rpath).
pub fn nccl_available() -> bool {
    // SAFETY: only tries to dlopen candidate names.
    unsafe { nccl::is_culib_present() && cudarc::runtime::sys::is_culib_present() }
}

/// The loaded NCCL's version code (2.28.9 is 22809).
pub fn nccl_version() -> Result<i32, String> {
    cudarc::nccl::result::get_nccl_version().map_err(|e| format!("ncclGetVersion: {e:?}"))
}

/// Meets the other ranks over TCP, then creates the NCCL communicator of rank `env.rank` on CUDA device
/// `device` (normally `LOCAL_RANK`). Must only be called once libtorch reports CUDA.
pub fn connect(
    env: &WorldEnv,
    timeouts: Timeouts,
    device: usize,
) -> Result<NcclCollective, DistError> {
    let rank = env.rank;
    let nccl_err = |message: String| DistError::Nccl { rank, message };
    if !nccl_available() {
        return Err(nccl_err(
            "libnccl.so or libcudart could not be loaded: run `cargo xtask setup` (it links libnccl.so \
             beside libtorch), or put a folder holding a `libnccl.so` link to the torch wheel's \
             nvidia/nccl/lib/libnccl.so.2 on LD_LIBRARY_PATH; or train with HRM_DIST_BACKEND=tcp"
                .into(),
        ));
    }
    let mut control = crate::tcp::connect(env, timeouts)?;
    // SAFETY: plain runtime call with a device index.
    let status = unsafe { cudarc::runtime::sys::cudaSetDevice(device as i32) };
    if status != cudarc::runtime::sys::cudaError_t::cudaSuccess {
        return Err(nccl_err(format!(
            "cudaSetDevice({device}) failed: {status:?}"
        )));
    }
    let id_bytes = if rank == 0 {
        let id = cudarc::nccl::result::get_uniqueid()
            .map_err(|e| nccl_err(format!("ncclGetUniqueId: {e:?}")))?;
        id.internal.iter().map(|&c| c as u8).collect()
    } else {
        Vec::new()
    };
    let id_bytes = control.broadcast_bytes(id_bytes, 0)?;
    let mut id = nccl::ncclUniqueId { internal: [0; 128] };
    if id_bytes.len() != id.internal.len() {
        return Err(nccl_err(format!(
            "the unique id from rank 0 has {} bytes, expected 128",
            id_bytes.len()
        )));
    }
    for (d, s) in id.internal.iter_mut().zip(&id_bytes) {
        *d = *s as _;
    }
    let mut comm: nccl::ncclComm_t = std::ptr::null_mut();
    // SAFETY: `comm` is a valid out-pointer; the id came from rank 0's ncclGetUniqueId.
    unsafe {
        cudarc::nccl::result::comm_init_rank(&mut comm, env.world_size as i32, id, rank as i32)
    }
    .map_err(|e| nccl_err(format!("ncclCommInitRank: {e:?}")))?;
    Ok(NcclCollective {
        comm,
        control,
        device,
        failed: false,
    })
}

impl Drop for NcclCollective {
    fn drop(&mut self) {
        // SAFETY: the communicator was created by ncclCommInitRank and is destroyed or aborted once.
        let _ = unsafe {
            if self.failed {
                cudarc::nccl::result::comm_abort(self.comm)
            } else {
                cudarc::nccl::result::comm_destroy(self.comm)
            }
        };
    }
}

impl NcclCollective {
    fn check(&self, op: &'static str, t: &Tensor) -> Result<(), DistError> {
        let ok = t.device() == Device::Cuda(self.device) && t.is_contiguous();
        if ok {
            return Ok(());
        }
        Err(DistError::Collective {
            op,
            rank: self.rank(),
            message: format!(
                "needs a contiguous tensor on cuda:{}, got one on {:?} (contiguous: {})",
                self.device,
                t.device(),
                t.is_contiguous()
            ),
        })
    }

    fn fail(&mut self, op: &'static str, e: cudarc::nccl::result::NcclError) -> DistError {
        self.failed = true;
        DistError::Nccl {
            rank: self.rank(),
            message: format!("{op}: {e:?}"),
        }
    }
}

fn sum_type(kind: Kind) -> Option<nccl::ncclDataType_t> {
    Some(match kind {
        Kind::Float => nccl::ncclDataType_t::ncclFloat32,
        Kind::Double => nccl::ncclDataType_t::ncclFloat64,
        Kind::Int => nccl::ncclDataType_t::ncclInt32,
        Kind::Int64 => nccl::ncclDataType_t::ncclInt64,
        _ => return None,
    })
}

impl Collective for NcclCollective {
    fn rank(&self) -> usize {
        self.control.rank()
    }

    fn world_size(&self) -> usize {
        self.control.world_size()
    }

    fn backend(&self) -> &'static str {
        "nccl"
    }

    fn all_reduce_sum(&mut self, t: &Tensor) -> Result<(), DistError> {
        self.check("all_reduce", t)?;
        let dt = sum_type(t.kind()).ok_or_else(|| DistError::Collective {
            op: "all_reduce",
            rank: self.rank(),
            message: format!("cannot sum tensors of kind {:?}", t.kind()),
        })?;
        let p = t.data_ptr();
        // SAFETY: `p` points at `numel` contiguous elements of type `dt` on this rank's device; in place.
        unsafe {
            cudarc::nccl::result::all_reduce(
                p,
                p,
                t.numel(),
                dt,
                nccl::ncclRedOp_t::ncclSum,
                self.comm,
                std::ptr::null_mut(),
            )
        }
        .map_err(|e| self.fail("ncclAllReduce", e))?;
        Ok(())
    }

    fn all_gather(&mut self, t: &Tensor) -> Result<Tensor, DistError> {
        self.check("all_gather", t)?;
        let mut shape = t.size();
        if shape.is_empty() {
            shape.push(1);
        }
        shape[0] *= self.world_size() as i64;
        let out = Tensor::f_empty(shape.as_slice(), (t.kind(), t.device()))
            .map_err(DistError::tch("allocating the all_gather output"))?;
        let bytes = t.numel() * t.kind().elt_size_in_bytes();
        // SAFETY: `out` holds world x `bytes` bytes on the same device; send and receive do not overlap.
        unsafe {
            cudarc::nccl::result::all_gather(
                t.data_ptr(),
                out.data_ptr(),
                bytes,
                nccl::ncclDataType_t::ncclUint8,
                self.comm,
                std::ptr::null_mut(),
            )
        }
        .map_err(|e| self.fail("ncclAllGather", e))?;
        Ok(out)
    }

    fn broadcast(&mut self, t: &Tensor, root: usize) -> Result<(), DistError> {
        self.check("broadcast", t)?;
        let p = t.data_ptr();
        let bytes = t.numel() * t.kind().elt_size_in_bytes();
        // SAFETY: in place on `bytes` contiguous bytes of this rank's device.
        unsafe {
            cudarc::nccl::result::broadcast(
                p,
                p,
                bytes,
                nccl::ncclDataType_t::ncclUint8,
                root as i32,
                self.comm,
                std::ptr::null_mut(),
            )
        }
        .map_err(|e| self.fail("ncclBroadcast", e))?;
        Ok(())
    }

    fn max_u64(&mut self, value: u64) -> Result<u64, DistError> {
        let r = self.control.max_u64(value);
        self.failed |= r.is_err();
        r
    }

    fn broadcast_bytes(&mut self, bytes: Vec<u8>, root: usize) -> Result<Vec<u8>, DistError> {
        let r = self.control.broadcast_bytes(bytes, root);
        self.failed |= r.is_err();
        r
    }
}

#[cfg(test)]
mod tests {
    /// `cargo xtask setup` links `libnccl.so` beside libtorch; without that link the NCCL backend cannot start
    /// on a GPU machine, so a lost link fails here, on machines without a GPU too.
    #[test]
    fn nccl_and_the_cuda_runtime_load() {
        assert!(super::nccl_available());
        // The wheel's NCCL 2.28, which the `nccl-02028` bindings describe.
        let v = super::nccl_version().unwrap();
        assert!((22800..22900).contains(&v), "NCCL version code {v}");
    }
}
