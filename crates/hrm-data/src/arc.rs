//! The ARC dataset builder (spec 1.2-1.4): task discovery, split rule, dihedral x colour augmentation
//! with canonical-hash de-duplication, translation of train examples, identifiers and parallel writing.
//! Follows the reference's `dataset/build_arc_dataset.py`.

use crate::error::DataError;
use crate::layout::{DatasetWriter, BLANK_IDENTIFIER, DATASET_IGNORE_LABEL};
use crate::sources::load_sources;
pub use crate::sources::{list_arc_tasks, ArcSource, ArcTaskFile, SourceRole, SourcedTask};
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
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The number of augmentation trials per wanted variant (the reference's retries factor).
pub const AUG_RETRIES_FACTOR: usize = 5;

/// Settings of an ARC build.
#[derive(Debug, Clone, PartialEq)]
pub struct ArcBuildConfig {
    /// Where the tasks come from (spec 1.3; see [`ArcSource`]), read in order.
    pub sources: Vec<ArcSource>,
    /// Wanted augmented variants per task (the group holds up to 1 + num_aug puzzles).
    pub num_aug: usize,
    /// The seed of all random draws.
    pub seed: u64,
    /// Worker threads (0 = all available cores). The output does not depend on it.
    pub threads: usize,
    /// Side of the square canvas (30 = the paper). With a smaller canvas, only tasks whose grids all fit
    /// are kept (for small CPU runs); the sequence length is `canvas * canvas`.
    pub canvas: usize,
    /// Keep only test tasks (with the presets: ARC-AGI evaluation tasks; no training tasks, no ConceptARC).
    pub evaluation_only: bool,
    /// Keep at most this many tasks after the other filters, in listing order (0 = all).
    pub max_tasks: usize,
}

impl ArcBuildConfig {
    /// The `arc1` preset: `<data>/arc-agi-1` and `<data>/concept-arc`, num_aug 1000, seed 42.
    pub fn arc1(data_dir: &Path) -> Self {
        Self::preset(vec![
            ArcSource::auto(data_dir.join("arc-agi-1")),
            ArcSource::auto(data_dir.join("concept-arc")),
        ])
    }

    /// The `arc2` preset: `<data>/arc-agi-2`, num_aug 1000, seed 42.
    pub fn arc2(data_dir: &Path) -> Self {
        Self::preset(vec![ArcSource::auto(data_dir.join("arc-agi-2"))])
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
    fn preset(sources: Vec<ArcSource>) -> Self {
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
    /// Tasks built.
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
    /// Test pairs without an output: prediction-only rows of test tasks (their labels are all PAD).
    pub hidden_test_outputs: usize,
    /// Test pairs without an output in training tasks, left out (nothing to train on).
    pub hidden_left_out: usize,
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
        )?;
        if self.hidden_test_outputs + self.hidden_left_out > 0 {
            write!(
                f,
                " | hidden test outputs: {} kept as prediction-only rows, {} left out of training tasks",
                self.hidden_test_outputs, self.hidden_left_out
            )?;
        }
        Ok(())
    }
}

/// The tasks a build uses, read from the sources (task ids unique): all of them, or (with the config's filters)
/// only test tasks, only tasks whose grids all fit the canvas, and at most `max_tasks`, in listing order. Also
/// returns the number of test tasks read before the filters.
pub fn select_tasks(config: &ArcBuildConfig) -> Result<(Vec<SourcedTask>, usize), DataError> {
    let mut tasks = load_sources(&config.sources)?;
    let sources = || {
        let names: Vec<String> = config.sources.iter().map(|s| s.to_string()).collect();
        names.join(", ")
    };
    if tasks.is_empty() {
        return Err(DataError::config(
            "sources",
            format!("no tasks found in {}", sources()),
        ));
    }
    let read = tasks.len();
    let listed = tasks.iter().filter(|t| t.evaluation).count();
    if config.evaluation_only {
        tasks.retain(|t| t.evaluation);
        if tasks.is_empty() {
            return Err(DataError::config(
                "evaluation_only",
                format!(
                    "{read} tasks were read from {}, but none is an evaluation (test) task; mark a source \
                     `test=PATH` or drop --evaluation-only",
                    sources()
                ),
            ));
        }
    }
    if config.canvas < ARC_CANVAS {
        let smallest = tasks.iter().map(|t| task_extent(&t.task)).min();
        tasks.retain(|t| fits_canvas(&t.task, config.canvas));
        if let (true, Some(smallest)) = (tasks.is_empty(), smallest) {
            let c = config.canvas;
            return Err(DataError::config(
                "canvas",
                format!(
                    "{read} tasks were read from {}, but none fits the {c}x{c} canvas (a task is kept only \
                     when all its grids fit); the smallest canvas that fits one is {smallest} (--canvas \
                     {smallest})",
                    sources()
                ),
            ));
        }
    }
    if config.max_tasks > 0 {
        tasks.truncate(config.max_tasks);
    }
    Ok((tasks, listed))
}

/// The side of the smallest square canvas that holds every grid of the task (given outputs included).
pub fn task_extent(task: &hrm_grid::arc::ArcTask) -> usize {
    task.train
        .iter()
        .chain(&task.test)
        .flat_map(|p| std::iter::once(&p.input).chain(p.output.as_ref()))
        .map(|g| g.rows().max(g.cols()))
        .max()
        .unwrap_or(0)
}

/// True when every grid of the task (given outputs included) fits a `canvas` x `canvas` canvas.
pub fn fits_canvas(task: &hrm_grid::arc::ArcTask, canvas: usize) -> bool {
    task_extent(task) <= canvas
}

/// The planned size of an ARC build: every pair of every task, once per variant (an upper bound: de-duplication
/// and the split rule only lower it).
fn plan_arc(tasks: &[SourcedTask], num_aug: usize, seq_len: usize) -> crate::budget::BuildPlan {
    let pairs: u128 = tasks
        .iter()
        .map(|t| (t.task.train.len() + t.task.test.len()) as u128)
        .sum();
    crate::budget::BuildPlan {
        rows: pairs.saturating_mul(1 + num_aug as u128),
        seq_len,
    }
}

/// An (input, output) pair of one variant.
type Pair = (Grid, Grid);
/// A pair whose output may be hidden (a test pair of a competition challenge without solutions).
type OpenPair = (Grid, Option<Grid>);
/// The (train, test) pairs of one variant of a task.
type VariantPairs = (Vec<Pair>, Vec<OpenPair>);

/// The canonical hash of a variant (spec 1.4), over all its pairs of both splits.
///
/// For a grid g of h x w cells, `grid_hash(g)` is the lowercase hex SHA-256 of the bytes
/// `[h, w, cells...]` (one byte each, row-major). A pair gives the string `grid_hash(input) + "|" +
/// grid_hash(output)`; the pair strings are sorted and joined with `"|"`, and the variant hash is the
/// SHA-256 of that text. Two variants collide only when their multisets of pairs are equal.
pub fn variant_hash<'a>(pairs: impl IntoIterator<Item = &'a Pair>) -> [u8; 32] {
    open_variant_hash(pairs.into_iter().map(|(i, o)| (i, Some(o))))
}

/// [`variant_hash`] where an output may be hidden: a hidden output's hash is the text `hidden`.
fn open_variant_hash<'a>(
    pairs: impl IntoIterator<Item = (&'a Grid, Option<&'a Grid>)>,
) -> [u8; 32] {
    let mut strings: Vec<String> = pairs
        .into_iter()
        .map(|(i, o)| {
            let o = o.map_or_else(|| "hidden".to_string(), grid_hash);
            format!("{}|{o}", grid_hash(i))
        })
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

/// The hash of every pair of a variant.
fn hash_variant(v: &VariantPairs) -> [u8; 32] {
    open_variant_hash(
        v.0.iter()
            .map(|(i, o)| (i, Some(o)))
            .chain(v.1.iter().map(|(i, o)| (i, o.as_ref()))),
    )
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
    /// Test pairs without an output: kept as prediction-only rows (test tasks) or left out (training tasks).
    hidden: usize,
}

/// The RNG of task `index`: ChaCha8 seeded with `seed`, stream `index`.
fn task_rng(seed: u64, index: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index as u64);
    rng
}

/// Augments and encodes one task.
fn process_task(
    task: &SourcedTask,
    index: usize,
    num_aug: usize,
    seed: u64,
    canvas: usize,
) -> TaskOutput {
    let (original, hidden) = task_pairs(task);
    let mut rng = task_rng(seed, index);
    let (names, variants) = augment(&task.task.id, original, num_aug, &mut rng);
    let (train, test) = encode_variants(&variants, canvas, &mut rng);
    TaskOutput {
        names,
        train,
        test,
        hidden,
    }
}

/// The (train, test) pairs of a task: test pairs go to the test split only for test tasks, where one without an
/// output stays as a prediction-only pair; a training task's test pair without an output is left out. Also
/// returns the number of test pairs without an output.
fn task_pairs(t: &SourcedTask) -> (VariantPairs, usize) {
    let mut train_pairs: Vec<Pair> = Vec::new();
    let mut test_pairs: Vec<OpenPair> = Vec::new();
    let mut hidden = 0;
    for p in &t.task.train {
        if let Some(o) = &p.output {
            train_pairs.push((p.input.clone(), o.clone()));
        }
    }
    for p in &t.task.test {
        hidden += usize::from(p.output.is_none());
        match (&p.output, t.evaluation) {
            (_, true) => test_pairs.push((p.input.clone(), p.output.clone())),
            (Some(o), false) => train_pairs.push((p.input.clone(), o.clone())),
            (None, false) => {}
        }
    }
    ((train_pairs, test_pairs), hidden)
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
    seen.insert(hash_variant(&variants[0]));
    let (mut tmp, mut out) = (Vec::new(), Vec::new());
    for _ in 0..AUG_RETRIES_FACTOR * num_aug {
        let v = ArcVariant {
            dihedral: rng.random_range(0..8u8),
            colours: ColourMap::random(rng),
        };
        let mut map = |g: &Grid| apply_variant(g, &v, &mut tmp, &mut out);
        let tr: Vec<Pair> = variants[0]
            .0
            .iter()
            .map(|(i, o)| (map(i), map(o)))
            .collect();
        let te: Vec<OpenPair> = variants[0]
            .1
            .iter()
            .map(|(i, o)| (map(i), o.as_ref().map(&mut map)))
            .collect();
        let variant = (tr, te);
        if seen.insert(hash_variant(&variant)) {
            names.push(v.name(id));
            variants.push(variant);
        }
        if variants.len() > num_aug {
            break;
        }
    }
    (names, variants)
}

/// Encodes the variants: train examples are translated except one per variant; test examples never are; a
/// hidden test output is encoded as an all-PAD label (nothing supervised: a prediction-only row).
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
            match o {
                Some(o) => encode(o, 0, 0, &mut test.labels),
                None => test
                    .labels
                    .extend(std::iter::repeat_n(DATASET_IGNORE_LABEL, canvas * canvas)),
            }
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
    test_task: bool,
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
    if test_task {
        stats.hidden_test_outputs += out.hidden;
    } else {
        stats.hidden_left_out += out.hidden;
    }
    if out.names.len() < full {
        stats
            .short_groups
            .push((out.names[0].clone(), out.names.len()));
    }
    Ok(())
}

/// Builds an HRM ARC dataset at `out_dir` (spec 1.2-1.4) from the config's sources and returns its counts.
///
/// The tasks are read first (ids must be unique across sources), filtered by the config, then built by
/// [`build_arc_tasks`].
pub fn build_arc(config: &ArcBuildConfig, out_dir: &Path) -> Result<ArcBuildStats, DataError> {
    check_canvas(config.canvas)?;
    crate::budget::check_num_aug(config.num_aug)?;
    let (tasks, listed) = select_tasks(config)?;
    let selection = (config.canvas < ARC_CANVAS || config.evaluation_only || config.max_tasks > 0)
        .then(|| crate::layout::TaskSelection {
            canvas: config.canvas as u32,
            evaluation_only: config.evaluation_only,
            max_tasks: config.max_tasks as u32,
            evaluation_tasks: tasks.iter().filter(|t| t.evaluation).count() as u32,
            evaluation_tasks_listed: listed as u32,
        });
    build_arc_tasks(&tasks, config, selection, out_dir)
}

fn check_canvas(canvas: usize) -> Result<(), DataError> {
    if !(1..=ARC_CANVAS).contains(&canvas) {
        return Err(DataError::config(
            "canvas",
            format!("{canvas} is outside 1..={ARC_CANVAS}"),
        ));
    }
    Ok(())
}

/// Builds an HRM ARC dataset at `out_dir` from tasks already read (`config.sources` and its filters are not
/// used; ids must be unique and every grid must fit `config.canvas`), recording `selection` in `dataset.json`.
///
/// Tasks are processed in parallel; every task draws from its own ChaCha8 stream derived from
/// `(seed, task index)` and results are written in task order, so the files are byte-identical for
/// any thread count. Puzzle identifiers are assigned from 1 in order of first appearance (task order;
/// within a task, its train-split variants, whose names the test split shares). A variant with no
/// examples in a split adds no puzzle there, and a task with none adds no group. The dataset appears at
/// `out_dir` only when complete (see [`DatasetWriter`]).
pub fn build_arc_tasks(
    tasks: &[SourcedTask],
    config: &ArcBuildConfig,
    selection: Option<crate::layout::TaskSelection>,
    out_dir: &Path,
) -> Result<ArcBuildStats, DataError> {
    let canvas = config.canvas;
    check_canvas(canvas)?;
    crate::budget::check_num_aug(config.num_aug)?;
    crate::sources::check_unique_ids(tasks)?;
    if let Some(t) = tasks.iter().find(|t| !fits_canvas(&t.task, canvas)) {
        return Err(DataError::Task {
            path: t.path.clone(),
            msg: format!(
                "task {}: a grid does not fit the {canvas}x{canvas} canvas",
                t.task.id
            ),
        });
    }
    let seq_len = canvas * canvas;
    crate::budget::check_disk_space(out_dir, &plan_arc(tasks, config.num_aug, seq_len))?;
    let threads = crate::resolve_threads(config.threads)
        .min(tasks.len())
        .max(1);
    let mut writer = DatasetWriter::create(out_dir, seq_len)?;
    if let Some(selection) = selection {
        writer.set_selection(selection);
    }
    let mut ids = IdTable::new();
    let mut stats = ArcBuildStats {
        tasks: tasks.len(),
        ..Default::default()
    };
    let full = config.num_aug + 1;

    let next = AtomicUsize::new(0);
    let cancel = AtomicBool::new(false);
    let result: Result<(), DataError> = std::thread::scope(|scope| {
        let (tx, rx) = crossbeam_channel::bounded::<(usize, TaskOutput)>(threads * 2);
        for _ in 0..threads {
            let tx = tx.clone();
            let (next, cancel) = (&next, &cancel);
            scope.spawn(move || loop {
                if cancel.load(Ordering::Relaxed) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= tasks.len() {
                    break;
                }
                let out = process_task(&tasks[i], i, config.num_aug, config.seed, canvas);
                if tx.send((i, out)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let mut pending: BTreeMap<usize, TaskOutput> = BTreeMap::new();
        let mut written = 0usize;
        let run = (|| {
            while written < tasks.len() {
                let Ok((i, out)) = rx.recv() else {
                    break;
                };
                pending.insert(i, out);
                while let Some(out) = pending.remove(&written) {
                    let test_task = tasks[written].evaluation;
                    write_task(
                        &out,
                        &mut writer,
                        &mut ids,
                        &mut stats,
                        seq_len,
                        full,
                        test_task,
                    )?;
                    written += 1;
                }
            }
            if written < tasks.len() {
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
