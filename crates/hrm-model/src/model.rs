//! The model (`models/hrm/hrm_act_v1.py` and, for TRM, `models/recursive_reasoning/trm.py`): input embedding,
//! the recursion (HRM: H/L modules with the one-step gradient, hrm-spec 4; TRM: one network with full
//! backpropagation through the last cycle, trm-spec 2, in `trm.rs`), heads, and the ACT outer step with
//! halting and the bootstrapped Q target (hrm-spec 5, trm-spec 3).
//! Follows the reference's `models/hrm/hrm_act_v1.py`.

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{nn, Device, Kind, Tensor};

use crate::batch::{Batch, Carry, LOSS_IGNORE_LABEL};
use crate::config::{DtypeKind, ModelConfig, ModelKind, PosEncoding};
use crate::error::ModelError;
use crate::init::trunc_normal;
use crate::layers::{add_param, cast_param, CastedLinear, ReasoningModule, Rotary};

/// The reference's literal factor for learned positions (spec 3.4), kept as written rather than 1/√2.
#[allow(clippy::approx_constant)]
const LEARNED_POS_SCALE: f64 = 0.707106781;

pub use crate::layers::Level;

/// Intermediate values recorded by [`Model::forward_traced`], for parity tests and debugging.
#[derive(Debug, Default)]
pub struct ForwardTrace {
    /// x̃ of every inner forward, in call order (`[B, S+P, D]`).
    pub input_embeddings: Vec<Tensor>,
    /// The output of every network call (HRM: H/L module; TRM: `L_level`), in call order (`[B, S+P, D]`),
    /// detached; a training segment with a Q-target pass records that pass's calls too.
    pub calls: Vec<(Level, Tensor)>,
}

/// The puzzle-embedding rows of one training forward: a leaf tensor whose gradient the sparse optimizer reads.
#[derive(Debug)]
pub struct PuzzleLocal {
    /// The looked-up ids `[B]`, int64 (duplicates are not merged).
    pub ids: Tensor,
    /// The rows `[B, puzzle_emb_ndim]`, float32, a leaf with `requires_grad`; `weights.grad()` after backward.
    pub weights: Tensor,
}

/// What one ACT call returns besides the new carry.
#[derive(Debug)]
pub struct ActOutput {
    /// LM logits `[B, S, V]` in the forward dtype (puzzle prefix dropped).
    pub logits: Tensor,
    /// q_halt logits `[B]`, float32.
    pub q_halt_logits: Tensor,
    /// q_continue logits `[B]`, float32.
    pub q_continue_logits: Tensor,
    /// Bootstrapped Q-continue target `[B]`, float32; training only, and only with the Q-target pass
    /// ([`ModelConfig::uses_q_target`]).
    pub target_q_continue: Option<Tensor>,
    /// The puzzle rows used with gradient; training only and only when `puzzle_emb_ndim > 0`.
    pub puzzle_local: Option<PuzzleLocal>,
}

/// The outputs of one inner forward (spec 4).
struct InnerOutput {
    z_h: Tensor,
    z_l: Tensor,
    logits: Tensor,
    q_halt: Tensor,
    q_continue: Tensor,
}

/// The recursive reasoning model with its ACT wrapper: HRM or TRM, chosen by [`ModelConfig::name`].
///
/// HRM has `inner.H_level` and `inner.L_level`; TRM has only `inner.L_level` (`L_layers` blocks, used for both
/// state updates). Trainable parameters live in a [`nn::VarStore`] under their reference state-dict names; `H_init`, `L_init` and
/// the puzzle-embedding table are plain tensors outside the trainable set.
#[derive(Debug)]
pub struct Model {
    config: ModelConfig,
    device: Device,
    vs: nn::VarStore,
    params: Vec<(String, Tensor)>,
    embed_tokens: Tensor,
    embed_pos: Option<Tensor>,
    lm_head: CastedLinear,
    q_head: CastedLinear,
    /// `None` for TRM.
    h_level: Option<ReasoningModule>,
    l_level: ReasoningModule,
    rotary: Option<Rotary>,
    h_init: Tensor,
    l_init: Tensor,
    puzzle_emb: Option<Tensor>,
    /// Check the batch's token and id ranges on every forward (one host read each); see
    /// [`Model::set_value_checks`].
    value_checks: bool,
}

impl Model {
    /// Builds and initialises the model on `device` (spec 3.7), drawing every random value from a ChaCha8 RNG
    /// seeded with `seed`.
    pub fn new(config: &ModelConfig, device: Device, seed: u64) -> Result<Model, ModelError> {
        config.validate()?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let rng = &mut rng;
        let vs = nn::VarStore::new(device);
        let inner = vs.root() / "inner";
        let mut names = Vec::new();
        let d = config.hidden_size;
        let std = config.embed_init_std();
        let embed_tokens = add_param(
            &(&inner / "embed_tokens"),
            "embedding_weight",
            trunc_normal(&[config.vocab_size, d], std, rng),
            &mut names,
        );
        let lm_head = CastedLinear::new(
            &(&inner / "lm_head"),
            d,
            config.vocab_size,
            false,
            rng,
            &mut names,
        );
        let q_head = CastedLinear::new(&(&inner / "q_head"), d, 2, true, rng, &mut names);
        tch::no_grad(|| {
            let _ = q_head.weight.shallow_clone().zero_();
            let _ = q_head.bias.as_ref().map(|b| b.shallow_clone().fill_(-5.0));
        });
        let puzzle_emb = (config.puzzle_emb_ndim > 0).then(|| {
            Tensor::zeros(
                [config.num_puzzle_identifiers, config.puzzle_emb_ndim],
                (Kind::Float, device),
            )
        });
        let (rotary, embed_pos) = match config.pos_encodings {
            PosEncoding::Rope => (
                Some(Rotary::new(
                    config.head_dim(),
                    config.model_seq_len(),
                    config.rope_theta,
                    device,
                )),
                None,
            ),
            PosEncoding::Learned => {
                let init = trunc_normal(&[config.model_seq_len(), d], std, rng);
                (
                    None,
                    Some(add_param(
                        &(&inner / "embed_pos"),
                        "embedding_weight",
                        init,
                        &mut names,
                    )),
                )
            }
            PosEncoding::None => (None, None),
        };
        let module = |name: &str, layers: i64, rng: &mut ChaCha8Rng, names: &mut Vec<String>| {
            ReasoningModule::new(&(&inner / name), layers, config, rng, names)
        };
        let h_level = (config.name == ModelKind::Hrm)
            .then(|| module("H_level", config.h_layers, &mut *rng, &mut names));
        let l_level = module("L_level", config.l_layers, rng, &mut names);
        let kind = config.forward_dtype.kind();
        let h_init = trunc_normal(&[d], 1.0, rng).to_kind(kind).to_device(device);
        let l_init = trunc_normal(&[d], 1.0, rng).to_kind(kind).to_device(device);
        let variables = vs.variables();
        let params = names
            .into_iter()
            .map(|n| {
                let t = variables[&n].shallow_clone();
                (n, t)
            })
            .collect();
        Ok(Model {
            config: config.clone(),
            device,
            vs,
            params,
            embed_tokens,
            embed_pos,
            lm_head,
            q_head,
            h_level,
            l_level,
            rotary,
            h_init,
            l_init,
            puzzle_emb,
            value_checks: true,
        })
    }

    /// Whether every forward checks the ranges of the batch's token ids, labels and puzzle ids (on by default).
    /// The check reads its result back to the host, which waits for the device; a caller whose batches come from
    /// a dataset already validated when loaded (the training loop, `hrm solve`) turns it off so that a training
    /// step makes no host read. Shapes and devices are always checked (that needs no read).
    pub fn set_value_checks(&mut self, on: bool) {
        self.value_checks = on;
    }

    /// The configuration the model was built with.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The device every tensor of the model lives on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// The var store holding the trainable fp32 master weights.
    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    /// The trainable parameters as (reference name, tensor) in a fixed order; the tensors share storage with the
    /// model, so in-place updates (under `tch::no_grad`) change the model.
    pub fn named_parameters(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.params.iter().map(|(n, t)| (n.as_str(), t))
    }

    /// The number of trainable parameter values (the reference's `num_params`).
    pub fn num_parameters(&self) -> i64 {
        self.params.iter().map(|(_, t)| t.numel() as i64).sum()
    }

    /// Clears the gradient of every trainable parameter.
    pub fn zero_grad(&self) {
        for (_, t) in &self.params {
            let mut g = t.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
    }

    /// The puzzle-embedding table `[num_puzzle_identifiers, puzzle_emb_ndim]`, float32, not trainable by autograd
    /// (`None` when `puzzle_emb_ndim` is 0).
    pub fn puzzle_table(&self) -> Option<&Tensor> {
        self.puzzle_emb.as_ref()
    }

    /// Mutable access to the puzzle-embedding table for the sparse optimizer (e.g. `index_copy_`).
    pub fn puzzle_table_mut(&mut self) -> Option<&mut Tensor> {
        self.puzzle_emb.as_mut()
    }

    /// The buffer `inner.H_init` `[D]` in the forward dtype.
    pub fn h_init(&self) -> &Tensor {
        &self.h_init
    }

    /// The buffer `inner.L_init` `[D]` in the forward dtype.
    pub fn l_init(&self) -> &Tensor {
        &self.l_init
    }

    /// The RoPE tables (`None` with learned or no positions).
    pub fn rotary(&self) -> Option<&Rotary> {
        self.rotary.as_ref()
    }

    /// The initial carry for `batch`: every slot halted, steps 0, zero states and data (all replaced at the
    /// first call).
    pub fn initial_carry(&self, batch: &Batch) -> Carry {
        let b = batch.batch_size();
        let shape = [b, self.config.model_seq_len(), self.config.hidden_size];
        let kind = self.config.forward_dtype.kind();
        Carry {
            z_h: Tensor::zeros(shape, (kind, self.device)),
            z_l: Tensor::zeros(shape, (kind, self.device)),
            steps: Tensor::zeros([b], (Kind::Int, self.device)),
            halted: Tensor::ones([b], (Kind::Bool, self.device)),
            inputs: Tensor::zeros(batch.inputs.size(), (Kind::Int64, self.device)),
            labels: Tensor::zeros(batch.labels.size(), (Kind::Int64, self.device)),
            puzzle_identifiers: Tensor::zeros([b], (Kind::Int64, self.device)),
        }
    }

    /// Checks a batch against the config and a carry; ids out of range would otherwise abort inside libtorch.
    fn check_batch(&self, batch: &Batch, carry: &Carry) -> Result<(), ModelError> {
        let c = &self.config;
        let (b, s) = (carry.batch_size(), c.seq_len);
        if b == 0 {
            return Err(ModelError::Batch {
                field: "inputs",
                reason: "the batch is empty".into(),
            });
        }
        if batch.inputs.size() != [b, s] {
            return Err(ModelError::Batch {
                field: "inputs",
                reason: format!(
                    "shape {:?}, expected [{b}, {s}] (carry batch, config seq_len)",
                    batch.inputs.size()
                ),
            });
        }
        if batch.labels.size() != [b, s] {
            return Err(ModelError::Batch {
                field: "labels",
                reason: format!("shape {:?}, expected [{b}, {s}]", batch.labels.size()),
            });
        }
        if batch.puzzle_identifiers.size() != [b] {
            return Err(ModelError::Batch {
                field: "puzzle_identifiers",
                reason: format!(
                    "shape {:?}, expected [{b}]",
                    batch.puzzle_identifiers.size()
                ),
            });
        }
        if carry.z_h.device() != self.device || carry.halted.device() != self.device {
            return Err(ModelError::Carry {
                field: "z_H",
                reason: format!(
                    "carry is on {:?}, the model on {:?}",
                    carry.z_h.device(),
                    self.device
                ),
            });
        }
        let zs = [b, c.model_seq_len(), c.hidden_size];
        if carry.z_h.size() != zs || carry.z_l.size() != zs {
            return Err(ModelError::Carry {
                field: "z_H",
                reason: format!(
                    "z_H {:?} / z_L {:?}, expected {zs:?}",
                    carry.z_h.size(),
                    carry.z_l.size()
                ),
            });
        }
        if !self.value_checks {
            return Ok(());
        }
        // One host read for all range checks.
        let labels = &batch.labels;
        let bad_labels = labels
            .ne(LOSS_IGNORE_LABEL)
            .logical_and(&labels.lt(0).logical_or(&labels.ge(c.vocab_size)));
        let stats = Tensor::stack(
            &[
                batch.inputs.min().to_kind(Kind::Int64),
                batch.inputs.max().to_kind(Kind::Int64),
                bad_labels.sum(Kind::Int64),
                batch.puzzle_identifiers.min().to_kind(Kind::Int64),
                batch.puzzle_identifiers.max().to_kind(Kind::Int64),
            ],
            0,
        );
        let v = crate::host::read_i64(&stats)?;
        let checks = [
            (
                "inputs",
                v[0] < 0 || v[1] >= c.vocab_size,
                format!(
                    "token ids span [{}, {}], vocab_size is {}",
                    v[0], v[1], c.vocab_size
                ),
            ),
            (
                "labels",
                v[2] > 0,
                format!(
                    "{} labels are neither −100 nor in [0, {})",
                    v[2], c.vocab_size
                ),
            ),
            (
                "puzzle_identifiers",
                v[3] < 0 || v[4] >= c.num_puzzle_identifiers,
                format!(
                    "ids span [{}, {}], num_puzzle_identifiers is {}",
                    v[3], v[4], c.num_puzzle_identifiers
                ),
            ),
        ];
        if let Some((field, _, reason)) = checks.into_iter().find(|(_, bad, _)| *bad) {
            return Err(ModelError::Batch { field, reason });
        }
        Ok(())
    }

    /// The input embedding x̃ (spec 3.4), scaled by √D.
    ///
    /// # Shapes
    /// `inputs`: `[B, S]` int64; `puzzle_rows`: `[B, puzzle_emb_ndim]` float32 → `[B, S+P, D]` forward dtype.
    pub fn input_embeddings(&self, inputs: &Tensor, puzzle_rows: Option<&Tensor>) -> Tensor {
        let c = &self.config;
        let kind = c.forward_dtype.kind();
        let mut emb = Tensor::embedding(
            &cast_param(&self.embed_tokens, kind),
            inputs,
            -1,
            false,
            false,
        );
        if let Some(rows) = puzzle_rows {
            let p = c.prefix_len();
            let b = rows.size()[0];
            let mut pe = rows.to_kind(kind);
            let pad = p * c.hidden_size - c.puzzle_emb_ndim;
            if pad > 0 {
                pe = pe.constant_pad_nd([0, pad]);
            }
            emb = Tensor::cat(&[pe.view([b, p, c.hidden_size]), emb], -2);
        }
        if let Some(pos) = &self.embed_pos {
            emb = (emb + cast_param(pos, kind)) * LEARNED_POS_SCALE;
        }
        emb * c.embed_scale()
    }

    /// One inner forward: the recursion (HRM: the no-grad cycles, then one L and one H call with gradient; TRM:
    /// `H_cycles - 1` no-grad cycles, then one cycle with gradient), and the heads.
    fn inner_forward(
        &self,
        z_h: &Tensor,
        z_l: &Tensor,
        inputs: &Tensor,
        puzzle_rows: Option<&Tensor>,
        mut trace: Option<&mut ForwardTrace>,
    ) -> InnerOutput {
        let c = &self.config;
        let rot = self.rotary.as_ref();
        let x = self.input_embeddings(inputs, puzzle_rows);
        let mut record = |level: Level, t: &Tensor| {
            if let Some(tr) = trace.as_deref_mut() {
                tr.calls.push((level, t.detach().copy()));
            }
        };
        let (z_h, z_l) = match &self.h_level {
            Some(h_level) => {
                let (z_h, z_l) = tch::no_grad(|| {
                    let mut z_h = z_h.detach();
                    let mut z_l = z_l.detach();
                    for h_step in 0..c.h_cycles {
                        for l_step in 0..c.l_cycles {
                            if !(h_step == c.h_cycles - 1 && l_step == c.l_cycles - 1) {
                                z_l = self.l_level.forward(&z_l, &(&z_h + &x), rot);
                                record(Level::L, &z_l);
                            }
                        }
                        if h_step != c.h_cycles - 1 {
                            z_h = h_level.forward(&z_h, &z_l, rot);
                            record(Level::H, &z_h);
                        }
                    }
                    (z_h, z_l)
                });
                // The one-step gradient: only these two calls are recorded by autograd.
                let z_l = self.l_level.forward(&z_l, &(&z_h + &x), rot);
                record(Level::L, &z_l);
                let z_h = h_level.forward(&z_h, &z_l, rot);
                record(Level::H, &z_h);
                (z_h, z_l)
            }
            None => crate::trm::recursion(&self.l_level, c, z_h, z_l, &x, rot, &mut record),
        };
        if let Some(tr) = trace {
            tr.input_embeddings.push(x.detach().copy());
        }
        let logits = self
            .lm_head
            .forward(&z_h)
            .narrow(1, c.prefix_len(), c.seq_len);
        let q = self.q_head.forward(&z_h.select(1, 0)).to_kind(Kind::Float);
        InnerOutput {
            z_h: z_h.detach(),
            z_l: z_l.detach(),
            logits,
            q_halt: q.select(1, 0),
            q_continue: q.select(1, 1),
        }
    }

    /// One ACT call in training mode (hrm-spec 5.2, trm-spec 3): reset halted slots with `batch`'s data, run one
    /// segment (HRM: one-step gradient; TRM: full gradient through the last cycle), update steps and halting
    /// (greedy + exploration drawn from `rng`), and compute the bootstrapped Q-continue target from an extra no-grad
    /// segment.
    ///
    /// Greedy halting is `q_halt > q_continue` with the Q-target pass, as HRM always does. A TRM with
    /// `no_ACT_continue` (its default) halts on `q_halt > 0` instead and runs no Q-target pass, so
    /// `target_q_continue` is `None` and the loss has no q_continue term. A TRM with `no_ACT_continue = false` takes
    /// HRM's Q-target path; the reference `trm.py` crashes there (it unpacks five values from the three its inner
    /// forward returns), so that path has no reference vectors.
    ///
    /// `rng` is used for exactly 2 draws per slot per call (when `halt_max_steps > 1`), whatever ε is.
    ///
    /// # Shapes
    /// `batch`: inputs/labels `[B, S]`, ids `[B]`; carry as [`Carry`]; outputs as [`ActOutput`].
    pub fn forward_train<R: Rng + ?Sized>(
        &self,
        carry: &Carry,
        batch: &Batch,
        rng: &mut R,
    ) -> Result<(Carry, ActOutput), ModelError> {
        let mut rng = rng;
        self.act_forward(carry, batch, Some(&mut rng as &mut dyn RngCore), None)
    }

    /// Makes the draws [`Model::forward_train`] makes for `slots` slots and discards them. A rank of a
    /// data-parallel run skips the other ranks' slots this way, so that every slot of the global batch gets the
    /// exploration a single process would draw for it.
    pub fn skip_exploration_draws<R: Rng + ?Sized>(&self, rng: &mut R, slots: usize) {
        let c = &self.config;
        if c.halt_max_steps > 1 {
            for _ in 0..slots {
                min_halt_draw(rng, c.halt_max_steps, c.halt_exploration_prob);
            }
        }
    }

    /// One ACT call in evaluation mode (spec 5.3): no greedy halting and no exploration, so every slot runs
    /// `halt_max_steps` segments; runs without gradient.
    ///
    /// # Shapes
    /// As [`Model::forward_train`]; `target_q_continue` and `puzzle_local` are `None`.
    pub fn forward_eval(
        &self,
        carry: &Carry,
        batch: &Batch,
    ) -> Result<(Carry, ActOutput), ModelError> {
        tch::no_grad(|| self.act_forward(carry, batch, None, None))
    }

    /// [`Model::forward_train`] (when `rng` is given) or [`Model::forward_eval`] (when it is `None`), recording x̃ and
    /// every module call into `trace`.
    pub fn forward_traced(
        &self,
        carry: &Carry,
        batch: &Batch,
        rng: Option<&mut dyn RngCore>,
        trace: &mut ForwardTrace,
    ) -> Result<(Carry, ActOutput), ModelError> {
        match rng {
            Some(r) => self.act_forward(carry, batch, Some(r), Some(trace)),
            None => tch::no_grad(|| self.act_forward(carry, batch, None, Some(trace))),
        }
    }

    fn act_forward(
        &self,
        carry: &Carry,
        batch: &Batch,
        explore: Option<&mut dyn RngCore>,
        mut trace: Option<&mut ForwardTrace>,
    ) -> Result<(Carry, ActOutput), ModelError> {
        let batch = batch.to_device(self.device);
        self.check_batch(&batch, carry)?;
        let c = &self.config;
        let training = explore.is_some();
        let halted = carry.halted.shallow_clone();
        // Reset halted slots: initial states, zero steps and the new batch's data.
        let (z_h, z_l, steps, data) = tch::no_grad(|| {
            let hb = halted.view([-1, 1, 1]);
            let z_h = self.h_init.where_self(&hb, &carry.z_h);
            let z_l = self.l_init.where_self(&hb, &carry.z_l);
            let steps = carry.steps.masked_fill(&halted, 0);
            let h2 = halted.view([-1, 1]);
            let data = Batch {
                inputs: batch.inputs.where_self(&h2, &carry.inputs),
                labels: batch.labels.where_self(&h2, &carry.labels),
                puzzle_identifiers: batch
                    .puzzle_identifiers
                    .where_self(&halted, &carry.puzzle_identifiers),
            };
            (z_h, z_l, steps, data)
        });
        let puzzle_local = match (&self.puzzle_emb, training) {
            (Some(table), true) => {
                let weights = table
                    .index_select(0, &data.puzzle_identifiers)
                    .detach()
                    .set_requires_grad(true);
                Some(PuzzleLocal {
                    ids: data.puzzle_identifiers.shallow_clone(),
                    weights,
                })
            }
            _ => None,
        };
        let rows = match (&puzzle_local, &self.puzzle_emb) {
            (Some(local), _) => Some(local.weights.shallow_clone()),
            (None, Some(table)) => Some(table.index_select(0, &data.puzzle_identifiers)),
            (None, None) => None,
        };
        let out = self.inner_forward(
            &z_h,
            &z_l,
            &data.inputs,
            rows.as_ref(),
            trace.as_deref_mut(),
        );
        let (halted, steps, target) = tch::no_grad(|| {
            let steps = steps + 1;
            let is_last = steps.ge(c.halt_max_steps);
            let mut halted = is_last.shallow_clone();
            let mut target = None;
            if let Some(rng) = explore {
                if c.halt_max_steps > 1 {
                    let greedy = if c.uses_q_target() {
                        out.q_halt.gt_tensor(&out.q_continue)
                    } else {
                        out.q_halt.gt(0.0)
                    };
                    halted = halted.logical_or(&greedy);
                    let b = carry.batch_size() as usize;
                    let min_halt: Vec<i32> = (0..b)
                        .map(|_| min_halt_draw(rng, c.halt_max_steps, c.halt_exploration_prob))
                        .collect();
                    let min_halt = Tensor::from_slice(&min_halt).to_device(self.device);
                    halted = halted.logical_and(&steps.ge_tensor(&min_halt));
                    if c.uses_q_target() {
                        let rows = rows.as_ref().map(|r| r.detach());
                        let next = self.inner_forward(
                            &out.z_h,
                            &out.z_l,
                            &data.inputs,
                            rows.as_ref(),
                            trace,
                        );
                        let best = next.q_halt.maximum(&next.q_continue);
                        target = Some(next.q_halt.where_self(&is_last, &best).sigmoid());
                    }
                }
            }
            (halted, steps, target)
        });
        let new_carry = Carry {
            z_h: out.z_h,
            z_l: out.z_l,
            steps,
            halted,
            inputs: data.inputs,
            labels: data.labels,
            puzzle_identifiers: data.puzzle_identifiers,
        };
        let output = ActOutput {
            logits: out.logits,
            q_halt_logits: out.q_halt,
            q_continue_logits: out.q_continue,
            target_q_continue: target,
            puzzle_local: if training { puzzle_local } else { None },
        };
        Ok((new_carry, output))
    }
}

/// One slot's exploration (spec 5.2): with probability `prob` a minimum halting step drawn uniformly from
/// 2..=`halt_max_steps`, else 0. Always two draws, whatever `prob` is.
fn min_halt_draw<R: Rng + ?Sized>(rng: &mut R, halt_max_steps: i64, prob: f64) -> i32 {
    let u: f64 = rng.random();
    let k: i32 = rng.random_range(2..=halt_max_steps as i32);
    if u < prob {
        k
    } else {
        0
    }
}
