//! Test support shared by the crate's unit tests (compiled only for tests).

pub mod fixtures;
