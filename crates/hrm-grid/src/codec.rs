//! Token codecs: the ARC 30x30 canvas with EOS row and column (spec 1.2), its crop
//! (spec 8.2 step 2), and the token maps of Sudoku (spec 1.5) and Maze (spec 1.6).
//! Follows the reference's `dataset/build_arc_dataset.py` and `arc_eval.ipynb`.

use thiserror::Error;

use crate::{Grid, MAX_COLOUR};

/// The padding token (also the ignored label).
pub const PAD: u8 = 0;
/// The end-of-grid token, written on the row below and the column right of an ARC grid.
pub const EOS: u8 = 1;
/// ARC colour c is token c + COLOUR_OFFSET.
pub const COLOUR_OFFSET: u8 = 2;
/// The side of the ARC canvas.
pub const ARC_CANVAS: usize = 30;
/// The ARC sequence length (30 x 30).
pub const ARC_SEQ_LEN: usize = ARC_CANVAS * ARC_CANVAS;
/// The ARC vocabulary size: PAD, EOS and 10 colours.
pub const ARC_VOCAB: usize = 12;
/// The largest colour token (colour 9).
pub const MAX_COLOUR_TOKEN: u8 = MAX_COLOUR + COLOUR_OFFSET;

/// Why a grid could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodecError {
    /// The grid does not fit on the canvas at the requested offset.
    #[error(
        "a {rows}x{cols} grid does not fit on the {side}x{side} canvas at offset ({r0}, {c0})"
    )]
    DoesNotFit {
        /// The grid height.
        rows: usize,
        /// The grid width.
        cols: usize,
        /// The row offset.
        r0: usize,
        /// The column offset.
        c0: usize,
        /// The canvas side.
        side: usize,
    },
    /// An output buffer of the wrong length.
    #[error("token buffer has {len} entries, expected {expected}")]
    BadLength {
        /// The length given.
        len: usize,
        /// The length required.
        expected: usize,
    },
}

/// The token of ARC colour `c` (0..=9).
pub fn colour_token(c: u8) -> u8 {
    c + COLOUR_OFFSET
}

/// The colour of an ARC token, or `None` for PAD, EOS and tokens above 11.
pub fn token_colour(t: u8) -> Option<u8> {
    (COLOUR_OFFSET..=MAX_COLOUR_TOKEN)
        .contains(&t)
        .then(|| t - COLOUR_OFFSET)
}

/// Encodes `grid` on a 30x30 canvas with its top-left corner at (r0, c0) (spec 1.2).
///
/// Cells become colour + 2; EOS (1) goes on the row below the grid (cols c0..c0+w) and
/// on the column right of it (rows r0..r0+h) where those lie inside the canvas; the
/// corner (r0+h, c0+w) and everything else stay PAD (0).
///
/// # Shapes
/// Returns 900 tokens, row-major.
pub fn encode_arc(grid: &Grid, r0: usize, c0: usize) -> Result<Vec<u8>, CodecError> {
    let mut out = vec![PAD; ARC_SEQ_LEN];
    encode_arc_into(grid, r0, c0, &mut out)?;
    Ok(out)
}

/// Like [`encode_arc`], but writes into `out` (900 entries, fully overwritten).
pub fn encode_arc_into(
    grid: &Grid,
    r0: usize,
    c0: usize,
    out: &mut [u8],
) -> Result<(), CodecError> {
    encode_arc_canvas_into(grid, r0, c0, ARC_CANVAS, out)
}

/// Encodes `grid` on a `side` x `side` canvas (spec 1.2 with a smaller canvas; 30 is the paper's).
///
/// Small canvases keep CPU runs cheap on tasks whose grids all fit. The rules are those of
/// [`encode_arc`] with 30 replaced by `side`.
///
/// # Shapes
/// Returns `side * side` tokens, row-major.
pub fn encode_arc_canvas(
    grid: &Grid,
    r0: usize,
    c0: usize,
    side: usize,
) -> Result<Vec<u8>, CodecError> {
    let mut out = vec![PAD; side * side];
    encode_arc_canvas_into(grid, r0, c0, side, &mut out)?;
    Ok(out)
}

/// Like [`encode_arc_canvas`], but writes into `out` (`side * side` entries, fully overwritten).
pub fn encode_arc_canvas_into(
    grid: &Grid,
    r0: usize,
    c0: usize,
    side: usize,
    out: &mut [u8],
) -> Result<(), CodecError> {
    let (h, w) = grid.shape();
    if r0 + h > side || c0 + w > side {
        return Err(CodecError::DoesNotFit {
            rows: h,
            cols: w,
            r0,
            c0,
            side,
        });
    }
    if out.len() != side * side {
        return Err(CodecError::BadLength {
            len: out.len(),
            expected: side * side,
        });
    }
    out.fill(PAD);
    for (r, src) in grid.cells().chunks_exact(w).enumerate() {
        let row = &mut out[(r0 + r) * side..(r0 + r + 1) * side];
        for (dst, &c) in row[c0..c0 + w].iter_mut().zip(src) {
            *dst = c + COLOUR_OFFSET;
        }
        if c0 + w < side {
            row[c0 + w] = EOS;
        }
    }
    if r0 + h < side {
        let start = (r0 + h) * side + c0;
        out[start..start + w].fill(EOS);
    }
    Ok(())
}

/// The largest legal translation offsets of an ARC pair: (30 - max h, 30 - max w).
///
/// Offsets are drawn from 0..=max_r and 0..=max_c (spec 1.2).
pub fn arc_pair_max_offset(input: &Grid, output: &Grid) -> (usize, usize) {
    arc_pair_max_offset_canvas(input, output, ARC_CANVAS)
}

/// The largest legal translation offsets of an ARC pair on a `side` canvas (saturating at 0).
pub fn arc_pair_max_offset_canvas(input: &Grid, output: &Grid, side: usize) -> (usize, usize) {
    (
        side.saturating_sub(input.rows().max(output.rows())),
        side.saturating_sub(input.cols().max(output.cols())),
    )
}

/// The crop of spec 8.2 step 2, anchored at (0, 0): the largest top-left rectangle of
/// colour tokens found by the reference's running-width scan, minus 2.
///
/// Returns `None` when the rectangle is empty or `tokens` does not hold 900 tokens.
///
/// # Shapes
/// `tokens`: [900], row-major 30x30.
pub fn crop_arc(tokens: &[u8]) -> Option<Grid> {
    crop_arc_at(tokens, 0, 0)
}

/// The crop of spec 8.2 step 2 run on the sub-canvas whose top-left corner is (r0, c0).
///
/// With (0, 0) this is exactly the reference crop. A grid encoded at (r0, c0) by
/// [`encode_arc`] is recovered by `crop_arc_at(tokens, r0, c0)`. Returns `None` when the
/// rectangle is empty, the offset is outside the canvas, or `tokens` does not hold 900
/// tokens.
///
/// # Shapes
/// `tokens`: [900], row-major 30x30.
pub fn crop_arc_at(tokens: &[u8], r0: usize, c0: usize) -> Option<Grid> {
    crop_arc_canvas_at(tokens, ARC_CANVAS, r0, c0)
}

/// The crop of spec 8.2 step 2 on a `side` x `side` canvas, anchored at (0, 0).
///
/// # Shapes
/// `tokens`: [side * side], row-major.
pub fn crop_arc_canvas(tokens: &[u8], side: usize) -> Option<Grid> {
    crop_arc_canvas_at(tokens, side, 0, 0)
}

/// The crop of spec 8.2 step 2 on a `side` x `side` canvas, run from (r0, c0).
///
/// # Shapes
/// `tokens`: [side * side], row-major.
pub fn crop_arc_canvas_at(tokens: &[u8], side: usize, r0: usize, c0: usize) -> Option<Grid> {
    if side == 0 || tokens.len() != side * side || r0 >= side || c0 >= side {
        return None;
    }
    let is_colour = |t: u8| (COLOUR_OFFSET..=MAX_COLOUR_TOKEN).contains(&t);
    let n_rows = side - r0;
    let mut width = side - c0;
    let (mut best_area, mut best) = (0, (0, 0));
    for num_r in 1..=n_rows {
        let row = &tokens[(r0 + num_r - 1) * side + c0..];
        if let Some(c) = row[..width].iter().position(|&t| !is_colour(t)) {
            width = c;
        }
        let area = num_r * width;
        if area > best_area {
            best_area = area;
            best = (num_r, width);
        }
    }
    if best_area == 0 {
        return None;
    }
    let (h, w) = best;
    let mut cells = Vec::with_capacity(h * w);
    for r in 0..h {
        let start = (r0 + r) * side + c0;
        cells.extend(tokens[start..start + w].iter().map(|&t| t - COLOUR_OFFSET));
    }
    Grid::new(h, w, cells).ok()
}

/// The side of a square canvas holding `seq_len` tokens (e.g. 900 -> 30), if it is a square.
pub fn canvas_side(seq_len: usize) -> Option<usize> {
    let side = (seq_len as f64).sqrt().round() as usize;
    (side * side == seq_len && side > 0).then_some(side)
}

/// The Sudoku token of a cell value: blank (0) -> 1, digit d -> d + 1 (spec 1.5).
pub fn sudoku_token(value: u8) -> u8 {
    value + 1
}

/// The Sudoku cell value of a token (1 -> blank 0, 2..=10 -> digit 1..=9), or `None`.
pub fn sudoku_value(token: u8) -> Option<u8> {
    (1..=10).contains(&token).then(|| token - 1)
}
