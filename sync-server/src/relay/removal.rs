//! Deleting and erasing documents on a live relay: each document's slot is
//! held while its rows leave storage (so no write of it is in flight), the
//! workspace forgets it, peers that have it open are told it is gone, and
//! every connection of the workspace's members gets `rapport/removed` so
//! that their replicas drop their copies.

use std::collections::{BTreeMap, BTreeSet};

use rapport_protocol::ids::{DocumentId, PublicKey};
use rapport_protocol::wire::{Documents, Message};
use tracing::{info, warn};

use super::{Relay, lock, now};
use crate::access::{Access, Identity};
use crate::workspace::{AuditEvent, Role, Tombstone, WorkspaceError};

/// Deleted (a record made by mistake, or no longer wanted) or erased (a
/// person's data, on their request: the database file is compacted after,
/// so that the bytes leave it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Removal {
    Delete,
    Erase,
}

impl Relay {
    /// Removes `documents` from workspace `ws` for good, with the comment
    /// threads on them, as `by` (an admin or the owner) asks. Returns every
    /// document removed. Nothing is removed unless every document is
    /// listed in `ws`.
    pub(crate) async fn remove_documents(
        &self,
        ws: &str,
        by: PublicKey,
        documents: &[DocumentId],
        removal: Removal,
    ) -> Result<Vec<DocumentId>, WorkspaceError> {
        let (all, seen_by) = {
            let workspaces = lock(&self.workspaces);
            workspaces.require(ws, &by, Role::Admin)?;
            let workspace = workspaces.get(ws)?;
            if let Some(doc) = documents
                .iter()
                .find(|doc| !workspace.documents.contains_key(doc))
            {
                return Err(WorkspaceError::UnknownDocument(*doc));
            }
            if documents.contains(&rapport_model::automation::document::document_id(ws)) {
                return Err(WorkspaceError::Invalid(
                    "the workspace's automations document stays; remove its rules with `rapport automation remove`".into(),
                ));
            }
            let asked: BTreeSet<DocumentId> = documents.iter().copied().collect();
            let threads = workspace.documents.iter().filter_map(|(doc, info)| {
                info.thread_of
                    .filter(|record| asked.contains(record))
                    .map(|_| *doc)
            });
            let all: BTreeSet<DocumentId> = asked.iter().copied().chain(threads).collect();
            // Who could see each of them: they are told it is gone.
            let seen_by: Vec<BTreeSet<PublicKey>> = all
                .iter()
                .map(|doc| {
                    let members = workspace.members.keys();
                    members
                        .filter(|key| workspace.access(key, *doc) != Access::None)
                        .copied()
                        .collect()
                })
                .collect();
            (all.into_iter().collect::<Vec<_>>(), seen_by)
        };
        let erased = removal == Removal::Erase;
        let tombstones: BTreeMap<DocumentId, Tombstone> = all
            .iter()
            .zip(seen_by)
            .map(|(doc, seen_by)| {
                let tombstone = Tombstone {
                    workspace: ws.to_owned(),
                    at: now().0,
                    erased,
                    seen_by,
                };
                (*doc, tombstone)
            })
            .collect();
        let events: Vec<AuditEvent> = if erased {
            // The audit log keeps that an erasure happened, not whose.
            let mut event = AuditEvent::new("documents-erased", by, now().0);
            event.detail = format!("{} document(s) erased on request", all.len());
            vec![event]
        } else {
            all.iter()
                .map(|doc| {
                    let mut event = AuditEvent::new("document-deleted", by, now().0);
                    event.document = Some(*doc);
                    event
                })
                .collect()
        };
        self.take_removal(ws, tombstones, events, true).await
    }

    /// Removes the documents `tombstones` name from workspace `ws` here,
    /// with `events`: after passing them to the cluster's other relays if
    /// `replicate`, not when another relay decided the removal.
    pub(crate) async fn take_removal(
        &self,
        ws: &str,
        tombstones: BTreeMap<DocumentId, Tombstone>,
        events: Vec<AuditEvent>,
        replicate: bool,
    ) -> Result<Vec<DocumentId>, WorkspaceError> {
        let all: Vec<DocumentId> = tombstones.keys().copied().collect();
        let erased = tombstones.values().any(|t| t.erased);
        // Holding every slot, no sync of these documents is half done.
        let slots: Vec<_> = all.iter().map(|id| self.slot(*id)).collect();
        let mut held = Vec::with_capacity(slots.len());
        for slot in &slots {
            held.push(slot.lock().await);
        }
        let removed = {
            let store = self.store.clone();
            let remove = |workspaces: &mut crate::workspace::Workspaces| {
                workspaces.remove_with(ws, tombstones, events, |tombstones, rows, events| {
                    let rows_of: Vec<(DocumentId, Vec<u8>)> = tombstones
                        .iter()
                        .map(|(doc, t)| (*doc, serde_json::to_vec(t).unwrap_or_default()))
                        .collect();
                    store.remove_documents(&rows_of, erased, rows, events)
                })
            };
            let mut workspaces = lock(&self.workspaces);
            if replicate {
                remove(&mut workspaces)?
            } else {
                workspaces.unreplicated(remove)?
            }
        };
        for (id, slot) in all.iter().zip(&mut held) {
            if let Some(mut doc) = slot.doc.take() {
                let peers: Vec<_> = doc.peers().map(|(c, p)| (c, p.clone())).collect();
                for (conn, remote) in peers {
                    doc.remove_peer(conn);
                    self.send(conn, &self.unavailable(*id, &remote));
                }
            }
        }
        drop(held);
        {
            // With any thread listed on them meanwhile.
            let mut docs = lock(&self.docs);
            for id in removed.keys() {
                docs.remove(id);
            }
        }
        self.tell_removed(&removed);
        if replicate && let Some(cluster) = self.cluster.get() {
            for id in removed.keys() {
                if let Err(e) = cluster.purge(*id).await {
                    warn!(document = %id, error = %e, "cannot take a removed document out of the cluster's stream");
                }
            }
        }
        info!(
            workspace = ws,
            count = removed.len(),
            erased,
            "documents removed"
        );
        if erased {
            self.vacuum_if_due().await;
        }
        Ok(removed.into_keys().collect())
    }

    /// Compacts the database file if an erasure asked for it; when the
    /// relay is too busy (a backup reading), the sweep tries again later,
    /// and the next start does it first.
    pub(crate) async fn vacuum_if_due(&self) {
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.vacuum_if_due()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                warn!(error = %e, "cannot compact the database after an erasure yet; trying again later")
            }
            Err(e) => warn!(error = %e, "the compaction after an erasure failed"),
        }
    }

    /// Tells every connection of each key that the documents it could see
    /// (its name is in their tombstones) are gone.
    fn tell_removed(&self, removed: &BTreeMap<DocumentId, Tombstone>) {
        let conns: Vec<_> = lock(&self.conns)
            .iter()
            .filter_map(|(conn, handle)| {
                let Identity::Key(key) = handle.identity else {
                    return None;
                };
                let documents: Vec<DocumentId> = removed
                    .iter()
                    .filter(|(_, tombstone)| tombstone.seen_by.contains(&key))
                    .map(|(doc, _)| *doc)
                    .collect();
                (!documents.is_empty()).then(|| (*conn, handle.remote.clone(), documents))
            })
            .collect();
        for (conn, remote, documents) in conns {
            self.send(
                conn,
                &Message::Removed(Documents {
                    sender_id: self.peer_id.clone(),
                    target_id: remote,
                    documents,
                    more: false,
                }),
            );
        }
    }

    /// Tells a connection which documents of its workspaces were removed,
    /// if any: a replica that was away drops them when it comes back.
    pub(crate) fn announce_removed(&self, conn: super::ConnId, key: &PublicKey) {
        let removed = lock(&self.workspaces).removed_for(key);
        if removed.is_empty() {
            return;
        }
        let Some(remote) = lock(&self.conns).get(&conn).map(|h| h.remote.clone()) else {
            return;
        };
        self.send(
            conn,
            &Message::Removed(Documents {
                sender_id: self.peer_id.clone(),
                target_id: remote,
                documents: removed,
                more: false,
            }),
        );
    }
}
