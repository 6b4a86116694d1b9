//! HRM's on-disk dataset layout (spec 1.1): `identifiers.json`, `{train,test}/dataset.json` and the five
//! `all__*.npy` arrays; in-memory split data, an atomic dataset writer and a validating loader.
//! Follows the reference's `dataset/common.py`.

use crate::error::DataError;
use crate::npy::{read_npy, NpyWriter};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The name of the only set HRM datasets contain.
pub const SET_NAME: &str = "all";
/// The padding token id.
pub const PAD_ID: u8 = 0;
/// The label of an unsupervised position in the dataset encoding: `all__labels.npy`, `dataset.json`'s
/// `ignore_label_id` and a predictions folder's `labels.npy` use 0 (a PAD position).
///
/// The model's loss uses another encoding, -100 ([`crate::sampler::LOSS_IGNORE_LABEL`], the value of
/// `hrm_model::LOSS_IGNORE_LABEL`): the sampler maps one to the other when it builds a [`crate::HostBatch`].
pub const DATASET_IGNORE_LABEL: u8 = 0;
/// What a dataset folder may hold (the builders write these, TRM's layout adds `test_puzzles.json`): the only
/// entries `build-data --force` replaces.
pub const DATASET_ENTRIES: [&str; 5] = [
    "train",
    "test",
    "identifiers.json",
    "test_puzzles.json",
    BUILD_FILE,
];

/// The settings a dataset was built with (`hrm build-data`): a JSON object of the `data.*` keys the build
/// read (`task`, `num_aug`, `seed`, and per task `canvas`, `sources`, ...), so that a run can tell whether its
/// recipe's data section agrees with the dataset. Datasets built before it, or by other tools, have none.
pub const BUILD_FILE: &str = "build.json";

/// The name stored at index 0 of `identifiers.json`.
pub const BLANK_IDENTIFIER: &str = "<blank>";
/// The names of the five arrays of a split, in the order `all__<name>.npy`.
pub const ARRAY_NAMES: [&str; 5] = [
    "inputs",
    "labels",
    "puzzle_identifiers",
    "puzzle_indices",
    "group_indices",
];

/// The content of `{train,test}/dataset.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetMetadata {
    /// The padding token (0).
    pub pad_id: u32,
    /// The on-disk label value that is not supervised (0).
    pub ignore_label_id: u32,
    /// The puzzle identifier of padding rows (0).
    pub blank_identifier_id: u32,
    /// The number of token ids.
    pub vocab_size: u32,
    /// The sequence length S.
    pub seq_len: u32,
    /// The global number of puzzle identifiers, the same in train and test.
    pub num_puzzle_identifiers: u32,
    /// The number of groups in this split.
    pub total_groups: u32,
    /// Examples per puzzle in this split (N_examples / N_puzzles).
    pub mean_puzzle_examples: f64,
    /// The set names, always `["all"]`.
    pub sets: Vec<String>,
    /// Which tasks of its sources an ARC build kept, when it kept only some (a canvas under 30x30,
    /// evaluation tasks only, or a task cap). Absent in full builds, in other tasks and in older datasets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<TaskSelection>,
}

/// The task filters of an ARC build (the recipe's `data.canvas`, `data.eval_tasks_only`, `data.max_tasks`)
/// and what they left, as recorded in `dataset.json` so that a report can say which part of the benchmark
/// the dataset holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSelection {
    /// Side of the square canvas every grid of a kept task fits (30 keeps every task).
    pub canvas: u32,
    /// Only tasks from folders named `evaluation` were kept.
    pub evaluation_only: bool,
    /// At most this many tasks were kept, in listing order (0 = no cap).
    pub max_tasks: u32,
    /// The evaluation tasks kept: their test pairs form the test split.
    pub evaluation_tasks: u32,
    /// The evaluation tasks in the sources before the filters (400 for ARC-AGI-1, 120 for ARC-AGI-2).
    pub evaluation_tasks_listed: u32,
}

impl DatasetMetadata {
    /// Metadata with the fixed fields of spec 1.1 and the given sizes.
    pub fn new(
        vocab_size: u32,
        seq_len: u32,
        num_puzzle_identifiers: u32,
        total_groups: u32,
        mean_puzzle_examples: f64,
    ) -> Self {
        DatasetMetadata {
            pad_id: PAD_ID as u32,
            ignore_label_id: DATASET_IGNORE_LABEL as u32,
            blank_identifier_id: 0,
            vocab_size,
            seq_len,
            num_puzzle_identifiers,
            total_groups,
            mean_puzzle_examples,
            sets: vec![SET_NAME.to_string()],
            selection: None,
        }
    }
}

/// One split held in memory, in HRM's array form.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitData {
    /// The split's metadata.
    pub metadata: DatasetMetadata,
    /// Input tokens, [N_examples * seq_len] row-major.
    pub inputs: Vec<u8>,
    /// Label tokens ([`DATASET_IGNORE_LABEL`] = not supervised), [N_examples * seq_len] row-major.
    pub labels: Vec<u8>,
    /// The identifier of each puzzle, [N_puzzles].
    pub puzzle_identifiers: Vec<i32>,
    /// CSR offsets of examples per puzzle, [N_puzzles + 1].
    pub puzzle_indices: Vec<i32>,
    /// CSR offsets of puzzles per group, [N_groups + 1].
    pub group_indices: Vec<i32>,
}

impl SplitData {
    /// The sequence length S.
    pub fn seq_len(&self) -> usize {
        self.metadata.seq_len as usize
    }
    /// The number of examples N.
    pub fn num_examples(&self) -> usize {
        self.puzzle_indices.last().copied().unwrap_or(0) as usize
    }
    /// The number of puzzles P.
    pub fn num_puzzles(&self) -> usize {
        self.puzzle_identifiers.len()
    }
    /// The number of groups G.
    pub fn num_groups(&self) -> usize {
        self.group_indices.len().saturating_sub(1)
    }
    /// The input tokens of example `i`.
    pub fn input(&self, i: usize) -> &[u8] {
        let s = self.seq_len();
        &self.inputs[i * s..(i + 1) * s]
    }
    /// The label tokens of example `i`.
    pub fn label(&self, i: usize) -> &[u8] {
        let s = self.seq_len();
        &self.labels[i * s..(i + 1) * s]
    }
    /// The example range of puzzle `p`.
    pub fn puzzle_examples(&self, p: usize) -> std::ops::Range<usize> {
        self.puzzle_indices[p] as usize..self.puzzle_indices[p + 1] as usize
    }
    /// The puzzle range of group `g`.
    pub fn group_puzzles(&self, g: usize) -> std::ops::Range<usize> {
        self.group_indices[g] as usize..self.group_indices[g + 1] as usize
    }

    /// Checks that the arrays agree with the metadata and with each other; `dir` names the split folder
    /// in error messages.
    pub fn validate(&self, dir: &Path) -> Result<(), DataError> {
        validate_parts(
            dir,
            &self.metadata,
            TokenSummary::of(&self.inputs),
            TokenSummary::of(&self.labels),
            &self.puzzle_identifiers,
            &self.puzzle_indices,
            &self.group_indices,
        )
    }
}

/// Incrementally builds a [`SplitData`]: push examples, close puzzles, close groups.
#[derive(Debug, Clone)]
pub struct SplitBuilder {
    seq_len: usize,
    data: SplitData,
}

impl SplitBuilder {
    /// Starts an empty split with sequences of `seq_len` tokens.
    pub fn new(seq_len: usize) -> Self {
        SplitBuilder {
            seq_len,
            data: SplitData {
                metadata: DatasetMetadata::new(0, seq_len as u32, 0, 0, 0.0),
                inputs: Vec::new(),
                labels: Vec::new(),
                puzzle_identifiers: Vec::new(),
                puzzle_indices: vec![0],
                group_indices: vec![0],
            },
        }
    }

    /// Appends one example to the current puzzle.
    ///
    /// # Panics
    /// When `input` or `label` does not hold `seq_len` tokens (a programming error, not bad data).
    pub fn push_example(&mut self, input: &[u8], label: &[u8]) {
        assert_eq!(input.len(), self.seq_len, "input length must be seq_len");
        assert_eq!(label.len(), self.seq_len, "label length must be seq_len");
        self.data.inputs.extend_from_slice(input);
        self.data.labels.extend_from_slice(label);
    }

    /// Closes the current puzzle (the examples pushed since the last close) with identifier `id`.
    pub fn end_puzzle(&mut self, id: i32) {
        let n = (self.data.inputs.len() / self.seq_len.max(1)) as i32;
        self.data.puzzle_indices.push(n);
        self.data.puzzle_identifiers.push(id);
    }

    /// Closes the current group (the puzzles closed since the last group).
    pub fn end_group(&mut self) {
        let p = self.data.puzzle_identifiers.len() as i32;
        self.data.group_indices.push(p);
    }

    /// Finishes the split with its vocabulary size and the global identifier count.
    pub fn finish(mut self, vocab_size: u32, num_puzzle_identifiers: u32) -> SplitData {
        let n = self.data.num_examples();
        let p = self.data.num_puzzles();
        self.data.metadata = DatasetMetadata::new(
            vocab_size,
            self.seq_len as u32,
            num_puzzle_identifiers,
            self.data.num_groups() as u32,
            if p == 0 { 0.0 } else { n as f64 / p as f64 },
        );
        self.data
    }
}

/// The path of array `name` (one of [`ARRAY_NAMES`]) of a split folder: `<split_dir>/all__<name>.npy`.
pub fn array_path(split_dir: &Path, name: &str) -> PathBuf {
    npy_path(split_dir, name)
}

fn npy_path(split_dir: &Path, name: &str) -> PathBuf {
    split_dir.join(format!("{SET_NAME}__{name}.npy"))
}

/// Checks a CSR offsets array: starts at 0, never decreases, ends at `total`.
fn check_offsets(path: &Path, field: &str, offs: &[i32], total: usize) -> Result<(), DataError> {
    if offs.first() != Some(&0) {
        return Err(DataError::invalid(path, field, "first offset is not 0"));
    }
    if let Some(i) = offs.windows(2).position(|w| w[1] < w[0]) {
        return Err(DataError::invalid(
            path,
            field,
            format!(
                "offsets decrease at index {} ({} then {})",
                i + 1,
                offs[i],
                offs[i + 1]
            ),
        ));
    }
    let last = *offs.last().unwrap_or(&0);
    if last < 0 || last as usize != total {
        return Err(DataError::invalid(
            path,
            field,
            format!("last offset is {last}, expected {total}"),
        ));
    }
    Ok(())
}

/// What the validation needs of a token array: its length and its largest token with where it first occurs,
/// so that a split streamed to disk is checked like one held in memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct TokenSummary {
    len: usize,
    /// The largest token and its first index.
    max: Option<(u8, usize)>,
}

impl TokenSummary {
    fn of(tokens: &[u8]) -> Self {
        let mut summary = TokenSummary::default();
        summary.push(tokens);
        summary
    }

    fn push(&mut self, tokens: &[u8]) {
        if let Some(&m) = tokens.iter().max() {
            if self.max.is_none_or(|(cur, _)| m > cur) {
                let i = tokens.iter().position(|&t| t == m).unwrap_or(0);
                self.max = Some((m, self.len + i));
            }
        }
        self.len += tokens.len();
    }
}

/// The validation shared by in-memory, loaded and streamed splits.
fn validate_parts(
    dir: &Path,
    meta: &DatasetMetadata,
    inputs: TokenSummary,
    labels: TokenSummary,
    ids: &[i32],
    pi: &[i32],
    gi: &[i32],
) -> Result<(), DataError> {
    check_metadata(dir, meta)?;
    let s = meta.seq_len as usize;
    for (name, tokens) in [("inputs", inputs), ("labels", labels)] {
        check_tokens(dir, meta, name, tokens)?;
    }
    let n = inputs.len / s;
    if labels.len / s != n {
        return Err(DataError::invalid(
            npy_path(dir, "labels"),
            "labels",
            format!("{} examples, but inputs has {n}", labels.len / s),
        ));
    }
    check_index(dir, meta, n, ids, pi, gi)
}

/// Checks the fixed fields of `dataset.json`: a positive `seq_len`, `vocab_size` in 1..=256, `sets`.
fn check_metadata(dir: &Path, meta: &DatasetMetadata) -> Result<(), DataError> {
    let json = dir.join("dataset.json");
    if meta.seq_len == 0 {
        return Err(DataError::invalid(&json, "seq_len", "must be positive"));
    }
    if meta.vocab_size == 0 || meta.vocab_size > 256 {
        return Err(DataError::invalid(
            &json,
            "vocab_size",
            format!("{} is not in 1..=256", meta.vocab_size),
        ));
    }
    if meta.sets != [SET_NAME] {
        return Err(DataError::invalid(
            &json,
            "sets",
            format!("expected [\"all\"], found {:?}", meta.sets),
        ));
    }
    Ok(())
}

/// Checks that token array `name` is whole rows of `seq_len` tokens, all below `vocab_size`.
fn check_tokens(
    dir: &Path,
    meta: &DatasetMetadata,
    name: &str,
    tokens: TokenSummary,
) -> Result<(), DataError> {
    let s = meta.seq_len as usize;
    let path = npy_path(dir, name);
    let len = tokens.len;
    if !len.is_multiple_of(s) {
        return Err(DataError::invalid(
            &path,
            name,
            format!("{len} tokens are not whole rows of seq_len {s}"),
        ));
    }
    if let Some((t, i)) = tokens.max.filter(|&(t, _)| u32::from(t) >= meta.vocab_size) {
        return Err(DataError::invalid(
            &path,
            name,
            format!(
                "token {t} at example {}, position {} is not below vocab_size {}",
                i / s,
                i % s,
                meta.vocab_size
            ),
        ));
    }
    Ok(())
}

/// Checks the CSR offsets, `total_groups`, the identifiers and `mean_puzzle_examples` against `n` examples.
fn check_index(
    dir: &Path,
    meta: &DatasetMetadata,
    n: usize,
    ids: &[i32],
    pi: &[i32],
    gi: &[i32],
) -> Result<(), DataError> {
    let json = dir.join("dataset.json");
    let p = ids.len();
    let pi_path = npy_path(dir, "puzzle_indices");
    if pi.len() != p + 1 {
        return Err(DataError::invalid(
            &pi_path,
            "puzzle_indices",
            format!("length {}, expected puzzles + 1 = {}", pi.len(), p + 1),
        ));
    }
    check_offsets(&pi_path, "puzzle_indices", pi, n)?;
    let gi_path = npy_path(dir, "group_indices");
    check_offsets(&gi_path, "group_indices", gi, p)?;
    let g = gi.len() - 1;
    if g != meta.total_groups as usize {
        return Err(DataError::invalid(
            &json,
            "total_groups",
            format!("{} but group_indices holds {g} groups", meta.total_groups),
        ));
    }
    if let Some(i) = ids
        .iter()
        .position(|&id| id < 0 || id as u32 >= meta.num_puzzle_identifiers)
    {
        return Err(DataError::invalid(
            npy_path(dir, "puzzle_identifiers"),
            "puzzle_identifiers",
            format!(
                "identifier {} of puzzle {i} is not below num_puzzle_identifiers {}",
                ids[i], meta.num_puzzle_identifiers
            ),
        ));
    }
    let mean = if p == 0 { 0.0 } else { n as f64 / p as f64 };
    if (meta.mean_puzzle_examples - mean).abs() > 1e-6 * mean.max(1.0) {
        return Err(DataError::invalid(
            &json,
            "mean_puzzle_examples",
            format!(
                "{} but the arrays give {n} / {p} = {mean}",
                meta.mean_puzzle_examples
            ),
        ));
    }
    Ok(())
}

/// Reads and parses a JSON file.
pub(crate) fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, DataError> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| DataError::Json {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })
}

/// Reads `<dir>/<split>/dataset.json`.
///
/// Refuses a folder named like a build's temporary folder (see [`temp_folder_owner`]).
pub fn load_metadata(dir: &Path, split: &str) -> Result<DatasetMetadata, DataError> {
    check_not_temp_folder(dir)?;
    read_json(&dir.join(split).join("dataset.json"))
}

/// Reads `<dir>/identifiers.json` (index 0 is `"<blank>"`).
///
/// Refuses a folder named like a build's temporary folder (see [`temp_folder_owner`]).
pub fn load_identifiers(dir: &Path) -> Result<Vec<String>, DataError> {
    check_not_temp_folder(dir)?;
    let path = dir.join("identifiers.json");
    let ids: Vec<String> = read_json(&path)?;
    if ids.first().map(String::as_str) != Some(BLANK_IDENTIFIER) {
        return Err(DataError::invalid(
            &path,
            "identifiers[0]",
            "index 0 must be \"<blank>\"",
        ));
    }
    Ok(ids)
}

fn expect_shape(
    path: &Path,
    name: &str,
    shape: &[usize],
    expected: &[Option<usize>],
) -> Result<(), DataError> {
    let ok = shape.len() == expected.len()
        && shape
            .iter()
            .zip(expected)
            .all(|(s, e)| e.is_none_or(|e| e == *s));
    if ok {
        Ok(())
    } else {
        let exp: Vec<String> = expected
            .iter()
            .map(|e| e.map_or("?".to_string(), |v| v.to_string()))
            .collect();
        Err(DataError::invalid(
            path,
            name,
            format!("shape {shape:?}, expected [{}]", exp.join(", ")),
        ))
    }
}

/// Loads and validates `<dir>/<split>/` (split is `"train"` or `"test"`).
///
/// Refuses, with an error naming the file and field, when an array's shape, dtype or content disagrees
/// with `dataset.json` or with another array: input/label shapes [N, seq_len], CSR offsets starting at 0,
/// non-decreasing and ending at the lengths they index, tokens below `vocab_size`, identifiers below
/// `num_puzzle_identifiers`, `total_groups` and `mean_puzzle_examples` matching the arrays.
pub fn load_split(dir: &Path, split: &str) -> Result<SplitData, DataError> {
    let sdir = dir.join(split);
    let metadata = load_metadata(dir, split)?;
    let s = Some(metadata.seq_len as usize);
    let load_u8 = |name: &str| -> Result<Vec<u8>, DataError> {
        let path = npy_path(&sdir, name);
        let a = read_npy::<u8>(&path)?;
        expect_shape(&path, name, &a.shape, &[None, s])?;
        Ok(a.data)
    };
    let puzzle_identifiers = load_i32(&sdir, "puzzle_identifiers", None)?;
    let puzzle_indices = load_i32(&sdir, "puzzle_indices", Some(puzzle_identifiers.len() + 1))?;
    let groups = Some(metadata.total_groups as usize + 1);
    let group_indices = load_i32(&sdir, "group_indices", groups)?;
    let inputs = load_u8("inputs")?;
    let labels = load_u8("labels")?;
    let data = SplitData {
        metadata,
        inputs,
        labels,
        puzzle_identifiers,
        puzzle_indices,
        group_indices,
    };
    data.validate(&sdir)?;
    check_identifier_count(dir, split, &data.metadata)?;
    Ok(data)
}

/// Checks that `num_puzzle_identifiers` of `<dir>/<split>/dataset.json` is the length of
/// `<dir>/identifiers.json` (the builders write both from one list; a disagreement means the folder
/// was assembled from two datasets or edited by hand).
fn check_identifier_count(
    dir: &Path,
    split: &str,
    meta: &DatasetMetadata,
) -> Result<(), DataError> {
    let ids = load_identifiers(dir)?;
    if ids.len() != meta.num_puzzle_identifiers as usize {
        let json = dir.join(split).join("dataset.json");
        return Err(DataError::invalid(
            &json,
            "num_puzzle_identifiers",
            format!(
                "{} in {}, but {} holds {} names",
                meta.num_puzzle_identifiers,
                json.display(),
                dir.join("identifiers.json").display(),
                ids.len()
            ),
        ));
    }
    Ok(())
}

/// The files a dataset fingerprint covers, relative to the dataset folder, in hashing order.
pub fn fingerprint_files() -> Vec<PathBuf> {
    let mut files = vec![
        PathBuf::from("identifiers.json"),
        PathBuf::from("test/dataset.json"),
    ];
    for name in ARRAY_NAMES {
        files.push(Path::new("test").join(format!("{SET_NAME}__{name}.npy")));
    }
    files
}

/// The fingerprint of a dataset folder: `sha256:` and the hex SHA-256 of `identifiers.json`, the test
/// split's `dataset.json` and its five arrays (each file's relative path, byte length and bytes, in the
/// order of [`fingerprint_files`]). Predictions record it so that they are scored only against the
/// dataset they were made on. The files are streamed, never held whole.
pub fn dataset_fingerprint(dir: &Path) -> Result<String, DataError> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    check_not_temp_folder(dir)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    for rel in fingerprint_files() {
        let path = dir.join(&rel);
        let mut f = std::fs::File::open(&path).map_err(|e| DataError::io(&path, e))?;
        let len = f.metadata().map_err(|e| DataError::io(&path, e))?.len();
        hasher.update(rel.to_string_lossy().as_bytes());
        hasher.update([0u8]);
        hasher.update(len.to_le_bytes());
        loop {
            let n = f.read(&mut buf).map_err(|e| DataError::io(&path, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
    }
    let digest = hasher.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("sha256:{hex}"))
}

/// Reads the 1-D int32 array `name` of a split folder, of length `len` when given.
fn load_i32(split_dir: &Path, name: &str, len: Option<usize>) -> Result<Vec<i32>, DataError> {
    let path = npy_path(split_dir, name);
    let a = read_npy::<i32>(&path)?;
    expect_shape(&path, name, &a.shape, &[len])?;
    Ok(a.data)
}

/// The puzzle-level index of a split, read without its token arrays: which puzzle id owns which examples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PuzzleIndex {
    /// The identifier of each puzzle, [N_puzzles].
    pub puzzle_identifiers: Vec<i32>,
    /// CSR offsets of examples per puzzle, [N_puzzles + 1].
    pub puzzle_indices: Vec<i32>,
}

impl PuzzleIndex {
    /// The example range of puzzle `p`.
    pub fn puzzle_examples(&self, p: usize) -> std::ops::Range<usize> {
        self.puzzle_indices[p] as usize..self.puzzle_indices[p + 1] as usize
    }
}

/// Reads the puzzle index of `<dir>/<split>/` (identifiers and offsets, checked as [`load_split`] checks them:
/// offsets start at 0, never decrease and end at the example count of `all__inputs.npy`), leaving the token
/// arrays on disk.
pub fn load_puzzle_index(dir: &Path, split: &str) -> Result<PuzzleIndex, DataError> {
    check_not_temp_folder(dir)?;
    let sdir = dir.join(split);
    let puzzle_identifiers = load_i32(&sdir, "puzzle_identifiers", None)?;
    let puzzle_indices = load_i32(&sdir, "puzzle_indices", Some(puzzle_identifiers.len() + 1))?;
    let inputs = crate::npy::read_npy_header(&npy_path(&sdir, "inputs"))?;
    let examples = inputs.shape.first().copied().unwrap_or(0);
    let pi_path = npy_path(&sdir, "puzzle_indices");
    check_offsets(&pi_path, "puzzle_indices", &puzzle_indices, examples)?;
    Ok(PuzzleIndex {
        puzzle_identifiers,
        puzzle_indices,
    })
}

/// Streams one split to disk: examples go straight to the `.npy` writers, offsets stay in memory.
pub struct SplitWriter {
    dir: PathBuf,
    seq_len: usize,
    inputs: NpyWriter<u8>,
    labels: NpyWriter<u8>,
    input_tokens: TokenSummary,
    label_tokens: TokenSummary,
    examples: usize,
    puzzle_identifiers: Vec<i32>,
    puzzle_indices: Vec<i32>,
    group_indices: Vec<i32>,
}

impl SplitWriter {
    fn create(dir: PathBuf, seq_len: usize) -> Result<Self, DataError> {
        std::fs::create_dir_all(&dir).map_err(|e| DataError::io(&dir, e))?;
        Ok(SplitWriter {
            inputs: NpyWriter::create(&npy_path(&dir, "inputs"), &[seq_len])?,
            labels: NpyWriter::create(&npy_path(&dir, "labels"), &[seq_len])?,
            dir,
            seq_len,
            input_tokens: TokenSummary::default(),
            label_tokens: TokenSummary::default(),
            examples: 0,
            puzzle_identifiers: Vec::new(),
            puzzle_indices: vec![0],
            group_indices: vec![0],
        })
    }

    /// Appends one example (both slices `seq_len` tokens) to the current puzzle.
    pub fn push_example(&mut self, input: &[u8], label: &[u8]) -> Result<(), DataError> {
        if input.len() != self.seq_len || label.len() != self.seq_len {
            return Err(DataError::invalid(
                &self.dir,
                "inputs",
                format!(
                    "example of {} / {} tokens, expected {}",
                    input.len(),
                    label.len(),
                    self.seq_len
                ),
            ));
        }
        self.push_tokens(input, label)?;
        self.examples += 1;
        Ok(())
    }

    /// Appends many examples at once (`inputs.len() == labels.len()`, a multiple of `seq_len`).
    pub fn push_examples(&mut self, inputs: &[u8], labels: &[u8]) -> Result<(), DataError> {
        if inputs.len() != labels.len() || !inputs.len().is_multiple_of(self.seq_len) {
            return Err(DataError::invalid(
                &self.dir,
                "inputs",
                "example block is not whole rows",
            ));
        }
        self.push_tokens(inputs, labels)?;
        self.examples += inputs.len() / self.seq_len;
        Ok(())
    }

    fn push_tokens(&mut self, inputs: &[u8], labels: &[u8]) -> Result<(), DataError> {
        self.inputs.push(inputs)?;
        self.labels.push(labels)?;
        self.input_tokens.push(inputs);
        self.label_tokens.push(labels);
        Ok(())
    }

    /// Closes the current puzzle with identifier `id`.
    pub fn end_puzzle(&mut self, id: i32) {
        self.puzzle_indices.push(self.examples as i32);
        self.puzzle_identifiers.push(id);
    }

    /// Closes the current group.
    pub fn end_group(&mut self) {
        self.group_indices
            .push(self.puzzle_identifiers.len() as i32);
    }

    /// The counts written so far: (groups, puzzles, examples).
    pub fn counts(&self) -> (usize, usize, usize) {
        (
            self.group_indices.len() - 1,
            self.puzzle_identifiers.len(),
            self.examples,
        )
    }

    fn finish(
        self,
        vocab_size: u32,
        num_ids: u32,
        selection: Option<TaskSelection>,
    ) -> Result<DatasetMetadata, DataError> {
        let n = self.examples;
        let p = self.puzzle_identifiers.len();
        let mut meta = DatasetMetadata::new(
            vocab_size,
            self.seq_len as u32,
            num_ids,
            (self.group_indices.len() - 1) as u32,
            if p == 0 { 0.0 } else { n as f64 / p as f64 },
        );
        meta.selection = selection;
        validate_parts(
            &self.dir,
            &meta,
            self.input_tokens,
            self.label_tokens,
            &self.puzzle_identifiers,
            &self.puzzle_indices,
            &self.group_indices,
        )?;
        let pi_path = npy_path(&self.dir, "puzzle_indices");
        self.inputs.finish()?;
        self.labels.finish()?;
        crate::npy::write_npy(
            &npy_path(&self.dir, "puzzle_identifiers"),
            &[p],
            &self.puzzle_identifiers,
        )?;
        crate::npy::write_npy(&pi_path, &[p + 1], &self.puzzle_indices)?;
        crate::npy::write_npy(
            &npy_path(&self.dir, "group_indices"),
            &[self.group_indices.len()],
            &self.group_indices,
        )?;
        write_json(&self.dir.join("dataset.json"), &meta)?;
        Ok(meta)
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), DataError> {
    let text = serde_json::to_string(value).map_err(|e| DataError::Json {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })?;
    crate::fsutil::write_atomic(path, text.as_bytes())
}

/// Writes a whole dataset folder atomically.
///
/// Everything is written into a hidden temporary sibling of `out_dir` (`.<name>.building-<pid>`); only
/// [`DatasetWriter::commit`] moves it to `out_dir`, replacing an existing dataset there. Dropping the
/// writer without committing removes the temporary folder, so a failed build leaves nothing behind.
pub struct DatasetWriter {
    /// The staging folder (taken by `commit`; dropped, and so removed, with an uncommitted writer).
    staged: Option<StagedDir>,
    train: Option<SplitWriter>,
    test: Option<SplitWriter>,
    selection: Option<TaskSelection>,
}

/// A folder written in a hidden sibling of its destination and swapped into place only when complete:
/// the one replace-on-commit path of the workspace (datasets, predictions folders, reports).
///
/// [`StagedDir::create`] removes the litter of dead processes next to `out` (see
/// [`remove_stale_temp_folders`]) and creates `.<name>.building-<pid>`; [`StagedDir::commit`] moves it to
/// `out`, replacing an existing folder there (moved aside to `.<name>.old-<pid>`, then deleted; moved back
/// if the swap fails). Dropping it uncommitted removes the staging folder, so an existing `out` is left
/// untouched by a failed write.
#[derive(Debug)]
pub struct StagedDir {
    out: PathBuf,
    tmp: PathBuf,
    committed: bool,
}

impl StagedDir {
    /// Creates the staging folder of `out` (and `out`'s parent if needed).
    pub fn create(out: &Path) -> Result<Self, DataError> {
        let name = out
            .file_name()
            .ok_or_else(|| {
                DataError::config("out_dir", format!("{} has no folder name", out.display()))
            })?
            .to_string_lossy()
            .into_owned();
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(|e| DataError::io(&parent, e))?;
        remove_stale_temp_folders(&parent, &name)?;
        let tmp = parent.join(temp_folder_name(
            &name,
            TempKind::Building,
            std::process::id(),
        ));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| DataError::io(&tmp, e))?;
        }
        std::fs::create_dir_all(&tmp).map_err(|e| DataError::io(&tmp, e))?;
        Ok(StagedDir {
            out: out.to_path_buf(),
            tmp,
            committed: false,
        })
    }

    /// The staging folder to write into.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// The destination.
    pub fn out(&self) -> &Path {
        &self.out
    }

    /// Swaps the staging folder into place.
    pub fn commit(mut self) -> Result<(), DataError> {
        replace_dir(&self.tmp, &self.out)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

impl DatasetWriter {
    /// Creates the temporary folder and the two split writers for sequences of `seq_len` tokens.
    pub fn create(out_dir: &Path, seq_len: usize) -> Result<Self, DataError> {
        let staged = StagedDir::create(out_dir)?;
        let tmp_dir = staged.path().to_path_buf();
        let mut w = DatasetWriter {
            staged: Some(staged),
            train: None,
            test: None,
            selection: None,
        };
        w.train = Some(SplitWriter::create(tmp_dir.join("train"), seq_len)?);
        w.test = Some(SplitWriter::create(tmp_dir.join("test"), seq_len)?);
        Ok(w)
    }

    /// Records the task filters of the build in both splits' `dataset.json` (see [`TaskSelection`]).
    pub fn set_selection(&mut self, selection: TaskSelection) {
        self.selection = Some(selection);
    }

    /// The train and test split writers.
    pub fn splits(&mut self) -> (&mut SplitWriter, &mut SplitWriter) {
        match (self.train.as_mut(), self.test.as_mut()) {
            (Some(a), Some(b)) => (a, b),
            _ => unreachable!("split writers exist until commit"),
        }
    }

    /// Finishes both splits, writes `identifiers.json` and renames the folder into place.
    ///
    /// `identifiers[0]` must be `"<blank>"`; its length becomes `num_puzzle_identifiers` of both splits.
    /// Returns the train and test metadata.
    pub fn commit(
        mut self,
        identifiers: &[String],
        vocab_size: u32,
    ) -> Result<(DatasetMetadata, DatasetMetadata), DataError> {
        let staged = match self.staged.take() {
            Some(s) => s,
            None => unreachable!("the staging folder exists until commit"),
        };
        let ids_path = staged.out().join("identifiers.json");
        if identifiers.first().map(String::as_str) != Some(BLANK_IDENTIFIER) {
            return Err(DataError::invalid(
                &ids_path,
                "identifiers[0]",
                "index 0 must be \"<blank>\"",
            ));
        }
        let num_ids = identifiers.len() as u32;
        let (train, test) = match (self.train.take(), self.test.take()) {
            (Some(a), Some(b)) => (a, b),
            _ => unreachable!("split writers exist until commit"),
        };
        let train_meta = train.finish(vocab_size, num_ids, self.selection.clone())?;
        let test_meta = test.finish(vocab_size, num_ids, self.selection.clone())?;
        write_json(&staged.path().join("identifiers.json"), &identifiers)?;
        staged.commit()?;
        Ok((train_meta, test_meta))
    }
}

impl Drop for DatasetWriter {
    fn drop(&mut self) {
        // The split writers remove their own temporary files; then the folder goes.
        self.train = None;
        self.test = None;
        self.staged = None;
    }
}

/// Moves `tmp` to `out`, replacing an existing `out` (which is first moved aside, then deleted).
///
/// The old folder is moved back when the new one cannot be moved into place, so `out` always holds
/// either the old content or the new one; an old folder that cannot be deleted is left as
/// `.<name>.old-<pid>`, which the next build into the same parent removes.
fn replace_dir(tmp: &Path, out: &Path) -> Result<(), DataError> {
    if out.exists() {
        let name = out
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let old = out.with_file_name(temp_folder_name(&name, TempKind::Old, std::process::id()));
        std::fs::rename(out, &old).map_err(|e| DataError::io(out, e))?;
        if let Err(e) = std::fs::rename(tmp, out) {
            let _ = std::fs::rename(&old, out);
            return Err(DataError::io(out, e));
        }
        std::fs::remove_dir_all(&old).map_err(|e| DataError::io(&old, e))?;
    } else {
        std::fs::rename(tmp, out).map_err(|e| DataError::io(out, e))?;
    }
    Ok(())
}

/// Writes a dataset from in-memory splits, atomically (see [`DatasetWriter`]).
///
/// The metadata of both splits is recomputed from the arrays; `vocab_size` is taken from `train`.
pub fn write_dataset(
    out_dir: &Path,
    identifiers: &[String],
    train: &SplitData,
    test: &SplitData,
) -> Result<(), DataError> {
    let seq_len = train.seq_len();
    if test.seq_len() != seq_len || test.metadata.vocab_size != train.metadata.vocab_size {
        return Err(DataError::invalid(
            out_dir.join("test/dataset.json"),
            "seq_len",
            "train and test disagree on seq_len or vocab_size",
        ));
    }
    train.validate(&out_dir.join("train"))?;
    test.validate(&out_dir.join("test"))?;
    let mut w = DatasetWriter::create(out_dir, seq_len)?;
    let (tw, sw) = w.splits();
    for (data, sw) in [(train, tw), (test, sw)] {
        let s = seq_len;
        for g in 0..data.num_groups() {
            for p in data.group_puzzles(g) {
                let r = data.puzzle_examples(p);
                sw.push_examples(
                    &data.inputs[r.start * s..r.end * s],
                    &data.labels[r.start * s..r.end * s],
                )?;
                sw.end_puzzle(data.puzzle_identifiers[p]);
            }
            sw.end_group();
        }
    }
    w.commit(identifiers, train.metadata.vocab_size)?;
    Ok(())
}

/// The two kinds of temporary sibling a dataset build makes next to its output folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TempKind {
    /// `.<name>.building-<pid>`: the dataset being written.
    Building,
    /// `.<name>.old-<pid>`: the replaced dataset, moved aside just before it is deleted.
    Old,
}

impl TempKind {
    fn tag(self) -> &'static str {
        match self {
            TempKind::Building => "building",
            TempKind::Old => "old",
        }
    }
}

/// The name of a build's temporary sibling of the output folder `name`, owned by process `pid`.
pub fn temp_folder_name(name: &str, kind: TempKind, pid: u32) -> String {
    format!(".{name}.{}-{pid}", kind.tag())
}

/// When `file_name` is a build's temporary folder name (`.<name>.building-<pid>` or `.<name>.old-<pid>`),
/// returns the output name, the kind and the owning process id.
pub fn temp_folder_owner(file_name: &str) -> Option<(&str, TempKind, u32)> {
    let rest = file_name.strip_prefix('.')?;
    let (name, tail) = rest.rsplit_once('.')?;
    if name.is_empty() {
        return None;
    }
    for kind in [TempKind::Building, TempKind::Old] {
        if let Some(pid) = tail
            .strip_prefix(kind.tag())
            .and_then(|t| t.strip_prefix('-'))
        {
            if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) {
                return pid.parse().ok().map(|pid| (name, kind, pid));
            }
        }
    }
    None
}

/// Whether process `pid` may still be running: `/proc/<pid>` exists. Where there is no `/proc` (not
/// Linux) nothing can be told, and every process counts as alive, so nothing is ever removed.
pub fn process_alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return true;
    }
    proc.join(pid.to_string()).exists()
}

/// Removes the temporary siblings of output folder `name` in `parent` (`.<name>.building-<pid>`,
/// `.<name>.old-<pid>`) whose process is no longer alive: the litter of a killed build. Folders of
/// a live process (a build running now) are kept. Returns the removed folders.
pub fn remove_stale_temp_folders(parent: &Path, name: &str) -> Result<Vec<PathBuf>, DataError> {
    let mut removed = Vec::new();
    let entries = match std::fs::read_dir(parent) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
        Err(e) => return Err(DataError::io(parent, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| DataError::io(parent, e))?;
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        let Some((owner, _, pid)) = temp_folder_owner(file_name) else {
            continue;
        };
        if owner != name || process_alive(pid) {
            continue;
        }
        let path = entry.path();
        std::fs::remove_dir_all(&path).map_err(|e| DataError::io(&path, e))?;
        removed.push(path);
    }
    Ok(removed)
}

/// Refuses a dataset path whose folder name is a build's temporary folder: such a folder is being
/// written, or was left by a killed build, and is never a complete dataset.
fn check_not_temp_folder(dir: &Path) -> Result<(), DataError> {
    let Some(file_name) = dir.file_name().and_then(|n| n.to_str()) else {
        return Ok(());
    };
    match temp_folder_owner(file_name) {
        Some((name, kind, pid)) => Err(DataError::invalid(
            dir,
            "folder name",
            format!(
                "is the temporary folder of a dataset build (`{name}`, {} by process {pid}), not a \
                 dataset: use the finished folder `{name}` next to it, or rebuild it",
                match kind {
                    TempKind::Building => "being written",
                    TempKind::Old => "an old copy being deleted",
                }
            ),
        )),
        None => Ok(()),
    }
}

/// Writes [`BUILD_FILE`] into the dataset folder `dir` (atomically; the dataset itself is complete already).
pub fn write_build_record(dir: &Path, record: &serde_json::Value) -> Result<(), DataError> {
    let mut text =
        serde_json::to_string_pretty(record).map_err(|e| json_error(&dir.join(BUILD_FILE), e))?;
    text.push('\n');
    crate::write_atomic(&dir.join(BUILD_FILE), text.as_bytes())
}

/// Reads [`BUILD_FILE`] of a dataset folder: `None` when the dataset has none; a file that is not a JSON
/// object is refused, naming it.
pub fn read_build_record(
    dir: &Path,
) -> Result<Option<serde_json::Map<String, serde_json::Value>>, DataError> {
    let path = dir.join(BUILD_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(DataError::io(&path, e)),
    };
    match serde_json::from_str(&text) {
        Ok(serde_json::Value::Object(map)) => Ok(Some(map)),
        Ok(_) => Err(json_error(&path, "not a JSON object of build settings")),
        Err(e) => Err(json_error(&path, e)),
    }
}

fn json_error(path: &Path, msg: impl ToString) -> DataError {
    DataError::Json {
        path: path.to_path_buf(),
        msg: msg.to_string(),
    }
}
