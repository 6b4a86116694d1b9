//! The ARC dataset builder (spec 1.2-1.4): task discovery, split rule, dihedral x colour augmentation
//! with canonical-hash de-duplication, translation of train examples, identifiers and parallel writing.
//! Follows the reference's `dataset/build_arc_dataset.py`.

use crate::error::DataError;
use crate::layout::{DatasetWriter, BLANK_IDENTIFIER};
use hrm_augment::colour::ColourMap;
use hrm_augment::dihedral;
use hrm_augment::translate::random_offset;
use hrm_augment::variant::ArcVariant;
use hrm_grid::codec::{arc_pair_max_offset_canvas, encode_arc_canvas_into, ARC_CANVAS, ARC_VOCAB};
use hrm_grid::Grid;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The number of augmentation trials per wanted variant (the reference's retries factor).
pub const AUG_RETRIES_FACTOR: usize = 5;

/// Settings of an ARC build.
#[derive(Debug, Clone, PartialEq)]
pub struct ArcBuildConfig {
    /// Source folders; every subfolder of each holds task JSON files (spec 1.3).
    pub sources: Vec<PathBuf>,
    /// Wanted augmented variants per task (the group holds up to 1 + num_aug puzzles).
    pub num_aug: usize,
    /// The seed of all random draws.
    pub seed: u64,
    /// Worker threads (0 = all available cores). The output does not depend on it.
    pub threads: usize,
    /// Side of the square canvas (30 = the paper). With a smaller canvas, only tasks whose grids all fit
    /// are kept (for small CPU runs); the sequence length is `canvas * canvas`.
    pub canvas: usize,
    /// Keep only tasks from folders named `evaluation` (no training tasks, no ConceptARC).
    pub evaluation_only: bool,
    /// Keep at most this many tasks after the other filters, in listing order (0 = all).
    pub max_tasks: usize,
}

impl ArcBuildConfig {
    /// The `arc1` preset: `<data>/arc-agi-1` and `<data>/concept-arc`, num_aug 1000, seed 42.
    pub fn arc1(data_dir: &Path) -> Self {
        Self::preset(vec![
            data_dir.join("arc-agi-1"),
            data_dir.join("concept-arc"),
        ])
    }

    /// The `arc2` preset: `<data>/arc-agi-2`, num_aug 1000, seed 42.
    pub fn arc2(data_dir: &Path) -> Self {
        Self::preset(vec![data_dir.join("arc-agi-2")])
    }

    /// The preset of `task` ([`ArcBuildConfig::arc1`] or [`ArcBuildConfig::arc2`]); `None` for a non-ARC task.
    pub fn for_task(task: hrm_grid::Task, data_dir: &Path) -> Option<Self> {
        match task {
            hrm_grid::Task::Arc1 => Some(Self::arc1(data_dir)),
            hrm_grid::Task::Arc2 => Some(Self::arc2(data_dir)),
            hrm_grid::Task::Sudoku | hrm_grid::Task::Maze => None,
        }
    }

    /// The reference settings (num_aug 1000, seed 42, the 30x30 canvas, every task) over `sources`.
    fn preset(sources: Vec<PathBuf>) -> Self {
        ArcBuildConfig {
            sources,
            num_aug: 1000,
            seed: 42,
            threads: 0,
            canvas: ARC_CANVAS,
            evaluation_only: false,
            max_tasks: 0,
        }
    }
}

/// One task file and whether it comes from a folder named exactly `evaluation`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArcTaskFile {
    /// The JSON file.
    pub path: PathBuf,
    /// True when the parent folder is named `evaluation` (test pairs go to the test split).
    pub evaluation: bool,
}

/// Counts of one written split.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SplitCounts {
    /// Groups (tasks).
    pub groups: usize,
    /// Puzzles (variants).
    pub puzzles: usize,
    /// Examples.
    pub examples: usize,
}

/// What an ARC build produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ArcBuildStats {
    /// Task files read.
    pub tasks: usize,
    /// Train split counts.
    pub train: SplitCounts,
    /// Test split counts.
    pub test: SplitCounts,
    /// Identifiers including `<blank>` (`num_puzzle_identifiers`).
    pub identifiers: usize,
    /// Train-split groups with fewer than 1 + num_aug puzzles.
    pub short_train_groups: usize,
    /// Test-split groups with fewer than 1 + num_aug puzzles.
    pub short_test_groups: usize,
    /// Every task whose group stayed short: (task name, variants reached including the original).
    pub short_groups: Vec<(String, usize)>,
}

impl std::fmt::Display for ArcBuildStats {
    /// One summary line: tasks, the counts of both splits, identifiers and short groups.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (train, test) = (&self.train, &self.test);
        write!(
            f,
            "tasks {} | train: {} groups, {} puzzles, {} examples | test: {} groups, {} puzzles, {} examples \
             | identifiers {} | short groups: {} train, {} test",
            self.tasks,
            train.groups,
            train.puzzles,
            train.examples,
            test.groups,
            test.puzzles,
            test.examples,
            self.identifiers,
            self.short_train_groups,
            self.short_test_groups
        )
    }
}

/// Lists the task files of the sources: subfolders sorted by name, then `*.json` files sorted by name.
///
/// The reference walks folders in filesystem order; sorting makes the build independent of the file
/// system. Files directly inside a source folder (licenses, id lists) are ignored, as in the reference.
pub fn list_arc_tasks(sources: &[PathBuf]) -> Result<Vec<ArcTaskFile>, DataError> {
    let mut out = Vec::new();
    for src in sources {
        let mut subdirs = Vec::new();
        for entry in std::fs::read_dir(src).map_err(|e| DataError::io(src, e))? {
            let entry = entry.map_err(|e| DataError::io(src, e))?;
            let path = entry.path();
            if path.is_dir() {
                subdirs.push(path);
            }
        }
        subdirs.sort();
        for dir in subdirs {
            let evaluation = dir.file_name().is_some_and(|n| n == "evaluation");
            let mut files = Vec::new();
            for entry in std::fs::read_dir(&dir).map_err(|e| DataError::io(&dir, e))? {
                let entry = entry.map_err(|e| DataError::io(&dir, e))?;
                let path = entry.path();
                if path.is_file() && path.extension().is_some_and(|x| x == "json") {
                    files.push(path);
                }
            }
            files.sort();
            out.extend(
                files
                    .into_iter()
                    .map(|path| ArcTaskFile { path, evaluation }),
            );
        }
    }
    Ok(out)
}

/// The task files a build uses: all of them, or (with the config's filters) only evaluation tasks, only
/// tasks whose grids all fit the canvas, and at most `max_tasks`, in listing order.
pub fn select_tasks(config: &ArcBuildConfig) -> Result<Vec<ArcTaskFile>, DataError> {
    let mut files = list_arc_tasks(&config.sources)?;
    if config.evaluation_only {
        files.retain(|f| f.evaluation);
    }
    if config.canvas < ARC_CANVAS {
        let mut kept = Vec::with_capacity(files.len());
        for f in files {
            let task = hrm_grid::arc::load_task(&f.path)?;
            let fits = |g: &Grid| g.rows() <= config.canvas && g.cols() <= config.canvas;
            let all_fit = task
                .train
                .iter()
                .chain(&task.test)
                .all(|p| fits(&p.input) && p.output.as_ref().is_none_or(fits));
            if all_fit {
                kept.push(f);
            }
        }
        files = kept;
    }
    if config.max_tasks > 0 {
        files.truncate(config.max_tasks);
    }
    Ok(files)
}

/// The planned size of an ARC build: every pair of every task, once per variant (an upper bound: de-duplication
/// and the split rule only lower it).
fn plan_arc(
    files: &[ArcTaskFile],
    num_aug: usize,
    seq_len: usize,
) -> Result<crate::budget::BuildPlan, DataError> {
    let mut pairs = 0u128;
    for f in files {
        let task = hrm_grid::arc::load_task(&f.path)?;
        pairs += (task.train.len() + task.test.len()) as u128;
    }
    Ok(crate::budget::BuildPlan {
        rows: pairs.saturating_mul(1 + num_aug as u128),
        seq_len,
    })
}

/// An (input, output) pair of one variant.
type Pair = (Grid, Grid);
/// The (train, test) pairs of one variant of a task.
type VariantPairs = (Vec<Pair>, Vec<Pair>);

/// The canonical hash of a variant (spec 1.4), over all its pairs of both splits.
///
/// For a grid g of h x w cells, `grid_hash(g)` is the lowercase hex SHA-256 of the bytes
/// `[h, w, cells...]` (one byte each, row-major). A pair gives the string `grid_hash(input) + "|" +
/// grid_hash(output)`; the pair strings are sorted and joined with `"|"`, and the variant hash is the
/// SHA-256 of that text. Two variants collide only when their multisets of pairs are equal.
pub fn variant_hash<'a>(pairs: impl IntoIterator<Item = &'a Pair>) -> [u8; 32] {
    let mut strings: Vec<String> = pairs
        .into_iter()
        .map(|(i, o)| format!("{}|{}", grid_hash(i), grid_hash(o)))
        .collect();
    strings.sort();
    Sha256::digest(strings.join("|").as_bytes()).into()
}

fn grid_hash(g: &Grid) -> String {
    let mut h = Sha256::new();
    h.update([g.rows() as u8, g.cols() as u8]);
    h.update(g.cells());
    let d = h.finalize();
    let mut s = String::with_capacity(64);
    for b in d {
        use std::fmt::Write;
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Applies a variant to a grid with reusable buffers.
fn apply_variant(g: &Grid, v: &ArcVariant, tmp: &mut Vec<u8>, out: &mut Vec<u8>) -> Grid {
    let map = v.colours.as_array();
    tmp.clear();
    tmp.extend(g.cells().iter().map(|&c| map[c as usize]));
    dihedral::transform_into(tmp, g.rows(), g.cols(), v.dihedral, out);
    let (h, w) = dihedral::output_shape(v.dihedral, g.rows(), g.cols());
    Grid::new(h, w, out.clone()).expect("a dihedral map of a valid grid is valid")
}

/// The encoded examples of one split of one task: per variant, its example count; all tokens flat.
#[derive(Debug, Default)]
struct EncodedSplit {
    per_variant: Vec<usize>,
    inputs: Vec<u8>,
    labels: Vec<u8>,
}

/// Everything a worker produces for one task.
#[derive(Debug)]
struct TaskOutput {
    names: Vec<String>,
    train: EncodedSplit,
    test: EncodedSplit,
}

/// The RNG of task `index`: ChaCha8 seeded with `seed`, stream `index`.
fn task_rng(seed: u64, index: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index as u64);
    rng
}

/// Loads, augments and encodes one task.
fn process_task(
    file: &ArcTaskFile,
    index: usize,
    num_aug: usize,
    seed: u64,
    canvas: usize,
) -> Result<TaskOutput, DataError> {
    let task = hrm_grid::arc::load_task(&file.path)?;
    let original = task_pairs(file, &task)?;
    let mut rng = task_rng(seed, index);
    let (names, variants) = augment(&task.id, original, num_aug, &mut rng);
    let (train, test) = encode_variants(&variants, canvas, &mut rng);
    Ok(TaskOutput { names, train, test })
}

/// The (train, test) pairs of a task: test pairs go to the test split only for `evaluation` folders.
fn task_pairs(
    file: &ArcTaskFile,
    task: &hrm_grid::arc::ArcTask,
) -> Result<VariantPairs, DataError> {
    let mut train_pairs: Vec<Pair> = Vec::new();
    let mut test_pairs: Vec<Pair> = Vec::new();
    for (section, list) in [("train", &task.train), ("test", &task.test)] {
        for (k, p) in list.iter().enumerate() {
            let output = p.output.clone().ok_or_else(|| DataError::Task {
                path: file.path.clone(),
                msg: format!(
                    "task {}: {section} pair {k}, field \"output\": missing (hidden outputs cannot be built)",
                    task.id
                ),
            })?;
            let pair = (p.input.clone(), output);
            if section == "test" && file.evaluation {
                test_pairs.push(pair);
            } else {
                train_pairs.push(pair);
            }
        }
    }
    Ok((train_pairs, test_pairs))
}

/// The variants of a task with their names: member 0 is the original, then up to
/// [`AUG_RETRIES_FACTOR`] * `num_aug` trials of dihedral x colour map, keeping canonically new ones.
fn augment(
    id: &str,
    original: VariantPairs,
    num_aug: usize,
    rng: &mut ChaCha8Rng,
) -> (Vec<String>, Vec<VariantPairs>) {
    let mut names = vec![id.to_string()];
    let mut variants: Vec<VariantPairs> = vec![original];
    if num_aug == 0 {
        return (names, variants);
    }
    let mut seen: HashSet<[u8; 32]> = HashSet::new();
    seen.insert(variant_hash(variants[0].0.iter().chain(&variants[0].1)));
    let (mut tmp, mut out) = (Vec::new(), Vec::new());
    for _ in 0..AUG_RETRIES_FACTOR * num_aug {
        let v = ArcVariant {
            dihedral: rng.random_range(0..8u8),
            colours: ColourMap::random(rng),
        };
        let mut map = |pairs: &[Pair]| -> Vec<Pair> {
            pairs
                .iter()
                .map(|(i, o)| {
                    (
                        apply_variant(i, &v, &mut tmp, &mut out),
                        apply_variant(o, &v, &mut tmp, &mut out),
                    )
                })
                .collect()
        };
        let tr = map(&variants[0].0);
        let te = map(&variants[0].1);
        if seen.insert(variant_hash(tr.iter().chain(&te))) {
            names.push(v.name(id));
            variants.push((tr, te));
        }
        if variants.len() > num_aug {
            break;
        }
    }
    (names, variants)
}

/// Encodes the variants: train examples are translated except one per variant; test examples never are.
fn encode_variants(
    variants: &[VariantPairs],
    canvas: usize,
    rng: &mut ChaCha8Rng,
) -> (EncodedSplit, EncodedSplit) {
    let mut train = EncodedSplit::default();
    let mut test = EncodedSplit::default();
    let mut buf = vec![0u8; canvas * canvas];
    let mut encode = |g: &Grid, r0: usize, c0: usize, dst: &mut Vec<u8>| {
        encode_arc_canvas_into(g, r0, c0, canvas, &mut buf)
            .expect("offsets are within the pair's bounds");
        dst.extend_from_slice(&buf);
    };
    for (tr, te) in variants {
        if !tr.is_empty() {
            let keep = rng.random_range(0..tr.len());
            for (k, (i, o)) in tr.iter().enumerate() {
                let (r0, c0) = if k == keep {
                    (0, 0)
                } else {
                    let (max_r, max_c) = arc_pair_max_offset_canvas(i, o, canvas);
                    random_offset(rng, max_r, max_c)
                };
                encode(i, r0, c0, &mut train.inputs);
                encode(o, r0, c0, &mut train.labels);
            }
        }
        train.per_variant.push(tr.len());
        for (i, o) in te {
            encode(i, 0, 0, &mut test.inputs);
            encode(o, 0, 0, &mut test.labels);
        }
        test.per_variant.push(te.len());
    }
    (train, test)
}

/// Puzzle identifiers in order of first appearance; index 0 is `<blank>`.
struct IdTable {
    ids: HashMap<String, i32>,
    names: Vec<String>,
}

impl IdTable {
    fn new() -> Self {
        IdTable {
            ids: HashMap::new(),
            names: vec![BLANK_IDENTIFIER.to_string()],
        }
    }

    /// The identifier of `name`, assigning the next one on first sight.
    fn id_of(&mut self, name: &str) -> i32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        self.names.push(name.to_string());
        let id = (self.names.len() - 1) as i32;
        self.ids.insert(name.to_string(), id);
        id
    }
}

/// Writes one task's variants to both splits (one group each where it has examples) and counts them.
fn write_task(
    out: &TaskOutput,
    writer: &mut DatasetWriter,
    ids: &mut IdTable,
    stats: &mut ArcBuildStats,
    seq_len: usize,
    full: usize,
) -> Result<(), DataError> {
    let variant_ids: Vec<i32> = out.names.iter().map(|n| ids.id_of(n)).collect();
    let (train_w, test_w) = writer.splits();
    for (split, w, counts, short) in [
        (
            &out.train,
            train_w,
            &mut stats.train,
            &mut stats.short_train_groups,
        ),
        (
            &out.test,
            test_w,
            &mut stats.test,
            &mut stats.short_test_groups,
        ),
    ] {
        let mut offset = 0usize;
        let mut puzzles = 0usize;
        for (v, &n) in split.per_variant.iter().enumerate() {
            if n == 0 {
                continue;
            }
            let r = offset * seq_len..(offset + n) * seq_len;
            w.push_examples(&split.inputs[r.clone()], &split.labels[r])?;
            w.end_puzzle(variant_ids[v]);
            offset += n;
            puzzles += 1;
        }
        if puzzles > 0 {
            w.end_group();
            counts.groups += 1;
            counts.puzzles += puzzles;
            counts.examples += offset;
            *short += usize::from(puzzles < full);
        }
    }
    if out.names.len() < full {
        stats
            .short_groups
            .push((out.names[0].clone(), out.names.len()));
    }
    Ok(())
}

/// Builds an HRM ARC dataset at `out_dir` (spec 1.2-1.4) and returns its counts.
///
/// Tasks are processed in parallel; every task draws from its own ChaCha8 stream derived from
/// `(seed, task index)` and results are written in task order, so the files are byte-identical for
/// any thread count. Puzzle identifiers are assigned from 1 in order of first appearance (task order;
/// within a task, its train-split variants, whose names the test split shares). A variant with no
/// examples in a split adds no puzzle there, and a task with none adds no group. The dataset appears at
/// `out_dir` only when complete (see [`DatasetWriter`]).
pub fn build_arc(config: &ArcBuildConfig, out_dir: &Path) -> Result<ArcBuildStats, DataError> {
    let canvas = config.canvas;
    if !(1..=ARC_CANVAS).contains(&canvas) {
        return Err(DataError::config(
            "canvas",
            format!("{canvas} is outside 1..={ARC_CANVAS}"),
        ));
    }
    crate::budget::check_num_aug(config.num_aug)?;
    let files = select_tasks(config)?;
    let seq_len = canvas * canvas;
    if files.is_empty() {
        return Err(DataError::config(
            "sources",
            format!("no task files found under {:?}", config.sources),
        ));
    }
    crate::budget::check_disk_space(out_dir, &plan_arc(&files, config.num_aug, seq_len)?)?;
    let threads = crate::resolve_threads(config.threads).min(files.len());

    let mut writer = DatasetWriter::create(out_dir, seq_len)?;
    if canvas < ARC_CANVAS || config.evaluation_only || config.max_tasks > 0 {
        let listed = list_arc_tasks(&config.sources)?;
        let count = |files: &[ArcTaskFile]| files.iter().filter(|f| f.evaluation).count() as u32;
        writer.set_selection(crate::layout::TaskSelection {
            canvas: canvas as u32,
            evaluation_only: config.evaluation_only,
            max_tasks: config.max_tasks as u32,
            evaluation_tasks: count(&files),
            evaluation_tasks_listed: count(&listed),
        });
    }
    let mut ids = IdTable::new();
    let mut stats = ArcBuildStats {
        tasks: files.len(),
        ..Default::default()
    };
    let full = config.num_aug + 1;

    let next = AtomicUsize::new(0);
    let cancel = AtomicBool::new(false);
    let result: Result<(), DataError> = std::thread::scope(|scope| {
        let (tx, rx) =
            crossbeam_channel::bounded::<(usize, Result<TaskOutput, DataError>)>(threads * 2);
        for _ in 0..threads {
            let tx = tx.clone();
            let (files, next, cancel) = (&files, &next, &cancel);
            scope.spawn(move || loop {
                if cancel.load(Ordering::Relaxed) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= files.len() {
                    break;
                }
                let out = process_task(&files[i], i, config.num_aug, config.seed, canvas);
                if tx.send((i, out)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let mut pending: BTreeMap<usize, Result<TaskOutput, DataError>> = BTreeMap::new();
        let mut written = 0usize;
        let run = (|| {
            while written < files.len() {
                let Ok((i, out)) = rx.recv() else {
                    break;
                };
                pending.insert(i, out);
                while let Some(out) = pending.remove(&written) {
                    write_task(&out?, &mut writer, &mut ids, &mut stats, seq_len, full)?;
                    written += 1;
                }
            }
            if written < files.len() {
                return Err(DataError::config(
                    "threads",
                    "a worker thread stopped early",
                ));
            }
            Ok(())
        })();
        if run.is_err() {
            cancel.store(true, Ordering::Relaxed);
        }
        drop(rx);
        run
    });
    result?;
    stats.identifiers = ids.names.len();
    writer.commit(&ids.names, ARC_VOCAB as u32)?;
    Ok(stats)
}
