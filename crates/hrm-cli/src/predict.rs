//! `hrm predict`: run a split through a run's checkpoint and write a predictions folder for `hrm eval`.
//! Follows the reference's `evaluate.py`.

use std::path::PathBuf;

use anyhow::Result;
use hrm_train::predict::{predict, PredictOptions, Weights};
use hrm_train::run::parse_device;

/// Arguments of `hrm predict`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run folder (holds recipe.toml, env.json and checkpoints/).
    #[arg(long)]
    run: PathBuf,
    /// The checkpoint: `latest`, `step_<N>` or a checkpoint folder.
    #[arg(long, default_value = "latest")]
    checkpoint: String,
    /// The split to predict.
    #[arg(long, default_value = "test")]
    split: String,
    /// The dataset folder (default: the one recorded in the run's env.json).
    #[arg(long)]
    dataset: Option<PathBuf>,
    /// The output folder (default: <run>/predictions/<checkpoint>-<split>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Predict at most this many rows (0 = all).
    #[arg(long, default_value_t = 0)]
    max_examples: usize,
    /// Sequences per batch (default: the recipe's eval.batch_size).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Rows whose prediction after every segment is kept, the first row of a different puzzle group each (default: eval.refinement_examples).
    #[arg(long)]
    refinement_examples: Option<usize>,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "auto")]
    device: String,
    /// libtorch CPU threads (0 = the cores other processes leave free when the command starts). Fewer
    /// threads than cores keep a shared machine fast: see README "Speed on a shared CPU".
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Do not show the progress bar.
    #[arg(long)]
    quiet: bool,
}

/// Runs `hrm predict`.
pub fn run(args: Args) -> Result<()> {
    if !["train", "test"].contains(&args.split.as_str()) {
        anyhow::bail!(
            "--split {}: a dataset has the splits train and test (its train/ and test/ folders)",
            args.split
        );
    }
    let device = parse_device(&args.device)?;
    if device == tch::Device::Cpu {
        let t = crate::threads::set(args.threads, None);
        eprintln!(
            "predicting on the CPU with {} threads ({})",
            t.threads, t.why
        );
    }
    let opts = PredictOptions {
        run_dir: args.run,
        checkpoint: Some(args.checkpoint),
        split: args.split,
        dataset_dir: args.dataset,
        out_dir: args.out,
        max_examples: args.max_examples,
        refinement_examples: args.refinement_examples,
        batch_size: args.batch_size,
        device,
        progress: !args.quiet,
    };
    let s = predict(&opts)?;
    let weights = match s.weights {
        Weights::Trained => "trained weights",
        Weights::Ema => "EMA weights",
    };
    eprintln!(
        "wrote {} rows ({} segments) from {} ({weights}) to {}",
        s.rows,
        s.num_segments,
        s.checkpoint.display(),
        s.out_dir.display()
    );
    outln!("{}", s.out_dir.display());
    Ok(())
}
