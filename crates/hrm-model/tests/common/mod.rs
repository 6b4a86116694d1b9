//! Helpers shared by the golden parity tests (`golden.rs`: HRM's `tiny_*` files; `trm_golden.rs`: TRM's `trm_*`
//! files; `sweep.rs`: every set under `tests/sweep/`). Every structural fact — the number and order of network calls, the prefix length, which parameters,
//! buffers and trace keys exist, RoPE or not, the number of segments — comes from the config and trace files, so
//! the same checks run unchanged on another configuration's files in the same format (see
//! `shared/golden/README.md` for the protocol and the tolerances).
//!
//! Two environment variables move the checks onto another device and precision (the GPU check of
//! `cargo xtask gpu-bundle` sets them; unset, the tests run as in CI):
//! - `HRM_TEST_DEVICE`: `cpu`, `cuda` (fails when CUDA is missing) or unset/`all` ([`hrm_model::test_devices`]:
//!   the CPU, and CUDA when present);
//! - `HRM_TEST_DTYPE`: `f32` (default, the README's tolerances) or `bf16` (the model's forward in bfloat16,
//!   checked with the looser bounds of [`BF16`]).
//!
//! Each bound is the larger of the README's and [`reference::NOISE_FACTOR`] times the reference's own float
//! rounding, measured per tensor against the set's `float64/` twin (see [`reference`]).

#![allow(dead_code)]

pub mod reference;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use reference::{f64s, report, Reference};

use hrm_model::{
    act_loss_head, ActOutput, Batch, Carry, ForwardDtype, ForwardTrace, Level, LossOutput, Model,
    ModelConfig, ModelKind, PosEncoding,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

/// The parity tests of one golden set, as `#[test]` functions: position tables, checkpoint keys, training
/// segments and the eval rollout. Use as `common::parity_tests!(set())` with a function giving a [`GoldenSet`].
#[allow(unused_macros)]
macro_rules! parity_tests {
    ($set:expr) => {
        common::parity_tests!(@each $set;
            position_tables_match_the_reference => check_buffers,
            checkpoint_keys_are_the_reference_state_dict => check_state_dict,
            training_segments_match_the_reference => check_training_segments,
            eval_rollout_matches_the_reference => check_eval_rollout);
    };
    (@each $set:expr; $($name:ident => $check:ident),+) => {
        $(
            #[test]
            fn $name() {
                common::$check(&$set);
            }
        )+
    };
}
#[allow(unused_imports)]
pub(crate) use parity_tests;

/// The devices the parity checks run on: `HRM_TEST_DEVICE` = `cpu`, `cuda`, or unset/`all` (the CPU, and CUDA
/// when present, as [`hrm_model::test_devices`]).
pub fn test_devices() -> Vec<Device> {
    match std::env::var("HRM_TEST_DEVICE").as_deref() {
        Err(_) | Ok("") | Ok("all") => hrm_model::test_devices(),
        Ok("cpu") => vec![Device::Cpu],
        Ok("cuda") => {
            assert!(
                tch::Cuda::is_available(),
                "HRM_TEST_DEVICE=cuda, but libtorch sees no CUDA device"
            );
            vec![Device::Cuda(0)]
        }
        Ok(other) => panic!("HRM_TEST_DEVICE={other}: expected cpu, cuda or all"),
    }
}

/// The forward dtype of the parity checks: `HRM_TEST_DTYPE` = `f32` (default) or `bf16`.
pub fn test_dtype() -> ForwardDtype {
    match std::env::var("HRM_TEST_DTYPE").as_deref() {
        Err(_) | Ok("") | Ok("f32") | Ok("float32") => ForwardDtype::Float32,
        Ok("bf16") | Ok("bfloat16") => ForwardDtype::Bfloat16,
        Ok(other) => panic!("HRM_TEST_DTYPE={other}: expected f32 or bf16"),
    }
}

/// The bounds of one precision. Elementwise checks are `|got − ref| ≤ atol + rtol·|ref|`.
#[derive(Debug, Clone, Copy)]
pub struct Tolerances {
    /// Forward values (logits, carries, network calls, x̃) of segment 0, from a fresh state.
    pub forward0: Forward,
    /// Forward values after carried state (segments ≥ 1, the eval rollout).
    pub forward: Forward,
    /// q_halt / q_continue logits: atol.
    pub q_atol: f64,
    /// The bootstrapped target: atol.
    pub target_atol: f64,
    /// Losses: rtol.
    pub loss_rtol: f64,
    /// `metrics.accuracy` (a share of labelled tokens): atol.
    pub accuracy_atol: f64,
    /// Gradients: max |Δ| ≤ grad_rel · max |ref| per tensor.
    pub grad_rel: f64,
    /// Whether decisions (halting, steps, exact accuracy, counts, the eval's number of segments) must match
    /// exactly and the carried segments after them are compared.
    pub exact_decisions: bool,
}

/// float32: the golden README's recommendations, measured against a float64 and a math-SDPA rerun of the
/// reference (worst use of a bound 26%).
pub const F32: Tolerances = Tolerances {
    forward0: Forward {
        atol: 2e-5,
        rtol: 1e-4,
        norm: f64::INFINITY,
    },
    forward: Forward {
        atol: 5e-5,
        rtol: 1e-4,
        norm: f64::INFINITY,
    },
    q_atol: 1e-5,
    target_atol: 1e-6,
    loss_rtol: 1e-5,
    accuracy_atol: 1e-6,
    grad_rel: 1e-4,
    exact_decisions: true,
};

/// bfloat16: the forward runs in bf16 (parameters kept in f32, as in training), the reference in float32.
///
/// bf16 keeps 8 significant bits: each rounding errs by up to 2⁻⁹ ≈ 2e-3 relative (4e-3 between neighbours), and
/// the errors of a chain of roundings add up. Segment 0 alone is a chain of 12 network calls (the Q-target pass
/// included) of 2 blocks, each with ~10 rounded steps (projections, attention, SwiGLU, residual, RMSNorm), so a
/// few percent relative error is the expected size; carried segments compound it over up to 4 segments (TRM: 15
/// calls each). Measured with `HRM_TEST_REPORT=1` on the CPU (bf16 kernels accumulating in f32, as cuBLAS does),
/// worst of HRM and TRM:
/// - segment 0 (logits, z_H, z_L, every call): ‖Δ‖/‖ref‖ ≤ 2.7e-2, max |Δ| 0.12 at |ref| ≤ 3.5;
/// - carried segments and the eval rollout: ‖Δ‖/‖ref‖ ≤ 0.20 (TRM's eval logits after 4 segments), max |Δ| 0.83;
/// - q logits: max |Δ| 0.071; the bootstrapped target: 1.6e-4; losses: relative 1.5e-2 (TRM's eval lm_loss);
/// - gradients: max |Δ| ≤ 0.07·max |ref| (TRM); `metrics.accuracy`: one token of a row (0.083).
///
/// The bounds below are 2-3 times those figures, since CUDA's kernels round in other places (split-K matmuls,
/// fused attention). They catch what bf16 parity is for on a GPU — a kernel, cast or layout error gives errors
/// of order 1 — not last-bit agreement, which the float32 run checks. Decisions (halting, exact correctness, the
/// sign of q_halt) whose reference margin lies below this noise may flip: see [`Tolerances::exact_decisions`].
pub const BF16: Tolerances = Tolerances {
    forward0: Forward {
        atol: 0.25,
        rtol: 0.05,
        norm: 0.08,
    },
    forward: Forward {
        atol: 1.0,
        rtol: 0.1,
        norm: 0.4,
    },
    q_atol: 0.2,
    target_atol: 1e-3,
    loss_rtol: 5e-2,
    accuracy_atol: 0.25,
    grad_rel: 0.2,
    exact_decisions: false,
};

/// The bound of a forward tensor: elementwise `|got − ref| ≤ atol + rtol·|ref|`, and normwise
/// `‖got − ref‖₂ ≤ norm·‖ref‖₂` (which only bf16 needs: there the elementwise bound must admit a few outliers).
#[derive(Debug, Clone, Copy)]
pub struct Forward {
    pub atol: f64,
    pub rtol: f64,
    pub norm: f64,
}

/// The gradient key of the sparse embedding's leaf rows (not a parameter).
const LOCAL_GRAD: &str = "grad.inner.puzzle_emb.local_weights";

/// Reads every tensor of the golden file `file` of the shared golden folder.
pub fn load(file: &str) -> HashMap<String, Tensor> {
    read_file(&hrm_testkit::golden_dir().join(file))
}

fn read_file(path: &Path) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .into_iter()
        .collect()
}

/// The tensor `name` of a golden file (a missing one fails the test).
pub fn get<'a>(m: &'a HashMap<String, Tensor>, name: &str) -> &'a Tensor {
    m.get(name)
        .unwrap_or_else(|| panic!("golden tensor `{name}` missing"))
}

/// |got − want| ≤ atol + rtol·|want| elementwise.
pub fn assert_close(name: &str, got: &Tensor, want: &Tensor, atol: f64, rtol: f64) {
    assert_eq!(got.size(), want.size(), "{name}: shape");
    let (g, w) = (f64s(got), f64s(want));
    let excess = (&g - &w).abs() - (w.abs() * rtol + atol);
    let worst = excess.max().double_value(&[]);
    let max_abs = (&g - &w).abs().max().double_value(&[]);
    if report() {
        let used = ((&g - &w).abs() / (w.abs() * rtol + atol))
            .max()
            .double_value(&[]);
        let max_ref = w.abs().max().double_value(&[]);
        let normwise = (&g - &w).norm().double_value(&[]) / w.norm().double_value(&[]).max(1e-30);
        eprintln!(
            "report {name}: max |Δ| {max_abs:.3e}, max |ref| {max_ref:.3e}, {:.1}% of the bound, ‖Δ‖/‖ref‖ {normwise:.2e}",
            100.0 * used
        );
    }
    assert!(
        worst <= 0.0,
        "{name}: max |Δ| {max_abs:.3e} exceeds atol {atol:e} + rtol {rtol:e}·|ref|"
    );
}

/// Exact equality of integer or boolean tensors.
pub fn assert_exact(name: &str, got: &Tensor, want: &Tensor) {
    assert_eq!(got.size(), want.size(), "{name}: shape");
    let g = got.to_device(Device::Cpu).to_kind(Kind::Int64);
    let w = want.to_kind(Kind::Int64);
    assert!(g.equal(&w), "{name}: got {g:?} want {w:?}");
}

/// Whether two integer or boolean tensors are equal (for decisions that may differ in bf16).
fn same(got: &Tensor, want: &Tensor) -> bool {
    got.size() == want.size()
        && got
            .to_device(Device::Cpu)
            .to_kind(Kind::Int64)
            .equal(&want.to_kind(Kind::Int64))
}

/// A scalar tensor as f64.
pub fn scalar(t: &Tensor) -> f64 {
    t.to_kind(Kind::Double).double_value(&[])
}

/// One golden set: the files `<prefix>_config.json`, `<prefix>_weights.safetensors`, `<prefix>_batch.safetensors`,
/// `<prefix>_buffers_nonpersistent.safetensors` and `<prefix>_trace.safetensors` of one folder, and
/// `float64/<prefix>_trace.safetensors` when the set has a float64 twin.
#[derive(Debug, Clone)]
pub struct GoldenSet {
    /// The folder.
    pub dir: PathBuf,
    /// The file-name prefix (`tiny` for HRM, `trm` for TRM: as the generators write them).
    pub prefix: &'static str,
    /// The model kind of a config file without a `name` field (the reference configs have none).
    pub default_kind: ModelKind,
}

impl GoldenSet {
    /// The set `prefix` of the shared golden folder (`HRM_GOLDEN_DIR`).
    pub fn shared(prefix: &'static str, default_kind: ModelKind) -> Self {
        GoldenSet {
            dir: hrm_testkit::golden_dir(),
            prefix,
            default_kind,
        }
    }

    /// The one set of folder `dir`: HRM when it holds `tiny_config.json`, TRM when it holds `trm_config.json`.
    pub fn in_dir(dir: &Path) -> Self {
        let found: Vec<(&'static str, ModelKind)> =
            [("tiny", ModelKind::Hrm), ("trm", ModelKind::Trm)]
                .into_iter()
                .filter(|(p, _)| dir.join(format!("{p}_config.json")).is_file())
                .collect();
        let [(prefix, default_kind)] = found[..] else {
            panic!(
                "{}: expected exactly one of tiny_config.json and trm_config.json",
                dir.display()
            )
        };
        GoldenSet {
            dir: dir.to_path_buf(),
            prefix,
            default_kind,
        }
    }

    fn path(&self, what: &str) -> PathBuf {
        self.dir.join(format!("{}_{what}", self.prefix))
    }

    fn load(&self, what: &str) -> HashMap<String, Tensor> {
        read_file(&self.path(what))
    }

    /// The config: `<prefix>_config.json`, of [`GoldenSet::default_kind`] unless it names its own.
    pub fn config(&self) -> ModelConfig {
        let path = self.path("config.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let mut value: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let object = value.as_object_mut().expect("the config is a JSON object");
        object
            .entry("name")
            .or_insert_with(|| self.default_kind.as_str().into());
        let config: ModelConfig =
            serde_json::from_value(value).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        config.validate().unwrap();
        config
    }

    /// The forward dtype of the checks: bfloat16 for a set whose reference ran in bfloat16, else [`test_dtype`].
    pub fn dtype(&self) -> ForwardDtype {
        match self.config().forward_dtype {
            ForwardDtype::Bfloat16 => ForwardDtype::Bfloat16,
            ForwardDtype::Float32 => test_dtype(),
        }
    }

    /// The README's bounds for [`GoldenSet::dtype`].
    pub fn tol(&self) -> &'static Tolerances {
        match self.dtype() {
            ForwardDtype::Float32 => &F32,
            ForwardDtype::Bfloat16 => &BF16,
        }
    }

    /// The model with the reference weights and the batch, on `device`, in [`GoldenSet::dtype`].
    pub fn model(&self, device: Device) -> (ModelConfig, Model, Batch) {
        self.model_as(device, self.dtype())
    }

    /// The model with the reference weights and the batch, on `device`, with forward dtype `dtype`.
    pub fn model_as(&self, device: Device, dtype: ForwardDtype) -> (ModelConfig, Model, Batch) {
        let mut config = self.config();
        config.forward_dtype = dtype;
        let model =
            Model::from_safetensors(&config, device, &self.path("weights.safetensors")).unwrap();
        let b = self.load("batch.safetensors");
        let batch = Batch::new(
            get(&b, "inputs"),
            get(&b, "labels"),
            get(&b, "puzzle_identifiers"),
        )
        .unwrap()
        .to_device(device);
        (config, model, batch)
    }

    /// The trace with its float64 twin; the twin must have taken the same discrete path.
    pub fn reference(&self) -> Reference {
        let r = Reference::read(&self.path("trace.safetensors"), self.tol());
        r.check_twin_decisions();
        r
    }
}

/// The network calls of one inner forward, as the config implies: `H_cycles` times (`L_cycles` L calls, then
/// one H call for HRM or one more `L_level` call — the z_H update — for TRM).
pub fn calls_per_forward(config: &ModelConfig) -> Vec<Level> {
    let state_update = match config.name {
        ModelKind::Hrm => Level::H,
        ModelKind::Trm => Level::L,
    };
    let cycle = std::iter::repeat_n(Level::L, config.l_cycles as usize)
        .chain(std::iter::once(state_update));
    (0..config.h_cycles).flat_map(|_| cycle.clone()).collect()
}

/// The traced calls `seg0.debug.callNN_X` in call order, with their module letters.
fn traced_calls(r: &Reference) -> Vec<(String, Level)> {
    let mut calls: Vec<(usize, String, Level)> = r
        .keys()
        .filter_map(|k| {
            let rest = k.strip_prefix("seg0.debug.call")?;
            let (index, level) = rest.split_once('_')?;
            let level = match level {
                "H" => Level::H,
                "L" => Level::L,
                other => panic!("{k}: unknown module `{other}`"),
            };
            Some((index.parse().expect("call index"), k.clone(), level))
        })
        .collect();
    calls.sort_by_key(|c| c.0);
    for (i, (index, key, _)) in calls.iter().enumerate() {
        assert_eq!(*index, i, "{key}: the trace's calls are numbered 0, 1, …");
    }
    calls.into_iter().map(|(_, k, l)| (k, l)).collect()
}

/// How many consecutive `<prefix>{k}.<key>` entries the trace holds, from k = 0.
fn count_indexed(r: &Reference, prefix: &str, key: &str) -> usize {
    (0..)
        .take_while(|k| r.contains(&format!("{prefix}{k}.{key}")))
        .count()
}

/// Loss and every metric of `prefix` (`seg{s}` or `eval`); the q_continue loss is checked where the trace has one
/// and must be absent where it has none.
fn check_metrics(prefix: &str, loss: &LossOutput, r: &Reference) {
    let m = &loss.metrics;
    let tol = r.tol;
    let key = |k: &str| format!("{prefix}.metrics.{k}");
    let t = |k: &str| scalar(r.get(&key(k)));
    assert_eq!(m.count, t("count"), "{prefix}.count");
    // Row counts that rest on an argmax or on the sign of q_halt: exact in float32; in bfloat16 one row may flip
    // its exact-correctness (top-two logit gaps go down to 1.6e-3, far below the bf16 noise), and q_halt_accuracy
    // also tolerates each row whose reference q_halt lies within the q bound of 0 (TRM's tiny model: |q_halt| ≤ 0.3).
    let slack = if tol.exact_decisions { 0.0 } else { 1.0 };
    let near_zero = if tol.exact_decisions {
        0.0
    } else {
        // The q_halt logits the metrics were computed from (the eval's last segment when not stored apart).
        let mut q = format!("{prefix}.q_halt_logits");
        if !r.contains(&q) {
            let last = count_indexed(r, &format!("{prefix}.seg"), "q_halt_logits");
            q = format!("{prefix}.seg{}.q_halt_logits", last.saturating_sub(1));
        }
        scalar(&r.get(&q).abs().le(tol.q_atol).sum(Kind::Int64))
    };
    for (k, got, extra) in [
        ("exact_accuracy", m.exact_accuracy, 0.0),
        ("q_halt_accuracy", m.q_halt_accuracy, near_zero),
    ] {
        let want = t(k);
        assert!(
            (got - want).abs() <= slack + extra,
            "{prefix}.{k}: got {got} want {want} (allowed ±{})",
            slack + extra
        );
    }
    assert_eq!(m.steps, t("steps"), "{prefix}.steps");
    if report() {
        eprintln!(
            "report {prefix}.accuracy: got {} want {}",
            m.accuracy,
            t("accuracy")
        );
    }
    assert!(
        (m.accuracy - t("accuracy")).abs() <= tol.accuracy_atol,
        "{prefix}.accuracy {} vs {}",
        m.accuracy,
        t("accuracy")
    );
    r.rel(&key("lm_loss"), m.lm_loss, tol.loss_rtol);
    r.rel(&key("q_halt_loss"), m.q_halt_loss, tol.loss_rtol);
    match (m.q_continue_loss, r.contains(&key("q_continue_loss"))) {
        (Some(qc), true) => r.rel(&key("q_continue_loss"), qc, tol.loss_rtol),
        (None, false) => {}
        (got, _) => panic!("{prefix}: q_continue loss {got:?}, but the trace disagrees"),
    }
    r.rel(&format!("{prefix}.loss"), scalar(&loss.loss), tol.loss_rtol);
}

/// The checkpoint keys are the reference state-dict keys, and loading the weights file reproduces it exactly.
pub fn check_state_dict(set: &GoldenSet) {
    let file = set.load("weights.safetensors");
    // The stored state (parameters, and `H_init`/`L_init` in the reference's forward dtype): structural, checked
    // on the CPU.
    let (config, model, _) = set.model_as(Device::Cpu, set.config().forward_dtype);
    let ours: BTreeSet<String> = model.state_dict().into_iter().map(|(n, _)| n).collect();
    let theirs: BTreeSet<String> = file.keys().cloned().collect();
    assert_eq!(ours, theirs, "state-dict keys");
    for (name, t) in model.state_dict() {
        assert_eq!(t.kind(), file[&name].kind(), "{name}: dtype");
        assert!(t.equal(&file[&name]), "{name}");
    }
    let has_h = ours.iter().any(|n| n.starts_with("inner.H_level."));
    assert_eq!(
        has_h,
        config.name == ModelKind::Hrm,
        "H_level exists for HRM only"
    );
    let buffers = ["inner.H_init", "inner.L_init", "inner.puzzle_emb.weights"];
    let params = ours
        .iter()
        .filter(|n| !buffers.contains(&n.as_str()))
        .count();
    assert_eq!(model.named_parameters().count(), params, "trainable set");
}

/// The non-persistent buffers: the RoPE tables when the config uses RoPE (and none otherwise).
pub fn check_buffers(set: &GoldenSet) {
    let buffers = set.load("buffers_nonpersistent.safetensors");
    for device in test_devices() {
        let (config, model, _) = set.model(device);
        let names = ["cos_cached", "sin_cached"];
        if config.pos_encodings != PosEncoding::Rope {
            assert!(model.rotary().is_none(), "no RoPE tables without RoPE");
            for n in names {
                let key = format!("inner.rotary_emb.{n}");
                assert!(!buffers.contains_key(&key), "{key} without RoPE");
            }
            continue;
        }
        let rot = model.rotary().expect("the config uses RoPE");
        for (n, t) in names.iter().zip([&rot.cos, &rot.sin]) {
            let want = get(&buffers, &format!("inner.rotary_emb.{n}"));
            assert_eq!(want.size()[0], config.model_seq_len(), "{n}: S+P rows");
            assert_close(
                n,
                &t.to_kind(Kind::Float),
                &want.to_kind(Kind::Float),
                1e-6,
                0.0,
            );
        }
    }
}

/// The training segments: forward per segment, carries, halting, loss and metrics; segment 0 also x̃, every
/// network call and every gradient.
pub fn check_training_segments(set: &GoldenSet) {
    let r = set.reference();
    let segments = count_indexed(&r, "seg", "logits");
    assert!(segments > 0, "the trace holds no training segment");
    for device in test_devices() {
        let (config, mut model, batch) = set.model(device);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut carry = model.initial_carry(&batch);
        for s in 0..segments {
            let p = format!("seg{s}");
            let bound = if s == 0 {
                r.tol.forward0
            } else {
                r.tol.forward
            };
            let mut calls = ForwardTrace::default();
            let (new_carry, out) = model
                .forward_traced(&carry, &batch, Some(&mut rng), &mut calls)
                .unwrap();
            let loss = act_loss_head(&new_carry, &out, config.loss_type).unwrap();
            check_outputs(&r, &p, &config, &out, bound);
            let agree = check_decisions(&r, &p, &new_carry, &loss);
            check_carry(&r, &p, &new_carry, bound);
            if agree {
                check_metrics(&p, &loss, &r);
            }
            if s == 0 {
                check_segment0_extras(&config, &r, &calls, &mut model, &out, &loss, &batch);
            }
            if !agree {
                eprintln!(
                    "note: {p} on {device:?}: a halting decision differs from the reference in {:?} (q margins \
                     below the bf16 noise); segments {}..{segments} are not compared",
                    set.dtype(),
                    s + 1
                );
                break;
            }
            carry = new_carry;
        }
    }
}

/// One segment's logits, q logits and bootstrapped target.
fn check_outputs(r: &Reference, p: &str, config: &ModelConfig, out: &ActOutput, bound: Forward) {
    let key = |k: &str| format!("{p}.{k}");
    r.forward(&key("logits"), &out.logits, bound);
    for (k, t) in [
        ("q_halt_logits", &out.q_halt_logits),
        ("q_continue_logits", &out.q_continue_logits),
    ] {
        r.close(&key(k), t, r.tol.q_atol, 0.0);
    }
    let has_target = r.contains(&key("target_q_continue"));
    assert_eq!(
        has_target,
        config.uses_q_target(),
        "{p}: a Q-target pass exactly when the config asks for one"
    );
    match &out.target_q_continue {
        Some(t) if has_target => r.close(&key("target_q_continue"), t, r.tol.target_atol, 0.0),
        None if !has_target => {}
        other => panic!(
            "{p}: target {:?}, trace has one: {has_target}",
            other.is_some()
        ),
    }
}

/// Halting decisions: exact in float32; in bfloat16 a decision whose reference margin lies below the bf16 noise
/// may flip, and the segments after it then follow other resets: they are not compared. Whether they agree.
fn check_decisions(r: &Reference, p: &str, carry: &Carry, loss: &LossOutput) -> bool {
    let key = |k: &str| format!("{p}.{k}");
    let agree =
        same(&carry.halted, r.get(&key("halted"))) && same(&carry.steps, r.get(&key("steps")));
    if r.tol.exact_decisions || agree {
        assert_exact(&key("halted"), &carry.halted, r.get(&key("halted")));
        assert_exact(&key("steps"), &carry.steps, r.get(&key("steps")));
        assert_eq!(
            loss.all_halted,
            scalar(r.get(&key("all_halted"))) != 0.0,
            "{p}.all_halted"
        );
    }
    agree
}

fn check_carry(r: &Reference, p: &str, carry: &Carry, bound: Forward) {
    for (k, t) in [("carry.z_H", &carry.z_h), ("carry.z_L", &carry.z_l)] {
        r.forward(&format!("{p}.{k}"), t, bound);
    }
}

fn check_segment0_extras(
    config: &ModelConfig,
    r: &Reference,
    calls: &ForwardTrace,
    model: &mut Model,
    out: &ActOutput,
    loss: &LossOutput,
    batch: &Batch,
) {
    // The calls: the config's pattern, once for the main forward and once more for a Q-target pass.
    let passes = if config.uses_q_target() { 2 } else { 1 };
    let expected: Vec<Level> = (0..passes)
        .flat_map(|_| calls_per_forward(config))
        .collect();
    let traced = traced_calls(r);
    let traced_levels: Vec<Level> = traced.iter().map(|(_, l)| *l).collect();
    assert_eq!(
        traced_levels, expected,
        "the reference's calls follow the config"
    );
    assert_eq!(calls.calls.len(), traced.len(), "number of network calls");
    for ((level, t), (name, want_level)) in calls.calls.iter().zip(&traced) {
        assert_eq!(level, want_level, "{name}: module");
        r.forward(name, t, r.tol.forward0);
    }
    assert_eq!(
        calls.input_embeddings.len(),
        passes,
        "one x̃ per inner forward"
    );
    let x_name = "seg0.debug.input_embeddings";
    assert_eq!(
        r.get(x_name).size()[1],
        config.model_seq_len(),
        "S + prefix positions"
    );
    for x in &calls.input_embeddings {
        r.forward(x_name, x, r.tol.forward0);
    }
    let local = check_puzzle_rows(config, r, out);
    model.zero_grad();
    // ((1 / global_batch_size) · loss).backward(), as the reference's pretrain.py.
    (&loss.loss * (1.0 / config.batch_size as f64)).backward();
    let mut checked = BTreeSet::new();
    for (name, param) in model.named_parameters() {
        let key = format!("grad.{name}");
        r.grad(&key, &param.grad());
        checked.insert(key);
    }
    let reference: BTreeSet<String> = r
        .keys()
        .filter(|k| k.starts_with("grad.") && k.as_str() != LOCAL_GRAD)
        .cloned()
        .collect();
    assert_eq!(
        checked, reference,
        "every trainable parameter has a reference gradient"
    );
    if let Some(local) = local {
        r.grad(LOCAL_GRAD, &local.weights.grad());
    }
    check_absent_tokens(config, model, batch);
    model.zero_grad();
}

/// The sparse embedding's rows of the batch (ids and values) when the config has a puzzle embedding.
fn check_puzzle_rows<'a>(
    config: &ModelConfig,
    r: &Reference,
    out: &'a ActOutput,
) -> Option<&'a hrm_model::PuzzleLocal> {
    let local_keys = [
        "inner.puzzle_emb.local_ids",
        "inner.puzzle_emb.local_weights",
        LOCAL_GRAD,
    ];
    if config.puzzle_emb_ndim == 0 {
        assert!(out.puzzle_local.is_none());
        for k in local_keys {
            assert!(!r.contains(k), "{k} without a puzzle embedding");
        }
        return None;
    }
    let local = out
        .puzzle_local
        .as_ref()
        .expect("training exposes the puzzle rows");
    assert_exact(local_keys[0], &local.ids, r.get(local_keys[0]));
    assert_close(
        local_keys[1],
        &local.weights,
        r.get(local_keys[1]),
        0.0,
        0.0,
    );
    Some(local)
}

/// Tokens absent from the inputs get an exactly zero embedding gradient.
fn check_absent_tokens(config: &ModelConfig, model: &Model, batch: &Batch) {
    let emb_grad = model
        .named_parameters()
        .find(|(n, _)| *n == "inner.embed_tokens.embedding_weight")
        .unwrap()
        .1
        .grad()
        .to_device(Device::Cpu);
    let inputs = batch.inputs.to_device(Device::Cpu);
    for token in 0..config.vocab_size {
        if inputs.eq(token).any().int64_value(&[]) == 0 {
            let row = emb_grad
                .get(token)
                .abs()
                .sum(Kind::Double)
                .double_value(&[]);
            assert_eq!(row, 0.0, "absent token {token} gets no grad");
        }
    }
}

/// The eval rollout: segments until every row halted, per-segment logits and q_halt logits, the final halting,
/// steps, loss and metrics, and the number of segments.
pub fn check_eval_rollout(set: &GoldenSet) {
    let r = set.reference();
    for device in test_devices() {
        let (config, model, batch) = set.model(device);
        let mut carry = model.initial_carry(&batch);
        let mut segments = 0;
        loop {
            let (new_carry, out) = model.forward_eval(&carry, &batch).unwrap();
            let loss = act_loss_head(&new_carry, &out, config.loss_type).unwrap();
            assert!(out.target_q_continue.is_none() && out.puzzle_local.is_none());
            assert!(!out.logits.requires_grad(), "eval runs without gradient");
            let p = format!("eval.seg{segments}");
            let bound = if segments == 0 {
                r.tol.forward0
            } else {
                r.tol.forward
            };
            r.forward(&format!("{p}.logits"), &out.logits, bound);
            r.close(
                &format!("{p}.q_halt_logits"),
                &out.q_halt_logits,
                r.tol.q_atol,
                0.0,
            );
            segments += 1;
            carry = new_carry;
            if loss.all_halted {
                check_eval_end(&r, &carry, &out, &loss);
                break;
            }
            assert!(segments < 100, "eval never halted");
        }
        assert_eq!(
            segments as f64,
            scalar(r.get("eval.num_segments")),
            "eval.num_segments"
        );
        assert_eq!(
            segments,
            count_indexed(&r, "eval.seg", "logits"),
            "the trace's eval segments"
        );
    }
}

/// The eval's last segment: the final outputs where the trace has them, halting, steps, loss and metrics.
fn check_eval_end(r: &Reference, carry: &Carry, out: &ActOutput, loss: &LossOutput) {
    if r.contains("eval.logits") {
        r.forward("eval.logits", &out.logits, r.tol.forward);
    }
    for (k, t) in [
        ("eval.q_halt_logits", &out.q_halt_logits),
        ("eval.q_continue_logits", &out.q_continue_logits),
    ] {
        if r.contains(k) {
            r.close(k, t, r.tol.q_atol, 0.0);
        }
    }
    assert_exact("eval.halted", &carry.halted, r.get("eval.halted"));
    assert_exact("eval.steps", &carry.steps, r.get("eval.steps"));
    check_metrics("eval", loss, r);
}
