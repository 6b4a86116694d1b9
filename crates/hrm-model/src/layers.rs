//! Building blocks of spec 3.2: CastedLinear, RMSNorm, RoPE, non-causal attention, SwiGLU, post-norm blocks and
//! the H/L reasoning modules with input injection; TRM's `mlp_t` token mixer (`models/recursive_reasoning/trm.py`,
//! `TinyRecursiveReasoningModel_ACTV1Block`).
//! Follows the reference's `models/layers.py`.

use rand::Rng;
use tch::{nn, Kind, Tensor};

use crate::config::{swiglu_intermediate, ModelConfig};
use crate::init::trunc_normal;

/// A linear layer with an fp32 master weight `[out, in]` that is cast to the activation dtype at use.
#[derive(Debug)]
pub struct CastedLinear {
    /// The master weight `[out, in]`, float32, trainable.
    pub weight: Tensor,
    /// The optional bias `[out]`, float32, trainable (only the Q head has one).
    pub bias: Option<Tensor>,
}

impl CastedLinear {
    /// Registers `weight` (and `bias`) under `path`, initialised LeCun-style: trunc normal with std 1/√in, bias 0.
    pub fn new<R: Rng + ?Sized>(
        path: &nn::Path,
        in_features: i64,
        out_features: i64,
        bias: bool,
        rng: &mut R,
        names: &mut Vec<String>,
    ) -> Self {
        let w = trunc_normal(
            &[out_features, in_features],
            1.0 / (in_features as f64).sqrt(),
            rng,
        );
        let weight = add_param(path, "weight", w, names);
        let bias = bias.then(|| {
            add_param(
                path,
                "bias",
                Tensor::zeros([out_features], (Kind::Float, tch::Device::Cpu)),
                names,
            )
        });
        CastedLinear { weight, bias }
    }

    /// Applies the layer in the dtype of `x`.
    ///
    /// # Shapes
    /// `x`: `[.., in]` → `[.., out]`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let kind = x.kind();
        let w = cast_param(&self.weight, kind);
        let b = self.bias.as_ref().map(|b| cast_param(b, kind));
        x.linear(&w, b.as_ref())
    }
}

thread_local! {
    /// The casts of the current [`with_cached_casts`] scope on this thread: (parameter storage, kind) -> cast.
    static CAST_CACHE: std::cell::RefCell<Option<std::collections::HashMap<(usize, Kind), Tensor>>> =
        const { std::cell::RefCell::new(None) };
}

static CASTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Casts of an fp32 master parameter to another dtype made so far in this process (what
/// [`with_cached_casts`] saves: a test counts them).
pub fn casts_made() -> u64 {
    CASTS.load(std::sync::atomic::Ordering::Relaxed)
}

/// A parameter in the activation dtype `kind`: itself when it already has it (f32 runs cast nothing), else its
/// cast, made once per [`with_cached_casts`] scope (always with autograd, so that a cast first made inside a
/// no-grad call still carries gradients to the master weight in a later call) or at every use outside one.
pub fn cast_param(t: &Tensor, kind: Kind) -> Tensor {
    if t.kind() == kind {
        return t.shallow_clone();
    }
    let make = || {
        CASTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tch::with_grad(|| t.to_kind(kind))
    };
    CAST_CACHE.with(|cache| match cache.borrow_mut().as_mut() {
        Some(map) => map
            .entry((t.data_ptr() as usize, kind))
            .or_insert_with(make)
            .shallow_clone(),
        None => make(),
    })
}

/// Runs `f` with the parameter casts cached on this thread: every module call inside casts each fp32 master
/// weight to the activation dtype once (the casts of one optimizer step, forward and backward of every
/// micro-batch, instead of one per call). The weights must not change inside `f`. Nested scopes share the
/// outer cache.
pub fn with_cached_casts<T>(f: impl FnOnce() -> T) -> T {
    let outer = CAST_CACHE.with(|c| {
        let mut c = c.borrow_mut();
        let had = c.is_some();
        if !had {
            *c = Some(std::collections::HashMap::new());
        }
        had
    });
    struct Clear(bool);
    impl Drop for Clear {
        fn drop(&mut self) {
            if !self.0 {
                CAST_CACHE.with(|c| *c.borrow_mut() = None);
            }
        }
    }
    let _clear = Clear(outer);
    f()
}

/// Adds a trainable float32 tensor (created on the CPU) to the var store at `path.name`, moving it to the store's
/// device, and records its full name in creation order.
pub(crate) fn add_param(
    path: &nn::Path,
    name: &str,
    init: Tensor,
    names: &mut Vec<String>,
) -> Tensor {
    names.push(path.path(name));
    path.add(name, init.to_device(path.device()), true)
}

/// RMSNorm without weight: x · rsqrt(mean(x²) + eps), computed in fp32 and cast back.
///
/// # Shapes
/// `x`: `[.., D]` → `[.., D]` in the dtype of `x`.
pub fn rms_norm(x: &Tensor, eps: f64) -> Tensor {
    let kind = x.kind();
    let h = x.to_kind(Kind::Float);
    let variance = h.square().mean_dim(-1, true, Kind::Float);
    (h * (variance + eps).rsqrt()).to_kind(kind)
}

/// The RoPE cos/sin tables (non-persistent buffers `inner.rotary_emb.{cos,sin}_cached`).
#[derive(Debug)]
pub struct Rotary {
    /// cos of the angle table, `[S+P, head_dim]`, float32.
    pub cos: Tensor,
    /// sin of the angle table, `[S+P, head_dim]`, float32.
    pub sin: Tensor,
}

impl Rotary {
    /// Builds the tables: inv_freq[k] = 1/θ^(2k/dim), angles = outer(t, inv_freq) duplicated to `dim` columns.
    pub fn new(dim: i64, max_positions: i64, base: f64, device: tch::Device) -> Self {
        let exponent = Tensor::arange_start_step(0, dim, 2, (Kind::Float, device)) / dim as f64;
        let inv_freq = Tensor::pow_scalar(base, &exponent).reciprocal();
        let t = Tensor::arange(max_positions, (Kind::Float, device));
        let freqs = t.outer(&inv_freq);
        let emb = Tensor::cat(&[&freqs, &freqs], -1);
        Rotary {
            cos: emb.cos(),
            sin: emb.sin(),
        }
    }
}

/// rotate_half([x1, x2]) = [−x2, x1] over the two halves of the last axis.
fn rotate_half(x: &Tensor) -> Tensor {
    let half = x.size()[x.dim() - 1] / 2;
    let x1 = x.narrow(-1, 0, half);
    let x2 = x.narrow(-1, half, half);
    Tensor::cat(&[&x2.neg(), &x1], -1)
}

/// Applies RoPE in fp32 and casts back.
///
/// # Shapes
/// `x`: `[B, H, S, D]`; `cos`, `sin`: `[S, D]`.
pub fn apply_rotary(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Tensor {
    let kind = x.kind();
    let x = x.to_kind(cos.kind());
    (&x * cos + rotate_half(&x) * sin).to_kind(kind)
}

/// Multi-head non-causal self-attention with a fused QKV projection and no biases.
#[derive(Debug)]
pub struct Attention {
    /// Fused projection D → 3·D, split [queries | keys | values] along the outputs.
    pub qkv_proj: CastedLinear,
    /// Output projection D → D.
    pub o_proj: CastedLinear,
    num_heads: i64,
    head_dim: i64,
}

impl Attention {
    /// Registers `qkv_proj` and `o_proj` under `path`.
    pub fn new<R: Rng + ?Sized>(
        path: &nn::Path,
        config: &ModelConfig,
        rng: &mut R,
        names: &mut Vec<String>,
    ) -> Self {
        let d = config.hidden_size;
        let qkv_proj = CastedLinear::new(&(path / "qkv_proj"), d, 3 * d, false, rng, names);
        let o_proj = CastedLinear::new(&(path / "o_proj"), d, d, false, rng, names);
        Attention {
            qkv_proj,
            o_proj,
            num_heads: config.num_heads,
            head_dim: config.head_dim(),
        }
    }

    /// Attends over all positions (no mask, no dropout, scale 1/√head_dim).
    ///
    /// # Shapes
    /// `x`: `[B, S, D]` → `[B, S, D]`. SDPA runs on `[B, H, S, head_dim]` (spec 10.2 pitfall 1).
    pub fn forward(&self, x: &Tensor, rotary: Option<&Rotary>) -> Tensor {
        let size = x.size();
        let (b, s) = (size[0], size[1]);
        let (h, hd) = (self.num_heads, self.head_dim);
        let qkv = self.qkv_proj.forward(x).view([b, s, 3 * h, hd]);
        // [B, S, H, hd] → [B, H, S, hd].
        let mut q = qkv.narrow(2, 0, h).transpose(1, 2);
        let mut k = qkv.narrow(2, h, h).transpose(1, 2);
        let v = qkv.narrow(2, 2 * h, h).transpose(1, 2);
        if let Some(r) = rotary {
            q = apply_rotary(&q, &r.cos, &r.sin);
            k = apply_rotary(&k, &r.cos, &r.sin);
        }
        let o = Tensor::scaled_dot_product_attention(
            &q,
            &k,
            &v,
            None::<Tensor>,
            0.0,
            false,
            None,
            false,
        );
        let o = o.transpose(1, 2).contiguous().view([b, s, h * hd]);
        self.o_proj.forward(&o)
    }
}

/// SwiGLU: Down(SiLU(gate) ⊙ up) with a fused gate/up projection (gate first half, up second half).
#[derive(Debug)]
pub struct SwiGlu {
    /// Fused projection D → 2·I.
    pub gate_up_proj: CastedLinear,
    /// Projection I → D.
    pub down_proj: CastedLinear,
}

impl SwiGlu {
    /// Registers `gate_up_proj` and `down_proj` under `path` for a layer `d` wide with the config's expansion.
    pub fn new<R: Rng + ?Sized>(
        path: &nn::Path,
        d: i64,
        config: &ModelConfig,
        rng: &mut R,
        names: &mut Vec<String>,
    ) -> Self {
        let inter = swiglu_intermediate(config.expansion, d);
        let gate_up_proj =
            CastedLinear::new(&(path / "gate_up_proj"), d, 2 * inter, false, rng, names);
        let down_proj = CastedLinear::new(&(path / "down_proj"), inter, d, false, rng, names);
        SwiGlu {
            gate_up_proj,
            down_proj,
        }
    }

    /// # Shapes
    /// `x`: `[.., d]` → `[.., d]`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let gu = self.gate_up_proj.forward(x).chunk(2, -1);
        self.down_proj.forward(&(gu[0].silu() * &gu[1]))
    }
}

/// How a block mixes information across positions.
#[derive(Debug)]
pub enum TokenMixer {
    /// `self_attn`: multi-head attention (HRM, and TRM without `mlp_t`).
    Attention(Attention),
    /// `mlp_t`: TRM's SwiGLU across the sequence axis, `S+P` wide (its intermediate size rounded as HRM's).
    MlpT(SwiGlu),
}

/// A post-norm transformer block: x ← RMSNorm(x + Attn(x)); x ← RMSNorm(x + SwiGLU(x)).
///
/// With TRM's `mlp_t`, the first step runs on the transposed state instead: h = xᵀ `[B, D, S+P]`,
/// h ← RMSNorm(h + SwiGLU_{S+P}(h)) (so this norm runs over the sequence axis, as in the reference), x = hᵀ.
#[derive(Debug)]
pub struct Block {
    /// `self_attn` or `mlp_t`.
    pub mixer: TokenMixer,
    /// `mlp`.
    pub mlp: SwiGlu,
    eps: f64,
}

impl Block {
    /// Registers `self_attn` (or `mlp_t` when [`ModelConfig::uses_mlp_t`]) and `mlp` under `path`.
    pub fn new<R: Rng + ?Sized>(
        path: &nn::Path,
        config: &ModelConfig,
        rng: &mut R,
        names: &mut Vec<String>,
    ) -> Self {
        let mixer = if config.uses_mlp_t() {
            TokenMixer::MlpT(SwiGlu::new(
                &(path / "mlp_t"),
                config.model_seq_len(),
                config,
                rng,
                names,
            ))
        } else {
            TokenMixer::Attention(Attention::new(&(path / "self_attn"), config, rng, names))
        };
        let mlp = SwiGlu::new(&(path / "mlp"), config.hidden_size, config, rng, names);
        Block {
            mixer,
            mlp,
            eps: config.rms_norm_eps,
        }
    }

    /// # Shapes
    /// `x`: `[B, S+P, D]` → `[B, S+P, D]`.
    pub fn forward(&self, x: &Tensor, rotary: Option<&Rotary>) -> Tensor {
        let x = match &self.mixer {
            TokenMixer::Attention(attn) => rms_norm(&(x + attn.forward(x, rotary)), self.eps),
            TokenMixer::MlpT(mlp_t) => {
                let h = x.transpose(1, 2);
                rms_norm(&(&h + mlp_t.forward(&h)), self.eps).transpose(1, 2)
            }
        };
        rms_norm(&(&x + self.mlp.forward(&x)), self.eps)
    }
}

/// A reasoning module (H or L): a stack of blocks applied to h + injection.
#[derive(Debug)]
pub struct ReasoningModule {
    /// `layers.{i}`.
    pub layers: Vec<Block>,
}

impl ReasoningModule {
    /// Registers `layers.0 .. layers.{n-1}` under `path`.
    pub fn new<R: Rng + ?Sized>(
        path: &nn::Path,
        num_layers: i64,
        config: &ModelConfig,
        rng: &mut R,
        names: &mut Vec<String>,
    ) -> Self {
        let layers_path = path / "layers";
        let layers = (0..num_layers)
            .map(|i| Block::new(&(&layers_path / i), config, rng, names))
            .collect();
        ReasoningModule { layers }
    }

    /// module(h, inj) = Blocks(h + inj).
    ///
    /// # Shapes
    /// `h`, `injection`: `[B, S+P, D]` → `[B, S+P, D]`.
    pub fn forward(&self, h: &Tensor, injection: &Tensor, rotary: Option<&Rotary>) -> Tensor {
        let mut x = h + injection;
        for layer in &self.layers {
            x = layer.forward(&x, rotary);
        }
        x
    }
}

/// Which reasoning module produced a traced call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// The high-level module (HRM only).
    H,
    /// The low-level module; TRM's single network is stored as `L_level`, so every TRM call is `L`, whether it
    /// updates z_L or z_H.
    L,
}
