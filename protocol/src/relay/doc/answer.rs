//! Answering a peer: automerge's `generate_sync_message`, computed from the
//! change graph instead of a document.

use std::collections::BTreeSet;
use std::sync::Arc;

use automerge::sync::{self, BloomFilter, Have, MessageFlags, MessageVersion};
use automerge::{ChangeHash, ReadDoc as _};

use super::{ConnId, NewSnapshot, RelayDoc, RelayEffect};
use crate::relay::graph::HashSet;
use crate::relay::peer::PeerSync;
use crate::wire::{DocMessage, Message};

/// Most change bytes a document may have for the relay to save it whole
/// for a peer that has nothing, on the document's lock. Larger documents go
/// as their snapshot and changes.
const MAX_PACKED_CHANGE_BYTES: usize = 1 << 20;

impl RelayDoc {
    /// automerge's `generate_sync_message`, answered from the change graph.
    /// A peer owed heads ([`RelayDoc::forward_early`]) with nothing else to
    /// hear waits for them unless `pay_owed`.
    pub(super) fn generate(&mut self, conn: ConnId, pay_owed: bool) {
        let our_heads = self.graph.heads();
        let Some(peer) = self.peers.get_mut(&conn) else {
            return;
        };
        // A peer that lags waits for the answer to the message on its way:
        // its own next message, or the owed-heads timer (a peer with
        // nothing new to say never answers), makes it due again, and that
        // answer carries every change since. A backlog then costs one
        // message a round trip or a tick, not one for every commit.
        if peer.in_flight && peer.lags() && !pay_owed {
            peer.heads_owed = true;
            return;
        }
        let peer = &self.peers[&conn];
        let their_heads = peer.their_heads.clone().unwrap_or_default();
        let our_need = self.missing(&their_heads, &peer.refused);
        if let Some(first) = peer.their_have.as_ref().and_then(|h| h.first())
            && !first.last_sync.iter().all(|h| self.graph.contains(h))
        {
            self.send_sync(conn, reset_message(our_heads), Vec::new());
            return;
        }
        let (hashes, covers) = match (&peer.their_have, &peer.their_need) {
            (Some(have), Some(need)) if !peer.read_only => {
                // A peer covered up to the relay's heads lacks nothing but
                // what it asks for: no walk.
                let beyond: &[Have] = if peer.covered == our_heads { &[] } else { have };
                let hashes = self
                    .hashes_to_send(beyond, need, [&their_heads[..], &peer.covered])
                    .into_iter()
                    .filter(|h| !peer.sent_hashes.contains(h))
                    .collect();
                // Every change is then held by the peer or on its way to
                // it, unless it withheld its `have` (it needs changes first).
                (hashes, !have.is_empty())
            }
            _ => (Vec::new(), false),
        };
        // A peer sent changes before they were stored hears that the relay
        // holds them later, from [`RelayDoc::answer_owed`] or with its next
        // message, not in a message of its own for every change.
        if peer.heads_owed && !pay_owed && hashes.is_empty() && our_need == peer.last_sent_need {
            return;
        }
        let heads_unchanged = peer.last_sent_heads == our_heads;
        let heads_equal = peer.their_heads.as_ref() == Some(&our_heads);
        // Unlike automerge, also stay quiet when the peer told us nothing new
        // since our last answer: heads that can never become equal (the peer
        // holds a change we refused) must not make the two sides answer each
        // other forever.
        // A changed `need` (a queued change's missing dependencies) is news.
        let nothing_new =
            peer.their_heads == peer.last_answered_heads && our_need == peer.last_sent_need;
        if heads_unchanged
            && peer.have_responded
            && (((heads_equal || nothing_new) && hashes.is_empty()) || peer.in_flight)
        {
            return;
        }
        // Past the returns above: it may walk what the peer has not confirmed.
        let our_have = if our_need.iter().all(|h| their_heads.contains(h)) {
            vec![self.have(peer, &hashes, &our_heads)]
        } else {
            Vec::new()
        };
        let supports_v2 = peer.supports_v2;
        let (version, chunks) = self.encode_changes(&hashes, supports_v2);
        let message = sync::Message {
            heads: our_heads.clone(),
            need: our_need.clone(),
            have: our_have,
            changes: sync::ChunkList::from(chunks),
            flags: Some(our_flags()),
            version,
        };
        if let Some(peer) = self.peers.get_mut(&conn) {
            peer.have_responded = true;
            peer.heads_owed = false;
            peer.last_sent_heads = our_heads;
            peer.last_answered_heads.clone_from(&peer.their_heads);
            peer.last_sent_need = our_need;
            if covers {
                peer.covered.clone_from(&peer.last_sent_heads);
            }
        }
        self.send_sync(conn, message, hashes);
    }

    /// What the relay tells `peer` it has, in a message carrying `hashes`:
    /// what the two share, and a Bloom filter of the rest, as automerge
    /// does. A peer that has nothing and gets every change in this message
    /// is told the relay's heads instead, with no filter: once it applies
    /// the message it knows all of them. A fresh peer's first answer on a
    /// long document would otherwise carry a filter of its whole history
    /// (10 bits a change: 325 KB for 260,000 changes that save to 126 KB).
    fn have(&self, peer: &PeerSync, hashes: &[ChangeHash], our_heads: &[ChangeHash]) -> Have {
        let has_nothing = peer.their_heads.as_ref().is_some_and(Vec::is_empty);
        if has_nothing && !hashes.is_empty() && hashes.len() == self.graph.len() {
            return Have {
                last_sync: our_heads.to_vec(),
                bloom: BloomFilter::default(),
            };
        }
        self.have_since_shared(peer, &[])
    }

    /// automerge's `have`: the heads the relay and `peer` share, and a
    /// Bloom filter of what the relay has since that the peer may hold,
    /// with `also` (changes on their way to it, not in the graph yet).
    ///
    /// automerge's filter holds every change since the shared heads. When
    /// those are the peer's own last heads, all the peer can hold of those
    /// changes is what the relay sent it since (it never offers again a
    /// change of its own that it sent: it remembers what it sent). The
    /// filter is then made of those alone: no walk over the history, and a
    /// filter that does not grow with the peer's lag. Otherwise (the peer
    /// named heads the relay does not know) it walks, as automerge does.
    pub(super) fn have_since_shared(&self, peer: &PeerSync, also: &[ChangeHash]) -> Have {
        let bloom = if peer.their_heads.as_ref() == Some(&peer.shared_heads) {
            let sent: Vec<&ChangeHash> = peer.sent_hashes.iter().chain(also).collect();
            BloomFilter::from_hashes(sent.into_iter())
        } else {
            let mut since = self.graph.not_ancestors_of(&peer.shared_heads);
            since.extend(also);
            BloomFilter::from_hashes(since.iter())
        };
        Have {
            last_sync: peer.shared_heads.clone(),
            bloom,
        }
    }

    /// The `changes` of a sync message carrying `hashes`. A peer that
    /// gets every change gets the document as automerge saves it
    /// (compressed, a fraction of its changes' size), as automerge itself
    /// does for a peer that lacks most of a document, if it is small enough
    /// to save on the way. Otherwise, when they include every change that
    /// lives only in the snapshot, the snapshot itself goes (a document
    /// chunk, smaller than its changes), followed by the newer changes;
    /// otherwise each change goes on its own, taken out of the snapshot
    /// first if needed.
    fn encode_changes(
        &mut self,
        hashes: &[ChangeHash],
        supports_v2: bool,
    ) -> (MessageVersion, Vec<Vec<u8>>) {
        if hashes.is_empty() {
            return (MessageVersion::V1, Vec::new());
        }
        let version = if supports_v2 {
            MessageVersion::V2
        } else {
            MessageVersion::V1
        };
        // A snapshot that holds every change is itself that saved document.
        if supports_v2
            && hashes.len() > 1
            && hashes.len() == self.graph.len()
            && self.graph.with_bytes() > 0
            && let Some(saved) = self.packed(hashes)
        {
            return (version, vec![saved.to_vec()]);
        }
        let in_snapshot = self.graph.count_without_bytes(hashes);
        if let Some(snapshot) = &self.snapshot
            && in_snapshot > 0
            && in_snapshot == self.graph.len() - self.graph.with_bytes()
        {
            let mut entry = snapshot.to_vec();
            for bytes in self.graph.bytes_of(hashes) {
                entry.extend_from_slice(&bytes);
            }
            return (version, vec![entry]);
        }
        let changes = if in_snapshot > 0 {
            self.bytes_out_of_snapshot(hashes)
        } else {
            self.graph.bytes_of(hashes)
        };
        if supports_v2 {
            (version, vec![changes.concat()])
        } else {
            (version, changes.iter().map(|c| c.to_vec()).collect())
        }
    }

    /// The whole document saved, from its snapshot and the bytes of its
    /// other changes (`hashes` are all of its changes); kept until the
    /// heads move, and offered to storage as a snapshot
    /// ([`RelayDoc::take_new_snapshot`]). `None` when it is too large to
    /// build on the way (compaction makes a snapshot of those) or does not
    /// load.
    fn packed(&mut self, hashes: &[ChangeHash]) -> Option<Arc<[u8]>> {
        let heads = self.graph.heads();
        if let Some(saved) = self.packed_at(&heads) {
            return Some(Arc::clone(saved));
        }
        let changes = self.graph.bytes_of(hashes);
        let saved = pack(self.snapshot.as_deref(), &changes)?;
        self.keep_packed(heads, hashes.to_vec(), Arc::clone(&saved));
        Some(saved)
    }

    /// The saved document kept for `heads`, if any.
    pub(super) fn packed_at(&self, heads: &[ChangeHash]) -> Option<&Arc<[u8]>> {
        self.packed
            .as_ref()
            .filter(|(at, _)| at == heads)
            .map(|(_, saved)| saved)
    }

    pub(super) fn keep_packed(
        &mut self,
        heads: Vec<ChangeHash>,
        hashes: Vec<ChangeHash>,
        saved: Arc<[u8]>,
    ) {
        // The saved document holds every change: it becomes the snapshot,
        // and their bytes leave memory, as they do once storage compacts.
        self.graph.drop_bytes(&hashes);
        self.snapshot = Some(Arc::clone(&saved));
        self.packed = Some((heads, Arc::clone(&saved)));
        self.new_snapshot = Some(NewSnapshot { saved, hashes });
    }

    /// The bytes of the changes `hashes`, in topological order, those
    /// that have none of their own taken out of the snapshot. Costs a load
    /// of the snapshot, for a peer that lacks part of it only (one that
    /// comes back after a long time offline); the bytes taken out are not
    /// kept. If the snapshot no longer loads (storage checked it when it
    /// wrote it), what has bytes goes.
    fn bytes_out_of_snapshot(&self, hashes: &[ChangeHash]) -> Vec<Arc<[u8]>> {
        let doc = self
            .snapshot
            .as_ref()
            .and_then(|snapshot| automerge::Automerge::load(snapshot).ok());
        self.graph
            .in_order(hashes)
            .into_iter()
            .filter_map(|(hash, bytes)| {
                bytes.or_else(|| {
                    let change = doc.as_ref()?.get_change_by_hash(&hash)?;
                    Some(Arc::from(change.raw_bytes()))
                })
            })
            .collect()
    }

    pub(super) fn send_sync(
        &mut self,
        conn: ConnId,
        message: sync::Message,
        hashes: Vec<ChangeHash>,
    ) {
        let Some(peer) = self.peers.get_mut(&conn) else {
            return;
        };
        peer.sent_hashes.extend(hashes);
        peer.in_flight = true;
        let message = Message::Sync(DocMessage {
            sender_id: self.local.clone(),
            target_id: peer.remote.clone(),
            document_id: self.id,
            data: message.encode(),
        });
        self.effects.push_back(RelayEffect::Send { conn, message });
    }

    /// Hashes among `their_heads` we cannot place: unknown ones, and the
    /// missing dependencies of queued ones, except those `refused` from
    /// this peer.
    fn missing(
        &self,
        their_heads: &[ChangeHash],
        refused: &BTreeSet<ChangeHash>,
    ) -> Vec<ChangeHash> {
        let mut need = BTreeSet::new();
        let mut stack: Vec<ChangeHash> = their_heads.to_vec();
        let mut seen = BTreeSet::new();
        while let Some(hash) = stack.pop() {
            if self.graph.contains(&hash) || refused.contains(&hash) || !seen.insert(hash) {
                continue;
            }
            match self.queue.iter().find(|c| c.hash == hash) {
                Some(queued) => stack.extend(queued.deps.iter().copied()),
                None => {
                    need.insert(hash);
                }
            }
        }
        need.into_iter().collect()
    }

    /// automerge's `get_hashes_to_send`: what a peer lacks given its bloom
    /// filters and explicit needs. Unlike automerge, it looks only at the
    /// changes that are not ancestors of `held` either (the peer's heads and
    /// the heads it was covered up to: their history it holds or was sent),
    /// so that the walk covers what is new to the peer since the last
    /// answer, not everything it has not confirmed.
    fn hashes_to_send(
        &self,
        have: &[Have],
        need: &[ChangeHash],
        held: [&[ChangeHash]; 2],
    ) -> Vec<ChangeHash> {
        let need: Vec<ChangeHash> = need
            .iter()
            .filter(|h| self.graph.contains(h))
            .copied()
            .collect();
        if have.is_empty() {
            return need;
        }
        let base: Vec<ChangeHash> = have
            .iter()
            .flat_map(|h| h.last_sync.iter().copied())
            .chain(held.into_iter().flatten().copied())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let candidates = self.graph.not_ancestors_of(&base);
        let mut to_send: HashSet<ChangeHash> = HashSet::default();
        // Candidates come in dependency order, so one pass also picks up
        // every change that depends on one being sent.
        for hash in &candidates {
            let missing_from_blooms = have.iter().all(|h| !h.bloom.contains_hash(hash));
            let depends_on_sent = self
                .graph
                .deps_of(hash)
                .is_some_and(|mut deps| deps.any(|d| to_send.contains(&d)));
            if missing_from_blooms || depends_on_sent {
                to_send.insert(*hash);
            }
        }
        let mut result: Vec<ChangeHash> =
            need.into_iter().filter(|h| !to_send.contains(h)).collect();
        result.extend(candidates.into_iter().filter(|h| to_send.contains(h)));
        result
    }
}

/// The document saved from its snapshot, if any, and its other changes (in
/// dependency order), or `None` when they are too many bytes to save on the
/// way or do not load.
pub(super) fn pack(snapshot: Option<&[u8]>, changes: &[Arc<[u8]>]) -> Option<Arc<[u8]>> {
    let bytes = snapshot.map_or(0, <[u8]>::len) + changes.iter().map(|c| c.len()).sum::<usize>();
    if bytes > MAX_PACKED_CHANGE_BYTES {
        return None;
    }
    let doc = crate::sync::load_document(snapshot, changes.iter().map(|c| &**c)).ok()?;
    Some(Arc::from(doc.save()))
}

/// The message automerge sends when the peer's `last_sync` names changes we
/// do not have: start over from nothing.
fn reset_message(heads: Vec<ChangeHash>) -> sync::Message {
    sync::Message {
        heads,
        need: Vec::new(),
        have: vec![Have::default()],
        changes: sync::ChunkList::empty(),
        flags: Some(our_flags()),
        version: MessageVersion::V1,
    }
}

/// The flags of every sync message the relay sends: it takes a reset.
pub(super) fn our_flags() -> MessageFlags {
    let mut flags = MessageFlags::new();
    flags.set(MessageFlags::SUPPORTS_SYNC_RESET);
    flags
}
