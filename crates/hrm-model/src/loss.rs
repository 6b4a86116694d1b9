//! Losses and metrics of spec 6: stablemax / softmax cross-entropy and the ACT loss head.
//! Follows the reference's `models/losses.py`.

use tch::{Kind, Reduction, Tensor};

use crate::batch::{Carry, LOSS_IGNORE_LABEL};
use crate::config::LossType;
use crate::error::ModelError;
use crate::model::ActOutput;

/// s(x) = 1/(1 − x + 1e-30) for x < 0, x + 1 otherwise.
fn stablemax_s(x: &Tensor) -> Tensor {
    let neg = (x.neg() + 1.0 + 1e-30).reciprocal();
    neg.where_self(&x.lt(0.0), &(x + 1.0))
}

/// log(s(x_i) / Σ_j s(x_j)) along the last axis, in the dtype of `x`.
///
/// # Shapes
/// `x`: `[.., V]` → `[.., V]`.
pub fn log_stablemax(x: &Tensor) -> Tensor {
    let s = stablemax_s(x);
    let total = s.sum_dim_intlist(-1, true, s.kind());
    (s / total).log()
}

/// Stablemax cross-entropy in float64 (spec 6.1); positions labelled −100 give 0.
///
/// # Shapes
/// `logits`: `[.., V]` (any float kind); `labels`: `[..]` integer → `[..]` float64.
pub fn stablemax_cross_entropy(logits: &Tensor, labels: &Tensor) -> Tensor {
    let logprobs = log_stablemax(&logits.to_kind(Kind::Double));
    let valid = labels.ne(LOSS_IGNORE_LABEL);
    let safe = labels
        .to_kind(Kind::Int64)
        .masked_fill(&valid.logical_not(), 0);
    let picked = logprobs
        .gather(-1, &safe.unsqueeze(-1), false)
        .squeeze_dim(-1);
    picked.where_self(&valid, &picked.zeros_like()).neg()
}

/// Softmax cross-entropy in float32 with ignore index −100, no reduction.
///
/// # Shapes
/// `logits`: `[.., V]`; `labels`: `[..]` integer → `[..]` float32.
pub fn softmax_cross_entropy(logits: &Tensor, labels: &Tensor) -> Tensor {
    let v = logits.size()[logits.dim() - 1];
    logits
        .to_kind(Kind::Float)
        .reshape([-1, v])
        .cross_entropy_loss::<Tensor>(
            &labels.to_kind(Kind::Int64).reshape([-1]),
            None,
            Reduction::None,
            -100,
            0.0,
        )
        .reshape(labels.size())
}

/// The raw metric sums of one ACT call over valid sequences (halted at this call and with ≥ 1 label).
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct ActMetrics {
    /// Number of valid sequences.
    pub count: f64,
    /// Σ per-sequence token accuracy.
    pub accuracy: f64,
    /// Σ exactly-correct sequences.
    pub exact_accuracy: f64,
    /// Σ [(q_halt ≥ 0) == exactly correct].
    pub q_halt_accuracy: f64,
    /// Σ steps.
    pub steps: f64,
    /// Σ_b per-sequence mean token loss (over all B sequences).
    pub lm_loss: f64,
    /// Σ_b BCE(q_halt, exactly correct) (over all B sequences).
    pub q_halt_loss: f64,
    /// Σ_b BCE(q_continue, target); `None` outside training.
    pub q_continue_loss: Option<f64>,
}

/// What the loss head returns.
#[derive(Debug)]
pub struct LossOutput {
    /// lm_loss + 0.5·(q_halt_loss + q_continue_loss), a scalar (float64 with stablemax) that carries the graph;
    /// the trainer calls backward on it divided by the global batch size.
    pub loss: Tensor,
    /// The metrics as host numbers.
    pub metrics: ActMetrics,
    /// Whether every slot of the new carry is halted.
    pub all_halted: bool,
}

/// The metric sums of one or more ACT calls, still on the device: a `[9]` float64 tensor (count, accuracy,
/// exact_accuracy, q_halt_accuracy, steps, lm_loss, q_halt_loss, q_continue_loss, all halted). Adding them stays
/// on the device; [`DeviceMetrics::read`] is the one host read (and waits for the device).
#[derive(Debug)]
pub struct DeviceMetrics {
    stats: Tensor,
    has_q_continue: bool,
}

impl Clone for DeviceMetrics {
    fn clone(&self) -> Self {
        DeviceMetrics {
            stats: self.stats.shallow_clone(),
            has_q_continue: self.has_q_continue,
        }
    }
}

impl DeviceMetrics {
    /// The field-by-field sum (all halted: both), computed on the device without waiting for it.
    pub fn add(&self, other: &DeviceMetrics) -> DeviceMetrics {
        let sum = tch::no_grad(|| {
            let s = &self.stats + &other.stats;
            let halted = self
                .stats
                .narrow(0, 8, 1)
                .minimum(&other.stats.narrow(0, 8, 1));
            Tensor::cat(&[s.narrow(0, 0, 8), halted], 0)
        });
        DeviceMetrics {
            stats: sum,
            has_q_continue: self.has_q_continue || other.has_q_continue,
        }
    }

    /// The `[9]` float64 tensor itself (to sum it over data-parallel ranks, in place, before reading it; the
    /// last element, "all halted", is then a count rather than a flag).
    pub fn stats(&self) -> &Tensor {
        &self.stats
    }

    /// The sums as host numbers, and whether every slot was halted: one device-to-host copy.
    pub fn read(&self) -> Result<(ActMetrics, bool), ModelError> {
        let v = crate::host::read_f64(&self.stats)?;
        let metrics = ActMetrics {
            count: v[0],
            accuracy: v[1],
            exact_accuracy: v[2],
            q_halt_accuracy: v[3],
            steps: v[4],
            lm_loss: v[5],
            q_halt_loss: v[6],
            q_continue_loss: self.has_q_continue.then_some(v[7]),
        };
        Ok((metrics, v[8] != 0.0))
    }
}

/// What [`act_loss_head_on_device`] returns: the loss and the metrics, neither read to the host.
#[derive(Debug)]
pub struct DeviceLossOutput {
    /// As [`LossOutput::loss`].
    pub loss: Tensor,
    /// The metric sums of the call, on the device.
    pub metrics: DeviceMetrics,
}

/// The reference `ACTLossHead` applied to one ACT call's new carry and outputs (spec 6.2, 6.3), with the metrics
/// read to the host (one device-to-host copy; the trainer uses [`act_loss_head_on_device`]).
///
/// # Shapes
/// `outputs.logits` `[B, S, V]`, `carry.labels` `[B, S]`, q logits and flags `[B]`.
pub fn act_loss_head(
    carry: &Carry,
    outputs: &ActOutput,
    loss_type: LossType,
) -> Result<LossOutput, ModelError> {
    let out = act_loss_head_on_device(carry, outputs, loss_type)?;
    let (metrics, all_halted) = out.metrics.read()?;
    Ok(LossOutput {
        loss: out.loss,
        metrics,
        all_halted,
    })
}

/// [`act_loss_head`] without any host read: the metric sums stay on the device.
pub fn act_loss_head_on_device(
    carry: &Carry,
    outputs: &ActOutput,
    loss_type: LossType,
) -> Result<DeviceLossOutput, ModelError> {
    let labels = &carry.labels;
    let (mask, loss_counts, loss_divisor, is_correct, seq_is_correct) = tch::no_grad(|| {
        let mask = labels.ne(LOSS_IGNORE_LABEL);
        let loss_counts = mask.sum_dim_intlist(-1, false, Kind::Int64);
        let loss_divisor = loss_counts.clamp_min(1).unsqueeze(-1);
        let is_correct = mask.logical_and(&outputs.logits.argmax(-1, false).eq_tensor(labels));
        let seq_is_correct = is_correct
            .sum_dim_intlist(-1, false, Kind::Int64)
            .eq_tensor(&loss_counts);
        (mask, loss_counts, loss_divisor, is_correct, seq_is_correct)
    });
    let _ = mask;
    let token_loss = match loss_type {
        LossType::StablemaxCrossEntropy => stablemax_cross_entropy(&outputs.logits, labels),
        LossType::SoftmaxCrossEntropy => softmax_cross_entropy(&outputs.logits, labels),
    };
    let lm_loss = (token_loss / &loss_divisor).sum(token_loss_kind(loss_type));
    let q_halt = &outputs.q_halt_logits;
    let q_halt_loss = q_halt.binary_cross_entropy_with_logits::<Tensor>(
        &seq_is_correct.to_kind(q_halt.kind()),
        None,
        None,
        Reduction::Sum,
    );
    let q_continue_loss = outputs.target_q_continue.as_ref().map(|target| {
        outputs
            .q_continue_logits
            .binary_cross_entropy_with_logits::<Tensor>(target, None, None, Reduction::Sum)
    });
    let q_sum = match &q_continue_loss {
        Some(qc) => &q_halt_loss + qc,
        None => q_halt_loss.shallow_clone(),
    };
    let loss = &lm_loss + q_sum * 0.5;
    let stats = tch::no_grad(|| {
        let valid = carry.halted.logical_and(&loss_counts.gt(0));
        let zero = Tensor::zeros([], (Kind::Double, labels.device()));
        let per_seq_acc = (is_correct.to_kind(Kind::Float) / &loss_divisor).sum_dim_intlist(
            -1,
            false,
            Kind::Float,
        );
        let d = |t: Tensor| t.to_kind(Kind::Double);
        Tensor::stack(
            &[
                d(valid.sum(Kind::Int64)),
                d(per_seq_acc
                    .where_self(&valid, &per_seq_acc.zeros_like())
                    .sum(Kind::Float)),
                d(valid.logical_and(&seq_is_correct).sum(Kind::Int64)),
                d(valid
                    .logical_and(&q_halt.ge(0.0).eq_tensor(&seq_is_correct))
                    .sum(Kind::Int64)),
                d(carry
                    .steps
                    .where_self(&valid, &carry.steps.zeros_like())
                    .sum(Kind::Int64)),
                d(lm_loss.detach()),
                d(q_halt_loss.detach()),
                q_continue_loss
                    .as_ref()
                    .map(|t| d(t.detach()))
                    .unwrap_or(zero),
                d(carry.halted.all()),
            ],
            0,
        )
    });
    Ok(DeviceLossOutput {
        loss,
        metrics: DeviceMetrics {
            stats,
            has_q_continue: q_continue_loss.is_some(),
        },
    })
}

fn token_loss_kind(loss_type: LossType) -> Kind {
    match loss_type {
        LossType::StablemaxCrossEntropy => Kind::Double,
        LossType::SoftmaxCrossEntropy => Kind::Float,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stablemax_matches_the_spec_example() {
        let logits = Tensor::from_slice(&[0.0f64, 1.0, -1.0]).view([1, 3]);
        let labels = Tensor::from_slice(&[1i64]);
        let lp = log_stablemax(&logits);
        let p: Vec<f64> = Vec::try_from(&lp.exp().view([-1])).unwrap();
        for (got, want) in p.iter().zip([0.285714, 0.571429, 0.142857]) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
        let ce = stablemax_cross_entropy(&logits, &labels).double_value(&[0]);
        assert!((ce - 0.5596158).abs() < 1e-7, "{ce}");
    }

    #[test]
    fn ignored_positions_cost_nothing_in_both_losses() {
        let logits = Tensor::from_slice(&[0.3f32, -2.0, 1.0, 4.0, 0.0, -1.0]).view([2, 3]);
        let labels = Tensor::from_slice(&[2i64, -100]);
        let s = stablemax_cross_entropy(&logits, &labels);
        assert_eq!(s.kind(), Kind::Double);
        assert_eq!(s.double_value(&[1]), 0.0);
        assert!(s.double_value(&[0]) > 0.0);
        let m = softmax_cross_entropy(&logits, &labels);
        assert_eq!(m.kind(), Kind::Float);
        assert_eq!(m.double_value(&[1]), 0.0);
        let want = -(1.0f64.exp() / (0.3f64.exp() + (-2.0f64).exp() + 1.0f64.exp())).ln();
        assert!((m.double_value(&[0]) - want).abs() < 1e-6);
    }
}
