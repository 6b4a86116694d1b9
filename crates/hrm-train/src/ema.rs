//! An exponential moving average of the trainable parameters (trm-spec 4; the reference's `models/ema.py`,
//! `EMAHelper`): a shadow copy taken at the start, `shadow = (1 - mu) * param + mu * shadow` after every
//! optimizer step, and evaluation with the shadow weights in place of the raw ones (the puzzle table, which is
//! not a trainable parameter, is used as trained).

use std::collections::HashMap;
use std::path::Path;

use hrm_model::Model;
use tch::Tensor;

use crate::error::TrainError;

/// The EMA shadow of every trainable parameter of a model, by reference name, in the model's parameter order.
#[derive(Debug)]
pub struct Ema {
    rate: f64,
    shadow: Vec<(String, Tensor)>,
}

impl Ema {
    /// A shadow equal to the model's current parameters; `rate` is mu, in `[0, 1]` (0.999 in the reference).
    pub fn new(model: &Model, rate: f64) -> Result<Ema, TrainError> {
        if !(rate.is_finite() && (0.0..=1.0).contains(&rate)) {
            return Err(TrainError::Config {
                field: "ema_rate".into(),
                message: format!("must be a number in [0, 1], got {rate}"),
            });
        }
        let shadow = tch::no_grad(|| {
            model
                .named_parameters()
                .map(|(n, p)| (n.to_string(), p.detach().copy()))
                .collect()
        });
        Ok(Ema { rate, shadow })
    }

    /// mu, the weight of the old shadow.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// The shadow tensors by reference name.
    pub fn shadow(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.shadow.iter().map(|(n, t)| (n.as_str(), t))
    }

    /// One update after an optimizer step: `shadow = (1 - mu) * param + mu * shadow` for every parameter.
    pub fn update(&mut self, model: &Model) -> Result<(), TrainError> {
        let mu = self.rate;
        let params = self.paired(model)?;
        let updated = tch::no_grad(|| {
            params
                .iter()
                .zip(&self.shadow)
                .map(|(p, (name, s))| {
                    p.f_mul_scalar(1.0 - mu)
                        .and_then(|a| a.f_add(&s.f_mul_scalar(mu)?))
                        .map_err(TrainError::tch(format!("EMA update of `{name}`")))
                })
                .collect::<Result<Vec<Tensor>, TrainError>>()
        })?;
        for ((_, s), u) in self.shadow.iter_mut().zip(updated) {
            *s = u;
        }
        Ok(())
    }

    /// Runs `f` on `model` with the shadow weights in place of its parameters, then puts the raw weights back
    /// bit for bit.
    pub fn with_weights<T>(
        &self,
        model: &Model,
        f: impl FnOnce(&Model) -> T,
    ) -> Result<T, TrainError> {
        let params = self.paired(model)?;
        let raw: Vec<Tensor> = tch::no_grad(|| params.iter().map(|p| p.copy()).collect());
        let copy_into = |from: &mut dyn Iterator<Item = &Tensor>| -> Result<(), TrainError> {
            tch::no_grad(|| {
                for (p, src) in params.iter().zip(from) {
                    p.shallow_clone()
                        .f_copy_(src)
                        .map_err(TrainError::tch("swapping EMA weights"))?;
                }
                Ok(())
            })
        };
        copy_into(&mut self.shadow.iter().map(|(_, s)| s))?;
        let out = f(model);
        copy_into(&mut raw.iter())?;
        Ok(out)
    }

    /// Writes the model's state dict with the shadow weights (reference names, the puzzle table as trained), so
    /// that the file loads with [`Model::from_safetensors`].
    pub fn save(&self, model: &Model, path: &Path) -> Result<(), TrainError> {
        self.with_weights(model, |m| m.save_safetensors(path))??;
        Ok(())
    }

    /// Reads the shadow from a file written by [`Ema::save`]; errors name the file and the tensor.
    pub fn load(&mut self, path: &Path) -> Result<(), TrainError> {
        let bad = |field: &str, message: String| TrainError::WeightsFile {
            path: path.to_path_buf(),
            field: field.to_string(),
            message,
        };
        let file: HashMap<String, Tensor> = Tensor::read_safetensors(path)
            .map_err(|e| bad("", e.to_string()))?
            .into_iter()
            .collect();
        let mut loaded = Vec::with_capacity(self.shadow.len());
        for (name, s) in &self.shadow {
            let t = file.get(name).ok_or_else(|| bad(name, "missing".into()))?;
            if t.size() != s.size() {
                return Err(bad(
                    name,
                    format!("shape {:?}, the model has {:?}", t.size(), s.size()),
                ));
            }
            let count = hrm_model::checkpoint::non_finite_count(t);
            if count > 0 {
                return Err(bad(
                    name,
                    format!(
                        "{count} non-finite values (NaN or infinity); the EMA weights are refused"
                    ),
                ));
            }
            loaded.push(t.to_kind(s.kind()).to_device(s.device()));
        }
        for ((_, s), t) in self.shadow.iter_mut().zip(loaded) {
            *s = t;
        }
        Ok(())
    }

    /// The model's parameters in shadow order, checking that the names agree.
    fn paired<'m>(&self, model: &'m Model) -> Result<Vec<&'m Tensor>, TrainError> {
        let params: Vec<(&str, &Tensor)> = model.named_parameters().collect();
        if params.len() != self.shadow.len()
            || params
                .iter()
                .zip(&self.shadow)
                .any(|((a, _), (b, _))| *a != b.as_str())
        {
            return Err(TrainError::param(
                "ema",
                "the model's parameters are not the ones the EMA shadow was taken from",
            ));
        }
        Ok(params.into_iter().map(|(_, p)| p).collect())
    }
}

/// `shadow = (1 - mu) * param + mu * shadow` on plain numbers, the rule [`Ema::update`] applies per element.
pub fn ema_rule(shadow: f64, param: f64, mu: f64) -> f64 {
    (1.0 - mu) * param + mu * shadow
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    fn tiny_model() -> Model {
        let tmp = tempfile::tempdir().unwrap();
        crate::synthetic::write_dataset(tmp.path(), 8, 1).unwrap();
        let meta = hrm_data::layout::load_metadata(tmp.path(), "train").unwrap();
        let recipe = crate::synthetic::tiny_recipe(&[]).unwrap();
        let config = crate::run::resolve_model_config(&recipe, &meta, tch::Device::Cpu).unwrap();
        Model::new(&config, tch::Device::Cpu, 0).unwrap()
    }

    #[test]
    fn update_follows_the_rule_and_swapping_restores_the_raw_weights() {
        let model = tiny_model();
        let mu = 0.75;
        let mut ema = Ema::new(&model, mu).unwrap();
        let before: Vec<Tensor> = ema.shadow().map(|(_, s)| s.copy()).collect();
        // Move every parameter by +1, then update.
        tch::no_grad(|| {
            for (_, p) in model.named_parameters() {
                let _ = p.shallow_clone().f_add_scalar_(1.0).unwrap();
            }
        });
        ema.update(&model).unwrap();
        for ((name, s), (b, (_, p))) in ema
            .shadow()
            .zip(before.iter().zip(model.named_parameters()))
        {
            let want = p.to_kind(Kind::Double) * (1.0 - mu) + b.to_kind(Kind::Double) * mu;
            let diff = (s.to_kind(Kind::Double) - want)
                .abs()
                .max()
                .double_value(&[]);
            assert!(diff < 1e-6, "{name}: {diff}");
            // The shadow sits between the old shadow and the parameter: 0.25 of the way.
            let moved = (s - b).mean(Kind::Double).double_value(&[]);
            assert!((moved - 0.25).abs() < 1e-5, "{name}: moved {moved}");
        }
        assert_eq!(ema_rule(2.0, 6.0, 0.75), 3.0);

        let raw: Vec<Tensor> = model.named_parameters().map(|(_, p)| p.copy()).collect();
        let seen = ema
            .with_weights(&model, |m| {
                m.named_parameters()
                    .zip(ema.shadow())
                    .all(|((_, p), (_, s))| p.equal(s))
            })
            .unwrap();
        assert!(
            seen,
            "the model runs with the shadow weights inside with_weights"
        );
        for (r, (name, p)) in raw.iter().zip(model.named_parameters()) {
            assert!(r.equal(p), "{name} restored bit for bit");
        }
        assert!(Ema::new(&model, 1.5).is_err());
    }
}
