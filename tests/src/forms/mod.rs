//! The intake-form harness (the relay is a [`TestRelay`] started with form
//! limits of the test's choosing): a raw HTTP client that posts as a browser or a program would,
//! a workspace with two replicas and two customers, and a support form
//! with a good submission for it.

mod fixtures;
mod http;
mod world;

use std::time::Duration;

pub use fixtures::{generous, good_submission, support_form};
pub use http::{Answer, HOME, http};
pub use world::World;

/// How long a replica's sync may take.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Runs the client's blocking HTTP calls without stalling the runtime.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}
