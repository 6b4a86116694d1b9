//! Atomic file writes: write to a temporary sibling, then rename over the destination.

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
