//! `hrm import` and `hrm export`: official PyTorch run folders (`step_<N>` or `checkpoint` beside `all_config.yaml`)
//! to run folders and back. Follows the official trainers' `pretrain.py`.

use std::path::PathBuf;

use anyhow::Result;
use hrm_train::official::{
    export_official, import_official, ExportOptions, ImportOptions, ShapeFlags,
};

/// Arguments of `hrm import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// An official run folder (a `step_<N>` or `checkpoint` file beside `all_config.yaml`; the highest step is
    /// taken), or the checkpoint file itself.
    source: PathBuf,
    /// The dataset the checkpoint was trained on: its dataset.json gives seq_len, vocab_size and
    /// num_puzzle_identifiers, as in the official code; its puzzle ids must be the checkpoint's rows.
    #[arg(long)]
    dataset: Option<PathBuf>,
    /// The run folder to create (recipe.toml, env.json, checkpoints/step_0).
    #[arg(long)]
    out: PathBuf,
    /// Without --dataset: the sequence length.
    #[arg(long)]
    seq_len: Option<u32>,
    /// Without --dataset: the vocabulary size.
    #[arg(long)]
    vocab_size: Option<u32>,
    /// Without --dataset: the puzzle identifiers (the rows of the checkpoint's puzzle table).
    #[arg(long)]
    num_puzzle_identifiers: Option<u32>,
    /// Override a key of the recipe made from all_config.yaml, e.g. `train.micro_batch_size=64` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Replace --out when it holds a previous import.
    #[arg(long)]
    force: bool,
}

/// Runs `hrm import`.
pub fn run_import(args: ImportArgs) -> Result<()> {
    let opts = ImportOptions {
        source: args.source,
        dataset_dir: args.dataset,
        shape: ShapeFlags {
            seq_len: args.seq_len,
            vocab_size: args.vocab_size,
            num_puzzle_identifiers: args.num_puzzle_identifiers,
        },
        out: args.out,
        force: args.force,
        sets: args.sets,
        command_line: std::env::args().collect(),
    };
    let s = import_official(&opts)?;
    for note in &s.notes {
        eprintln!("note: {note}");
    }
    eprintln!(
        "imported {} tensors of the official {} checkpoint {} into {} (recipe `{}`, forward dtype {}{})",
        s.tensors,
        s.kind.as_str().to_uppercase(),
        s.source.display(),
        s.run_dir.display(),
        s.recipe.name,
        s.recipe.arch.forward_dtype,
        if s.recipe.train.ema { ", EMA weights" } else { "" }
    );
    if opts.dataset_dir.is_none() {
        eprintln!(
            "no dataset was given: hrm predict and hrm train --resume need --dataset, a build whose sizes and puzzle \
             identifiers are the checkpoint's"
        );
    }
    outln!("{}", s.run_dir.display());
    Ok(())
}

/// Arguments of `hrm export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The run folder.
    run: PathBuf,
    /// The checkpoint: `latest`, `step_<N>` or a checkpoint folder.
    #[arg(long, default_value = "latest")]
    checkpoint: String,
    /// The folder to write `step_<N>` and `all_config.yaml` into (must not exist, or be empty).
    #[arg(long)]
    out: PathBuf,
}

/// Runs `hrm export`.
pub fn run_export(args: ExportArgs) -> Result<()> {
    let s = export_official(&ExportOptions {
        run_dir: args.run,
        checkpoint: Some(args.checkpoint),
        out: args.out,
    })?;
    eprintln!(
        "wrote {} tensors ({} weights) to {} and {}",
        s.tensors,
        if s.ema { "EMA" } else { "trained" },
        s.file.display(),
        s.config.display()
    );
    outln!("{}", s.file.display());
    Ok(())
}
