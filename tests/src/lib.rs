//! Shared helpers of rapport's integration tests: the captured JS vectors,
//! the JS decoder and JS peers (node children driven over JSON lines), the
//! canonical JSON they are compared in, the web app in headless Chromium,
//! a relay on a loopback port (or in a process of its own), a nats-server
//! for the cluster, a Rust test peer, the hostile peers and the intake-form
//! harness, an SMTP sink, and a watch on this process's memory and panics.

pub mod browser;
pub mod canonical;
pub mod child_relay;
pub mod faults;
pub mod forms;
pub mod hostile;
pub mod js;
pub mod js_peer;
pub mod nats;
pub mod node;
pub mod peer;
pub mod process;
pub mod relay;
pub mod smtp;
pub mod vectors;
