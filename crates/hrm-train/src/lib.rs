//! hrm-train: AdamATan2 and sign-SGD optimizers, the LR schedule, the micro-batched training step and a step benchmark.
//!
//! Entry points: [`optim::AdamATan2`], [`optim::SignSgd`], [`schedule::lr_at`], [`schedule::total_steps`],
//! [`step::Trainer::train_step`] and [`bench::train_step_bench`].

pub mod bench;
pub mod error;
pub mod optim;
pub mod schedule;
pub mod step;

pub use error::TrainError;
