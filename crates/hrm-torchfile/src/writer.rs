//! Writing a state dict in the zip format of `torch.save` (torch 2.11): the entries, their order and their
//! 64-byte data alignment as torch writes them, so that `torch.load(weights_only=True)` reads the file.
//! Follows torch 2.11's `torch/serialization.py` (`_save`) and `caffe2/serialize/inline_container.cc`.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;

use crate::pickle::{self, RecordOut};
use crate::{DType, TorchFileError};

/// One tensor to write: key, dtype, shape and its row-major little-endian bytes.
#[derive(Debug, Clone)]
pub struct TensorOut {
    /// The state-dict key (written as given).
    pub name: String,
    /// The element type.
    pub dtype: DType,
    /// The shape.
    pub shape: Vec<u64>,
    /// `numel * dtype.size()` bytes.
    pub data: Vec<u8>,
}

/// Writes `tensors` as a `torch.save` file at `path` (atomically: a temporary file beside it, then a rename).
/// The archive's folder is named after the file, as torch names it. The `.data/serialization_id` torch writes
/// is derived from the content (SHA-256), so the same tensors give the same bytes.
pub fn write_state_dict(path: &Path, tensors: &[TensorOut]) -> Result<(), TorchFileError> {
    let io = |source: std::io::Error| TorchFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    for t in tensors {
        let want = t.shape.iter().product::<u64>() as usize * t.dtype.size();
        if t.data.len() != want {
            return Err(TorchFileError::Tensor {
                path: path.to_path_buf(),
                key: t.name.clone(),
                reason: format!(
                    "{} bytes for shape {:?} of {}, expected {want}",
                    t.data.len(),
                    t.shape,
                    t.dtype
                ),
            });
        }
    }
    let folder = path
        .file_name()
        .map(|n| n.to_string_lossy().replace(['.', '/'], "_"))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "archive".into());
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(path.file_name().unwrap_or_default());
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp: PathBuf = path.with_file_name(tmp_name);
    let result = write_zip(&tmp, &folder, tensors);
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(match e {
            ZipOrIo::Io(e) => io(e),
            ZipOrIo::Zip(e) => TorchFileError::Archive {
                path: path.to_path_buf(),
                reason: e.to_string(),
            },
        });
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })
}

enum ZipOrIo {
    Io(std::io::Error),
    Zip(zip::result::ZipError),
}

impl From<std::io::Error> for ZipOrIo {
    fn from(e: std::io::Error) -> Self {
        ZipOrIo::Io(e)
    }
}

impl From<zip::result::ZipError> for ZipOrIo {
    fn from(e: zip::result::ZipError) -> Self {
        ZipOrIo::Zip(e)
    }
}

type Zip = zip::ZipWriter<std::io::BufWriter<std::fs::File>>;

/// One stored entry `<folder>/<name>`, its data 64-byte aligned as torch aligns its records.
fn put_entry(zip: &mut Zip, folder: &str, name: &str, bytes: &[u8]) -> Result<(), ZipOrIo> {
    let opts = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .with_alignment(64)
        .large_file(bytes.len() as u64 >= u64::from(u32::MAX));
    zip.start_file(format!("{folder}/{name}"), opts)?;
    zip.write_all(bytes)?;
    Ok(())
}

fn write_zip(tmp: &Path, folder: &str, tensors: &[TensorOut]) -> Result<(), ZipOrIo> {
    let records: Vec<RecordOut> = tensors
        .iter()
        .enumerate()
        .map(|(i, t)| RecordOut {
            key: &t.name,
            dtype: t.dtype,
            storage_key: i.to_string(),
            shape: &t.shape,
        })
        .collect();
    let pkl = pickle::write_state_dict(&records);
    let mut hash = Sha256::new();
    hash.update(&pkl);
    let file = std::fs::File::create(tmp)?;
    let mut zip: Zip = zip::ZipWriter::new(std::io::BufWriter::new(file));
    let put = |zip: &mut Zip, name: &str, bytes: &[u8]| put_entry(zip, folder, name, bytes);
    put(&mut zip, "data.pkl", &pkl)?;
    put(&mut zip, ".format_version", b"1")?;
    put(&mut zip, ".storage_alignment", b"64")?;
    put(&mut zip, "byteorder", b"little")?;
    for (i, t) in tensors.iter().enumerate() {
        hash.update(&t.data);
        put(&mut zip, &format!("data/{i}"), &t.data)?;
    }
    put(&mut zip, "version", b"3\n")?;
    let digest = hash.finalize();
    let id: String = (0..40)
        .map(|i| char::from(b'0' + digest[i % 32] % 10))
        .collect();
    put(&mut zip, ".data/serialization_id", id.as_bytes())?;
    let mut w = zip.finish()?;
    w.flush()?;
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(())
}
