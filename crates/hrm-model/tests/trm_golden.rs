//! Parity tests against the official TRM vectors `trm_*` in `shared/golden` (README section "TRM golden vectors";
//! reference `models/recursive_reasoning/trm.py` with `models/losses.py`). The checks are the HRM test's, in
//! `common`, and take every structural fact from `trm_config.json` and the trace.

mod common;

use common::GoldenSet;
use hrm_model::ModelKind;

fn set() -> GoldenSet {
    GoldenSet::shared("trm", ModelKind::Trm)
}

common::parity_tests!(set());
