//! Run checkpoints for exact resume: `checkpoints/step_<N>/` with the model, the optimizer state, the ACT carries,
//! the exploration RNG, the sampler state and the metrics so far, written atomically, plus the `latest` pointer.
//!
//! A checkpoint folder holds:
//! * `model.safetensors`: reference names, including `inner.H_init`, `inner.L_init` and the puzzle table;
//! * `ema.safetensors` (only with `train.ema`): the same state dict with the EMA shadow in place of every
//!   trainable parameter (the puzzle table as trained), loadable as a model; the raw weights stay in
//!   `model.safetensors`, so resume is exact;
//! * `optimizer.safetensors`: the AdamATan2 moments and step counts (sign-SGD has no state);
//! * `carries.safetensors`: micro-batch j's carry under `mb<j>.z_H`, `mb<j>.z_L`, ... (absent when no step ran);
//! * `model_config.json`: the resolved [`ModelConfig`];
//! * `state.bin`: [`CheckpointState`] (step, sampler cursor, RNG stream, counters), bincode 1.3 of
//!   `{ version: u32, state }` ([`STATE_FORMAT_VERSION`]); a wrong version or a truncated file is refused with
//!   an error naming the file;
//! * `metrics.jsonl`: a copy of the run's metrics up to this checkpoint;
//! * `SHA256SUMS`: the SHA-256 of every other file, in `sha256sum` format (`sha256sum -c SHA256SUMS` checks it
//!   by hand). Every load verifies the files it reads against it ([`verified_file`]), so a flipped bit is refused
//!   naming the file, and a resume falls back to the newest earlier checkpoint that verifies. Checkpoints written
//!   before this file existed load unverified.
//!
//! Everything is written into `step_<N>.tmp/`, which is renamed to `step_<N>/` when complete; `latest` (a text file
//! holding the folder name) is replaced atomically afterwards.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use hrm_data::SamplerState;
use hrm_model::{Carry, ModelConfig};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tch::{Device, Kind, Tensor};

use crate::run_error::RunError;
use crate::step::Trainer;

/// The folder of a run that holds its checkpoints.
pub const CHECKPOINTS_DIR: &str = "checkpoints";
/// The file in [`CHECKPOINTS_DIR`] naming the newest complete checkpoint.
pub const LATEST_FILE: &str = "latest";
/// The model weights of a checkpoint.
pub const MODEL_FILE: &str = "model.safetensors";
/// The AdamATan2 state of a checkpoint.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// The ACT carries of a checkpoint.
pub const CARRIES_FILE: &str = "carries.safetensors";
/// The resolved model configuration of a checkpoint.
pub const MODEL_CONFIG_FILE: &str = "model_config.json";
/// The EMA shadow weights of a checkpoint (runs with `train.ema`).
pub const EMA_FILE: &str = "ema.safetensors";
/// The loop state of a checkpoint (bincode, see [`STATE_FORMAT_VERSION`]).
pub const STATE_FILE: &str = "state.bin";
/// The version of the [`STATE_FILE`] layout; bump it whenever [`CheckpointState`] changes.
pub const STATE_FORMAT_VERSION: u32 = 2;
/// The metrics of the run up to the checkpoint.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// The SHA-256 of every other file of a checkpoint, `sha256sum` format.
pub const CHECKSUMS_FILE: &str = "SHA256SUMS";

/// The exact position of a `ChaCha8Rng` (seed, stream, word position).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RngState {
    /// The 32-byte seed.
    pub seed: [u8; 32],
    /// The stream number.
    pub stream: u64,
    /// The word position.
    pub word_pos: u128,
}

impl RngState {
    /// Captures the position of `rng`.
    pub fn capture(rng: &ChaCha8Rng) -> RngState {
        RngState {
            seed: rng.get_seed(),
            stream: rng.get_stream(),
            word_pos: rng.get_word_pos(),
        }
    }

    /// Rebuilds the generator at the captured position.
    pub fn restore(&self) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::from_seed(self.seed);
        rng.set_stream(self.stream);
        rng.set_word_pos(self.word_pos);
        rng
    }
}

/// The loop state saved with every checkpoint ([`STATE_FILE`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Optimizer steps taken (the step counter s of the last step).
    pub step: u64,
    /// The training sampler's state after the last consumed event.
    pub sampler: SamplerState,
    /// The ACT exploration RNG after the last step.
    pub rng: RngState,
    /// Sampler iterations (evaluation intervals) completed.
    pub iterations_done: u64,
    /// True for evaluation and final checkpoints, which are kept; rolling ones are removed when superseded.
    pub kept: bool,
    /// True when the run ended at this checkpoint (nothing left to resume).
    pub finished: bool,
    /// Training wall-clock seconds before this checkpoint (for `train.max_minutes` across resumes).
    pub elapsed_seconds: f64,
    /// Micro-batches per step (one carry each).
    pub micro_batches: i64,
    /// Lines of `metrics.jsonl` at this checkpoint.
    pub metrics_lines: usize,
    /// The training metrics since the last logged line (format version 2; empty when read from version 1).
    pub log_window: crate::step::LogWindow,
}

/// [`CheckpointState`] as format version 1 wrote it (before the log window), read and converted on resume.
#[derive(Deserialize)]
struct CheckpointStateV1 {
    step: u64,
    sampler: SamplerState,
    rng: RngState,
    iterations_done: u64,
    kept: bool,
    finished: bool,
    elapsed_seconds: f64,
    micro_batches: i64,
    metrics_lines: usize,
}

impl From<CheckpointStateV1> for CheckpointState {
    fn from(v: CheckpointStateV1) -> Self {
        CheckpointState {
            step: v.step,
            sampler: v.sampler,
            rng: v.rng,
            iterations_done: v.iterations_done,
            kept: v.kept,
            finished: v.finished,
            elapsed_seconds: v.elapsed_seconds,
            micro_batches: v.micro_batches,
            metrics_lines: v.metrics_lines,
            log_window: crate::step::LogWindow::default(),
        }
    }
}

/// The folder of checkpoint `step_<step>` of a run.
pub fn checkpoint_dir(run_dir: &Path, step: u64) -> PathBuf {
    run_dir.join(CHECKPOINTS_DIR).join(format!("step_{step}"))
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), RunError> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| RunError::json(path, e))?;
    text.push('\n');
    hrm_data::write_atomic(path, text.as_bytes())?;
    Ok(())
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, RunError> {
    let text = std::fs::read_to_string(path).map_err(RunError::io(path))?;
    serde_json::from_str(&text).map_err(|e| RunError::json(path, e))
}

/// The layout of [`STATE_FILE`]: the format version first, so that it can be checked before the rest is read.
#[derive(Serialize, Deserialize)]
struct StateFile {
    version: u32,
    state: CheckpointState,
}

/// Writes `state` to `path` as bincode, versioned, atomically.
pub fn write_state(path: &Path, state: &CheckpointState) -> Result<(), RunError> {
    let file = StateFile {
        version: STATE_FORMAT_VERSION,
        state: state.clone(),
    };
    let bytes = bincode::serialize(&file).map_err(|e| RunError::state_file(path, e))?;
    hrm_data::write_atomic(path, &bytes)?;
    Ok(())
}

/// Reads a state file written by [`write_state`] (or by format version 1, converted), refusing another format
/// version, a truncated file and trailing bytes.
pub fn read_state(path: &Path) -> Result<CheckpointState, RunError> {
    let bytes = std::fs::read(path).map_err(RunError::io(path))?;
    let version: u32 = bincode::deserialize(&bytes).map_err(|_| {
        RunError::state_file(
            path,
            format!("{} bytes, too short for a state file", bytes.len()),
        )
    })?;
    if version == 1 {
        let (_, v1): (u32, CheckpointStateV1) = bincode::deserialize(&bytes)
            .map_err(|e| RunError::state_file(path, format!("truncated or malformed: {e}")))?;
        return Ok(v1.into());
    }
    if version == 0 || version > STATE_FORMAT_VERSION + 1000 {
        // A real state file starts with a small format version; random bytes read as a huge one.
        return Err(RunError::state_file(
            path,
            format!(
                "not a checkpoint state file: it does not start with a format version (its first 4 bytes read \
                 as {version}; this build writes version {STATE_FORMAT_VERSION}); the file is damaged or is \
                 another file"
            ),
        ));
    }
    if version != STATE_FORMAT_VERSION {
        return Err(RunError::state_file(
            path,
            format!(
                "format version {version}, this build reads version {STATE_FORMAT_VERSION} \
                 (the checkpoint was written by another version of hrm)"
            ),
        ));
    }
    let file: StateFile = bincode::deserialize(&bytes)
        .map_err(|e| RunError::state_file(path, format!("truncated or malformed: {e}")))?;
    let size = bincode::serialized_size(&file).map_err(|e| RunError::state_file(path, e))?;
    if size != bytes.len() as u64 {
        return Err(RunError::state_file(
            path,
            format!("{} bytes after the state", bytes.len() as u64 - size),
        ));
    }
    Ok(file.state)
}

/// Writes a checkpoint of `trainer` at `state.step` into `run_dir/checkpoints/step_<N>/` atomically, points
/// `latest` at it, and removes superseded rolling checkpoints and stale temporary folders. Returns the folder.
pub fn save_checkpoint(
    run_dir: &Path,
    trainer: &Trainer,
    state: &CheckpointState,
) -> Result<PathBuf, RunError> {
    save_checkpoint_with(run_dir, trainer, state, trainer.carries())
}

/// [`save_checkpoint`] with the carries given: in a data-parallel run, every rank's carries gathered on rank 0
/// in global order (rank r's micro-batch j is carry r·k + j, and `state.micro_batches` counts them all).
pub fn save_checkpoint_with(
    run_dir: &Path,
    trainer: &Trainer,
    state: &CheckpointState,
    carries: &[Option<Carry>],
) -> Result<PathBuf, RunError> {
    let root = run_dir.join(CHECKPOINTS_DIR);
    std::fs::create_dir_all(&root).map_err(RunError::io(&root))?;
    let name = format!("step_{}", state.step);
    let final_dir = root.join(&name);
    let tmp = root.join(format!("{name}.tmp"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(RunError::io(&tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(RunError::io(&tmp))?;

    trainer.model().save_safetensors(&tmp.join(MODEL_FILE))?;
    trainer.optimizer().save(tmp.join(OPTIMIZER_FILE))?;
    let carries_in = carries;
    let mut carries: Vec<(String, Tensor)> = Vec::new();
    for (j, c) in carries_in.iter().enumerate() {
        if let Some(c) = c {
            for (n, t) in c.named_tensors() {
                let t = if t.kind() == Kind::Bool {
                    t.to_kind(Kind::Uint8)
                } else {
                    t
                };
                carries.push((format!("mb{j}.{n}"), t.to_device(Device::Cpu).contiguous()));
            }
        }
    }
    if !carries.is_empty() {
        let p = tmp.join(CARRIES_FILE);
        Tensor::write_safetensors(&carries, &p).map_err(RunError::tch(format!(
            "writing the carries to {}",
            p.display()
        )))?;
    }
    write_json(&tmp.join(MODEL_CONFIG_FILE), trainer.model().config())?;
    if let Some(ema) = trainer.ema() {
        ema.save(trainer.model(), &tmp.join(EMA_FILE))?;
    }
    write_state(&tmp.join(STATE_FILE), state)?;
    let metrics = run_dir.join(METRICS_FILE);
    if metrics.exists() {
        let dst = tmp.join(METRICS_FILE);
        std::fs::copy(&metrics, &dst).map_err(RunError::io(&dst))?;
    }
    write_checksums(&tmp)?;

    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir).map_err(RunError::io(&final_dir))?;
    }
    std::fs::rename(&tmp, &final_dir).map_err(RunError::io(&final_dir))?;
    hrm_data::write_atomic(&root.join(LATEST_FILE), format!("{name}\n").as_bytes())?;
    prune(&root, &name)?;
    Ok(final_dir)
}

/// The SHA-256 of a file, hex.
pub fn file_sha256(path: &Path) -> Result<String, RunError> {
    let mut f = std::fs::File::open(path).map_err(RunError::io(path))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(RunError::io(path))?;
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Writes [`CHECKSUMS_FILE`] for every file of the (temporary) checkpoint folder `dir`, sorted by name.
pub fn write_checksums(dir: &Path) -> Result<(), RunError> {
    let mut names: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(RunError::io(dir))? {
        let entry = entry.map_err(RunError::io(dir))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if name != CHECKSUMS_FILE && entry.path().is_file() {
            names.push(name);
        }
    }
    names.sort();
    let mut text = String::new();
    for name in names {
        let hash = file_sha256(&dir.join(&name))?;
        text.push_str(&format!("{hash}  {name}\n"));
    }
    hrm_data::write_atomic(&dir.join(CHECKSUMS_FILE), text.as_bytes())?;
    Ok(())
}

/// The recorded SHA-256 of each file of a checkpoint, from its [`CHECKSUMS_FILE`]; `None` when the checkpoint
/// has none (written before checksums were recorded). A malformed line is refused, naming the file and line.
fn read_checksums(dir: &Path) -> Result<Option<HashMap<String, String>>, RunError> {
    let path = dir.join(CHECKSUMS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(RunError::io(&path)(e)),
    };
    let mut sums = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let parsed = line.split_once("  ").filter(|(h, n)| {
            h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) && !n.is_empty()
        });
        let Some((hash, name)) = parsed else {
            return Err(RunError::state_file(
                &path,
                format!(
                    "line {} is not `<64 hex digits>  <file name>`: the checksum file is damaged",
                    i + 1
                ),
            ));
        };
        sums.insert(name.to_string(), hash.to_ascii_lowercase());
    }
    Ok(Some(sums))
}

/// `dir/name`, after checking its SHA-256 against the checkpoint's [`CHECKSUMS_FILE`]: a file that differs
/// from what was written (a flipped bit, a partial copy, an edit) is refused, naming it and both hashes. A
/// checkpoint without checksums (older versions) is taken as is; one whose checksums do not list `name` is
/// refused.
pub fn verified_file(dir: &Path, name: &str) -> Result<PathBuf, RunError> {
    let path = dir.join(name);
    let Some(sums) = read_checksums(dir)? else {
        return Ok(path);
    };
    let Some(expected) = sums.get(name) else {
        return Err(RunError::state_file(
            dir.join(CHECKSUMS_FILE),
            format!("{name} is not listed: the checkpoint was changed after it was written"),
        ));
    };
    let actual = file_sha256(&path)?;
    if &actual != expected {
        return Err(RunError::state_file(
            &path,
            format!(
                "its SHA-256 is {actual}, but {CHECKSUMS_FILE} recorded {expected} when the checkpoint was \
                 written: the file was damaged or changed since (use an earlier checkpoint, or retrain)"
            ),
        ));
    }
    Ok(path)
}

/// Removes rolling checkpoints other than `keep` and leftover `*.tmp` folders.
fn prune(root: &Path, keep: &str) -> Result<(), RunError> {
    let entries = std::fs::read_dir(root).map_err(RunError::io(root))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let path = entry.path();
        if !path.is_dir() || name == keep || !name.starts_with("step_") {
            continue;
        }
        let stale = name.ends_with(".tmp")
            || read_state(&path.join(STATE_FILE))
                .map(|s| !s.kept)
                .unwrap_or(false);
        if stale {
            std::fs::remove_dir_all(&path).map_err(RunError::io(&path))?;
        }
    }
    Ok(())
}

/// The folder of checkpoint `name` of a run: `latest` (or `None`) follows the `latest` file, `step_<N>` names
/// a folder; a path to an existing folder is taken as is.
pub fn resolve_checkpoint(run_dir: &Path, name: Option<&str>) -> Result<PathBuf, RunError> {
    let root = run_dir.join(CHECKPOINTS_DIR);
    let name = match name {
        None | Some("latest") => {
            let latest = root.join(LATEST_FILE);
            match std::fs::read_to_string(&latest) {
                Ok(text) => text.trim().to_string(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(RunError::config(
                        "checkpoint",
                        format!(
                            "{} does not exist: the run has no complete checkpoint yet (start it again)",
                            latest.display()
                        ),
                    ))
                }
                Err(e) => return Err(RunError::io(&latest)(e)),
            }
        }
        Some(n) if Path::new(n).is_dir() => return Ok(PathBuf::from(n)),
        Some(n) => n.to_string(),
    };
    let dir = root.join(&name);
    if !dir.join(STATE_FILE).is_file() {
        return Err(RunError::config(
            "checkpoint",
            format!(
                "{} is not a complete checkpoint folder (no {STATE_FILE})",
                dir.display()
            ),
        ));
    }
    Ok(dir)
}

/// Reads the [`STATE_FILE`] of a checkpoint folder.
pub fn load_state(dir: &Path) -> Result<CheckpointState, RunError> {
    read_state(&verified_file(dir, STATE_FILE)?)
}

/// Reads `model_config.json` of a checkpoint folder.
pub fn load_model_config(dir: &Path) -> Result<ModelConfig, RunError> {
    let config: ModelConfig = read_json(&verified_file(dir, MODEL_CONFIG_FILE)?)?;
    config.validate()?;
    Ok(config)
}

/// Checks that the configuration a checkpoint was trained with equals `expected`, naming the first field
/// that differs.
pub fn check_model_config(dir: &Path, expected: &ModelConfig) -> Result<(), RunError> {
    let saved = load_model_config(dir)?;
    let a = serde_json::to_value(&saved).map_err(|e| RunError::json(dir, e))?;
    let b = serde_json::to_value(expected).map_err(|e| RunError::json(dir, e))?;
    if let (Some(a), Some(b)) = (a.as_object(), b.as_object()) {
        for (k, va) in a {
            let vb = b.get(k).cloned().unwrap_or(serde_json::Value::Null);
            if *va != vb {
                return Err(RunError::mismatch(
                    &format!("model config `{k}`"),
                    format!("checkpoint {}", dir.join(MODEL_CONFIG_FILE).display()),
                    va,
                    "the recipe and dataset",
                    vb,
                ));
            }
        }
    }
    Ok(())
}

/// Loads the model weights, the EMA shadow (when `trainer` keeps one), the optimizer state, the carries and the
/// step counter of checkpoint `dir` into `trainer`, returning the loop state.
///
/// A checkpoint holds the carries of all W·k micro-batches of the global batch (W ranks of k micro-batches;
/// `state.micro_batches` = W·k); rank r loads carries r·k .. (r+1)·k. So a run resumes exactly at the same
/// world size, and also at any other with the same W·k (the global batch splits into the same micro-batches);
/// any other world size is refused, naming both splits.
pub fn load_checkpoint(dir: &Path, trainer: &mut Trainer) -> Result<CheckpointState, RunError> {
    let state = load_state(dir)?;
    check_model_config(dir, trainer.model().config())?;
    let (rank, world) = (trainer.rank(), trainer.world_size());
    let k = trainer.config().micro_batches;
    if state.micro_batches != world as i64 * k {
        return Err(RunError::mismatch(
            "micro-batches of the global batch (ranks x micro-batches per rank)",
            format!("checkpoint {}", dir.join(STATE_FILE).display()),
            state.micro_batches,
            "this run (the world size x train.micro_batch_size's split)",
            format!("{world} x {k} = {}", world as i64 * k),
        ));
    }
    let device = trainer.model().device();
    trainer
        .model_mut()
        .load_safetensors(&verified_file(dir, MODEL_FILE)?)?;
    if let Some(ema) = trainer.ema_mut() {
        ema.load(&verified_file(dir, EMA_FILE)?)?;
    }
    trainer
        .optimizer_mut()
        .load(verified_file(dir, OPTIMIZER_FILE)?, device)?;
    let carries_path = dir.join(CARRIES_FILE);
    let mut carries: Vec<Option<Carry>> = (0..k).map(|_| None).collect();
    if carries_path.is_file() {
        verified_file(dir, CARRIES_FILE)?;
        let tensors: HashMap<String, Tensor> = Tensor::read_safetensors(&carries_path)
            .map_err(RunError::tch(format!("reading {}", carries_path.display())))?
            .into_iter()
            .map(|(n, t)| (n, t.to_device(device)))
            .collect();
        for (j, slot) in carries.iter_mut().enumerate() {
            let prefix = format!("mb{}.", rank as i64 * k + j as i64);
            if tensors.keys().any(|k| k.starts_with(&prefix)) {
                *slot = Some(Carry::from_named_tensors(&tensors, &prefix)?);
            }
        }
    }
    trainer.set_carries(carries)?;
    trainer.set_step_count(state.step);
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> CheckpointState {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        rng.set_stream(7);
        rng.set_word_pos(12_345);
        CheckpointState {
            step: 42,
            sampler: SamplerState {
                iteration: 3,
                position: 17,
                batches_in_iteration: 2,
            },
            rng: RngState::capture(&rng),
            iterations_done: 3,
            kept: true,
            finished: false,
            elapsed_seconds: 1.25,
            micro_batches: 2,
            metrics_lines: 99,
            log_window: crate::step::LogWindow {
                optimizer_steps: 3,
                sums: hrm_model::ActMetrics {
                    count: 5.0,
                    q_continue_loss: Some(0.25),
                    ..Default::default()
                },
            },
        }
    }

    #[test]
    fn state_file_round_trips_and_refuses_other_versions_and_truncation() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(STATE_FILE);
        let s = state();
        write_state(&path, &s).unwrap();
        assert_eq!(read_state(&path).unwrap(), s);
        let mut a = s.rng.restore();
        let mut b = ChaCha8Rng::seed_from_u64(5);
        b.set_stream(7);
        b.set_word_pos(12_345);
        assert_eq!(
            rand::RngCore::next_u64(&mut a),
            rand::RngCore::next_u64(&mut b)
        );

        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let e = read_state(&path).unwrap_err().to_string();
        assert!(e.contains("truncated") && e.contains(STATE_FILE), "{e}");
        std::fs::write(&path, &bytes[..2]).unwrap();
        let e = read_state(&path).unwrap_err().to_string();
        assert!(e.contains("too short") && e.contains(STATE_FILE), "{e}");
        let mut other = bytes.clone();
        other[..4].copy_from_slice(&(STATE_FORMAT_VERSION + 1).to_le_bytes());
        std::fs::write(&path, &other).unwrap();
        let e = read_state(&path).unwrap_err().to_string();
        let want = format!("format version {}", STATE_FORMAT_VERSION + 1);
        assert!(e.contains(&want) && e.contains(STATE_FILE), "{e}");
        std::fs::write(&path, b"this is not a checkpoint at all").unwrap();
        let e = read_state(&path).unwrap_err().to_string();
        assert!(e.contains("not a checkpoint state file"), "{e}");
        let mut longer = bytes;
        longer.push(0);
        std::fs::write(&path, &longer).unwrap();
        let e = read_state(&path).unwrap_err().to_string();
        assert!(e.contains("1 bytes after the state"), "{e}");
    }
}

#[cfg(test)]
mod checksum_tests {
    use super::*;

    #[test]
    fn checksums_catch_a_changed_file_an_unlisted_one_and_a_damaged_list() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::write(dir.join("a.bin"), b"weights").unwrap();
        std::fs::write(dir.join("b.json"), b"{}").unwrap();
        // No checksum file: older checkpoints load unverified.
        assert_eq!(verified_file(dir, "a.bin").unwrap(), dir.join("a.bin"));
        write_checksums(dir).unwrap();
        let sums = std::fs::read_to_string(dir.join(CHECKSUMS_FILE)).unwrap();
        assert_eq!(sums.lines().count(), 2, "{sums}");
        assert!(sums.ends_with("  b.json\n"), "{sums}");
        verified_file(dir, "a.bin").unwrap();
        std::fs::write(dir.join("a.bin"), b"weightz").unwrap();
        let e = verified_file(dir, "a.bin").unwrap_err().to_string();
        assert!(e.contains("a.bin") && e.contains("SHA-256"), "{e}");
        std::fs::write(dir.join("c.bin"), b"new").unwrap();
        let e = verified_file(dir, "c.bin").unwrap_err().to_string();
        assert!(e.contains("c.bin is not listed"), "{e}");
        std::fs::write(dir.join(CHECKSUMS_FILE), "zz  a.bin\n").unwrap();
        let e = verified_file(dir, "b.json").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains(CHECKSUMS_FILE), "{e}");
    }
}
