//! Fetching the pinned git sources of the raw data where the network allows it. The pins are written here, not
//! read from `datasets/sources.toml`; a test keeps the two in agreement.

use anyhow::{bail, Context, Result};
use hrm_grid::Task;
use std::path::Path;
use std::process::Command;

/// A git source pinned to a commit, and where its data folder is linked in the data folder.
struct GitSource {
    url: &'static str,
    commit: &'static str,
    /// (folder inside the repository, name in the data folder).
    link: (&'static str, &'static str),
}

const ARC1: &[GitSource] = &[
    GitSource {
        url: "https://github.com/fchollet/ARC-AGI",
        commit: "399030444e0ab0cc8b4e199870fb20b863846f34",
        link: ("data", "arc-agi-1"),
    },
    GitSource {
        url: "https://github.com/victorvikram/ConceptARC",
        commit: "b22ef526b4656679816b7811e78f55cc24d736d7",
        link: ("corpus", "concept-arc"),
    },
];

const ARC2: &[GitSource] = &[GitSource {
    url: "https://github.com/arcprize/ARC-AGI-2",
    commit: "f3283f727488ad98fe575ea6a5ac981e4a188e49",
    link: ("data", "arc-agi-2"),
}];

fn clone(src: &GitSource, raw: &Path) -> Result<()> {
    let name = src.url.rsplit('/').next().unwrap_or("repo");
    let repo = raw.join("repos").join(name);
    if !repo.join(".git").is_dir() {
        std::fs::create_dir_all(raw.join("repos"))?;
        eprintln!("fetch: cloning {} (pinned {})", src.url, &src.commit[..7]);
        let status = Command::new("timeout")
            .args(["300", "git", "clone", "--quiet", src.url])
            .arg(&repo)
            .env("GIT_TERMINAL_PROMPT", "0")
            .status()
            .context("running git")?;
        if !status.success() {
            let _ = std::fs::remove_dir_all(&repo);
            bail!(
                "could not clone {} (no network access to it from here?). Pass --data DIR or set HRM_DATA_DIR \
                 to a folder that holds the raw sources (see datasets/README.md)",
                src.url
            );
        }
    }
    let status = Command::new("git")
        .arg("-C")
        .arg(&repo)
        .args(["checkout", "--quiet", src.commit])
        .status()?;
    if !status.success() {
        bail!("could not check out {} in {}", src.commit, repo.display());
    }
    let link = raw.join(src.link.1);
    if link.symlink_metadata().is_err() {
        std::os::unix::fs::symlink(repo.join(src.link.0), &link)?;
    }
    Ok(())
}

/// Fetches the sources of `task` into `raw` (`datasets/raw`, git-ignored).
pub fn fetch(task: Task, raw: &Path) -> Result<()> {
    let sources = match task {
        Task::Arc1 => ARC1,
        Task::Arc2 => ARC2,
        Task::Sudoku => bail!(
            "the Sudoku puzzle files (tdoku's data.zip) cannot be fetched automatically; put the puzzle files in \
             <data>/sudoku-sources/ (see datasets/README.md) and pass --data <data>"
        ),
        Task::Maze => bail!(
            "the reference-built Maze-Hard arrays cannot be fetched automatically; put them in \
             <data>/maze-30x30-hard-1k/ (see datasets/README.md) and pass --data <data>"
        ),
    };
    std::fs::create_dir_all(raw)?;
    for s in sources {
        clone(s, raw)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pins_agree_with_datasets_sources_toml() {
        let path = crate::repo_root().join("datasets").join("sources.toml");
        let listed = std::fs::read_to_string(&path).unwrap();
        for src in ARC1.iter().chain(ARC2) {
            assert!(
                listed.contains(src.url),
                "{} is not in {}",
                src.url,
                path.display()
            );
            assert!(
                listed.contains(src.commit),
                "{} is not in {}",
                src.commit,
                path.display()
            );
        }
    }
}
