//! Reading and writing NumPy `.npy` files (format versions 1.0 to 3.0, C order, little-endian).

use crate::error::DataError;
use crate::fsutil::temp_sibling;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// An element type that can be stored in a `.npy` file.
pub trait NpyElem: Copy + Send + Sync + 'static {
    /// The NumPy dtype string written to headers (e.g. `<i4`).
    const DESCR: &'static str;
    /// Other dtype strings accepted on reading (same layout, different spelling).
    const ALIASES: &'static [&'static str];
    /// The size of one element in bytes.
    const SIZE: usize;
    /// Decodes one element from exactly `SIZE` little-endian bytes.
    fn from_le(bytes: &[u8]) -> Self;
    /// Appends the little-endian bytes of `self` to `out`.
    fn put_le(self, out: &mut Vec<u8>);
    /// Decodes a whole buffer (its length is a multiple of `SIZE`).
    fn decode_vec(bytes: Vec<u8>) -> Vec<Self> {
        bytes.chunks_exact(Self::SIZE).map(Self::from_le).collect()
    }
    /// Encodes a slice into little-endian bytes.
    fn encode_slice(data: &[Self], out: &mut Vec<u8>) {
        out.reserve(data.len() * Self::SIZE);
        for &x in data {
            x.put_le(out);
        }
    }
}

impl NpyElem for u8 {
    const DESCR: &'static str = "|u1";
    const ALIASES: &'static [&'static str] = &["<u1", ">u1", "=u1", "u1", "B"];
    const SIZE: usize = 1;
    fn from_le(bytes: &[u8]) -> Self {
        bytes[0]
    }
    fn put_le(self, out: &mut Vec<u8>) {
        out.push(self);
    }
    fn decode_vec(bytes: Vec<u8>) -> Vec<Self> {
        bytes
    }
    fn encode_slice(data: &[Self], out: &mut Vec<u8>) {
        out.extend_from_slice(data);
    }
}

impl NpyElem for bool {
    const DESCR: &'static str = "|b1";
    const ALIASES: &'static [&'static str] = &["<b1", "b1", "?"];
    const SIZE: usize = 1;
    fn from_le(bytes: &[u8]) -> Self {
        bytes[0] != 0
    }
    fn put_le(self, out: &mut Vec<u8>) {
        out.push(u8::from(self));
    }
}

macro_rules! impl_npy_num {
    ($t:ty, $descr:expr, $aliases:expr) => {
        impl NpyElem for $t {
            const DESCR: &'static str = $descr;
            const ALIASES: &'static [&'static str] = $aliases;
            const SIZE: usize = std::mem::size_of::<$t>();
            fn from_le(bytes: &[u8]) -> Self {
                let mut b = [0u8; std::mem::size_of::<$t>()];
                b.copy_from_slice(bytes);
                <$t>::from_le_bytes(b)
            }
            fn put_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    };
}

impl_npy_num!(i32, "<i4", &["=i4"]);
impl_npy_num!(i64, "<i8", &["=i8"]);
impl_npy_num!(f32, "<f4", &["=f4"]);
impl_npy_num!(f64, "<f8", &["=f8"]);

/// An n-dimensional array in C (row-major) order.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray<T> {
    /// The dimensions; empty for a scalar.
    pub shape: Vec<usize>,
    /// The elements in C order; `data.len()` is the product of `shape`.
    pub data: Vec<T>,
}

/// The parsed header of a `.npy` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    /// The dtype string, e.g. `|u1`.
    pub descr: String,
    /// Whether the data is in Fortran (column-major) order.
    pub fortran_order: bool,
    /// The dimensions.
    pub shape: Vec<usize>,
    /// The byte offset where the data starts.
    pub data_offset: usize,
}

fn npy_err(path: &Path, msg: impl Into<String>) -> DataError {
    DataError::Npy {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

/// Extracts the text after `'key':` in a header dict literal.
fn header_value<'a>(dict: &'a str, key: &str, path: &Path) -> Result<&'a str, DataError> {
    let pat_single = format!("'{key}'");
    let pat_double = format!("\"{key}\"");
    let pos = dict
        .find(&pat_single)
        .map(|p| p + pat_single.len())
        .or_else(|| dict.find(&pat_double).map(|p| p + pat_double.len()))
        .ok_or_else(|| npy_err(path, format!("header has no '{key}' entry: {dict}")))?;
    let rest = dict[pos..].trim_start();
    let rest = rest
        .strip_prefix(':')
        .ok_or_else(|| npy_err(path, format!("header entry '{key}' has no ':'")))?;
    Ok(rest.trim_start())
}

/// Parses the header dict literal of a `.npy` file.
fn parse_header_dict(dict: &str, path: &Path, data_offset: usize) -> Result<NpyHeader, DataError> {
    let dict = dict.trim();
    if !dict.starts_with('{') {
        return Err(npy_err(path, format!("header is not a dict: {dict}")));
    }
    // The dtype string.
    let v = header_value(dict, "descr", path)?;
    let quote = v
        .chars()
        .next()
        .filter(|c| *c == '\'' || *c == '"')
        .ok_or_else(|| {
            npy_err(
                path,
                "'descr' is not a string (structured dtypes are not supported)",
            )
        })?;
    let end = v[1..]
        .find(quote)
        .ok_or_else(|| npy_err(path, "unterminated 'descr' string"))?;
    let descr = v[1..1 + end].to_string();
    // The memory order.
    let v = header_value(dict, "fortran_order", path)?;
    let fortran_order = if v.starts_with("True") {
        true
    } else if v.starts_with("False") {
        false
    } else {
        return Err(npy_err(path, "'fortran_order' is neither True nor False"));
    };
    // The shape tuple.
    let v = header_value(dict, "shape", path)?;
    let v = v
        .strip_prefix('(')
        .ok_or_else(|| npy_err(path, "'shape' is not a tuple"))?;
    let end = v
        .find(')')
        .ok_or_else(|| npy_err(path, "unterminated 'shape' tuple"))?;
    let mut shape = Vec::new();
    for part in v[..end].split(',') {
        let part = part.trim().trim_end_matches('L');
        if part.is_empty() {
            continue;
        }
        let n: usize = part
            .parse()
            .map_err(|_| npy_err(path, format!("bad dimension '{part}' in 'shape'")))?;
        shape.push(n);
    }
    Ok(NpyHeader {
        descr,
        fortran_order,
        shape,
        data_offset,
    })
}

/// Reads and parses the header of an open `.npy` file, leaving the reader at the data.
fn read_header_from<R: Read>(r: &mut R, path: &Path) -> Result<NpyHeader, DataError> {
    let mut pre = [0u8; 8];
    r.read_exact(&mut pre)
        .map_err(|_| npy_err(path, "file is shorter than the 8-byte preamble"))?;
    if &pre[..6] != MAGIC {
        return Err(npy_err(path, "missing magic string \\x93NUMPY"));
    }
    let (major, minor) = (pre[6], pre[7]);
    let (header_len, len_bytes) = match major {
        1 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b)
                .map_err(|_| npy_err(path, "truncated header length"))?;
            (u16::from_le_bytes(b) as usize, 2)
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            r.read_exact(&mut b)
                .map_err(|_| npy_err(path, "truncated header length"))?;
            (u32::from_le_bytes(b) as usize, 4)
        }
        _ => {
            return Err(npy_err(
                path,
                format!("unsupported format version {major}.{minor}"),
            ))
        }
    };
    if minor != 0 {
        return Err(npy_err(
            path,
            format!("unsupported format version {major}.{minor}"),
        ));
    }
    // Read through `take` so that a header length beyond the file allocates nothing it cannot fill.
    let mut text = Vec::new();
    r.take(header_len as u64)
        .read_to_end(&mut text)
        .map_err(|e| DataError::io(path, e))?;
    if text.len() != header_len {
        return Err(npy_err(
            path,
            format!(
                "truncated header: {} bytes announced, {} present",
                header_len,
                text.len()
            ),
        ));
    }
    let text = if major == 3 {
        String::from_utf8(text).map_err(|_| npy_err(path, "header is not UTF-8"))?
    } else {
        // Versions 1 and 2 use latin-1; any non-ASCII byte is unexpected in a header.
        text.iter().map(|&b| b as char).collect()
    };
    parse_header_dict(&text, path, 8 + len_bytes + header_len)
}

/// The data bytes of an array of `shape` with elements of `size` bytes; `None` when it overflows.
fn data_bytes(shape: &[usize], size: usize) -> Option<usize> {
    shape.iter().try_fold(size, |acc, &d| acc.checked_mul(d))
}

/// Reads only the header of a `.npy` file (dtype, order, shape, data offset).
pub fn read_npy_header(path: &Path) -> Result<NpyHeader, DataError> {
    let mut f = File::open(path).map_err(|e| DataError::io(path, e))?;
    read_header_from(&mut f, path)
}

/// Reads a whole `.npy` file whose dtype is `T`'s.
///
/// Checks the magic string, the format version (1.0, 2.0 or 3.0), the dtype, C order and the file length,
/// and returns an error naming the file on any mismatch.
pub fn read_npy<T: NpyElem>(path: &Path) -> Result<NpyArray<T>, DataError> {
    let f = File::open(path).map_err(|e| DataError::io(path, e))?;
    let file_len = f.metadata().map_err(|e| DataError::io(path, e))?.len() as usize;
    let mut r = std::io::BufReader::new(f);
    let h = read_header_from(&mut r, path)?;
    if h.descr != T::DESCR && !T::ALIASES.contains(&h.descr.as_str()) {
        return Err(npy_err(
            path,
            format!("dtype is '{}', expected '{}'", h.descr, T::DESCR),
        ));
    }
    if h.fortran_order {
        return Err(npy_err(
            path,
            "Fortran order is not supported (expected C order)",
        ));
    }
    let nbytes = data_bytes(&h.shape, T::SIZE)
        .ok_or_else(|| npy_err(path, format!("shape {:?} is too large to address", h.shape)))?;
    if Some(file_len) != h.data_offset.checked_add(nbytes) {
        return Err(npy_err(
            path,
            format!(
                "file has {} data bytes, shape {:?} of '{}' needs {nbytes}",
                file_len.saturating_sub(h.data_offset),
                h.shape,
                h.descr
            ),
        ));
    }
    let mut bytes = vec![0u8; nbytes];
    r.read_exact(&mut bytes)
        .map_err(|e| DataError::io(path, e))?;
    Ok(NpyArray {
        shape: h.shape,
        data: T::decode_vec(bytes),
    })
}

/// Row-wise access to a 2-D `[rows, cols]` `.npy` file without reading it whole (a seek per row).
pub struct NpyRowReader<T: NpyElem> {
    path: PathBuf,
    file: File,
    data_offset: u64,
    rows: usize,
    cols: usize,
    elem: std::marker::PhantomData<T>,
}

impl<T: NpyElem> NpyRowReader<T> {
    /// Opens `path`, checking the dtype (`T`'s), C order and a 2-D shape.
    pub fn open(path: &Path) -> Result<Self, DataError> {
        let h = read_npy_header(path)?;
        if h.descr != T::DESCR && !T::ALIASES.contains(&h.descr.as_str()) {
            return Err(npy_err(
                path,
                format!("dtype is '{}', expected '{}'", h.descr, T::DESCR),
            ));
        }
        if h.fortran_order || h.shape.len() != 2 {
            return Err(npy_err(
                path,
                format!(
                    "expected a C-order [N, S] array, found shape {:?} (fortran_order = {})",
                    h.shape, h.fortran_order
                ),
            ));
        }
        // The file must hold exactly the announced rows, so that no row read allocates or seeks past it.
        let file = File::open(path).map_err(|e| DataError::io(path, e))?;
        let file_len = file.metadata().map_err(|e| DataError::io(path, e))?.len();
        let nbytes = data_bytes(&h.shape, T::SIZE).and_then(|n| n.checked_add(h.data_offset));
        if nbytes.map(|n| n as u64) != Some(file_len) {
            return Err(npy_err(
                path,
                format!(
                    "file has {file_len} bytes, but shape {:?} of '{}' after a {}-byte header needs {}",
                    h.shape,
                    h.descr,
                    h.data_offset,
                    nbytes.map_or("more than can be addressed".to_string(), |n| n.to_string())
                ),
            ));
        }
        Ok(NpyRowReader {
            path: path.to_path_buf(),
            file,
            data_offset: h.data_offset as u64,
            rows: h.shape[0],
            cols: h.shape[1],
            elem: std::marker::PhantomData,
        })
    }

    /// The file read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// N, the number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// S, the number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Reads row `r`.
    ///
    /// # Shapes
    /// Returns `[S]`.
    pub fn row(&mut self, r: usize) -> Result<Vec<T>, DataError> {
        if r >= self.rows {
            return Err(npy_err(
                &self.path,
                format!("row {r} requested, but the array has {} rows", self.rows),
            ));
        }
        let mut buf = vec![0u8; self.cols * T::SIZE];
        let offset = self.data_offset + (r * self.cols * T::SIZE) as u64;
        self.file
            .seek(SeekFrom::Start(offset))
            .and_then(|_| self.file.read_exact(&mut buf))
            .map_err(|e| DataError::io(&self.path, e))?;
        Ok(T::decode_vec(buf))
    }
}

/// Formats the header dict for `descr` and `shape`.
fn header_dict(descr: &str, shape: &[usize]) -> String {
    let dims = match shape.len() {
        0 => "()".to_string(),
        1 => format!("({},)", shape[0]),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {dims}, }}")
}

/// Builds a version-1.0 header, space-padded so that the data starts at a multiple of 64 bytes
/// (at least `min_total` bytes in all).
fn build_header(descr: &str, shape: &[usize], min_total: usize) -> Vec<u8> {
    let dict = header_dict(descr, shape);
    let unpadded = 10 + dict.len() + 1;
    let mut total = unpadded.div_ceil(64) * 64;
    if total < min_total {
        total = min_total.div_ceil(64) * 64;
    }
    let header_len = total - 10;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header_len as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.resize(total - 1, b' ');
    out.push(b'\n');
    out
}

/// Writes `data` with dimensions `shape` as a NumPy-compatible version-1.0 `.npy` file.
///
/// The header is padded to a multiple of 64 bytes. The file is written to a temporary sibling and renamed,
/// so `path` never holds a partial array.
pub fn write_npy<T: NpyElem>(path: &Path, shape: &[usize], data: &[T]) -> Result<(), DataError> {
    let count: usize = shape.iter().product();
    if count != data.len() {
        return Err(npy_err(
            path,
            format!(
                "cannot write {} elements with shape {shape:?} ({count} elements)",
                data.len()
            ),
        ));
    }
    let mut w = NpyWriter::<T>::create(path, &shape[1.min(shape.len())..])?;
    if shape.is_empty() {
        return Err(npy_err(path, "scalar arrays are not supported"));
    }
    w.push(data)?;
    let written = w.finish()?;
    debug_assert_eq!(written, shape[0]);
    Ok(())
}

/// A streaming `.npy` writer: rows are appended and the leading dimension is filled in by
/// [`NpyWriter::finish`].
///
/// The data goes to a temporary sibling file that is renamed to the destination by `finish`;
/// dropping the writer without finishing removes the temporary file.
pub struct NpyWriter<T: NpyElem> {
    path: PathBuf,
    tmp: PathBuf,
    file: Option<BufWriter<File>>,
    inner_shape: Vec<usize>,
    row_len: usize,
    elements: usize,
    header_size: usize,
    buf: Vec<u8>,
    _marker: std::marker::PhantomData<T>,
}

impl<T: NpyElem> NpyWriter<T> {
    /// Starts a file whose shape will be `[rows, inner_shape...]`.
    pub fn create(path: &Path, inner_shape: &[usize]) -> Result<Self, DataError> {
        let tmp = temp_sibling(path);
        let file = File::create(&tmp).map_err(|e| DataError::io(path, e))?;
        let mut big = vec![usize::MAX / 1024];
        big.extend_from_slice(inner_shape);
        let header_size = build_header(T::DESCR, &big, 0).len();
        let mut w = NpyWriter {
            path: path.to_path_buf(),
            tmp,
            file: Some(BufWriter::with_capacity(1 << 20, file)),
            inner_shape: inner_shape.to_vec(),
            row_len: inner_shape.iter().product(),
            elements: 0,
            header_size,
            buf: Vec::new(),
            _marker: std::marker::PhantomData,
        };
        let placeholder = vec![b' '; header_size];
        w.write_raw(&placeholder)?;
        Ok(w)
    }

    fn write_raw(&mut self, bytes: &[u8]) -> Result<(), DataError> {
        let f = self
            .file
            .as_mut()
            .ok_or_else(|| npy_err(&self.path, "writer already finished"))?;
        f.write_all(bytes).map_err(|e| DataError::io(&self.path, e))
    }

    /// Appends elements (a whole number of rows is expected by `finish`).
    pub fn push(&mut self, data: &[T]) -> Result<(), DataError> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        T::encode_slice(data, &mut buf);
        let r = self.write_raw(&buf);
        self.buf = buf;
        r?;
        self.elements += data.len();
        Ok(())
    }

    /// The number of complete rows written so far.
    pub fn rows(&self) -> usize {
        self.elements.checked_div(self.row_len).unwrap_or(0)
    }

    /// Writes the final header, syncs and renames the file into place; returns the number of rows.
    pub fn finish(mut self) -> Result<usize, DataError> {
        let path = self.path.clone();
        if self.row_len == 0 || !self.elements.is_multiple_of(self.row_len) {
            return Err(npy_err(
                &path,
                format!(
                    "{} elements do not form whole rows of {:?}",
                    self.elements, self.inner_shape
                ),
            ));
        }
        let rows = self.elements / self.row_len;
        let mut shape = vec![rows];
        shape.extend_from_slice(&self.inner_shape);
        let header = build_header(T::DESCR, &shape, self.header_size);
        if header.len() != self.header_size {
            return Err(npy_err(&path, "internal error: header size changed"));
        }
        let bw = self
            .file
            .take()
            .ok_or_else(|| npy_err(&path, "writer already finished"))?;
        let result = (|| -> std::io::Result<()> {
            let mut f = bw.into_inner().map_err(|e| e.into_error())?;
            f.seek(SeekFrom::Start(0))?;
            f.write_all(&header)?;
            f.sync_all()?;
            std::fs::rename(&self.tmp, &path)
        })();
        result.map_err(|e| DataError::io(&path, e))?;
        Ok(rows)
    }
}

impl<T: NpyElem> Drop for NpyWriter<T> {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_all_dtypes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        write_npy(&p, &[2, 3], &[1u8, 2, 3, 4, 5, 255]).unwrap();
        assert_eq!(
            read_npy::<u8>(&p).unwrap(),
            NpyArray {
                shape: vec![2, 3],
                data: vec![1, 2, 3, 4, 5, 255]
            }
        );
        write_npy(&p, &[3], &[-1i32, 0, i32::MAX]).unwrap();
        assert_eq!(read_npy::<i32>(&p).unwrap().data, vec![-1, 0, i32::MAX]);
        write_npy(&p, &[2], &[i64::MIN, 7]).unwrap();
        assert_eq!(read_npy::<i64>(&p).unwrap().data, vec![i64::MIN, 7]);
        write_npy(&p, &[2], &[1.5f32, -0.25]).unwrap();
        assert_eq!(read_npy::<f32>(&p).unwrap().data, vec![1.5, -0.25]);
        write_npy(&p, &[1, 1, 2], &[1e300f64, -2.0]).unwrap();
        let a = read_npy::<f64>(&p).unwrap();
        assert_eq!((a.shape, a.data), (vec![1, 1, 2], vec![1e300, -2.0]));
        write_npy(&p, &[3], &[true, false, true]).unwrap();
        assert_eq!(read_npy::<bool>(&p).unwrap().data, vec![true, false, true]);
        write_npy::<u8>(&p, &[0, 900], &[]).unwrap();
        assert_eq!(read_npy::<u8>(&p).unwrap().shape, vec![0, 900]);
    }

    #[test]
    fn header_is_padded_to_64_and_matches_numpy() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        write_npy(&p, &[1000, 900], &vec![0u8; 900_000]).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(bytes.len(), 128 + 900_000);
        let text = String::from_utf8_lossy(&bytes[10..128]).to_string();
        assert!(
            text.starts_with("{'descr': '|u1', 'fortran_order': False, 'shape': (1000, 900), }")
        );
        assert!(text.ends_with(" \n"));
        assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 118);
    }

    #[test]
    fn rejects_wrong_dtype_order_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.npy");
        write_npy(&p, &[2], &[1i32, 2]).unwrap();
        let e = read_npy::<u8>(&p).unwrap_err().to_string();
        assert!(e.contains("x.npy") && e.contains("'<i4'"), "{e}");
        let mut bytes = std::fs::read(&p).unwrap();
        bytes.pop();
        std::fs::write(&p, &bytes).unwrap();
        let e = read_npy::<i32>(&p).unwrap_err().to_string();
        assert!(e.contains("x.npy") && e.contains("data bytes"), "{e}");
        let text = String::from_utf8_lossy(&bytes).replace("False", "True ");
        std::fs::write(&p, text.as_bytes()).unwrap();
        assert!(read_npy::<i32>(&p).is_err());
        std::fs::write(&p, b"not an npy file at all").unwrap();
        let e = read_npy::<i32>(&p).unwrap_err().to_string();
        assert!(e.contains("magic"), "{e}");
        let e = read_npy::<i32>(&dir.path().join("missing.npy"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.npy"), "{e}");
    }

    #[test]
    fn reads_version_2_headers() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v2.npy");
        let dict = "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }";
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&[2, 0]);
        let mut padded = dict.to_string();
        while !(12 + padded.len() + 1).is_multiple_of(64) {
            padded.push(' ');
        }
        padded.push('\n');
        bytes.extend_from_slice(&(padded.len() as u32).to_le_bytes());
        bytes.extend_from_slice(padded.as_bytes());
        bytes.extend_from_slice(&5i32.to_le_bytes());
        bytes.extend_from_slice(&(-6i32).to_le_bytes());
        std::fs::write(&p, &bytes).unwrap();
        assert_eq!(read_npy::<i32>(&p).unwrap().data, vec![5, -6]);
    }

    #[test]
    fn streaming_writer_and_abandoned_writer() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.npy");
        let mut w = NpyWriter::<u8>::create(&p, &[3]).unwrap();
        w.push(&[1, 2, 3]).unwrap();
        w.push(&[4, 5, 6]).unwrap();
        assert_eq!(w.finish().unwrap(), 2);
        let a = read_npy::<u8>(&p).unwrap();
        assert_eq!((a.shape, a.data), (vec![2, 3], vec![1, 2, 3, 4, 5, 6]));
        let q = dir.path().join("abandoned.npy");
        {
            let mut w = NpyWriter::<u8>::create(&q, &[3]).unwrap();
            w.push(&[1, 2, 3]).unwrap();
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
