//! Property tests of the augmentation laws: inverses, composition and the group table,
//! colour bijections, commutation, shapes, variant names and Sudoku shuffles.

use hrm_augment::colour::ColourMap;
use hrm_augment::dihedral::{self, compose, inverse, output_shape, transform, transform_grid};
use hrm_augment::maze::{inverse_transform_maze, transform_maze};
use hrm_augment::sudoku::SudokuShuffle;
use hrm_augment::translate::{random_offset, random_pair_offset};
use hrm_augment::variant::ArcVariant;
use hrm_grid::maze::{Maze, MazeCell};
use hrm_grid::sudoku::SudokuBoard;
use hrm_grid::{codec, Grid};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn grid_strategy() -> impl Strategy<Value = Grid> {
    (1usize..=30, 1usize..=30).prop_flat_map(|(h, w)| {
        proptest::collection::vec(0u8..=9, h * w).prop_map(move |c| Grid::new(h, w, c).unwrap())
    })
}

/// A grid of distinct values (0..h*w) for checking index maps, as a flat vector.
fn distinct(h: usize, w: usize) -> Vec<u32> {
    (0..(h * w) as u32).collect()
}

fn rng_from(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

proptest! {
    #[test]
    fn inverse_after_transform_is_identity(g in grid_strategy(), id in 0u8..8) {
        let t = transform_grid(&g, id);
        prop_assert_eq!(&dihedral::inverse_transform_grid(&t, id), &g);
        prop_assert_eq!(&transform_grid(&t, inverse(id)), &g);
    }

    #[test]
    fn compose_agrees_with_applying_in_turn(h in 1usize..=7, w in 1usize..=7, a in 0u8..8, b in 0u8..8) {
        let data = distinct(h, w);
        let (h1, w1) = output_shape(a, h, w);
        let in_turn = transform(&transform(&data, h, w, a), h1, w1, b);
        prop_assert_eq!(in_turn, transform(&data, h, w, compose(a, b)));
    }

    #[test]
    fn shapes_swap_exactly_for_1_3_6_7(g in grid_strategy(), id in 0u8..8) {
        let t = transform_grid(&g, id);
        let swapped = [1, 3, 6, 7].contains(&id);
        let want = if swapped { (g.cols(), g.rows()) } else { (g.rows(), g.cols()) };
        prop_assert_eq!(t.shape(), want);
        prop_assert_eq!(output_shape(id, g.rows(), g.cols()), want);
        prop_assert_eq!(dihedral::swaps_axes(id), swapped);
    }

    #[test]
    fn transforms_permute_cells(h in 1usize..=30, w in 1usize..=30, id in 0u8..8) {
        let mut out = transform(&distinct(h, w), h, w, id);
        out.sort_unstable();
        prop_assert_eq!(out, distinct(h, w));
    }

    #[test]
    fn colour_maps_are_bijections_fixing_zero(seed in any::<u64>()) {
        let m = ColourMap::random(&mut rng_from(seed));
        let arr = *m.as_array();
        prop_assert_eq!(arr[0], 0);
        let mut sorted = arr;
        sorted.sort_unstable();
        prop_assert_eq!(sorted, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        let inv = m.inverse();
        for c in 0..10u8 {
            prop_assert_eq!(inv.apply_colour(m.apply_colour(c)), c);
            prop_assert_eq!(m.apply_colour(inv.apply_colour(c)), c);
        }
        prop_assert_eq!(m.then(&inv), ColourMap::identity());
        prop_assert_eq!(ColourMap::from_digits(&m.to_digits()).unwrap(), m);
        prop_assert_eq!(ColourMap::from_array(arr).unwrap(), m);
    }

    #[test]
    fn colour_inverse_on_grids_and_tokens(g in grid_strategy(), seed in any::<u64>()) {
        let m = ColourMap::random(&mut rng_from(seed));
        let mapped = m.apply_grid(&g);
        prop_assert_eq!(&m.inverse().apply_grid(&mapped), &g);
        // Background stays background; mapping tokens equals encoding the mapped grid.
        for (a, b) in g.cells().iter().zip(mapped.cells()) {
            prop_assert_eq!(*a == 0, *b == 0);
        }
        let tokens = codec::encode_arc(&g, 0, 0).unwrap();
        let mapped_tokens: Vec<u8> = tokens.iter().map(|&t| m.apply_token(t)).collect();
        prop_assert_eq!(mapped_tokens, codec::encode_arc(&mapped, 0, 0).unwrap());
    }

    #[test]
    fn dihedral_and_colour_maps_commute(g in grid_strategy(), id in 0u8..8, seed in any::<u64>()) {
        let m = ColourMap::random(&mut rng_from(seed));
        prop_assert_eq!(
            transform_grid(&m.apply_grid(&g), id),
            m.apply_grid(&transform_grid(&g, id))
        );
    }

    #[test]
    fn variants_undo_and_names_round_trip(g in grid_strategy(), seed in any::<u64>(), orig in "[0-9a-f]{8}|[A-Z][a-zA-Z]{2,12}[0-9]") {
        let v = ArcVariant::random(&mut rng_from(seed));
        prop_assert!(v.dihedral < 8);
        prop_assert_eq!(&v.undo_grid(&v.apply_grid(&g)), &g);
        let want = transform_grid(&v.colours.apply_grid(&g), v.dihedral);
        prop_assert_eq!(v.apply_grid(&g), want);
        let name = v.name(&orig);
        prop_assert_eq!(&name, &format!("{orig}_t{}_{}", v.dihedral, v.colours.to_digits()));
        prop_assert_eq!(ArcVariant::parse_name(&name), Some((orig.clone(), Some(v))));
        prop_assert_eq!(ArcVariant::parse_name(&orig), Some((orig.clone(), None)));
    }

    #[test]
    fn offsets_stay_in_range(seed in any::<u64>(), max_r in 0usize..=29, max_c in 0usize..=29) {
        let mut rng = rng_from(seed);
        for _ in 0..20 {
            let (r, c) = random_offset(&mut rng, max_r, max_c);
            prop_assert!(r <= max_r && c <= max_c);
        }
    }

    #[test]
    fn pair_offsets_fit_both_grids(a in grid_strategy(), b in grid_strategy(), seed in any::<u64>()) {
        let (r0, c0) = random_pair_offset(&mut rng_from(seed), &a, &b);
        prop_assert!(codec::encode_arc(&a, r0, c0).is_ok());
        prop_assert!(codec::encode_arc(&b, r0, c0).is_ok());
    }

    #[test]
    fn sudoku_shuffle_inverse_is_identity(seed in any::<u64>(), cells in proptest::collection::vec(0u8..=9, 81)) {
        let s = SudokuShuffle::random(&mut rng_from(seed));
        prop_assert!(s.validate().is_ok());
        let x: [u8; 81] = cells.try_into().unwrap();
        prop_assert_eq!(s.undo(&s.apply(&x)), x);
        prop_assert_eq!(s.apply(&s.undo(&x)), x);
        prop_assert!(s.inverse().validate().is_ok());
        prop_assert_eq!(s.inverse().inverse(), s);
    }

    #[test]
    fn sudoku_shuffle_keeps_solutions_valid_and_consistent(seed in any::<u64>(), mask in proptest::collection::vec(any::<bool>(), 81)) {
        let mut rng = rng_from(seed);
        // Start from a random member of the orbit of a known solved grid.
        let sol = SudokuShuffle::random(&mut rng).apply_board(&solved());
        prop_assert!(sol.is_complete_valid());
        let mut puzzle_cells = *sol.cells();
        for (c, &blank) in puzzle_cells.iter_mut().zip(&mask) {
            if blank {
                *c = 0;
            }
        }
        let puzzle = SudokuBoard::from_cells(puzzle_cells).unwrap();
        let s = SudokuShuffle::random(&mut rng);
        let (new_puzzle, new_sol) = (s.apply_board(&puzzle), s.apply_board(&sol));
        prop_assert!(new_sol.is_complete_valid());
        prop_assert!(new_sol.is_consistent_with(&new_puzzle));
        prop_assert!(new_sol.solves(&new_puzzle));
        prop_assert_eq!(new_puzzle.num_filled(), puzzle.num_filled());
        prop_assert_eq!(s.undo_board(&new_puzzle), puzzle);
    }

    #[test]
    fn maze_dihedral_round_trips(tokens in proptest::collection::vec(1u8..=5, 900), id in 0u8..8) {
        let m = Maze::from_tokens(30, 30, &tokens).unwrap();
        let t = transform_maze(&m, id);
        prop_assert_eq!(&inverse_transform_maze(&t, id), &m);
        prop_assert_eq!(t.to_tokens(), transform(&tokens, 30, 30, id));
    }
}

/// A valid solved grid: the classic shifted pattern.
fn solved() -> SudokuBoard {
    let cells = std::array::from_fn(|k| {
        let (r, c) = (k / 9, k % 9);
        ((r * 3 + r / 3 + c) % 9 + 1) as u8
    });
    SudokuBoard::from_cells(cells).unwrap()
}

#[test]
fn the_eight_maps_form_a_group() {
    // Identity, closure (every row and column of the Cayley table is a permutation of
    // the 8 ids), inverses and associativity.
    for a in 0..8u8 {
        assert_eq!(compose(0, a), a);
        assert_eq!(compose(a, 0), a);
        assert_eq!(compose(a, inverse(a)), 0);
        assert_eq!(compose(inverse(a), a), 0);
        assert_eq!(inverse(a), dihedral::INVERSE[usize::from(a)]);
        let mut row: Vec<u8> = (0..8).map(|b| compose(a, b)).collect();
        let mut col: Vec<u8> = (0..8).map(|b| compose(b, a)).collect();
        row.sort_unstable();
        col.sort_unstable();
        assert_eq!(row, (0..8).collect::<Vec<u8>>());
        assert_eq!(col, (0..8).collect::<Vec<u8>>());
        for b in 0..8u8 {
            for c in 0..8u8 {
                assert_eq!(compose(compose(a, b), c), compose(a, compose(b, c)));
            }
        }
    }
    // D4 is not abelian: rot90 and flip_lr do not commute.
    assert_ne!(compose(1, 4), compose(4, 1));
    // The 8 maps are distinct on an asymmetric array.
    let data = distinct(2, 3);
    let outs: Vec<Vec<u32>> = (0..8).map(|id| transform(&data, 2, 3, id)).collect();
    for a in 0..8 {
        for b in a + 1..8 {
            assert_ne!(
                (output_shape(a as u8, 2, 3), &outs[a]),
                (output_shape(b as u8, 2, 3), &outs[b])
            );
        }
    }
}

#[test]
fn spec2_table_on_1_to_6() {
    let g = Grid::from_rows(&[vec![1, 2, 3], vec![4, 5, 6]]).unwrap();
    let want: [&[&[u8]]; 8] = [
        &[&[1, 2, 3], &[4, 5, 6]],
        &[&[3, 6], &[2, 5], &[1, 4]],
        &[&[6, 5, 4], &[3, 2, 1]],
        &[&[4, 1], &[5, 2], &[6, 3]],
        &[&[3, 2, 1], &[6, 5, 4]],
        &[&[4, 5, 6], &[1, 2, 3]],
        &[&[1, 4], &[2, 5], &[3, 6]],
        &[&[6, 3], &[5, 2], &[4, 1]],
    ];
    for (id, rows) in want.iter().enumerate() {
        let rows: Vec<Vec<u8>> = rows.iter().map(|r| r.to_vec()).collect();
        assert_eq!(transform_grid(&g, id as u8).to_rows(), rows, "map {id}");
    }
}

#[test]
fn colour_digit_strings() {
    let m = ColourMap::from_digits("0825139674").unwrap();
    assert_eq!(m.apply_colour(1), 8);
    assert_eq!(m.apply_colour(9), 4);
    assert_eq!(m.to_digits(), "0825139674");
    // The inverse is the argsort of the digit string.
    let inv = m.inverse();
    for c in 0..10u8 {
        let pos = "0825139674".find(char::from(b'0' + c)).unwrap() as u8;
        assert_eq!(inv.apply_colour(c), pos);
    }
    for bad in [
        "1825039674",
        "0825139677",
        "082513967",
        "08251396745",
        "08251x9674",
    ] {
        assert!(ColourMap::from_digits(bad).is_err(), "{bad}");
    }
    assert!(ColourMap::from_array([0, 1, 2, 3, 4, 5, 6, 7, 8, 10]).is_err());
    assert_eq!(m.apply_colour(12), 12);
    assert_eq!(m.apply_token(codec::PAD), codec::PAD);
    assert_eq!(m.apply_token(codec::EOS), codec::EOS);
    assert_eq!(m.apply_token(3), 10);
}

#[test]
fn variant_name_parsing_edge_cases() {
    assert_eq!(
        ArcVariant::parse_name("00576224"),
        Some(("00576224".to_string(), None))
    );
    let (orig, v) = ArcVariant::parse_name("abc123_t3_0825139674").unwrap();
    assert_eq!(orig, "abc123");
    let v = v.unwrap();
    assert_eq!(v.dihedral, 3);
    assert_eq!(v.colours.to_digits(), "0825139674");
    // A name with underscores of its own keeps them in the original part.
    let (orig, v) = ArcVariant::parse_name("my_task_t0_0123456789").unwrap();
    assert_eq!(orig, "my_task");
    assert!(v.unwrap().is_identity());
    assert_eq!(
        ArcVariant::parse_name("foo_bar"),
        Some(("foo_bar".to_string(), None))
    );
    // Variant-shaped names with a bad id or map are rejected.
    assert_eq!(ArcVariant::parse_name("abc_t8_0123456789"), None);
    assert_eq!(ArcVariant::parse_name("abc_t3_1023456789"), None);
    assert_eq!(ArcVariant::parse_name("abc_t3_0113456789"), None);
}

#[test]
fn trm_variant_names_parse() {
    // TRM's builder: `<task>|||t<k>|||<mapping digits>`.
    let (orig, v) = ArcVariant::parse_name("06df4c85|||t2|||0129645837").unwrap();
    assert_eq!(orig, "06df4c85");
    let v = v.unwrap();
    assert_eq!(v.dihedral, 2);
    assert_eq!(v.colours.to_digits(), "0129645837");
    let (orig, v) = ArcVariant::parse_name("a_t1_0123456789|||t7|||0987654321").unwrap();
    assert_eq!((orig.as_str(), v.unwrap().dihedral), ("a_t1_0123456789", 7));
    assert_eq!(ArcVariant::parse_name("abc|||t8|||0123456789"), None);
    assert_eq!(ArcVariant::parse_name("abc|||t3|||1023456789"), None);
    assert_eq!(
        ArcVariant::parse_name("abc|||x|||y"),
        Some(("abc|||x|||y".to_string(), None))
    );
}

#[test]
fn random_draws_cover_their_ranges() {
    let mut rng = rng_from(7);
    let mut seen_t = [false; 8];
    let mut seen_c1 = [false; 10];
    let mut corners = [false; 4];
    let mut transposed = [false; 2];
    for _ in 0..2000 {
        let v = ArcVariant::random(&mut rng);
        seen_t[usize::from(v.dihedral)] = true;
        seen_c1[usize::from(v.colours.apply_colour(1))] = true;
        let (r, c) = random_offset(&mut rng, 3, 5);
        match (r, c) {
            (0, 0) => corners[0] = true,
            (3, 0) => corners[1] = true,
            (0, 5) => corners[2] = true,
            (3, 5) => corners[3] = true,
            _ => {}
        }
        transposed[usize::from(SudokuShuffle::random(&mut rng).transpose)] = true;
    }
    assert_eq!(seen_t, [true; 8]);
    assert_eq!(&seen_c1[1..], &[true; 9]);
    assert!(!seen_c1[0]);
    assert_eq!(corners, [true; 4]);
    assert_eq!(transposed, [true; 2]);
    // Same seed, same draws.
    let a: Vec<ArcVariant> = (0..5)
        .map(|_| ArcVariant::random(&mut rng_from(3)))
        .collect();
    assert!(a.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn sudoku_shuffle_parts_follow_spec_1_5() {
    let sol = *solved().cells();
    let id = SudokuShuffle::identity();
    assert_eq!(id.apply(&sol), sol);
    // Transpose only.
    let t = SudokuShuffle {
        transpose: true,
        ..id
    };
    let out = t.apply(&sol);
    for k in 0..81 {
        assert_eq!(out[k], sol[(k % 9) * 9 + k / 9]);
    }
    // New row i is old row row_perm[i]; new column j is old column col_perm[j].
    let rows = SudokuShuffle {
        row_perm: [3, 5, 4, 0, 1, 2, 8, 6, 7],
        ..id
    };
    let out = rows.apply(&sol);
    assert_eq!(&out[..9], &sol[27..36]);
    assert_eq!(&out[9..18], &sol[45..54]);
    let cols = SudokuShuffle {
        col_perm: [2, 0, 1, 3, 4, 5, 6, 7, 8],
        ..id
    };
    let out = cols.apply(&sol);
    assert_eq!(out[0], sol[2]);
    assert_eq!(out[9 + 1], sol[9]);
    // Digits: 0 stays blank, the rest follow the map.
    let mut digit_map = [0u8, 2, 3, 4, 5, 6, 7, 8, 9, 1];
    let digits = SudokuShuffle { digit_map, ..id };
    let mut x = sol;
    x[0] = 0;
    let out = digits.apply(&x);
    assert_eq!(out[0], 0);
    assert!((1..81).all(|k| out[k] == digit_map[usize::from(x[k])]));
    // Invalid shuffles are reported.
    digit_map[0] = 1;
    assert!(SudokuShuffle { digit_map, ..id }.validate().is_err());
    let rows_cross_bands = SudokuShuffle {
        row_perm: [0, 1, 3, 2, 4, 5, 6, 7, 8],
        ..id
    };
    assert!(rows_cross_bands.validate().is_err());
    let not_perm = SudokuShuffle {
        col_perm: [0; 9],
        ..id
    };
    assert!(not_perm.validate().is_err());
    assert!(id.validate().is_ok());
}

#[test]
fn maze_transform_moves_start_and_goal() {
    let mut tokens = vec![MazeCell::Open.token(); 900];
    tokens[0] = MazeCell::Start.token();
    tokens[29] = MazeCell::Goal.token();
    let m = Maze::from_tokens(30, 30, &tokens).unwrap();
    // rot90 counter-clockwise moves the top-right corner to the top-left.
    let r = transform_maze(&m, 1);
    assert_eq!(r.goal(), Some((0, 0)));
    assert_eq!(r.start(), Some((29, 0)));
}
