//! Safetensors checkpoints with the reference state-dict names (`inner.H_level.layers.0.self_attn.qkv_proj.weight`,
//! buffers `inner.H_init`, `inner.L_init`, `inner.puzzle_emb.weights`). A TRM checkpoint has the keys of the
//! reference `trm.py`: no `inner.H_level.*`, its network under `inner.L_level.layers.i.*` with `self_attn` or, with
//! `mlp_t`, `mlp_t.{gate_up_proj,down_proj}.weight`.
//! Follows the reference's `models/hrm/hrm_act_v1.py`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tch::Tensor;

use crate::error::ModelError;
use crate::model::Model;

/// Name of the persistent `H_init` buffer.
pub const H_INIT: &str = "inner.H_init";
/// Name of the persistent `L_init` buffer.
pub const L_INIT: &str = "inner.L_init";
/// Name of the puzzle-embedding table buffer.
pub const PUZZLE_EMB: &str = "inner.puzzle_emb.weights";

/// Prefixes of official checkpoints that are stripped on load (`torch.compile` and the loss-head wrapper).
const STRIPPED_PREFIXES: [&str; 2] = ["_orig_mod.", "model."];

/// Non-persistent reference buffers that may appear in converted files and are ignored on load.
const IGNORED: [&str; 4] = [
    "inner.rotary_emb.cos_cached",
    "inner.rotary_emb.sin_cached",
    "inner.puzzle_emb.local_weights",
    "inner.puzzle_emb.local_ids",
];

/// A state-dict key without the prefixes of official checkpoints (`_orig_mod.` from `torch.compile`, `model.` from
/// the loss head), in any order and number.
pub fn strip(name: &str) -> &str {
    let mut n = name;
    loop {
        let before = n;
        for p in STRIPPED_PREFIXES {
            n = n.strip_prefix(p).unwrap_or(n);
        }
        if n == before {
            return n;
        }
    }
}

impl Model {
    /// Every tensor a checkpoint holds, by reference name: the trainable parameters (fp32), then `inner.H_init`,
    /// `inner.L_init` (forward dtype) and `inner.puzzle_emb.weights` (fp32, when present).
    pub fn state_dict(&self) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> = self
            .named_parameters()
            .map(|(n, t)| (n.to_string(), t.detach()))
            .collect();
        out.push((H_INIT.to_string(), self.h_init().detach()));
        out.push((L_INIT.to_string(), self.l_init().detach()));
        if let Some(table) = self.puzzle_table() {
            out.push((PUZZLE_EMB.to_string(), table.detach()));
        }
        out
    }

    /// Writes [`Model::state_dict`] to a safetensors file atomically (temporary file in the same folder, then rename).
    pub fn save_safetensors(&self, path: &Path) -> Result<(), ModelError> {
        let io = |reason: String| ModelError::CheckpointIo {
            path: path.to_path_buf(),
            reason,
        };
        let tensors: Vec<(String, Tensor)> = self
            .state_dict()
            .into_iter()
            .map(|(n, t)| (n, t.to_device(tch::Device::Cpu).contiguous()))
            .collect();
        let file_name = path
            .file_name()
            .ok_or_else(|| io("path has no file name".into()))?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(file_name);
        tmp_name.push(format!(".tmp{}", std::process::id()));
        let tmp: PathBuf = path.with_file_name(tmp_name);
        Tensor::write_safetensors(&tensors, &tmp).map_err(|e| io(e.to_string()))?;
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io(format!("rename from {}: {e}", tmp.display()))
        })
    }

    /// Loads a safetensors checkpoint with reference names (prefixes `_orig_mod.` and `model.` are stripped), copying
    /// every tensor into the model in place so parameter identities (and optimizer bindings) survive.
    ///
    /// Errors name the missing, unexpected or mis-shaped tensor; nothing is modified unless every tensor checks.
    pub fn load_safetensors(&mut self, path: &Path) -> Result<(), ModelError> {
        let raw = Tensor::read_safetensors(path).map_err(|e| ModelError::CheckpointIo {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        self.load_state_dict(raw, path)
    }

    /// Copies a state dict (reference names; the prefixes `_orig_mod.` and `model.` are stripped) into the model in
    /// place, as [`Model::load_safetensors`] does for a file; `path` names the source in errors. Each tensor is
    /// converted to the kind of the model's tensor (fp32 parameters and table, `H_init`/`L_init` in the forward
    /// dtype), so a tensor of that kind is copied bitwise.
    ///
    /// Errors name the missing, unexpected or mis-shaped tensor; nothing is modified unless every tensor checks.
    pub fn load_state_dict(
        &mut self,
        tensors: Vec<(String, Tensor)>,
        path: &Path,
    ) -> Result<(), ModelError> {
        let mut file: HashMap<String, Tensor> = HashMap::new();
        for (name, t) in tensors {
            file.insert(strip(&name).to_string(), t);
        }
        let expected = self.state_dict();
        for (name, _) in file.iter() {
            if !expected.iter().any(|(n, _)| n == name) && !IGNORED.contains(&name.as_str()) {
                return Err(ModelError::UnexpectedTensor {
                    path: path.to_path_buf(),
                    name: name.clone(),
                });
            }
        }
        for (name, dst) in &expected {
            let src = file.get(name).ok_or_else(|| ModelError::MissingTensor {
                path: path.to_path_buf(),
                name: name.clone(),
            })?;
            if src.size() != dst.size() {
                return Err(ModelError::ShapeMismatch {
                    path: path.to_path_buf(),
                    name: name.clone(),
                    expected: dst.size(),
                    found: src.size(),
                });
            }
            if !src.is_floating_point() {
                return Err(ModelError::CheckpointIo {
                    path: path.to_path_buf(),
                    reason: format!(
                        "tensor `{name}` has kind {:?}, expected a float kind",
                        src.kind()
                    ),
                });
            }
            let count = non_finite_count(src);
            if count > 0 {
                return Err(ModelError::NonFiniteTensor {
                    path: path.to_path_buf(),
                    name: name.clone(),
                    count,
                });
            }
        }
        let device = self.device();
        tch::no_grad(|| {
            for (name, dst) in &expected {
                let mut dst = dst.shallow_clone();
                let src = file[name].to_device(device).to_kind(dst.kind());
                dst.copy_(&src);
            }
        });
        Ok(())
    }

    /// Copies every tensor of `other`'s state dict except the puzzle table ([`PUZZLE_EMB`]) into this model, in
    /// place: the network of a trained model under a puzzle table of another size (`hrm solve` gives new tasks
    /// fresh rows). Both models must have the same architecture; a missing or mis-shaped tensor is an error and
    /// nothing is copied then.
    pub fn copy_network_from(&mut self, other: &Model) -> Result<(), ModelError> {
        let source: HashMap<String, Tensor> = other.state_dict().into_iter().collect();
        let expected: Vec<(String, Tensor)> = self
            .state_dict()
            .into_iter()
            .filter(|(n, _)| n != PUZZLE_EMB)
            .collect();
        let origin = PathBuf::from("<trained model>");
        for (name, dst) in &expected {
            let src = source.get(name).ok_or_else(|| ModelError::MissingTensor {
                path: origin.clone(),
                name: name.clone(),
            })?;
            if src.size() != dst.size() {
                return Err(ModelError::ShapeMismatch {
                    path: origin.clone(),
                    name: name.clone(),
                    expected: dst.size(),
                    found: src.size(),
                });
            }
        }
        tch::no_grad(|| {
            for (name, dst) in &expected {
                let mut dst = dst.shallow_clone();
                dst.copy_(&source[name].to_kind(dst.kind()));
            }
        });
        Ok(())
    }

    /// Builds a model for `config` on `device` and loads `path` into it (the init seed is irrelevant then).
    pub fn from_safetensors(
        config: &crate::ModelConfig,
        device: tch::Device,
        path: &Path,
    ) -> Result<Model, ModelError> {
        let mut model = Model::new(config, device, 0)?;
        model.load_safetensors(path)?;
        Ok(model)
    }
}

/// How many values of a float tensor are NaN or infinite (0 for a finite tensor; checkpoints are refused
/// otherwise, so a corrupt file never passes for a good one).
pub fn non_finite_count(t: &Tensor) -> i64 {
    tch::no_grad(|| {
        t.isfinite()
            .logical_not()
            .sum(tch::Kind::Int64)
            .int64_value(&[])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_prefixes_are_stripped() {
        assert_eq!(strip("_orig_mod.model.inner.H_init"), "inner.H_init");
        assert_eq!(strip("model.inner.lm_head.weight"), "inner.lm_head.weight");
        assert_eq!(strip("inner.q_head.bias"), "inner.q_head.bias");
    }
}
