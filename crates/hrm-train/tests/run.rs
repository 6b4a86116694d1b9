//! Integration tests of the recipe-driven training loop on the CPU: a smoke run with checkpoints and
//! prediction, exact resume from a kept checkpoint, recipe/dataset/checkpoint mismatches, the non-finite guard,
//! frozen-weight training and EMA evaluation. `HRM_TEST_DEVICE=cuda` moves the runs made with `options` (the
//! resume tests among them) onto the GPU (`common::test_device`); the rest stay on the CPU.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use hrm_train::checkpoint::{
    load_checkpoint, load_state, resolve_checkpoint, CHECKPOINTS_DIR, LATEST_FILE,
};
use hrm_train::predict::{predict, PredictOptions};
use hrm_train::run::{resolve_model_config, step_config, train, RunOptions, StopReason};
use hrm_train::step::{Trainable, Trainer};
use hrm_train::synthetic::{tiny_recipe, write_dataset, SEQ_LEN};
use hrm_train::RunError;
use tch::Device;

fn options(dataset: &Path, run: &Path, overrides: &[&str]) -> RunOptions {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    RunOptions {
        recipe: tiny_recipe(&overrides).expect("tiny recipe"),
        dataset_dir: dataset.to_path_buf(),
        run_dir: run.to_path_buf(),
        device: common::test_device(),
        resume: false,
        command_line: vec!["test".into()],
        progress: false,
        throttle: Duration::ZERO,
        dist: None,
    }
}

fn dataset(tmp: &Path) -> PathBuf {
    let d = tmp.join("data");
    write_dataset(&d, 8, 1).expect("synthetic dataset");
    d
}

fn metrics(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .expect("metrics.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn checkpoint_names(run: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(run.join(CHECKPOINTS_DIR))
        .expect("checkpoints folder")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn smoke_run_checkpoints_and_predicts() {
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(tmp.path());
    let run = tmp.path().join("run");
    let summary = train(&options(&data, &run, &[])).expect("training");
    assert_eq!(summary.stop, StopReason::Completed);
    // total_steps(8 epochs, 8 groups, 3 examples per puzzle, batch 8) = 24 nominal steps.
    assert_eq!(summary.total_steps, 24);
    assert!(
        summary.step > 0 && summary.step <= 24,
        "step {}",
        summary.step
    );

    let lines = metrics(&run);
    let train_lines: Vec<_> = lines
        .iter()
        .filter(|l| l.get("train/lm_loss").is_some())
        .collect();
    let eval_lines: Vec<_> = lines
        .iter()
        .filter(|l| l.get("eval/exact_accuracy").is_some())
        .collect();
    assert_eq!(
        train_lines.len() as u64,
        summary.step,
        "log_every = 1 logs every step"
    );
    assert_eq!(eval_lines.len(), 2, "one evaluation per iteration");
    let halted_keys = [
        "train/accuracy",
        "train/exact_accuracy",
        "train/q_halt_accuracy",
        "train/steps",
    ];
    for l in &train_lines {
        for k in [
            "train/lm_loss",
            "train/q_halt_loss",
            "train/q_continue_loss",
            "train/count",
            "train/lr",
        ] {
            assert!(l[k].as_f64().is_some_and(f64::is_finite), "{k} in {l}");
        }
        // Accuracies only where some sequence halted in the window (never a 0 that means "nothing halted").
        let halted = l["train/count"].as_f64().unwrap() > 0.0;
        for k in halted_keys {
            assert_eq!(
                l[k].as_f64().is_some_and(f64::is_finite),
                halted,
                "{k} in {l}"
            );
        }
    }
    assert!(
        train_lines
            .iter()
            .any(|l| l["train/count"].as_f64() > Some(0.0)),
        "some window has halted sequences"
    );
    // Test split: 8 puzzles x 2 examples, capped at eval.max_examples = 12 rows.
    assert_eq!(eval_lines[1]["eval/count"].as_f64(), Some(12.0));
    let first = train_lines[0]["train/lm_loss"].as_f64().unwrap();
    let last = train_lines.last().unwrap()["train/lm_loss"]
        .as_f64()
        .unwrap();
    assert!(last < first, "the loss should fall: {first} -> {last}");

    // Two kept evaluation checkpoints; the rolling ones were removed; latest is the final one.
    let names = checkpoint_names(&run);
    assert_eq!(
        names.iter().filter(|n| n.starts_with("step_")).count(),
        2,
        "{names:?}"
    );
    let latest = resolve_checkpoint(&run, None).unwrap();
    assert_eq!(latest, summary.checkpoint);
    let state = load_state(&latest).unwrap();
    assert!(state.finished && state.kept);
    assert_eq!(state.step, summary.step);
    for f in ["recipe.toml", "env.json", "metrics.jsonl"] {
        assert!(run.join(f).is_file(), "{f}");
    }
    let env: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("env.json")).unwrap()).unwrap();
    assert_eq!(env["libtorch"], "2.11.0");
    assert_eq!(env["dtype"], "float32");

    let out = tmp.path().join("preds");
    let p = predict(&PredictOptions {
        run_dir: run.clone(),
        checkpoint: None,
        split: "test".into(),
        dataset_dir: None,
        out_dir: Some(out.clone()),
        max_examples: 0,
        refinement_examples: Some(4),
        batch_size: Some(5),
        device: Device::Cpu,
        progress: false,
    })
    .expect("predict");
    assert_eq!(p.rows, 16);
    let read = hrm_eval::read_predictions(&out).expect("readable predictions");
    assert_eq!(read.len(), 16);
    assert_eq!(read.seq_len, SEQ_LEN);
    let test = hrm_data::load_split(&data, "test").unwrap();
    assert_eq!(read.inputs, test.inputs);
    assert_eq!(read.labels, test.labels);
    let ids: Vec<i32> = (0..8).flat_map(|g| [1 + 2 * g, 1 + 2 * g]).collect();
    assert_eq!(read.puzzle_identifiers, ids);
    assert!(read.preds.iter().all(|&t| t < 12));
    let seg = read.segments.clone().expect("segment trace");
    // One traced row per puzzle (each test puzzle has 2 rows), across batches of 5 rows.
    assert_eq!((seg.rows.clone(), seg.num_segments), (vec![0, 2, 4, 6], 3));
    // The trace's last segment is the final prediction, in the first batch and in the second.
    assert_eq!(seg.tokens_at(1, 2), read.pred(2));
    assert_eq!(seg.tokens_at(3, 2), read.pred(6));
}

#[test]
fn resume_from_a_kept_checkpoint_reproduces_the_metrics() {
    // bfloat16 also runs on the CPU; it checks that bf16 carries survive the checkpoint.
    for dtype in ["float32", "bfloat16"] {
        let set = format!("arch.forward_dtype=\"{dtype}\"");
        let tmp = tempfile::tempdir().unwrap();
        let data = dataset(tmp.path());
        let full = tmp.path().join("full");
        train(&options(&data, &full, &[&set])).expect("uninterrupted run");

        // Copy the run, point `latest` at the first evaluation checkpoint, and resume.
        let part = tmp.path().join("part");
        copy_dir(&full, &part);
        let mut steps: Vec<u64> = checkpoint_names(&part)
            .iter()
            .filter_map(|n| n.strip_prefix("step_")?.parse().ok())
            .collect();
        steps.sort();
        assert_eq!(steps.len(), 2, "{dtype}: two kept checkpoints");
        std::fs::write(
            part.join(CHECKPOINTS_DIR).join(LATEST_FILE),
            format!("step_{}\n", steps[0]),
        )
        .unwrap();
        let mut opts = options(&data, &part, &[&set]);
        opts.resume = true;
        let s = train(&opts).expect("resumed run");
        assert_eq!(s.steps_this_session, steps[1] - steps[0], "{dtype}");
        assert_eq!(metrics(&part), metrics(&full), "{dtype}");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let dst = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

#[test]
fn recipe_dataset_and_checkpoint_mismatches_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(tmp.path());
    // A Sudoku recipe on an ARC-vocabulary dataset.
    let run = tmp.path().join("sudoku");
    let err = train(&options(&data, &run, &["data.task=\"sudoku\""])).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, RunError::Mismatch { .. }), "{msg}");
    assert!(
        msg.contains("vocab_size") && msg.contains("11") && msg.contains("12"),
        "{msg}"
    );

    // An ARC recipe for another canvas (5x5 = 25 tokens, the dataset has 16).
    let err = train(&options(&data, &run, &["data.canvas=5"]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("seq_len") && err.contains("25") && err.contains("16"),
        "{err}"
    );
    assert!(!run.exists(), "no run folder is created on a mismatch");

    // A checkpoint of another architecture.
    let run = tmp.path().join("run");
    train(&options(&data, &run, &["train.max_steps=2"])).expect("short run");
    let ckpt = resolve_checkpoint(&run, None).unwrap();
    let recipe = tiny_recipe(&[
        "arch.hidden_size=64".into(),
        "arch.puzzle_emb_ndim=64".into(),
    ])
    .unwrap();
    let meta = hrm_data::layout::load_metadata(&data, "train").unwrap();
    let config = resolve_model_config(&recipe, &meta, Device::Cpu).unwrap();
    let model = hrm_model::Model::new(&config, Device::Cpu, 0).unwrap();
    let mut trainer = Trainer::new(model, step_config(&recipe, 24)).unwrap();
    let msg = load_checkpoint(&ckpt, &mut trainer)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("hidden_size") && msg.contains("32") && msg.contains("64"),
        "{msg}"
    );

    // Predicting on a dataset with another sequence length.
    let other = tmp.path().join("other");
    let mut b = hrm_data::layout::SplitBuilder::new(4);
    b.push_example(&[2, 3, 4, 5], &[2, 3, 4, 5]);
    b.end_puzzle(1);
    b.end_group();
    let split = b.finish(12, 17);
    let ids: Vec<String> = std::iter::once("<blank>".to_string())
        .chain((1..17).map(|i| format!("x{i}")))
        .collect();
    hrm_data::write_dataset(&other, &ids, &split, &split).unwrap();
    let err = predict(&PredictOptions {
        run_dir: run.clone(),
        checkpoint: Some("latest".into()),
        split: "test".into(),
        dataset_dir: Some(other),
        out_dir: Some(tmp.path().join("p")),
        max_examples: 0,
        refinement_examples: Some(0),
        batch_size: None,
        device: Device::Cpu,
        progress: false,
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("seq_len") && err.contains("16") && err.contains('4'),
        "{err}"
    );

    // Starting a new run in a folder that already holds checkpoints is refused.
    let err = train(&options(&data, &run, &["train.max_steps=2"]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("--resume"), "{err}");
}

#[test]
fn non_finite_loss_stops_with_a_loadable_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(tmp.path());
    let run = tmp.path().join("run");
    let opts = options(
        &data,
        &run,
        &[
            "train.lr=1e30",
            "train.lr_warmup_steps=0",
            "train.checkpoint_every_steps=1",
        ],
    );
    let err = train(&opts).unwrap_err();
    let msg = err.to_string();
    let RunError::NonFinite {
        step,
        last_checkpoint,
        ..
    } = err
    else {
        panic!("expected a non-finite error, got {msg}");
    };
    assert!(msg.contains("non-finite"), "{msg}");
    let ckpt = last_checkpoint.expect("a checkpoint before the failure");
    assert_eq!(resolve_checkpoint(&run, None).unwrap(), ckpt);
    let state = load_state(&ckpt).unwrap();
    assert_eq!(state.step, step - 1);
    let recipe = &opts.recipe;
    let meta = hrm_data::layout::load_metadata(&data, "train").unwrap();
    let config = resolve_model_config(recipe, &meta, Device::Cpu).unwrap();
    let model = hrm_model::Model::new(&config, Device::Cpu, 0).unwrap();
    let mut trainer = Trainer::new(model, step_config(recipe, 24)).unwrap();
    load_checkpoint(&ckpt, &mut trainer).expect("the last good checkpoint loads");
    assert_eq!(trainer.step_count(), step - 1);
}

#[test]
fn max_minutes_stops_with_a_final_checkpoint_without_micro_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(tmp.path());
    let run = tmp.path().join("run");
    // 1e-6 minutes is exceeded after the first step; micro_batch_size = 0 means one micro-batch of 8.
    let opts = options(
        &data,
        &run,
        &["train.max_minutes=1e-6", "train.micro_batch_size=0"],
    );
    let s = train(&opts).expect("training");
    assert_eq!(s.stop, StopReason::MaxMinutes);
    assert!(s.step >= 1 && s.step < 24, "step {}", s.step);
    let state = load_state(&s.checkpoint).unwrap();
    assert!(state.finished && state.kept);
    assert_eq!((state.step, state.micro_batches), (s.step, 1));
    // The stop still evaluates, so the last metrics line is an evaluation at the final step.
    let last = metrics(&run).pop().unwrap();
    assert_eq!(last["step"].as_u64(), Some(s.step));
    assert!(last.get("eval/exact_accuracy").is_some(), "{last}");
}

#[test]
fn a_batch_larger_than_the_data_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(tmp.path());
    let run = tmp.path().join("run");
    let err = train(&options(
        &data,
        &run,
        &["train.global_batch_size=4096", "train.micro_batch_size=0"],
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("global_batch_size") && err.contains("0 steps"),
        "{err}"
    );
}

fn predict_options(run: &Path, out: &Path, checkpoint: &str) -> PredictOptions {
    PredictOptions {
        run_dir: run.to_path_buf(),
        checkpoint: Some(checkpoint.into()),
        split: "test".into(),
        dataset_dir: None,
        out_dir: Some(out.to_path_buf()),
        max_examples: 0,
        refinement_examples: None,
        batch_size: None,
        device: Device::Cpu,
        progress: false,
    }
}

/// Fills the lm_head weight of a checkpoint's `model.safetensors` with NaN.
fn poison(ckpt: &Path) {
    let weights = ckpt.join(hrm_train::checkpoint::MODEL_FILE);
    let config = hrm_train::checkpoint::load_model_config(ckpt).unwrap();
    let model = hrm_model::Model::from_safetensors(&config, Device::Cpu, &weights).unwrap();
    let (_, head) = model
        .named_parameters()
        .find(|(n, _)| n.contains("lm_head"))
        .expect("an lm_head weight");
    tch::no_grad(|| {
        let _ = head.shallow_clone().fill_(f64::NAN);
    });
    model.save_safetensors(&weights).unwrap();
    // As a run that wrote NaN weights would have recorded them.
    hrm_train::checkpoint::write_checksums(ckpt).unwrap();
}

#[test]
fn a_poisoned_checkpoint_is_refused_and_resume_falls_back_to_an_earlier_one() {
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(tmp.path());
    let full = tmp.path().join("full");
    train(&options(&data, &full, &[])).expect("training");
    let mut steps: Vec<u64> = checkpoint_names(&full)
        .iter()
        .filter_map(|n| n.strip_prefix("step_")?.parse().ok())
        .collect();
    steps.sort();
    assert_eq!(steps.len(), 2, "two kept checkpoints");

    // The newest (latest) checkpoint is corrupt: resume falls back to the earlier one and ends as the
    // uninterrupted run did.
    let run = tmp.path().join("run");
    copy_dir(&full, &run);
    let last = hrm_train::checkpoint::checkpoint_dir(&run, steps[1]);
    poison(&last);
    // `hrm predict` refuses a corrupt checkpoint instead of writing all-zero predictions.
    let out = tmp.path().join("pred");
    let msg = predict(&predict_options(&run, &out, &format!("step_{}", steps[1])))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("non-finite") && msg.contains("lm_head"),
        "{msg}"
    );
    assert!(!out.exists(), "nothing written: {msg}");

    let mut opts = options(&data, &run, &[]);
    opts.resume = true;
    let s = train(&opts).expect("resume from the earlier checkpoint");
    assert_eq!(s.steps_this_session, steps[1] - steps[0]);
    assert_eq!(metrics(&run), metrics(&full));

    // The only checkpoint before `latest` is corrupt: resume refuses, naming it, and nothing is called good.
    let corrupt = tmp.path().join("only");
    copy_dir(&full, &corrupt);
    let first = hrm_train::checkpoint::checkpoint_dir(&corrupt, steps[0]);
    std::fs::write(
        corrupt.join(CHECKPOINTS_DIR).join(LATEST_FILE),
        format!("step_{}\n", steps[0]),
    )
    .unwrap();
    poison(&first);
    let mut opts = options(&data, &corrupt, &[]);
    opts.resume = true;
    let msg = train(&opts).unwrap_err().to_string();
    assert!(
        msg.contains("no checkpoint") && msg.contains(&first.display().to_string()),
        "{msg}"
    );
    assert!(msg.contains("non-finite"), "{msg}");
}

/// Flips one bit in the middle of `file`.
fn flip_bit(file: &Path) {
    let mut bytes = std::fs::read(file).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    std::fs::write(file, bytes).unwrap();
}

#[test]
fn a_flipped_bit_in_a_checkpoint_is_refused_and_resume_falls_back() {
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(tmp.path());
    let full = tmp.path().join("full");
    train(&options(&data, &full, &[])).expect("training");
    let mut steps: Vec<u64> = checkpoint_names(&full)
        .iter()
        .filter_map(|n| n.strip_prefix("step_")?.parse().ok())
        .collect();
    steps.sort();
    let run = tmp.path().join("run");
    copy_dir(&full, &run);
    let last = hrm_train::checkpoint::checkpoint_dir(&run, steps[1]);
    let weights = last.join(hrm_train::checkpoint::MODEL_FILE);
    flip_bit(&weights);
    let out = tmp.path().join("pred");
    let msg = predict(&predict_options(&run, &out, &format!("step_{}", steps[1])))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("SHA-256") && msg.contains(&weights.display().to_string()),
        "{msg}"
    );
    assert!(!out.exists(), "nothing written: {msg}");
    let mut opts = options(&data, &run, &[]);
    opts.resume = true;
    let s = train(&opts).expect("resume from the earlier checkpoint");
    assert_eq!(s.steps_this_session, steps[1] - steps[0]);
    assert_eq!(metrics(&run), metrics(&full));
    // Every file of a checkpoint is covered: a damaged optimizer state is refused as well.
    let other = tmp.path().join("other");
    copy_dir(&full, &other);
    let last = hrm_train::checkpoint::checkpoint_dir(&other, steps[1]);
    flip_bit(&last.join(hrm_train::checkpoint::OPTIMIZER_FILE));
    let mut trainer = Trainer::new(
        hrm_model::Model::new(
            &hrm_train::checkpoint::load_model_config(&last).unwrap(),
            Device::Cpu,
            0,
        )
        .unwrap(),
        step_config(&opts.recipe, 8),
    )
    .unwrap();
    let msg = load_checkpoint(&last, &mut trainer)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("optimizer.safetensors") && msg.contains("SHA-256"),
        "{msg}"
    );
}

#[test]
fn a_run_whose_first_checkpoint_never_finished_restarts_or_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(tmp.path());
    let full = tmp.path().join("full");
    train(&options(&data, &full, &[])).expect("training");
    for resume in [false, true] {
        // A run folder as a failed first checkpoint leaves it: the recipe, env and a `step_N.tmp` only.
        let run = tmp.path().join(format!("stuck-{resume}"));
        train(&options(&data, &run, &[])).expect("training");
        let ckpts = run.join(CHECKPOINTS_DIR);
        std::fs::remove_dir_all(&ckpts).unwrap();
        std::fs::create_dir_all(ckpts.join("step_4.tmp")).unwrap();
        std::fs::write(ckpts.join("step_4.tmp").join("model.safetensors"), b"half").unwrap();
        let mut opts = options(&data, &run, &[]);
        opts.resume = resume;
        train(&opts).unwrap_or_else(|e| panic!("resume={resume}: {e}"));
        assert_eq!(metrics(&run), metrics(&full), "resume={resume}");
        assert!(!ckpts.join("step_4.tmp").exists(), "resume={resume}");
    }
}

#[test]
fn a_second_trainer_on_one_run_folder_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(tmp.path());
    let run = tmp.path().join("run");
    let held = hrm_train::run::RunLock::acquire(&run).expect("the first lock");
    let msg = train(&options(&data, &run, &[])).unwrap_err().to_string();
    assert!(
        msg.contains("in use") && msg.contains(&format!("pid {}", std::process::id())),
        "{msg}"
    );
    assert!(
        !run.join(CHECKPOINTS_DIR).exists(),
        "nothing written: {msg}"
    );
    drop(held);
    train(&options(&data, &run, &[])).expect("the lock is free again");
}

#[test]
fn absurd_epochs_are_refused_up_front_with_the_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(tmp.path());
    let run = tmp.path().join("run");
    let msg = train(&options(
        &data,
        &run,
        &[
            "train.epochs=9200000000000000000",
            "train.eval_interval=9200000000000000000",
        ],
    ))
    .unwrap_err()
    .to_string();
    assert!(
        msg.contains("eval_interval") && msg.contains("GiB"),
        "{msg}"
    );
    let msg = train(&options(
        &data,
        &run,
        &["train.epochs=9200000000000000000", "train.eval_interval=1"],
    ))
    .unwrap_err()
    .to_string();
    assert!(
        msg.contains("train.epochs") && msg.contains("steps"),
        "{msg}"
    );
}

#[test]
fn freeze_weights_trains_only_the_puzzle_table() {
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(tmp.path());
    let frozen = ["train.freeze_weights=true", "train.max_steps=3"];
    let opts = options(&data, &tmp.path().join("run"), &frozen);
    let s = train(&opts).expect("frozen run");
    assert_eq!(s.step, 3);
    let meta = hrm_data::layout::load_metadata(&data, "train").unwrap();
    let config = resolve_model_config(&opts.recipe, &meta, Device::Cpu).unwrap();
    let init = hrm_model::Model::new(&config, Device::Cpu, opts.recipe.train.seed).unwrap();
    let weights = s.checkpoint.join(hrm_train::checkpoint::MODEL_FILE);
    let trained = hrm_model::Model::from_safetensors(&config, Device::Cpu, &weights).unwrap();
    for ((name, a), (_, b)) in init.named_parameters().zip(trained.named_parameters()) {
        assert!(a.equal(b), "network parameter `{name}` changed");
    }
    let (t0, t1) = (
        init.puzzle_table().unwrap(),
        trained.puzzle_table().unwrap(),
    );
    assert!(!t0.equal(t1), "the puzzle table was trained");

    // No network gradient is computed, and a model without a puzzle table is refused.
    let model = hrm_model::Model::new(&config, Device::Cpu, 0).unwrap();
    let mut trainer = Trainer::new(model, step_config(&opts.recipe, 24)).unwrap();
    trainer.set_trainable(Trainable::PuzzleTableOnly).unwrap();
    let split = hrm_data::load_split(&data, "train").unwrap();
    let rows = |v: &[u8]| -> Vec<i32> { v[..8 * SEQ_LEN].iter().map(|&x| i32::from(x)).collect() };
    let batch = hrm_model::Batch::from_vecs(
        &rows(&split.inputs),
        &rows(&split.labels),
        &[1; 8],
        8,
        SEQ_LEN,
        Device::Cpu,
    )
    .unwrap();
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
    trainer
        .train_step(&batch, &mut rng)
        .unwrap()
        .expect("a step");
    for (name, p) in trainer.model().named_parameters() {
        assert!(!p.grad().defined(), "`{name}` got a gradient");
    }
    let flat = tiny_recipe(&["arch.puzzle_emb_ndim=0".into()]).unwrap();
    let config = resolve_model_config(&flat, &meta, Device::Cpu).unwrap();
    let model = hrm_model::Model::new(&config, Device::Cpu, 0).unwrap();
    let mut trainer = Trainer::new(model, step_config(&flat, 24)).unwrap();
    match trainer.set_trainable(Trainable::PuzzleTableOnly) {
        Err(e) => assert!(e.to_string().contains("puzzle table"), "{e}"),
        Ok(()) => panic!("freezing a model without a puzzle table must be refused"),
    }
}

#[test]
fn ema_changes_the_evaluations_not_the_training() {
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(tmp.path());
    let (plain, ema) = (tmp.path().join("plain"), tmp.path().join("ema"));
    train(&options(&data, &plain, &[])).expect("plain run");
    let with_ema = ["train.ema=true", "train.ema_rate=0.9"];
    let s = train(&options(&data, &ema, &with_ema)).expect("EMA run");
    let split = |run: &Path, key: &str| -> Vec<serde_json::Value> {
        metrics(run)
            .into_iter()
            .filter(|l| l.get(key).is_some())
            .collect()
    };
    assert_eq!(
        split(&ema, "train/lm_loss"),
        split(&plain, "train/lm_loss"),
        "the EMA does not change the trajectory"
    );
    let (a, b) = (split(&ema, "eval/lm_loss"), split(&plain, "eval/lm_loss"));
    assert_eq!(a.len(), b.len());
    assert!(
        a.iter()
            .zip(&b)
            .all(|(x, y)| x["eval/lm_loss"] != y["eval/lm_loss"]),
        "evaluations run on the shadow weights: {a:?} vs {b:?}"
    );
    let raw = s.checkpoint.join(hrm_train::checkpoint::MODEL_FILE);
    let shadow = s.checkpoint.join(hrm_train::checkpoint::EMA_FILE);
    assert!(shadow.is_file(), "the checkpoint keeps the EMA weights");
    assert_ne!(std::fs::read(raw).unwrap(), std::fs::read(&shadow).unwrap());
    let plain_ckpt = resolve_checkpoint(&plain, None).unwrap();
    assert!(!plain_ckpt.join(hrm_train::checkpoint::EMA_FILE).exists());
}

#[test]
fn resume_and_predict_refuse_a_dataset_rebuilt_with_other_content() {
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(tmp.path());
    let run = tmp.path().join("run");
    let mut opts = options(&data, &run, &["train.max_steps=6"]);
    train(&opts).expect("training");
    // The same folder, rebuilt with another seed: same shapes, other rows.
    std::fs::remove_dir_all(&data).unwrap();
    write_dataset(&data, 8, 2).expect("rebuilt dataset");
    opts.resume = true;
    let msg = train(&opts).unwrap_err().to_string();
    assert!(msg.contains("dataset_fingerprint"), "{msg}");
    let msg = predict(&predict_options(&run, &tmp.path().join("p"), "latest"))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("dataset_fingerprint"), "{msg}");
}

#[test]
fn a_resume_inside_a_log_window_logs_the_same_lines() {
    // Lines every 3 steps; the resumed checkpoint lies inside a window, whose sums the checkpoint keeps.
    let set = ["train.log_every=3"];
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(tmp.path());
    let full = tmp.path().join("full");
    train(&options(&data, &full, &set)).expect("uninterrupted run");
    let part = tmp.path().join("part");
    copy_dir(&full, &part);
    let mut steps: Vec<u64> = checkpoint_names(&part)
        .iter()
        .filter_map(|n| n.strip_prefix("step_")?.parse().ok())
        .collect();
    steps.sort();
    assert!(
        !steps[0].is_multiple_of(3),
        "the checkpoint at step {} must lie inside a window",
        steps[0]
    );
    std::fs::write(
        part.join(CHECKPOINTS_DIR).join(LATEST_FILE),
        format!("step_{}\n", steps[0]),
    )
    .unwrap();
    let state = load_state(&hrm_train::checkpoint::checkpoint_dir(&part, steps[0])).unwrap();
    assert!(
        state.log_window.optimizer_steps > 0,
        "{:?}",
        state.log_window
    );
    let mut opts = options(&data, &part, &set);
    opts.resume = true;
    train(&opts).expect("resumed run");
    assert_eq!(metrics(&part), metrics(&full));
}

/// The (step, tag, value as f32) of every numeric value of `metrics.jsonl`.
fn metric_scalars(run: &Path) -> Vec<(i64, String, f32)> {
    let mut out = Vec::new();
    for l in metrics(run) {
        let step = l["step"].as_i64().unwrap();
        for (k, v) in l.as_object().unwrap() {
            if let (true, Some(v)) = (k != "step", v.as_f64()) {
                out.push((step, k.clone(), v as f32));
            }
        }
    }
    out.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    out
}

/// The scalars of the run folder's one TensorBoard events file.
fn event_scalars(run: &Path) -> Vec<(i64, String, f32)> {
    let files: Vec<PathBuf> = std::fs::read_dir(run)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(hrm_train::tensorboard::EVENTS_PREFIX)
        })
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let (version, scalars) = hrm_train::tensorboard::read_scalars(&files[0]).expect("parses");
    assert_eq!(version, "brain.Event:2");
    assert!(scalars
        .iter()
        .any(|s| s.tag == "perf/samples_per_sec" && s.value > 0.0));
    let mut out: Vec<_> = scalars
        .into_iter()
        .filter(|s| !s.tag.starts_with("perf/"))
        .map(|s| (s.step, s.tag, s.value))
        .collect();
    out.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    out
}

#[test]
fn tensorboard_events_hold_the_logged_values_also_after_a_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(tmp.path());
    let full = tmp.path().join("full");
    train(&options(&data, &full, &[])).expect("training");
    let logged = metric_scalars(&full);
    assert!(logged.len() > 20, "{}", logged.len());
    assert_eq!(event_scalars(&full), logged);

    // Resumed from the first kept checkpoint: the events file is rebuilt from the kept lines, no duplicates.
    let part = tmp.path().join("part");
    copy_dir(&full, &part);
    let mut steps: Vec<u64> = checkpoint_names(&part)
        .iter()
        .filter_map(|n| n.strip_prefix("step_")?.parse().ok())
        .collect();
    steps.sort();
    std::fs::write(
        part.join(CHECKPOINTS_DIR).join(LATEST_FILE),
        format!("step_{}\n", steps[0]),
    )
    .unwrap();
    let mut opts = options(&data, &part, &[]);
    opts.resume = true;
    train(&opts).expect("resumed run");
    assert_eq!(event_scalars(&part), logged);
}

#[test]
fn a_finished_run_is_extended_by_resuming_with_a_larger_max_steps() {
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(tmp.path());
    let long = tmp.path().join("long");
    train(&options(&data, &long, &["train.max_steps=12"])).expect("12 steps");
    let run = tmp.path().join("run");
    let s = train(&options(&data, &run, &["train.max_steps=6"])).expect("6 steps");
    assert_eq!(s.stop, StopReason::MaxSteps);

    // Keys that change what was trained are refused, with the reason; nothing is recorded.
    for (spec, why) in [
        ("train.lr=0.5", "optimizer"),
        ("train.eval_interval=2", "sampler"),
        ("arch.hidden_size=64", "architecture"),
    ] {
        let msg = hrm_train::run::extend_run(&run, &[spec.to_string()])
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains(spec.split('=').next().unwrap()) && msg.contains(why),
            "{msg}"
        );
    }
    let recipe = hrm_train::run::extend_run(&run, &["train.max_steps=12".to_string()])
        .expect("max_steps can change");
    assert_eq!(recipe.train.max_steps, 12);
    let env = hrm_train::run::load_env(&run).unwrap();
    assert_eq!(env.changes.len(), 1);
    assert_eq!(env.changes[0].sets, vec!["train.max_steps=12".to_string()]);

    let mut opts = options(&data, &run, &[]);
    opts.recipe = recipe;
    opts.resume = true;
    let s = train(&opts).expect("the extended run");
    assert_eq!(
        (s.step, s.steps_this_session, s.stop),
        (12, 6, StopReason::MaxSteps)
    );
    let train_lines = |r: &Path| -> Vec<serde_json::Value> {
        metrics(r)
            .into_iter()
            .filter(|l| l.get("train/lr").is_some())
            .collect()
    };
    assert_eq!(train_lines(&run), train_lines(&long));
}
