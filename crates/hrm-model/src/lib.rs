//! hrm-model: the Hierarchical Reasoning Model (HRM) and the Tiny Recursive Model (TRM) on tch — layers, the
//! recursion (HRM: H/L modules with the one-step gradient; TRM: one network with full backpropagation through
//! the last cycle), ACT, losses and checkpoints with the reference parameter names.
//!
//! One [`Model`] type serves both; [`ModelConfig::name`] selects the model ([`ModelConfig::paper`] builds HRM's
//! paper architecture, [`ModelConfig::trm`] TRM's). TRM reads the config fields `puzzle_emb_len` (prefix tokens,
//! see [`ModelConfig::prefix_len`]), `mlp_t` (a SwiGLU across the sequence axis instead of attention) and
//! `no_ACT_continue` (halt on `q_halt > 0` without the Q-target pass); HRM ignores them.
//! Follows the reference's `models/hrm/hrm_act_v1.py`, `models/layers.py` and `models/losses.py`.
//!
//! Entry points: [`ModelConfig`], [`Model::new`], [`Model::initial_carry`], [`Model::forward_train`] /
//! [`Model::forward_eval`], [`act_loss_head`], [`Model::save_safetensors`] / [`Model::load_safetensors`].
//!
//! One training step (one ACT segment) looks like this; the optimizers live in hrm-train:
//!
//! ```no_run
//! use hrm_model::{act_loss_head, Batch, Model, ModelConfig};
//! use rand::SeedableRng;
//!
//! # fn main() -> Result<(), hrm_model::ModelError> {
//! let config = ModelConfig::paper(11, 81, 1);
//! let model = Model::new(&config, tch::Device::Cpu, 0)?;
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
//! let (b, s) = (2usize, 81usize);
//! let batch = Batch::from_vecs(&vec![1; b * s], &vec![2; b * s], &vec![0; b], b, s, tch::Device::Cpu)?;
//! let carry = model.initial_carry(&batch);
//! let (carry, out) = model.forward_train(&carry, &batch, &mut rng)?;
//! let loss = act_loss_head(&carry, &out, config.loss_type)?;
//! (&loss.loss / config.batch_size as f64).backward();
//! for (name, p) in model.named_parameters() {
//!     let _grad = p.grad(); // AdamATan2 reads this, keyed by `name`.
//!     let _ = name;
//! }
//! if let Some(local) = &out.puzzle_local {
//!     let _rows_grad = local.weights.grad(); // [B, puzzle_emb_ndim]; SignSGD sums it per id in local.ids.
//! }
//! model.zero_grad();
//! # let _ = carry; Ok(()) }
//! ```

pub mod batch;
pub mod checkpoint;
pub mod config;
pub mod error;
pub mod flops;
pub mod host;
pub mod init;
pub mod layers;
pub mod loss;
pub mod model;
mod trm;

pub use batch::{Batch, Carry, LOSS_IGNORE_LABEL};
pub use config::{DtypeKind, ForwardDtype, LossType, ModelConfig, ModelKind, PosEncoding};
pub use error::ModelError;
pub use loss::{
    act_loss_head, act_loss_head_on_device, log_stablemax, softmax_cross_entropy,
    stablemax_cross_entropy, ActMetrics, DeviceLossOutput, DeviceMetrics, LossOutput,
};
pub use model::{ActOutput, ForwardTrace, Level, Model, PuzzleLocal};

/// Devices a test body should run on: the CPU always, plus CUDA device 0 when available.
pub fn test_devices() -> Vec<tch::Device> {
    let mut devices = vec![tch::Device::Cpu];
    if tch::Cuda::is_available() {
        devices.push(tch::Device::Cuda(0));
    }
    devices
}

#[cfg(test)]
mod tests {
    #[test]
    fn cuda_runtime_is_linked() {
        assert!(
            tch::utils::has_cudart(),
            "libtorch_cuda is not linked: check build.rs"
        );
    }
}
