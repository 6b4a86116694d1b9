//! Helpers shared by the golden parity tests (`golden.rs`: HRM's `tiny_*` files; `trm_golden.rs`: TRM's `trm_*`
//! files). Every structural fact — the number and order of network calls, the prefix length, which parameters,
//! buffers and trace keys exist, RoPE or not, the number of segments — comes from the config and trace files, so
//! the same checks run unchanged on another configuration's files in the same format (see
//! `shared/golden/README.md` for the protocol and the tolerances).

#![allow(dead_code)]

use std::collections::{BTreeSet, HashMap};

use hrm_model::{
    act_loss_head, ActOutput, Batch, Carry, ForwardTrace, Level, LossOutput, Model, ModelConfig,
    ModelKind, PosEncoding,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

/// The parity tests of one golden set, as `#[test]` functions: position tables, checkpoint keys, training
/// segments and the eval rollout. Use as `common::parity_tests!(SET);` with a [`GoldenSet`] constant.
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
                common::$check($set);
            }
        )+
    };
}
pub(crate) use parity_tests;

/// Forward tolerance (atol, rtol) of a segment: tighter from a fresh state (segment 0), looser after carried state.
fn forward_tol(segment: usize) -> (f64, f64) {
    if segment == 0 {
        (2e-5, 1e-4)
    } else {
        (5e-5, 1e-4)
    }
}

/// Tolerance of q logits and of the target.
const Q_ATOL: f64 = 1e-5;
const TARGET_ATOL: f64 = 1e-6;
/// Relative tolerance of losses.
const LOSS_RTOL: f64 = 1e-5;

/// The gradient key of the sparse embedding's leaf rows (not a parameter).
const LOCAL_GRAD: &str = "grad.inner.puzzle_emb.local_weights";

/// Reads every tensor of the golden file `file`.
pub fn load(file: &str) -> HashMap<String, Tensor> {
    let path = hrm_testkit::golden_dir().join(file);
    Tensor::read_safetensors(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .into_iter()
        .collect()
}

/// The tensor `name` of a golden file (a missing one fails the test).
pub fn get<'a>(m: &'a HashMap<String, Tensor>, name: &str) -> &'a Tensor {
    m.get(name)
        .unwrap_or_else(|| panic!("golden tensor `{name}` missing"))
}

fn f64s(t: &Tensor) -> Tensor {
    t.detach().to_device(Device::Cpu).to_kind(Kind::Double)
}

/// |got − want| ≤ atol + rtol·|want| elementwise.
pub fn assert_close(name: &str, got: &Tensor, want: &Tensor, atol: f64, rtol: f64) {
    assert_eq!(got.size(), want.size(), "{name}: shape");
    let (g, w) = (f64s(got), f64s(want));
    let excess = (&g - &w).abs() - (w.abs() * rtol + atol);
    let worst = excess.max().double_value(&[]);
    let max_abs = (&g - &w).abs().max().double_value(&[]);
    assert!(
        worst <= 0.0,
        "{name}: max |Δ| {max_abs:.3e} exceeds atol {atol:e} + rtol {rtol:e}·|ref|"
    );
}

/// Gradients: max |Δ| ≤ 1e-4 · max |ref| per tensor.
pub fn assert_grad_close(name: &str, got: &Tensor, want: &Tensor) {
    assert_eq!(got.size(), want.size(), "{name}: shape");
    let (g, w) = (f64s(got), f64s(want));
    let max_abs = (&g - &w).abs().max().double_value(&[]);
    let bound = 1e-4 * w.abs().max().double_value(&[]);
    assert!(
        max_abs <= bound,
        "{name}: max |Δ| {max_abs:.3e} > 1e-4·max|ref| = {bound:.3e}"
    );
}

/// Exact equality of integer or boolean tensors.
pub fn assert_exact(name: &str, got: &Tensor, want: &Tensor) {
    assert_eq!(got.size(), want.size(), "{name}: shape");
    let g = got.to_device(Device::Cpu).to_kind(Kind::Int64);
    let w = want.to_kind(Kind::Int64);
    assert!(g.equal(&w), "{name}: got {g:?} want {w:?}");
}

/// A scalar tensor as f64.
pub fn scalar(t: &Tensor) -> f64 {
    t.to_kind(Kind::Double).double_value(&[])
}

/// |got − want| ≤ rtol·|want|.
pub fn assert_rel(name: &str, got: f64, want: f64, rtol: f64) {
    assert!(
        (got - want).abs() <= rtol * want.abs(),
        "{name}: got {got} want {want} (rtol {rtol:e})"
    );
}

/// One golden set: the files `<prefix>_config.json`, `<prefix>_weights.safetensors`, `<prefix>_batch.safetensors`,
/// `<prefix>_buffers_nonpersistent.safetensors` and `<prefix>_trace.safetensors`.
#[derive(Debug, Clone, Copy)]
pub struct GoldenSet {
    /// The file-name prefix (`tiny` for HRM, `trm` for TRM).
    pub prefix: &'static str,
    /// The model kind of a config file without a `name` field (the reference configs have none).
    pub default_kind: ModelKind,
}

impl GoldenSet {
    fn file(&self, what: &str) -> String {
        format!("{}_{what}", self.prefix)
    }

    /// The config: `<prefix>_config.json`, of [`GoldenSet::default_kind`] unless it names its own.
    pub fn config(&self) -> ModelConfig {
        let path = hrm_testkit::golden_dir().join(self.file("config.json"));
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

    /// The model with the reference weights and the batch, on `device`.
    pub fn model(&self, device: Device) -> (ModelConfig, Model, Batch) {
        let config = self.config();
        let weights = hrm_testkit::golden_dir().join(self.file("weights.safetensors"));
        let model = Model::from_safetensors(&config, device, &weights).unwrap();
        let b = load(&self.file("batch.safetensors"));
        let batch = Batch::new(
            get(&b, "inputs"),
            get(&b, "labels"),
            get(&b, "puzzle_identifiers"),
        )
        .unwrap()
        .to_device(device);
        (config, model, batch)
    }

    fn trace(&self) -> HashMap<String, Tensor> {
        load(&self.file("trace.safetensors"))
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
fn traced_calls(trace: &HashMap<String, Tensor>) -> Vec<(String, Level)> {
    let mut calls: Vec<(usize, String, Level)> = trace
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
fn count_indexed(trace: &HashMap<String, Tensor>, prefix: &str, key: &str) -> usize {
    (0..)
        .take_while(|k| trace.contains_key(&format!("{prefix}{k}.{key}")))
        .count()
}

/// Loss and every metric of `prefix` (`seg{s}` or `eval`); the q_continue loss is checked where the trace has one
/// and must be absent where it has none.
fn check_metrics(prefix: &str, loss: &LossOutput, trace: &HashMap<String, Tensor>) {
    let m = &loss.metrics;
    let key = |k: &str| format!("{prefix}.metrics.{k}");
    let t = |k: &str| scalar(get(trace, &key(k)));
    assert_eq!(m.count, t("count"), "{prefix}.count");
    assert_eq!(
        m.exact_accuracy,
        t("exact_accuracy"),
        "{prefix}.exact_accuracy"
    );
    assert_eq!(
        m.q_halt_accuracy,
        t("q_halt_accuracy"),
        "{prefix}.q_halt_accuracy"
    );
    assert_eq!(m.steps, t("steps"), "{prefix}.steps");
    assert!(
        (m.accuracy - t("accuracy")).abs() <= 1e-6,
        "{prefix}.accuracy {} vs {}",
        m.accuracy,
        t("accuracy")
    );
    assert_rel(&key("lm_loss"), m.lm_loss, t("lm_loss"), LOSS_RTOL);
    assert_rel(
        &key("q_halt_loss"),
        m.q_halt_loss,
        t("q_halt_loss"),
        LOSS_RTOL,
    );
    match (
        m.q_continue_loss,
        trace.contains_key(&key("q_continue_loss")),
    ) {
        (Some(qc), true) => {
            assert_rel(&key("q_continue_loss"), qc, t("q_continue_loss"), LOSS_RTOL)
        }
        (None, false) => {}
        (got, _) => panic!("{prefix}: q_continue loss {got:?}, but the trace disagrees"),
    }
    assert_rel(
        &format!("{prefix}.loss"),
        scalar(&loss.loss),
        scalar(get(trace, &format!("{prefix}.loss"))),
        LOSS_RTOL,
    );
}

/// The checkpoint keys are the reference state-dict keys, and loading the weights file reproduces it exactly.
pub fn check_state_dict(set: GoldenSet) {
    let file = load(&set.file("weights.safetensors"));
    let (config, model, _) = set.model(Device::Cpu);
    let ours: BTreeSet<String> = model.state_dict().into_iter().map(|(n, _)| n).collect();
    let theirs: BTreeSet<String> = file.keys().cloned().collect();
    assert_eq!(ours, theirs, "state-dict keys");
    for (name, t) in model.state_dict() {
        assert!(t.to_kind(Kind::Float).equal(&file[&name]), "{name}");
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
pub fn check_buffers(set: GoldenSet) {
    let buffers = load(&set.file("buffers_nonpersistent.safetensors"));
    for device in hrm_model::test_devices() {
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
            assert_close(n, t, want, 1e-6, 0.0);
        }
    }
}

/// The training segments: forward per segment, carries, halting, loss and metrics; segment 0 also x̃, every
/// network call and every gradient.
pub fn check_training_segments(set: GoldenSet) {
    let trace = set.trace();
    let segments = count_indexed(&trace, "seg", "logits");
    assert!(segments > 0, "the trace holds no training segment");
    for device in hrm_model::test_devices() {
        let (config, mut model, batch) = set.model(device);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut carry = model.initial_carry(&batch);
        for s in 0..segments {
            let p = format!("seg{s}");
            let (atol, rtol) = forward_tol(s);
            let mut calls = ForwardTrace::default();
            let (new_carry, out) = model
                .forward_traced(&carry, &batch, Some(&mut rng), &mut calls)
                .unwrap();
            let loss = act_loss_head(&new_carry, &out, config.loss_type).unwrap();
            let key = |k: &str| format!("{p}.{k}");
            let g = |k: &str| get(&trace, &key(k));
            assert_close(&key("logits"), &out.logits, g("logits"), atol, rtol);
            for (k, t) in [
                ("q_halt_logits", &out.q_halt_logits),
                ("q_continue_logits", &out.q_continue_logits),
            ] {
                assert_close(&key(k), t, g(k), Q_ATOL, 0.0);
            }
            let has_target = trace.contains_key(&key("target_q_continue"));
            assert_eq!(
                has_target,
                config.uses_q_target(),
                "{p}: a Q-target pass exactly when the config asks for one"
            );
            match &out.target_q_continue {
                Some(t) if has_target => assert_close(
                    &key("target_q_continue"),
                    t,
                    g("target_q_continue"),
                    TARGET_ATOL,
                    0.0,
                ),
                None if !has_target => {}
                other => panic!(
                    "{p}: target {:?}, trace has one: {has_target}",
                    other.is_some()
                ),
            }
            assert_exact(&key("halted"), &new_carry.halted, g("halted"));
            assert_exact(&key("steps"), &new_carry.steps, g("steps"));
            assert_eq!(
                loss.all_halted,
                scalar(g("all_halted")) != 0.0,
                "{p}.all_halted"
            );
            check_carry(&p, &new_carry, &trace, atol, rtol);
            check_metrics(&p, &loss, &trace);
            if s == 0 {
                check_segment0_extras(&config, &trace, &calls, &mut model, &out, &loss, &batch);
            }
            carry = new_carry;
        }
    }
}

fn check_carry(p: &str, carry: &Carry, trace: &HashMap<String, Tensor>, atol: f64, rtol: f64) {
    for (k, t) in [("carry.z_H", &carry.z_h), ("carry.z_L", &carry.z_l)] {
        let name = format!("{p}.{k}");
        assert_close(&name, t, get(trace, &name), atol, rtol);
    }
}

fn check_segment0_extras(
    config: &ModelConfig,
    trace: &HashMap<String, Tensor>,
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
    let traced = traced_calls(trace);
    let traced_levels: Vec<Level> = traced.iter().map(|(_, l)| *l).collect();
    assert_eq!(
        traced_levels, expected,
        "the reference's calls follow the config"
    );
    assert_eq!(calls.calls.len(), traced.len(), "number of network calls");
    for ((level, t), (name, want_level)) in calls.calls.iter().zip(&traced) {
        assert_eq!(level, want_level, "{name}: module");
        assert_close(name, t, get(trace, name), 2e-5, 1e-4);
    }
    assert_eq!(
        calls.input_embeddings.len(),
        passes,
        "one x̃ per inner forward"
    );
    let x_ref = get(trace, "seg0.debug.input_embeddings");
    assert_eq!(
        x_ref.size()[1],
        config.model_seq_len(),
        "S + prefix positions"
    );
    for x in &calls.input_embeddings {
        assert_close("seg0.debug.input_embeddings", x, x_ref, 2e-5, 1e-4);
    }
    let local_keys = [
        "inner.puzzle_emb.local_ids",
        "inner.puzzle_emb.local_weights",
        LOCAL_GRAD,
    ];
    let local = if config.puzzle_emb_ndim > 0 {
        let local = out
            .puzzle_local
            .as_ref()
            .expect("training exposes the puzzle rows");
        assert_exact(local_keys[0], &local.ids, get(trace, local_keys[0]));
        assert_close(
            local_keys[1],
            &local.weights,
            get(trace, local_keys[1]),
            0.0,
            0.0,
        );
        Some(local)
    } else {
        assert!(out.puzzle_local.is_none());
        for k in local_keys {
            assert!(!trace.contains_key(k), "{k} without a puzzle embedding");
        }
        None
    };
    model.zero_grad();
    // ((1 / global_batch_size) · loss).backward(), as the reference's pretrain.py.
    (&loss.loss * (1.0 / config.batch_size as f64)).backward();
    let mut checked = BTreeSet::new();
    for (name, param) in model.named_parameters() {
        let key = format!("grad.{name}");
        assert_grad_close(&key, &param.grad(), get(trace, &key));
        checked.insert(key);
    }
    let reference: BTreeSet<String> = trace
        .keys()
        .filter(|k| k.starts_with("grad.") && k.as_str() != LOCAL_GRAD)
        .cloned()
        .collect();
    assert_eq!(
        checked, reference,
        "every trainable parameter has a reference gradient"
    );
    if let Some(local) = local {
        assert_grad_close(LOCAL_GRAD, &local.weights.grad(), get(trace, LOCAL_GRAD));
    }
    // Tokens absent from the inputs get an exactly zero embedding gradient.
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
    model.zero_grad();
}

/// The eval rollout: segments until every row halted, per-segment logits and q_halt logits, the final halting,
/// steps, loss and metrics, and the number of segments.
pub fn check_eval_rollout(set: GoldenSet) {
    let trace = set.trace();
    for device in hrm_model::test_devices() {
        let (config, model, batch) = set.model(device);
        let mut carry = model.initial_carry(&batch);
        let mut segments = 0;
        loop {
            let (new_carry, out) = model.forward_eval(&carry, &batch).unwrap();
            let loss = act_loss_head(&new_carry, &out, config.loss_type).unwrap();
            assert!(out.target_q_continue.is_none() && out.puzzle_local.is_none());
            assert!(!out.logits.requires_grad(), "eval runs without gradient");
            let p = format!("eval.seg{segments}");
            let (atol, rtol) = forward_tol(segments);
            let name = format!("{p}.logits");
            assert_close(&name, &out.logits, get(&trace, &name), atol, rtol);
            let name = format!("{p}.q_halt_logits");
            assert_close(&name, &out.q_halt_logits, get(&trace, &name), Q_ATOL, 0.0);
            segments += 1;
            carry = new_carry;
            if loss.all_halted {
                let (atol, rtol) = forward_tol(1);
                for (k, t, atol, rtol) in [
                    ("eval.logits", &out.logits, atol, rtol),
                    ("eval.q_halt_logits", &out.q_halt_logits, Q_ATOL, 0.0),
                    (
                        "eval.q_continue_logits",
                        &out.q_continue_logits,
                        Q_ATOL,
                        0.0,
                    ),
                ] {
                    if let Some(want) = trace.get(k) {
                        assert_close(k, t, want, atol, rtol);
                    }
                }
                assert_exact("eval.halted", &carry.halted, get(&trace, "eval.halted"));
                assert_exact("eval.steps", &carry.steps, get(&trace, "eval.steps"));
                check_metrics("eval", &loss, &trace);
                break;
            }
            assert!(segments < 100, "eval never halted");
        }
        assert_eq!(
            segments as f64,
            scalar(get(&trace, "eval.num_segments")),
            "eval.num_segments"
        );
        assert_eq!(
            segments,
            count_indexed(&trace, "eval.seg", "logits"),
            "the trace's eval segments"
        );
    }
}
