//! A tiny synthetic ARC-vocabulary dataset and a matching tiny recipe, for smoke tests of the training loop,
//! checkpoints, resume and prediction without building a real dataset.

use std::path::Path;

use hrm_data::layout::SplitBuilder;
use hrm_recipe::Recipe;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::run_error::RunError;

/// Sequence length of the synthetic dataset.
pub const SEQ_LEN: usize = 16;

/// Writes a synthetic dataset with the ARC vocabulary (12 tokens) into `dir`.
///
/// Each train group has 2 puzzles (variants) of 3 examples; puzzle p's rule adds `p mod 5` to every colour
/// token (2..=11, wrapping within the colours), so the puzzle embedding matters. The test split has one puzzle
/// per group (the first variant's id) with 2 examples. Puzzle ids run 1..=2·groups (0 is `<blank>`).
pub fn write_dataset(dir: &Path, groups: usize, seed: u64) -> Result<(), RunError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let num_ids = 2 * groups + 1;
    let example = |rng: &mut ChaCha8Rng, id: usize| {
        let input: Vec<u8> = (0..SEQ_LEN).map(|_| rng.random_range(2u8..12)).collect();
        let shift = (id % 5) as u8;
        let label: Vec<u8> = input.iter().map(|&t| 2 + (t - 2 + shift) % 10).collect();
        (input, label)
    };
    let mut train = SplitBuilder::new(SEQ_LEN);
    let mut test = SplitBuilder::new(SEQ_LEN);
    for g in 0..groups {
        for v in 0..2 {
            let id = 1 + 2 * g + v;
            for _ in 0..3 {
                let (i, l) = example(&mut rng, id);
                train.push_example(&i, &l);
            }
            train.end_puzzle(id as i32);
        }
        train.end_group();
        let id = 1 + 2 * g;
        for _ in 0..2 {
            let (i, l) = example(&mut rng, id);
            test.push_example(&i, &l);
        }
        test.end_puzzle(id as i32);
        test.end_group();
    }
    let mut identifiers = vec!["<blank>".to_string()];
    identifiers.extend((1..num_ids).map(|i| format!("synthetic-{i}")));
    let train = train.finish(12, num_ids as u32);
    let test = test.finish(12, num_ids as u32);
    hrm_data::write_dataset(dir, &identifiers, &train, &test)?;
    Ok(())
}

/// A tiny recipe for the synthetic dataset (task arc1, hidden 32, 1+1 layers, batch 8 in micro-batches of 4,
/// 8 epochs in 2 evaluation intervals), with `overrides` applied.
pub fn tiny_recipe(overrides: &[String]) -> Result<Recipe, RunError> {
    Ok(Recipe::from_toml_str(
        "synthetic-tiny",
        TINY_RECIPE,
        overrides,
    )?)
}

/// The TOML of [`tiny_recipe`].
pub const TINY_RECIPE: &str = r#"
name = "synthetic-tiny"
description = "Smoke tests: the synthetic dataset, hidden 32, 1+1 layers."

[data]
task = "arc1"
num_aug = 2
seed = 0
canvas = 4

[arch]
hidden_size = 32
num_heads = 2
expansion = 2.0
H_layers = 1
L_layers = 1
H_cycles = 1
L_cycles = 2
halt_max_steps = 3
halt_exploration_prob = 0.5
pos_encodings = "rope"
puzzle_emb_ndim = 32
rms_norm_eps = 1e-5
rope_theta = 10000.0
forward_dtype = "auto"
loss_type = "stablemax_cross_entropy"

[train]
global_batch_size = 8
micro_batch_size = 4
epochs = 8
eval_interval = 4
lr = 3e-3
lr_min_ratio = 1.0
lr_warmup_steps = 3
beta1 = 0.9
beta2 = 0.95
weight_decay = 0.1
puzzle_emb_lr = 1e-2
puzzle_emb_weight_decay = 0.1
seed = 3
checkpoint_every_eval = true
max_steps = 0
max_minutes = 0.0
log_every = 1
checkpoint_every_steps = 4

[eval]
batch_size = 16
refinement_examples = 2
max_examples = 12
"#;

/// Writes `count` ARC task files `<prefix><NNN>.json` into `dir`: a family of tasks that differ by a
/// task-specific colour swap. Task i swaps two colours a != b of 1..=9 (drawn per task) and leaves every other
/// cell as it is; it has 3 demonstrations and one test pair of random 3x3 grids (colours 0..=9), each input
/// holding both a and b so that every demonstration shows the swap. The family is closed under the ARC
/// augmentation (a colour permutation turns the swap of a and b into the swap of their images; a dihedral map
/// moves cells, not colours), so augmented variants are tasks of the family too. Everything comes from a
/// ChaCha8 stream of `seed`. Returns the task ids.
pub fn write_swap_family(
    dir: &Path,
    prefix: &str,
    count: usize,
    seed: u64,
) -> Result<Vec<String>, RunError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    std::fs::create_dir_all(dir).map_err(RunError::io(dir))?;
    let mut ids = Vec::with_capacity(count);
    for i in 0..count {
        let a = rng.random_range(1..=9u8);
        let b = 1 + (a + rng.random_range(0..8u8)) % 9;
        let pair = |rng: &mut ChaCha8Rng| {
            let mut cells: Vec<u8> = (0..9).map(|_| rng.random_range(0..10u8)).collect();
            let pa = rng.random_range(0..9usize);
            let pb = (pa + rng.random_range(1..9usize)) % 9;
            cells[pa] = a;
            cells[pb] = b;
            let swap = |c: u8| match c {
                c if c == a => b,
                c if c == b => a,
                c => c,
            };
            let rows = |f: &dyn Fn(u8) -> u8| -> Vec<Vec<u8>> {
                cells
                    .chunks(3)
                    .map(|r| r.iter().map(|&c| f(c)).collect())
                    .collect()
            };
            serde_json::json!({"input": rows(&|c| c), "output": rows(&swap)})
        };
        let train: Vec<serde_json::Value> = (0..3).map(|_| pair(&mut rng)).collect();
        let test = vec![pair(&mut rng)];
        let id = format!("{prefix}{i:03}");
        let path = dir.join(format!("{id}.json"));
        let text = serde_json::json!({"train": train, "test": test}).to_string();
        std::fs::write(&path, text).map_err(RunError::io(&path))?;
        ids.push(id);
    }
    Ok(ids)
}

/// A recipe for tasks of [`write_swap_family`] on a 4x4 canvas (hidden 64, 1+1 layers, one ACT segment,
/// batch 64, puzzle-embedding lr 0.1): on 2 CPU cores, 1,500 steps take well under a minute and solve most
/// held-out test inputs of the trained tasks.
pub const SWAP_FAMILY_RECIPE: &str = r#"
name = "swap-family"
description = "Tasks that differ by a task-specific colour swap (hrm solve's test): 4x4 canvas, hidden 64."

[data]
task = "arc1"
num_aug = 3
seed = 0
canvas = 4

[arch]
hidden_size = 64
num_heads = 4
expansion = 2.0
H_layers = 1
L_layers = 1
H_cycles = 1
L_cycles = 1
halt_max_steps = 1
halt_exploration_prob = 0.1
pos_encodings = "learned"
puzzle_emb_ndim = 64
rms_norm_eps = 1e-5
rope_theta = 10000.0
forward_dtype = "float32"
loss_type = "stablemax_cross_entropy"

[train]
global_batch_size = 64
micro_batch_size = 0
epochs = 100000
eval_interval = 40
lr = 3e-3
lr_min_ratio = 1.0
lr_warmup_steps = 20
beta1 = 0.9
beta2 = 0.95
weight_decay = 0.1
puzzle_emb_lr = 1e-1
puzzle_emb_weight_decay = 0.1
seed = 0
checkpoint_every_eval = false
max_steps = 1500
log_every = 50
checkpoint_every_steps = 0

[eval]
batch_size = 256
refinement_examples = 0
max_examples = 0
"#;
