//! Parity tests against the official TRM vectors `trm_*` in `shared/golden` (README section "TRM golden vectors";
//! reference `models/recursive_reasoning/trm.py` with `models/losses.py`). The checks are the HRM test's, in
//! `common`, and take every structural fact from `trm_config.json` and the trace.

mod common;

use common::GoldenSet;
use hrm_model::ModelKind;

const SET: GoldenSet = GoldenSet {
    prefix: "trm",
    default_kind: ModelKind::Trm,
};

#[test]
fn trm_position_tables_match_the_reference() {
    common::check_buffers(SET);
}

#[test]
fn trm_checkpoint_keys_are_the_reference_state_dict() {
    common::check_state_dict(SET);
}

#[test]
fn trm_training_segments_match_the_reference() {
    common::check_training_segments(SET);
}

#[test]
fn trm_eval_rollout_matches_the_reference() {
    common::check_eval_rollout(SET);
}
