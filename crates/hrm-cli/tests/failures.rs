//! Process-level tests of failures that must change nothing and say why (issue 20: a failed resume leaves the
//! run folder as it was, an impossible model is refused before allocation, settings that do not apply are
//! refused, errors name what is wrong).

mod common;

use common::*;

/// Runs `hrm <args>` expecting a refusal without a panic; returns its stderr.
fn refused(args: &[&str]) -> String {
    let out = hrm(args);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{args:?} succeeded: {err}");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    err
}

#[test]
fn a_resume_whose_dataset_moved_writes_no_override() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, recipe) = setup(tmp.path());
    let run = tmp.path().join("run");
    let (d, r, u) = (
        data.to_str().unwrap(),
        recipe.to_str().unwrap(),
        run.to_str().unwrap(),
    );
    let mut args = train_args(r, d, u);
    args.extend(["--set", "train.max_steps=3"]);
    hrm_ok(&args);
    let before = |f: &str| std::fs::read(run.join(f)).unwrap();
    let (recipe_before, env_before) = (before("recipe.toml"), before("env.json"));
    std::fs::rename(&data, tmp.path().join("moved")).unwrap();
    let err = refused(&[
        "train",
        "--resume",
        u,
        "--set",
        "train.max_steps=6",
        "--device",
        "cpu",
        "--quiet",
    ]);
    assert!(err.contains("does not exist"), "{err}");
    assert_eq!(before("recipe.toml"), recipe_before, "recipe.toml changed");
    assert_eq!(before("env.json"), env_before, "env.json changed");
    // With the dataset back, the same command extends the run and records it.
    std::fs::rename(tmp.path().join("moved"), &data).unwrap();
    hrm_ok(&[
        "train",
        "--resume",
        u,
        "--set",
        "train.max_steps=6",
        "--device",
        "cpu",
        "--quiet",
    ]);
    let recipe_after = String::from_utf8(before("recipe.toml")).unwrap();
    assert!(recipe_after.contains("max_steps = 6"), "{recipe_after}");
    assert!(String::from_utf8(before("env.json"))
        .unwrap()
        .contains("train.max_steps=6"));
}

#[test]
fn a_model_too_large_for_memory_is_refused_and_leaves_no_run_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, recipe) = setup(tmp.path());
    let run = tmp.path().join("run");
    let mut args = train_args(
        recipe.to_str().unwrap(),
        data.to_str().unwrap(),
        run.to_str().unwrap(),
    );
    args.extend(["--set", "arch.hidden_size=1000000"]);
    let err = refused(&args);
    assert!(
        err.contains("arch.hidden_size") && err.contains("GiB of memory is available"),
        "{err}"
    );
    assert!(!run.exists(), "a run folder was left behind");
}

#[test]
fn build_flags_that_the_task_does_not_read_are_refused() {
    let cases: [(&[&str], &str); 5] = [
        (
            &["arc1", "--subsample", "10"],
            "--subsample does not apply to arc1",
        ),
        (
            &["maze", "--canvas", "6"],
            "--canvas does not apply to maze",
        ),
        (
            &["sudoku", "--max-tasks", "3"],
            "--max-tasks does not apply to sudoku",
        ),
        (&["maze", "--seed", "3"], "--seed applies with --generate"),
        (&["arc1", "--set", "data.num_aug=3"], "needs --recipe"),
    ];
    for (flags, want) in cases {
        let mut args = vec!["build-data"];
        args.extend(flags);
        args.extend([
            "--out",
            "/nonexistent-hrm-out/x",
            "--data-dir",
            "/nonexistent-raw",
        ]);
        let err = refused(&args);
        assert!(err.contains(want), "{flags:?}: {err}");
    }
}

#[test]
fn a_missing_cuda_device_says_how_many_there_are() {
    let err = refused(&["train", "tiny", "--device", "cuda:99"]);
    assert!(
        err.contains("asks for CUDA device 99") && err.contains("this machine has"),
        "{err}"
    );
}

#[test]
fn an_empty_hrm_data_dir_is_named() {
    let out = hrm_command(&["build-data", "arc1", "--out", "/nonexistent-hrm-out/x"])
        .env("HRM_DATA_DIR", "")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("HRM_DATA_DIR is set but empty"), "{err}");
}

#[test]
fn the_lock_holder_is_shown_with_a_utc_date() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, recipe) = setup(tmp.path());
    let run = tmp.path().join("run");
    let _held = hrm_train::run::RunLock::acquire(&run).unwrap();
    let err = refused(&train_args(
        recipe.to_str().unwrap(),
        data.to_str().unwrap(),
        run.to_str().unwrap(),
    ));
    assert!(err.contains("in use by another"), "{err}");
    assert!(err.contains(" UTC") && !err.contains("unix time"), "{err}");
}

#[test]
fn resuming_a_run_that_hit_max_minutes_says_why_and_how_to_extend_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, recipe) = setup(tmp.path());
    let run = tmp.path().join("run");
    let u = run.to_str().unwrap();
    let mut args = train_args(recipe.to_str().unwrap(), data.to_str().unwrap(), u);
    // A tiny limit: the run stops by time after its first steps.
    args.extend(["--set", "train.max_minutes=0.0001"]);
    hrm_ok(&args);
    let out = hrm_ok(&["train", "--resume", u, "--device", "cpu", "--quiet"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("AlreadyFinished"), "{err}");
    assert!(
        err.contains("train.max_minutes = 0.0001")
            && err.contains(&format!(
                "hrm train --resume {u} --set train.max_minutes=0.0002"
            )),
        "{err}"
    );
}

#[test]
fn a_dataset_without_test_examples_logs_no_eval_accuracy() {
    use hrm_data::layout::SplitBuilder;
    let tmp = tempfile::tempdir().unwrap();
    let (_, recipe) = setup(tmp.path());
    let data = tmp.path().join("no-test");
    let seq = hrm_train::synthetic::SEQ_LEN;
    let mut train = SplitBuilder::new(seq);
    for id in 1..=4 {
        for k in 0..3u8 {
            let input: Vec<u8> = (0..seq as u8)
                .map(|t| 2 + (t + k + id as u8) % 10)
                .collect();
            train.push_example(&input, &input);
        }
        train.end_puzzle(id);
        train.end_group();
    }
    let mut ids = vec!["<blank>".to_string()];
    ids.extend((1..5).map(|i| format!("p{i}")));
    let test = SplitBuilder::new(seq).finish(12, 5);
    hrm_data::write_dataset(&data, &ids, &train.finish(12, 5), &test).unwrap();
    let run = tmp.path().join("run");
    let mut args = train_args(
        recipe.to_str().unwrap(),
        data.to_str().unwrap(),
        run.to_str().unwrap(),
    );
    args.extend(["--set", "train.max_steps=4", "--set", "train.epochs=8"]);
    args.extend(["--set", "train.eval_interval=2"]);
    let out = hrm_ok(&args);
    let err = String::from_utf8_lossy(&out.stderr);
    let text = lines(&run).join("\n");
    assert!(!text.contains("eval/"), "{text}");
    assert!(!err.contains("last eval"), "{err}");
    // The closing lines say how to see the curves, and how to install the viewer.
    assert!(
        err.contains("curves: tensorboard --logdir") && err.contains("pip install tensorboard"),
        "{err}"
    );
}

#[test]
fn predict_names_the_splits_and_eval_says_what_a_predictions_folder_holds() {
    let err = refused(&["predict", "--run", "/nonexistent-run", "--split", "bogus"]);
    assert!(
        err.contains("--split bogus") && err.contains("train and test"),
        "{err}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let err = refused(&["eval", dir, "--dataset", dir]);
    assert!(
        err.contains("is not a predictions folder: it has no meta.json")
            && err.contains("preds.npy"),
        "{err}"
    );
}

#[test]
fn an_empty_source_or_an_unknown_prefix_is_named() {
    let build = |source: &str| {
        refused(&[
            "build-data",
            "arc1",
            "--source",
            source,
            "--out",
            "/nonexistent-hrm-out/x",
        ])
    };
    let err = build("");
    assert!(err.contains("--source '' is empty"), "{err}");
    let err = build("eval=/nonexistent-tasks");
    assert!(
        err.contains("unknown prefix `eval=`") && err.contains("train=") && err.contains("test="),
        "{err}"
    );
}

#[test]
fn a_dataset_flag_naming_raw_data_or_a_moved_dataset_gives_a_build_command_that_writes_elsewhere() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, recipe) = setup(tmp.path());
    let raw = tmp.path().join("raw").join("arc-agi-1");
    std::fs::create_dir_all(raw.join("evaluation")).unwrap();
    std::fs::write(raw.join("evaluation").join("00576224.json"), "{}").unwrap();
    let run = tmp.path().join("run");
    let (r, u) = (recipe.to_str().unwrap(), run.to_str().unwrap());
    let err = refused(&train_args(r, raw.to_str().unwrap(), u));
    assert!(err.contains("holds raw data (1 task"), "{err}");
    let root = tmp.path().join("raw");
    assert!(
        err.contains(&format!("--data-dir {}", root.display())),
        "{err}"
    );
    assert!(!err.contains(&format!("--out {}", raw.display())), "{err}");
    assert!(!run.exists());

    // A run whose dataset moved: predict names the folder and the command that builds it from the run's recipe.
    let mut args = train_args(r, data.to_str().unwrap(), u);
    args.extend(["--set", "train.max_steps=2"]);
    hrm_ok(&args);
    std::fs::rename(&data, tmp.path().join("moved")).unwrap();
    let err = refused(&["predict", "--run", u, "--device", "cpu", "--quiet"]);
    let recipe_file = run.join("recipe.toml");
    assert!(
        err.contains("does not exist. Build it with")
            && err.contains(&format!(
                "hrm build-data --recipe {} --out {}",
                recipe_file.display(),
                data.display()
            )),
        "{err}"
    );
}

#[test]
fn a_missing_run_folder_is_named_once_without_a_repeated_cause() {
    let err = refused(&["predict", "--run", "/nonexistent-run"]);
    assert!(
        err.contains("/nonexistent-run does not exist (a run folder is what `hrm train`"),
        "{err}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let err = refused(&[
        "export",
        tmp.path().to_str().unwrap(),
        "--out",
        "/nonexistent-x",
    ]);
    assert!(
        err.contains("is not a run folder: it has no recipe.toml"),
        "{err}"
    );
    // Wherever a cause is quoted by the message above it, it is not printed again.
    let missing = tmp.path().join("nope.json");
    let err = refused(&[
        "eval",
        tmp.path().to_str().unwrap(),
        "--dataset",
        missing.to_str().unwrap(),
    ]);
    for line in err.lines().filter(|l| !l.trim().is_empty()) {
        assert_eq!(err.matches(line.trim()).count(), 1, "repeated: {err}");
    }
}

/// Makes `dir` unwritable even for root (`chattr +i`, or `chmod 555` for other users); false when neither
/// works here (then `undo` is a no-op).
fn make_read_only(dir: &std::path::Path) -> bool {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let ok = match root {
        true => std::process::Command::new("chattr")
            .arg("+i")
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success()),
        false => std::process::Command::new("chmod")
            .arg("555")
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success()),
    };
    ok && std::fs::write(dir.join("probe"), "x").is_err()
}

fn undo_read_only(dir: &std::path::Path) {
    let _ = std::process::Command::new("chattr")
        .arg("-i")
        .arg(dir)
        .status();
    let _ = std::process::Command::new("chmod")
        .arg("755")
        .arg(dir)
        .status();
}

#[test]
fn eval_says_when_predictions_are_of_the_train_split_and_scores_a_read_only_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, recipe) = setup(tmp.path());
    let run = tmp.path().join("run");
    let (d, u) = (data.to_str().unwrap(), run.to_str().unwrap());
    let mut args = train_args(recipe.to_str().unwrap(), d, u);
    args.extend(["--set", "train.max_steps=2"]);
    hrm_ok(&args);
    let train_preds = tmp.path().join("train-preds");
    let p = train_preds.to_str().unwrap();
    let predict = ["predict", "--run", u, "--device", "cpu", "--quiet", "--out"];
    hrm_ok(&[&predict[..], &[p, "--split", "train"]].concat());
    let err = refused(&["eval", p, "--dataset", d]);
    assert!(
        err.contains("predictions are of this dataset's train split")
            && err.contains("--split test"),
        "{err}"
    );

    let preds = tmp.path().join("preds");
    let p = preds.to_str().unwrap();
    hrm_ok(&[&predict[..], &[p]].concat());
    if !make_read_only(&preds) {
        undo_read_only(&preds);
        eprintln!(
            "note: this machine cannot make a folder read-only; the read-only case is not run"
        );
        return;
    }
    let out = hrm(&["eval", p, "--dataset", d]);
    undo_read_only(&preds);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("pass@"), "the scores are printed: {stdout}");
    assert!(
        stdout.contains("submission: not written") && stdout.contains("--submission PATH"),
        "{stdout}"
    );
    assert!(!preds.join("submission.json").exists());
}

#[test]
fn a_relative_source_found_nowhere_names_it_as_typed_and_every_path_tried() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("raw");
    std::fs::create_dir_all(&data).unwrap();
    let out = hrm_command(&[
        "build-data",
        "arc1",
        "--source",
        "test=tasks/eval",
        "--data-dir",
        data.to_str().unwrap(),
        "--out",
        "built",
    ])
    .current_dir(tmp.path())
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("--source test=tasks/eval: no such file or folder")
            && err.contains(&format!(
                "tasks/eval (from the current folder {})",
                tmp.path().display()
            ))
            && err.contains(&format!(
                "{} (from the data folder)",
                data.join("tasks/eval").display()
            )),
        "{err}"
    );
    assert!(!tmp.path().join("built").exists());
}

#[test]
fn data_settings_agree_with_the_datasets_build_record_or_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, recipe) = setup(tmp.path());
    let tasks = tmp.path().join("tasks");
    hrm_train::synthetic::write_swap_family(&tasks, "t", 4, 1).unwrap();
    let data = tmp.path().join("built");
    let source = format!("test={}", tasks.display());
    let d = data.to_str().unwrap();
    hrm_ok(&[
        "build-data",
        "arc1",
        "--source",
        &source,
        "--canvas",
        "4",
        "--num-aug",
        "1",
        "--out",
        d,
    ]);
    let record = std::fs::read_to_string(data.join("build.json")).unwrap();
    assert!(record.contains("\"num_aug\": 1"), "{record}");
    let run = tmp.path().join("run");
    let (r, u) = (recipe.to_str().unwrap(), run.to_str().unwrap());
    let mut args = train_args(r, d, u);
    args.extend(["--set", "data.num_aug=99", "--set", "train.max_steps=1"]);
    let err = refused(&args);
    assert!(
        err.contains("data.num_aug") && err.contains("99") && err.contains("build.json"),
        "{err}"
    );
    assert!(!run.exists(), "nothing written: {err}");
    // Without the override, the run takes the dataset's value (the recipe file says 2) and records it.
    let mut args = train_args(r, d, u);
    args.extend(["--set", "train.max_steps=1"]);
    let out = hrm_ok(&args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("note: data.num_aug = 1 taken from the dataset"),
        "{err}"
    );
    let stored = std::fs::read_to_string(run.join("recipe.toml")).unwrap();
    assert!(stored.contains("num_aug = 1"), "{stored}");
    // A dataset without a build record cannot be checked: an explicit data override is refused.
    let (synthetic, _) = setup(&tmp.path().join("old"));
    let mut args = train_args(r, synthetic.to_str().unwrap(), "unused-run");
    args.extend(["--set", "data.seed=5"]);
    let err = refused(&args);
    assert!(err.contains("records no build settings"), "{err}");
}

#[test]
fn threads_are_recorded_and_a_resume_keeps_them() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, recipe) = setup(tmp.path());
    let run = tmp.path().join("run");
    let (d, r, u) = (
        data.to_str().unwrap(),
        recipe.to_str().unwrap(),
        run.to_str().unwrap(),
    );
    let mut args = train_args(r, d, u);
    args.extend(["--set", "train.max_steps=2", "--threads", "1"]);
    let out = hrm_ok(&args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1 threads (--threads)"), "{err}");
    let env: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("env.json")).unwrap()).unwrap();
    assert_eq!(env["threads"], 1, "{env}");
    let out = hrm_ok(&[
        "train",
        "--resume",
        u,
        "--set",
        "train.max_steps=4",
        "--device",
        "cpu",
        "--quiet",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1 threads (as the run started"), "{err}");
}
