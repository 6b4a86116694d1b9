//! hrm-train: AdamATan2 and sign-SGD optimizers, the LR schedule, the micro-batched training step and a step benchmark.

pub mod bench;
pub mod error;
pub mod optim;
pub mod schedule;
pub mod step;

pub use error::TrainError;
