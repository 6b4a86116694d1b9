//! hrm-data: HRM's on-disk dataset layout, the ARC, Sudoku and Maze builders, the group sampler and prefetching.
//! Follows the reference's `dataset/*.py` and `puzzle_dataset.py`.
//!
//! * [`npy`]: `.npy` reading and (atomic, streaming) writing.
//! * [`layout`]: `identifiers.json`, `{train,test}/dataset.json`, the five `all__*.npy` arrays; the
//!   validating loader [`load_split`] and the atomic writers ([`write_dataset`], [`layout::DatasetWriter`]).
//! * [`arc`]: the ARC builder ([`build_arc`]), spec 1.2-1.4.
//! * [`sources`]: where ARC tasks come from: folders, task files and the ARC Prize combined format.
//! * [`trm_arc`]: TRM's ARC layout, byte for byte as TRM's builder writes it ([`numpy_rng`]: numpy's legacy
//!   generator; [`pyjson`]: Python's `json` model and `json.dump` bytes).
//! * [`sudoku`]: puzzle readers, the exact solver and the Sudoku builder, spec 1.5.
//! * [`maze`]: maze validation, generation and the maze builder, spec 1.6.
//! * [`budget`]: build sizes checked up front (the `num_aug` cap, planned bytes against free disk space).
//! * [`sampler`]: the training sampler of spec 7.4, the evaluation reader and the prefetcher.
//!
//! No tensors here: batches ([`HostBatch`]) are plain `Vec<i32>`s that the trainer turns into tensors.

pub mod arc;
pub mod budget;
pub mod error;
mod fsutil;
pub mod layout;
pub mod maze;
pub mod npy;
pub mod numpy_rng;
pub mod pyjson;
pub mod sampler;
pub mod sources;
pub mod sudoku;
pub mod trm_arc;

pub use arc::{build_arc, ArcBuildConfig, ArcBuildStats};
pub use error::DataError;
pub use fsutil::{check_folder_holds_only, write_atomic};
pub use layout::{load_split, write_dataset, DatasetMetadata, SplitData, DATASET_IGNORE_LABEL};
pub use sampler::{EvalBatches, HostBatch, Prefetcher, SamplerConfig, SamplerState, TrainSampler};

/// A builder's worker count: `threads`, or every available core when it is 0 (the output never depends on it).
pub(crate) fn resolve_threads(threads: usize) -> usize {
    if threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        threads
    }
}
