//! `hrm train`: train a recipe on its dataset into a run folder, or resume a run after an interruption.
//! Follows the reference's `pretrain.py`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use hrm_recipe::Recipe;
use hrm_train::dataset_dir::{
    agree_with_dataset, default_dataset_dir, holds_split, missing_dataset,
};
use hrm_train::run::{
    load_env, load_run_recipe, parse_device, train, RunOptions, RunSummary, StopReason,
};
use hrm_train::world::{rank_device, DistOptions};

/// Arguments of `hrm train`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The recipe: a preset name (e.g. `sudoku-cpu`) or a `.toml` file. Optional with --resume.
    #[arg(required_unless_present = "resume")]
    recipe: Option<String>,
    /// Recipe overrides, `section.key=value` (repeatable), e.g. `--set train.max_steps=100`.
    #[arg(long = "set")]
    sets: Vec<String>,
    /// The dataset folder (default: $HRM_DATASETS_DIR/<dataset name> or datasets/built/<dataset name>).
    #[arg(long)]
    dataset: Option<PathBuf>,
    /// The run folder (default: runs/<recipe name>-<UTC timestamp>).
    #[arg(long, conflicts_with = "resume")]
    run: Option<PathBuf>,
    /// Continue the run in this folder from its `latest` checkpoint.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Do not show the progress bar.
    #[arg(long)]
    quiet: bool,
    /// Train data-parallel on N local ranks: this command runs N times, as `torchrun --nproc-per-node N` would
    /// start it (one GPU per rank on CUDA, the cores shared out on CPU). Under torchrun or srun, leave it out.
    #[arg(long)]
    nproc: Option<usize>,
    /// The rendezvous port of --nproc (default: a free one).
    #[arg(long, requires = "nproc")]
    master_port: Option<u16>,
    /// libtorch CPU threads (0 = the cores other processes leave free when the command starts; a resumed run keeps the count it started with, since the count changes the numbers). Fewer
    /// threads than cores keep a shared machine fast: see README "Speed on a shared CPU".
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Sleep this many milliseconds after every step (lets tests interrupt a tiny run).
    #[arg(long, default_value_t = 0, hide = true)]
    throttle_ms: u64,
}

/// The current UTC time as `YYYYMMDD-HHMMSS`.
pub fn timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (y, mo, d) = hrm_train::run::civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}{mo:02}{d:02}-{:02}{:02}{:02}",
        s / 3600,
        (s / 60) % 60,
        s % 60
    )
}

/// The recipe of a run being resumed: the stored one; a recipe argument must equal it; `--set` without one
/// extends the run (only the keys of `hrm_train::run::RESUMABLE_KEYS`, recorded in `env.json`).
fn resume_recipe(args: &Args, run_dir: &Path) -> Result<Recipe> {
    let stored =
        load_run_recipe(run_dir).with_context(|| format!("resuming {}", run_dir.display()))?;
    if let Some(name) = &args.recipe {
        let given = Recipe::load(name, &args.sets)?;
        if given.to_toml() != stored.to_toml() {
            bail!(
                "the recipe `{name}` (with the given --set overrides) differs from the one stored in {}; \
                 resume without a recipe to use the stored one (or with --set alone to extend the run)",
                run_dir.join(hrm_train::run::RECIPE_FILE).display()
            );
        }
        return Ok(stored);
    }
    if args.sets.is_empty() {
        return Ok(stored);
    }
    // Nothing is written yet: `record_extension` does, once the dataset is checked.
    Ok(hrm_train::run::extended_recipe(run_dir, &args.sets)?)
}

/// Writes a resume's `--set` extension into the run folder (rank 0 only), after checking that the dataset is
/// the one the run was trained on and fits the recipe: a command that fails changes nothing.
fn record_extension(
    args: &Args,
    run_dir: &Path,
    dataset_dir: &Path,
    recipe: &Recipe,
) -> Result<()> {
    let train_meta = hrm_data::layout::load_metadata(dataset_dir, "train")?;
    let test_meta = hrm_data::layout::load_metadata(dataset_dir, "test")?;
    hrm_train::run::check_dataset(recipe, dataset_dir, &train_meta, &test_meta)?;
    hrm_train::run::check_dataset_fingerprint(&load_env(run_dir)?, run_dir, dataset_dir)?;
    hrm_train::run::extend_run(run_dir, &args.sets)?;
    eprintln!(
        "changed for this resume (recorded in {}): {}",
        run_dir.join("env.json").display(),
        args.sets.join(" ")
    );
    Ok(())
}

/// Runs `hrm train`.
pub fn run(args: Args) -> Result<()> {
    let device = parse_device(&args.device)?;
    let dist = DistOptions::from_env(device)?;
    let rank0 = dist.as_ref().is_none_or(|d| d.env.rank == 0);
    let command_line: Vec<String> = std::env::args().collect();
    let (mut recipe, run_dir, resume) = recipe_and_run(&args)?;
    let dataset_dir = dataset_of(&args, &mut recipe, &run_dir, resume, rank0)?;
    if resume && rank0 && args.recipe.is_none() && !args.sets.is_empty() {
        record_extension(&args, &run_dir, &dataset_dir, &recipe)?;
    }
    if let Some(n) = args.nproc {
        return launch(&args, n, device, &run_dir, resume);
    }
    let device = match &dist {
        Some(d) => rank_device(device, args.device.starts_with("cuda:"), d.env.local_rank),
        None => device,
    };
    let threads = set_threads(&args, dist.is_some(), device, &run_dir, resume)?;
    if rank0 {
        eprintln!(
            "{} run {} (recipe {}, dataset {}, device {}{threads}{})",
            if resume { "resuming" } else { "starting" },
            run_dir.display(),
            recipe.name,
            dataset_dir.display(),
            hrm_train::run::device_name(device),
            dist.as_ref().map_or(String::new(), |d| format!(
                ", {} ranks over {:?}",
                d.env.world_size, d.backend
            ))
        );
    }
    let opts = RunOptions {
        recipe,
        dataset_dir,
        run_dir,
        device,
        resume,
        command_line,
        progress: !args.quiet,
        throttle: Duration::from_millis(args.throttle_ms),
        dist,
    };
    let summary = train(&opts)?;
    if rank0 {
        print_summary(&summary, &opts.run_dir);
        if summary.stop == StopReason::AlreadyFinished {
            eprintln!("{}", why_finished(&opts.recipe, &summary, &opts.run_dir));
        }
    }
    if summary.stop == StopReason::Interrupted {
        if !rank0 {
            std::process::exit(130);
        }
        eprintln!(
            "interrupted: the step finished and checkpoint {} was written. Continue with:\n  hrm train --resume {}",
            summary.checkpoint.display(),
            opts.run_dir.display()
        );
        std::process::exit(130);
    }
    Ok(())
}

/// The recipe, the run folder and whether this is a resume: `--resume` reads the run's recipe (with any
/// `--set`); otherwise the recipe named, into `--run` or `runs/<recipe>-<timestamp>`.
fn recipe_and_run(args: &Args) -> Result<(Recipe, PathBuf, bool)> {
    if let Some(run_dir) = &args.resume {
        return Ok((resume_recipe(args, run_dir)?, run_dir.clone(), true));
    }
    let name = args
        .recipe
        .as_deref()
        .context("a recipe is required unless --resume is given")?;
    let recipe = Recipe::load(name, &args.sets)?;
    let run_dir = args
        .run
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(format!("{}-{}", recipe.name, timestamp())));
    Ok((recipe, run_dir, false))
}

/// The dataset folder (`--dataset`, the resumed run's, or the recipe's default), refused with a build command
/// when it holds no built dataset; a new run's `data.*` are made to agree with the dataset's build record
/// (notes printed by rank 0).
fn dataset_of(
    args: &Args,
    recipe: &mut Recipe,
    run_dir: &Path,
    resume: bool,
    rank0: bool,
) -> Result<PathBuf> {
    let dataset_dir = match (&args.dataset, resume) {
        (Some(d), _) => d.clone(),
        (None, true) => load_env(run_dir)?.dataset,
        (None, false) => default_dataset_dir(recipe),
    };
    if !holds_split(&dataset_dir, "train") {
        let recipe_arg = match (&args.recipe, resume) {
            (Some(r), _) => r.clone(),
            (None, true) => run_dir
                .join(hrm_train::run::RECIPE_FILE)
                .display()
                .to_string(),
            (None, false) => recipe.name.clone(),
        };
        return Err(missing_dataset(&dataset_dir, "train", &recipe_arg, recipe).into());
    }
    if !resume {
        for note in agree_with_dataset(recipe, &dataset_dir)? {
            if rank0 {
                eprintln!("note: {note}");
            }
        }
    }
    Ok(dataset_dir)
}

/// `--nproc N`: checks the GPUs on CUDA, then starts the N ranks (`launch`).
fn launch(args: &Args, n: usize, device: tch::Device, run_dir: &Path, resume: bool) -> Result<()> {
    if let tch::Device::Cuda(_) = device {
        let gpus = tch::Cuda::device_count() as usize;
        if args.device.starts_with("cuda:") && n > 1 {
            bail!("--nproc {n} with --device {}: each rank needs a GPU of its own; use --device cuda (rank r takes cuda:r)", args.device);
        }
        if n > gpus {
            bail!("--nproc {n} needs {n} GPUs (one per rank, as NCCL requires); this machine has {gpus}");
        }
    }
    let all: Vec<String> = std::env::args()
        .skip_while(|a| a != "train")
        .skip(1)
        .collect();
    let fixed_run = (!resume && args.run.is_none()).then_some(run_dir);
    // A resume's --set was applied to the run folder above; the ranks resume the stored recipe.
    let rank_args = crate::launch::rank_args(&all, fixed_run, resume);
    crate::launch::spawn_ranks(n, &rank_args, args.master_port)
}

/// Sets libtorch's CPU threads (CPU only) and returns the words for the start line: CPU ranks on one node
/// share its cores; otherwise `threads::set` (`--threads`, the resumed run's count, `OMP_NUM_THREADS`, the
/// free cores).
fn set_threads(
    args: &Args,
    ranks: bool,
    device: tch::Device,
    run_dir: &Path,
    resume: bool,
) -> Result<String> {
    if device != tch::Device::Cpu {
        return Ok(String::new());
    }
    if ranks && args.threads == 0 {
        let local: usize = std::env::var("LOCAL_WORLD_SIZE")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
        let n = (cores / local.max(1)).max(1);
        tch::set_num_threads(n as i32);
        return Ok(format!(", {n} threads per rank"));
    }
    let recorded = match resume {
        true => load_env(run_dir)?.threads,
        false => None,
    };
    let t = crate::threads::set(args.threads, recorded);
    Ok(format!(", {} threads ({})", t.threads, t.why))
}

/// Why a resumed run had nothing left to do, and the command that extends it: the limit it reached
/// (`train.max_steps`, `train.max_minutes`, else every epoch ran).
fn why_finished(recipe: &Recipe, summary: &RunSummary, run_dir: &Path) -> String {
    let t = &recipe.train;
    let resume = format!("hrm train --resume {}", run_dir.display());
    if t.max_steps > 0 && summary.step >= t.max_steps as u64 {
        format!(
            "the run already reached train.max_steps = {}; to train further:\n  {resume} --set train.max_steps={}",
            t.max_steps,
            t.max_steps * 2
        )
    } else if t.max_minutes > 0.0 && summary.step < summary.total_steps {
        format!(
            "the run already used its train.max_minutes = {} of training time; to train further:\n  \
             {resume} --set train.max_minutes={}",
            t.max_minutes,
            t.max_minutes * 2.0
        )
    } else {
        format!(
            "the run already completed its train.epochs = {}; to train further:\n  {resume} --set train.epochs={}",
            t.epochs,
            t.epochs * 2
        )
    }
}

/// The closing lines of `hrm train` on stderr: why it stopped, the speed, the checkpoint, the last evaluation and
/// how to see the curves.
fn print_summary(summary: &RunSummary, run_dir: &Path) {
    eprintln!(
        "stopped ({:?}) at step {} of {} nominal; {} steps in this session at {:.2} steps/s; checkpoint {}",
        summary.stop,
        summary.step,
        summary.total_steps,
        summary.steps_this_session,
        summary.steps_per_second(),
        summary.checkpoint.display()
    );
    if let Some(eval) = &summary.last_eval {
        let show = |k: &str| eval.get(k).map(|v| format!("{v:.4}")).unwrap_or("-".into());
        eprintln!(
            "last eval: exact_accuracy {} accuracy {} count {}",
            show("eval/exact_accuracy"),
            show("eval/accuracy"),
            show("eval/count")
        );
    }
    eprintln!(
        "curves: tensorboard --logdir {} (TensorBoard is a Python tool that hrm does not install: \
         `pip install tensorboard`); metrics.jsonl holds the same values",
        run_dir.display()
    );
}

#[cfg(test)]
mod tests {
    use hrm_train::run::civil_from_days;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_786), (2026, 11, 29));
    }
}
