//! Workspaces shared by the relays of a cluster (docs/cluster.md, section
//! 4): every change a relay decides goes through [`Replicate`] before it is
//! stored here, so that a change another relay made first refuses it, and
//! what other relays decided comes in through the `take_*` methods, which
//! store it here without passing it on again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rapport_protocol::ids::{DocumentId, PublicKey};

use super::{AuditEvent, DocInfo, Tombstone, Workspace, WorkspaceError, Workspaces, encode};
use crate::storage::{Store, WorkspaceRows};

/// One change to a workspace, as it is about to be stored.
#[derive(Debug)]
pub(crate) struct Outbound<'a> {
    pub(crate) rows: &'a WorkspaceRows,
    /// Its audit events, encoded.
    pub(crate) events: &'a [Vec<u8>],
    /// Documents this change lists for the first time.
    pub(crate) new: &'a [DocumentId],
    /// Documents this change deletes or erases.
    pub(crate) tombstones: &'a BTreeMap<DocumentId, Tombstone>,
}

/// Where a workspace change goes before it is stored on this relay.
pub(crate) trait Replicate: Send + Sync + std::fmt::Debug {
    /// Passes `change` on to every relay; refuses it when another relay
    /// changed the same workspace, or listed the same document, first.
    fn replicate(&self, change: Outbound<'_>) -> Result<(), WorkspaceError>;

    /// Passes on audit events (encoded) that changed nothing, once stored
    /// here; best effort.
    fn record(&self, workspace: &str, events: &[Vec<u8>]);
}

impl Workspaces {
    /// Sends every change from now on through `to` before storing it.
    pub(crate) fn replicate_through(&mut self, to: Arc<dyn Replicate>) {
        self.replica = Some(to);
    }

    pub(super) fn replicate(&self, change: Outbound<'_>) -> Result<(), WorkspaceError> {
        match &self.replica {
            Some(to) => to.replicate(change),
            None => Ok(()),
        }
    }

    /// Runs `f` with no replication: for what another relay decided.
    pub(crate) fn unreplicated<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> R {
        let replica = self.replica.take();
        let out = f(self);
        self.replica = replica;
        out
    }

    /// Takes a workspace's own row (members, roles, shares, invites) as
    /// another relay decided it, with its audit events, keeping the
    /// documents this relay lists for it. Returns the keys whose place in
    /// the workspace changed, so that their sessions follow.
    pub(crate) fn take_remote(
        &mut self,
        store: &Store,
        mut workspace: Workspace,
        events: Vec<AuditEvent>,
    ) -> Result<Vec<PublicKey>, WorkspaceError> {
        let before = self.by_id.get(&workspace.id);
        let mut keys: BTreeSet<PublicKey> = workspace.members.keys().copied().collect();
        keys.extend(before.into_iter().flat_map(|w| w.members.keys().copied()));
        let changed: Vec<PublicKey> = keys
            .into_iter()
            .filter(|key| {
                before.and_then(|w| w.members.get(key)) != workspace.members.get(key)
                    || before.map(|w| w.removed.contains_key(key))
                        != Some(workspace.removed.contains_key(key))
            })
            .collect();
        workspace.documents = before.map(|w| w.documents.clone()).unwrap_or_default();
        let rows = WorkspaceRows {
            id: workspace.id.clone(),
            json: Some(super::to_json(&workspace)?),
            documents: Vec::new(),
        };
        store.save_workspace(&rows, &encode(&events))?;
        let id = workspace.id.clone();
        self.by_id.insert(id.clone(), workspace);
        let mut changed = changed;
        for (document, info, events) in self.early_listings.remove(&id).unwrap_or_default() {
            changed.extend(self.take_remote_listing(store, &id, document, Some(info), events)?);
        }
        Ok(changed)
    }

    /// Takes a document's listing in workspace `id` as another relay
    /// decided it (`None`: no longer listed). Returns the members who may
    /// see it, whose sessions follow.
    pub(crate) fn take_remote_listing(
        &mut self,
        store: &Store,
        id: &str,
        document: DocumentId,
        info: Option<DocInfo>,
        events: Vec<AuditEvent>,
    ) -> Result<Vec<PublicKey>, WorkspaceError> {
        let Some(workspace) = self.by_id.get_mut(id) else {
            let early = self.early_listings.entry(id.to_owned()).or_default();
            early.retain(|(listed, _, _)| *listed != document);
            if let Some(info) = info {
                early.push((document, info, events));
            }
            return Ok(Vec::new());
        };
        if workspace.documents.get(&document) == info.as_ref() {
            return Ok(Vec::new());
        }
        let rows = WorkspaceRows {
            id: id.to_owned(),
            json: None,
            documents: vec![(document, info.as_ref().map(super::to_json).transpose()?)],
        };
        store.save_workspace(&rows, &encode(&events))?;
        let members: Vec<PublicKey> = workspace.members.keys().copied().collect();
        match info {
            Some(info) => {
                workspace.documents.insert(document, info);
                self.index_document(id, document);
            }
            None => {
                workspace.documents.remove(&document);
                self.document_home.remove(&document);
            }
        }
        Ok(members)
    }
}
