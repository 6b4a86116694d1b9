//! The one door from device tensors to host numbers on the training path, counted, so that a test can prove
//! that a training step reads nothing back from the device (issue "no host synchronisation inside a step").

use std::sync::atomic::{AtomicU64, Ordering};

use tch::{Device, Tensor};

static READS: AtomicU64 = AtomicU64::new(0);

/// Device-to-host reads made through this module since the process started.
pub fn reads() -> u64 {
    READS.load(Ordering::Relaxed)
}

/// Counts one device-to-host read made elsewhere (for callers that read with their own conversion).
pub fn count_read() {
    READS.fetch_add(1, Ordering::Relaxed);
}

/// The values of `t` as f64 on the host (one read; waits for the device).
pub fn read_f64(t: &Tensor) -> Result<Vec<f64>, tch::TchError> {
    count_read();
    let t = t
        .f_to_device(Device::Cpu)?
        .f_to_kind(tch::Kind::Double)?
        .f_contiguous()?
        .f_view([-1])?;
    Vec::<f64>::try_from(&t)
}

/// The values of `t` as i64 on the host (one read; waits for the device).
pub fn read_i64(t: &Tensor) -> Result<Vec<i64>, tch::TchError> {
    count_read();
    let t = t
        .f_to_device(Device::Cpu)?
        .f_to_kind(tch::Kind::Int64)?
        .f_contiguous()?
        .f_view([-1])?;
    Vec::<i64>::try_from(&t)
}
