//! Dihedral maps of mazes (spec 1.6's optional augmentation, off by default).
//! Follows the reference's `dataset/build_maze_dataset.py`.

use hrm_grid::maze::Maze;

use crate::dihedral;

/// Applies dihedral map `id` to a maze.
///
/// # Panics
/// When `id > 7`.
pub fn transform_maze(maze: &Maze, id: u8) -> Maze {
    let (oh, ow) = dihedral::output_shape(id, maze.rows(), maze.cols());
    let cells = dihedral::transform(maze.cells(), maze.rows(), maze.cols(), id);
    Maze::new(oh, ow, cells).expect("a dihedral map keeps a maze valid")
}

/// Undoes dihedral map `id` on a maze.
///
/// # Panics
/// When `id > 7`.
pub fn inverse_transform_maze(maze: &Maze, id: u8) -> Maze {
    transform_maze(maze, dihedral::inverse(id))
}

/// Applies dihedral map `id` to a row-major token array of a `rows` x `cols` maze.
///
/// # Shapes
/// `tokens`: [rows * cols]; returns [rows * cols] in the output shape of
/// [`dihedral::output_shape`].
///
/// # Panics
/// When `tokens.len() != rows * cols` or `id > 7`.
pub fn transform_tokens(tokens: &[u8], rows: usize, cols: usize, id: u8) -> Vec<u8> {
    dihedral::transform(tokens, rows, cols, id)
}
