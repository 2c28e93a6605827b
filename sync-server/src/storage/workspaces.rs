//! Workspaces as stored: each workspace's own row (members, invites), a
//! row for each document it lists, and its append-only audit log.

use rapport_protocol::ids::DocumentId;
use redb::{ReadableTable, WriteTransaction};

use super::schema::{AUDIT, WORKSPACE_DOCUMENTS, WORKSPACES};
use super::{Store, StoreError};

/// What a change to a workspace writes: its own row (members, invites),
/// and only the rows of documents whose listing changed, so that listing
/// one more document costs the same in a workspace of ten thousand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkspaceRows {
    pub id: String,
    /// The workspace without its documents (JSON); `None` when only
    /// documents changed.
    pub json: Option<Vec<u8>>,
    /// Each document whose listing changed: its row (JSON), or `None` for
    /// one no longer listed.
    pub documents: Vec<(DocumentId, Option<Vec<u8>>)>,
}

impl Store {
    /// Every workspace, as stored (JSON).
    pub fn workspaces(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        let tx = self.begin_read()?;
        let table = tx.open_table(WORKSPACES).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(|e| self.err(e))? {
            out.push(row.map_err(|e| self.err(e))?.1.value().to_vec());
        }
        Ok(out)
    }

    /// Every workspace document row: workspace id, document id, the row
    /// (JSON).
    pub fn workspace_documents(&self) -> Result<Vec<(String, DocumentId, Vec<u8>)>, StoreError> {
        let tx = self.begin_read()?;
        let table = tx
            .open_table(WORKSPACE_DOCUMENTS)
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(|e| self.err(e))? {
            let (key, value) = row.map_err(|e| self.err(e))?;
            let (workspace, document) = key.value();
            out.push((
                workspace.to_owned(),
                DocumentId::from_bytes(*document),
                value.value().to_vec(),
            ));
        }
        Ok(out)
    }

    /// Writes a workspace's rows and appends its audit events, in one
    /// durable transaction. Events get the next sequence numbers of the
    /// workspace.
    pub fn save_workspace(
        &self,
        rows: &WorkspaceRows,
        events: &[Vec<u8>],
    ) -> Result<(), StoreError> {
        let tx = self.begin_write()?;
        self.put_workspace(&tx, rows)?;
        self.append_audit(&tx, &rows.id, events)?;
        tx.commit().map_err(|e| self.err(e))?;
        self.note_listed(rows);
        Ok(())
    }

    /// Writes a workspace's rows inside `tx`.
    pub(super) fn put_workspace(
        &self,
        tx: &WriteTransaction,
        rows: &WorkspaceRows,
    ) -> Result<(), StoreError> {
        if let Some(json) = &rows.json {
            let mut table = tx.open_table(WORKSPACES).map_err(|e| self.err(e))?;
            table
                .insert(rows.id.as_str(), json.as_slice())
                .map_err(|e| self.err(e))?;
        }
        if !rows.documents.is_empty() {
            let mut table = tx
                .open_table(WORKSPACE_DOCUMENTS)
                .map_err(|e| self.err(e))?;
            for (document, row) in &rows.documents {
                let key = (rows.id.as_str(), document.as_bytes());
                match row {
                    Some(row) => table.insert(key, row.as_slice()).map(drop),
                    None => table.remove(key).map(drop),
                }
                .map_err(|e| self.err(e))?;
            }
        }
        Ok(())
    }

    /// Notes the documents a committed write listed ([`Store::note_changed`]).
    pub(super) fn note_listed(&self, rows: &WorkspaceRows) {
        self.note_changed(
            rows.documents
                .iter()
                .filter(|(_, row)| row.is_some())
                .map(|(id, _)| *id),
        );
    }

    /// Appends audit events to workspace `id` inside `tx`, numbered after
    /// its last one.
    pub(super) fn append_audit(
        &self,
        tx: &WriteTransaction,
        id: &str,
        events: &[Vec<u8>],
    ) -> Result<(), StoreError> {
        let mut audit = tx.open_table(AUDIT).map_err(|e| self.err(e))?;
        let first = match audit
            .range((id, 0)..=(id, u64::MAX))
            .map_err(|e| self.err(e))?
            .next_back()
        {
            Some(row) => row.map_err(|e| self.err(e))?.0.value().1 + 1,
            None => 0,
        };
        for (seq, event) in (first..).zip(events) {
            audit
                .insert((id, seq), event.as_slice())
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// A workspace's audit events, oldest first.
    pub fn audit(&self, id: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        let tx = self.begin_read()?;
        let table = tx.open_table(AUDIT).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in table
            .range((id, 0)..=(id, u64::MAX))
            .map_err(|e| self.err(e))?
        {
            out.push(row.map_err(|e| self.err(e))?.1.value().to_vec());
        }
        Ok(out)
    }
}
