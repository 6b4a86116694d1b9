//! Mazes of spec 1.6: cells wall/open/start/goal/path with tokens 1..=5.
//! Follows the reference's `dataset/build_maze_dataset.py`.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The side of a Maze-Hard maze.
pub const MAZE_DIM: usize = 30;

/// One maze cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MazeCell {
    /// '#', token 1.
    Wall,
    /// ' ', token 2.
    Open,
    /// 'S', token 3.
    Start,
    /// 'G', token 4.
    Goal,
    /// 'o', token 5 (the drawn path).
    Path,
}

impl MazeCell {
    /// All cells in token order.
    pub const ALL: [MazeCell; 5] = [
        MazeCell::Wall,
        MazeCell::Open,
        MazeCell::Start,
        MazeCell::Goal,
        MazeCell::Path,
    ];

    /// The token 1..=5 of spec 1.6.
    pub fn token(self) -> u8 {
        match self {
            MazeCell::Wall => 1,
            MazeCell::Open => 2,
            MazeCell::Start => 3,
            MazeCell::Goal => 4,
            MazeCell::Path => 5,
        }
    }

    /// The cell of a token 1..=5, or `None`.
    pub fn from_token(token: u8) -> Option<MazeCell> {
        token
            .checked_sub(1)
            .and_then(|i| MazeCell::ALL.get(usize::from(i)).copied())
    }

    /// The cell of a dataset character ('#', ' ', 'S', 'G', 'o'), or `None`.
    pub fn from_char(ch: char) -> Option<MazeCell> {
        Some(match ch {
            '#' => MazeCell::Wall,
            ' ' => MazeCell::Open,
            'S' => MazeCell::Start,
            'G' => MazeCell::Goal,
            'o' => MazeCell::Path,
            _ => return None,
        })
    }

    /// The dataset character of this cell.
    pub fn to_char(self) -> char {
        match self {
            MazeCell::Wall => '#',
            MazeCell::Open => ' ',
            MazeCell::Start => 'S',
            MazeCell::Goal => 'G',
            MazeCell::Path => 'o',
        }
    }
}

/// Why a maze could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MazeError {
    /// A side is zero.
    #[error("maze shape {rows}x{cols} is empty")]
    BadShape {
        /// The number of rows.
        rows: usize,
        /// The number of columns.
        cols: usize,
    },
    /// The wrong number of cells.
    #[error("maze has {len} cells, expected {expected} ({rows}x{cols})")]
    Length {
        /// The number of rows.
        rows: usize,
        /// The number of columns.
        cols: usize,
        /// The number found.
        len: usize,
        /// rows x cols.
        expected: usize,
    },
    /// A token outside 1..=5.
    #[error("maze cell {index} (row {}, col {}) has token {token}, expected 1..=5", index / cols, index % cols)]
    BadToken {
        /// The 0-based cell index.
        index: usize,
        /// The number of columns (for the message).
        cols: usize,
        /// The token found.
        token: u8,
    },
    /// A character other than '#', ' ', 'S', 'G', 'o'.
    #[error("maze cell {index} (row {}, col {}) is {ch:?}, expected one of '#', ' ', 'S', 'G', 'o'", index / cols, index % cols)]
    BadChar {
        /// The 0-based cell index.
        index: usize,
        /// The number of columns (for the message).
        cols: usize,
        /// The character found.
        ch: char,
    },
}

/// A rectangular maze (30x30 for HRM), row-major.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Maze {
    rows: usize,
    cols: usize,
    cells: Vec<MazeCell>,
}

impl Maze {
    /// Builds a maze from its cells.
    pub fn new(rows: usize, cols: usize, cells: Vec<MazeCell>) -> Result<Maze, MazeError> {
        check_shape(rows, cols, cells.len())?;
        Ok(Maze { rows, cols, cells })
    }

    /// Builds a maze from tokens 1..=5.
    pub fn from_tokens(rows: usize, cols: usize, tokens: &[u8]) -> Result<Maze, MazeError> {
        check_shape(rows, cols, tokens.len())?;
        let cells = tokens
            .iter()
            .enumerate()
            .map(|(index, &token)| {
                MazeCell::from_token(token).ok_or(MazeError::BadToken { index, cols, token })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Maze { rows, cols, cells })
    }

    /// Builds a maze from a row-major string of dataset characters (a CSV field);
    /// one trailing '\r' or '\n' is stripped.
    pub fn from_line(rows: usize, cols: usize, line: &str) -> Result<Maze, MazeError> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        check_shape(rows, cols, line.chars().count())?;
        let cells = line
            .chars()
            .enumerate()
            .map(|(index, ch)| {
                MazeCell::from_char(ch).ok_or(MazeError::BadChar { index, cols, ch })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Maze { rows, cols, cells })
    }

    /// The number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The cells, row-major.
    pub fn cells(&self) -> &[MazeCell] {
        &self.cells
    }

    /// The cell at row `r`, column `c`.
    ///
    /// # Panics
    /// When the position is outside the maze.
    pub fn get(&self, r: usize, c: usize) -> MazeCell {
        assert!(
            r < self.rows && c < self.cols,
            "maze cell ({r}, {c}) is outside"
        );
        self.cells[r * self.cols + c]
    }

    /// The tokens 1..=5, row-major.
    pub fn to_tokens(&self) -> Vec<u8> {
        self.cells.iter().map(|c| c.token()).collect()
    }

    /// The maze as a row-major string of dataset characters.
    pub fn to_line(&self) -> String {
        self.cells.iter().map(|c| c.to_char()).collect()
    }

    /// The (row, col) of the first start cell, if any.
    pub fn start(&self) -> Option<(usize, usize)> {
        self.find(MazeCell::Start)
    }

    /// The (row, col) of the first goal cell, if any.
    pub fn goal(&self) -> Option<(usize, usize)> {
        self.find(MazeCell::Goal)
    }

    fn find(&self, cell: MazeCell) -> Option<(usize, usize)> {
        self.cells
            .iter()
            .position(|&c| c == cell)
            .map(|i| (i / self.cols, i % self.cols))
    }
}

fn check_shape(rows: usize, cols: usize, len: usize) -> Result<(), MazeError> {
    if rows == 0 || cols == 0 {
        return Err(MazeError::BadShape { rows, cols });
    }
    if len != rows * cols {
        return Err(MazeError::Length {
            rows,
            cols,
            len,
            expected: rows * cols,
        });
    }
    Ok(())
}
