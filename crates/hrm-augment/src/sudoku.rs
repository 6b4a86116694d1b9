//! The Sudoku shuffle of spec 1.5: digit map, optional transpose, band/row and
//! stack/column permutations, applied identically to puzzle and solution; and its inverse.
//! Follows the reference's `dataset/build_sudoku_dataset.py`.

use hrm_grid::sudoku::SudokuBoard;
use rand::seq::SliceRandom;
use rand::Rng;

use crate::AugmentError;

/// One Sudoku shuffle. Cell (i, j) of the new grid is
/// `digit_map[x[row_perm[i]][col_perm[j]]]`, where x is the input, transposed first when
/// `transpose` is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SudokuShuffle {
    /// The digit map; `digit_map[0] == 0` and 1..=9 are permuted.
    pub digit_map: [u8; 10],
    /// Whether the input is transposed first.
    pub transpose: bool,
    /// New row i is taken from row `row_perm[i]`; bands stay bands.
    pub row_perm: [usize; 9],
    /// New column j is taken from column `col_perm[j]`; stacks stay stacks.
    pub col_perm: [usize; 9],
}

impl SudokuShuffle {
    /// The identity shuffle.
    pub fn identity() -> SudokuShuffle {
        SudokuShuffle {
            digit_map: std::array::from_fn(|d| d as u8),
            transpose: false,
            row_perm: std::array::from_fn(|i| i),
            col_perm: std::array::from_fn(|i| i),
        }
    }

    /// Draws a shuffle as the builder does, in this order: the digit permutation of 1..=9,
    /// the transpose flag (probability 0.5), the band order, the row order within each
    /// band (in the new band order), the stack order, the column order within each stack.
    pub fn random<R: Rng + ?Sized>(rng: &mut R) -> SudokuShuffle {
        let mut digit_map: [u8; 10] = std::array::from_fn(|d| d as u8);
        digit_map[1..].shuffle(rng);
        let transpose = rng.random_bool(0.5);
        let row_perm = block_perm(rng);
        let col_perm = block_perm(rng);
        SudokuShuffle {
            digit_map,
            transpose,
            row_perm,
            col_perm,
        }
    }

    /// Checks the invariants: the digit map fixes 0 and permutes 1..=9, and both index
    /// permutations are permutations that map every band (stack) onto a band (stack).
    pub fn validate(&self) -> Result<(), AugmentError> {
        let bad = |s: String| Err(AugmentError::BadSudokuShuffle(s));
        if self.digit_map[0] != 0 || !is_perm(&self.digit_map.map(usize::from)) {
            return bad(format!(
                "digit map {:?} is not a permutation fixing 0",
                self.digit_map
            ));
        }
        for (name, perm) in [("row", &self.row_perm), ("column", &self.col_perm)] {
            let keeps_blocks =
                (0..3).all(|b| (0..3).all(|k| perm[3 * b + k] / 3 == perm[3 * b] / 3));
            if !is_perm(perm) || !keeps_blocks {
                return bad(format!(
                    "{name} permutation {perm:?} is not a band-preserving permutation"
                ));
            }
        }
        Ok(())
    }

    /// Applies the shuffle to 81 raw cell values (0 blank, 1..=9 digits; values above 9
    /// are moved but not remapped).
    ///
    /// # Shapes
    /// `cells`: [81] row-major; returns [81] row-major.
    ///
    /// # Panics
    /// When a permutation entry is 9 or more (see [`SudokuShuffle::validate`]).
    pub fn apply(&self, cells: &[u8; 81]) -> [u8; 81] {
        std::array::from_fn(|k| {
            let (a, b) = (self.row_perm[k / 9], self.col_perm[k % 9]);
            let v = if self.transpose {
                cells[b * 9 + a]
            } else {
                cells[a * 9 + b]
            };
            self.digit_map.get(usize::from(v)).copied().unwrap_or(v)
        })
    }

    /// The shuffle that undoes this one: `self.inverse().apply(&self.apply(x)) == x`.
    pub fn inverse(&self) -> SudokuShuffle {
        let mut digit_map = [0u8; 10];
        for (d, &m) in self.digit_map.iter().enumerate() {
            digit_map[usize::from(m)] = d as u8;
        }
        let (row_inv, col_inv) = (invert(&self.row_perm), invert(&self.col_perm));
        let (row_perm, col_perm) = if self.transpose {
            (col_inv, row_inv)
        } else {
            (row_inv, col_inv)
        };
        SudokuShuffle {
            digit_map,
            transpose: self.transpose,
            row_perm,
            col_perm,
        }
    }

    /// Undoes the shuffle on 81 raw cell values.
    ///
    /// # Shapes
    /// `cells`: [81] row-major; returns [81] row-major.
    pub fn undo(&self, cells: &[u8; 81]) -> [u8; 81] {
        self.inverse().apply(cells)
    }

    /// Applies the shuffle to a board.
    pub fn apply_board(&self, board: &SudokuBoard) -> SudokuBoard {
        SudokuBoard::from_cells(self.apply(board.cells()))
            .expect("a Sudoku shuffle keeps cell values in 0..=9")
    }

    /// Undoes the shuffle on a board.
    pub fn undo_board(&self, board: &SudokuBoard) -> SudokuBoard {
        self.inverse().apply_board(board)
    }
}

impl Default for SudokuShuffle {
    fn default() -> SudokuShuffle {
        SudokuShuffle::identity()
    }
}

/// A band-preserving permutation of 0..9: a block order, then an order within each block.
fn block_perm<R: Rng + ?Sized>(rng: &mut R) -> [usize; 9] {
    let mut blocks = [0usize, 1, 2];
    blocks.shuffle(rng);
    let mut perm = [0usize; 9];
    for (slot, &b) in perm.chunks_exact_mut(3).zip(&blocks) {
        let mut within = [0usize, 1, 2];
        within.shuffle(rng);
        for (p, w) in slot.iter_mut().zip(within) {
            *p = 3 * b + w;
        }
    }
    perm
}

fn is_perm(perm: &[usize]) -> bool {
    let mut seen = vec![false; perm.len()];
    perm.iter()
        .all(|&p| p < perm.len() && !std::mem::replace(&mut seen[p], true))
}

fn invert(perm: &[usize; 9]) -> [usize; 9] {
    let mut inv = [0usize; 9];
    for (i, &p) in perm.iter().enumerate() {
        inv[p] = i;
    }
    inv
}
