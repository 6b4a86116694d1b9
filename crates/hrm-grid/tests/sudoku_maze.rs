//! Tests of Sudoku boards (parsing, validity, tokens) and mazes (tokens, characters).

use hrm_grid::maze::{Maze, MazeCell, MazeError, MAZE_DIM};
use hrm_grid::sudoku::{SudokuBoard, SudokuError};
use proptest::prelude::*;

/// A valid solved grid: the classic shifted pattern.
fn solved() -> SudokuBoard {
    let cells = std::array::from_fn(|k| {
        let (r, c) = (k / 9, k % 9);
        ((r * 3 + r / 3 + c) % 9 + 1) as u8
    });
    SudokuBoard::from_cells(cells).unwrap()
}

#[test]
fn parse_line_accepts_dots_zeros_digits_and_a_trailing_cr() {
    let sol = solved();
    let line = sol.to_line();
    assert_eq!(SudokuBoard::parse_line(&line).unwrap(), sol);
    assert_eq!(SudokuBoard::parse_line(&format!("{line}\r")).unwrap(), sol);
    let mut puzzle = line.clone().into_bytes();
    puzzle[0] = b'.';
    puzzle[80] = b'0';
    let p = SudokuBoard::parse_line(std::str::from_utf8(&puzzle).unwrap()).unwrap();
    assert_eq!((p.get(0, 0), p.get(8, 8), p.num_filled()), (0, 0, 79));
    assert!(p.to_line().starts_with('.'));
    assert!(p.to_line().ends_with('.'));
}

#[test]
fn parse_line_errors() {
    assert_eq!(
        SudokuBoard::parse_line("123"),
        Err(SudokuError::Length { len: 3 })
    );
    let mut bad = ".".repeat(81).into_bytes();
    bad[40] = b'x';
    let err = SudokuBoard::parse_line(std::str::from_utf8(&bad).unwrap()).unwrap_err();
    assert_eq!(err, SudokuError::BadChar { index: 40, ch: 'x' });
    assert!(err.to_string().contains("row 4, col 4"), "{err}");
    assert!(SudokuBoard::from_cells([10; 81]).is_err());
}

#[test]
fn validity_checks() {
    let sol = solved();
    assert!(sol.is_complete_valid());
    assert!(sol.is_valid_partial());
    // Swapping two cells of a row keeps rows valid but breaks columns.
    let mut cells = *sol.cells();
    cells.swap(0, 1);
    let broken = SudokuBoard::from_cells(cells).unwrap();
    assert!(!broken.is_complete_valid());
    // A blank makes it incomplete but still partially valid.
    let mut cells = *sol.cells();
    cells[10] = 0;
    let partial = SudokuBoard::from_cells(cells).unwrap();
    assert!(!partial.is_complete_valid());
    assert!(partial.is_valid_partial());
    assert!(sol.is_consistent_with(&partial));
    assert!(sol.solves(&partial));
    assert!(!broken.is_consistent_with(&sol));
    // A duplicate in a box only (not in a row or column).
    let mut cells = [0u8; 81];
    cells[0] = 5;
    cells[10] = 5;
    assert!(!SudokuBoard::from_cells(cells).unwrap().is_valid_partial());
    assert!(SudokuBoard::from_cells([0; 81]).unwrap().is_valid_partial());
}

#[test]
fn sudoku_tokens() {
    let mut cells = *solved().cells();
    cells[3] = 0;
    let b = SudokuBoard::from_cells(cells).unwrap();
    let t = b.to_tokens();
    assert_eq!(t[3], 1);
    assert!(t.iter().enumerate().all(|(i, &x)| x == cells[i] + 1));
    assert_eq!(SudokuBoard::from_tokens(&t).unwrap(), b);
    let mut bad = t;
    bad[7] = 0;
    assert_eq!(
        SudokuBoard::from_tokens(&bad),
        Err(SudokuError::BadToken { index: 7, token: 0 })
    );
    bad[7] = 11;
    assert!(SudokuBoard::from_tokens(&bad).is_err());
    assert_eq!(
        SudokuBoard::from_tokens(&t[..80]),
        Err(SudokuError::Length { len: 80 })
    );
}

proptest! {
    #[test]
    fn sudoku_line_and_token_round_trip(cells in proptest::array::uniform32(0u8..=9), rest in proptest::collection::vec(0u8..=9, 49)) {
        let mut all = [0u8; 81];
        all[..32].copy_from_slice(&cells);
        all[32..].copy_from_slice(&rest);
        let b = SudokuBoard::from_cells(all).unwrap();
        prop_assert_eq!(SudokuBoard::parse_line(&b.to_line()).unwrap(), b);
        prop_assert_eq!(SudokuBoard::from_tokens(&b.to_tokens()).unwrap(), b);
        let json = serde_json::to_string(&b).unwrap();
        prop_assert_eq!(serde_json::from_str::<SudokuBoard>(&json).unwrap(), b);
    }

    #[test]
    fn maze_tokens_and_chars_round_trip(tokens in proptest::collection::vec(1u8..=5, MAZE_DIM * MAZE_DIM)) {
        let m = Maze::from_tokens(MAZE_DIM, MAZE_DIM, &tokens).unwrap();
        prop_assert_eq!(&m.to_tokens(), &tokens);
        prop_assert_eq!(&Maze::from_line(MAZE_DIM, MAZE_DIM, &m.to_line()).unwrap(), &m);
        prop_assert_eq!(m.get(3, 4).token(), tokens[3 * 30 + 4]);
    }
}

#[test]
fn maze_cells_tokens_and_chars() {
    let chars = ['#', ' ', 'S', 'G', 'o'];
    for (i, cell) in MazeCell::ALL.into_iter().enumerate() {
        assert_eq!(usize::from(cell.token()), i + 1);
        assert_eq!(MazeCell::from_token(cell.token()), Some(cell));
        assert_eq!(cell.to_char(), chars[i]);
        assert_eq!(MazeCell::from_char(chars[i]), Some(cell));
    }
    assert_eq!(MazeCell::from_token(0), None);
    assert_eq!(MazeCell::from_token(6), None);
    assert_eq!(MazeCell::from_char('x'), None);
}

#[test]
fn maze_start_goal_and_errors() {
    let line = "#####\n".replace('\n', "") + "#S o#" + "# #G#" + "#####";
    let m = Maze::from_line(4, 5, &line).unwrap();
    assert_eq!(m.start(), Some((1, 1)));
    assert_eq!(m.goal(), Some((2, 3)));
    assert_eq!(m.get(1, 3), MazeCell::Path);
    let no_goal = Maze::from_tokens(1, 2, &[3, 2]).unwrap();
    assert_eq!(no_goal.goal(), None);
    assert!(matches!(
        Maze::from_tokens(2, 2, &[1, 2, 3]),
        Err(MazeError::Length { len: 3, .. })
    ));
    let err = Maze::from_tokens(2, 2, &[1, 2, 9, 1]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "maze cell 2 (row 1, col 0) has token 9, expected 1..=5"
    );
    assert!(matches!(
        Maze::from_line(1, 2, "#x"),
        Err(MazeError::BadChar {
            index: 1,
            ch: 'x',
            ..
        })
    ));
    assert!(matches!(
        Maze::from_tokens(0, 2, &[]),
        Err(MazeError::BadShape { .. })
    ));
}
