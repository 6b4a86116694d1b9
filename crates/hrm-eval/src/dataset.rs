//! The parts of an HRM dataset folder (spec 1.1) the evaluator needs: metadata, identifiers,
//! ARC ground truth from the test split and ARC demonstrations from the train split.
//!
//! Only the rows that are needed are read from the token arrays (a seek per row), so the
//! multi-gigabyte ARC train split is never loaded whole.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use hrm_augment::variant::ArcVariant;
use hrm_data::npy::{read_npy, read_npy_header};
use hrm_grid::codec::{canvas_side, crop_arc_canvas, crop_arc_canvas_at, PAD};
use hrm_grid::Grid;
use serde::Deserialize;

use crate::error::EvalError;

/// The fields of `<split>/dataset.json` the evaluator reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DatasetInfo {
    /// The vocabulary size (12 ARC, 11 Sudoku, 6 Maze).
    pub vocab_size: usize,
    /// S, the sequence length.
    pub seq_len: usize,
}

/// Reads `<dataset_dir>/<split>/dataset.json`.
pub fn read_dataset_info(dataset_dir: &Path, split: &str) -> Result<DatasetInfo, EvalError> {
    let path = dataset_dir.join(split).join("dataset.json");
    let text = std::fs::read_to_string(&path).map_err(|e| EvalError::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| EvalError::json(&path, e.to_string()))
}

/// Reads `<dataset_dir>/identifiers.json`: puzzle id -> name (index 0 is `"<blank>"`).
pub fn read_identifiers(dataset_dir: &Path) -> Result<Vec<String>, EvalError> {
    let path = dataset_dir.join("identifiers.json");
    let text = std::fs::read_to_string(&path).map_err(|e| EvalError::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| EvalError::json(&path, e.to_string()))
}

/// Splits a variant name into the original task name and its augmentation (`None` = identity).
///
/// Names without a `_t<t>_<digits>` suffix are un-augmented. A name whose suffix does not
/// parse is returned whole, as un-augmented.
pub fn parse_variant(name: &str) -> (String, Option<ArcVariant>) {
    ArcVariant::parse_name(name).unwrap_or_else(|| (name.to_string(), None))
}

/// One test pair of an ARC task, decoded from the un-augmented rows of the test split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArcTestPair {
    /// The test input grid.
    pub input: Grid,
    /// The expected output grid.
    pub output: Grid,
}

/// The ground truth of one ARC task: its un-augmented test pairs, in split order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArcTaskTruth {
    /// The original (un-augmented) task name.
    pub name: String,
    /// The puzzle identifier of the un-augmented variant.
    pub puzzle_id: i32,
    /// The test pairs.
    pub tests: Vec<ArcTestPair>,
}

/// Row-wise access to a uint8 [rows, cols] `.npy` file without reading it whole.
struct NpyRows {
    path: PathBuf,
    file: File,
    data_offset: u64,
    rows: usize,
    cols: usize,
}

impl NpyRows {
    fn open(path: &Path) -> Result<NpyRows, EvalError> {
        let header = read_npy_header(path)?;
        if !matches!(header.descr.as_str(), "|u1" | "<u1" | ">u1" | "u1") {
            return Err(EvalError::invalid(
                path,
                format!("dtype is '{}', expected '|u1'", header.descr),
            ));
        }
        if header.fortran_order || header.shape.len() != 2 {
            return Err(EvalError::invalid(
                path,
                format!(
                    "expected a C-order [N, S] array, found shape {:?} (fortran_order = {})",
                    header.shape, header.fortran_order
                ),
            ));
        }
        let file = File::open(path).map_err(|e| EvalError::io(path, e))?;
        Ok(NpyRows {
            path: path.to_path_buf(),
            file,
            data_offset: header.data_offset as u64,
            rows: header.shape[0],
            cols: header.shape[1],
        })
    }

    fn row(&mut self, r: usize) -> Result<Vec<u8>, EvalError> {
        if r >= self.rows {
            return Err(EvalError::invalid(
                &self.path,
                format!("row {r} requested, but the array has {} rows", self.rows),
            ));
        }
        let mut buf = vec![0u8; self.cols];
        let offset = self.data_offset + (r * self.cols) as u64;
        self.file
            .seek(SeekFrom::Start(offset))
            .and_then(|_| self.file.read_exact(&mut buf))
            .map_err(|e| EvalError::io(&self.path, e))?;
        Ok(buf)
    }
}

/// The puzzle-level index of a split: which puzzle id owns which example rows.
struct SplitIndex {
    puzzle_identifiers: Vec<i32>,
    puzzle_indices: Vec<i32>,
}

impl SplitIndex {
    fn read(dataset_dir: &Path, split: &str) -> Result<SplitIndex, EvalError> {
        let dir = dataset_dir.join(split);
        let ids_path = dir.join("all__puzzle_identifiers.npy");
        let idx_path = dir.join("all__puzzle_indices.npy");
        let puzzle_identifiers = read_npy::<i32>(&ids_path)?.data;
        let puzzle_indices = read_npy::<i32>(&idx_path)?.data;
        if puzzle_indices.len() != puzzle_identifiers.len() + 1 {
            return Err(EvalError::invalid(
                &idx_path,
                format!(
                    "has {} entries, expected one more than the {} puzzles of \
                     all__puzzle_identifiers.npy",
                    puzzle_indices.len(),
                    puzzle_identifiers.len()
                ),
            ));
        }
        if puzzle_indices.windows(2).any(|w| w[0] > w[1] || w[0] < 0) {
            return Err(EvalError::invalid(
                &idx_path,
                "offsets are negative or decreasing",
            ));
        }
        Ok(SplitIndex {
            puzzle_identifiers,
            puzzle_indices,
        })
    }

    fn rows_of(&self, puzzle: usize) -> std::ops::Range<usize> {
        self.puzzle_indices[puzzle] as usize..self.puzzle_indices[puzzle + 1] as usize
    }
}

fn name_of<'a>(identifiers: &'a [String], id: i32, path: &Path) -> Result<&'a str, EvalError> {
    usize::try_from(id)
        .ok()
        .and_then(|i| identifiers.get(i))
        .map(String::as_str)
        .ok_or_else(|| {
            EvalError::invalid(
                path,
                format!(
                    "puzzle id {id} is outside identifiers.json ({} names)",
                    identifiers.len()
                ),
            )
        })
}

/// Reads the ARC ground truth: every un-augmented puzzle of the test split with its test pairs.
///
/// Tasks come in split order. Test grids are never translated, so inputs and labels are
/// cropped at (0, 0) (spec 8.2 steps 2 and 3).
pub fn read_arc_truth(
    dataset_dir: &Path,
    identifiers: &[String],
) -> Result<Vec<ArcTaskTruth>, EvalError> {
    let index = SplitIndex::read(dataset_dir, "test")?;
    let dir = dataset_dir.join("test");
    let ids_path = dir.join("all__puzzle_identifiers.npy");
    let mut inputs = NpyRows::open(&dir.join("all__inputs.npy"))?;
    let mut labels = NpyRows::open(&dir.join("all__labels.npy"))?;
    let mut side = 0;
    for rows in [&inputs, &labels] {
        side = canvas_side(rows.cols).ok_or_else(|| {
            EvalError::invalid(
                &rows.path,
                format!(
                    "has S = {}, expected a square canvas (900 = 30x30) for ARC",
                    rows.cols
                ),
            )
        })?;
    }
    let mut tasks = Vec::new();
    for (p, &id) in index.puzzle_identifiers.iter().enumerate() {
        let name = name_of(identifiers, id, &ids_path)?;
        if id == 0 || parse_variant(name).1.is_some() {
            continue;
        }
        let mut tests = Vec::new();
        for r in index.rows_of(p) {
            let input = crop_arc_canvas(&inputs.row(r)?, side).ok_or_else(|| {
                EvalError::invalid(
                    &inputs.path,
                    format!("row {r} (task {name}): the input does not crop to a grid"),
                )
            })?;
            let output = crop_arc_canvas(&labels.row(r)?, side).ok_or_else(|| {
                EvalError::invalid(
                    &labels.path,
                    format!("row {r} (task {name}): the label does not crop to a grid"),
                )
            })?;
            tests.push(ArcTestPair { input, output });
        }
        tasks.push(ArcTaskTruth {
            name: name.to_string(),
            puzzle_id: id,
            tests,
        });
    }
    Ok(tasks)
}

/// Crops an ARC grid wherever it was translated to: the first non-PAD token is its top-left corner.
fn crop_translated(tokens: &[u8]) -> Option<Grid> {
    let side = canvas_side(tokens.len())?;
    let first = tokens.iter().position(|&t| t != PAD)?;
    crop_arc_canvas_at(tokens, side, first / side, first % side)
}

/// Reads the demonstration pairs of the named un-augmented tasks from the train split.
///
/// The demonstrations of an evaluation task live in the train split under the same puzzle id
/// (spec 1.3). Train examples may be translated; each grid is cropped at its first non-PAD
/// cell. Returns task name -> pairs; tasks absent from the train split map to an empty list.
pub fn read_arc_demonstrations(
    dataset_dir: &Path,
    task_ids: &[(String, i32)],
) -> Result<HashMap<String, Vec<ArcTestPair>>, EvalError> {
    let mut out: HashMap<String, Vec<ArcTestPair>> = task_ids
        .iter()
        .map(|(name, _)| (name.clone(), Vec::new()))
        .collect();
    if task_ids.is_empty() {
        return Ok(out);
    }
    let index = SplitIndex::read(dataset_dir, "train")?;
    let dir = dataset_dir.join("train");
    let mut inputs = NpyRows::open(&dir.join("all__inputs.npy"))?;
    let mut labels = NpyRows::open(&dir.join("all__labels.npy"))?;
    let wanted: HashMap<i32, &str> = task_ids.iter().map(|(n, id)| (*id, n.as_str())).collect();
    for (p, id) in index.puzzle_identifiers.iter().enumerate() {
        let Some(&name) = wanted.get(id) else {
            continue;
        };
        let mut pairs = Vec::new();
        for r in index.rows_of(p) {
            let input = crop_translated(&inputs.row(r)?);
            let output = crop_translated(&labels.row(r)?);
            if let (Some(input), Some(output)) = (input, output) {
                pairs.push(ArcTestPair { input, output });
            }
        }
        out.insert(name.to_string(), pairs);
    }
    Ok(out)
}
