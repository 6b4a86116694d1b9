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
    /// Reused fp32 work space of the blocked update ([`AdamATan2::step`]); never saved.
    scratch: Option<Scratch>,
}

/// The work space of the blocked update on one device: `denom` holds a group of parameters (the atan2
/// denominators, then the updates), `tmp` one block (the scaled gradient terms).
#[derive(Debug)]
struct Scratch {
    denom: Tensor,
    tmp: Tensor,
}

/// Elements per block of the blocked update on the CPU: ATen's intra-op grain (`at::internal::GRAIN_SIZE`),
/// so that each element-wise kernel on a block runs on the calling thread, without an intra-op parallel
/// region, on 128 KiB operands that stay in the L2 cache from one kernel to the next. The blocks are shared
/// out to as many worker threads as ATen has intra-op threads. On CUDA a parameter is one block.
const CPU_BLOCK: i64 = 32_768;

/// Most elements of one group of the blocked update (4 MiB of work space), unless a single parameter is
/// larger and makes a group alone. Small parameters share the passes of a group (their divisions merge
/// into one call, their parallel regions run back to back); a large one keeps its operands in the
/// last-level cache from one pass to the next.
const GROUP_NUMEL: i64 = 1 << 20;

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
            scratch: None,
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
    ///
    /// This is the multi-tensor path: every input is checked before any parameter moves; then the fp32
    /// contiguous parameters are updated in groups (one device, up to 2^20 elements), each pass of the
    /// update running over the whole group before the next, with in-place and `out=` kernels on reused
    /// work space (no temporary tensors); on the CPU the element-wise passes go in cache-sized blocks,
    /// shared out to one worker thread per ATen intra-op thread, each block kernel running without an
    /// intra-op parallel region (see `update_group` in the source). Each element sees the same kernels in the same order with the same
    /// scalars as in [`AdamATan2::step_per_tensor`], so parameters, moments and step counts are bitwise
    /// equal: products, sums, quotients and square roots are correctly rounded however they are blocked,
    /// and atan2 (whose vector and scalar kernels may differ in the last bit) runs over each whole
    /// parameter, as there. Other parameters (not fp32, or not contiguous) take the per-tensor update.
    ///
    /// tch 0.24 binds none of libtorch's `_foreach_*` operations (its generator skips them), and on the
    /// CPU those only loop over the tensors; the gain here comes from fewer memory passes, allocations,
    /// kernel calls and intra-op parallel regions, not from multi-tensor kernels.
    pub fn step<'a, I>(&mut self, params: I, lr: f64) -> Result<(), TrainError>
    where
        I: IntoIterator<Item = (&'a str, &'a Tensor)>,
    {
        let items: Vec<(&str, &Tensor, Tensor)> = params
            .into_iter()
            .filter_map(|(name, param)| {
                let grad = param.grad();
                grad.defined().then_some((name, param, grad))
            })
            .collect();
        for (name, param, grad) in &items {
            check_update_inputs(name, param, grad, self.state.get(*name))?;
        }
        let mut group: Vec<Job> = Vec::new();
        for (name, param, grad) in &items {
            let n = param.numel() as i64;
            let group_numel: i64 = group.iter().map(|j| j.numel).sum();
            // A repeated name is updated after the earlier occurrence, as on the per-tensor path.
            let flush = group
                .iter()
                .any(|j| j.name == *name || j.param.device() != param.device())
                || (!group.is_empty() && group_numel + n > GROUP_NUMEL);
            if flush {
                self.flush_group(&mut group, lr)?;
            }
            let st = state_entry(&mut self.state, name, param)?;
            let blockable = param.kind() == Kind::Float
                && grad.kind() == Kind::Float
                && grad.device() == param.device()
                && [param, grad, &st.exp_avg, &st.exp_avg_sq]
                    .iter()
                    .all(|x| x.is_contiguous());
            if blockable {
                group.push(Job {
                    name,
                    param,
                    grad,
                    exp_avg: st.exp_avg.shallow_clone(),
                    exp_avg_sq: st.exp_avg_sq.shallow_clone(),
                    t: st.step + 1,
                    numel: n,
                });
            } else {
                let t = st.step + 1;
                tch::no_grad(|| update_per_tensor(self.config, st, param, grad, lr, t))
                    .map_err(TrainError::tch(format!("AdamATan2 update of `{name}`")))?;
                st.step = t;
            }
        }
        self.flush_group(&mut group, lr)
    }

    /// [`AdamATan2::step`] one parameter at a time with the plain per-tensor update
    /// ([`AdamATan2::update`]): the reference arithmetic, kept for equality tests and benchmarks.
    ///
    /// Parameters before one whose input is refused are already updated when the error returns.
    pub fn step_per_tensor<'a, I>(&mut self, params: I, lr: f64) -> Result<(), TrainError>
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

    /// Applies one AdamATan2 update to `param` with an explicit gradient (the per-tensor path).
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
        let config = self.config;
        let st = state_entry(&mut self.state, name, param)?;
        let t = st.step + 1;
        tch::no_grad(|| update_per_tensor(config, st, param, grad, lr, t))
            .map_err(TrainError::tch(format!("AdamATan2 update of `{name}`")))?;
        st.step = t;
        Ok(())
    }

    /// Runs the blocked update of a group of parameters (one device, distinct names), then empties it.
    fn flush_group(&mut self, group: &mut Vec<Job>, lr: f64) -> Result<(), TrainError> {
        let Some(first) = group.first() else {
            return Ok(());
        };
        let device = first.param.device();
        let total: i64 = group.iter().map(|j| j.numel).sum();
        let largest = group.iter().map(|j| j.numel).max().unwrap_or(0);
        let block = block_len(device, largest);
        let workers = workers(device);
        let scratch = scratch_for(&mut self.scratch, device, total, block * workers as i64)
            .map_err(TrainError::tch("AdamATan2 work space"))?;
        let config = self.config;
        tch::no_grad(|| update_group(config, group, lr, scratch, workers)).map_err(
            TrainError::tch(format!(
                "AdamATan2 update of {} parameters from `{}`",
                group.len(),
                first.name
            )),
        )?;
        for job in group.drain(..) {
            if let Some(st) = self.state.get_mut(job.name) {
                st.step = job.t;
            }
        }
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

/// The state of `name`, created as zeros of `param`'s shape on first use and moved to `param`'s device.
fn state_entry<'s>(
    state: &'s mut BTreeMap<String, AdamParamState>,
    name: &str,
    param: &Tensor,
) -> Result<&'s mut AdamParamState, TrainError> {
    let device = param.device();
    let st = match state.entry(name.to_string()) {
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
    Ok(st)
}

/// The scalars of update `t`: (decay factor, step size lr/(1−β1^t), √(1−β2^t)).
fn update_scalars(config: AdamATan2Config, lr: f64, t: i64) -> (f64, f64, f64) {
    let bias_correction1 = 1.0 - config.beta1.powi(t as i32);
    let bias_correction2_sqrt = (1.0 - config.beta2.powi(t as i32)).sqrt();
    (
        1.0 - lr * config.weight_decay,
        lr / bias_correction1,
        bias_correction2_sqrt,
    )
}

/// The per-tensor AdamATan2 update `t` of one parameter (spec 7.1), allocating its temporaries.
fn update_per_tensor(
    config: AdamATan2Config,
    st: &AdamParamState,
    param: &Tensor,
    grad: &Tensor,
    lr: f64,
    t: i64,
) -> Result<(), tch::TchError> {
    let AdamATan2Config { beta1, beta2, .. } = config;
    let (decay, step_size, bias_correction2_sqrt) = update_scalars(config, lr, t);
    let g = grad.f_to_kind(Kind::Float)?;
    // The fp32 master copy: the parameter itself when it is fp32.
    let mut p = if param.kind() == Kind::Float {
        param.shallow_clone()
    } else {
        param.f_to_kind(Kind::Float)?
    };
    // Decoupled weight decay, applied first.
    let _ = p.f_mul_scalar_(decay)?;
    // Moments: m ← β1·m + (1−β1)·g, v ← β2·v + (1−β2)·g².
    let mut m = st.exp_avg.shallow_clone();
    let _ = m.f_mul_scalar_(beta1)?;
    let _ = m.f_add_(&g.f_mul_scalar(1.0 - beta1)?)?;
    let mut v = st.exp_avg_sq.shallow_clone();
    let _ = v.f_mul_scalar_(beta2)?;
    let _ = v.f_add_(&g.f_square()?.f_mul_scalar(1.0 - beta2)?)?;
    // Bias-corrected atan2 step, no ε.
    let denom = v.f_sqrt()?.f_div_scalar(bias_correction2_sqrt)?;
    let _ = p.f_sub_(&m.f_atan2(&denom)?.f_mul_scalar(step_size)?)?;
    if param.kind() != Kind::Float {
        param.shallow_clone().f_copy_(&p)?;
    }
    Ok(())
}

/// One parameter of a group on the blocked path: its inputs, handles on its moments, and its update `t`.
struct Job<'a> {
    name: &'a str,
    param: &'a Tensor,
    grad: &'a Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    t: i64,
    numel: i64,
}

/// The block length of the element-wise passes for a parameter of `n` elements on `device` (at least 1).
fn block_len(device: Device, n: i64) -> i64 {
    if device == Device::Cpu {
        CPU_BLOCK.min(n).max(1)
    } else {
        n.max(1)
    }
}

/// The threads that share the blocks of a pass: ATen's intra-op thread count on the CPU, 1 on CUDA.
fn workers(device: Device) -> usize {
    if device == Device::Cpu {
        tch::get_num_threads().max(1) as usize
    } else {
        1
    }
}

/// Runs `f` on every task, the tasks split into contiguous runs, one per work buffer in `tmps` and one
/// thread each (on the calling thread when there is one buffer or one task). Autograd is off in every
/// thread. The first error is returned; a panic in a worker is resumed here.
fn run_blocks<T, F>(tasks: Vec<T>, tmps: Vec<Tensor>, f: F) -> Result<(), tch::TchError>
where
    T: Send,
    F: Fn(T, &Tensor) -> Result<(), tch::TchError> + Sync,
{
    let threads = tmps.len().min(tasks.len()).max(1);
    let per_thread = tasks.len().div_ceil(threads);
    let mut tasks = tasks.into_iter();
    let mut runs: Vec<(Vec<T>, Tensor)> = tmps
        .into_iter()
        .take(threads)
        .map(|tmp| (tasks.by_ref().take(per_thread).collect(), tmp))
        .collect();
    let run = |(run, tmp): (Vec<T>, Tensor)| {
        tch::no_grad(|| run.into_iter().try_for_each(|task| f(task, &tmp)))
    };
    if runs.len() == 1 {
        return runs.pop().map_or(Ok(()), run);
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = runs.into_iter().map(|r| scope.spawn(|| run(r))).collect();
        let mut result = Ok(());
        for handle in handles {
            let outcome = handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            if result.is_ok() {
                result = outcome;
            }
        }
        result
    })
}

/// Views of `x` (1-D) in consecutive pieces of `len` elements, the last one shorter.
fn pieces(x: &Tensor, len: i64) -> Result<Vec<Tensor>, tch::TchError> {
    if x.numel() as i64 <= len {
        Ok(vec![x.shallow_clone()])
    } else {
        x.f_split(len, 0)
    }
}

/// The work space for `denom_len` denominator and `tmp_len` block elements on `device`, grown when too small.
fn scratch_for(
    slot: &mut Option<Scratch>,
    device: Device,
    denom_len: i64,
    tmp_len: i64,
) -> Result<&Scratch, tch::TchError> {
    let fits = |s: &Scratch| {
        s.denom.device() == device
            && s.denom.numel() as i64 >= denom_len
            && s.tmp.numel() as i64 >= tmp_len
    };
    if !slot.as_ref().is_some_and(fits) {
        let (d0, t0) = match slot.as_ref().filter(|s| s.denom.device() == device) {
            Some(s) => (s.denom.numel() as i64, s.tmp.numel() as i64),
            None => (0, 0),
        };
        *slot = None;
        *slot = Some(Scratch {
            denom: Tensor::f_empty([denom_len.max(d0).max(1)], (Kind::Float, device))?,
            tmp: Tensor::f_empty([tmp_len.max(t0).max(1)], (Kind::Float, device))?,
        });
    }
    Ok(slot.as_ref().expect("work space set above"))
}

/// The AdamATan2 updates of a group of fp32 contiguous parameters with contiguous fp32 gradients, on the
/// work space `scratch`: for each parameter the same kernels, operands and scalars as
/// [`update_per_tensor`], written in place or to `out=` views of the work space.
///
/// The passes, each over the whole group before the next (as multi-tensor kernels would run):
/// 1. decay and moments, block by block (on the CPU, blocks of [`CPU_BLOCK`] shared out to `workers` threads);
/// 2. the denominators √v into the work space, then ÷√(1−β2^t) in one call for each run of parameters
///    with the same t, then atan2(m, denominator), each over whole parameters;
/// 3. p ← p − step_size·atan2(…), block by block (shared out as in 1).
///
/// Every kernel but atan2 is a correctly rounded IEEE operation, so blocking and merging cannot change a
/// bit; atan2 sees the same operands as on the per-tensor path, hence the same vector/scalar split.
fn update_group(
    config: AdamATan2Config,
    group: &[Job],
    lr: f64,
    scratch: &Scratch,
    workers: usize,
) -> Result<(), tch::TchError> {
    let AdamATan2Config { beta1, beta2, .. } = config;
    let largest = group.iter().map(|j| j.numel).max().unwrap_or(0);
    let device = group.first().map_or(Device::Cpu, |j| j.param.device());
    let block = block_len(device, largest);
    // One work buffer of a block per worker thread.
    let tmps = || -> Result<Vec<Tensor>, tch::TchError> {
        (0..workers as i64)
            .map(|w| scratch.tmp.f_narrow(0, w * block, block))
            .collect()
    };
    // Pass 1 tasks: (p, g, m, v) blocks and the decay factor.
    let mut moment_tasks = Vec::new();
    // Per parameter: flat p, m, v, its denominator slice of the work space, and its scalars.
    let mut flats = Vec::with_capacity(group.len());
    let mut offset = 0;
    for job in group {
        let n = job.numel;
        let flat = |x: &Tensor| x.f_view([n]);
        let (p, g, m, v) = (
            flat(job.param)?,
            flat(job.grad)?,
            flat(&job.exp_avg)?,
            flat(&job.exp_avg_sq)?,
        );
        let denom = scratch.denom.f_narrow(0, offset, n)?;
        let scalars = update_scalars(config, lr, job.t);
        if n > 0 {
            let block = block_len(job.param.device(), n);
            let blocks = pieces(&p, block)?
                .into_iter()
                .zip(pieces(&g, block)?)
                .zip(pieces(&m, block)?)
                .zip(pieces(&v, block)?);
            moment_tasks.extend(blocks.map(|(((pb, gb), mb), vb)| (pb, gb, mb, vb, scalars.0)));
        }
        flats.push((p, m, v, denom, offset, scalars));
        offset += n;
    }
    run_blocks(
        moment_tasks,
        tmps()?,
        |(mut pb, gb, mut mb, mut vb, decay), tmp_block| {
            let len = pb.numel() as i64;
            let mut tmp = if len == tmp_block.numel() as i64 {
                tmp_block.shallow_clone()
            } else {
                tmp_block.f_narrow(0, 0, len)?
            };
            // Decoupled weight decay, applied first.
            let _ = pb.f_mul_scalar_(decay)?;
            // m ← β1·m + (1−β1)·g.
            let _ = mb.f_mul_scalar_(beta1)?;
            let _ = gb.f_mul_scalar_out(&tmp, 1.0 - beta1)?;
            let _ = mb.f_add_(&tmp)?;
            // v ← β2·v + (1−β2)·g².
            let _ = vb.f_mul_scalar_(beta2)?;
            let _ = gb.f_square_out(&tmp)?;
            let _ = tmp.f_mul_scalar_(1.0 - beta2)?;
            let _ = vb.f_add_(&tmp)?;
            Ok(())
        },
    )?;
    // √v.
    for (_, _, v, denom, _, _) in &flats {
        let _ = v.f_sqrt_out(denom)?;
    }
    // ÷√(1−β2^t), once per run of adjacent parameters with the same t (the same scalar).
    let mut run_start = 0;
    for (i, (_, _, _, denom, start, scalars)) in flats.iter().enumerate() {
        let run_ends = flats
            .get(i + 1)
            .is_none_or(|next| next.5 .2.to_bits() != scalars.2.to_bits());
        if run_ends {
            let len = start + denom.numel() as i64 - run_start;
            let _ = scratch
                .denom
                .f_narrow(0, run_start, len)?
                .f_div_scalar_(scalars.2)?;
            run_start = start + denom.numel() as i64;
        }
    }
    // atan2 over each whole parameter, as on the per-tensor path.
    for (_, m, _, denom, _, _) in &flats {
        let _ = m.f_atan2_out(denom, denom)?;
    }
    // p ← p − step_size·atan2(…).
    let mut step_tasks = Vec::new();
    for (p, _, _, denom, _, scalars) in &flats {
        if denom.numel() == 0 {
            continue;
        }
        let block = block_len(p.device(), p.numel() as i64);
        let blocks = pieces(p, block)?.into_iter().zip(pieces(denom, block)?);
        step_tasks.extend(blocks.map(|(pb, db)| (pb, db, scalars.1)));
    }
    run_blocks(step_tasks, tmps()?, |(mut pb, mut db, step_size), _| {
        let _ = db.f_mul_scalar_(step_size)?;
        let _ = pb.f_sub_(&db)?;
        Ok(())
    })
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
    /// Check that every id is a row of the table (one host read per step; on by default). The trainer turns
    /// it off for ids from a dataset validated when loaded, so that a step reads nothing back.
    pub check_ids: bool,
}

impl SignSgd {
    /// A sign-SGD optimizer with the given weight decay (id checks on).
    pub fn new(weight_decay: f64) -> Self {
        SignSgd {
            weight_decay,
            check_ids: true,
        }
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
        let range = if self.check_ids {
            Tensor::f_stack(
                &[
                    ids.f_min().map_err(ctx("id range"))?,
                    ids.f_max().map_err(ctx("id range"))?,
                ],
                0,
            )
            .and_then(|t| hrm_model::host::read_i64(&t))
            .map_err(ctx("id range"))?
        } else {
            vec![0, 0]
        };
        let (lo, hi) = (range[0], range[1]);
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
