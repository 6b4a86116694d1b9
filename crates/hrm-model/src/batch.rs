//! `Batch` (inputs, labels, puzzle identifiers as tensors) and the ACT `Carry` of spec 5.1.
//! Follows the reference's `models/hrm/hrm_act_v1.py`.

use std::collections::HashMap;

use tch::{Device, Kind, Tensor};

use crate::error::ModelError;

/// The label value that the losses and metrics ignore: the model's loss encoding; datasets use 0 (their pad
/// token), which the data sampler maps to this value (`hrm_data::sampler::LOSS_IGNORE_LABEL`; hrm-train checks at
/// compile time that the two agree).
pub const LOSS_IGNORE_LABEL: i64 = -100;

/// One batch on a device: `inputs [B, S]`, `labels [B, S]` (−100 = ignored), `puzzle_identifiers [B]`, all int64.
#[derive(Debug)]
pub struct Batch {
    /// Token ids `[B, S]`, int64.
    pub inputs: Tensor,
    /// Target token ids `[B, S]`, int64, with [`LOSS_IGNORE_LABEL`] where no loss is taken.
    pub labels: Tensor,
    /// Puzzle-embedding row per sequence `[B]`, int64.
    pub puzzle_identifiers: Tensor,
}

impl Batch {
    /// Builds a batch from row-major host vectors (as hrm-data produces them) and moves it to `device`; on CUDA
    /// through pinned memory with non-blocking copies (the host does not wait for the device).
    ///
    /// `inputs` and `labels` hold `batch_size · seq_len` values, `puzzle_ids` holds `batch_size`.
    pub fn from_vecs(
        inputs: &[i32],
        labels: &[i32],
        puzzle_ids: &[i32],
        batch_size: usize,
        seq_len: usize,
        device: Device,
    ) -> Result<Batch, ModelError> {
        let n = batch_size * seq_len;
        let check = |field: &'static str, len: usize, expected: usize| {
            if len == expected {
                Ok(())
            } else {
                Err(ModelError::Batch {
                    field,
                    reason: format!("has {len} values, expected {expected} (batch_size {batch_size}, seq_len {seq_len})"),
                })
            }
        };
        check("inputs", inputs.len(), n)?;
        check("labels", labels.len(), n)?;
        check("puzzle_identifiers", puzzle_ids.len(), batch_size)?;
        let (b, s) = (batch_size as i64, seq_len as i64);
        // On CUDA the host tensors go through pinned (page-locked) memory and are copied without blocking the
        // host: the copy is queued on the current stream behind the work already queued, so the host goes on
        // preparing the next batch while the device computes (libtorch's pinned-memory allocator keeps the
        // buffer alive until the copy is done).
        let to = |v: &[i32], shape: &[i64]| {
            let host = Tensor::from_slice(v).to_kind(Kind::Int64).reshape(shape);
            if device.is_cuda() {
                host.pin_memory(device)
                    .to_device_(device, Kind::Int64, true, false)
            } else {
                host.to_device(device)
            }
        };
        Ok(Batch {
            inputs: to(inputs, &[b, s]),
            labels: to(labels, &[b, s]),
            puzzle_identifiers: to(puzzle_ids, &[b]),
        })
    }

    /// Wraps existing tensors (any integer kind), converting them to int64 and checking their shapes.
    pub fn new(
        inputs: &Tensor,
        labels: &Tensor,
        puzzle_identifiers: &Tensor,
    ) -> Result<Batch, ModelError> {
        let is = inputs.size();
        if is.len() != 2 {
            return Err(ModelError::Batch {
                field: "inputs",
                reason: format!("shape {is:?} is not [B, S]"),
            });
        }
        if labels.size() != is {
            return Err(ModelError::Batch {
                field: "labels",
                reason: format!("shape {:?} differs from inputs {is:?}", labels.size()),
            });
        }
        if puzzle_identifiers.size() != [is[0]] {
            return Err(ModelError::Batch {
                field: "puzzle_identifiers",
                reason: format!(
                    "shape {:?}, expected [{}]",
                    puzzle_identifiers.size(),
                    is[0]
                ),
            });
        }
        for (field, t) in [
            ("inputs", inputs),
            ("labels", labels),
            ("puzzle_identifiers", puzzle_identifiers),
        ] {
            if t.is_floating_point() || t.kind() == Kind::Bool {
                return Err(ModelError::Batch {
                    field,
                    reason: format!("kind {:?} is not an integer kind", t.kind()),
                });
            }
        }
        Ok(Batch {
            inputs: inputs.to_kind(Kind::Int64),
            labels: labels.to_kind(Kind::Int64),
            puzzle_identifiers: puzzle_identifiers.to_kind(Kind::Int64),
        })
    }

    /// B.
    pub fn batch_size(&self) -> i64 {
        self.inputs.size()[0]
    }

    /// S.
    pub fn seq_len(&self) -> i64 {
        self.inputs.size()[1]
    }

    /// The same batch on `device`.
    pub fn to_device(&self, device: Device) -> Batch {
        Batch {
            inputs: self.inputs.to_device(device),
            labels: self.labels.to_device(device),
            puzzle_identifiers: self.puzzle_identifiers.to_device(device),
        }
    }
}

/// The ACT carry (spec 5.1): the detached inner states, the step counters, the halted flags and the data each
/// slot is currently working on.
#[derive(Debug)]
pub struct Carry {
    /// z_H `[B, S+P, D]` in the forward dtype, detached.
    pub z_h: Tensor,
    /// z_L `[B, S+P, D]` in the forward dtype, detached.
    pub z_l: Tensor,
    /// Segments run on the current example `[B]`, int32.
    pub steps: Tensor,
    /// Whether the slot halted at the last call `[B]`, bool; halted slots take new data at the next call.
    pub halted: Tensor,
    /// The inputs each slot works on `[B, S]`, int64.
    pub inputs: Tensor,
    /// The labels each slot works on `[B, S]`, int64.
    pub labels: Tensor,
    /// The puzzle identifier each slot works on `[B]`, int64.
    pub puzzle_identifiers: Tensor,
}

/// The names [`Carry::named_tensors`] uses, in order.
const CARRY_NAMES: [&str; 7] = [
    "z_H",
    "z_L",
    "steps",
    "halted",
    "inputs",
    "labels",
    "puzzle_identifiers",
];

impl Carry {
    /// B.
    pub fn batch_size(&self) -> i64 {
        self.steps.size()[0]
    }

    /// A copy sharing no autograd history, with every tensor on `device`.
    pub fn to_device(&self, device: Device) -> Carry {
        Carry {
            z_h: self.z_h.to_device(device),
            z_l: self.z_l.to_device(device),
            steps: self.steps.to_device(device),
            halted: self.halted.to_device(device),
            inputs: self.inputs.to_device(device),
            labels: self.labels.to_device(device),
            puzzle_identifiers: self.puzzle_identifiers.to_device(device),
        }
    }

    /// The carry as (name, tensor) pairs, e.g. to store it in a checkpoint for exact resume.
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let ts = [
            &self.z_h,
            &self.z_l,
            &self.steps,
            &self.halted,
            &self.inputs,
            &self.labels,
            &self.puzzle_identifiers,
        ];
        CARRY_NAMES
            .iter()
            .zip(ts)
            .map(|(n, t)| (n.to_string(), t.shallow_clone()))
            .collect()
    }

    /// Rebuilds a carry from [`Carry::named_tensors`] output (names may carry a common `prefix`).
    pub fn from_named_tensors(
        tensors: &HashMap<String, Tensor>,
        prefix: &str,
    ) -> Result<Carry, ModelError> {
        let get = |field: &'static str| {
            tensors
                .get(&format!("{prefix}{field}"))
                .map(|t| t.shallow_clone())
                .ok_or(ModelError::Carry {
                    field,
                    reason: format!("tensor `{prefix}{field}` is missing"),
                })
        };
        let carry = Carry {
            z_h: get("z_H")?,
            z_l: get("z_L")?,
            steps: get("steps")?.to_kind(Kind::Int),
            halted: get("halted")?.to_kind(Kind::Bool),
            inputs: get("inputs")?.to_kind(Kind::Int64),
            labels: get("labels")?.to_kind(Kind::Int64),
            puzzle_identifiers: get("puzzle_identifiers")?.to_kind(Kind::Int64),
        };
        let b = carry.batch_size();
        let zs = carry.z_h.size();
        if zs.len() != 3 || zs[0] != b || carry.z_l.size() != zs {
            return Err(ModelError::Carry {
                field: "z_H",
                reason: format!(
                    "z_H {zs:?} / z_L {:?} do not fit batch {b}",
                    carry.z_l.size()
                ),
            });
        }
        if carry.halted.size() != [b] || carry.puzzle_identifiers.size() != [b] {
            return Err(ModelError::Carry {
                field: "halted",
                reason: format!("halted/puzzle_identifiers are not [{b}]"),
            });
        }
        if carry.inputs.size().first() != Some(&b) || carry.labels.size() != carry.inputs.size() {
            return Err(ModelError::Carry {
                field: "inputs",
                reason: format!("inputs/labels are not [{b}, S]"),
            });
        }
        Ok(carry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_vecs_builds_int64_tensors_of_the_right_shape() {
        let b = Batch::from_vecs(
            &[1, 2, 3, 4, 5, 6],
            &[1, -100, 3, 4, 5, 6],
            &[0, 7],
            2,
            3,
            Device::Cpu,
        )
        .unwrap();
        assert_eq!(b.inputs.size(), vec![2, 3]);
        assert_eq!(b.inputs.kind(), Kind::Int64);
        assert_eq!(b.labels.int64_value(&[0, 1]), -100);
        assert_eq!(b.puzzle_identifiers.int64_value(&[1]), 7);
        assert_eq!((b.batch_size(), b.seq_len()), (2, 3));
    }

    #[test]
    fn carry_round_trips_through_named_tensors() {
        let carry = Carry {
            z_h: Tensor::randn([2, 5, 8], (Kind::Float, Device::Cpu)),
            z_l: Tensor::randn([2, 5, 8], (Kind::Float, Device::Cpu)),
            steps: Tensor::from_slice(&[3i32, 1]),
            halted: Tensor::from_slice(&[true, false]),
            inputs: Tensor::from_slice(&[1i64, 2, 3, 4, 5, 6, 7, 8]).view([2, 4]),
            labels: Tensor::from_slice(&[1i64, -100, 3, 4, 5, 6, 7, 8]).view([2, 4]),
            puzzle_identifiers: Tensor::from_slice(&[4i64, 9]),
        };
        let map: HashMap<String, Tensor> = carry
            .named_tensors()
            .into_iter()
            .map(|(n, t)| (format!("carry.{n}"), t))
            .collect();
        let back = Carry::from_named_tensors(&map, "carry.").unwrap();
        for ((n, a), (_, b)) in carry
            .named_tensors()
            .iter()
            .zip(back.named_tensors().iter())
        {
            assert!(a.equal(b), "{n}");
        }
        let mut broken = map;
        broken.remove("carry.halted");
        let err = Carry::from_named_tensors(&broken, "carry.")
            .unwrap_err()
            .to_string();
        assert!(err.contains("carry.halted"), "{err}");
    }

    #[test]
    fn from_vecs_rejects_wrong_lengths_naming_the_field() {
        let err = Batch::from_vecs(&[1, 2, 3], &[1, 2, 3, 4], &[0], 1, 4, Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(err.contains("inputs") && err.contains("3 values"), "{err}");
        let err = Batch::from_vecs(&[1; 4], &[1; 4], &[0, 1], 1, 4, Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(err.contains("puzzle_identifiers"), "{err}");
    }
}
