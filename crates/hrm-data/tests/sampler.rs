//! Sampler tests: batch composition rules of spec 7.4, exact resume, prefetch equivalence, and the
//! padded evaluation reader.

use hrm_data::layout::{SplitBuilder, SplitData};
use hrm_data::sampler::{
    EvalBatches, Prefetcher, SampleEvent, SamplerConfig, SamplerState, TrainSampler,
    LOSS_IGNORE_LABEL,
};
use std::collections::HashMap;
use std::sync::Arc;

const S: usize = 3;

/// Groups of puzzles with the given example counts; example e has input tokens [g+1, p%5+1, e%5+1],
/// label [0, x, x] and puzzle id = global puzzle index + 1.
/// Maps a puzzle id (as a one-element vector) to its (group, puzzle) indices.
type Owners = HashMap<Vec<i32>, (usize, usize)>;

fn split(groups: &[Vec<usize>]) -> (Arc<SplitData>, Owners) {
    let mut b = SplitBuilder::new(S);
    let mut owner = HashMap::new();
    let mut p = 0usize;
    let mut e = 0usize;
    for (g, puzzles) in groups.iter().enumerate() {
        for &n in puzzles {
            for _ in 0..n {
                let x = [(g % 5 + 1) as u8, (p % 5 + 1) as u8, (e % 5 + 1) as u8];
                b.push_example(&x, &[0, x[1], x[2]]);
                e += 1;
            }
            b.end_puzzle(p as i32 + 1);
            owner.insert(vec![p as i32 + 1], (g, p));
            p += 1;
        }
        b.end_group();
    }
    (Arc::new(b.finish(6, p as u32 + 1)), owner)
}

fn cfg(bs: usize, epochs: usize) -> SamplerConfig {
    SamplerConfig {
        global_batch_size: bs,
        epochs_per_iter: epochs,
        seed: 11,
    }
}

fn events(s: &mut TrainSampler, n: usize) -> Vec<hrm_data::sampler::Sampled> {
    (0..n).map(|_| s.next_event()).collect()
}

#[test]
fn batches_follow_the_group_rules() {
    let groups: Vec<Vec<usize>> = (0..7).map(|g| vec![1 + g % 3, 2, 5]).collect();
    let (data, owner) = split(&groups);
    let mut s = TrainSampler::new(Arc::clone(&data), cfg(8, 3)).unwrap();
    let mut batches = 0;
    loop {
        match s.next_event().event {
            SampleEvent::Batch(b) => {
                batches += 1;
                assert_eq!((b.batch_size, b.seq_len, b.valid), (8, S, 8));
                assert_eq!(b.inputs.len(), 8 * S);
                assert_eq!(b.puzzle_identifiers.len(), 8);
                for r in 0..8 {
                    assert_eq!(b.labels[r * S], LOSS_IGNORE_LABEL);
                    assert_eq!(b.labels[r * S + 1], b.inputs[r * S + 1]);
                    // The row's input belongs to the puzzle it is labelled with.
                    let (g, p) = owner[&vec![b.puzzle_identifiers[r]]];
                    assert_eq!(b.inputs[r * S] as usize, g % 5 + 1);
                    assert_eq!(b.inputs[r * S + 1] as usize, p % 5 + 1);
                }
                // Consecutive rows of one puzzle are distinct examples (drawn without replacement).
                let mut seen = std::collections::HashSet::new();
                for r in 0..8 {
                    let key = (b.puzzle_identifiers[r], b.inputs[r * S + 2]);
                    let run_start =
                        r == 0 || b.puzzle_identifiers[r - 1] != b.puzzle_identifiers[r];
                    if run_start {
                        seen.clear();
                    }
                    assert!(seen.insert(key), "example repeated within a puzzle visit");
                }
            }
            SampleEvent::IterationEnd {
                iteration,
                batches: n,
            } => {
                assert_eq!(iteration, 0);
                assert_eq!(n, batches);
                break;
            }
        }
    }
    // 21 group visits of 1..5 examples each cannot fill more than 105 / 8 batches.
    assert!((21 / 8..=105 / 8).contains(&batches), "{batches}");
    assert_eq!(
        s.state(),
        SamplerState {
            iteration: 1,
            position: 0,
            batches_in_iteration: 0
        }
    );
}

#[test]
fn each_iteration_visits_every_group_epochs_times() {
    // One puzzle of one example per group: every visit adds exactly one row.
    let groups: Vec<Vec<usize>> = (0..5).map(|_| vec![1]).collect();
    let (data, owner) = split(&groups);
    let mut s = TrainSampler::new(data, cfg(4, 4)).unwrap();
    let mut counts = [0usize; 5];
    let mut rows = 0;
    while let Some(b) = s.next_batch() {
        for id in &b.puzzle_identifiers {
            counts[owner[&vec![*id]].0] += 1;
        }
        rows += b.valid;
    }
    // 20 visits, 5 full batches of 4, nothing dropped; each group 4 times.
    assert_eq!(rows, 20);
    assert_eq!(counts, [4; 5]);
    // The next iteration uses a different order.
    let a: Vec<_> = std::iter::from_fn(|| s.next_batch()).collect();
    let mut s0 = TrainSampler::new(Arc::clone(s.data()), cfg(4, 4)).unwrap();
    let b: Vec<_> = std::iter::from_fn(|| s0.next_batch()).collect();
    assert_ne!(a, b);
}

#[test]
fn resume_reproduces_the_same_batches() {
    let groups: Vec<Vec<usize>> = (0..9).map(|g| vec![1 + g % 4, 3]).collect();
    let (data, _) = split(&groups);
    let mut full = TrainSampler::new(Arc::clone(&data), cfg(5, 2)).unwrap();
    let all = events(&mut full, 40);
    for cut in [1usize, 3, 7, 20] {
        let state = all[cut - 1].state_after;
        let json = serde_json::to_string(&state).unwrap();
        let restored: SamplerState = serde_json::from_str(&json).unwrap();
        let mut r = TrainSampler::resume(Arc::clone(&data), cfg(5, 2), restored).unwrap();
        assert_eq!(
            events(&mut r, 40 - cut),
            all[cut..].to_vec(),
            "resume after {cut}"
        );
    }
    assert!(all
        .iter()
        .any(|e| matches!(e.event, SampleEvent::IterationEnd { .. })));
    // Prefetching yields the same sequence.
    let mut pf = Prefetcher::spawn(TrainSampler::new(Arc::clone(&data), cfg(5, 2)).unwrap(), 3);
    let pre: Vec<_> = (0..40).map(|_| pf.next_event()).collect();
    assert_eq!(pre, all);
    drop(pf);
    // Another seed gives other batches.
    let mut other = TrainSampler::new(
        data,
        SamplerConfig {
            seed: 12,
            ..cfg(5, 2)
        },
    )
    .unwrap();
    assert_ne!(events(&mut other, 40), all);
}

#[test]
fn eval_reader_pads_the_last_batch() {
    let (data, _) = split(&[vec![2, 1], vec![3]]);
    let mut it = EvalBatches::new(Arc::clone(&data), 4).unwrap();
    assert_eq!(it.num_batches(), 2);
    let a = it.next().unwrap();
    let b = it.next().unwrap();
    assert!(it.next().is_none());
    assert_eq!((a.valid, b.valid), (4, 2));
    assert_eq!(a.puzzle_identifiers, [1, 1, 2, 3]);
    assert_eq!(b.puzzle_identifiers, [3, 3, 0, 0]);
    assert_eq!(&b.inputs[2 * S..], &[0; 2 * S]);
    assert_eq!(&b.labels[2 * S..], &[LOSS_IGNORE_LABEL; 2 * S]);
    let rows: Vec<i32> = a.inputs[..S].to_vec();
    assert_eq!(
        rows,
        data.input(0).iter().map(|&t| t as i32).collect::<Vec<_>>()
    );
    assert!(EvalBatches::new(data, 0).is_err());
}
