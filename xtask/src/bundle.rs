//! `cargo xtask gpu-bundle`: builds, on a CPU machine, a folder (< 60 MiB) that checks hrm-rs on a CUDA machine
//! without Rust: the release `hrm`, the release golden-parity, micro-batching and resume tests, the golden vectors
//! they read, a small built ARC dataset and `run.sh` (README, "The GPU check").

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::cargo;

/// Arguments of `cargo xtask gpu-bundle`.
#[derive(Debug, Default, clap::Args)]
pub struct Options {
    /// The bundle folder (default: `target/gpu-bundle`); replaced when it holds an earlier bundle.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The test executables the check runs on CUDA: (package, test target).
const TESTS: [(&str, &str); 5] = [
    ("hrm-model", "golden"),
    ("hrm-model", "trm_golden"),
    ("hrm-train", "micro_batch"),
    ("hrm-train", "data_parallel"),
    ("hrm-train", "run"),
];

/// The golden files those tests read (the HRM `tiny_*` and TRM `trm_*` sets, and the stablemax vectors).
const GOLDEN_FILES: [&str; 11] = [
    "stablemax.safetensors",
    "tiny_config.json",
    "tiny_weights.safetensors",
    "tiny_batch.safetensors",
    "tiny_buffers_nonpersistent.safetensors",
    "tiny_trace.safetensors",
    "trm_config.json",
    "trm_weights.safetensors",
    "trm_batch.safetensors",
    "trm_buffers_nonpersistent.safetensors",
    "trm_trace.safetensors",
];

/// The bundled dataset: `arc1-cpu`'s data (the ARC-AGI-1 evaluation tasks that fit 10x10) with 8 augmentations;
/// `run.sh` trains on it with the same `--set`.
const DATA_SETS: [&str; 1] = ["data.num_aug=8"];
const DATA_DIR: &str = "arc1-gpu-check";

/// The most the bundle may weigh.
pub const MAX_BYTES: u64 = 60 * 1024 * 1024;

/// The newest glibc and libstdc++ symbol versions the GPU machine provides (shared/docs/libtorch.md).
const MAX_GLIBC: [u32; 3] = [2, 34, 0];
const MAX_GLIBCXX: [u32; 3] = [3, 4, 29];

/// The check script, written as `<bundle>/run.sh`.
const RUN_SH: &str = include_str!("gpu_check.sh");

/// `cargo xtask gpu-bundle [--out DIR]`: builds the bundle and returns its folder.
pub fn run(o: &Options) -> Result<PathBuf> {
    let started = Instant::now();
    let out = o
        .out
        .clone()
        .unwrap_or_else(|| crate::repo_root().join("target").join("gpu-bundle"));
    crate::setup::ensure_libtorch()?;

    eprintln!("\n==> gpu-bundle: release build of hrm and of the test executables");
    let hrm = executables(
        cargo().args(["build", "--release", "-p", "hrm-cli", "--bin", "hrm"]),
        &["hrm"],
    )?
    .remove(0)
    .1;
    // One cargo run for every test target: the packages build in parallel.
    let mut cmd = cargo();
    cmd.args(["test", "--release", "--no-run"]);
    let mut packages: Vec<&str> = TESTS.iter().map(|(p, _)| *p).collect();
    packages.dedup();
    for p in packages {
        cmd.args(["-p", p]);
    }
    for (_, t) in TESTS {
        cmd.args(["--test", t]);
    }
    let names: Vec<&str> = TESTS.iter().map(|(_, t)| *t).collect();
    let tests = executables(&mut cmd, &names)?;

    eprintln!("\n==> gpu-bundle: assembling {}", out.display());
    let tmp = sibling(&out, "tmp");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).with_context(|| format!("removing {}", tmp.display()))?;
    }
    for sub in ["bin", "tests", "golden", "data"] {
        std::fs::create_dir_all(tmp.join(sub))?;
    }
    copy_binary(&hrm, &tmp.join("bin").join("hrm"))?;
    for (name, exe) in &tests {
        copy_binary(exe, &tmp.join("tests").join(name))?;
    }
    let golden = golden_dir()?;
    for f in GOLDEN_FILES {
        std::fs::copy(golden.join(f), tmp.join("golden").join(f))
            .with_context(|| format!("copying {}", golden.join(f).display()))?;
    }
    let data = tmp.join("data").join(DATA_DIR);
    let mut build = Command::new(tmp.join("bin").join("hrm"));
    build
        .args(["build-data", "--recipe", "arc1-cpu", "--data-dir"])
        .arg(raw_data()?)
        .arg("--out")
        .arg(&data);
    for s in DATA_SETS {
        build.args(["--set", s]);
    }
    crate::run_step(&mut build, "hrm build-data (the bundled arc1 dataset)")?;
    write_executable(&tmp.join("run.sh"), RUN_SH)?;
    write_manifest(&tmp, &tests)?;

    let bytes = folder_bytes(&tmp)?;
    if bytes >= MAX_BYTES {
        bail!(
            "the bundle {} weighs {:.1} MiB, over the {} MiB limit",
            tmp.display(),
            mib(bytes),
            MAX_BYTES >> 20
        );
    }
    remove_bundle(&out)?;
    std::fs::rename(&tmp, &out)
        .with_context(|| format!("renaming {} to {}", tmp.display(), out.display()))?;
    eprintln!(
        "gpu-bundle: {} ({:.1} MiB, built in {:.0} s). On a CUDA machine with torch 2.11: copy the folder, \
         then `bash {}/run.sh`",
        out.display(),
        mib(bytes),
        started.elapsed().as_secs_f64(),
        out.file_name().unwrap_or_default().to_string_lossy()
    );
    Ok(out)
}

/// Runs a cargo build with `--message-format=json` (its output shown as usual on stderr) and returns, for each
/// of `names`, the `executable` of its `compiler-artifact` line.
fn executables(cmd: &mut Command, names: &[&str]) -> Result<Vec<(String, PathBuf)>> {
    cmd.arg("--message-format=json-render-diagnostics");
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("could not start cargo")?;
    if !out.status.success() {
        bail!("cargo build failed ({})", out.status);
    }
    let found = artifact_executables(&String::from_utf8_lossy(&out.stdout));
    names
        .iter()
        .map(|n| {
            found
                .iter()
                .find(|(name, _)| name == n)
                .cloned()
                .with_context(|| format!("cargo reported no executable for `{n}`"))
        })
        .collect()
}

/// The (target name, executable) of every `compiler-artifact` line of cargo's JSON messages.
fn artifact_executables(json_lines: &str) -> Vec<(String, PathBuf)> {
    json_lines
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["reason"] == "compiler-artifact")
        .filter_map(|v| {
            let exe = v["executable"].as_str()?;
            let name = v["target"]["name"].as_str()?;
            Some((name.to_string(), PathBuf::from(exe)))
        })
        .collect()
}

/// `<parent>/.<name>.<suffix>`: a sibling to build in before the rename.
fn sibling(out: &Path, suffix: &str) -> PathBuf {
    let name = out.file_name().unwrap_or_default().to_string_lossy();
    out.with_file_name(format!(".{name}.{suffix}"))
}

/// Removes an earlier bundle at `dir`; refuses a folder that is not one (no `run.sh` and not empty).
fn remove_bundle(dir: &Path) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let empty = std::fs::read_dir(dir)?.next().is_none();
    if !empty && !dir.join("run.sh").is_file() {
        bail!(
            "{} exists and is not a GPU bundle (no run.sh): choose another --out",
            dir.display()
        );
    }
    std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))
}

/// Copies an executable, strips its symbols when `strip` is present, and checks the glibc it needs.
fn copy_binary(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to).with_context(|| format!("copying {}", from.display()))?;
    match Command::new("strip").arg(to).status() {
        Ok(s) if s.success() => {}
        Ok(s) => bail!("strip {} failed ({s})", to.display()),
        Err(_) => eprintln!("gpu-bundle: no `strip`: {} keeps its symbols", to.display()),
    }
    check_symbol_versions(to)
}

/// Fails when `exe` needs a newer glibc or libstdc++ than the GPU machine has (skipped without `objdump`).
fn check_symbol_versions(exe: &Path) -> Result<()> {
    let Ok(out) = Command::new("objdump").arg("-T").arg(exe).output() else {
        eprintln!(
            "gpu-bundle: no `objdump`: glibc versions of {} not checked",
            exe.display()
        );
        return Ok(());
    };
    let text = String::from_utf8_lossy(&out.stdout);
    for (prefix, max) in [("GLIBCXX_", MAX_GLIBCXX), ("GLIBC_", MAX_GLIBC)] {
        if let Some(v) = newest_version(&text, prefix) {
            if v > max {
                bail!(
                    "{} needs {prefix}{}, newer than the GPU machine's {prefix}{}",
                    exe.display(),
                    dotted(&v),
                    dotted(&max)
                );
            }
        }
    }
    Ok(())
}

/// The newest `<prefix>a.b.c` version named in `objdump -T` output.
fn newest_version(text: &str, prefix: &str) -> Option<[u32; 3]> {
    text.split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter_map(|w| w.strip_prefix(prefix))
        .filter_map(|v| {
            let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
            let mut out = [0; 3];
            for slot in &mut out {
                match parts.next() {
                    Some(Some(n)) => *slot = n,
                    Some(None) => return None,
                    None => break,
                }
            }
            Some(out)
        })
        .max()
}

fn dotted(v: &[u32; 3]) -> String {
    format!("{}.{}.{}", v[0], v[1], v[2])
}

/// The golden folder: `$HRM_GOLDEN_DIR`, else `../shared/golden` beside the clone (as the tests look).
fn golden_dir() -> Result<PathBuf> {
    let dir = std::env::var_os("HRM_GOLDEN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::repo_root().join("..").join("shared").join("golden"));
    if !dir.is_dir() {
        bail!(
            "golden folder {} not found: set HRM_GOLDEN_DIR",
            dir.display()
        );
    }
    Ok(dir)
}

/// The raw ARC data: `$HRM_DATA_DIR`, `../shared/datasets` beside the clone or `datasets/raw`, the first that
/// holds ARC-AGI-1.
fn raw_data() -> Result<PathBuf> {
    let root = crate::repo_root();
    let candidates = [
        std::env::var_os("HRM_DATA_DIR").map(PathBuf::from),
        Some(root.join("..").join("shared").join("datasets")),
        Some(root.join("datasets").join("raw")),
    ];
    let needs = crate::reproduce::raw_folders(hrm_grid::Task::Arc1);
    candidates
        .into_iter()
        .flatten()
        .find(|d| needs.iter().all(|n| d.join(n).is_dir()))
        .with_context(|| {
            format!(
                "no raw ARC-AGI-1 data ({}): set HRM_DATA_DIR, or run `cargo xtask reproduce-arc1 --dry-run` to \
                 see where it is looked for",
                needs.join(", ")
            )
        })
}

fn write_executable(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// `BUNDLE.txt`: what the bundle is, from which commit, and its files.
fn write_manifest(dir: &Path, tests: &[(String, PathBuf)]) -> Result<()> {
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(crate::repo_root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let mut text = format!(
        "hrm-rs GPU check bundle, commit {commit}, torch {}\n\
         Run: bash run.sh (README, \"The GPU check\"); results in ${{OUT:-./gpu-check-out}}.\n\
         Dataset: data/{DATA_DIR} = hrm build-data --recipe arc1-cpu --set {}\n\
         Tests: {}\n\nFiles:\n",
        hrm_arch::LIBTORCH_VERSION,
        DATA_SETS.join(" --set "),
        tests
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut files = Vec::new();
    list_files(dir, dir, &mut files)?;
    files.sort();
    for (rel, bytes) in files {
        text.push_str(&format!("{bytes:>10}  {rel}\n"));
    }
    std::fs::write(dir.join("BUNDLE.txt"), text)?;
    Ok(())
}

fn list_files(root: &Path, dir: &Path, out: &mut Vec<(String, u64)>) -> Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let meta = e.metadata()?;
        if meta.is_dir() {
            list_files(root, &e.path(), out)?;
        } else {
            let rel = e.path().strip_prefix(root)?.display().to_string();
            out.push((rel, meta.len()));
        }
    }
    Ok(())
}

/// The bytes of every file under `dir`.
pub fn folder_bytes(dir: &Path) -> Result<u64> {
    let mut files = Vec::new();
    list_files(dir, dir, &mut files)?;
    Ok(files.iter().map(|(_, b)| b).sum())
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executables_come_from_compiler_artifact_lines() {
        let lines = r#"{"reason":"compiler-artifact","target":{"name":"golden","kind":["test"]},"executable":"/t/golden-1"}
{"reason":"compiler-artifact","target":{"name":"hrm_model","kind":["lib"]},"executable":null}
{"reason":"build-finished","success":true}
not json"#;
        assert_eq!(
            artifact_executables(lines),
            [("golden".to_string(), PathBuf::from("/t/golden-1"))]
        );
    }

    #[test]
    fn the_newest_symbol_version_is_found() {
        let text = "0000 DF *UND* 0000 (GLIBC_2.2.5) memcpy\n0000 DF *UND* (GLIBC_2.34) __libc_start_main\n\
                    0000 DF *UND* (GLIBCXX_3.4.21) x\n0000 DF *UND* (GLIBCXX_3.4.9) y\n(GLIBC_PRIVATE) z";
        assert_eq!(newest_version(text, "GLIBC_"), Some([2, 34, 0]));
        assert_eq!(newest_version(text, "GLIBCXX_"), Some([3, 4, 21]));
        assert_eq!(newest_version("", "GLIBC_"), None);
    }

    #[test]
    fn the_script_runs_every_step_and_the_bundled_files_exist_in_it() {
        for needle in [
            "hrm info",
            "HRM_TEST_DTYPE=$dtype",
            "tests/micro_batch",
            "resume_from_a_kept_checkpoint_reproduces_the_metrics",
            "bench train-step",
            "--set data.num_aug=8",
            DATA_DIR,
            "train/lm_loss",
            "WORLD_SIZE=1",
            "bench all-reduce",
            "libnccl.so",
        ] {
            assert!(RUN_SH.contains(needle), "run.sh lacks {needle}");
        }
        for (_, t) in TESTS {
            assert!(RUN_SH.contains(&format!("tests/{t}")) || RUN_SH.contains("tests/$t"));
        }
        assert_eq!(DATA_SETS, ["data.num_aug=8"]);
    }
}
