//! Architecture, init, ACT-mode, dtype, validation and checkpoint tests that do not need reference vectors
//! (except the tiny config and weights they start from). Every fact of that config (shapes, counts, valid ids) is
//! derived from it, so the tests pass unchanged on any HRM golden set's `tiny_*` files (`HRM_GOLDEN_DIR`).

use hrm_model::{act_loss_head, Batch, ForwardDtype, Model, ModelConfig, ModelError, PosEncoding};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

use hrm_testkit::golden_dir;

fn tiny_config() -> ModelConfig {
    ModelConfig::from_json_file(&golden_dir().join("tiny_config.json")).unwrap()
}

fn tiny_batch(device: Device) -> Batch {
    let b: std::collections::HashMap<String, Tensor> =
        Tensor::read_safetensors(golden_dir().join("tiny_batch.safetensors"))
            .unwrap()
            .into_iter()
            .collect();
    Batch::new(&b["inputs"], &b["labels"], &b["puzzle_identifiers"])
        .unwrap()
        .to_device(device)
}

fn param<'a>(model: &'a Model, name: &str) -> &'a Tensor {
    model
        .named_parameters()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no parameter {name}"))
        .1
}

fn std_and_max(t: &Tensor) -> (f64, f64) {
    let t = t.to_kind(Kind::Double).to_device(Device::Cpu);
    (
        t.std(true).double_value(&[]),
        t.abs().max().double_value(&[]),
    )
}

#[test]
fn paper_parameter_counts_match_the_spec() {
    for (vocab, seq_len, expected) in [
        (12, 900, 27_276_290),
        (11, 81, 27_275_266),
        (6, 900, 27_270_146),
    ] {
        let model = Model::new(&ModelConfig::paper(vocab, seq_len, 1), Device::Cpu, 0).unwrap();
        assert_eq!(model.num_parameters(), expected, "V = {vocab}");
        let blocks: i64 = model
            .named_parameters()
            .filter(|(n, _)| n.contains("_level."))
            .map(|(_, t)| t.numel() as i64)
            .sum();
        assert_eq!(blocks, 27_262_976, "8 blocks");
        assert_eq!(model.named_parameters().count(), 4 + 8 * 4);
    }
}

#[test]
fn trm_parameter_counts_match_the_spec() {
    let sudoku_mlp = ModelConfig {
        mlp_t: true,
        pos_encodings: PosEncoding::None,
        l_cycles: 6,
        ..ModelConfig::trm(11, 81, 1)
    };
    let sudoku_att = ModelConfig {
        l_cycles: 6,
        ..ModelConfig::trm(11, 81, 1)
    };
    for (name, config, expected) in [
        ("ARC", ModelConfig::trm(12, 900, 1), 6_829_058),
        ("Sudoku MLP", sudoku_mlp, 5_028_866),
        ("Sudoku attention", sudoku_att, 6_828_034),
        ("Maze", ModelConfig::trm(6, 900, 1), 6_822_914),
    ] {
        let model = Model::new(&config, Device::Cpu, 0).unwrap();
        assert_eq!(model.num_parameters(), expected, "{name}");
        let names: Vec<&str> = model.named_parameters().map(|(n, _)| n).collect();
        assert!(
            names.iter().all(|n| !n.contains("H_level")),
            "{name}: one network"
        );
        let mixer = if config.mlp_t { "mlp_t" } else { "self_attn" };
        for i in 0..2 {
            let p = format!("inner.L_level.layers.{i}.{mixer}.");
            assert_eq!(
                names.iter().filter(|n| n.starts_with(&p)).count(),
                2,
                "{name}: {p}"
            );
        }
        assert_eq!(names.len(), 4 + 2 * 4, "{name}: parameter tensors");
        assert_eq!(
            model.rotary().is_some(),
            config.pos_encodings == PosEncoding::Rope
        );
        assert_eq!(
            config.model_seq_len(),
            config.seq_len + 16,
            "{name}: 16 prefix tokens"
        );
    }
}

#[test]
fn trm_variants_run_with_the_configured_calls_and_gradients() {
    let batch = tiny_batch(Device::Cpu);
    for (mlp_t, no_act_continue) in [(true, true), (false, false)] {
        let config = ModelConfig {
            name: hrm_model::ModelKind::Trm,
            h_layers: 0,
            puzzle_emb_len: 2,
            l_cycles: 3,
            mlp_t,
            pos_encodings: if mlp_t {
                PosEncoding::None
            } else {
                PosEncoding::Learned
            },
            no_act_continue,
            ..tiny_config()
        };
        let model = Model::new(&config, Device::Cpu, 1).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut trace = hrm_model::ForwardTrace::default();
        let carry = model.initial_carry(&batch);
        let state = [
            config.batch_size,
            config.model_seq_len(),
            config.hidden_size,
        ];
        assert_eq!(
            config.model_seq_len(),
            config.seq_len + 2,
            "2 prefix tokens"
        );
        assert_eq!(carry.z_h.size(), state);
        let (carry, out) = model
            .forward_traced(&carry, &batch, Some(&mut rng), &mut trace)
            .unwrap();
        let per_forward = (config.h_cycles * (config.l_cycles + 1)) as usize;
        let passes = if no_act_continue { 1 } else { 2 };
        assert_eq!(trace.calls.len(), passes * per_forward, "mlp_t {mlp_t}");
        assert!(trace.calls.iter().all(|(l, _)| *l == hrm_model::Level::L));
        assert_eq!(out.target_q_continue.is_some(), !no_act_continue);
        assert_eq!(
            out.logits.size(),
            [config.batch_size, config.seq_len, config.vocab_size]
        );
        let loss = act_loss_head(&carry, &out, config.loss_type).unwrap();
        assert_eq!(loss.metrics.q_continue_loss.is_some(), !no_act_continue);
        loss.loss.backward();
        for (name, p) in model.named_parameters() {
            let g = p.grad();
            assert!(g.defined(), "{name}: no gradient");
            if name.contains("mlp_t") || name.contains("embed_pos") {
                assert!(g.abs().sum(Kind::Double).double_value(&[]) > 0.0, "{name}");
            }
        }
        assert_eq!(
            model
                .named_parameters()
                .filter(|(n, _)| n.contains(".mlp_t."))
                .count(),
            if mlp_t {
                2 * config.l_layers as usize
            } else {
                0
            }
        );
    }
}

#[test]
fn paper_init_statistics_follow_spec_3_7() {
    let model = Model::new(&ModelConfig::paper(12, 900, 3), Device::Cpu, 11).unwrap();
    let lecun = 1.0 / 512f64.sqrt();
    let bound = |std: f64| 2.0 * hrm_model::init::trunc_normal_scale(std);
    let checks = [
        (
            "inner.H_level.layers.0.self_attn.qkv_proj.weight",
            lecun,
            [1536, 512],
        ),
        (
            "inner.L_level.layers.3.mlp.gate_up_proj.weight",
            lecun,
            [3072, 512],
        ),
        (
            "inner.L_level.layers.2.mlp.down_proj.weight",
            1.0 / 1536f64.sqrt(),
            [512, 1536],
        ),
        ("inner.embed_tokens.embedding_weight", lecun, [12, 512]),
        ("inner.lm_head.weight", lecun, [12, 512]),
    ];
    for (name, std, shape) in checks {
        let t = param(&model, name);
        assert_eq!(t.size(), shape, "{name}");
        assert_eq!(t.kind(), Kind::Float, "{name}: fp32 master weight");
        let (s, m) = std_and_max(t);
        let tol = if t.numel() > 10_000 { 0.01 } else { 0.1 };
        assert!((s / std - 1.0).abs() < tol, "{name}: std {s} vs {std}");
        assert!(
            m <= bound(std) * (1.0 + 1e-6),
            "{name}: max {m} > {}",
            bound(std)
        );
    }
    assert!((bound(lecun) - 0.100484).abs() < 1e-6);
    for init in [model.h_init(), model.l_init()] {
        assert_eq!(init.size(), [512]);
        assert_eq!(init.kind(), Kind::BFloat16, "created in the forward dtype");
        let (_, m) = std_and_max(init);
        assert!(m <= 2.27369 * 1.004, "init vector max {m}");
    }
    let q = param(&model, "inner.q_head.weight");
    assert_eq!(q.abs().sum(Kind::Double).double_value(&[]), 0.0);
    let bias = Vec::<f32>::try_from(param(&model, "inner.q_head.bias")).unwrap();
    assert_eq!(bias, vec![-5.0, -5.0]);
    let table = model.puzzle_table().unwrap();
    assert_eq!(table.size(), [3, 512]);
    assert!(!table.requires_grad());
    assert_eq!(table.abs().sum(Kind::Double).double_value(&[]), 0.0);
    let rot = model.rotary().unwrap();
    assert_eq!(rot.cos.size(), [901, 64]);
}

#[test]
fn same_seed_gives_the_same_model() {
    let c = tiny_config();
    let a = Model::new(&c, Device::Cpu, 5).unwrap();
    let b = Model::new(&c, Device::Cpu, 5).unwrap();
    let d = Model::new(&c, Device::Cpu, 6).unwrap();
    for ((n, x), (_, y)) in a.state_dict().iter().zip(b.state_dict().iter()) {
        assert!(x.equal(y), "{n} differs for the same seed");
    }
    assert!(!param(&a, "inner.lm_head.weight").equal(param(&d, "inner.lm_head.weight")));
}

#[test]
fn q_head_at_init_gives_the_spec_values() {
    for device in hrm_model::test_devices() {
        let c = tiny_config();
        let model = Model::new(&c, device, 0).unwrap();
        let batch = tiny_batch(device);
        let carry = model.initial_carry(&batch);
        let (new_carry, out) = model
            .forward_train(&carry, &batch, &mut ChaCha8Rng::seed_from_u64(1))
            .unwrap();
        let q = Vec::<f32>::try_from(&out.q_halt_logits.to_device(Device::Cpu)).unwrap();
        assert!(q.iter().all(|&v| v == -5.0), "{q:?}");
        let halted = Vec::<bool>::try_from(&new_carry.halted.to_device(Device::Cpu)).unwrap();
        assert_eq!(
            halted,
            vec![false; c.batch_size as usize],
            "no greedy halting at init"
        );
        let loss = act_loss_head(&new_carry, &out, c.loss_type).unwrap();
        assert_eq!(loss.metrics.count, 0.0);
        // Row 3 has no labels and so counts as correct; rows 0-2 are wrong at a random init. With both Q logits at
        // −5: BCE(−5, 0) = 0.0067153 and BCE(−5, 1) = 5.0067153 (spec 11).
        let qh = loss.metrics.q_halt_loss;
        assert!(
            (qh - (3.0 * 0.0067153 + 5.0067153)).abs() < 1e-5,
            "q_halt_loss {qh}"
        );
        assert_eq!(
            loss.metrics.exact_accuracy, 0.0,
            "nothing halted, so nothing is counted"
        );
    }
}

#[test]
fn exploration_blocks_early_halting_and_is_seeded() {
    for device in hrm_model::test_devices() {
        let mut c = tiny_config();
        c.halt_exploration_prob = 1.0;
        let model =
            Model::from_safetensors(&c, device, &golden_dir().join("tiny_weights.safetensors"))
                .unwrap();
        let batch = tiny_batch(device);
        let run = |seed: u64| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut carry = model.initial_carry(&batch);
            let mut history = Vec::new();
            for _ in 0..c.halt_max_steps {
                let (next, _) = model.forward_train(&carry, &batch, &mut rng).unwrap();
                history.push(Vec::<bool>::try_from(&next.halted.to_device(Device::Cpu)).unwrap());
                carry = next;
            }
            history
        };
        let a = run(9);
        // With ε = 1 the minimum halting step is ≥ 2, so no greedy halt at step 1 passes (halt_max_steps ≥ 2).
        assert_eq!(a[0], vec![false; c.batch_size as usize]);
        assert_eq!(a, run(9), "same seed, same halting");
        // Forced halting at halt_max_steps cannot be blocked: a row reaches it by segment halt_max_steps − 1.
        for row in 0..c.batch_size as usize {
            assert!(a.iter().any(|h| h[row]), "row {row} never halted: {a:?}");
        }
    }
}

#[test]
fn bf16_forward_runs_close_to_f32() {
    for device in hrm_model::test_devices() {
        let mut c = tiny_config();
        c.forward_dtype = ForwardDtype::Float32;
        let weights = golden_dir().join("tiny_weights.safetensors");
        let f32_model = Model::from_safetensors(&c, device, &weights).unwrap();
        c.forward_dtype = ForwardDtype::Bfloat16;
        let bf16_model = Model::from_safetensors(&c, device, &weights).unwrap();
        assert_eq!(bf16_model.h_init().kind(), Kind::BFloat16);
        let batch = tiny_batch(device);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let (c32, o32) = f32_model
            .forward_train(&f32_model.initial_carry(&batch), &batch, &mut rng)
            .unwrap();
        let (c16, o16) = bf16_model
            .forward_train(&bf16_model.initial_carry(&batch), &batch, &mut rng)
            .unwrap();
        assert_eq!(o16.logits.kind(), Kind::BFloat16);
        assert_eq!(c16.z_h.kind(), Kind::BFloat16);
        assert_eq!(o16.q_halt_logits.kind(), Kind::Float);
        // Normwise, as the bf16 parity bound of segment 0 (tests/common `BF16`): a deeper config (the HRM paper
        // structure's 8 blocks) has a few elements off by up to 7% of the largest logit.
        let diff = (o16.logits.to_kind(Kind::Float) - &o32.logits)
            .norm()
            .double_value(&[]);
        let scale = o32.logits.norm().double_value(&[]);
        assert!(
            diff < 0.08 * scale,
            "bf16 logits differ by ‖Δ‖ {diff} (‖ref‖ {scale})"
        );
        let loss = act_loss_head(&c16, &o16, c.loss_type).unwrap();
        assert!(loss.loss.double_value(&[]).is_finite());
        loss.loss.backward();
        let g = param(
            &bf16_model,
            "inner.L_level.layers.0.self_attn.qkv_proj.weight",
        )
        .grad();
        assert_eq!(
            g.kind(),
            Kind::Float,
            "gradients reach the fp32 master weights"
        );
        assert!(g.abs().sum(Kind::Double).double_value(&[]) > 0.0);
        let _ = c32;
    }
}

#[test]
fn learned_positions_and_softmax_loss_work() {
    for device in hrm_model::test_devices() {
        let mut c = tiny_config();
        c.pos_encodings = PosEncoding::Learned;
        c.loss_type = hrm_model::LossType::SoftmaxCrossEntropy;
        let rope_config = ModelConfig {
            pos_encodings: PosEncoding::Rope,
            ..tiny_config()
        };
        let rope = Model::new(&rope_config, device, 0).unwrap();
        let model = Model::new(&c, device, 0).unwrap();
        assert!(model.rotary().is_none());
        let pos = param(&model, "inner.embed_pos.embedding_weight");
        assert_eq!(pos.size(), [c.model_seq_len(), c.hidden_size]);
        assert_eq!(
            model.num_parameters(),
            rope.num_parameters() + c.model_seq_len() * c.hidden_size
        );
        let batch = tiny_batch(device);
        let (carry, out) = model
            .forward_train(
                &model.initial_carry(&batch),
                &batch,
                &mut ChaCha8Rng::seed_from_u64(0),
            )
            .unwrap();
        let loss = act_loss_head(&carry, &out, c.loss_type).unwrap();
        assert_eq!(loss.loss.kind(), Kind::Float);
        loss.loss.backward();
        assert!(
            pos.grad().abs().sum(Kind::Double).double_value(&[]) > 0.0,
            "positions are trained"
        );
    }
}

#[test]
fn puzzle_rows_are_a_leaf_with_a_gradient_and_no_table_gradient() {
    let c = tiny_config();
    let model = Model::from_safetensors(
        &c,
        Device::Cpu,
        &golden_dir().join("tiny_weights.safetensors"),
    )
    .unwrap();
    let batch = tiny_batch(Device::Cpu);
    let (carry, out) = model
        .forward_train(
            &model.initial_carry(&batch),
            &batch,
            &mut ChaCha8Rng::seed_from_u64(0),
        )
        .unwrap();
    let local = out.puzzle_local.as_ref().unwrap();
    assert!(local.weights.requires_grad() && local.weights.is_leaf());
    act_loss_head(&carry, &out, c.loss_type)
        .unwrap()
        .loss
        .backward();
    assert!(
        local
            .weights
            .grad()
            .abs()
            .sum(Kind::Double)
            .double_value(&[])
            > 0.0
    );
    assert!(
        !model.puzzle_table().unwrap().grad().defined(),
        "the table itself is never trained by autograd"
    );
}

#[test]
fn bad_batches_are_errors_not_panics() {
    let c = tiny_config();
    let model = Model::new(&c, Device::Cpu, 0).unwrap();
    let good = tiny_batch(Device::Cpu);
    let carry = model.initial_carry(&good);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let with =
        |inputs: &Tensor, labels: &Tensor, ids: &Tensor| Batch::new(inputs, labels, ids).unwrap();
    let (b, s) = (c.batch_size as usize, c.seq_len as usize);
    let too_big = with(
        &good.inputs.clamp_max(c.vocab_size - 1).index_fill(
            1,
            &Tensor::from_slice(&[3i64]),
            c.vocab_size,
        ),
        &good.labels,
        &good.puzzle_identifiers,
    );
    let err = model
        .forward_train(&carry, &too_big, &mut rng)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("inputs") && err.contains("vocab_size"),
        "{err}"
    );
    let bad_id = with(
        &good.inputs,
        &good.labels,
        &good.puzzle_identifiers.full_like(c.num_puzzle_identifiers),
    );
    let err = model.forward_eval(&carry, &bad_id).unwrap_err().to_string();
    assert!(err.contains("puzzle_identifiers"), "{err}");
    let n = b * (s - 1);
    let short =
        Batch::from_vecs(&vec![2; n], &vec![2; n], &vec![0; b], b, s - 1, Device::Cpu).unwrap();
    let err = model.forward_eval(&carry, &short).unwrap_err().to_string();
    assert!(
        err.contains("inputs") && err.contains(&format!("[{b}, {s}]")),
        "{err}"
    );
    let bad_label = Batch::from_vecs(
        &vec![2; b * s],
        &vec![-1; b * s],
        &vec![0; b],
        b,
        s,
        Device::Cpu,
    )
    .unwrap();
    let err = model
        .forward_eval(&carry, &bad_label)
        .unwrap_err()
        .to_string();
    assert!(err.contains("labels"), "{err}");
}

#[test]
fn checkpoints_round_trip_and_report_bad_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let c = tiny_config();
    let mut a = Model::new(&c, Device::Cpu, 1).unwrap();
    // Make the table non-zero so the round trip is meaningful.
    let _ = a.puzzle_table_mut().unwrap().fill_(0.25);
    let path = dir.path().join("model.safetensors");
    a.save_safetensors(&path).unwrap();
    let names: Vec<String> = Tensor::read_safetensors(&path)
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    for n in [
        "inner.H_init",
        "inner.L_init",
        "inner.puzzle_emb.weights",
        "inner.q_head.bias",
    ] {
        assert!(names.contains(&n.to_string()), "{n} not saved");
    }
    let reference: std::collections::BTreeSet<String> =
        Tensor::read_safetensors(golden_dir().join("tiny_weights.safetensors"))
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
    assert_eq!(
        names
            .iter()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        reference,
        "the parameters and 3 buffers of the reference state dict"
    );
    let mut b = Model::new(&c, Device::Cpu, 2).unwrap();
    let before = param(&b, "inner.lm_head.weight").shallow_clone();
    b.load_safetensors(&path).unwrap();
    for ((n, x), (_, y)) in a.state_dict().iter().zip(b.state_dict().iter()) {
        assert!(x.equal(y), "{n} differs after the round trip");
    }
    assert!(
        before.equal(param(&a, "inner.lm_head.weight")),
        "loading copies into the existing tensors"
    );

    let mut bigger = c.clone();
    bigger.vocab_size = c.vocab_size + 1;
    let err = Model::from_safetensors(&bigger, Device::Cpu, &path).unwrap_err();
    match &err {
        ModelError::ShapeMismatch {
            name,
            expected,
            found,
            ..
        } => {
            assert_eq!(name, "inner.embed_tokens.embedding_weight");
            assert_eq!(
                (expected.clone(), found.clone()),
                (
                    vec![c.vocab_size + 1, c.hidden_size],
                    vec![c.vocab_size, c.hidden_size]
                )
            );
        }
        other => panic!("expected a shape mismatch, got {other}"),
    }
    assert!(err
        .to_string()
        .contains(&format!("[{}, {}]", c.vocab_size + 1, c.hidden_size)));

    let partial: Vec<(String, Tensor)> = a
        .state_dict()
        .into_iter()
        .filter(|(n, _)| n != "inner.L_init")
        .collect();
    let partial_path = dir.path().join("partial.safetensors");
    Tensor::write_safetensors(&partial, &partial_path).unwrap();
    let err = b.load_safetensors(&partial_path).unwrap_err().to_string();
    assert!(
        err.contains("missing tensor `inner.L_init`") && err.contains("partial.safetensors"),
        "{err}"
    );

    // The other position encoding: learned positions add `inner.embed_pos`, RoPE has no tensor.
    let mut other = c.clone();
    let (other_pos, problem) = match c.pos_encodings {
        PosEncoding::Learned => (PosEncoding::Rope, "missing"),
        _ => (PosEncoding::Learned, "unexpected"),
    };
    other.pos_encodings = other_pos;
    let m = Model::new(&other, Device::Cpu, 0).unwrap();
    let lp = dir.path().join("other.safetensors");
    m.save_safetensors(&lp).unwrap();
    let err = b.load_safetensors(&lp).unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "{problem} tensor `inner.embed_pos.embedding_weight`"
        )),
        "{err}"
    );
}
