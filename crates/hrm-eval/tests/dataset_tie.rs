//! Predictions are tied to their dataset: `meta.json` records the dataset fingerprint and the evaluator
//! refuses another dataset, naming both fingerprints and both folders; a report folder is never replaced by
//! a failed report nor over foreign files.

use hrm_data::layout::{dataset_fingerprint, write_dataset, SplitBuilder};
use hrm_eval::predictions::PredictionsMeta;
use hrm_eval::report::{write_report, ReportOptions};
use hrm_eval::{evaluate, write_predictions, Predictions, TaskFamily};
use std::path::Path;

/// A Sudoku-shaped dataset (vocab 11, S = 81) of `n` test rows whose tokens start at `first`.
fn dataset(dir: &Path, n: usize, first: u8) -> Vec<Vec<u8>> {
    let rows: Vec<Vec<u8>> = (0..n)
        .map(|r| {
            (0..81)
                .map(|k| ((first as usize + r + k) % 9 + 1) as u8)
                .collect()
        })
        .collect();
    let split = || {
        let mut b = SplitBuilder::new(81);
        for row in &rows {
            b.push_example(row, row);
            b.end_puzzle(0);
            b.end_group();
        }
        b.finish(11, 1)
    };
    write_dataset(dir, &["<blank>".to_string()], &split(), &split()).unwrap();
    rows
}

fn predictions(rows: &[Vec<u8>], fingerprint: Option<String>, dataset: &Path) -> Predictions {
    Predictions {
        meta: PredictionsMeta {
            task: Some(TaskFamily::Sudoku),
            num_segments: 1,
            checkpoint: "c".into(),
            dataset: dataset.display().to_string(),
            dataset_fingerprint: fingerprint,
        },
        seq_len: 81,
        inputs: rows.concat(),
        preds: rows.concat(),
        labels: rows.concat(),
        puzzle_identifiers: vec![0; rows.len()],
        q_halt_logits: vec![0.0; rows.len()],
        segments: None,
    }
}

#[test]
fn evaluate_refuses_predictions_of_another_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, preds) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("preds"),
    );
    let rows = dataset(&a, 3, 1);
    dataset(&b, 3, 4);
    let (fa, fb) = (
        dataset_fingerprint(&a).unwrap(),
        dataset_fingerprint(&b).unwrap(),
    );
    write_predictions(&preds, &predictions(&rows, Some(fa.clone()), &a)).unwrap();
    let ok = evaluate(&preds, &a).unwrap();
    assert_eq!(ok.accuracy.exact_accuracy, 1.0);
    assert!(ok.warnings.is_empty(), "{:?}", ok.warnings);

    let err = evaluate(&preds, &b).unwrap_err().to_string();
    for needle in [&fa, &fb, &a.display().to_string(), &b.display().to_string()] {
        assert!(
            err.contains(needle.as_str()),
            "{needle} missing from: {err}"
        );
    }
    assert!(
        err.contains("dataset_fingerprint") && err.contains("meta.json"),
        "{err}"
    );

    // The same refusal through `hrm report`; no report folder appears.
    let out = dir.path().join("report");
    assert!(write_report(&out, &preds, &b, &ReportOptions::default()).is_err());
    assert!(!out.exists());
}

#[test]
fn predictions_without_a_fingerprint_are_scored_with_a_warning_and_their_rows_checked() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, preds) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("preds"),
    );
    let rows = dataset(&a, 3, 1);
    dataset(&b, 3, 4);
    write_predictions(&preds, &predictions(&rows, None, &a)).unwrap();
    let r = evaluate(&preds, &a).unwrap();
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(
        r.warnings[0].contains("re-run `hrm predict`"),
        "{:?}",
        r.warnings
    );
    // Against another dataset the rows match nothing: an error, not a perfect score.
    let err = evaluate(&preds, &b).unwrap_err().to_string();
    assert!(
        err.contains("row 0") && err.contains("matches no row"),
        "{err}"
    );
}

#[test]
fn a_report_replaces_only_a_report_folder() {
    let dir = tempfile::tempdir().unwrap();
    let (a, preds, out) = (
        dir.path().join("a"),
        dir.path().join("preds"),
        dir.path().join("report"),
    );
    let rows = dataset(&a, 2, 1);
    let fa = dataset_fingerprint(&a).unwrap();
    write_predictions(&preds, &predictions(&rows, Some(fa), &a)).unwrap();
    let (_, files) = write_report(&out, &preds, &a, &ReportOptions::default()).unwrap();
    assert!(files.markdown.starts_with(&out) && files.markdown.is_file());
    // Rewriting replaces it; nothing else is left beside it.
    write_report(&out, &preds, &a, &ReportOptions::default()).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["a", "preds", "report"]);
    // A folder with someone else's file is refused and left alone.
    std::fs::write(out.join("mine.txt"), "x").unwrap();
    let err = write_report(&out, &preds, &a, &ReportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("mine.txt"), "{err}");
    assert!(out.join("mine.txt").is_file() && out.join("report.md").is_file());
}
