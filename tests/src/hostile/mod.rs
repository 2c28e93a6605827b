//! The pieces of the hostile-input tests: random and damaged frames, bad
//! tokens, one attacking connection's state, a raw socket that joins, and
//! a well-behaved pair of peers whose work must go on meanwhile.
//!
//! The relay under attack must be started with [`MAX_FRAME`] and
//! [`MAX_DOCS`] as its limits: the attacker's model of what is fatal
//! counts on them.

pub mod frames;
pub mod good_pair;
pub mod session;
pub mod socket;
pub mod tokens;

use std::time::Duration;

use rapport_protocol::ids::{DocumentId, PeerId};

/// The relay's frame limit here: oversize frames stay cheap to make.
pub const MAX_FRAME: usize = 128 * 1024;
/// Documents one connection may open here.
pub const MAX_DOCS: usize = 16;
/// The good peers' document.
pub const GOOD: DocumentId = DocumentId::from_bytes([42; 16]);
/// A bound on any answer the relay owes an attacker, which sends up to 80
/// frames before it reads: it catches silence, not slowness.
pub const ANSWER_BOUND: Duration = Duration::from_secs(15);

/// The peer id `name`.
pub fn peer_id(name: &str) -> PeerId {
    name.parse().expect("attacker names are not empty")
}
