//! hrm-augment: work in progress.
