//! Data-parallel training is the single-process step: W ranks (in-process backend), each stepping on its slice
//! of the global batch with its own carries, end 5 steps with the parameters and puzzle table of one process
//! stepping on the whole batch (within the micro-batching tolerances), every rank holding identical weights.
//! `HRM_TEST_DEVICE=cuda` runs the ranks on the GPU (through host memory; NCCL needs one GPU per rank).

mod common;

use std::thread;
use std::time::Duration;

use common::small::{assert_scaled_close, config, random_batch, seed_puzzle_table, step_config, B};
use common::{max_abs_diff, test_device};
use hrm_data::sampler::HostBatch;
use hrm_dist::Collective;
use hrm_model::{Batch, Model};
use hrm_train::step::Trainer;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::Tensor;

const STEPS: usize = 5;

/// What a run ends with: parameters, puzzle table, each carry's (z_H, halted) in global order, and the
/// halted count of every step (summed over ranks by the caller).
struct End {
    params: Vec<(String, Tensor)>,
    table: Tensor,
    carries: Vec<(Tensor, Tensor)>,
    counts: Vec<f64>,
}

fn slice(batch: &Batch, rank: usize, world: usize) -> Batch {
    let l = B / world as i64;
    let rows = |t: &Tensor| t.narrow(0, rank as i64 * l, l);
    Batch {
        inputs: rows(&batch.inputs),
        labels: rows(&batch.labels),
        puzzle_identifiers: rows(&batch.puzzle_identifiers),
    }
}

/// Trains STEPS steps with k micro-batches, as rank `collective.rank()` of its world or as a single process.
fn train(k: i64, collective: Option<Box<dyn Collective>>) -> End {
    tch::set_num_threads(1);
    let mut t = Trainer::new(
        Model::new(&config(), test_device(), 7).unwrap(),
        step_config(k),
    )
    .unwrap();
    seed_puzzle_table(&t);
    // Make greedy halting fire (q_halt > q_continue from the start), so that the exploration draws decide
    // which slots run on, and a rank that drew another rank's numbers would be caught.
    tch::no_grad(|| {
        for (n, p) in t.model().named_parameters() {
            if n.ends_with("q_head.bias") {
                let bias = Tensor::from_slice(&[2.0f32, -2.0]).to_device(p.device());
                p.shallow_clone().copy_(&bias.to_kind(p.kind()));
            }
        }
    });
    if let Some(c) = collective {
        // Rank 0's weights reach every rank; make the others differ first so the broadcast is tested.
        if c.rank() != 0 {
            tch::no_grad(|| {
                for (_, p) in t.model().named_parameters() {
                    let _ = p.shallow_clone().f_add_scalar_(1.0).unwrap();
                }
            });
        }
        t.set_collective(c).unwrap();
        t.broadcast_state().unwrap();
    }
    let (rank, world) = (t.rank(), t.world_size());
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut data = ChaCha8Rng::seed_from_u64(5);
    let mut counts = Vec::new();
    for _ in 0..STEPS {
        let batch = slice(&random_batch(&mut data), rank, world);
        let report = t.train_step(&batch, &mut rng).unwrap().unwrap();
        counts.push(report.read_metrics().unwrap().count);
    }
    End {
        params: t
            .model()
            .named_parameters()
            .map(|(n, p)| (n.to_string(), p.copy()))
            .collect(),
        table: t.model().puzzle_table().unwrap().copy(),
        carries: t
            .carries()
            .iter()
            .map(|c| {
                let c = c.as_ref().unwrap();
                (c.z_h.copy(), c.halted.copy())
            })
            .collect(),
        counts,
    }
}

fn world_matches_one_process(world: usize, k: i64) {
    let full = train(1, None);
    let ranks: Vec<End> = hrm_dist::local::world(world, Duration::from_secs(120))
        .into_iter()
        .map(|c| thread::spawn(move || train(k, Some(Box::new(c)))))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let what = format!("W={world} k={k}");
    // Every rank holds bitwise the same weights and table.
    for (r, end) in ranks.iter().enumerate().skip(1) {
        for ((n, a), (_, b)) in end.params.iter().zip(&ranks[0].params) {
            assert!(a.equal(b), "{what}: rank {r} param {n} differs from rank 0");
        }
        assert!(end.table.equal(&ranks[0].table), "{what}: rank {r} table");
    }
    // ... which are those of one process on the whole batch.
    for ((n, a), (_, b)) in ranks[0].params.iter().zip(&full.params) {
        let d = max_abs_diff(a, b);
        assert!(d < 2e-5, "{what} param {n}: max |Δ| {d:e}");
    }
    assert_scaled_close(&format!("{what} table"), &ranks[0].table, &full.table, 1e-5);
    let d = max_abs_diff(&ranks[0].table, &full.table);
    assert!(d < 1e-6, "{what} puzzle table: max |Δ| {d:e}");
    // The halted counts add up to the single process's, step by step.
    for s in 0..STEPS {
        let sum: f64 = ranks.iter().map(|e| e.counts[s]).sum();
        assert_eq!(sum, full.counts[s], "{what} step {}", s + 1);
    }
    assert!(full.counts.iter().any(|&c| c > 0.0), "no slot ever halted");
    // Carry j of rank r holds global rows (r·k + j)·m.. of the single carry.
    let m = B / (world as i64 * k);
    let (fz, fh) = &full.carries[0];
    for (r, end) in ranks.iter().enumerate() {
        for (j, (z, h)) in end.carries.iter().enumerate() {
            let g = (r as i64 * k + j as i64) * m;
            assert!(
                h.equal(&fh.narrow(0, g, m)),
                "{what} rank {r} carry {j} halted"
            );
            assert!(
                max_abs_diff(z, &fz.narrow(0, g, m)) < 1e-4,
                "{what} rank {r} carry {j} z_H"
            );
        }
    }
}

#[test]
fn two_ranks_match_one_process() {
    world_matches_one_process(2, 1);
}

#[test]
fn four_ranks_match_one_process() {
    world_matches_one_process(4, 1);
}

#[test]
fn two_ranks_of_two_micro_batches_match_one_process() {
    world_matches_one_process(2, 2);
}

#[test]
fn rank_slices_are_disjoint_and_cover_the_global_batch() {
    let (b, s) = (12usize, 3usize);
    let batch = HostBatch {
        inputs: (0..(b * s) as i32).collect(),
        labels: (0..(b * s) as i32).map(|x| -x).collect(),
        puzzle_identifiers: (0..b as i32).collect(),
        batch_size: b,
        seq_len: s,
        valid: 10,
    };
    for world in [1usize, 2, 3, 4, 6] {
        let parts: Vec<HostBatch> = (0..world)
            .map(|r| batch.rows(hrm_dist::shard(b, r, world)))
            .collect();
        let ids: Vec<i32> = parts
            .iter()
            .flat_map(|p| p.puzzle_identifiers.clone())
            .collect();
        assert_eq!(ids, batch.puzzle_identifiers, "world {world}");
        let inputs: Vec<i32> = parts.iter().flat_map(|p| p.inputs.clone()).collect();
        assert_eq!(inputs, batch.inputs);
        let valid: usize = parts.iter().map(|p| p.valid).sum();
        assert_eq!(valid, 10, "world {world}: the real rows are counted once");
    }
}

#[test]
fn a_batch_that_does_not_split_is_refused() {
    let mut t = Trainer::new(
        Model::new(&config(), test_device(), 7).unwrap(),
        step_config(1),
    )
    .unwrap();
    let c = hrm_dist::local::world(3, Duration::from_secs(1)).remove(0);
    let e = t.set_collective(Box::new(c)).unwrap_err().to_string();
    assert!(e.contains("do not split evenly into 3 ranks"), "{e}");
}
