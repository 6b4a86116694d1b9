//! Helpers shared by the integration tests: locating the real data folder.

#![allow(dead_code)]

use std::path::PathBuf;

/// The shared raw-data folder: `HRM_DATA_DIR`, or `<manifest>/../../../shared/datasets`.
///
/// Panics with a clear message when the folder is missing, so tests that need real data fail loudly.
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
