//! Fuzzing the checkpoint readers with mutated files of a real checkpoint: `state.bin` ([`load_state`]),
//! `model_config.json` ([`load_model_config`]), the safetensors files ([`load_checkpoint`]) and `SHA256SUMS`
//! ([`verified_file`]). A mutated file gets fresh checksums, so that the parser behind the checksum is reached;
//! a mutated checksum file is read as is. Nothing may panic; a refusal names the checkpoint folder. Bounded
//! (32 cases per property, a tiny model) so the set runs in seconds under `cargo test`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use hrm_testkit::mutate::{edit, edit_before, mutated, Edit, JSON_FRAGMENTS};
use hrm_train::checkpoint::{
    load_checkpoint, load_model_config, load_state, verified_file, write_checksums, CHECKSUMS_FILE,
    MODEL_CONFIG_FILE, MODEL_FILE, OPTIMIZER_FILE, STATE_FILE,
};
use hrm_train::run::{step_config, train, RunOptions};
use hrm_train::step::Trainer;
use hrm_train::synthetic::{tiny_recipe, write_dataset};
use proptest::prelude::*;
use tch::Device;

/// Fragments of the binary files (safetensors header keys, lengths, a checksum line), spliced besides the JSON
/// ones.
const BINARY_FRAGMENTS: [&str; 7] = [
    "\"F32\"",
    "\"shape\"",
    "\"data_offsets\"",
    "\u{0}\u{0}\u{0}\u{0}",
    "\u{ff}\u{ff}\u{ff}\u{ff}",
    "  model.safetensors\n",
    "0000",
];

/// An edit splicing a JSON or a binary fragment, at any position or (for binary headers) before `limit`.
fn any_edit(limit: Option<usize>) -> BoxedStrategy<Edit> {
    match limit {
        None => prop_oneof![edit(&JSON_FRAGMENTS), edit(&BINARY_FRAGMENTS)].boxed(),
        Some(n) => prop_oneof![
            edit_before(&JSON_FRAGMENTS, n),
            edit_before(&BINARY_FRAGMENTS, n)
        ]
        .boxed(),
    }
}

/// A checkpoint of a two-step tiny run, made once per test process.
fn checkpoint() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("fuzz-checkpoint-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let data = root.join("data");
        write_dataset(&data, 8, 1).unwrap();
        let overrides = vec!["train.max_steps=2".to_string()];
        let opts = RunOptions {
            recipe: tiny_recipe(&overrides).unwrap(),
            dataset_dir: data,
            run_dir: root.join("run"),
            device: Device::Cpu,
            resume: false,
            command_line: vec!["fuzz".into()],
            progress: false,
            throttle: Duration::ZERO,
            dist: None,
        };
        train(&opts).unwrap().checkpoint
    })
}

/// A copy of the checkpoint with `file` replaced by `bytes` (checksums rewritten unless `file` is the checksum
/// file), then every reader on it; returns the errors, each checked to name the copy's folder.
fn read_mutated(file: &str, edits: &[Edit]) -> Vec<String> {
    let src = checkpoint();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("step_2");
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    let original = std::fs::read(dir.join(file)).unwrap();
    std::fs::write(dir.join(file), mutated(&original, edits)).unwrap();
    if file != CHECKSUMS_FILE {
        write_checksums(&dir).unwrap();
    }
    let mut errors = Vec::new();
    if let Err(e) = load_state(&dir) {
        errors.push(e.to_string());
    }
    if let Err(e) = load_model_config(&dir) {
        errors.push(e.to_string());
    }
    for name in [MODEL_FILE, OPTIMIZER_FILE, STATE_FILE, MODEL_CONFIG_FILE] {
        if let Err(e) = verified_file(&dir, name) {
            errors.push(e.to_string());
        }
    }
    // The trainer is built from the original configuration: the mutated files are what is read.
    let config = load_model_config(src).unwrap();
    let recipe = tiny_recipe(&[]).unwrap();
    let model = hrm_model::Model::new(&config, Device::Cpu, 0).unwrap();
    let mut trainer = Trainer::new(model, step_config(&recipe, 24)).unwrap();
    if let Err(e) = load_checkpoint(&dir, &mut trainer) {
        errors.push(e.to_string());
    }
    for msg in &errors {
        assert!(
            msg.contains(&dir.display().to_string()),
            "the error names no file of the checkpoint: {msg}"
        );
    }
    errors
}

#[test]
fn an_unchanged_copy_loads_and_a_changed_byte_is_caught() {
    assert!(read_mutated(STATE_FILE, &[]).is_empty());
    let errors = read_mutated(CHECKSUMS_FILE, &[Edit::Set(3, b'x')]);
    assert!(!errors.is_empty(), "a damaged checksum line is refused");
    // Mutations reach the parsers: a safetensors header length, a state file and a config are refused.
    assert!(!read_mutated(MODEL_FILE, &[Edit::Set(5, 0xff)]).is_empty());
    assert!(!read_mutated(STATE_FILE, &[Edit::Delete(4, 8)]).is_empty());
    assert!(!read_mutated(MODEL_CONFIG_FILE, &[Edit::Splice(0, "[")]).is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_state_files_never_panic(edits in proptest::collection::vec(any_edit(None), 1..5)) {
        read_mutated(STATE_FILE, &edits);
    }

    #[test]
    fn mutated_model_configs_never_panic(edits in proptest::collection::vec(edit(&JSON_FRAGMENTS), 1..5)) {
        read_mutated(MODEL_CONFIG_FILE, &edits);
    }

    #[test]
    fn mutated_weights_never_panic(edits in proptest::collection::vec(any_edit(Some(600)), 1..5)) {
        read_mutated(MODEL_FILE, &edits);
        read_mutated(OPTIMIZER_FILE, &edits);
    }

    #[test]
    fn mutated_checksum_files_never_panic(edits in proptest::collection::vec(any_edit(None), 1..5)) {
        read_mutated(CHECKSUMS_FILE, &edits);
    }
}
