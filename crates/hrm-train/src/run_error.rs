//! The typed error of a training run, a checkpoint and inference: every failure names the file or field involved.

use std::path::PathBuf;

/// Everything that can go wrong while setting up, running, checkpointing, resuming or predicting.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A stop was requested (SIGINT or SIGTERM) while `hrm predict` was running; nothing was written.
    #[error("interrupted: {0}")]
    Interrupted(String),
    /// The optimizer step or an optimizer state file failed.
    #[error(transparent)]
    Train(#[from] crate::TrainError),
    /// The model reported an error (config, forward, checkpoint tensors).
    #[error("model: {0}")]
    Model(#[from] hrm_model::ModelError),
    /// A collective of a data-parallel run failed, or the ranks could not meet.
    #[error("data-parallel: {0}")]
    Dist(#[from] hrm_dist::DistError),
    /// The dataset could not be read.
    #[error("dataset: {0}")]
    Data(#[from] hrm_data::DataError),
    /// The predictions folder could not be written.
    #[error("predictions: {0}")]
    Eval(#[from] hrm_eval::EvalError),
    /// The recipe could not be read.
    #[error("{0}")]
    Recipe(#[from] hrm_recipe::RecipeError),
    /// A PyTorch checkpoint file could not be read or written.
    #[error("{0}")]
    TorchFile(#[from] hrm_torchfile::TorchFileError),
    /// Reading or writing a file or folder failed.
    #[error("file {}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file of the run folder is malformed.
    #[error("file {}: {message}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A checkpoint's state file has another format version, is truncated or malformed.
    #[error("checkpoint state file {}: {message}", path.display())]
    StateFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The recipe, the dataset and a checkpoint disagree.
    #[error("{what} mismatch: {left_name} says {left}, {right_name} says {right}")]
    Mismatch {
        /// The quantity that differs (e.g. `vocab_size`).
        what: String,
        /// Where the first value comes from (a file or the recipe).
        left_name: String,
        /// The first value.
        left: String,
        /// Where the second value comes from.
        right_name: String,
        /// The second value.
        right: String,
    },
    /// A recipe or option value cannot be used.
    #[error("setting `{field}`: {message}")]
    Config {
        /// The recipe field or command-line option.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A loss became NaN or infinite; the run stopped and the last good checkpoint is kept.
    #[error(
        "non-finite {metric} = {value} at step {step}; training stopped. The last good checkpoint is {}",
        last_checkpoint.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "none (no checkpoint was written yet)".into())
    )]
    NonFinite {
        /// The step whose loss was not finite.
        step: u64,
        /// The metric name.
        metric: String,
        /// Its value.
        value: f64,
        /// The last checkpoint written before it, if any.
        last_checkpoint: Option<PathBuf>,
    },
    /// A libtorch operation failed outside the model and the optimizers.
    #[error("tensor operation failed in {context}: {source}")]
    Tch {
        /// The operation.
        context: String,
        /// The error reported by libtorch.
        #[source]
        source: tch::TchError,
    },
}

impl RunError {
    /// Wraps an I/O error with its path.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> RunError {
        let path = path.into();
        move |source| RunError::Io { path, source }
    }

    /// Builds a [`RunError::Json`].
    pub fn json(path: impl Into<PathBuf>, message: impl ToString) -> RunError {
        RunError::Json {
            path: path.into(),
            message: message.to_string(),
        }
    }

    /// Builds a [`RunError::StateFile`].
    pub fn state_file(path: impl Into<PathBuf>, message: impl ToString) -> RunError {
        RunError::StateFile {
            path: path.into(),
            message: message.to_string(),
        }
    }

    /// Builds a [`RunError::Mismatch`].
    pub fn mismatch(
        what: &str,
        left_name: impl ToString,
        left: impl ToString,
        right_name: impl ToString,
        right: impl ToString,
    ) -> RunError {
        RunError::Mismatch {
            what: what.to_string(),
            left_name: left_name.to_string(),
            left: left.to_string(),
            right_name: right_name.to_string(),
            right: right.to_string(),
        }
    }

    /// Builds a [`RunError::Config`].
    pub fn config(field: &str, message: impl Into<String>) -> RunError {
        RunError::Config {
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// Wraps a libtorch error with a description of the failing operation.
    pub fn tch(context: impl Into<String>) -> impl FnOnce(tch::TchError) -> RunError {
        let context = context.into();
        move |source| RunError::Tch { context, source }
    }
}
