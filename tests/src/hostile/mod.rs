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

use ed25519_dalek::SigningKey;
use rand::Rng;
use rapport_protocol::ids::{DocumentId, PeerId};

use crate::peer::key;

/// The relay's frame limit here: oversize frames stay cheap to make.
pub const MAX_FRAME: usize = 128 * 1024;
/// Documents one connection may open here.
pub const MAX_DOCS: usize = 16;
/// The good peers' document.
pub const GOOD: DocumentId = DocumentId::from_bytes([42; 16]);
/// A bound on any answer the relay owes an attacker, which sends up to 80
/// frames before it reads: it catches silence, not slowness.
pub const ANSWER_BOUND: Duration = Duration::from_secs(15);

/// Keys attackers sign with: `key(100)` and the 49 after it.
const ATTACKER_KEYS: u8 = 50;
/// The first this many of them are staff of the good pair's workspace
/// ([`insiders`]): the good document is open to insiders, who must still
/// not change it; the others are in no workspace and must not see it.
const INSIDER_KEYS: u8 = 25;

/// A key an attacker signs with, inside or outside the workspace.
pub fn attacker_key(rng: &mut impl Rng) -> SigningKey {
    key(100 + rng.random_range(0..ATTACKER_KEYS))
}

/// The attackers' keys that are staff of the good pair's workspace.
pub fn insiders() -> Vec<SigningKey> {
    (0..INSIDER_KEYS).map(|n| key(100 + n)).collect()
}

/// The peer id `name`.
pub fn peer_id(name: &str) -> PeerId {
    name.parse().expect("peer names in tests are not empty")
}
