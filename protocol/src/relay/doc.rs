//! One document on the relay: its change graph and the sync state of every
//! connection that has it open.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use automerge::ChangeHash;
use automerge::sync::{self, MessageFlags};

use super::chunks::ChunkLimits;
use super::graph::{ChangeGraph, StoredChange};
use super::peer::{PeerSync, advance_heads};

mod answer;
mod forward;
mod receive;
use crate::ids::{DocumentId, PeerId};
use crate::wire::{DocUnavailable, Message, RejectReason, Rejected};
pub use receive::DecodedSync;

/// Changes held in memory while their dependencies have not arrived. They
/// are neither stored nor acknowledged; past this many the oldest go (the
/// sender still has them and sends them again once it learns what we lack).
pub const MAX_QUEUED_CHANGES: usize = 10_000;

/// The relay's own handle for one connection; peer ids are chosen by peers
/// and may repeat, connection ids are not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// Something for the relay's driver to do.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RelayEffect {
    /// Send `message` on connection `conn`.
    Send { conn: ConnId, message: Message },
}

/// A received sync message, checked and split, waiting for its new changes
/// to become durable. Hand it back to [`RelayDoc::commit`] once they are
/// stored, or to [`RelayDoc::abort`] if storing failed.
#[derive(Debug)]
#[must_use = "commit or abort a prepared message"]
pub struct Prepared {
    conn: ConnId,
    message: sync::Message,
    is_request: bool,
    had_changes: bool,
    /// New changes to store before anything is acknowledged or forwarded, in
    /// dependency order.
    pub to_store: Vec<StoredChange>,
    /// Changes refused by the policy (and changes that depend on them).
    pub refused: Vec<(ChangeHash, RejectReason)>,
    /// The saved document `to_store` came in, when they are the whole
    /// document: storage keeps it as the snapshot (with their hashes and
    /// dependencies) instead of a row for each change, and so does the
    /// document in memory.
    pub whole: Option<Arc<[u8]>>,
    queued: Vec<StoredChange>,
}

/// A document as storage holds it: a snapshot (a saved automerge document)
/// with the hashes and dependencies of the changes it contains, and the
/// changes stored since, each with its bytes.
#[derive(Debug, Default)]
pub struct StoredDocument {
    pub snapshot: Option<Arc<[u8]>>,
    /// The changes inside the snapshot: `(hash, dependencies)`, in
    /// dependency order.
    pub compacted: Vec<(ChangeHash, Vec<ChangeHash>)>,
    /// The changes stored after the snapshot, in dependency order.
    pub changes: Vec<StoredChange>,
}

/// The whole document, saved while answering a peer that had none of it:
/// storage can keep it as the document's snapshot (a compaction for free).
#[derive(Debug, Clone)]
pub struct NewSnapshot {
    /// The saved document.
    pub saved: Arc<[u8]>,
    /// Every change it contains.
    pub hashes: Vec<ChangeHash>,
}

/// Saving a document whole, away from its lock: taken with
/// [`RelayDoc::pack_job`], run anywhere with [`PackJob::run`], handed back
/// with [`RelayDoc::finish_pack`].
#[derive(Debug)]
pub struct PackJob {
    heads: Vec<ChangeHash>,
    hashes: Vec<ChangeHash>,
    snapshot: Option<Arc<[u8]>>,
    /// The changes with bytes of their own, in dependency order.
    changes: Vec<Arc<[u8]>>,
}

impl PackJob {
    /// Saves the document (the expensive part); `None` if it is too large
    /// or does not load.
    pub fn run(&self) -> Option<Arc<[u8]>> {
        answer::pack(self.snapshot.as_deref(), &self.changes)
    }
}

/// The sync engine of one document on the relay. See the module docs.
#[derive(Debug)]
pub struct RelayDoc {
    id: DocumentId,
    local: PeerId,
    graph: ChangeGraph,
    /// The saved document holding (at least) every change the graph has
    /// no bytes for.
    snapshot: Option<Arc<[u8]>>,
    /// The whole document saved at these heads, for peers that have none
    /// of it.
    packed: Option<(Vec<ChangeHash>, Arc<[u8]>)>,
    /// A saved document made while answering, not yet taken for storage.
    new_snapshot: Option<NewSnapshot>,
    queue: Vec<StoredChange>,
    peers: BTreeMap<ConnId, PeerSync>,
    effects: VecDeque<RelayEffect>,
    /// Connections owed an answer by [`RelayDoc::commit_deferred`].
    due: BTreeSet<ConnId>,
    /// How large an incoming chunk may grow once inflated.
    limits: ChunkLimits,
}

/// Most changes a document may have for [`RelayDoc::pack_job`]: past it,
/// compaction makes its snapshot (the bytes would pass the packing bound
/// anyway, and the walk is not worth making on the document's lock).
const MAX_PACKED_CHANGES: usize = 20_000;

/// How many refused hashes a document remembers for one connection; past
/// this it forgets them all, and a peer still holding one is simply asked
/// for it once more.
const MAX_REFUSED_REMEMBERED: usize = 100_000;

impl RelayDoc {
    /// A document the relay has no changes of yet.
    pub fn new(id: DocumentId, local: PeerId) -> Self {
        Self {
            id,
            local,
            graph: ChangeGraph::new(),
            snapshot: None,
            packed: None,
            new_snapshot: None,
            queue: Vec::new(),
            peers: BTreeMap::new(),
            effects: VecDeque::new(),
            due: BTreeSet::new(),
            limits: ChunkLimits::default(),
        }
    }

    /// Refuses incoming chunks that would inflate past `limits` (the
    /// default is [`ChunkLimits::default`]).
    pub fn set_chunk_limits(&mut self, limits: ChunkLimits) {
        self.limits = limits;
    }

    /// A document as storage holds it. Returns the document and how many
    /// changes could not be placed (a dependency missing), which should be
    /// zero.
    pub fn from_stored(id: DocumentId, local: PeerId, stored: StoredDocument) -> (Self, usize) {
        let mut doc = Self::new(id, local);
        let mut orphans = 0;
        for (hash, deps) in &stored.compacted {
            if !doc.graph.add_without_bytes(*hash, deps) && !doc.graph.contains(hash) {
                orphans += 1;
            }
        }
        doc.snapshot = stored.snapshot;
        for change in stored.changes {
            if !doc.graph.add(&change) && !doc.graph.contains(&change.hash) {
                orphans += 1;
            }
        }
        (doc, orphans)
    }

    /// The document's id.
    pub fn id(&self) -> DocumentId {
        self.id
    }

    /// How many changes the relay holds.
    pub fn len(&self) -> usize {
        self.graph.len()
    }

    /// True when the relay holds no change of the document.
    pub fn is_empty(&self) -> bool {
        self.graph.is_empty()
    }

    /// The current heads.
    pub fn heads(&self) -> Vec<ChangeHash> {
        self.graph.heads()
    }

    /// Whether the document holds the change `hash`.
    pub fn contains(&self, hash: &ChangeHash) -> bool {
        self.graph.contains(hash)
    }

    /// Nodes of the change graph visited so far by the sync answers: what
    /// they cost, independent of the machine (see [`ChangeGraph::nodes_walked`]).
    pub fn nodes_walked(&self) -> u64 {
        self.graph.nodes_walked()
    }

    /// How many connections have the document open.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Every connection with the document open, and the peer id it uses.
    pub fn peers(&self) -> impl Iterator<Item = (ConnId, &PeerId)> {
        self.peers.iter().map(|(conn, peer)| (*conn, &peer.remote))
    }

    /// Whether `conn` has the document open.
    pub fn has_peer(&self, conn: ConnId) -> bool {
        self.peers.contains_key(&conn)
    }

    /// Opens the document for a connection whose peer calls itself `remote`.
    /// Nothing is sent until the peer sends its first message.
    pub fn add_peer(&mut self, conn: ConnId, remote: PeerId) {
        self.peers
            .entry(conn)
            .or_insert_with(|| PeerSync::new(remote));
    }

    /// Closes the document for a connection.
    pub fn remove_peer(&mut self, conn: ConnId) {
        self.peers.remove(&conn);
        self.due.remove(&conn);
    }

    /// A whole document saved since the last call, for storage to keep as
    /// the snapshot.
    pub fn take_new_snapshot(&mut self) -> Option<NewSnapshot> {
        self.new_snapshot.take()
    }

    /// Takes `saved`, a snapshot storage now keeps, which holds the
    /// changes `folded` besides every change the document held only in its
    /// old snapshot: their bytes leave memory, and a peer that needs them
    /// gets them out of the snapshot. Ignored unless every one of `folded`
    /// is known (the document was loaded again from older rows, say).
    pub fn adopt_snapshot(&mut self, saved: Arc<[u8]>, folded: &[ChangeHash]) {
        if folded.iter().all(|h| self.graph.contains(h)) {
            self.graph.drop_bytes(folded);
            self.snapshot = Some(saved);
        }
    }

    /// How many bytes of changes the document holds in memory, besides
    /// its snapshot.
    pub fn change_bytes_in_memory(&self) -> usize {
        self.graph.bytes_held()
    }

    /// The work of saving the whole document ahead of a peer that will have
    /// none of it (and of a compaction), for a background task; `None` when
    /// there is nothing to gain: fewer than two changes, a snapshot that
    /// holds every change already, or a saved copy at these heads.
    pub fn pack_job(&self) -> Option<PackJob> {
        let heads = self.graph.heads();
        if self.graph.len() < 2
            || self.graph.len() > MAX_PACKED_CHANGES
            || (self.snapshot.is_some() && self.graph.with_bytes() == 0)
            || self.packed_at(&heads).is_some()
        {
            return None;
        }
        let hashes = self.graph.not_ancestors_of(&[]);
        let changes = self.graph.bytes_of(&hashes);
        Some(PackJob {
            heads,
            hashes,
            snapshot: self.snapshot.clone(),
            changes,
        })
    }

    /// Takes back a saved document made by [`PackJob::run`]: kept for peers
    /// that have nothing and offered to storage
    /// ([`RelayDoc::take_new_snapshot`]), unless the document changed
    /// meanwhile.
    pub fn finish_pack(&mut self, job: PackJob, saved: Arc<[u8]>) {
        if self.graph.heads() == job.heads {
            self.keep_packed(job.heads, job.hashes, saved);
        }
    }

    /// The next effect, or `None`.
    pub fn poll_effect(&mut self) -> Option<RelayEffect> {
        self.effects.pop_front()
    }

    /// Applies a prepared message whose `to_store` changes are now durable:
    /// updates the sender's sync state, answers it, and forwards the new
    /// changes to every other connection that has the document open.
    pub fn commit(&mut self, prepared: Prepared) {
        self.commit_deferred(prepared);
        self.answer();
    }

    /// [`RelayDoc::commit`] without the answers: the connections owed one
    /// are remembered, and [`RelayDoc::answer`] answers each of them once,
    /// however many messages were committed meanwhile. A caller with more
    /// messages queued for the document commits them all first, so that
    /// a backlog costs one answer a peer rather than one a message.
    pub fn commit_deferred(&mut self, prepared: Prepared) {
        let before = self.graph.heads();
        match &prepared.whole {
            Some(saved) => {
                for change in &prepared.to_store {
                    self.graph.add_without_bytes(change.hash, &change.deps);
                }
                self.snapshot = Some(Arc::clone(saved));
            }
            None => {
                for change in &prepared.to_store {
                    self.graph.add(change);
                }
                self.cover_forwarded(&before, &prepared.to_store);
            }
        }
        self.queue = prepared.queued;
        if self.queue.len() > MAX_QUEUED_CHANGES {
            let excess = self.queue.len() - MAX_QUEUED_CHANGES;
            self.queue.drain(..excess);
        }
        if let Some(peer) = self.peers.get_mut(&prepared.conn) {
            if peer.refused.len() + prepared.refused.len() > MAX_REFUSED_REMEMBERED {
                peer.refused.clear();
            }
            peer.refused
                .extend(prepared.refused.iter().map(|(hash, _)| *hash));
        }
        let stored_any = !prepared.to_store.is_empty();
        if stored_any && let Some(peer) = self.peers.get_mut(&prepared.conn) {
            // Its acknowledgement goes at once, and names every head.
            peer.heads_owed = false;
        }
        self.update_peer(
            prepared.conn,
            prepared.message,
            prepared.had_changes,
            &before,
        );
        self.send_rejected(prepared.conn, prepared.refused);
        if stored_any {
            self.due.extend(self.peers.keys().copied());
        } else {
            self.due.insert(prepared.conn);
        }
        if prepared.is_request && self.graph.is_empty() {
            // Answered at once, so that the answer comes before the news
            // that the document is unavailable, as it always has.
            self.due.remove(&prepared.conn);
            self.generate(prepared.conn, false);
            self.send_unavailable(prepared.conn);
        }
    }

    /// Answers every connection owed an answer since the last call.
    pub fn answer(&mut self) {
        for conn in std::mem::take(&mut self.due) {
            self.generate(conn, false);
        }
    }

    /// Tells every peer that got changes before they were stored
    /// ([`RelayDoc::forward_early`]) the heads the relay holds now, unless
    /// a later message told it already. A driver calls it a short while
    /// after [`RelayDoc::owes_heads`] turns true: a peer that keeps getting
    /// changes learns the heads with them, and one message pays for many.
    pub fn answer_owed(&mut self) {
        let owed: Vec<ConnId> = self
            .peers
            .iter()
            .filter(|(_, peer)| peer.heads_owed)
            .map(|(conn, _)| *conn)
            .collect();
        for conn in owed {
            self.generate(conn, true);
            if let Some(peer) = self.peers.get_mut(&conn) {
                peer.heads_owed = false;
            }
        }
    }

    /// Whether some peer still has to hear the heads of changes it got
    /// before they were stored ([`RelayDoc::answer_owed`]).
    pub fn owes_heads(&self) -> bool {
        self.peers.values().any(|peer| peer.heads_owed)
    }

    /// Whether some connection is owed an answer ([`RelayDoc::commit_deferred`]).
    pub fn answers_due(&self) -> bool {
        !self.due.is_empty()
    }

    /// Adds changes made on the relay itself, already stored, and offers
    /// them to every peer with the document open.
    pub fn add_local(&mut self, changes: &[StoredChange]) {
        let mut added = false;
        for change in changes {
            added |= self.graph.add(change);
        }
        if added {
            self.due.extend(self.peers.keys().copied());
            self.answer();
        }
    }

    /// Gives up on a prepared message because its changes could not be
    /// stored: nothing is applied, the sender is told which of its changes
    /// were refused and why, and peers they were forwarded to early
    /// ([`RelayDoc::forward_early`]) will be asked for them again.
    pub fn abort(&mut self, prepared: Prepared, reason: RejectReason) {
        self.forget_forwarded(&prepared.to_store);
        let mut refused = prepared.refused;
        refused.extend(prepared.to_store.iter().map(|c| (c.hash, reason.clone())));
        self.send_rejected(prepared.conn, refused);
    }

    /// automerge's `receive_sync_message`, minus applying the changes (the
    /// graph already has them).
    fn update_peer(
        &mut self,
        conn: ConnId,
        message: sync::Message,
        had_changes: bool,
        before: &[ChangeHash],
    ) {
        let after = self.graph.heads();
        let answer_owed = self.due.contains(&conn);
        let Some(peer) = self.peers.get_mut(&conn) else {
            return;
        };
        peer.in_flight = false;
        if let Some(flags) = message.flags {
            peer.supports_v2 = true;
            if flags.contains(MessageFlags::SYNC_RESET) {
                peer.forget_sent();
            }
            peer.read_only = flags.contains(MessageFlags::READ_ONLY);
        }
        if had_changes && after != before {
            peer.shared_heads = advance_heads(before, &after, &peer.shared_heads);
        }
        forget_confirmed(&self.graph, &after, peer, &message.heads);
        // automerge's shortcut: a peer that already has our heads needs no
        // message. Not while it is owed an answer, or was sent changes
        // under older heads: then it has our heads without knowing that we
        // hold them, and must hear so.
        if !had_changes && message.heads == before && !answer_owed && !peer.heads_owed {
            peer.last_sent_heads.clone_from(&message.heads);
        }
        let known: Vec<ChangeHash> = message
            .heads
            .iter()
            .filter(|h| self.graph.contains(h))
            .copied()
            .collect();
        if known.len() == message.heads.len() {
            peer.shared_heads.clone_from(&message.heads);
            if message.heads.is_empty() {
                peer.last_sent_heads.clear();
                peer.forget_sent();
            }
        } else {
            let mut shared: BTreeSet<ChangeHash> = peer.shared_heads.iter().copied().collect();
            shared.extend(known);
            peer.shared_heads = shared.into_iter().collect();
        }
        // A peer that syncs from nothing (or starts over) is looked at whole.
        if message.have.first().is_some_and(|h| h.last_sync.is_empty()) {
            peer.covered.clear();
        }
        peer.their_have = Some(message.have);
        peer.their_heads = Some(message.heads);
        peer.their_need = Some(message.need);
    }

    fn send_rejected(&mut self, conn: ConnId, refused: Vec<(ChangeHash, RejectReason)>) {
        let Some(peer) = self.peers.get(&conn) else {
            return;
        };
        let mut by_reason: BTreeMap<String, (RejectReason, Vec<crate::ids::ChangeHash>)> =
            BTreeMap::new();
        for (hash, reason) in refused {
            by_reason
                .entry(reason.code().to_owned())
                .or_insert_with(|| (reason, Vec::new()))
                .1
                .push(hash.into());
        }
        for (_, (reason, changes)) in by_reason {
            let message = Message::Rejected(Rejected {
                sender_id: self.local.clone(),
                target_id: peer.remote.clone(),
                document_id: self.id,
                message: describe(&reason, changes.len()),
                changes,
                reason,
            });
            self.effects.push_back(RelayEffect::Send { conn, message });
        }
    }

    fn send_unavailable(&mut self, conn: ConnId) {
        let Some(peer) = self.peers.get(&conn) else {
            return;
        };
        let message = Message::DocUnavailable(DocUnavailable {
            sender_id: self.local.clone(),
            target_id: peer.remote.clone(),
            document_id: self.id,
        });
        self.effects.push_back(RelayEffect::Send { conn, message });
    }
}

/// automerge's `filter_changes`: takes out of `peer.sent_hashes` what its
/// new `heads` show it holds. When the relay knows every one of the heads
/// the peer had before, the walk covers only what lies between the two,
/// whatever the peer still has not confirmed; otherwise it walks from the
/// new heads down to the oldest change sent. `ours` are the graph's heads.
fn forget_confirmed(
    graph: &ChangeGraph,
    ours: &[ChangeHash],
    peer: &mut PeerSync,
    heads: &[ChangeHash],
) {
    if peer.sent_hashes.is_empty() {
        return;
    }
    // A peer that holds every head holds every change the relay has sent
    // it: this also clears a change sent to a peer that held it already
    // (one both had before the relay lost it in a crash, say), which no
    // walk between its heads would find.
    if heads == ours {
        peer.sent_hashes.retain(|h| !graph.contains(h));
        return;
    }
    match &peer.their_heads {
        Some(before) if !before.is_empty() && before.iter().all(|h| graph.contains(h)) => {
            for hash in graph.between(heads, before) {
                peer.sent_hashes.remove(&hash);
            }
        }
        _ => graph.remove_ancestors(&mut peer.sent_hashes, heads),
    }
}

fn describe(reason: &RejectReason, count: usize) -> String {
    let what = if count == 1 {
        "1 change was"
    } else {
        "changes were"
    };
    let why = match reason {
        RejectReason::ActorOfAnotherKey => "its actor id belongs to another person's key",
        RejectReason::ReadOnly => "you may read this document but not change it",
        RejectReason::CommentsOnly => {
            "on a comment thread you may add comments and change only your own"
        }
        RejectReason::StorageUnavailable => {
            "the relay cannot store changes right now; they stay on your device and sync later"
        }
        RejectReason::InvalidChange => "it depends on a refused change",
        RejectReason::QuotaExceeded => {
            "you hold as many documents outside any workspace as the relay allows; put some in a workspace first"
        }
        RejectReason::WorkspaceFull => {
            "the workspace holds as much as this relay allows (its storage quota); your changes stay on this device until its operator raises the quota"
        }
        RejectReason::Unrecognized(_) => "the relay refused it",
    };
    format!("{what} refused: {why}")
}
