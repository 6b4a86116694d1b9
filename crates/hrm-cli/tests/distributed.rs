//! `hrm train` on several ranks, as processes on the CPU (TCP backend): `--nproc 2` stopped by SIGINT and
//! resumed with `--nproc 2` logs the metrics of a single-process run; the torchrun form (the launch variables
//! set by hand, as torchrun sets them) trains the same way; a rank that never comes, a rank that dies and a
//! batch that does not split end every rank with the documented error instead of a hang.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{hrm_command as command, hrm_ok as run_ok, send_signal, setup};
use hrm_testkit::free_port;

/// `train_args` of [`common`] for paths.
fn train_args<'a>(recipe: &'a Path, data: &'a Path, run: &'a Path) -> Vec<&'a str> {
    common::train_args(
        recipe.to_str().unwrap(),
        data.to_str().unwrap(),
        run.to_str().unwrap(),
    )
}

fn metrics(run: &Path) -> Vec<serde_json::Value> {
    common::lines(run)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The runs log the same lines, every value within `rel` (the ranks add gradients in another order).
fn assert_same_metrics(a: &Path, b: &Path, rel: f64) {
    let (a, b) = (metrics(a), metrics(b));
    assert_eq!(a.len(), b.len(), "number of metrics lines");
    for (x, y) in a.iter().zip(&b) {
        let (x, y) = (x.as_object().unwrap(), y.as_object().unwrap());
        assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>());
        for (k, v) in x {
            let (v, w) = (v.as_f64().unwrap(), y[k].as_f64().unwrap());
            assert!(
                (v - w).abs() <= rel * v.abs().max(1.0),
                "step {}: {k} {v} vs {w}",
                x["step"]
            );
        }
    }
}

fn wait_for_lines(run: &Path, n: usize, child: &mut Child) {
    let start = Instant::now();
    while std::fs::read_to_string(run.join("metrics.jsonl")).map_or(0, |t| t.lines().count()) < n {
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no metrics appeared"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `hrm train` as rank `rank` of `world`, with the variables torchrun sets.
fn torchrun_rank(args: &[&str], rank: usize, world: usize, port: u16) -> Command {
    let mut c = command(args);
    c.env("RANK", rank.to_string())
        .env("LOCAL_RANK", rank.to_string())
        .env("WORLD_SIZE", world.to_string())
        .env("LOCAL_WORLD_SIZE", world.to_string())
        .env("MASTER_ADDR", "127.0.0.1")
        .env("MASTER_PORT", port.to_string())
        .env("HRM_DIST_TIMEOUT_S", "30")
        .env("HRM_DIST_OP_TIMEOUT_S", "60")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

#[test]
fn two_ranks_stopped_and_resumed_match_one_process() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, recipe) = setup(tmp.path());
    let full = tmp.path().join("full");
    run_ok(&train_args(&recipe, &data, &full));

    let part = tmp.path().join("part");
    let mut args = train_args(&recipe, &data, &part);
    args.extend(["--nproc", "2", "--throttle-ms", "40"]);
    let mut child = command(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_lines(&part, 3, &mut child);
    send_signal(child.id(), "INT");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("launching 2 ranks"), "{stderr}");
    assert!(
        stderr.contains(&format!("hrm train --resume {}", part.display())),
        "{stderr}"
    );
    assert!(metrics(&part).len() < metrics(&full).len());
    run_ok(&[
        "train",
        "--resume",
        part.to_str().unwrap(),
        "--device",
        "cpu",
        "--quiet",
        "--nproc",
        "2",
    ]);
    assert_same_metrics(&full, &part, 1e-5);
}

#[test]
fn torchrun_variables_train_the_same_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, recipe) = setup(tmp.path());
    let full = tmp.path().join("full");
    run_ok(&train_args(&recipe, &data, &full));
    // A world of one rank (torchrun --nproc-per-node 1) takes the distributed code path too.
    for world in [1usize, 2] {
        let run = tmp.path().join(format!("ranks-{world}"));
        let args = train_args(&recipe, &data, &run);
        let port = free_port();
        let children: Vec<Child> = (0..world)
            .map(|r| torchrun_rank(&args, r, world, port).spawn().unwrap())
            .collect();
        for (r, c) in children.into_iter().enumerate() {
            let out = c.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "world {world} rank {r}: {stderr}");
            if r == 0 {
                assert!(
                    stderr.contains(&format!("{world} ranks over Tcp")),
                    "{stderr}"
                );
            }
        }
        assert_same_metrics(&full, &run, 1e-5);
    }
}

#[test]
fn a_rank_that_never_comes_is_named_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, recipe) = setup(tmp.path());
    let run = tmp.path().join("alone");
    let out = torchrun_rank(&train_args(&recipe, &data, &run), 0, 2, free_port())
        .env("HRM_DIST_TIMEOUT_S", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("rank(s) [1] did not join within 1 s"),
        "{stderr}"
    );
    assert!(!run.exists(), "no run folder before every rank joined");
}

#[test]
fn a_dead_rank_ends_the_others_with_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, recipe) = setup(tmp.path());
    let run = tmp.path().join("dies");
    let mut args = train_args(&recipe, &data, &run);
    args.extend(["--throttle-ms", "40"]);
    let port = free_port();
    let mut rank0 = torchrun_rank(&args, 0, 2, port).spawn().unwrap();
    let mut rank1 = torchrun_rank(&args, 1, 2, port).spawn().unwrap();
    wait_for_lines(&run, 2, &mut rank0);
    rank1.kill().unwrap();
    rank1.wait().unwrap();
    let start = Instant::now();
    let out = rank0.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("rank 1 closed its connection"), "{stderr}");
    assert!(start.elapsed() < Duration::from_secs(60));
}

#[test]
fn a_batch_that_does_not_split_is_refused_by_every_rank() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, recipe) = setup(tmp.path());
    let run = tmp.path().join("three");
    let mut args = train_args(&recipe, &data, &run);
    args.extend(["--nproc", "3"]);
    let out = command(&args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(
        stderr.matches("train.global_batch_size").count(),
        3,
        "{stderr}"
    );
    assert!(stderr.contains("3 of 3 ranks failed"), "{stderr}");
}
