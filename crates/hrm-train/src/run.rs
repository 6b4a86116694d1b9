//! The training loop of spec 7 driven by a recipe: model config resolution, the run folder, evaluation,
//! metrics logging, checkpoints every evaluation plus a rolling one, caps, the non-finite guard and exact resume.
//! Follows the reference's `pretrain.py`.
//!
//! A run folder holds:
//! * `recipe.toml`: the resolved recipe with its overrides (a resume must match it);
//! * `env.json`: [`RunEnv`] (git commit, libtorch, device, dtype, seed, host, command line, dataset, resumes);
//! * `metrics.jsonl`: one JSON object per line with `"step"` and either `train/...` values (every
//!   `train.log_every` steps) or `eval/...` values (every evaluation; with `train.ema` they are the EMA weights');
//! * `checkpoints/step_<N>/` and `checkpoints/latest` (see [`crate::checkpoint`]);
//! * `predictions/<checkpoint>-<split>/`, written by `hrm predict` ([`crate::predict`]).
//!
//! [`train`] runs in named phases over one run state: `Inputs::load`, `open_run` (new or resumed), then
//! `Run::train_batch` / `Run::end_iteration` per sampler event until `Run::stop_condition`, and `Run::finish`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hrm_data::sampler::SampleEvent;
use hrm_data::{
    DatasetMetadata, EvalBatches, Prefetcher, SamplerConfig, SamplerState, SplitData, TrainSampler,
};
use hrm_model::{act_loss_head, ActMetrics, Carry, Model, ModelConfig};
use hrm_recipe::{Recipe, Task, TrainSection};
use indicatif::ProgressBar;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::checkpoint::{
    load_checkpoint, resolve_checkpoint, save_checkpoint, save_checkpoint_with, CheckpointState,
    RngState, CHECKPOINTS_DIR, METRICS_FILE, STATE_FILE,
};
use crate::memory::{check_batch_memory, check_model_memory};
use crate::optim::AdamATan2Config;
use crate::progress::{self, Display};
use crate::run_error::RunError;
use crate::schedule::total_steps;
use crate::step::{LogWindow, StepConfig, StepReport, Trainable, Trainer};
use crate::tensorboard::EventWriter;

/// The resolved recipe stored in a run folder.
pub const RECIPE_FILE: &str = "recipe.toml";
/// The environment record of a run folder.
pub const ENV_FILE: &str = "env.json";
/// The libtorch version the workspace builds against (defined once, in `hrm-arch`).
pub use hrm_arch::LIBTORCH_VERSION;
/// The stream of the exploration RNG (seeded from `train.seed`), distinct from the sampler's streams.
const EXPLORATION_STREAM: u64 = 7;

/// The vocabulary size the datasets of a task family have.
pub fn task_vocab_size(task: Task) -> u32 {
    task.vocab_size() as u32
}

/// The sequence length a recipe's datasets have: canvas² for ARC, 81 for Sudoku, 900 for Maze.
pub fn task_seq_len(recipe: &Recipe) -> u32 {
    recipe.data.task.seq_len(recipe.data.canvas) as u32
}

/// The model configuration of a recipe on a dataset: the architecture from `recipe.arch`, the vocabulary,
/// sequence length and identifier count from the train split's `dataset.json`, the batch from
/// `recipe.train`; `forward_dtype = "auto"` is bf16 on CUDA and f32 on the CPU.
pub fn resolve_model_config(
    recipe: &Recipe,
    meta: &DatasetMetadata,
    device: Device,
) -> Result<ModelConfig, RunError> {
    let a = &recipe.arch;
    let forward_dtype = forward_dtype(recipe, device);
    let config = ModelConfig {
        batch_size: recipe.train.global_batch_size as i64,
        seq_len: i64::from(meta.seq_len),
        puzzle_emb_ndim: a.puzzle_emb_ndim,
        num_puzzle_identifiers: i64::from(meta.num_puzzle_identifiers),
        vocab_size: i64::from(meta.vocab_size),
        h_cycles: a.h_cycles,
        l_cycles: a.l_cycles,
        h_layers: a.h_layers,
        l_layers: a.l_layers,
        hidden_size: a.hidden_size,
        expansion: a.expansion,
        num_heads: a.num_heads,
        pos_encodings: a.pos_encodings,
        rms_norm_eps: a.rms_norm_eps,
        rope_theta: a.rope_theta,
        halt_max_steps: a.halt_max_steps,
        halt_exploration_prob: a.halt_exploration_prob,
        forward_dtype,
        loss_type: a.loss_type,
        name: a.name,
        puzzle_emb_len: a.puzzle_emb_len,
        mlp_t: a.mlp_t,
        no_act_continue: a.no_act_continue,
    };
    config.validate()?;
    Ok(config)
}

/// The forward dtype of a recipe on a device: `arch.forward_dtype`, with `auto` resolved to bf16 on CUDA and f32
/// on the CPU. The one place `auto` is resolved (training and `hrm predict`).
pub fn forward_dtype(recipe: &Recipe, device: Device) -> hrm_model::ForwardDtype {
    recipe.arch.forward_dtype.resolve(device.is_cuda())
}

/// Checks that a dataset fits a recipe: the train split's vocabulary and sequence length match the recipe's task
/// (and ARC canvas), and the test split agrees with the train split on vocabulary, sequence length and identifier count.
pub fn check_dataset(
    recipe: &Recipe,
    dataset_dir: &Path,
    train: &DatasetMetadata,
    test: &DatasetMetadata,
) -> Result<(), RunError> {
    let train_file = dataset_dir.join("train/dataset.json").display().to_string();
    let test_file = dataset_dir.join("test/dataset.json").display().to_string();
    let task = recipe.data.task.as_str();
    let from_recipe = [
        (
            "vocab_size",
            task_vocab_size(recipe.data.task),
            train.vocab_size,
            format!("recipe `{}` (task {task})", recipe.name),
        ),
        (
            "seq_len",
            task_seq_len(recipe),
            train.seq_len,
            format!(
                "recipe `{}` (task {task}, data.canvas {})",
                recipe.name, recipe.data.canvas
            ),
        ),
    ];
    for (what, want, got, source) in from_recipe {
        if want != got {
            return Err(RunError::mismatch(what, source, want, &train_file, got));
        }
    }
    let pairs = [
        ("vocab_size", train.vocab_size, test.vocab_size),
        ("seq_len", train.seq_len, test.seq_len),
        (
            "num_puzzle_identifiers",
            train.num_puzzle_identifiers,
            test.num_puzzle_identifiers,
        ),
    ];
    for (what, a, b) in pairs {
        if a != b {
            return Err(RunError::mismatch(what, &train_file, a, &test_file, b));
        }
    }
    Ok(())
}

/// The step settings of a recipe for a run of `total` nominal steps.
pub fn step_config(recipe: &Recipe, total: u64) -> StepConfig {
    let t = &recipe.train;
    let micro_batches = t
        .global_batch_size
        .checked_div(t.micro_batch_size)
        .map_or(1, |k| k as i64);
    StepConfig {
        global_batch_size: t.global_batch_size as i64,
        micro_batches,
        lr: t.lr,
        puzzle_emb_lr: t.puzzle_emb_lr,
        puzzle_emb_weight_decay: t.puzzle_emb_weight_decay,
        adam: AdamATan2Config {
            beta1: t.beta1,
            beta2: t.beta2,
            weight_decay: t.weight_decay,
        },
        lr_warmup_steps: t.lr_warmup_steps as u64,
        lr_min_ratio: t.lr_min_ratio,
        total_steps: total,
    }
}

/// [`step_config`] for one rank of `world` data-parallel ranks: `train.micro_batch_size` stays the sequences of
/// one forward pass on one device, so each rank splits its `global_batch_size / world` sequences into
/// micro-batches of that size. The global batch then splits into the same micro-batches at every world size
/// that divides it, and a checkpoint resumes at any of them.
pub fn step_config_for_world(recipe: &Recipe, total: u64, world: usize) -> StepConfig {
    let mut c = step_config(recipe, total);
    if world > 1 {
        let t = &recipe.train;
        let local = t.global_batch_size / world;
        c.micro_batches = local
            .checked_div(t.micro_batch_size)
            .map_or(1, |k| k.max(1) as i64);
    }
    c
}

/// Parses `cpu`, `cuda`, `cuda:N` or `auto` (CUDA device 0 when available, else the CPU).
pub fn parse_device(s: &str) -> Result<Device, RunError> {
    match s {
        "cpu" => Ok(Device::Cpu),
        "auto" => Ok(Device::cuda_if_available()),
        "cuda" | "cuda:0" => {
            if tch::Cuda::is_available() {
                Ok(Device::Cuda(0))
            } else {
                Err(RunError::config(
                    "--device",
                    "CUDA was asked for but is not available",
                ))
            }
        }
        other => match other
            .strip_prefix("cuda:")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) if tch::Cuda::is_available() && (n as i64) < tch::Cuda::device_count() => {
                Ok(Device::Cuda(n))
            }
            Some(n) => {
                let count = match tch::Cuda::is_available() {
                    true => tch::Cuda::device_count(),
                    false => 0,
                };
                Err(RunError::config(
                    "--device",
                    format!(
                        "`{other}` asks for CUDA device {n}, but this machine has {count} CUDA device{} \
                         (numbered from 0); use {}",
                        if count == 1 { "" } else { "s" },
                        if count > 0 { "cuda:0 or cpu" } else { "cpu" }
                    ),
                ))
            }
            None => Err(RunError::config(
                "--device",
                format!("`{other}` is not cpu, cuda, cuda:N (an available device) or auto"),
            )),
        },
    }
}

/// The name of a device as written in `env.json`.
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(n) => format!("cuda:{n}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// What a run folder records about where and how it ran (`env.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunEnv {
    /// `git rev-parse HEAD` of the working directory, when available.
    pub git_commit: Option<String>,
    /// The libtorch version.
    pub libtorch: String,
    /// The device, e.g. `cpu` or `cuda:0`.
    pub device: String,
    /// The forward dtype (`float32` or `bfloat16`).
    pub dtype: String,
    /// `train.seed`.
    pub seed: u64,
    /// The machine's host name, when known.
    pub hostname: Option<String>,
    /// Start time, seconds since the Unix epoch.
    pub start_time_unix: u64,
    /// The command line.
    pub command_line: Vec<String>,
    /// The dataset folder.
    pub dataset: PathBuf,
    /// The command lines of later resumes.
    #[serde(default)]
    pub resumes: Vec<Vec<String>>,
    /// The fingerprint of the dataset at the start ([`hrm_data::layout::dataset_fingerprint`]); resume and
    /// `hrm predict` refuse a dataset that differs (absent in runs made before it was recorded).
    #[serde(default)]
    pub dataset_fingerprint: Option<String>,
    /// Settings changed when resuming ([`extend_run`]), oldest first.
    #[serde(default)]
    pub changes: Vec<SettingsChange>,
    /// For a run made by `hrm import` from an official PyTorch run folder: where its weights came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported: Option<ImportRecord>,
    /// The libtorch CPU threads the run started with (a resume uses them again unless `--threads` says
    /// otherwise, since the thread count changes the floating-point sums and so the run). Absent in runs
    /// recorded before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
}

/// One `hrm train --resume <run> --set ...`: when, and what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingsChange {
    /// Seconds since the Unix epoch.
    pub unix_time: u64,
    /// The `section.key=value` overrides applied to the stored recipe.
    pub sets: Vec<String>,
}

/// The recipe keys `--set` may change when resuming: they bound or pace the run without changing what the
/// checkpoint's state means.
pub const RESUMABLE_KEYS: [&str; 6] = [
    "train.max_steps",
    "train.max_minutes",
    "train.epochs",
    "train.log_every",
    "train.checkpoint_every_steps",
    "train.checkpoint_every_eval",
];

/// Why a key cannot change when resuming (for the error).
fn why_not_resumable(key: &str) -> &'static str {
    match key {
        "train.eval_interval" => {
            "it is the length of a sampler iteration, and the checkpoint's sampler position counts inside the \
             current one; change train.epochs to lengthen the run"
        }
        k if k.starts_with("data.") => "the dataset was built and the puzzle table sized from it",
        k if k.starts_with("arch.") => "the checkpoint's weights have this architecture",
        k if k.starts_with("eval.") => "it is fixed for the run so that its evaluations compare",
        _ => "it changes what the steps so far computed (optimizer, schedule, batch or seed)",
    }
}

/// Applies `sets` to a stored run's recipe for a resume (`hrm train --resume <run> --set ...`): only
/// [`RESUMABLE_KEYS`] may change; any other key is refused with the reason. Rewrites `recipe.toml` and records
/// the change in `env.json`, holding the run's lock; returns the new recipe.
pub fn extend_run(run_dir: &Path, sets: &[String]) -> Result<Recipe, RunError> {
    let _lock = RunLock::acquire(run_dir)?;
    let recipe = extended_recipe(run_dir, sets)?;
    let path = run_dir.join(RECIPE_FILE);
    let mut env = load_env(run_dir)?;
    hrm_data::write_atomic(&path, recipe.to_toml().as_bytes())?;
    env.changes.push(SettingsChange {
        unix_time: unix_now(),
        sets: sets.to_vec(),
    });
    write_env(run_dir, &env)?;
    Ok(recipe)
}

/// The recipe [`extend_run`] would make, checked the same way, without writing anything: what the ranks other
/// than 0 of a data-parallel resume use (applying the same `--set` twice gives the same recipe, so it does not
/// matter whether rank 0 has rewritten `recipe.toml` yet).
pub fn extended_recipe(run_dir: &Path, sets: &[String]) -> Result<Recipe, RunError> {
    for spec in sets {
        let key = spec
            .split_once('=')
            .map_or(spec.as_str(), |(k, _)| k.trim());
        if !RESUMABLE_KEYS.contains(&key) {
            return Err(RunError::config(
                "--set",
                format!(
                    "`{key}` cannot change in a run being resumed: {}. Keys that can: {}",
                    why_not_resumable(key),
                    RESUMABLE_KEYS.join(", ")
                ),
            ));
        }
    }
    let path = run_dir.join(RECIPE_FILE);
    let text = std::fs::read_to_string(&path).map_err(RunError::io(&path))?;
    Ok(Recipe::from_toml_str(
        &path.display().to_string(),
        &text,
        sets,
    )?)
}

pub(crate) fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

pub(crate) fn hostname() -> Option<String> {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Reads a run folder's `env.json`.
pub fn load_env(run_dir: &Path) -> Result<RunEnv, RunError> {
    let path = run_dir.join(ENV_FILE);
    let text = std::fs::read_to_string(&path).map_err(RunError::io(&path))?;
    serde_json::from_str(&text).map_err(|e| RunError::json(&path, e))
}

/// Refuses a path that is not a run folder, saying what it is: missing, not a folder, or a folder without
/// the `recipe.toml` that `hrm train` and `hrm import` write first.
pub fn check_run_folder(run_dir: &Path) -> Result<(), RunError> {
    let what = if !run_dir.exists() {
        "does not exist"
    } else if !run_dir.is_dir() {
        "is a file, not a run folder"
    } else if !run_dir.join(RECIPE_FILE).exists() {
        "is not a run folder: it has no recipe.toml"
    } else {
        return Ok(());
    };
    Err(RunError::config(
        "--run",
        format!(
            "{} {what} (a run folder is what `hrm train` or `hrm import` writes: recipe.toml, env.json and \
             checkpoints/)",
            run_dir.display()
        ),
    ))
}

/// Reads a run folder's `recipe.toml`.
pub fn load_run_recipe(run_dir: &Path) -> Result<Recipe, RunError> {
    check_run_folder(run_dir)?;
    let path = run_dir.join(RECIPE_FILE);
    let text = std::fs::read_to_string(&path).map_err(RunError::io(&path))?;
    Ok(Recipe::from_toml_str(
        &path.display().to_string(),
        &text,
        &[],
    )?)
}

/// How to start (or resume) a run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The resolved recipe (with overrides applied).
    pub recipe: Recipe,
    /// The dataset folder (with `train/`, `test/`, `identifiers.json`).
    pub dataset_dir: PathBuf,
    /// The run folder (created for a new run; must hold a checkpoint when resuming).
    pub run_dir: PathBuf,
    /// The device.
    pub device: Device,
    /// Continue from the run folder's `latest` checkpoint instead of starting afresh.
    pub resume: bool,
    /// The command line, recorded in `env.json`.
    pub command_line: Vec<String>,
    /// Show progress on stderr: a bar on a terminal, a plain line with the ETA every 30 s otherwise.
    pub progress: bool,
    /// Sleep this long after every step (only to let tests interrupt a tiny run mid-way; zero otherwise).
    pub throttle: Duration,
    /// The data-parallel world this process is a rank of (`None`: a single process);
    /// [`crate::world::DistOptions::from_env`] reads it from torchrun's or Slurm's variables.
    pub dist: Option<crate::world::DistOptions>,
}

pub use crate::stop::StopReason;

/// Where an imported run's weights came from (`env.json`'s `imported`, written by `hrm import`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportRecord {
    /// The checkpoint file.
    pub source: PathBuf,
    /// Its SHA-256 (hex).
    pub sha256: String,
    /// The `all_config.yaml` read.
    pub config: PathBuf,
    /// Its SHA-256 (hex).
    pub config_sha256: String,
    /// The step in the file name (`step_<N>`), when it has one.
    pub source_step: Option<u64>,
    /// What the configuration mapping decided or left out.
    pub notes: Vec<String>,
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// The last step counter value.
    pub step: u64,
    /// The nominal total steps (`total_steps(...)`).
    pub total_steps: u64,
    /// Why it stopped.
    pub stop: StopReason,
    /// Steps taken in this process.
    pub steps_this_session: u64,
    /// Seconds spent in training steps in this process (evaluation and checkpoints excluded).
    pub train_seconds: f64,
    /// The last evaluation's metrics (`eval/...`), if any.
    pub last_eval: Option<BTreeMap<String, f64>>,
    /// The final checkpoint folder.
    pub checkpoint: PathBuf,
}

impl RunSummary {
    /// Training steps per second in this process.
    pub fn steps_per_second(&self) -> f64 {
        if self.train_seconds > 0.0 {
            self.steps_this_session as f64 / self.train_seconds
        } else {
            0.0
        }
    }
}

/// How [`MetricsLog::open`] starts `metrics.jsonl`.
enum MetricsStart<'p> {
    /// An empty file (a new run).
    Empty,
    /// The first `lines` lines of `copy` (a checkpoint's copy of the log, when resuming).
    CopyOf {
        /// The checkpoint's `metrics.jsonl`.
        copy: &'p Path,
        /// Lines of the log at the checkpoint.
        lines: usize,
    },
}

/// Appends JSON lines to `metrics.jsonl`, counting them, and the same scalars to the run's TensorBoard events
/// file ([`crate::tensorboard`]).
struct MetricsLog {
    path: PathBuf,
    file: std::fs::File,
    lines: usize,
    events: EventWriter,
}

/// The step and the numeric values of a `metrics.jsonl` line (for the events file).
fn line_scalars(line: &str) -> Option<(u64, Vec<(String, f64)>)> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let obj = v.as_object()?;
    let step = obj.get("step")?.as_u64()?;
    let values = obj
        .iter()
        .filter(|(k, _)| *k != "step")
        .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
        .collect();
    Some((step, values))
}

impl MetricsLog {
    /// Replaces the file at `path` with its starting content (see [`MetricsStart`]) and opens it for appending.
    fn open(path: &Path, start: MetricsStart<'_>) -> Result<MetricsLog, RunError> {
        let (lines, scalars) = match start {
            MetricsStart::CopyOf { copy, lines } => {
                let text = if copy.is_file() {
                    std::fs::read_to_string(copy).map_err(RunError::io(copy))?
                } else {
                    String::new()
                };
                let kept: Vec<&str> = text.lines().take(lines).collect();
                let mut body = kept.join("\n");
                if !body.is_empty() {
                    body.push('\n');
                }
                hrm_data::write_atomic(path, body.as_bytes())?;
                let scalars: Vec<_> = kept.iter().filter_map(|l| line_scalars(l)).collect();
                (kept.len(), scalars)
            }
            MetricsStart::Empty => {
                hrm_data::write_atomic(path, b"")?;
                (0, Vec::new())
            }
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        let events = EventWriter::recreate(dir, &scalars).map_err(RunError::io(dir))?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(RunError::io(path))?;
        Ok(MetricsLog {
            path: path.to_path_buf(),
            file,
            lines,
            events,
        })
    }

    /// Adds scalars to the events file only (values that differ between identical runs, such as speed).
    fn write_events_only(&mut self, step: u64, values: &[(String, f64)]) -> Result<(), RunError> {
        self.events
            .add_scalars(step, values)
            .map_err(RunError::io(self.events.path()))
    }

    fn write(&mut self, step: u64, values: &[(String, f64)]) -> Result<(), RunError> {
        let mut obj = serde_json::Map::new();
        obj.insert("step".into(), serde_json::Value::from(step));
        for (k, v) in values {
            let v = serde_json::Number::from_f64(*v)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null);
            obj.insert(k.clone(), v);
        }
        let mut line = serde_json::Value::Object(obj).to_string();
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|_| self.file.flush())
            .map_err(RunError::io(&self.path))?;
        self.lines += 1;
        self.events
            .add_scalars(step, values)
            .map_err(RunError::io(self.events.path()))?;
        Ok(())
    }
}

/// The logged values of an evaluation (spec 6.3): every metric sum divided by the number of counted sequences,
/// except `eval/count`, which is that number itself (the reference drops it; a count of 1.0 would say nothing).
fn eval_values(m: &ActMetrics) -> Vec<(String, f64)> {
    let c = m.count.max(1.0);
    let mut v = vec![
        ("eval/count".to_string(), m.count),
        ("eval/accuracy".to_string(), m.accuracy / c),
        ("eval/exact_accuracy".to_string(), m.exact_accuracy / c),
        ("eval/q_halt_accuracy".to_string(), m.q_halt_accuracy / c),
        ("eval/steps".to_string(), m.steps / c),
        ("eval/lm_loss".to_string(), m.lm_loss / c),
        ("eval/q_halt_loss".to_string(), m.q_halt_loss / c),
    ];
    if let Some(q) = m.q_continue_loss {
        v.push(("eval/q_continue_loss".to_string(), q / c));
    }
    v
}

/// One evaluation batch after `halt_max_steps` segments of [`Model::forward_eval`].
#[derive(Debug)]
pub struct EvalBatchResult {
    /// Index of the batch's first row in the split.
    pub first_row: usize,
    /// Real rows in the batch (the rest is padding).
    pub valid: usize,
    /// Argmax tokens of the final segment, `[B, S]` int64 on the CPU.
    pub preds: Tensor,
    /// q_halt logits of the final segment, `[B]` f32 on the CPU.
    pub q_halt_logits: Tensor,
    /// The loss-head metric sums of the final segment (padding rows do not count).
    pub metrics: ActMetrics,
    /// Argmax tokens after every segment for the batch's rows of `trace_rows`, each `[K, S]` (empty when none
    /// is in this batch).
    pub segment_preds: Vec<Tensor>,
    /// The split rows of `segment_preds`, in order (K entries; empty when none is traced in this batch).
    pub traced_rows: Vec<usize>,
}

/// Runs a split through the model in batches of `batch_size`, every batch for `halt_max_steps` segments with
/// [`Model::forward_eval`] from a fresh carry, calling `on_batch` for each.
///
/// At most `max_examples` rows are used (0 = all): the rows beyond it in the last batch are turned into
/// padding (inputs 0, labels ignored, id 0). Per-segment argmax tokens are kept for the split rows listed
/// in `trace_rows` (in whichever batch each falls; rows at or beyond the cap are ignored).
///
/// # Shapes
/// Batches are `[batch_size, S]`; see [`EvalBatchResult`].
pub fn eval_split(
    model: &Model,
    data: &Arc<SplitData>,
    batch_size: usize,
    max_examples: usize,
    trace_rows: &[usize],
    on_batch: impl FnMut(&EvalBatchResult) -> Result<(), RunError>,
) -> Result<(), RunError> {
    eval_split_part(
        model,
        data,
        batch_size,
        max_examples,
        trace_rows,
        (0, 1),
        on_batch,
    )
}

/// [`eval_split`] on rank `part.0` of `part.1` data-parallel ranks: of every batch of `batch_size` rows (a
/// multiple of the world size) this rank runs its contiguous slice, so the ranks together run every row once.
pub fn eval_split_part(
    model: &Model,
    data: &Arc<SplitData>,
    batch_size: usize,
    max_examples: usize,
    trace_rows: &[usize],
    part: (usize, usize),
    mut on_batch: impl FnMut(&EvalBatchResult) -> Result<(), RunError>,
) -> Result<(), RunError> {
    let n = if max_examples == 0 {
        data.num_examples()
    } else {
        max_examples.min(data.num_examples())
    };
    hrm_model::layers::with_cached_casts(|| {
        eval_batches(model, data, batch_size, n, trace_rows, part, &mut on_batch)
    })
}

/// The batches of [`eval_split`], with the parameter casts cached by the caller.
/// The evaluation batch for `n` rows on `world` ranks: `batch_size`, or fewer when that is more than the rows need
/// (the smallest multiple of `world` that holds all `n` rows), so a huge `--batch-size` or `eval.batch_size`
/// allocates for the rows there are, not for padding.
pub fn capped_batch_size(batch_size: usize, n: usize, world: usize) -> usize {
    let world = world.max(1);
    let enough = n.max(1).div_ceil(world) * world;
    batch_size.clamp(1, enough)
}

fn eval_batches(
    model: &Model,
    data: &Arc<SplitData>,
    batch_size: usize,
    n: usize,
    trace_rows: &[usize],
    (rank, world): (usize, usize),
    on_batch: &mut impl FnMut(&EvalBatchResult) -> Result<(), RunError>,
) -> Result<(), RunError> {
    let device = model.device();
    let loss_type = model.config().loss_type;
    let segments = model.config().halt_max_steps;
    let batch_size = capped_batch_size(batch_size, n, world);
    check_eval_batch_memory(model, batch_size / world.max(1))?;
    let mut global_first_row = 0usize;
    for mut b in EvalBatches::new(Arc::clone(data), batch_size)? {
        if global_first_row >= n {
            break;
        }
        let global_valid = b.valid;
        let capped = b.valid.min(n - global_first_row);
        pad_rows(&mut b, capped);
        b.valid = capped;
        let range = hrm_dist::shard(b.batch_size, rank, world);
        let first_row = global_first_row + range.start;
        if world > 1 {
            b = b.rows(range);
        }
        let valid = b.valid;
        let s = b.seq_len;
        let batch = hrm_model::Batch::from_vecs(
            &b.inputs,
            &b.labels,
            &b.puzzle_identifiers,
            b.batch_size,
            s,
            device,
        )?;
        let (traced_rows, trace_index) = batch_trace(trace_rows, first_row, valid, device);
        let mut carry: Carry = model.initial_carry(&batch);
        let mut segment_preds = Vec::new();
        let mut last = None;
        for _ in 0..segments {
            let (c, out) = model.forward_eval(&carry, &batch)?;
            if let Some(index) = &trace_index {
                segment_preds.push(
                    out.logits
                        .index_select(0, index)
                        .argmax(-1, false)
                        .to_device(Device::Cpu),
                );
            }
            carry = c;
            last = Some(out);
        }
        let out = last.ok_or_else(|| RunError::config("arch.halt_max_steps", "must be ≥ 1"))?;
        let loss = tch::no_grad(|| act_loss_head(&carry, &out, loss_type))?;
        let result = EvalBatchResult {
            first_row,
            valid,
            preds: out.logits.argmax(-1, false).to_device(Device::Cpu),
            q_halt_logits: out
                .q_halt_logits
                .to_kind(Kind::Float)
                .to_device(Device::Cpu),
            metrics: loss.metrics,
            segment_preds,
            traced_rows,
        };
        on_batch(&result)?;
        global_first_row += global_valid;
    }
    Ok(())
}

/// Turns the rows of `b` from `valid` on into padding (inputs 0, labels ignored, puzzle id 0).
fn pad_rows(b: &mut hrm_data::sampler::HostBatch, valid: usize) {
    let s = b.seq_len;
    for r in valid..b.batch_size {
        b.inputs[r * s..(r + 1) * s].fill(0);
        b.labels[r * s..(r + 1) * s].fill(hrm_data::sampler::LOSS_IGNORE_LABEL);
        b.puzzle_identifiers[r] = 0;
    }
}

/// The rows of `trace_rows` inside the batch starting at split row `first_row` with `valid` rows (sorted,
/// without repeats), and their in-batch indices as a tensor on `device` (`None` when there are none).
fn batch_trace(
    trace_rows: &[usize],
    first_row: usize,
    valid: usize,
    device: Device,
) -> (Vec<usize>, Option<Tensor>) {
    let mut rows: Vec<usize> = trace_rows
        .iter()
        .copied()
        .filter(|r| (first_row..first_row + valid).contains(r))
        .collect();
    rows.sort_unstable();
    rows.dedup();
    let local: Vec<i64> = rows.iter().map(|&r| (r - first_row) as i64).collect();
    let index = (!local.is_empty()).then(|| Tensor::from_slice(&local).to_device(device));
    (rows, index)
}

/// Evaluates on `data` and returns the metric sums of the final segments, added over batches.
pub fn evaluate(
    model: &Model,
    data: &Arc<SplitData>,
    batch_size: usize,
    max_examples: usize,
) -> Result<ActMetrics, RunError> {
    evaluate_part(model, data, batch_size, max_examples, (0, 1))
}

/// [`evaluate`] on this rank's slice of every batch ([`eval_split_part`]): the sums of this rank only.
pub fn evaluate_part(
    model: &Model,
    data: &Arc<SplitData>,
    batch_size: usize,
    max_examples: usize,
    part: (usize, usize),
) -> Result<ActMetrics, RunError> {
    let mut total = ActMetrics::default();
    eval_split_part(model, data, batch_size, max_examples, &[], part, |r| {
        total = crate::step::add_metrics(&total, &r.metrics);
        Ok(())
    })?;
    Ok(total)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A Unix time as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc_time(unix: u64) -> String {
    let secs = unix as i64;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02} UTC",
        s / 3600,
        (s / 60) % 60,
        s % 60
    )
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A NaN or infinite logged value stops the run, naming the last good checkpoint.
fn check_finite(
    step: u64,
    values: &[(&'static str, f64)],
    last_checkpoint: Option<&Path>,
) -> Result<(), RunError> {
    match values.iter().find(|(_, v)| !v.is_finite()) {
        Some(&(name, value)) => Err(RunError::NonFinite {
            step,
            metric: name.to_string(),
            value,
            last_checkpoint: last_checkpoint.map(Path::to_path_buf),
        }),
        None => Ok(()),
    }
}

/// Refuses to checkpoint a model with a NaN or infinite weight (so the last checkpoint stays a good one).
fn check_parameters_finite(
    trainer: &Trainer,
    last_checkpoint: Option<&Path>,
) -> Result<(), RunError> {
    let model = trainer.model();
    let tables = model
        .puzzle_table()
        .map(|t| ("inner.puzzle_emb.weights", t));
    for (name, p) in model.named_parameters().chain(tables) {
        let finite = p
            .f_isfinite()
            .and_then(|t| t.f_all())
            .and_then(|t| t.f_int64_value(&[]))
            .map_err(RunError::tch(format!("checking parameter `{name}`")))?;
        if finite == 0 {
            return Err(RunError::NonFinite {
                step: trainer.step_count(),
                metric: format!("parameter `{name}`"),
                value: f64::NAN,
                last_checkpoint: last_checkpoint.map(Path::to_path_buf),
            });
        }
    }
    Ok(())
}

/// The fixed facts of a run, computed once from the recipe and the train split.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Nominal total steps ([`total_steps`]).
    total: u64,
    /// Sampler iterations of the whole run (`train.epochs / train.eval_interval`).
    total_iters: u64,
    /// The step the run stops at: `total`, capped by `train.max_steps`.
    cap: u64,
    /// `train.max_minutes` in seconds (0 = no limit).
    max_secs: f64,
}

impl Plan {
    /// Whether a run at checkpoint `state` has nothing left to do under this plan (a finished run resumed with
    /// a larger `train.max_steps`, `train.max_minutes` or `train.epochs` continues).
    fn stops_at(&self, state: &CheckpointState) -> bool {
        state.iterations_done >= self.total_iters
            || state.step >= self.cap
            || (self.max_secs > 0.0 && state.elapsed_seconds >= self.max_secs)
    }

    fn new(t: &TrainSection, meta: &DatasetMetadata) -> Result<Plan, RunError> {
        let (groups, per_puzzle) = (meta.total_groups, meta.mean_puzzle_examples);
        let total = total_steps(
            t.epochs as u64,
            u64::from(groups),
            per_puzzle,
            t.global_batch_size as u64,
        );
        if total == 0 {
            let examples = (t.epochs as f64 * f64::from(groups) * per_puzzle) as u64;
            return Err(RunError::config(
                "train.global_batch_size",
                format!(
                    "{} is larger than the {examples} examples of all {} epochs ({groups} groups x \
                     {per_puzzle:.2} examples per puzzle): the run would have 0 steps",
                    t.global_batch_size, t.epochs,
                ),
            ));
        }
        check_order_size(t, groups)?;
        if total > MAX_TOTAL_STEPS {
            return Err(RunError::config(
                "train.epochs",
                format!(
                    "{} epochs plan {total} steps, more than {MAX_TOTAL_STEPS} (over 30 years at 1,000 steps \
                     per second); lower train.epochs",
                    t.epochs
                ),
            ));
        }
        let cap = match t.max_steps {
            0 => total,
            m => total.min(m as u64),
        };
        Ok(Plan {
            total,
            total_iters: (t.epochs / t.eval_interval) as u64,
            cap,
            max_secs: t.max_minutes * 60.0,
        })
    }
}

/// The most steps a run may plan (`train.max_steps` caps a run; `train.epochs` is refused above this).
pub const MAX_TOTAL_STEPS: u64 = 1_000_000_000_000;

/// The most group visits one sampler iteration may hold (`train.eval_interval` epochs x groups, 4 bytes each:
/// 1 GiB). The paper's ARC recipe needs 9.6 million.
pub const MAX_ORDER_ENTRIES: u64 = 1 << 28;

/// Refuses an iteration whose group order would not fit in memory (`train.eval_interval` epochs of the groups
/// are shuffled into one array), with the numbers, before anything is allocated.
fn check_order_size(t: &TrainSection, groups: u32) -> Result<(), RunError> {
    let entries = (t.eval_interval as u64).saturating_mul(u64::from(groups));
    if entries > MAX_ORDER_ENTRIES {
        return Err(RunError::config(
            "train.eval_interval",
            format!(
                "{} epochs per iteration x {groups} groups = {entries} group visits in one sampler \
                 iteration ({:.1} GiB of memory); the limit is {MAX_ORDER_ENTRIES} (1 GiB). Lower \
                 train.eval_interval (and train.epochs with it)",
                t.eval_interval,
                entries as f64 * 4.0 / f64::from(1u32 << 30),
            ),
        ));
    }
    Ok(())
}

/// What a run reads before it touches its folder: the model config, both splits and the plan.
struct Inputs {
    config: ModelConfig,
    train_data: Arc<SplitData>,
    test_data: Arc<SplitData>,
    plan: Plan,
}

impl Inputs {
    fn load(opts: &RunOptions) -> Result<Inputs, RunError> {
        let recipe = &opts.recipe;
        let train_meta = hrm_data::layout::load_metadata(&opts.dataset_dir, "train")?;
        let test_meta = hrm_data::layout::load_metadata(&opts.dataset_dir, "test")?;
        check_dataset(recipe, &opts.dataset_dir, &train_meta, &test_meta)?;
        let config = resolve_model_config(recipe, &train_meta, opts.device)?;
        let plan = Plan::new(&recipe.train, &train_meta)?;
        let world = opts.dist.as_ref().map_or(1, |d| d.env.world_size);
        if opts.dist.is_some() {
            check_world_split(recipe, world)?;
        }
        let test_data = Arc::new(hrm_data::load_split(&opts.dataset_dir, "test")?);
        check_memory(
            recipe,
            &config,
            opts.device,
            world,
            test_data.num_examples(),
        )?;
        Ok(Inputs {
            config,
            train_data: Arc::new(hrm_data::load_split(&opts.dataset_dir, "train")?),
            test_data,
            plan,
        })
    }

    /// A trainer at step 0 for the recipe: the model from `train.seed`, `train.freeze_weights`, `train.ema`, and
    /// this process's rank of the world.
    fn trainer(&self, opts: &RunOptions) -> Result<Trainer, RunError> {
        let t = &opts.recipe.train;
        let model = Model::new(&self.config, opts.device, t.seed)?;
        let world = opts.dist.as_ref().map_or(1, |d| d.env.world_size);
        let config = step_config_for_world(&opts.recipe, self.plan.total, world);
        let mut trainer = Trainer::new(model, config)?;
        if let Some(d) = &opts.dist {
            trainer.set_partition(d.env.rank, d.env.world_size)?;
        }
        // The splits were validated when loaded (token ids below vocab_size, puzzle ids below the table size):
        // no per-step range check, so a step reads nothing back from the device.
        trainer.set_value_checks(false);
        if t.freeze_weights {
            trainer.set_trainable(Trainable::PuzzleTableOnly)?;
        }
        if t.ema {
            trainer.enable_ema(t.ema_rate)?;
        }
        Ok(trainer)
    }
}

/// [`check_batch_memory`] of one rank's evaluation batch of `rows` rows, whatever set it.
fn check_eval_batch_memory(model: &Model, rows: usize) -> Result<(), RunError> {
    let setting = "the evaluation batch (--batch-size or eval.batch_size)";
    let available = hrm_data::budget::available_memory_bytes();
    check_batch_memory(
        model.config(),
        rows,
        false,
        setting,
        model.device(),
        available,
    )
}

/// The memory checks of a run before its model is built: the training state, one micro-batch's training step
/// and one evaluation batch's forward pass (capped by the test rows), per rank.
fn check_memory(
    recipe: &Recipe,
    config: &ModelConfig,
    device: Device,
    world: usize,
    test_rows: usize,
) -> Result<(), RunError> {
    let available = hrm_data::budget::available_memory_bytes();
    check_model_memory(config, device, available)?;
    let step = step_config_for_world(recipe, 1, world);
    let micro = recipe.train.global_batch_size / world.max(1) / step.micro_batches.max(1) as usize;
    let setting = match recipe.train.micro_batch_size {
        0 => "train.global_batch_size",
        _ => "train.micro_batch_size",
    };
    check_batch_memory(config, micro.max(1), true, setting, device, available)?;
    let eval = capped_batch_size(recipe.eval.batch_size, test_rows, world) / world.max(1);
    check_batch_memory(config, eval, false, "eval.batch_size", device, available)
}

/// Refuses a world size that does not divide the global batch into whole micro-batches, or the evaluation
/// batch into equal slices, naming the setting (checked on every rank before the rendezvous).
fn check_world_split(recipe: &Recipe, world: usize) -> Result<(), RunError> {
    let t = &recipe.train;
    let k = step_config_for_world(recipe, 1, world).micro_batches as usize;
    if !t.global_batch_size.is_multiple_of(world * k) {
        return Err(RunError::config(
            "train.global_batch_size",
            format!(
                "{} does not split into {world} ranks x {k} micro-batches of train.micro_batch_size {}; \
                 each rank takes global_batch_size / world size sequences",
                t.global_batch_size, t.micro_batch_size
            ),
        ));
    }
    let e = recipe.eval.batch_size;
    if !e.is_multiple_of(world) {
        return Err(RunError::config(
            "eval.batch_size",
            format!("{e} does not split into {world} equal rank slices"),
        ));
    }
    Ok(())
}

/// The exploration RNG of a new run.
pub(crate) fn exploration_rng(seed: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(EXPLORATION_STREAM);
    rng
}

/// The sampler settings of a recipe.
fn sampler_config(recipe: &Recipe) -> SamplerConfig {
    SamplerConfig {
        global_batch_size: recipe.train.global_batch_size,
        epochs_per_iter: recipe.train.eval_interval,
        seed: recipe.train.seed,
    }
}

/// Where a run starts from: the loop state of a new run or of a resumed checkpoint.
struct Start {
    trainer: Trainer,
    sampler: TrainSampler,
    rng: ChaCha8Rng,
    iterations_done: u64,
    elapsed_before: f64,
    /// The metrics log (rank 0 only).
    log: Option<MetricsLog>,
    /// The training metrics since the last logged line.
    window: LogWindow,
    last_checkpoint: Option<PathBuf>,
}

/// What opening a run folder gave.
enum Opening {
    /// A run to continue.
    Start(Box<Start>),
    /// The resumed checkpoint was already final; nothing to do.
    Finished(RunSummary),
}

/// Opens the run folder: a new run (`opts.resume` false) or the `latest` checkpoint of an existing one.
fn open_run(opts: &RunOptions, inputs: &Inputs) -> Result<Opening, RunError> {
    let trainer = inputs.trainer(opts)?;
    if opts.resume {
        resume_run(opts, inputs, trainer)
    } else {
        start_run(opts, inputs, trainer).map(|s| Opening::Start(Box::new(s)))
    }
}

/// Creates the run folder with `recipe.toml`, `env.json` and an empty `metrics.jsonl`.
fn start_run(opts: &RunOptions, inputs: &Inputs, trainer: Trainer) -> Result<Start, RunError> {
    let run_dir = &opts.run_dir;
    if !complete_checkpoints(run_dir)?.is_empty() {
        return Err(RunError::config(
            "--run",
            format!(
                "{} already holds checkpoints; use --resume {} to continue it or pick a new folder",
                run_dir.display(),
                run_dir.display()
            ),
        ));
    }
    let litter = run_dir.join(CHECKPOINTS_DIR);
    if litter.exists() {
        // Only unfinished `step_<N>.tmp` folders (a first checkpoint that failed or was killed): start afresh.
        std::fs::remove_dir_all(&litter).map_err(RunError::io(&litter))?;
    }
    std::fs::create_dir_all(run_dir).map_err(RunError::io(run_dir))?;
    hrm_data::write_atomic(&run_dir.join(RECIPE_FILE), opts.recipe.to_toml().as_bytes())?;
    write_env(run_dir, &new_env(opts, &inputs.config)?)?;
    let log = MetricsLog::open(&run_dir.join(METRICS_FILE), MetricsStart::Empty)?;
    Start::fresh(opts, inputs, trainer, Some(log))
}

impl Start {
    /// The loop state of a run at step 0.
    fn fresh(
        opts: &RunOptions,
        inputs: &Inputs,
        trainer: Trainer,
        log: Option<MetricsLog>,
    ) -> Result<Start, RunError> {
        Ok(Start {
            trainer,
            sampler: TrainSampler::new(
                Arc::clone(&inputs.train_data),
                sampler_config(&opts.recipe),
            )?,
            rng: exploration_rng(opts.recipe.train.seed),
            iterations_done: 0,
            elapsed_before: 0.0,
            log,
            window: LogWindow::default(),
            last_checkpoint: None,
        })
    }

    /// The loop state saved in checkpoint `dir` (whose `state` was loaded into `trainer`), without a metrics log.
    fn resumed(
        opts: &RunOptions,
        inputs: &Inputs,
        trainer: Trainer,
        state: CheckpointState,
        dir: PathBuf,
    ) -> Result<Start, RunError> {
        Ok(Start {
            trainer,
            sampler: TrainSampler::resume(
                Arc::clone(&inputs.train_data),
                sampler_config(&opts.recipe),
                state.sampler,
            )?,
            rng: state.rng.restore(),
            iterations_done: state.iterations_done,
            elapsed_before: state.elapsed_seconds,
            log: None,
            window: state.log_window,
            last_checkpoint: Some(dir),
        })
    }
}

/// The `env.json` of a new run.
fn new_env(opts: &RunOptions, config: &ModelConfig) -> Result<RunEnv, RunError> {
    Ok(RunEnv {
        git_commit: git_commit(),
        libtorch: LIBTORCH_VERSION.into(),
        device: device_name(opts.device),
        dtype: config.forward_dtype.to_string(),
        seed: opts.recipe.train.seed,
        hostname: hostname(),
        start_time_unix: unix_now(),
        command_line: opts.command_line.clone(),
        dataset: std::fs::canonicalize(&opts.dataset_dir).unwrap_or(opts.dataset_dir.clone()),
        resumes: Vec::new(),
        dataset_fingerprint: Some(hrm_data::layout::dataset_fingerprint(&opts.dataset_dir)?),
        changes: Vec::new(),
        imported: None,
        threads: Some(tch::get_num_threads().max(1) as usize),
    })
}

/// Loads the `latest` checkpoint into `trainer`, restores the sampler, the RNG and the metrics log as they were
/// at that checkpoint, and records the resume in `env.json`.
fn resume_run(opts: &RunOptions, inputs: &Inputs, trainer: Trainer) -> Result<Opening, RunError> {
    let run_dir = &opts.run_dir;
    let stored = load_run_recipe(run_dir)?;
    if stored.to_toml() != opts.recipe.to_toml() {
        return Err(RunError::mismatch(
            "recipe",
            run_dir.join(RECIPE_FILE).display(),
            "the stored recipe",
            "this command",
            "a different recipe (resume with the stored one: omit the recipe and --set)",
        ));
    }
    check_dataset_fingerprint(&load_env(run_dir)?, run_dir, &opts.dataset_dir)?;
    let Some((dir, state, trainer)) = load_newest_valid(opts, inputs, trainer)? else {
        tracing::warn!(
            "{} holds no complete checkpoint (the first one never finished); starting the run again from step 0",
            run_dir.display()
        );
        return start_run(opts, inputs, trainer_or_new(None, opts, inputs)?)
            .map(|s| Opening::Start(Box::new(s)));
    };
    if state.finished && inputs.plan.stops_at(&state) {
        return Ok(Opening::Finished(RunSummary {
            step: state.step,
            total_steps: inputs.plan.total,
            stop: StopReason::AlreadyFinished,
            steps_this_session: 0,
            train_seconds: 0.0,
            last_eval: None,
            checkpoint: dir,
        }));
    }
    let lines = state.metrics_lines;
    // The sampler state is checked before the run folder is touched.
    let mut start = Start::resumed(opts, inputs, trainer, state, dir.clone())?;
    let log_start = MetricsStart::CopyOf {
        copy: &dir.join(METRICS_FILE),
        lines,
    };
    start.log = Some(MetricsLog::open(&run_dir.join(METRICS_FILE), log_start)?);
    let mut env = load_env(run_dir)?;
    env.resumes.push(opts.command_line.clone());
    write_env(run_dir, &env)?;
    Ok(Opening::Start(Box::new(start)))
}

/// The start of a rank other than 0, as rank 0's verdict says: from step 0 (the weights then come from rank 0's
/// broadcast) or from the checkpoint rank 0 resumed. Writes nothing.
fn follow_run(
    opts: &RunOptions,
    inputs: &Inputs,
    checkpoint: Option<PathBuf>,
) -> Result<Start, RunError> {
    let mut trainer = inputs.trainer(opts)?;
    let Some(dir) = checkpoint else {
        return Start::fresh(opts, inputs, trainer, None);
    };
    let state = load_checkpoint(&dir, &mut trainer)?;
    Start::resumed(opts, inputs, trainer, state, dir)
}

/// Opens the run on every rank: rank 0 takes the lock and opens the folder ([`open_run`]), then tells the other
/// ranks what it found ([`crate::world::Verdict`]), and they follow ([`follow_run`]). An error on rank 0
/// reaches every rank. A single process just opens the run.
fn open_world(
    opts: &RunOptions,
    inputs: &Inputs,
    collective: Option<&mut (dyn hrm_dist::Collective + 'static)>,
) -> Result<(Opening, Option<RunLock>), RunError> {
    use crate::world::Verdict;
    let Some(c) = collective else {
        return open_locked(opts, inputs);
    };
    if c.rank() != 0 {
        return match Verdict::decode(&c.broadcast_bytes(Vec::new(), 0)?)? {
            Verdict::Start(dir) => Ok((
                Opening::Start(Box::new(follow_run(opts, inputs, dir)?)),
                None,
            )),
            Verdict::Finished(step, checkpoint) => Ok((
                Opening::Finished(RunSummary {
                    step,
                    total_steps: inputs.plan.total,
                    stop: StopReason::AlreadyFinished,
                    steps_this_session: 0,
                    train_seconds: 0.0,
                    last_eval: None,
                    checkpoint,
                }),
                None,
            )),
            Verdict::Failed(m) => Err(RunError::config(
                "world",
                format!("rank 0 could not open the run: {m}"),
            )),
        };
    }
    let opened = open_locked(opts, inputs);
    let verdict = match &opened {
        Ok((Opening::Start(s), _)) => Verdict::Start(s.last_checkpoint.clone()),
        Ok((Opening::Finished(s), _)) => Verdict::Finished(s.step, s.checkpoint.clone()),
        Err(e) => Verdict::Failed(e.to_string()),
    };
    c.broadcast_bytes(verdict.encode(), 0)?;
    opened
}

/// Takes the run's lock and opens it ([`open_run`]). A new run folder that this call created is removed again
/// when opening fails, so a failed start leaves no folder without `recipe.toml` behind.
fn open_locked(opts: &RunOptions, inputs: &Inputs) -> Result<(Opening, Option<RunLock>), RunError> {
    let created = !opts.resume && !opts.run_dir.exists();
    let opened =
        RunLock::acquire(&opts.run_dir).and_then(|lock| Ok((open_run(opts, inputs)?, Some(lock))));
    if opened.is_err() && created {
        // The lock was dropped with the error; nothing else holds the folder.
        let _ = std::fs::remove_dir_all(&opts.run_dir);
    }
    opened
}

/// `trainer`, or a fresh step-0 trainer when it was used up by a failed load.
fn trainer_or_new(
    trainer: Option<Trainer>,
    opts: &RunOptions,
    inputs: &Inputs,
) -> Result<Trainer, RunError> {
    match trainer {
        Some(t) => Ok(t),
        None => inputs.trainer(opts),
    }
}

/// Loads the newest checkpoint of the run that loads and is finite: `latest` first, then the other complete
/// checkpoints newest first, each into a fresh trainer. A refused checkpoint is reported with its reason and
/// the one used instead. `None` when the run has no complete checkpoint; an error listing every refusal when
/// none loads.
fn load_newest_valid(
    opts: &RunOptions,
    inputs: &Inputs,
    trainer: Trainer,
) -> Result<Option<(PathBuf, CheckpointState, Trainer)>, RunError> {
    let mut trainer = Some(trainer);
    let mut refused: Vec<(PathBuf, RunError)> = Vec::new();
    for dir in complete_checkpoints(&opts.run_dir)? {
        let mut t = trainer_or_new(trainer.take(), opts, inputs)?;
        match load_checkpoint(&dir, &mut t) {
            Ok(state) => {
                for (bad, why) in &refused {
                    tracing::warn!(
                        "checkpoint {} refused: {why}\n  resuming from the newest valid earlier checkpoint, {}",
                        bad.display(),
                        dir.display()
                    );
                }
                return Ok(Some((dir, state, t)));
            }
            Err(e) => refused.push((dir, e)),
        }
    }
    if refused.is_empty() {
        return Ok(None);
    }
    let list: Vec<String> = refused
        .iter()
        .map(|(d, e)| format!("  {}: {e}", d.display()))
        .collect();
    Err(RunError::config(
        "checkpoint",
        format!(
            "no checkpoint of {} can be resumed:\n{}",
            opts.run_dir.display(),
            list.join("\n")
        ),
    ))
}

/// The complete checkpoint folders of a run (`step_<N>` with a state file; never `*.tmp`), newest first: the one
/// `latest` names and those before it (all of them when `latest` is missing).
pub fn complete_checkpoints(run_dir: &Path) -> Result<Vec<PathBuf>, RunError> {
    let root = run_dir.join(CHECKPOINTS_DIR);
    if !root.is_dir() {
        return Ok(Vec::new());
    }
    let mut found: Vec<(u64, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(&root)
        .map_err(RunError::io(&root))?
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().to_string();
        let step = name
            .strip_prefix("step_")
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(step) = step {
            if entry.path().join(STATE_FILE).is_file() {
                found.push((step, entry.path()));
            }
        }
    }
    found.sort_by_key(|(step, _)| std::cmp::Reverse(*step));
    // With a `latest`, only it and the checkpoints before it: a newer folder is not part of this history.
    if let Ok(latest) = resolve_checkpoint(run_dir, None) {
        if let Some(&(latest_step, _)) = found.iter().find(|(_, d)| *d == latest) {
            found.retain(|(s, d)| *s < latest_step || *d == latest);
        }
    }
    Ok(found.into_iter().map(|(_, d)| d).collect())
}

/// The lock file of a run folder: one `hrm train` at a time writes into a run folder.
pub const LOCK_FILE: &str = "train.lock";

/// An exclusive lock on a run folder, held while the value lives.
///
/// An advisory `flock` on `<run>/train.lock`, which holds the holder's PID and command line for the error a second
/// process gets. The kernel drops the lock when its process ends, however it ends, so a lock left by a killed
/// process is never in the way (the PID in the file is only reported).
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
}

impl RunLock {
    /// Takes the lock of `run_dir` (creating the folder), or fails naming the process that holds it.
    pub fn acquire(run_dir: &Path) -> Result<RunLock, RunError> {
        std::fs::create_dir_all(run_dir).map_err(RunError::io(run_dir))?;
        let path = run_dir.join(LOCK_FILE);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(RunError::io(&path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                return Err(RunError::config(
                    "--run",
                    format!(
                        "{} is in use by another `hrm train` ({}); wait for it to finish or stop it first",
                        run_dir.display(),
                        holder.trim()
                    ),
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(RunError::io(&path)(e)),
        }
        let me = format!(
            "pid {} on {}, since {}",
            std::process::id(),
            hostname().unwrap_or_else(|| "this host".into()),
            utc_time(unix_now())
        );
        file.set_len(0)
            .and_then(|_| file.write_all(me.as_bytes()))
            .and_then(|_| file.flush())
            .map_err(RunError::io(&path))?;
        Ok(RunLock { _file: file })
    }
}

/// Refuses `dataset_dir` when the run's `env.json` recorded another dataset fingerprint (resume and
/// `hrm predict` on a dataset rebuilt differently, or another one).
pub fn check_dataset_fingerprint(
    env: &RunEnv,
    run_dir: &Path,
    dataset_dir: &Path,
) -> Result<(), RunError> {
    let Some(recorded) = &env.dataset_fingerprint else {
        return Ok(());
    };
    let now = hrm_data::layout::dataset_fingerprint(dataset_dir)?;
    if *recorded != now {
        return Err(RunError::mismatch(
            "dataset_fingerprint",
            format!(
                "the dataset the run was trained on ({}, recorded in {})",
                env.dataset.display(),
                run_dir.join(ENV_FILE).display()
            ),
            recorded,
            format!("the dataset {}", dataset_dir.display()),
            now,
        ));
    }
    Ok(())
}

/// The kind of a checkpoint the loop writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CheckpointKind {
    /// Every `train.checkpoint_every_steps` steps; removed when a newer one is written.
    Rolling,
    /// At an evaluation (`train.checkpoint_every_eval`); kept.
    Evaluation,
    /// Where the run ends; kept, and resuming it does nothing.
    Final,
}

/// A run in progress: the trainer and everything the loop carries from one sampler event to the next.
struct Run<'a> {
    opts: &'a RunOptions,
    test_data: Arc<SplitData>,
    plan: Plan,
    trainer: Trainer,
    /// The ACT exploration RNG.
    rng: ChaCha8Rng,
    /// The sampler state after the last consumed event.
    sampler_state: SamplerState,
    iterations_done: u64,
    /// Training seconds of earlier sessions (from the resumed checkpoint).
    elapsed_before: f64,
    /// When this session's loop started (reset right before the first event).
    session_start: Instant,
    /// Time spent in optimizer steps in this session.
    train_time: Duration,
    start_step: u64,
    /// The metrics log (rank 0 only: the other ranks of a data-parallel run write nothing).
    log: Option<MetricsLog>,
    /// The training metrics since the last logged line, read from the device.
    window: LogWindow,
    /// The steps since the last read and their metric sums, still on the device.
    pending: Option<(u64, hrm_model::DeviceMetrics)>,
    bar: ProgressBar,
    /// The newest complete checkpoint (resumed from or written in this session).
    last_checkpoint: Option<PathBuf>,
    /// The step of the final checkpoint, once written.
    final_checkpoint_step: Option<u64>,
    /// The step and values of the last evaluation.
    last_eval: Option<(u64, BTreeMap<String, f64>)>,
}

impl<'a> Run<'a> {
    fn new(opts: &'a RunOptions, inputs: Inputs, start: Start) -> (Run<'a>, TrainSampler) {
        let start_step = start.trainer.step_count();
        let plan = inputs.plan;
        let rank0 = opts.dist.as_ref().is_none_or(|d| d.env.rank == 0);
        // A time cap bounds the ETA: the time left of `train.max_minutes` over every session.
        let left = plan.max_secs - start.elapsed_before;
        let deadline =
            (plan.max_secs > 0.0).then(|| Instant::now() + Duration::from_secs_f64(left.max(0.0)));
        let display = Display::shown_if(opts.progress && rank0);
        let bar = progress::bar_until(plan.cap, "steps", display, deadline);
        bar.set_position(start_step.min(plan.cap));
        let run = Run {
            opts,
            test_data: inputs.test_data,
            plan,
            trainer: start.trainer,
            rng: start.rng,
            sampler_state: start.sampler.state(),
            iterations_done: start.iterations_done,
            elapsed_before: start.elapsed_before,
            session_start: Instant::now(),
            train_time: Duration::ZERO,
            start_step,
            log: start.log,
            window: start.window,
            pending: None,
            bar,
            last_checkpoint: start.last_checkpoint,
            final_checkpoint_step: None,
            last_eval: None,
        };
        (run, start.sampler)
    }

    /// Training seconds across sessions.
    fn elapsed(&self) -> f64 {
        self.elapsed_before + self.session_start.elapsed().as_secs_f64()
    }

    /// Why the run stops before the next sampler event, if it does: all iterations done, the step cap, the
    /// time cap (checked in this order); a requested stop comes first.
    fn stop_condition(&self) -> Option<StopReason> {
        if crate::stop::requested() {
            Some(StopReason::Interrupted)
        } else if self.iterations_done >= self.plan.total_iters {
            Some(StopReason::Completed)
        } else if self.trainer.step_count() >= self.plan.cap {
            Some(StopReason::MaxSteps)
        } else if self.plan.max_secs > 0.0 && self.elapsed() >= self.plan.max_secs {
            Some(StopReason::MaxMinutes)
        } else {
            None
        }
    }

    /// [`Run::stop_condition`], agreed by every rank of a data-parallel run (the largest reason wins: a stop
    /// requested on any rank, then a time cap reached on any rank), so that all ranks stop at the same step.
    fn agreed_stop(&mut self) -> Result<Option<StopReason>, RunError> {
        let local = self.stop_condition();
        match self.trainer.collective() {
            None => Ok(local),
            Some(c) => Ok(crate::world::stop_from_code(
                c.max_u64(crate::world::stop_code(local))?,
            )),
        }
    }

    /// One optimizer step, its log line and the rolling checkpoint when one is due.
    fn train_batch(&mut self, batch: &hrm_model::Batch) -> Result<(), RunError> {
        let t0 = Instant::now();
        let report = self.trainer.train_step(batch, &mut self.rng)?;
        self.train_time += t0.elapsed();
        let step = self.trainer.step_count();
        if let Some(report) = report {
            self.log_train(step, &report)?;
        }
        self.bar.set_position(step.min(self.plan.cap));
        let every = self.opts.recipe.train.checkpoint_every_steps as u64;
        if every > 0 && step.is_multiple_of(every) {
            self.checkpoint(CheckpointKind::Rolling)?;
        }
        if !self.opts.throttle.is_zero() {
            std::thread::sleep(self.opts.throttle);
        }
        Ok(())
    }

    /// Adds a step's metric sums to the pending sums on the device (no host read); every `train.log_every` steps
    /// reads them once into the log window, checks them, writes the window ([`LogWindow::values`]) and shows the
    /// LM loss and the speed on the progress display.
    fn log_train(&mut self, step: u64, report: &StepReport) -> Result<(), RunError> {
        let t = &self.opts.recipe.train;
        let gbs = t.global_batch_size as i64;
        self.pending = Some(match self.pending.take() {
            Some((n, sum)) => (n + 1, sum.add(&report.metrics)),
            None => (1, report.metrics.clone()),
        });
        if !step.is_multiple_of(t.log_every.max(1) as u64) {
            return Ok(());
        }
        self.flush_pending(step)?;
        let values = self.window.values(gbs, report.lr);
        let v: Vec<(String, f64)> = values.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        if let Some(log) = &mut self.log {
            log.write(step, &v)?;
        }
        let lm_loss = values
            .iter()
            .find(|(k, _)| *k == "train/lm_loss")
            .map_or(f64::NAN, |(_, v)| *v);
        self.window = LogWindow::default();
        let steps = step.saturating_sub(self.start_step).max(1) as f64;
        let secs_per_step = self.train_time.as_secs_f64() / steps;
        // Speed goes to TensorBoard only: metrics.jsonl stays identical across runs and resumes.
        let perf = [
            (
                "perf/samples_per_sec".to_string(),
                gbs as f64 / secs_per_step.max(1e-9),
            ),
            ("perf/sec_per_step".to_string(), secs_per_step),
        ];
        if let Some(log) = &mut self.log {
            log.write_events_only(step, &perf)?;
        }
        self.bar.set_message(format!(
            "lm_loss {lm_loss:.4} | {:.1} samples/s | {:.3} s/step",
            gbs as f64 / secs_per_step.max(1e-9),
            secs_per_step
        ));
        Ok(())
    }

    /// Reads the pending metric sums (one host read) into the log window and stops the run when one is not
    /// finite, naming the last good checkpoint; nothing to do when no step is pending.
    fn flush_pending(&mut self, step: u64) -> Result<(), RunError> {
        let Some((n, sums)) = self.pending.take() else {
            return Ok(());
        };
        // Every rank flushes at the same steps, so the sums of all ranks are added here, on the device.
        if let Some(c) = self.trainer.collective() {
            c.all_reduce_sum(sums.stats())?;
        }
        let (m, _) = sums.read()?;
        let gbs = self.opts.recipe.train.global_batch_size as i64;
        let mut window = LogWindow::default();
        window.add_steps(n, &m);
        check_finite(
            step,
            &window.values(gbs, 0.0),
            self.last_checkpoint.as_deref(),
        )?;
        self.window.add_steps(n, &m);
        Ok(())
    }

    /// The end of sampler iteration `iteration`: an evaluation, then a kept checkpoint (the final one after the
    /// last iteration).
    fn end_iteration(&mut self, iteration: u64) -> Result<(), RunError> {
        self.iterations_done = iteration + 1;
        self.evaluate()?;
        if self.iterations_done >= self.plan.total_iters {
            self.checkpoint(CheckpointKind::Final)?;
        } else if self.opts.recipe.train.checkpoint_every_eval {
            self.checkpoint(CheckpointKind::Evaluation)?;
        }
        Ok(())
    }

    /// Evaluates the test split (with the EMA weights when kept) and logs it at the current step.
    fn evaluate(&mut self) -> Result<(), RunError> {
        let step = self.trainer.step_count();
        let e = &self.opts.recipe.eval;
        let data = &self.test_data;
        let part = (self.trainer.rank(), self.trainer.world_size());
        let mut sums = self
            .trainer
            .with_eval_model(|m| evaluate_part(m, data, e.batch_size, e.max_examples, part))??;
        let device = self.trainer.model().device();
        if let Some(c) = self.trainer.collective() {
            sums = crate::world::sum_metrics(c, &sums, device)?;
        }
        if sums.count == 0.0 {
            // An empty test split (or eval.max_examples cutting it to nothing): no accuracy of 0 is logged.
            tracing::warn!(
                step,
                "nothing was evaluated: the test split of {} has no examples; no eval line is logged",
                self.opts.dataset_dir.display()
            );
            return Ok(());
        }
        let values = eval_values(&sums);
        if let Some(log) = &mut self.log {
            log.write(step, &values)?;
        }
        tracing::debug!(step, ?values, "evaluated");
        self.last_eval = Some((step, values.into_iter().collect()));
        Ok(())
    }

    /// Writes a checkpoint of the current state (refused when a weight is not finite). In a data-parallel run
    /// every rank calls it: the carries of all ranks are gathered and rank 0 writes.
    fn checkpoint(&mut self, kind: CheckpointKind) -> Result<(), RunError> {
        self.flush_pending(self.trainer.step_count())?;
        check_parameters_finite(&self.trainer, self.last_checkpoint.as_deref())?;
        let world = self.trainer.world_size();
        let state = CheckpointState {
            step: self.trainer.step_count(),
            sampler: self.sampler_state,
            rng: RngState::capture(&self.rng),
            iterations_done: self.iterations_done,
            kept: kind != CheckpointKind::Rolling,
            finished: kind == CheckpointKind::Final,
            elapsed_seconds: self.elapsed(),
            micro_batches: world as i64 * self.trainer.config().micro_batches,
            metrics_lines: self.log.as_ref().map_or(0, |l| l.lines),
            log_window: self.window.clone(),
        };
        let gathered = match self.trainer.collective_and_carries() {
            (Some(c), carries) => Some((crate::world::gather_carries(c, carries)?, c.rank())),
            (None, _) => None,
        };
        let dir = match gathered {
            None => save_checkpoint(&self.opts.run_dir, &self.trainer, &state)?,
            Some((all, rank)) => {
                if rank == 0 {
                    save_checkpoint_with(&self.opts.run_dir, &self.trainer, &state, &all)?
                } else {
                    crate::checkpoint::checkpoint_dir(&self.opts.run_dir, state.step)
                }
            }
        };
        tracing::debug!(step = state.step, kind = ?kind, dir = %dir.display(), "checkpoint written");
        if kind == CheckpointKind::Final {
            self.final_checkpoint_step = Some(state.step);
        }
        self.last_checkpoint = Some(dir);
        Ok(())
    }

    /// After the loop: an evaluation at the last step (unless one ran there) and the final checkpoint (unless
    /// the last iteration wrote it); after a requested stop, only a resumable checkpoint; then the summary.
    fn finish(mut self, stop: StopReason) -> Result<RunSummary, RunError> {
        let step = self.trainer.step_count();
        let already_final =
            stop == StopReason::Completed && self.final_checkpoint_step == Some(step);
        let already_saved = self.last_checkpoint.as_deref()
            == Some(crate::checkpoint::checkpoint_dir(&self.opts.run_dir, step).as_path());
        if stop == StopReason::Interrupted {
            // No evaluation: a checkpoint of exactly this state, which `--resume` continues.
            if !already_saved {
                self.checkpoint(CheckpointKind::Rolling)?;
            }
        } else if !already_final {
            if self.last_eval.as_ref().map(|(s, _)| *s) != Some(step) {
                self.evaluate()?;
            }
            self.checkpoint(CheckpointKind::Final)?;
        }
        self.bar.finish_and_clear();
        let checkpoint = self
            .last_checkpoint
            .ok_or_else(|| RunError::config("train", "no checkpoint was written"))?;
        Ok(RunSummary {
            step,
            total_steps: self.plan.total,
            stop,
            steps_this_session: step - self.start_step,
            train_seconds: self.train_time.as_secs_f64(),
            last_eval: self.last_eval.map(|(_, v)| v),
            checkpoint,
        })
    }
}

/// Trains a recipe on a dataset into a run folder, or resumes it (spec 7; see the module docs).
///
/// The phases: `Inputs::load` (dataset checks, model config, plan), `open_run` (a new run folder or the
/// `latest` checkpoint), then per sampler event either `Run::train_batch` (one optimizer step,
/// [`Trainer::train_step`], micro-batched with persistent carries; train metrics every `train.log_every` steps;
/// a rolling checkpoint every `train.checkpoint_every_steps` steps) or `Run::end_iteration` (the test split
/// evaluated, capped by `eval.max_examples`, and a kept checkpoint when `train.checkpoint_every_eval`), until
/// `Run::stop_condition` holds (every iteration done, `train.max_steps`, `train.max_minutes`); `Run::finish`
/// evaluates and writes the final checkpoint where the last iteration did not. A non-finite loss stops the run
/// with [`RunError::NonFinite`], leaving the last good checkpoint in place.
pub fn train(opts: &RunOptions) -> Result<RunSummary, RunError> {
    let inputs = Inputs::load(opts)?;
    let mut collective = match &opts.dist {
        Some(d) => Some(crate::world::connect(d, opts.device)?),
        None => None,
    };
    let (opening, _lock) = open_world(opts, &inputs, collective.as_deref_mut())?;
    let mut start = match opening {
        Opening::Start(start) => *start,
        Opening::Finished(summary) => return Ok(summary),
    };
    if let Some(c) = collective {
        start.trainer.set_collective(c)?;
        start.trainer.broadcast_state()?;
    }
    let (rank, world) = (start.trainer.rank(), start.trainer.world_size());
    let device = opts.device;
    let (mut run, sampler) = Run::new(opts, inputs, start);
    let mut prefetch = Prefetcher::spawn(sampler, 2);
    run.session_start = Instant::now();
    let stop = loop {
        if let Some(stop) = run.agreed_stop()? {
            break stop;
        }
        let sampled = prefetch.next_event();
        run.sampler_state = sampled.state_after;
        match sampled.event {
            SampleEvent::Batch(b) => {
                // Every rank draws the same global batch and takes its contiguous slice.
                let b = match world {
                    1 => b,
                    _ => b.rows(hrm_dist::shard(b.batch_size, rank, world)),
                };
                let (inputs, labels, ids) = (&b.inputs, &b.labels, &b.puzzle_identifiers);
                let batch = hrm_model::Batch::from_vecs(
                    inputs,
                    labels,
                    ids,
                    b.batch_size,
                    b.seq_len,
                    device,
                )?;
                run.train_batch(&batch)?;
            }
            SampleEvent::IterationEnd { iteration, .. } => run.end_iteration(iteration)?,
        }
    };
    drop(prefetch);
    run.finish(stop)
}

pub(crate) fn write_env(run_dir: &Path, env: &RunEnv) -> Result<(), RunError> {
    let path = run_dir.join(ENV_FILE);
    let mut text = serde_json::to_string_pretty(env).map_err(|e| RunError::json(&path, e))?;
    text.push('\n');
    hrm_data::write_atomic(&path, text.as_bytes())?;
    Ok(())
}
