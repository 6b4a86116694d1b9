//! Build sizes checked before building: a cap on augmentations and the planned bytes against the free disk
//! space of the output folder's file system, so an absurd request is refused at once with its numbers
//! instead of running for hours at growing memory. (No reference module: the reference has no such check.)

use crate::error::DataError;
use std::path::Path;

/// The largest accepted `num_aug`.
///
/// The reference's largest setting is 1000 (the ARC and Sudoku recipes of the paper). Ten times that leaves
/// room for experiments while keeping a build finite: an ARC-AGI-1 build at 10 000 augmentations already
/// plans about 70 GB. A larger value is almost surely a typo (`1e11`) and is refused before any work.
pub const MAX_NUM_AUG: usize = 10_000;

/// Refuses `num_aug` above [`MAX_NUM_AUG`], naming the option and both numbers.
pub fn check_num_aug(num_aug: usize) -> Result<(), DataError> {
    if num_aug > MAX_NUM_AUG {
        return Err(DataError::config(
            "num_aug",
            format!(
                "{num_aug} augmentations is above the cap of {MAX_NUM_AUG} (the reference uses at most 1000); \
                 refused before building"
            ),
        ));
    }
    Ok(())
}

/// The planned size of a build: at most this many rows of `seq_len` tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildPlan {
    /// Rows (examples) of both splits together, an upper bound.
    pub rows: u128,
    /// Tokens per row.
    pub seq_len: usize,
}

impl BuildPlan {
    /// Bytes on disk: inputs and labels (one byte per token each) plus at most 8 bytes of index per row.
    pub fn bytes(&self) -> u128 {
        self.rows.saturating_mul(2 * self.seq_len as u128 + 8)
    }
}

/// The bytes available to this user on the file system holding `path` (or its nearest existing ancestor);
/// `None` where it cannot be told (not a Unix system, or the call fails).
pub fn available_space(path: &Path) -> Option<u64> {
    let mut p = path;
    while !p.exists() {
        p = p.parent()?;
        if p.as_os_str().is_empty() {
            p = Path::new(".");
        }
    }
    statvfs_available(p)
}

#[cfg(unix)]
fn statvfs_available(path: &Path) -> Option<u64> {
    let s = rustix::fs::statvfs(path).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

#[cfg(not(unix))]
fn statvfs_available(_path: &Path) -> Option<u64> {
    None
}

/// Refuses a build whose planned bytes exceed the free space where `out_dir` will be written (an existing
/// dataset there is replaced only after the new one is complete, so both must fit at once).
pub fn check_disk_space(out_dir: &Path, plan: &BuildPlan) -> Result<(), DataError> {
    let Some(free) = available_space(out_dir) else {
        return Ok(());
    };
    let need = plan.bytes();
    if need > u128::from(free) {
        return Err(DataError::config(
            "out",
            format!(
                "the build plans up to {} rows of {} tokens, about {} bytes ({:.1} GB), but the file system of \
                 {} has {free} bytes ({:.1} GB) free; lower num_aug or free some space",
                plan.rows,
                plan.seq_len,
                need,
                need as f64 / 1e9,
                out_dir.display(),
                free as f64 / 1e9
            ),
        ));
    }
    Ok(())
}

/// `MemAvailable` of `/proc/meminfo` in bytes (`None` where that file does not exist or says nothing): what
/// memory checks made before a large allocation compare against.
pub fn available_memory_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
