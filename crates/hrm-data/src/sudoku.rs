//! Sudoku: tdoku puzzle-file and reference-CSV readers, an exact bitmask solver that counts solutions and
//! measures search effort, and the `sudoku-extreme-1k`-style builder (spec 1.5).
//! Follows the reference's `dataset/build_sudoku_dataset.py`.

use crate::error::DataError;
use crate::layout::{DatasetWriter, BLANK_IDENTIFIER};
use hrm_augment::sudoku::SudokuShuffle;
use hrm_grid::sudoku::{SudokuBoard, SUDOKU_CELLS};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// The default hardness threshold: a puzzle is "hard" when [`solve`] makes at least this many guesses.
///
/// Measured medians of guesses (unique-solution search, seconds in release on 2 cores): puzzles2 2,
/// puzzles3 48, puzzles5 257, puzzles6 554. A threshold of 50 keeps about half of puzzles3 and nearly all
/// of puzzles5 and puzzles6 (see `datasets/README.md`).
pub const DEFAULT_MIN_GUESSES: u64 = 50;

/// The outcome of solving one puzzle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SolveResult {
    /// Solutions found, capped at the limit given (2 by default: 0, 1 or "2 or more").
    pub solutions: u32,
    /// The first solution found, if any.
    pub solution: Option<[u8; SUDOKU_CELLS]>,
    /// Search nodes visited (calls of the recursive search).
    pub nodes: u64,
    /// Guesses: values tried at cells that had two or more candidates.
    pub guesses: u64,
}

impl SolveResult {
    /// True when the puzzle has exactly one solution.
    pub fn is_unique(&self) -> bool {
        self.solutions == 1
    }
}

/// The 27 units (rows, columns, boxes) and the 20 peers of every cell.
struct Tables {
    units: [[u8; 9]; 27],
    peers: [[u8; 20]; SUDOKU_CELLS],
}

fn tables() -> &'static Tables {
    static TABLES: std::sync::OnceLock<Tables> = std::sync::OnceLock::new();
    TABLES.get_or_init(|| {
        let mut units = [[0u8; 9]; 27];
        for (u, unit) in units.iter_mut().enumerate() {
            let k = u % 9;
            for (j, cell) in unit.iter_mut().enumerate() {
                *cell = match u / 9 {
                    0 => k * 9 + j,
                    1 => j * 9 + k,
                    _ => ((k / 3) * 3 + j / 3) * 9 + (k % 3) * 3 + j % 3,
                } as u8;
            }
        }
        let mut peers = [[0u8; 20]; SUDOKU_CELLS];
        for (i, p) in peers.iter_mut().enumerate() {
            let (r, c) = (i / 9, i % 9);
            let mut n = 0;
            for j in 0..SUDOKU_CELLS {
                let (rj, cj) = (j / 9, j % 9);
                let same_box = r / 3 == rj / 3 && c / 3 == cj / 3;
                if j != i && (r == rj || c == cj || same_box) {
                    p[n] = j as u8;
                    n += 1;
                }
            }
        }
        Tables { units, peers }
    })
}

/// A search state: placed digits and the candidate masks (bits 1..=9) of empty cells.
#[derive(Clone, Copy)]
struct State {
    cells: [u8; SUDOKU_CELLS],
    cand: [u16; SUDOKU_CELLS],
}

const ALL: u16 = 0x3FE;

impl State {
    /// Places `d` at `i` and removes it from the peers; false on a contradiction.
    fn assign(&mut self, t: &Tables, i: usize, d: u8) -> bool {
        let bit = 1u16 << d;
        if self.cand[i] & bit == 0 {
            return false;
        }
        self.cells[i] = d;
        self.cand[i] = 0;
        for &p in &t.peers[i] {
            let p = p as usize;
            if self.cells[p] == 0 {
                self.cand[p] &= !bit;
                if self.cand[p] == 0 {
                    return false;
                }
            } else if self.cells[p] == d {
                return false;
            }
        }
        true
    }

    /// Applies naked and hidden singles until nothing changes; false on a contradiction.
    fn propagate(&mut self, t: &Tables) -> bool {
        loop {
            let mut changed = false;
            for i in 0..SUDOKU_CELLS {
                if self.cells[i] == 0 && self.cand[i].count_ones() == 1 {
                    if !self.assign(t, i, self.cand[i].trailing_zeros() as u8) {
                        return false;
                    }
                    changed = true;
                }
            }
            for unit in &t.units {
                let (mut once, mut twice, mut placed) = (0u16, 0u16, 0u16);
                for &c in unit {
                    let m = self.cand[c as usize];
                    twice |= once & m;
                    once |= m;
                    if self.cells[c as usize] != 0 {
                        placed |= 1 << self.cells[c as usize];
                    }
                }
                if (once | placed) != ALL {
                    return false;
                }
                let mut singles = once & !twice & !placed;
                while singles != 0 {
                    let d = singles.trailing_zeros() as u8;
                    singles &= singles - 1;
                    let Some(&c) = unit
                        .iter()
                        .find(|&&c| self.cand[c as usize] & (1 << d) != 0)
                    else {
                        return false;
                    };
                    if !self.assign(t, c as usize, d) {
                        return false;
                    }
                    changed = true;
                }
            }
            if !changed {
                return true;
            }
        }
    }
}

fn search(t: &Tables, mut st: State, limit: u32, res: &mut SolveResult) {
    res.nodes += 1;
    if !st.propagate(t) {
        return;
    }
    // Branch on the empty cell with the fewest candidates (lowest index on ties).
    let mut best = usize::MAX;
    let mut best_count = u32::MAX;
    for i in 0..SUDOKU_CELLS {
        if st.cells[i] == 0 {
            let n = st.cand[i].count_ones();
            if n < best_count {
                (best, best_count) = (i, n);
                if n == 2 {
                    break;
                }
            }
        }
    }
    if best == usize::MAX {
        res.solutions += 1;
        if res.solution.is_none() {
            res.solution = Some(st.cells);
        }
        return;
    }
    let mut cand = st.cand[best];
    while cand != 0 {
        let d = cand.trailing_zeros() as u8;
        cand &= cand - 1;
        res.guesses += 1;
        let mut next = st;
        if next.assign(t, best, d) {
            search(t, next, limit, res);
        }
        if res.solutions >= limit {
            return;
        }
    }
}

/// Solves `board`, stopping after `limit` solutions (use 2 to test uniqueness).
///
/// Each search node applies naked and hidden singles to a fixed point, then branches on the empty cell
/// with the fewest candidates (lowest index on ties), trying digits in increasing order. `guesses`
/// counts the branch values tried (every branching cell has two or more candidates, since singles
/// are already placed). Givens that conflict give 0 solutions.
pub fn solve(board: &SudokuBoard, limit: u32) -> SolveResult {
    let t = tables();
    let mut res = SolveResult {
        solutions: 0,
        solution: None,
        nodes: 0,
        guesses: 0,
    };
    let mut st = State {
        cells: [0; SUDOKU_CELLS],
        cand: [ALL; SUDOKU_CELLS],
    };
    for (i, &d) in board.cells().iter().enumerate() {
        if d != 0 && !st.assign(t, i, d) {
            return res;
        }
    }
    search(t, st, limit.max(1), &mut res);
    res
}

/// Reads a tdoku-style puzzle file: one 81-character puzzle per line ('.' or '0' blank), `#` comment
/// lines and empty lines skipped, CR LF accepted. A bad line is an error naming the file and line.
pub fn read_puzzle_file(path: &Path) -> Result<Vec<SudokuBoard>, DataError> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    let mut out = Vec::new();
    for (k, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let board = SudokuBoard::parse_line(line).map_err(|e| DataError::Line {
            path: path.to_path_buf(),
            line: k + 1,
            msg: e.to_string(),
        })?;
        out.push(board);
    }
    Ok(out)
}

/// One row of the reference CSV format (`source,q,a,rating`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SudokuRecord {
    /// The source column.
    pub source: String,
    /// The puzzle.
    pub puzzle: SudokuBoard,
    /// The solution.
    pub solution: SudokuBoard,
    /// The rating column (tdoku backtrack count in the reference data).
    pub rating: u64,
}

/// Reads a reference CSV file with header `source,q,a,rating`; checks that every solution is complete,
/// valid and consistent with its puzzle. Errors name the file and line.
pub fn read_sudoku_csv(path: &Path) -> Result<Vec<SudokuRecord>, DataError> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    let mut out = Vec::new();
    let mut lines = text.split('\n').enumerate();
    let bad = |line: usize, msg: String| DataError::Line {
        path: path.to_path_buf(),
        line,
        msg,
    };
    match lines.next() {
        Some((_, h)) if h.trim_end_matches('\r') == "source,q,a,rating" => {}
        Some((_, h)) => {
            return Err(bad(
                1,
                format!("header is {h:?}, expected \"source,q,a,rating\""),
            ))
        }
        None => return Err(bad(1, "empty file".into())),
    }
    for (k, line) in lines {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let n = k + 1;
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != 4 {
            return Err(bad(n, format!("{} fields, expected 4", fields.len())));
        }
        let puzzle = SudokuBoard::parse_line(fields[1]).map_err(|e| bad(n, format!("q: {e}")))?;
        let solution = SudokuBoard::parse_line(fields[2]).map_err(|e| bad(n, format!("a: {e}")))?;
        if !solution.solves(&puzzle) {
            return Err(bad(n, "a is not a valid solution of q".into()));
        }
        let rating = fields[3]
            .trim()
            .parse()
            .map_err(|_| bad(n, format!("rating {:?} is not an integer", fields[3])))?;
        out.push(SudokuRecord {
            source: fields[0].to_string(),
            puzzle,
            solution,
            rating,
        });
    }
    Ok(out)
}

/// Settings of a Sudoku build from tdoku puzzle files.
#[derive(Debug, Clone, PartialEq)]
pub struct SudokuBuildConfig {
    /// The folder holding the tdoku files (`<data>/sudoku-sources`).
    pub source_dir: PathBuf,
    /// Files of the hard pool, in order.
    pub hard_files: Vec<String>,
    /// A file used only when the hard pool is too small for `subsample + test_size`.
    pub fallback_file: Option<String>,
    /// Minimum solver guesses for a puzzle to count as hard.
    pub min_guesses: u64,
    /// Training puzzles (groups).
    pub subsample: usize,
    /// Shuffled copies per training puzzle (a group holds 1 + num_aug puzzles).
    pub num_aug: usize,
    /// Held-out test puzzles (disjoint from training, no augmentation).
    pub test_size: usize,
    /// The seed of all random draws.
    pub seed: u64,
    /// Solver threads (0 = all available cores).
    pub threads: usize,
}

impl SudokuBuildConfig {
    /// The `sudoku-extreme-1k`-style preset on `<data>/sudoku-sources`.
    pub fn extreme_1k(data_dir: &Path) -> Self {
        SudokuBuildConfig {
            source_dir: data_dir.join("sudoku-sources"),
            hard_files: vec![
                "puzzles3_magictour_top1465".into(),
                "puzzles5_forum_hardest_1905_11+".into(),
                "puzzles6_forum_hardest_1106".into(),
            ],
            fallback_file: Some("puzzles2_17_clue".into()),
            min_guesses: DEFAULT_MIN_GUESSES,
            subsample: 1000,
            num_aug: 1000,
            test_size: 1000,
            seed: 42,
            threads: 0,
        }
    }
}

/// What a Sudoku build produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SudokuBuildStats {
    /// Puzzle lines read per file: (file name, puzzles).
    pub read: Vec<(String, usize)>,
    /// Repeated puzzles skipped (same line seen before).
    pub duplicates: usize,
    /// Puzzles with no solution (rejected).
    pub no_solution: usize,
    /// Puzzles with two or more solutions (rejected).
    pub multi_solution: usize,
    /// Unique-solution puzzles below the hardness threshold.
    pub too_easy: usize,
    /// The hard pool size.
    pub hard_pool: usize,
    /// Whether the fallback file was needed.
    pub used_fallback: bool,
    /// Training groups, puzzles and examples.
    pub train_groups: usize,
    /// Training puzzles (= examples).
    pub train_puzzles: usize,
    /// Test puzzles (= groups = examples).
    pub test_puzzles: usize,
}

/// A solved puzzle with its difficulty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RatedPuzzle {
    /// The puzzle.
    pub puzzle: SudokuBoard,
    /// Its unique solution.
    pub solution: SudokuBoard,
    /// Solver guesses.
    pub guesses: u64,
}

/// Solves many puzzles on `threads` threads; results are in input order.
pub fn solve_all(puzzles: &[SudokuBoard], threads: usize) -> Vec<SolveResult> {
    let threads = crate::resolve_threads(threads);
    let chunk = puzzles.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = puzzles
            .chunks(chunk)
            .map(|c| scope.spawn(move || c.iter().map(|p| solve(p, 2)).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("solver thread panicked"))
            .collect()
    })
}

/// Rates puzzles: drops repeats, solves, and sorts into rejected / too easy / hard (in input order).
fn rate_into(
    puzzles: Vec<SudokuBoard>,
    min_guesses: u64,
    threads: usize,
    seen: &mut HashSet<SudokuBoard>,
    stats: &mut SudokuBuildStats,
    pool: &mut Vec<RatedPuzzle>,
) {
    let fresh: Vec<SudokuBoard> = puzzles
        .into_iter()
        .filter(|p| {
            let new = seen.insert(*p);
            if !new {
                stats.duplicates += 1;
            }
            new
        })
        .collect();
    for (p, r) in fresh.iter().zip(solve_all(&fresh, threads)) {
        match r.solutions {
            0 => stats.no_solution += 1,
            1 if r.guesses >= min_guesses => pool.push(RatedPuzzle {
                puzzle: *p,
                solution: SudokuBoard::from_cells(r.solution.expect("one solution"))
                    .expect("solver output is a board"),
                guesses: r.guesses,
            }),
            1 => stats.too_easy += 1,
            _ => stats.multi_solution += 1,
        }
    }
}

/// Reads the puzzle file `name` of the source folder, records its count and rates it into the pool.
fn read_and_rate(
    config: &SudokuBuildConfig,
    name: &str,
    seen: &mut HashSet<SudokuBoard>,
    stats: &mut SudokuBuildStats,
    pool: &mut Vec<RatedPuzzle>,
) -> Result<(), DataError> {
    let puzzles = read_puzzle_file(&config.source_dir.join(name))?;
    stats.read.push((name.to_string(), puzzles.len()));
    rate_into(
        puzzles,
        config.min_guesses,
        config.threads,
        seen,
        stats,
        pool,
    );
    Ok(())
}

/// Builds a `sudoku-extreme-1k`-style dataset from tdoku files (see [`SudokuBuildConfig`]).
///
/// The hard pool (unique solution, at least `min_guesses` guesses) is shuffled with
/// `ChaCha8Rng::seed_from_u64(seed)`; the first `subsample` puzzles are training groups of 1 + num_aug
/// single-example puzzles (the original, then shuffles from the same RNG), the next `test_size` form the
/// test split (one puzzle per group, no augmentation). All identifiers are 0.
pub fn build_sudoku(
    config: &SudokuBuildConfig,
    out_dir: &Path,
) -> Result<SudokuBuildStats, DataError> {
    crate::budget::check_num_aug(config.num_aug)?;
    check_sudoku_size(out_dir, config.subsample, config.num_aug, config.test_size)?;
    let mut stats = SudokuBuildStats::default();
    let mut seen = HashSet::new();
    let mut pool = Vec::new();
    let need = config.subsample + config.test_size;
    for name in &config.hard_files {
        read_and_rate(config, name, &mut seen, &mut stats, &mut pool)?;
    }
    if pool.len() < need {
        if let Some(name) = &config.fallback_file {
            stats.used_fallback = true;
            read_and_rate(config, name, &mut seen, &mut stats, &mut pool)?;
        }
    }
    stats.hard_pool = pool.len();
    if pool.len() < need {
        return Err(DataError::config(
            "subsample",
            format!(
                "the hard pool has {} puzzles, fewer than subsample + test_size = {need}",
                pool.len()
            ),
        ));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    pool.shuffle(&mut rng);
    let pairs: Vec<(SudokuBoard, SudokuBoard)> =
        pool.iter().map(|p| (p.puzzle, p.solution)).collect();
    let (train, rest) = pairs.split_at(config.subsample);
    let test = &rest[..config.test_size];
    write_sudoku(out_dir, train, test, config.num_aug, &mut rng, &mut stats)?;
    Ok(stats)
}

/// Builds a Sudoku dataset from reference CSV files: `subsample` training puzzles drawn with the seeded
/// RNG (0 = all), `num_aug` shuffles each, and the first `test_limit` rows of the test CSV (0 = all).
pub fn build_sudoku_csv(
    train_csv: &Path,
    test_csv: &Path,
    subsample: usize,
    num_aug: usize,
    test_limit: usize,
    seed: u64,
    out_dir: &Path,
) -> Result<SudokuBuildStats, DataError> {
    crate::budget::check_num_aug(num_aug)?;
    let mut train: Vec<(SudokuBoard, SudokuBoard)> = read_sudoku_csv(train_csv)?
        .into_iter()
        .map(|r| (r.puzzle, r.solution))
        .collect();
    let mut test: Vec<(SudokuBoard, SudokuBoard)> = read_sudoku_csv(test_csv)?
        .into_iter()
        .map(|r| (r.puzzle, r.solution))
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    if subsample > 0 {
        if subsample > train.len() {
            return Err(DataError::config(
                "subsample",
                format!("{subsample} exceeds the {} training rows", train.len()),
            ));
        }
        train.shuffle(&mut rng);
        train.truncate(subsample);
    }
    if test_limit > 0 {
        test.truncate(test_limit);
    }
    check_sudoku_size(out_dir, train.len(), num_aug, test.len())?;
    let mut stats = SudokuBuildStats::default();
    write_sudoku(out_dir, &train, &test, num_aug, &mut rng, &mut stats)?;
    Ok(stats)
}

/// Refuses a Sudoku build of `train` puzzles with `num_aug` shuffles each and `test` puzzles that does not
/// fit the free disk space of `out_dir`.
fn check_sudoku_size(
    out_dir: &Path,
    train: usize,
    num_aug: usize,
    test: usize,
) -> Result<(), DataError> {
    let rows = (train as u128)
        .saturating_mul(1 + num_aug as u128)
        .saturating_add(test as u128);
    crate::budget::check_disk_space(
        out_dir,
        &crate::budget::BuildPlan {
            rows,
            seq_len: SUDOKU_CELLS,
        },
    )
}

fn write_sudoku(
    out_dir: &Path,
    train: &[(SudokuBoard, SudokuBoard)],
    test: &[(SudokuBoard, SudokuBoard)],
    num_aug: usize,
    rng: &mut ChaCha8Rng,
    stats: &mut SudokuBuildStats,
) -> Result<(), DataError> {
    let mut w = DatasetWriter::create(out_dir, SUDOKU_CELLS)?;
    let (tw, sw) = w.splits();
    for (q, a) in train {
        tw.push_example(&q.to_tokens(), &a.to_tokens())?;
        tw.end_puzzle(0);
        for _ in 0..num_aug {
            let s = SudokuShuffle::random(rng);
            tw.push_example(&s.apply_board(q).to_tokens(), &s.apply_board(a).to_tokens())?;
            tw.end_puzzle(0);
        }
        tw.end_group();
    }
    for (q, a) in test {
        sw.push_example(&q.to_tokens(), &a.to_tokens())?;
        sw.end_puzzle(0);
        sw.end_group();
    }
    stats.train_groups = train.len();
    stats.train_puzzles = train.len() * (1 + num_aug);
    stats.test_puzzles = test.len();
    w.commit(
        &[BLANK_IDENTIFIER.to_string()],
        hrm_grid::Task::Sudoku.vocab_size() as u32,
    )?;
    Ok(())
}
