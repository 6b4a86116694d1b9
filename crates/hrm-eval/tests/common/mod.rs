//! Shared fixtures for the hrm-eval integration tests: tiny ARC, Sudoku and Maze dataset folders
//! in HRM's on-disk layout, and predictions built from chosen answers.

#![allow(dead_code)]

use std::path::Path;

use hrm_augment::colour::ColourMap;
use hrm_augment::variant::ArcVariant;
use hrm_data::npy::write_npy;
use hrm_eval::predictions::{Predictions, PredictionsMeta, SegmentTrace};
use hrm_eval::TaskFamily;
use hrm_grid::codec::{encode_arc, ARC_SEQ_LEN};
use hrm_grid::Grid;

/// A grid from rows (panics on bad input; fixtures only).
pub fn grid(rows: &[&[u8]]) -> Grid {
    Grid::from_rows(&rows.iter().map(|r| r.to_vec()).collect::<Vec<_>>()).unwrap()
}

/// A variant from a dihedral id and a 10-digit colour map.
pub fn variant(dihedral: u8, digits: &str) -> ArcVariant {
    ArcVariant {
        dihedral,
        colours: ColourMap::from_digits(digits).unwrap(),
    }
}

/// One ARC task of a fixture: demonstrations and test pairs (un-augmented).
pub struct FixtureTask {
    pub name: String,
    pub demos: Vec<(Grid, Grid)>,
    pub tests: Vec<(Grid, Grid)>,
    /// The augmented variants present in the test split (besides the original).
    pub variants: Vec<ArcVariant>,
}

/// Where each test-split puzzle of a fixture sits: (task index, variant or None, puzzle id).
pub struct ArcFixture {
    pub identifiers: Vec<String>,
    pub puzzles: Vec<(usize, Option<ArcVariant>, i32)>,
}

fn write_json(path: &Path, value: &serde_json::Value) {
    std::fs::write(path, serde_json::to_string_pretty(value).unwrap()).unwrap();
}

fn write_split(
    dir: &Path,
    vocab: usize,
    seq_len: usize,
    examples: &[(Vec<u8>, Vec<u8>)],
    puzzles: &[(i32, usize)],
    num_ids: usize,
) {
    std::fs::create_dir_all(dir).unwrap();
    let n = examples.len();
    let inputs: Vec<u8> = examples.iter().flat_map(|(i, _)| i.clone()).collect();
    let labels: Vec<u8> = examples.iter().flat_map(|(_, l)| l.clone()).collect();
    write_npy(&dir.join("all__inputs.npy"), &[n, seq_len], &inputs).unwrap();
    write_npy(&dir.join("all__labels.npy"), &[n, seq_len], &labels).unwrap();
    let ids: Vec<i32> = puzzles.iter().map(|p| p.0).collect();
    let mut idx = vec![0i32];
    for p in puzzles {
        idx.push(idx.last().unwrap() + p.1 as i32);
    }
    write_npy(&dir.join("all__puzzle_identifiers.npy"), &[ids.len()], &ids).unwrap();
    write_npy(&dir.join("all__puzzle_indices.npy"), &[idx.len()], &idx).unwrap();
    write_npy(
        &dir.join("all__group_indices.npy"),
        &[2],
        &[0i32, ids.len() as i32],
    )
    .unwrap();
    write_json(
        &dir.join("dataset.json"),
        &serde_json::json!({
            "pad_id": 0, "ignore_label_id": 0, "blank_identifier_id": 0,
            "vocab_size": vocab, "seq_len": seq_len,
            "num_puzzle_identifiers": num_ids, "total_groups": 1,
            "mean_puzzle_examples": 1.0, "sets": ["all"]
        }),
    );
}

/// Writes an ARC dataset folder: the test split holds each task's original puzzle followed by
/// its variants; the train split holds each original's demonstrations, translated by (1, 2).
pub fn write_arc_dataset(dir: &Path, tasks: &[FixtureTask]) -> ArcFixture {
    let mut identifiers = vec!["<blank>".to_string()];
    let mut puzzles = Vec::new();
    for (t, task) in tasks.iter().enumerate() {
        identifiers.push(task.name.clone());
        puzzles.push((t, None, (identifiers.len() - 1) as i32));
        for v in &task.variants {
            identifiers.push(v.name(&task.name));
            puzzles.push((t, Some(*v), (identifiers.len() - 1) as i32));
        }
    }
    write_json(
        &dir.join("identifiers.json"),
        &serde_json::to_value(&identifiers).unwrap(),
    );
    let mut examples = Vec::new();
    let mut split_puzzles = Vec::new();
    for (t, v, id) in &puzzles {
        for (input, output) in &tasks[*t].tests {
            let (i, o) = match v {
                Some(v) => (v.apply_grid(input), v.apply_grid(output)),
                None => (input.clone(), output.clone()),
            };
            examples.push((encode_arc(&i, 0, 0).unwrap(), encode_arc(&o, 0, 0).unwrap()));
        }
        split_puzzles.push((*id, tasks[*t].tests.len()));
    }
    write_split(
        &dir.join("test"),
        12,
        ARC_SEQ_LEN,
        &examples,
        &split_puzzles,
        identifiers.len(),
    );
    let mut examples = Vec::new();
    let mut split_puzzles = Vec::new();
    for (t, _, id) in puzzles.iter().filter(|p| p.1.is_none()) {
        for (input, output) in &tasks[*t].demos {
            examples.push((
                encode_arc(input, 1, 2).unwrap(),
                encode_arc(output, 1, 2).unwrap(),
            ));
        }
        split_puzzles.push((*id, tasks[*t].demos.len()));
    }
    write_split(
        &dir.join("train"),
        12,
        ARC_SEQ_LEN,
        &examples,
        &split_puzzles,
        identifiers.len(),
    );
    ArcFixture {
        identifiers,
        puzzles,
    }
}

/// A predicted answer in de-augmented space.
#[derive(Clone)]
pub enum Said {
    /// This grid (the fixture augments it for the row's variant).
    Grid(Grid),
    /// An all-PAD canvas, which does not crop to a grid.
    Empty,
}

/// One prediction row: the puzzle (index into `ArcFixture::puzzles`), the test pair, the answer and q.
pub struct Row {
    pub puzzle: usize,
    pub test: usize,
    pub said: Said,
    pub q: f32,
}

/// Builds ARC predictions from rows; the labels are the variant's true outputs.
pub fn arc_predictions(tasks: &[FixtureTask], fixture: &ArcFixture, rows: &[Row]) -> Predictions {
    let mut p = Predictions {
        meta: PredictionsMeta {
            dataset_fingerprint: None,
            task: Some(TaskFamily::Arc),
            num_segments: 2,
            checkpoint: "fixture.safetensors".into(),
            dataset: "fixture".into(),
        },
        seq_len: ARC_SEQ_LEN,
        inputs: Vec::new(),
        preds: Vec::new(),
        labels: Vec::new(),
        puzzle_identifiers: Vec::new(),
        q_halt_logits: Vec::new(),
        segments: None,
    };
    for row in rows {
        let (t, v, id) = &fixture.puzzles[row.puzzle];
        let aug = |g: &Grid| match v {
            Some(v) => v.apply_grid(g),
            None => g.clone(),
        };
        let (input, output) = &tasks[*t].tests[row.test];
        p.inputs.extend(encode_arc(&aug(input), 0, 0).unwrap());
        p.labels.extend(encode_arc(&aug(output), 0, 0).unwrap());
        match &row.said {
            Said::Grid(g) => p.preds.extend(encode_arc(&aug(g), 0, 0).unwrap()),
            Said::Empty => p.preds.extend(vec![0u8; ARC_SEQ_LEN]),
        }
        p.puzzle_identifiers.push(*id);
        p.q_halt_logits.push(row.q);
    }
    p
}

/// Adds a two-segment trace for the given rows: segment 1 is an all-PAD canvas, segment 2 the final prediction.
pub fn add_trace(p: &mut Predictions, rows: &[usize]) {
    let mut tokens = Vec::new();
    for &r in rows {
        tokens.extend(vec![0u8; p.seq_len]);
        tokens.extend_from_slice(p.pred(r));
    }
    p.segments = Some(SegmentTrace {
        rows: rows.to_vec(),
        num_segments: 2,
        tokens,
    });
}

/// Writes only `test/dataset.json` (enough for Sudoku and Maze evaluation).
pub fn write_meta_only_dataset(dir: &Path, vocab: usize, seq_len: usize) {
    write_split(&dir.join("test"), vocab, seq_len, &[], &[], 1);
}

/// Writes a dataset whose test split holds exactly the rows of `p` (one puzzle of id 0 per row), so that
/// the evaluator's row check finds every prediction row.
#[allow(dead_code)]
pub fn write_dataset_of(dir: &Path, vocab: usize, p: &Predictions) {
    let examples: Vec<(Vec<u8>, Vec<u8>)> = (0..p.len())
        .map(|i| (p.input(i).to_vec(), p.label(i).to_vec()))
        .collect();
    let puzzles: Vec<(i32, usize)> = (0..p.len()).map(|_| (0, 1)).collect();
    write_split(&dir.join("test"), vocab, p.seq_len, &examples, &puzzles, 1);
    write_json(
        &dir.join("identifiers.json"),
        &serde_json::json!(["<blank>"]),
    );
}

/// A colourful h x w grid whose colours follow `(a*r + b*c + k) mod 10`.
pub fn pattern(h: usize, w: usize, a: usize, b: usize, k: usize) -> Grid {
    let cells = (0..h * w)
        .map(|i| ((a * (i / w) + b * (i % w) + k) % 10) as u8)
        .collect();
    Grid::new(h, w, cells).unwrap()
}

/// A small ARC world for report tests: two tasks with demonstrations, augmented variants,
/// a solved task and an unsolved one, and a two-segment trace. Returns (dataset, predictions) dirs.
pub fn report_world(root: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let v1 = variant(1, "0825139674");
    let v2 = variant(5, "0312456789");
    let tasks = vec![
        FixtureTask {
            name: "0a1b2c3d".into(),
            demos: vec![
                (pattern(4, 5, 1, 2, 0), pattern(5, 4, 2, 1, 0)),
                (pattern(3, 6, 3, 1, 2), pattern(6, 3, 1, 3, 2)),
            ],
            tests: vec![(pattern(5, 6, 1, 1, 3), pattern(6, 5, 1, 1, 3))],
            variants: vec![v1, v2],
        },
        FixtureTask {
            name: "9f8e7d6c".into(),
            demos: vec![(pattern(3, 3, 2, 3, 1), pattern(3, 3, 3, 2, 1))],
            tests: vec![(pattern(4, 4, 1, 3, 5), pattern(4, 4, 3, 1, 5))],
            variants: vec![v1],
        },
    ];
    let data = root.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let fixture = write_arc_dataset(&data, &tasks);
    let truth = |t: usize| Said::Grid(tasks[t].tests[0].1.clone());
    let rows = [
        Row {
            puzzle: 0,
            test: 0,
            said: truth(0),
            q: 1.5,
        },
        Row {
            puzzle: 1,
            test: 0,
            said: truth(0),
            q: 0.5,
        },
        Row {
            puzzle: 2,
            test: 0,
            said: Said::Grid(pattern(6, 5, 1, 1, 4)),
            q: 2.0,
        },
        Row {
            puzzle: 3,
            test: 0,
            said: Said::Grid(pattern(4, 4, 2, 1, 5)),
            q: -1.0,
        },
        Row {
            puzzle: 4,
            test: 0,
            said: Said::Empty,
            q: -3.0,
        },
    ];
    let mut p = arc_predictions(&tasks, &fixture, &rows);
    add_trace(&mut p, &[1, 3]);
    let preds = root.join("preds");
    hrm_eval::write_predictions(&preds, &p).unwrap();
    (data, preds)
}

/// Writes a `metrics.jsonl` with train and eval curves and returns its path.
pub fn write_metrics(root: &Path) -> std::path::PathBuf {
    let mut text = String::new();
    for i in 0..=20 {
        let step = i * 500;
        let x = i as f64 / 20.0;
        text.push_str(&format!(
            "{{\"step\": {step}, \"train/lm_loss\": {:.4}, \"train/exact_accuracy\": {:.4}}}\n",
            2.0 * (-3.0 * x).exp() + 0.1,
            0.9 * x * x
        ));
        if i % 5 == 0 {
            text.push_str(&format!(
                "{{\"step\": {step}, \"eval/exact_accuracy\": {:.4}}}\n",
                0.6 * x
            ));
        }
    }
    let path = root.join("metrics.jsonl");
    std::fs::write(&path, text).unwrap();
    path
}
