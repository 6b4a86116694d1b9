//! The typed error of hrm-train: every failure names the file, parameter or batch field involved.

use std::path::PathBuf;

/// Everything that can go wrong while stepping optimizers, saving their state or running a train step.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A libtorch operation failed; `context` says which operation and on what.
    #[error("tensor operation failed in {context}: {source}")]
    Tch {
        /// The operation and the tensor it ran on.
        context: String,
        /// The error reported by libtorch.
        #[source]
        source: tch::TchError,
    },
    /// A parameter, gradient or optimizer state does not fit (shape, dtype, device, range).
    #[error("parameter `{name}`: {message}")]
    Param {
        /// The parameter's name (reference state-dict name), or the optimizer input.
        name: String,
        /// What is wrong with it.
        message: String,
    },
    /// An optimizer state file is malformed.
    #[error("optimizer state file {}: tensor `{field}`: {message}", path.display())]
    StateFile {
        /// The file being read or written.
        path: PathBuf,
        /// The tensor name in the file.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// A weights file (e.g. a checkpoint's EMA shadow) is malformed or does not fit the model.
    #[error("weights file {}: tensor `{field}`: {message}", path.display())]
    WeightsFile {
        /// The file being read.
        path: PathBuf,
        /// The tensor name in the file (empty when the file itself cannot be read).
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A batch handed to the train step is inconsistent.
    #[error("batch field `{field}`: {message}")]
    Batch {
        /// The field of the batch (`inputs`, `labels`, `puzzle_identifiers`, `batch_size`, ...).
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The train-step configuration is inconsistent (e.g. a batch that does not split into micro-batches).
    #[error("train configuration `{field}`: {message}")]
    Config {
        /// The configuration field.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The model crate reported an error.
    #[error("model: {0}")]
    Model(#[from] hrm_model::ModelError),
    /// A collective of a data-parallel run failed (a rank died or timed out, ranks out of step).
    #[error("data-parallel: {0}")]
    Dist(#[from] hrm_dist::DistError),
}

impl TrainError {
    /// Wraps a libtorch error with a description of the failing operation.
    pub fn tch(context: impl Into<String>) -> impl FnOnce(tch::TchError) -> TrainError {
        let context = context.into();
        move |source| TrainError::Tch { context, source }
    }

    /// Builds a [`TrainError::Param`].
    pub fn param(name: impl Into<String>, message: impl Into<String>) -> TrainError {
        TrainError::Param {
            name: name.into(),
            message: message.into(),
        }
    }
}
