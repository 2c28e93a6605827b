//! Forwarding a peer's new changes before they are durable.
//!
//! A keystroke's change reaches the other peers while the relay's commit
//! (an fsync, or a round trip to the cluster's stream) is still under way.
//! The message that carries it names the document's heads as they were, so
//! no peer is told the relay holds the change before storage does: a crash
//! before the commit loses nothing a peer was told was stored, and the
//! peers that got the change offer it again when they reconnect. The
//! answer after the commit names the new heads and does not carry the
//! change a second time.

use automerge::ChangeHash;
use automerge::sync::{self, MessageVersion};

use super::answer::our_flags;
use super::{ConnId, Prepared, RelayDoc};
use crate::relay::graph::{HashSet, StoredChange};
use crate::relay::peer::PeerSync;

impl RelayDoc {
    /// Sends `prepared`'s new changes, not yet stored, to every other
    /// connection that can apply them now, under the document's durable
    /// heads. Call it before storing them; [`RelayDoc::commit`] then names
    /// them among the heads, and [`RelayDoc::abort`] forgets they were sent,
    /// so that the peers offer them again. A whole-document upload is not
    /// forwarded early (it goes as the saved document once stored).
    pub fn forward_early(&mut self, prepared: &Prepared) {
        if prepared.to_store.is_empty() || prepared.whole.is_some() {
            return;
        }
        let new: HashSet<ChangeHash> = prepared.to_store.iter().map(|c| c.hash).collect();
        let conns: Vec<ConnId> = self
            .peers
            .iter()
            .filter(|(conn, peer)| {
                **conn != prepared.conn && can_apply(peer, &prepared.to_store, &new)
            })
            .map(|(conn, _)| *conn)
            .collect();
        if conns.is_empty() {
            return;
        }
        let heads = self.graph.heads();
        let hashes: Vec<ChangeHash> = prepared.to_store.iter().map(|c| c.hash).collect();
        for conn in conns {
            let peer = &self.peers[&conn];
            // What the relay has since the heads both sides share, the new
            // changes included, so that the peer does not send them back.
            let have = self.have_since_shared(peer, &hashes);
            let (version, chunks) = if peer.supports_v2 {
                let bytes: Vec<&[u8]> = prepared.to_store.iter().map(|c| &*c.bytes).collect();
                (MessageVersion::V2, vec![bytes.concat()])
            } else {
                let chunks = prepared.to_store.iter().map(|c| c.bytes.to_vec());
                (MessageVersion::V1, chunks.collect())
            };
            let message = sync::Message {
                heads: heads.clone(),
                need: Vec::new(),
                have: vec![have],
                changes: sync::ChunkList::from(chunks),
                flags: Some(our_flags()),
                version,
            };
            self.send_sync(conn, message, hashes.clone());
            if let Some(peer) = self.peers.get_mut(&conn) {
                peer.heads_owed = true;
            }
        }
    }

    /// After `changes` joined the graph on top of the heads `before`: a
    /// peer whose covered heads were `before` and that got every one of
    /// them early is covered up to the new heads, so that the answers after
    /// the commit need not walk to find that it lacks nothing.
    pub(super) fn cover_forwarded(&mut self, before: &[ChangeHash], changes: &[StoredChange]) {
        if changes.is_empty() {
            return;
        }
        let mut after = None;
        for peer in self.peers.values_mut() {
            if peer.covered == before && changes.iter().all(|c| peer.sent_hashes.contains(&c.hash))
            {
                peer.covered = after.get_or_insert_with(|| self.graph.heads()).clone();
            }
        }
    }

    /// Forgets that `changes` went to any peer: they were not stored.
    pub(super) fn forget_forwarded(&mut self, changes: &[StoredChange]) {
        for peer in self.peers.values_mut() {
            for change in changes {
                peer.sent_hashes.remove(&change.hash);
            }
        }
    }
}

/// Whether `peer` is in a sync session with the relay, applies changes,
/// asked for nothing the relay lacked, keeps up, and holds (or was sent)
/// every dependency of `changes` outside them: it can apply them at once
/// instead of queueing them.
fn can_apply(peer: &PeerSync, changes: &[StoredChange], new: &HashSet<ChangeHash>) -> bool {
    if peer.read_only || peer.their_have.is_none() || !peer.last_sent_need.is_empty() || peer.lags()
    {
        return false;
    }
    let their_heads = peer.their_heads.as_deref().unwrap_or_default();
    changes.iter().flat_map(|c| &c.deps).all(|dep| {
        new.contains(dep)
            || peer.shared_heads.contains(dep)
            || their_heads.contains(dep)
            || peer.sent_hashes.contains(dep)
    })
}
