//! The official trainers' `all_config.yaml` (`pretrain.py`'s `PretrainConfig`, dumped with `yaml.dump`) read into
//! a [`Recipe`], and a recipe written back as one. Follows `pretrain.py` and `config/arch/*.yaml` of
//! sapientinc/HRM (`hrm.hrm_act_v1@HierarchicalReasoningModel_ACTV1`) and SamsungSAILMontreal/TinyRecursiveModels
//! (`recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1`), with the defaults of their model configs.
//!
//! The file holds no `seq_len`, `vocab_size`, `num_puzzle_identifiers` or `batch_size`: the official code takes
//! them from the dataset's `dataset.json`, and so does the caller here ([`DataShape`]). Every arch field maps to
//! [`ArchSection`]; an arch field this port does not know changes the model, so it is refused. Every training
//! key maps where [`TrainSection`] has it; the rest are listed in [`OfficialImport::notes`].

use std::collections::BTreeMap;

use serde_yaml_ng::{Mapping, Value};

use crate::{
    ArchSection, DataSection, DtypeSetting, EvalSection, LossType, ModelKind, PosEncoding, Recipe,
    RecipeError, Task, TrainSection,
};
use hrm_grid::TaskFamily;

/// `arch.name` of the official HRM.
pub const HRM_ARCH_NAME: &str = "hrm.hrm_act_v1@HierarchicalReasoningModel_ACTV1";
/// `arch.name` of the official TRM.
pub const TRM_ARCH_NAME: &str = "recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1";
/// `arch.loss.name` of both.
pub const LOSS_HEAD_NAME: &str = "losses@ACTLossHead";

/// The dataset sizes the official code reads from `dataset.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataShape {
    /// Token ids.
    pub vocab_size: usize,
    /// Sequence length.
    pub seq_len: usize,
    /// ARC: the build kept only evaluation tasks (`dataset.json`'s `selection`).
    pub eval_tasks_only: bool,
    /// ARC: the build kept at most this many tasks (0 = all).
    pub max_tasks: usize,
}

/// A recipe made from an official `all_config.yaml`, with what the mapping decided or left out.
#[derive(Debug, Clone)]
pub struct OfficialImport {
    /// The recipe (validated).
    pub recipe: Recipe,
    /// One line per key that has no counterpart here, per default filled in and per guess made.
    pub notes: Vec<String>,
}

/// Training keys of `PretrainConfig` with no counterpart in a recipe, which do not change the model or the
/// optimisation: names, paths and logging.
const INFORMATIONAL: [&str; 10] = [
    "data_path",
    "data_paths",
    "data_paths_test",
    "project_name",
    "run_name",
    "checkpoint_path",
    "load_checkpoint",
    "eval_save_outputs",
    "evaluators",
    "min_eval_interval",
];

struct Reader<'a> {
    origin: &'a str,
    map: &'a Mapping,
    section: &'a str,
    used: Vec<String>,
}

impl<'a> Reader<'a> {
    fn bad(&self, key: &str, message: String) -> RecipeError {
        RecipeError::Invalid {
            origin: self.origin.to_string(),
            field: format!("{}{key}", self.section),
            message,
        }
    }

    fn get(&mut self, key: &str) -> Option<&'a Value> {
        self.used.push(key.to_string());
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn f64_or(&mut self, key: &str, default: Option<f64>) -> Result<f64, RecipeError> {
        match self.get(key) {
            Some(v) => v
                .as_f64()
                .ok_or_else(|| self.bad(key, format!("{v:?} is not a number"))),
            None => default.ok_or_else(|| self.bad(key, "missing".into())),
        }
    }

    fn i64_or(&mut self, key: &str, default: Option<i64>) -> Result<i64, RecipeError> {
        match self.get(key) {
            Some(v) => v
                .as_i64()
                .ok_or_else(|| self.bad(key, format!("{v:?} is not an integer"))),
            None => default.ok_or_else(|| self.bad(key, "missing".into())),
        }
    }

    fn usize_or(&mut self, key: &str, default: Option<usize>) -> Result<usize, RecipeError> {
        let v = self.i64_or(key, default.map(|d| d as i64))?;
        usize::try_from(v).map_err(|_| self.bad(key, format!("{v} is negative")))
    }

    fn bool_or(&mut self, key: &str, default: bool) -> Result<bool, RecipeError> {
        match self.get(key) {
            Some(v) => v
                .as_bool()
                .ok_or_else(|| self.bad(key, format!("{v:?} is not a bool"))),
            None => Ok(default),
        }
    }

    fn str_or(&mut self, key: &str, default: Option<&str>) -> Result<String, RecipeError> {
        match self.get(key) {
            Some(v) => v
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| self.bad(key, format!("{v:?} is not a string"))),
            None => default
                .map(str::to_string)
                .ok_or_else(|| self.bad(key, "missing".into())),
        }
    }

    fn parse<T: std::str::FromStr>(
        &mut self,
        key: &str,
        default: Option<&str>,
    ) -> Result<T, RecipeError>
    where
        T::Err: std::fmt::Display,
    {
        let s = self.str_or(key, default)?;
        s.parse().map_err(|e: T::Err| self.bad(key, e.to_string()))
    }

    /// The keys of the mapping that were never asked for.
    fn unused(&self) -> Vec<String> {
        self.map
            .keys()
            .map(|k| k.as_str().map_or_else(|| format!("{k:?}"), str::to_string))
            .filter(|k| !self.used.contains(k))
            .collect()
    }
}

/// Reads an official `all_config.yaml` (text `yaml`, named `origin` in errors) into a recipe called `name` for a
/// dataset of `shape`. `stored_dtype` is the forward dtype the checkpoint's `H_init` was saved in: the value used
/// when the file has no `arch.forward_dtype` (the official default is bfloat16, and the buffers are created in
/// the forward dtype, so the file tells which one the run used). `overrides` are `--set` keys applied last.
pub fn recipe_from_official(
    origin: &str,
    yaml: &str,
    shape: DataShape,
    stored_dtype: DtypeSetting,
    name: &str,
    overrides: &[String],
) -> Result<OfficialImport, RecipeError> {
    let root: Value = serde_yaml_ng::from_str(yaml).map_err(|e| RecipeError::Parse {
        origin: origin.to_string(),
        message: e.to_string(),
    })?;
    let top = root.as_mapping().ok_or_else(|| RecipeError::Parse {
        origin: origin.to_string(),
        message: "the file is not a YAML mapping".into(),
    })?;
    let mut notes = Vec::new();
    let mut t = Reader {
        origin,
        map: top,
        section: "",
        used: Vec::new(),
    };
    let arch_map = t
        .get("arch")
        .and_then(Value::as_mapping)
        .ok_or_else(|| t.bad("arch", "missing, or not a mapping".into()))?;
    let arch = read_arch(origin, arch_map, stored_dtype, &mut notes)?;
    let train = read_train(&mut t, &mut notes)?;
    let data_path = data_path_hint(top);
    let data = data_section(origin, shape, &data_path, &mut notes)?;
    for key in t.unused() {
        notes.push(format!("`{key}` is not known to this port; ignored"));
    }
    for key in INFORMATIONAL {
        if let Some(v) = top.get(key).filter(|v| !v.is_null()) {
            let ignored = match key {
                "min_eval_interval" if v.as_i64() != Some(0) => {
                    "evaluations here start at the first interval"
                }
                "evaluators" if v.as_sequence().is_some_and(|s| !s.is_empty()) => {
                    "hrm eval scores ARC with both metrics whatever is listed"
                }
                _ => continue,
            };
            notes.push(format!("`{key}` = {}: {ignored}", compact(v)));
        }
    }
    let recipe = Recipe {
        name: name.to_string(),
        description: format!("Imported from the official run configuration {origin}"),
        anchor: None,
        data,
        eval: EvalSection {
            batch_size: train.global_batch_size,
            refinement_examples: 8,
            max_examples: 0,
        },
        arch,
        train,
        overrides: Vec::new(),
    };
    let recipe = Recipe::from_toml_str(origin, &recipe.to_toml(), overrides)?;
    Ok(OfficialImport { recipe, notes })
}

fn compact(v: &Value) -> String {
    serde_yaml_ng::to_string(v)
        .map(|s| s.trim().replace('\n', " "))
        .unwrap_or_default()
}

fn read_arch(
    origin: &str,
    map: &Mapping,
    stored_dtype: DtypeSetting,
    notes: &mut Vec<String>,
) -> Result<ArchSection, RecipeError> {
    let mut a = Reader {
        origin,
        map,
        section: "arch.",
        used: Vec::new(),
    };
    let kind = match a.str_or("name", None)?.as_str() {
        HRM_ARCH_NAME => ModelKind::Hrm,
        TRM_ARCH_NAME => ModelKind::Trm,
        other => {
            return Err(a.bad(
                "name",
                format!(
                "`{other}` is neither the official HRM ({HRM_ARCH_NAME}) nor TRM ({TRM_ARCH_NAME})"
            ),
            ))
        }
    };
    let loss = read_loss(origin, a.get("loss"))?;
    let hidden_size = a.i64_or("hidden_size", None)?;
    let forward_dtype = match a.get("forward_dtype") {
        Some(_) => a.parse("forward_dtype", None)?,
        None => {
            notes.push(format!(
                "arch.forward_dtype is absent (official default bfloat16): {stored_dtype}, the dtype the \
                 checkpoint stores H_init in"
            ));
            stored_dtype
        }
    };
    let trm = kind == ModelKind::Trm;
    let arch = ArchSection {
        name: kind,
        hidden_size,
        num_heads: a.i64_or("num_heads", None)?,
        expansion: a.f64_or("expansion", None)?,
        h_layers: a.i64_or("H_layers", None)?,
        l_layers: a.i64_or("L_layers", None)?,
        h_cycles: a.i64_or("H_cycles", None)?,
        l_cycles: a.i64_or("L_cycles", None)?,
        halt_max_steps: a.i64_or("halt_max_steps", None)?,
        halt_exploration_prob: a.f64_or("halt_exploration_prob", None)?,
        pos_encodings: a.parse::<PosEncoding>("pos_encodings", None)?,
        puzzle_emb_ndim: a.i64_or("puzzle_emb_ndim", Some(0))?,
        // TRM's model config defaults puzzle_emb_len to 16; HRM has no such field (its rule is ours for 0).
        puzzle_emb_len: if trm {
            a.i64_or("puzzle_emb_len", Some(16))?
        } else {
            0
        },
        mlp_t: if trm {
            a.bool_or("mlp_t", false)?
        } else {
            false
        },
        no_act_continue: if trm {
            a.bool_or("no_ACT_continue", true)?
        } else {
            true
        },
        rms_norm_eps: a.f64_or("rms_norm_eps", Some(1e-5))?,
        rope_theta: a.f64_or("rope_theta", Some(10000.0))?,
        forward_dtype,
        loss_type: loss,
    };
    refuse_leftovers(&mut a, kind, notes)?;
    Ok(arch)
}

/// Notes the arch sizes the official trainer takes from the dataset, and refuses any arch field left unread
/// (arch fields change the model).
fn refuse_leftovers(
    a: &mut Reader<'_>,
    kind: ModelKind,
    notes: &mut Vec<String>,
) -> Result<(), RecipeError> {
    // Sizes the official trainer sets from the dataset and batch, whatever the file says.
    for key in [
        "batch_size",
        "seq_len",
        "vocab_size",
        "num_puzzle_identifiers",
    ] {
        if a.get(key).is_some() {
            notes.push(format!(
                "arch.{key} is set by the dataset and the batch, as pretrain.py does; ignored"
            ));
        }
    }
    let unknown = a.unused();
    if !unknown.is_empty() {
        return Err(a.bad(
            &unknown[0],
            format!(
                "arch field(s) {} of the {} model are not known to this port, and arch fields change the model",
                unknown.join(", "),
                kind.as_str()
            ),
        ));
    }
    Ok(())
}

fn read_loss(origin: &str, loss: Option<&Value>) -> Result<LossType, RecipeError> {
    let bad = |message: String| RecipeError::Invalid {
        origin: origin.to_string(),
        field: "arch.loss".into(),
        message,
    };
    let map = loss
        .and_then(Value::as_mapping)
        .ok_or_else(|| bad("missing, or not a mapping".into()))?;
    let mut l = Reader {
        origin,
        map,
        section: "arch.loss.",
        used: Vec::new(),
    };
    let name = l.str_or("name", None)?;
    if name != LOSS_HEAD_NAME {
        return Err(bad(format!(
            "loss head `{name}` (only {LOSS_HEAD_NAME} is ported)"
        )));
    }
    let loss_type = l.parse("loss_type", None)?;
    if let Some(k) = l.unused().first() {
        return Err(bad(format!("loss field `{k}` is not known to this port")));
    }
    Ok(loss_type)
}

fn read_train(t: &mut Reader<'_>, notes: &mut Vec<String>) -> Result<TrainSection, RecipeError> {
    let epochs = t.usize_or("epochs", None)?;
    let eval_interval = match t.usize_or("eval_interval", Some(0))? {
        0 => {
            notes.push(
                "eval_interval is absent: one evaluation at the end, as pretrain.py does".into(),
            );
            epochs
        }
        n => n,
    };
    for key in INFORMATIONAL {
        t.get(key);
    }
    Ok(TrainSection {
        global_batch_size: t.usize_or("global_batch_size", None)?,
        micro_batch_size: 0,
        epochs,
        eval_interval,
        lr: t.f64_or("lr", None)?,
        lr_min_ratio: t.f64_or("lr_min_ratio", None)?,
        lr_warmup_steps: t.usize_or("lr_warmup_steps", None)?,
        beta1: t.f64_or("beta1", None)?,
        beta2: t.f64_or("beta2", None)?,
        weight_decay: t.f64_or("weight_decay", None)?,
        puzzle_emb_lr: t.f64_or("puzzle_emb_lr", None)?,
        puzzle_emb_weight_decay: t.f64_or("puzzle_emb_weight_decay", None)?,
        seed: t.usize_or("seed", Some(0))? as u64,
        checkpoint_every_eval: t.bool_or("checkpoint_every_eval", false)?,
        max_steps: 0,
        max_minutes: 0.0,
        log_every: 10,
        checkpoint_every_steps: 0,
        ema: t.bool_or("ema", false)?,
        ema_rate: t.f64_or("ema_rate", Some(0.999))?,
        freeze_weights: t.bool_or("freeze_weights", false)?,
    })
}

/// The dataset path the run was trained on (`data_path` of HRM, the first of `data_paths` of TRM), or "".
fn data_path_hint(top: &Mapping) -> String {
    top.get("data_path")
        .and_then(Value::as_str)
        .or_else(|| {
            top.get("data_paths")
                .and_then(Value::as_sequence)
                .and_then(|s| s.first())
                .and_then(Value::as_str)
        })
        .unwrap_or_default()
        .to_string()
}

/// The data section for a dataset of `shape`: the task family from the vocabulary, ARC-AGI-2 when the trained
/// data path names it, the canvas from the sequence length, the augmentation count from `aug-<N>` in the path.
fn data_section(
    origin: &str,
    shape: DataShape,
    data_path: &str,
    notes: &mut Vec<String>,
) -> Result<DataSection, RecipeError> {
    let bad = |message: String| RecipeError::Invalid {
        origin: origin.to_string(),
        field: "data".into(),
        message,
    };
    let lower = data_path.to_ascii_lowercase();
    let task = match TaskFamily::from_vocab_size(shape.vocab_size) {
        Some(TaskFamily::Arc)
            if ["arc2", "arc-2", "arc_2", "agi-2", "agi_2"]
                .iter()
                .any(|k| lower.contains(k)) =>
        {
            Task::Arc2
        }
        Some(TaskFamily::Arc) => Task::Arc1,
        Some(TaskFamily::Sudoku) => Task::Sudoku,
        Some(TaskFamily::Maze) => Task::Maze,
        None => {
            return Err(bad(format!(
                "vocab_size {} is none of ARC's, Sudoku's or Maze's",
                shape.vocab_size
            )))
        }
    };
    let canvas = if task.is_arc() {
        let side = (shape.seq_len as f64).sqrt().round() as usize;
        if side * side != shape.seq_len || !(1..=30).contains(&side) {
            return Err(bad(format!(
                "seq_len {} is not an ARC canvas (side² up to 30²)",
                shape.seq_len
            )));
        }
        side
    } else {
        let want = task.seq_len(30);
        if shape.seq_len != want {
            return Err(bad(format!(
                "seq_len {} for {}: its datasets have {want}",
                shape.seq_len,
                task.as_str()
            )));
        }
        30
    };
    let num_aug = lower
        .split("aug-")
        .nth(1)
        .map(|s| {
            s.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|d| d.parse().ok())
        .unwrap_or(0);
    notes.push(format!(
        "data: task {}, num_aug {num_aug} (from the trained data path `{data_path}`), seed 42 (the official \
         builders' default); change them with --set data.<key>=... if the dataset was built otherwise",
        task.as_str()
    ));
    Ok(DataSection {
        task,
        num_aug,
        seed: 42,
        canvas,
        eval_tasks_only: shape.eval_tasks_only,
        max_tasks: shape.max_tasks,
        subsample: 1000,
        test_size: 0,
        sources: Vec::new(),
        // The dataset is given to `hrm import`, not built from this section; a TRM-layout build's settings
        // (its sources) are not in all_config.yaml, so the section keeps the default layout.
        layout: crate::DataLayout::default(),
    })
}

/// The `all_config.yaml` of a recipe, as the official `pretrain.py` of its model writes one (`yaml.dump` of
/// `PretrainConfig`, keys sorted): `forward_dtype` is the resolved dtype of the checkpoint, `data_path` the
/// dataset folder. HRM's file has only HRM's keys; TRM's adds its arch fields and `ema`, `freeze_weights`.
pub fn official_yaml(recipe: &Recipe, forward_dtype: &str, data_path: &str) -> String {
    let a = &recipe.arch;
    let t = &recipe.train;
    let trm = a.name == ModelKind::Trm;
    let mut arch: BTreeMap<&str, Value> = BTreeMap::new();
    let mut loss = Mapping::new();
    loss.insert("loss_type".into(), a.loss_type.as_str().into());
    loss.insert("name".into(), LOSS_HEAD_NAME.into());
    arch.insert("loss", Value::Mapping(loss));
    arch.insert(
        "name",
        if trm { TRM_ARCH_NAME } else { HRM_ARCH_NAME }.into(),
    );
    for (k, v) in [
        ("H_cycles", a.h_cycles),
        ("H_layers", a.h_layers),
        ("L_cycles", a.l_cycles),
        ("L_layers", a.l_layers),
        ("halt_max_steps", a.halt_max_steps),
        ("hidden_size", a.hidden_size),
        ("num_heads", a.num_heads),
        ("puzzle_emb_ndim", a.puzzle_emb_ndim),
    ] {
        arch.insert(k, v.into());
    }
    for (k, v) in [
        ("expansion", a.expansion),
        ("halt_exploration_prob", a.halt_exploration_prob),
        ("rms_norm_eps", a.rms_norm_eps),
        ("rope_theta", a.rope_theta),
    ] {
        arch.insert(k, v.into());
    }
    arch.insert("pos_encodings", a.pos_encodings.as_str().into());
    arch.insert("forward_dtype", forward_dtype.into());
    if trm {
        arch.insert("mlp_t", a.mlp_t.into());
        arch.insert("puzzle_emb_len", a.puzzle_emb_len.into());
        arch.insert("no_ACT_continue", a.no_act_continue.into());
    }
    let mut top: BTreeMap<&str, Value> = BTreeMap::new();
    top.insert("arch", serde_yaml_ng::to_value(&arch).unwrap_or_default());
    for (k, v) in [
        ("lr", t.lr),
        ("lr_min_ratio", t.lr_min_ratio),
        ("weight_decay", t.weight_decay),
        ("beta1", t.beta1),
        ("beta2", t.beta2),
        ("puzzle_emb_lr", t.puzzle_emb_lr),
        ("puzzle_emb_weight_decay", t.puzzle_emb_weight_decay),
    ] {
        top.insert(k, v.into());
    }
    for (k, v) in [
        ("global_batch_size", t.global_batch_size),
        ("epochs", t.epochs),
        ("lr_warmup_steps", t.lr_warmup_steps),
        ("eval_interval", t.eval_interval),
    ] {
        top.insert(k, (v as u64).into());
    }
    top.insert("seed", t.seed.into());
    top.insert("checkpoint_every_eval", t.checkpoint_every_eval.into());
    top.insert("run_name", recipe.name.as_str().into());
    if trm {
        top.insert("data_paths", Value::Sequence(vec![data_path.into()]));
        top.insert("data_paths_test", Value::Sequence(Vec::new()));
        top.insert("evaluators", Value::Sequence(Vec::new()));
        top.insert("ema", t.ema.into());
        top.insert("ema_rate", t.ema_rate.into());
        top.insert("freeze_weights", t.freeze_weights.into());
    } else {
        top.insert("data_path", data_path.into());
    }
    serde_yaml_ng::to_string(&top).unwrap_or_default()
}
