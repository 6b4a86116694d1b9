//! Reports: report.md carries measured and published numbers, curves and the note; report.html
//! is self-contained and shows ARC tasks or Sudoku/Maze examples.

mod common;

use common::*;
use hrm_eval::report::{write_report, Benchmark, ReportOptions};
use hrm_eval::TaskFamily;

#[test]
fn arc_report_files() {
    let dir = tempfile::tempdir().unwrap();
    let (data, preds) = report_world(dir.path());
    let options = ReportOptions {
        note: "First run <of> the fixture.".into(),
        metrics_jsonl: Some(write_metrics(dir.path())),
        ..ReportOptions::default()
    };
    let out = dir.path().join("report");
    let (report, files) = write_report(&out, &preds, &data, &options).unwrap();
    let arc = report.arc.as_ref().unwrap();
    // Task 1 is solved (2 votes vs 1); task 2 is not (its only voting row is wrong).
    let at_1 = arc.pass_at.iter().find(|p| p.k == 1).unwrap();
    assert_eq!(at_1.solved, 1);
    assert_eq!(Benchmark::guess(&report), Benchmark::ArcAgi1);

    let md = std::fs::read_to_string(&files.markdown).unwrap();
    assert!(
        md.contains("| ARC-AGI-1 (public eval) | pass@2 | **50.00%** | 40.30% |"),
        "{md}"
    );
    assert!(md.contains("5.0%") && md.contains("55.0%") && md.contains("74.5%"));
    assert!(md.contains("![exact_accuracy](curves/exact_accuracy.svg)"));
    assert!(md.contains("## Notes\n\nFirst run <of> the fixture."));
    assert!(md.contains("| 0a1b2c3d | 1 | 1 | yes |"), "{md}");
    // Two training charts and the pass@K chart.
    assert_eq!(files.curves.len(), 3);
    for c in &files.curves {
        let svg = std::fs::read_to_string(c).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("polyline"));
    }
    let json: hrm_eval::EvalReport =
        serde_json::from_str(&std::fs::read_to_string(&files.eval_json).unwrap()).unwrap();
    assert_eq!(json.task, TaskFamily::Arc);

    let html = std::fs::read_to_string(&files.html).unwrap();
    assert!(!html.contains("<script") && !html.contains("src=\"http"));
    for colour in ["#0074D9", "#FF4136", "#2ECC40", "#FFDC00", "#870C25"] {
        assert!(html.contains(colour), "{colour}");
    }
    assert!(html.contains("Task 0a1b2c3d") && html.contains("Task 9f8e7d6c"));
    assert!(html.contains("Demonstrations"));
    assert!(html.contains("Segment by segment: row 1"));
    assert!(html.contains("<h2>Notes</h2>") && html.contains("First run &lt;of&gt; the fixture."));
    assert!(html.contains("invalid"));
}

#[test]
fn arc_report_plots_pass_at_k_against_k() {
    let dir = tempfile::tempdir().unwrap();
    let (data, preds) = report_world(dir.path());
    let out = dir.path().join("report");
    let (report, files) = write_report(&out, &preds, &data, &ReportOptions::default()).unwrap();
    let arc = report.arc.as_ref().unwrap();
    // Without metrics the only chart is pass@K.
    assert_eq!(files.curves, vec![out.join("curves").join("pass_at_k.svg")]);
    let svg = std::fs::read_to_string(&files.curves[0]).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("<polyline"),
        "{svg}"
    );
    assert!(svg.contains("pass@K against K (2 tasks)"));
    assert_eq!(
        svg.matches("<circle").count(),
        2 * arc.pass_at.len(),
        "a dot per K and scoring"
    );
    assert!(
        svg.contains("all test inputs (HRM)") && svg.contains("per test input (ARC Prize / TRM)")
    );
    // A log K axis: ticks at 1, 10, 100 and 1k (the K of the table run to 1000).
    for tick in [">1<", ">10<", ">100<", ">1k<"] {
        assert!(svg.contains(tick), "{tick} in {svg}");
    }
    assert!(!svg.contains("NaN"));
    let md = std::fs::read_to_string(&files.markdown).unwrap();
    let table = md.find("### ARC pass@K").unwrap();
    let image = md.find("](curves/pass_at_k.svg)").unwrap();
    assert!(image > table, "the chart follows the pass@K table");
    assert!(!md.contains("## Training curves"), "{md}");
    // Both scorings, named, with pass@5 (TRM's K list).
    assert!(
        md.contains(
            "| K | tasks solved (HRM) | all test inputs (HRM) | per test input (ARC Prize / TRM) |"
        ),
        "{md}"
    );
    assert!(md.contains("| 5 | 1/2 | 50.00% | 50.00% |"), "{md}");
    let html = std::fs::read_to_string(&files.html).unwrap();
    assert!(
        html.contains("<h2>pass@K against K</h2>") && html.contains("K (attempts per test input)")
    );
}

#[test]
fn a_subset_is_labelled_as_what_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let (data, preds) = report_world(dir.path());
    // A dataset without a recorded selection: the task count against the benchmark's.
    let out = dir.path().join("report");
    let (_, files) = write_report(&out, &preds, &data, &ReportOptions::default()).unwrap();
    let md = std::fs::read_to_string(&files.markdown).unwrap();
    let line = "**Scope:** 2 of 400 ARC-AGI-1 evaluation tasks; the paper's 40.30% is on all 400.";
    assert!(md.contains(line), "{md}");
    let results = md.find("## Results").unwrap();
    assert!(
        md.find(line).unwrap() > results,
        "next to the paper's number"
    );

    // The builder's record (as `arc1-cpu` writes it): the canvas and the count of evaluation tasks listed.
    let json = data.join("test").join("dataset.json");
    let mut meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    meta["selection"] = serde_json::json!({
        "canvas": 10, "evaluation_only": true, "max_tasks": 0,
        "evaluation_tasks": 2, "evaluation_tasks_listed": 400
    });
    std::fs::write(&json, meta.to_string()).unwrap();
    let (_, files) = write_report(&out, &preds, &data, &ReportOptions::default()).unwrap();
    let md = std::fs::read_to_string(&files.markdown).unwrap();
    assert!(
        md.contains(
            "**Scope:** 2 of 400 ARC-AGI-1 evaluation tasks (10x10 canvas); \
             the paper's 40.30% is on all 400."
        ),
        "{md}"
    );
    let html = std::fs::read_to_string(&files.html).unwrap();
    assert!(
        html.contains(
            "Scope: 2 of 400 ARC-AGI-1 evaluation tasks (10x10 canvas); \
             the paper&#39;s 40.30% is on all 400."
        ),
        "{html}"
    );
}

#[test]
fn sudoku_report_shows_examples() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let solution =
        "534678912672195348198342567859761423426853791713924856961537284287419635345286179";
    let label: Vec<u8> = solution.bytes().map(|b| b - b'0' + 1).collect();
    let input: Vec<u8> = label
        .iter()
        .enumerate()
        .map(|(i, &t)| if i % 2 == 0 { t } else { 1 })
        .collect();
    let mut wrong = label.clone();
    wrong[1] = 2;
    let p = hrm_eval::Predictions {
        meta: hrm_eval::predictions::PredictionsMeta {
            dataset_fingerprint: None,
            task: Some(TaskFamily::Sudoku),
            num_segments: 2,
            checkpoint: "c".into(),
            dataset: "d".into(),
        },
        seq_len: 81,
        inputs: [input.clone(), input].concat(),
        preds: [label.clone(), wrong].concat(),
        labels: [label.clone(), label].concat(),
        puzzle_identifiers: vec![0, 0],
        q_halt_logits: vec![1.0, -1.0],
        segments: None,
    };
    write_dataset_of(&data, 11, &p);
    let preds = dir.path().join("preds");
    hrm_eval::write_predictions(&preds, &p).unwrap();
    let out = dir.path().join("out");
    let (report, files) = write_report(&out, &preds, &data, &ReportOptions::default()).unwrap();
    assert_eq!(report.validity.as_ref().unwrap().valid, 1);
    assert!(files.curves.is_empty(), "no pass@K chart outside ARC");
    let md = std::fs::read_to_string(&files.markdown).unwrap();
    assert!(
        md.contains("| Sudoku-Extreme (1k) | exact accuracy | **50.00%** | 55.00% |"),
        "{md}"
    );
    assert!(md.contains("| valid | 1/2 | 50.00% |"), "{md}");
    assert!(
        md.contains("**Scope:** 2 held-out test puzzles; the paper's 55.00% is on Sudoku-Extreme's full test set"),
        "{md}"
    );
    // No note: no "Notes" section and no placeholder, in either file.
    assert!(!md.contains("Notes") && !md.contains("no note"), "{md}");
    let html = std::fs::read_to_string(&files.html).unwrap();
    assert!(!html.contains("Notes") && !html.contains("no note"));
    assert!(html.contains("Row 0") && html.contains("Row 1"));
    assert!(html.contains("#ffd6d3"), "the wrong cell is highlighted");
    keep(&files.html, "sudoku.html");
}

/// Copies a report page to `$HRM_EVAL_KEEP_DIR/<name>` when set, for a look by eye.
fn keep(html: &std::path::Path, name: &str) {
    if let Ok(dir) = std::env::var("HRM_EVAL_KEEP_DIR") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(html, std::path::Path::new(&dir).join(name)).unwrap();
    }
}

#[test]
fn maze_report_shows_examples_and_segments() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A 30x30 maze: walls around, a wall row with a gap, S top-left, G bottom-right.
    let mut input = vec![2u8; 900];
    for i in 0..30 {
        for (r, c) in [(0, i), (29, i), (i, 0), (i, 29)] {
            input[r * 30 + c] = 1;
        }
    }
    for c in 1..27 {
        input[15 * 30 + c] = 1;
    }
    input[30 + 1] = 3;
    input[28 * 30 + 28] = 4;
    // The label path: right along row 1 to column 28, then down column 28 to G.
    let mut label = input.clone();
    for c in 2..=28 {
        label[30 + c] = 5;
    }
    for r in 2..28 {
        label[r * 30 + 28] = 5;
    }
    let mut half = input.clone();
    for c in 2..=28 {
        half[30 + c] = 5;
    }
    let p = hrm_eval::Predictions {
        meta: hrm_eval::predictions::PredictionsMeta {
            dataset_fingerprint: None,
            task: Some(TaskFamily::Maze),
            num_segments: 3,
            checkpoint: "c".into(),
            dataset: "d".into(),
        },
        seq_len: 900,
        inputs: [input.clone(), input.clone()].concat(),
        preds: [label.clone(), half.clone()].concat(),
        labels: [label.clone(), label.clone()].concat(),
        puzzle_identifiers: vec![0, 0],
        q_halt_logits: vec![1.0, -1.0],
        segments: Some(hrm_eval::predictions::SegmentTrace {
            rows: vec![0],
            num_segments: 3,
            tokens: [input.clone(), half, label.clone()].concat(),
        }),
    };
    write_dataset_of(&data, 6, &p);
    let preds = dir.path().join("preds");
    hrm_eval::write_predictions(&preds, &p).unwrap();
    let out = dir.path().join("out");
    let (report, files) = write_report(&out, &preds, &data, &ReportOptions::default()).unwrap();
    let v = report.validity.as_ref().unwrap();
    assert_eq!((v.exact, v.valid), (1, 1));
    let md = std::fs::read_to_string(&files.markdown).unwrap();
    assert!(
        md.contains("| Maze-Hard 30x30 | exact accuracy | **50.00%** | 74.50% |"),
        "{md}"
    );
    assert!(
        md.contains(
            "**Scope:** 2 of 1000 Maze-Hard test mazes; the paper's 74.50% is on all 1000."
        ),
        "{md}"
    );
    let html = std::fs::read_to_string(&files.html).unwrap();
    assert!(html.contains("Segment by segment") && html.contains("seg 3"));
    keep(&files.html, "maze.html");
}
