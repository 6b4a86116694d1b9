//! Tests of the ARC canvas codec (spec 1.2), the crop (spec 8.2 step 2), the spec 11
//! example and the golden `arc_encoding.safetensors`.

use hrm_testkit as common;

use hrm_grid::codec::{
    arc_pair_max_offset, crop_arc, crop_arc_at, encode_arc, CodecError, ARC_CANVAS, EOS, PAD,
};
use hrm_grid::Grid;
use proptest::prelude::*;

/// A grid whose cells vary with position and a salt, so crops cannot match by accident.
fn patterned(h: usize, w: usize, salt: usize) -> Grid {
    let cells = (0..h * w)
        .map(|i| ((i * 7 + salt * 3 + i / w) % 10) as u8)
        .collect();
    Grid::new(h, w, cells).unwrap()
}

/// The canvas written cell by cell from the rules of spec 1.2.
fn naive_encode(g: &Grid, r0: usize, c0: usize) -> Vec<u8> {
    let (h, w) = g.shape();
    let mut out = vec![0u8; 900];
    for r in 0..30 {
        for c in 0..30 {
            let inside_rows = (r0..r0 + h).contains(&r);
            let inside_cols = (c0..c0 + w).contains(&c);
            out[r * 30 + c] = if inside_rows && inside_cols {
                g.get(r - r0, c - c0) + 2
            } else if (r == r0 + h && inside_cols) || (c == c0 + w && inside_rows) {
                1
            } else {
                0
            };
        }
    }
    out
}

#[test]
fn spec11_example() {
    let input = Grid::from_rows(&[vec![0, 1, 2], vec![3, 4, 5]]).unwrap();
    let output = Grid::from_rows(&[vec![9]]).unwrap();
    let a = encode_arc(&input, 0, 0).unwrap();
    let b = encode_arc(&output, 0, 0).unwrap();
    let mut want_a = vec![0u8; 900];
    want_a[..4].copy_from_slice(&[2, 3, 4, 1]);
    want_a[30..34].copy_from_slice(&[5, 6, 7, 1]);
    want_a[60..64].copy_from_slice(&[1, 1, 1, 0]);
    let mut want_b = vec![0u8; 900];
    want_b[..2].copy_from_slice(&[11, 1]);
    want_b[30..32].copy_from_slice(&[1, 0]);
    assert_eq!(a, want_a);
    assert_eq!(b, want_b);
    assert_eq!(crop_arc(&a).as_ref(), Some(&input));
    assert_eq!(crop_arc(&b).as_ref(), Some(&output));
}

#[test]
fn eos_counts_of_full_and_nearly_full_grids() {
    let count = |g: &Grid| {
        encode_arc(g, 0, 0)
            .unwrap()
            .iter()
            .filter(|&&t| t == EOS)
            .count()
    };
    assert_eq!(count(&patterned(30, 30, 0)), 0);
    assert_eq!(count(&patterned(30, 29, 0)), 30);
    assert_eq!(count(&patterned(29, 30, 0)), 30);
    assert_eq!(count(&patterned(29, 29, 0)), 58);
    let full = encode_arc(&patterned(30, 30, 0), 0, 0).unwrap();
    assert!(!full.contains(&PAD));
}

#[test]
fn encode_at_origin_then_crop_round_trips_for_every_size() {
    for h in 1..=30 {
        for w in 1..=30 {
            let g = patterned(h, w, h * 31 + w);
            let tokens = encode_arc(&g, 0, 0).unwrap();
            assert_eq!(tokens, naive_encode(&g, 0, 0), "{h}x{w}");
            assert_eq!(crop_arc(&tokens).as_ref(), Some(&g), "{h}x{w}");
        }
    }
}

#[test]
fn translated_encodings_are_recovered_at_every_corner_offset() {
    for h in 1..=30 {
        for w in 1..=30 {
            let g = patterned(h, w, h + w);
            let (mr, mc) = (30 - h, 30 - w);
            for (r0, c0) in [(0, 0), (mr, 0), (0, mc), (mr, mc), (mr / 2, mc / 2)] {
                let tokens = encode_arc(&g, r0, c0).unwrap();
                assert_eq!(tokens, naive_encode(&g, r0, c0), "{h}x{w} at ({r0},{c0})");
                assert_eq!(
                    crop_arc_at(&tokens, r0, c0).as_ref(),
                    Some(&g),
                    "{h}x{w} at ({r0},{c0})"
                );
            }
        }
    }
}

#[test]
fn translated_encodings_are_recovered_at_every_legal_offset() {
    // Every size 1..=30 x 1..=30 and every legal offset: 216,225 encodings.
    let mut tokens = vec![0u8; 900];
    for h in 1..=30 {
        for w in 1..=30 {
            let g = patterned(h, w, 3 * h + w);
            for r0 in 0..=30 - h {
                for c0 in 0..=30 - w {
                    hrm_grid::codec::encode_arc_into(&g, r0, c0, &mut tokens).unwrap();
                    let eos = tokens.iter().filter(|&&t| t == EOS).count();
                    let want = if c0 + w < 30 { h } else { 0 } + if r0 + h < 30 { w } else { 0 };
                    assert_eq!(eos, want, "{h}x{w} at ({r0},{c0})");
                    assert_eq!(
                        crop_arc_at(&tokens, r0, c0).as_ref(),
                        Some(&g),
                        "{h}x{w} at ({r0},{c0})"
                    );
                }
            }
        }
    }
}

fn grid_and_offset() -> impl Strategy<Value = (Grid, usize, usize)> {
    (1usize..=30, 1usize..=30).prop_flat_map(|(h, w)| {
        (
            proptest::collection::vec(0u8..=9, h * w),
            0..=30 - h,
            0..=30 - w,
        )
            .prop_map(move |(c, r0, c0)| (Grid::new(h, w, c).unwrap(), r0, c0))
    })
}

proptest! {
    #[test]
    fn encode_matches_the_spec_rules_and_crops_back((g, r0, c0) in grid_and_offset()) {
        let tokens = encode_arc(&g, r0, c0).unwrap();
        prop_assert_eq!(&tokens, &naive_encode(&g, r0, c0));
        let (h, w) = g.shape();
        let eos = tokens.iter().filter(|&&t| t == EOS).count();
        let want = if c0 + w < 30 { h } else { 0 } + if r0 + h < 30 { w } else { 0 };
        prop_assert_eq!(eos, want);
        prop_assert_eq!(crop_arc_at(&tokens, r0, c0), Some(g.clone()));
        if (r0, c0) == (0, 0) {
            prop_assert_eq!(crop_arc(&tokens), Some(g.clone()));
        }
    }

    #[test]
    fn offsets_beyond_the_limit_are_rejected((g, r0, c0) in grid_and_offset(), extra in 1usize..5) {
        let (h, w) = g.shape();
        let r_bad = 30 - h + extra;
        prop_assert_eq!(
            encode_arc(&g, r_bad, c0),
            Err(CodecError::DoesNotFit { rows: h, cols: w, r0: r_bad, c0, side: 30 })
        );
        prop_assert!(encode_arc(&g, r0, 30 - w + extra).is_err());
    }

    #[test]
    fn max_pair_offset_fits_both_grids((a, _, _) in grid_and_offset(), (b, _, _) in grid_and_offset()) {
        let (mr, mc) = arc_pair_max_offset(&a, &b);
        prop_assert!(encode_arc(&a, mr, mc).is_ok());
        prop_assert!(encode_arc(&b, mr, mc).is_ok());
        prop_assert!(mr + 1 + a.rows().max(b.rows()) > 30);
        prop_assert!(mc + 1 + a.cols().max(b.cols()) > 30);
    }
}

#[test]
fn crop_follows_the_running_width_scan() {
    let mut t = vec![PAD; 900];
    // Row 0 has 10 colours, rows 1..=5 have 3: the tall narrow rectangle (6x3 = 18)
    // beats the wide first row (1x10 = 10).
    t[..10].fill(5);
    t[10] = EOS;
    for r in 1..6 {
        t[r * ARC_CANVAS..r * ARC_CANVAS + 3].fill(7);
    }
    let g = crop_arc(&t).unwrap();
    assert_eq!(g.shape(), (6, 3));
    assert_eq!(g.get(0, 0), 3);
    assert_eq!(g.get(5, 2), 5);
    // A colour below a non-colour cannot widen the crop again.
    let mut t = vec![PAD; 900];
    t[..2].fill(2);
    t[ARC_CANVAS..ARC_CANVAS + 5].fill(2);
    assert_eq!(crop_arc(&t).unwrap().shape(), (2, 2));
    // Empty crops and malformed input give None.
    assert_eq!(crop_arc(&vec![PAD; 900]), None);
    // A non-colour at (0, 0) makes the running width 0 for good: the crop is empty.
    let mut t = vec![5u8; 900];
    t[0] = 12;
    assert_eq!(crop_arc(&t), None);
    // A token above 11 at the end of row 0 narrows every later row to 29 columns.
    let mut t = vec![5u8; 900];
    t[29] = 12;
    assert_eq!(crop_arc(&t).map(|g| g.shape()), Some((30, 29)));
    assert_eq!(crop_arc(&[2u8; 899]), None);
    assert_eq!(crop_arc_at(&[2u8; 900], 30, 0), None);
    assert_eq!(crop_arc(&[2u8; 900]).map(|g| g.shape()), Some((30, 30)));
}

#[test]
fn golden_arc_encoding() {
    let golden = common::read_golden("arc_encoding.safetensors");
    let grid = |name: &str| {
        let t = &golden[name];
        assert_eq!(t.shape.len(), 2, "{name}");
        Grid::new(t.shape[0], t.shape[1], t.to_u8()).unwrap()
    };
    let input = grid("input_grid");
    let output = grid("output_grid");
    assert_eq!(input.to_rows(), vec![vec![0, 1, 2], vec![3, 4, 5]]);
    assert_eq!(output.to_rows(), vec![vec![9]]);
    let input_seq = golden["input_seq"].to_u8();
    let label_seq = golden["label_seq"].to_u8();
    assert_eq!(golden["input_seq"].shape, vec![900]);
    assert_eq!(encode_arc(&input, 0, 0).unwrap(), input_seq);
    assert_eq!(encode_arc(&output, 0, 0).unwrap(), label_seq);
    assert_eq!(crop_arc(&input_seq), Some(input));
    assert_eq!(crop_arc(&label_seq), Some(output));
}

proptest! {
    /// On every smaller canvas, encoding at (0, 0) then cropping returns the grid, and the 30 canvas agrees
    /// with the paper's encoder.
    #[test]
    fn small_canvas_encode_then_crop_round_trips(side in 1usize..=30, h in 1usize..=30, w in 1usize..=30, seed in any::<u64>()) {
        prop_assume!(h <= side && w <= side);
        let cells: Vec<u8> = (0..h * w).map(|i| ((seed >> (i % 60)) as u8 ^ i as u8) % 10).collect();
        let grid = Grid::new(h, w, cells).unwrap();
        let tokens = hrm_grid::codec::encode_arc_canvas(&grid, 0, 0, side).unwrap();
        prop_assert_eq!(tokens.len(), side * side);
        prop_assert_eq!(hrm_grid::codec::crop_arc_canvas(&tokens, side), Some(grid.clone()));
        if side == 30 {
            prop_assert_eq!(tokens, hrm_grid::codec::encode_arc(&grid, 0, 0).unwrap());
        }
    }
}

#[test]
fn small_canvas_rejects_grids_that_do_not_fit() {
    let grid = Grid::new(4, 3, vec![1; 12]).unwrap();
    let err = hrm_grid::codec::encode_arc_canvas(&grid, 0, 0, 3).unwrap_err();
    assert!(err.to_string().contains("3x3 canvas"), "{err}");
    assert_eq!(hrm_grid::codec::canvas_side(900), Some(30));
    assert_eq!(hrm_grid::codec::canvas_side(100), Some(10));
    assert_eq!(hrm_grid::codec::canvas_side(81), Some(9));
    assert_eq!(hrm_grid::codec::canvas_side(90), None);
}
