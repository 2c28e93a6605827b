//! Deleting and erasing documents: every row of a document leaves the
//! database in one transaction with its listing, and a tombstone stays, so
//! that the relay refuses the document if a replica offers it again. An
//! erasure then compacts the file, so that what was erased no longer sits
//! in pages redb freed.

use std::ops::Bound;
use std::time::{Duration, Instant};

use rapport_protocol::ids::DocumentId;
use redb::{ReadableTable, WriteTransaction};
use tracing::info;

use super::schema::{
    AUTOMATION_OUTBOX, AUTOMATION_PENDING, AUTOMATION_SHARED, CHANGES, CLAIMS, COMPACTED, META,
    SNAPSHOTS, TOMBSTONES,
};
use super::{Store, StoreError, WorkspaceRows};

/// How long [`Store::vacuum`] holds new transactions back while it waits
/// for those in flight to end.
const VACUUM_PATIENCE: Duration = Duration::from_secs(2);

/// `meta`'s note that an erasure's compaction is still to be done.
const VACUUM_DUE: &str = "vacuum_due";

impl Store {
    /// Every tombstone: the document, and what was stored with it (JSON).
    pub fn tombstones(&self) -> Result<Vec<(DocumentId, Vec<u8>)>, StoreError> {
        let tx = self.begin_read()?;
        let table = tx.open_table(TOMBSTONES).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(|e| self.err(e))? {
            let (id, value) = row.map_err(|e| self.err(e))?;
            out.push((DocumentId::from_bytes(*id.value()), value.value().to_vec()));
        }
        Ok(out)
    }

    /// Removes `documents` whole (changes, snapshot, compacted hashes,
    /// claim, the automations' notes and webhooks about them), leaves
    /// `tombstone` for each, and writes the workspace's `rows` (the
    /// listings that go) and audit `events`: one durable transaction.
    pub fn remove_documents(
        &self,
        tombstones: &[(DocumentId, Vec<u8>)],
        erased: bool,
        rows: &WorkspaceRows,
        events: &[Vec<u8>],
    ) -> Result<(), StoreError> {
        let documents: Vec<DocumentId> = tombstones.iter().map(|(id, _)| *id).collect();
        let documents = documents.as_slice();
        let tx = self.begin_write()?;
        for (id, tombstone) in tombstones {
            self.remove_rows(&tx, *id)?;
            let mut table = tx.open_table(TOMBSTONES).map_err(|e| self.err(e))?;
            table
                .insert(id.as_bytes(), tombstone.as_slice())
                .map_err(|e| self.err(e))?;
        }
        if erased {
            let mut meta = tx.open_table(META).map_err(|e| self.err(e))?;
            meta.insert(VACUUM_DUE, [1u8].as_slice())
                .map_err(|e| self.err(e))?;
        }
        self.drop_deliveries_about(&tx, documents)?;
        self.drop_notifications_about(&tx, documents)?;
        self.put_workspace(&tx, rows)?;
        self.append_audit(&tx, &rows.id, events)?;
        tx.commit().map_err(|e| self.err(e))?;
        self.forget_sizes(documents);
        let mut held = self.held();
        for id in documents {
            held.remove(id);
        }
        Ok(())
    }

    /// Whether `id` was removed, inside `tx`: a compaction that loaded the
    /// document before it went must not write it back.
    pub(super) fn is_tombstoned(
        &self,
        tx: &WriteTransaction,
        id: DocumentId,
    ) -> Result<bool, StoreError> {
        let table = tx.open_table(TOMBSTONES).map_err(|e| self.err(e))?;
        Ok(table.get(id.as_bytes()).map_err(|e| self.err(e))?.is_some())
    }

    fn remove_rows(&self, tx: &WriteTransaction, id: DocumentId) -> Result<(), StoreError> {
        let key = id.as_bytes();
        let runs = (
            Bound::Included((key, 0u64)),
            Bound::Included((key, u64::MAX)),
        );
        let mut changes = tx.open_table(CHANGES).map_err(|e| self.err(e))?;
        changes
            .extract_from_if::<(&[u8; 16], u64), _>(runs, |_, _| true)
            .map_err(|e| self.err(e))?
            .for_each(drop);
        let mut compacted = tx.open_table(COMPACTED).map_err(|e| self.err(e))?;
        compacted
            .extract_from_if::<(&[u8; 16], u64), _>(runs, |_, _| true)
            .map_err(|e| self.err(e))?
            .for_each(drop);
        for table in [SNAPSHOTS, AUTOMATION_PENDING] {
            let mut table = tx.open_table(table).map_err(|e| self.err(e))?;
            table.remove(key).map_err(|e| self.err(e))?;
        }
        let mut shared = tx.open_table(AUTOMATION_SHARED).map_err(|e| self.err(e))?;
        shared.remove(key).map_err(|e| self.err(e))?;
        let mut claims = tx.open_table(CLAIMS).map_err(|e| self.err(e))?;
        claims.remove(key).map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Webhooks not yet delivered whose body names one of `documents`: an
    /// erased record's fields must not leave the relay afterwards.
    fn drop_deliveries_about(
        &self,
        tx: &WriteTransaction,
        documents: &[DocumentId],
    ) -> Result<(), StoreError> {
        let names: Vec<String> = documents.iter().map(ToString::to_string).collect();
        let mut outbox = tx.open_table(AUTOMATION_OUTBOX).map_err(|e| self.err(e))?;
        outbox
            .extract_if(|_, body| {
                let body = String::from_utf8_lossy(body);
                names.iter().any(|name| body.contains(name.as_str()))
            })
            .map_err(|e| self.err(e))?
            .for_each(drop);
        Ok(())
    }

    /// Compacts the file if an erasure left that to do (see
    /// [`Store::vacuum`]); returns whether it did. Blocking.
    pub fn vacuum_if_due(&self) -> Result<bool, StoreError> {
        let due = {
            let tx = self.begin_read()?;
            let meta = tx.open_table(META).map_err(|e| self.err(e))?;
            meta.get(VACUUM_DUE).map_err(|e| self.err(e))?.is_some()
        };
        if !due {
            return Ok(false);
        }
        self.vacuum()?;
        let tx = self.begin_write()?;
        {
            let mut meta = tx.open_table(META).map_err(|e| self.err(e))?;
            meta.remove(VACUUM_DUE).map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(true)
    }

    /// Compacts the database file, so that the pages of removed rows are
    /// rewritten or cut off rather than left as they were: after an
    /// erasure, the erased bytes are no longer in the file. Waits (up to
    /// two seconds) for the transactions in flight to end, holding new
    /// ones back meanwhile, and gives up with [`StoreError::Busy`] if one
    /// goes on longer (a backup reading). Blocking.
    pub fn vacuum(&self) -> Result<(), StoreError> {
        let started = Instant::now();
        let mut slot = self.inner.db.lock().unwrap_or_else(|e| e.into_inner());
        let mut db = match slot.take() {
            Some(db) => db,
            None => {
                drop(slot);
                self.database()?;
                slot = self.inner.db.lock().unwrap_or_else(|e| e.into_inner());
                slot.take().ok_or(StoreError::WriterGone)?
            }
        };
        let result = loop {
            // Another thread may still hold the handle for a moment: as
            // busy as a transaction in flight.
            let compacted = match std::sync::Arc::get_mut(&mut db) {
                Some(exclusive) => exclusive.compact(),
                None => Err(redb::CompactionError::TransactionInProgress),
            };
            match compacted {
                Ok(true) => {}
                Ok(false) => break Ok(()),
                Err(redb::CompactionError::TransactionInProgress)
                    if started.elapsed() <= VACUUM_PATIENCE =>
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(redb::CompactionError::TransactionInProgress) => {
                    break Err(StoreError::Busy {
                        path: self.path().to_owned(),
                    });
                }
                Err(e) => break Err(self.err(redb::Error::from(e))),
            }
        };
        *slot = Some(db);
        if result.is_ok() {
            info!(took = ?started.elapsed(), "database compacted after an erasure");
        }
        result
    }
}
