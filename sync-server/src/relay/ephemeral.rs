//! What happens to an ephemeral (presence) message: forwarded to the other
//! peers of its document that may read it, bounded in size, for readers in
//! rate, and dropped when stale.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rapport_protocol::ids::PeerId;
use rapport_protocol::relay::ConnId;
use rapport_protocol::wire::Ephemeral;

use super::Relay;
use crate::access::{Access, Identity};
use crate::metrics::Metrics;
use crate::window::WindowCounter;

/// Session ids longer than this are not automerge-repo's (it uses short
/// random ones): such ephemeral messages are dropped.
const MAX_SESSION_ID_BYTES: usize = 128;

/// Ephemeral sessions remembered per document.
pub(super) const MAX_EPHEMERAL_SESSIONS: usize = 1024;

impl Relay {
    /// Forwards an ephemeral message to every other connection with the
    /// document open, dropping stale ones.
    pub(crate) async fn forward_ephemeral(
        &self,
        conn: ConnId,
        identity: Identity,
        message: Ephemeral,
    ) {
        let id = message.document_id;
        let access = self.document_access(&identity, id);
        if access == Access::None {
            return;
        }
        let limits = &self.config.limits;
        if message.session_id.len() > MAX_SESSION_ID_BYTES
            || message.data.len() > limits.max_ephemeral_bytes
        {
            Metrics::add(&self.metrics.dropped_messages, 1);
            return;
        }
        let slot = self.slot(id);
        let mut slot = slot.lock().await;
        let readers = slot
            .reader_ephemeral
            .get_or_insert_with(|| WindowCounter::new(Duration::from_secs(1)));
        if access == Access::Read
            && !readers.admit(conn, limits.reader_ephemeral_per_sec, Instant::now())
        {
            Metrics::add(&self.metrics.dropped_messages, 1);
            return;
        }
        // Keyed by who is on the connection too: a peer that claims
        // another's peer id cannot make its presence look stale.
        let key = (
            identity.key(),
            message.sender_id.clone(),
            message.session_id.clone(),
        );
        if slot
            .ephemeral
            .get(&key)
            .is_some_and(|&last| message.count <= last)
        {
            Metrics::add(&self.metrics.dropped_messages, 1);
            return;
        }
        if slot.ephemeral.len() >= MAX_EPHEMERAL_SESSIONS && !slot.ephemeral.contains_key(&key) {
            // Forgetting the counts lets a stale message through once; they
            // are best effort anyway, and memory stays bounded.
            slot.ephemeral.clear();
        }
        slot.ephemeral.insert(key, message.count);
        let Some(doc) = slot.doc.as_ref() else {
            return;
        };
        // Encoded once for every other peer, each with its own target.
        let others: Vec<(ConnId, &PeerId)> =
            doc.peers().filter(|(other, _)| *other != conn).collect();
        let frames = message.encode_for(others.iter().map(|(_, remote)| *remote));
        for ((other, _), frame) in others.iter().zip(frames) {
            self.send_frame(*other, Bytes::from(frame));
        }
    }
}
