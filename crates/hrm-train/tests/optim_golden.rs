//! Parity of AdamATan2 and sign-SGD with the reference vectors in `golden/tiny_optim.safetensors`, plus state save/load.

mod common;

use common::{assert_close, get, max_abs_diff, read_golden};
use hrm_train::optim::{AdamATan2, AdamATan2Config, SignSgd};
use tch::{Device, Kind, Tensor};

const ADAM_PARAMS: [&str; 3] = [
    "inner.embed_tokens.embedding_weight",
    "inner.q_head.bias",
    "inner.L_level.layers.1.mlp.down_proj.weight",
];

#[test]
fn sign_sgd_matches_reference() {
    let g = read_golden("tiny_optim.safetensors");
    let table = get(&g, "sign_sgd.before").copy();
    let before = table.copy();
    let ids = get(&g, "sign_sgd.local_ids");
    let grads = get(&g, "sign_sgd.local_grad");
    SignSgd::new(0.1).step(&table, ids, grads, 0.01).unwrap();
    let after = get(&g, "sign_sgd.after");
    assert_close("sign_sgd.after", &table, after, 1e-7, 1e-6);
    // The rows absent from the batch (ids 3 5 3 0) are bitwise unchanged, the present ones moved.
    for row in 0..8i64 {
        let same = table.get(row).equal(&before.get(row));
        assert_eq!(same, ![0, 3, 5].contains(&row), "row {row}");
    }
}

#[test]
fn sign_sgd_sums_duplicates_before_the_sign() {
    // Two slots of id 1 with gradients +3 and −1 (sum +2 → sign +1) and one slot of id 0 with 0.
    let table = Tensor::from_slice(&[1.0f32, 1.0, 1.0, 1.0, 1.0, 1.0]).view([3, 2]);
    let ids = Tensor::from_slice(&[1i32, 0, 1]);
    let grads = Tensor::from_slice(&[3.0f32, -1.0, 0.0, 0.0, -1.0, 3.0]).view([3, 2]);
    SignSgd::new(0.5).step(&table, &ids, &grads, 0.1).unwrap();
    let decay = (1.0 - 0.1 * 0.5) as f32;
    let got = Vec::<f32>::try_from(table.view([-1])).unwrap();
    // Row 0: decayed only (sign(0) = 0). Row 1: decayed, minus lr·sign(+2, +2). Row 2: absent.
    let want = [decay, decay, decay - 0.1, decay - 0.1, 1.0, 1.0];
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!((a - b).abs() < 1e-7, "element {i}: {a} vs {b}");
    }
}

#[test]
fn sign_sgd_rejects_bad_input() {
    let table = Tensor::zeros([4, 2], (Kind::Float, Device::Cpu));
    let opt = SignSgd::new(0.1);
    let err = opt.step(
        &table,
        &Tensor::from_slice(&[4i64]),
        &Tensor::zeros([1, 2], (Kind::Float, Device::Cpu)),
        0.1,
    );
    assert!(err.unwrap_err().to_string().contains("local_ids"));
    let err = opt.step(
        &table,
        &Tensor::from_slice(&[1i64]),
        &Tensor::zeros([2, 2], (Kind::Float, Device::Cpu)),
        0.1,
    );
    assert!(err.unwrap_err().to_string().contains("local_grad"));
}

#[test]
fn adam_atan2_matches_reference() {
    let g = read_golden("tiny_optim.safetensors");
    let mut opt = AdamATan2::new(AdamATan2Config::with_weight_decay(0.1));
    for name in ADAM_PARAMS {
        let p = get(&g, &format!("adam.before.{name}")).copy();
        opt.update(name, &p, get(&g, &format!("adam.grad.{name}")), 1e-4)
            .unwrap();
        let st = opt.state(name).unwrap();
        assert_eq!(st.step, 1);
        assert_close(
            &format!("exp_avg {name}"),
            &st.exp_avg,
            get(&g, &format!("adam.exp_avg.{name}")),
            1e-12,
            1e-5,
        );
        assert_close(
            &format!("exp_avg_sq {name}"),
            &st.exp_avg_sq,
            get(&g, &format!("adam.exp_avg_sq.{name}")),
            1e-12,
            1e-5,
        );
        assert_close(
            &format!("after {name}"),
            &p,
            get(&g, &format!("adam.after.{name}")),
            1e-7,
            1e-6,
        );
    }
}

#[test]
fn adam_atan2_first_step_is_scale_invariant() {
    // Spec 11: Δp = −lr·wd·p − 0.9966865·lr·sign(g) at t = 1, whatever |g|.
    let (lr, wd) = (1e-3, 0.1);
    let p0 = [0.5f32, -0.25, 1.0, 2.0];
    let p = Tensor::from_slice(&p0);
    let grad = Tensor::from_slice(&[1e-6f32, -3.0, 0.0, 1e4]);
    let mut opt = AdamATan2::new(AdamATan2Config::with_weight_decay(wd));
    opt.update("w", &p, &grad, lr).unwrap();
    let got = Vec::<f32>::try_from(&p).unwrap();
    let signs = [1.0, -1.0, 0.0, 1.0];
    for i in 0..4 {
        let want = p0[i] as f64 * (1.0 - lr * wd) - 0.9966865 * lr * signs[i];
        assert!(
            (got[i] as f64 - want).abs() < 2e-7,
            "element {i}: {} vs {want}",
            got[i]
        );
    }
}

#[test]
fn adam_atan2_step_reads_grads_and_skips_undefined() {
    let a = Tensor::from_slice(&[1.0f32, 2.0]).set_requires_grad(true);
    let b = Tensor::from_slice(&[3.0f32]).set_requires_grad(true);
    (&a * 2.0).sum(Kind::Float).backward();
    let mut opt = AdamATan2::new(AdamATan2Config::default());
    opt.step([("a", &a), ("b", &b)], 0.1).unwrap();
    assert_eq!(opt.state("a").map(|s| s.step), Some(1));
    assert!(
        opt.state("b").is_none(),
        "a parameter without gradient must get no state"
    );
    assert!(!b.grad().defined());
    assert!(max_abs_diff(&b, &Tensor::from_slice(&[3.0f32])) == 0.0);
}

#[test]
fn adam_atan2_rejects_shape_mismatch() {
    let p = Tensor::zeros([2, 3], (Kind::Float, Device::Cpu));
    let mut opt = AdamATan2::new(AdamATan2Config::default());
    let err = opt.update(
        "inner.lm_head.weight",
        &p,
        &Tensor::zeros([3, 2], (Kind::Float, Device::Cpu)),
        0.1,
    );
    assert!(err
        .unwrap_err()
        .to_string()
        .contains("inner.lm_head.weight"));
}

#[test]
fn adam_atan2_state_round_trip_resumes_exactly() {
    let g = read_golden("tiny_optim.safetensors");
    let names = ADAM_PARAMS;
    let grad_of = |name: &str, k: i64| {
        get(&g, &format!("adam.grad.{name}")) * (1.0 + 0.25 * k as f64) - 1e-4 * k as f64
    };
    let mut opt = AdamATan2::new(AdamATan2Config::with_weight_decay(0.1));
    let params: Vec<Tensor> = names
        .iter()
        .map(|n| get(&g, &format!("adam.before.{n}")).copy())
        .collect();
    for k in 0..3 {
        for (n, p) in names.iter().zip(&params) {
            opt.update(n, p, &grad_of(n, k), 1e-3).unwrap();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("adam.safetensors");
    opt.save(&path).unwrap();
    // Only the final file remains (the temporary one was renamed).
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let saved: std::collections::HashMap<String, Tensor> = Tensor::read_safetensors(&path)
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(saved.len(), 9);
    assert_eq!(saved["inner.q_head.bias.step"].int64_value(&[]), 3);

    let mut resumed = AdamATan2::new(AdamATan2Config::with_weight_decay(0.1));
    resumed.load(&path, Device::Cpu).unwrap();
    let params2: Vec<Tensor> = params.iter().map(Tensor::copy).collect();
    for k in 3..5 {
        for ((n, p), p2) in names.iter().zip(&params).zip(&params2) {
            opt.update(n, p, &grad_of(n, k), 1e-3).unwrap();
            resumed.update(n, p2, &grad_of(n, k), 1e-3).unwrap();
        }
    }
    for ((n, p), p2) in names.iter().zip(&params).zip(&params2) {
        assert!(p.equal(p2), "{n}: resumed parameters differ");
        let (a, b) = (opt.state(n).unwrap(), resumed.state(n).unwrap());
        assert_eq!(a.step, 5);
        assert_eq!(b.step, 5);
        assert!(
            a.exp_avg.equal(&b.exp_avg) && a.exp_avg_sq.equal(&b.exp_avg_sq),
            "{n}: state differs"
        );
    }
}

#[test]
fn adam_atan2_load_reports_malformed_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.safetensors");
    let m = Tensor::zeros([2], (Kind::Float, Device::Cpu));
    Tensor::write_safetensors(&[("w.exp_avg", &m), ("w.step", &Tensor::from(1i64))], &path)
        .unwrap();
    let err = AdamATan2::new(AdamATan2Config::default())
        .load(&path, Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("w.exp_avg_sq") && err.contains("missing") && err.contains("bad.safetensors"),
        "{err}"
    );
    let missing = AdamATan2::new(AdamATan2Config::default())
        .load(dir.path().join("none.safetensors"), Device::Cpu);
    assert!(missing
        .unwrap_err()
        .to_string()
        .contains("none.safetensors"));
}

#[test]
fn adam_atan2_updates_bf16_parameters_via_fp32() {
    let p = Tensor::from_slice(&[1.0f32, -1.0]).to_kind(Kind::BFloat16);
    let grad = Tensor::from_slice(&[1.0f32, -1.0]).to_kind(Kind::BFloat16);
    let mut opt = AdamATan2::new(AdamATan2Config::with_weight_decay(0.0));
    opt.update("w", &p, &grad, 0.5).unwrap();
    assert_eq!(p.kind(), Kind::BFloat16);
    assert_eq!(opt.state("w").unwrap().exp_avg.kind(), Kind::Float);
    // 1 − 0.5·0.9966865 ≈ 0.50166, which bf16 rounds to 0.5 (8 bits of mantissa).
    let got = Vec::<f32>::try_from(p.to_kind(Kind::Float)).unwrap();
    assert!(
        (got[0] - 0.5017).abs() < 4e-3 && (got[1] + 0.5017).abs() < 4e-3,
        "{got:?}"
    );
}
