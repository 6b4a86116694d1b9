//! The predictions folder: round trip, stale trace removal, and clear errors naming the file
//! when arrays disagree with one another or with the dataset.

mod common;

use common::*;
use hrm_data::npy::write_npy;
use hrm_eval::predictions::{Predictions, PredictionsMeta, SegmentTrace};
use hrm_eval::{evaluate, read_predictions, write_predictions, TaskFamily};

fn small(n: usize, s: usize) -> Predictions {
    Predictions {
        meta: PredictionsMeta {
            dataset_fingerprint: None,
            task: Some(TaskFamily::Sudoku),
            num_segments: 3,
            checkpoint: "ckpt/step_10.safetensors".into(),
            dataset: "data/sudoku".into(),
        },
        seq_len: s,
        inputs: (0..n * s).map(|i| (i % 11) as u8).collect(),
        preds: (0..n * s).map(|i| (i % 7) as u8).collect(),
        labels: (0..n * s).map(|i| (i % 5) as u8).collect(),
        puzzle_identifiers: (0..n as i32).collect(),
        q_halt_logits: (0..n).map(|i| i as f32 - 0.5).collect(),
        segments: Some(SegmentTrace {
            rows: vec![n - 1, 0],
            num_segments: 3,
            tokens: (0..2 * 3 * s).map(|i| (i % 9) as u8).collect(),
        }),
    }
}

fn err_of(dir: &std::path::Path) -> String {
    read_predictions(dir).unwrap_err().to_string()
}

#[test]
fn round_trip_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let p = small(4, 81);
    write_predictions(dir.path(), &p).unwrap();
    let back = read_predictions(dir.path()).unwrap();
    assert_eq!(back, p);
    assert_eq!(
        back.segments.as_ref().unwrap().tokens_at(1, 2),
        &p.segments.as_ref().unwrap().tokens[5 * 81..6 * 81]
    );
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("meta.json")).unwrap())
            .unwrap();
    assert_eq!(meta["task"], "sudoku");
    assert_eq!(meta["num_segments"], 3);

    // Writing again without a trace removes the stale trace files.
    let mut q = p.clone();
    q.segments = None;
    write_predictions(dir.path(), &q).unwrap();
    assert!(!dir.path().join("segments.npy").exists());
    assert!(!dir.path().join("segment_rows.npy").exists());
    assert_eq!(read_predictions(dir.path()).unwrap(), q);
    // No temporary files are left behind.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
}

#[test]
fn arrays_that_disagree_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_predictions(d, &small(4, 81)).unwrap();

    write_npy(&d.join("preds.npy"), &[3, 81], &vec![0u8; 3 * 81]).unwrap();
    let err = err_of(d);
    assert!(
        err.contains("preds.npy") && err.contains("[3, 81]"),
        "{err}"
    );
    write_npy(&d.join("preds.npy"), &[4, 81], &vec![0u8; 4 * 81]).unwrap();

    write_npy(&d.join("labels.npy"), &[4, 80], &vec![0u8; 4 * 80]).unwrap();
    assert!(err_of(d).contains("labels.npy"));
    write_npy(&d.join("labels.npy"), &[4, 81], &vec![0u8; 4 * 81]).unwrap();

    write_npy(&d.join("q_halt_logits.npy"), &[5], &[0f32; 5]).unwrap();
    assert!(err_of(d).contains("q_halt_logits.npy"));
    write_npy(&d.join("q_halt_logits.npy"), &[4], &[0f32; 4]).unwrap();

    write_npy(&d.join("puzzle_identifiers.npy"), &[4], &[0f32; 4]).unwrap();
    assert!(err_of(d).contains("puzzle_identifiers.npy"));
    write_npy(&d.join("puzzle_identifiers.npy"), &[4], &[0i32; 4]).unwrap();

    write_npy(&d.join("segments.npy"), &[2, 2, 81], &vec![0u8; 2 * 2 * 81]).unwrap();
    let err = err_of(d);
    assert!(
        err.contains("segments.npy") && err.contains("num_segments"),
        "{err}"
    );
    write_npy(&d.join("segments.npy"), &[2, 3, 81], &vec![0u8; 2 * 3 * 81]).unwrap();

    write_npy(&d.join("segment_rows.npy"), &[2], &[0i32, 4]).unwrap();
    assert!(err_of(d).contains("segment_rows.npy"));
    std::fs::remove_file(d.join("segment_rows.npy")).unwrap();
    assert!(err_of(d).contains("segment_rows.npy"));
    std::fs::remove_file(d.join("segments.npy")).unwrap();
    read_predictions(d).unwrap();

    std::fs::remove_file(d.join("inputs.npy")).unwrap();
    assert!(err_of(d).contains("inputs.npy"));

    std::fs::write(
        d.join("meta.json"),
        "{\"task\": \"chess\", \"num_segments\": 1}",
    )
    .unwrap();
    assert!(err_of(d).contains("meta.json"));
}

#[test]
fn sequence_length_must_match_the_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_meta_only_dataset(&data, 11, 81);
    let preds = dir.path().join("preds");
    let mut p = small(2, 80);
    p.segments = None;
    write_predictions(&preds, &p).unwrap();
    let err = evaluate(&preds, &data).unwrap_err().to_string();
    assert!(
        err.contains("inputs.npy") && err.contains("dataset.json") && err.contains("81"),
        "{err}"
    );
}

#[test]
fn streaming_writer_matches_the_one_shot_writer() {
    let dir = tempfile::tempdir().unwrap();
    let p = small(5, 81);
    let streamed = dir.path().join("streamed");
    let mut w =
        hrm_eval::predictions::PredictionsWriter::create(&streamed, 81, p.meta.clone()).unwrap();
    for (lo, hi) in [(0, 2), (2, 5)] {
        w.push_batch(
            &p.inputs[lo * 81..hi * 81],
            &p.preds[lo * 81..hi * 81],
            &p.labels[lo * 81..hi * 81],
            &p.puzzle_identifiers[lo..hi],
            &p.q_halt_logits[lo..hi],
        )
        .unwrap();
    }
    // A batch with too few labels is refused, naming the file.
    let err = w
        .push_batch(&[0; 81], &[0; 81], &[0; 80], &[1], &[0.0])
        .unwrap_err()
        .to_string();
    assert!(err.contains("labels.npy"), "{err}");
    assert!(!streamed.join("meta.json").exists());
    assert_eq!(w.rows(), 5);
    assert_eq!(w.finish(p.segments.as_ref()).unwrap(), 5);
    assert_eq!(read_predictions(&streamed).unwrap(), p);

    // A trace naming a row past N is refused. While the new folder is written, and after it fails,
    // the old predictions stay complete and readable.
    let mut w =
        hrm_eval::predictions::PredictionsWriter::create(&streamed, 81, p.meta.clone()).unwrap();
    assert_eq!(read_predictions(&streamed).unwrap(), p);
    w.push_batch(
        &p.inputs[..81],
        &p.preds[..81],
        &p.labels[..81],
        &[0],
        &[0.0],
    )
    .unwrap();
    let err = w.finish(p.segments.as_ref()).unwrap_err().to_string();
    assert!(err.contains("segment_rows.npy"), "{err}");
    assert_eq!(read_predictions(&streamed).unwrap(), p);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["streamed"], "no staging folder is left behind");
}

#[test]
fn a_folder_with_foreign_files_is_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let p = small(2, 81);
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let err = write_predictions(&out, &p).unwrap_err().to_string();
    assert!(
        err.contains("notes.txt") && err.contains("refusing"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).unwrap(),
        "mine"
    );
}
