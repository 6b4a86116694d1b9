//! Test support: locating the golden folder, a minimal safetensors reader (no libtorch needed) and the byte
//! mutations of the fuzz tests ([`mutate`]).
//!
//! The reader handles the format's layout: an 8-byte little-endian header length, a JSON
//! header `{name: {dtype, shape, data_offsets: [begin, end]}}` (plus an optional
//! `__metadata__` entry), then the raw little-endian data.

pub mod mutate;

use std::collections::BTreeMap;
use std::path::PathBuf;

/// One tensor read from a safetensors file.
pub struct Tensor {
    /// The dtype string, e.g. "U8" or "I32".
    pub dtype: String,
    /// The shape.
    pub shape: Vec<usize>,
    /// The raw little-endian bytes.
    pub bytes: Vec<u8>,
}

impl Tensor {
    /// The values of a U8 tensor.
    pub fn to_u8(&self) -> Vec<u8> {
        assert_eq!(self.dtype, "U8", "expected a U8 tensor");
        self.bytes.clone()
    }

    /// The values of an I32 tensor.
    pub fn to_i32(&self) -> Vec<i32> {
        assert_eq!(self.dtype, "I32", "expected an I32 tensor");
        self.bytes
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    }
}

/// The golden folder: `HRM_GOLDEN_DIR` when set, else `<manifest>/../../../shared/golden`.
///
/// # Panics
/// With a clear message when the folder does not exist, so golden tests fail loudly.
pub fn golden_dir() -> PathBuf {
    let dir = match std::env::var_os("HRM_GOLDEN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/golden"),
    };
    assert!(
        dir.is_dir(),
        "golden folder {} not found: set HRM_GOLDEN_DIR to the folder holding the \
         reference *.safetensors files",
        dir.display()
    );
    dir
}

/// The shared raw-data folder: `HRM_DATA_DIR` when set, else `<manifest>/../../../shared/datasets`.
///
/// # Panics
/// With a clear message when the folder does not exist.
pub fn data_dir() -> PathBuf {
    let dir = std::env::var_os("HRM_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets")
        });
    assert!(
        dir.is_dir(),
        "the real data folder {} is missing; set HRM_DATA_DIR to the shared datasets folder",
        dir.display()
    );
    dir
}

/// Reads every tensor of the golden file `name`.
///
/// # Panics
/// When the file is missing or malformed (a test failure with the reason).
pub fn read_golden(name: &str) -> BTreeMap<String, Tensor> {
    let path = golden_dir().join(name);
    let data = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("cannot read golden file {}: {e}", path.display()));
    parse_safetensors(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Parses a safetensors file held in memory.
pub fn parse_safetensors(data: &[u8]) -> Result<BTreeMap<String, Tensor>, String> {
    let len_bytes: [u8; 8] = data
        .get(..8)
        .ok_or("file shorter than 8 bytes")?
        .try_into()
        .map_err(|_| "bad length prefix")?;
    let header_len = usize::try_from(u64::from_le_bytes(len_bytes)).map_err(|e| e.to_string())?;
    let header = data
        .get(8..8 + header_len)
        .ok_or("header runs past the end of the file")?;
    let body = &data[8 + header_len..];
    let header: serde_json::Value = serde_json::from_slice(header).map_err(|e| e.to_string())?;
    let entries = header.as_object().ok_or("header is not a JSON object")?;
    let mut out = BTreeMap::new();
    for (name, entry) in entries {
        if name == "__metadata__" {
            continue;
        }
        let field = |key: &str| {
            entry
                .get(key)
                .ok_or_else(|| format!("tensor {name}: missing {key}"))
        };
        let dtype = field("dtype")?
            .as_str()
            .ok_or_else(|| format!("tensor {name}: dtype is not a string"))?
            .to_string();
        let as_usizes = |v: &serde_json::Value| -> Result<Vec<usize>, String> {
            v.as_array()
                .ok_or_else(|| format!("tensor {name}: expected a list"))?
                .iter()
                .map(|x| {
                    x.as_u64()
                        .map(|x| x as usize)
                        .ok_or_else(|| format!("tensor {name}: expected integers"))
                })
                .collect()
        };
        let shape = as_usizes(field("shape")?)?;
        let offsets = as_usizes(field("data_offsets")?)?;
        let [begin, end] = offsets[..] else {
            return Err(format!("tensor {name}: data_offsets must have 2 entries"));
        };
        let bytes = body
            .get(begin..end)
            .ok_or_else(|| format!("tensor {name}: data_offsets out of range"))?
            .to_vec();
        let elem = match dtype.as_str() {
            "U8" | "I8" | "BOOL" => 1,
            "I16" | "F16" | "BF16" => 2,
            "I32" | "F32" => 4,
            "I64" | "F64" => 8,
            other => return Err(format!("tensor {name}: unsupported dtype {other}")),
        };
        if bytes.len() != elem * shape.iter().product::<usize>() {
            return Err(format!("tensor {name}: byte count does not match shape"));
        }
        out.insert(
            name.clone(),
            Tensor {
                dtype,
                shape,
                bytes,
            },
        );
    }
    Ok(out)
}

/// The files of a fuzz seed corpus folder (`<crate>/tests/fuzz-corpus/<name>`), sorted; panics (in a test)
/// when the folder cannot be read.
pub fn corpus_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            e.unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .path()
        })
        .collect();
    files.sort();
    files
}

/// A TCP port free on the loopback interface a moment ago (bound and released), for a test's rendezvous.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding a loopback port")
}
