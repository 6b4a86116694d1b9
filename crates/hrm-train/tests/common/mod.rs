//! Helpers shared by the hrm-train integration tests: locating and reading golden vectors, and tolerant comparison.

#![allow(dead_code)]

use std::collections::HashMap;

use tch::{Device, Kind, Tensor};

pub mod small;

/// The device of the tests that honour `HRM_TEST_DEVICE` (micro-batching, resume): `cpu` (default) or `cuda`
/// (fails when libtorch sees no CUDA device). The GPU check of `cargo xtask gpu-bundle` sets it.
pub fn test_device() -> Device {
    match std::env::var("HRM_TEST_DEVICE").as_deref() {
        Err(_) | Ok("") | Ok("cpu") => Device::Cpu,
        Ok("cuda") => {
            assert!(
                tch::Cuda::is_available(),
                "HRM_TEST_DEVICE=cuda, but libtorch sees no CUDA device"
            );
            Device::Cuda(0)
        }
        Ok(other) => panic!("HRM_TEST_DEVICE={other}: expected cpu or cuda"),
    }
}

/// The golden folder, located by the one lookup of the workspace ([`hrm_testkit::golden_dir`]).
pub use hrm_testkit::golden_dir;

/// Reads every tensor of a golden safetensors file into a map, failing the test if it cannot.
pub fn read_golden(file: &str) -> HashMap<String, Tensor> {
    let path = golden_dir().join(file);
    let list = Tensor::read_safetensors(&path)
        .unwrap_or_else(|e| panic!("cannot read golden file {}: {e}", path.display()));
    list.into_iter().collect()
}

/// Looks up a golden tensor by name, failing the test with the name if it is missing.
pub fn get<'a>(map: &'a HashMap<String, Tensor>, name: &str) -> &'a Tensor {
    map.get(name)
        .unwrap_or_else(|| panic!("golden tensor `{name}` missing"))
}

/// Asserts `|a − b| ≤ atol + rtol·|b|` elementwise (b is the reference), reporting the worst element.
pub fn assert_close(what: &str, a: &Tensor, b: &Tensor, atol: f64, rtol: f64) {
    assert_eq!(a.size(), b.size(), "{what}: shape mismatch");
    let a = a.to_kind(Kind::Double);
    let b = b.to_kind(Kind::Double);
    let diff = (&a - &b).abs();
    let bound = b.abs() * rtol + atol;
    let excess = (&diff - &bound).max().double_value(&[]);
    let max_diff = diff.max().double_value(&[]);
    assert!(excess <= 0.0, "{what}: max |Δ| = {max_diff:e} exceeds atol {atol:e} + rtol {rtol:e}·|ref| (by {excess:e})");
}

/// The largest absolute difference between two tensors.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a.to_kind(Kind::Double) - b.to_kind(Kind::Double))
        .abs()
        .max()
        .double_value(&[])
}
