//! ARC translation offsets (spec 1.2).
//! Follows the reference's `dataset/build_arc_dataset.py`.

use hrm_grid::{codec, Grid};
use rand::Rng;

/// A uniform offset (r0, c0) with r0 in 0..=max_r and c0 in 0..=max_c (both inclusive).
pub fn random_offset<R: Rng + ?Sized>(rng: &mut R, max_r: usize, max_c: usize) -> (usize, usize) {
    (rng.random_range(0..=max_r), rng.random_range(0..=max_c))
}

/// A uniform legal offset for an ARC pair: the same for input and output, bounded by
/// [`codec::arc_pair_max_offset`].
pub fn random_pair_offset<R: Rng + ?Sized>(
    rng: &mut R,
    input: &Grid,
    output: &Grid,
) -> (usize, usize) {
    let (max_r, max_c) = codec::arc_pair_max_offset(input, output);
    random_offset(rng, max_r, max_c)
}
