//! Maze tests: the reference set's paths are shortest, the path-length convention, the generator,
//! the validator's refusals, and both build modes.

mod common;

use hrm_data::layout::load_split;
use hrm_data::maze::{
    build_maze, generate_maze, path_cells, solve_maze, validate_shortest_path, MazeBuildConfig,
    MazeSource, HARD_MIN_PATH_CELLS, PATH,
};
use rand::SeedableRng;

#[test]
fn reference_paths_are_shortest_and_at_least_110_cells() {
    let dir = common::data_dir().join("maze-30x30-hard-1k");
    let mut lengths = Vec::new();
    for split in ["train", "test"] {
        let d = load_split(&dir, split).unwrap();
        for e in 0..d.num_examples() {
            let n = validate_shortest_path(d.input(e), d.label(e))
                .unwrap_or_else(|m| panic!("{split} maze {e}: {m}"));
            assert_eq!(n, path_cells(d.label(e)));
            lengths.push(n);
        }
    }
    // The README's 108..152 'o' cells are 110..154 cells with S and G.
    assert_eq!(lengths.iter().min(), Some(&HARD_MIN_PATH_CELLS));
    assert_eq!(lengths.iter().max(), Some(&154));
}

#[test]
fn validator_refuses_wrong_paths() {
    let dir = common::data_dir().join("maze-30x30-hard-1k");
    let d = load_split(&dir, "test").unwrap();
    let (input, label) = (d.input(0).to_vec(), d.label(0).to_vec());
    // Remove one path cell: the chain breaks.
    let mut broken = label.clone();
    let k = broken.iter().position(|&t| t == PATH).unwrap();
    broken[k] = 2;
    assert!(validate_shortest_path(&input, &broken).is_err());
    // An extra path cell off the chain.
    let mut extra = label.clone();
    let k = (0..900).find(|&i| input[i] == 2 && label[i] == 2).unwrap();
    extra[k] = PATH;
    assert!(validate_shortest_path(&input, &extra).is_err());
    // A label that changes a wall.
    let mut wall = label.clone();
    let k = input.iter().position(|&t| t == 1).unwrap();
    wall[k] = 2;
    assert!(validate_shortest_path(&input, &wall).is_err());
    // Our BFS path is also a shortest path with the same length.
    let ours = solve_maze(&input).unwrap();
    assert_eq!(
        validate_shortest_path(&input, &ours).unwrap(),
        path_cells(&label)
    );
}

#[test]
fn generated_mazes_are_long_and_valid() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    for _ in 0..3 {
        let (i, l) = generate_maze(&mut rng, HARD_MIN_PATH_CELLS, 0.1);
        let n = validate_shortest_path(&i, &l).unwrap();
        assert!(n >= HARD_MIN_PATH_CELLS);
    }
}

#[test]
fn builds_from_reference_and_generated() {
    let tmp = tempfile::tempdir().unwrap();
    let src = common::data_dir().join("maze-30x30-hard-1k");
    let out = tmp.path().join("copy");
    let cfg = MazeBuildConfig {
        source: MazeSource::Reference(src.clone()),
        dihedral_aug: false,
    };
    let stats = build_maze(&cfg, &out).unwrap();
    assert_eq!((stats.train_mazes, stats.test_mazes), (1000, 1000));
    for split in ["train", "test"] {
        for f in [
            "all__inputs.npy",
            "all__labels.npy",
            "all__puzzle_indices.npy",
        ] {
            assert!(
                std::fs::read(out.join(split).join(f)).unwrap()
                    == std::fs::read(src.join(split).join(f)).unwrap(),
                "{split}/{f} differs from the reference"
            );
        }
    }
    let gen = tmp.path().join("gen");
    let cfg = MazeBuildConfig {
        source: MazeSource::Generate {
            train: 3,
            test: 2,
            min_path_cells: 60,
            extra_openings: 0.1,
            seed: 9,
        },
        dihedral_aug: true,
    };
    let stats = build_maze(&cfg, &gen).unwrap();
    assert_eq!(stats.train_examples, 24);
    let t = load_split(&gen, "train").unwrap();
    assert_eq!((t.num_groups(), t.num_puzzles()), (3, 24));
    for e in 0..t.num_examples() {
        assert!(validate_shortest_path(t.input(e), t.label(e)).unwrap() >= 60);
    }
    assert_eq!(load_split(&gen, "test").unwrap().num_examples(), 2);
}
