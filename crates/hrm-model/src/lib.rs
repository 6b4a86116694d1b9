//! hrm-model: work in progress.
