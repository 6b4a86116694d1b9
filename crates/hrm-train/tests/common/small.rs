//! The small HRM, its step settings and random batches shared by the micro-batching and data-parallel tests.

use hrm_model::{Batch, ForwardDtype, LossType, ModelConfig, PosEncoding};
use hrm_train::optim::AdamATan2Config;
use hrm_train::step::{StepConfig, Trainer};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::Tensor;

use super::{max_abs_diff, test_device};

pub const B: i64 = 8;
pub const S: i64 = 6;
pub const VOCAB: i64 = 7;
pub const PUZZLES: i64 = 5;

pub fn config() -> ModelConfig {
    ModelConfig {
        batch_size: B,
        seq_len: S,
        puzzle_emb_ndim: 32,
        num_puzzle_identifiers: PUZZLES,
        vocab_size: VOCAB,
        h_cycles: 2,
        l_cycles: 2,
        h_layers: 1,
        l_layers: 1,
        hidden_size: 32,
        expansion: 2.0,
        num_heads: 2,
        pos_encodings: PosEncoding::Rope,
        rms_norm_eps: 1e-5,
        rope_theta: 10000.0,
        halt_max_steps: 3,
        halt_exploration_prob: 0.5,
        forward_dtype: ForwardDtype::Float32,
        loss_type: LossType::StablemaxCrossEntropy,
        name: hrm_model::ModelKind::Hrm,
        puzzle_emb_len: 0,
        mlp_t: false,
        no_act_continue: true,
    }
}

pub fn step_config(micro_batches: i64) -> StepConfig {
    StepConfig {
        global_batch_size: B,
        micro_batches,
        lr: 1e-3,
        puzzle_emb_lr: 1e-2,
        puzzle_emb_weight_decay: 0.1,
        adam: AdamATan2Config::with_weight_decay(0.1),
        lr_warmup_steps: 2,
        lr_min_ratio: 1.0,
        total_steps: 100,
    }
}

/// A random global batch; puzzle ids repeat so duplicates fall both within and across micro-batches.
pub fn random_batch(rng: &mut ChaCha8Rng) -> Batch {
    let n = (B * S) as usize;
    let inputs: Vec<i32> = (0..n).map(|_| rng.random_range(1..VOCAB as i32)).collect();
    let labels: Vec<i32> = inputs
        .iter()
        .map(|&x| {
            if rng.random_bool(0.2) {
                -100
            } else {
                (x * 3 + 1) % VOCAB as i32
            }
        })
        .collect();
    let ids: Vec<i32> = (0..B)
        .map(|_| rng.random_range(1..PUZZLES as i32))
        .collect();
    Batch::from_vecs(
        &inputs,
        &labels,
        &ids,
        B as usize,
        S as usize,
        test_device(),
    )
    .unwrap()
}

/// Per-tensor bound as the golden README recommends for gradients: max|Δ| ≤ rel · max|ref|.
pub fn assert_scaled_close(what: &str, a: &Tensor, b: &Tensor, rel: f64) {
    let scale = b.abs().max().double_value(&[]).max(1e-30);
    let d = max_abs_diff(a, b);
    assert!(
        d <= rel * scale,
        "{what}: max |Δ| {d:e} > {rel:e} · max|ref| {scale:e}"
    );
}

/// Puts small nonzero values in the zero-initialised puzzle table, so that every path carries signal.
pub fn seed_puzzle_table(t: &Trainer) {
    let mut init = ChaCha8Rng::seed_from_u64(11);
    let noise: Vec<f32> = (0..PUZZLES * 32)
        .map(|_| init.random_range(-0.05..0.05))
        .collect();
    let table = t.model().puzzle_table().unwrap();
    tch::no_grad(|| {
        table.shallow_clone().copy_(
            &Tensor::from_slice(&noise)
                .view([PUZZLES, 32])
                .to_device(table.device()),
        )
    });
}
