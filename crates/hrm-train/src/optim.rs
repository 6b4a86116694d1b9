//! The two optimizers of HRM: AdamATan2 for every trainable parameter (spec 7.1) and
//! sign-SGD with decoupled decay for the sparse puzzle-embedding table (spec 7.2).
//! Follows the `adam-atan2` package and the reference's `models/sparse_embedding.py`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tch::{Device, Kind, Tensor};

use crate::error::TrainError;

/// Hyperparameters of [`AdamATan2`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamATan2Config {
    /// β1, the decay of the first moment (0.9 in every HRM recipe).
    pub beta1: f64,
    /// β2, the decay of the second moment (0.95 in every HRM recipe).
    pub beta2: f64,
    /// Decoupled weight decay (0.1 for ARC, 1.0 for Sudoku and Maze).
    pub weight_decay: f64,
}

impl AdamATan2Config {
    /// HRM's betas (0.9, 0.95) with the given weight decay.
    pub fn with_weight_decay(weight_decay: f64) -> Self {
        AdamATan2Config {
            beta1: 0.9,
            beta2: 0.95,
            weight_decay,
        }
    }
}

impl Default for AdamATan2Config {
    /// Betas (0.9, 0.95) and weight decay 0.1 (`cfg_pretrain.yaml`).
    fn default() -> Self {
        AdamATan2Config::with_weight_decay(0.1)
    }
}

/// The fp32 state that AdamATan2 keeps for one parameter.
#[derive(Debug)]
pub struct AdamParamState {
    /// First moment m, fp32, the parameter's shape.
    pub exp_avg: Tensor,
    /// Second moment v, fp32, the parameter's shape.
    pub exp_avg_sq: Tensor,
    /// Number of updates applied to this parameter (the `t` of the last update; 0 before any).
    pub step: i64,
}

/// AdamATan2 exactly as spec 7.1 (the `adam-atan2` package at the pinned commit):
/// per element, with t counted from 1 for every tensor separately,
///
/// ```text
/// p ← p·(1 − lr·wd)
/// m ← β1·m + (1−β1)·g
/// v ← β2·v + (1−β2)·g²
/// p ← p − lr/(1−β1^t) · atan2(m, √v / √(1−β2^t))
/// ```
///
/// There is no ε. The state is fp32 and keyed by the parameter's name, so it can be saved to
/// and restored from safetensors for an exact resume ([`AdamATan2::save`], [`AdamATan2::load`]).
#[derive(Debug)]
pub struct AdamATan2 {
    config: AdamATan2Config,
    state: BTreeMap<String, AdamParamState>,
}

/// Suffix of the first-moment tensors in a state file.
const EXP_AVG: &str = ".exp_avg";
/// Suffix of the second-moment tensors in a state file.
const EXP_AVG_SQ: &str = ".exp_avg_sq";
/// Suffix of the per-parameter step counters (i64 scalars) in a state file.
const STEP: &str = ".step";

impl AdamATan2 {
    /// An optimizer with empty state.
    pub fn new(config: AdamATan2Config) -> Self {
        AdamATan2 {
            config,
            state: BTreeMap::new(),
        }
    }

    /// The hyperparameters.
    pub fn config(&self) -> AdamATan2Config {
        self.config
    }

    /// The state of one parameter, if it has been updated (or loaded) at least once.
    pub fn state(&self, name: &str) -> Option<&AdamParamState> {
        self.state.get(name)
    }

    /// The names of the parameters that have state, sorted.
    pub fn param_names(&self) -> impl Iterator<Item = &str> {
        self.state.keys().map(String::as_str)
    }

    /// One optimizer step over named parameters, reading each gradient from `param.grad()`.
    ///
    /// A parameter whose gradient is undefined is skipped and its step counter does not move,
    /// as in PyTorch. The parameters are updated in place, outside autograd.
    pub fn step<'a, I>(&mut self, params: I, lr: f64) -> Result<(), TrainError>
    where
        I: IntoIterator<Item = (&'a str, &'a Tensor)>,
    {
        for (name, param) in params {
            let grad = param.grad();
            if !grad.defined() {
                continue;
            }
            self.update(name, param, &grad, lr)?;
        }
        Ok(())
    }

    /// Applies one AdamATan2 update to `param` with an explicit gradient.
    ///
    /// # Shapes
    /// `param` and `grad` have the same shape (any); the state takes that shape, in fp32.
    pub fn update(
        &mut self,
        name: &str,
        param: &Tensor,
        grad: &Tensor,
        lr: f64,
    ) -> Result<(), TrainError> {
        check_update_inputs(name, param, grad, self.state.get(name))?;
        let device = param.device();
        let st = match self.state.entry(name.to_string()) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                let zeros = || {
                    Tensor::f_zeros(param.size(), (Kind::Float, device))
                        .map_err(TrainError::tch(format!("zero state of `{name}`")))
                };
                e.insert(AdamParamState {
                    exp_avg: zeros()?,
                    exp_avg_sq: zeros()?,
                    step: 0,
                })
            }
        };
        if st.exp_avg.device() != device {
            st.exp_avg = st.exp_avg.to_device(device);
            st.exp_avg_sq = st.exp_avg_sq.to_device(device);
        }
        let AdamATan2Config {
            beta1,
            beta2,
            weight_decay,
        } = self.config;
        let t = st.step + 1;
        tch::no_grad(|| -> Result<(), tch::TchError> {
            let g = grad.f_to_kind(Kind::Float)?;
            // The fp32 master copy: the parameter itself when it is fp32.
            let mut p = if param.kind() == Kind::Float {
                param.shallow_clone()
            } else {
                param.f_to_kind(Kind::Float)?
            };
            // Decoupled weight decay, applied first.
            let _ = p.f_mul_scalar_(1.0 - lr * weight_decay)?;
            // Moments: m ← β1·m + (1−β1)·g, v ← β2·v + (1−β2)·g².
            let mut m = st.exp_avg.shallow_clone();
            let _ = m.f_mul_scalar_(beta1)?;
            let _ = m.f_add_(&g.f_mul_scalar(1.0 - beta1)?)?;
            let mut v = st.exp_avg_sq.shallow_clone();
            let _ = v.f_mul_scalar_(beta2)?;
            let _ = v.f_add_(&g.f_square()?.f_mul_scalar(1.0 - beta2)?)?;
            // Bias-corrected atan2 step, no ε.
            let bias_correction1 = 1.0 - beta1.powi(t as i32);
            let bias_correction2_sqrt = (1.0 - beta2.powi(t as i32)).sqrt();
            let step_size = lr / bias_correction1;
            let denom = v.f_sqrt()?.f_div_scalar(bias_correction2_sqrt)?;
            let _ = p.f_sub_(&m.f_atan2(&denom)?.f_mul_scalar(step_size)?)?;
            if param.kind() != Kind::Float {
                param.shallow_clone().f_copy_(&p)?;
            }
            Ok(())
        })
        .map_err(TrainError::tch(format!("AdamATan2 update of `{name}`")))?;
        st.step = t;
        Ok(())
    }

    /// Writes the state to a safetensors file, atomically (temporary file in the same folder, then rename).
    ///
    /// For each parameter `<p>` the file holds `<p>.exp_avg` and `<p>.exp_avg_sq` (f32, the
    /// parameter's shape) and `<p>.step` (i64 scalar).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), TrainError> {
        let path = path.as_ref();
        let mut named: Vec<(String, Tensor)> = Vec::with_capacity(self.state.len() * 3);
        for (name, st) in &self.state {
            let cpu = |t: &Tensor| t.to_device(Device::Cpu).contiguous();
            named.push((format!("{name}{EXP_AVG}"), cpu(&st.exp_avg)));
            named.push((format!("{name}{EXP_AVG_SQ}"), cpu(&st.exp_avg_sq)));
            named.push((format!("{name}{STEP}"), Tensor::from(st.step)));
        }
        write_safetensors_atomic(&named, path)
    }

    /// Replaces the state with the one saved in `path`, placing the moments on `device`.
    ///
    /// Every parameter in the file must have its three tensors; moments must be f32 of equal
    /// shapes and the step an i64 scalar ≥ 0.
    pub fn load(&mut self, path: impl AsRef<Path>, device: Device) -> Result<(), TrainError> {
        let path = path.as_ref();
        let tensors = Tensor::read_safetensors(path).map_err(|e| TrainError::StateFile {
            path: path.to_path_buf(),
            field: String::new(),
            message: e.to_string(),
        })?;
        let bad = |field: &str, message: String| TrainError::StateFile {
            path: path.to_path_buf(),
            field: field.to_string(),
            message,
        };
        type Parts = (Option<Tensor>, Option<Tensor>, Option<i64>);
        let mut parts: BTreeMap<String, Parts> = BTreeMap::new();
        for (field, t) in tensors {
            if let Some(name) = field.strip_suffix(EXP_AVG_SQ) {
                check_moment(&t).map_err(|m| bad(&field, m))?;
                parts.entry(name.to_string()).or_default().1 = Some(t.to_device(device));
            } else if let Some(name) = field.strip_suffix(EXP_AVG) {
                check_moment(&t).map_err(|m| bad(&field, m))?;
                parts.entry(name.to_string()).or_default().0 = Some(t.to_device(device));
            } else if let Some(name) = field.strip_suffix(STEP) {
                if t.kind() != Kind::Int64 || t.numel() != 1 {
                    return Err(bad(
                        &field,
                        format!("expected an i64 scalar, got {:?} {:?}", t.kind(), t.size()),
                    ));
                }
                let step = t
                    .f_int64_value(&[])
                    .or_else(|_| t.f_int64_value(&[0]))
                    .map_err(|e| bad(&field, e.to_string()))?;
                if step < 0 {
                    return Err(bad(&field, format!("negative step {step}")));
                }
                parts.entry(name.to_string()).or_default().2 = Some(step);
            } else {
                return Err(bad(
                    &field,
                    "name does not end in .exp_avg, .exp_avg_sq or .step".into(),
                ));
            }
        }
        let mut state = BTreeMap::new();
        for (name, (m, v, step)) in parts {
            let m = m.ok_or_else(|| bad(&format!("{name}{EXP_AVG}"), "missing".into()))?;
            let v = v.ok_or_else(|| bad(&format!("{name}{EXP_AVG_SQ}"), "missing".into()))?;
            let step = step.ok_or_else(|| bad(&format!("{name}{STEP}"), "missing".into()))?;
            if m.size() != v.size() {
                return Err(bad(
                    &format!("{name}{EXP_AVG_SQ}"),
                    format!(
                        "shape {:?} differs from exp_avg shape {:?}",
                        v.size(),
                        m.size()
                    ),
                ));
            }
            state.insert(
                name,
                AdamParamState {
                    exp_avg: m,
                    exp_avg_sq: v,
                    step,
                },
            );
        }
        self.state = state;
        Ok(())
    }
}

/// Checks that a loaded moment is fp32.
fn check_moment(t: &Tensor) -> Result<(), String> {
    if t.kind() != Kind::Float {
        return Err(format!("expected f32, got {:?}", t.kind()));
    }
    match hrm_model::checkpoint::non_finite_count(t) {
        0 => Ok(()),
        n => Err(format!(
            "{n} non-finite values (NaN or infinity); the state is refused"
        )),
    }
}

/// Whether a tensor kind is a floating-point kind that can hold a parameter.
fn is_float_kind(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Float | Kind::Double | Kind::BFloat16 | Kind::Half
    )
}

/// Writes named tensors to `path` via a temporary file in the same folder and a rename.
pub(crate) fn write_safetensors_atomic(
    named: &[(String, Tensor)],
    path: &Path,
) -> Result<(), TrainError> {
    let file_name = path.file_name().ok_or_else(|| TrainError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has no file name"),
    })?;
    let mut tmp_name = file_name.to_os_string();
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp: PathBuf = path.with_file_name(tmp_name);
    Tensor::write_safetensors(named, &tmp).map_err(|e| TrainError::StateFile {
        path: tmp.clone(),
        field: String::new(),
        message: e.to_string(),
    })?;
    std::fs::rename(&tmp, path).map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        TrainError::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// Sign-SGD with decoupled weight decay for the sparse puzzle-embedding table (spec 7.2).
///
/// For the unique ids of a step, with the gradient rows of duplicate ids summed first:
/// `row ← row·(1 − lr·wd) − lr·sign(Σ g)`. Rows whose id is absent are untouched (no decay).
/// It has no state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignSgd {
    /// Decoupled weight decay (`puzzle_emb_weight_decay`: 0.1 for ARC, 1.0 for Sudoku and Maze).
    pub weight_decay: f64,
}

impl SignSgd {
    /// A sign-SGD optimizer with the given weight decay.
    pub fn new(weight_decay: f64) -> Self {
        SignSgd { weight_decay }
    }

    /// Updates the rows of `table` named by `ids` in place.
    ///
    /// `ids` may repeat (several batch slots, or several micro-batches, of the same puzzle);
    /// their gradient rows are summed before the sign is taken.
    ///
    /// # Shapes
    /// `table`: `[N, D]` floating point; `ids`: `[K]` integer, each in `0..N`; `grads`: `[K, D]`.
    pub fn step(
        &self,
        table: &Tensor,
        ids: &Tensor,
        grads: &Tensor,
        lr: f64,
    ) -> Result<(), TrainError> {
        let (k, d) = check_sign_sgd_inputs(table, ids, grads)?;
        if k == 0 {
            return Ok(());
        }
        let n = table.size()[0];
        let ctx = |what: &str| TrainError::tch(format!("SignSgd {what}"));
        let ids = ids.f_to_kind(Kind::Int64).map_err(ctx("id cast"))?;
        let lo = ids
            .f_min()
            .and_then(|t| t.f_int64_value(&[]))
            .map_err(ctx("id range"))?;
        let hi = ids
            .f_max()
            .and_then(|t| t.f_int64_value(&[]))
            .map_err(ctx("id range"))?;
        if lo < 0 || hi >= n {
            return Err(TrainError::param(
                "local_ids",
                format!("ids span {lo}..={hi}, outside the table's 0..{n}"),
            ));
        }
        tch::no_grad(|| -> Result<(), TrainError> {
            let (uniq, inverse, _) = ids
                .f_internal_unique2(true, true, false)
                .map_err(ctx("unique"))?;
            let u = uniq.size()[0];
            let summed = Tensor::f_zeros([u, d], (grads.kind(), grads.device()))
                .and_then(|z| z.f_index_add(0, &inverse, grads))
                .map_err(ctx("duplicate-id gradient sum"))?;
            let rows = table.f_index_select(0, &uniq).map_err(ctx("row gather"))?;
            let decayed = rows
                .f_mul_scalar(1.0 - lr * self.weight_decay)
                .map_err(ctx("decay"))?;
            let step = summed
                .f_sign()
                .and_then(|s| s.f_mul_scalar(lr))
                .map_err(ctx("sign"))?;
            let new_rows = decayed
                .f_sub(&step.f_to_kind(table.kind()).map_err(ctx("cast"))?)
                .map_err(ctx("update"))?;
            let _ = table
                .shallow_clone()
                .f_index_copy_(0, &uniq, &new_rows)
                .map_err(ctx("row scatter"))?;
            Ok(())
        })
    }
}

/// Checks the shapes and kinds of a sign-SGD step's inputs; returns (K, D).
fn check_sign_sgd_inputs(
    table: &Tensor,
    ids: &Tensor,
    grads: &Tensor,
) -> Result<(i64, i64), TrainError> {
    let tsize = table.size();
    if tsize.len() != 2 {
        return Err(TrainError::param(
            "puzzle table",
            format!("expected [N, D], got {tsize:?}"),
        ));
    }
    let d = tsize[1];
    if ids.dim() != 1
        || !matches!(
            ids.kind(),
            Kind::Int | Kind::Int64 | Kind::Int16 | Kind::Int8 | Kind::Uint8
        )
    {
        return Err(TrainError::param(
            "local_ids",
            format!(
                "expected an integer [K] tensor, got {:?} {:?}",
                ids.kind(),
                ids.size()
            ),
        ));
    }
    let k = ids.size()[0];
    if grads.size() != [k, d] {
        return Err(TrainError::param(
            "local_grad",
            format!("expected shape [{k}, {d}], got {:?}", grads.size()),
        ));
    }
    Ok((k, d))
}

/// Checks that a gradient and the moments already kept (if any) have the parameter's shape, and that the
/// parameter is floating point.
fn check_update_inputs(
    name: &str,
    param: &Tensor,
    grad: &Tensor,
    state: Option<&AdamParamState>,
) -> Result<(), TrainError> {
    let moments = state.into_iter().flat_map(|st| {
        [
            ("exp_avg state", &st.exp_avg),
            ("exp_avg_sq state", &st.exp_avg_sq),
        ]
    });
    for (what, t) in std::iter::once(("gradient", grad)).chain(moments) {
        if t.size() != param.size() {
            return Err(TrainError::param(
                name,
                format!(
                    "{what} shape {:?} differs from parameter shape {:?}",
                    t.size(),
                    param.size()
                ),
            ));
        }
    }
    if !is_float_kind(param.kind()) {
        return Err(TrainError::param(
            name,
            format!(
                "AdamATan2 needs a floating-point parameter, got {:?}",
                param.kind()
            ),
        ));
    }
    Ok(())
}
