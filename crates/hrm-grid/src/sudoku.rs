//! Sudoku boards: parsing the dataset's 81-character lines, validity and solution checks,
//! and the token map of spec 1.5 (blank -> 1, digit d -> d + 1).
//! Follows the reference's `dataset/build_sudoku_dataset.py`.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::codec;

/// The number of cells of a Sudoku board.
pub const SUDOKU_CELLS: usize = 81;

/// Why a Sudoku board could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SudokuError {
    /// The line or token slice does not hold 81 entries.
    #[error("Sudoku board has {len} cells, expected 81")]
    Length {
        /// The number of entries found.
        len: usize,
    },
    /// A character other than '.', '0' or '1'..'9'.
    #[error("Sudoku cell {index} (row {}, col {}) is {ch:?}, expected '.', '0' or '1'..'9'", index / 9, index % 9)]
    BadChar {
        /// The 0-based cell index.
        index: usize,
        /// The character found.
        ch: char,
    },
    /// A token outside 1..=10.
    #[error("Sudoku cell {index} (row {}, col {}) has token {token}, expected 1..=10", index / 9, index % 9)]
    BadToken {
        /// The 0-based cell index.
        index: usize,
        /// The token found.
        token: u8,
    },
    /// A cell value outside 0..=9.
    #[error("Sudoku cell {index} (row {}, col {}) holds {value}, expected 0 (blank) or 1..=9", index / 9, index % 9)]
    BadValue {
        /// The 0-based cell index.
        index: usize,
        /// The value found.
        value: u8,
    },
}

/// A 9x9 Sudoku board, row-major; 0 is a blank, 1..=9 are digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SudokuBoard {
    cells: [u8; SUDOKU_CELLS],
}

impl SudokuBoard {
    /// Builds a board from 81 cell values (0 = blank, 1..=9 digits).
    pub fn from_cells(cells: [u8; SUDOKU_CELLS]) -> Result<SudokuBoard, SudokuError> {
        if let Some(index) = cells.iter().position(|&v| v > 9) {
            return Err(SudokuError::BadValue {
                index,
                value: cells[index],
            });
        }
        Ok(SudokuBoard { cells })
    }

    /// Parses an 81-character line: '.' or '0' blank, '1'..'9' digits; one trailing '\r'
    /// (and a trailing '\n') is stripped.
    pub fn parse_line(line: &str) -> Result<SudokuBoard, SudokuError> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        let len = line.chars().count();
        if len != SUDOKU_CELLS {
            return Err(SudokuError::Length { len });
        }
        let mut cells = [0u8; SUDOKU_CELLS];
        for (index, (cell, ch)) in cells.iter_mut().zip(line.chars()).enumerate() {
            *cell = match ch {
                '.' | '0' => 0,
                '1'..='9' => ch as u8 - b'0',
                _ => return Err(SudokuError::BadChar { index, ch }),
            };
        }
        Ok(SudokuBoard { cells })
    }

    /// The board as an 81-character line, '.' for blanks (the dataset's form).
    pub fn to_line(&self) -> String {
        self.cells
            .iter()
            .map(|&v| if v == 0 { '.' } else { (b'0' + v) as char })
            .collect()
    }

    /// The 81 cell values, row-major.
    pub fn cells(&self) -> &[u8; SUDOKU_CELLS] {
        &self.cells
    }

    /// The value at row `r`, column `c` (0 = blank).
    ///
    /// # Panics
    /// When `r` or `c` is 9 or more.
    pub fn get(&self, r: usize, c: usize) -> u8 {
        assert!(
            r < 9 && c < 9,
            "Sudoku cell ({r}, {c}) is outside the board"
        );
        self.cells[r * 9 + c]
    }

    /// The number of filled (non-blank) cells.
    pub fn num_filled(&self) -> usize {
        self.cells.iter().filter(|&&v| v != 0).count()
    }

    /// True when no row, column or box holds the same digit twice (blanks are ignored).
    pub fn is_valid_partial(&self) -> bool {
        units().all(|unit| {
            let mut seen = 0u16;
            unit.iter().all(|&i| {
                let v = self.cells[i];
                if v == 0 {
                    return true;
                }
                let bit = 1u16 << v;
                let fresh = seen & bit == 0;
                seen |= bit;
                fresh
            })
        })
    }

    /// True when every cell is filled and every row, column and box holds 1..=9 once.
    pub fn is_complete_valid(&self) -> bool {
        !self.cells.contains(&0) && self.is_valid_partial()
    }

    /// True when every given (non-blank) cell of `givens` holds the same digit here.
    pub fn is_consistent_with(&self, givens: &SudokuBoard) -> bool {
        self.cells
            .iter()
            .zip(givens.cells.iter())
            .all(|(&v, &g)| g == 0 || v == g)
    }

    /// True when this board is a complete valid solution of the puzzle `givens`.
    pub fn solves(&self, givens: &SudokuBoard) -> bool {
        self.is_complete_valid() && self.is_consistent_with(givens)
    }

    /// The 81 tokens of spec 1.5: blank -> 1, digit d -> d + 1.
    pub fn to_tokens(&self) -> [u8; SUDOKU_CELLS] {
        self.cells.map(codec::sudoku_token)
    }

    /// Builds a board from 81 tokens (1 = blank, 2..=10 = digits 1..=9).
    pub fn from_tokens(tokens: &[u8]) -> Result<SudokuBoard, SudokuError> {
        if tokens.len() != SUDOKU_CELLS {
            return Err(SudokuError::Length { len: tokens.len() });
        }
        let mut cells = [0u8; SUDOKU_CELLS];
        for (index, (cell, &token)) in cells.iter_mut().zip(tokens).enumerate() {
            *cell = codec::sudoku_value(token).ok_or(SudokuError::BadToken { index, token })?;
        }
        Ok(SudokuBoard { cells })
    }
}

impl TryFrom<String> for SudokuBoard {
    type Error = SudokuError;

    fn try_from(line: String) -> Result<SudokuBoard, SudokuError> {
        SudokuBoard::parse_line(&line)
    }
}

impl From<SudokuBoard> for String {
    fn from(board: SudokuBoard) -> String {
        board.to_line()
    }
}

/// The 27 units (9 rows, 9 columns, 9 boxes) as lists of cell indices.
fn units() -> impl Iterator<Item = [usize; 9]> {
    (0..27).map(|u| {
        let k = u % 9;
        std::array::from_fn(|m| match u / 9 {
            0 => k * 9 + m,
            1 => m * 9 + k,
            _ => ((k / 3) * 3 + m / 3) * 9 + (k % 3) * 3 + m % 3,
        })
    })
}
