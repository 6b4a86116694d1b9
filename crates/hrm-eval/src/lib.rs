//! hrm-eval: work in progress.
