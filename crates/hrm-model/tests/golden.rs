//! Parity tests against the reference HRM vectors `tiny_*` in `shared/golden` (see its README for the protocol and
//! the tolerances). The checks live in `common` (`parity_tests!`); they take every structural fact from the config
//! and trace files.

mod common;

use common::{assert_close, get, load, GoldenSet};
use hrm_model::ModelKind;
use tch::Kind;

fn set() -> GoldenSet {
    GoldenSet::shared("tiny", ModelKind::Hrm)
}

common::parity_tests!(set());

#[test]
fn stablemax_matches_the_reference() {
    let s = load("stablemax.safetensors");
    for device in common::test_devices() {
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
