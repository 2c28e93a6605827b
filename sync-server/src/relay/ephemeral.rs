//! What happens to an ephemeral (presence) message: forwarded to the other
//! peers of its document that may read it, bounded in size, for readers in
//! rate, and dropped when stale.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rapport_protocol::ids::{PeerId, PublicKey};
use rapport_protocol::relay::{ConnId, RelayDoc};
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
    /// Forwards an ephemeral message another relay of the cluster took
    /// (and checked) to this relay's peers of its document.
    pub(crate) async fn forward_ephemeral_from_cluster(
        &self,
        message: Ephemeral,
        author: Option<PublicKey>,
    ) {
        // Only a document open here has peers to tell.
        let Some(slot) = super::lock(&self.docs).get(&message.document_id).cloned() else {
            return;
        };
        let mut slot = slot.lock().await;
        if !remember(&mut slot.ephemeral, author, &message) {
            return;
        }
        if let Some(doc) = slot.doc.as_ref() {
            self.send_ephemeral(doc, None, &message);
        }
    }

    /// Sends `message` to every peer of `doc` but `from`, each with its
    /// own target, encoded once.
    fn send_ephemeral(&self, doc: &RelayDoc, from: Option<ConnId>, message: &Ephemeral) {
        let others: Vec<(ConnId, &PeerId)> = doc
            .peers()
            .filter(|(other, _)| Some(*other) != from)
            .collect();
        let frames = message.encode_for(others.iter().map(|(_, remote)| *remote));
        for ((other, _), frame) in others.iter().zip(frames) {
            self.send_frame(*other, Bytes::from(frame));
        }
    }

    /// Forwards an ephemeral message to every other connection with the
    /// document open, and to the other relays of a cluster, dropping stale
    /// ones.
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
        if !remember(&mut slot.ephemeral, identity.key(), &message) {
            Metrics::add(&self.metrics.dropped_messages, 1);
            return;
        }
        if let Some(doc) = slot.doc.as_ref() {
            self.send_ephemeral(doc, Some(conn), &message);
        }
        drop(slot);
        if let Some(cluster) = self.cluster.get() {
            crate::cluster::presence::publish(cluster, &message, identity.key()).await;
        }
    }
}

/// Notes `message`'s count for its session; false if it is stale. Keyed
/// by who sent it too: a peer that claims another's peer id cannot make
/// its presence look stale.
fn remember(
    seen: &mut std::collections::HashMap<(Option<PublicKey>, PeerId, String), u64>,
    key: Option<PublicKey>,
    message: &Ephemeral,
) -> bool {
    let session = (key, message.sender_id.clone(), message.session_id.clone());
    if seen
        .get(&session)
        .is_some_and(|&last| message.count <= last)
    {
        return false;
    }
    if seen.len() >= MAX_EPHEMERAL_SESSIONS && !seen.contains_key(&session) {
        // Forgetting the counts lets a stale message through once; they
        // are best effort anyway, and memory stays bounded.
        seen.clear();
    }
    seen.insert(session, message.count);
    true
}
