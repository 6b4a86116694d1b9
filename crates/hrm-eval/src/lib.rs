//! hrm-eval: scores HRM predictions (exact and token accuracy, ARC pass@K with
//! de-augmentation and voting, Sudoku and Maze validity) and writes reports.
//! Follows the reference's `evaluate.py` and `arc_eval.ipynb`.
//!
//! This crate is tensor-free: it reads a predictions folder and a dataset folder and never
//! links libtorch.
//!
//! # The predictions folder (contract with `hrm predict`)
//!
//! A folder holding (see [`predictions`] for the reader, the atomic writer and the streaming
//! [`PredictionsWriter`]):
//!
//! | file | dtype | shape | content |
//! |---|---|---|---|
//! | `inputs.npy` | uint8 | `[N, S]` | input token ids |
//! | `preds.npy` | uint8 | `[N, S]` | argmax token ids after the final segment |
//! | `labels.npy` | uint8 | `[N, S]` | labels in dataset encoding: 0 = not supervised |
//! | `puzzle_identifiers.npy` | int32 | `[N]` | puzzle id (index into the dataset's `identifiers.json`) |
//! | `q_halt_logits.npy` | float32 | `[N]` | q_halt logit after the final segment |
//! | `segments.npy` (optional) | uint8 | `[K, M, S]` | predicted tokens after each of the M segments for K chosen rows |
//! | `segment_rows.npy` (optional, with `segments.npy`) | int32 | `[K]` | the rows (0..N) traced in `segments.npy` |
//! | `meta.json` | JSON | | `{"task": "arc" \| "sudoku" \| "maze", "num_segments": M, "checkpoint": "...", "dataset": "..."}` |
//! | `submission.json` (optional, ARC) | JSON | | written by `hrm eval`: the ARC Prize submission ([`submission`]) |
//!
//! Rows are only real examples (no padding rows), in test-split order. The `.npy` files are
//! numpy-compatible (format 1.0, C order). `meta.json` is written last, so its presence marks
//! a complete folder.
//!
//! # Metrics
//!
//! * Every task: exact accuracy (all supervised positions right) and token accuracy, as
//!   `eval/exact_accuracy` and `eval/accuracy` of spec 6.3 ([`accuracy`]).
//! * ARC: pass@K for K = 1, 2, 5, 10, 100, 1000 (spec 8.2, [`arc`]), scored both as HRM does
//!   (a task counts when all its test inputs are right) and as the ARC Prize and TRM do (each
//!   test input credited separately, averaged per task). The ground truth is read from the
//!   un-augmented rows of the dataset's test split (an all-0 label row is an unknown output: its
//!   task is unscored); variant names come from the dataset's `identifiers.json`. [`submission`]
//!   turns the ranked answers into an ARC Prize `submission.json`.
//! * Sudoku and Maze: exact rate and validity rate ([`validity`]).
//!
//! [`evaluate`] picks the metric by `meta.task`, or by the dataset vocabulary
//! ([`TaskFamily::from_vocab_size`]: 12 ARC, 11 Sudoku, 6 Maze) when `meta.json` has no task. [`report`] writes `report.md`,
//! `report.html`, `eval.json` and SVG training curves.

/// The file name of a submission, as the competition and TRM name it; `hrm eval` writes it into
/// the predictions folder by default.
pub const SUBMISSION_FILE: &str = "submission.json";

pub mod accuracy;
pub mod arc;
pub mod dataset;
pub mod error;
pub mod predictions;
pub mod report;
pub mod submission;
pub mod validity;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use error::EvalError;
pub use hrm_grid::TaskFamily;
pub use predictions::{read_predictions, write_predictions, Predictions, PredictionsWriter};

use accuracy::AccuracyReport;
use arc::ArcReport;
use validity::ValidityReport;

/// The full evaluation of one predictions folder; serialises to JSON (`eval.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// The task the metric was chosen for.
    pub task: TaskFamily,
    /// The predictions folder, as given.
    pub predictions_dir: String,
    /// The dataset folder, as given.
    pub dataset_dir: String,
    /// The checkpoint named in `meta.json`.
    pub checkpoint: String,
    /// M, the number of segments run.
    pub num_segments: usize,
    /// Exact, token and q_halt accuracy over all rows (final segment).
    pub accuracy: AccuracyReport,
    /// ARC pass@K (ARC only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arc: Option<ArcReport>,
    /// Exact and validity rates (Sudoku and Maze only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validity: Option<ValidityReport>,
    /// What could not be checked (e.g. a `meta.json` without a dataset fingerprint); `hrm eval` prints them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl EvalReport {
    /// The headline number: pass@2 for ARC, exact accuracy for Sudoku and Maze.
    pub fn headline(&self) -> f64 {
        match (&self.arc, self.task) {
            (Some(arc), TaskFamily::Arc) => arc.pass_at_k(2).unwrap_or(0.0),
            _ => self.accuracy.exact_accuracy,
        }
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("an EvalReport always serialises")
    }
}

/// Chooses the task from `meta.json` and the dataset vocabulary, failing on a contradiction.
pub fn choose_task(
    meta_task: Option<TaskFamily>,
    vocab_size: usize,
    dataset_dir: &Path,
) -> Result<TaskFamily, EvalError> {
    let by_vocab = TaskFamily::from_vocab_size(vocab_size);
    match (meta_task, by_vocab) {
        (Some(t), Some(v)) if t != v => Err(EvalError::Task {
            msg: format!(
                "meta.json says task \"{}\" but {} has vocab_size {vocab_size} (task \"{}\")",
                t.as_str(),
                dataset_dir.join("test").join("dataset.json").display(),
                v.as_str()
            ),
        }),
        (Some(t), _) | (None, Some(t)) => Ok(t),
        (None, None) => {
            let known: Vec<String> = TaskFamily::ALL
                .iter()
                .map(|f| format!("{} ({f})", f.vocab_size()))
                .collect();
            Err(EvalError::Task {
                msg: format!(
                    "meta.json has no task and {} has vocab_size {vocab_size}, which is none of {}",
                    dataset_dir.join("test").join("dataset.json").display(),
                    known.join(", ")
                ),
            })
        }
    }
}

/// Reads a predictions folder and scores it against the dataset folder it was made on.
///
/// Checks that the predictions' S equals the test split's `seq_len`, picks the metric (see
/// [`choose_task`]) and computes accuracy plus pass@K (ARC) or validity (Sudoku, Maze).
pub fn evaluate(predictions_dir: &Path, dataset_dir: &Path) -> Result<EvalReport, EvalError> {
    let predictions = read_predictions(predictions_dir)?;
    evaluate_loaded(&predictions, predictions_dir, dataset_dir)
}

/// Like [`evaluate`], for predictions already in memory; `predictions_dir` names files in errors.
pub fn evaluate_loaded(
    predictions: &Predictions,
    predictions_dir: &Path,
    dataset_dir: &Path,
) -> Result<EvalReport, EvalError> {
    let info = hrm_data::layout::load_metadata(dataset_dir, "test")?;
    if predictions.seq_len != info.seq_len as usize {
        return Err(EvalError::invalid(
            predictions_dir.join(predictions::INPUTS_FILE),
            format!(
                "has S = {} columns, but {} says seq_len = {}",
                predictions.seq_len,
                dataset_dir.join("test").join("dataset.json").display(),
                info.seq_len
            ),
        ));
    }
    let warnings = check_dataset(predictions, predictions_dir, dataset_dir)?;
    let task = choose_task(predictions.meta.task, info.vocab_size as usize, dataset_dir)?;
    let mut report = EvalReport {
        task,
        predictions_dir: predictions_dir.display().to_string(),
        dataset_dir: dataset_dir.display().to_string(),
        checkpoint: predictions.meta.checkpoint.clone(),
        num_segments: predictions.meta.num_segments,
        accuracy: accuracy::accuracy(predictions),
        arc: None,
        validity: None,
        warnings,
    };
    match task {
        TaskFamily::Arc => {
            let identifiers = hrm_data::layout::load_identifiers(dataset_dir)?;
            let truth = dataset::read_arc_truth(dataset_dir, &identifiers)?;
            report.arc = Some(arc::score_arc(
                predictions,
                &identifiers,
                &truth,
                &arc::PASS_AT_K,
                predictions_dir,
            )?);
        }
        TaskFamily::Sudoku => report.validity = Some(validity::judge_sudoku(predictions)),
        TaskFamily::Maze => {
            let side = maze_side(predictions.seq_len).ok_or_else(|| {
                EvalError::invalid(
                    predictions_dir.join(predictions::INPUTS_FILE),
                    format!(
                        "S = {} is not a square number of maze cells",
                        predictions.seq_len
                    ),
                )
            })?;
            report.validity = Some(validity::judge_maze(predictions, side));
        }
    }
    Ok(report)
}

/// Ties predictions to the dataset they are scored against; returns warnings for what it could not check.
///
/// * `meta.json`'s `dataset_fingerprint` must equal the dataset's ([`hrm_data::layout::dataset_fingerprint`]);
///   a folder without one (written before fingerprints) gets a warning asking to re-run `hrm predict`.
/// * Every row (puzzle id, input, labels) must be a row of the dataset's test split: a row that matches
///   none is an error naming it, never silently dropped.
pub fn check_dataset(
    predictions: &Predictions,
    predictions_dir: &Path,
    dataset_dir: &Path,
) -> Result<Vec<String>, EvalError> {
    let mut warnings = Vec::new();
    let meta_path = predictions_dir.join(predictions::META_FILE);
    match &predictions.meta.dataset_fingerprint {
        Some(recorded) => {
            let actual = hrm_data::layout::dataset_fingerprint(dataset_dir)?;
            if *recorded != actual {
                return Err(EvalError::invalid(
                    &meta_path,
                    format!(
                        "field `dataset_fingerprint`: the predictions were made on a dataset with fingerprint \
                         {recorded} (folder `{}`), but {} has fingerprint {actual}; score them against the \
                         dataset they were made on, or re-run `hrm predict --dataset {}`",
                        predictions.meta.dataset,
                        dataset_dir.display(),
                        dataset_dir.display()
                    ),
                ));
            }
        }
        None => warnings.push(format!(
            "{} has no `dataset_fingerprint` (written by an older `hrm predict`): it cannot be proven to come \
             from {}; re-run `hrm predict` to record it",
            meta_path.display(),
            dataset_dir.display()
        )),
    }
    let test = dataset_dir.join("test");
    if !hrm_data::layout::array_path(&test, "inputs").exists() {
        if predictions.meta.dataset_fingerprint.is_none() {
            warnings.push(format!(
                "{} has no token arrays: the prediction rows were not checked against it",
                test.display()
            ));
        }
        return Ok(warnings);
    }
    check_rows(predictions, predictions_dir, dataset_dir)?;
    Ok(warnings)
}

/// A row's key: its puzzle id, input and label tokens.
fn row_key(id: i32, input: &[u8], label: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(id.to_le_bytes());
    h.update(input);
    h.update(label);
    h.finalize().into()
}

/// Checks that every prediction row is a row of the test split (see [`check_dataset`]).
fn check_rows(
    predictions: &Predictions,
    predictions_dir: &Path,
    dataset_dir: &Path,
) -> Result<(), EvalError> {
    use hrm_data::npy::NpyRowReader;
    let index = hrm_data::layout::load_puzzle_index(dataset_dir, "test")?;
    let test = dataset_dir.join("test");
    let mut inputs = NpyRowReader::<u8>::open(&hrm_data::layout::array_path(&test, "inputs"))?;
    let mut labels = NpyRowReader::<u8>::open(&hrm_data::layout::array_path(&test, "labels"))?;
    let mut keys = std::collections::HashSet::new();
    for (p, &id) in index.puzzle_identifiers.iter().enumerate() {
        for r in index.puzzle_examples(p) {
            keys.insert(row_key(id, &inputs.row(r)?, &labels.row(r)?));
        }
    }
    for i in 0..predictions.len() {
        let id = predictions.puzzle_identifiers[i];
        let key = row_key(id, predictions.input(i), predictions.label(i));
        if keys.contains(&key) {
            continue;
        }
        let why = match split_holds_row(dataset_dir, "train", &key)? {
            true => format!(
                "it is a row of {}: the predictions are of this dataset's train split, and hrm eval scores \
                 the test split (make them with `hrm predict --split test`)",
                dataset_dir.join("train").display()
            ),
            false => "the predictions were made on another dataset".to_string(),
        };
        return Err(EvalError::invalid(
            predictions_dir,
            format!(
                "row {i} (puzzle id {id}) matches no row of {} (same puzzle id, input and labels): {why}",
                test.display()
            ),
        ));
    }
    Ok(())
}

/// True when split `split` of the dataset has a row with `key` (see [`row_key`]); false when it has none or
/// the split has no token arrays. Streams the rows and stops at the first match.
fn split_holds_row(dataset_dir: &Path, split: &str, key: &[u8; 32]) -> Result<bool, EvalError> {
    use hrm_data::npy::NpyRowReader;
    let dir = dataset_dir.join(split);
    if !hrm_data::layout::array_path(&dir, "inputs").exists() {
        return Ok(false);
    }
    let index = hrm_data::layout::load_puzzle_index(dataset_dir, split)?;
    let mut inputs = NpyRowReader::<u8>::open(&hrm_data::layout::array_path(&dir, "inputs"))?;
    let mut labels = NpyRowReader::<u8>::open(&hrm_data::layout::array_path(&dir, "labels"))?;
    for (p, &id) in index.puzzle_identifiers.iter().enumerate() {
        for r in index.puzzle_examples(p) {
            if row_key(id, &inputs.row(r)?, &labels.row(r)?) == *key {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// The side of a square board of `cells` cells, when `cells` is a square.
pub fn maze_side(cells: usize) -> Option<usize> {
    let side = (cells as f64).sqrt().round() as usize;
    (side * side == cells).then_some(side)
}
