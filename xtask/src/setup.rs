//! `cargo xtask setup`: an idempotent libtorch install (`torch==hrm_arch::LIBTORCH_VERSION` from PyPI) linked
//! into the clone.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

// The torch version that tch 0.24 / torch-sys 0.24 expect, kept in one place for the whole workspace.
use hrm_arch::LIBTORCH_VERSION as TORCH_VERSION;

/// What `setup` produced: where libtorch lives.
#[derive(Debug, Clone)]
pub struct Libtorch {
    /// The `site-packages` folder holding `torch/` and `nvidia/`.
    pub site_packages: PathBuf,
}

impl Libtorch {
    /// The folder with `libtorch*.so`.
    pub fn lib_dir(&self) -> PathBuf {
        self.site_packages.join("torch").join("lib")
    }
}

/// The venv folder: `$HRM_TORCH_VENV`, else `$XDG_CACHE_HOME/hrm-rs/torch-venv`, else `~/.cache/hrm-rs/torch-venv`.
pub fn venv_dir() -> Result<PathBuf> {
    if let Some(v) = std::env::var_os("HRM_TORCH_VENV") {
        return Ok(PathBuf::from(v));
    }
    let cache = match std::env::var_os("XDG_CACHE_HOME") {
        Some(c) => PathBuf::from(c),
        None => {
            let home =
                std::env::var_os("HOME").context("neither HRM_TORCH_VENV nor HOME is set")?;
            PathBuf::from(home).join(".cache")
        }
    };
    Ok(cache.join("hrm-rs").join("torch-venv"))
}

fn python_in(venv: &Path) -> PathBuf {
    venv.join("bin").join("python")
}

fn installed_torch_version(venv: &Path) -> Option<String> {
    let out = Command::new(python_in(venv))
        .args([
            "-c",
            "import importlib.metadata as m; print(m.version('torch'))",
        ])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Installs torch if needed and links `<repo>/.libtorch` to the venv's site-packages.
pub fn ensure_libtorch() -> Result<Libtorch> {
    let venv = venv_dir()?;
    match installed_torch_version(&venv) {
        Some(v) if v == TORCH_VERSION => {
            eprintln!("setup: torch {v} already installed in {}", venv.display());
        }
        found => {
            if let Some(v) = found {
                eprintln!(
                    "setup: found torch {v} in {}, need {TORCH_VERSION}",
                    venv.display()
                );
            }
            eprintln!(
                "setup: installing torch=={TORCH_VERSION} from PyPI into {} (about 2.7 GB download, 4.6 GB on disk; once per machine)",
                venv.display()
            );
            if !python_in(&venv).exists() {
                std::fs::create_dir_all(venv.parent().unwrap_or(Path::new(".")))?;
                crate::run_step(
                    Command::new("python3").args(["-m", "venv"]).arg(&venv),
                    "python3 -m venv",
                )
                .context("python3 with the venv module is required")?;
            }
            crate::run_step(
                Command::new(python_in(&venv)).args([
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "--progress-bar",
                    "off",
                    &format!("torch=={TORCH_VERSION}"),
                ]),
                "pip install torch",
            )?;
        }
    }
    let out = Command::new(python_in(&venv))
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ])
        .output()
        .context("asking the venv for its site-packages")?;
    let site_packages = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let lib = site_packages.join("torch").join("lib");
    if !lib.join("libtorch_cpu.so").exists() {
        bail!(
            "torch is installed but {} has no libtorch_cpu.so; remove {} and rerun `cargo xtask setup`",
            lib.display(),
            venv.display()
        );
    }
    link(&site_packages)?;
    link_nccl(&lib)?;
    Ok(Libtorch { site_packages })
}

/// Links `torch/lib/libnccl.so` to the wheel's `nvidia/nccl/lib/libnccl.so.2` when the wheel has one: the NCCL
/// backend (cudarc) opens `libnccl.so`, never `libnccl.so.2`, and `torch/lib` is on the binaries' rpath.
fn link_nccl(torch_lib: &Path) -> Result<()> {
    let target = Path::new("../../nvidia/nccl/lib/libnccl.so.2");
    let link = torch_lib.join("libnccl.so");
    if !torch_lib.join(target).exists() || link.symlink_metadata().is_ok() {
        return Ok(());
    }
    std::os::unix::fs::symlink(target, &link)
        .with_context(|| format!("linking {} -> {}", link.display(), target.display()))?;
    eprintln!("setup: linked {} -> {}", link.display(), target.display());
    Ok(())
}

/// Points `<repo>/.libtorch` at `site_packages` (what `.cargo/config.toml` reads as `LIBTORCH`).
fn link(site_packages: &Path) -> Result<()> {
    let link = crate::repo_root().join(".libtorch");
    if let Ok(current) = std::fs::read_link(&link) {
        if current == site_packages {
            return Ok(());
        }
    }
    if link.symlink_metadata().is_ok() {
        std::fs::remove_file(&link)
            .with_context(|| format!("removing the old {}", link.display()))?;
    }
    std::os::unix::fs::symlink(site_packages, &link)
        .with_context(|| format!("linking {} -> {}", link.display(), site_packages.display()))?;
    eprintln!(
        "setup: linked {} -> {}",
        link.display(),
        site_packages.display()
    );
    Ok(())
}

/// Makes sure headless Chromium is present for the report screenshot test (Debian's package).
pub fn ensure_chromium() -> Result<()> {
    if Path::new("/usr/bin/chromium").exists() {
        return Ok(());
    }
    eprintln!("setup: installing Debian's chromium for the report screenshot test");
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let sudo: &[&str] = if is_root { &[] } else { &["sudo"] };
    let apt = |args: &[&str]| -> Result<()> {
        let mut all: Vec<&str> = sudo.to_vec();
        all.push("apt-get");
        all.extend_from_slice(args);
        crate::run_step(
            Command::new(all[0])
                .args(&all[1..])
                .env("DEBIAN_FRONTEND", "noninteractive"),
            &all.join(" "),
        )
    };
    apt(&["update", "-qq"])?;
    apt(&["install", "-y", "-qq", "chromium"])?;
    Ok(())
}

/// `cargo xtask setup [--no-chromium]`.
pub fn run(chromium: bool) -> Result<Libtorch> {
    let lt = ensure_libtorch()?;
    if chromium {
        ensure_chromium()?;
    }
    eprintln!("setup: libtorch ready at {}", lt.lib_dir().display());
    Ok(lt)
}
