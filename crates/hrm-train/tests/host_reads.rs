//! No host synchronisation inside a training step: every device-to-host read on the training path goes through
//! `hrm_model::host` (counted), and a step of HRM or TRM, with micro-batches, the Q-target pass, the puzzle table,
//! an EMA or only the puzzle table trained, reads nothing; reading the step's metrics is one read.
//! The counter is process-wide, so this file holds one test.

mod common;

use hrm_model::{Batch, Model, ModelConfig, ModelKind};
use hrm_train::step::{Trainable, Trainer};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::Device;

const B: usize = 8;
const S: usize = 6;

fn config(name: ModelKind, no_act_continue: bool) -> ModelConfig {
    ModelConfig {
        puzzle_emb_ndim: 16,
        h_layers: if name == ModelKind::Hrm { 1 } else { 0 },
        hidden_size: 16,
        name,
        puzzle_emb_len: if name == ModelKind::Trm { 1 } else { 0 },
        no_act_continue,
        ..common::small::config()
    }
}

fn batch(rng: &mut ChaCha8Rng) -> Batch {
    let inputs: Vec<i32> = (0..B * S).map(|_| rng.random_range(0..7)).collect();
    let labels: Vec<i32> = (0..B * S).map(|_| rng.random_range(0..7)).collect();
    let ids: Vec<i32> = (0..B).map(|_| rng.random_range(1..5)).collect();
    Batch::from_vecs(&inputs, &labels, &ids, B, S, Device::Cpu).unwrap()
}

#[test]
fn a_training_step_reads_nothing_back_from_the_device() {
    let cases = [
        (
            "HRM, Q-target pass, 2 micro-batches",
            ModelKind::Hrm,
            false,
            2,
            Trainable::All,
            false,
        ),
        ("HRM, EMA", ModelKind::Hrm, true, 1, Trainable::All, true),
        (
            "TRM, 2 micro-batches, EMA",
            ModelKind::Trm,
            true,
            2,
            Trainable::All,
            true,
        ),
        (
            "TRM, puzzle table only",
            ModelKind::Trm,
            true,
            1,
            Trainable::PuzzleTableOnly,
            false,
        ),
    ];
    for (what, name, no_act_continue, micro_batches, trainable, ema) in cases {
        let model = Model::new(&config(name, no_act_continue), Device::Cpu, 0).unwrap();
        let step = common::small::step_config(micro_batches);
        let mut trainer = Trainer::new(model, step).unwrap();
        trainer.set_trainable(trainable).unwrap();
        if ema {
            trainer.enable_ema(0.9).unwrap();
        }
        let (mut data, mut rng) = (ChaCha8Rng::seed_from_u64(1), ChaCha8Rng::seed_from_u64(2));
        // With the value checks on (the default), every forward reads its range check back: the counter sees it.
        let before = hrm_model::host::reads();
        trainer.train_step(&batch(&mut data), &mut rng).unwrap();
        assert!(
            hrm_model::host::reads() > before,
            "{what}: the checked forward is counted"
        );

        trainer.set_value_checks(false);
        let before = hrm_model::host::reads();
        let mut reports = Vec::new();
        for _ in 0..5 {
            reports.push(
                trainer
                    .train_step(&batch(&mut data), &mut rng)
                    .unwrap()
                    .unwrap(),
            );
        }
        assert_eq!(
            hrm_model::host::reads(),
            before,
            "{what}: 5 steps read nothing back"
        );
        let m = reports[4].read_metrics().unwrap();
        assert_eq!(
            hrm_model::host::reads(),
            before + 1,
            "{what}: the metrics are one read"
        );
        assert!(m.lm_loss.is_finite() && m.lm_loss > 0.0, "{what}: {m:?}");
        // The sum of five steps' metrics, added on the device, is the sum of their reads.
        let sum = reports[1..]
            .iter()
            .fold(reports[0].metrics.clone(), |a, r| a.add(&r.metrics));
        let total: f64 = reports
            .iter()
            .map(|r| r.read_metrics().unwrap().count)
            .sum();
        assert_eq!(sum.read().unwrap().0.count, total, "{what}");
    }
}
