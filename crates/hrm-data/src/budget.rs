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

/// The CPUs this process may run on (`Cpus_allowed_list` of `/proc/self/status`), e.g. `[0, 1]`.
fn allowed_cpus() -> Option<Vec<usize>> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
    let mut cpus = Vec::new();
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (usize, usize) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
        if b < a || b - a > 1 << 16 {
            return None;
        }
        cpus.extend(a..=b);
    }
    (!cpus.is_empty()).then_some(cpus)
}

/// (busy, total) clock ticks of the allowed CPUs from `/proc/stat`: busy counts everything but idle and iowait
/// (steal included: a core the hypervisor gave to someone else is not free).
fn cpu_ticks(cpus: &[usize]) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let (mut busy, mut total) = (0u64, 0u64);
    for line in stat.lines() {
        let mut fields = line.split_whitespace();
        let Some(id) = fields.next().and_then(|n| n.strip_prefix("cpu")) else {
            continue;
        };
        let Ok(id) = id.parse::<usize>() else {
            continue; // the aggregate `cpu` line
        };
        if !cpus.contains(&id) {
            continue;
        }
        let v: Vec<u64> = fields.take(8).filter_map(|f| f.parse().ok()).collect();
        if v.len() < 5 {
            return None;
        }
        let sum: u64 = v.iter().sum();
        total += sum;
        busy += sum - v[3] - v[4];
    }
    (total > 0).then_some((busy, total))
}

/// This process's user + system clock ticks (`/proc/self/stat` fields 14 and 15).
fn own_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = after.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// How many of this process's allowed CPUs other processes left free over `sample` (watched from `/proc/stat`,
/// this process's own use taken out), rounded, at least 1; `None` where `/proc` cannot tell (then use every
/// core). A CPU-bound neighbour on one of two cores leaves 1.
pub fn free_cores(sample: std::time::Duration) -> Option<usize> {
    let cpus = allowed_cpus()?;
    let (b0, s0) = (cpu_ticks(&cpus)?, own_ticks()?);
    std::thread::sleep(sample);
    let (b1, s1) = (cpu_ticks(&cpus)?, own_ticks()?);
    let (busy, total) = (b1.0.saturating_sub(b0.0), b1.1.saturating_sub(b0.1));
    if total == 0 {
        return None;
    }
    let ticks_per_core = total as f64 / cpus.len() as f64;
    let others = (busy.saturating_sub(s1.saturating_sub(s0))) as f64 / ticks_per_core;
    Some(((cpus.len() as f64 - others).round() as usize).clamp(1, cpus.len()))
}

#[cfg(test)]
mod cores_tests {
    use super::*;

    #[test]
    fn a_busy_neighbour_takes_a_core() {
        let Some(all) = allowed_cpus() else {
            return; // no /proc here
        };
        let quiet = free_cores(std::time::Duration::from_millis(300)).unwrap();
        assert!((1..=all.len()).contains(&quiet));
        // A busy-looping child process (not this one: its own use is taken out) takes one core.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
        let busy = free_cores(std::time::Duration::from_millis(500)).unwrap();
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            busy < quiet || quiet == 1,
            "free {quiet} alone, {busy} beside a busy loop"
        );
    }
}
