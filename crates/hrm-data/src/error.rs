//! The error type of hrm-data: every variant names the file and, where it applies, the line, task or field.

use std::path::PathBuf;

/// Errors raised while reading, validating, building or writing HRM datasets.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// An operating-system error while reading or writing `path`.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A `.npy` file that is malformed or holds a different dtype or order than requested.
    #[error("{path}: invalid .npy file: {msg}")]
    Npy {
        /// The `.npy` file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// A JSON file that does not parse or does not have the expected structure.
    #[error("{path}: invalid JSON: {msg}")]
    Json {
        /// The JSON file.
        path: PathBuf,
        /// The parser's message.
        msg: String,
    },
    /// A dataset file whose content disagrees with the metadata or with another array.
    #[error("{path}: field `{field}`: {msg}")]
    Invalid {
        /// The file holding the offending value.
        path: PathBuf,
        /// The field or array that is wrong.
        field: String,
        /// What is wrong.
        msg: String,
    },
    /// A bad line in a line-oriented text file (Sudoku puzzle lists, CSV).
    #[error("{path}:{line}: {msg}")]
    Line {
        /// The text file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What is wrong.
        msg: String,
    },
    /// An ARC task that parses but cannot be used (e.g. a test pair without output).
    #[error("{path}: {msg}")]
    Task {
        /// The task file.
        path: PathBuf,
        /// What is wrong, naming the task id, section, pair index and field.
        msg: String,
    },
    /// An ARC task file that the grid parser rejects (its message names file, task, section, pair, field).
    #[error(transparent)]
    Arc(#[from] hrm_grid::arc::ArcError),
    /// An existing folder that is not ours to replace (it holds files another kind of folder does not).
    #[error("{path}: {msg}")]
    Refused {
        /// The folder.
        path: PathBuf,
        /// What it holds and why it is kept.
        msg: String,
    },
    /// An invalid builder or sampler option.
    #[error("invalid option `{option}`: {msg}")]
    Config {
        /// The option name.
        option: String,
        /// What is wrong.
        msg: String,
    },
}

impl DataError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }

    /// Builds an [`DataError::Invalid`] error.
    pub fn invalid(path: impl Into<PathBuf>, field: &str, msg: impl Into<String>) -> Self {
        DataError::Invalid {
            path: path.into(),
            field: field.to_string(),
            msg: msg.into(),
        }
    }

    /// Builds an [`DataError::Config`] error.
    pub fn config(option: &str, msg: impl Into<String>) -> Self {
        DataError::Config {
            option: option.to_string(),
            msg: msg.into(),
        }
    }
}
