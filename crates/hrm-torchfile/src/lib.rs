//! hrm-torchfile: the state-dict files of `torch.save` (PyTorch's zip format, torch 1.6 and later) read and
//! written without Python or libtorch. Tensor-free: a tensor is raw little-endian bytes, a [`DType`] and a shape.
//! Follows `torch/serialization.py` (`_save`, `_load`) and `torch/_weights_only_unpickler.py` of torch 2.11.
//!
//! The archive holds one folder (`<name>/`) with `data.pkl` (a pickle of the state dict), the raw storages
//! `data/<key>`, `byteorder`, `version`, `.format_version`, `.storage_alignment` and `.data/serialization_id`.
//! [`TorchFile`] opens such an archive: `data.pkl` is read by a restricted unpickler ([`pickle`]) that knows
//! only the opcodes and globals of a state dict (`collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`,
//! `torch._utils._rebuild_parameter`, the `torch.*Storage` classes) and refuses anything else, naming it; it
//! builds values, it never calls anything, so a checkpoint cannot run code. [`write_state_dict`] writes the
//! format back (pickle protocol 2, as `torch.save` does), for `torch.load(weights_only=True)`.

mod archive;
pub mod pickle;
mod writer;

pub use archive::{TensorInfo, TorchFile};
pub use writer::{write_state_dict, TensorOut};

use std::path::PathBuf;

/// The element types a tensor of a state dict may have here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// `torch.float32` (`torch.FloatStorage`).
    F32,
    /// `torch.bfloat16` (`torch.BFloat16Storage`).
    BF16,
    /// `torch.float16` (`torch.HalfStorage`).
    F16,
    /// `torch.float64` (`torch.DoubleStorage`).
    F64,
    /// `torch.int64` (`torch.LongStorage`).
    I64,
    /// `torch.int32` (`torch.IntStorage`).
    I32,
}

impl DType {
    /// Every supported dtype.
    pub const ALL: [DType; 6] = [
        DType::F32,
        DType::BF16,
        DType::F16,
        DType::F64,
        DType::I64,
        DType::I32,
    ];

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::BF16 | DType::F16 => 2,
            DType::F32 | DType::I32 => 4,
            DType::F64 | DType::I64 => 8,
        }
    }

    /// The legacy storage class name `torch.save` writes in a persistent id (`FloatStorage`, ...).
    pub fn storage_class(self) -> &'static str {
        match self {
            DType::F32 => "FloatStorage",
            DType::BF16 => "BFloat16Storage",
            DType::F16 => "HalfStorage",
            DType::F64 => "DoubleStorage",
            DType::I64 => "LongStorage",
            DType::I32 => "IntStorage",
        }
    }

    /// The dtype of a storage class name, `None` for a class that is not supported here.
    pub fn from_storage_class(name: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.storage_class() == name)
    }

    /// The torch name (`float32`, `bfloat16`, ...).
    pub fn torch_name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::BF16 => "bfloat16",
            DType::F16 => "float16",
            DType::F64 => "float64",
            DType::I64 => "int64",
            DType::I32 => "int32",
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.torch_name())
    }
}

/// Errors from reading or writing a torch file; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum TorchFileError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The zip container is malformed, truncated or not the layout `torch.save` writes.
    #[error("{path}: not a torch.save zip archive: {reason}")]
    Archive {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// `data.pkl` uses an opcode or a global outside what a state dict needs, or is malformed.
    #[error("{path}: data.pkl refused: {reason}")]
    Pickle {
        /// The file.
        path: PathBuf,
        /// What is wrong (names the opcode, global or value, and the byte offset).
        reason: String,
    },
    /// One tensor is malformed or unsupported.
    #[error("{path}: tensor `{key}`: {reason}")]
    Tensor {
        /// The file.
        path: PathBuf,
        /// The state-dict key.
        key: String,
        /// What is wrong.
        reason: String,
    },
}
