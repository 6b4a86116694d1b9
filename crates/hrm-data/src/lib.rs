//! hrm-data: HRM's on-disk dataset layout, the ARC, Sudoku and Maze builders, the group sampler and prefetching.

pub mod arc;
pub mod error;
mod fsutil;
pub mod layout;
pub mod maze;
pub mod npy;
pub mod sampler;
pub mod sudoku;

pub use arc::{build_arc, ArcBuildConfig, ArcBuildStats};
pub use error::DataError;
pub use fsutil::write_atomic;
pub use layout::{load_split, write_dataset, DatasetMetadata, SplitData};
