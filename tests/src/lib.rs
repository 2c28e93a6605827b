//! Shared helpers of rapport's integration tests: the captured JS vectors,
//! the JS decoder and JS peers, the canonical JSON they are compared in, a
//! relay on a loopback port and a Rust test peer.

pub mod canonical;
pub mod faults;
pub mod js;
pub mod js_peer;
pub mod peer;
pub mod relay;
pub mod vectors;
