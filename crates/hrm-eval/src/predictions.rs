//! The predictions folder written by `hrm predict` and read by the evaluator: types, reader and atomic writer.
//!
//! The folder format is the contract documented at the crate root ([`crate`]); keep both in step.

use std::path::{Path, PathBuf};

use hrm_data::layout::StagedDir;
use hrm_data::npy::{read_npy, write_npy, NpyArray, NpyElem, NpyWriter};
use hrm_grid::TaskFamily;
use serde::{Deserialize, Serialize};

use crate::error::EvalError;

/// File name of the input tokens, uint8 `[N, S]`.
pub const INPUTS_FILE: &str = "inputs.npy";
/// File name of the predicted tokens after the final segment, uint8 `[N, S]`.
pub const PREDS_FILE: &str = "preds.npy";
/// File name of the labels in dataset encoding (0 = not supervised), uint8 `[N, S]`.
pub const LABELS_FILE: &str = "labels.npy";
/// File name of the puzzle identifiers, int32 `[N]`.
pub const PUZZLE_IDENTIFIERS_FILE: &str = "puzzle_identifiers.npy";
/// File name of the q_halt logits after the final segment, float32 `[N]`.
pub const Q_HALT_LOGITS_FILE: &str = "q_halt_logits.npy";
/// File name of the optional per-segment predictions, uint8 `[K, M, S]`.
pub const SEGMENTS_FILE: &str = "segments.npy";
/// File name of the rows traced in [`SEGMENTS_FILE`], int32 `[K]`.
pub const SEGMENT_ROWS_FILE: &str = "segment_rows.npy";
/// File name of the metadata, JSON.
pub const META_FILE: &str = "meta.json";

/// The content of `meta.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PredictionsMeta {
    /// The task; `hrm predict` always writes it. When absent, the evaluator uses the dataset vocabulary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskFamily>,
    /// M, the number of segments run (16 for the HRM recipes).
    pub num_segments: usize,
    /// The checkpoint the predictions came from (free text, usually a path).
    #[serde(default)]
    pub checkpoint: String,
    /// The dataset folder the predictions were made on (free text, usually a path).
    #[serde(default)]
    pub dataset: String,
    /// The fingerprint of that dataset ([`hrm_data::layout::dataset_fingerprint`]); the evaluator
    /// refuses a dataset whose fingerprint differs. Absent in folders written before fingerprints
    /// existed: those are scored with a warning (and their rows are still checked against the dataset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_fingerprint: Option<String>,
}

/// The optional refinement view: predicted tokens after each segment for K chosen rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentTrace {
    /// The traced rows (indices into the N prediction rows), length K.
    pub rows: Vec<usize>,
    /// M, the number of segments per traced row.
    pub num_segments: usize,
    /// The tokens, row-major `[K, M, S]`.
    pub tokens: Vec<u8>,
}

impl SegmentTrace {
    /// K, the number of traced rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when no row is traced.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The predicted tokens of traced row `k` (0..K) after segment `m` (0..M).
    ///
    /// # Shapes
    /// Returns `[S]` where S = `tokens.len() / (K * M)`.
    ///
    /// # Panics
    /// When `k` or `m` is out of range.
    pub fn tokens_at(&self, k: usize, m: usize) -> &[u8] {
        assert!(k < self.rows.len() && m < self.num_segments);
        let s = self.tokens.len() / (self.rows.len() * self.num_segments);
        let start = (k * self.num_segments + m) * s;
        &self.tokens[start..start + s]
    }
}

/// The whole predictions folder in memory.
///
/// Rows are the real examples of the test split, in test-split order, without padding rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    /// The content of `meta.json`.
    pub meta: PredictionsMeta,
    /// S, the sequence length (columns of the token arrays).
    pub seq_len: usize,
    /// Input tokens, row-major `[N, S]`.
    pub inputs: Vec<u8>,
    /// Predicted tokens (argmax after the final segment), row-major `[N, S]`.
    pub preds: Vec<u8>,
    /// Labels in dataset encoding (0 = not supervised), row-major `[N, S]`.
    pub labels: Vec<u8>,
    /// Puzzle identifier of each row (an index into the dataset's `identifiers.json`), `[N]`.
    pub puzzle_identifiers: Vec<i32>,
    /// q_halt logit of each row after the final segment, `[N]`.
    pub q_halt_logits: Vec<f32>,
    /// The optional per-segment trace (`segments.npy` + `segment_rows.npy`).
    pub segments: Option<SegmentTrace>,
}

impl Predictions {
    /// N, the number of rows.
    pub fn len(&self) -> usize {
        self.puzzle_identifiers.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.puzzle_identifiers.is_empty()
    }

    /// The input tokens of row `i`.
    ///
    /// # Shapes
    /// Returns `[S]`.
    pub fn input(&self, i: usize) -> &[u8] {
        &self.inputs[i * self.seq_len..(i + 1) * self.seq_len]
    }

    /// The predicted tokens of row `i`.
    ///
    /// # Shapes
    /// Returns `[S]`.
    pub fn pred(&self, i: usize) -> &[u8] {
        &self.preds[i * self.seq_len..(i + 1) * self.seq_len]
    }

    /// The label tokens of row `i` (0 = not supervised).
    ///
    /// # Shapes
    /// Returns `[S]`.
    pub fn label(&self, i: usize) -> &[u8] {
        &self.labels[i * self.seq_len..(i + 1) * self.seq_len]
    }

    /// Checks that every array agrees with N and S; `dir` is only used to name files in errors.
    pub fn validate(&self, dir: &Path) -> Result<(), EvalError> {
        let n = self.len();
        let s = self.seq_len;
        check_seq_len(dir, s)?;
        let token_arrays = [
            (INPUTS_FILE, self.inputs.len()),
            (PREDS_FILE, self.preds.len()),
            (LABELS_FILE, self.labels.len()),
        ];
        for (file, len) in token_arrays {
            if len != n * s {
                return Err(EvalError::invalid(
                    dir.join(file),
                    format!(
                        "holds {len} tokens, expected N x S = {n} x {s} = {} \
                         (N from {PUZZLE_IDENTIFIERS_FILE})",
                        n * s
                    ),
                ));
            }
        }
        if self.q_halt_logits.len() != n {
            return Err(EvalError::invalid(
                dir.join(Q_HALT_LOGITS_FILE),
                format!(
                    "has {} rows, expected N = {n} (from {PUZZLE_IDENTIFIERS_FILE})",
                    self.q_halt_logits.len()
                ),
            ));
        }
        match &self.segments {
            Some(trace) => trace.validate(dir, n, s, self.meta.num_segments),
            None => Ok(()),
        }
    }
}

/// Refuses a sequence length of 0; `dir` names the file in the error.
fn check_seq_len(dir: &Path, seq_len: usize) -> Result<(), EvalError> {
    if seq_len == 0 {
        return Err(EvalError::invalid(
            dir.join(INPUTS_FILE),
            "sequence length S is 0",
        ));
    }
    Ok(())
}

impl SegmentTrace {
    /// Checks the trace against N rows of S tokens and the M of `meta.json`; `dir` names files in errors.
    fn validate(
        &self,
        dir: &Path,
        n: usize,
        s: usize,
        num_segments: usize,
    ) -> Result<(), EvalError> {
        let k = self.rows.len();
        let m = self.num_segments;
        if self.tokens.len() != k * m * s {
            return Err(EvalError::invalid(
                dir.join(SEGMENTS_FILE),
                format!(
                    "holds {} tokens, expected K x M x S = {k} x {m} x {s}",
                    self.tokens.len()
                ),
            ));
        }
        if m != num_segments {
            return Err(EvalError::invalid(
                dir.join(SEGMENTS_FILE),
                format!("has M = {m} segments but {META_FILE} says num_segments = {num_segments}"),
            ));
        }
        if let Some((k, &row)) = self.rows.iter().enumerate().find(|(_, &r)| r >= n) {
            return Err(EvalError::invalid(
                dir.join(SEGMENT_ROWS_FILE),
                format!("entry {k} is row {row}, but there are only N = {n} rows"),
            ));
        }
        Ok(())
    }
}

fn read_array<T: NpyElem>(path: &Path) -> Result<NpyArray<T>, EvalError> {
    Ok(read_npy::<T>(path)?)
}

fn expect_shape(path: &Path, got: &[usize], want: &[usize], why: &str) -> Result<(), EvalError> {
    if got == want {
        Ok(())
    } else {
        Err(EvalError::invalid(
            path,
            format!("has shape {got:?}, expected {want:?} ({why})"),
        ))
    }
}

/// Reads a predictions folder and checks that its arrays agree with one another.
///
/// Errors name the offending file: a missing file, a wrong dtype, or an array whose length
/// disagrees with `inputs.npy` (`[N, S]`) or with `meta.json` (M).
pub fn read_predictions(dir: &Path) -> Result<Predictions, EvalError> {
    let meta_path = dir.join(META_FILE);
    let text = std::fs::read_to_string(&meta_path).map_err(|e| EvalError::io(&meta_path, e))?;
    let meta: PredictionsMeta =
        serde_json::from_str(&text).map_err(|e| EvalError::json(&meta_path, e.to_string()))?;

    let inputs_path = dir.join(INPUTS_FILE);
    let inputs = read_array::<u8>(&inputs_path)?;
    if inputs.shape.len() != 2 {
        return Err(EvalError::invalid(
            &inputs_path,
            format!("has shape {:?}, expected [N, S]", inputs.shape),
        ));
    }
    let (n, s) = (inputs.shape[0], inputs.shape[1]);
    let like_inputs = format!("N x S like {INPUTS_FILE}");
    let preds_path = dir.join(PREDS_FILE);
    let preds = read_array::<u8>(&preds_path)?;
    expect_shape(&preds_path, &preds.shape, &[n, s], &like_inputs)?;
    let labels_path = dir.join(LABELS_FILE);
    let labels = read_array::<u8>(&labels_path)?;
    expect_shape(&labels_path, &labels.shape, &[n, s], &like_inputs)?;
    let like_rows = format!("N rows like {INPUTS_FILE}");
    let ids_path = dir.join(PUZZLE_IDENTIFIERS_FILE);
    let ids = read_array::<i32>(&ids_path)?;
    expect_shape(&ids_path, &ids.shape, &[n], &like_rows)?;
    let q_path = dir.join(Q_HALT_LOGITS_FILE);
    let q = read_array::<f32>(&q_path)?;
    expect_shape(&q_path, &q.shape, &[n], &like_rows)?;

    let predictions = Predictions {
        meta,
        seq_len: s,
        inputs: inputs.data,
        preds: preds.data,
        labels: labels.data,
        puzzle_identifiers: ids.data,
        q_halt_logits: q.data,
        segments: read_trace(dir, s)?,
    };
    predictions.validate(dir)?;
    Ok(predictions)
}

/// Reads the optional `segments.npy` + `segment_rows.npy` pair (both or neither) of rows of `s` tokens.
fn read_trace(dir: &Path, s: usize) -> Result<Option<SegmentTrace>, EvalError> {
    let seg_path = dir.join(SEGMENTS_FILE);
    let rows_path = dir.join(SEGMENT_ROWS_FILE);
    Ok(match (seg_path.exists(), rows_path.exists()) {
        (false, false) => None,
        (true, false) => {
            return Err(EvalError::invalid(
                &rows_path,
                format!("is missing although {SEGMENTS_FILE} is present"),
            ))
        }
        (false, true) => {
            return Err(EvalError::invalid(
                &seg_path,
                format!("is missing although {SEGMENT_ROWS_FILE} is present"),
            ))
        }
        (true, true) => {
            let seg = read_array::<u8>(&seg_path)?;
            let rows = read_array::<i32>(&rows_path)?;
            if seg.shape.len() != 3 || seg.shape[2] != s {
                return Err(EvalError::invalid(
                    &seg_path,
                    format!("has shape {:?}, expected [K, M, S] with S = {s}", seg.shape),
                ));
            }
            let (k, m) = (seg.shape[0], seg.shape[1]);
            expect_shape(
                &rows_path,
                &rows.shape,
                &[k],
                &format!("K rows like {SEGMENTS_FILE}"),
            )?;
            let mut trace_rows = Vec::with_capacity(k);
            for (j, &r) in rows.data.iter().enumerate() {
                if r < 0 {
                    return Err(EvalError::invalid(
                        &rows_path,
                        format!("entry {j} is the negative row {r}"),
                    ));
                }
                trace_rows.push(r as usize);
            }
            Some(SegmentTrace {
                rows: trace_rows,
                num_segments: m,
                tokens: seg.data,
            })
        }
    })
}

/// Writes a predictions folder (creating `dir` if needed); every file is written atomically.
///
/// `meta.json` is written last, so a folder with a `meta.json` is complete. A stale
/// `segments.npy` / `segment_rows.npy` pair is removed when `predictions.segments` is `None`.
pub fn write_predictions(out: &Path, predictions: &Predictions) -> Result<(), EvalError> {
    predictions.validate(out)?;
    check_replaceable(out)?;
    let staged = StagedDir::create(out)?;
    let dir = staged.path();
    let n = predictions.len();
    let s = predictions.seq_len;
    write_npy(&dir.join(INPUTS_FILE), &[n, s], &predictions.inputs)?;
    write_npy(&dir.join(PREDS_FILE), &[n, s], &predictions.preds)?;
    write_npy(&dir.join(LABELS_FILE), &[n, s], &predictions.labels)?;
    write_npy(
        &dir.join(PUZZLE_IDENTIFIERS_FILE),
        &[n],
        &predictions.puzzle_identifiers,
    )?;
    write_npy(
        &dir.join(Q_HALT_LOGITS_FILE),
        &[n],
        &predictions.q_halt_logits,
    )?;
    write_trace_and_meta(dir, s, &predictions.meta, predictions.segments.as_ref())?;
    staged.commit()?;
    Ok(())
}

/// The files a predictions folder may hold (`submission.json` is written there by `hrm eval`).
const KNOWN_FILES: [&str; 9] = [
    crate::SUBMISSION_FILE,
    INPUTS_FILE,
    PREDS_FILE,
    LABELS_FILE,
    PUZZLE_IDENTIFIERS_FILE,
    Q_HALT_LOGITS_FILE,
    SEGMENTS_FILE,
    SEGMENT_ROWS_FILE,
    META_FILE,
];

/// Refuses to replace `out` when it exists and holds anything that is not part of a predictions folder
/// (a mistyped `--out` must not delete unrelated files).
fn check_replaceable(out: &Path) -> Result<(), EvalError> {
    check_folder_holds_only(out, &KNOWN_FILES, "a predictions folder")
}

/// Refuses an existing `out` that is not a folder or holds an entry not in `known` (`what` names the kind of
/// folder in the error): the check before a staged folder replaces an old one ([`hrm_data::check_folder_holds_only`]).
pub(crate) fn check_folder_holds_only(
    out: &Path,
    known: &[&str],
    what: &str,
) -> Result<(), EvalError> {
    Ok(hrm_data::check_folder_holds_only(out, known, what)?)
}

/// Writes (or removes) the segment trace, then `meta.json`.
fn write_trace_and_meta(
    dir: &Path,
    seq_len: usize,
    meta: &PredictionsMeta,
    segments: Option<&SegmentTrace>,
) -> Result<(), EvalError> {
    let seg_path = dir.join(SEGMENTS_FILE);
    let rows_path = dir.join(SEGMENT_ROWS_FILE);
    match segments {
        Some(trace) => {
            let rows: Vec<i32> = trace
                .rows
                .iter()
                .map(|&r| {
                    i32::try_from(r).map_err(|_| {
                        EvalError::invalid(&rows_path, format!("row {r} does not fit in int32"))
                    })
                })
                .collect::<Result<_, _>>()?;
            write_npy(
                &seg_path,
                &[trace.rows.len(), trace.num_segments, seq_len],
                &trace.tokens,
            )?;
            write_npy(&rows_path, &[rows.len()], &rows)?;
        }
        None => {
            for path in [&seg_path, &rows_path] {
                remove_if_present(path)?;
            }
        }
    }
    let meta_path = dir.join(META_FILE);
    let mut json = serde_json::to_string_pretty(meta)
        .map_err(|e| EvalError::json(&meta_path, e.to_string()))?;
    json.push('\n');
    hrm_data::write_atomic(&meta_path, json.as_bytes())?;
    Ok(())
}

/// Streams a predictions folder batch by batch, so the trainer never holds all N rows.
///
/// Everything is written into a hidden sibling of the folder (`.<name>.building-<pid>`, see
/// [`StagedDir`]); [`PredictionsWriter::finish`] writes the optional trace and `meta.json` there and
/// then swaps it into place. An existing folder stays as it was until then: a failed or killed
/// prediction leaves the old predictions readable.
pub struct PredictionsWriter {
    staged: StagedDir,
    dir: PathBuf,
    seq_len: usize,
    meta: PredictionsMeta,
    inputs: NpyWriter<u8>,
    preds: NpyWriter<u8>,
    labels: NpyWriter<u8>,
    puzzle_identifiers: NpyWriter<i32>,
    q_halt_logits: NpyWriter<f32>,
    rows: usize,
}

impl PredictionsWriter {
    /// Starts writing a folder (created if needed) of rows of `seq_len` tokens.
    pub fn create(
        dir: &Path,
        seq_len: usize,
        meta: PredictionsMeta,
    ) -> Result<PredictionsWriter, EvalError> {
        check_seq_len(dir, seq_len)?;
        check_replaceable(dir)?;
        let staged = StagedDir::create(dir)?;
        let dir = staged.path().to_path_buf();
        let dir = dir.as_path();
        Ok(PredictionsWriter {
            dir: dir.to_path_buf(),
            seq_len,
            meta,
            inputs: NpyWriter::create(&dir.join(INPUTS_FILE), &[seq_len])?,
            preds: NpyWriter::create(&dir.join(PREDS_FILE), &[seq_len])?,
            labels: NpyWriter::create(&dir.join(LABELS_FILE), &[seq_len])?,
            puzzle_identifiers: NpyWriter::create(&dir.join(PUZZLE_IDENTIFIERS_FILE), &[])?,
            q_halt_logits: NpyWriter::create(&dir.join(Q_HALT_LOGITS_FILE), &[])?,
            rows: 0,
            staged,
        })
    }

    /// Appends a batch of B rows (padding rows must be left out by the caller).
    ///
    /// # Shapes
    /// `inputs`, `preds`, `labels`: `[B, S]` row-major; `puzzle_identifiers`, `q_halt_logits`: `[B]`.
    pub fn push_batch(
        &mut self,
        inputs: &[u8],
        preds: &[u8],
        labels: &[u8],
        puzzle_identifiers: &[i32],
        q_halt_logits: &[f32],
    ) -> Result<(), EvalError> {
        let b = puzzle_identifiers.len();
        let want = b * self.seq_len;
        let checks = [
            (INPUTS_FILE, inputs.len(), want),
            (PREDS_FILE, preds.len(), want),
            (LABELS_FILE, labels.len(), want),
            (Q_HALT_LOGITS_FILE, q_halt_logits.len(), b),
        ];
        for (file, got, want) in checks {
            if got != want {
                return Err(EvalError::invalid(
                    self.dir.join(file),
                    format!(
                        "batch at row {} has {got} values, expected {want} for B = {b} rows \
                         of S = {}",
                        self.rows, self.seq_len
                    ),
                ));
            }
        }
        self.inputs.push(inputs)?;
        self.preds.push(preds)?;
        self.labels.push(labels)?;
        self.puzzle_identifiers.push(puzzle_identifiers)?;
        self.q_halt_logits.push(q_halt_logits)?;
        self.rows += b;
        Ok(())
    }

    /// The number of rows written so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Renames the arrays into place, writes the optional trace (its rows must be < N and its
    /// M must equal `meta.num_segments`) and then `meta.json`; returns N.
    pub fn finish(self, segments: Option<&SegmentTrace>) -> Result<usize, EvalError> {
        if let Some(trace) = segments {
            trace.validate(&self.dir, self.rows, self.seq_len, self.meta.num_segments)?;
        }
        self.inputs.finish()?;
        self.preds.finish()?;
        self.labels.finish()?;
        self.puzzle_identifiers.finish()?;
        self.q_halt_logits.finish()?;
        write_trace_and_meta(&self.dir, self.seq_len, &self.meta, segments)?;
        self.staged.commit()?;
        Ok(self.rows)
    }
}

fn remove_if_present(path: &PathBuf) -> Result<(), EvalError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(EvalError::io(path, e)),
    }
}
