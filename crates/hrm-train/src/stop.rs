//! Graceful stop: a process-wide flag that a signal handler (the `hrm` binary installs one for SIGINT and
//! SIGTERM) sets, and that the training loop and `predict` poll between steps and batches.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// The process-wide stop flag (shared with signal handlers, e.g. `signal_hook::flag::register`).
pub fn flag() -> Arc<AtomicBool> {
    Arc::clone(FLAG.get_or_init(|| Arc::new(AtomicBool::new(false))))
}

/// Whether a stop was requested (a signal arrived, or [`request`] was called).
pub fn requested() -> bool {
    FLAG.get().is_some_and(|f| f.load(Ordering::SeqCst))
}

/// Requests a graceful stop, as a signal does.
pub fn request() {
    flag().store(true, Ordering::SeqCst);
}

/// Why a run stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopReason {
    /// Every iteration (`train.epochs / train.eval_interval`) ran.
    Completed,
    /// `train.max_steps` was reached.
    MaxSteps,
    /// `train.max_minutes` was reached.
    MaxMinutes,
    /// The resumed checkpoint was already final.
    AlreadyFinished,
    /// A graceful stop was requested ([`requested`], e.g. SIGINT): the current step finished and a checkpoint
    /// was written; `--resume` continues exactly.
    Interrupted,
}
