//! Shared helpers of rapport's integration tests: the captured JS vectors,
//! the JS decoder harness, and the canonical JSON both are compared in.

pub mod canonical;
pub mod js;
pub mod vectors;
