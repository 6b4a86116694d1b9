//! Parity tests against the reference PyTorch vectors in `shared/golden` (see its README for the protocol and
//! the tolerances used here).

use std::collections::HashMap;
use std::path::PathBuf;

use hrm_model::{act_loss_head, Batch, ForwardTrace, Level, LossOutput, Model, ModelConfig};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

/// The golden folder: `HRM_GOLDEN_DIR`, else `<manifest>/../../../shared/golden`. A missing folder fails the test.
fn golden_dir() -> PathBuf {
    let dir = match std::env::var_os("HRM_GOLDEN_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/golden"),
    };
    assert!(
        dir.join("tiny_trace.safetensors").is_file(),
        "golden vectors not found in {} (set HRM_GOLDEN_DIR to the shared/golden folder)",
        dir.display()
    );
    dir
}

fn load(file: &str) -> HashMap<String, Tensor> {
    let path = golden_dir().join(file);
    Tensor::read_safetensors(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .into_iter()
        .collect()
}

fn get<'a>(m: &'a HashMap<String, Tensor>, name: &str) -> &'a Tensor {
    m.get(name)
        .unwrap_or_else(|| panic!("golden tensor `{name}` missing"))
}

fn f64s(t: &Tensor) -> Tensor {
    t.detach().to_device(Device::Cpu).to_kind(Kind::Double)
}

/// |got − want| ≤ atol + rtol·|want| elementwise.
fn assert_close(name: &str, got: &Tensor, want: &Tensor, atol: f64, rtol: f64) {
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
fn assert_grad_close(name: &str, got: &Tensor, want: &Tensor) {
    assert_eq!(got.size(), want.size(), "{name}: shape");
    let (g, w) = (f64s(got), f64s(want));
    let max_abs = (&g - &w).abs().max().double_value(&[]);
    let bound = 1e-4 * w.abs().max().double_value(&[]);
    assert!(
        max_abs <= bound,
        "{name}: max |Δ| {max_abs:.3e} > 1e-4·max|ref| = {bound:.3e}"
    );
}

fn assert_exact(name: &str, got: &Tensor, want: &Tensor) {
    assert_eq!(got.size(), want.size(), "{name}: shape");
    let g = got.to_device(Device::Cpu).to_kind(Kind::Int64);
    let w = want.to_kind(Kind::Int64);
    assert!(g.equal(&w), "{name}: got {g:?} want {w:?}");
}

fn scalar(t: &Tensor) -> f64 {
    t.to_kind(Kind::Double).double_value(&[])
}

fn assert_rel(name: &str, got: f64, want: f64, rtol: f64) {
    assert!(
        (got - want).abs() <= rtol * want.abs(),
        "{name}: got {got} want {want} (rtol {rtol:e})"
    );
}

fn tiny_model(device: Device) -> (ModelConfig, Model, Batch) {
    let dir = golden_dir();
    let config = ModelConfig::from_json_file(&dir.join("tiny_config.json")).unwrap();
    let model =
        Model::from_safetensors(&config, device, &dir.join("tiny_weights.safetensors")).unwrap();
    let b = load("tiny_batch.safetensors");
    let batch = Batch::new(
        get(&b, "inputs"),
        get(&b, "labels"),
        get(&b, "puzzle_identifiers"),
    )
    .unwrap()
    .to_device(device);
    (config, model, batch)
}

fn check_metrics(prefix: &str, loss: &LossOutput, trace: &HashMap<String, Tensor>, training: bool) {
    let m = &loss.metrics;
    let t = |k: &str| scalar(get(trace, &format!("{prefix}.metrics.{k}")));
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
    assert_rel(&format!("{prefix}.lm_loss"), m.lm_loss, t("lm_loss"), 1e-5);
    assert_rel(
        &format!("{prefix}.q_halt_loss"),
        m.q_halt_loss,
        t("q_halt_loss"),
        1e-5,
    );
    if training {
        let qc = m.q_continue_loss.expect("training has a q_continue loss");
        assert_rel(
            &format!("{prefix}.q_continue_loss"),
            qc,
            t("q_continue_loss"),
            1e-5,
        );
    } else {
        assert!(
            m.q_continue_loss.is_none(),
            "{prefix}: eval has no q_continue loss"
        );
    }
    assert_rel(
        &format!("{prefix}.loss"),
        scalar(&loss.loss),
        scalar(get(trace, &format!("{prefix}.loss"))),
        1e-5,
    );
}

#[test]
fn rope_tables_match_the_reference() {
    let buffers = load("tiny_buffers_nonpersistent.safetensors");
    for device in hrm_model::test_devices() {
        let (_, model, _) = tiny_model(device);
        let rot = model.rotary().expect("tiny config uses RoPE");
        assert_close(
            "cos_cached",
            &rot.cos,
            get(&buffers, "inner.rotary_emb.cos_cached"),
            1e-6,
            0.0,
        );
        assert_close(
            "sin_cached",
            &rot.sin,
            get(&buffers, "inner.rotary_emb.sin_cached"),
            1e-6,
            0.0,
        );
    }
}

#[test]
fn training_segments_match_the_reference() {
    let trace = load("tiny_trace.safetensors");
    for device in hrm_model::test_devices() {
        let (config, mut model, batch) = tiny_model(device);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut carry = model.initial_carry(&batch);
        for s in 0..4 {
            let p = format!("seg{s}");
            let (fwd_atol, fwd_rtol) = if s == 0 { (2e-5, 1e-4) } else { (5e-5, 1e-4) };
            let mut calls = ForwardTrace::default();
            let (new_carry, out) = model
                .forward_traced(&carry, &batch, Some(&mut rng), &mut calls)
                .unwrap();
            let loss = act_loss_head(&new_carry, &out, config.loss_type).unwrap();
            let g = |k: &str| get(&trace, &format!("{p}.{k}"));
            assert_close(
                &format!("{p}.logits"),
                &out.logits,
                g("logits"),
                fwd_atol,
                fwd_rtol,
            );
            assert_close(
                &format!("{p}.q_halt_logits"),
                &out.q_halt_logits,
                g("q_halt_logits"),
                1e-5,
                0.0,
            );
            assert_close(
                &format!("{p}.q_continue_logits"),
                &out.q_continue_logits,
                g("q_continue_logits"),
                1e-5,
                0.0,
            );
            let target = out
                .target_q_continue
                .as_ref()
                .expect("training computes a target");
            assert_close(
                &format!("{p}.target_q_continue"),
                target,
                g("target_q_continue"),
                1e-6,
                0.0,
            );
            assert_exact(&format!("{p}.halted"), &new_carry.halted, g("halted"));
            assert_exact(&format!("{p}.steps"), &new_carry.steps, g("steps"));
            assert_eq!(
                loss.all_halted,
                scalar(g("all_halted")) != 0.0,
                "{p}.all_halted"
            );
            assert_close(
                &format!("{p}.carry.z_H"),
                &new_carry.z_h,
                g("carry.z_H"),
                fwd_atol,
                fwd_rtol,
            );
            assert_close(
                &format!("{p}.carry.z_L"),
                &new_carry.z_l,
                g("carry.z_L"),
                fwd_atol,
                fwd_rtol,
            );
            check_metrics(&p, &loss, &trace, true);
            if s == 0 {
                check_segment0_extras(&trace, &calls, &mut model, &out, &loss);
            }
            carry = new_carry;
        }
    }
}

fn check_segment0_extras(
    trace: &HashMap<String, Tensor>,
    calls: &ForwardTrace,
    model: &mut Model,
    out: &hrm_model::ActOutput,
    loss: &LossOutput,
) {
    let levels = "LLHLLHLLHLLH";
    assert_eq!(
        calls.calls.len(),
        12,
        "6 module calls in the main forward and 6 in the bootstrap forward"
    );
    for (i, ((level, t), want_level)) in calls.calls.iter().zip(levels.chars()).enumerate() {
        let name = format!("seg0.debug.call{i:02}_{want_level}");
        let got_level = if *level == Level::H { 'H' } else { 'L' };
        assert_eq!(got_level, want_level, "{name}: module");
        assert_close(&name, t, get(trace, &name), 2e-5, 1e-4);
    }
    for x in &calls.input_embeddings {
        assert_close(
            "seg0.debug.input_embeddings",
            x,
            get(trace, "seg0.debug.input_embeddings"),
            2e-5,
            1e-4,
        );
    }
    let local = out
        .puzzle_local
        .as_ref()
        .expect("training exposes the puzzle rows");
    assert_exact(
        "inner.puzzle_emb.local_ids",
        &local.ids,
        get(trace, "inner.puzzle_emb.local_ids"),
    );
    assert_close(
        "inner.puzzle_emb.local_weights",
        &local.weights,
        get(trace, "inner.puzzle_emb.local_weights"),
        0.0,
        0.0,
    );
    model.zero_grad();
    (&loss.loss * 0.25).backward();
    let mut checked = 0;
    for (name, param) in model.named_parameters() {
        assert_grad_close(
            &format!("grad.{name}"),
            &param.grad(),
            get(trace, &format!("grad.{name}")),
        );
        checked += 1;
    }
    assert_eq!(
        checked, 20,
        "every trainable parameter has a reference gradient"
    );
    assert_grad_close(
        "grad.inner.puzzle_emb.local_weights",
        &local.weights.grad(),
        get(trace, "grad.inner.puzzle_emb.local_weights"),
    );
    let emb_grad = model
        .named_parameters()
        .find(|(n, _)| *n == "inner.embed_tokens.embedding_weight")
        .unwrap()
        .1
        .grad();
    assert_eq!(
        emb_grad
            .narrow(0, 0, 2)
            .abs()
            .sum(Kind::Double)
            .double_value(&[]),
        0.0,
        "absent tokens get no grad"
    );
    model.zero_grad();
}

#[test]
fn eval_rollout_matches_the_reference() {
    let trace = load("tiny_trace.safetensors");
    for device in hrm_model::test_devices() {
        let (config, model, batch) = tiny_model(device);
        let mut carry = model.initial_carry(&batch);
        let mut segments = 0;
        loop {
            let (new_carry, out) = model.forward_eval(&carry, &batch).unwrap();
            let loss = act_loss_head(&new_carry, &out, config.loss_type).unwrap();
            assert!(out.target_q_continue.is_none() && out.puzzle_local.is_none());
            assert!(!out.logits.requires_grad(), "eval runs without gradient");
            let p = format!("eval.seg{segments}");
            let atol = if segments == 0 { 2e-5 } else { 5e-5 };
            assert_close(
                &format!("{p}.logits"),
                &out.logits,
                get(&trace, &format!("{p}.logits")),
                atol,
                1e-4,
            );
            assert_close(
                &format!("{p}.q_halt_logits"),
                &out.q_halt_logits,
                get(&trace, &format!("{p}.q_halt_logits")),
                1e-5,
                0.0,
            );
            segments += 1;
            carry = new_carry;
            if loss.all_halted {
                assert_close(
                    "eval.logits",
                    &out.logits,
                    get(&trace, "eval.logits"),
                    5e-5,
                    1e-4,
                );
                assert_close(
                    "eval.q_halt_logits",
                    &out.q_halt_logits,
                    get(&trace, "eval.q_halt_logits"),
                    1e-5,
                    0.0,
                );
                let qc = get(&trace, "eval.q_continue_logits");
                assert_close(
                    "eval.q_continue_logits",
                    &out.q_continue_logits,
                    qc,
                    1e-5,
                    0.0,
                );
                assert_exact("eval.halted", &carry.halted, get(&trace, "eval.halted"));
                assert_exact("eval.steps", &carry.steps, get(&trace, "eval.steps"));
                check_metrics("eval", &loss, &trace, false);
                break;
            }
            assert!(segments < 100, "eval never halted");
        }
        assert_eq!(
            segments as f64,
            scalar(get(&trace, "eval.num_segments")),
            "eval.num_segments"
        );
    }
}

#[test]
fn stablemax_matches_the_reference() {
    let s = load("stablemax.safetensors");
    for device in hrm_model::test_devices() {
        let on = |k: &str| get(&s, k).to_device(device);
        let a = on("a.logits");
        let loss = hrm_model::stablemax_cross_entropy(&a, &on("a.labels"));
        assert_close("a.loss", &loss, get(&s, "a.loss"), 0.0, 1e-12);
        assert_close(
            "a.log_stablemax",
            &hrm_model::log_stablemax(&a),
            get(&s, "a.log_stablemax"),
            0.0,
            1e-12,
        );

        let b = on("b.logits").set_requires_grad(true);
        let loss = hrm_model::stablemax_cross_entropy(&b, &on("b.labels"));
        assert_eq!(loss.kind(), Kind::Double);
        assert_close("b.loss", &loss, get(&s, "b.loss"), 0.0, 1e-12);
        let lsm = hrm_model::log_stablemax(&b.to_kind(Kind::Double));
        assert_close(
            "b.log_stablemax",
            &lsm,
            get(&s, "b.log_stablemax"),
            0.0,
            1e-12,
        );
        loss.sum(Kind::Double).backward();
        let grad = b.grad();
        assert_eq!(grad.kind(), Kind::Float);
        assert_close("b.grad_logits", &grad, get(&s, "b.grad_logits"), 1e-9, 1e-6);
    }
}
