//! Receiving a sync message: decoding it (anywhere), then deciding which
//! of its changes the document keeps, in dependency order.

use std::collections::BTreeSet;
use std::sync::Arc;

use automerge::ChangeHash;
use automerge::sync;

use super::{ConnId, Prepared, RelayDoc};
use crate::relay::chunks::{ChunkLimits, is_one_document, split_changes_within};
use crate::relay::graph::StoredChange;
use crate::sync::SyncError;
use crate::wire::{DocMessage, RejectReason};

/// A sync message's data decoded: the message without its changes, and
/// the changes split and checked against [`ChunkLimits`]. The costly part
/// of receiving a large message (inflating and parsing its changes), which
/// needs no document and can run anywhere.
#[derive(Debug)]
pub struct DecodedSync {
    message: sync::Message,
    changes: Vec<StoredChange>,
    /// The message's one entry, when it is a saved document.
    whole: Option<Arc<[u8]>>,
}

impl DecodedSync {
    /// Decodes a `sync`/`request` message's data; the error says why not.
    pub fn decode(data: &[u8], limits: &ChunkLimits) -> Result<Self, String> {
        let mut message = sync::Message::decode(data).map_err(|e| e.to_string())?;
        let changes =
            split_changes_within(message.changes.iter(), limits).map_err(|e| e.to_string())?;
        let whole = match message.changes.iter().collect::<Vec<_>>()[..] {
            [entry] if is_one_document(entry) => Some(Arc::from(entry)),
            _ => None,
        };
        message.changes = sync::ChunkList::empty();
        Ok(Self {
            message,
            changes,
            whole,
        })
    }

    /// Whether the message carries changes.
    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty()
    }

    /// Whether its sender holds no change of the document: no heads, and
    /// no changes.
    pub fn holds_nothing(&self) -> bool {
        self.message.heads.is_empty() && self.changes.is_empty()
    }
}

impl RelayDoc {
    /// Reads a `sync` or `request` from `conn` (which must have been added)
    /// and decides which of its changes to keep: `check` is asked about
    /// every new change (its actor, and its bytes for a caller that looks
    /// at its operations) and refuses it by returning a reason.
    pub fn receive(
        &mut self,
        conn: ConnId,
        message: &DocMessage,
        is_request: bool,
        check: impl FnMut(&StoredChange) -> Result<(), RejectReason>,
    ) -> Result<Prepared, SyncError> {
        let decoded = DecodedSync::decode(&message.data, &self.limits).map_err(|reason| {
            SyncError::BadSyncMessage {
                document: self.id,
                peer: message.sender_id.clone(),
                reason,
            }
        })?;
        self.receive_decoded(conn, decoded, is_request, check)
    }

    /// [`RelayDoc::receive`] of a message decoded beforehand (off the
    /// caller's event loop, say, with [`DecodedSync::decode`]).
    pub fn receive_decoded(
        &mut self,
        conn: ConnId,
        decoded: DecodedSync,
        is_request: bool,
        mut check: impl FnMut(&StoredChange) -> Result<(), RejectReason>,
    ) -> Result<Prepared, SyncError> {
        let DecodedSync {
            message: decoded,
            changes: incoming,
            whole,
        } = decoded;
        let had_changes = !incoming.is_empty();
        let incoming_count = incoming.len();
        let was_empty = self.graph.is_empty() && self.queue.is_empty();

        let refused_before = self.peers.get(&conn).map(|peer| &peer.refused);
        let mut refused = Vec::new();
        let mut refused_set = BTreeSet::new();
        let mut candidates = Vec::new();
        let mut seen = BTreeSet::new();
        for change in incoming {
            if self.graph.contains(&change.hash)
                || refused_before.is_some_and(|r| r.contains(&change.hash))
                || !seen.insert(change.hash)
            {
                continue;
            }
            let verdict = if let Some(dep) = change.deps.iter().find(|d| refused_set.contains(*d)) {
                Err((RejectReason::InvalidChange, *dep))
            } else {
                check(&change).map_err(|reason| (reason, change.hash))
            };
            match verdict {
                Ok(()) => candidates.push(change),
                Err((reason, _)) => {
                    // A change refused for who offers it (another key's
                    // actor: one the relay forwarded early and lost, say)
                    // may still come from its author: what depends on it
                    // waits for it, as for any missing dependency.
                    if reason != RejectReason::ActorOfAnotherKey {
                        refused_set.insert(change.hash);
                    }
                    refused.push((change.hash, reason));
                }
            }
        }
        // Queued changes from earlier messages may be placeable now.
        candidates.extend(
            self.queue
                .iter()
                .filter(|c| !seen.contains(&c.hash))
                .cloned(),
        );
        let (to_store, queued) = self.order_by_dependencies(candidates);
        // A peer's first upload of a whole document: kept as it came.
        let whole = whole.filter(|_| {
            was_empty && refused.is_empty() && queued.is_empty() && to_store.len() == incoming_count
        });
        Ok(Prepared {
            conn,
            message: decoded,
            is_request,
            had_changes,
            to_store,
            refused,
            whole,
            queued,
        })
    }

    /// Splits `candidates` into changes whose dependencies are all present
    /// (in dependency order) and changes still waiting for some.
    fn order_by_dependencies(
        &self,
        mut candidates: Vec<StoredChange>,
    ) -> (Vec<StoredChange>, Vec<StoredChange>) {
        let mut placed: BTreeSet<ChangeHash> = BTreeSet::new();
        let mut ordered = Vec::new();
        loop {
            let before = candidates.len();
            candidates.retain(|change| {
                let ready = change
                    .deps
                    .iter()
                    .all(|d| self.graph.contains(d) || placed.contains(d));
                if ready {
                    placed.insert(change.hash);
                    ordered.push(change.clone());
                }
                !ready
            });
            if candidates.len() == before {
                return (ordered, candidates);
            }
        }
    }
}
