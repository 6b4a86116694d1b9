//! Tidy rules checked by `cargo xtask test` (with the architecture rules): every Rust source file of the
//! workspace opens with a `//!` line saying what it is and, where it has one, the reference module it follows.

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// The `.rs` files under `dir` (recursively), skipping `target` and hidden folders.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

/// The Rust files under `root`'s `crates/` and `xtask/` whose first line is not a `//!` line.
pub fn files_without_module_doc(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for top in ["crates", "xtask"] {
        rust_files(&root.join(top), &mut files);
    }
    files.sort();
    files
        .into_iter()
        .filter(|f| {
            std::fs::read_to_string(f)
                .map(|t| !t.trim_start_matches('\u{feff}').starts_with("//!"))
                .unwrap_or(true)
        })
        .collect()
}

/// Fails naming every Rust file of the workspace that does not open with a `//!` line.
pub fn check(root: &Path) -> Result<()> {
    let missing = files_without_module_doc(root);
    if !missing.is_empty() {
        let list: Vec<String> = missing.iter().map(|p| p.display().to_string()).collect();
        bail!(
            "{} Rust file(s) do not open with a `//!` line (what the file is, and the reference module it \
             follows):\n  {}",
            list.len(),
            list.join("\n  ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_source_file_of_the_workspace_opens_with_a_module_doc() {
        let missing = files_without_module_doc(&crate::repo_root());
        assert!(missing.is_empty(), "{missing:?}");
    }

    #[test]
    fn a_file_without_one_is_named() {
        let root = std::env::temp_dir().join(format!("xtask-tidy-{}", std::process::id()));
        let src = root.join("crates").join("a").join("src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("lib.rs"), "//! A crate.\n").unwrap();
        std::fs::write(src.join("bare.rs"), "// not a module doc\nfn f() {}\n").unwrap();
        let missing = files_without_module_doc(&root);
        let _ = std::fs::remove_dir_all(&root);
        assert_eq!(missing, vec![src.join("bare.rs")]);
        assert!(check(&crate::repo_root()).is_ok());
    }
}
