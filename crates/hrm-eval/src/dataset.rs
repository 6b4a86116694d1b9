//! The ARC parts of an HRM dataset folder (spec 1.1) the evaluator needs: the ground truth from the
//! test split and the demonstrations from the train split. Metadata, identifiers and the puzzle index
//! are read (and checked) by `hrm-data` ([`hrm_data::layout`]).
//!
//! Only the rows that are needed are read from the token arrays (a seek per row), so the
//! multi-gigabyte ARC train split is never loaded whole.

use std::collections::HashMap;
use std::path::Path;

use hrm_augment::variant::ArcVariant;
use hrm_data::layout::{array_path, load_puzzle_index};
use hrm_data::npy::NpyRowReader;
use hrm_data::DATASET_IGNORE_LABEL;
use hrm_grid::codec::{canvas_side, crop_arc_canvas, crop_arc_canvas_at, PAD};
use hrm_grid::Grid;

use crate::error::EvalError;

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
    /// The expected output grid; `None` when it is unknown (a "prediction-only" row whose label
    /// row is all 0, i.e. not supervised: a competition challenge without a solution).
    pub output: Option<Grid>,
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

fn name_of<'a>(identifiers: &'a [String], id: i32, path: &Path) -> Result<&'a str, EvalError> {
    identifier_name(identifiers, id).ok_or_else(|| {
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
/// cropped at (0, 0) (spec 8.2 steps 2 and 3). A label row that is entirely 0 (not supervised)
/// marks a test output that is unknown: its pair gets `output: None`. Any other label that does
/// not crop to a grid is an error naming the file, row and task.
pub fn read_arc_truth(
    dataset_dir: &Path,
    identifiers: &[String],
) -> Result<Vec<ArcTaskTruth>, EvalError> {
    let index = load_puzzle_index(dataset_dir, "test")?;
    let dir = dataset_dir.join("test");
    let ids_path = array_path(&dir, "puzzle_identifiers");
    let (mut inputs, mut labels) = open_tokens(&dir)?;
    let side = canvas_side(inputs.cols()).ok_or_else(|| {
        EvalError::invalid(
            inputs.path(),
            format!(
                "has S = {}, expected a square canvas (900 = 30x30) for ARC",
                inputs.cols()
            ),
        )
    })?;
    let mut tasks = Vec::new();
    for (p, &id) in index.puzzle_identifiers.iter().enumerate() {
        let name = name_of(identifiers, id, &ids_path)?;
        if id == 0 || parse_variant(name).1.is_some() {
            continue;
        }
        let mut tests = Vec::new();
        for r in index.puzzle_examples(p) {
            let input = crop_arc_canvas(&inputs.row(r)?, side).ok_or_else(|| {
                EvalError::invalid(
                    inputs.path(),
                    format!("row {r} (task {name}): the input does not crop to a grid"),
                )
            })?;
            let label = labels.row(r)?;
            let output = if label.iter().all(|&t| t == DATASET_IGNORE_LABEL) {
                None
            } else {
                Some(crop_arc_canvas(&label, side).ok_or_else(|| {
                    EvalError::invalid(
                        labels.path(),
                        format!(
                            "row {r} (task {name}): the label does not crop to a grid \
                             (and is not all 0, which would mark an unknown output)"
                        ),
                    )
                })?)
            };
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

/// Opens the input and label arrays of a split folder for row-wise reading; both must be `[N, S]` alike.
fn open_tokens(split_dir: &Path) -> Result<(NpyRowReader<u8>, NpyRowReader<u8>), EvalError> {
    let inputs = NpyRowReader::<u8>::open(&array_path(split_dir, "inputs"))?;
    let labels = NpyRowReader::<u8>::open(&array_path(split_dir, "labels"))?;
    if (labels.rows(), labels.cols()) != (inputs.rows(), inputs.cols()) {
        return Err(EvalError::invalid(
            labels.path(),
            format!(
                "has shape [{}, {}], expected [{}, {}] like all__inputs.npy",
                labels.rows(),
                labels.cols(),
                inputs.rows(),
                inputs.cols()
            ),
        ));
    }
    Ok((inputs, labels))
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
    let index = load_puzzle_index(dataset_dir, "train")?;
    let (mut inputs, mut labels) = open_tokens(&dataset_dir.join("train"))?;
    let wanted: HashMap<i32, &str> = task_ids.iter().map(|(n, id)| (*id, n.as_str())).collect();
    for (p, id) in index.puzzle_identifiers.iter().enumerate() {
        let Some(&name) = wanted.get(id) else {
            continue;
        };
        let mut pairs = Vec::new();
        for r in index.puzzle_examples(p) {
            let input = crop_translated(&inputs.row(r)?);
            let output = crop_translated(&labels.row(r)?);
            if let (Some(input), Some(output)) = (input, output) {
                pairs.push(ArcTestPair {
                    input,
                    output: Some(output),
                });
            }
        }
        out.insert(name.to_string(), pairs);
    }
    Ok(out)
}

/// The name of puzzle id `id` in `identifiers`, when it is in range.
pub(crate) fn identifier_name(identifiers: &[String], id: i32) -> Option<&str> {
    usize::try_from(id)
        .ok()
        .and_then(|i| identifiers.get(i))
        .map(String::as_str)
}
