//! What happens to a sync message: access, the document's limits, decoding
//! (large messages off the async workers), the document's answer, new
//! changes forwarded at once and stored durably before the relay names them
//! among its heads or acknowledges them, and compaction once enough are new.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use automerge::ActorId;
use rapport_model::record::commenting::ThreadRules;
use rapport_protocol::ids::{DocumentId, PeerId, PublicKey};
use rapport_protocol::relay::{
    ChunkLimits, ConnId, DecodedSync, Prepared, RelayDoc, RelayEffect, StoredChange, StoredDocument,
};
use rapport_protocol::sync::SyncError;
use rapport_protocol::wire::{DocMessage, RejectReason};
use tracing::{Instrument, debug, info, warn};

use super::{DocSlot, Relay, Slot, Verdict, lock};
use crate::access::{Access, Identity};
use crate::actors::ActorRegistry;
use crate::metrics::Metrics;
use crate::storage::{Store, StoreError};

/// Most sync messages of one document committed before its peers are
/// answered, while more keep arriving.
const MAX_UNANSWERED: usize = 32;

/// A decoded sync message and what is known of its sender.
struct Incoming<'a> {
    id: DocumentId,
    conn: ConnId,
    remote: &'a PeerId,
    identity: Identity,
    access: Access,
    decoded: DecodedSync,
    is_request: bool,
    started: Instant,
}

/// Sync messages up to this size are decoded where they arrive; larger
/// ones on a blocking thread ([`Relay::decode`]).
const DECODE_INLINE_BYTES: usize = 16 * 1024;

impl Relay {
    /// Handles `sync` and `request` for one document, in the document's
    /// tracing span.
    pub(crate) async fn handle_sync(
        &self,
        conn: ConnId,
        remote: &PeerId,
        identity: Identity,
        message: DocMessage,
        is_request: bool,
        open_docs: &mut BTreeSet<DocumentId>,
    ) -> Verdict {
        let span = tracing::debug_span!("doc", id = %message.document_id);
        self.handle_sync_in_span(conn, remote, identity, message, is_request, open_docs)
            .instrument(span)
            .await
    }

    async fn handle_sync_in_span(
        &self,
        conn: ConnId,
        remote: &PeerId,
        identity: Identity,
        mut message: DocMessage,
        is_request: bool,
        open_docs: &mut BTreeSet<DocumentId>,
    ) -> Verdict {
        let started = Instant::now();
        let id = message.document_id;
        let access = self.document_access(&identity, id);
        if access == Access::None {
            return self
                .answer_as_missing(conn, remote, &mut message, is_request)
                .await;
        }
        if let Err(error) = self.may_open(open_docs, id) {
            return Verdict::ProtocolError(error);
        }
        let decoded = match self.decode(&mut message).await {
            Ok(decoded) => decoded,
            Err(reason) => {
                return Verdict::ProtocolError(format!(
                    "malformed sync message for {id}: {reason}"
                ));
            }
        };
        let shared_slot = self.slot(id);
        let mut slot = shared_slot.lock_queued().await;
        // Another key may have claimed the document while this message
        // waited for it.
        if self.document_access(&identity, id) == Access::None {
            self.answer_if_last(&shared_slot, &mut slot);
            drop(slot);
            self.answer_decoded_as_missing(conn, remote, id, decoded, is_request);
            return Verdict::Continue;
        }
        let verdict = self
            .sync_locked(
                Incoming {
                    id,
                    conn,
                    remote,
                    identity,
                    access,
                    decoded,
                    is_request,
                    started,
                },
                open_docs,
                &shared_slot,
                &mut slot,
            )
            .await;
        self.answer_if_last(&shared_slot, &mut slot);
        verdict
    }

    /// The rest of a sync message, with its document's slot held.
    async fn sync_locked(
        &self,
        incoming: Incoming<'_>,
        open_docs: &mut BTreeSet<DocumentId>,
        shared_slot: &Arc<Slot>,
        slot: &mut DocSlot,
    ) -> Verdict {
        let Incoming {
            id,
            conn,
            remote,
            identity,
            access,
            decoded,
            is_request,
            started,
        } = incoming;
        if let Err(e) = self.load(slot, id).await {
            warn!(document = %id, error = %e, "cannot load a document");
            return Verdict::ProtocolError(format!(
                "the relay cannot load document {id} right now"
            ));
        }
        slot.idle_since = None;
        let Some(doc) = slot.doc.as_mut() else {
            return Verdict::ProtocolError(format!(
                "the relay cannot load document {id} right now"
            ));
        };
        if !doc.has_peer(conn) {
            doc.add_peer(conn, remote.clone());
            open_docs.insert(id);
        }
        // A key holds a bounded number of documents outside workspaces.
        let over_quota = match identity {
            Identity::Key(key) => {
                let workspaces = lock(&self.workspaces);
                workspaces.is_unclaimed(id)
                    && workspaces.unlisted_of(&key) >= self.config.limits.max_unlisted_per_key
            }
            Identity::Anonymous => false,
        };
        // A workspace past its storage quota takes no more changes.
        let workspace_full = decoded.has_changes() && self.workspace_full(id);
        // A client's changes to a comment thread are checked op by op.
        let thread_rules = match access {
            Access::Comment if decoded.has_changes() => match self.thread_rules(id).await {
                Ok(rules) => rules,
                Err(e) => {
                    warn!(document = %id, error = %e, "cannot read a thread's comment lists");
                    return Verdict::ProtocolError(format!(
                        "the relay cannot load document {id} right now"
                    ));
                }
            },
            _ => None,
        };
        let named_writers = self.names_its_writers(id);
        let prepared = {
            let mut actors = lock(&self.actors);
            doc.receive_decoded(conn, decoded, is_request, |change| {
                match (identity, access) {
                    _ if over_quota => Err(RejectReason::QuotaExceeded),
                    _ if workspace_full => Err(RejectReason::WorkspaceFull),
                    (_, Access::Read | Access::None) => Err(RejectReason::ReadOnly),
                    (Identity::Key(_), _)
                        if named_writers && PublicKey::of_actor(&change.actor).is_none() =>
                    {
                        Err(RejectReason::CommentsOnly)
                    }
                    (Identity::Anonymous, _) => Ok(()),
                    (Identity::Key(key), Access::Comment) => {
                        actors.check(&change.actor, key)?;
                        let rules = thread_rules.as_ref().ok_or(RejectReason::CommentsOnly)?;
                        check_comment(change, key, rules, &actors)
                    }
                    (Identity::Key(key), Access::Write) => actors.check(&change.actor, key),
                }
            })
        };
        let prepared = match prepared {
            Ok(prepared) => prepared,
            Err(SyncError::BadSyncMessage { reason, .. }) => {
                return Verdict::ProtocolError(format!(
                    "malformed sync message for {id}: {reason}"
                ));
            }
            Err(other) => return Verdict::ProtocolError(other.to_string()),
        };
        // Forwarding before the commit takes the fsync out of a lone
        // keystroke's way. In a burst, the peers' answer after the last
        // message of it forwards every change at once, which costs far less
        // than a message to every peer for each change.
        let early = !shared_slot.has_waiting() && slot.unanswered == 0;
        let stored = self.store_and_commit(doc, prepared, identity, early).await;
        self.metrics.observe_sync_latency(started.elapsed());
        // A compaction loads and saves the whole document: on a long
        // history it waits for a quarter of it to be new, so that its cost
        // per stored change stays flat as the history grows.
        let due = self.config.compact_after_changes.max(doc.len() / 4);
        slot.since_compaction += stored;
        if slot.since_compaction >= due {
            self.compact_in_background(id, shared_slot, &slot.compacting);
            slot.since_compaction = 0;
        }
        self.keep_new_snapshot(id, slot);
        Verdict::Continue
    }

    /// Answers the document's peers once for every message committed since
    /// the last answer, unless another sync message for the document is
    /// waiting for the slot: then the last of them answers for all. A long
    /// burst is answered at least every [`MAX_UNANSWERED`] messages.
    fn answer_if_last(&self, shared_slot: &Slot, slot: &mut DocSlot) {
        let Some(doc) = slot.doc.as_mut() else {
            return;
        };
        if !doc.answers_due() {
            slot.unanswered = 0;
            return;
        }
        slot.unanswered += 1;
        if shared_slot.has_waiting() && slot.unanswered < MAX_UNANSWERED {
            return;
        }
        slot.unanswered = 0;
        doc.answer();
        self.flush(doc);
    }

    /// What a client may change in a thread, from the thread as the relay
    /// holds it; `None` if `id` is not a thread (a client's access is then
    /// never [`Access::Comment`]).
    async fn thread_rules(&self, id: DocumentId) -> Result<Option<ThreadRules>, StoreError> {
        let Some(record) = lock(&self.workspaces).thread_of(id) else {
            return Ok(None);
        };
        let store = self.store.clone();
        let doc = tokio::task::spawn_blocking(move || store.load_automerge(id))
            .await
            .map_err(|_| StoreError::Corrupt {
                path: self.store.path().to_owned(),
                table: "changes",
            })??;
        Ok(Some(ThreadRules::of(&doc, &record)))
    }

    /// How large an incoming change or document chunk may inflate.
    pub(crate) fn chunk_limits(&self) -> ChunkLimits {
        ChunkLimits {
            max_change_bytes: self.config.limits.max_change_bytes,
            max_document_bytes: self.config.limits.max_frame_bytes,
        }
    }

    /// Decodes a sync message's data: a large one (inflating and parsing
    /// its changes is the costly part) on a blocking thread, at most as
    /// many at once as there are cores, so that the async workers keep
    /// serving everyone else.
    pub(super) async fn decode(&self, message: &mut DocMessage) -> Result<DecodedSync, String> {
        let limits = self.chunk_limits();
        if message.data.len() <= DECODE_INLINE_BYTES {
            return DecodedSync::decode(&message.data, &limits);
        }
        let _permit = self
            .decodes
            .acquire()
            .await
            .map_err(|_| "the relay is stopping".to_owned())?;
        let data = std::mem::take(&mut message.data);
        tokio::task::spawn_blocking(move || DecodedSync::decode(&data, &limits))
            .await
            .map_err(|_| "decoding failed".to_owned())?
    }

    /// Forwards the new changes to the other peers if `early`, makes them
    /// durable, then lets the document answer with them among its heads;
    /// if storing fails the sender is told, and nothing is acknowledged.
    async fn store_and_commit(
        &self,
        doc: &mut RelayDoc,
        prepared: Prepared,
        identity: Identity,
        early: bool,
    ) -> usize {
        let id = doc.id();
        if !prepared.refused.is_empty() {
            self.audit_refused(id, identity, &prepared.refused);
            Metrics::add(&self.metrics.refused_changes, prepared.refused.len() as u64);
            info!(document = %id, identity = %identity, count = prepared.refused.len(),
                reason = prepared.refused[0].1.code(), "refused changes");
        }
        if prepared.to_store.is_empty() {
            doc.commit_deferred(prepared);
            self.flush(doc);
            return 0;
        }
        // The other peers get the changes now, under the heads the relay
        // held before: none of them is named among its heads, or
        // acknowledged to the sender, until the commit below is durable.
        if early {
            doc.forward_early(&prepared);
            self.flush(doc);
        }
        let count = prepared.to_store.len();
        let bindings =
            lock(&self.actors).unstored(prepared.to_store.iter().map(|c| c.actor.as_slice()));
        // The automations look at documents of workspaces that have rules;
        // in a cluster, at their rules here, and at the rest through the
        // cluster's work queue.
        let (watched, claim) = {
            let workspaces = lock(&self.workspaces);
            let claim = match identity {
                Identity::Key(key) if workspaces.is_unclaimed(id) => Some(key),
                _ => None,
            };
            let watched = match self.cluster.get() {
                None => self.automations.watches(&workspaces, id),
                Some(_) => workspaces.is_rules_document(id),
            };
            (watched, claim)
        };
        // In a cluster the stream is the durable point: nothing is
        // acknowledged or forwarded before it holds the changes.
        if let Some(cluster) = self.cluster.get()
            && let Err(e) = cluster
                .publish(
                    id,
                    &prepared.to_store,
                    prepared.whole.as_deref(),
                    identity.key(),
                )
                .await
        {
            warn!(document = %id, error = %e, "the cluster did not take the changes; refusing them");
            self.refuse_unstored(doc, prepared);
            self.flush(doc);
            return 0;
        }
        self.count_in_cluster(id, true);
        let write = Store::appending(
            id,
            prepared.to_store.clone(),
            prepared.whole.clone(),
            bindings.clone(),
            watched.then(|| doc.heads()),
            claim,
        );
        let written = self.writer.write(write).await;
        match written {
            Ok(()) => {
                self.store.note_changed([id]);
                self.note_written(
                    id,
                    stored_bytes(&prepared.to_store, prepared.whole.as_deref()),
                );
                if watched {
                    self.automations.wake();
                }
                if let Some(key) = claim {
                    lock(&self.workspaces).note_claim(id, key);
                    self.drop_other_keys(doc, key);
                }
                lock(&self.actors).mark_stored(&bindings);
                Metrics::add(&self.metrics.changes_stored, count as u64);
                doc.commit_deferred(prepared);
                self.flush(doc);
                return count;
            }
            Err(e) => {
                warn!(document = %id, error = %e, "storing changes failed; refusing them");
                self.refuse_unstored(doc, prepared);
            }
        }
        self.flush(doc);
        0
    }

    /// Takes every connection of another key off `doc`, which `key` has
    /// just claimed: they asked for it before anybody had written it.
    pub(super) fn drop_other_keys(&self, doc: &mut RelayDoc, key: PublicKey) {
        let others: Vec<ConnId> = {
            let conns = lock(&self.conns);
            doc.peers()
                .map(|(conn, _)| conn)
                .filter(|conn| {
                    conns
                        .get(conn)
                        .is_some_and(|handle| handle.identity != Identity::Key(key))
                })
                .collect()
        };
        for conn in others {
            doc.remove_peer(conn);
        }
    }

    fn refuse_unstored(&self, doc: &mut RelayDoc, prepared: Prepared) {
        Metrics::add(&self.metrics.storage_errors, 1);
        Metrics::add(
            &self.metrics.refused_changes,
            prepared.to_store.len() as u64,
        );
        doc.abort(prepared, RejectReason::StorageUnavailable);
    }

    /// Carries out a document's effects, and arms the owed-heads timer if a
    /// peer waits for it ([`RelayDoc::owes_heads`]), whichever path made
    /// the answers.
    pub(super) fn flush(&self, doc: &mut RelayDoc) {
        while let Some(RelayEffect::Send { conn, message }) = doc.poll_effect() {
            self.send(conn, &message);
        }
        if doc.owes_heads() {
            self.note_heads_owed(doc.id());
        }
    }

    /// Loads the slot's document from storage, unless it is loaded.
    pub(super) async fn load(&self, slot: &mut DocSlot, id: DocumentId) -> Result<(), StoreError> {
        if slot.doc.is_none() {
            // A document the relay never held (a new one, or one a peer asks
            // for that nobody has) needs no trip to the storage thread.
            let changes = if self.store.may_hold(id) {
                let store = self.store.clone();
                tokio::task::spawn_blocking(move || store.load_document(id))
                    .await
                    .map_err(|_| StoreError::Corrupt {
                        path: self.store.path().to_owned(),
                        table: "changes",
                    })??
            } else {
                StoredDocument::default()
            };
            let (doc, orphans) = RelayDoc::from_stored(id, self.peer_id.clone(), changes);
            if orphans > 0 {
                warn!(document = %id, orphans, "stored changes whose dependencies are missing");
            }
            debug!(document = %id, changes = doc.len(), "document loaded");
            Metrics::add(&self.metrics.documents_loaded, 1);
            slot.doc = Some(doc);
        }
        Ok(())
    }
}

/// What storing `changes` adds to their document: the saved document they
/// all came in when it is kept whole, their bytes otherwise.
pub(super) fn stored_bytes(changes: &[StoredChange], whole: Option<&[u8]>) -> u64 {
    match whole {
        Some(saved) => saved.len() as u64,
        None => changes.iter().map(|c| c.bytes.len() as u64).sum(),
    }
}

/// Whether a client's change to a thread is only what a client may do
/// there ([`ThreadRules`]).
fn check_comment(
    change: &StoredChange,
    key: PublicKey,
    rules: &ThreadRules,
    actors: &ActorRegistry,
) -> Result<(), RejectReason> {
    let parsed =
        automerge::Change::try_from(&change.bytes[..]).map_err(|_| RejectReason::InvalidChange)?;
    let own = |actor: &ActorId| actors.key_of(actor.to_bytes()) == Some(key);
    // Expanding a verified change does not panic; should a future version
    // of automerge differ, one refused change is the worst outcome.
    let verdict = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rules.check(&parsed, &key, own)
    }))
    .map_err(|_| RejectReason::InvalidChange)?;
    verdict.map_err(|refusal| {
        debug!(identity = %key, %refusal, "a change goes past what a client may do in a thread");
        RejectReason::CommentsOnly
    })
}
