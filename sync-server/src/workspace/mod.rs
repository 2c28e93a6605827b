//! Workspaces on the relay: who belongs, with which role, which documents
//! belong where, invites, sharing, and the audit log. Every change is one
//! durable write of the workspace with its audit events; the in-memory copy
//! answers the access policy.

pub(crate) mod api;
mod call;
pub(crate) use call::AUDITED_REFUSALS_PER_MINUTE;
pub(crate) mod invites;
mod listing;
pub(crate) use listing::Cursor;
pub(crate) mod removal;
mod replicated;
pub(crate) use replicated::{Outbound, Replicate};

use std::collections::{BTreeMap, BTreeSet, HashMap};

pub(crate) use call::{ApiError, ApiResult, caller, event, require};
pub use rapport_model::access::{Level, Role};
pub use rapport_model::workspace::{
    AuditEvent, DocInfo, Invite, Member, Scope, Workspace, member_name,
};
use rapport_protocol::ids::{DocumentId, PublicKey};
use sha2::{Digest, Sha256};

use crate::access::Access;
use crate::storage::{Store, StoreError, WorkspaceRows};

/// Why a workspace operation was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkspaceError {
    #[error("no such workspace")]
    UnknownWorkspace,
    #[error("you are not a member of this workspace")]
    NotMember,
    #[error("this needs the {needed:?} role or higher; you are {role:?}")]
    Forbidden { needed: Role, role: Role },
    #[error("only the operator's listed keys may create workspaces on this relay")]
    MayNotCreate,
    #[error("document {0} already belongs to another workspace")]
    DocumentElsewhere(DocumentId),
    #[error("document {0} holds changes by people outside this workspace; it cannot be added")]
    WrittenByOthers(DocumentId),
    #[error(
        "document {0} is not a comment thread of the record it names; it cannot be added as one"
    )]
    NotAThread(DocumentId),
    #[error("document {0} was deleted; it cannot come back")]
    Removed(DocumentId),
    #[error("document {0} is not in this workspace")]
    UnknownDocument(DocumentId),
    #[error("{0} is not a member of this workspace")]
    UnknownMember(PublicKey),
    #[error("no such invite")]
    UnknownInvite,
    #[error("this invite expired")]
    InviteExpired,
    #[error("this invite has been used up ({uses} of {max_uses} uses)")]
    InviteUsedUp { uses: u32, max_uses: u32 },
    #[error("this invite was revoked")]
    InviteRevoked,
    #[error("the owner cannot be removed")]
    OwnerStays,
    #[error("the owner keeps their role, and a workspace has one owner")]
    OwnerRole,
    #[error(
        "this workspace holds {limit} documents, the most this relay allows in one (--max-documents-per-workspace); ask its operator to raise it"
    )]
    Full { limit: usize },
    #[error(
        "this workspace would take more than {limit} bytes, the most this relay allows in one (--max-workspace-bytes); ask its operator to raise it"
    )]
    OverQuota { limit: u64 },
    #[error("{0}")]
    Invalid(String),
    #[error(
        "the workspace was changed through another relay of the cluster at the same moment; try again"
    )]
    Conflict,
    #[error("the relays' shared workspaces cannot be reached right now ({0}); try again shortly")]
    ControlUnavailable(String),
    #[error(transparent)]
    Storage(#[from] StoreError),
}

/// Every workspace, in memory.
#[derive(Debug, Default)]
pub(crate) struct Workspaces {
    by_id: BTreeMap<String, Workspace>,
    /// Which workspace each document belongs to.
    document_home: HashMap<DocumentId, String>,
    /// Keys allowed to create workspaces; `None`: every key.
    creators: Option<BTreeSet<PublicKey>>,
    /// Documents no workspace lists, by the key that first wrote them.
    claims: HashMap<DocumentId, PublicKey>,
    /// How many documents each key has claimed that no workspace lists.
    claimed_by: HashMap<PublicKey, usize>,
    /// Documents one workspace may list; `usize::MAX` until set.
    max_documents: Option<usize>,
    /// Documents deleted or erased: nobody may read, write or list them
    /// again.
    tombstones: HashMap<DocumentId, Tombstone>,
    /// In a cluster, where every change goes before it is stored here.
    replica: Option<std::sync::Arc<dyn Replicate>>,
    /// In a cluster, listings that came before their workspace (a relay
    /// catching up reads each key's last value in the order they were
    /// last written), kept until it comes.
    early_listings: HashMap<String, Vec<(DocumentId, DocInfo, Vec<AuditEvent>)>>,
}

/// What stays of a document deleted or erased (the `tombstones` table).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Tombstone {
    pub(crate) workspace: String,
    pub(crate) at: u64,
    /// Erased as personal data, rather than deleted.
    pub(crate) erased: bool,
    /// The members who could see it when it went: only they are told.
    #[serde(default)]
    pub(crate) seen_by: BTreeSet<PublicKey>,
}

/// A workspace or a document's listing as stored.
fn to_json(value: &impl serde::Serialize) -> Result<Vec<u8>, WorkspaceError> {
    serde_json::to_vec(value).map_err(|e| WorkspaceError::Invalid(e.to_string()))
}

/// Audit events as stored: one JSON object each.
fn encode(events: &[AuditEvent]) -> Vec<Vec<u8>> {
    events
        .iter()
        .map(|e| serde_json::to_vec(e).unwrap_or_default())
        .collect()
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Workspaces {
    pub(crate) fn load(
        store: &Store,
        creators: Option<BTreeSet<PublicKey>>,
    ) -> Result<Self, StoreError> {
        let mut this = Self {
            creators,
            ..Self::default()
        };
        for (id, key) in store.claims()? {
            this.note_claim(id, key);
        }
        let corrupt = |table| StoreError::Corrupt {
            path: store.path().to_owned(),
            table,
        };
        for (id, row) in store.tombstones()? {
            let tombstone: Tombstone =
                serde_json::from_slice(&row).map_err(|_| corrupt("tombstones"))?;
            this.tombstones.insert(id, tombstone);
        }
        let mut moved = Vec::new();
        for bytes in store.workspaces()? {
            let workspace: Workspace =
                serde_json::from_slice(&bytes).map_err(|_| corrupt("workspaces"))?;
            // A row from before documents had rows of their own.
            if !workspace.documents.is_empty() {
                moved.push(workspace.id.clone());
            }
            this.by_id.insert(workspace.id.clone(), workspace);
        }
        for (id, document, row) in store.workspace_documents()? {
            let info: DocInfo =
                serde_json::from_slice(&row).map_err(|_| corrupt("workspace_documents"))?;
            if let Some(workspace) = this.by_id.get_mut(&id) {
                workspace.documents.insert(document, info);
            }
        }
        for id in moved {
            let workspace = &this.by_id[&id];
            let mut rows = WorkspaceRows {
                json: Some(serde_json::to_vec(workspace).map_err(|_| corrupt("workspaces"))?),
                documents: Vec::with_capacity(workspace.documents.len()),
                id: id.clone(),
            };
            for (doc, info) in &workspace.documents {
                let row = serde_json::to_vec(info).map_err(|_| corrupt("workspaces"))?;
                rows.documents.push((*doc, Some(row)));
            }
            store.save_workspace(&rows, &[])?;
        }
        let listings: Vec<(String, DocumentId)> = this
            .by_id
            .values()
            .flat_map(|w| w.documents.keys().map(|doc| (w.id.clone(), *doc)))
            .collect();
        for (workspace, doc) in listings {
            this.index_document(&workspace, doc);
        }
        Ok(this)
    }

    fn index_document(&mut self, workspace: &str, doc: DocumentId) {
        let listed_now = self
            .document_home
            .insert(doc, workspace.to_owned())
            .is_none();
        // A claimed document that is now listed no longer counts against
        // its claimant's documents outside workspaces.
        if listed_now
            && let Some(key) = self.claims.get(&doc)
            && let Some(count) = self.claimed_by.get_mut(key)
        {
            *count = count.saturating_sub(1);
        }
    }

    /// The access policy for keys: documents in a workspace follow its
    /// roles and shares; a document in no workspace belongs to the key that
    /// first wrote it ([`Workspaces::claimant`]), and a document nobody has
    /// written yet may be written by anyone (whose first change claims it).
    pub(crate) fn access(&self, key: &PublicKey, document: DocumentId) -> Access {
        if self.tombstones.contains_key(&document) {
            return Access::None;
        }
        match self
            .document_home
            .get(&document)
            .and_then(|id| self.by_id.get(id))
        {
            Some(workspace) => workspace.access(key, document),
            None => match self.claims.get(&document) {
                Some(owner) if owner == key => Access::Write,
                Some(_) => Access::None,
                None => Access::Write,
            },
        }
    }

    /// The record `document` is the comment thread of, if it is one.
    pub(crate) fn thread_of(&self, document: DocumentId) -> Option<DocumentId> {
        let workspace = self.by_id.get(self.document_home.get(&document)?)?;
        workspace.documents.get(&document)?.thread_of
    }

    /// Whether `key`'s first changes to `document` claim it: no workspace
    /// lists it and nobody has claimed it.
    pub(crate) fn is_unclaimed(&self, document: DocumentId) -> bool {
        !self.document_home.contains_key(&document)
            && !self.claims.contains_key(&document)
            && !self.tombstones.contains_key(&document)
    }

    /// Whether `document` was deleted or erased.
    pub(crate) fn is_removed(&self, document: DocumentId) -> bool {
        self.tombstones.contains_key(&document)
    }

    /// Documents removed that `key` could see when they went: its replicas
    /// drop their copies.
    pub(crate) fn removed_for(&self, key: &PublicKey) -> Vec<DocumentId> {
        self.tombstones
            .iter()
            .filter(|(_, tombstone)| tombstone.seen_by.contains(key))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Takes `documents` out of workspace `id` for good (their listings,
    /// and the shares that named them), once `write` has stored their
    /// removal with the encoded `events`.
    ///
    /// A comment thread listed on one of them since the caller looked goes
    /// too, with its record's tombstone; returns the tombstone of every
    /// document removed.
    pub(crate) fn remove_with(
        &mut self,
        id: &str,
        mut tombstones: BTreeMap<DocumentId, Tombstone>,
        events: Vec<AuditEvent>,
        write: impl FnOnce(
            &BTreeMap<DocumentId, Tombstone>,
            &WorkspaceRows,
            &[Vec<u8>],
        ) -> Result<(), StoreError>,
    ) -> Result<BTreeMap<DocumentId, Tombstone>, WorkspaceError> {
        let mut workspace = self.get(id)?.clone();
        let late: Vec<(DocumentId, Tombstone)> = workspace
            .documents
            .iter()
            .filter(|(doc, _)| !tombstones.contains_key(doc))
            .filter_map(|(doc, info)| Some((*doc, tombstones.get(&info.thread_of?)?.clone())))
            .collect();
        tombstones.extend(late);
        let documents: Vec<DocumentId> = tombstones.keys().copied().collect();
        let mut shares_changed = false;
        for doc in &documents {
            workspace.documents.remove(doc);
            for member in workspace.members.values_mut() {
                shares_changed |= member.shares.remove(doc).is_some();
            }
        }
        let rows = WorkspaceRows {
            id: id.to_owned(),
            json: shares_changed.then(|| to_json(&workspace)).transpose()?,
            documents: documents.iter().map(|doc| (*doc, None)).collect(),
        };
        let events = encode(&events);
        self.replicate(Outbound {
            rows: &rows,
            events: &events,
            new: &[],
            tombstones: &tombstones,
        })?;
        write(&tombstones, &rows, &events)?;
        self.by_id.insert(id.to_owned(), workspace);
        for (doc, tombstone) in &tombstones {
            self.document_home.remove(doc);
            self.claims.remove(doc);
            self.tombstones.insert(*doc, tombstone.clone());
        }
        Ok(tombstones)
    }

    /// Takes `key`'s claim of `document` (stored by the caller).
    pub(crate) fn note_claim(&mut self, document: DocumentId, key: PublicKey) {
        if self.claims.contains_key(&document) {
            return;
        }
        self.claims.insert(document, key);
        if !self.document_home.contains_key(&document) {
            *self.claimed_by.entry(key).or_insert(0) += 1;
        }
    }

    /// How many documents no workspace lists `key` has claimed.
    pub(crate) fn unlisted_of(&self, key: &PublicKey) -> usize {
        self.claimed_by.get(key).copied().unwrap_or(0)
    }

    /// Every workspace's id.
    pub(crate) fn ids(&self) -> impl Iterator<Item = &str> {
        self.by_id.keys().map(String::as_str)
    }

    /// The workspace a document belongs to.
    pub(crate) fn home_of(&self, document: DocumentId) -> Option<&str> {
        self.document_home.get(&document).map(String::as_str)
    }

    /// The id of `workspace`'s automations document, if the workspace
    /// lists it: only a workspace's own, listed document holds its rules.
    pub(crate) fn rules_of(&self, workspace: &str) -> Option<DocumentId> {
        let rules = rapport_model::automation::document::document_id(workspace);
        (self.home_of(rules) == Some(workspace)).then_some(rules)
    }

    /// Whether `document` is the automations document of the workspace
    /// that lists it.
    pub(crate) fn is_rules_document(&self, document: DocumentId) -> bool {
        self.home_of(document)
            .is_some_and(|home| rapport_model::automation::document::document_id(home) == document)
    }

    /// Whether `key` was removed from some workspace and belongs to none.
    pub(crate) fn is_shut_out(&self, key: &PublicKey) -> bool {
        let removed = self.by_id.values().any(|w| w.removed.contains_key(key));
        removed && !self.by_id.values().any(|w| w.members.contains_key(key))
    }

    /// The name `key` gave as a member of workspace `id`.
    pub(crate) fn member_name(&self, id: &str, key: &PublicKey) -> Option<String> {
        self.by_id.get(id)?.members.get(key)?.name.clone()
    }

    /// The workspaces `key` belongs to, with its role.
    pub(crate) fn memberships(&self, key: &PublicKey) -> Vec<(&Workspace, Role)> {
        self.by_id
            .values()
            .filter_map(|w| w.members.get(key).map(|m| (w, m.role)))
            .collect()
    }

    pub(crate) fn get(&self, id: &str) -> Result<&Workspace, WorkspaceError> {
        self.by_id.get(id).ok_or(WorkspaceError::UnknownWorkspace)
    }

    /// `key`'s role in workspace `id`, which must be at least `needed`.
    pub(crate) fn require(
        &self,
        id: &str,
        key: &PublicKey,
        needed: Role,
    ) -> Result<Role, WorkspaceError> {
        let workspace = self.get(id)?;
        let role = workspace
            .members
            .get(key)
            .map(|m| m.role)
            .ok_or(WorkspaceError::NotMember)?;
        if role < needed {
            return Err(WorkspaceError::Forbidden { needed, role });
        }
        Ok(role)
    }

    /// Writes `workspace` with `events` and takes it as the new state.
    pub(crate) fn commit(
        &mut self,
        store: &Store,
        workspace: Workspace,
        events: Vec<AuditEvent>,
    ) -> Result<(), WorkspaceError> {
        self.commit_with(workspace, events, |rows, events| {
            store.save_workspace(rows, events)
        })
    }

    /// Takes `workspace` with `events` as the new state once `write` has
    /// stored them (the workspace's rows that changed, and the encoded
    /// events), so that a caller can store more in the same transaction.
    pub(crate) fn commit_with(
        &mut self,
        workspace: Workspace,
        events: Vec<AuditEvent>,
        write: impl FnOnce(&WorkspaceRows, &[Vec<u8>]) -> Result<(), StoreError>,
    ) -> Result<(), WorkspaceError> {
        let before = self.by_id.get(&workspace.id).map(|w| &w.documents);
        let listed_before = before.map_or(0, BTreeMap::len);
        self.check_room(workspace.documents.len(), listed_before)?;
        let mut documents = Vec::new();
        let mut new = Vec::new();
        for (doc, info) in &workspace.documents {
            let was = before.and_then(|b| b.get(doc));
            if was != Some(info) {
                documents.push((*doc, Some(to_json(info)?)));
            }
            if was.is_none() {
                new.push(*doc);
            }
        }
        for doc in before.into_iter().flat_map(|b| b.keys()) {
            if !workspace.documents.contains_key(doc) {
                documents.push((*doc, None));
            }
        }
        let rows = WorkspaceRows {
            id: workspace.id.clone(),
            json: Some(to_json(&workspace)?),
            documents,
        };
        let events = encode(&events);
        self.replicate(Outbound {
            rows: &rows,
            events: &events,
            new: &new,
            tombstones: &BTreeMap::new(),
        })?;
        write(&rows, &events)?;
        // Only the listings that changed can be new.
        for (doc, row) in &rows.documents {
            if row.is_some() {
                self.index_document(&workspace.id, *doc);
            }
        }
        self.by_id.insert(workspace.id.clone(), workspace);
        Ok(())
    }

    /// Lists one new document in workspace `id` with `events`, once
    /// `write` has stored them: the one row, whatever the workspace holds.
    pub(crate) fn list_with(
        &mut self,
        id: &str,
        document: DocumentId,
        info: DocInfo,
        events: Vec<AuditEvent>,
        write: impl FnOnce(&WorkspaceRows, &[Vec<u8>]) -> Result<(), StoreError>,
    ) -> Result<(), WorkspaceError> {
        let listed = self
            .by_id
            .get(id)
            .ok_or(WorkspaceError::UnknownWorkspace)?
            .documents
            .len();
        self.check_room(listed + 1, listed)?;
        let rows = WorkspaceRows {
            id: id.to_owned(),
            json: None,
            documents: vec![(document, Some(to_json(&info)?))],
        };
        let events = encode(&events);
        self.replicate(Outbound {
            rows: &rows,
            events: &events,
            new: &[document],
            tombstones: &BTreeMap::new(),
        })?;
        write(&rows, &events)?;
        if let Some(workspace) = self.by_id.get_mut(id) {
            workspace.documents.insert(document, info);
        }
        self.index_document(id, document);
        Ok(())
    }

    /// Sets how many documents one workspace may list.
    pub(crate) fn limit_documents(&mut self, max: usize) {
        self.max_documents = Some(max);
    }

    /// Whether a workspace going from `before` listed documents to `after`
    /// stays within the limit (one already past it may shrink).
    fn check_room(&self, after: usize, before: usize) -> Result<(), WorkspaceError> {
        match self.max_documents {
            Some(limit) if after > limit && after > before => Err(WorkspaceError::Full { limit }),
            _ => Ok(()),
        }
    }

    /// Appends audit events without changing the workspace.
    pub(crate) fn record(
        &self,
        store: &Store,
        id: &str,
        events: &[AuditEvent],
    ) -> Result<(), StoreError> {
        let rows = WorkspaceRows {
            id: id.to_owned(),
            ..WorkspaceRows::default()
        };
        let events = encode(events);
        store.save_workspace(&rows, &events)?;
        if let Some(to) = &self.replica {
            to.record(id, &events);
        }
        Ok(())
    }

    pub(crate) fn may_create(&self, key: &PublicKey) -> bool {
        self.creators.as_ref().is_none_or(|keys| keys.contains(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workspace_row_from_before_document_rows_is_moved_into_them() {
        let dir = std::env::temp_dir().join(format!("rapport-ws-rows-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&dir).unwrap();
        let doc = DocumentId::from_bytes([4; 16]);
        let owner = PublicKey::from_bytes([1; 32]);
        let legacy = serde_json::json!({
            "id": "ws", "name": "Acme", "created_by": owner, "created_at": 1,
            "documents": {doc.to_string(): {"thread_of": null, "added_by": owner, "added_at": 2}},
        });
        let rows = WorkspaceRows {
            id: "ws".into(),
            json: Some(serde_json::to_vec(&legacy).unwrap()),
            documents: Vec::new(),
        };
        store.save_workspace(&rows, &[]).unwrap();

        let loaded = Workspaces::load(&store, None).unwrap();
        assert_eq!(loaded.get("ws").unwrap().documents[&doc].added_at, 2);
        assert_eq!(store.workspace_documents().unwrap().len(), 1);
        let row = String::from_utf8(store.workspaces().unwrap().remove(0)).unwrap();
        assert!(!row.contains("documents"), "{row}");
        // And it loads the same from the rows alone.
        let again = Workspaces::load(&store, None).unwrap();
        assert_eq!(again.get("ws").unwrap(), loaded.get("ws").unwrap());
        assert_eq!(
            again.document_home.get(&doc).map(String::as_str),
            Some("ws")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
