//! `hrm import` / `hrm export` on the official-format golden checkpoints (`../shared/golden/pytorch/`): the
//! imported weights equal the golden safetensors bitwise (bf16 `H_init`/`L_init` stay bf16 as stored), the
//! imported model reproduces the golden trace's segment-0 logits (README tolerances; bf16 within the BF16 bounds of
//! hrm-model's parity tests), bad inputs are refused naming what is wrong, an export imports back bitwise and, when
//! the setup venv's torch is present, loads with `torch.load(weights_only=True)` equal to the golden file.

use std::path::{Path, PathBuf};

use hrm_model::{Batch, Model, ModelKind};
use hrm_recipe::DtypeSetting;
use hrm_torchfile::TorchFile;
use hrm_train::checkpoint::{load_model_config, MODEL_FILE};
use hrm_train::official::{
    export_official, import_official, ExportOptions, ImportOptions, ImportSummary, ShapeFlags,
};
use tch::{Device, Kind, Tensor};

fn golden(rel: &str) -> PathBuf {
    hrm_testkit::golden_dir().join(rel)
}

/// The golden configs' dataset sizes (`tiny_config.json`, `trm_config.json`).
const TINY: ShapeFlags = ShapeFlags {
    seq_len: Some(16),
    vocab_size: Some(12),
    num_puzzle_identifiers: Some(8),
};

fn options(source: PathBuf, out: PathBuf) -> ImportOptions {
    ImportOptions {
        source,
        dataset_dir: None,
        shape: TINY,
        out,
        force: false,
        sets: Vec::new(),
        command_line: vec!["test".into()],
    }
}

fn import(folder: &str, tmp: &Path) -> (ImportSummary, PathBuf) {
    let run = tmp.join(folder);
    let s = import_official(&options(golden(&format!("pytorch/{folder}")), run.clone())).unwrap();
    (s, run)
}

fn imported_model(run: &Path) -> Model {
    let ckpt = run.join("checkpoints/step_0");
    let config = load_model_config(&ckpt).unwrap();
    Model::from_safetensors(&config, Device::Cpu, &ckpt.join(MODEL_FILE)).unwrap()
}

fn read(file: &str) -> std::collections::HashMap<String, Tensor> {
    Tensor::read_safetensors(golden(file))
        .unwrap()
        .into_iter()
        .collect()
}

/// The imported model's state dict against the golden weights: bitwise, with `H_init`/`L_init` in `inits`.
fn check_weights(model: &Model, weights: &str, inits: Kind) {
    let want = read(weights);
    let got = model.state_dict();
    assert_eq!(got.len(), want.len());
    for (name, t) in got {
        let w = &want[&name];
        let init = name == "inner.H_init" || name == "inner.L_init";
        let kind = if init { inits } else { Kind::Float };
        assert_eq!(t.kind(), kind, "{name}");
        assert!(t.equal(&w.to_kind(kind)), "{name} differs");
    }
}

fn seg0_logits(model: &Model, batch_file: &str) -> Tensor {
    let b = read(batch_file);
    let batch = Batch::new(&b["inputs"], &b["labels"], &b["puzzle_identifiers"]).unwrap();
    let carry = model.initial_carry(&batch);
    let (_, out) = model.forward_eval(&carry, &batch).unwrap();
    out.logits.to_kind(Kind::Double)
}

/// |got − want| ≤ atol + rtol·|want| elementwise and ‖got − want‖ ≤ norm·‖want‖.
fn assert_close(got: &Tensor, want: &Tensor, atol: f64, rtol: f64, norm: f64) {
    let want = want.to_kind(Kind::Double);
    let excess = (got - &want).abs() - (want.abs() * rtol + atol);
    let worst = excess.max().double_value(&[]);
    assert!(worst <= 0.0, "logits exceed the bound by {worst:e}");
    let rel = (got - &want).norm().double_value(&[]) / want.norm().double_value(&[]);
    assert!(rel <= norm, "‖Δ‖/‖ref‖ {rel:e} exceeds {norm:e}");
}

#[test]
fn hrm_tiny_imports_bitwise_and_reproduces_segment_0() {
    let tmp = tempfile::tempdir().unwrap();
    let (s, run) = import("hrm_tiny", tmp.path());
    assert_eq!((s.kind, s.tensors), (ModelKind::Hrm, 23));
    // No forward_dtype in the YAML: the dtype H_init is stored in (float32) is used, and said so.
    assert_eq!(s.recipe.arch.forward_dtype, DtypeSetting::Float32);
    assert!(
        s.notes
            .iter()
            .any(|n| n.contains("forward_dtype is absent")),
        "{:?}",
        s.notes
    );
    assert_eq!(
        (s.recipe.train.lr, s.recipe.train.lr_warmup_steps),
        (1e-4, 2000)
    );
    let model = imported_model(&run);
    check_weights(&model, "tiny_weights.safetensors", Kind::Float);
    let trace = read("tiny_trace.safetensors");
    let got = seg0_logits(&model, "tiny_batch.safetensors");
    assert_close(&got, &trace["seg0.logits"], 2e-5, 1e-4, f64::INFINITY);
    let env: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("env.json")).unwrap()).unwrap();
    let sha = env["imported"]["sha256"].as_str().unwrap();
    assert_eq!(sha.len(), 64);
    assert_eq!(env["imported"]["source_step"], 1000);
}

#[test]
fn hrm_tiny_bf16_keeps_its_bf16_inits_and_runs_in_bf16() {
    let tmp = tempfile::tempdir().unwrap();
    let (s, run) = import("hrm_tiny_bf16", tmp.path());
    assert_eq!(s.recipe.arch.forward_dtype, DtypeSetting::Bfloat16);
    let model = imported_model(&run);
    // Our Model holds H_init/L_init in the forward dtype, as the reference does: the stored bf16 values exactly.
    let file = TorchFile::open(&golden("pytorch/hrm_tiny_bf16/step_1000")).unwrap();
    assert!(file
        .tensors()
        .any(|t| t.name.ends_with("H_init") && t.dtype == hrm_torchfile::DType::BF16));
    check_weights(&model, "tiny_weights.safetensors", Kind::BFloat16);
    let trace = read("tiny_trace.safetensors");
    let got = seg0_logits(&model, "tiny_batch.safetensors");
    // hrm-model's BF16 bounds for segment-0 forward tensors (tests/common/mod.rs, `BF16.forward0`).
    assert_close(&got, &trace["seg0.logits"], 0.25, 0.05, 0.08);
    // Without `forward_dtype` in the YAML (the official default is bfloat16), the stored H_init's dtype decides.
    let src = edited("hrm_tiny_bf16", "step_1000", tmp.path(), |y| {
        y.replace("  forward_dtype: bfloat16\n", "")
    });
    let s = import_official(&options(src, tmp.path().join("no-dtype"))).unwrap();
    assert_eq!(s.recipe.arch.forward_dtype, DtypeSetting::Bfloat16);
    assert!(s
        .notes
        .iter()
        .any(|n| n.contains("forward_dtype is absent")));
}

#[test]
fn trm_tiny_imports_bitwise_and_reproduces_segment_0() {
    let tmp = tempfile::tempdir().unwrap();
    let (s, run) = import("trm_tiny", tmp.path());
    assert_eq!((s.kind, s.tensors), (ModelKind::Trm, 15));
    let a = &s.recipe.arch;
    assert_eq!(
        (a.puzzle_emb_len, a.mlp_t, a.no_act_continue, a.l_cycles),
        (2, false, true, 3)
    );
    let model = imported_model(&run);
    check_weights(&model, "trm_weights.safetensors", Kind::Float);
    let trace = read("trm_trace.safetensors");
    let got = seg0_logits(&model, "trm_batch.safetensors");
    assert_close(&got, &trace["seg0.logits"], 2e-5, 1e-4, f64::INFINITY);
}

/// A copy of a golden folder with its YAML edited by `edit`.
fn edited(folder: &str, step: &str, tmp: &Path, edit: impl Fn(&str) -> String) -> PathBuf {
    let dir = tmp.join(format!("src-{folder}"));
    std::fs::create_dir_all(&dir).unwrap();
    let src = golden(&format!("pytorch/{folder}"));
    std::fs::copy(src.join(step), dir.join(step)).unwrap();
    let yaml = std::fs::read_to_string(src.join("all_config.yaml")).unwrap();
    std::fs::write(dir.join("all_config.yaml"), edit(&yaml)).unwrap();
    dir
}

#[test]
fn bad_inputs_are_refused_naming_the_cause() {
    let tmp = tempfile::tempdir().unwrap();
    let err = |opts: ImportOptions| import_official(&opts).unwrap_err().to_string();
    // A puzzle table of another size than the dataset's identifiers: both numbers and the matching build.
    let mut o = options(golden("pytorch/trm_tiny"), tmp.path().join("a"));
    o.shape.num_puzzle_identifiers = Some(9);
    let e = err(o);
    assert!(
        e.contains("has 8 rows") && e.contains("num_puzzle_identifiers 9"),
        "{e}"
    );
    assert!(e.contains("hrm build-data arc1 --layout trm"), "{e}");
    let mut o = options(golden("pytorch/hrm_tiny"), tmp.path().join("a"));
    o.shape.num_puzzle_identifiers = Some(7);
    assert!(err(o).contains("hrm build-data arc1"));
    // A shape that disagrees with the config.
    let src = edited("hrm_tiny", "step_1000", tmp.path(), |y| {
        y.replace("hidden_size: 64", "hidden_size: 128")
    });
    let e = err(options(src, tmp.path().join("b")));
    assert!(e.contains("shape") && e.contains("all_config.yaml"), "{e}");
    // An arch field this port does not know changes the model: refused; an unknown training key is a note.
    let src = edited("trm_tiny", "step_2000", tmp.path(), |y| {
        y.replace("  mlp_t: false", "  mlp_t: false\n  z_dim: 3")
    });
    assert!(err(options(src, tmp.path().join("c"))).contains("z_dim"));
    let src = edited("hrm_tiny", "step_1000", tmp.path(), |y| {
        format!("{y}grad_clip: 1.0\n")
    });
    let s = import_official(&options(src, tmp.path().join("d"))).unwrap();
    assert!(
        s.notes.iter().any(|n| n.contains("grad_clip")),
        "{:?}",
        s.notes
    );
    // Another model name, and missing sizes without a dataset.
    let src = edited("hrm_tiny", "step_1000", tmp.path(), |y| {
        y.replace("hrm.hrm_act_v1@", "hrm.other@")
    });
    assert!(err(options(src, tmp.path().join("e"))).contains("neither the official HRM"));
    let mut o = options(golden("pytorch/hrm_tiny"), tmp.path().join("f"));
    o.shape.seq_len = None;
    assert!(err(o).contains("--seq-len"));
    // Nothing half-written is left behind by the failures.
    for f in ["a", "b", "c", "e", "f"] {
        assert!(!tmp.path().join(f).exists(), "{f}");
    }
    assert!(std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .all(|e| !e.file_name().to_string_lossy().contains(".importing-")));
}

#[test]
fn an_existing_folder_is_replaced_only_when_it_is_an_import_and_force_is_given() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, run) = import("hrm_tiny", tmp.path());
    let e = import_official(&options(golden("pytorch/hrm_tiny"), run.clone())).unwrap_err();
    assert!(e.to_string().contains("--force"), "{e}");
    let mut o = options(golden("pytorch/trm_tiny"), run.clone());
    o.force = true;
    assert_eq!(import_official(&o).unwrap().kind, ModelKind::Trm);
    let other = tmp.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "mine").unwrap();
    let mut o = options(golden("pytorch/hrm_tiny"), other.clone());
    o.force = true;
    assert!(import_official(&o)
        .unwrap_err()
        .to_string()
        .contains("not an imported run"));
    assert_eq!(
        std::fs::read_to_string(other.join("notes.txt")).unwrap(),
        "mine"
    );
}

/// Every tensor of two torch files: key, dtype, shape and bytes.
fn contents(path: &Path) -> Vec<(hrm_torchfile::TensorInfo, Vec<u8>)> {
    let mut f = TorchFile::open(path).unwrap();
    let mut infos: Vec<_> = f.tensors().cloned().collect();
    infos.sort_by(|a, b| a.name.cmp(&b.name));
    infos
        .into_iter()
        .map(|i| {
            let b = f.read(&i.name).unwrap();
            (i, b)
        })
        .collect()
}

#[test]
fn exports_import_back_bitwise_and_match_the_source_file() {
    let tmp = tempfile::tempdir().unwrap();
    for (folder, step) in [("hrm_tiny_bf16", "step_1000"), ("trm_tiny", "step_2000")] {
        let (_, run) = import(folder, tmp.path());
        let out = tmp.path().join(format!("export-{folder}"));
        let s = export_official(&ExportOptions {
            run_dir: run.clone(),
            checkpoint: None,
            out: out.clone(),
        })
        .unwrap();
        assert_eq!(s.file, out.join("step_0"));
        assert_eq!(
            contents(&s.file),
            contents(&golden(&format!("pytorch/{folder}/{step}"))),
            "{folder}"
        );
        let back = tmp.path().join(format!("back-{folder}"));
        import_official(&options(out.clone(), back.clone())).unwrap();
        let (a, b) = (imported_model(&run), imported_model(&back));
        for ((n, x), (m, y)) in a.state_dict().iter().zip(b.state_dict().iter()) {
            assert_eq!(n, m);
            assert!(x.kind() == y.kind() && x.equal(y), "{folder}: {n}");
        }
        torch_load_check(&s.file, &golden(&format!("pytorch/{folder}/{step}")));
    }
}

/// The setup venv's Python (`HRM_TORCH_VENV`, `$XDG_CACHE_HOME/hrm-rs/torch-venv`, `~/.cache/hrm-rs/torch-venv`).
fn venv_python() -> Option<PathBuf> {
    let venv = std::env::var_os("HRM_TORCH_VENV")
        .map(PathBuf::from)
        .or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
            Some(cache.join("hrm-rs/torch-venv"))
        })?;
    let py = venv.join("bin/python");
    py.is_file().then_some(py)
}

/// `torch.load(weights_only=True)` of the export holds the keys, dtypes, shapes and values of the source file.
fn torch_load_check(export: &Path, source: &Path) {
    let Some(py) = venv_python() else {
        println!("SKIPPED torch.load check: no setup venv (run `cargo xtask setup` or set HRM_TORCH_VENV)");
        return;
    };
    let script = "import sys, torch\n\
        a = torch.load(sys.argv[1], weights_only=True, map_location='cpu')\n\
        b = torch.load(sys.argv[2], weights_only=True, map_location='cpu')\n\
        assert type(a).__name__ == 'OrderedDict', type(a)\n\
        assert list(sorted(a)) == list(sorted(b)), (sorted(a), sorted(b))\n\
        for k in b:\n\
        \x20   assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k\n\
        \x20   assert torch.equal(a[k], b[k]), k\n\
        print('torch.load ok', len(a))\n";
    let out = std::process::Command::new(&py)
        .args(["-c", script])
        .arg(export)
        .arg(source)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "torch.load check failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("torch.load ok"));
}
