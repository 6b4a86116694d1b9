//! `hrm eval` and `hrm report`: score a predictions folder, optionally with a report; for ARC,
//! `hrm eval` also writes the ARC Prize `submission.json` (TRM's `evaluators/arc.py`).

use anyhow::{Context, Result};
use hrm_eval::arc::ArcReport;
use hrm_eval::report::{write_report, ReportOptions};
use hrm_eval::submission::{Submission, SUBMISSION_FILE};
use std::path::{Path, PathBuf};

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
    /// Where to write the ARC Prize submission (ARC only; default: <PREDICTIONS>/submission.json).
    #[arg(long, value_name = "FILE")]
    submission: Option<PathBuf>,
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
    if !args.predictions.join("meta.json").is_file() {
        anyhow::bail!(
            "{} is not a predictions folder: it has no meta.json. `hrm eval` scores the folder `hrm predict` \
             writes: meta.json, inputs.npy, preds.npy, labels.npy, puzzle_identifiers.npy, q_halt_logits.npy",
            args.predictions.display()
        );
    }
    let report = hrm_eval::evaluate(&args.predictions, &args.dataset).with_context(|| {
        format!(
            "scoring {} against {}",
            args.predictions.display(),
            args.dataset.display()
        )
    })?;
    let submission = match &report.arc {
        Some(arc) => match submission_path(args.submission.as_deref(), &args.predictions) {
            Ok(path) => Some(write_submission(arc, &path)?),
            Err(note) => Some(note),
        },
        None => {
            if let Some(path) = &args.submission {
                eprintln!(
                    "warning: --submission {}: only ARC has a submission; nothing written",
                    path.display()
                );
            }
            None
        }
    };
    if args.json {
        for w in &report.warnings {
            eprintln!("warning: {w}");
        }
        outln!("{}", report.to_json());
        // stdout stays pure JSON.
        if let Some(line) = submission {
            eprintln!("{line}");
        }
        return Ok(());
    }
    print_summary(&report)?;
    if let Some(line) = submission {
        outln!("{line}");
    }
    Ok(())
}

/// Where the submission goes: `--submission` when given, else `submission.json` beside the predictions when that
/// folder is writable. `Err` holds the line saying why nothing is written (a read-only predictions folder: the
/// scores are still printed, and `--submission` names another place).
fn submission_path(given: Option<&Path>, predictions: &Path) -> Result<PathBuf, String> {
    if let Some(p) = given {
        return Ok(p.to_path_buf());
    }
    if writable(predictions) {
        return Ok(predictions.join(SUBMISSION_FILE));
    }
    Err(format!(
        "submission: not written: {} is not writable; give --submission PATH to write it elsewhere",
        predictions.display()
    ))
}

/// True when a file can be created in `dir` (tried with a probe file, removed at once: permission bits do not
/// tell for root, read-only mounts or immutable folders).
fn writable(dir: &Path) -> bool {
    let probe = dir.join(format!(".hrm-write-probe-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => std::fs::remove_file(&probe).is_ok(),
        Err(_) => false,
    }
}

/// Builds, checks and writes the submission of an ARC report; returns the line to print.
fn write_submission(arc: &ArcReport, path: &Path) -> Result<String> {
    let (submission, stats) = Submission::from_report(arc);
    let expected: Vec<(String, usize)> = arc
        .tasks
        .iter()
        .map(|t| (t.name.clone(), t.tests.len()))
        .collect();
    submission
        .validate(&expected)
        .and_then(|()| submission.write(path))
        .with_context(|| format!("writing the submission {}", path.display()))?;
    Ok(format!(
        "submission: {} ({} tasks, {} test inputs, {} padded, {} placeholders)",
        path.display(),
        stats.tasks,
        stats.test_inputs,
        stats.padded,
        stats.placeholders
    ))
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
        let unscored = if arc.num_tasks_unscored > 0 {
            format!(
                ", {} unscored: hidden test outputs, left out of pass@K",
                arc.num_tasks_unscored
            )
        } else {
            String::new()
        };
        outln!(
            "arc tasks       {} ({} with predictions{unscored})",
            arc.num_tasks,
            arc.num_tasks_predicted
        );
        outln!(
            "{:<16}{:<26}{}",
            "",
            "all test inputs (HRM)",
            "per test input (ARC Prize / TRM)"
        );
        for p in &arc.pass_at {
            let hrm = format!(
                "{:.4} ({}/{} tasks)",
                p.rate,
                p.solved,
                arc.num_tasks_scored()
            );
            outln!("{:<16}{hrm:<26}{:.4}", format!("pass@{}", p.k), p.prize);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_submission_goes_beside_writable_predictions_or_is_explained() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        assert_eq!(submission_path(None, dir), Ok(dir.join(SUBMISSION_FILE)));
        assert!(
            std::fs::read_dir(dir).unwrap().next().is_none(),
            "no probe left"
        );
        let given = dir.join("elsewhere.json");
        assert_eq!(submission_path(Some(&given), dir), Ok(given));
        // /proc refuses new files even to root.
        let note = submission_path(None, Path::new("/proc")).unwrap_err();
        assert!(
            note.contains("/proc is not writable") && note.contains("--submission"),
            "{note}"
        );
    }
}
