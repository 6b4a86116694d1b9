//! The command line itself: the help text (a snapshot), a closed output pipe, conflicting flags, `info --json`.

use std::process::{Command, Stdio};

const HRM: &str = env!("CARGO_BIN_EXE_hrm");

#[test]
fn the_help_lists_every_command_as_the_snapshot_does() {
    let out = Command::new(HRM)
        .arg("--help")
        .output()
        .expect("hrm --help");
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let snapshot = include_str!("snapshots/help.txt");
    assert_eq!(
        help, snapshot,
        "the help changed; if on purpose, update tests/snapshots/help.txt with `hrm --help`"
    );
    for verb in [
        "build-data",
        "train",
        "predict",
        "solve",
        "eval",
        "report",
        "bench",
        "info",
    ] {
        assert!(
            help.lines().next().unwrap().contains(verb),
            "the summary line names {verb}"
        );
        assert!(help.contains(&format!("  {verb} ")), "{verb} is listed");
    }
}

#[test]
fn a_closed_output_pipe_ends_quietly() {
    for args in [&["info"][..], &["info", "--json"][..]] {
        let (reader, writer) = std::io::pipe().expect("a pipe");
        drop(reader);
        let out = Command::new(HRM)
            .args(args)
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .output()
            .expect("running hrm");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn info_json_names_the_default_device() {
    let out = Command::new(HRM).args(["info", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let device = v["default_device"].as_str().expect("default_device");
    assert!(device == "cpu" || device.starts_with("cuda"), "{device}");
    assert!(v["default_dtype"].as_str().is_some());
}

#[test]
fn recipe_settings_given_as_flags_are_refused_not_ignored() {
    let out = Command::new(HRM)
        .args([
            "build-data",
            "--recipe",
            "tiny",
            "--max-tasks",
            "3",
            "--out",
            "/nonexistent/x",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--max-tasks") && err.contains("--recipe"),
        "{err}"
    );
}

#[test]
fn rust_log_shows_library_events_and_the_default_stays_plain() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    hrm_train::synthetic::write_dataset(&data, 8, 1).expect("synthetic dataset");
    let recipe = tmp.path().join("tiny.toml");
    std::fs::write(&recipe, hrm_train::synthetic::TINY_RECIPE).unwrap();
    let run = |name: &str, rust_log: Option<&str>| -> String {
        let mut cmd = Command::new(HRM);
        cmd.args([
            "train",
            recipe.to_str().unwrap(),
            "--dataset",
            data.to_str().unwrap(),
        ])
        .args([
            "--run",
            tmp.path().join(name).to_str().unwrap(),
            "--device",
            "cpu",
            "--quiet",
        ])
        .env_remove("RUST_LOG");
        if let Some(level) = rust_log {
            cmd.env("RUST_LOG", level);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{stderr}");
        stderr
    };
    let debug = run("debug", Some("debug"));
    assert!(
        debug.contains("checkpoint written") && debug.contains("evaluated"),
        "{debug}"
    );
    // Output captured to a file or pipe carries no ANSI colour codes.
    assert!(!debug.contains('\u{1b}'), "escape codes in: {debug:?}");
    let plain = run("plain", None);
    assert!(
        !plain.contains("checkpoint written") && !plain.contains("DEBUG"),
        "{plain}"
    );
    assert!(plain.contains("starting run"), "{plain}");
}

/// Runs `hrm <args>` expecting a refusal; returns its stderr.
fn refused(args: &[&str]) -> String {
    let out = Command::new(HRM).args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{args:?} succeeded: {err}");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    err
}

#[test]
fn a_nan_or_negative_time_limit_is_refused_not_read_as_no_limit() {
    for v in ["NaN", "-1", "inf", "0"] {
        let err = refused(&[
            "solve",
            "--run",
            "/nonexistent-run",
            "/nonexistent.json",
            "--out",
            "/nonexistent-out",
            &format!("--max-seconds-per-task={v}"),
        ]);
        assert!(
            err.contains("--max-seconds-per-task")
                && err.contains("finite number of seconds above 0"),
            "{v}: {err}"
        );
    }
}

#[test]
fn all_reduce_bench_refuses_zero_ranks_and_more_than_memory_holds() {
    let err = refused(&["bench", "all-reduce", "--device", "cpu", "--ranks", "0"]);
    assert!(err.contains("--ranks"), "{err}");
    // 1000 ranks of the paper-size model's 104 MiB gradients: about 150 GiB, refused before any rank starts.
    let err = refused(&["bench", "all-reduce", "--device", "cpu", "--ranks", "1000"]);
    assert!(
        err.contains("--ranks 1000") && err.contains("GiB of memory is available"),
        "{err}"
    );
}

#[test]
fn a_bench_of_several_cycles_shows_progress_with_an_eta() {
    let out = Command::new(HRM)
        .args([
            "bench",
            "train-step",
            "--cycles",
            "1x1,1x2",
            "--hidden",
            "32",
            "--seq",
            "16",
        ])
        .args([
            "--batch", "2", "--layers", "1", "--steps", "1", "--device", "cpu",
        ])
        .output()
        .expect("running hrm");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("bench 1/2: cycles 1x1, 1 steps after 2 warm-up"),
        "{err}"
    );
    assert!(
        err.contains("bench 2/2: cycles 1x2") && err.contains("eta "),
        "{err}"
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(table.lines().count(), 3, "{table}");
}

#[test]
fn bench_contention_measures_alone_and_beside_a_busy_process() {
    let out = Command::new(HRM)
        .args([
            "bench",
            "contention",
            "--hidden",
            "32",
            "--seq",
            "16",
            "--layers",
            "1",
        ])
        .args([
            "--batch", "2", "--steps", "2", "--cycles", "1x1", "--device", "cpu", "--json",
        ])
        .output()
        .expect("running hrm");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    let (alone, shared) = (&v["alone"], &v["shared"]);
    assert!(alone["samples_per_sec"].as_f64().unwrap() > 0.0, "{v}");
    assert!(shared["samples_per_sec"].as_f64().unwrap() > 0.0, "{v}");
    // The default leaves the busy core alone.
    assert!(
        shared["threads"].as_u64() <= alone["threads"].as_u64(),
        "{v}"
    );
    assert!(v["ratio"].as_f64().is_some(), "{v}");
}
