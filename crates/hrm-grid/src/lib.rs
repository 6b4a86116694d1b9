//! hrm-grid: validated ARC grids, Sudoku boards, mazes and HRM's token codecs.
//!
//! This crate is tensor-free. It holds the data types every other crate builds on:
//! [`Grid`] (an ARC grid of 1..=30 x 1..=30 colours 0..=9), ARC task loading
//! ([`arc`]), Sudoku boards ([`sudoku`]), mazes ([`maze`]) and the token codecs of
//! spec sections 1.2, 1.5 and 1.6 ([`codec`]).

pub mod arc;
pub mod codec;
pub mod maze;
pub mod sudoku;
pub mod task;

pub use task::{Task, TaskFamily};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The largest height or width of an ARC grid.
pub const MAX_DIM: usize = 30;

/// The largest ARC colour; colours are 0..=MAX_COLOUR.
pub const MAX_COLOUR: u8 = 9;

/// Why a grid could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GridError {
    /// The grid has no rows.
    #[error("grid is empty (no rows)")]
    NoRows,
    /// A row has no cells.
    #[error("row {row} is empty (no cells)")]
    EmptyRow {
        /// The 0-based row index.
        row: usize,
    },
    /// Rows of different lengths.
    #[error("row {row} has {len} cells, expected {expected}")]
    Ragged {
        /// The 0-based row index.
        row: usize,
        /// The length found.
        len: usize,
        /// The length of row 0.
        expected: usize,
    },
    /// Height or width out of 1..=30.
    #[error("grid is {rows}x{cols}, each side must be 1..={max}", max = MAX_DIM)]
    BadShape {
        /// The number of rows.
        rows: usize,
        /// The number of columns.
        cols: usize,
    },
    /// The cell vector does not hold rows x cols cells.
    #[error("{len} cells given for a {rows}x{cols} grid (expected {})", rows * cols)]
    CellCount {
        /// The number of rows.
        rows: usize,
        /// The number of columns.
        cols: usize,
        /// The number of cells given.
        len: usize,
    },
    /// A cell value that is not a colour 0..=9.
    #[error("row {row}, col {col} holds {value}, expected a colour 0..=9")]
    BadColour {
        /// The 0-based row index.
        row: usize,
        /// The 0-based column index.
        col: usize,
        /// The offending value, as written.
        value: String,
    },
}

/// A validated ARC grid: 1..=30 rows, 1..=30 columns, colours 0..=9, row-major.
///
/// It serialises as a list of rows (the ARC JSON form) and validates when deserialised.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<Vec<u8>>", into = "Vec<Vec<u8>>")]
pub struct Grid {
    rows: usize,
    cols: usize,
    cells: Vec<u8>,
}

impl Grid {
    /// Builds a grid from its shape and its row-major cells.
    ///
    /// Fails when a side is outside 1..=30, when `cells.len() != rows * cols`, or when a
    /// cell is not a colour 0..=9.
    pub fn new(rows: usize, cols: usize, cells: Vec<u8>) -> Result<Grid, GridError> {
        if !(1..=MAX_DIM).contains(&rows) || !(1..=MAX_DIM).contains(&cols) {
            return Err(GridError::BadShape { rows, cols });
        }
        if cells.len() != rows * cols {
            return Err(GridError::CellCount {
                rows,
                cols,
                len: cells.len(),
            });
        }
        if let Some(i) = cells.iter().position(|&c| c > MAX_COLOUR) {
            return Err(GridError::BadColour {
                row: i / cols,
                col: i % cols,
                value: cells[i].to_string(),
            });
        }
        Ok(Grid { rows, cols, cells })
    }

    /// Builds a grid from a list of rows; ragged, empty, oversized or off-palette input fails.
    pub fn from_rows(rows: &[Vec<u8>]) -> Result<Grid, GridError> {
        let first = rows.first().ok_or(GridError::NoRows)?;
        let expected = first.len();
        for (r, row) in rows.iter().enumerate() {
            if row.is_empty() {
                return Err(GridError::EmptyRow { row: r });
            }
            if row.len() != expected {
                return Err(GridError::Ragged {
                    row: r,
                    len: row.len(),
                    expected,
                });
            }
        }
        Grid::new(rows.len(), expected, rows.concat())
    }

    /// Builds a grid from a 2-D array (same checks as [`Grid::new`]).
    pub fn from_array2(array: &ndarray::Array2<u8>) -> Result<Grid, GridError> {
        let (rows, cols) = array.dim();
        Grid::new(rows, cols, array.iter().copied().collect())
    }

    /// The number of rows (height).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The number of columns (width).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The shape as (rows, cols).
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// The colour at row `r`, column `c`.
    ///
    /// # Panics
    /// When `r >= rows()` or `c >= cols()`.
    pub fn get(&self, r: usize, c: usize) -> u8 {
        assert!(
            r < self.rows && c < self.cols,
            "cell ({r}, {c}) is outside a {}x{} grid",
            self.rows,
            self.cols
        );
        self.cells[r * self.cols + c]
    }

    /// The cells, row-major.
    pub fn cells(&self) -> &[u8] {
        &self.cells
    }

    /// Consumes the grid and returns its row-major cells.
    pub fn into_cells(self) -> Vec<u8> {
        self.cells
    }

    /// The grid as a list of rows.
    pub fn to_rows(&self) -> Vec<Vec<u8>> {
        self.cells.chunks(self.cols).map(<[u8]>::to_vec).collect()
    }

    /// The grid as a 2-D array of shape (rows, cols).
    pub fn to_array2(&self) -> ndarray::Array2<u8> {
        ndarray::Array2::from_shape_vec((self.rows, self.cols), self.cells.clone())
            .expect("a grid's cell count always matches its shape")
    }
}

impl TryFrom<Vec<Vec<u8>>> for Grid {
    type Error = GridError;

    fn try_from(rows: Vec<Vec<u8>>) -> Result<Grid, GridError> {
        Grid::from_rows(&rows)
    }
}

impl From<Grid> for Vec<Vec<u8>> {
    fn from(grid: Grid) -> Vec<Vec<u8>> {
        grid.to_rows()
    }
}
