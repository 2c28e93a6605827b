//! Compaction: a document's stored changes folded into a snapshot (a saved
//! automerge document), in one write transaction.

use std::collections::HashSet;
use std::sync::Arc;

use automerge::ChangeHash;
use rapport_protocol::ids::DocumentId;
use rapport_protocol::sync::load_document;
use redb::{ReadableTable, WriteTransaction};

use super::schema::{CHANGES, COMPACTED, SNAPSHOTS};
use super::{Store, StoreError, Write, codec};

/// A compaction's result: the new snapshot, and the changes folded into it.
pub(crate) type Compacted = (Arc<[u8]>, Vec<ChangeHash>);

impl Store {
    /// Folds a document's stored changes into its snapshot when there are
    /// at least `threshold` of them. The new snapshot is computed from a
    /// consistent read, then written, with the folded rows removed and
    /// their hashes recorded, in one write transaction: a crash leaves the
    /// old state or the new one. Changes stored meanwhile stay as they are.
    /// Returns how many changes were folded.
    pub fn compact(&self, id: DocumentId, threshold: usize) -> Result<usize, StoreError> {
        Ok(self
            .compact_keeping(id, threshold)?
            .map_or(0, |(_, folded)| folded.len()))
    }

    /// [`Store::compact`], returning the new snapshot and the changes
    /// folded into it, for the document in memory to take the same shape
    /// ([`rapport_protocol::relay::RelayDoc::adopt_snapshot`]).
    pub(crate) fn compact_keeping(
        &self,
        id: DocumentId,
        threshold: usize,
    ) -> Result<Option<Compacted>, StoreError> {
        let key = id.as_bytes();
        let (snapshot, rows) = {
            let tx = self.begin_read()?;
            let snapshots = tx.open_table(SNAPSHOTS).map_err(|e| self.err(e))?;
            let snapshot = snapshots
                .get(key)
                .map_err(|e| self.err(e))?
                .map(|v| v.value().to_vec());
            let table = tx.open_table(CHANGES).map_err(|e| self.err(e))?;
            (snapshot, self.change_rows(&table, id)?)
        };
        if rows.len() < threshold.max(1) {
            return Ok(None);
        }
        let doc = load_document(snapshot.as_deref(), rows.iter().map(|(_, c)| &*c.bytes))
            .map_err(|_| self.corrupt("changes"))?;
        let saved = doc.save();
        let tx = self.begin_write()?;
        self.fold(
            &tx,
            id,
            &saved,
            rows.iter()
                .map(|(row, c)| (Some(*row), c.hash, c.deps.as_slice())),
        )?;
        tx.commit().map_err(|e| self.err(e))?;
        let folded = rows.into_iter().map(|(_, c)| c.hash).collect();
        Ok(Some((Arc::from(saved), folded)))
    }

    /// The write that makes `saved`, the whole document as it was with
    /// the changes `hashes`, its snapshot, folding the stored changes among
    /// `hashes` into it. The relay makes one when it saves a document for a
    /// peer that has none of it, so that work also serves as a compaction.
    /// It must not run beside a [`Store::compact`] of the same document.
    pub(crate) fn snapshotting(id: DocumentId, saved: Arc<[u8]>, hashes: Vec<ChangeHash>) -> Write {
        Box::new(move |store, tx| {
            let hashes: HashSet<&ChangeHash> = hashes.iter().collect();
            let mut rows = {
                let table = tx.open_table(CHANGES).map_err(|e| store.err(e))?;
                store.change_rows(&table, id)?
            };
            rows.retain(|(_, change)| hashes.contains(&change.hash));
            store.fold(
                tx,
                id,
                &saved,
                rows.iter()
                    .map(|(row, c)| (Some(*row), c.hash, c.deps.as_slice())),
            )
        })
    }

    /// Inside `tx`: `saved` becomes the document's snapshot, and the rows
    /// `(row, hash, dependencies)` leave the changes table (a row of `None`
    /// was never there) for the compacted one.
    pub(super) fn fold<'a>(
        &self,
        tx: &WriteTransaction,
        id: DocumentId,
        saved: &[u8],
        rows: impl Iterator<Item = (Option<u64>, ChangeHash, &'a [ChangeHash])>,
    ) -> Result<(), StoreError> {
        if self.is_tombstoned(tx, id)? {
            return Ok(());
        }
        self.will_hold(id);
        let key = id.as_bytes();
        let mut compacted = tx.open_table(COMPACTED).map_err(|e| self.err(e))?;
        let first = self.next_row(&compacted, id)?;
        let mut changes = tx.open_table(CHANGES).map_err(|e| self.err(e))?;
        for (seq, (row, hash, deps)) in (first..).zip(rows) {
            compacted
                .insert((key, seq), codec::encode_meta(&hash, deps).as_slice())
                .map_err(|e| self.err(e))?;
            if let Some(row) = row {
                changes.remove((key, row)).map_err(|e| self.err(e))?;
            }
        }
        let mut snapshots = tx.open_table(SNAPSHOTS).map_err(|e| self.err(e))?;
        snapshots.insert(key, saved).map_err(|e| self.err(e))?;
        // What the document takes now, counted whole: the same if this
        // write is tried again.
        let mut left = 0;
        for row in changes
            .range((key, 0)..=(key, u64::MAX))
            .map_err(|e| self.err(e))?
        {
            left += row.map_err(|e| self.err(e))?.1.value().len() as u64;
        }
        self.set_size(id, saved.len() as u64 + left);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use automerge::transaction::Transactable as _;
    use automerge::{Automerge, ROOT};
    use rapport_protocol::relay::split_changes;

    use super::*;
    use crate::storage::tests::temp_dir;

    #[test]
    fn a_document_kept_whole_reads_back_as_its_snapshot_and_compacts_as_one() {
        let dir = temp_dir("whole");
        let id = DocumentId::from_bytes([4; 16]);
        let mut doc = Automerge::new();
        for i in 0..50i64 {
            doc.transact(|tx| tx.put(ROOT, "n", i)).unwrap();
        }
        let saved = doc.save();
        let changes = split_changes([saved.as_slice()].into_iter()).unwrap();
        let store = Store::open(&dir).unwrap();
        let write = Store::appending(
            id,
            changes.clone(),
            Some(Arc::from(saved.as_slice())),
            Vec::new(),
            None,
            None,
        );
        let tx = store.begin_write().unwrap();
        write(&store, &tx).unwrap();
        tx.commit().unwrap();

        let stored = store.load_document(id).unwrap();
        assert!(stored.changes.is_empty(), "no row for each change");
        assert_eq!(stored.snapshot.as_deref(), Some(saved.as_slice()));
        let hashes: Vec<_> = changes.iter().map(|c| c.hash).collect();
        assert_eq!(
            stored.compacted.iter().map(|(h, _)| *h).collect::<Vec<_>>(),
            hashes
        );
        assert_eq!(store.compact(id, 1).unwrap(), 0, "nothing left to fold");
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
