//! The replica's side of a sync connection: attaching to a relay and
//! detaching, the messages a relay sends, dropping what it removed, and
//! whether a document has nothing left to exchange.

use std::collections::BTreeSet;

use automerge::ChangeHash;
use rapport_protocol::ids::{DocumentId, PeerId};
use rapport_protocol::wire::{DocMessage, DocUnavailable, Message, Rejected};
use tokio::sync::mpsc;
use tracing::warn;

use super::{Link, Received, RefusedChanges, Repo, lock, now};
use crate::error::ClientError;

impl Repo {
    /// A relay connected: start syncing every document with it, resuming
    /// from saved sync states.
    pub(crate) fn attach(
        &self,
        relay: &PeerId,
        relay_key: &str,
        us: &PeerId,
        tx: mpsc::UnboundedSender<Message>,
    ) -> Result<Vec<DocumentId>, ClientError> {
        let link = Link { tx, us: us.clone() };
        lock(&self.inner.links).insert(relay.clone(), link);
        let ids = self.document_ids()?;
        let mut docs = lock(&self.inner.docs);
        let mut opened = Vec::with_capacity(ids.len());
        for id in ids {
            let loaded = match self.loaded(&mut docs, id) {
                Ok(loaded) => loaded,
                Err(e) => {
                    warn!(document = %id, error = %e, "skipping a document that does not load");
                    continue;
                }
            };
            let saved = self.inner.store.sync_state(relay_key, id)?;
            loaded.sync.handle_peer_connected_as(
                relay.clone(),
                us.clone(),
                saved.as_deref(),
                now(),
            );
            self.drain(id, loaded)?;
            opened.push(id);
        }
        Ok(opened)
    }

    /// A relay went away: keep the sync states, forget the connection.
    pub(crate) fn detach(&self, relay: &PeerId, relay_key: &str) -> Result<(), ClientError> {
        lock(&self.inner.links).remove(relay);
        let mut docs = lock(&self.inner.docs);
        let mut states = Vec::new();
        for (id, loaded) in docs.iter_mut() {
            if let Some(state) = loaded.sync.encoded_sync_state(relay) {
                states.push((*id, state));
            }
            loaded.sync.handle_peer_disconnected(relay);
        }
        self.inner.store.save_sync_states(relay_key, &states)
    }

    /// Handles a message from a relay.
    pub(crate) fn receive(&self, message: Message) -> Result<Received, ClientError> {
        match message {
            Message::Sync(m) | Message::Request(m) => self.receive_sync(&m).map(Received::Document),
            Message::DocUnavailable(m) => self.receive_unavailable(&m).map(Received::Document),
            Message::Rejected(r) => {
                self.receive_rejected(&r)?;
                Ok(if r.reason.is_transient() {
                    Received::Unstored(r.message)
                } else {
                    Received::Nothing
                })
            }
            Message::Documents(list) => {
                let known: BTreeSet<DocumentId> = self.document_ids()?.into_iter().collect();
                let new: Vec<DocumentId> = list
                    .documents
                    .into_iter()
                    .filter(|id| !known.contains(id))
                    .collect();
                for id in &new {
                    self.want(*id)?;
                }
                Ok(Received::NewDocuments {
                    new,
                    complete: !list.more,
                })
            }
            Message::Removed(list) => {
                self.forget(&list.documents)?;
                Ok(Received::Removed(list.documents))
            }
            _ => Ok(Received::Nothing),
        }
    }

    /// Handles messages from a relay in order (see [`Repo::receive`]).
    pub(crate) fn receive_all(&self, messages: Vec<Message>) -> Result<Vec<Received>, ClientError> {
        messages.into_iter().map(|m| self.receive(m)).collect()
    }

    /// Drops documents the relay removed, from memory and from redb; the
    /// file is compacted after, so that an erased record's bytes leave it.
    pub fn forget(&self, ids: &[DocumentId]) -> Result<(), ClientError> {
        {
            let mut docs = lock(&self.inner.docs);
            let mut refused = lock(&self.inner.refused);
            for id in ids {
                docs.remove(id);
                refused.remove(id);
            }
        }
        if self.inner.store.forget(ids)? > 0 {
            tracing::info!(count = ids.len(), "dropped documents the relay removed");
            if let Err(e) = self.inner.store.vacuum() {
                warn!(error = %e, "cannot compact the replica after dropping documents");
            }
        }
        Ok(())
    }

    fn receive_sync(&self, message: &DocMessage) -> Result<DocumentId, ClientError> {
        let id = message.document_id;
        let mut docs = lock(&self.inner.docs);
        let Ok(loaded) = self.loaded(&mut docs, id) else {
            // Not a document we have or asked for.
            return Ok(id);
        };
        if let Err(e) = loaded.sync.handle_sync(message, now()) {
            warn!(document = %id, error = %e, "a sync message from the relay did not apply");
        }
        self.drain(id, loaded)?;
        Ok(id)
    }

    fn receive_unavailable(&self, message: &DocUnavailable) -> Result<DocumentId, ClientError> {
        let id = message.document_id;
        let mut docs = lock(&self.inner.docs);
        if let Some(loaded) = docs.get_mut(&id) {
            loaded.sync.handle_unavailable(message);
            self.drain(id, loaded)?;
        }
        Ok(id)
    }

    fn receive_rejected(&self, rejected: &Rejected) -> Result<(), ClientError> {
        warn!(document = %rejected.document_id, reason = rejected.reason.code(), "{}", rejected.message);
        let notice = RefusedChanges {
            document: rejected.document_id.to_string(),
            changes: rejected.changes.iter().map(ToString::to_string).collect(),
            reason: rejected.reason.code().to_owned(),
            message: rejected.message.clone(),
            at: now().0,
        };
        if let Some(loaded) = lock(&self.inner.docs).get_mut(&rejected.document_id) {
            loaded.sync.handle_rejected(rejected);
        }
        // Changes refused for good count as settled; the others are
        // offered again and must still arrive.
        if !rejected.reason.is_transient() {
            lock(&self.inner.refused)
                .entry(rejected.document_id)
                .or_default()
                .extend(rejected.changes.iter().map(|&h| ChangeHash::from(h)));
        }
        let bytes = serde_json::to_vec(&notice).expect("a notice serializes");
        self.inner.store.record_rejected(&bytes)
    }

    /// Whether a document has nothing left to exchange with `relay`: the
    /// relay has what we have, or lacks only changes it refused.
    pub(crate) fn in_sync(&self, id: DocumentId, relay: &PeerId) -> bool {
        let docs = lock(&self.inner.docs);
        let Some(loaded) = docs.get(&id) else {
            return false;
        };
        if loaded.sync.is_in_sync_with(relay) {
            return true;
        }
        let refused = lock(&self.inner.refused);
        let Some(refused) = refused.get(&id) else {
            return false;
        };
        let Some(theirs) = loaded.sync.their_heads(relay) else {
            return false;
        };
        let doc = loaded.sync.doc();
        let theirs: Vec<ChangeHash> = theirs.into_iter().map(Into::into).collect();
        if theirs
            .iter()
            .any(|h| automerge::ReadDoc::get_change_by_hash(doc, h).is_none())
        {
            return false;
        }
        doc.get_changes(&theirs)
            .iter()
            .all(|change| refused.contains(&change.hash()))
    }

    /// Resends what waited too long for an answer.
    pub(crate) fn handle_timeouts(&self) -> Result<(), ClientError> {
        let mut docs = lock(&self.inner.docs);
        let now = now();
        for (id, loaded) in docs.iter_mut() {
            if loaded.sync.poll_timeout().is_some_and(|t| t <= now) {
                loaded.sync.handle_timeout(now);
                self.drain(*id, loaded)?;
            }
        }
        Ok(())
    }
}
