//! The relay's side of access control: what a connection may see, making
//! access changes take effect on live connections, and the audit entries
//! for refused changes (a bounded number a minute per key).

use std::collections::BTreeSet;
use std::sync::Arc;

use rapport_protocol::ids::{DocumentId, PeerId, PublicKey};
use rapport_protocol::relay::{ConnId, DecodedSync, RelayDoc};
use rapport_protocol::wire::{DocMessage, Message, RejectReason};
use tracing::{debug, info, warn};

use super::{Relay, Slot, Verdict, lock, now};
use crate::access::{Access, Identity};
use crate::metrics::Metrics;
use crate::workspace::AUDITED_REFUSALS_PER_MINUTE;
use crate::workspace::AuditEvent;

impl Relay {
    /// The access policy: every read and write decision asks this.
    pub(crate) fn document_access(&self, identity: &Identity, document: DocumentId) -> Access {
        match identity {
            Identity::Anonymous => Access::Write,
            Identity::Key(key) => lock(&self.workspaces).access(key, document),
        }
    }

    /// The keys of everyone who wrote a change of `document`, as far as
    /// the relay holds it; `None` in the set stands for an actor bound to
    /// no key. Empty when the relay holds nothing of it. Blocking.
    pub(crate) fn authors(
        &self,
        document: DocumentId,
    ) -> Result<std::collections::BTreeSet<Option<PublicKey>>, crate::storage::StoreError> {
        if !self.store.may_hold(document) {
            return Ok(Default::default());
        }
        let actors = self.store.authors(document)?;
        let registry = lock(&self.actors);
        Ok(actors.iter().map(|actor| registry.key_of(actor)).collect())
    }

    /// Whether `document`, as far as the relay holds it, is a comment
    /// thread on `record` (or holds nothing yet). Blocking.
    pub(crate) fn is_thread_of(
        &self,
        document: DocumentId,
        record: DocumentId,
    ) -> Result<bool, crate::storage::StoreError> {
        if !self.store.may_hold(document) {
            return Ok(true);
        }
        let doc = self.store.load_automerge(document)?;
        if doc.get_heads().is_empty() {
            return Ok(true);
        }
        Ok(rapport_model::Thread::read(&doc).is_ok_and(|t| t.record == record.to_string()))
    }

    /// Whether every change to `document` must come from an actor that
    /// names a key (bound to the writer's, as every actor is): a comment
    /// thread's, whose comments show their author from that actor alone.
    /// Staff are held to it too.
    pub(super) fn names_its_writers(&self, document: DocumentId) -> bool {
        lock(&self.workspaces).thread_of(document).is_some()
    }

    /// Makes access changes take effect on live connections: connections of
    /// `narrowed` keys stop receiving documents they may no longer see (a
    /// key that belongs to no workspace any more is disconnected), and
    /// connections of `widened` keys learn of their new documents.
    pub(crate) fn enforce(self: &Arc<Self>, narrowed: &[PublicKey], widened: &[PublicKey]) {
        let affected: Vec<(ConnId, PublicKey)> = lock(&self.conns)
            .iter()
            .filter_map(|(conn, handle)| match handle.identity {
                Identity::Key(key) if narrowed.contains(&key) || widened.contains(&key) => {
                    Some((*conn, key))
                }
                _ => None,
            })
            .collect();
        for (conn, key) in &affected {
            if widened.contains(key) {
                self.announce_documents(*conn);
            }
            if narrowed.contains(key) && lock(&self.workspaces).is_shut_out(key) {
                info!(conn = conn.0, key = %key, "closing the connection of a removed member");
                if let Some(handle) = lock(&self.conns).get(conn) {
                    handle.kill.notify_one();
                }
            }
        }
        let narrowed: Vec<(ConnId, PublicKey)> = affected
            .into_iter()
            .filter(|(_, k)| narrowed.contains(k))
            .collect();
        if narrowed.is_empty() {
            return;
        }
        let relay = Arc::clone(self);
        tokio::spawn(async move {
            let slots: Vec<(DocumentId, Arc<Slot>)> = lock(&relay.docs)
                .iter()
                .map(|(id, slot)| (*id, Arc::clone(slot)))
                .collect();
            for (id, slot) in slots {
                let mut slot = slot.lock().await;
                let Some(doc) = slot.doc.as_mut() else {
                    continue;
                };
                for (conn, key) in &narrowed {
                    if doc.has_peer(*conn)
                        && relay.document_access(&Identity::Key(*key), id) == Access::None
                    {
                        doc.remove_peer(*conn);
                        debug!(conn = conn.0, document = %id, "access withdrawn");
                    }
                }
            }
        });
    }

    /// Records refused changes in the audit log of the document's
    /// workspace: at most [`AUDITED_REFUSALS_PER_MINUTE`] entries a minute
    /// per key, shared with the key's refused API calls, so that a member
    /// sending refused changes in a loop cannot make the relay write
    /// without bound (each entry is a durable write, under the lock of
    /// every workspace). The rest are counted, not written.
    pub(super) fn audit_refused(
        &self,
        id: DocumentId,
        identity: Identity,
        refused: &[(automerge::ChangeHash, RejectReason)],
    ) {
        let Identity::Key(key) = identity else {
            return;
        };
        let Some(reason) = refused.first().map(|(_, reason)| reason.code()) else {
            return;
        };
        let workspaces = lock(&self.workspaces);
        let Some(home) = workspaces.home_of(id).map(str::to_owned) else {
            return;
        };
        let admitted = lock(&self.audited_refusals).admit(
            key,
            AUDITED_REFUSALS_PER_MINUTE,
            std::time::Instant::now(),
        );
        if !admitted {
            Metrics::add(&self.metrics.unaudited_refusals, 1);
            return;
        }
        let event = AuditEvent {
            at: now().0,
            event: "change-refused".into(),
            by: Some(key),
            member: None,
            document: Some(id),
            detail: format!("{} change(s): {reason}", refused.len()),
        };
        if let Err(e) = workspaces.record(&self.store, &home, &[event]) {
            warn!(error = %e, "cannot write the audit log");
        }
    }

    /// Counts a document the peer may not see, named by a `sync` or
    /// `request`, toward the connection's limit of open documents, as one
    /// that does not exist counts (the peer opens it): otherwise the limit
    /// would tell which ids exist elsewhere. The error ends the connection,
    /// with the words the limit ends it with for any other document.
    pub(crate) fn open_out_of_sight(
        &self,
        identity: Identity,
        message: &Message,
        open_docs: &mut BTreeSet<DocumentId>,
    ) -> Result<(), String> {
        let (Message::Sync(m) | Message::Request(m)) = message else {
            return Ok(());
        };
        let id = m.document_id;
        if open_docs.contains(&id) || self.document_access(&identity, id) != Access::None {
            return Ok(());
        }
        self.may_open(open_docs, id)?;
        open_docs.insert(id);
        Ok(())
    }

    /// Whether a connection with `open_docs` open may open `id` as well:
    /// the error, if not, ends the connection.
    pub(super) fn may_open(
        &self,
        open_docs: &BTreeSet<DocumentId>,
        id: DocumentId,
    ) -> Result<(), String> {
        let limit = self.config.limits.max_documents_per_connection;
        if !open_docs.contains(&id) && open_docs.len() >= limit {
            return Err(format!(
                "too many documents open on one connection (the limit is {limit})"
            ));
        }
        Ok(())
    }

    /// Answers a document the peer may not see, after decoding the message
    /// as any other is decoded ([`Relay::decode`]: a large one off the
    /// async workers, a bounded number at once, a bomb refused before it
    /// is inflated in full). Malformed data ends the connection as it
    /// would for a document that does not exist. A `sync` from a peer that
    /// holds nothing of the document is answered as one for a document
    /// that does not exist: a sync message saying the relay holds nothing
    /// either, which ends the exchange.
    pub(super) async fn answer_as_missing(
        &self,
        conn: ConnId,
        remote: &PeerId,
        message: &mut DocMessage,
        is_request: bool,
    ) -> Verdict {
        let id = message.document_id;
        // Only a small message is looked into: one from a peer holding
        // nothing is a few bytes.
        let small = message.data.len() <= 4096;
        match self.decode(message).await {
            Ok(decoded) if !is_request && small && decoded.holds_nothing() => {
                self.answer_with_nothing(conn, remote, id, decoded, false);
                Verdict::Continue
            }
            Ok(decoded) => {
                self.answer_decoded_as_missing(conn, remote, id, decoded, is_request);
                Verdict::Continue
            }
            Err(reason) => {
                Verdict::ProtocolError(format!("malformed sync message for {id}: {reason}"))
            }
        }
    }

    /// Answers a decoded message for a document the peer may not see. A
    /// `request` is answered exactly as one for a document that does not
    /// exist: the same empty sync message, then `doc-unavailable`. A
    /// `sync` (a peer offering changes it holds) gets `doc-unavailable`
    /// alone: an empty sync message would ask for the changes, and the
    /// peer would offer them again, for ever.
    pub(super) fn answer_decoded_as_missing(
        &self,
        conn: ConnId,
        remote: &PeerId,
        id: DocumentId,
        decoded: DecodedSync,
        is_request: bool,
    ) {
        if is_request {
            self.answer_with_nothing(conn, remote, id, decoded, true);
        } else {
            self.send(conn, &self.unavailable(id, remote));
        }
    }

    /// Answers as a document holding nothing answers, and stores nothing.
    fn answer_with_nothing(
        &self,
        conn: ConnId,
        remote: &PeerId,
        id: DocumentId,
        decoded: DecodedSync,
        is_request: bool,
    ) {
        let mut nothing = RelayDoc::new(id, self.peer_id.clone());
        nothing.set_chunk_limits(self.chunk_limits());
        nothing.add_peer(conn, remote.clone());
        match nothing.receive_decoded(conn, decoded, is_request, |_| Err(RejectReason::ReadOnly)) {
            Ok(mut prepared) => {
                // Nothing is stored for a document the peer may not see.
                prepared.to_store.clear();
                prepared.refused.clear();
                nothing.commit(prepared);
                self.flush(&mut nothing);
            }
            Err(_) => self.send(conn, &self.unavailable(id, remote)),
        }
    }
}
