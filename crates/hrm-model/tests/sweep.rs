//! Parity over every golden set of `tests/sweep/` (made by `tests/sweep/make.py` from the official HRM and TRM
//! code; `tests/sweep/sweep.json` lists them with their configs and seeds): the same checks as `golden.rs` and
//! `trm_golden.rs` (`common`), each bound widened to 4× the set's measured float32-vs-float64 noise where that
//! is larger than the golden README's. `HRM_SWEEP_SETS=a,b` limits the run to some sets. The table it prints
//! (`--nocapture`) also has rows for the shared golden sets (`tiny`, `trm`), checked again here for the figures.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Instant;

use common::reference::{take_worst, Reference, NOISE_FACTOR};
use common::{GoldenSet, F32};
use hrm_model::ModelKind;
use tch::Tensor;

fn sweep_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sweep")
}

/// The set names of `sweep.json`, in its order.
fn listed_sets() -> Vec<String> {
    let path = sweep_dir().join("sweep.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let value: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    value["sets"]
        .as_array()
        .unwrap_or_else(|| panic!("{}: no `sets` list", path.display()))
        .iter()
        .map(|s| {
            s["name"]
                .as_str()
                .unwrap_or_else(|| panic!("{}: a set without a name", path.display()))
                .to_string()
        })
        .collect()
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(no message)".into())
}

#[test]
fn the_sweep_folder_holds_exactly_the_listed_sets() {
    let mut listed = listed_sets();
    listed.sort();
    let mut found: Vec<String> = std::fs::read_dir(sweep_dir())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    found.sort();
    assert_eq!(found, listed, "tests/sweep folders vs sweep.json");
    for name in &found {
        let set = GoldenSet::in_dir(&sweep_dir().join(name));
        assert!(
            set.dir
                .join("float64")
                .join(format!("{}_trace.safetensors", set.prefix))
                .is_file(),
            "{name}: no float64 twin"
        );
    }
}

/// One parity check of `common`, by name.
type Check = (&'static str, fn(&GoldenSet));

/// Runs every parity check of `set`, prints its row of the table, and returns its failures (set, check, message).
fn run_set(label: &str, set: &GoldenSet) -> Vec<String> {
    let checks: [Check; 4] = [
        ("position tables", common::check_buffers),
        ("state dict", common::check_state_dict),
        ("training segments", common::check_training_segments),
        ("eval rollout", common::check_eval_rollout),
    ];
    let start = Instant::now();
    let _ = take_worst();
    let mut failed = Vec::new();
    for (what, check) in checks {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| check(set))) {
            failed.push(format!("{label}: {what}: {}", panic_text(payload)));
        }
    }
    let w = take_worst();
    eprintln!(
        "{label} | {:.3} ({}) | {:.2} ({}) | {} | {} | {:.1}",
        w.used,
        w.used_name,
        w.to_noise,
        w.to_noise_name,
        w.raised,
        if failed.is_empty() { "pass" } else { "FAIL" },
        start.elapsed().as_secs_f64()
    );
    failed
}

#[test]
fn every_sweep_set_matches_the_reference() {
    let only = std::env::var("HRM_SWEEP_SETS").ok();
    let chosen = |n: &str| only.as_deref().is_none_or(|o| o.split(',').any(|x| x == n));
    let mut sets: Vec<(String, GoldenSet)> = [("tiny", ModelKind::Hrm), ("trm", ModelKind::Trm)]
        .into_iter()
        .map(|(p, k)| (format!("shared/{p}"), GoldenSet::shared(p, k)))
        .collect();
    sets.extend(
        listed_sets()
            .into_iter()
            .map(|n| (n.clone(), GoldenSet::in_dir(&sweep_dir().join(&n)))),
    );
    sets.retain(|(n, _)| chosen(n));
    assert!(!sets.is_empty(), "no sweep set chosen");
    eprintln!(
        "set | worst |Δ|/bound (tensor) | worst |Δ|/float noise (tensor) | bounds raised by the noise | result | s"
    );
    let failures: Vec<String> = sets.iter().flat_map(|(n, set)| run_set(n, set)).collect();
    assert!(
        failures.is_empty(),
        "failing sweep sets:\n{}",
        failures.join("\n")
    );
}

/// The tolerance rule itself: a difference of 3x the measured float32-vs-float64 spread passes even where it
/// exceeds the README's bound; 5x fails; without a twin the README's bound alone applies.
#[test]
fn bounds_follow_the_measured_float_noise() {
    let dir = tempfile::tempdir().unwrap();
    let f32_ref = Tensor::from_slice(&[1.0f32, -2.0, 0.5]);
    let spread = 1e-3; // far above the README's forward bound (2e-5 + 1e-4·|ref| ≤ 2.2e-4)
    let f64_ref = f32_ref.to_kind(tch::Kind::Double) + spread;
    let path = dir.path().join("x_trace.safetensors");
    Tensor::write_safetensors(&[("seg0.logits", &f32_ref)], &path).unwrap();
    let alone = Reference::read(&path, &F32);
    std::fs::create_dir(dir.path().join("float64")).unwrap();
    Tensor::write_safetensors(
        &[("seg0.logits", &f64_ref)],
        dir.path().join("float64/x_trace.safetensors"),
    )
    .unwrap();
    let twin = Reference::read(&path, &F32);
    assert!(twin.has_twin() && !alone.has_twin());
    let off = |k: f64| &f32_ref + k * spread;
    let passes = |r: &Reference, k: f64| {
        catch_unwind(AssertUnwindSafe(|| {
            r.forward("seg0.logits", &off(k), F32.forward0)
        }))
        .is_ok()
    };
    assert!(passes(&twin, 3.0) && passes(&twin, NOISE_FACTOR - 0.01));
    assert!(!passes(&twin, NOISE_FACTOR + 1.0), "5x the noise fails");
    assert!(!passes(&alone, 3.0), "without a twin: the README's bound");
    assert!(passes(&alone, 0.01), "1e-5 is within the README's bound");
}
