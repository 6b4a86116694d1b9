//! `hrm solve`: answer ARC tasks that were never in a run's training build (fresh puzzle rows fitted with the
//! network frozen, then predict, de-augment and vote) and write `submission.json`.

use std::path::PathBuf;

use anyhow::Result;
use hrm_train::run::parse_device;
use hrm_train::solve::{solve, SolveOptions, SolveSummary, SOLVE_FILE, SUBMISSION_FILE};

/// Arguments of `hrm solve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The trained run folder (HRM or TRM, ARC).
    #[arg(long)]
    run: PathBuf,
    /// Task JSON files, folders of them, or ARC Prize `*_challenges.json` files (a `*_solutions.json` beside one
    /// is used to score, never to fit).
    #[arg(required = true, value_name = "TASKS")]
    tasks: Vec<PathBuf>,
    /// The output folder: submission.json, solve.json, dataset/, predictions/, report/.
    #[arg(long)]
    out: PathBuf,
    /// Replace the output folder if it exists (only once the new one is complete).
    #[arg(long)]
    force: bool,
    /// The checkpoint: `latest`, `step_<N>` or a checkpoint folder.
    #[arg(long, default_value = "latest")]
    checkpoint: String,
    /// Sign-SGD steps per task on its new puzzle-embedding rows (at the run's train.puzzle_emb_lr).
    #[arg(long, default_value_t = 300)]
    steps: u64,
    /// Stop fitting a task after this many seconds, whatever --steps says (a finite number > 0).
    #[arg(long, value_parser = positive_seconds)]
    max_seconds_per_task: Option<f64>,
    /// Augmented variants per task (default: the run's data.num_aug).
    #[arg(long)]
    num_aug: Option<usize>,
    /// Demonstration rows per fitting step (default: the run's train.global_batch_size).
    #[arg(long)]
    batch_size: Option<usize>,
    /// The seed of the augmentations and of the row sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "auto")]
    device: String,
    /// libtorch CPU threads (0 = the cores other processes leave free when the command starts). Fewer
    /// threads than cores keep a shared machine fast: see README "Speed on a shared CPU".
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Do not show progress.
    #[arg(long)]
    quiet: bool,
}

/// Runs `hrm solve`.
pub fn run(args: Args) -> Result<()> {
    let device = parse_device(&args.device)?;
    if device == tch::Device::Cpu {
        let t = crate::threads::set(args.threads, None);
        eprintln!("solving on the CPU with {} threads ({})", t.threads, t.why);
    }
    let opts = SolveOptions {
        run_dir: args.run,
        checkpoint: Some(args.checkpoint),
        tasks: args.tasks,
        out_dir: args.out,
        force: args.force,
        steps: args.steps,
        max_seconds_per_task: args.max_seconds_per_task,
        num_aug: args.num_aug,
        batch_size: args.batch_size,
        seed: args.seed,
        device,
        progress: !args.quiet,
    };
    let s = match solve(&opts) {
        Ok(s) => s,
        Err(e @ hrm_train::RunError::Interrupted(_)) => {
            // Like `hrm train`: a stop asked for by SIGINT/SIGTERM exits 130 (nothing was written; an existing
            // --out is as it was).
            eprintln!("{e}; {} is as it was", opts.out_dir.display());
            std::process::exit(130);
        }
        Err(e) => return Err(e.into()),
    };
    print_summary(&s)?;
    Ok(())
}

fn mark(x: Option<bool>) -> &'static str {
    match x {
        Some(true) => "yes",
        Some(false) => "no",
        None => "-",
    }
}

fn print_summary(s: &SolveSummary) -> Result<()> {
    outln!(
        "{:<12} {:>5} {:>8} {:>6} {:>7} {:>8} {:>6} {:>6}",
        "task",
        "tests",
        "variants",
        "steps",
        "fit s",
        "fit acc",
        "pass@1",
        "pass@2"
    );
    for t in &s.tasks {
        match &t.error {
            Some(e) => outln!("{:<12} failed: {e}", t.id),
            None => outln!(
                "{:<12} {:>5} {:>8} {:>6} {:>7.1} {:>8} {:>6} {:>6}",
                t.id,
                t.test_inputs,
                t.variants,
                t.fit_steps,
                t.fit_seconds,
                t.fit_accuracy
                    .map_or("-".to_string(), |a| format!("{:.1}%", 100.0 * a)),
                mark(t.pass_at_1),
                mark(t.pass_at_2)
            ),
        }
    }
    let failed = s.tasks.iter().filter(|t| t.error.is_some()).count();
    outln!(
        "{} tasks ({failed} failed) in {:.1} s with {} ({} weights), {} steps per task",
        s.tasks.len(),
        s.seconds,
        s.checkpoint.display(),
        s.weights,
        s.steps
    );
    if s.scored > 0 {
        outln!(
            "with known outputs: pass@1 {}/{}, pass@2 {}/{}",
            s.solved_at_1,
            s.scored,
            s.solved_at_2,
            s.scored
        );
    }
    let report = s.out_dir.join("report/report.html");
    outln!(
        "{} ({} test inputs, {} padded, {} placeholders), {}{}",
        s.out_dir.join(SUBMISSION_FILE).display(),
        s.submission_test_inputs,
        s.submission_padded,
        s.submission_placeholders,
        s.out_dir.join(SOLVE_FILE).display(),
        if report.is_file() {
            format!(", {}", report.display())
        } else {
            String::new()
        }
    );
    Ok(())
}

/// A time limit in seconds: finite and above zero (NaN, infinities and negatives would read as "no limit").
fn positive_seconds(text: &str) -> Result<f64, String> {
    let v: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!(
            "`{text}` is not a finite number of seconds above 0"
        ))
    }
}
