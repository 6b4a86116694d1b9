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
