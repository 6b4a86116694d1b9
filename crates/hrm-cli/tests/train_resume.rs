//! End-to-end tests of `hrm train` and `hrm predict` as processes: a run killed with SIGKILL and resumed with
//! `--resume` logs exactly the metrics of an uninterrupted run (also with an EMA, whose shadow resumes bit for
//! bit); predict writes a readable folder; a missing dataset names the build command.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{hrm, hrm_ok, lines, send_signal, setup, train_args, HRM};

fn latest_step(run: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(run.join("checkpoints/latest")).ok()?;
    text.trim().strip_prefix("step_")?.parse().ok()
}

#[test]
fn killed_run_resumes_with_identical_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, recipe) = setup(tmp.path());
    let (data_s, recipe_s) = (data.to_str().unwrap(), recipe.to_str().unwrap());

    let full = tmp.path().join("full");
    let out = hrm(&train_args(recipe_s, data_s, full.to_str().unwrap()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The same run, slowed down so that it is still running when a rolling checkpoint appears; then SIGKILL.
    let part = tmp.path().join("part");
    let mut args = train_args(recipe_s, data_s, part.to_str().unwrap());
    args.extend(["--throttle-ms", "40"]);
    kill_after_checkpoint(&args, &part);
    let killed_at = latest_step(&part).unwrap();
    let full_lines = lines(&full);
    assert!(
        lines(&part).len() < full_lines.len(),
        "the killed run must be incomplete"
    );

    resume(&part);
    let part_lines = lines(&part);
    assert_eq!(
        part_lines.len(),
        full_lines.len(),
        "killed at step {killed_at}"
    );
    for (i, (a, b)) in part_lines.iter().zip(&full_lines).enumerate() {
        assert_eq!(
            a, b,
            "metrics line {i} differs (killed at step {killed_at})"
        );
    }
    let env: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(part.join("env.json")).unwrap()).unwrap();
    assert_eq!(env["resumes"].as_array().map(Vec::len), Some(1));

    // Resuming a finished run does nothing and succeeds.
    resume(&part);
    assert_eq!(lines(&part), full_lines);

    // Predict from the resumed run's latest checkpoint.
    let preds = tmp.path().join("preds");
    let out = hrm(&[
        "predict",
        "--run",
        part.to_str().unwrap(),
        "--out",
        preds.to_str().unwrap(),
        "--device",
        "cpu",
        "--quiet",
        "--max-examples",
        "10",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = hrm_eval::read_predictions(&preds).expect("readable predictions");
    assert_eq!(p.len(), 10);
    assert_eq!(p.meta.num_segments, 3);
    // The traced rows are the first rows of different puzzles (2 test rows per synthetic puzzle).
    assert_eq!(p.segments.map(|s| s.rows), Some(vec![0, 2]));

    // A batch far larger than the rows is capped by the rows: no allocation for padding (issue 20).
    let huge = tmp.path().join("preds-huge");
    let out = hrm(&[
        "predict",
        "--run",
        part.to_str().unwrap(),
        "--out",
        huge.to_str().unwrap(),
        "--device",
        "cpu",
        "--quiet",
        "--max-examples",
        "10",
        "--batch-size",
        "10000000000",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        hrm_eval::read_predictions(&huge).expect("readable").len(),
        10
    );
}

#[test]
fn killed_ema_run_resumes_with_identical_metrics_and_shadow() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, recipe) = setup(tmp.path());
    let (data_s, recipe_s) = (data.to_str().unwrap(), recipe.to_str().unwrap());
    let ema = ["--set", "train.ema=true", "--set", "train.ema_rate=0.95"];

    let full = tmp.path().join("full");
    let mut args = train_args(recipe_s, data_s, full.to_str().unwrap());
    args.extend(ema);
    hrm_ok(&args);

    let part = tmp.path().join("part");
    let mut args = train_args(recipe_s, data_s, part.to_str().unwrap());
    args.extend(ema);
    args.extend(["--throttle-ms", "40"]);
    kill_after_checkpoint(&args, &part);
    let killed_at = latest_step(&part).unwrap();
    assert!(
        lines(&part).len() < lines(&full).len(),
        "killed at step {killed_at}"
    );
    resume(&part);
    assert_eq!(lines(&part), lines(&full), "killed at step {killed_at}");

    // The final EMA shadows agree bit for bit, and predict reads them.
    let shadow = |run: &Path| -> Vec<(String, tch::Tensor)> {
        let step = latest_step(run).expect("a final checkpoint");
        let file = run.join(format!("checkpoints/step_{step}/ema.safetensors"));
        let mut t = tch::Tensor::read_safetensors(&file).expect("ema.safetensors");
        t.sort_by(|a, b| a.0.cmp(&b.0));
        t
    };
    let (a, b) = (shadow(&part), shadow(&full));
    assert_eq!(a.len(), b.len());
    for ((na, ta), (nb, tb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        assert!(ta.equal(tb), "EMA tensor `{na}` differs after the resume");
    }
    let preds = tmp.path().join("preds");
    let run_s = part.to_str().unwrap();
    let preds_s = preds.to_str().unwrap();
    let out = hrm_ok(&[
        "predict", "--run", run_s, "--out", preds_s, "--device", "cpu", "--quiet",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("EMA"),
        "predict says it uses the EMA weights: {stderr}"
    );
}

#[test]
fn missing_dataset_names_the_build_command() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let out = hrm(&[
        "train",
        "tiny",
        "--set",
        "data.num_aug=3",
        "--run",
        run.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "hrm build-data --recipe tiny --set data.num_aug=3 --out /nonexistent-hrm-datasets/"
        ),
        "{err}"
    );
    assert!(!run.exists(), "no run folder is created without a dataset");
}

/// Starts `hrm <args>` (a throttled train run into `part`), waits for a rolling checkpoint at step 12 or later,
/// and kills it with SIGKILL.
fn kill_after_checkpoint(args: &[&str], part: &Path) {
    let mut child = Command::new(HRM)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning hrm train");
    let start = Instant::now();
    while latest_step(part).is_none_or(|s| s < 12) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the throttled run ended before it could be interrupted"
        );
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run ended before the kill"
    );
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
}

/// Runs `hrm train --resume <run>` on CPU and asserts that it succeeds.
fn resume(run: &Path) {
    hrm_ok(&[
        "train",
        "--resume",
        run.to_str().unwrap(),
        "--device",
        "cpu",
        "--quiet",
    ]);
}

#[test]
fn sigint_stops_after_the_step_with_a_checkpoint_and_resume_is_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, recipe) = setup(tmp.path());
    let (data_s, recipe_s) = (data.to_str().unwrap(), recipe.to_str().unwrap());
    let full = tmp.path().join("full");
    hrm_ok(&train_args(recipe_s, data_s, full.to_str().unwrap()));

    for signal in ["INT", "TERM"] {
        let part = tmp.path().join(format!("part-{signal}"));
        let mut args = train_args(recipe_s, data_s, part.to_str().unwrap());
        args.extend(["--throttle-ms", "40"]);
        let child = Command::new(HRM)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning hrm train");
        // Wait for a few logged steps (not a checkpoint: the stop must write its own), then signal.
        let start = Instant::now();
        while std::fs::read_to_string(part.join("metrics.jsonl")).map_or(0, |t| t.lines().count())
            < 3
        {
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "no metrics appeared"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        send_signal(child.id(), signal);
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "{stderr}");
        assert!(
            stderr.contains(&format!("hrm train --resume {}", part.display())),
            "{stderr}"
        );
        let stopped_at = latest_step(&part).expect("a checkpoint written at the stop");
        assert!(
            lines(&part).len() < lines(&full).len(),
            "stopped at {stopped_at}"
        );
        resume(&part);
        assert_eq!(lines(&part), lines(&full), "{signal} at step {stopped_at}");
    }
}
