//! Helpers shared by the integration tests: locating the real data folder.

#![allow(dead_code)]

/// The shared raw-data folder ([`hrm_testkit::data_dir`]).
pub use hrm_testkit::data_dir;
