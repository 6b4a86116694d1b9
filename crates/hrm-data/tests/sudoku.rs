//! Sudoku tests: the solver on real puzzles (unique, multi-solution, contradictory), the tdoku and CSV
//! readers with their error cases, and a small seeded build.

mod common;

use hrm_augment::sudoku::SudokuShuffle;
use hrm_data::layout::load_split;
use hrm_data::sudoku::{build_sudoku, read_puzzle_file, read_sudoku_csv, solve, SudokuBuildConfig};
use hrm_grid::sudoku::SudokuBoard;
use std::path::Path;

fn source(name: &str) -> std::path::PathBuf {
    common::data_dir().join("sudoku-sources").join(name)
}

#[test]
fn solves_real_puzzles_uniquely() {
    let puzzles = read_puzzle_file(&source("puzzles6_forum_hardest_1106")).unwrap();
    assert_eq!(puzzles.len(), 375);
    for p in puzzles.iter().take(3) {
        let r = solve(p, 2);
        assert_eq!(r.solutions, 1);
        let sol = SudokuBoard::from_cells(r.solution.unwrap()).unwrap();
        assert!(sol.solves(p));
        assert!(r.guesses > 0 && r.nodes > r.guesses / 9);
        // A shuffled copy is solved by the shuffled solution.
        let s = SudokuShuffle::random(
            &mut <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(3),
        );
        let rs = solve(&s.apply_board(p), 2);
        assert_eq!(rs.solutions, 1);
        assert_eq!(rs.solution.unwrap(), *s.apply_board(&sol).cells());
    }
    let p2 = read_puzzle_file(&source("puzzles2_17_clue")).unwrap();
    assert_eq!(p2.len(), 49_158);
    let r = solve(&p2[0], 2);
    assert_eq!(r.solutions, 1);
}

#[test]
fn multi_solution_and_contradictions() {
    let p7 = read_puzzle_file(&source("puzzles7_serg_benchmark")).unwrap();
    assert_eq!(p7.len(), 10_000);
    assert_eq!(solve(&p7[0], 2).solutions, 2);
    // The empty board has many solutions; the count stops at the limit.
    assert_eq!(
        solve(&SudokuBoard::from_cells([0; 81]).unwrap(), 2).solutions,
        2
    );
    // Two 5s in row 0.
    let mut cells = [0u8; 81];
    cells[0] = 5;
    cells[8] = 5;
    assert_eq!(
        solve(&SudokuBoard::from_cells(cells).unwrap(), 2).solutions,
        0
    );
    // No duplicate givens, but cell (0,0) has no candidate left.
    let mut cells = [0u8; 81];
    cells[1..9].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
    cells[27] = 9;
    let r = solve(&SudokuBoard::from_cells(cells).unwrap(), 2);
    assert_eq!(r.solutions, 0);
    assert!(r.solution.is_none());
    // A complete valid grid has one solution and needs no guess.
    let full = SudokuBoard::parse_line(
        "534678912672195348198342567859761423426853791713924856961537284287419635345286179",
    )
    .unwrap();
    let r = solve(&full, 2);
    assert_eq!((r.solutions, r.guesses), (1, 0));
}

#[test]
fn reader_skips_comments_and_names_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.txt");
    let line = ".".repeat(80) + "1";
    std::fs::write(&p, format!("# comment\r\n\r\n{line}\r\n{line}\n")).unwrap();
    assert_eq!(read_puzzle_file(&p).unwrap().len(), 2);
    std::fs::write(&p, format!("# c\n{line}\n{}\n", &line[1..])).unwrap();
    let e = read_puzzle_file(&p).unwrap_err().to_string();
    assert!(e.contains("p.txt:3") && e.contains("80"), "{e}");
    std::fs::write(&p, format!("{}x\n", &line[1..])).unwrap();
    let e = read_puzzle_file(&p).unwrap_err().to_string();
    assert!(e.contains("p.txt:1") && e.contains("'x'"), "{e}");
    let e = read_puzzle_file(&dir.path().join("none"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("none"), "{e}");
}

#[test]
fn csv_reader() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("train.csv");
    let q = "..4678912672195348198342567859761423426853791713924856961537284287419635345286179";
    let a = "534678912672195348198342567859761423426853791713924856961537284287419635345286179";
    std::fs::write(&p, format!("source,q,a,rating\r\nsrc,{q},{a},3\r\n")).unwrap();
    let rows = read_sudoku_csv(&p).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].source.as_str(), rows[0].rating), ("src", 3));
    let wrong = a.replacen('5', "4", 1);
    std::fs::write(&p, format!("source,q,a,rating\nsrc,{q},{wrong},3\n")).unwrap();
    let e = read_sudoku_csv(&p).unwrap_err().to_string();
    assert!(e.contains("train.csv:2"), "{e}");
    std::fs::write(&p, format!("q,a\nsrc,{q},{a},3\n")).unwrap();
    let e = read_sudoku_csv(&p).unwrap_err().to_string();
    assert!(e.contains("train.csv:1") && e.contains("header"), "{e}");
}

fn small_config(src: &Path, seed: u64) -> SudokuBuildConfig {
    SudokuBuildConfig {
        source_dir: src.to_path_buf(),
        hard_files: vec!["hard".into()],
        fallback_file: Some("easy".into()),
        min_guesses: 1,
        subsample: 4,
        num_aug: 3,
        test_size: 5,
        seed,
        threads: 2,
    }
}

#[test]
fn small_build_is_seeded_and_disjoint() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let text = std::fs::read_to_string(source("puzzles6_forum_hardest_1106")).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    let p7 = std::fs::read_to_string(source("puzzles7_serg_benchmark")).unwrap();
    let multi = p7.lines().find(|l| !l.starts_with('#')).unwrap();
    let hard = format!("{}\n{}\n{multi}\n{}\n", lines[..6].join("\n"), lines[0], "");
    std::fs::write(src.join("hard"), hard).unwrap();
    std::fs::write(src.join("easy"), lines[6..12].join("\n")).unwrap();
    let out = dir.path().join("out");
    let stats = build_sudoku(&small_config(&src, 1), &out).unwrap();
    assert_eq!((stats.duplicates, stats.multi_solution), (1, 1));
    assert!(stats.used_fallback);
    assert_eq!(stats.hard_pool, 12);
    let train = load_split(&out, "train").unwrap();
    let test = load_split(&out, "test").unwrap();
    assert_eq!(train.metadata.vocab_size, 11);
    assert_eq!(train.metadata.seq_len, 81);
    assert_eq!(train.metadata.num_puzzle_identifiers, 1);
    assert_eq!(
        (
            train.num_groups(),
            train.num_puzzles(),
            train.num_examples()
        ),
        (4, 16, 16)
    );
    assert_eq!((test.num_groups(), test.num_puzzles()), (5, 5));
    assert!(train.puzzle_identifiers.iter().all(|&i| i == 0));
    // Every example's label solves its input; train and test puzzles are disjoint.
    let board = |t: &[u8]| SudokuBoard::from_tokens(t).unwrap();
    for d in [&train, &test] {
        for e in 0..d.num_examples() {
            assert!(board(d.label(e)).solves(&board(d.input(e))));
        }
    }
    let originals: Vec<Vec<u8>> = (0..4)
        .map(|g| train.input(train.group_puzzles(g).start).to_vec())
        .collect();
    for e in 0..5 {
        assert!(!originals.contains(&test.input(e).to_vec()));
    }
    // Same seed, same bytes; another seed, another draw.
    let again = dir.path().join("again");
    build_sudoku(&small_config(&src, 1), &again).unwrap();
    assert_eq!(
        std::fs::read(out.join("train/all__inputs.npy")).unwrap(),
        std::fs::read(again.join("train/all__inputs.npy")).unwrap()
    );
    let other = dir.path().join("other");
    build_sudoku(&small_config(&src, 2), &other).unwrap();
    assert_ne!(
        std::fs::read(out.join("train/all__inputs.npy")).unwrap(),
        std::fs::read(other.join("train/all__inputs.npy")).unwrap()
    );
    // A pool too small is an error and leaves nothing.
    let mut big = small_config(&src, 1);
    big.subsample = 100;
    let bad = dir.path().join("bad");
    assert!(build_sudoku(&big, &bad).is_err());
    assert!(!bad.exists());
}
