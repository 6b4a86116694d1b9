//! Sudoku and Maze validity checks (spec 8.1): does a prediction solve the puzzle, whether or
//! not it equals the reference solution?

use std::collections::VecDeque;

use hrm_grid::sudoku::SudokuBoard;
use serde::{Deserialize, Serialize};

use crate::accuracy::{ratio, score_row};
use crate::predictions::Predictions;

/// Maze token of a wall (`#`).
pub const MAZE_WALL: u8 = 1;
/// Maze token of an open cell (` `).
pub const MAZE_OPEN: u8 = 2;
/// Maze token of the start (`S`).
pub const MAZE_START: u8 = 3;
/// Maze token of the goal (`G`).
pub const MAZE_GOAL: u8 = 4;
/// Maze token of a path cell (`o`).
pub const MAZE_PATH: u8 = 5;

/// True when `pred` decodes (blank 1, digit d -> d + 1) to a complete valid Sudoku that keeps
/// every given of `input`.
///
/// # Shapes
/// `input`, `pred`: `[81]`.
pub fn sudoku_is_valid(input: &[u8], pred: &[u8]) -> bool {
    match (
        SudokuBoard::from_tokens(input),
        SudokuBoard::from_tokens(pred),
    ) {
        (Ok(givens), Ok(board)) => board.solves(&givens),
        _ => false,
    }
}

/// BFS distances (in steps, 4-neighbourhood) from `from` over cells where `passable` holds.
fn bfs(side: usize, from: usize, passable: impl Fn(usize) -> bool) -> Vec<Option<usize>> {
    let mut dist = vec![None; side * side];
    let mut queue = VecDeque::new();
    dist[from] = Some(0);
    queue.push_back(from);
    while let Some(cell) = queue.pop_front() {
        let d = dist[cell].unwrap_or(0);
        let (r, c) = (cell / side, cell % side);
        let mut next = Vec::with_capacity(4);
        if r > 0 {
            next.push(cell - side);
        }
        if r + 1 < side {
            next.push(cell + side);
        }
        if c > 0 {
            next.push(cell - 1);
        }
        if c + 1 < side {
            next.push(cell + 1);
        }
        for n in next {
            if dist[n].is_none() && passable(n) {
                dist[n] = Some(d + 1);
                queue.push_back(n);
            }
        }
    }
    dist
}

/// True when `pred` is `input` with a shortest S -> G path drawn in path tokens.
///
/// Walls, S and G must be unchanged, path tokens may only cover open cells of `input`, and
/// the path cells must form a 4-connected S -> G path whose length is the BFS shortest
/// distance, with no extra path cells. Tokens: wall 1, open 2, S 3, G 4, path 5.
///
/// # Shapes
/// `input`, `pred`: [side * side].
pub fn maze_is_valid(input: &[u8], pred: &[u8], side: usize) -> bool {
    if input.len() != side * side || pred.len() != side * side {
        return false;
    }
    for (&i, &p) in input.iter().zip(pred) {
        let ok = match i {
            MAZE_WALL | MAZE_START | MAZE_GOAL => p == i,
            MAZE_OPEN => p == MAZE_OPEN || p == MAZE_PATH,
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    let find = |t: u8| {
        let mut it = input.iter().enumerate().filter(|(_, &x)| x == t);
        match (it.next(), it.next()) {
            (Some((i, _)), None) => Some(i),
            _ => None,
        }
    };
    let (Some(start), Some(goal)) = (find(MAZE_START), find(MAZE_GOAL)) else {
        return false;
    };
    let Some(shortest) = bfs(side, start, |c| input[c] != MAZE_WALL)[goal] else {
        return false;
    };
    let on_path = bfs(side, start, |c| matches!(pred[c], MAZE_PATH | MAZE_GOAL))[goal];
    let path_cells = pred.iter().filter(|&&t| t == MAZE_PATH).count();
    on_path == Some(shortest) && path_cells + 1 == shortest
}

/// Exact and validity rates of Sudoku or Maze predictions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidityReport {
    /// The number of rows judged.
    pub count: usize,
    /// Rows equal to the label on every supervised position.
    pub exact: usize,
    /// Rows that are valid solutions (Sudoku: complete, valid, keeps the givens; Maze: a shortest path).
    pub valid: usize,
    /// Rows that are valid but differ from the label (e.g. another shortest maze path).
    pub valid_not_exact: usize,
    /// Rows that equal the label but fail the validity check (a bad label; should be 0).
    pub exact_not_valid: usize,
    /// `exact / count`.
    pub exact_rate: f64,
    /// `valid / count`.
    pub valid_rate: f64,
}

fn judge(predictions: &Predictions, is_valid: impl Fn(&[u8], &[u8]) -> bool) -> ValidityReport {
    let mut r = ValidityReport {
        count: predictions.len(),
        exact: 0,
        valid: 0,
        valid_not_exact: 0,
        exact_not_valid: 0,
        exact_rate: 0.0,
        valid_rate: 0.0,
    };
    for i in 0..predictions.len() {
        let exact = score_row(predictions.pred(i), predictions.label(i)).exact();
        let valid = is_valid(predictions.input(i), predictions.pred(i));
        r.exact += usize::from(exact);
        r.valid += usize::from(valid);
        r.valid_not_exact += usize::from(valid && !exact);
        r.exact_not_valid += usize::from(exact && !valid);
    }
    r.exact_rate = ratio(r.exact as f64, r.count);
    r.valid_rate = ratio(r.valid as f64, r.count);
    r
}

/// Judges Sudoku predictions (S must be 81; other lengths are never valid).
pub fn judge_sudoku(predictions: &Predictions) -> ValidityReport {
    judge(predictions, sudoku_is_valid)
}

/// Judges Maze predictions on a square board of `side * side` = S cells.
pub fn judge_maze(predictions: &Predictions, side: usize) -> ValidityReport {
    judge(predictions, |i, p| maze_is_valid(i, p, side))
}
