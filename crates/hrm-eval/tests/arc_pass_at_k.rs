//! ARC pass@K on a synthetic dataset folder and predictions: de-augmentation, voting, ties broken
//! by q_halt, the all-test-inputs rule, invalid crops, unmatched and blank rows.

mod common;

use common::*;
use hrm_data::layout::load_identifiers;
use hrm_eval::arc::{score_arc, PASS_AT_K};
use hrm_eval::dataset::{read_arc_demonstrations, read_arc_truth};
use hrm_eval::{evaluate, write_predictions, TaskFamily};
use hrm_grid::codec::encode_arc;
use hrm_grid::Grid;

struct World {
    tasks: Vec<FixtureTask>,
    fixture: ArcFixture,
    predictions: hrm_eval::Predictions,
    _dir: tempfile::TempDir,
    dataset: std::path::PathBuf,
    preds_dir: std::path::PathBuf,
}

fn pair(i: &[&[u8]], o: &[&[u8]]) -> (Grid, Grid) {
    (grid(i), grid(o))
}

/// Six tasks: A solved by votes incl. augmented rows, B lost on a q tie, B2 won on a q tie,
/// C with one of two test inputs unsolved, D out-voted by invalid crops, E never predicted.
fn world() -> World {
    let v1 = variant(1, "0825139674");
    let v2 = variant(6, "0312456789");
    let v3 = variant(2, "0987654321");
    let task = |name: &str,
                tests: Vec<(Grid, Grid)>,
                variants: Vec<hrm_augment::variant::ArcVariant>| FixtureTask {
        name: name.to_string(),
        demos: vec![
            pair(&[&[1, 0], &[0, 2]], &[&[2, 0], &[0, 1]]),
            pair(&[&[3, 3, 4]], &[&[4], &[3], &[3]]),
        ],
        tests,
        variants,
    };
    let tasks = vec![
        task(
            "aaa",
            vec![pair(
                &[&[1, 2], &[3, 4], &[5, 0]],
                &[&[1, 2, 3], &[0, 6, 7]],
            )],
            vec![v1, v2],
        ),
        task("bbb", vec![pair(&[&[2, 2]], &[&[7, 1]])], vec![v3]),
        task("bb2", vec![pair(&[&[3]], &[&[3, 4], &[5, 6]])], vec![v3]),
        task(
            "ccc",
            vec![
                pair(&[&[1]], &[&[2, 3]]),
                pair(&[&[4, 4], &[4, 0]], &[&[8]]),
            ],
            vec![v1],
        ),
        task(
            "ddd",
            vec![pair(&[&[6, 1]], &[&[9, 9, 1]])],
            vec![v1, v2, v3],
        ),
        task("eee", vec![pair(&[&[5]], &[&[5, 5]])], vec![]),
    ];
    let dir = tempfile::tempdir().unwrap();
    let dataset = dir.path().join("data");
    std::fs::create_dir_all(&dataset).unwrap();
    let fixture = write_arc_dataset(&dataset, &tasks);
    // Puzzle indices: aaa 0,1,2; bbb 3,4; bb2 5,6; ccc 7,8; ddd 9..=12; eee 13.
    let truth = |t: usize, j: usize| Said::Grid(tasks[t].tests[j].1.clone());
    let wrong = |rows: &[&[u8]]| Said::Grid(grid(rows));
    let row = |puzzle, test, said, q| Row {
        puzzle,
        test,
        said,
        q,
    };
    let rows = vec![
        row(0, 0, truth(0, 0), 0.0),
        row(1, 0, truth(0, 0), 0.0),
        row(2, 0, wrong(&[&[1, 1, 1]]), 5.0),
        row(3, 0, truth(1, 0), -2.0),
        row(4, 0, wrong(&[&[7, 7]]), 2.0),
        row(6, 0, wrong(&[&[3]]), -1.0),
        row(5, 0, truth(2, 0), 3.0),
        row(7, 0, truth(3, 0), 0.0),
        row(8, 0, truth(3, 0), 0.0),
        row(7, 1, wrong(&[&[8, 8]]), 0.0),
        row(8, 1, wrong(&[&[1]]), 0.0),
        row(9, 0, Said::Empty, 0.0),
        row(10, 0, Said::Empty, 0.0),
        row(11, 0, Said::Empty, 0.0),
        row(12, 0, truth(4, 0), 4.0),
        // Row 15: its input is replaced below so it matches no test input of "aaa".
        row(0, 0, truth(0, 0), 0.0),
        // Row 16: its puzzle id is set to 0 (blank) below.
        row(0, 0, truth(0, 0), 0.0),
    ];
    let mut predictions = arc_predictions(&tasks, &fixture, &rows);
    let other = encode_arc(&grid(&[&[9, 9], &[9, 9]]), 0, 0).unwrap();
    predictions.inputs[15 * 900..16 * 900].copy_from_slice(&other);
    predictions.puzzle_identifiers[16] = 0;
    add_trace(&mut predictions, &[1, 12]);
    let preds_dir = dir.path().join("preds");
    write_predictions(&preds_dir, &predictions).unwrap();
    World {
        tasks,
        fixture,
        predictions,
        _dir: dir,
        dataset,
        preds_dir,
    }
}

#[test]
fn augmented_variants_really_change_the_answers() {
    let w = world();
    let (_, v, _) = &w.fixture.puzzles[1];
    let v = v.as_ref().unwrap();
    let out = &w.tasks[0].tests[0].1;
    assert_ne!(&v.apply_grid(out), out);
    assert_eq!(&v.undo_grid(&v.apply_grid(out)), out);
    // The prediction of row 1 is stored augmented, so it differs from the truth before undoing.
    assert_ne!(w.predictions.pred(1), w.predictions.pred(0));
}

#[test]
fn pass_at_k_follows_the_voting_rules() {
    let w = world();
    let ids = load_identifiers(&w.dataset).unwrap();
    let truth = read_arc_truth(&w.dataset, &ids).unwrap();
    let names: Vec<&str> = truth.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["aaa", "bbb", "bb2", "ccc", "ddd", "eee"]);
    assert_eq!(truth[3].tests.len(), 2);
    assert_eq!(
        truth[0].tests[0].output.as_ref(),
        Some(&w.tasks[0].tests[0].1)
    );

    let r = score_arc(&w.predictions, &ids, &truth, &PASS_AT_K, &w.preds_dir).unwrap();
    let rank = |t: usize, j: usize| r.tasks[t].tests[j].rank;
    // aaa: the truth has 2 votes (one from an augmented row), the wrong answer 1.
    assert_eq!(rank(0, 0), Some(1));
    assert_eq!(r.tasks[0].tests[0].vote_counts, vec![2, 1]);
    assert_eq!(r.tasks[0].tests[0].num_rows, 3);
    // bbb: 1 vote each; the wrong answer has the higher q, so it ranks first.
    assert_eq!(rank(1, 0), Some(2));
    let top = &r.tasks[1].tests[0].top;
    assert_eq!(top.len(), 2);
    assert!(!top[0].correct && top[1].correct);
    assert_eq!(top[0].grid, Some(grid(&[&[7, 7]])));
    // The submission attempts are the two grid answers in rank order.
    assert_eq!(
        r.tasks[1].tests[0].attempts,
        vec![grid(&[&[7, 7]]), w.tasks[1].tests[0].1.clone()]
    );
    assert!((top[0].mean_q_halt - 1.0 / (1.0 + (-2.0f64).exp())).abs() < 1e-12);
    // bb2: 1 vote each; the truth was seen second but has the higher q.
    assert_eq!(rank(2, 0), Some(1));
    // ccc: the first test input is solved, the second never, so the task is unsolved.
    assert_eq!(rank(3, 0), Some(1));
    assert_eq!(rank(3, 1), None);
    assert_eq!(r.tasks[3].task_rank, None);
    // ddd: three invalid crops out-vote the single right answer.
    assert_eq!(rank(4, 0), Some(2));
    assert_eq!(r.tasks[4].tests[0].top[0].grid, None);
    assert_eq!(r.tasks[4].tests[0].top[0].votes, 3);
    // The invalid answer is no submission attempt: the truth is the only grid.
    assert_eq!(
        r.tasks[4].tests[0].attempts,
        vec![w.tasks[4].tests[0].1.clone()]
    );
    assert_eq!(r.rows_invalid_crop, 3);
    // eee: no rows at all.
    assert_eq!(rank(5, 0), None);
    assert_eq!(r.tasks[5].tests[0].num_rows, 0);
    assert!(r.tasks[5].tests[0].attempts.is_empty());
    assert!(r.tasks.iter().all(|t| t.scored));
    assert_eq!(r.num_tasks_unscored, 0);

    assert_eq!(r.num_tasks, 6);
    assert_eq!(r.num_tasks_predicted, 5);
    assert_eq!(r.rows_unmatched, 1);
    assert_eq!(r.rows_blank, 1);
    assert_eq!(r.rows_voting, 15);
    let solved: Vec<(usize, usize)> = r.pass_at.iter().map(|p| (p.k, p.solved)).collect();
    assert_eq!(
        solved,
        vec![(1, 2), (2, 4), (5, 4), (10, 4), (100, 4), (1000, 4)]
    );
    assert_eq!(PASS_AT_K, [1, 2, 5, 10, 100, 1000]);
    assert!((r.pass_at_k(2).unwrap() - 4.0 / 6.0).abs() < 1e-12);
    // ARC Prize / TRM scoring credits ccc's one right test input of two as 0.5: at K = 1 aaa, bb2
    // and half of ccc; at K = 2 also bbb and ddd. HRM's rate counts ccc as unsolved.
    assert!((r.prize_at_k(1).unwrap() - 2.5 / 6.0).abs() < 1e-12);
    assert!((r.pass_at_k(1).unwrap() - 2.0 / 6.0).abs() < 1e-12);
    assert!((r.prize_at_k(2).unwrap() - 4.5 / 6.0).abs() < 1e-12);
    assert!((r.tasks[3].fraction_solved_at(1) - 0.5).abs() < 1e-12);
    assert_eq!(r.pass_at_k(3), None);
}

/// The world's predictions without rows 15 (unmatched) and 16 (blank), which `evaluate` refuses.
fn matched_rows(p: &hrm_eval::Predictions) -> hrm_eval::Predictions {
    let mut p = p.clone();
    let (n, s) = (15, p.seq_len);
    p.inputs.truncate(n * s);
    p.preds.truncate(n * s);
    p.labels.truncate(n * s);
    p.puzzle_identifiers.truncate(n);
    p.q_halt_logits.truncate(n);
    p
}

#[test]
fn evaluate_refuses_rows_that_match_no_dataset_row() {
    let w = world();
    // Row 15's input is no test input of the dataset: an error naming the row, not a silent drop.
    let err = evaluate(&w.preds_dir, &w.dataset).unwrap_err().to_string();
    assert!(
        err.contains("row 15") && err.contains("matches no row"),
        "{err}"
    );
    // A blank row (puzzle id 0) is no row of the test split either.
    let mut p = matched_rows(&w.predictions);
    p.puzzle_identifiers[3] = 0;
    write_predictions(&w.preds_dir, &p).unwrap();
    let err = evaluate(&w.preds_dir, &w.dataset).unwrap_err().to_string();
    assert!(err.contains("row 3 (puzzle id 0)"), "{err}");
}

#[test]
fn evaluate_reads_both_folders_and_picks_arc() {
    let w = world();
    write_predictions(&w.preds_dir, &matched_rows(&w.predictions)).unwrap();
    let report = evaluate(&w.preds_dir, &w.dataset).unwrap();
    assert_eq!(report.task, TaskFamily::Arc);
    let arc = report.arc.as_ref().unwrap();
    let at_2 = arc.pass_at.iter().find(|p| p.k == 2).unwrap();
    assert_eq!(at_2.solved, 4);
    assert!((report.headline() - 4.0 / 6.0).abs() < 1e-12);
    // Per-row exactness: 15 rows, all labelled; exact rows are those predicting their own truth.
    assert_eq!(report.accuracy.count, 15);
    assert_eq!(report.accuracy.exact_count, 7);
    let json = report.to_json();
    // The JSON reads back into an EvalReport carrying the same content.
    let back: hrm_eval::EvalReport = serde_json::from_str(&json).unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(serde_json::to_value(&back).unwrap(), value);
    let back_arc = back.arc.as_ref().unwrap();
    assert_eq!(back_arc.tasks.len(), arc.tasks.len());
    for (x, y) in back_arc.tasks.iter().zip(&arc.tasks) {
        assert_eq!((&x.name, x.task_rank), (&y.name, y.task_rank));
        for (p, q) in x.tests.iter().zip(&y.tests) {
            assert_eq!(
                (&p.input, &p.truth, p.rank, &p.vote_counts),
                (&q.input, &q.truth, q.rank, &q.vote_counts)
            );
            let grids = |t: &hrm_eval::arc::ArcTestResult| {
                t.top.iter().map(|a| a.grid.clone()).collect::<Vec<_>>()
            };
            assert_eq!(grids(p), grids(q));
        }
    }

    // Without a task in meta.json the vocabulary (12) chooses ARC.
    let mut p = matched_rows(&w.predictions);
    p.meta.task = None;
    write_predictions(&w.preds_dir, &p).unwrap();
    assert_eq!(
        evaluate(&w.preds_dir, &w.dataset).unwrap().task,
        TaskFamily::Arc
    );
    // A contradicting task is an error naming dataset.json.
    p.meta.task = Some(TaskFamily::Sudoku);
    write_predictions(&w.preds_dir, &p).unwrap();
    let err = evaluate(&w.preds_dir, &w.dataset).unwrap_err().to_string();
    assert!(
        err.contains("dataset.json") && err.contains("sudoku"),
        "{err}"
    );
}

#[test]
fn demonstrations_come_from_the_train_split_even_when_translated() {
    let w = world();
    let demos = read_arc_demonstrations(&w.dataset, &[("bbb".to_string(), 4)]).unwrap();
    let got: Vec<(Grid, Grid)> = demos["bbb"]
        .iter()
        .map(|p| (p.input.clone(), p.output.clone().unwrap()))
        .collect();
    assert_eq!(got, w.tasks[1].demos);
}
