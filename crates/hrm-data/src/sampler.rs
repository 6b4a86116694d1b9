//! Batching (spec 7.4): the training group sampler with exactly resumable state, the sequential padded
//! evaluation reader, and a background prefetcher that yields the same sequence.
//! Follows the reference's `puzzle_dataset.py`.

use crate::error::DataError;
use crate::layout::{SplitData, DATASET_IGNORE_LABEL};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The label of an unsupervised position in a [`HostBatch`], in the model's loss encoding (-100, the value of
/// `hrm_model::LOSS_IGNORE_LABEL`); the dataset encoding is [`DATASET_IGNORE_LABEL`] (0).
pub const LOSS_IGNORE_LABEL: i32 = -100;

/// One batch of examples in host memory, ready to become tensors (the trainer turns it into an `hrm_model::Batch`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostBatch {
    /// Input tokens, [batch_size * seq_len] row-major.
    pub inputs: Vec<i32>,
    /// Labels, [batch_size * seq_len]; on-disk label 0 becomes [`LOSS_IGNORE_LABEL`] (-100).
    pub labels: Vec<i32>,
    /// Puzzle identifiers, [batch_size].
    pub puzzle_identifiers: Vec<i32>,
    /// Rows B.
    pub batch_size: usize,
    /// Tokens per row S.
    pub seq_len: usize,
    /// Real rows: the first `valid` rows are examples, the rest padding (inputs 0, labels -100, id 0).
    pub valid: usize,
}

impl HostBatch {
    /// Rows `range` of the batch as a batch of their own (a data-parallel rank's slice of a global batch); its
    /// `valid` counts the real rows inside the range.
    pub fn rows(&self, range: std::ops::Range<usize>) -> HostBatch {
        let s = self.seq_len;
        let (a, b) = (
            range.start.min(self.batch_size),
            range.end.min(self.batch_size),
        );
        HostBatch {
            inputs: self.inputs[a * s..b * s].to_vec(),
            labels: self.labels[a * s..b * s].to_vec(),
            puzzle_identifiers: self.puzzle_identifiers[a..b].to_vec(),
            batch_size: b - a,
            seq_len: s,
            valid: self.valid.clamp(a, b) - a,
        }
    }

    fn with_capacity(batch_size: usize, seq_len: usize) -> Self {
        HostBatch {
            inputs: Vec::with_capacity(batch_size * seq_len),
            labels: Vec::with_capacity(batch_size * seq_len),
            puzzle_identifiers: Vec::with_capacity(batch_size),
            batch_size,
            seq_len,
            valid: 0,
        }
    }

    fn push(&mut self, data: &SplitData, example: usize, id: i32) {
        self.inputs
            .extend(data.input(example).iter().map(|&t| i32::from(t)));
        self.labels.extend(data.label(example).iter().map(|&t| {
            if t == DATASET_IGNORE_LABEL {
                LOSS_IGNORE_LABEL
            } else {
                i32::from(t)
            }
        }));
        self.puzzle_identifiers.push(id);
        self.valid += 1;
    }

    fn pad_to_full(&mut self) {
        let n = self.batch_size * self.seq_len;
        self.inputs.resize(n, 0);
        self.labels.resize(n, LOSS_IGNORE_LABEL);
        self.puzzle_identifiers.resize(self.batch_size, 0);
    }
}

/// Settings of the training sampler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SamplerConfig {
    /// Examples per batch (768 in the reference).
    pub global_batch_size: usize,
    /// Epochs (passes over the groups) per iteration (the reference's eval_interval).
    pub epochs_per_iter: usize,
    /// The seed.
    pub seed: u64,
}

/// Where the sampler stands: the iteration and the next position in that iteration's group order.
///
/// All random draws of a group visit come from an RNG derived from (seed, iteration, position), so
/// restoring this state reproduces the following batches exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct SamplerState {
    /// The iteration (0-based).
    pub iteration: u64,
    /// The next position in the iteration's group order.
    pub position: u64,
    /// Batches produced so far in this iteration.
    pub batches_in_iteration: u64,
}

/// What the sampler produced next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SampleEvent {
    /// A full training batch.
    Batch(HostBatch),
    /// The iteration ended (its last partial batch was dropped); the next event starts iteration + 1.
    IterationEnd {
        /// The iteration that ended.
        iteration: u64,
        /// How many batches it produced.
        batches: u64,
    },
}

/// An event and the sampler state right after it (checkpoint this to resume after the event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sampled {
    /// The event.
    pub event: SampleEvent,
    /// The state after the event.
    pub state_after: SamplerState,
}

/// Mixes two values into one RNG seed (SplitMix64 finaliser).
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b
        .wrapping_add(0x9E37_79B9_7F4A_7C15)
        .wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The training sampler of spec 7.4.
///
/// Per iteration the group order is the concatenation of `epochs_per_iter` independent permutations of
/// the group ids (RNG `ChaCha8(seed ⊕ iteration)`, stream 0). Walking the order, each group contributes
/// one uniformly chosen puzzle and all of that puzzle's examples in random order; when they would
/// overflow the batch, a random subset that fits is taken and the rest dropped. A batch is complete at
/// `global_batch_size`; the last partial batch of each iteration is dropped. The draws of the visit at
/// position k use stream k + 1 of the same seed.
pub struct TrainSampler {
    data: Arc<SplitData>,
    config: SamplerConfig,
    state: SamplerState,
    order: Vec<u32>,
    order_iteration: Option<u64>,
    scratch: Vec<usize>,
}

impl TrainSampler {
    /// Starts at iteration 0, position 0.
    pub fn new(data: Arc<SplitData>, config: SamplerConfig) -> Result<Self, DataError> {
        Self::resume(data, config, SamplerState::default())
    }

    /// Resumes from a saved state.
    pub fn resume(
        data: Arc<SplitData>,
        config: SamplerConfig,
        state: SamplerState,
    ) -> Result<Self, DataError> {
        if config.global_batch_size == 0 {
            return Err(DataError::config("global_batch_size", "must be positive"));
        }
        if config.epochs_per_iter == 0 {
            return Err(DataError::config("epochs_per_iter", "must be positive"));
        }
        if data.num_groups() == 0 {
            return Err(DataError::config("data", "the split has no groups"));
        }
        let len = (data.num_groups() * config.epochs_per_iter) as u64;
        if state.position > len {
            return Err(DataError::config(
                "state.position",
                format!("{} is past the order length {len}", state.position),
            ));
        }
        Ok(TrainSampler {
            data,
            config,
            state,
            order: Vec::new(),
            order_iteration: None,
            scratch: Vec::new(),
        })
    }

    /// The current state (checkpoint it to resume exactly).
    pub fn state(&self) -> SamplerState {
        self.state
    }

    /// The configuration.
    pub fn config(&self) -> SamplerConfig {
        self.config
    }

    /// The split being sampled.
    pub fn data(&self) -> &Arc<SplitData> {
        &self.data
    }

    fn iteration_seed(&self, iteration: u64) -> u64 {
        mix(self.config.seed, iteration)
    }

    fn ensure_order(&mut self) {
        if self.order_iteration == Some(self.state.iteration) {
            return;
        }
        let g = self.data.num_groups() as u32;
        let mut rng = ChaCha8Rng::seed_from_u64(self.iteration_seed(self.state.iteration));
        self.order.clear();
        for _ in 0..self.config.epochs_per_iter {
            let start = self.order.len();
            self.order.extend(0..g);
            self.order[start..].shuffle(&mut rng);
        }
        self.order_iteration = Some(self.state.iteration);
    }

    /// Produces the next batch or the end of the current iteration.
    pub fn next_event(&mut self) -> Sampled {
        self.ensure_order();
        let bs = self.config.global_batch_size;
        let data = Arc::clone(&self.data);
        let mut batch = HostBatch::with_capacity(bs, data.seq_len());
        let seed = self.iteration_seed(self.state.iteration);
        while batch.valid < bs && (self.state.position as usize) < self.order.len() {
            let pos = self.state.position;
            let group = self.order[pos as usize] as usize;
            self.state.position += 1;
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(pos + 1);
            let puzzles = data.group_puzzles(group);
            if puzzles.is_empty() {
                continue;
            }
            let p = rng.random_range(puzzles);
            let ex = data.puzzle_examples(p);
            let take = ex.len().min(bs - batch.valid);
            // A random subset of `take` examples in random order (partial Fisher-Yates).
            self.scratch.clear();
            self.scratch.extend(ex);
            for k in 0..take {
                let j = rng.random_range(k..self.scratch.len());
                self.scratch.swap(k, j);
                batch.push(&data, self.scratch[k], data.puzzle_identifiers[p]);
            }
        }
        if batch.valid == bs {
            self.state.batches_in_iteration += 1;
            Sampled {
                event: SampleEvent::Batch(batch),
                state_after: self.state,
            }
        } else {
            let ended = SampleEvent::IterationEnd {
                iteration: self.state.iteration,
                batches: self.state.batches_in_iteration,
            };
            self.state = SamplerState {
                iteration: self.state.iteration + 1,
                position: 0,
                batches_in_iteration: 0,
            };
            Sampled {
                event: ended,
                state_after: self.state,
            }
        }
    }

    /// The next batch of the current iteration, or `None` at its end (the sampler then moves on to the
    /// next iteration).
    pub fn next_batch(&mut self) -> Option<HostBatch> {
        match self.next_event().event {
            SampleEvent::Batch(b) => Some(b),
            SampleEvent::IterationEnd { .. } => None,
        }
    }
}

/// Reads a split sequentially in batches of `batch_size` for evaluation; the last batch is padded
/// (inputs 0, labels -100, puzzle id 0) and its `valid` says how many rows are real.
pub struct EvalBatches {
    data: Arc<SplitData>,
    batch_size: usize,
    next: usize,
    example_puzzle: Vec<i32>,
}

impl EvalBatches {
    /// Starts at example 0.
    pub fn new(data: Arc<SplitData>, batch_size: usize) -> Result<Self, DataError> {
        if batch_size == 0 {
            return Err(DataError::config("batch_size", "must be positive"));
        }
        let mut example_puzzle = Vec::with_capacity(data.num_examples());
        for p in 0..data.num_puzzles() {
            let id = data.puzzle_identifiers[p];
            example_puzzle.extend(data.puzzle_examples(p).map(|_| id));
        }
        Ok(EvalBatches {
            data,
            batch_size,
            next: 0,
            example_puzzle,
        })
    }

    /// The number of batches: ceil(N / batch_size).
    pub fn num_batches(&self) -> usize {
        self.data.num_examples().div_ceil(self.batch_size)
    }
}

impl Iterator for EvalBatches {
    type Item = HostBatch;

    fn next(&mut self) -> Option<HostBatch> {
        let n = self.data.num_examples();
        if self.next >= n {
            return None;
        }
        let mut b = HostBatch::with_capacity(self.batch_size, self.data.seq_len());
        let end = (self.next + self.batch_size).min(n);
        for i in self.next..end {
            b.push(&self.data, i, self.example_puzzle[i]);
        }
        self.next = end;
        b.pad_to_full();
        Some(b)
    }
}

/// Runs a [`TrainSampler`] on a background thread, `depth` events ahead, through a bounded channel.
///
/// The events are exactly those the sampler would give without prefetching. Dropping the prefetcher
/// stops the thread.
pub struct Prefetcher {
    rx: Option<crossbeam_channel::Receiver<Sampled>>,
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Prefetcher {
    /// Moves `sampler` to a new thread that keeps up to `depth` events ready (at least 1).
    pub fn spawn(mut sampler: TrainSampler, depth: usize) -> Self {
        let (tx, rx) = crossbeam_channel::bounded(depth.max(1));
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("hrm-prefetch".into())
            .spawn(move || {
                while !stop2.load(Ordering::Relaxed) {
                    if tx.send(sampler.next_event()).is_err() {
                        break;
                    }
                }
            })
            .expect("spawning the prefetch thread");
        Prefetcher {
            rx: Some(rx),
            stop,
            handle: Some(handle),
        }
    }

    /// The next event (blocks until it is ready).
    pub fn next_event(&mut self) -> Sampled {
        self.rx
            .as_ref()
            .and_then(|rx| rx.recv().ok())
            .expect("the prefetch thread stopped unexpectedly")
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.rx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
