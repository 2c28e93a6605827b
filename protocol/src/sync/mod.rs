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
pub mod merge;

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

/// A document from storage: a saved snapshot (if any) with the changes
/// stored after it applied in one batch. Applying them one
/// `load_incremental` at a time costs time that grows with the square of
/// the history; one batch does not.
pub fn load_document<'a>(
    snapshot: Option<&[u8]>,
    changes: impl IntoIterator<Item = &'a [u8]>,
) -> Result<automerge::Automerge, automerge::AutomergeError> {
    let mut doc = match snapshot {
        Some(bytes) => automerge::Automerge::load(bytes)?,
        None => automerge::Automerge::new(),
    };
    let joined: Vec<u8> = changes.into_iter().flatten().copied().collect();
    if !joined.is_empty() {
        doc.load_incremental(&joined)?;
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use automerge::transaction::Transactable;
    use automerge::{ROOT, ReadDoc};

    use super::*;

    #[test]
    fn a_snapshot_and_later_changes_load_as_one_document() {
        let mut doc = automerge::Automerge::new();
        doc.transact(|tx| tx.put(ROOT, "a", 1)).unwrap();
        let snapshot = doc.save();
        let mut changes = Vec::new();
        for n in 0..3 {
            doc.transact(|tx| tx.put(ROOT, "a", 2 + n)).unwrap();
            changes.push(doc.get_last_local_change().unwrap().raw_bytes().to_vec());
        }
        let loaded = load_document(Some(&snapshot), changes.iter().map(Vec::as_slice)).unwrap();
        assert_eq!(loaded.get_heads(), doc.get_heads());
        let (value, _) = loaded.get(ROOT, "a").unwrap().unwrap();
        assert_eq!(value.as_i64(), Some(4));
        assert!(load_document(Some(b"not a document"), []).is_err());
    }
}
