//! Predictions are tied to their dataset: `hrm predict` records the dataset fingerprint in `meta.json`,
//! refuses a `--dataset` of the same shapes but other content than the run was trained on (naming both
//! folders and fingerprints), and the evaluator then refuses a dataset other than the recorded one.

use std::path::Path;
use std::time::Duration;

use hrm_train::predict::{predict, PredictOptions};
use hrm_train::run::{train, RunOptions};
use hrm_train::synthetic::{tiny_recipe, write_dataset};
use tch::Device;

fn predict_opts(run: &Path, dataset: Option<&Path>, out: &Path) -> PredictOptions {
    PredictOptions {
        run_dir: run.to_path_buf(),
        checkpoint: Some("latest".into()),
        split: "test".into(),
        dataset_dir: dataset.map(Path::to_path_buf),
        out_dir: Some(out.to_path_buf()),
        max_examples: 0,
        refinement_examples: Some(0),
        batch_size: None,
        device: Device::Cpu,
        progress: false,
    }
}

#[test]
fn predictions_record_and_check_the_dataset_fingerprint() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, other, run) = (
        tmp.path().join("data"),
        tmp.path().join("other"),
        tmp.path().join("run"),
    );
    write_dataset(&data, 8, 1).unwrap();
    write_dataset(&other, 8, 2).unwrap();
    let fp = hrm_data::layout::dataset_fingerprint(&data).unwrap();
    let fp_other = hrm_data::layout::dataset_fingerprint(&other).unwrap();
    assert_ne!(fp, fp_other, "the two synthetic datasets differ");
    train(&RunOptions {
        recipe: tiny_recipe(&["train.max_steps=2".into()]).unwrap(),
        dataset_dir: data.clone(),
        run_dir: run.clone(),
        device: Device::Cpu,
        resume: false,
        command_line: vec!["test".into()],
        progress: false,
        throttle: Duration::ZERO,
        dist: None,
    })
    .expect("a short run");

    // The default dataset: meta.json records its fingerprint; eval accepts it and refuses the other one.
    let preds = tmp.path().join("preds");
    predict(&predict_opts(&run, None, &preds)).expect("predict");
    let meta = hrm_eval::read_predictions(&preds).unwrap().meta;
    assert_eq!(meta.dataset_fingerprint.as_deref(), Some(fp.as_str()));
    let report = hrm_eval::evaluate(&preds, &data).unwrap();
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let err = hrm_eval::evaluate(&preds, &other).unwrap_err().to_string();
    assert!(err.contains(&fp) && err.contains(&fp_other), "{err}");

    // --dataset with the same shapes but other content is refused, naming both folders and fingerprints,
    // and the old predictions folder is left as it was.
    let err = predict(&predict_opts(&run, Some(&other), &preds))
        .unwrap_err()
        .to_string();
    for needle in [
        fp.as_str(),
        fp_other.as_str(),
        &data.display().to_string(),
        &other.display().to_string(),
    ] {
        assert!(err.contains(needle), "{needle} missing from: {err}");
    }
    assert_eq!(
        hrm_eval::read_predictions(&preds)
            .unwrap()
            .meta
            .dataset_fingerprint,
        Some(fp.clone())
    );
    // --dataset naming the same dataset is fine.
    predict(&predict_opts(&run, Some(&data), &preds)).expect("same dataset");
}
