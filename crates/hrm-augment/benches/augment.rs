//! Criterion benchmarks of the augmentations on 30x30 grids and Sudoku boards, with a
//! plain copy of 900 cells as the baseline so figures can be read as ratios.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use hrm_augment::colour::ColourMap;
use hrm_augment::dihedral;
use hrm_augment::sudoku::SudokuShuffle;
use hrm_augment::variant::ArcVariant;
use hrm_grid::codec;
use hrm_grid::Grid;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn grid30() -> Grid {
    let cells = (0..900).map(|i| ((i * 7 + i / 30) % 10) as u8).collect();
    Grid::new(30, 30, cells).unwrap()
}

fn sudoku_solution() -> [u8; 81] {
    std::array::from_fn(|k| {
        let (r, c) = (k / 9, k % 9);
        ((r * 3 + r / 3 + c) % 9 + 1) as u8
    })
}

fn benches(c: &mut Criterion) {
    let grid = grid30();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let colours = ColourMap::random(&mut rng);

    let mut g = c.benchmark_group("grid30");
    g.bench_function("baseline_copy_900", |b| {
        b.iter(|| black_box(black_box(grid.cells()).to_vec()))
    });
    g.bench_function("baseline_grid_clone", |b| {
        b.iter(|| black_box(black_box(&grid).clone()))
    });
    for id in [0u8, 1, 2, 6, 7] {
        g.bench_function(format!("dihedral_{id}_slice"), |b| {
            b.iter(|| black_box(dihedral::transform(black_box(grid.cells()), 30, 30, id)))
        });
    }
    g.bench_function("dihedral_1_grid", |b| {
        b.iter(|| black_box(dihedral::transform_grid(black_box(&grid), 1)))
    });
    g.bench_function("dihedral_all8_into_reused_buf", |b| {
        let mut out = Vec::with_capacity(900);
        b.iter(|| {
            for id in 0..8 {
                dihedral::transform_into(black_box(grid.cells()), 30, 30, id, &mut out);
                black_box(&out);
            }
        })
    });
    g.bench_function("colour_map_grid", |b| {
        b.iter(|| black_box(colours.apply_grid(black_box(&grid))))
    });
    g.bench_function("colour_map_random_draw", |b| {
        b.iter(|| black_box(ColourMap::random(&mut rng)))
    });
    let variant = ArcVariant {
        dihedral: 7,
        colours,
    };
    g.bench_function("variant_apply_grid", |b| {
        b.iter(|| black_box(variant.apply_grid(black_box(&grid))))
    });
    g.bench_function("arc_encode_30x30", |b| {
        b.iter(|| black_box(codec::encode_arc(black_box(&grid), 0, 0).unwrap()))
    });
    let small = Grid::new(12, 17, vec![3; 12 * 17]).unwrap();
    g.bench_function("arc_encode_12x17_at_5_6", |b| {
        b.iter(|| black_box(codec::encode_arc(black_box(&small), 5, 6).unwrap()))
    });
    let mut buf = vec![0u8; codec::ARC_SEQ_LEN];
    g.bench_function("arc_encode_30x30_into", |b| {
        b.iter(|| {
            codec::encode_arc_into(black_box(&grid), 0, 0, &mut buf).unwrap();
            black_box(&buf);
        })
    });
    let tokens = codec::encode_arc(&grid, 0, 0).unwrap();
    g.bench_function("arc_crop_30x30", |b| {
        b.iter(|| black_box(codec::crop_arc(black_box(&tokens))))
    });
    g.finish();

    let sol = sudoku_solution();
    let shuffle = SudokuShuffle::random(&mut rng);
    let mut g = c.benchmark_group("sudoku");
    g.bench_function("baseline_copy_81", |b| {
        b.iter(|| black_box(*black_box(&sol)))
    });
    g.bench_function("shuffle_draw", |b| {
        b.iter(|| black_box(SudokuShuffle::random(&mut rng)))
    });
    g.bench_function("shuffle_apply", |b| {
        b.iter(|| black_box(shuffle.apply(black_box(&sol))))
    });
    g.bench_function("shuffle_draw_and_apply_pair", |b| {
        b.iter(|| {
            let s = SudokuShuffle::random(&mut rng);
            black_box((s.apply(black_box(&sol)), s.apply(black_box(&sol))))
        })
    });
    g.finish();
}

criterion_group!(augment, benches);
criterion_main!(augment);
