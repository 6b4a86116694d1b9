//! FLOP count of one training step, following the module calls of `model.rs` / `trm.rs` (hrm-spec 4–5, trm-spec 2–3)
//! and the layer shapes of `layers.rs`, for the MFU figure of `hrm bench train-step`.
//!
//! # Convention
//!
//! - A matmul `[m, k] × [k, n]` costs `2·m·k·n` FLOPs; every `CastedLinear` is such a matmul over all rows it is
//!   applied to (biases are ignored).
//! - Attention (SDPA, non-causal, so no halving): `QKᵀ` costs `2·S²·head_dim` per head, `2·S²·D` summed over the
//!   heads, and `A·V` the same: `4·B·S²·D` per attention call, with S = S+P the model's sequence length.
//! - TRM's `mlp_t` is a SwiGLU `S+P` wide applied to the `B·D` rows of the transposed state.
//! - The LM head runs on all `S+P` positions (the code narrows the logits afterwards): `2·B·(S+P)·D·V`; the Q head
//!   runs on position 0: `2·B·D·2`.
//! - Embedding lookups, the input injection, norms, RoPE, activations, the loss, the optimizer updates and every
//!   other elementwise op count 0.
//! - The backward of a gradient-carrying call costs 2× its forward (gradients w.r.t. inputs and weights); calls
//!   under `no_grad` (the early cycles and the Q-target pass) cost only their forward.
//!
//! A step with k micro-batches of B/k sequences costs the same as one batch of B: every term is linear in B.

use crate::config::{swiglu_intermediate, ModelConfig, ModelKind};

/// The FLOPs of one training step, split by what autograd does with them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepFlops {
    /// Forward FLOPs run without autograd: the early cycles of the recursion and, when the config uses it, the
    /// whole Q-target inner forward (its recursion and heads).
    pub forward_no_grad: f64,
    /// Forward FLOPs of the gradient-carrying calls: HRM's last L and H call, TRM's last cycle, and the heads.
    pub forward_grad: f64,
    /// Backward FLOPs: 2 × `forward_grad`.
    pub backward: f64,
    /// `forward_no_grad + forward_grad + backward`.
    pub total: f64,
}

/// FLOPs of a SwiGLU `width` wide (intermediate size as the code computes it) applied to `rows` rows:
/// gate/up `2·rows·width·2I` plus down `2·rows·I·width`.
pub fn swiglu_flops(config: &ModelConfig, width: i64, rows: f64) -> f64 {
    let inter = swiglu_intermediate(config.expansion, width) as f64;
    let w = width as f64;
    2.0 * rows * w * (2.0 * inter) + 2.0 * rows * inter * w
}

/// FLOPs of one attention call on `batch` sequences of S+P positions: QKV projection `2·N·D·3D`, `QKᵀ` and `A·V`
/// `2·B·S²·D` each, output projection `2·N·D·D`, with N = B·(S+P).
pub fn attention_flops(config: &ModelConfig, batch: i64) -> f64 {
    let s = config.model_seq_len() as f64;
    let d = config.hidden_size as f64;
    let b = batch as f64;
    let n = b * s;
    2.0 * n * d * (3.0 * d) + 4.0 * b * s * s * d + 2.0 * n * d * d
}

/// FLOPs of one block (token mixer — attention or TRM's `mlp_t` — plus the channel SwiGLU) on `batch` sequences.
pub fn block_flops(config: &ModelConfig, batch: i64) -> f64 {
    let s = config.model_seq_len();
    let d = config.hidden_size;
    let b = batch as f64;
    let mixer = if config.uses_mlp_t() {
        swiglu_flops(config, s, b * d as f64)
    } else {
        attention_flops(config, batch)
    };
    mixer + swiglu_flops(config, d, b * s as f64)
}

/// FLOPs of one call of a reasoning module of `layers` blocks on `batch` sequences.
pub fn module_call_flops(config: &ModelConfig, layers: i64, batch: i64) -> f64 {
    layers as f64 * block_flops(config, batch)
}

/// FLOPs of the LM head (on all S+P positions) and the Q head (on position 0) for `batch` sequences.
pub fn heads_flops(config: &ModelConfig, batch: i64) -> f64 {
    let s = config.model_seq_len() as f64;
    let d = config.hidden_size as f64;
    let v = config.vocab_size as f64;
    let b = batch as f64;
    2.0 * b * s * d * v + 2.0 * b * d * 2.0
}

/// Whether a training step runs the extra no-grad Q-target inner forward: [`ModelConfig::uses_q_target`] (HRM
/// always, TRM without `no_ACT_continue`) and more than one ACT segment (`halt_max_steps > 1`).
pub fn runs_q_target_pass(config: &ModelConfig) -> bool {
    config.uses_q_target() && config.halt_max_steps > 1
}

/// FLOPs of one full inner forward's recursion (all module calls, no heads), split into (no-grad, grad) parts as
/// a training segment runs it.
fn recursion_flops(config: &ModelConfig, batch: i64) -> (f64, f64) {
    let (h, l) = (config.h_cycles as f64, config.l_cycles as f64);
    let l_call = module_call_flops(config, config.l_layers, batch);
    match config.name {
        ModelKind::Hrm => {
            let h_call = module_call_flops(config, config.h_layers, batch);
            // H·L − 1 L calls and H − 1 H calls without grad; the last L and H call with grad.
            ((h * l - 1.0) * l_call + (h - 1.0) * h_call, l_call + h_call)
        }
        // One network: H − 1 cycles of (L + 1) calls without grad, the last cycle with grad.
        ModelKind::Trm => ((h - 1.0) * (l + 1.0) * l_call, (l + 1.0) * l_call),
    }
}

/// The FLOPs of one training step (one ACT segment, forward and backward) on a global batch of `batch`
/// sequences, by the convention of the module docs. Pure arithmetic on the config.
///
/// - no grad: the early cycles, plus the Q-target pass (a full recursion and the heads) when
///   [`runs_q_target_pass`];
/// - grad: HRM's last L and H call, or TRM's last cycle (L_cycles + 1 calls), plus the LM and Q heads;
/// - backward: 2 × grad.
pub fn train_step_flops(config: &ModelConfig, batch: i64) -> StepFlops {
    let (no_grad, grad) = recursion_flops(config, batch);
    let heads = heads_flops(config, batch);
    let q_target = if runs_q_target_pass(config) {
        no_grad + grad + heads
    } else {
        0.0
    };
    let forward_no_grad = no_grad + q_target;
    let forward_grad = grad + heads;
    let backward = 2.0 * forward_grad;
    StepFlops {
        forward_no_grad,
        forward_grad,
        backward,
        total: forward_no_grad + forward_grad + backward,
    }
}

/// The dense (no sparsity) bf16 tensor-core peak in FLOP/s of a GPU named as `nvidia-smi --query-gpu=name`
/// prints it (e.g. `NVIDIA H200`, `NVIDIA H100 80GB HBM3`, `NVIDIA H100 PCIe`); `None` for an unknown model.
///
/// H200 / H100 SXM 989e12, H200 NVL / H100 NVL 835e12, H100 PCIe 756e12, A100 312e12, L40S 362e12,
/// RTX 4090 165e12 (the vendors' data sheets, sparsity figures halved).
pub fn dense_bf16_peak_flops(gpu_name: &str) -> Option<f64> {
    let n = gpu_name.to_ascii_uppercase();
    let has = |s: &str| n.contains(s);
    if has("H200") || has("H100") {
        if has("NVL") {
            Some(835e12)
        } else if has("PCIE") {
            Some(756e12)
        } else {
            Some(989e12)
        }
    } else if has("A100") {
        Some(312e12)
    } else if has("L40S") {
        Some(362e12)
    } else if has("4090") {
        Some(165e12)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PosEncoding;

    /// D = 8, 1 head, expansion 4 (round(4·8·2/3) = 21 → I = 256), S = 4 plus a 1-token prefix (S+P = 5),
    /// V = 12, 1 + 1 layers, 1x1 cycles, 2 ACT segments.
    fn tiny(name: ModelKind) -> ModelConfig {
        let mut c = ModelConfig::paper(12, 4, 3);
        c.name = name;
        c.batch_size = 2;
        c.hidden_size = 8;
        c.num_heads = 1;
        c.expansion = 4.0;
        c.puzzle_emb_ndim = 8;
        c.puzzle_emb_len = 1;
        c.h_layers = if name == ModelKind::Hrm { 1 } else { 0 };
        c.l_layers = 1;
        c.h_cycles = 1;
        c.l_cycles = 1;
        c.halt_max_steps = 2;
        c.pos_encodings = PosEncoding::Rope;
        c.validate().unwrap();
        assert_eq!((c.model_seq_len(), c.swiglu_intermediate()), (5, 256));
        c
    }

    #[test]
    fn tiny_hrm_matches_a_hand_count() {
        // One attention block on one sequence of 5 positions, D = 8, I = 256:
        //   qkv     2·5·8·24  =  1_920
        //   QKᵀ     2·5·5·8   =    400
        //   A·V     2·5·5·8   =    400
        //   o_proj  2·5·8·8   =    640
        //   gate_up 2·5·8·512 = 40_960
        //   down    2·5·256·8 = 20_480
        //   block             = 64_800
        // Heads per sequence: lm_head 2·5·8·12 = 960, q_head 2·8·2 = 32 → 992.
        // HRM 1x1: no early calls; grad = L call + H call + heads = 64_800 + 64_800 + 992 = 130_592 per sequence.
        // halt_max_steps 2 → the Q-target pass repeats the whole inner forward without grad: 130_592.
        // Batch 2: no grad 261_184, grad 261_184, backward 522_368, total 1_044_736.
        let f = train_step_flops(&tiny(ModelKind::Hrm), 2);
        assert_eq!(f.forward_no_grad, 261_184.0);
        assert_eq!(f.forward_grad, 261_184.0);
        assert_eq!(f.backward, 522_368.0);
        assert_eq!(f.total, 1_044_736.0);

        // Without ACT segments (halt_max_steps 1) there is no Q-target pass.
        let single = ModelConfig {
            halt_max_steps: 1,
            ..tiny(ModelKind::Hrm)
        };
        assert_eq!(train_step_flops(&single, 2).forward_no_grad, 0.0);

        // 2x2 cycles: early calls = 3 L + 1 H = 4 blocks = 259_200 per sequence; the Q-target pass = 4 L + 2 H
        // blocks + heads = 6·64_800 + 992 = 389_792; no grad per sequence 648_992, ×2 = 1_297_984.
        let cycles = ModelConfig {
            h_cycles: 2,
            l_cycles: 2,
            ..tiny(ModelKind::Hrm)
        };
        assert_eq!(train_step_flops(&cycles, 2).forward_no_grad, 1_297_984.0);
    }

    #[test]
    fn tiny_trm_matches_a_hand_count() {
        // TRM, 2 layers, 1x1 cycles, no_ACT_continue (no Q-target pass): one cycle of L_cycles + 1 = 2 calls of a
        // 2-block network, all with grad: 4 blocks · 64_800 + heads 992 = 260_192 per sequence.
        // Batch 2: grad 520_384, backward 1_040_768, total 1_561_152.
        let c = ModelConfig {
            l_layers: 2,
            ..tiny(ModelKind::Trm)
        };
        let f = train_step_flops(&c, 2);
        assert_eq!(f.forward_no_grad, 0.0);
        assert_eq!(f.forward_grad, 520_384.0);
        assert_eq!(f.backward, 1_040_768.0);
        assert_eq!(f.total, 1_561_152.0);

        // mlp_t: a SwiGLU 5 wide (round(4·5·2/3) = 13 → I = 256) on the 8 rows of the transposed sequence:
        //   gate_up 2·8·5·512 = 40_960, down 2·8·256·5 = 20_480 → 61_440, plus the channel MLP 61_440
        //   → block 122_880; 4 blocks + heads = 491_520 + 992 = 492_512 per sequence, ×2 = 985_024.
        let mlp_t = ModelConfig { mlp_t: true, ..c };
        assert_eq!(train_step_flops(&mlp_t, 2).forward_grad, 985_024.0);

        // no_ACT_continue off with 2 segments: the Q-target pass runs the inner forward again without grad.
        let q = ModelConfig {
            no_act_continue: false,
            ..c
        };
        assert_eq!(train_step_flops(&q, 2).forward_no_grad, 520_384.0);
    }

    #[test]
    fn trm_grad_part_is_linear_in_l_cycles_and_hrm_grad_part_ignores_cycles() {
        let trm = ModelConfig::trm(12, 81, 16);
        let grad = |l: i64| {
            train_step_flops(
                &ModelConfig {
                    l_cycles: l,
                    ..trm.clone()
                },
                8,
            )
            .forward_grad
        };
        let (g1, g2, g3, g6) = (grad(1), grad(2), grad(3), grad(6));
        let per_call = module_call_flops(&trm, trm.l_layers, 8);
        assert!(per_call > 0.0);
        assert_eq!(g2 - g1, per_call);
        assert_eq!(g3 - g2, per_call);
        assert_eq!(g6 - g3, 3.0 * per_call);

        let hrm = ModelConfig::paper(12, 81, 16);
        let at = |h: i64, l: i64| {
            train_step_flops(
                &ModelConfig {
                    h_cycles: h,
                    l_cycles: l,
                    ..hrm.clone()
                },
                8,
            )
        };
        assert_eq!(at(1, 1).forward_grad, at(4, 8).forward_grad);
        assert!(at(4, 8).forward_no_grad > at(1, 1).forward_no_grad);
    }

    #[test]
    fn total_is_linear_in_the_batch() {
        for c in [ModelConfig::paper(12, 900, 1), ModelConfig::trm(12, 900, 1)] {
            let one = train_step_flops(&c, 1).total;
            assert_eq!(train_step_flops(&c, 768).total, 768.0 * one);
        }
    }

    #[test]
    fn gpu_names_map_to_dense_bf16_peaks() {
        assert_eq!(dense_bf16_peak_flops("NVIDIA H200"), Some(989e12));
        assert_eq!(dense_bf16_peak_flops("NVIDIA H100 80GB HBM3"), Some(989e12));
        assert_eq!(dense_bf16_peak_flops("NVIDIA H100 PCIe"), Some(756e12));
        assert_eq!(dense_bf16_peak_flops("NVIDIA A100-SXM4-80GB"), Some(312e12));
        assert_eq!(dense_bf16_peak_flops("NVIDIA L40S"), Some(362e12));
        assert_eq!(
            dense_bf16_peak_flops("NVIDIA GeForce RTX 4090"),
            Some(165e12)
        );
        assert_eq!(dense_bf16_peak_flops("Tesla T4"), None);
    }
}
