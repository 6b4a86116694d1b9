//! Official PyTorch run folders in and out: `hrm import` turns a `step_<N>` (or `checkpoint`) file with its
//! `all_config.yaml` into an ordinary run folder, and `hrm export` writes a run's checkpoint back in that format.
//! Follows the official trainers' `pretrain.py` (`save_train_state`, `save_code_and_config`, `load_checkpoint`) of
//! sapientinc/HRM and SamsungSAILMontreal/TinyRecursiveModels.
//!
//! An imported run is a run at step 0: `recipe.toml` from the YAML ([`hrm_recipe::official`]), `env.json` with
//! an [`ImportRecord`] (source file, its SHA-256, the YAML and its SHA-256), and `checkpoints/step_0/` with the
//! weights as `model.safetensors` (and `ema.safetensors`, the same weights, for EMA runs: an official EMA run
//! saves the EMA copy), a fresh optimizer and the sampler at its start. `hrm train --resume` then fine-tunes with
//! the official settings from step 0, as the official `load_checkpoint` does (weights only).

use std::path::{Path, PathBuf};

use hrm_data::DatasetMetadata;
use hrm_model::{Model, ModelKind};
use hrm_recipe::official::{official_yaml, recipe_from_official, DataShape};
use hrm_recipe::{DtypeSetting, Recipe};
use hrm_torchfile::{DType, TensorOut, TorchFile};
use tch::{Device, Kind, Tensor};

use crate::checkpoint::{
    file_sha256, load_state, resolve_checkpoint, save_checkpoint, verified_file, CheckpointState,
    RngState, EMA_FILE, MODEL_FILE,
};
use crate::run::{
    check_dataset, exploration_rng, load_env, load_run_recipe, resolve_model_config, step_config,
    write_env, RunEnv, RECIPE_FILE,
};
use crate::run_error::RunError;
use crate::step::{Trainable, Trainer};

/// The configuration file of an official run folder.
pub const OFFICIAL_CONFIG_FILE: &str = "all_config.yaml";
/// The key prefix the official trainers save with (`torch.compile`'s `_orig_mod.`, the loss head's `model.`).
pub const OFFICIAL_PREFIX: &str = "_orig_mod.model.";
const PUZZLE_TABLE: &str = "inner.puzzle_emb.weights";
const H_INIT: &str = "inner.H_init";

pub use crate::run::ImportRecord;

/// The dataset sizes given by hand when no dataset is at hand (`--seq-len`, `--vocab-size`,
/// `--num-puzzle-identifiers`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShapeFlags {
    /// Sequence length.
    pub seq_len: Option<u32>,
    /// Token ids.
    pub vocab_size: Option<u32>,
    /// Puzzle identifiers (rows of the puzzle table).
    pub num_puzzle_identifiers: Option<u32>,
}

/// What to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// An official run folder, or the checkpoint file in one.
    pub source: PathBuf,
    /// The dataset the checkpoint was trained on (its `dataset.json` gives the sizes); `None`: `shape`.
    pub dataset_dir: Option<PathBuf>,
    /// The sizes when there is no dataset (each must agree with the dataset when both are given).
    pub shape: ShapeFlags,
    /// The run folder to create.
    pub out: PathBuf,
    /// Replace `out` when it holds a previous import.
    pub force: bool,
    /// `section.key=value` overrides of the recipe made from the YAML.
    pub sets: Vec<String>,
    /// The command line, recorded in `env.json`.
    pub command_line: Vec<String>,
}

/// What [`import_official`] wrote.
#[derive(Debug, Clone)]
pub struct ImportSummary {
    /// The run folder.
    pub run_dir: PathBuf,
    /// The checkpoint file read.
    pub source: PathBuf,
    /// The model.
    pub kind: ModelKind,
    /// The tensors loaded.
    pub tensors: usize,
    /// The recipe made.
    pub recipe: Recipe,
    /// Notes of the configuration mapping.
    pub notes: Vec<String>,
}

/// The checkpoint file, its `all_config.yaml` and the step of its name: `source` is the file, or a folder with
/// `step_<N>` files (the highest N) or a file named `checkpoint` (the published HRM checkpoints).
pub fn locate_source(source: &Path) -> Result<(PathBuf, PathBuf, Option<u64>), RunError> {
    let step_of = |p: &Path| {
        p.file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("step_"))
            .and_then(|n| n.parse::<u64>().ok())
    };
    let file = if source.is_dir() {
        let entries = std::fs::read_dir(source).map_err(RunError::io(source))?;
        let best = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .filter_map(|p| step_of(&p).map(|s| (s, p)))
            .max();
        match best {
            Some((_, p)) => p,
            None if source.join("checkpoint").is_file() => source.join("checkpoint"),
            None => {
                return Err(RunError::config(
                    "SOURCE",
                    format!(
                        "{} holds no `step_<N>` or `checkpoint` file (an official run folder has one beside {OFFICIAL_CONFIG_FILE})",
                        source.display()
                    ),
                ))
            }
        }
    } else if source.is_file() {
        source.to_path_buf()
    } else {
        return Err(RunError::config(
            "SOURCE",
            format!("{} does not exist", source.display()),
        ));
    };
    let yaml = file.with_file_name(OFFICIAL_CONFIG_FILE);
    if !yaml.is_file() {
        return Err(RunError::config(
            "SOURCE",
            format!(
                "{} has no {OFFICIAL_CONFIG_FILE} beside it ({} is missing): the architecture comes from that file",
                file.display(),
                yaml.display()
            ),
        ));
    }
    let step = step_of(&file);
    Ok((file, yaml, step))
}

fn kind_of(d: DType) -> Kind {
    match d {
        DType::F32 => Kind::Float,
        DType::BF16 => Kind::BFloat16,
        DType::F16 => Kind::Half,
        DType::F64 => Kind::Double,
        DType::I64 => Kind::Int64,
        DType::I32 => Kind::Int,
    }
}

fn dtype_of(k: Kind) -> Option<DType> {
    DType::ALL.into_iter().find(|&d| kind_of(d) == k)
}

/// Every tensor of an opened file as a CPU tensor of its own dtype, under its stored key.
pub fn read_tensors(file: &mut TorchFile) -> Result<Vec<(String, Tensor)>, RunError> {
    let infos: Vec<_> = file.tensors().cloned().collect();
    let mut out = Vec::with_capacity(infos.len());
    for info in infos {
        let bytes = file.read(&info.name)?;
        let shape: Vec<i64> = info.shape.iter().map(|&d| d as i64).collect();
        let t = Tensor::f_from_data_size(&bytes, &shape, kind_of(info.dtype))
            .map_err(RunError::tch(format!("building tensor `{}`", info.name)))?;
        out.push((info.name, t));
    }
    Ok(out)
}

/// The dataset sizes: from `dataset_dir`'s `dataset.json` (train and test checked against each other and the
/// recipe later), else from the flags; a flag given beside a dataset must agree with it.
fn data_sizes(
    opts: &ImportOptions,
) -> Result<(DatasetMetadata, Option<DatasetMetadata>), RunError> {
    let flags = opts.shape;
    let Some(dir) = &opts.dataset_dir else {
        let missing: Vec<&str> = [
            ("--seq-len", flags.seq_len),
            ("--vocab-size", flags.vocab_size),
            ("--num-puzzle-identifiers", flags.num_puzzle_identifiers),
        ]
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(n, _)| *n)
        .collect();
        if !missing.is_empty() {
            return Err(RunError::config(
                "--dataset",
                format!(
                    "no dataset given, so the sizes the official code reads from dataset.json are needed as flags: \
                     {} missing",
                    missing.join(", ")
                ),
            ));
        }
        let meta = DatasetMetadata::new(
            flags.vocab_size.unwrap_or_default(),
            flags.seq_len.unwrap_or_default(),
            flags.num_puzzle_identifiers.unwrap_or_default(),
            1,
            1.0,
        );
        return Ok((meta, None));
    };
    let train = hrm_data::layout::load_metadata(dir, "train")?;
    let test = hrm_data::layout::load_metadata(dir, "test")?;
    let file = dir.join("train/dataset.json");
    for (flag, given, have) in [
        ("--seq-len", flags.seq_len, train.seq_len),
        ("--vocab-size", flags.vocab_size, train.vocab_size),
        (
            "--num-puzzle-identifiers",
            flags.num_puzzle_identifiers,
            train.num_puzzle_identifiers,
        ),
    ] {
        if let Some(g) = given.filter(|&g| g != have) {
            return Err(RunError::mismatch(
                flag,
                "the command line",
                g,
                file.display(),
                have,
            ));
        }
    }
    Ok((train, Some(test)))
}

/// Refuses a puzzle table whose rows are not the dataset's identifiers, saying which build would match.
fn check_puzzle_table(
    source: &Path,
    rows: Option<i64>,
    opts: &ImportOptions,
    recipe: &Recipe,
    n: u32,
) -> Result<(), RunError> {
    let Some(rows) = rows.filter(|&r| r != i64::from(n)) else {
        return Ok(());
    };
    let dataset = match &opts.dataset_dir {
        Some(d) => format!("the dataset {} (train/dataset.json)", d.display()),
        None => "--num-puzzle-identifiers".to_string(),
    };
    let build = match recipe.arch.name {
        ModelKind::Trm => "for a TRM checkpoint, a `hrm build-data arc1 --layout trm` build of the same ARC Prize files \
             with the run's --num-aug and --seed (the published TRM checkpoints: --num-aug 1000 --seed 42)"
            .to_string(),
        ModelKind::Hrm => format!(
            "for an HRM checkpoint, a `hrm build-data {}` build of the same sources with the original builder's \
             settings (the published HRM checkpoints: ARC --num-aug 1000 --seed 42; Sudoku --subsample 1000 \
             --num-aug 1000; Maze as built by the reference)",
            recipe.data.task.as_str()
        ),
    };
    Err(RunError::config(
        "num_puzzle_identifiers",
        format!(
            "{}: the puzzle table `{PUZZLE_TABLE}` has {rows} rows, but {dataset} has num_puzzle_identifiers {n}. \
             Puzzle rows line up only with the build the checkpoint was trained on: {build}",
            source.display()
        ),
    ))
}

/// The stored key of each tensor without the official prefixes, with its shape and dtype.
fn stripped<'a>(file: &'a TorchFile, name: &str) -> Option<&'a hrm_torchfile::TensorInfo> {
    file.tensors()
        .find(|t| hrm_model::checkpoint::strip(&t.name) == name)
}

/// Imports an official run folder (see the module doc); returns what was written.
pub fn import_official(opts: &ImportOptions) -> Result<ImportSummary, RunError> {
    let (source, yaml_path, source_step) = locate_source(&opts.source)?;
    check_out_dir(&opts.out, opts.force)?;
    let mut file = TorchFile::open(&source)?;
    let stored_dtype = match stripped(&file, H_INIT).map(|t| t.dtype) {
        Some(DType::BF16) => DtypeSetting::Bfloat16,
        _ => DtypeSetting::Float32,
    };
    let (train_meta, test_meta) = data_sizes(opts)?;
    let yaml = std::fs::read_to_string(&yaml_path).map_err(RunError::io(&yaml_path))?;
    let name = source.parent().and_then(|p| p.file_name()).map_or_else(
        || "imported".to_string(),
        |n| n.to_string_lossy().to_string(),
    );
    let shape = DataShape {
        vocab_size: train_meta.vocab_size as usize,
        seq_len: train_meta.seq_len as usize,
        eval_tasks_only: train_meta
            .selection
            .as_ref()
            .is_some_and(|s| s.evaluation_only),
        max_tasks: train_meta
            .selection
            .as_ref()
            .map_or(0, |s| s.max_tasks as usize),
    };
    let imported = recipe_from_official(
        &yaml_path.display().to_string(),
        &yaml,
        shape,
        stored_dtype,
        &name,
        &opts.sets,
    )?;
    let recipe = imported.recipe;
    if let (Some(dir), Some(test)) = (&opts.dataset_dir, &test_meta) {
        check_dataset(&recipe, dir, &train_meta, test)?;
    }
    let rows = stripped(&file, PUZZLE_TABLE).and_then(|t| t.shape.first().map(|&r| r as i64));
    check_puzzle_table(
        &source,
        rows,
        opts,
        &recipe,
        train_meta.num_puzzle_identifiers,
    )?;
    let config = resolve_model_config(&recipe, &train_meta, Device::Cpu)?;
    let mut model = Model::new(&config, Device::Cpu, recipe.train.seed)?;
    let tensors = read_tensors(&mut file)?;
    let count = tensors.len();
    model.load_state_dict(tensors, &source).map_err(|e| {
        RunError::config(
            "arch",
            format!(
                "{e} (the model built from {} and the dataset sizes)",
                yaml_path.display()
            ),
        )
    })?;
    let record = ImportRecord {
        source: std::fs::canonicalize(&source).unwrap_or(source.clone()),
        sha256: file_sha256(&source)?,
        config: std::fs::canonicalize(&yaml_path).unwrap_or(yaml_path.clone()),
        config_sha256: file_sha256(&yaml_path)?,
        source_step,
        notes: imported.notes.clone(),
    };
    write_run(opts, &recipe, model, record)?;
    Ok(ImportSummary {
        run_dir: opts.out.clone(),
        source,
        kind: recipe.arch.name,
        tensors: count,
        recipe,
        notes: imported.notes,
    })
}

/// Refuses an `out` that holds anything but a previous import (which needs `force`).
fn check_out_dir(out: &Path, force: bool) -> Result<(), RunError> {
    let empty = match std::fs::read_dir(out) {
        Ok(mut d) => d.next().is_none(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(RunError::io(out)(e)),
    };
    if empty {
        return Ok(());
    }
    let previous = load_env(out).ok().and_then(|e| e.imported);
    match (previous, force) {
        (Some(_), true) => Ok(()),
        (Some(p), false) => Err(RunError::config(
            "--out",
            format!(
                "{} holds a previous import (of {}); add --force to replace it",
                out.display(),
                p.source.display()
            ),
        )),
        (None, _) => Err(RunError::config(
            "--out",
            format!(
                "{} exists and is not an imported run folder; pick a new folder (it is never overwritten)",
                out.display()
            ),
        )),
    }
}

/// Writes the run folder into a hidden sibling, then swaps it in for `opts.out`.
fn write_run(
    opts: &ImportOptions,
    recipe: &Recipe,
    model: Model,
    record: ImportRecord,
) -> Result<(), RunError> {
    let out = &opts.out;
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(RunError::io(parent))?;
    let base = out
        .file_name()
        .map_or_else(|| "run".to_string(), |n| n.to_string_lossy().to_string());
    let tmp = parent.join(format!(".{base}.importing-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(RunError::io(&tmp))?;
    }
    let result = fill_run(&tmp, opts, recipe, model, record);
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let old = parent.join(format!(".{base}.replaced-{}", std::process::id()));
    if out.exists() {
        std::fs::rename(out, &old).map_err(RunError::io(out))?;
    }
    if let Err(e) = std::fs::rename(&tmp, out) {
        if old.exists() {
            let _ = std::fs::rename(&old, out);
        }
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(RunError::io(out)(e));
    }
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(RunError::io(&old))?;
    }
    Ok(())
}

fn fill_run(
    dir: &Path,
    opts: &ImportOptions,
    recipe: &Recipe,
    model: Model,
    record: ImportRecord,
) -> Result<(), RunError> {
    std::fs::create_dir_all(dir).map_err(RunError::io(dir))?;
    hrm_data::write_atomic(&dir.join(RECIPE_FILE), recipe.to_toml().as_bytes())?;
    let dataset_fingerprint = match &opts.dataset_dir {
        Some(d) => Some(hrm_data::layout::dataset_fingerprint(d)?),
        None => None,
    };
    let env = RunEnv {
        git_commit: crate::run::git_commit(),
        libtorch: crate::run::LIBTORCH_VERSION.into(),
        device: "cpu".into(),
        dtype: model.config().forward_dtype.to_string(),
        seed: recipe.train.seed,
        hostname: crate::run::hostname(),
        start_time_unix: crate::run::unix_now(),
        command_line: opts.command_line.clone(),
        dataset: opts
            .dataset_dir
            .as_ref()
            .map(|d| std::fs::canonicalize(d).unwrap_or(d.clone()))
            .unwrap_or_default(),
        resumes: Vec::new(),
        dataset_fingerprint,
        changes: Vec::new(),
        imported: Some(record),
        threads: None,
    };
    write_env(dir, &env)?;
    hrm_data::write_atomic(&dir.join(crate::checkpoint::METRICS_FILE), b"")?;
    let config = step_config(recipe, 1);
    let micro_batches = config.micro_batches;
    let mut trainer = Trainer::new(model, config)?;
    if recipe.train.freeze_weights {
        trainer.set_trainable(Trainable::PuzzleTableOnly)?;
    }
    if recipe.train.ema {
        trainer.enable_ema(recipe.train.ema_rate)?;
    }
    let state = CheckpointState {
        step: 0,
        sampler: Default::default(),
        rng: RngState::capture(&exploration_rng(recipe.train.seed)),
        iterations_done: 0,
        kept: true,
        finished: false,
        elapsed_seconds: 0.0,
        micro_batches,
        metrics_lines: 0,
        log_window: Default::default(),
    };
    save_checkpoint(dir, &trainer, &state)?;
    Ok(())
}

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The run folder.
    pub run_dir: PathBuf,
    /// `latest` (or `None`), `step_<N>`, or a checkpoint folder.
    pub checkpoint: Option<String>,
    /// The folder to write `step_<N>` and `all_config.yaml` into (created; must not exist or be empty).
    pub out: PathBuf,
}

/// What [`export_official`] wrote.
#[derive(Debug, Clone)]
pub struct ExportSummary {
    /// The `step_<N>` file.
    pub file: PathBuf,
    /// The `all_config.yaml`.
    pub config: PathBuf,
    /// The tensors written.
    pub tensors: usize,
    /// Whether the EMA weights were written (as the official trainer does for EMA runs).
    pub ema: bool,
}

/// The tensors of a safetensors weights file as official state-dict entries (`_orig_mod.model.<name>`, sorted by
/// name, dtypes as stored).
fn official_tensors(weights: &Path) -> Result<Vec<TensorOut>, RunError> {
    let raw = Tensor::read_safetensors(weights)
        .map_err(RunError::tch(format!("reading {}", weights.display())))?;
    let mut sorted: Vec<(String, Tensor)> = raw;
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut tensors = Vec::with_capacity(sorted.len());
    for (name, t) in sorted {
        let dtype = dtype_of(t.kind()).ok_or_else(|| {
            RunError::config(
                "checkpoint",
                format!(
                    "{}: tensor `{name}` has kind {:?}",
                    weights.display(),
                    t.kind()
                ),
            )
        })?;
        let t = t.contiguous();
        let numel = t.numel();
        let mut data = vec![0u8; numel * dtype.size()];
        t.f_copy_data_u8(&mut data, numel)
            .map_err(RunError::tch(format!("reading tensor `{name}`")))?;
        tensors.push(TensorOut {
            name: format!("{OFFICIAL_PREFIX}{name}"),
            dtype,
            shape: t.size().iter().map(|&d| d as u64).collect(),
            data,
        });
    }
    Ok(tensors)
}

/// Writes `file_name` and `all_config.yaml` into `out` (absent or empty) through a temporary sibling folder,
/// renamed into place only when both are complete.
fn write_official_folder(
    out: &Path,
    file_name: &str,
    tensors: &[TensorOut],
    yaml: &str,
) -> Result<(), RunError> {
    if std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some()) {
        return Err(RunError::config(
            "--out",
            format!(
                "{} exists and is not empty; pick a new folder",
                out.display()
            ),
        ));
    }
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(RunError::io(parent))?;
    let tmp = parent.join(format!(
        ".{}.exporting-{}",
        out.file_name()
            .map_or("export".into(), |n| n.to_string_lossy()),
        std::process::id()
    ));
    let written = (|| -> Result<(), RunError> {
        std::fs::create_dir_all(&tmp).map_err(RunError::io(&tmp))?;
        hrm_torchfile::write_state_dict(&tmp.join(file_name), tensors)?;
        hrm_data::write_atomic(
            &tmp.join(crate::official::OFFICIAL_CONFIG_FILE),
            yaml.as_bytes(),
        )?;
        if out.exists() {
            std::fs::remove_dir(out).map_err(RunError::io(out))?;
        }
        std::fs::rename(&tmp, out).map_err(RunError::io(out))
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    Ok(())
}

/// Writes a run's checkpoint as an official run folder: `step_<N>` (`torch.save` format, keys
/// `_orig_mod.model.<name>`, dtypes as stored: fp32 weights, `H_init`/`L_init` in the forward dtype) and
/// `all_config.yaml`. An EMA run writes its EMA weights, as the official TRM trainer saves them.
pub fn export_official(opts: &ExportOptions) -> Result<ExportSummary, RunError> {
    let recipe = load_run_recipe(&opts.run_dir)?;
    let ckpt = resolve_checkpoint(&opts.run_dir, opts.checkpoint.as_deref())?;
    let state = load_state(&ckpt)?;
    let config = crate::checkpoint::load_model_config(&ckpt)?;
    let weights = verified_file(
        &ckpt,
        if recipe.train.ema {
            EMA_FILE
        } else {
            MODEL_FILE
        },
    )?;
    let tensors = official_tensors(&weights)?;
    let env = load_env(&opts.run_dir)?;
    // The dataset the run was trained on; an import without one names the folder its recipe would build.
    let data_path = match env.dataset.as_os_str().is_empty() {
        true => format!("data/{}", recipe.dataset_name()),
        false => env.dataset.display().to_string(),
    };
    let yaml = official_yaml(&recipe, &config.forward_dtype.to_string(), &data_path);
    let out = &opts.out;
    let file_name = format!("step_{}", state.step);
    write_official_folder(out, &file_name, &tensors, &yaml)?;
    Ok(ExportSummary {
        file: out.join(file_name),
        config: out.join(OFFICIAL_CONFIG_FILE),
        tensors: tensors.len(),
        ema: recipe.train.ema,
    })
}
