//! Reports: `eval.json`, `report.md` (measured beside published numbers, with a note slot),
//! `curves/*.svg` training curves from `metrics.jsonl`, and a self-contained `report.html`.
//!
//! ARC demonstrations on the HTML page come from the dataset's **train split**: the rows of
//! the task's un-augmented puzzle (evaluation tasks keep their puzzle id across splits, spec
//! 1.3). They are cropped wherever they were translated. No raw ARC JSON is needed.

pub mod curves;
pub mod html;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::accuracy::AccuracyReport;
use crate::arc::ArcReport;
use crate::arc::{crop_answer, Answer};
use crate::dataset::{self, parse_variant};
use crate::error::EvalError;
use crate::predictions::Predictions;
use crate::validity::ValidityReport;
use crate::{accuracy, validity, EvalReport, TaskFamily};
use curves::{charts_from_metrics, read_metrics_jsonl, LineChart};
use html::{ArcTaskView, ExampleView, HtmlPage, SegmentView};

/// The published HRM result a run is compared with (paper Figure 1, spec 9.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Benchmark {
    /// ARC-AGI-1 public evaluation, pass@2: 40.3%.
    ArcAgi1,
    /// ARC-AGI-2 public evaluation, pass@2: 5.0%.
    ArcAgi2,
    /// Sudoku-Extreme (1k training puzzles), exact: 55.0%.
    SudokuExtreme,
    /// Maze-Hard 30x30, exact: 74.5%.
    MazeHard,
}

impl Benchmark {
    /// The published HRM number, as a fraction.
    pub fn published(self) -> f64 {
        match self {
            Benchmark::ArcAgi1 => 0.403,
            Benchmark::ArcAgi2 => 0.050,
            Benchmark::SudokuExtreme => 0.550,
            Benchmark::MazeHard => 0.745,
        }
    }

    /// A human-readable name.
    pub fn label(self) -> &'static str {
        match self {
            Benchmark::ArcAgi1 => "ARC-AGI-1 (public eval)",
            Benchmark::ArcAgi2 => "ARC-AGI-2 (public eval)",
            Benchmark::SudokuExtreme => "Sudoku-Extreme (1k)",
            Benchmark::MazeHard => "Maze-Hard 30x30",
        }
    }

    /// The benchmark's name without the split, e.g. `ARC-AGI-1`.
    pub fn short_name(self) -> &'static str {
        match self {
            Benchmark::ArcAgi1 => "ARC-AGI-1",
            Benchmark::ArcAgi2 => "ARC-AGI-2",
            Benchmark::SudokuExtreme => "Sudoku-Extreme",
            Benchmark::MazeHard => "Maze-Hard",
        }
    }

    /// What the published number is measured on: the ARC evaluation tasks (400 and 120), the Maze-Hard test
    /// mazes (1000); for Sudoku-Extreme, about 423k test puzzles (rounded, as the anchors give it).
    pub fn test_size(self) -> usize {
        match self {
            Benchmark::ArcAgi1 => 400,
            Benchmark::ArcAgi2 => 120,
            Benchmark::SudokuExtreme => 423_000,
            Benchmark::MazeHard => 1000,
        }
    }

    /// The metric the published number uses.
    pub fn metric(self) -> &'static str {
        match self {
            Benchmark::ArcAgi1 | Benchmark::ArcAgi2 => "pass@2",
            Benchmark::SudokuExtreme | Benchmark::MazeHard => "exact accuracy",
        }
    }

    /// Guesses the benchmark: ARC-AGI-2 when the dataset path mentions "arc-2"/"arc2"/"agi-2"
    /// or the test split has 120 tasks, otherwise ARC-AGI-1; Sudoku and Maze by task.
    pub fn guess(report: &EvalReport) -> Benchmark {
        match report.task {
            TaskFamily::Sudoku => Benchmark::SudokuExtreme,
            TaskFamily::Maze => Benchmark::MazeHard,
            TaskFamily::Arc => {
                let hint = report.dataset_dir.to_lowercase();
                let by_name = ["arc-2", "arc2", "arc_2", "agi-2", "agi2"]
                    .iter()
                    .any(|p| hint.contains(p));
                let by_count = report.arc.as_ref().is_some_and(|a| a.num_tasks == 120);
                if by_name || by_count {
                    Benchmark::ArcAgi2
                } else {
                    Benchmark::ArcAgi1
                }
            }
        }
    }
}

/// Says which part of the benchmark a report covers when it is not all of it, for the line beside the
/// paper's number, e.g. "77 of 400 ARC-AGI-1 evaluation tasks (10x10 canvas); the paper's 40.30% is on all
/// 400". `None` when the dataset and predictions cover the whole benchmark.
///
/// ARC: the filters recorded in the test split's `dataset.json` ([`hrm_data::layout::TaskSelection`],
/// written by the builder for `data.canvas`, `data.eval_tasks_only`, `data.max_tasks`); for a dataset
/// without them, the number of tasks scored against the benchmark's and the canvas from `seq_len`. Sudoku
/// and Maze: the test split's size against the benchmark's. Every task: predictions that cover only some
/// of the test rows (`hrm predict --max-examples`) are named too.
pub fn scope_note(
    report: &EvalReport,
    benchmark: Benchmark,
    predictions: &Predictions,
    dataset_dir: &Path,
) -> Result<Option<String>, EvalError> {
    let meta = hrm_data::layout::load_metadata(dataset_dir, "test")?;
    let index = hrm_data::layout::load_puzzle_index(dataset_dir, "test").ok();
    let test_rows = index
        .as_ref()
        .and_then(|i| i.puzzle_indices.last())
        .map(|&n| n.max(0) as usize);
    let total = benchmark.test_size();
    let published = percent(benchmark.published());
    let mut parts = Vec::new();
    match (&report.arc, benchmark) {
        (Some(arc), Benchmark::ArcAgi1 | Benchmark::ArcAgi2) => {
            let side = crate::maze_side(meta.seq_len as usize).unwrap_or(30);
            let (canvas, cap, listed) = match &meta.selection {
                Some(sel) => (
                    sel.canvas as usize,
                    sel.max_tasks as usize,
                    sel.evaluation_tasks_listed as usize,
                ),
                None => (side, 0, total),
            };
            let mut why = Vec::new();
            if canvas < hrm_grid::codec::ARC_CANVAS {
                why.push(format!("{canvas}x{canvas} canvas"));
            }
            if cap > 0 {
                why.push(format!("at most {cap} tasks"));
            }
            if arc.num_tasks < listed || !why.is_empty() {
                let why = if why.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", why.join(", "))
                };
                parts.push(format!(
                    "{} of {listed} {} evaluation tasks{why}; the paper's {published} is on all {total}",
                    arc.num_tasks,
                    benchmark.short_name()
                ));
            }
        }
        (_, Benchmark::SudokuExtreme) => {
            if let Some(n) = test_rows.filter(|&n| n < total) {
                parts.push(format!(
                    "{n} held-out test puzzles; the paper's {published} is on Sudoku-Extreme's full test \
                     set (about 423k puzzles)"
                ));
            }
        }
        (_, Benchmark::MazeHard) => {
            if let Some(n) = test_rows.filter(|&n| n < total) {
                parts.push(format!(
                    "{n} of {total} Maze-Hard test mazes; the paper's {published} is on all {total}"
                ));
            }
        }
        _ => {}
    }
    if let Some(n) = test_rows.filter(|&n| predictions.len() < n) {
        parts.push(format!(
            "the predictions cover {} of the {n} test rows (the rest count as unsolved)",
            predictions.len()
        ));
    }
    Ok((!parts.is_empty()).then(|| parts.join("; ")))
}

/// A fraction as a percentage with two decimals, e.g. `40.30%`.
pub fn percent(x: f64) -> String {
    format!("{:.2}%", 100.0 * x)
}

/// What to put in a report.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportOptions {
    /// The title (default: "HRM evaluation: " followed by the benchmark name).
    pub title: Option<String>,
    /// The free-text note (the "Notes" section); empty or blank leaves the section out.
    pub note: String,
    /// A `metrics.jsonl` to draw training curves from.
    pub metrics_jsonl: Option<PathBuf>,
    /// The published number to compare with (default: [`Benchmark::guess`]).
    pub benchmark: Option<Benchmark>,
    /// How many ARC tasks the HTML page shows (traced tasks first, then split order).
    pub max_tasks: usize,
    /// How many Sudoku or Maze examples the HTML page shows (traced rows first).
    pub max_examples: usize,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            title: None,
            note: String::new(),
            metrics_jsonl: None,
            benchmark: None,
            max_tasks: 20,
            max_examples: 6,
        }
    }
}

/// The files [`write_report`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportFiles {
    /// `eval.json`: the [`EvalReport`].
    pub eval_json: PathBuf,
    /// `report.md`.
    pub markdown: PathBuf,
    /// `report.html`.
    pub html: PathBuf,
    /// `curves/<metric>.svg`, one per chart.
    pub curves: Vec<PathBuf>,
}

/// The pass@K chart of an ARC report, relative to the report folder.
pub const PASS_AT_K_FILE: &str = "curves/pass_at_k.svg";

/// The name of HRM's scoring: a task counts only when all of its test inputs are right.
pub const HRM_SCORING: &str = "all test inputs (HRM)";
/// The name of the ARC Prize scoring (TRM's evaluator): each test input is credited separately and
/// the credit averaged per task.
pub const PRIZE_SCORING: &str = "per test input (ARC Prize / TRM)";

/// pass@K against K for an ARC report, on a log K axis (the SVG next to the pass@K table): one line
/// per scoring ([`HRM_SCORING`], [`PRIZE_SCORING`]), over the scored tasks.
pub fn pass_at_k_chart(arc: &ArcReport) -> LineChart {
    LineChart {
        title: format!("pass@K against K ({} tasks)", arc.num_tasks_scored()),
        x_label: "K (attempts per test input)".to_string(),
        y_label: "fraction of tasks solved".to_string(),
        series: vec![
            curves::Series {
                name: HRM_SCORING.to_string(),
                points: arc.pass_at.iter().map(|p| (p.k as f64, p.rate)).collect(),
            },
            curves::Series {
                name: PRIZE_SCORING.to_string(),
                points: arc.pass_at.iter().map(|p| (p.k as f64, p.prize)).collect(),
            },
        ],
        x_log: true,
    }
}

/// The sentence saying how many ARC tasks are unscored (unknown test outputs), when any are.
pub fn unscored_note(arc: &ArcReport) -> Option<String> {
    (arc.num_tasks_unscored > 0).then(|| {
        format!(
            "{} of {} tasks are unscored: their test outputs are hidden (prediction-only rows), so \
             pass@K is over the other {}",
            arc.num_tasks_unscored,
            arc.num_tasks,
            arc.num_tasks_scored()
        )
    })
}

/// A file-name-safe version of a chart title.
fn slug(title: &str) -> String {
    title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Renders `report.md`: run facts, measured beside published numbers (with `scope`, the part of the
/// benchmark measured, from [`scope_note`]), pass@K or validity,
/// links to the curve images (`curve_files`: (title, relative path); [`PASS_AT_K_FILE`] is shown under the
/// pass@K table, the others as training curves), per-task ranks, and the note (a "Notes"
/// section only when `note` is not blank).
pub fn render_markdown(
    report: &EvalReport,
    title: &str,
    benchmark: Benchmark,
    curve_files: &[(String, String)],
    scope: Option<&str>,
    note: &str,
) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# {title}\n");
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(md, "| task | {} |", report.task.as_str());
    let _ = writeln!(md, "| checkpoint | `{}` |", report.checkpoint);
    let _ = writeln!(md, "| dataset | `{}` |", report.dataset_dir);
    let _ = writeln!(md, "| predictions | `{}` |", report.predictions_dir);
    let _ = writeln!(md, "| segments | {} |", report.num_segments);
    let _ = writeln!(md, "| rows | {} |\n", report.accuracy.rows);
    let _ = writeln!(md, "## Results\n");
    let _ = writeln!(
        md,
        "| benchmark | metric | measured | published (HRM paper) |\n|---|---|---|---|"
    );
    let _ = writeln!(
        md,
        "| {} | {} | **{}** | {} |",
        benchmark.label(),
        benchmark.metric(),
        percent(report.headline()),
        percent(benchmark.published())
    );
    if let Some(scope) = scope {
        let _ = writeln!(md, "\n**Scope:** {scope}.");
    }
    let _ = writeln!(
        md,
        "\nPublished HRM numbers: ARC-AGI-1 40.3% pass@2, ARC-AGI-2 5.0% pass@2, \
         Sudoku-Extreme 55.0% exact, Maze-Hard 74.5% exact.\n"
    );
    if let Some(arc) = &report.arc {
        md_arc_pass_at(&mut md, arc);
        if let Some((name, file)) = curve_files.iter().find(|(_, f)| f == PASS_AT_K_FILE) {
            let _ = writeln!(md, "![{name}]({file})\n");
        }
    }
    if let Some(v) = &report.validity {
        md_validity(&mut md, v);
    }
    md_accuracy(&mut md, &report.accuracy);
    let training: Vec<_> = curve_files
        .iter()
        .filter(|(_, f)| f != PASS_AT_K_FILE)
        .collect();
    if !training.is_empty() {
        let _ = writeln!(md, "## Training curves\n");
        for (name, file) in training {
            let _ = writeln!(md, "![{name}]({file})\n");
        }
    }
    if let Some(arc) = &report.arc {
        md_arc_tasks(&mut md, arc);
    }
    if !note.trim().is_empty() {
        let _ = writeln!(md, "## Notes\n");
        let _ = writeln!(md, "{}", note.trim_end());
    }
    md
}

/// The pass@K table (both scorings) and row counts of an ARC report.
fn md_arc_pass_at(md: &mut String, arc: &ArcReport) {
    let _ = writeln!(
        md,
        "### ARC pass@K\n\n**{HRM_SCORING}** counts a task only when all of its test inputs are right \
         (the HRM notebook; the headline above). **{PRIZE_SCORING}** credits each test input \
         separately and averages per task, as the ARC Prize scores submissions (a task with two test \
         inputs, one right, counts 0.5).\n"
    );
    if let Some(note) = unscored_note(arc) {
        let _ = writeln!(md, "**Unscored:** {note}.\n");
    }
    let _ = writeln!(
        md,
        "| K | tasks solved (HRM) | {HRM_SCORING} | {PRIZE_SCORING} |\n|---|---|---|---|"
    );
    for p in &arc.pass_at {
        let _ = writeln!(
            md,
            "| {} | {}/{} | {} | {} |",
            p.k,
            p.solved,
            arc.num_tasks_scored(),
            percent(p.rate),
            percent(p.prize)
        );
    }
    let _ = writeln!(
        md,
        "\nTasks with votes: {}/{}. Rows: {} voting, {} unmatched, {} blank, {} invalid crops.\n",
        arc.num_tasks_predicted,
        arc.num_tasks,
        arc.rows_voting,
        arc.rows_unmatched,
        arc.rows_blank,
        arc.rows_invalid_crop
    );
}

/// The exact and valid counts of a Sudoku or Maze report.
fn md_validity(md: &mut String, v: &ValidityReport) {
    md.push_str("### Exact and valid\n\n| | count | rate |\n|---|---|---|\n");
    for (what, n, rate) in [
        ("exact", v.exact, v.exact_rate),
        ("valid", v.valid, v.valid_rate),
    ] {
        let _ = writeln!(md, "| {what} | {n}/{} | {} |", v.count, percent(rate));
    }
    let _ = writeln!(md, "| valid, not exact | {} | |", v.valid_not_exact);
    let _ = writeln!(md, "| exact, not valid | {} | |\n", v.exact_not_valid);
}

/// The per-row accuracy table.
fn md_accuracy(md: &mut String, a: &AccuracyReport) {
    let _ = writeln!(
        md,
        "### Per-row accuracy (final segment)\n\n| metric | value |\n|---|---|"
    );
    let _ = writeln!(
        md,
        "| exact accuracy | {} ({}/{}) |",
        percent(a.exact_accuracy),
        a.exact_count,
        a.count
    );
    let _ = writeln!(md, "| token accuracy | {} |", percent(a.token_accuracy));
    let _ = writeln!(md, "| q_halt accuracy | {} |\n", percent(a.q_halt_accuracy));
}

/// One line per ARC task: test inputs, truth ranks ("hidden" for an unknown truth) and pass@2
/// ("unscored" for a task with an unknown truth).
fn md_arc_tasks(md: &mut String, arc: &ArcReport) {
    let _ = writeln!(
        md,
        "## Tasks\n\n| task | test inputs | truth ranks | pass@2 |\n|---|---|---|---|"
    );
    for t in &arc.tasks {
        let ranks: Vec<String> = t
            .tests
            .iter()
            .map(|x| match (&x.truth, x.rank) {
                (None, _) => "hidden".to_string(),
                (Some(_), Some(r)) => r.to_string(),
                (Some(_), None) => "-".to_string(),
            })
            .collect();
        let solved = match (t.scored, t.solved_at(2)) {
            (false, _) => "unscored",
            (true, true) => "yes",
            (true, false) => "no",
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {solved} |",
            t.name,
            t.tests.len(),
            ranks.join(", ")
        );
    }
    md.push('\n');
}

/// Builds the ARC task views: traced tasks first, then split order, up to `max_tasks`.
fn arc_views(
    report: &EvalReport,
    predictions: &Predictions,
    dataset_dir: &Path,
    max_tasks: usize,
) -> Result<Vec<ArcTaskView>, EvalError> {
    let Some(arc) = &report.arc else {
        return Ok(Vec::new());
    };
    let identifiers = hrm_data::layout::load_identifiers(dataset_dir)?;
    let task_index: HashMap<&str, usize> = arc
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.as_str(), i))
        .collect();
    let mut traces: HashMap<usize, Vec<SegmentView>> = HashMap::new();
    if let Some(trace) = &predictions.segments {
        for (k, &row) in trace.rows.iter().enumerate() {
            let id = predictions.puzzle_identifiers[row];
            let Some(name) = usize::try_from(id).ok().and_then(|i| identifiers.get(i)) else {
                continue;
            };
            let (orig, variant) = parse_variant(name);
            let Some(&t) = task_index.get(orig.as_str()) else {
                continue;
            };
            let undo = |g: &hrm_grid::Grid| match &variant {
                Some(v) => v.undo_grid(g),
                None => g.clone(),
            };
            let task = &arc.tasks[t];
            let test_index = match crop_answer(predictions.input(row), undo) {
                Answer::Grid(input) => task.tests.iter().position(|x| x.input == input),
                Answer::Invalid => None,
            };
            let steps = (0..trace.num_segments)
                .map(|m| {
                    let answer = crop_answer(trace.tokens_at(k, m), undo);
                    let ok = test_index.is_some_and(
                        |j| matches!(&answer, Answer::Grid(g) if task.tests[j].truth.as_ref() == Some(g)),
                    );
                    (answer, ok)
                })
                .collect();
            traces.entry(t).or_default().push(SegmentView {
                row,
                variant: name.clone(),
                test_index,
                steps,
            });
        }
    }
    let mut order: Vec<usize> = traces.keys().copied().collect();
    order.sort_unstable();
    order.extend((0..arc.tasks.len()).filter(|t| !traces.contains_key(t)));
    order.truncate(max_tasks);
    let wanted: Vec<(String, i32)> = order
        .iter()
        .filter_map(|&t| {
            let name = &arc.tasks[t].name;
            identifiers
                .iter()
                .position(|n| n == name)
                .map(|id| (name.clone(), id as i32))
        })
        .collect();
    let has_train = dataset_dir.join("train").join("all__inputs.npy").exists();
    let mut demos = if has_train {
        dataset::read_arc_demonstrations(dataset_dir, &wanted)?
    } else {
        HashMap::new()
    };
    Ok(order
        .into_iter()
        .map(|t| {
            let result = arc.tasks[t].clone();
            ArcTaskView {
                demonstrations: demos.remove(&result.name).unwrap_or_default(),
                traces: traces.remove(&t).unwrap_or_default(),
                result,
            }
        })
        .collect())
}

/// Builds Sudoku or Maze example views: traced rows first, then the first rows.
fn example_views(report: &EvalReport, predictions: &Predictions, max: usize) -> Vec<ExampleView> {
    let mut rows: Vec<(usize, Option<usize>)> = predictions
        .segments
        .as_ref()
        .map(|t| {
            t.rows
                .iter()
                .enumerate()
                .map(|(k, &r)| (r, Some(k)))
                .collect()
        })
        .unwrap_or_default();
    for r in 0..predictions.len() {
        if rows.len() >= max {
            break;
        }
        if !rows.iter().any(|&(x, _)| x == r) {
            rows.push((r, None));
        }
    }
    rows.truncate(max);
    let side = crate::maze_side(predictions.seq_len).unwrap_or(1);
    rows.into_iter()
        .map(|(r, k)| {
            let (input, pred, label) = (
                predictions.input(r),
                predictions.pred(r),
                predictions.label(r),
            );
            let valid = match report.task {
                TaskFamily::Sudoku => validity::sudoku_is_valid(input, pred),
                _ => validity::maze_is_valid(input, pred, side),
            };
            let segments = match (k, &predictions.segments) {
                (Some(k), Some(t)) => (0..t.num_segments)
                    .map(|m| t.tokens_at(k, m).to_vec())
                    .collect(),
                _ => Vec::new(),
            };
            ExampleView {
                row: r,
                input: input.to_vec(),
                pred: pred.to_vec(),
                label: label.to_vec(),
                exact: accuracy::score_row(pred, label).exact(),
                valid,
                segments,
            }
        })
        .collect()
}

/// The entries a report folder may hold; [`write_report`] refuses to replace a folder holding others.
const REPORT_ENTRIES: [&str; 4] = ["eval.json", "report.md", "report.html", "curves"];

/// Evaluates and writes `eval.json`, `report.md`, `report.html` and `curves/*.svg` into
/// `out_dir`.
///
/// The folder is written into a hidden sibling and swapped into place only when every file is written
/// ([`hrm_data::layout::StagedDir`]), so a failure leaves an existing report as it was. An existing
/// `out_dir` holding anything but a report's files is refused, never replaced.
pub fn write_report(
    out_dir: &Path,
    predictions_dir: &Path,
    dataset_dir: &Path,
    options: &ReportOptions,
) -> Result<(EvalReport, ReportFiles), EvalError> {
    let predictions = crate::read_predictions(predictions_dir)?;
    let report = crate::evaluate_loaded(&predictions, predictions_dir, dataset_dir)?;
    check_report_folder(out_dir)?;
    let staged = hrm_data::layout::StagedDir::create(out_dir)?;
    let tmp = staged.path().to_path_buf();
    let (report, files) = write_report_files(&tmp, report, &predictions, dataset_dir, options)?;
    staged.commit()?;
    // The paths as they are after the swap.
    let moved = |p: &Path| out_dir.join(p.strip_prefix(&tmp).unwrap_or(p));
    let files = ReportFiles {
        eval_json: moved(&files.eval_json),
        markdown: moved(&files.markdown),
        html: moved(&files.html),
        curves: files.curves.iter().map(|p| moved(p)).collect(),
    };
    Ok((report, files))
}

/// Refuses an existing `out_dir` that is not a folder or holds entries other than [`REPORT_ENTRIES`].
fn check_report_folder(out_dir: &Path) -> Result<(), EvalError> {
    crate::predictions::check_folder_holds_only(out_dir, &REPORT_ENTRIES, "a report")
}

/// Writes the report files into `out_dir` (the staging folder of [`write_report`]).
fn write_report_files(
    out_dir: &Path,
    report: EvalReport,
    predictions: &crate::Predictions,
    dataset_dir: &Path,
    options: &ReportOptions,
) -> Result<(EvalReport, ReportFiles), EvalError> {
    let benchmark = options
        .benchmark
        .unwrap_or_else(|| Benchmark::guess(&report));
    let title = options
        .title
        .clone()
        .unwrap_or_else(|| format!("HRM evaluation: {}", benchmark.label()));

    let charts: Vec<LineChart> = match &options.metrics_jsonl {
        Some(path) => charts_from_metrics(&read_metrics_jsonl(path)?),
        None => Vec::new(),
    };
    let mut curve_paths = Vec::new();
    let mut curve_links = Vec::new();
    if !charts.is_empty() {
        let dir = out_dir.join("curves");
        std::fs::create_dir_all(&dir).map_err(|e| EvalError::io(&dir, e))?;
        for chart in &charts {
            let file = format!("{}.svg", slug(&chart.title));
            let path = dir.join(&file);
            hrm_data::write_atomic(&path, chart.to_svg(720, 400).as_bytes())?;
            curve_links.push((chart.title.clone(), format!("curves/{file}")));
            curve_paths.push(path);
        }
    }
    let pass_chart = report.arc.as_ref().map(pass_at_k_chart);
    if let Some(chart) = &pass_chart {
        let path = out_dir.join(PASS_AT_K_FILE);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| EvalError::io(dir, e))?;
        }
        hrm_data::write_atomic(&path, chart.to_svg(560, 320).as_bytes())?;
        curve_links.push((chart.title.clone(), PASS_AT_K_FILE.to_string()));
        curve_paths.push(path);
    }

    let eval_json = out_dir.join("eval.json");
    hrm_data::write_atomic(&eval_json, (report.to_json() + "\n").as_bytes())?;
    let markdown = out_dir.join("report.md");
    let scope = scope_note(&report, benchmark, predictions, dataset_dir)?;
    let md = render_markdown(
        &report,
        &title,
        benchmark,
        &curve_links,
        scope.as_deref(),
        &options.note,
    );
    hrm_data::write_atomic(&markdown, md.as_bytes())?;

    let arc_tasks = arc_views(&report, predictions, dataset_dir, options.max_tasks)?;
    let examples = if report.task == TaskFamily::Arc {
        Vec::new()
    } else {
        example_views(&report, predictions, options.max_examples)
    };
    let page = HtmlPage {
        title: &title,
        report: &report,
        benchmark,
        scope: scope.as_deref(),
        note: &options.note,
        charts: &charts,
        pass_at_k: pass_chart.as_ref(),
        arc_tasks: &arc_tasks,
        examples: &examples,
    };
    let html = out_dir.join("report.html");
    hrm_data::write_atomic(&html, html::render_html(&page).as_bytes())?;
    Ok((
        report,
        ReportFiles {
            eval_json,
            markdown,
            html,
            curves: curve_paths,
        },
    ))
}
