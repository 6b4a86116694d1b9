//! A requested stop (what SIGINT does in `hrm predict`) discards unfinished predictions: nothing at `--out`, no
//! hidden sibling left. Its own test binary, because the stop flag is process-wide.

use std::time::Duration;

use hrm_train::predict::{predict, PredictOptions};
use hrm_train::run::{train, RunOptions};
use hrm_train::synthetic::{tiny_recipe, write_dataset};
use hrm_train::RunError;
use tch::Device;

#[test]
fn a_stop_during_predict_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_dataset(&data, 8, 1).expect("synthetic dataset");
    let run = tmp.path().join("run");
    train(&RunOptions {
        recipe: tiny_recipe(&[]).expect("tiny recipe"),
        dataset_dir: data.clone(),
        run_dir: run.clone(),
        device: Device::Cpu,
        resume: false,
        command_line: vec!["test".into()],
        progress: false,
        throttle: Duration::ZERO,
        dist: None,
    })
    .expect("training");

    hrm_train::stop::request();
    let out = tmp.path().join("preds");
    let err = predict(&PredictOptions {
        run_dir: run,
        checkpoint: None,
        split: "test".into(),
        dataset_dir: None,
        out_dir: Some(out.clone()),
        max_examples: 0,
        refinement_examples: None,
        batch_size: Some(4),
        device: Device::Cpu,
        progress: false,
    })
    .unwrap_err();
    assert!(matches!(err, RunError::Interrupted(_)), "{err}");
    let left: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.contains("preds"))
        .collect();
    assert!(left.is_empty(), "{left:?}: {err}");
}
