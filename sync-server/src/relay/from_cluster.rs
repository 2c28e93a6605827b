//! Changes that cross the cluster (docs/cluster.md, section 2): the
//! relay's own changes published to the other relays, and the changes
//! other relays accepted, stored here and handed to the document's peers.

use rapport_protocol::ids::DocumentId;
use rapport_protocol::relay::StoredChange;
use tracing::warn;

use super::sync::stored_bytes;
use super::{Relay, lock};
use crate::storage::{Store, StoreError};

impl Relay {
    /// Hands changes the relay made itself, already stored, to the
    /// document if it is in memory, which offers them to its peers, and
    /// to the cluster's other relays.
    pub(crate) async fn add_local_changes(&self, id: DocumentId, changes: &[StoredChange]) {
        if let Some(cluster) = self.cluster.get() {
            let author = self.relay_keys().ok().map(|keys| keys.public_key());
            if let Err(e) = cluster.publish(id, changes, None, author).await {
                warn!(document = %id, error = %e, "the cluster did not take the relay's own changes; other relays miss them");
            }
        }
        let Some(slot) = lock(&self.docs).get(&id).cloned() else {
            return;
        };
        let mut slot = slot.lock().await;
        if let Some(doc) = slot.doc.as_mut() {
            doc.add_local(changes);
            self.flush(doc);
        }
    }

    /// Stores changes another relay of the cluster accepted, and hands
    /// them to the document if it is in memory, which forwards them to its
    /// peers. Changes the document holds already are passed over. Their
    /// author claims the document and binds their actors here as on the
    /// relay that accepted them.
    pub(crate) async fn take_from_cluster(
        &self,
        id: DocumentId,
        taken: crate::cluster::Taken,
    ) -> Result<(), StoreError> {
        // A document deleted or erased stays so.
        if lock(&self.workspaces).is_removed(id) {
            return Ok(());
        }
        let slot = self.slot(id);
        let mut slot = slot.lock().await;
        // Loaded to tell which changes this relay holds already: a
        // subject's snapshot repeats every change before it.
        self.load(&mut slot, id).await?;
        // A snapshot of what this relay holds (it followed the subject)
        // is passed over unread: only a relay that starts after the purge
        // needs it.
        if let (Some(covers), Some(doc)) = (&taken.covers, slot.doc.as_ref())
            && covers.iter().all(|head| doc.contains(head))
        {
            self.count_in_cluster(id, false);
            return Ok(());
        }
        let mut taken = taken;
        if !taken.split() {
            warn!(document = %id, "a saved document from the cluster that does not parse");
            return Ok(());
        }
        let crate::cluster::Taken {
            mut changes,
            whole,
            author,
            ..
        } = taken;
        let count = changes.len();
        if let Some(doc) = slot.doc.as_ref() {
            changes.retain(|c| !doc.contains(&c.hash));
        }
        self.count_in_cluster(id, false);
        if changes.is_empty() {
            return Ok(());
        }
        // A document that arrived whole is kept whole here too, if this
        // relay holds nothing of it yet.
        let empty = slot.doc.as_ref().is_none_or(|doc| doc.is_empty()) && !self.store.may_hold(id);
        let whole = whole.filter(|_| empty && changes.len() == count);
        let written = stored_bytes(&changes, whole.as_deref());
        // A workspace's rules, changed through another relay, are looked
        // at here too, so that this relay knows which workspaces have
        // rules; the events themselves come through the work queue.
        let rules = lock(&self.workspaces).is_rules_document(id);
        let pending = rules.then(|| slot.doc.as_ref().map(|doc| doc.heads()).unwrap_or_default());
        let (bindings, claim) = match author {
            Some(key) => {
                let mut actors = lock(&self.actors);
                for change in &changes {
                    if actors.check(&change.actor, key).is_err() {
                        warn!(document = %id, key = %key, "a change from the cluster by an actor bound to another key here");
                    }
                }
                let bindings = actors.unstored(changes.iter().map(|c| c.actor.as_slice()));
                let claim = lock(&self.workspaces).is_unclaimed(id).then_some(key);
                (bindings, claim)
            }
            None => (Vec::new(), None),
        };
        let write = Store::appending(id, changes.clone(), whole, bindings.clone(), pending, claim);
        self.writer.write(write).await?;
        self.store.note_changed([id]);
        self.note_written(id, written);
        if rules {
            if let Some(home) = lock(&self.workspaces).home_of(id) {
                self.automations.unsettle(home);
            }
            self.automations.wake();
        }
        lock(&self.actors).mark_stored(&bindings);
        if let Some(key) = claim {
            lock(&self.workspaces).note_claim(id, key);
        }
        if let Some(doc) = slot.doc.as_mut() {
            if let Some(key) = claim {
                self.drop_other_keys(doc, key);
            }
            doc.add_local(&changes);
            self.flush(doc);
        }
        Ok(())
    }
}
