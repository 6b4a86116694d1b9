//! Reading a `torch.save` zip archive: the one folder's `data.pkl` through the restricted unpickler, then each
//! tensor's bytes from its storage entry `data/<key>`, gathered into row-major order.
//! Follows torch 2.11's `torch/serialization.py` (`_load`) and `caffe2/serialize/inline_container.cc`.

use std::fs::File;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use crate::pickle::{self, TensorRecord};
use crate::{DType, TorchFileError};

/// One tensor of an opened file: its state-dict key, dtype and shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// The state-dict key as stored (prefixes such as `_orig_mod.model.` included).
    pub name: String,
    /// The element type.
    pub dtype: DType,
    /// The shape.
    pub shape: Vec<usize>,
}

impl TensorInfo {
    /// The number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// An opened state-dict file: the tensor list is read at open, the bytes of each tensor on request.
pub struct TorchFile<R: Read + Seek = File> {
    path: PathBuf,
    archive: zip::ZipArchive<R>,
    folder: String,
    records: Vec<(TensorInfo, TensorRecord)>,
}

impl<R: Read + Seek> std::fmt::Debug for TorchFile<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TorchFile")
            .field("path", &self.path)
            .field("tensors", &self.records.len())
            .finish()
    }
}

impl TorchFile<File> {
    /// Opens a `torch.save` file.
    pub fn open(path: &Path) -> Result<TorchFile<File>, TorchFileError> {
        let file = File::open(path).map_err(|source| TorchFileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        TorchFile::from_reader(file, path)
    }
}

impl<R: Read + Seek> TorchFile<R> {
    /// Opens a `torch.save` archive from any reader; `path` names it in errors.
    pub fn from_reader(reader: R, path: &Path) -> Result<TorchFile<R>, TorchFileError> {
        let archive_err = |reason: String| TorchFileError::Archive {
            path: path.to_path_buf(),
            reason,
        };
        let archive = zip::ZipArchive::new(reader)
            .map_err(|e| archive_err(format!("{e} (truncated or not a zip file?)")))?;
        let pickles: Vec<String> = archive
            .file_names()
            .filter_map(Result::ok)
            .filter(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1)
            .map(|n| n.to_string())
            .collect();
        let [pkl] = pickles.as_slice() else {
            return Err(archive_err(format!(
                "{} `<folder>/data.pkl` entries (a torch.save file has exactly one)",
                pickles.len()
            )));
        };
        let folder = pkl.trim_end_matches("data.pkl").to_string();
        let mut this = TorchFile {
            path: path.to_path_buf(),
            archive,
            folder,
            records: Vec::new(),
        };
        if let Some(order) = this.small_entry("byteorder")? {
            if order != "little" {
                return Err(archive_err(format!(
                    "byteorder `{order}` (only little is read)"
                )));
            }
        }
        let pkl_bytes = this.entry_bytes(pkl, pickle::MAX_PICKLE_BYTES as u64)?;
        let records =
            pickle::read_state_dict(&pkl_bytes).map_err(|reason| TorchFileError::Pickle {
                path: path.to_path_buf(),
                reason,
            })?;
        for (key, record) in records {
            let info = this.check_record(&key, &record)?;
            this.records.push((info, record));
        }
        Ok(this)
    }

    /// The file this was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The tensors, in file order.
    pub fn tensors(&self) -> impl Iterator<Item = &TensorInfo> {
        self.records.iter().map(|(i, _)| i)
    }

    fn tensor_err(&self, key: &str, reason: String) -> TorchFileError {
        TorchFileError::Tensor {
            path: self.path.clone(),
            key: key.to_string(),
            reason,
        }
    }

    /// The tensor's dtype, shape, and that its elements lie inside its storage.
    fn check_record(&mut self, key: &str, r: &TensorRecord) -> Result<TensorInfo, TorchFileError> {
        let dtype = r.dtype.ok_or_else(|| {
            self.tensor_err(
                key,
                format!(
                    "storage class torch.{} is not supported (float32, bfloat16, float16, float64, int64, int32 are)",
                    r.storage_class
                ),
            )
        })?;
        let shape: Vec<usize> = r
            .shape
            .iter()
            .map(|&d| usize::try_from(d))
            .collect::<Result<_, _>>()
            .map_err(|_| self.tensor_err(key, "a dimension does not fit in memory".into()))?;
        let numel = shape
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d as u64))
            .ok_or_else(|| self.tensor_err(key, format!("size {:?} overflows", r.shape)))?;
        if numel > 0 {
            // The last element the tensor reads: offset + sum((size_i - 1) * stride_i).
            let last = r
                .shape
                .iter()
                .zip(&r.stride)
                .try_fold(r.offset, |acc, (&d, &s)| {
                    acc.checked_add((d - 1).checked_mul(s)?)
                })
                .ok_or_else(|| self.tensor_err(key, "offset and strides overflow".into()))?;
            if last >= r.storage_numel {
                return Err(self.tensor_err(
                    key,
                    format!(
                        "size {:?} with stride {:?} at offset {} reaches element {last}, but storage `{}` holds {} \
                         elements",
                        r.shape, r.stride, r.offset, r.storage_key, r.storage_numel
                    ),
                ));
            }
        }
        let entry = format!("{}data/{}", self.folder, r.storage_key);
        let want = r
            .storage_numel
            .checked_mul(dtype.size() as u64)
            .ok_or_else(|| self.tensor_err(key, "storage size overflows".into()))?;
        let have = self
            .archive
            .by_name(&entry)
            .map(|f| f.size())
            .map_err(|e| self.tensor_err(key, format!("storage entry `{entry}`: {e}")))?;
        if have != want {
            return Err(self.tensor_err(
                key,
                format!(
                    "storage entry `{entry}` has {have} bytes, but {} elements of {dtype} need {want}",
                    r.storage_numel
                ),
            ));
        }
        Ok(TensorInfo {
            name: key.to_string(),
            dtype,
            shape,
        })
    }

    fn entry_bytes(&mut self, name: &str, max: u64) -> Result<Vec<u8>, TorchFileError> {
        let path = self.path.clone();
        let archive_err = |reason: String| TorchFileError::Archive {
            path: path.clone(),
            reason,
        };
        let mut f = self
            .archive
            .by_name(name)
            .map_err(|e| archive_err(format!("entry `{name}`: {e}")))?;
        if f.size() > max {
            return Err(archive_err(format!(
                "entry `{name}` has {} bytes, more than {max}",
                f.size()
            )));
        }
        let mut buf = Vec::with_capacity(f.size() as usize);
        f.read_to_end(&mut buf)
            .map_err(|e| archive_err(format!("entry `{name}`: {e}")))?;
        Ok(buf)
    }

    /// A small text entry of the folder (`byteorder`, ...), `None` when absent.
    fn small_entry(&mut self, name: &str) -> Result<Option<String>, TorchFileError> {
        let full = format!("{}{name}", self.folder);
        if self.archive.index_for_name(&full).is_none() {
            return Ok(None);
        }
        let b = self.entry_bytes(&full, 64)?;
        Ok(Some(String::from_utf8_lossy(&b).trim().to_string()))
    }

    /// The bytes of tensor `name` in row-major order (little-endian elements), gathered through its strides.
    pub fn read(&mut self, name: &str) -> Result<Vec<u8>, TorchFileError> {
        let (info, r) = self
            .records
            .iter()
            .find(|(i, _)| i.name == name)
            .cloned()
            .ok_or_else(|| self.tensor_err(name, "no such tensor in the file".into()))?;
        let entry = format!("{}data/{}", self.folder, r.storage_key);
        let storage = self
            .entry_bytes(&entry, u64::MAX)
            .map_err(|e| self.tensor_err(name, e.to_string()))?;
        let want = r.storage_numel as usize * info.dtype.size();
        if storage.len() != want {
            return Err(self.tensor_err(
                name,
                format!(
                    "storage entry `{entry}` yielded {} bytes, not {want}",
                    storage.len()
                ),
            ));
        }
        Ok(gather(&storage, &info, &r))
    }
}

/// The elements of a checked record, row-major: a slice when contiguous, else one element at a time.
fn gather(storage: &[u8], info: &TensorInfo, r: &TensorRecord) -> Vec<u8> {
    let e = info.dtype.size();
    let n = info.numel();
    let start = r.offset as usize * e;
    let mut contiguous = vec![1u64; info.shape.len()];
    for d in (0..info.shape.len().saturating_sub(1)).rev() {
        contiguous[d] = contiguous[d + 1] * (info.shape[d + 1].max(1) as u64);
    }
    let dense = info
        .shape
        .iter()
        .zip(r.stride.iter().zip(&contiguous))
        .all(|(&d, (s, c))| d <= 1 || s == c);
    if n == 0 {
        return Vec::new();
    }
    if dense {
        return storage[start..start + n * e].to_vec();
    }
    let mut out = Vec::with_capacity(n * e);
    let mut index = vec![0usize; info.shape.len()];
    for _ in 0..n {
        let at = index
            .iter()
            .zip(&r.stride)
            .fold(r.offset as usize, |acc, (&i, &s)| acc + i * s as usize)
            * e;
        out.extend_from_slice(&storage[at..at + e]);
        for d in (0..index.len()).rev() {
            index[d] += 1;
            if index[d] < info.shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    out
}
