//! "It learns": a small HRM trained with the real step (AdamATan2 + sign-SGD + warmup schedule) reaches 100% exact
//! accuracy on a synthetic task whose operation is chosen by the puzzle embedding.

mod common;

use hrm_model::{Batch, Model, ModelConfig};
use hrm_train::optim::AdamATan2Config;
use hrm_train::step::{StepConfig, Trainer};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind};

/// Sequence length.
const S: usize = 6;
/// Tokens 1..=5 are digits; 0 is unused.
const VOCAB: i64 = 6;
/// Puzzle 1 asks for a copy, puzzle 2 for the reversal; row 0 is the blank identifier.
const PUZZLES: i64 = 3;
/// Training examples per operation.
const PER_OP: usize = 24;
/// Global batch size.
const B: usize = 16;
/// Bound on optimizer steps.
const MAX_STEPS: u64 = 1500;

fn config() -> ModelConfig {
    ModelConfig {
        batch_size: B as i64,
        seq_len: S as i64,
        puzzle_emb_ndim: 64,
        num_puzzle_identifiers: PUZZLES,
        vocab_size: VOCAB,
        hidden_size: 64,
        halt_max_steps: 2,
        halt_exploration_prob: 0.1,
        ..common::small::config()
    }
}

/// One training example: (input digits, target digits, puzzle id).
type Example = (Vec<i32>, Vec<i32>, i32);

/// The training set: random digit strings, half copied (id 1) and half reversed (id 2).
fn dataset(rng: &mut ChaCha8Rng) -> Vec<Example> {
    let mut out = Vec::new();
    for id in [1, 2] {
        for _ in 0..PER_OP {
            let x: Vec<i32> = (0..S).map(|_| rng.random_range(1..VOCAB as i32)).collect();
            let y = if id == 1 {
                x.clone()
            } else {
                x.iter().rev().copied().collect()
            };
            out.push((x, y, id));
        }
    }
    out
}

fn to_batch(examples: &[&Example]) -> Batch {
    let inputs: Vec<i32> = examples.iter().flat_map(|e| e.0.iter().copied()).collect();
    let labels: Vec<i32> = examples.iter().flat_map(|e| e.1.iter().copied()).collect();
    let ids: Vec<i32> = examples.iter().map(|e| e.2).collect();
    Batch::from_vecs(&inputs, &labels, &ids, examples.len(), S, Device::Cpu).unwrap()
}

/// Fraction of the training set predicted exactly, with the evaluation protocol (all slots run M_max segments).
fn exact_accuracy(model: &Model, data: &[Example]) -> f64 {
    let refs: Vec<&Example> = data.iter().collect();
    let batch = to_batch(&refs);
    let mut carry = model.initial_carry(&batch);
    let mut logits = None;
    for _ in 0..model.config().halt_max_steps {
        let (next, out) = model.forward_eval(&carry, &batch).unwrap();
        carry = next;
        logits = Some(out.logits);
    }
    let pred = logits.unwrap().argmax(-1, false);
    let exact = pred.eq_tensor(&batch.labels).all_dim(-1, false);
    exact
        .to_kind(Kind::Float)
        .mean(Kind::Float)
        .double_value(&[])
}

#[test]
fn small_hrm_learns_copy_and_reverse() {
    // Tiny ops: one intra-op thread avoids oversubscription on a loaded 2-core machine (25x faster measured).
    tch::set_num_threads(1);
    tch::manual_seed(0);
    let mut data_rng = ChaCha8Rng::seed_from_u64(1);
    let data = dataset(&mut data_rng);
    let step_config = StepConfig {
        global_batch_size: B as i64,
        micro_batches: 2,
        lr: 1e-3,
        puzzle_emb_lr: 1e-2,
        puzzle_emb_weight_decay: 0.1,
        adam: AdamATan2Config::with_weight_decay(0.1),
        lr_warmup_steps: 50,
        lr_min_ratio: 0.1,
        total_steps: MAX_STEPS,
    };
    let model = Model::new(&config(), Device::Cpu, 0).unwrap();
    let mut trainer = Trainer::new(model, step_config).unwrap();
    let mut act_rng = ChaCha8Rng::seed_from_u64(2);
    let mut order: Vec<usize> = Vec::new();
    let initial = exact_accuracy(trainer.model(), &data);
    eprintln!("step 0: exact accuracy {initial:.3}");
    assert!(
        initial < 0.5,
        "the untrained model should not already solve the task"
    );
    let mut solved_at = None;
    for step in 1..=MAX_STEPS {
        if order.len() < B {
            let mut perm: Vec<usize> = (0..data.len()).collect();
            perm.shuffle(&mut data_rng);
            order.extend(perm);
        }
        let picked: Vec<&Example> = order.drain(..B).map(|i| &data[i]).collect();
        let report = trainer
            .train_step(&to_batch(&picked), &mut act_rng)
            .unwrap()
            .unwrap();
        if step % 25 == 0 {
            let acc = exact_accuracy(trainer.model(), &data);
            let lm = report.read_metrics().unwrap().lm_loss / B as f64;
            eprintln!(
                "step {step}: lr {:.2e} train lm_loss {lm:.4} exact accuracy {acc:.3}",
                report.lr
            );
            if acc == 1.0 {
                solved_at = Some(step);
                break;
            }
        }
    }
    let solved_at = solved_at.unwrap_or_else(|| panic!("not 100% exact within {MAX_STEPS} steps"));
    eprintln!("solved at step {solved_at}");
    // The two operations share inputs' statistics, so solving both needs the puzzle embedding: its rows moved.
    let table = trainer.model().puzzle_table().unwrap();
    let diff = (table.get(1) - table.get(2)).abs().max().double_value(&[]);
    assert!(diff > 0.0, "puzzle rows 1 and 2 are identical");
    assert_eq!(
        table.get(0).abs().max().double_value(&[]),
        0.0,
        "the blank row must stay untouched"
    );
}
