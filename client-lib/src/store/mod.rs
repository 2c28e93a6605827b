//! The replica's storage: one redb file with every document this person may
//! see (a snapshot plus the changes since), sync states, the derived index
//! and the refused-changes list; see [`schema`].
//!
//! Every write is one durable transaction. Compaction replaces a document's
//! change rows by a new snapshot inside one transaction, so a crash leaves
//! the old state or the new one, never a hole.

pub mod backup;
mod schema;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use rapport_protocol::ids::DocumentId;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata};
use schema::{CHANGES, INDEX, META, REJECTED, SCHEMA_VERSION, SNAPSHOTS, SYNC_STATES};

use crate::error::ClientError;

/// The database file's name inside the home folder.
pub const DATABASE_FILE: &str = "replica.redb";

/// A document as stored.
#[derive(Debug, Default)]
pub struct StoredDoc {
    pub snapshot: Option<Vec<u8>>,
    /// Change chunks stored since the snapshot, in order.
    pub changes: Vec<Vec<u8>>,
}

/// The replica database. Cheap to clone; every method blocks.
#[derive(Debug, Clone)]
pub struct Store {
    /// Written to only to compact the file ([`Store::vacuum`]).
    db: Arc<RwLock<Database>>,
    path: Arc<PathBuf>,
}

type Result<T> = std::result::Result<T, ClientError>;

impl Store {
    /// Opens (or creates) the database in `home`.
    pub fn open(home: &Path) -> Result<Self> {
        let path = home.join(DATABASE_FILE);
        let db = Database::create(&path).map_err(|e| ClientError::Database {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let store = Self {
            db: Arc::new(RwLock::new(db)),
            path: Arc::new(path),
        };
        store.init()?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn db(&self) -> RwLockReadGuard<'_, Database> {
        self.db.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Removes documents whole: snapshot, changes, sync states, index
    /// entries, in one transaction. Returns how many the replica held.
    pub fn forget(&self, ids: &[DocumentId]) -> Result<usize> {
        let held = self.document_ids()?;
        let tx = self.db().begin_write().map_err(|e| self.fail(e))?;
        {
            let mut snapshots = tx.open_table(SNAPSHOTS).map_err(|e| self.fail(e))?;
            let mut changes = tx.open_table(CHANGES).map_err(|e| self.fail(e))?;
            let mut index = tx.open_table(INDEX).map_err(|e| self.fail(e))?;
            for id in ids {
                let key = id.as_bytes();
                snapshots.remove(key).map_err(|e| self.fail(e))?;
                index.remove(key).map_err(|e| self.fail(e))?;
                changes
                    .retain_in((key, 0)..=(key, u64::MAX), |_, _| false)
                    .map_err(|e| self.fail(e))?;
            }
            let mut states = tx.open_table(SYNC_STATES).map_err(|e| self.fail(e))?;
            states
                .retain(|(_, id), _| !ids.iter().any(|gone| gone.as_bytes() == id))
                .map_err(|e| self.fail(e))?;
        }
        tx.commit().map_err(|e| self.fail(e))?;
        Ok(ids.iter().filter(|id| held.contains(id)).count())
    }

    /// Compacts the file, so that the pages of removed rows are rewritten
    /// or cut off: after an erasure the erased bytes are no longer in it.
    /// Waits for transactions in flight on other threads.
    pub fn vacuum(&self) -> Result<()> {
        let mut db = self.db.write().unwrap_or_else(|e| e.into_inner());
        let started = std::time::Instant::now();
        loop {
            match db.compact() {
                Ok(true) => {}
                Ok(false) => return Ok(()),
                Err(redb::CompactionError::TransactionInProgress)
                    if started.elapsed() < std::time::Duration::from_secs(30) =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(e) => return Err(self.fail(e)),
            }
        }
    }

    fn fail(&self, e: impl std::fmt::Display) -> ClientError {
        ClientError::Database {
            path: self.path.to_path_buf(),
            reason: e.to_string(),
        }
    }

    fn init(&self) -> Result<()> {
        let tx = self.db().begin_write().map_err(|e| self.fail(e))?;
        {
            let mut meta = tx.open_table(META).map_err(|e| self.fail(e))?;
            let version = meta
                .get("schema_version")
                .map_err(|e| self.fail(e))?
                .map(|v| v.value().to_vec());
            match version {
                None => {
                    meta.insert("schema_version", SCHEMA_VERSION.to_le_bytes().as_slice())
                        .map_err(|e| self.fail(e))?;
                }
                Some(bytes) => {
                    let found = <[u8; 4]>::try_from(bytes.as_slice())
                        .map(u32::from_le_bytes)
                        .map_err(|_| self.fail("damaged schema version"))?;
                    if found > SCHEMA_VERSION {
                        return Err(self.fail(format!(
                            "written by a newer rapport (schema {found}; this one reads up to {SCHEMA_VERSION})"
                        )));
                    }
                }
            }
            tx.open_table(SNAPSHOTS).map_err(|e| self.fail(e))?;
            tx.open_table(CHANGES).map_err(|e| self.fail(e))?;
            tx.open_table(SYNC_STATES).map_err(|e| self.fail(e))?;
            tx.open_table(INDEX).map_err(|e| self.fail(e))?;
            tx.open_table(REJECTED).map_err(|e| self.fail(e))?;
        }
        tx.commit().map_err(|e| self.fail(e))
    }

    /// A value of the `meta` table.
    pub fn meta(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let tx = self.db().begin_read().map_err(|e| self.fail(e))?;
        let table = tx.open_table(META).map_err(|e| self.fail(e))?;
        Ok(table
            .get(name)
            .map_err(|e| self.fail(e))?
            .map(|v| v.value().to_vec()))
    }

    /// Sets a value of the `meta` table.
    pub fn set_meta(&self, name: &str, value: &[u8]) -> Result<()> {
        let tx = self.db().begin_write().map_err(|e| self.fail(e))?;
        tx.open_table(META)
            .map_err(|e| self.fail(e))?
            .insert(name, value)
            .map_err(|e| self.fail(e))?;
        tx.commit().map_err(|e| self.fail(e))
    }

    /// Every document id in the replica.
    pub fn document_ids(&self) -> Result<Vec<DocumentId>> {
        let tx = self.db().begin_read().map_err(|e| self.fail(e))?;
        let mut ids = std::collections::BTreeSet::new();
        let snapshots = tx.open_table(SNAPSHOTS).map_err(|e| self.fail(e))?;
        for row in snapshots.iter().map_err(|e| self.fail(e))? {
            ids.insert(DocumentId::from_bytes(
                *row.map_err(|e| self.fail(e))?.0.value(),
            ));
        }
        let changes = tx.open_table(CHANGES).map_err(|e| self.fail(e))?;
        for row in changes.iter().map_err(|e| self.fail(e))? {
            ids.insert(DocumentId::from_bytes(
                *row.map_err(|e| self.fail(e))?.0.value().0,
            ));
        }
        Ok(ids.into_iter().collect())
    }

    /// A document's snapshot and changes; `None` if the replica has neither.
    pub fn load(&self, id: DocumentId) -> Result<Option<StoredDoc>> {
        let tx = self.db().begin_read().map_err(|e| self.fail(e))?;
        let key = id.as_bytes();
        let snapshot = tx
            .open_table(SNAPSHOTS)
            .map_err(|e| self.fail(e))?
            .get(key)
            .map_err(|e| self.fail(e))?
            .map(|v| v.value().to_vec());
        let table = tx.open_table(CHANGES).map_err(|e| self.fail(e))?;
        let mut changes = Vec::new();
        for row in table
            .range((key, 0)..=(key, u64::MAX))
            .map_err(|e| self.fail(e))?
        {
            changes.push(row.map_err(|e| self.fail(e))?.1.value().to_vec());
        }
        if snapshot.is_none() && changes.is_empty() {
            return Ok(None);
        }
        Ok(Some(StoredDoc { snapshot, changes }))
    }

    /// Appends change chunks to a document and updates its index entry, in
    /// one durable transaction. Returns how many change rows the document
    /// now has beside its snapshot.
    pub fn append(&self, id: DocumentId, changes: &[u8], index: Option<&[u8]>) -> Result<usize> {
        let tx = self.db().begin_write().map_err(|e| self.fail(e))?;
        let rows = {
            let key = id.as_bytes();
            let mut table = tx.open_table(CHANGES).map_err(|e| self.fail(e))?;
            let (next, rows) = {
                let mut range = table
                    .range((key, 0)..=(key, u64::MAX))
                    .map_err(|e| self.fail(e))?;
                let count = range.by_ref().count();
                let last = table
                    .range((key, 0)..=(key, u64::MAX))
                    .map_err(|e| self.fail(e))?
                    .next_back()
                    .transpose()
                    .map_err(|e| self.fail(e))?
                    .map(|(k, _)| k.value().1 + 1)
                    .unwrap_or(0);
                (last, count)
            };
            if !changes.is_empty() {
                table
                    .insert((key, next), changes)
                    .map_err(|e| self.fail(e))?;
            }
            write_index(&tx, id, index).map_err(|e| self.fail(e))?;
            rows + usize::from(!changes.is_empty())
        };
        tx.commit().map_err(|e| self.fail(e))?;
        Ok(rows)
    }

    /// Replaces a document's change rows by `snapshot`, in one transaction.
    pub fn compact(&self, id: DocumentId, snapshot: &[u8]) -> Result<()> {
        let tx = self.db().begin_write().map_err(|e| self.fail(e))?;
        {
            let key = id.as_bytes();
            let mut table = tx.open_table(CHANGES).map_err(|e| self.fail(e))?;
            table
                .retain_in((key, 0)..=(key, u64::MAX), |_, _| false)
                .map_err(|e| self.fail(e))?;
            tx.open_table(SNAPSHOTS)
                .map_err(|e| self.fail(e))?
                .insert(key, snapshot)
                .map_err(|e| self.fail(e))?;
        }
        tx.commit().map_err(|e| self.fail(e))
    }

    /// The saved sync state of a document with a relay.
    pub fn sync_state(&self, relay: &str, id: DocumentId) -> Result<Option<Vec<u8>>> {
        let tx = self.db().begin_read().map_err(|e| self.fail(e))?;
        let table = tx.open_table(SYNC_STATES).map_err(|e| self.fail(e))?;
        Ok(table
            .get((relay, id.as_bytes()))
            .map_err(|e| self.fail(e))?
            .map(|v| v.value().to_vec()))
    }

    /// Saves sync states of several documents with a relay at once.
    pub fn save_sync_states(&self, relay: &str, states: &[(DocumentId, Vec<u8>)]) -> Result<()> {
        if states.is_empty() {
            return Ok(());
        }
        let tx = self.db().begin_write().map_err(|e| self.fail(e))?;
        {
            let mut table = tx.open_table(SYNC_STATES).map_err(|e| self.fail(e))?;
            for (id, state) in states {
                table
                    .insert((relay, id.as_bytes()), state.as_slice())
                    .map_err(|e| self.fail(e))?;
            }
        }
        tx.commit().map_err(|e| self.fail(e))
    }

    /// Every index entry.
    pub fn index_entries(&self) -> Result<Vec<(DocumentId, Vec<u8>)>> {
        let tx = self.db().begin_read().map_err(|e| self.fail(e))?;
        let table = tx.open_table(INDEX).map_err(|e| self.fail(e))?;
        let mut out = Vec::with_capacity(table.len().map_err(|e| self.fail(e))? as usize);
        for row in table.iter().map_err(|e| self.fail(e))? {
            let (k, v) = row.map_err(|e| self.fail(e))?;
            out.push((DocumentId::from_bytes(*k.value()), v.value().to_vec()));
        }
        Ok(out)
    }

    /// Replaces every index entry (after a rebuild).
    pub fn replace_index(&self, entries: &[(DocumentId, Vec<u8>)]) -> Result<()> {
        let tx = self.db().begin_write().map_err(|e| self.fail(e))?;
        {
            let mut table = tx.open_table(INDEX).map_err(|e| self.fail(e))?;
            table.retain(|_, _| false).map_err(|e| self.fail(e))?;
            for (id, entry) in entries {
                table
                    .insert(id.as_bytes(), entry.as_slice())
                    .map_err(|e| self.fail(e))?;
            }
        }
        tx.commit().map_err(|e| self.fail(e))
    }

    /// Records a refused change notice (JSON).
    pub fn record_rejected(&self, notice: &[u8]) -> Result<()> {
        let tx = self.db().begin_write().map_err(|e| self.fail(e))?;
        {
            let mut table = tx.open_table(REJECTED).map_err(|e| self.fail(e))?;
            let next = table
                .last()
                .map_err(|e| self.fail(e))?
                .map(|(k, _)| k.value() + 1)
                .unwrap_or(0);
            table.insert(next, notice).map_err(|e| self.fail(e))?;
        }
        tx.commit().map_err(|e| self.fail(e))
    }

    /// Every refused change notice, oldest first.
    pub fn rejected(&self) -> Result<Vec<Vec<u8>>> {
        let tx = self.db().begin_read().map_err(|e| self.fail(e))?;
        let table = tx.open_table(REJECTED).map_err(|e| self.fail(e))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(|e| self.fail(e))? {
            out.push(row.map_err(|e| self.fail(e))?.1.value().to_vec());
        }
        Ok(out)
    }
}

fn write_index(
    tx: &redb::WriteTransaction,
    id: DocumentId,
    entry: Option<&[u8]>,
) -> std::result::Result<(), redb::Error> {
    let mut table = tx.open_table(INDEX)?;
    match entry {
        Some(entry) => {
            table.insert(id.as_bytes(), entry)?;
        }
        None => {
            table.remove(id.as_bytes())?;
        }
    }
    Ok(())
}
