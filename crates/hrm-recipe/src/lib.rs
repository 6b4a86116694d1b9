//! Experiment recipes: one TOML file is one experiment (data, architecture, training, evaluation).
//! Follows the reference's `config/cfg_pretrain.yaml` and `config/arch/hrm_v1.yaml`.
//!
//! Presets live in `recipes/*.toml` at the workspace root and are compiled in, so `hrm train arc1` works from
//! anywhere; a path to a `.toml` file works too. `--set section.key=value` overrides are applied to the raw
//! TOML before it is checked, and the resolved recipe (with the overrides) is what a run folder records.

pub mod official;

pub use hrm_arch::{DtypeSetting, LossType, ModelKind, PosEncoding};
use hrm_grid::codec::ARC_CANVAS;
pub use hrm_grid::Task;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Errors from reading, overriding or checking a recipe.
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    /// The name is neither a preset nor a readable file.
    #[error("unknown recipe `{name}`: not a preset ({presets}) and not a readable .toml file")]
    Unknown {
        /// What the user asked for.
        name: String,
        /// The preset names.
        presets: String,
    },
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The TOML does not parse or does not match the recipe schema.
    #[error("recipe {origin}: {message}")]
    Parse {
        /// The preset name or file path.
        origin: String,
        /// What is wrong (names the field).
        message: String,
    },
    /// A `--set` override is malformed or names no field.
    #[error("override `{spec}`: {message}")]
    Override {
        /// The override as given.
        spec: String,
        /// What is wrong.
        message: String,
    },
    /// A value is out of its legal range.
    #[error("recipe {origin}: field `{field}`: {message}")]
    Invalid {
        /// The preset name or file path.
        origin: String,
        /// The dotted field name.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// The published figure a recipe is measured against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Anchor {
    /// The metric name, e.g. `arc/pass@2` or `eval/exact_accuracy`.
    pub metric: String,
    /// The published value as a fraction.
    pub value: f64,
    /// Where it comes from.
    pub source: String,
}

/// How the dataset is built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// The task family.
    pub task: Task,
    /// Augmented variants per task (ARC), shuffles per puzzle (Sudoku), 0 or 8 dihedral copies (Maze).
    pub num_aug: usize,
    /// The builder's seed (the reference ARC builder uses 42).
    pub seed: u64,
    /// ARC only: side of the square canvas (30 = the paper; smaller keeps only tasks whose grids fit).
    #[serde(default = "default_canvas")]
    pub canvas: usize,
    /// ARC only: keep only ARC-AGI evaluation tasks (no training tasks, no ConceptARC), for small CPU runs.
    #[serde(default)]
    pub eval_tasks_only: bool,
    /// Keep at most this many tasks / puzzles (0 = all).
    #[serde(default)]
    pub max_tasks: usize,
    /// Sudoku only: training puzzles drawn from the hard pool.
    #[serde(default = "default_subsample")]
    pub subsample: usize,
    /// Sudoku only: held-out test puzzles (0 = the builder's default).
    #[serde(default)]
    pub test_size: usize,
    /// ARC only: where the tasks come from, instead of the task's preset folders (empty = the preset). Each
    /// entry is `PATH`, `train=PATH` or `test=PATH`, relative to the data folder: a folder of task files (with
    /// subfolders), one task file, or an ARC Prize `*_challenges.json` file (see `hrm build-data --help`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// ARC only: the on-disk layout, `hrm` (this project's builder, the default) or `trm` (TRM's
    /// `build_arc_dataset.py`, byte for byte, from ARC Prize `*_challenges.json` sources with one `test=`).
    #[serde(default, skip_serializing_if = "DataLayout::is_default")]
    pub layout: DataLayout,
}

/// The layout an ARC build writes (`data.layout`, `hrm build-data --layout`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataLayout {
    /// This project's builder (HRM's layout and rules, its own task order and random streams).
    #[default]
    Hrm,
    /// The exact bytes of TRM's `dataset/build_arc_dataset.py`.
    Trm,
}

impl DataLayout {
    /// Every layout, in `--help` order.
    pub const ALL: [DataLayout; 2] = [DataLayout::Hrm, DataLayout::Trm];

    /// The spelling of recipes and flags.
    pub fn as_str(self) -> &'static str {
        match self {
            DataLayout::Hrm => "hrm",
            DataLayout::Trm => "trm",
        }
    }

    fn is_default(&self) -> bool {
        *self == DataLayout::default()
    }
}

impl std::fmt::Display for DataLayout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for DataLayout {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        DataLayout::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| format!("unknown layout `{s}` (expected hrm or trm)"))
    }
}

/// The settings a TRM-layout build (`data.layout = "trm"`) accepts: ARC, ARC Prize sources, TRM's defaults
/// for everything its builder has no option for, and a seed numpy's `np.random.seed` takes.
fn check_trm_layout(d: &DataSection, origin: &str) -> Result<(), RecipeError> {
    let bad = |field: &str, message: &str| RecipeError::Invalid {
        origin: origin.to_string(),
        field: field.to_string(),
        message: message.to_string(),
    };
    let trm = |field: &str, what: &str| {
        bad(
            field,
            &format!("{what} with data.layout = \"trm\" (TRM's builder has no such option)"),
        )
    };
    if !matches!(d.task, Task::Arc1 | Task::Arc2) {
        return Err(trm("data.layout", "only ARC tasks (arc1, arc2) are built"));
    }
    if d.sources.is_empty() {
        return Err(trm(
            "data.sources",
            "ARC Prize `*_challenges.json` sources (one `test=`) are needed",
        ));
    }
    if d.canvas != ARC_CANVAS || d.eval_tasks_only || d.max_tasks != 0 {
        let field = if d.canvas != ARC_CANVAS {
            "data.canvas"
        } else if d.eval_tasks_only {
            "data.eval_tasks_only"
        } else {
            "data.max_tasks"
        };
        return Err(trm(
            field,
            "only the defaults (30x30 canvas, every task) are accepted",
        ));
    }
    if d.seed > u64::from(u32::MAX) {
        return Err(bad(
            "data.seed",
            "must be below 2^32 with data.layout = \"trm\" (numpy's np.random.seed)",
        ));
    }
    Ok(())
}

fn default_canvas() -> usize {
    30
}
fn default_subsample() -> usize {
    1000
}

/// The architecture; names follow the reference `arch/hrm_v1.yaml` (HRM) and `arch/trm.yaml` (TRM).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchSection {
    /// The model: `hrm` (the default) or `trm`.
    #[serde(default)]
    pub name: ModelKind,
    /// Hidden size D.
    pub hidden_size: i64,
    /// Attention heads.
    pub num_heads: i64,
    /// SwiGLU expansion.
    pub expansion: f64,
    /// Blocks in H (ignored by TRM).
    #[serde(rename = "H_layers")]
    pub h_layers: i64,
    /// Blocks in L (TRM: the blocks of its one network).
    #[serde(rename = "L_layers")]
    pub l_layers: i64,
    /// High-level cycles N.
    #[serde(rename = "H_cycles")]
    pub h_cycles: i64,
    /// Low-level cycles T.
    #[serde(rename = "L_cycles")]
    pub l_cycles: i64,
    /// M_max.
    pub halt_max_steps: i64,
    /// ε.
    pub halt_exploration_prob: f64,
    /// `rope`, `learned` or `none`.
    pub pos_encodings: PosEncoding,
    /// Puzzle-embedding width (= hidden_size in the paper).
    pub puzzle_emb_ndim: i64,
    /// TRM: puzzle-prefix tokens (0 = ceil(puzzle_emb_ndim / hidden_size), HRM's rule; HRM always uses that rule).
    #[serde(default)]
    pub puzzle_emb_len: i64,
    /// TRM: SwiGLU across the sequence axis instead of attention in every block.
    #[serde(default)]
    pub mlp_t: bool,
    /// TRM: halt on `q_halt > 0` alone, with no Q-target pass and no q_continue loss (ignored by HRM).
    #[serde(default = "default_true", rename = "no_ACT_continue")]
    pub no_act_continue: bool,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// RoPE θ.
    pub rope_theta: f64,
    /// `bfloat16`, `float32` or `auto` (bf16 on CUDA, f32 on CPU).
    pub forward_dtype: DtypeSetting,
    /// `stablemax_cross_entropy` or `softmax_cross_entropy`.
    pub loss_type: LossType,
}

fn default_true() -> bool {
    true
}

/// Optimisation and the training loop (spec 7.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSection {
    /// Global batch (sequences per optimizer step).
    pub global_batch_size: usize,
    /// Micro-batch size for gradient accumulation (0 = the global batch in one piece).
    #[serde(default)]
    pub micro_batch_size: usize,
    /// Epochs (passes over the groups).
    pub epochs: usize,
    /// Epochs per evaluation iteration.
    pub eval_interval: usize,
    /// Base learning rate of AdamATan2.
    pub lr: f64,
    /// Cosine floor as a fraction of the base rate (1.0 = constant after warm-up).
    pub lr_min_ratio: f64,
    /// Linear warm-up steps.
    pub lr_warmup_steps: usize,
    /// Adam β1.
    pub beta1: f64,
    /// Adam β2.
    pub beta2: f64,
    /// Decoupled weight decay of AdamATan2.
    pub weight_decay: f64,
    /// Base learning rate of the puzzle-embedding sign-SGD.
    pub puzzle_emb_lr: f64,
    /// Weight decay of the puzzle-embedding sign-SGD.
    pub puzzle_emb_weight_decay: f64,
    /// Seed of the model init, the sampler and ACT exploration.
    pub seed: u64,
    /// Keep a checkpoint at every evaluation.
    pub checkpoint_every_eval: bool,
    /// Stop after this many optimizer steps (0 = the computed total).
    #[serde(default)]
    pub max_steps: usize,
    /// Stop (with a checkpoint) after this many minutes of training (0 = no limit).
    #[serde(default)]
    pub max_minutes: f64,
    /// Log train metrics every this many steps.
    #[serde(default = "default_log_every")]
    pub log_every: usize,
    /// Rolling `latest` checkpoint every this many steps (0 = only at evaluations).
    #[serde(default)]
    pub checkpoint_every_steps: usize,
    /// Keep an exponential moving average of the trainable parameters (trm-spec 4), used for evaluation and
    /// `hrm predict`.
    #[serde(default)]
    pub ema: bool,
    /// mu of the EMA: `shadow = (1 - mu) * param + mu * shadow` after every optimizer step.
    #[serde(default = "default_ema_rate")]
    pub ema_rate: f64,
    /// Train only the puzzle table (sign-SGD at `puzzle_emb_lr`); the network weights stay as initialised or
    /// loaded.
    #[serde(default)]
    pub freeze_weights: bool,
}

fn default_log_every() -> usize {
    10
}

fn default_ema_rate() -> f64 {
    0.999
}

/// Evaluation and prediction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalSection {
    /// Sequences per evaluation batch.
    pub batch_size: usize,
    /// Rows whose prediction after every segment is kept for the report's refinement view.
    #[serde(default = "default_refinement")]
    pub refinement_examples: usize,
    /// Evaluate on at most this many test examples during training (0 = all).
    #[serde(default)]
    pub max_examples: usize,
}

fn default_refinement() -> usize {
    8
}

/// One experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// The recipe's name (a preset name or the file stem).
    pub name: String,
    /// One line saying what it is for.
    pub description: String,
    /// The published figure it is measured against, if any.
    #[serde(default)]
    pub anchor: Option<Anchor>,
    /// Dataset build.
    pub data: DataSection,
    /// Architecture.
    pub arch: ArchSection,
    /// Training.
    pub train: TrainSection,
    /// Evaluation.
    pub eval: EvalSection,
    /// The `--set` overrides applied, in order (recorded for the run folder).
    #[serde(default)]
    pub overrides: Vec<String>,
}

/// The built-in presets: (name, TOML text).
pub const PRESETS: &[(&str, &str)] = &[
    ("arc1", include_str!("../../../recipes/arc1.toml")),
    ("arc2", include_str!("../../../recipes/arc2.toml")),
    (
        "sudoku-extreme-1k",
        include_str!("../../../recipes/sudoku-extreme-1k.toml"),
    ),
    (
        "maze-30x30-hard-1k",
        include_str!("../../../recipes/maze-30x30-hard-1k.toml"),
    ),
    ("arc1-cpu", include_str!("../../../recipes/arc1-cpu.toml")),
    ("arc2-cpu", include_str!("../../../recipes/arc2-cpu.toml")),
    (
        "sudoku-cpu",
        include_str!("../../../recipes/sudoku-cpu.toml"),
    ),
    ("maze-cpu", include_str!("../../../recipes/maze-cpu.toml")),
    ("tiny", include_str!("../../../recipes/tiny.toml")),
    ("trm-tiny", include_str!("../../../recipes/trm-tiny.toml")),
    (
        "trm-arc1-cpu",
        include_str!("../../../recipes/trm-arc1-cpu.toml"),
    ),
    (
        "trm-arc2-cpu",
        include_str!("../../../recipes/trm-arc2-cpu.toml"),
    ),
    (
        "trm-sudoku-cpu",
        include_str!("../../../recipes/trm-sudoku-cpu.toml"),
    ),
    (
        "trm-maze-cpu",
        include_str!("../../../recipes/trm-maze-cpu.toml"),
    ),
    ("trm-arc1", include_str!("../../../recipes/trm-arc1.toml")),
    ("trm-arc2", include_str!("../../../recipes/trm-arc2.toml")),
    (
        "trm-sudoku-mlp",
        include_str!("../../../recipes/trm-sudoku-mlp.toml"),
    ),
    (
        "trm-sudoku-att",
        include_str!("../../../recipes/trm-sudoku-att.toml"),
    ),
    ("trm-maze", include_str!("../../../recipes/trm-maze.toml")),
];

/// The preset names, comma separated.
pub fn preset_names() -> String {
    PRESETS
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Recipe {
    /// Loads a preset by name, or a `.toml` file by path, then applies `overrides` (`section.key=value`).
    pub fn load(name_or_path: &str, overrides: &[String]) -> Result<Recipe, RecipeError> {
        let (origin, text) =
            if let Some((_, text)) = PRESETS.iter().find(|(n, _)| *n == name_or_path) {
                (name_or_path.to_string(), text.to_string())
            } else {
                let path = Path::new(name_or_path);
                if !path.is_file() {
                    return Err(RecipeError::Unknown {
                        name: name_or_path.to_string(),
                        presets: preset_names(),
                    });
                }
                let text = std::fs::read_to_string(path).map_err(|source| RecipeError::Io {
                    path: path.display().to_string(),
                    source,
                })?;
                (path.display().to_string(), text)
            };
        Self::from_toml_str(&origin, &text, overrides)
    }

    /// Parses recipe TOML text (`origin` names it in errors) and applies `overrides`.
    ///
    /// A syntax or type error in the text names its line, column and key; an override whose value does not
    /// fit its field names the override and the key.
    pub fn from_toml_str(
        origin: &str,
        text: &str,
        overrides: &[String],
    ) -> Result<Recipe, RecipeError> {
        let mut table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| parse_error(origin, text, &e))?;
        for spec in overrides {
            apply_override(&mut table, spec)?;
        }
        let mut recipe: Recipe = match table.clone().try_into() {
            Ok(r) => r,
            Err(e) => return Err(locate_error(origin, text, overrides, &e)),
        };
        recipe.overrides.extend(overrides.iter().cloned());
        recipe.validate(origin)?;
        Ok(recipe)
    }

    /// The recipe as TOML (what a run folder stores as `recipe.toml`).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self)
            .unwrap_or_else(|e| format!("# could not serialise the recipe: {e}\n"))
    }

    /// The dataset folder name this recipe's data section builds, e.g. `arc1-aug-1000`.
    pub fn dataset_name(&self) -> String {
        let d = &self.data;
        let mut name = format!("{}-aug-{}", d.task.as_str(), d.num_aug);
        if d.canvas != ARC_CANVAS {
            name.push_str(&format!("-c{}", d.canvas));
        }
        if d.eval_tasks_only {
            name.push_str("-evalonly");
        }
        if d.max_tasks != 0 {
            name.push_str(&format!("-n{}", d.max_tasks));
        }
        if !d.sources.is_empty() {
            name.push_str(&format!(
                "-src{:08x}",
                fnv1a(d.sources.join("\n").as_bytes()) as u32
            ));
        }
        if d.task == Task::Sudoku {
            name.push_str(&format!("-sub{}", d.subsample));
            if d.test_size != 0 {
                name.push_str(&format!("-test{}", d.test_size));
            }
        }
        if d.layout == DataLayout::Trm {
            name.push_str("-trm");
        }
        name.push_str(&format!("-s{}", d.seed));
        name
    }

    fn validate(&self, origin: &str) -> Result<(), RecipeError> {
        let bad = |field: &str, message: &str| RecipeError::Invalid {
            origin: origin.to_string(),
            field: field.to_string(),
            message: message.to_string(),
        };
        let t = &self.train;
        if t.epochs == 0 {
            return Err(bad("train.epochs", "must be at least 1"));
        }
        if t.global_batch_size == 0 {
            return Err(bad("train.global_batch_size", "must be at least 1"));
        }
        if t.micro_batch_size != 0 && !t.global_batch_size.is_multiple_of(t.micro_batch_size) {
            return Err(bad(
                "train.micro_batch_size",
                "must divide train.global_batch_size (or be 0)",
            ));
        }
        if t.eval_interval == 0 || !t.epochs.is_multiple_of(t.eval_interval) {
            return Err(bad(
                "train.eval_interval",
                "must be at least 1 and divide train.epochs",
            ));
        }
        if !(0.0..=1.0).contains(&t.lr_min_ratio) {
            return Err(bad("train.lr_min_ratio", "must be within 0..=1"));
        }
        // NaN fails every comparison, so each range is written to be false for NaN.
        let at_least_zero = |x: f64| x >= 0.0 && x.is_finite();
        for (field, value) in [
            ("train.lr", t.lr),
            ("train.weight_decay", t.weight_decay),
            ("train.puzzle_emb_lr", t.puzzle_emb_lr),
            ("train.puzzle_emb_weight_decay", t.puzzle_emb_weight_decay),
            ("train.max_minutes", t.max_minutes),
        ] {
            if !at_least_zero(value) {
                return Err(bad(field, &format!("{value} is not a finite number >= 0")));
            }
        }
        for (field, value) in [("train.beta1", t.beta1), ("train.beta2", t.beta2)] {
            if !(0.0..1.0).contains(&value) {
                return Err(bad(field, &format!("{value} is not within [0, 1)")));
            }
        }
        if !(0.0..=1.0).contains(&t.ema_rate) {
            return Err(bad(
                "train.ema_rate",
                &format!("{} is not within [0, 1]", t.ema_rate),
            ));
        }
        let a = &self.arch;
        if a.hidden_size <= 0 {
            return Err(bad("arch.hidden_size", "must be at least 1"));
        }
        if a.num_heads <= 0 || a.hidden_size % a.num_heads != 0 {
            return Err(bad(
                "arch.num_heads",
                "must be positive and divide arch.hidden_size",
            ));
        }
        if !(0.0..=1.0).contains(&a.halt_exploration_prob) {
            return Err(bad(
                "arch.halt_exploration_prob",
                &format!("{} is not within [0, 1]", a.halt_exploration_prob),
            ));
        }
        if !(a.rms_norm_eps > 0.0 && a.rms_norm_eps.is_finite()) {
            return Err(bad(
                "arch.rms_norm_eps",
                &format!("{} is not a finite number > 0", a.rms_norm_eps),
            ));
        }
        if a.halt_max_steps < 1 {
            return Err(bad("arch.halt_max_steps", "must be at least 1"));
        }
        let d = &self.data;
        if !d.sources.is_empty() && !matches!(d.task, Task::Arc1 | Task::Arc2) {
            return Err(bad(
                "data.sources",
                "only ARC tasks (arc1, arc2) are built from task sources",
            ));
        }
        if d.layout == DataLayout::Trm {
            check_trm_layout(d, origin)?;
        }
        if !(1..=ARC_CANVAS).contains(&d.canvas) {
            return Err(bad(
                "data.canvas",
                &format!("must be within 1..={ARC_CANVAS}"),
            ));
        }
        if self.eval.batch_size == 0 {
            return Err(bad("eval.batch_size", "must be at least 1"));
        }
        Ok(())
    }
}

/// The 64-bit FNV-1a hash (stable across builds and platforms; names datasets built from custom sources).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The error of a recipe that parses as TOML but does not fit the schema: blamed on the text itself (with the
/// line, column and key, from a parse that keeps positions) when the text alone fails, else on the first
/// override that makes it fail.
fn locate_error(
    origin: &str,
    text: &str,
    overrides: &[String],
    err: &toml::de::Error,
) -> RecipeError {
    if let Err(e) = toml::from_str::<Recipe>(text) {
        return parse_error(origin, text, &e);
    }
    let Ok(mut table) = text.parse::<toml::Table>() else {
        return parse_error(origin, text, err);
    };
    for spec in overrides {
        if apply_override(&mut table, spec).is_err() {
            break;
        }
        if let Err(e) = table.clone().try_into::<Recipe>() {
            let key = spec
                .split_once('=')
                .map_or(spec.as_str(), |(k, _)| k)
                .trim();
            return RecipeError::Override {
                spec: spec.clone(),
                message: format!("`{key}`: {}", e.message().trim()),
            };
        }
    }
    RecipeError::Parse {
        origin: origin.to_string(),
        message: err.message().trim().to_string(),
    }
}

/// A TOML error with its line, column and (where it is a `key = value` line) its dotted key.
fn parse_error(origin: &str, text: &str, e: &toml::de::Error) -> RecipeError {
    let message = e.message().trim().to_string();
    let Some(span) = e.span() else {
        return RecipeError::Parse {
            origin: origin.to_string(),
            message,
        };
    };
    let start = span.start.min(text.len());
    let before = text.get(..start).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    let key = key_at(text, line)
        .map(|k| format!(", key `{k}`"))
        .unwrap_or_default();
    RecipeError::Parse {
        origin: origin.to_string(),
        message: format!("line {line}, column {column}{key}: {message}"),
    }
}

/// The dotted key of a `key = value` line (1-based `line`), with the `[section]` above it.
fn key_at(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let this = lines.get(line.checked_sub(1)?)?;
    let (key, _) = this.split_once('=')?;
    let key = key.trim().trim_matches('"');
    if key.is_empty() || key.starts_with('[') || key.starts_with('#') {
        return None;
    }
    let section = lines[..line - 1].iter().rev().find_map(|l| {
        let l = l.trim();
        (l.starts_with('[') && !l.starts_with("[[")).then(|| {
            l.trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim()
        })
    });
    Some(match section {
        Some(sec) if !sec.is_empty() => format!("{sec}.{key}"),
        _ => key.to_string(),
    })
}

/// The name of a TOML value's type, for error messages.
fn type_name(v: &toml::Value) -> &'static str {
    match v {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a float",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a date",
        toml::Value::Array(_) => "an array",
        toml::Value::Table(_) => "a table",
    }
}

/// Applies `section.key=value` to the raw table. The value is read as TOML (numbers, booleans, quoted
/// strings), falling back to a bare string. Its section must exist; a missing key is added (optional fields), and a
/// misspelt one is then refused by the recipe's `deny_unknown_fields` parse.
pub fn apply_override(table: &mut toml::Table, spec: &str) -> Result<(), RecipeError> {
    let err = |message: String| RecipeError::Override {
        spec: spec.to_string(),
        message,
    };
    let (key, raw) = spec
        .split_once('=')
        .ok_or_else(|| err("expected `section.key=value`".into()))?;
    let key = key.trim();
    let raw = raw.trim();
    let value: toml::Value = match format!("v = {raw}").parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or(toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    };
    let parts: Vec<&str> = key.split('.').collect();
    let (last, path) = parts.split_last().ok_or_else(|| err("empty key".into()))?;
    let mut cur = table;
    for p in path {
        cur = cur
            .get_mut(*p)
            .and_then(|v| v.as_table_mut())
            .ok_or_else(|| err(format!("no section `{p}`")))?;
    }
    match cur.get(*last) {
        None => {
            // Optional fields with defaults may be absent from the preset; allow them for known sections.
            cur.insert(last.to_string(), value);
        }
        Some(old) => {
            // Keep integers integral and floats floating, so `train.lr=1` still means 1.0.
            let value = match (old, value) {
                (toml::Value::Float(_), toml::Value::Integer(i)) => toml::Value::Float(i as f64),
                (_, v) => v,
            };
            let digits = raw.strip_prefix(['-', '+']).unwrap_or(raw);
            let huge_integer = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
            match (old, &value) {
                (toml::Value::Integer(_), toml::Value::String(_)) if huge_integer => {
                    return Err(err(format!(
                        "`{key}` is an integer, and {raw} does not fit in i64 ({}..={})",
                        i64::MIN,
                        i64::MAX
                    )));
                }
                (toml::Value::String(_), _) | (_, toml::Value::String(_))
                    if std::mem::discriminant(old) != std::mem::discriminant(&value) =>
                {
                    return Err(err(format!(
                        "`{key}` expects {}, got `{raw}`",
                        match old {
                            toml::Value::Float(_) => "a float".to_string(),
                            o => type_name(o).to_string(),
                        }
                    )));
                }
                (toml::Value::Integer(_) | toml::Value::Boolean(_), _)
                    if std::mem::discriminant(old) != std::mem::discriminant(&value) =>
                {
                    return Err(err(format!(
                        "`{key}` expects {}, got {} `{raw}`",
                        type_name(old),
                        type_name(&value)
                    )));
                }
                _ => {}
            }
            cur.insert(last.to_string(), value);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_parses() {
        for (name, _) in PRESETS {
            let r = Recipe::load(name, &[]).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(&r.name, name);
        }
    }

    #[test]
    fn task_sources_name_their_dataset_and_are_arc_only() {
        let plain = Recipe::load("arc1", &[]).unwrap();
        assert!(plain.data.sources.is_empty());
        assert!(
            !plain.to_toml().contains("sources"),
            "an unset list stays out of recipe.toml"
        );
        let set = |v: &str| Recipe::load("arc1", &[format!("data.sources={v}")]).unwrap();
        let a = set(r#"["arc-kaggle/arc-agi_training_challenges.json"]"#);
        let b = set(r#"["test=arc-kaggle/arc-agi_evaluation_challenges.json"]"#);
        assert!(a.dataset_name().contains("-src"), "{}", a.dataset_name());
        assert_ne!(a.dataset_name(), plain.dataset_name());
        assert_ne!(a.dataset_name(), b.dataset_name());
        assert_eq!(a.dataset_name(), a.clone().dataset_name(), "stable");
        let e = Recipe::load("sudoku-extreme-1k", &[r#"data.sources=["x"]"#.to_string()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("data.sources"), "{e}");
    }

    #[test]
    fn trm_layout_key_is_checked_and_names_the_dataset() {
        let plain = Recipe::load("arc1", &[]).unwrap();
        assert_eq!(plain.data.layout, DataLayout::Hrm);
        assert!(
            !plain.to_toml().contains("layout"),
            "the default stays out of recipe.toml"
        );
        let load = |extra: &[&str]| {
            let mut sets = vec![
                r#"data.layout="trm""#.to_string(),
                r#"data.sources=["a_training_challenges.json", "test=a_evaluation_challenges.json"]"#.to_string(),
            ];
            sets.extend(extra.iter().map(|s| s.to_string()));
            Recipe::load("arc1", &sets)
        };
        let trm = load(&[]).unwrap();
        assert_eq!(trm.data.layout, DataLayout::Trm);
        assert!(trm.to_toml().contains("layout = \"trm\""));
        assert!(
            trm.dataset_name().contains("-trm"),
            "{}",
            trm.dataset_name()
        );
        for (set, field) in [
            ("data.canvas=10", "data.canvas"),
            ("data.max_tasks=3", "data.max_tasks"),
            ("data.eval_tasks_only=true", "data.eval_tasks_only"),
            ("data.seed=4294967296", "data.seed"),
            ("data.sources=[]", "data.sources"),
        ] {
            let e = load(&[set]).unwrap_err().to_string();
            assert!(e.contains(field), "{set}: {e}");
        }
        let e = Recipe::load("arc1", &[r#"data.layout="numpy""#.to_string()]).unwrap_err();
        assert!(e.to_string().contains("layout"), "{e}");
    }

    #[test]
    fn reference_settings_are_pinned() {
        // Spec 7.5 and 7.6: the README's commands for the four paper runs.
        for (name, task, epochs, eval_int, lr, emb_lr, wd) in [
            ("arc1", Task::Arc1, 100000, 10000, 1e-4, 1e-2, 0.1),
            ("arc2", Task::Arc2, 100000, 10000, 1e-4, 1e-2, 0.1),
            (
                "sudoku-extreme-1k",
                Task::Sudoku,
                20000,
                2000,
                1e-4,
                1e-4,
                1.0,
            ),
            (
                "maze-30x30-hard-1k",
                Task::Maze,
                20000,
                2000,
                1e-4,
                1e-4,
                1.0,
            ),
        ] {
            let r = Recipe::load(name, &[]).unwrap();
            assert_eq!(r.data.task, task, "{name}");
            let t = &r.train;
            assert_eq!(t.epochs, epochs, "{name}");
            assert_eq!(t.eval_interval, eval_int, "{name}");
            assert_eq!(t.lr, lr, "{name}");
            assert_eq!(t.puzzle_emb_lr, emb_lr, "{name}");
            assert_eq!(t.weight_decay, wd, "{name}");
            assert_eq!(t.puzzle_emb_weight_decay, wd, "{name}");
            assert_eq!(t.global_batch_size, 768, "{name}");
            assert_eq!(t.lr_min_ratio, 1.0, "{name}");
            assert_eq!(t.lr_warmup_steps, 2000, "{name}");
            assert_eq!((t.beta1, t.beta2), (0.9, 0.95), "{name}");
            assert_eq!(t.seed, 0, "{name}");
            assert!(t.checkpoint_every_eval, "{name}");
            assert_eq!(t.max_steps, 0, "{name}");
            let a = &r.arch;
            assert_eq!(
                (
                    a.hidden_size,
                    a.num_heads,
                    a.expansion,
                    a.h_layers,
                    a.l_layers
                ),
                (512, 8, 4.0, 4, 4),
                "{name}"
            );
            assert_eq!(
                (a.h_cycles, a.l_cycles, a.halt_max_steps),
                (2, 2, 16),
                "{name}"
            );
            assert_eq!(a.halt_exploration_prob, 0.1, "{name}");
            assert_eq!(a.pos_encodings, PosEncoding::Rope, "{name}");
            assert_eq!(a.puzzle_emb_ndim, 512, "{name}");
            assert_eq!((a.rms_norm_eps, a.rope_theta), (1e-5, 10000.0), "{name}");
            assert_eq!(a.forward_dtype, DtypeSetting::Bfloat16, "{name}");
            assert_eq!(a.loss_type, LossType::StablemaxCrossEntropy, "{name}");
            assert_eq!(a.name, ModelKind::Hrm, "{name}");
            assert_eq!(r.data.canvas, 30, "{name}");
        }
        let arc1 = Recipe::load("arc1", &[]).unwrap();
        assert_eq!((arc1.data.num_aug, arc1.data.seed), (1000, 42));
        let sud = Recipe::load("sudoku-extreme-1k", &[]).unwrap();
        assert_eq!((sud.data.num_aug, sud.data.subsample), (1000, 1000));
        let maze = Recipe::load("maze-30x30-hard-1k", &[]).unwrap();
        assert_eq!(maze.data.num_aug, 0);
    }

    #[test]
    fn overrides_apply_and_are_recorded() {
        let r = Recipe::load(
            "arc1",
            &["train.lr=7e-5".into(), "train.global_batch_size=384".into()],
        )
        .unwrap();
        assert_eq!(r.train.lr, 7e-5);
        assert_eq!(r.train.global_batch_size, 384);
        assert_eq!(
            r.overrides,
            vec!["train.lr=7e-5", "train.global_batch_size=384"]
        );
        let round = Recipe::from_toml_str("round trip", &r.to_toml(), &[]).unwrap();
        assert_eq!(round, r);
    }

    #[test]
    fn bad_overrides_and_values_are_named() {
        let e = Recipe::load("arc1", &["train.lr".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("train.lr"), "{e}");
        let e = Recipe::load("arc1", &["nosuch.lr=1".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("nosuch"), "{e}");
        let e = Recipe::load("arc1", &["train.typo_field=1".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("typo_field"), "{e}");
        let e = Recipe::load("arc1", &["train.micro_batch_size=100".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("micro_batch_size"), "{e}");
        let e = Recipe::load("no-such-recipe", &[]).unwrap_err().to_string();
        assert!(e.contains("arc1"), "{e}");
    }

    #[test]
    fn ema_and_freeze_weights_default_off_and_can_be_set() {
        let r = Recipe::load("arc1", &[]).unwrap();
        assert!(!r.train.ema && !r.train.freeze_weights);
        assert_eq!(r.train.ema_rate, 0.999);
        let r = Recipe::load(
            "arc1",
            &[
                "train.ema=true".into(),
                "train.ema_rate=0.99".into(),
                "train.freeze_weights=true".into(),
            ],
        )
        .unwrap();
        assert!(r.train.ema && r.train.freeze_weights);
        assert_eq!(r.train.ema_rate, 0.99);
        let again = Recipe::from_toml_str("stored", &r.to_toml(), &[]).unwrap();
        assert_eq!(again.train, r.train);
    }
}
