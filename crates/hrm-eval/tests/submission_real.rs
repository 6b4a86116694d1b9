//! A `submission.json` built from six real ARC-AGI evaluation tasks (the ARC Prize combined file, one
//! task with several test inputs) validates against the competition format: every task present, both
//! attempts for every test input, grids rectangular with 1..=30 rows and columns and colours 0..=9;
//! with solutions and without them (hidden outputs, every task unscored), and a broken file is refused
//! naming the task.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use hrm_data::arc::{build_arc_tasks, ArcBuildConfig};
use hrm_data::layout::{dataset_fingerprint, load_identifiers};
use hrm_data::sources::{read_combined, SourcedTask};
use hrm_data::SplitData;
use hrm_eval::dataset::parse_variant;
use hrm_eval::predictions::PredictionsMeta;
use hrm_eval::submission::{Submission, SubmissionStats};
use hrm_eval::{evaluate, PredictionsWriter, TaskFamily};
use hrm_grid::arc::ArcTask;
use hrm_grid::codec::{COLOUR_OFFSET, MAX_COLOUR_TOKEN, PAD};
use serde_json::Value;

/// The number of tasks taken from the challenges file.
const NUM_TASKS: usize = 6;

use hrm_testkit::data_dir;

/// The ARC Prize evaluation challenges and solutions files.
fn combined_files() -> (PathBuf, PathBuf) {
    let dir = data_dir().join("arc-kaggle");
    (
        dir.join("arc-agi_evaluation_challenges.json"),
        dir.join("arc-agi_evaluation_solutions.json"),
    )
}

/// Every task of the challenges file in file order, with the solutions' test outputs when `solved`.
fn read_all(solved: bool) -> Vec<ArcTask> {
    let (challenges, solutions) = combined_files();
    read_combined(&challenges, solved.then_some(solutions.as_path()))
        .unwrap()
        .into_iter()
        .map(|(id, task)| task.unwrap_or_else(|e| panic!("task {id}: {e}")))
        .collect()
}

/// The first six tasks of the file; when none of them has two or more test inputs, the sixth is
/// replaced by the first task of the file that has.
fn pick(all: Vec<ArcTask>) -> Vec<ArcTask> {
    let mut tasks: Vec<ArcTask> = all.iter().take(NUM_TASKS).cloned().collect();
    if !tasks.iter().any(|t| t.test.len() >= 2) {
        let multi = all
            .into_iter()
            .find(|t| t.test.len() >= 2)
            .expect("the evaluation challenges hold a task with two or more test inputs");
        tasks[NUM_TASKS - 1] = multi;
    }
    assert_eq!(tasks.len(), NUM_TASKS);
    tasks
}

/// Builds an ARC dataset (num_aug 3, seed 0, 30x30) from `tasks`, all test tasks, at `out`.
fn build(tasks: &[ArcTask], out: &Path) {
    let (challenges, _) = combined_files();
    let sourced: Vec<SourcedTask> = tasks
        .iter()
        .map(|task| SourcedTask {
            task: task.clone(),
            path: challenges.clone(),
            evaluation: true,
        })
        .collect();
    let config = ArcBuildConfig {
        sources: vec![],
        num_aug: 3,
        seed: 0,
        threads: 1,
        canvas: 30,
        evaluation_only: false,
        max_tasks: 0,
    };
    let stats = build_arc_tasks(&sourced, &config, None, out).unwrap();
    assert_eq!(stats.tasks, NUM_TASKS);
}

/// What a prediction row holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pred {
    /// The label itself (a right answer).
    Right,
    /// The label with its first colour token changed (a wrong grid).
    Wrong,
    /// An all-PAD canvas, which does not crop (the "invalid" answer).
    Invalid,
}

/// The plan of task `k`, test input `j`, for its `v`-th row (variant) in split order:
/// task 0 all right; 1 all invalid (placeholder); 2 right and wrong alternating (two attempts,
/// the right one first); 3 right and invalid alternating (one grid, padded); 4 all wrong; the
/// last task (several test inputs): test input 0 all right, the others all invalid (placeholders).
fn plan(k: usize, j: usize, v: usize) -> Pred {
    match (k, j) {
        (0, _) => Pred::Right,
        (1, _) => Pred::Invalid,
        (2, _) if v.is_multiple_of(2) => Pred::Right,
        (2, _) => Pred::Wrong,
        (3, _) if v.is_multiple_of(2) => Pred::Right,
        (3, _) => Pred::Invalid,
        (4, _) => Pred::Wrong,
        (_, 0) => Pred::Right,
        _ => Pred::Invalid,
    }
}

/// One test-split row: its puzzle id, task index (into the picked tasks), test input index and
/// its index among the rows of that test input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RowInfo {
    puzzle_id: i32,
    task: usize,
    test: usize,
    variant: usize,
}

/// The rows of the test split: the puzzle of row r is the last p with `puzzle_indices[p] <= r`;
/// the test input is r's offset within its puzzle.
fn row_infos(split: &SplitData, identifiers: &[String], tasks: &[ArcTask]) -> Vec<RowInfo> {
    let n = split.inputs.len() / split.metadata.seq_len as usize;
    let by_name: HashMap<&str, usize> = tasks
        .iter()
        .enumerate()
        .map(|(k, t)| (t.id.as_str(), k))
        .collect();
    let mut seen: HashMap<(usize, usize), usize> = HashMap::new();
    (0..n)
        .map(|r| {
            let p = split
                .puzzle_indices
                .iter()
                .rposition(|&start| start as usize <= r)
                .unwrap();
            let puzzle_id = split.puzzle_identifiers[p];
            let test = r - split.puzzle_indices[p] as usize;
            let (name, _) = parse_variant(&identifiers[puzzle_id as usize]);
            let task = by_name[name.as_str()];
            assert!(test < tasks[task].test.len(), "row {r}: test input {test}");
            let count = seen.entry((task, test)).or_default();
            let variant = *count;
            *count += 1;
            RowInfo {
                puzzle_id,
                task,
                test,
                variant,
            }
        })
        .collect()
}

/// The predicted canvas for `label` (a solved label canvas) under `pred`.
fn predict(label: &[u8], pred: Pred) -> Vec<u8> {
    match pred {
        Pred::Right => label.to_vec(),
        Pred::Invalid => vec![PAD; label.len()],
        Pred::Wrong => {
            let mut out = label.to_vec();
            let i = out
                .iter()
                .position(|&t| (COLOUR_OFFSET..=MAX_COLOUR_TOKEN).contains(&t))
                .expect("a solved label holds a colour");
            let colour = out[i] - COLOUR_OFFSET;
            out[i] = (colour + 1) % 10 + COLOUR_OFFSET;
            out
        }
    }
}

/// Writes a predictions folder over every row of `split` (the split of `dataset`), whose preds are
/// `preds` and whose labels are the split's own.
fn write_preds(
    out: &Path,
    dataset: &Path,
    split: &SplitData,
    rows: &[RowInfo],
    preds: &[u8],
) -> usize {
    let seq_len = split.metadata.seq_len as usize;
    let meta = PredictionsMeta {
        task: Some(TaskFamily::Arc),
        num_segments: 16,
        checkpoint: "submission_real".into(),
        dataset: dataset.display().to_string(),
        dataset_fingerprint: Some(dataset_fingerprint(dataset).unwrap()),
    };
    let ids: Vec<i32> = rows.iter().map(|r| r.puzzle_id).collect();
    let q = vec![0.0f32; rows.len()];
    let mut writer = PredictionsWriter::create(out, seq_len, meta).unwrap();
    writer
        .push_batch(&split.inputs, preds, &split.labels, &ids, &q)
        .unwrap();
    writer.finish(None).unwrap()
}

/// Checks the written file as plain JSON against the competition format: every expected task with
/// one entry per test input, each exactly `attempt_1` and `attempt_2`, each grid a non-empty
/// rectangular list of lists with 1..=30 rows and columns of integers 0..=9.
fn assert_competition_format(path: &Path, expected: &[(String, usize)]) {
    let value: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let tasks = value.as_object().expect("a submission is an object");
    assert_eq!(tasks.len(), expected.len(), "{:?}", tasks.keys());
    for (id, n) in expected {
        let entries = tasks[id]
            .as_array()
            .unwrap_or_else(|| panic!("task {id}: not a list"));
        assert_eq!(entries.len(), *n, "task {id}");
        for (i, entry) in entries.iter().enumerate() {
            let fields = entry.as_object().unwrap();
            let mut keys: Vec<&str> = fields.keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(
                keys,
                ["attempt_1", "attempt_2"],
                "task {id}, test input {i}"
            );
            for (name, grid) in fields {
                let at = format!("task {id}, test input {i}, {name}");
                let rows = grid
                    .as_array()
                    .unwrap_or_else(|| panic!("{at}: not a list"));
                assert!((1..=30).contains(&rows.len()), "{at}: {} rows", rows.len());
                let width = rows[0].as_array().map_or(0, Vec::len);
                assert!((1..=30).contains(&width), "{at}: {width} columns");
                for row in rows {
                    let cells = row.as_array().unwrap_or_else(|| panic!("{at}: a row"));
                    assert_eq!(cells.len(), width, "{at}: ragged");
                    for cell in cells {
                        let c = cell.as_u64().unwrap_or_else(|| panic!("{at}: {cell}"));
                        assert!(c <= 9, "{at}: colour {c}");
                    }
                }
            }
        }
    }
}

/// One built dataset with its test split and rows.
struct Built {
    dataset: PathBuf,
    split: SplitData,
    identifiers: Vec<String>,
}

fn build_and_load(tasks: &[ArcTask], out: PathBuf) -> Built {
    build(tasks, &out);
    Built {
        split: hrm_data::load_split(&out, "test").unwrap(),
        identifiers: load_identifiers(&out).unwrap(),
        dataset: out,
    }
}

/// The solved build of the picked tasks, its rows, preds following [`plan`] and the resulting
/// submission written under `dir`.
struct Solved {
    tasks: Vec<ArcTask>,
    expected: Vec<(String, usize)>,
    built: Built,
    rows: Vec<RowInfo>,
    preds: Vec<u8>,
    submission_path: PathBuf,
    submission: Submission,
    stats: SubmissionStats,
}

/// Scores `preds` against `built` and writes the submission to `dir/<name>.json`.
fn submit(
    dir: &Path,
    name: &str,
    built: &Built,
    rows: &[RowInfo],
    preds: &[u8],
) -> (
    hrm_eval::arc::ArcReport,
    PathBuf,
    Submission,
    SubmissionStats,
) {
    let preds_dir = dir.join(format!("{name}-preds"));
    assert_eq!(
        write_preds(&preds_dir, &built.dataset, &built.split, rows, preds),
        rows.len()
    );
    let report = evaluate(&preds_dir, &built.dataset).unwrap();
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let arc = report.arc.expect("an ARC report");
    let (submission, stats) = Submission::from_report(&arc);
    let path = dir.join(format!("{name}-submission.json"));
    submission.write(&path).unwrap();
    (arc, path, submission, stats)
}

fn solved(dir: &Path) -> Solved {
    let tasks = pick(read_all(true));
    let expected: Vec<(String, usize)> =
        tasks.iter().map(|t| (t.id.clone(), t.test.len())).collect();
    let built = build_and_load(&tasks, dir.join("solved"));
    let rows = row_infos(&built.split, &built.identifiers, &tasks);
    let s = built.split.metadata.seq_len as usize;
    let preds: Vec<u8> = rows
        .iter()
        .enumerate()
        .flat_map(|(r, info)| {
            predict(
                &built.split.labels[r * s..(r + 1) * s],
                plan(info.task, info.test, info.variant),
            )
        })
        .collect();
    let (arc, submission_path, submission, stats) = submit(dir, "solved", &built, &rows, &preds);
    assert_eq!(arc.num_tasks, NUM_TASKS);
    assert_eq!(arc.num_tasks_unscored, 0);
    assert_eq!(
        (arc.rows_voting, arc.rows_unmatched, arc.rows_blank),
        (rows.len(), 0, 0)
    );
    let invalid_rows = rows
        .iter()
        .filter(|i| plan(i.task, i.test, i.variant) == Pred::Invalid)
        .count();
    assert_eq!(arc.rows_invalid_crop, invalid_rows);
    // Tasks 0, 2 and 3 have their truth ranked first; 1, 4 and the last (an invalid test input) fail.
    assert_eq!(arc.pass_at_k(1), Some(0.5));
    assert_eq!(arc.pass_at_k(2), Some(0.5));
    Solved {
        tasks,
        expected,
        built,
        rows,
        preds,
        submission_path,
        submission,
        stats,
    }
}

/// The solution grid of task `k`, test input `j`, as rows.
fn solution(tasks: &[ArcTask], k: usize, j: usize) -> Vec<Vec<u8>> {
    tasks[k].test[j]
        .output
        .as_ref()
        .expect("a solved task has its test outputs")
        .to_rows()
}

#[test]
fn real_tasks_submission_validates_with_and_without_solutions() {
    let dir = tempfile::tempdir().unwrap();
    let s = solved(dir.path());
    let multi = NUM_TASKS - 1;
    let n_multi = s.tasks[multi].test.len();
    assert!(
        n_multi >= 2,
        "task {} has {n_multi} test inputs",
        s.tasks[multi].id
    );
    // Expected entries come from the challenges file itself, read without solutions.
    let hidden_tasks = pick(read_all(false));
    let from_challenges: Vec<(String, usize)> = hidden_tasks
        .iter()
        .map(|t| (t.id.clone(), t.test.len()))
        .collect();
    assert_eq!(from_challenges, s.expected);
    assert!(hidden_tasks
        .iter()
        .all(|t| t.test.iter().all(|p| p.output.is_none())));

    // The solved build: the format, the stats and the answers.
    let read = Submission::read(&s.submission_path).unwrap();
    assert_eq!(read, s.submission);
    read.validate(&s.expected).unwrap();
    assert_competition_format(&s.submission_path, &s.expected);
    let total_tests: usize = s.expected.iter().map(|(_, n)| n).sum();
    assert_eq!(s.stats.tasks, NUM_TASKS);
    assert_eq!(s.stats.test_inputs, total_tests);
    // Task 1's test input and every test input of the last task but its first.
    assert_eq!(s.stats.placeholders, 1 + (n_multi - 1));
    let pairs = |k: usize| &read.0[&s.tasks[k].id];
    let repeated = read
        .0
        .values()
        .flatten()
        .filter(|p| p.attempt_1 == p.attempt_2 && p.attempt_1 != vec![vec![0]])
        .count();
    assert_eq!(s.stats.padded, repeated);
    assert!(s.stats.padded >= 3, "{:?}", s.stats);
    // All rows right: attempt_1 (and the padded attempt_2) is the solution.
    for (k, j) in [(0, 0), (multi, 0)] {
        assert_eq!(pairs(k)[j].attempt_1, solution(&s.tasks, k, j));
        assert_eq!(pairs(k)[j].attempt_2, solution(&s.tasks, k, j));
    }
    // Right and wrong alternating: the solution first (it was seen first), the wrong grid second.
    let rows_of = |k: usize| s.rows.iter().filter(|i| i.task == k).count();
    assert!(rows_of(2) >= 2, "task 2 needs two variants");
    assert_eq!(pairs(2)[0].attempt_1, solution(&s.tasks, 2, 0));
    assert_ne!(pairs(2)[0].attempt_2, solution(&s.tasks, 2, 0));
    // Right and invalid alternating: the invalid answer is skipped, the solution padded.
    assert_eq!(pairs(3)[0].attempt_1, solution(&s.tasks, 3, 0));
    assert_eq!(pairs(3)[0].attempt_2, solution(&s.tasks, 3, 0));
    // All wrong: no attempt is the solution. All invalid: the placeholder.
    assert_ne!(pairs(4)[0].attempt_1, solution(&s.tasks, 4, 0));
    assert_ne!(pairs(4)[0].attempt_2, solution(&s.tasks, 4, 0));
    assert_eq!(pairs(1)[0].attempt_1, vec![vec![0]]);
    for j in 1..n_multi {
        assert_eq!(pairs(multi)[j].attempt_1, vec![vec![0]]);
        assert_eq!(pairs(multi)[j].attempt_2, vec![vec![0]]);
    }

    // The hidden build: same rows, labels all 0; the solved build's answers as preds.
    let hidden = build_and_load(&hidden_tasks, dir.path().join("hidden"));
    assert_eq!(hidden.identifiers, s.built.identifiers);
    assert_eq!(hidden.split.inputs, s.built.split.inputs);
    assert_eq!(
        hidden.split.puzzle_identifiers,
        s.built.split.puzzle_identifiers
    );
    assert_eq!(hidden.split.puzzle_indices, s.built.split.puzzle_indices);
    assert!(hidden.split.labels.iter().all(|&t| t == 0));
    let rows = row_infos(&hidden.split, &hidden.identifiers, &hidden_tasks);
    assert_eq!(rows, s.rows);
    let (arc, path, submission, stats) = submit(dir.path(), "hidden", &hidden, &rows, &s.preds);
    assert_eq!(arc.num_tasks, NUM_TASKS);
    assert_eq!(arc.num_tasks_unscored, NUM_TASKS);
    assert_eq!(arc.pass_at_k(2), Some(0.0));
    assert_eq!(arc.rows_voting, rows.len());
    let read = Submission::read(&path).unwrap();
    read.validate(&s.expected).unwrap();
    assert_competition_format(&path, &s.expected);
    // Unscored, yet every task gets the same answers as with solutions.
    assert_eq!(read, submission);
    assert_eq!(submission, s.submission);
    assert_eq!(stats, s.stats);
    assert_eq!(
        read.0[&s.tasks[0].id][0].attempt_1,
        solution(&s.tasks, 0, 0)
    );
}

#[test]
fn broken_real_submission_is_refused_naming_the_task() {
    let dir = tempfile::tempdir().unwrap();
    let s = solved(dir.path());
    let original: Value =
        serde_json::from_str(&std::fs::read_to_string(&s.submission_path).unwrap()).unwrap();
    let path = dir.path().join("broken.json");
    let check = |value: &Value| {
        std::fs::write(&path, serde_json::to_string(value).unwrap()).unwrap();
        Submission::read(&path).and_then(|sub| sub.validate(&s.expected))
    };
    // The untouched file passes, so each failure below comes from its mutation.
    check(&original).unwrap();

    let id = |k: usize| s.tasks[k].id.clone();
    let multi = NUM_TASKS - 1;
    type Mutation = Box<dyn Fn(&mut Value, &str)>;
    let cases: Vec<(String, Mutation, &str)> = vec![
        (
            id(multi),
            Box::new(|v, task| {
                v[task][1]
                    .as_object_mut()
                    .unwrap()
                    .remove("attempt_2")
                    .unwrap();
            }),
            "test input 1: missing field `attempt_2`",
        ),
        (
            id(2),
            Box::new(|v, task| {
                let grid = v[task][0]["attempt_1"].as_array_mut().unwrap();
                let width = grid[0].as_array().unwrap().len();
                grid.push(Value::from(vec![1u8; width + 1]));
            }),
            "test input 0, attempt_1",
        ),
        (
            id(0),
            Box::new(|v, task| v[task][0]["attempt_2"][0][0] = Value::from(10)),
            "holds 10",
        ),
        (
            id(4),
            Box::new(|v, task| v[task][0]["attempt_1"] = Value::from(vec![vec![1u8]; 31])),
            "31x1",
        ),
        (
            id(1),
            Box::new(|v, task| {
                v.as_object_mut().unwrap().remove(task).unwrap();
            }),
            "missing",
        ),
    ];
    for (task, mutate, want) in cases {
        let mut value = original.clone();
        mutate(&mut value, &task);
        let err = check(&value).unwrap_err().to_string();
        assert!(
            err.contains(&format!("task {task}")) && err.contains(want),
            "{want}: {err}"
        );
    }
}
