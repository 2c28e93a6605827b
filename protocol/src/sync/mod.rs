//! Sync as state machines: events in, effects out, no I/O.
//!
//! - [`Handshake`] opens a connection (`join` / `peer`).
//! - [`DocumentSync`] runs automerge's sync protocol for one document with
//!   every peer it is connected to, and says what to send and when the
//!   document changed.
//! - [`Backoff`] spaces reconnect attempts, with randomness passed in.
//!
//! Time is passed in as [`UnixMillis`](crate::ids::UnixMillis) and
//! randomness as an RNG, so tests run them deterministically.

mod backoff;
mod document;
mod handshake;

pub use backoff::Backoff;
pub use document::{DocumentSync, Effect, Origin, PeerPhase, RESEND_AFTER_MILLIS};
pub use handshake::{Established, HANDSHAKE_TIMEOUT_MILLIS, Handshake, HandshakeError};

use crate::ids::{DocumentId, PeerId};

/// A sync message that could not be applied. The document is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The `data` of a `sync` or `request` is not an automerge sync message.
    #[error("{peer} sent a malformed sync message for {document}: {reason}")]
    BadSyncMessage {
        document: DocumentId,
        peer: PeerId,
        reason: String,
    },
    /// automerge refused the changes in the message.
    #[error("{peer} sent changes to {document} that cannot be applied: {reason}")]
    Rejected {
        document: DocumentId,
        peer: PeerId,
        reason: String,
    },
}
