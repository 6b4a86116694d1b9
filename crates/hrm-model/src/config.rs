//! `ModelConfig`: the reference `HierarchicalReasoningModel_ACTV1Config` fields plus the loss type, with derived sizes.
//! Follows the reference's `models/hrm/hrm_act_v1.py`.

use std::path::Path;

use serde::{Deserialize, Serialize};
use tch::Kind;

use crate::error::ModelError;

pub use hrm_arch::{ForwardDtype, LossType, ModelKind, PosEncoding};

/// The libtorch kind of a forward dtype (the one place the tensor-free [`ForwardDtype`] meets tch).
pub trait DtypeKind {
    /// The libtorch kind of this dtype.
    fn kind(self) -> Kind;
}

impl DtypeKind for ForwardDtype {
    fn kind(self) -> Kind {
        match self {
            ForwardDtype::Float32 => Kind::Float,
            ForwardDtype::Bfloat16 => Kind::BFloat16,
        }
    }
}

fn default_rms_norm_eps() -> f64 {
    1e-5
}
fn default_rope_theta() -> f64 {
    10000.0
}
fn default_forward_dtype() -> ForwardDtype {
    ForwardDtype::Bfloat16
}

/// The model configuration; serde names follow the reference config (`tiny_config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Which model: HRM (the default, also for the reference HRM configs, which have no such field) or TRM.
    #[serde(default)]
    pub name: ModelKind,
    /// Batch size the reference sizes its sparse-embedding scratch buffers with (informational here).
    pub batch_size: i64,
    /// Sequence length S without the puzzle prefix.
    pub seq_len: i64,
    /// Width of one puzzle-embedding row (0 disables the prefix).
    pub puzzle_emb_ndim: i64,
    /// Rows of the puzzle-embedding table.
    pub num_puzzle_identifiers: i64,
    /// Token vocabulary size V.
    pub vocab_size: i64,
    /// N: high-level cycles per segment.
    #[serde(rename = "H_cycles")]
    pub h_cycles: i64,
    /// T: low-level cycles per high-level cycle.
    #[serde(rename = "L_cycles")]
    pub l_cycles: i64,
    /// Blocks in the H module.
    #[serde(rename = "H_layers")]
    pub h_layers: i64,
    /// Blocks in the L module.
    #[serde(rename = "L_layers")]
    pub l_layers: i64,
    /// Hidden size D.
    pub hidden_size: i64,
    /// SwiGLU expansion factor.
    pub expansion: f64,
    /// Attention heads (key/value heads are the same number).
    pub num_heads: i64,
    /// Position encoding.
    pub pos_encodings: PosEncoding,
    /// RMSNorm epsilon.
    #[serde(default = "default_rms_norm_eps")]
    pub rms_norm_eps: f64,
    /// RoPE base θ.
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f64,
    /// M_max: segments after which a sequence is forced to halt.
    pub halt_max_steps: i64,
    /// ε: probability of drawing a minimum halting step in training.
    pub halt_exploration_prob: f64,
    /// Activation dtype.
    #[serde(default = "default_forward_dtype")]
    pub forward_dtype: ForwardDtype,
    /// Token loss used by the loss head.
    #[serde(default)]
    pub loss_type: LossType,
    /// TRM: puzzle-prefix tokens; 0 = ceil(puzzle_emb_ndim / hidden_size), which HRM always uses.
    #[serde(default)]
    pub puzzle_emb_len: i64,
    /// TRM: SwiGLU across the sequence axis instead of attention in every block.
    #[serde(default)]
    pub mlp_t: bool,
    /// TRM: halt on `q_halt > 0` alone, without the Q-target pass and the q_continue loss (ignored by HRM).
    #[serde(default = "default_true", rename = "no_ACT_continue")]
    pub no_act_continue: bool,
}

fn default_true() -> bool {
    true
}

/// SwiGLU intermediate width for a layer `width` wide: round(expansion · width · 2/3) rounded up to a multiple of
/// 256 (the reference's `_find_multiple`).
pub fn swiglu_intermediate(expansion: f64, width: i64) -> i64 {
    // Python's round() on a non-tie value; ties do not occur for the sizes used.
    let raw = (expansion * width as f64 * 2.0 / 3.0).round() as i64;
    (raw + 255) / 256 * 256
}

impl ModelConfig {
    /// The paper's architecture (`arch/hrm_v1.yaml`, spec 3.1) for a task's vocabulary, sequence length and
    /// number of puzzle identifiers, with the reference global batch of 768.
    pub fn paper(vocab_size: i64, seq_len: i64, num_puzzle_identifiers: i64) -> Self {
        ModelConfig {
            batch_size: 768,
            seq_len,
            puzzle_emb_ndim: 512,
            num_puzzle_identifiers,
            vocab_size,
            h_cycles: 2,
            l_cycles: 2,
            h_layers: 4,
            l_layers: 4,
            hidden_size: 512,
            expansion: 4.0,
            num_heads: 8,
            pos_encodings: PosEncoding::Rope,
            rms_norm_eps: 1e-5,
            rope_theta: 10000.0,
            halt_max_steps: 16,
            halt_exploration_prob: 0.1,
            forward_dtype: ForwardDtype::Bfloat16,
            loss_type: LossType::StablemaxCrossEntropy,
            name: ModelKind::Hrm,
            puzzle_emb_len: 0,
            mlp_t: false,
            no_act_continue: true,
        }
    }

    /// TRM's ARC architecture (`arch/trm.yaml`, trm-spec 1 and 4) for a task's vocabulary, sequence length and
    /// number of puzzle identifiers: one network of 2 blocks, H_cycles 3, L_cycles 4, a 16-token puzzle prefix,
    /// RoPE, attention, `no_ACT_continue`. Sudoku uses L_cycles 6 (and `mlp_t` with no positions for its MLP
    /// variant).
    pub fn trm(vocab_size: i64, seq_len: i64, num_puzzle_identifiers: i64) -> Self {
        ModelConfig {
            name: ModelKind::Trm,
            h_cycles: 3,
            l_cycles: 4,
            h_layers: 0,
            l_layers: 2,
            puzzle_emb_len: 16,
            mlp_t: false,
            no_act_continue: true,
            ..ModelConfig::paper(vocab_size, seq_len, num_puzzle_identifiers)
        }
    }

    /// Reads and validates a JSON config such as `golden/tiny_config.json`.
    pub fn from_json_file(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::ConfigFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let config: ModelConfig =
            serde_json::from_str(&text).map_err(|e| ModelError::ConfigFile {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks that every size is usable; the model constructor calls this.
    pub fn validate(&self) -> Result<(), ModelError> {
        // TRM has no H module, so its H_layers is ignored (the reference configs set 0).
        let h_layers = match self.name {
            ModelKind::Hrm => self.h_layers,
            ModelKind::Trm => 1,
        };
        let positive: [(&'static str, i64); 10] = [
            ("batch_size", self.batch_size),
            ("seq_len", self.seq_len),
            ("num_puzzle_identifiers", self.num_puzzle_identifiers),
            ("vocab_size", self.vocab_size),
            ("H_cycles", self.h_cycles),
            ("L_cycles", self.l_cycles),
            ("H_layers", h_layers),
            ("L_layers", self.l_layers),
            ("hidden_size", self.hidden_size),
            ("num_heads", self.num_heads),
        ];
        for (field, value) in positive {
            if value < 1 {
                return Err(ModelError::Config {
                    field,
                    reason: format!("must be ≥ 1, got {value}"),
                });
            }
        }
        if self.puzzle_emb_ndim < 0 {
            return Err(ModelError::Config {
                field: "puzzle_emb_ndim",
                reason: format!("must be ≥ 0, got {}", self.puzzle_emb_ndim),
            });
        }
        if self.mlp_t && self.name != ModelKind::Trm {
            return Err(ModelError::Config {
                field: "mlp_t",
                reason: "only the TRM (name = trm) has mlp_t blocks".into(),
            });
        }
        if self.puzzle_emb_len < 0 {
            return Err(ModelError::Config {
                field: "puzzle_emb_len",
                reason: format!("must be ≥ 0, got {}", self.puzzle_emb_len),
            });
        }
        if self.name == ModelKind::Trm && self.puzzle_emb_len > 0 {
            // The reference would crash in the reshape: the padded row must fill the prefix exactly.
            if self.puzzle_emb_ndim == 0
                || self.puzzle_emb_len * self.hidden_size < self.puzzle_emb_ndim
            {
                return Err(ModelError::Config {
                    field: "puzzle_emb_len",
                    reason: format!(
                        "{} prefix tokens of width {} cannot hold a puzzle row of width {} (it must be > 0 and fit)",
                        self.puzzle_emb_len, self.hidden_size, self.puzzle_emb_ndim
                    ),
                });
            }
        }
        if self.hidden_size % self.num_heads != 0 {
            return Err(ModelError::Config {
                field: "num_heads",
                reason: format!(
                    "{} does not divide hidden_size {}",
                    self.num_heads, self.hidden_size
                ),
            });
        }
        if self.pos_encodings == PosEncoding::Rope && self.head_dim() % 2 != 0 {
            return Err(ModelError::Config {
                field: "num_heads",
                reason: format!("RoPE needs an even head_dim, got {}", self.head_dim()),
            });
        }
        if !(self.expansion.is_finite() && self.expansion > 0.0) {
            return Err(ModelError::Config {
                field: "expansion",
                reason: format!("must be a positive number, got {}", self.expansion),
            });
        }
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps > 0.0) {
            return Err(ModelError::Config {
                field: "rms_norm_eps",
                reason: format!("must be a positive number, got {}", self.rms_norm_eps),
            });
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            return Err(ModelError::Config {
                field: "rope_theta",
                reason: format!("must be a positive number, got {}", self.rope_theta),
            });
        }
        if self.halt_max_steps < 1 {
            return Err(ModelError::Config {
                field: "halt_max_steps",
                reason: format!("must be ≥ 1, got {}", self.halt_max_steps),
            });
        }
        if !(0.0..=1.0).contains(&self.halt_exploration_prob) {
            return Err(ModelError::Config {
                field: "halt_exploration_prob",
                reason: format!("must lie in [0, 1], got {}", self.halt_exploration_prob),
            });
        }
        Ok(())
    }

    /// Width of one attention head: hidden_size / num_heads.
    pub fn head_dim(&self) -> i64 {
        self.hidden_size / self.num_heads
    }

    /// SwiGLU intermediate width: round(expansion · D · 2/3) rounded up to a multiple of 256.
    pub fn swiglu_intermediate(&self) -> i64 {
        swiglu_intermediate(self.expansion, self.hidden_size)
    }

    /// P: number of puzzle-prefix positions. HRM: ceil(puzzle_emb_ndim / hidden_size); TRM: the field
    /// `puzzle_emb_len` when it is positive, else the same rule (trm-spec 1).
    pub fn prefix_len(&self) -> i64 {
        if self.name == ModelKind::Trm && self.puzzle_emb_len > 0 {
            self.puzzle_emb_len
        } else {
            (self.puzzle_emb_ndim + self.hidden_size - 1) / self.hidden_size
        }
    }

    /// S + P: the sequence length inside the model.
    pub fn model_seq_len(&self) -> i64 {
        self.seq_len + self.prefix_len()
    }

    /// The approximate number of parameter values of the model this config builds, without building it:
    /// `(dense, puzzle_table)`. Dense: every block (attention `4·D²` or TRM's `mlp_t` SwiGLU, plus the channel
    /// SwiGLU `3·D·I`), the token embedding and LM head (`V·D` each) and the Q head; the puzzle table is
    /// `num_puzzle_identifiers · puzzle_emb_ndim`. Biases and norms are left out, so it is a lower bound, in `f64`
    /// so that an absurd size does not overflow.
    pub fn parameter_estimate(&self) -> (f64, f64) {
        let d = self.hidden_size as f64;
        let channel = 3.0 * d * swiglu_intermediate(self.expansion, self.hidden_size) as f64;
        let mixer = if self.uses_mlp_t() {
            let s = self.model_seq_len();
            3.0 * s as f64 * swiglu_intermediate(self.expansion, s) as f64
        } else {
            4.0 * d * d
        };
        let layers = match self.name {
            ModelKind::Hrm => self.h_layers + self.l_layers,
            ModelKind::Trm => self.l_layers,
        } as f64;
        let dense = layers * (mixer + channel) + 2.0 * self.vocab_size as f64 * d + 2.0 * d;
        let table = self.num_puzzle_identifiers as f64 * self.puzzle_emb_ndim as f64;
        (dense, table)
    }

    /// A lower estimate of the bytes of activations that one forward (`training = false`, no gradient) or one
    /// training step (`training = true`) over `rows` rows holds at its peak, in `f64` so that an absurd size does
    /// not overflow. Per row, with S the model's sequence length, D the hidden size, I the SwiGLU width, V the
    /// vocabulary and b the forward dtype's bytes:
    /// * the carry z_H, z_L (2·S·D) and the logits (S·V, f32);
    /// * inference: one block's transients at a time (the residual 2·S·D, then the larger of attention's q, k, v
    ///   and output 4·S·D or the SwiGLU's 3·S·I);
    /// * training: the tensors every block on the gradient path saves for backward (6·S·D + 3·S·I each): HRM's
    ///   one-step gradient runs `h_layers + l_layers` blocks with gradient, TRM's last recursion
    ///   `(l_cycles + 1) · l_layers`; plus the logits' gradient.
    ///
    /// Attention scores are left out (the fused kernels do not keep them), so it is a floor: what cannot hold
    /// these tensors cannot run at all.
    pub fn activation_estimate(&self, rows: f64, training: bool) -> f64 {
        let s = self.model_seq_len() as f64;
        let d = self.hidden_size as f64;
        let i = self.swiglu_intermediate() as f64;
        let bytes = match self.forward_dtype {
            ForwardDtype::Float32 => 4.0,
            ForwardDtype::Bfloat16 => 2.0,
        };
        let logits = s * self.vocab_size as f64 * 4.0;
        let per_row = if training {
            let grad_blocks = match self.name {
                ModelKind::Hrm => self.h_layers + self.l_layers,
                ModelKind::Trm => (self.l_cycles + 1) * self.l_layers,
            } as f64;
            bytes * (2.0 * s * d + grad_blocks * (6.0 * s * d + 3.0 * s * i)) + 2.0 * logits
        } else {
            bytes * (4.0 * s * d + (4.0 * s * d).max(3.0 * s * i)) + logits
        };
        rows * per_row
    }

    /// Whether the blocks mix positions with a SwiGLU across the sequence axis (TRM's `mlp_t`) instead of
    /// attention.
    pub fn uses_mlp_t(&self) -> bool {
        self.name == ModelKind::Trm && self.mlp_t
    }

    /// Whether a training segment runs the extra no-grad forward for the bootstrapped Q-continue target and halts
    /// on `q_halt > q_continue`: always for HRM, for TRM only when `no_ACT_continue` is off.
    pub fn uses_q_target(&self) -> bool {
        self.name == ModelKind::Hrm || !self.no_act_continue
    }

    /// √D, the factor applied to the input embedding.
    pub fn embed_scale(&self) -> f64 {
        (self.hidden_size as f64).sqrt()
    }

    /// Init std of the token and learned-position tables: 1/√D.
    pub fn embed_init_std(&self) -> f64 {
        1.0 / self.embed_scale()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_derived_values_match_the_spec() {
        let c = ModelConfig::paper(12, 900, 876_412);
        c.validate().unwrap();
        assert_eq!(c.head_dim(), 64);
        assert_eq!(c.swiglu_intermediate(), 1536);
        assert_eq!(c.prefix_len(), 1);
        assert_eq!(c.model_seq_len(), 901);
        assert!((c.embed_scale() - 22.627417).abs() < 1e-6);
        assert!((c.embed_init_std() - 0.0441942).abs() < 1e-7);
    }

    #[test]
    fn json_names_round_trip() {
        let c = ModelConfig::paper(11, 81, 1);
        let text = serde_json::to_string(&c).unwrap();
        for key in [
            "\"H_cycles\"",
            "\"L_layers\"",
            "\"pos_encodings\":\"rope\"",
            "\"forward_dtype\":\"bfloat16\"",
        ] {
            assert!(text.contains(key), "{key} missing from {text}");
        }
        assert!(text.contains("\"loss_type\":\"stablemax_cross_entropy\""));
        let back: ModelConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn invalid_sizes_are_rejected_with_the_field_name() {
        let mut c = ModelConfig::paper(12, 900, 1);
        c.num_heads = 7;
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("num_heads"), "{err}");
        let mut c = ModelConfig::paper(12, 900, 1);
        c.halt_exploration_prob = 1.5;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("halt_exploration_prob"));
    }

    #[test]
    fn trm_prefix_length_comes_from_the_field() {
        let mut c = ModelConfig::trm(12, 900, 1);
        c.validate().unwrap();
        assert_eq!(c.prefix_len(), 16);
        assert_eq!(c.model_seq_len(), 916);
        c.puzzle_emb_len = 0;
        assert_eq!(c.prefix_len(), 1, "0 falls back to HRM's rule");
        c.puzzle_emb_len = 16;
        c.name = ModelKind::Hrm;
        c.h_layers = 2;
        assert_eq!(c.prefix_len(), 1, "HRM ignores the field");
        c.mlp_t = true;
        let hrm_err = c.validate().unwrap_err().to_string();
        let no_row = ModelConfig {
            puzzle_emb_ndim: 0,
            ..ModelConfig::trm(12, 900, 1)
        };
        let trm_err = no_row.validate().unwrap_err().to_string();
        assert!(hrm_err.contains("mlp_t"), "{hrm_err}");
        assert!(trm_err.contains("puzzle_emb_len"), "{trm_err}");
    }

    #[test]
    fn prefix_length_rounds_up() {
        let mut c = ModelConfig::paper(12, 900, 1);
        c.puzzle_emb_ndim = 513;
        assert_eq!(c.prefix_len(), 2);
        c.puzzle_emb_ndim = 0;
        assert_eq!(c.prefix_len(), 0);
    }
}
