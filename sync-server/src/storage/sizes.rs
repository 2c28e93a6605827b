//! How many bytes each document takes in the database (its snapshot and
//! its change rows), kept in memory: read once when the store opens,
//! counted up as changes are stored, set again when a compaction folds a
//! document, dropped when one is removed. Workspaces' quotas and the
//! per-workspace sizes in `/metrics` add these up. Changes whose
//! transaction then fails were counted anyway: the figure can run a little
//! high until the document's next compaction or the relay's restart.

use std::collections::HashMap;

use rapport_protocol::ids::DocumentId;
use redb::ReadableTable;

use super::schema::{CHANGES, SNAPSHOTS};
use super::{Store, StoreError};

impl Store {
    /// The bytes `document` takes.
    pub fn size_of(&self, document: DocumentId) -> u64 {
        self.sizes().get(&document).copied().unwrap_or(0)
    }

    /// The bytes `documents` take together.
    pub fn size_of_all<'a>(&self, documents: impl IntoIterator<Item = &'a DocumentId>) -> u64 {
        let sizes = self.sizes();
        documents
            .into_iter()
            .map(|doc| sizes.get(doc).copied().unwrap_or(0))
            .sum()
    }

    pub(super) fn grow(&self, document: DocumentId, bytes: u64) {
        *self.sizes().entry(document).or_insert(0) += bytes;
    }

    pub(super) fn set_size(&self, document: DocumentId, bytes: u64) {
        self.sizes().insert(document, bytes);
    }

    pub(super) fn forget_sizes(&self, documents: &[DocumentId]) {
        let mut sizes = self.sizes();
        for doc in documents {
            sizes.remove(doc);
        }
    }

    fn sizes(&self) -> std::sync::MutexGuard<'_, HashMap<DocumentId, u64>> {
        self.inner.sizes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads every document's size, and so which documents the store holds
    /// (`super::held`), at opening: one pass over snapshots and change rows.
    pub(super) fn read_sizes(&self) -> Result<(), StoreError> {
        let tx = self.begin_read()?;
        let mut sizes: HashMap<DocumentId, u64> = HashMap::new();
        let snapshots = tx.open_table(SNAPSHOTS).map_err(|e| self.err(e))?;
        for row in snapshots.iter().map_err(|e| self.err(e))? {
            let (key, value) = row.map_err(|e| self.err(e))?;
            *sizes
                .entry(DocumentId::from_bytes(*key.value()))
                .or_insert(0) += value.value().len() as u64;
        }
        let changes = tx.open_table(CHANGES).map_err(|e| self.err(e))?;
        for row in changes.iter().map_err(|e| self.err(e))? {
            let (key, value) = row.map_err(|e| self.err(e))?;
            *sizes
                .entry(DocumentId::from_bytes(*key.value().0))
                .or_insert(0) += value.value().len() as u64;
        }
        *self.held() = sizes.keys().copied().collect();
        *self.sizes() = sizes;
        Ok(())
    }
}
