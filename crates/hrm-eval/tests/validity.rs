//! Sudoku and Maze validity: valid-but-not-exact answers, broken givens, walls and paths, and
//! the exact/valid rates through `evaluate`.

mod common;

use common::*;
use hrm_eval::predictions::{Predictions, PredictionsMeta};
use hrm_eval::validity::{maze_is_valid, sudoku_is_valid};
use hrm_eval::{evaluate, write_predictions, TaskFamily};

const SOLUTION: &str =
    "534678912672195348198342567859761423426853791713924856961537284287419635345286179";

fn tokens(board: &str) -> Vec<u8> {
    board
        .bytes()
        .map(|b| if b == b'.' { 1 } else { b - b'0' + 1 })
        .collect()
}

/// The solution with its digits relabelled (1 <-> 2): another valid Sudoku.
fn relabelled() -> String {
    SOLUTION
        .chars()
        .map(|c| match c {
            '1' => '2',
            '2' => '1',
            c => c,
        })
        .collect()
}

fn puzzle() -> String {
    // Keep every third cell as a given, except the digits 1 and 2, which are blanked.
    SOLUTION
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i % 3 == 0 && c != '1' && c != '2' {
                c
            } else {
                '.'
            }
        })
        .collect()
}

#[test]
fn sudoku_validity() {
    let input = tokens(&puzzle());
    assert!(sudoku_is_valid(&input, &tokens(SOLUTION)));
    // Swapping 1 and 2 keeps a valid board that still agrees with the givens (none are 1 or 2).
    assert!(sudoku_is_valid(&input, &tokens(&relabelled())));
    // A blank cell, a duplicate, a broken given, or a PAD token are invalid.
    let mut blank = tokens(SOLUTION);
    blank[40] = 1;
    assert!(!sudoku_is_valid(&input, &blank));
    let mut dup = tokens(SOLUTION);
    dup.swap(0, 1);
    assert!(!sudoku_is_valid(&tokens(&".".repeat(81)), &dup));
    let mut other = SOLUTION.to_string().into_bytes();
    other.swap(0, 1);
    let givens_broken = tokens(&String::from_utf8(other).unwrap());
    assert!(!sudoku_is_valid(&tokens(SOLUTION), &tokens(&relabelled())));
    assert!(!sudoku_is_valid(&givens_broken, &tokens(SOLUTION)));
    let mut pad = tokens(SOLUTION);
    pad[3] = 0;
    assert!(!sudoku_is_valid(&input, &pad));
}

/// A 7x7 maze with one shortest S -> G path (length 4) and a much longer detour.
const MAZE: [&str; 7] = [
    "#######", //
    "#S    #", //
    "# ### #", //
    "#  G# #", //
    "# ### #", //
    "#     #", //
    "#######",
];

fn maze_tokens(rows: &[&str]) -> Vec<u8> {
    rows.iter()
        .flat_map(|r| r.bytes())
        .map(|b| match b {
            b'#' => 1,
            b' ' => 2,
            b'S' => 3,
            b'G' => 4,
            b'o' => 5,
            _ => 0,
        })
        .collect()
}

fn with_path(cells: &[(usize, usize)]) -> Vec<u8> {
    let mut t = maze_tokens(&MAZE);
    for &(r, c) in cells {
        t[r * 7 + c] = 5;
    }
    t
}

#[test]
fn maze_validity() {
    let input = maze_tokens(&MAZE);
    // S (1,1) -> (2,1) -> (3,1) -> (3,2) -> G (3,3): the only shortest path (length 4).
    let shortest = with_path(&[(2, 1), (3, 1), (3, 2)]);
    assert!(maze_is_valid(&input, &shortest, 7));
    // A path that stops short, an extra path cell, or a longer detour are invalid.
    assert!(!maze_is_valid(&input, &with_path(&[(2, 1), (3, 1)]), 7));
    assert!(!maze_is_valid(
        &input,
        &with_path(&[(2, 1), (3, 1), (3, 2), (1, 2)]),
        7
    ));
    assert!(!maze_is_valid(&input, &input, 7));
    // Painting a wall or moving the goal is invalid.
    let mut wall = shortest.clone();
    wall[2 * 7 + 2] = 5;
    assert!(!maze_is_valid(&input, &wall, 7));
    let mut goal = shortest.clone();
    goal[3 * 7 + 3] = 2;
    assert!(!maze_is_valid(&input, &goal, 7));
    assert!(!maze_is_valid(&input, &shortest[..48], 7));
}

#[test]
fn maze_allows_any_shortest_path() {
    // An open 4x4 room: S at (0,0), G at (1,1); two shortest paths of length 2.
    let room = ["S   ", " G  ", "    ", "    "];
    let input = maze_tokens(&room);
    let mut a = input.clone();
    a[1] = 5;
    let mut b = input.clone();
    b[4] = 5;
    assert!(maze_is_valid(&input, &a, 4));
    assert!(maze_is_valid(&input, &b, 4));
    let mut both = input.clone();
    both[1] = 5;
    both[4] = 5;
    assert!(!maze_is_valid(&input, &both, 4));
}

fn predictions(task: TaskFamily, s: usize, rows: &[(Vec<u8>, Vec<u8>, Vec<u8>)]) -> Predictions {
    Predictions {
        meta: PredictionsMeta {
            dataset_fingerprint: None,
            task: Some(task),
            num_segments: 16,
            checkpoint: String::new(),
            dataset: String::new(),
        },
        seq_len: s,
        inputs: rows.iter().flat_map(|r| r.0.clone()).collect(),
        preds: rows.iter().flat_map(|r| r.1.clone()).collect(),
        labels: rows.iter().flat_map(|r| r.2.clone()).collect(),
        puzzle_identifiers: vec![0; rows.len()],
        q_halt_logits: vec![1.0; rows.len()],
        segments: None,
    }
}

#[test]
fn evaluate_reports_exact_and_valid_rates() {
    let dir = tempfile::tempdir().unwrap();
    let (data, preds) = (dir.path().join("data"), dir.path().join("preds"));

    // Sudoku: exact, valid-not-exact, invalid.
    let (input, label) = (tokens(&puzzle()), tokens(SOLUTION));
    let mut wrong = label.clone();
    wrong[2] = 1;
    let p = predictions(
        TaskFamily::Sudoku,
        81,
        &[
            (input.clone(), label.clone(), label.clone()),
            (input.clone(), tokens(&relabelled()), label.clone()),
            (input.clone(), wrong, label.clone()),
        ],
    );
    write_dataset_of(&data, 11, &p);
    write_predictions(&preds, &p).unwrap();
    let r = evaluate(&preds, &data).unwrap();
    assert_eq!(r.task, TaskFamily::Sudoku);
    let v = r.validity.unwrap();
    assert_eq!((v.count, v.exact, v.valid, v.valid_not_exact), (3, 1, 2, 1));
    assert!((v.valid_rate - 2.0 / 3.0).abs() < 1e-12);
    assert!((r.accuracy.exact_accuracy - 1.0 / 3.0).abs() < 1e-12);

    // Maze, chosen by vocabulary (6) because meta.json has no task.
    let data = dir.path().join("maze-data");
    let input = maze_tokens(&MAZE);
    let label = with_path(&[(2, 1), (3, 1), (3, 2)]);
    let mut p = predictions(
        TaskFamily::Maze,
        49,
        &[
            (input.clone(), label.clone(), label.clone()),
            (input.clone(), input.clone(), label.clone()),
        ],
    );
    p.meta.task = None;
    write_dataset_of(&data, 6, &p);
    write_predictions(&preds, &p).unwrap();
    let r = evaluate(&preds, &data).unwrap();
    assert_eq!(r.task, TaskFamily::Maze);
    let v = r.validity.unwrap();
    assert_eq!((v.exact, v.valid), (1, 1));
    assert!(r.accuracy.token_accuracy > 0.9 && r.accuracy.token_accuracy < 1.0);
}
