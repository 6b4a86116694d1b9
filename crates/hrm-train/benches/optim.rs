//! Criterion benchmark of one AdamATan2 step (the `adam-atan2` package's update, spec 7.1): the per-tensor
//! path against the blocked default, on the parameters of the HRM ARC model (hidden 512, 4+4 layers,
//! expansion 4) and of a tiny HRM, in one group so that the ratio comes from one run. CPU only.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use hrm_model::{Model, ModelConfig};
use hrm_train::optim::{AdamATan2, AdamATan2Config};
use tch::{Device, Kind, Tensor};

/// Leaf copies of a model's trainable parameters, each with a seeded random gradient.
fn params_with_grads(config: &ModelConfig) -> Vec<(String, Tensor)> {
    let model = Model::new(config, Device::Cpu, 0).expect("model");
    tch::manual_seed(0);
    model
        .named_parameters()
        .map(|(name, p)| {
            let leaf = p.detach().copy().set_requires_grad(true);
            let g = Tensor::randn(leaf.size(), (Kind::Float, Device::Cpu)).to_kind(leaf.kind());
            (&leaf * &g).sum(leaf.kind()).backward();
            (name.to_string(), leaf)
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let arc = ModelConfig::paper(12, 900, 1);
    let tiny = ModelConfig {
        hidden_size: 64,
        num_heads: 2,
        h_layers: 2,
        l_layers: 2,
        ..ModelConfig::paper(12, 81, 1)
    };
    let mut g = c.benchmark_group("adam_atan2_step");
    g.sample_size(10);
    for (label, config) in [("hrm_arc", &arc), ("hrm_tiny", &tiny)] {
        let params = params_with_grads(config);
        let numel: i64 = params.iter().map(|(_, p)| p.numel() as i64).sum();
        eprintln!("{label}: {} tensors, {numel} elements", params.len());
        let named = || params.iter().map(|(n, p)| (n.as_str(), p));
        let mut per_tensor = AdamATan2::new(AdamATan2Config::default());
        g.bench_function(format!("{label}/per_tensor"), |b| {
            b.iter(|| {
                per_tensor
                    .step_per_tensor(black_box(named()), 1e-4)
                    .unwrap()
            })
        });
        let mut blocked = AdamATan2::new(AdamATan2Config::default());
        g.bench_function(format!("{label}/blocked"), |b| {
            b.iter(|| blocked.step(black_box(named()), 1e-4).unwrap())
        });
    }
    g.finish();
}

criterion_group!(optim, benches);
criterion_main!(optim);
