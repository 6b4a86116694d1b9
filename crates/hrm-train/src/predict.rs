//! Inference from a run's checkpoint: a split through `forward_eval` for `halt_max_steps` segments, written as a
//! predictions folder (hrm-eval's format, tied to the dataset by its fingerprint) with the per-segment trace of
//! a few rows. A run trained with
//! `train.ema` predicts with the checkpoint's EMA weights (`ema.safetensors`), as its evaluations did.
//! Follows the reference's `evaluate.py`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hrm_data::{DatasetMetadata, SplitData};
use hrm_eval::predictions::{PredictionsMeta, SegmentTrace};
use hrm_eval::{PredictionsWriter, TaskFamily};
use hrm_model::Model;
use hrm_recipe::Recipe;
use tch::{Device, Kind, Tensor};

use crate::checkpoint::{
    load_model_config, resolve_checkpoint, verified_file, EMA_FILE, MODEL_FILE,
};
use crate::progress::{self, Display};
use crate::run::{eval_split, forward_dtype, load_env, load_run_recipe, EvalBatchResult};
use crate::run_error::RunError;

/// What to predict.
#[derive(Debug, Clone)]
pub struct PredictOptions {
    /// The run folder.
    pub run_dir: PathBuf,
    /// `latest` (or `None`), `step_<N>`, or a checkpoint folder path.
    pub checkpoint: Option<String>,
    /// The split (`test` or `train`).
    pub split: String,
    /// The dataset folder; `None` = the one recorded in the run's `env.json`.
    pub dataset_dir: Option<PathBuf>,
    /// The output folder; `None` = `<run>/predictions/<checkpoint>-<split>`.
    pub out_dir: Option<PathBuf>,
    /// Predict at most this many rows (0 = all).
    pub max_examples: usize,
    /// How many rows get their prediction after every segment kept, one per puzzle group first (see
    /// [`trace_rows`]; `None` = the recipe's `eval.refinement_examples`).
    pub refinement_examples: Option<usize>,
    /// Sequences per batch (`None` = the recipe's `eval.batch_size`).
    pub batch_size: Option<usize>,
    /// The device.
    pub device: Device,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

/// Which weights of a checkpoint [`predict`] ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weights {
    /// The trained weights (`model.safetensors`).
    Trained,
    /// The EMA shadow (`ema.safetensors`), for runs with `train.ema`.
    Ema,
}

/// What [`predict`] wrote.
#[derive(Debug, Clone)]
pub struct PredictSummary {
    /// The predictions folder.
    pub out_dir: PathBuf,
    /// The checkpoint used.
    pub checkpoint: PathBuf,
    /// N, the rows written.
    pub rows: usize,
    /// M, the segments run.
    pub num_segments: usize,
    /// The weights used.
    pub weights: Weights,
}

fn to_u8(t: &Tensor, what: &str) -> Result<Vec<u8>, RunError> {
    let t = t.to_kind(Kind::Uint8).contiguous().view([-1]);
    Vec::<u8>::try_from(&t).map_err(RunError::tch(format!("reading {what}")))
}

/// Writes the predictions of a checkpoint on a split (see [`PredictOptions`]).
///
/// The rows are the split's examples in order (no padding rows), capped at `max_examples`; inputs and labels
/// come from the dataset arrays (labels in dataset encoding, 0 = not supervised); preds are the argmax after the
/// final segment. The segment trace holds K = `refinement_examples` rows chosen by [`trace_rows`] (the first
/// row of each of the first K puzzle groups, so the refinement views show different tasks or puzzles).
pub fn predict(opts: &PredictOptions) -> Result<PredictSummary, RunError> {
    let recipe = load_run_recipe(&opts.run_dir)?;
    let ckpt = resolve_checkpoint(&opts.run_dir, opts.checkpoint.as_deref())?;
    let Opened {
        model,
        weights,
        dataset_dir,
        meta,
        fingerprint,
    } = open_for_predict(opts, &recipe, &ckpt)?;
    let data = Arc::new(hrm_data::load_split(&dataset_dir, &opts.split)?);
    let ckpt_name = ckpt
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "checkpoint".into());
    let out_dir = opts
        .out_dir
        .clone()
        .unwrap_or_else(|| default_out_dir(&opts.run_dir, &ckpt_name, &opts.split));
    let m = model.config().halt_max_steps as usize;
    let meta_out = PredictionsMeta {
        task: TaskFamily::from_vocab_size(meta.vocab_size as usize),
        num_segments: m,
        checkpoint: ckpt.display().to_string(),
        dataset: dataset_dir.display().to_string(),
        dataset_fingerprint: Some(fingerprint),
    };
    let mut writer = PredictionsWriter::create(&out_dir, data.seq_len(), meta_out)?;
    let batch_size = opts.batch_size.unwrap_or(recipe.eval.batch_size).max(1);
    let k = opts
        .refinement_examples
        .unwrap_or(recipe.eval.refinement_examples);
    let n = if opts.max_examples == 0 {
        data.num_examples()
    } else {
        opts.max_examples.min(data.num_examples())
    };
    let bar = progress::bar(n as u64, "rows", Display::shown_if(opts.progress));
    let traced = trace_rows(&data, n, k);
    let mut trace_tokens: Vec<u8> = Vec::new();
    let mut trace_row_list: Vec<usize> = Vec::new();
    eval_split(&model, &data, batch_size, n, &traced, |r| {
        if crate::stop::requested() {
            return Err(RunError::Interrupted(format!(
                "stopped after {} of {n} rows; the unfinished predictions were discarded and {} is unchanged",
                r.first_row,
                out_dir.display()
            )));
        }
        write_batch(&mut writer, &data, r)?;
        if !r.segment_preds.is_empty() {
            trace_tokens.extend(segment_tokens(&r.segment_preds)?);
            trace_row_list.extend(&r.traced_rows);
        }
        bar.inc(r.valid as u64);
        Ok(())
    })?;
    let trace = (!trace_row_list.is_empty()).then_some(SegmentTrace {
        rows: trace_row_list,
        num_segments: m,
        tokens: trace_tokens,
    });
    let rows = writer.finish(trace.as_ref())?;
    bar.finish_and_clear();
    Ok(PredictSummary {
        out_dir,
        checkpoint: ckpt,
        rows,
        num_segments: m,
        weights,
    })
}

/// What [`predict`] reads before it writes: the model, which weights, the dataset and its fingerprint.
struct Opened {
    model: Model,
    weights: Weights,
    dataset_dir: PathBuf,
    meta: DatasetMetadata,
    fingerprint: String,
}

/// Opens the checkpoint's model for the split (shape checks first, whose messages are more specific), then
/// checks that the dataset is the one the run was trained on.
fn open_for_predict(
    opts: &PredictOptions,
    recipe: &Recipe,
    ckpt: &Path,
) -> Result<Opened, RunError> {
    let dataset_dir = match &opts.dataset_dir {
        Some(d) => d.clone(),
        None => load_env(&opts.run_dir)?.dataset,
    };
    let recipe_file = opts.run_dir.join(crate::run::RECIPE_FILE);
    let recipe_arg = recipe_file.display().to_string();
    if dataset_dir.as_os_str().is_empty() {
        let out = crate::dataset_dir::default_dataset_dir(recipe);
        return Err(RunError::config(
            "--dataset",
            format!(
                "{} records no dataset (it was imported without --dataset): give --dataset, a folder built \
                 with:\n  {}",
                opts.run_dir.display(),
                crate::dataset_dir::build_command(&recipe_arg, recipe, &out, None)
            ),
        ));
    }
    if !crate::dataset_dir::holds_split(&dataset_dir, &opts.split) {
        return Err(crate::dataset_dir::missing_dataset(
            &dataset_dir,
            &opts.split,
            &recipe_arg,
            recipe,
        ));
    }
    let meta = hrm_data::layout::load_metadata(&dataset_dir, &opts.split)?;
    let (model, weights) = open_model(recipe, ckpt, opts.device, &meta, &dataset_dir, &opts.split)?;
    let fingerprint = hrm_data::layout::dataset_fingerprint(&dataset_dir)?;
    check_trained_dataset(&opts.run_dir, &dataset_dir, &fingerprint)?;
    Ok(Opened {
        model,
        weights,
        dataset_dir,
        meta,
        fingerprint,
    })
}

/// Refuses a `--dataset` other than the one the run was trained on: against the fingerprint the run's
/// `env.json` recorded; for older runs without one, when the `env.json` names a dataset folder that still
/// exists and its fingerprint differs from `fingerprint` (that of `dataset_dir`), the error names both
/// folders and both fingerprints. A run whose dataset folder is gone cannot be checked
/// (the shapes are still checked against the checkpoint).
fn check_trained_dataset(
    run_dir: &Path,
    dataset_dir: &Path,
    fingerprint: &str,
) -> Result<(), RunError> {
    let env = load_env(run_dir)?;
    if env.dataset_fingerprint.is_some() {
        return crate::run::check_dataset_fingerprint(&env, run_dir, dataset_dir);
    }
    let trained_on = env.dataset;
    if trained_on == dataset_dir || !trained_on.join("identifiers.json").exists() {
        return Ok(());
    }
    let trained = hrm_data::layout::dataset_fingerprint(&trained_on)?;
    if trained != fingerprint {
        return Err(RunError::mismatch(
            "dataset_fingerprint",
            format!(
                "the run's dataset {} (from {})",
                trained_on.display(),
                run_dir.join("env.json").display()
            ),
            trained,
            format!("--dataset {}", dataset_dir.display()),
            fingerprint,
        ));
    }
    Ok(())
}

/// The model of checkpoint `ckpt` for a split: its config with the recipe's forward dtype on `device` (a
/// checkpoint trained in bf16 on a GPU runs in f32 on the CPU and vice versa: the weights are fp32), checked
/// against the split's metadata, with the EMA weights for runs with `train.ema`.
fn open_model(
    recipe: &Recipe,
    ckpt: &Path,
    device: Device,
    meta: &DatasetMetadata,
    dataset_dir: &Path,
    split: &str,
) -> Result<(Model, Weights), RunError> {
    let mut config = load_model_config(ckpt)?;
    config.forward_dtype = forward_dtype(recipe, device);
    let file = dataset_dir.join(split).join("dataset.json");
    for (what, a, b) in [
        ("vocab_size", config.vocab_size, i64::from(meta.vocab_size)),
        ("seq_len", config.seq_len, i64::from(meta.seq_len)),
        (
            "num_puzzle_identifiers",
            config.num_puzzle_identifiers,
            i64::from(meta.num_puzzle_identifiers),
        ),
    ] {
        if a != b {
            return Err(RunError::mismatch(
                what,
                format!("checkpoint {}", ckpt.display()),
                a,
                file.display(),
                b,
            ));
        }
    }
    let (weights, name) = match recipe.train.ema {
        true => (Weights::Ema, EMA_FILE),
        false => (Weights::Trained, MODEL_FILE),
    };
    let model = Model::from_safetensors(&config, device, &verified_file(ckpt, name)?)?;
    Ok((model, weights))
}

/// Appends the valid rows of one evaluated batch to the predictions.
pub(crate) fn write_batch(
    writer: &mut PredictionsWriter,
    data: &SplitData,
    r: &EvalBatchResult,
) -> Result<(), RunError> {
    let rows = r.first_row..r.first_row + r.valid;
    let preds = to_u8(&r.preds.narrow(0, 0, r.valid as i64), "predictions")?;
    let q = r.q_halt_logits.narrow(0, 0, r.valid as i64).contiguous();
    let q = Vec::<f32>::try_from(&q).map_err(RunError::tch("reading q_halt logits"))?;
    let s = data.seq_len();
    let inputs = &data.inputs[rows.start * s..rows.end * s];
    let labels = &data.labels[rows.start * s..rows.end * s];
    let ids: Vec<i32> = rows
        .map(|row| {
            // The puzzle of a row: the last p with puzzle_indices[p] <= row.
            let p = data
                .puzzle_indices
                .partition_point(|&x| x as usize <= row)
                .saturating_sub(1);
            data.puzzle_identifiers[p]
        })
        .collect();
    writer.push_batch(inputs, &preds, labels, &ids, &q)?;
    Ok(())
}

/// The per-segment tokens of one batch's traced rows: segment tensors are `[K, S]` per segment, the result is
/// `[K, M, S]` (row-major), the layout of `segments.npy`.
fn segment_tokens(segment_preds: &[Tensor]) -> Result<Vec<u8>, RunError> {
    let stacked = Tensor::stack(segment_preds, 1);
    to_u8(&stacked, "segment predictions")
}

/// The rows of a split whose prediction after every segment is traced: the first row of each of the first
/// `k` puzzle groups (an ARC task with its variants, a Sudoku or Maze puzzle), so the refinement views show
/// different tasks; when there are fewer groups than `k`, the earliest rows not yet chosen fill up. Only rows
/// below `n` (the rows predicted) are chosen; the result is sorted.
pub fn trace_rows(data: &SplitData, n: usize, k: usize) -> Vec<usize> {
    let mut rows = Vec::with_capacity(k);
    for g in 0..data.num_groups() {
        if rows.len() >= k {
            break;
        }
        let first = data
            .group_puzzles(g)
            .map(|p| data.puzzle_examples(p))
            .find(|e| !e.is_empty())
            .map(|e| e.start);
        if let Some(r) = first.filter(|&r| r < n) {
            rows.push(r);
        }
    }
    let mut r = 0;
    while rows.len() < k && r < n {
        if !rows.contains(&r) {
            rows.push(r);
        }
        r += 1;
    }
    rows.sort_unstable();
    rows.dedup();
    rows
}

/// The default predictions folder of a run and checkpoint folder name.
pub fn default_out_dir(run_dir: &Path, checkpoint_name: &str, split: &str) -> PathBuf {
    run_dir
        .join("predictions")
        .join(format!("{checkpoint_name}-{split}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_rows_spread_over_groups() {
        // Group 0: puzzles of 2 and 1 examples; group 1: one puzzle of 3; group 2: one of 1.
        let mut b = hrm_data::layout::SplitBuilder::new(1);
        for (examples, end_group) in [(2, false), (1, true), (3, true), (1, true)] {
            for _ in 0..examples {
                b.push_example(&[1], &[1]);
            }
            b.end_puzzle(1);
            if end_group {
                b.end_group();
            }
        }
        let data = b.finish(3, 2);
        assert_eq!(trace_rows(&data, 7, 2), vec![0, 3], "one row per group");
        assert_eq!(trace_rows(&data, 7, 3), vec![0, 3, 6]);
        // More rows than groups: the earliest others fill up.
        assert_eq!(trace_rows(&data, 7, 5), vec![0, 1, 2, 3, 6]);
        // Rows beyond the predicted ones are never chosen.
        assert_eq!(trace_rows(&data, 4, 3), vec![0, 1, 3]);
        assert_eq!(trace_rows(&data, 7, 0), Vec::<usize>::new());
    }
}
