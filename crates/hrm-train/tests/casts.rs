//! Casts once per step: in bf16, each fp32 master weight is cast once per optimizer step (every micro-batch's
//! forward and backward share the casts) instead of once per module call, with the same gradients.
//! Follows the reference's use of `CastedLinear` (`models/layers.py`), which casts at every call.

use hrm_model::layers::{casts_made, with_cached_casts};
mod common;

use hrm_model::{
    act_loss_head, Batch, ForwardDtype, LossType, Model, ModelConfig, ModelKind, PosEncoding,
};
use hrm_train::step::Trainer;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

const B: usize = 8;
const S: usize = 6;

fn config(name: ModelKind) -> ModelConfig {
    ModelConfig {
        puzzle_emb_ndim: 16,
        h_layers: if name == ModelKind::Hrm { 1 } else { 0 },
        l_layers: if name == ModelKind::Hrm { 1 } else { 2 },
        hidden_size: 16,
        pos_encodings: PosEncoding::Learned,
        halt_max_steps: 2,
        forward_dtype: ForwardDtype::Bfloat16,
        name,
        puzzle_emb_len: if name == ModelKind::Trm { 1 } else { 0 },
        no_act_continue: name == ModelKind::Trm,
        ..common::small::config()
    }
}

fn batch(rng: &mut ChaCha8Rng) -> Batch {
    let inputs: Vec<i32> = (0..B * S).map(|_| rng.random_range(0..7)).collect();
    let labels: Vec<i32> = (0..B * S).map(|_| rng.random_range(0..7)).collect();
    let ids: Vec<i32> = (0..B).map(|_| rng.random_range(1..5)).collect();
    Batch::from_vecs(&inputs, &labels, &ids, B, S, Device::Cpu).unwrap()
}

/// The gradients of one forward and backward, with or without the cast cache.
fn grads(model: &Model, b: &Batch, cached: bool) -> Vec<Tensor> {
    model.zero_grad();
    let run = || {
        let carry = model.initial_carry(b);
        let (carry, out) = model
            .forward_train(&carry, b, &mut ChaCha8Rng::seed_from_u64(9))
            .unwrap();
        act_loss_head(&carry, &out, LossType::StablemaxCrossEntropy)
            .unwrap()
            .loss
            .backward();
    };
    if cached {
        with_cached_casts(run);
    } else {
        run();
    }
    model
        .named_parameters()
        .map(|(_, p)| p.grad().copy())
        .collect()
}

#[test]
fn bf16_weights_are_cast_once_per_step_with_the_same_gradients() {
    for name in [ModelKind::Hrm, ModelKind::Trm] {
        let model = Model::new(&config(name), Device::Cpu, 0).unwrap();
        let params = model.named_parameters().count() as u64;
        let b = batch(&mut ChaCha8Rng::seed_from_u64(1));

        // One forward without the cache casts at every call; with it, once per weight.
        let before = casts_made();
        let plain = grads(&model, &b, false);
        let per_call = casts_made() - before;
        let before = casts_made();
        let cached = grads(&model, &b, true);
        assert_eq!(
            casts_made() - before,
            params,
            "{name:?}: one cast per weight"
        );
        assert!(
            per_call > params,
            "{name:?}: {per_call} casts without the cache"
        );
        for (i, (a, c)) in plain.iter().zip(&cached).enumerate() {
            let scale = a.abs().max().double_value(&[]).max(1e-12);
            let diff = (a - c).abs().max().double_value(&[]);
            // HRM uses every weight once with gradient: identical. TRM's last cycle uses its network several
            // times, and with one cast the gradients of those uses are summed in bf16 before the cast back
            // (as PyTorch's autocast weight cache does): bf16 rounding of the sum.
            let bound = if name == ModelKind::Hrm {
                0.0
            } else {
                2e-2 * scale
            };
            assert!(diff <= bound, "{name:?} param {i}: {diff} > {bound}");
        }

        // A trainer step with 2 micro-batches makes one cast per weight.
        let step = common::small::step_config(2);
        let mut trainer =
            Trainer::new(Model::new(&config(name), Device::Cpu, 0).unwrap(), step).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for _ in 0..2 {
            let before = casts_made();
            let r = trainer.train_step(&b, &mut rng).unwrap().unwrap();
            assert_eq!(
                casts_made() - before,
                params,
                "{name:?}: one cast per weight per step"
            );
            assert!(r.read_metrics().unwrap().lm_loss.is_finite());
        }
        assert_eq!(
            trainer.model().named_parameters().next().unwrap().1.kind(),
            Kind::Float
        );
    }
}
