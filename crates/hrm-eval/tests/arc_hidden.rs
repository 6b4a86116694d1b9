//! Hidden test outputs, as TRM's `evaluators/arc.py` meets them in competition challenges: a test
//! split row whose label is all 0 has an unknown truth, its task is unscored (out of the pass@K
//! denominators) yet still gets its ranked answers, the reports say "hidden", and the submission
//! covers every task.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use hrm_data::layout::load_identifiers;
use hrm_data::npy::{read_npy, write_npy};
use hrm_eval::dataset::read_arc_truth;
use hrm_eval::report::{write_report, ReportOptions};
use hrm_eval::submission::{Submission, SubmissionStats};
use hrm_eval::{evaluate, write_predictions};
use hrm_grid::codec::ARC_SEQ_LEN;
use hrm_grid::Grid;

struct World {
    _dir: tempfile::TempDir,
    tasks: Vec<FixtureTask>,
    dataset: PathBuf,
    preds_dir: PathBuf,
}

/// The test-split rows (in order) of the puzzles of `task`.
fn split_rows(tasks: &[FixtureTask], fixture: &ArcFixture, task: usize) -> Vec<usize> {
    let mut row = 0;
    let mut out = Vec::new();
    for (t, _, _) in &fixture.puzzles {
        let n = tasks[*t].tests.len();
        if *t == task {
            out.extend(row..row + n);
        }
        row += n;
    }
    out
}

/// Sets the label rows `rows` of the test split to `tokens`.
fn set_labels(dataset: &Path, rows: &[usize], tokens: &[u8]) {
    let path = dataset.join("test").join("all__labels.npy");
    let mut labels = read_npy::<u8>(&path).unwrap();
    for &r in rows {
        labels.data[r * ARC_SEQ_LEN..(r + 1) * ARC_SEQ_LEN].copy_from_slice(tokens);
    }
    write_npy(&path, &labels.shape, &labels.data).unwrap();
}

/// Four tasks: "known" solved; "pair" with two test inputs, one right; "hidden" and "blind" with
/// unknown outputs ("hidden" has two candidate grids, "blind" only an invalid crop).
fn world() -> World {
    let v1 = variant(1, "0825139674");
    let task = |name: &str, tests: Vec<(Grid, Grid)>, variants| FixtureTask {
        name: name.to_string(),
        demos: vec![(grid(&[&[1, 2]]), grid(&[&[2, 1]]))],
        tests,
        variants,
    };
    let tasks = vec![
        task(
            "known",
            vec![(grid(&[&[1, 2], &[3, 4]]), grid(&[&[4, 3], &[2, 1]]))],
            vec![v1],
        ),
        task(
            "pair",
            vec![
                (grid(&[&[5]]), grid(&[&[5, 5]])),
                (grid(&[&[6, 6]]), grid(&[&[6]])),
            ],
            vec![],
        ),
        task("hidden", vec![(grid(&[&[7, 1]]), grid(&[&[1]]))], vec![v1]),
        task("blind", vec![(grid(&[&[8]]), grid(&[&[1]]))], vec![]),
    ];
    let dir = tempfile::tempdir().unwrap();
    let dataset = dir.path().join("data");
    std::fs::create_dir_all(&dataset).unwrap();
    let fixture = write_arc_dataset(&dataset, &tasks);
    // Puzzles: known 0, 1; pair 2; hidden 3, 4; blind 5.
    let truth = |t: usize, j: usize| Said::Grid(tasks[t].tests[j].1.clone());
    let said = |rows: &[&[u8]]| Said::Grid(grid(rows));
    let row = |puzzle, test, said, q| Row {
        puzzle,
        test,
        said,
        q,
    };
    let rows = vec![
        row(0, 0, truth(0, 0), 1.0),
        row(1, 0, truth(0, 0), 1.0),
        row(2, 0, truth(1, 0), 1.0),
        row(2, 1, said(&[&[9]]), 1.0),
        row(3, 0, said(&[&[3, 3]]), 2.0),
        row(4, 0, said(&[&[4]]), -2.0),
        row(5, 0, Said::Empty, 0.0),
    ];
    let mut predictions = arc_predictions(&tasks, &fixture, &rows);
    // The outputs of "hidden" and "blind" are unknown: all-0 labels, in the dataset and the predictions.
    let zero = vec![0u8; ARC_SEQ_LEN];
    for t in [2, 3] {
        set_labels(&dataset, &split_rows(&tasks, &fixture, t), &zero);
    }
    for r in 4..7 {
        predictions.labels[r * ARC_SEQ_LEN..(r + 1) * ARC_SEQ_LEN].copy_from_slice(&zero);
    }
    let preds_dir = dir.path().join("preds");
    write_predictions(&preds_dir, &predictions).unwrap();
    World {
        _dir: dir,
        tasks,
        dataset,
        preds_dir,
    }
}

#[test]
fn all_zero_labels_are_unknown_outputs() {
    let w = world();
    let ids = load_identifiers(&w.dataset).unwrap();
    let truth = read_arc_truth(&w.dataset, &ids).unwrap();
    let outputs: Vec<Vec<Option<Grid>>> = truth
        .iter()
        .map(|t| t.tests.iter().map(|p| p.output.clone()).collect())
        .collect();
    assert_eq!(
        outputs,
        vec![
            vec![Some(w.tasks[0].tests[0].1.clone())],
            vec![
                Some(w.tasks[1].tests[0].1.clone()),
                Some(w.tasks[1].tests[1].1.clone())
            ],
            vec![None],
            vec![None],
        ]
    );
    // The inputs are still known.
    assert_eq!(truth[2].tests[0].input, w.tasks[2].tests[0].0);
}

#[test]
fn a_label_that_is_neither_a_grid_nor_all_zero_is_an_error() {
    let w = world();
    // Row 4 is the un-augmented "hidden" row: EOS in its first cell crops to nothing.
    let mut tokens = vec![0u8; ARC_SEQ_LEN];
    tokens[0] = 1;
    set_labels(&w.dataset, &[4], &tokens);
    let ids = load_identifiers(&w.dataset).unwrap();
    let err = read_arc_truth(&w.dataset, &ids).unwrap_err().to_string();
    assert!(
        err.contains("all__labels.npy") && err.contains("row 4") && err.contains("task hidden"),
        "{err}"
    );
}

#[test]
fn unscored_tasks_leave_the_denominator_but_keep_their_answers() {
    let w = world();
    let report = evaluate(&w.preds_dir, &w.dataset).unwrap();
    let arc = report.arc.as_ref().unwrap();
    assert_eq!((arc.num_tasks, arc.num_tasks_unscored), (4, 2));
    assert_eq!(arc.num_tasks_scored(), 2);
    let scored: Vec<bool> = arc.tasks.iter().map(|t| t.scored).collect();
    assert_eq!(scored, [true, true, false, false]);
    // "known" is solved; "pair" has one of its two test inputs right.
    assert_eq!(report.headline(), 0.5);
    for p in &arc.pass_at {
        assert_eq!((p.solved, p.rate, p.prize), (1, 0.5, 0.75), "K = {}", p.k);
    }
    let hidden = &arc.tasks[2].tests[0];
    assert_eq!((hidden.truth.as_ref(), hidden.rank), (None, None));
    assert_eq!(arc.tasks[2].task_rank, None);
    assert_eq!(hidden.vote_counts, [1, 1]);
    assert!(hidden.top.iter().all(|a| !a.correct));
    // Ranked by q: the un-augmented row's answer (q 2) first, the variant's (de-augmented) second.
    assert_eq!(hidden.attempts, [grid(&[&[3, 3]]), grid(&[&[4]])]);
    assert!(arc.tasks[3].tests[0].attempts.is_empty());

    // eval.json round-trips, and one written before these fields existed reads with their defaults.
    let json = report.to_json();
    let back: hrm_eval::EvalReport = serde_json::from_str(&json).unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(serde_json::to_value(&back).unwrap(), value);
    assert_eq!(back.arc.as_ref().unwrap().tasks[2].tests[0].truth, None);
    let mut old: serde_json::Value = serde_json::from_str(&json).unwrap();
    let old_arc = old["arc"].as_object_mut().unwrap();
    old_arc.remove("num_tasks_unscored");
    for p in old_arc["pass_at"].as_array_mut().unwrap() {
        p.as_object_mut().unwrap().remove("prize");
    }
    for t in old_arc["tasks"].as_array_mut().unwrap() {
        t.as_object_mut().unwrap().remove("scored");
        for x in t["tests"].as_array_mut().unwrap() {
            x.as_object_mut().unwrap().remove("attempts");
        }
    }
    let old: hrm_eval::EvalReport = serde_json::from_value(old).unwrap();
    let old_arc = old.arc.unwrap();
    assert_eq!(old_arc.num_tasks_unscored, 0);
    assert!(old_arc.tasks.iter().all(|t| t.scored));
    assert!(old_arc.pass_at.iter().all(|p| p.prize == 0.0));
}

#[test]
fn reports_say_hidden_and_count_the_unscored_tasks() {
    let w = world();
    let out = w.preds_dir.parent().unwrap().join("report");
    let (_, files) =
        write_report(&out, &w.preds_dir, &w.dataset, &ReportOptions::default()).unwrap();
    let md = std::fs::read_to_string(&files.markdown).unwrap();
    assert!(md.contains("| hidden | 1 | hidden | unscored |"), "{md}");
    assert!(md.contains("| pair | 2 | 1, - | no |"), "{md}");
    assert!(
        md.contains("2 of 4 tasks are unscored") && md.contains("pass@K is over the other 2"),
        "{md}"
    );
    assert!(md.contains("| 1 | 1/2 | 50.00% | 75.00% |"), "{md}");
    let html = std::fs::read_to_string(&files.html).unwrap();
    assert!(
        html.contains("Unscored: 2 of 4 tasks are unscored"),
        "{html}"
    );
    assert!(html.contains(r#"<div class="invalid">hidden</div>"#));
    assert!(html.contains("unscored: test output hidden"));
    assert!(html.contains("truth rank hidden"));
}

#[test]
fn the_submission_covers_unscored_tasks_too() {
    let w = world();
    let report = evaluate(&w.preds_dir, &w.dataset).unwrap();
    let (submission, stats) = Submission::from_report(report.arc.as_ref().unwrap());
    assert_eq!(
        stats,
        SubmissionStats {
            tasks: 4,
            test_inputs: 5,
            padded: 3,
            placeholders: 1
        }
    );
    let hidden = &submission.0["hidden"][0];
    assert_eq!(
        (&hidden.attempt_1, &hidden.attempt_2),
        (&vec![vec![3, 3]], &vec![vec![4]])
    );
    assert_eq!(submission.0["blind"][0].attempt_1, vec![vec![0]]);
    let ids = load_identifiers(&w.dataset).unwrap();
    let expected: Vec<(String, usize)> = read_arc_truth(&w.dataset, &ids)
        .unwrap()
        .into_iter()
        .map(|t| (t.name, t.tests.len()))
        .collect();
    submission.validate(&expected).unwrap();
    let path = w.preds_dir.join("submission.json");
    submission.write(&path).unwrap();
    assert_eq!(Submission::read(&path).unwrap(), submission);
}
