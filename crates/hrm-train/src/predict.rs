//! Inference from a run's checkpoint: a split through `forward_eval` for `halt_max_steps` segments, written as a
//! predictions folder (hrm-eval's format) with the per-segment trace of a few rows.
//! Follows the reference's `evaluate.py`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hrm_eval::predictions::{PredictionsMeta, SegmentTrace};
use hrm_eval::{PredictionsWriter, TaskKind};
use hrm_model::Model;
use indicatif::{ProgressBar, ProgressStyle};
use tch::{Device, Kind, Tensor};

use crate::checkpoint::{load_model_config, resolve_checkpoint, MODEL_FILE};
use crate::run::{eval_split, load_env, load_run_recipe};
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
    /// Rows of the first batch whose prediction after every segment is kept (`None` = the recipe's
    /// `eval.refinement_examples`).
    pub refinement_examples: Option<usize>,
    /// Sequences per batch (`None` = the recipe's `eval.batch_size`).
    pub batch_size: Option<usize>,
    /// The device.
    pub device: Device,
    /// Show a progress bar on stderr.
    pub progress: bool,
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
}

fn to_u8(t: &Tensor, what: &str) -> Result<Vec<u8>, RunError> {
    let t = t.to_kind(Kind::Uint8).contiguous().view([-1]);
    Vec::<u8>::try_from(&t).map_err(RunError::tch(format!("reading {what}")))
}

/// Writes the predictions of a checkpoint on a split (see [`PredictOptions`]).
///
/// The rows are the split's examples in order (no padding rows), capped at `max_examples`; inputs and labels
/// come from the dataset arrays (labels in dataset encoding, 0 = not supervised); preds are the argmax after the
/// final segment. The segment trace holds the first K = `refinement_examples` rows of the first batch.
pub fn predict(opts: &PredictOptions) -> Result<PredictSummary, RunError> {
    let recipe = load_run_recipe(&opts.run_dir)?;
    let ckpt = resolve_checkpoint(&opts.run_dir, opts.checkpoint.as_deref())?;
    let mut config = load_model_config(&ckpt)?;
    // A checkpoint trained in bf16 on a GPU can be run in f32 on the CPU and vice versa: the weights are fp32.
    if recipe.arch.forward_dtype == hrm_recipe::DtypeSetting::Auto {
        config.forward_dtype = recipe.arch.forward_dtype.resolve(opts.device.is_cuda());
    }
    let dataset_dir = match &opts.dataset_dir {
        Some(d) => d.clone(),
        None => load_env(&opts.run_dir)?.dataset,
    };
    let meta = hrm_data::layout::load_metadata(&dataset_dir, &opts.split)?;
    let file = dataset_dir.join(&opts.split).join("dataset.json");
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
    let model = Model::from_safetensors(&config, opts.device, &ckpt.join(MODEL_FILE))?;
    let data = Arc::new(hrm_data::load_split(&dataset_dir, &opts.split)?);
    let ckpt_name = ckpt
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "checkpoint".into());
    let out_dir = opts
        .out_dir
        .clone()
        .unwrap_or_else(|| default_out_dir(&opts.run_dir, &ckpt_name, &opts.split));
    let m = config.halt_max_steps as usize;
    let seq_len = data.seq_len();
    let meta_out = PredictionsMeta {
        task: TaskKind::from_vocab_size(meta.vocab_size as usize),
        num_segments: m,
        checkpoint: ckpt.display().to_string(),
        dataset: dataset_dir.display().to_string(),
    };
    let mut writer = PredictionsWriter::create(&out_dir, seq_len, meta_out)?;
    let batch_size = opts.batch_size.unwrap_or(recipe.eval.batch_size).max(1);
    let k = opts
        .refinement_examples
        .unwrap_or(recipe.eval.refinement_examples);
    let n = if opts.max_examples == 0 {
        data.num_examples()
    } else {
        opts.max_examples.min(data.num_examples())
    };
    let bar = if opts.progress {
        let b = ProgressBar::new(n as u64);
        b.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} rows {per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let mut trace: Option<SegmentTrace> = None;
    eval_split(&model, &data, batch_size, n, k, |r| {
        let rows = r.first_row..r.first_row + r.valid;
        let preds = to_u8(&r.preds.narrow(0, 0, r.valid as i64), "predictions")?;
        let q = r.q_halt_logits.narrow(0, 0, r.valid as i64).contiguous();
        let q = Vec::<f32>::try_from(&q).map_err(RunError::tch("reading q_halt logits"))?;
        let s = seq_len;
        let inputs = &data.inputs[rows.start * s..rows.end * s];
        let labels = &data.labels[rows.start * s..rows.end * s];
        let ids: Vec<i32> = rows
            .clone()
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
        if !r.segment_preds.is_empty() {
            let kk = r.segment_preds[0].size()[0] as usize;
            // Segment tensors are [K, S] per segment; the trace wants [K, M, S].
            let stacked = Tensor::stack(&r.segment_preds, 1);
            trace = Some(SegmentTrace {
                rows: (0..kk).collect(),
                num_segments: r.segment_preds.len(),
                tokens: to_u8(&stacked, "segment predictions")?,
            });
        }
        bar.inc(r.valid as u64);
        Ok(())
    })?;
    let rows = writer.finish(trace.as_ref())?;
    bar.finish_and_clear();
    Ok(PredictSummary {
        out_dir,
        checkpoint: ckpt,
        rows,
        num_segments: m,
    })
}

/// The default predictions folder of a run and checkpoint folder name.
pub fn default_out_dir(run_dir: &Path, checkpoint_name: &str, split: &str) -> PathBuf {
    run_dir
        .join("predictions")
        .join(format!("{checkpoint_name}-{split}"))
}
