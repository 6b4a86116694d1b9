//! One optimizer step of HRM training: a global batch split into micro-batches, each with its own persistent
//! ACT carry (spec 10.2 pitfall 9), gradients accumulated, then one AdamATan2 and one sign-SGD step, and the EMA
//! update when one is kept (trm-spec 4). With [`Trainable::PuzzleTableOnly`] (`train.freeze_weights`) only the
//! sign-SGD step runs.
//! Follows the reference's `pretrain.py`.

use hrm_dist::Collective;
use hrm_model::{act_loss_head_on_device, ActMetrics, Batch, Carry, DeviceMetrics, Model};
use rand::Rng;
use tch::{Kind, Tensor};

use crate::ema::Ema;
use crate::error::TrainError;
use crate::optim::{AdamATan2, AdamATan2Config, SignSgd};
use crate::schedule::lr_at;

/// The optimisation settings of a run (spec 7.5, 7.6), plus the micro-batch split.
#[derive(Debug, Clone, PartialEq)]
pub struct StepConfig {
    /// Sequences per optimizer step (768 in every reference recipe); the loss is divided by it.
    pub global_batch_size: i64,
    /// Number of micro-batches k the global batch is split into; must divide `global_batch_size`.
    pub micro_batches: i64,
    /// Base learning rate of AdamATan2.
    pub lr: f64,
    /// Base learning rate of the puzzle-embedding sign-SGD.
    pub puzzle_emb_lr: f64,
    /// Decoupled weight decay of the puzzle-embedding sign-SGD.
    pub puzzle_emb_weight_decay: f64,
    /// Betas and weight decay of AdamATan2.
    pub adam: AdamATan2Config,
    /// Linear warmup length in steps (2000 in the reference).
    pub lr_warmup_steps: u64,
    /// Cosine floor as a fraction of the base rate (1.0 = constant after warmup).
    pub lr_min_ratio: f64,
    /// Nominal total steps; steps beyond it do nothing (as in the reference).
    pub total_steps: u64,
}

impl StepConfig {
    /// The reference defaults (`cfg_pretrain.yaml`): batch 768, lr 1e-4, puzzle lr 1e-2, weight decays 0.1,
    /// warmup 2000, min ratio 1.0, one micro-batch, for a run of `total_steps` steps.
    pub fn reference(total_steps: u64) -> Self {
        StepConfig {
            global_batch_size: 768,
            micro_batches: 1,
            lr: 1e-4,
            puzzle_emb_lr: 1e-2,
            puzzle_emb_weight_decay: 0.1,
            adam: AdamATan2Config::with_weight_decay(0.1),
            lr_warmup_steps: 2000,
            lr_min_ratio: 1.0,
            total_steps,
        }
    }

    /// Sequences per micro-batch, `global_batch_size / micro_batches`.
    pub fn micro_batch_size(&self) -> i64 {
        self.global_batch_size / self.micro_batches.max(1)
    }

    /// Checks that the batch splits evenly into at least one micro-batch.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |field: &str, message: String| {
            Err(TrainError::Config {
                field: field.into(),
                message,
            })
        };
        if self.global_batch_size < 1 {
            return bad(
                "global_batch_size",
                format!("must be ≥ 1, got {}", self.global_batch_size),
            );
        }
        if self.micro_batches < 1 || self.global_batch_size % self.micro_batches != 0 {
            return bad(
                "micro_batches",
                format!(
                    "{} must be ≥ 1 and divide global_batch_size {}",
                    self.micro_batches, self.global_batch_size
                ),
            );
        }
        for (field, v) in [
            ("lr", self.lr),
            ("puzzle_emb_lr", self.puzzle_emb_lr),
            ("lr_min_ratio", self.lr_min_ratio),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(field, format!("must be a finite number ≥ 0, got {v}"));
            }
        }
        Ok(())
    }
}

/// Which parameters an optimizer step updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Trainable {
    /// The network (AdamATan2) and the puzzle table (sign-SGD).
    #[default]
    All,
    /// Only the puzzle table (`train.freeze_weights`): the network's parameters do not require gradients, so
    /// none are computed, and no AdamATan2 step runs.
    PuzzleTableOnly,
}

/// What one call of [`Trainer::train_step`] did.
#[derive(Debug, Clone)]
pub struct StepReport {
    /// The step number s (1 for the first step).
    pub step: u64,
    /// AdamATan2 learning rate used, `lr_at(s)`.
    pub lr: f64,
    /// Sign-SGD learning rate used.
    pub puzzle_emb_lr: f64,
    /// The loss-head metrics summed over the micro-batches (raw sums, as the reference loss head returns them),
    /// still on the device: a step reads nothing back; [`StepReport::read_metrics`] does, once.
    pub metrics: DeviceMetrics,
}

impl StepReport {
    /// The metric sums as host numbers (one device-to-host read, which waits for the step to finish).
    pub fn read_metrics(&self) -> Result<ActMetrics, TrainError> {
        Ok(self.metrics.read()?.0)
    }

    /// The values the reference logs for a train step: losses divided by the global batch size, every other
    /// metric by max(count, 1), plus `train/lr` (reads the metrics: one host read).
    pub fn log_values(
        &self,
        global_batch_size: i64,
    ) -> Result<Vec<(&'static str, f64)>, TrainError> {
        let m = &self.read_metrics()?;
        let count = m.count.max(1.0);
        let gbs = global_batch_size as f64;
        let mut v = vec![
            ("train/count", m.count / count),
            ("train/accuracy", m.accuracy / count),
            ("train/exact_accuracy", m.exact_accuracy / count),
            ("train/q_halt_accuracy", m.q_halt_accuracy / count),
            ("train/steps", m.steps / count),
            ("train/lm_loss", m.lm_loss / gbs),
            ("train/q_halt_loss", m.q_halt_loss / gbs),
        ];
        if let Some(qc) = m.q_continue_loss {
            v.push(("train/q_continue_loss", qc / gbs));
        }
        v.push(("train/lr", self.lr));
        Ok(v)
    }
}

/// The training metrics since the last logged line, as raw sums, so that a logged line weighs every step by
/// its number of halted sequences, the way the reference's evaluation divides its sums by the count. Kept in
/// checkpoints, so a resumed run logs the same lines.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LogWindow {
    /// Optimizer steps in the window.
    pub optimizer_steps: u64,
    /// The loss-head sums of those steps (`count` = halted sequences; the losses cover every sequence).
    pub sums: ActMetrics,
}

impl LogWindow {
    /// Adds one optimizer step's metric sums.
    pub fn add(&mut self, m: &ActMetrics) {
        self.add_steps(1, m);
    }

    /// Adds the metric sums of `steps` optimizer steps.
    pub fn add_steps(&mut self, steps: u64, m: &ActMetrics) {
        self.optimizer_steps += steps;
        self.sums = add_metrics(&self.sums, m);
    }

    /// The logged values of the window: `train/count` is the number of halted sequences in it; accuracies and
    /// `train/steps` are divided by that count and left out when no sequence halted (rather than logged as 0);
    /// losses are per sequence and step (divided by the global batch size and the window's steps);
    /// `train/lr` is `lr`, the rate of the last step.
    pub fn values(&self, global_batch_size: i64, lr: f64) -> Vec<(&'static str, f64)> {
        let m = &self.sums;
        let mut v = vec![("train/count", m.count)];
        if m.count > 0.0 {
            v.extend([
                ("train/accuracy", m.accuracy / m.count),
                ("train/exact_accuracy", m.exact_accuracy / m.count),
                ("train/q_halt_accuracy", m.q_halt_accuracy / m.count),
                ("train/steps", m.steps / m.count),
            ]);
        }
        let per = (global_batch_size as f64) * (self.optimizer_steps.max(1) as f64);
        v.push(("train/lm_loss", m.lm_loss / per));
        v.push(("train/q_halt_loss", m.q_halt_loss / per));
        if let Some(q) = m.q_continue_loss {
            v.push(("train/q_continue_loss", q / per));
        }
        v.push(("train/lr", lr));
        v
    }
}

/// Adds two metric sums field by field.
pub fn add_metrics(a: &ActMetrics, b: &ActMetrics) -> ActMetrics {
    ActMetrics {
        count: a.count + b.count,
        accuracy: a.accuracy + b.accuracy,
        exact_accuracy: a.exact_accuracy + b.exact_accuracy,
        q_halt_accuracy: a.q_halt_accuracy + b.q_halt_accuracy,
        steps: a.steps + b.steps,
        lm_loss: a.lm_loss + b.lm_loss,
        q_halt_loss: a.q_halt_loss + b.q_halt_loss,
        q_continue_loss: match (a.q_continue_loss, b.q_continue_loss) {
            (None, None) => None,
            (x, y) => Some(x.unwrap_or(0.0) + y.unwrap_or(0.0)),
        },
    }
}

/// The training state that one optimizer step reads and writes: the model, both optimizers, one persistent ACT
/// carry per micro-batch and the step counter.
///
/// Slot i of micro-batch j is slot `j·(B/k) + i` of the global batch, and micro-batch j always uses carry j, so a
/// run with k micro-batches follows the same trajectory as one with a single batch of B (up to float rounding),
/// provided the data for each global slot is the same. The exploration RNG is consumed micro-batch after
/// micro-batch, slot by slot, which is the order of a single batch.
///
/// With a [`Collective`] ([`Trainer::set_collective`]) the trainer is rank r of W data-parallel ranks (hrm-spec 7,
/// the reference's `pretrain.py`): it steps on its slice of the global batch (rows `r·B/W .. (r+1)·B/W`, split
/// into its own k micro-batches with their own carries), still divides the loss by the global B, sums the
/// gradients over ranks, and gathers every rank's puzzle ids and gradients before the sign-SGD step, so every
/// rank applies the same update. It skips the exploration draws of the other ranks' slots, so W ranks of k
/// micro-batches follow the trajectory of one process with W·k micro-batches.
#[derive(Debug)]
pub struct Trainer {
    model: Model,
    config: StepConfig,
    adam: AdamATan2,
    sign_sgd: SignSgd,
    carries: Vec<Option<Carry>>,
    step: u64,
    trainable: Trainable,
    ema: Option<Ema>,
    /// This rank and the world size (0 and 1 in a single process).
    part: (usize, usize),
    dist: Option<Box<dyn Collective>>,
}

impl Trainer {
    /// A trainer at step 0 with empty optimizer state and no carries (every slot starts halted).
    pub fn new(model: Model, config: StepConfig) -> Result<Trainer, TrainError> {
        config.validate()?;
        let adam = AdamATan2::new(config.adam);
        let sign_sgd = SignSgd::new(config.puzzle_emb_weight_decay);
        let carries = (0..config.micro_batches).map(|_| None).collect();
        Ok(Trainer {
            model,
            config,
            adam,
            sign_sgd,
            carries,
            step: 0,
            trainable: Trainable::All,
            ema: None,
            part: (0, 1),
            dist: None,
        })
    }

    /// Chooses which parameters the following steps update; [`Trainable::PuzzleTableOnly`] needs a puzzle
    /// table and switches `requires_grad` off on every network parameter (back on with [`Trainable::All`]).
    pub fn set_trainable(&mut self, trainable: Trainable) -> Result<(), TrainError> {
        if trainable == Trainable::PuzzleTableOnly && self.model.puzzle_table().is_none() {
            return Err(TrainError::Config {
                field: "freeze_weights".into(),
                message:
                    "the model has no puzzle table (puzzle_emb_ndim = 0): nothing would be trained"
                        .into(),
            });
        }
        let requires_grad = trainable == Trainable::All;
        for (name, p) in self.model.named_parameters() {
            let _ = p
                .shallow_clone()
                .f_requires_grad_(requires_grad)
                .map_err(TrainError::tch(format!(
                    "setting requires_grad of `{name}`"
                )))?;
        }
        self.trainable = trainable;
        Ok(())
    }

    /// Makes this trainer rank `rank` of `world` data-parallel ranks, which decides its slice of the global
    /// batch and which carries of a checkpoint it loads; the global batch must split evenly into world size x
    /// micro-batches. The carries are forgotten (they are per rank).
    pub fn set_partition(&mut self, rank: usize, world: usize) -> Result<(), TrainError> {
        let (w, k) = (world.max(1) as i64, self.config.micro_batches);
        if rank >= world.max(1) {
            return Err(TrainError::Config {
                field: "rank".into(),
                message: format!("rank {rank} is not below the world size {world}"),
            });
        }
        if self.config.global_batch_size % (w * k) != 0 {
            return Err(TrainError::Config {
                field: "global_batch_size".into(),
                message: format!(
                    "{} sequences do not split evenly into {w} ranks x {k} micro-batches",
                    self.config.global_batch_size
                ),
            });
        }
        self.part = (rank, world.max(1));
        self.reset_carries();
        Ok(())
    }

    /// Connects this trainer to the other ranks: its steps now sum gradients and gather puzzle rows through
    /// `collective`. Sets the partition from the collective when none was set, else it must agree. Call
    /// [`Trainer::broadcast_state`] next, so that every rank starts from rank 0's weights.
    pub fn set_collective(&mut self, collective: Box<dyn Collective>) -> Result<(), TrainError> {
        let (rank, world) = (collective.rank(), collective.world_size());
        if self.part == (0, 1) {
            self.set_partition(rank, world)?;
        } else if self.part != (rank, world) {
            return Err(TrainError::Config {
                field: "world".into(),
                message: format!(
                    "the trainer is rank {} of {}, the collective rank {rank} of {world}",
                    self.part.0, self.part.1
                ),
            });
        }
        self.dist = Some(collective);
        Ok(())
    }

    /// The collective of a data-parallel run (`None` in a single process).
    pub fn collective(&mut self) -> Option<&mut (dyn Collective + 'static)> {
        self.dist.as_deref_mut()
    }

    /// The collective and the carries together (a checkpoint gathers the carries through the collective).
    pub fn collective_and_carries(
        &mut self,
    ) -> (Option<&mut (dyn Collective + 'static)>, &[Option<Carry>]) {
        (self.dist.as_deref_mut(), &self.carries)
    }

    /// This rank (0 in a single process).
    pub fn rank(&self) -> usize {
        self.part.0
    }

    /// The number of ranks (1 in a single process).
    pub fn world_size(&self) -> usize {
        self.part.1
    }

    /// Sequences this rank steps on: the global batch divided by the world size.
    pub fn local_batch_size(&self) -> i64 {
        self.config.global_batch_size / self.world_size() as i64
    }

    /// Sequences per micro-batch on this rank.
    pub fn micro_batch_size(&self) -> i64 {
        self.local_batch_size() / self.config.micro_batches.max(1)
    }

    /// Replaces every parameter (network and puzzle table) and the EMA shadow by rank 0's (hrm-spec 3.7: "all
    /// parameters and buffers are broadcast from rank 0 after init"; the buffers, H_init and L_init, come from
    /// the same seed on every rank). Nothing to do in a single process.
    pub fn broadcast_state(&mut self) -> Result<(), TrainError> {
        let Some(c) = self.dist.as_deref_mut() else {
            return Ok(());
        };
        let mut tensors: Vec<Tensor> = self
            .model
            .named_parameters()
            .map(|(_, p)| p.shallow_clone())
            .collect();
        tensors.extend(self.model.puzzle_table().map(Tensor::shallow_clone));
        tensors.push(self.model.h_init().shallow_clone());
        tensors.push(self.model.l_init().shallow_clone());
        if let Some(ema) = &self.ema {
            tensors.extend(ema.shadow().map(|(_, t)| t.shallow_clone()));
        }
        tch::no_grad(|| -> Result<(), TrainError> {
            for t in &tensors {
                c.broadcast(t, 0)?;
            }
            Ok(())
        })
    }

    /// Turns the model's per-forward range checks of token and puzzle ids on or off
    /// ([`Model::set_value_checks`]) and sign-SGD's id check: off for batches from a dataset validated when it was loaded, so that a step
    /// makes no host read.
    pub fn set_value_checks(&mut self, on: bool) {
        self.model.set_value_checks(on);
        self.sign_sgd.check_ids = on;
    }

    /// Which parameters a step updates.
    pub fn trainable(&self) -> Trainable {
        self.trainable
    }

    /// Starts an EMA of the parameters at rate mu, its shadow taken from the current weights.
    pub fn enable_ema(&mut self, rate: f64) -> Result<(), TrainError> {
        self.ema = Some(Ema::new(&self.model, rate)?);
        Ok(())
    }

    /// The EMA shadow, when one is kept.
    pub fn ema(&self) -> Option<&Ema> {
        self.ema.as_ref()
    }

    /// The EMA shadow, mutably (to load it when resuming).
    pub fn ema_mut(&mut self) -> Option<&mut Ema> {
        self.ema.as_mut()
    }

    /// Runs `f` on the model as evaluated: with the EMA shadow weights when an EMA is kept, else as trained.
    pub fn with_eval_model<T>(&self, f: impl FnOnce(&Model) -> T) -> Result<T, TrainError> {
        match &self.ema {
            Some(ema) => ema.with_weights(&self.model, f),
            None => Ok(f(&self.model)),
        }
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The model, mutably (e.g. to load weights before resuming).
    pub fn model_mut(&mut self) -> &mut Model {
        &mut self.model
    }

    /// Gives the model back.
    pub fn into_model(self) -> Model {
        self.model
    }

    /// The optimisation settings.
    pub fn config(&self) -> &StepConfig {
        &self.config
    }

    /// The AdamATan2 optimizer (its state is what a checkpoint saves).
    pub fn optimizer(&self) -> &AdamATan2 {
        &self.adam
    }

    /// The AdamATan2 optimizer, mutably (to load its state when resuming).
    pub fn optimizer_mut(&mut self) -> &mut AdamATan2 {
        &mut self.adam
    }

    /// Steps taken so far (the s of the last call; 0 before the first).
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// Sets the step counter, when resuming from a checkpoint.
    pub fn set_step_count(&mut self, step: u64) {
        self.step = step;
    }

    /// The persistent carry of each micro-batch (`None` until its first call).
    pub fn carries(&self) -> &[Option<Carry>] {
        &self.carries
    }

    /// Replaces the carries, when resuming; there must be one per micro-batch, each of the micro-batch size.
    pub fn set_carries(&mut self, carries: Vec<Option<Carry>>) -> Result<(), TrainError> {
        if carries.len() as i64 != self.config.micro_batches {
            return Err(TrainError::Config {
                field: "micro_batches".into(),
                message: format!(
                    "got {} carries for {} micro-batches",
                    carries.len(),
                    self.config.micro_batches
                ),
            });
        }
        let m = self.micro_batch_size();
        if let Some((j, c)) = carries
            .iter()
            .enumerate()
            .find_map(|(j, c)| c.as_ref().map(|c| (j, c)))
            .filter(|(_, c)| c.batch_size() != m)
        {
            return Err(TrainError::Config {
                field: "micro_batches".into(),
                message: format!(
                    "carry {j} holds {} slots, the micro-batch size is {m}",
                    c.batch_size()
                ),
            });
        }
        self.carries = carries;
        Ok(())
    }

    /// Forgets every carry, so that all slots start halted at the next step.
    pub fn reset_carries(&mut self) {
        self.carries.iter_mut().for_each(|c| *c = None);
    }

    /// One optimizer step on a global batch.
    ///
    /// The step counter s is incremented first; if s exceeds `total_steps` nothing else happens and `None` is
    /// returned (the reference stops updating there). Otherwise, for each micro-batch j (rows `j·m .. (j+1)·m`,
    /// m = B/k): one ACT forward in training mode on carry j, the loss head, and `backward(loss / B)`,
    /// accumulating gradients; then one AdamATan2 step on every trainable parameter at `lr_at(s)` and one
    /// sign-SGD step on the puzzle table at the puzzle `lr_at(s)`, with the puzzle gradients of all
    /// micro-batches concatenated (so rows of duplicate ids are summed before the sign); then the EMA update.
    /// With [`Trainable::PuzzleTableOnly`] the AdamATan2 step is skipped.
    ///
    /// Gradients are cleared at the start of a step and left in place afterwards, for inspection.
    /// After an error the trainer is mid-step and should not be stepped again.
    ///
    /// In a data-parallel run, `batch` is this rank's slice of the global batch; see [`Trainer`].
    ///
    /// # Shapes
    /// `batch`: inputs and labels `[B, S]`, puzzle identifiers `[B]`, with B = `global_batch_size` (divided by the
    /// world size in a data-parallel run).
    pub fn train_step<R: Rng + ?Sized>(
        &mut self,
        batch: &Batch,
        rng: &mut R,
    ) -> Result<Option<StepReport>, TrainError> {
        let local = self.local_batch_size();
        let b = batch.batch_size();
        if b != local {
            return Err(TrainError::Batch {
                field: "batch_size".into(),
                message: format!(
                    "the batch has {b} sequences; global_batch_size {} over {} rank(s) is {local}",
                    self.config.global_batch_size,
                    self.world_size()
                ),
            });
        }
        let cfg = &self.config;
        self.step += 1;
        let step = self.step;
        if step > cfg.total_steps {
            return Ok(None);
        }
        let lr = lr_at(
            step,
            cfg.lr,
            cfg.lr_warmup_steps,
            cfg.total_steps,
            cfg.lr_min_ratio,
        );
        let puzzle_emb_lr = lr_at(
            step,
            cfg.puzzle_emb_lr,
            cfg.lr_warmup_steps,
            cfg.total_steps,
            cfg.lr_min_ratio,
        );
        self.model.zero_grad();
        // Each fp32 master weight is cast to the forward dtype once for the whole step (all micro-batches,
        // forward and backward), not once per module call.
        let (rank, world) = (self.rank(), self.world_size());
        let slots = local as usize;
        self.model.skip_exploration_draws(rng, rank * slots);
        let (metrics, puzzle_grads) =
            hrm_model::layers::with_cached_casts(|| self.accumulate(batch, rng))?;
        self.model
            .skip_exploration_draws(rng, (world - 1 - rank) * slots);
        self.all_reduce_gradients()?;
        if self.trainable == Trainable::All {
            self.adam.step(self.model.named_parameters(), lr)?;
        }
        self.puzzle_step(puzzle_grads, puzzle_emb_lr)?;
        if let Some(ema) = &mut self.ema {
            ema.update(&self.model)?;
        }
        Ok(Some(StepReport {
            step,
            lr,
            puzzle_emb_lr,
            metrics,
        }))
    }

    /// The forward and backward passes of every micro-batch on its own carry, gradients accumulated; returns the
    /// summed metrics and the puzzle rows' (ids, gradients) of each micro-batch.
    fn accumulate<R: Rng + ?Sized>(
        &mut self,
        batch: &Batch,
        rng: &mut R,
    ) -> Result<(DeviceMetrics, Vec<(Tensor, Tensor)>), TrainError> {
        let loss_type = self.model.config().loss_type;
        let m = self.micro_batch_size();
        let gbs = self.config.global_batch_size as f64;
        let mut metrics: Option<DeviceMetrics> = None;
        let mut puzzle_grads = Vec::with_capacity(self.carries.len());
        for (j, slot) in self.carries.iter_mut().enumerate() {
            let rows = |t: &Tensor| t.narrow(0, j as i64 * m, m);
            let micro = Batch {
                inputs: rows(&batch.inputs),
                labels: rows(&batch.labels),
                puzzle_identifiers: rows(&batch.puzzle_identifiers),
            };
            let fresh;
            let carry = match slot {
                Some(c) => &*c,
                None => {
                    fresh = self.model.initial_carry(&micro);
                    &fresh
                }
            };
            let (new_carry, out) = self.model.forward_train(carry, &micro, rng)?;
            let loss = act_loss_head_on_device(&new_carry, &out, loss_type)?;
            loss.loss
                .f_div_scalar(gbs)
                .and_then(|l| l.f_backward())
                .map_err(TrainError::tch(format!("backward of micro-batch {j}")))?;
            if let Some(local) = &out.puzzle_local {
                let g = local.weights.grad();
                if g.defined() {
                    puzzle_grads.push((local.ids.shallow_clone(), g));
                }
            }
            metrics = Some(match metrics {
                Some(sum) => sum.add(&loss.metrics),
                None => loss.metrics,
            });
            *slot = Some(new_carry);
        }
        let metrics = metrics.ok_or_else(|| TrainError::Config {
            field: "micro_batches".into(),
            message: "a step needs at least one micro-batch".into(),
        })?;
        Ok((metrics, puzzle_grads))
    }

    /// Sums the network's gradients over the ranks of a data-parallel run, in flat buckets (nothing to do in a
    /// single process or when only the puzzle table trains). The loss was divided by the global batch size, so
    /// the sum is the gradient of the whole batch.
    fn all_reduce_gradients(&mut self) -> Result<(), TrainError> {
        let Some(c) = self.dist.as_deref_mut() else {
            return Ok(());
        };
        if self.trainable != Trainable::All {
            return Ok(());
        }
        let grads: Vec<Tensor> = self
            .model
            .named_parameters()
            .map(|(_, p)| p.grad())
            .filter(Tensor::defined)
            .collect();
        hrm_dist::all_reduce_flat(c, &grads, hrm_dist::BUCKET_BYTES)?;
        Ok(())
    }

    /// One sign-SGD step on the puzzle table with the gradients of all micro-batches concatenated (and, in a
    /// data-parallel run, gathered from every rank in rank order, as the reference's
    /// `_sparse_emb_signsgd_dist` does).
    fn puzzle_step(&mut self, grads: Vec<(Tensor, Tensor)>, lr: f64) -> Result<(), TrainError> {
        let Some(table) = self.model.puzzle_table() else {
            return Ok(());
        };
        if grads.is_empty() {
            return Ok(());
        }
        let (ids, grads): (Vec<Tensor>, Vec<Tensor>) = grads.into_iter().unzip();
        let ids = Tensor::f_cat(&ids, 0).map_err(TrainError::tch("concatenating puzzle ids"))?;
        let grads = Tensor::f_cat(&grads, 0)
            .and_then(|g| g.f_to_kind(Kind::Float))
            .map_err(TrainError::tch("concatenating puzzle gradients"))?;
        let (ids, grads) = match self.dist.as_deref_mut() {
            Some(c) => (c.all_gather(&ids)?, c.all_gather(&grads.contiguous())?),
            None => (ids, grads),
        };
        self.sign_sgd.step(table, &ids, &grads, lr)
    }
}

#[cfg(test)]
mod log_window_tests {
    use super::*;

    fn metrics(count: f64, accuracy: f64, exact: f64, lm_loss: f64) -> ActMetrics {
        ActMetrics {
            count,
            accuracy,
            exact_accuracy: exact,
            q_halt_accuracy: count,
            steps: 2.0 * count,
            lm_loss,
            q_halt_loss: 1.0,
            q_continue_loss: None,
        }
    }

    fn get(v: &[(&'static str, f64)], k: &str) -> Option<f64> {
        v.iter().find(|(n, _)| *n == k).map(|(_, x)| *x)
    }

    #[test]
    fn a_window_weighs_steps_by_their_halted_sequences() {
        let mut w = LogWindow::default();
        // Step 1: 1 halted sequence with accuracy 1.0; step 2: 3 halted with accuracy sum 0.6.
        w.add(&metrics(1.0, 1.0, 1.0, 8.0));
        w.add(&metrics(3.0, 0.6, 0.0, 4.0));
        let v = w.values(4, 0.5);
        assert_eq!(get(&v, "train/count"), Some(4.0));
        assert_eq!(get(&v, "train/accuracy"), Some(1.6 / 4.0));
        assert_eq!(get(&v, "train/exact_accuracy"), Some(0.25));
        assert_eq!(get(&v, "train/steps"), Some(2.0));
        // Losses per sequence and step: (8 + 4) / (4 sequences x 2 steps).
        assert_eq!(get(&v, "train/lm_loss"), Some(1.5));
        assert_eq!(get(&v, "train/lr"), Some(0.5));
    }

    #[test]
    fn a_window_without_halted_sequences_logs_no_accuracy() {
        let mut w = LogWindow::default();
        w.add(&metrics(0.0, 0.0, 0.0, 8.0));
        let v = w.values(4, 0.5);
        assert_eq!(get(&v, "train/count"), Some(0.0));
        for k in [
            "train/accuracy",
            "train/exact_accuracy",
            "train/q_halt_accuracy",
            "train/steps",
        ] {
            assert_eq!(get(&v, k), None, "{k}");
        }
        assert_eq!(get(&v, "train/lm_loss"), Some(2.0));
    }
}
