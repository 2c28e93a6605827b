//! One document and the peers it syncs with.

use std::collections::{BTreeMap, VecDeque};

use automerge::sync::{self, SyncDoc};
use automerge::{Automerge, AutomergeError};

use super::SyncError;
use crate::ids::{ChangeHash, DocumentId, PeerId, UnixMillis};
use crate::wire::{DocMessage, DocUnavailable, Message, Rejected};

/// How long a sync message may go unanswered before it is sent again.
///
/// Over one WebSocket nothing is lost, but a peer may drop a message it
/// cannot accept (an older peer, a refused change); after this long the
/// in-flight mark is cleared so that the next message carries what the peer
/// still lacks.
pub const RESEND_AFTER_MILLIS: u64 = 10_000;

/// What a [`DocumentSync`] asks its driver to do, in order.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Effect {
    /// Send this message to the peer it targets.
    Send(Message),
    /// The document changed (persist it, tell subscribers).
    Changed {
        heads: Vec<ChangeHash>,
        origin: Origin,
    },
    /// The peer does not have the document (yet). The peer stays subscribed:
    /// if the document reaches it later, it arrives as a `sync`.
    Unavailable { peer: PeerId },
}

/// Where a change came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A change made here.
    Local,
    /// Changes received from this peer.
    Remote(PeerId),
}

/// Where a peer stands with this document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerPhase {
    /// We asked for the document and have heard nothing yet.
    Requested,
    /// Sync messages are flowing.
    Syncing,
    /// The peer said it does not have the document.
    Unavailable,
}

#[derive(Debug)]
struct PeerSync {
    /// The peer id we use towards this peer.
    us: PeerId,
    state: sync::State,
    phase: PeerPhase,
    /// When we last sent a message the peer has not answered.
    sent_at: Option<UnixMillis>,
}

/// The sync state machine of one document with each of its peers.
///
/// Driving it: call the `handle_*` methods as things happen, then call
/// [`DocumentSync::poll_effect`] until it returns `None` and carry out each
/// effect in order. Call [`DocumentSync::handle_timeout`] once the time
/// [`DocumentSync::poll_timeout`] names has come. Nothing here reads a clock
/// or does I/O; `now` is always passed in.
#[derive(Debug)]
pub struct DocumentSync {
    id: DocumentId,
    local: PeerId,
    doc: Automerge,
    peers: BTreeMap<PeerId, PeerSync>,
    effects: VecDeque<Effect>,
}

impl DocumentSync {
    /// Sync `doc`, known as `id`, on behalf of the local peer `local`.
    pub fn new(id: DocumentId, local: PeerId, doc: Automerge) -> Self {
        Self {
            id,
            local,
            doc,
            peers: BTreeMap::new(),
            effects: VecDeque::new(),
        }
    }

    /// The document's id.
    pub fn id(&self) -> DocumentId {
        self.id
    }

    /// The local peer this machine syncs on behalf of.
    pub fn local_peer(&self) -> &PeerId {
        &self.local
    }

    /// The document as it is now.
    pub fn doc(&self) -> &Automerge {
        &self.doc
    }

    /// The document's heads.
    pub fn heads(&self) -> Vec<ChangeHash> {
        self.doc
            .get_heads()
            .into_iter()
            .map(ChangeHash::from)
            .collect()
    }

    /// Where `peer` stands, if it is connected.
    pub fn peer_phase(&self, peer: &PeerId) -> Option<PeerPhase> {
        self.peers.get(peer).map(|p| p.phase)
    }

    /// Starts syncing with a newly connected peer. If we hold nothing of the
    /// document the first message is a `request`, otherwise a `sync`.
    pub fn handle_peer_connected(&mut self, peer: PeerId, now: UnixMillis) {
        self.connect(peer, self.local.clone(), sync::State::new(), now);
    }

    /// Like [`Self::handle_peer_connected`], for a connection on which we
    /// call ourselves `us` rather than the default local peer id (a fresh
    /// id per connection keeps a remote repo from reusing the previous
    /// connection's sync state), resuming from a saved sync state if one is
    /// given (see [`Self::encoded_sync_state`]; one that does not decode is
    /// ignored).
    pub fn handle_peer_connected_as(
        &mut self,
        peer: PeerId,
        us: PeerId,
        saved: Option<&[u8]>,
        now: UnixMillis,
    ) {
        let state = saved
            .and_then(|bytes| sync::State::decode(bytes).ok())
            .unwrap_or_default();
        self.connect(peer, us, state, now);
    }

    fn connect(&mut self, peer: PeerId, us: PeerId, state: sync::State, now: UnixMillis) {
        let phase = if self.doc.get_heads().is_empty() {
            PeerPhase::Requested
        } else {
            PeerPhase::Syncing
        };
        let entry = PeerSync {
            us,
            state,
            phase,
            sent_at: None,
        };
        self.peers.insert(peer.clone(), entry);
        self.generate_for(&peer, now);
    }

    /// The part of the sync state with `peer` worth keeping across
    /// connections (the heads both sides are known to share).
    pub fn encoded_sync_state(&self, peer: &PeerId) -> Option<Vec<u8>> {
        self.peers.get(peer).map(|p| p.state.encode())
    }

    /// True once `peer` has told us heads equal to ours (or, for a document
    /// we lack, that it lacks it too): nothing is left to exchange with it.
    pub fn is_in_sync_with(&self, peer: &PeerId) -> bool {
        let ours = self.doc.get_heads();
        // Not `in_flight`: the last message of an exchange (an acknowledgement)
        // is never answered, so it stays "in flight" for good.
        self.peers.get(peer).is_some_and(|p| {
            p.state.their_heads.as_ref() == Some(&ours)
                || (p.phase == PeerPhase::Unavailable && ours.is_empty())
        })
    }

    /// The heads `peer` last told us it has.
    pub fn their_heads(&self, peer: &PeerId) -> Option<Vec<ChangeHash>> {
        let heads = self.peers.get(peer)?.state.their_heads.as_ref()?;
        Some(heads.iter().copied().map(ChangeHash::from).collect())
    }

    /// Forgets a peer that went away. Its sync state is per connection.
    pub fn handle_peer_disconnected(&mut self, peer: &PeerId) {
        self.peers.remove(peer);
    }

    /// Applies a local change. `change` gets a transaction; it is committed
    /// when `change` returns `Ok`, rolled back on `Err`. The change carries
    /// `now` as its time, in unix seconds as the JS automerge writes it, so
    /// that history can say when it was made.
    pub fn handle_local_change<T, E>(
        &mut self,
        now: UnixMillis,
        change: impl FnOnce(&mut automerge::transaction::Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let before = self.doc.get_heads();
        let seconds = i64::try_from(now.0 / 1000).unwrap_or(i64::MAX);
        let value = self
            .doc
            .transact_with(
                |_| automerge::transaction::CommitOptions::default().with_time(seconds),
                |tx| change(tx),
            )
            .map(|success| success.result)
            .map_err(|failure| failure.error)?;
        if self.doc.get_heads() != before {
            self.effects.push_back(Effect::Changed {
                heads: self.heads(),
                origin: Origin::Local,
            });
            self.generate_for_all(now);
        }
        Ok(value)
    }

    /// Handles a `sync` or `request` from `message.sender_id`. A message
    /// from a peer that is not connected connects it first.
    pub fn handle_sync(&mut self, message: &DocMessage, now: UnixMillis) -> Result<(), SyncError> {
        let decoded =
            sync::Message::decode(&message.data).map_err(|e| SyncError::BadSyncMessage {
                document: self.id,
                peer: message.sender_id.clone(),
                reason: e.to_string(),
            })?;
        let from = message.sender_id.clone();
        let they_have_something = !decoded.heads.is_empty();
        let peer = self.peers.entry(from.clone()).or_insert_with(|| PeerSync {
            us: self.local.clone(),
            state: sync::State::new(),
            phase: PeerPhase::Syncing,
            sent_at: None,
        });
        let before = self.doc.get_heads();
        self.doc
            .receive_sync_message(&mut peer.state, decoded)
            .map_err(|e: AutomergeError| SyncError::Rejected {
                document: self.id,
                peer: from.clone(),
                reason: e.to_string(),
            })?;
        peer.sent_at = None;
        if peer.phase != PeerPhase::Syncing
            && (they_have_something || !self.doc.get_heads().is_empty())
        {
            peer.phase = PeerPhase::Syncing;
        }
        if self.doc.get_heads() != before {
            self.effects.push_back(Effect::Changed {
                heads: self.heads(),
                origin: Origin::Remote(from.clone()),
            });
            self.generate_for_all(now);
        } else {
            self.generate_for(&from, now);
        }
        Ok(())
    }

    /// Handles a `request`: like a `sync`, but if we hold nothing of the
    /// document either, the answer ends with `doc-unavailable`, as the JS
    /// sync server answers. The requester stays registered, so the document
    /// reaches it if it appears here later.
    pub fn handle_request(
        &mut self,
        message: &DocMessage,
        now: UnixMillis,
    ) -> Result<(), SyncError> {
        self.handle_sync(message, now)?;
        if self.doc.get_heads().is_empty() {
            self.effects
                .push_back(Effect::Send(Message::DocUnavailable(DocUnavailable {
                    sender_id: self
                        .peers
                        .get(&message.sender_id)
                        .map_or_else(|| self.local.clone(), |p| p.us.clone()),
                    target_id: message.sender_id.clone(),
                    document_id: self.id,
                })));
        }
        Ok(())
    }

    /// Handles `doc-unavailable` from a peer.
    pub fn handle_unavailable(&mut self, message: &DocUnavailable) {
        if let Some(peer) = self.peers.get_mut(&message.sender_id) {
            peer.phase = PeerPhase::Unavailable;
            peer.sent_at = None;
            // Start afresh: when the document appears, the peer's first sync
            // message is answered from scratch.
            peer.state = sync::State::new();
        }
        self.effects.push_back(Effect::Unavailable {
            peer: message.sender_id.clone(),
        });
    }

    /// The peer refused changes. Those it may take later (its storage
    /// failed) are offered again with the next message to it; the others
    /// are not offered again.
    pub fn handle_rejected(&mut self, rejected: &Rejected) {
        if !rejected.reason.is_transient() {
            return;
        }
        if let Some(peer) = self.peers.get_mut(&rejected.sender_id) {
            for hash in &rejected.changes {
                peer.state
                    .sent_hashes
                    .remove(&automerge::ChangeHash::from(*hash));
            }
        }
    }

    /// The next thing to do, or `None` when there is nothing.
    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    /// When [`DocumentSync::handle_timeout`] wants to be called next.
    pub fn poll_timeout(&self) -> Option<UnixMillis> {
        self.peers
            .values()
            .filter_map(|p| p.sent_at)
            .min()
            .map(|sent| sent.plus_millis(RESEND_AFTER_MILLIS))
    }

    /// Resends to peers whose last message went unanswered too long.
    pub fn handle_timeout(&mut self, now: UnixMillis) {
        let stale: Vec<PeerId> = self
            .peers
            .iter_mut()
            .filter(|(_, p)| {
                p.sent_at
                    .is_some_and(|t| t.plus_millis(RESEND_AFTER_MILLIS) <= now)
            })
            .map(|(id, p)| {
                // Whatever went unanswered may have been dropped: send it again.
                p.state.in_flight = false;
                p.state.sent_hashes.clear();
                p.sent_at = None;
                id.clone()
            })
            .collect();
        for peer in stale {
            self.generate_for(&peer, now);
        }
    }

    fn generate_for_all(&mut self, now: UnixMillis) {
        let peers: Vec<PeerId> = self.peers.keys().cloned().collect();
        for peer in peers {
            self.generate_for(&peer, now);
        }
    }

    fn generate_for(&mut self, peer_id: &PeerId, now: UnixMillis) {
        let Some(peer) = self.peers.get_mut(peer_id) else {
            return;
        };
        if peer.phase == PeerPhase::Unavailable && self.doc.get_heads().is_empty() {
            return;
        }
        let Some(message) = self.doc.generate_sync_message(&mut peer.state) else {
            return;
        };
        peer.sent_at = Some(now);
        let doc_message = DocMessage {
            sender_id: peer.us.clone(),
            target_id: peer_id.clone(),
            document_id: self.id,
            data: message.encode(),
        };
        let message = match peer.phase {
            PeerPhase::Requested => Message::Request(doc_message),
            PeerPhase::Syncing | PeerPhase::Unavailable => Message::Sync(doc_message),
        };
        self.effects.push_back(Effect::Send(message));
    }
}
