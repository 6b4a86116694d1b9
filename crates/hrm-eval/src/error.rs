//! The error type of hrm-eval: every variant names the file and, where it applies, the row, task or field.

use std::path::PathBuf;

use hrm_data::DataError;

/// Errors raised while reading predictions or datasets, scoring, or writing reports.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// An error from the `.npy` reader or writer of hrm-data (its message names the file).
    #[error(transparent)]
    Data(#[from] DataError),
    /// An operating-system error while reading or writing `path`.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON or JSON-lines file that does not parse or lacks a field.
    #[error("{path}: invalid JSON: {msg}")]
    Json {
        /// The JSON file.
        path: PathBuf,
        /// What is wrong (the parser's message, with the line where known).
        msg: String,
    },
    /// A file whose content disagrees with another file or with the contract.
    #[error("{path}: {msg}")]
    Invalid {
        /// The offending file.
        path: PathBuf,
        /// What is wrong, naming the field, row or task.
        msg: String,
    },
    /// An ARC Prize submission that breaks the competition format (see
    /// [`crate::submission::Submission::validate`]); the message names the task, test input and attempt.
    #[error("invalid submission: {msg}")]
    Submission {
        /// What is wrong.
        msg: String,
    },
    /// The task (ARC, Sudoku or Maze) could not be determined or is inconsistent.
    #[error("cannot choose the metric: {msg}")]
    Task {
        /// What is wrong.
        msg: String,
    },
}

impl EvalError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EvalError::Io {
            path: path.into(),
            source,
        }
    }

    /// Builds an [`EvalError::Invalid`] error.
    pub fn invalid(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        EvalError::Invalid {
            path: path.into(),
            msg: msg.into(),
        }
    }

    /// Builds an [`EvalError::Json`] error.
    pub fn json(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        EvalError::Json {
            path: path.into(),
            msg: msg.into(),
        }
    }
}
