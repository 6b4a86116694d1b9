//! Micro-batching is exact: k micro-batches of B/k with their own carries give the update of one batch of B.
//! `HRM_TEST_DEVICE=cuda` runs it on the GPU (`common::test_device`).

mod common;

use common::small::{assert_scaled_close, config, random_batch, seed_puzzle_table, step_config, B};
use common::{max_abs_diff, test_device};
use hrm_model::{Batch, Model};
use hrm_train::step::Trainer;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

fn compare(step: usize, full: &Trainer, micro: &Trainer, k: i64) {
    let full_params: Vec<(&str, &Tensor)> = full.model().named_parameters().collect();
    let micro_params: Vec<(&str, &Tensor)> = micro.model().named_parameters().collect();
    assert_eq!(full_params.len(), micro_params.len());
    for ((n, a), (n2, b)) in full_params.iter().zip(&micro_params) {
        assert_eq!(n, n2);
        assert_scaled_close(
            &format!("k={k} step {step} grad {n}"),
            &b.grad(),
            &a.grad(),
            1e-4,
        );
        // A flipped sign of a near-zero gradient element would move it by ~2·lr; demand far less.
        let d = max_abs_diff(a, b);
        assert!(d < 2e-5, "k={k} step {step} param {n}: max |Δ| {d:e}");
    }
    let (ta, tb) = (
        full.model().puzzle_table().unwrap(),
        micro.model().puzzle_table().unwrap(),
    );
    let d = max_abs_diff(ta, tb);
    assert!(d < 1e-6, "k={k} step {step} puzzle table: max |Δ| {d:e}");
    // Carry j of the micro run is rows j·m.. of the full run's single carry.
    let full_carry = full.carries()[0].as_ref().unwrap();
    let m = B / k;
    for (j, c) in micro.carries().iter().enumerate() {
        let c = c.as_ref().unwrap();
        let rows = |t: &Tensor| t.narrow(0, j as i64 * m, m);
        assert!(
            c.halted.equal(&rows(&full_carry.halted)),
            "k={k} step {step} carry {j} halted"
        );
        assert!(
            c.steps.equal(&rows(&full_carry.steps)),
            "k={k} step {step} carry {j} steps"
        );
        assert!(
            c.inputs.equal(&rows(&full_carry.inputs)),
            "k={k} step {step} carry {j} inputs"
        );
        assert!(
            max_abs_diff(&c.z_h, &rows(&full_carry.z_h)) < 1e-4,
            "k={k} step {step} carry {j} z_H"
        );
    }
}

#[test]
fn micro_batches_match_one_full_batch() {
    tch::set_num_threads(1);
    tch::manual_seed(0);
    for k in [2, 4] {
        let mut full = Trainer::new(
            Model::new(&config(), test_device(), 7).unwrap(),
            step_config(1),
        )
        .unwrap();
        let mut micro = Trainer::new(
            Model::new(&config(), test_device(), 7).unwrap(),
            step_config(k),
        )
        .unwrap();
        seed_puzzle_table(&full);
        seed_puzzle_table(&micro);
        let (mut rng_full, mut rng_micro) =
            (ChaCha8Rng::seed_from_u64(3), ChaCha8Rng::seed_from_u64(3));
        let mut data = ChaCha8Rng::seed_from_u64(5);
        let mut halted_any = false;
        for step in 1..=5 {
            let batch = random_batch(&mut data);
            let a = full.train_step(&batch, &mut rng_full).unwrap().unwrap();
            let b = micro.train_step(&batch, &mut rng_micro).unwrap().unwrap();
            assert_eq!((a.step, a.lr), (b.step, b.lr));
            let (a, b) = (a.read_metrics().unwrap(), b.read_metrics().unwrap());
            assert_eq!(a.count, b.count, "k={k} step {step}");
            assert_eq!(a.exact_accuracy, b.exact_accuracy, "k={k} step {step}");
            assert!(
                (a.lm_loss - b.lm_loss).abs() <= 1e-5 * a.lm_loss.abs(),
                "k={k} step {step}"
            );
            let qa = a.q_continue_loss.unwrap();
            assert!((qa - b.q_continue_loss.unwrap()).abs() <= 1e-5 * qa.abs());
            halted_any |= a.count > 0.0;
            compare(step, &full, &micro, k);
        }
        // The exploration must have made some slots halt early, so resets were exercised.
        assert!(halted_any, "k={k}: no slot halted in 5 steps");
        let table_moved = full
            .model()
            .puzzle_table()
            .unwrap()
            .abs()
            .sum(Kind::Float)
            .double_value(&[]);
        assert!(table_moved > 0.0);
    }
}

#[test]
fn wrong_batch_size_is_rejected() {
    let mut t = Trainer::new(
        Model::new(&config(), test_device(), 7).unwrap(),
        step_config(2),
    )
    .unwrap();
    let batch = Batch::from_vecs(&[1; 6], &[1; 6], &[0], 1, 6, test_device()).unwrap();
    let err = t
        .train_step(&batch, &mut ChaCha8Rng::seed_from_u64(0))
        .unwrap_err()
        .to_string();
    assert!(err.contains("batch_size"), "{err}");
    assert_eq!(t.step_count(), 0);
    assert!(Trainer::new(
        Model::new(&config(), test_device(), 7).unwrap(),
        step_config(3)
    )
    .is_err());
}

#[test]
fn steps_past_the_total_do_nothing() {
    let mut cfg = step_config(1);
    cfg.total_steps = 1;
    let mut t = Trainer::new(Model::new(&config(), test_device(), 7).unwrap(), cfg).unwrap();
    let mut data = ChaCha8Rng::seed_from_u64(5);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    assert!(t
        .train_step(&random_batch(&mut data), &mut rng)
        .unwrap()
        .is_some());
    let before: Vec<Tensor> = t
        .model()
        .named_parameters()
        .map(|(_, p)| p.copy())
        .collect();
    assert!(t
        .train_step(&random_batch(&mut data), &mut rng)
        .unwrap()
        .is_none());
    assert_eq!(t.step_count(), 2);
    for ((n, p), b) in t.model().named_parameters().zip(&before) {
        assert!(p.equal(b), "{n} changed after the last step");
    }
}
