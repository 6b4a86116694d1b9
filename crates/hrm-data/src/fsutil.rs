//! Atomic file writes: write to a temporary sibling, then rename over the destination; the check that an
//! existing folder is ours to replace.

use crate::error::DataError;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Returns a temporary path in the same folder as `path` (hidden, ending in `.tmp`).
pub(crate) fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".to_string());
    let unique = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    path.with_file_name(format!(".{name}.{}.{unique}.tmp", std::process::id()))
}

/// Writes `bytes` to `path` atomically: a temporary sibling is written and synced, then renamed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    let tmp = temp_sibling(path);
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(DataError::io(path, e));
    }
    Ok(())
}

/// Refuses an existing `out` that is not a folder or holds an entry not in `known` (`what` names the kind of
/// folder in the error): the check before a staged folder replaces an old one (`--force`), so that a mistyped
/// `--out` never deletes unrelated files. A missing or empty `out` passes.
pub fn check_folder_holds_only(out: &Path, known: &[&str], what: &str) -> Result<(), DataError> {
    let refused = |msg: String| DataError::Refused {
        path: out.to_path_buf(),
        msg,
    };
    if !out.exists() {
        return Ok(());
    }
    if !out.is_dir() {
        return Err(refused(format!(
            "exists and is not a folder; refusing to replace it with {what}"
        )));
    }
    for entry in std::fs::read_dir(out).map_err(|e| DataError::io(out, e))? {
        let entry = entry.map_err(|e| DataError::io(out, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !known.contains(&name.as_ref()) {
            return Err(refused(format!(
                "holds `{name}`, which is not part of {what}; refusing to replace the folder \
                 (choose another --out or move it away)"
            )));
        }
    }
    Ok(())
}
