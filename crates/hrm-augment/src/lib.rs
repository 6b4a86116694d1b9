//! hrm-augment: the augmentations of HRM's dataset builders, each with its inverse.
//! Follows the reference's `dataset/{common,build_arc_dataset,build_sudoku_dataset,build_maze_dataset}.py`.
//!
//! * [`dihedral`]: the 8 maps of the dihedral group D4 in the reference id order (spec 2).
//! * [`colour`]: colour permutations that fix 0 (spec 1.4 and 2).
//! * [`translate`]: ARC translation offsets (spec 1.2).
//! * [`variant`]: ARC variant names `<orig>_t<t>_<10 digits>` (spec 1.4).
//! * [`sudoku`]: the Sudoku shuffle of spec 1.5.
//! * [`maze`]: dihedral maps of mazes (spec 1.6, off by default).
//!
//! Every random draw takes an explicit `&mut R: rand::Rng`.

pub mod colour;
pub mod dihedral;
pub mod maze;
pub mod sudoku;
pub mod translate;
pub mod variant;

use thiserror::Error;

/// Why an augmentation description could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AugmentError {
    /// A colour-map string that is not 10 digits forming a permutation with 0 fixed.
    #[error("colour map {text:?} is invalid: {reason}")]
    BadColourMap {
        /// The text given.
        text: String,
        /// What is wrong.
        reason: String,
    },
    /// A dihedral id outside 0..=7.
    #[error("dihedral id {0} is outside 0..=7")]
    BadDihedral(u8),
    /// A Sudoku shuffle whose permutations do not keep bands and stacks.
    #[error("invalid Sudoku shuffle: {0}")]
    BadSudokuShuffle(String),
}
