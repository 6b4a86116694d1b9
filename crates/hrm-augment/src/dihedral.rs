//! The 8 dihedral maps of spec 2 (reference id order; rot90 is counter-clockwise),
//! their inverses and their composition table.
//! Follows the reference's `dataset/common.py`.

use hrm_grid::Grid;

/// The inverse of each map: ids 1 and 3 are mutual inverses, the others self-inverse.
pub const INVERSE: [u8; 8] = [0, 3, 2, 1, 4, 5, 6, 7];

/// The number of dihedral maps.
pub const NUM_MAPS: u8 = 8;

/// The map names in id order.
pub const NAMES: [&str; 8] = [
    "identity",
    "rot90",
    "rot180",
    "rot270",
    "flip_lr",
    "flip_ud",
    "transpose",
    "anti_transpose",
];

/// `COMPOSE[first][then]` is the single map equal to applying `first`, then `then`.
///
/// Derived from the formulas of spec 2; the laws test checks it against applying the
/// maps in turn.
const COMPOSE: [[u8; 8]; 8] = [
    [0, 1, 2, 3, 4, 5, 6, 7],
    [1, 2, 3, 0, 7, 6, 4, 5],
    [2, 3, 0, 1, 5, 4, 7, 6],
    [3, 0, 1, 2, 6, 7, 5, 4],
    [4, 6, 5, 7, 0, 2, 1, 3],
    [5, 7, 4, 6, 2, 0, 3, 1],
    [6, 5, 7, 4, 3, 1, 0, 2],
    [7, 4, 6, 5, 1, 3, 2, 0],
];

/// The inverse of map `id`.
///
/// # Panics
/// When `id > 7`.
pub fn inverse(id: u8) -> u8 {
    INVERSE[check(id)]
}

/// The single map equal to applying `first`, then `then`.
///
/// # Panics
/// When an id is above 7.
pub fn compose(first: u8, then: u8) -> u8 {
    COMPOSE[check(first)][check(then)]
}

/// True for the maps that swap height and width (1, 3, 6, 7).
pub fn swaps_axes(id: u8) -> bool {
    matches!(check(id), 1 | 3 | 6 | 7)
}

/// The output shape of map `id` on an `h` x `w` array.
pub fn output_shape(id: u8, h: usize, w: usize) -> (usize, usize) {
    if swaps_axes(id) {
        (w, h)
    } else {
        (h, w)
    }
}

/// Applies map `id` to a row-major `h` x `w` array (spec 2 table).
///
/// # Shapes
/// `data`: [h * w] row-major; returns [oh * ow] row-major with
/// (oh, ow) = `output_shape(id, h, w)`.
///
/// # Panics
/// When `data.len() != h * w` or `id > 7`.
pub fn transform<T: Copy>(data: &[T], h: usize, w: usize, id: u8) -> Vec<T> {
    let mut out = Vec::with_capacity(data.len());
    transform_into(data, h, w, id, &mut out);
    out
}

/// Like [`transform`], but appends to `out` after clearing it (reuses its allocation).
///
/// # Panics
/// When `data.len() != h * w` or `id > 7`.
pub fn transform_into<T: Copy>(data: &[T], h: usize, w: usize, id: u8, out: &mut Vec<T>) {
    assert_eq!(
        data.len(),
        h * w,
        "dihedral transform: {} values for a {h}x{w} array",
        data.len()
    );
    out.clear();
    out.reserve(data.len());
    if data.is_empty() {
        return;
    }
    // Maps 0, 2, 4, 5 read input rows forwards or backwards. Maps 1, 3, 6, 7 turn input
    // row r into output column r' (r' = r or H-1-r), read forwards or backwards: the
    // output is filled by walking the input in order and scattering into output rows.
    let rows = data.chunks_exact(w);
    match check(id) {
        // out[i][j] = a[i][j]
        0 => out.extend_from_slice(data),
        // out[i][j] = a[H-1-i][W-1-j]: everything reversed.
        2 => out.extend(data.iter().rev().copied()),
        // out[i][j] = a[i][W-1-j]: each row reversed.
        4 => rows.for_each(|r| out.extend(r.iter().rev().copied())),
        // out[i][j] = a[H-1-i][j]: rows in reverse order.
        5 => rows.rev().for_each(|r| out.extend_from_slice(r)),
        swap => {
            // Output is W x H. Input cell (r, c) goes to output row i, column j with
            //   1: i = W-1-c, j = r;   3: i = c, j = H-1-r;
            //   6: i = c, j = r;       7: i = W-1-c, j = H-1-r.
            out.resize(data.len(), data[0]);
            let reverse_cols = matches!(swap, 1 | 7);
            let reverse_rows = matches!(swap, 3 | 7);
            for (r, row) in rows.enumerate() {
                let j = if reverse_rows { h - 1 - r } else { r };
                let dst = out.chunks_exact_mut(h);
                if reverse_cols {
                    dst.rev().zip(row).for_each(|(d, &v)| d[j] = v);
                } else {
                    dst.zip(row).for_each(|(d, &v)| d[j] = v);
                }
            }
        }
    }
}

/// Applies map `id` to a grid.
///
/// # Panics
/// When `id > 7`.
pub fn transform_grid(grid: &Grid, id: u8) -> Grid {
    let (oh, ow) = output_shape(id, grid.rows(), grid.cols());
    let cells = transform(grid.cells(), grid.rows(), grid.cols(), id);
    Grid::new(oh, ow, cells).expect("a dihedral map keeps a grid valid")
}

/// Applies the inverse of map `id` to a grid, so `inverse_transform_grid(&transform_grid(g, t), t) == g`.
///
/// # Panics
/// When `id > 7`.
pub fn inverse_transform_grid(grid: &Grid, id: u8) -> Grid {
    transform_grid(grid, inverse(id))
}

fn check(id: u8) -> usize {
    assert!(id < NUM_MAPS, "dihedral id {id} is outside 0..=7");
    usize::from(id)
}
