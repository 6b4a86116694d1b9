//! ARC task JSON loading with errors that name the file, task, section, pair and field.
//! Follows the reference's `dataset/build_arc_dataset.py`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::{Grid, GridError, MAX_DIM};

/// One demonstration or test pair. A test pair's output may be absent (hidden).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ArcPair {
    /// The input grid.
    pub input: Grid,
    /// The output grid; `None` only for a test pair whose output is not given.
    pub output: Option<Grid>,
}

/// An ARC task: its id, its demonstration ("train") pairs and its test pairs.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ArcTask {
    /// The task id: the file stem, or the JSON "name" key when present.
    pub id: String,
    /// The demonstration pairs (JSON section "train").
    pub train: Vec<ArcPair>,
    /// The test pairs (JSON section "test").
    pub test: Vec<ArcPair>,
}

/// A section of an ARC task file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Section {
    /// The demonstration pairs, JSON key "train".
    Train,
    /// The test pairs, JSON key "test".
    Test,
}

/// `Display` as the JSON key (`key()`), for the small key enums of this module.
macro_rules! display_as_key {
    ($t:ty) => {
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.key())
            }
        }
    };
}

impl Section {
    /// The JSON key.
    pub fn key(self) -> &'static str {
        match self {
            Section::Train => "train",
            Section::Test => "test",
        }
    }
}

display_as_key!(Section);

/// A grid field of an ARC pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// JSON key "input".
    Input,
    /// JSON key "output".
    Output,
}

impl Field {
    /// The JSON key.
    pub fn key(self) -> &'static str {
        match self {
            Field::Input => "input",
            Field::Output => "output",
        }
    }
}

display_as_key!(Field);

/// Why an ARC task file could not be loaded. Every message names the file and task id,
/// and where it applies the section ("train"/"test"), the 0-based pair index and the
/// field ("input"/"output").
#[derive(Debug, Error)]
pub enum ArcError {
    /// The file could not be read.
    #[error("{path}: cannot read ARC task file: {source}", path = path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid JSON.
    #[error("{path} (task {task}): invalid JSON: {source}", path = path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The task id.
        task: String,
        /// The parser error (with line and column).
        source: serde_json::Error,
    },
    /// The top level is not an object, a section is missing or a section or key has the wrong type.
    #[error("{path} (task {task}): {what}", path = path.display())]
    Structure {
        /// The file.
        path: PathBuf,
        /// The task id.
        task: String,
        /// What is wrong, e.g. `missing section "train"`.
        what: String,
    },
    /// A pair is not a JSON object.
    #[error("{path} (task {task}): {section} pair {pair}: not a JSON object", path = path.display())]
    PairNotObject {
        /// The file.
        path: PathBuf,
        /// The task id.
        task: String,
        /// The section.
        section: Section,
        /// The 0-based pair index.
        pair: usize,
    },
    /// A required field of a pair is missing.
    #[error("{path} (task {task}): {section} pair {pair}: missing field \"{field}\"", path = path.display())]
    MissingField {
        /// The file.
        path: PathBuf,
        /// The task id.
        task: String,
        /// The section.
        section: Section,
        /// The 0-based pair index.
        pair: usize,
        /// The field.
        field: Field,
    },
    /// A field is not a list of lists of integers.
    #[error("{path} (task {task}): {section} pair {pair}, field \"{field}\": {what}", path = path.display())]
    NotAGrid {
        /// The file.
        path: PathBuf,
        /// The task id.
        task: String,
        /// The section.
        section: Section,
        /// The 0-based pair index.
        pair: usize,
        /// The field.
        field: Field,
        /// What is wrong.
        what: String,
    },
    /// A field is a list of lists but not a valid grid (ragged, empty, too big, bad colour).
    #[error("{path} (task {task}): {section} pair {pair}, field \"{field}\": {source}", path = path.display())]
    Grid {
        /// The file.
        path: PathBuf,
        /// The task id.
        task: String,
        /// The section.
        section: Section,
        /// The 0-based pair index.
        pair: usize,
        /// The field.
        field: Field,
        /// The grid error.
        source: GridError,
    },
}

/// Loads an ARC task file. The id is the file stem unless the JSON has a string "name" key.
pub fn load_task(path: &Path) -> Result<ArcTask, ArcError> {
    let json = std::fs::read_to_string(path).map_err(|source| ArcError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    parse_task(&stem, &json, path)
}

/// Parses ARC task JSON. `id` is the default task id (a JSON "name" key overrides it);
/// `path` is only used in error messages.
pub fn parse_task(id: &str, json: &str, path: &Path) -> Result<ArcTask, ArcError> {
    // A UTF-8 byte order mark (as some Windows editors save) is not part of the JSON: accept the file.
    let json = json.strip_prefix('\u{feff}').unwrap_or(json);
    let value: Value = serde_json::from_str(json).map_err(|source| ArcError::Json {
        path: path.to_path_buf(),
        task: id.to_string(),
        source,
    })?;
    let structure = |task: &str, what: String| ArcError::Structure {
        path: path.to_path_buf(),
        task: task.to_string(),
        what,
    };
    let obj = value
        .as_object()
        .ok_or_else(|| structure(id, "top level is not a JSON object".to_string()))?;
    let id = match obj.get("name") {
        None => id.to_string(),
        Some(Value::String(name)) => name.clone(),
        Some(other) => {
            return Err(structure(
                id,
                format!("key \"name\" is not a string: {}", short(other)),
            ))
        }
    };
    let mut sections = [Vec::new(), Vec::new()];
    for (slot, section) in sections.iter_mut().zip([Section::Train, Section::Test]) {
        let list = obj
            .get(section.key())
            .ok_or_else(|| structure(&id, format!("missing section \"{section}\"")))?
            .as_array()
            .ok_or_else(|| structure(&id, format!("section \"{section}\" is not a list")))?;
        for (pair, item) in list.iter().enumerate() {
            slot.push(parse_pair(path, &id, section, pair, item)?);
        }
    }
    let [train, test] = sections;
    Ok(ArcTask { id, train, test })
}

/// Parses one pair object of section `section`.
fn parse_pair(
    path: &Path,
    task: &str,
    section: Section,
    pair: usize,
    item: &Value,
) -> Result<ArcPair, ArcError> {
    let obj = item.as_object().ok_or_else(|| ArcError::PairNotObject {
        path: path.to_path_buf(),
        task: task.to_string(),
        section,
        pair,
    })?;
    let field_grid = |field: Field| -> Result<Option<Grid>, ArcError> {
        match obj.get(field.key()) {
            None => Ok(None),
            // A test output may be null (a challenge without its solution); anything else must be a grid.
            Some(Value::Null) if field == Field::Output && section == Section::Test => Ok(None),
            Some(Value::Null) => Err(ArcError::NotAGrid {
                path: path.to_path_buf(),
                task: task.to_string(),
                section,
                pair,
                field,
                what: "null; it must be a grid: a list of rows, each a list of colours 0-9, e.g. [[0, 1], [2, 3]]"
                    .to_string(),
            }),
            Some(v) => parse_grid(v)
                .map(Some)
                .map_err(|e| e.into_arc(path, task, section, pair, field)),
        }
    };
    let missing = |field: Field| ArcError::MissingField {
        path: path.to_path_buf(),
        task: task.to_string(),
        section,
        pair,
        field,
    };
    let input = field_grid(Field::Input)?.ok_or_else(|| missing(Field::Input))?;
    let output = field_grid(Field::Output)?;
    if output.is_none() && section == Section::Train {
        return Err(missing(Field::Output));
    }
    Ok(ArcPair { input, output })
}

/// Why a JSON value is not a grid, before the location is attached.
enum GridParseError {
    Shape(String),
    Grid(GridError),
}

impl GridParseError {
    fn into_arc(
        self,
        path: &Path,
        task: &str,
        section: Section,
        pair: usize,
        field: Field,
    ) -> ArcError {
        let (path, task) = (path.to_path_buf(), task.to_string());
        match self {
            GridParseError::Shape(what) => ArcError::NotAGrid {
                path,
                task,
                section,
                pair,
                field,
                what,
            },
            GridParseError::Grid(source) => ArcError::Grid {
                path,
                task,
                section,
                pair,
                field,
                source,
            },
        }
    }
}

/// Converts a JSON value (a list of rows of integers) into a grid.
fn parse_grid(value: &Value) -> Result<Grid, GridParseError> {
    let rows = value
        .as_array()
        .ok_or_else(|| GridParseError::Shape(format!("not a list of rows: {}", short(value))))?;
    if rows.len() > MAX_DIM {
        // Checked early so that a huge grid fails with its shape, not after converting it.
        let cols = rows.first().and_then(Value::as_array).map_or(0, Vec::len);
        return Err(GridParseError::Grid(GridError::BadShape {
            rows: rows.len(),
            cols,
        }));
    }
    let mut out = Vec::with_capacity(rows.len());
    for (r, row) in rows.iter().enumerate() {
        let cells = row.as_array().ok_or_else(|| {
            GridParseError::Shape(format!("row {r} is not a list: {}", short(row)))
        })?;
        let mut out_row = Vec::with_capacity(cells.len());
        for (c, cell) in cells.iter().enumerate() {
            let colour = cell
                .as_u64()
                .and_then(|v| u8::try_from(v).ok())
                .filter(|&v| v <= crate::MAX_COLOUR)
                .ok_or_else(|| {
                    GridParseError::Grid(GridError::BadColour {
                        row: r,
                        col: c,
                        value: short(cell),
                    })
                })?;
            out_row.push(colour);
        }
        out.push(out_row);
    }
    Grid::from_rows(&out).map_err(GridParseError::Grid)
}

/// A short rendering of a JSON value for error messages.
fn short(value: &Value) -> String {
    let mut s = value.to_string();
    if s.len() > 40 {
        let cut = (0..=40).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
        s.truncate(cut);
        s.push_str("...");
    }
    s
}
