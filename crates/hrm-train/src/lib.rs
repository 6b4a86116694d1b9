//! hrm-train: AdamATan2 and sign-SGD optimizers, the LR schedule, the micro-batched training step and a step benchmark.
//! Follows the reference's `pretrain.py`, `models/sparse_embedding.py` and the `adam-atan2` package.
//!
//! Entry points: [`optim::AdamATan2`], [`optim::SignSgd`], [`schedule::lr_at`], [`schedule::total_steps`],
//! [`step::Trainer::train_step`] and [`bench::train_step_bench`]; the recipe-driven training loop with checkpoints
//! and exact resume [`run::train`], its checkpoints [`checkpoint::save_checkpoint`] /
//! [`checkpoint::load_checkpoint`], and inference into a predictions folder [`predict::predict`].

pub mod bench;
pub mod checkpoint;
pub mod dataset_dir;
pub mod ema;
pub mod error;
pub mod memory;
pub mod official;
pub mod optim;
pub mod predict;
pub mod progress;
pub mod run;
pub mod run_error;
pub mod schedule;
pub mod solve;
pub mod step;
pub mod stop;
pub mod synthetic;
pub mod tensorboard;
pub mod world;

pub use error::TrainError;

// The data sampler writes the ignore label the model's losses skip: two crates that do not depend on each other
// hold the value, and this crate, which joins them, checks at compile time that they agree.
const _: () = assert!(
    hrm_model::batch::LOSS_IGNORE_LABEL == hrm_data::sampler::LOSS_IGNORE_LABEL as i64,
    "hrm-model's and hrm-data's LOSS_IGNORE_LABEL differ"
);
pub use run_error::RunError;
