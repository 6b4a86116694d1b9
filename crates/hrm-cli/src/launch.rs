//! `hrm train --nproc N`: the local launcher, doing what `torchrun --nproc-per-node N --no-python hrm train ...`
//! does on one node: N copies of this command, each with `RANK`, `LOCAL_RANK`, `WORLD_SIZE`,
//! `LOCAL_WORLD_SIZE`, `MASTER_ADDR` and `MASTER_PORT` set, waited for together.
//!
//! The ranks run in their own process group, so a Ctrl-C (or a SIGTERM sent to the launcher) reaches each rank
//! once, through the launcher: the ranks agree to stop after the same step and rank 0 writes a checkpoint.
//! When one rank fails, the others fail at their next collective (the peer is gone); any rank still running
//! 30 s later is killed.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// How long the other ranks may take to notice a failed rank before they are killed.
const GRACE: Duration = Duration::from_secs(30);

/// The arguments of this `hrm train` without the launcher's own flags (`--nproc`, `--master-port`), with
/// `--run DIR` added when the command starts a new run without one (every rank must use the same folder), and
/// without `--set` when `drop_sets` (a resume whose overrides the launcher already applied to the run folder).
pub fn rank_args(args: &[String], run_dir: Option<&Path>, drop_sets: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip = false;
    for a in args {
        if skip {
            skip = false;
            continue;
        }
        if a == "--nproc" || a == "--master-port" || (drop_sets && a == "--set") {
            skip = true;
            continue;
        }
        if a.starts_with("--nproc=")
            || a.starts_with("--master-port=")
            || (drop_sets && a.starts_with("--set="))
        {
            continue;
        }
        out.push(a.clone());
    }
    if let Some(dir) = run_dir {
        out.push("--run".into());
        out.push(dir.display().to_string());
    }
    out
}

/// A free TCP port on the loopback interface (bound and released; the rendezvous binds it again at once).
fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("finding a free port for the rendezvous")?;
    Ok(l.local_addr()?.port())
}

/// Spawns `n` ranks of `hrm train <rank_args>` and waits for all of them; the launcher's exit mirrors theirs
/// (0 when all succeeded, 130 when they stopped on request).
pub fn spawn_ranks(n: usize, rank_args: &[String], master_port: Option<u16>) -> Result<()> {
    if n == 0 {
        bail!("--nproc must be at least 1");
    }
    if std::env::var_os("WORLD_SIZE").is_some() {
        bail!(
            "--nproc launches the ranks itself, but WORLD_SIZE is already set (by torchrun or srun?); \
             drop --nproc when a launcher starts the ranks"
        );
    }
    let port = match master_port {
        Some(p) => p,
        None => free_port()?,
    };
    let exe = std::env::current_exe().context("locating the hrm binary")?;
    eprintln!("launching {n} ranks on 127.0.0.1:{port}");
    let mut children: Vec<Child> = Vec::with_capacity(n);
    for rank in 0..n {
        use std::os::unix::process::CommandExt;
        let child = Command::new(&exe)
            .arg("train")
            .args(rank_args)
            .env("RANK", rank.to_string())
            .env("LOCAL_RANK", rank.to_string())
            .env("WORLD_SIZE", n.to_string())
            .env("LOCAL_WORLD_SIZE", n.to_string())
            .env("MASTER_ADDR", "127.0.0.1")
            .env("MASTER_PORT", port.to_string())
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting rank {rank}"))?;
        children.push(child);
    }
    wait_all(children)
}

/// Waits for every rank, forwarding one stop request, and kills the stragglers once a rank has failed.
fn wait_all(mut children: Vec<Child>) -> Result<()> {
    let mut status: Vec<Option<ExitStatus>> = vec![None; children.len()];
    let mut forwarded = false;
    let mut failed_at: Option<Instant> = None;
    while status.iter().any(Option::is_none) {
        if hrm_train::stop::requested() && !forwarded {
            forwarded = true;
            for c in &children {
                if let Some(pid) = rustix::process::Pid::from_raw(c.id() as i32) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
                }
            }
        }
        for (r, c) in children.iter_mut().enumerate() {
            if status[r].is_none() {
                if let Some(s) = c
                    .try_wait()
                    .with_context(|| format!("waiting for rank {r}"))?
                {
                    if !s.success() && s.code() != Some(130) && failed_at.is_none() {
                        failed_at = Some(Instant::now());
                    }
                    status[r] = Some(s);
                }
            }
        }
        if failed_at.is_some_and(|t| t.elapsed() > GRACE) {
            for (r, c) in children.iter_mut().enumerate() {
                if status[r].is_none() {
                    eprintln!(
                        "rank {r} still runs {} s after a rank failed: killing it",
                        GRACE.as_secs()
                    );
                    let _ = c.kill();
                    status[r] = c.wait().ok();
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status: Vec<ExitStatus> = status.into_iter().flatten().collect();
    if status.iter().all(ExitStatus::success) {
        return Ok(());
    }
    if status.iter().all(|s| s.success() || s.code() == Some(130)) {
        std::process::exit(130);
    }
    let failed: Vec<String> = status
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.success())
        .map(|(r, s)| format!("rank {r}: {s}"))
        .collect();
    bail!(
        "{} of {} ranks failed ({}); each printed its error above",
        failed.len(),
        status.len(),
        failed.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::rank_args;
    use std::path::Path;

    #[test]
    fn launcher_flags_are_dropped_and_the_run_folder_fixed() {
        let args: Vec<String> = [
            "tiny",
            "--nproc",
            "2",
            "--set",
            "a=1",
            "--master-port=5",
            "--quiet",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            rank_args(&args, Some(Path::new("runs/x")), false),
            ["tiny", "--set", "a=1", "--quiet", "--run", "runs/x"]
        );
        assert_eq!(rank_args(&args[..3], None, false), ["tiny"]);
        assert_eq!(rank_args(&args, None, true), ["tiny", "--quiet"]);
    }
}
