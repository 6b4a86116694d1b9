//! `hrm eval` and `hrm report`: score a predictions folder, optionally with a report.

use anyhow::{Context, Result};
use hrm_eval::report::{write_report, ReportOptions};
use std::path::PathBuf;

/// Arguments of `hrm eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// The predictions folder (inputs.npy, preds.npy, labels.npy, puzzle_identifiers.npy, q_halt_logits.npy, meta.json).
    predictions: PathBuf,
    /// The dataset folder the predictions were made on (with identifiers.json and test/).
    #[arg(long)]
    dataset: PathBuf,
    /// Print the full report as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `hrm report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The predictions folder.
    predictions: PathBuf,
    /// The dataset folder.
    #[arg(long)]
    dataset: PathBuf,
    /// Where to write eval.json, report.md, report.html and curves/ (an existing report folder is replaced
    /// only once the new report is complete; a folder holding other files is refused).
    #[arg(long)]
    out: PathBuf,
    /// A metrics.jsonl to draw training curves from.
    #[arg(long)]
    metrics: Option<PathBuf>,
    /// A note for the report (e.g. how the run was made).
    #[arg(long, default_value = "")]
    note: String,
    /// A title.
    #[arg(long)]
    title: Option<String>,
}

/// Runs `hrm eval`.
pub fn run_eval(args: EvalArgs) -> Result<()> {
    let report = hrm_eval::evaluate(&args.predictions, &args.dataset).with_context(|| {
        format!(
            "scoring {} against {}",
            args.predictions.display(),
            args.dataset.display()
        )
    })?;
    if args.json {
        for w in &report.warnings {
            eprintln!("warning: {w}");
        }
        outln!("{}", report.to_json());
        return Ok(());
    }
    print_summary(&report)?;
    Ok(())
}

fn print_summary(report: &hrm_eval::EvalReport) -> Result<()> {
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    let a = &report.accuracy;
    outln!("task            {}", report.task);
    outln!("rows            {} ({} with labels)", a.rows, a.count);
    outln!("exact accuracy  {:.4}", a.exact_accuracy);
    outln!("token accuracy  {:.4}", a.token_accuracy);
    if let Some(arc) = &report.arc {
        outln!(
            "arc tasks       {} ({} with predictions)",
            arc.num_tasks,
            arc.num_tasks_predicted
        );
        for p in &arc.pass_at {
            outln!("pass@{:<10} {:.4} ({} tasks)", p.k, p.rate, p.solved);
        }
    }
    if let Some(v) = &report.validity {
        outln!(
            "valid answers   {:.4} ({} of {})",
            v.valid_rate,
            v.valid,
            v.count
        );
    }
    Ok(())
}

/// Runs `hrm report`.
pub fn run_report(args: ReportArgs) -> Result<()> {
    let options = ReportOptions {
        title: args.title,
        note: args.note,
        metrics_jsonl: args.metrics,
        ..ReportOptions::default()
    };
    let (report, files) = write_report(&args.out, &args.predictions, &args.dataset, &options)
        .with_context(|| format!("writing the report into {}", args.out.display()))?;
    print_summary(&report)?;
    outln!("wrote {}", files.markdown.display());
    outln!("wrote {}", files.html.display());
    for c in &files.curves {
        outln!("wrote {}", c.display());
    }
    Ok(())
}
