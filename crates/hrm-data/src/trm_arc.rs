//! TRM's ARC layout: the exact bytes of TRM's `dataset/build_arc_dataset.py` (with `dataset/common.py`) from
//! the same ARC Prize (Kaggle) `<prefix>_<subset>_challenges.json` files: the same numpy legacy random stream
//! (`np.random.seed`), draw for draw, the same de-duplication, identifier numbering, `.npy` headers and
//! `json.dump` bytes (`identifiers.json`, `test_puzzles.json`, `{train,test}/dataset.json`).
//!
//! The order of draws: per subset, the shuffle of its task list; per augmentation trial of a task, the
//! dihedral id then the colour permutation; then per split (in the order the splits were first filled), per
//! puzzle, the example left untranslated and, in the train split only, the offsets of every other example
//! (row, then column).

use crate::budget::{check_disk_space, check_num_aug, BuildPlan};
use crate::error::DataError;
use crate::layout::{StagedDir, BLANK_IDENTIFIER};
use crate::npy::{write_npy, NpyWriter};
use crate::numpy_rng::LegacyRandomState;
use crate::pyjson::{dumps, float_repr, push_str_literal, PyValue};
use crate::sources::{is_challenges_file, solutions_beside};
use hrm_augment::colour::ColourMap;
use hrm_augment::variant::ArcVariant;
/// The canvas side, the only one TRM's builder writes (its `ARCMaxGridSize`).
pub use hrm_grid::codec::ARC_CANVAS;
use hrm_grid::codec::{encode_arc_into, ARC_SEQ_LEN, ARC_VOCAB};
use hrm_grid::Grid;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// TRM's `ARCAugmentRetriesFactor`: augmentation trials per wanted variant.
pub const TRM_AUG_RETRIES_FACTOR: usize = 5;
/// TRM's `PuzzleIdSeparator` in variant names `<task>|||t<k>|||<10 digits>`.
pub const TRM_ID_SEPARATOR: &str = "|||";

/// One subset of a TRM build: a `*_challenges.json` file and whether it is the test set
/// (`--test-set-name`: its test pairs go to the test split).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrmSubset {
    /// The challenges file; `<same prefix>_solutions.json` beside it gives the test outputs when present.
    pub challenges: PathBuf,
    /// True for the test set.
    pub test: bool,
}

/// Settings of a TRM-layout build (`build_arc_dataset.py --subsets ... --test-set-name ... --num-aug --seed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrmArcConfig {
    /// The subsets in `--subsets` order.
    pub subsets: Vec<TrmSubset>,
    /// Wanted augmented variants per task.
    pub num_aug: usize,
    /// `np.random.seed(seed)`.
    pub seed: u32,
}

/// What a TRM-layout build wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrmArcStats {
    /// Tasks read, over all subsets.
    pub tasks: usize,
    /// `num_puzzle_identifiers` (including `<blank>`).
    pub identifiers: usize,
    /// Puzzles, groups and examples of the train split.
    pub train: (usize, usize, usize),
    /// Puzzles, groups and examples of the test split.
    pub test: (usize, usize, usize),
    /// Tasks whose group got fewer than `num_aug` augmentations.
    pub not_full: usize,
}

impl std::fmt::Display for TrmArcStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (tp, tg, te) = self.train;
        let (sp, sg, se) = self.test;
        write!(
            f,
            "TRM layout: {} tasks | {} puzzle identifiers (including <blank>) | train {tp} puzzles in {tg} groups, \
             {te} examples | test {sp} puzzles in {sg} groups, {se} examples | {} tasks with fewer augmentations \
             than asked",
            self.tasks, self.identifiers, self.not_full
        )
    }
}

/// The two splits, in the order TRM creates them for a puzzle with both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Split {
    Train,
    Test,
}

impl Split {
    fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

/// The (input, output) examples of a puzzle.
type Pairs = Vec<(Grid, Grid)>;
/// A task's examples per destination split.
type Dests = Vec<(Split, Pairs)>;

/// A task converted as `convert_single_arc_puzzle` does: its examples per destination split, and its group
/// (the original first, then each new augmentation), shared by both destinations.
struct Converted {
    dests: Dests,
    members: Vec<(String, ArcVariant)>,
}

/// Where a file's error is: the file and the task.
struct At<'a> {
    path: &'a Path,
    task: &'a str,
}

impl At<'_> {
    fn err(&self, msg: impl std::fmt::Display) -> DataError {
        DataError::Task {
            path: self.path.to_path_buf(),
            msg: format!("task {}: {msg}", self.task),
        }
    }
}

fn read_value(path: &Path) -> Result<PyValue, DataError> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| DataError::Json {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })
}

fn dict_entries(
    value: PyValue,
    path: &Path,
    what: &str,
) -> Result<Vec<(String, PyValue)>, DataError> {
    match value {
        PyValue::Dict(entries) => Ok(entries),
        other => Err(DataError::Json {
            path: path.to_path_buf(),
            msg: format!("is {}, expected an object of {what}", other.kind()),
        }),
    }
}

/// The test pairs of a task (`puzzle["test"]`), each an object.
fn test_pairs<'a>(task: &'a mut PyValue, at: &At) -> Result<&'a mut Vec<PyValue>, DataError> {
    let PyValue::Dict(entries) = task else {
        return Err(at.err(format!(
            "is {}, expected an object with \"train\" and \"test\"",
            task.kind()
        )));
    };
    match entries.iter_mut().find(|(k, _)| k == "test") {
        Some((_, PyValue::List(pairs))) => Ok(pairs),
        Some((_, other)) => Err(at.err(format!(
            "section \"test\" is {}, expected a list",
            other.kind()
        ))),
        None => Err(at.err("has no \"test\" section")),
    }
}

/// Reads a subset as TRM's `load_puzzles_arcagi` does: the challenges in file order, with the solutions file's
/// outputs put into the test pairs (`"output"` set after `"input"`), or `[[0]]` dummy outputs where the test pairs
/// have none when there is no solutions file.
fn read_subset(subset: &TrmSubset) -> Result<Vec<(String, PyValue)>, DataError> {
    let path = &subset.challenges;
    if !is_challenges_file(path) {
        return Err(DataError::config(
            "source",
            format!(
                "{} is not an ARC Prize challenges file (a JSON object of task id -> task, as \
                 `<prefix>_<subset>_challenges.json`); --layout trm reads only those",
                path.display()
            ),
        ));
    }
    let mut tasks = dict_entries(read_value(path)?, path, "task id -> task")?;
    match solutions_beside(path) {
        Some(sols_path) => {
            let sols = dict_entries(
                read_value(&sols_path)?,
                &sols_path,
                "task id -> output grids",
            )?;
            let sols: HashMap<String, PyValue> = sols.into_iter().collect();
            for (id, task) in &mut tasks {
                let at_sols = At {
                    path: &sols_path,
                    task: id,
                };
                let outputs = match sols.get(id.as_str()) {
                    Some(PyValue::List(outputs)) => outputs,
                    Some(other) => {
                        return Err(at_sols.err(format!(
                            "is {}, expected a list of output grids",
                            other.kind()
                        )))
                    }
                    None => {
                        return Err(at_sols.err(format!(
                            "missing from the solutions file (it is in {})",
                            path.display()
                        )))
                    }
                };
                let pairs = test_pairs(task, &At { path, task: id })?;
                if outputs.len() > pairs.len() {
                    return Err(at_sols.err(format!(
                        "has {} output grids for {} test inputs in {}",
                        outputs.len(),
                        pairs.len(),
                        path.display()
                    )));
                }
                for (idx, (pair, output)) in pairs.iter_mut().zip(outputs).enumerate() {
                    if !pair.set("output", output.clone()) {
                        return Err(At { path, task: id }.err(format!(
                            "test pair {idx} is {}, expected an object",
                            pair.kind()
                        )));
                    }
                }
            }
        }
        None => {
            for (id, task) in &mut tasks {
                let at = At { path, task: id };
                for (idx, pair) in test_pairs(task, &at)?.iter_mut().enumerate() {
                    if pair.get("output").is_none()
                        && !pair.set(
                            "output",
                            PyValue::List(vec![PyValue::List(vec![PyValue::Int(0)])]),
                        )
                    {
                        return Err(at.err(format!(
                            "test pair {idx} is {}, expected an object",
                            pair.kind()
                        )));
                    }
                }
            }
        }
    }
    Ok(tasks)
}

/// `arc_grid_to_np`: a list of equal-length rows of colours 0..=9, at most 30 x 30.
fn grid_of(
    value: Option<&PyValue>,
    at: &At,
    section: &str,
    idx: usize,
    field: &str,
) -> Result<Grid, DataError> {
    let bad = |msg: String| {
        at.err(format!(
            "section \"{section}\", pair {idx}, field \"{field}\": {msg}"
        ))
    };
    let Some(PyValue::List(rows)) = value else {
        return Err(bad(match value {
            None => "missing".into(),
            Some(v) => format!("is {}, expected a list of rows", v.kind()),
        }));
    };
    let mut cells = Vec::new();
    let mut width = None;
    for (r, row) in rows.iter().enumerate() {
        let PyValue::List(row) = row else {
            return Err(bad(format!(
                "row {r} is {}, expected a list of colours",
                row.kind()
            )));
        };
        if *width.get_or_insert(row.len()) != row.len() {
            return Err(bad(format!(
                "row {r} has {} cells, row 0 has {}",
                row.len(),
                width.unwrap_or(0)
            )));
        }
        for (c, cell) in row.iter().enumerate() {
            let colour = match cell {
                PyValue::Int(v) if (0..=9).contains(v) => *v as u8,
                PyValue::Float(v) if v.fract() == 0.0 && (0.0..=9.0).contains(v) => *v as u8,
                other => {
                    return Err(bad(format!(
                        "cell ({r}, {c}) is {}, expected a colour 0..=9",
                        dumps(other)
                    )))
                }
            };
            cells.push(colour);
        }
    }
    let cols = width.unwrap_or(0);
    Grid::new(rows.len(), cols, cells).map_err(|e| bad(e.to_string()))
}

/// `grid_hash`: SHA-256 of the two shape bytes and the cells, in hex.
fn grid_hash_hex(grid: &Grid) -> String {
    let mut h = Sha256::new();
    h.update([grid.rows() as u8, grid.cols() as u8]);
    h.update(grid.cells());
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// `puzzle_hash` of a task under `variant`: SHA-256 of the sorted `<input hash>|<output hash>` strings of every
/// example of every destination, joined by `|`.
fn puzzle_hash(dests: &[(Split, Pairs)], variant: &ArcVariant) -> [u8; 32] {
    let mut hashes: Vec<String> = dests
        .iter()
        .flat_map(|(_, examples)| examples)
        .map(|(i, o)| {
            format!(
                "{}|{}",
                grid_hash_hex(&variant.apply_grid(i)),
                grid_hash_hex(&variant.apply_grid(o))
            )
        })
        .collect();
    hashes.sort_unstable();
    Sha256::digest(hashes.join("|").as_bytes()).into()
}

/// The examples of a task by destination, in the task's section order (`convert_single_arc_puzzle`).
fn convert_examples(task: &PyValue, at: &At, test_dest: Split) -> Result<Dests, DataError> {
    let PyValue::Dict(sections) = task else {
        return Err(at.err(format!("is {}, expected an object", task.kind())));
    };
    // TRM's `dests` is a Python set; for a task with both splits its order follows the string hash seed. Train
    // first here, which is what a build whose first subset is not the test set gives whatever the seed.
    let mut dests = vec![(Split::Train, Vec::new())];
    if test_dest == Split::Test {
        dests.push((Split::Test, Vec::new()));
    }
    for (section, examples) in sections {
        let dest = match section.as_str() {
            "train" => Split::Train,
            "test" => test_dest,
            other => {
                return Err(at.err(format!(
                    "has a section \"{other}\"; TRM's builder knows only \"train\" and \"test\""
                )))
            }
        };
        let PyValue::List(examples) = examples else {
            return Err(at.err(format!(
                "section \"{section}\" is {}, expected a list",
                examples.kind()
            )));
        };
        let slot = &mut dests
            .iter_mut()
            .find(|(s, _)| *s == dest)
            .expect("both dests exist")
            .1;
        for (idx, ex) in examples.iter().enumerate() {
            let input = grid_of(ex.get("input"), at, section, idx, "input")?;
            let output = grid_of(ex.get("output"), at, section, idx, "output")?;
            slot.push((input, output));
        }
    }
    if let Some((split, _)) = dests.iter().find(|(_, ex)| ex.is_empty()) {
        return Err(at.err(format!(
            "has no examples for the {} split (TRM's builder fails on it: randint(0, 0))",
            split.name()
        )));
    }
    Ok(dests)
}

/// `aug(name)`: the dihedral id, then the colour permutation (0 fixed).
fn draw_variant(rng: &mut LegacyRandomState) -> ArcVariant {
    let dihedral = rng.randint(0, 8) as u8;
    let perm = rng.permutation(&[1u8, 2, 3, 4, 5, 6, 7, 8, 9]);
    let mut map = [0u8; 10];
    map[1..].copy_from_slice(&perm);
    let colours = ColourMap::from_array(map).expect("a permutation of 1..=9 with 0 fixed");
    ArcVariant { dihedral, colours }
}

/// The group of a task: the original, then new augmentations until `num_aug` of them or `5 * num_aug` trials.
fn augment(
    name: &str,
    dests: &[(Split, Pairs)],
    num_aug: usize,
    rng: &mut LegacyRandomState,
) -> Vec<(String, ArcVariant)> {
    let mut members = vec![(name.to_string(), ArcVariant::identity())];
    if num_aug == 0 {
        return members;
    }
    let mut seen = HashSet::from([puzzle_hash(dests, &ArcVariant::identity())]);
    for _ in 0..TRM_AUG_RETRIES_FACTOR * num_aug {
        let variant = draw_variant(rng);
        if seen.insert(puzzle_hash(dests, &variant)) {
            let aug_name = format!(
                "{name}{TRM_ID_SEPARATOR}t{}{TRM_ID_SEPARATOR}{}",
                variant.dihedral,
                variant.colours.to_digits()
            );
            members.push((aug_name, variant));
        }
        if members.len() > num_aug {
            break;
        }
    }
    members
}

/// Everything `load_puzzles_arcagi` returns: the converted tasks, the groups of each split (split order as
/// first filled), the test set's tasks (`test_puzzles`) in insertion order.
struct Loaded {
    tasks: Vec<Converted>,
    splits: Vec<(Split, Vec<(usize, usize)>)>,
    test_puzzles: Vec<(String, PyValue)>,
    not_full: usize,
}

fn load(cfg: &TrmArcConfig, rng: &mut LegacyRandomState) -> Result<Loaded, DataError> {
    let mut loaded = Loaded {
        tasks: Vec::new(),
        splits: Vec::new(),
        test_puzzles: Vec::new(),
        not_full: 0,
    };
    for subset in &cfg.subsets {
        let mut entries = read_subset(subset)?;
        rng.shuffle(&mut entries);
        let test_dest = if subset.test {
            Split::Test
        } else {
            Split::Train
        };
        for (name, task) in entries {
            let at = At {
                path: &subset.challenges,
                task: &name,
            };
            let dests = convert_examples(&task, &at, test_dest)?;
            if subset.test {
                match loaded.test_puzzles.iter_mut().find(|(k, _)| *k == name) {
                    Some(slot) => slot.1 = task,
                    None => loaded.test_puzzles.push((name.clone(), task)),
                }
            }
            let members = augment(&name, &dests, cfg.num_aug, rng);
            if members.len() < cfg.num_aug + 1 {
                loaded.not_full += 1;
            }
            let t = loaded.tasks.len();
            for (d, (split, _)) in dests.iter().enumerate() {
                let groups = match loaded.splits.iter_mut().find(|(s, _)| s == split) {
                    Some((_, groups)) => groups,
                    None => {
                        loaded.splits.push((*split, Vec::new()));
                        &mut loaded.splits.last_mut().expect("just pushed").1
                    }
                };
                groups.push((t, d));
            }
            loaded.tasks.push(Converted { dests, members });
        }
    }
    if !loaded.splits.iter().any(|(s, _)| *s == Split::Test) {
        return Err(DataError::config(
            "source",
            "no task goes to the test split: mark the test set's challenges file with `test=` (TRM's --test-set-name)",
        ));
    }
    Ok(loaded)
}

/// Puzzle identifiers numbered from 1 in split, group, puzzle order; index 0 is `<blank>`.
fn number_identifiers(loaded: &Loaded) -> (Vec<String>, HashMap<String, i32>) {
    let mut names = vec![BLANK_IDENTIFIER.to_string()];
    let mut ids = HashMap::new();
    for (_, groups) in &loaded.splits {
        for &(t, _) in groups {
            for (name, _) in &loaded.tasks[t].members {
                if !ids.contains_key(name) {
                    ids.insert(name.clone(), names.len() as i32);
                    names.push(name.clone());
                }
            }
        }
    }
    (names, ids)
}

/// Writes one split as `convert_dataset` does; returns (puzzles, groups, examples).
fn write_split(
    dir: &Path,
    split: Split,
    groups: &[(usize, usize)],
    loaded: &Loaded,
    ids: &HashMap<String, i32>,
    num_identifiers: usize,
    rng: &mut LegacyRandomState,
) -> Result<(usize, usize, usize), DataError> {
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    let npy = |name: &str| dir.join(format!("all__{name}.npy"));
    let mut inputs = NpyWriter::<u8>::create(&npy("inputs"), &[ARC_SEQ_LEN])?;
    let mut labels = NpyWriter::<u8>::create(&npy("labels"), &[ARC_SEQ_LEN])?;
    let (mut puzzle_ids, mut puzzle_indices, mut group_indices) =
        (Vec::new(), vec![0i32], vec![0i32]);
    let (mut inp, mut out) = (vec![0u8; ARC_SEQ_LEN], vec![0u8; ARC_SEQ_LEN]);
    let mut examples = 0usize;
    for &(t, d) in groups {
        let task = &loaded.tasks[t];
        let pairs = &task.dests[d].1;
        for (name, variant) in &task.members {
            let no_aug_id = rng.randint(0, pairs.len() as i64);
            for (idx, (i, o)) in pairs.iter().enumerate() {
                let (i, o) = (variant.apply_grid(i), variant.apply_grid(o));
                let (mut r0, mut c0) = (0, 0);
                if split == Split::Train && idx as i64 != no_aug_id {
                    r0 = rng.randint(0, (ARC_CANVAS - i.rows().max(o.rows()) + 1) as i64) as usize;
                    c0 = rng.randint(0, (ARC_CANVAS - i.cols().max(o.cols()) + 1) as i64) as usize;
                }
                let fits = |e| {
                    At {
                        path: dir,
                        task: name,
                    }
                    .err(e)
                };
                encode_arc_into(&i, r0, c0, &mut inp).map_err(fits)?;
                encode_arc_into(&o, r0, c0, &mut out).map_err(fits)?;
                inputs.push(&inp)?;
                labels.push(&out)?;
                examples += 1;
            }
            puzzle_indices.push(i32::try_from(examples).map_err(|_| overflow(dir))?);
            puzzle_ids.push(ids[name]);
        }
        group_indices.push(puzzle_ids.len() as i32);
    }
    inputs.finish()?;
    labels.finish()?;
    write_npy(&npy("puzzle_identifiers"), &[puzzle_ids.len()], &puzzle_ids)?;
    write_npy(
        &npy("puzzle_indices"),
        &[puzzle_indices.len()],
        &puzzle_indices,
    )?;
    write_npy(
        &npy("group_indices"),
        &[group_indices.len()],
        &group_indices,
    )?;
    let (puzzles, ngroups) = (puzzle_ids.len(), groups.len());
    write_text(
        &dir.join("dataset.json"),
        &metadata_json(num_identifiers, ngroups, examples, puzzles),
    )?;
    Ok((puzzles, ngroups, examples))
}

fn overflow(dir: &Path) -> DataError {
    DataError::invalid(
        dir,
        "puzzle_indices",
        "more than 2^31 examples in one split (int32 offsets)",
    )
}

/// `json.dump(PuzzleDatasetMetadata(...).model_dump())`, fields in the model's order.
fn metadata_json(num_identifiers: usize, groups: usize, examples: usize, puzzles: usize) -> String {
    format!(
        "{{\"pad_id\": 0, \"ignore_label_id\": 0, \"blank_identifier_id\": 0, \"vocab_size\": {ARC_VOCAB}, \
         \"seq_len\": {ARC_SEQ_LEN}, \"num_puzzle_identifiers\": {num_identifiers}, \"total_groups\": {groups}, \
         \"mean_puzzle_examples\": {}, \"total_puzzles\": {puzzles}, \"sets\": [\"all\"]}}",
        float_repr(examples as f64 / puzzles as f64)
    )
}

fn write_text(path: &Path, text: &str) -> Result<(), DataError> {
    std::fs::write(path, text).map_err(|e| DataError::io(path, e))
}

/// Builds a dataset in TRM's layout into `out` (staged in a hidden sibling, swapped in when complete).
pub fn build_trm_arc(cfg: &TrmArcConfig, out: &Path) -> Result<TrmArcStats, DataError> {
    check_num_aug(cfg.num_aug)?;
    let mut rng = LegacyRandomState::seed(cfg.seed);
    let loaded = load(cfg, &mut rng)?;
    let rows: usize = loaded
        .tasks
        .iter()
        .map(|t| t.members.len() * t.dests.iter().map(|d| d.1.len()).sum::<usize>())
        .sum();
    check_disk_space(
        out,
        &BuildPlan {
            rows: rows as u128,
            seq_len: ARC_SEQ_LEN,
        },
    )?;
    let (names, ids) = number_identifiers(&loaded);
    let staged = StagedDir::create(out)?;
    let mut stats = TrmArcStats {
        tasks: loaded.tasks.len(),
        identifiers: names.len(),
        not_full: loaded.not_full,
        ..TrmArcStats::default()
    };
    for (split, groups) in &loaded.splits {
        let dir = staged.path().join(split.name());
        let counts = write_split(&dir, *split, groups, &loaded, &ids, names.len(), &mut rng)?;
        match split {
            Split::Train => stats.train = counts,
            Split::Test => stats.test = counts,
        }
    }
    let mut text = String::from("[");
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            text.push_str(", ");
        }
        push_str_literal(name, &mut text);
    }
    text.push(']');
    write_text(&staged.path().join("identifiers.json"), &text)?;
    let test_puzzles = dumps(&PyValue::Dict(loaded.test_puzzles));
    write_text(&staged.path().join("test_puzzles.json"), &test_puzzles)?;
    staged.commit()?;
    Ok(stats)
}
