//! The blocked AdamATan2 step (the `adam-atan2` package's update, spec 7.1) against the per-tensor one:
//! bitwise-equal parameters, moments and step counts, and every input checked before any parameter moves.

use hrm_train::optim::{AdamATan2, AdamATan2Config};
use tch::{Device, Kind, Tensor};

/// Parameters of mixed shapes and layouts: a [1], small ones, a 3-D one, an empty one, a bf16 one and a
/// transposed (non-contiguous) one (both on the per-tensor fallback), a 300 000-element one that spans
/// several CPU blocks with a partial last block, and one of 1 100 000 elements, more than a group holds.
fn shapes() -> Vec<(&'static str, Vec<i64>, Kind)> {
    vec![
        ("scalar", vec![1], Kind::Float),
        ("bias", vec![7], Kind::Float),
        ("small", vec![3, 5], Kind::Float),
        ("cube", vec![2, 3, 4], Kind::Float),
        ("empty", vec![0, 4], Kind::Float),
        ("half", vec![16, 33], Kind::BFloat16),
        ("transposed", vec![12, 40], Kind::Float),
        ("late", vec![9, 11], Kind::Float),
        ("never", vec![5], Kind::Float),
        ("large", vec![1000, 300], Kind::Float),
        ("huge", vec![1100, 1000], Kind::Float),
        ("tail", vec![33], Kind::Float),
    ]
}

/// Named parameters.
type Named = Vec<(String, Tensor)>;

/// Two identical sets of leaf parameters (seeded), requiring grad.
fn params() -> (Named, Named) {
    tch::manual_seed(7);
    let mut a = Vec::new();
    let mut b = Vec::new();
    for (name, shape, kind) in shapes() {
        let mut init = Tensor::randn(shape.as_slice(), (Kind::Float, Device::Cpu));
        if name == "transposed" {
            init = init.tr();
        }
        let init = init.to_kind(kind);
        let leaf = |t: &Tensor| {
            let copy = if name == "transposed" {
                t.tr().copy().tr()
            } else {
                t.copy()
            };
            copy.set_requires_grad(true)
        };
        a.push((name.to_string(), leaf(&init)));
        b.push((name.to_string(), leaf(&init)));
    }
    assert!(
        !a[6].1.is_contiguous(),
        "the transposed parameter is a strided leaf"
    );
    (a, b)
}

/// Sets `p.grad()` to exactly `g` by back-propagating `sum(p·g)` into a zeroed gradient.
fn set_grad(p: &Tensor, g: &Tensor) {
    let mut old = p.grad();
    if old.defined() {
        let _ = old.zero_();
    }
    (p * g).sum(p.kind()).backward();
}

/// The bit patterns of a float tensor (bf16 widens to f32 exactly).
fn bits(t: &Tensor) -> Vec<u32> {
    let flat = t.to_kind(Kind::Float).contiguous().view([-1]);
    Vec::<f32>::try_from(&flat)
        .unwrap()
        .into_iter()
        .map(f32::to_bits)
        .collect()
}

fn assert_same_state(fused: &AdamATan2, plain: &AdamATan2) {
    let names: Vec<&str> = fused.param_names().collect();
    assert_eq!(names, plain.param_names().collect::<Vec<_>>());
    for name in names {
        let (f, p) = (fused.state(name).unwrap(), plain.state(name).unwrap());
        assert_eq!(f.step, p.step, "{name}: step");
        assert_eq!(bits(&f.exp_avg), bits(&p.exp_avg), "{name}: exp_avg");
        assert_eq!(
            bits(&f.exp_avg_sq),
            bits(&p.exp_avg_sq),
            "{name}: exp_avg_sq"
        );
    }
}

#[test]
fn blocked_step_is_bitwise_equal_to_the_per_tensor_step() {
    let (fused_params, plain_params) = params();
    let mut fused = AdamATan2::new(AdamATan2Config::with_weight_decay(0.1));
    let mut plain = AdamATan2::new(AdamATan2Config::with_weight_decay(0.1));
    let lrs = [1e-2, 3e-3, 1e-4, 0.0, 2e-2];
    for (s, &lr) in lrs.iter().enumerate() {
        tch::manual_seed(100 + s as i64);
        for ((name, pf), (_, pp)) in fused_params.iter().zip(&plain_params) {
            // "late" has no gradient on the first two steps, "never" none at all: their step counts
            // differ from the others' (per-tensor bias correction).
            if name == "never" || (name == "late" && s < 2) {
                continue;
            }
            // Gradients over six decades, with exact zeros and a sign mix.
            let scale = Tensor::randint(7, pf.size(), (Kind::Float, Device::Cpu)) - 4.0;
            let g = Tensor::randn(pf.size(), (Kind::Float, Device::Cpu)) * scale.exp2();
            let g = g * Tensor::rand(pf.size(), (Kind::Float, Device::Cpu)).gt(0.1);
            let g = g.to_kind(pf.kind());
            set_grad(pf, &g);
            set_grad(pp, &g);
        }
        fused
            .step(fused_params.iter().map(|(n, p)| (n.as_str(), p)), lr)
            .unwrap();
        plain
            .step_per_tensor(plain_params.iter().map(|(n, p)| (n.as_str(), p)), lr)
            .unwrap();
        for ((name, pf), (_, pp)) in fused_params.iter().zip(&plain_params) {
            assert_eq!(bits(pf), bits(pp), "step {}: parameter {name}", s + 1);
        }
        assert_same_state(&fused, &plain);
    }
    assert_eq!(fused.state("scalar").unwrap().step, 5);
    assert_eq!(fused.state("late").unwrap().step, 3);
    assert!(fused.state("never").is_none());
    // The update did move the parameters.
    let (fresh, _) = params();
    assert_ne!(bits(&fresh[9].1), bits(&fused_params[9].1));
}

#[test]
fn blocked_step_checks_every_input_before_moving_any_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let a = Tensor::ones([4], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    let b = Tensor::ones([3], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    // State for `b` saved with another shape.
    let mut opt = AdamATan2::new(AdamATan2Config::default());
    let other = Tensor::ones([5], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    set_grad(&other, &Tensor::ones([5], (Kind::Float, Device::Cpu)));
    opt.step([("b", &other)], 1e-2).unwrap();
    let path = dir.path().join("state.safetensors");
    opt.save(&path).unwrap();
    let mut fused = AdamATan2::new(AdamATan2Config::default());
    fused.load(&path, Device::Cpu).unwrap();
    set_grad(&a, &Tensor::ones([4], (Kind::Float, Device::Cpu)));
    set_grad(&b, &Tensor::ones([3], (Kind::Float, Device::Cpu)));
    let err = fused.step([("a", &a), ("b", &b)], 1e-2).unwrap_err();
    assert!(err.to_string().contains("`b`"), "{err}");
    assert_eq!(bits(&a), vec![1.0f32.to_bits(); 4], "`a` moved");
    assert!(fused.state("a").is_none());
    assert_eq!(fused.state("b").unwrap().step, 1);
}

#[test]
fn blocked_step_resumes_bitwise_from_a_per_tensor_state() {
    let dir = tempfile::tempdir().unwrap();
    let (fused_params, plain_params) = params();
    let mut plain = AdamATan2::new(AdamATan2Config::with_weight_decay(1.0));
    let grads = |seed: i64| {
        tch::manual_seed(seed);
        for ((_, pf), (_, pp)) in fused_params.iter().zip(&plain_params) {
            let g = Tensor::randn(pf.size(), (Kind::Float, Device::Cpu)).to_kind(pf.kind());
            set_grad(pf, &g);
            set_grad(pp, &g);
        }
    };
    // Step 1 on the per-tensor path only; the other run takes its parameters and saved state.
    grads(200);
    plain
        .step_per_tensor(plain_params.iter().map(|(n, p)| (n.as_str(), p)), 1e-3)
        .unwrap();
    for ((_, pf), (_, pp)) in fused_params.iter().zip(&plain_params) {
        tch::no_grad(|| pf.shallow_clone().copy_(pp));
    }
    let path = dir.path().join("optimizer.safetensors");
    plain.save(&path).unwrap();
    let mut fused = AdamATan2::new(AdamATan2Config::with_weight_decay(1.0));
    fused.load(&path, Device::Cpu).unwrap();
    // Step 2 on both paths.
    grads(201);
    fused
        .step(fused_params.iter().map(|(n, p)| (n.as_str(), p)), 1e-3)
        .unwrap();
    plain
        .step_per_tensor(plain_params.iter().map(|(n, p)| (n.as_str(), p)), 1e-3)
        .unwrap();
    for ((name, pf), (_, pp)) in fused_params.iter().zip(&plain_params) {
        assert_eq!(bits(pf), bits(pp), "parameter {name}");
    }
    assert_same_state(&fused, &plain);
    assert_eq!(fused.state("large").unwrap().step, 2);
}

#[test]
fn a_name_given_twice_is_updated_twice_as_on_the_per_tensor_path() {
    let (fused_params, plain_params) = params();
    let mut fused = AdamATan2::new(AdamATan2Config::default());
    let mut plain = AdamATan2::new(AdamATan2Config::default());
    tch::manual_seed(300);
    for ((_, pf), (_, pp)) in fused_params.iter().zip(&plain_params).take(4) {
        let g = Tensor::randn(pf.size(), (Kind::Float, Device::Cpu));
        set_grad(pf, &g);
        set_grad(pp, &g);
    }
    let twice = |ps: &[(String, Tensor)]| -> Named {
        let first = ps[..4].iter();
        first
            .clone()
            .chain(first)
            .map(|(n, p)| (n.clone(), p.shallow_clone()))
            .collect()
    };
    let (f2, p2) = (twice(&fused_params), twice(&plain_params));
    fused
        .step(f2.iter().map(|(n, p)| (n.as_str(), p)), 1e-2)
        .unwrap();
    plain
        .step_per_tensor(p2.iter().map(|(n, p)| (n.as_str(), p)), 1e-2)
        .unwrap();
    for ((name, pf), (_, pp)) in fused_params.iter().zip(&plain_params) {
        assert_eq!(bits(pf), bits(pp), "parameter {name}");
    }
    assert_same_state(&fused, &plain);
    assert_eq!(fused.state("scalar").unwrap().step, 2);
}
