//! Typed errors of the model crate: configuration, batches, checkpoints and libtorch failures.

use std::path::PathBuf;

/// Every failure the model crate reports instead of panicking.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A configuration field holds a value the model cannot be built with.
    #[error("invalid model config: field `{field}`: {reason}")]
    Config {
        /// The config field, spelled as in `tiny_config.json`.
        field: &'static str,
        /// Why the value is rejected.
        reason: String,
    },
    /// A config file could not be read or parsed.
    #[error("model config {path}: {reason}")]
    ConfigFile {
        /// The config file.
        path: PathBuf,
        /// The I/O or JSON error.
        reason: String,
    },
    /// A batch tensor or vector has the wrong length, shape or values.
    #[error("batch field `{field}`: {reason}")]
    Batch {
        /// `inputs`, `labels` or `puzzle_identifiers`.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A carry does not fit the batch it is used with.
    #[error("carry field `{field}`: {reason}")]
    Carry {
        /// The carry field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A checkpoint lacks a tensor the model needs.
    #[error("checkpoint {path}: missing tensor `{name}`")]
    MissingTensor {
        /// The checkpoint file.
        path: PathBuf,
        /// The reference state-dict name.
        name: String,
    },
    /// A checkpoint tensor holds a NaN or an infinity (a corrupt or diverged checkpoint).
    #[error("checkpoint {path}: tensor `{name}` holds {count} non-finite values (NaN or infinity); the checkpoint is refused")]
    NonFiniteTensor {
        /// The checkpoint file.
        path: PathBuf,
        /// The reference state-dict name.
        name: String,
        /// How many of its values are not finite.
        count: i64,
    },
    /// A checkpoint tensor has a different shape than the model's.
    #[error("checkpoint {path}: tensor `{name}` has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        /// The checkpoint file.
        path: PathBuf,
        /// The reference state-dict name.
        name: String,
        /// The shape the model needs.
        expected: Vec<i64>,
        /// The shape stored in the file.
        found: Vec<i64>,
    },
    /// A checkpoint holds a tensor the model does not know.
    #[error("checkpoint {path}: unexpected tensor `{name}`")]
    UnexpectedTensor {
        /// The checkpoint file.
        path: PathBuf,
        /// The unknown name.
        name: String,
    },
    /// A checkpoint could not be read or written.
    #[error("checkpoint {path}: {reason}")]
    CheckpointIo {
        /// The checkpoint file.
        path: PathBuf,
        /// The underlying error.
        reason: String,
    },
    /// libtorch reported an error.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}
