//! The relay's storage: one redb file holding every document's changes and
//! the relay's own tables (see [`schema`]).
//!
//! Every method is blocking: call it from `spawn_blocking`. Each logical
//! operation is one write transaction, committed durably before it returns,
//! so a crash leaves either all of it or none of it.

mod automations;
mod backend;
pub mod backup;
mod claims;
pub(crate) mod codec;
mod compaction;
mod feed;
mod forms;
mod group;
mod held;
mod journal;
mod notifications;
mod removal;
mod schema;
mod sizes;
mod workspaces;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rapport_protocol::ids::{DocumentId, PublicKey};
use rapport_protocol::relay::StoredChange;
use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction};
use tracing::warn;

use automerge::Automerge;
use rapport_protocol::relay::StoredDocument;
use rapport_protocol::sync::load_document;
use schema::{
    ACTORS, AUDIT, AUTOMATION_OUTBOX, AUTOMATION_PENDING, AUTOMATION_SHARED, CHANGES, CLAIMS,
    COMPACTED, FEED, FORMS, META, NOTIFICATIONS, SCHEMA_VERSION, SNAPSHOTS, TOMBSTONES,
    WORKSPACE_DOCUMENTS, WORKSPACES,
};

pub use automations::{AutomationWrite, Pending};
pub use backend::Backend;
pub use feed::FeedRow;
pub use forms::{RelayKeys, SubmissionWrite};
pub use workspaces::WorkspaceRows;

pub(crate) use group::{GroupCommit, Write};

/// The file name of the database inside the data folder.
pub const DATABASE_FILE: &str = "relay.redb";

/// Why storage failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("cannot create the data folder {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: Box<redb::DatabaseError>,
    },
    #[error(
        "{path} was written by a newer rapport (schema {found}, this one reads up to {SCHEMA_VERSION})"
    )]
    NewerSchema { path: PathBuf, found: u32 },
    #[error("{path} holds a damaged record in `{table}`")]
    Corrupt { path: PathBuf, table: &'static str },
    #[error("{path} stayed busy (a backup reading?); its compaction is tried again shortly")]
    Busy { path: PathBuf },
    #[error("the relay's storage writer has stopped")]
    WriterGone,
    #[error("cannot start the storage writer for {path}: {source}")]
    Thread {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("storage error in {path}: {source}")]
    Database {
        path: PathBuf,
        #[source]
        source: Box<redb::Error>,
    },
}

/// The relay's database. Cheap to clone.
///
/// After an I/O error redb refuses every later operation until the
/// database is opened again, so a failed write (a full disk, say) marks the
/// database broken and the next operation reopens it: reads go on, and
/// writes succeed again once the disk does.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    backend: Backend,
    /// The open database; `None` while it needs opening again.
    db: Mutex<Option<Arc<Database>>>,
    broken: AtomicBool,
    /// Every document with stored changes or a snapshot (and perhaps a few
    /// whose first write failed): a request for a document the relay never
    /// held is answered without a storage read. About 40 bytes a document.
    held: Mutex<HashSet<DocumentId>>,
    /// Which documents changed lately ([`journal`]).
    journal: Mutex<journal::Journal>,
    /// The change feed's next sequence number ([`feed`]).
    feed_next: std::sync::atomic::AtomicU64,
    /// Where the feed ends, for readers waiting for more.
    feed_tick: tokio::sync::watch::Sender<u64>,
    /// The bytes each document takes ([`sizes`]).
    sizes: Mutex<HashMap<DocumentId, u64>>,
}

impl Store {
    /// Opens (or creates) `relay.redb` in `data_dir`, creating the folder.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        Self::open_on(data_dir, Backend::file())
    }

    /// Opens (or creates) `relay.redb` in `data_dir` on `backend`.
    pub fn open_on(data_dir: &Path, backend: Backend) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::CreateDir {
            path: data_dir.to_owned(),
            source,
        })?;
        let store = Self {
            inner: Arc::new(Inner {
                path: data_dir.join(DATABASE_FILE),
                backend,
                db: Mutex::new(None),
                broken: AtomicBool::new(false),
                held: Mutex::new(HashSet::new()),
                journal: Mutex::new(journal::Journal::default()),
                feed_next: std::sync::atomic::AtomicU64::new(1),
                feed_tick: tokio::sync::watch::Sender::new(0),
                sizes: Mutex::new(HashMap::new()),
            }),
        };
        store.database()?;
        store.check_schema()?;
        store.read_sizes()?;
        store.read_feed_end()?;
        // An erasure whose compaction did not happen before a stop.
        store.vacuum_if_due()?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The open database, opened again first if an I/O error broke it.
    fn database(&self) -> Result<Arc<Database>, StoreError> {
        let mut slot = self.inner.db.lock().unwrap_or_else(|e| e.into_inner());
        if self.inner.broken.swap(false, Ordering::AcqRel) && slot.take().is_some() {
            warn!(path = %self.path().display(), "reopening the database after an I/O error");
        }
        if let Some(db) = &*slot {
            return Ok(Arc::clone(db));
        }
        let db = self.inner.backend.open(self.path()).map_err(|source| {
            // Still unusable: the next operation tries again.
            self.inner.broken.store(true, Ordering::Release);
            StoreError::Open {
                path: self.path().to_owned(),
                source: Box::new(source),
            }
        })?;
        let db = Arc::new(db);
        *slot = Some(Arc::clone(&db));
        Ok(db)
    }

    fn begin_read(&self) -> Result<ReadTransaction, StoreError> {
        self.database()?.begin_read().map_err(|e| self.err(e))
    }

    fn begin_write(&self) -> Result<WriteTransaction, StoreError> {
        self.database()?.begin_write().map_err(|e| self.err(e))
    }

    /// Every storage error passes here; an I/O error marks the database
    /// for reopening.
    fn err(&self, source: impl Into<redb::Error>) -> StoreError {
        let source = source.into();
        if matches!(
            source,
            redb::Error::Io(_) | redb::Error::PreviousIo | redb::Error::DatabaseClosed
        ) {
            self.inner.broken.store(true, Ordering::Release);
        }
        StoreError::Database {
            path: self.path().to_owned(),
            source: Box::new(source),
        }
    }

    fn corrupt(&self, table: &'static str) -> StoreError {
        StoreError::Corrupt {
            path: self.path().to_owned(),
            table,
        }
    }

    fn check_schema(&self) -> Result<(), StoreError> {
        let tx = self.begin_write()?;
        {
            let mut meta = tx.open_table(META).map_err(|e| self.err(e))?;
            let found = match meta.get("schema_version").map_err(|e| self.err(e))? {
                Some(v) => Some(u32::from_le_bytes(
                    v.value().try_into().map_err(|_| self.corrupt("meta"))?,
                )),
                None => None,
            };
            match found {
                Some(found) if found > SCHEMA_VERSION => {
                    return Err(StoreError::NewerSchema {
                        path: self.path().to_owned(),
                        found,
                    });
                }
                Some(_) => {}
                None => {
                    meta.insert("schema_version", SCHEMA_VERSION.to_le_bytes().as_slice())
                        .map_err(|e| self.err(e))?;
                }
            }
            tx.open_table(CHANGES).map_err(|e| self.err(e))?;
            tx.open_table(SNAPSHOTS).map_err(|e| self.err(e))?;
            tx.open_table(COMPACTED).map_err(|e| self.err(e))?;
            tx.open_table(ACTORS).map_err(|e| self.err(e))?;
            tx.open_table(WORKSPACES).map_err(|e| self.err(e))?;
            tx.open_table(WORKSPACE_DOCUMENTS)
                .map_err(|e| self.err(e))?;
            tx.open_table(AUDIT).map_err(|e| self.err(e))?;
            tx.open_table(FORMS).map_err(|e| self.err(e))?;
            tx.open_table(AUTOMATION_PENDING).map_err(|e| self.err(e))?;
            tx.open_table(AUTOMATION_OUTBOX).map_err(|e| self.err(e))?;
            tx.open_table(AUTOMATION_SHARED).map_err(|e| self.err(e))?;
            tx.open_table(CLAIMS).map_err(|e| self.err(e))?;
            tx.open_table(TOMBSTONES).map_err(|e| self.err(e))?;
            tx.open_table(FEED).map_err(|e| self.err(e))?;
            tx.open_table(NOTIFICATIONS).map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// Whether a durable write goes through now: one small row in `meta`.
    pub fn check_writable(&self, now_millis: u64) -> Result<(), StoreError> {
        let tx = self.begin_write()?;
        {
            let mut meta = tx.open_table(META).map_err(|e| self.err(e))?;
            meta.insert("health_checked_at", now_millis.to_le_bytes().as_slice())
                .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// The relay's id, if it has one yet.
    pub fn relay_id_if_any(&self) -> Result<Option<String>, StoreError> {
        let tx = self.begin_read()?;
        let meta = tx.open_table(META).map_err(|e| self.err(e))?;
        let id = meta.get("relay_id").map_err(|e| self.err(e))?;
        match id.map(|v| String::from_utf8(v.value().to_vec())) {
            Some(Ok(id)) => Ok(Some(id)),
            Some(Err(_)) => Err(self.corrupt("meta")),
            None => Ok(None),
        }
    }

    /// The relay's id, made with `make` and stored the first time.
    pub fn relay_id(&self, make: impl FnOnce() -> String) -> Result<String, StoreError> {
        let tx = self.begin_write()?;
        let id = {
            let mut meta = tx.open_table(META).map_err(|e| self.err(e))?;
            let existing = meta
                .get("relay_id")
                .map_err(|e| self.err(e))?
                .map(|v| String::from_utf8(v.value().to_vec()));
            match existing {
                Some(Ok(id)) => id,
                Some(Err(_)) => return Err(self.corrupt("meta")),
                None => {
                    let id = make();
                    meta.insert("relay_id", id.as_bytes())
                        .map_err(|e| self.err(e))?;
                    id
                }
            }
        };
        tx.commit().map_err(|e| self.err(e))?;
        Ok(id)
    }

    /// A document: its snapshot, the changes inside it, and the changes
    /// stored since, in the order stored.
    pub fn load_document(&self, id: DocumentId) -> Result<StoredDocument, StoreError> {
        let tx = self.begin_read()?;
        let key = id.as_bytes();
        let snapshots = tx.open_table(SNAPSHOTS).map_err(|e| self.err(e))?;
        let snapshot = snapshots
            .get(key)
            .map_err(|e| self.err(e))?
            .map(|v| Arc::from(v.value()));
        let compacted_table = tx.open_table(COMPACTED).map_err(|e| self.err(e))?;
        let mut compacted = Vec::new();
        for row in compacted_table
            .range((key, 0)..=(key, u64::MAX))
            .map_err(|e| self.err(e))?
        {
            let (_, value) = row.map_err(|e| self.err(e))?;
            compacted
                .push(codec::decode_meta(value.value()).ok_or_else(|| self.corrupt("compacted"))?);
        }
        let table = tx.open_table(CHANGES).map_err(|e| self.err(e))?;
        let changes = self
            .change_rows(&table, id)?
            .into_iter()
            .map(|(_, change)| change)
            .collect();
        Ok(StoredDocument {
            snapshot,
            compacted,
            changes,
        })
    }

    /// The number after a document's last row in a table of numbered rows
    /// (`changes`, `compacted`): 0 when it has none.
    fn next_row(
        &self,
        table: &impl ReadableTable<(&'static [u8; 16], u64), &'static [u8]>,
        id: DocumentId,
    ) -> Result<u64, StoreError> {
        let key = id.as_bytes();
        match table
            .range((key, 0)..=(key, u64::MAX))
            .map_err(|e| self.err(e))?
            .next_back()
        {
            Some(row) => Ok(row.map_err(|e| self.err(e))?.0.value().1 + 1),
            None => Ok(0),
        }
    }

    /// A document's rows in the changes table, `(row, change)` in the order
    /// stored, from a read or a write transaction's table.
    fn change_rows(
        &self,
        table: &impl ReadableTable<(&'static [u8; 16], u64), &'static [u8]>,
        id: DocumentId,
    ) -> Result<Vec<(u64, StoredChange)>, StoreError> {
        let key = id.as_bytes();
        let mut rows = Vec::new();
        for row in table
            .range((key, 0)..=(key, u64::MAX))
            .map_err(|e| self.err(e))?
        {
            let (k, value) = row.map_err(|e| self.err(e))?;
            let change = codec::decode(value.value()).ok_or_else(|| self.corrupt("changes"))?;
            rows.push((k.value().1, change));
        }
        Ok(rows)
    }

    /// A document as automerge holds it: its snapshot with the changes
    /// stored since applied. Empty if nothing is stored.
    pub fn load_automerge(&self, id: DocumentId) -> Result<Automerge, StoreError> {
        let stored = self.load_document(id)?;
        load_document(
            stored.snapshot.as_deref(),
            stored.changes.iter().map(|c| &*c.bytes),
        )
        .map_err(|_| self.corrupt("changes"))
    }

    /// The key an actor is bound to, if any.
    pub fn actor_key(&self, actor: &[u8]) -> Result<Option<PublicKey>, StoreError> {
        let tx = self.begin_read()?;
        let table = tx.open_table(ACTORS).map_err(|e| self.err(e))?;
        let key = table.get(actor).map_err(|e| self.err(e))?;
        Ok(key.map(|k| PublicKey::from_bytes(*k.value())))
    }

    /// Every actor binding.
    pub fn actors(&self) -> Result<Vec<(Vec<u8>, PublicKey)>, StoreError> {
        let tx = self.begin_read()?;
        let table = tx.open_table(ACTORS).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(|e| self.err(e))? {
            let (actor, key) = row.map_err(|e| self.err(e))?;
            out.push((actor.value().to_vec(), PublicKey::from_bytes(*key.value())));
        }
        Ok(out)
    }

    /// Appends changes to a document and records new actor bindings, in one
    /// durable transaction.
    pub fn append(
        &self,
        id: DocumentId,
        changes: &[StoredChange],
        bindings: &[(Vec<u8>, PublicKey)],
    ) -> Result<(), StoreError> {
        let tx = self.begin_write()?;
        self.append_changes(&tx, id, changes, bindings)?;
        tx.commit().map_err(|e| self.err(e))?;
        self.note_changed([id]);
        Ok(())
    }

    /// The write [`Store::append`] makes, for a [`GroupCommit`]; with
    /// `pending` (the document's heads before these changes) it also marks
    /// the document for the automations, kept if it is marked already.
    pub(crate) fn appending(
        id: DocumentId,
        changes: Vec<StoredChange>,
        whole: Option<Arc<[u8]>>,
        bindings: Vec<(Vec<u8>, PublicKey)>,
        pending: Option<Vec<automerge::ChangeHash>>,
        claim: Option<PublicKey>,
    ) -> Write {
        Box::new(move |store, tx| {
            store.store_changes(tx, id, &changes, whole.as_deref(), &bindings)?;
            if let Some(key) = claim {
                store.claim(tx, id, key)?;
            }
            match &pending {
                Some(before) => store.mark_pending(tx, id, before),
                None => Ok(()),
            }
        })
    }

    /// Appends changes to a document and records actor bindings inside
    /// `tx`: the one way changes enter the `changes` table. Nothing enters
    /// for a document that was removed (a write that began before it went).
    fn append_changes(
        &self,
        tx: &WriteTransaction,
        id: DocumentId,
        changes: &[StoredChange],
        bindings: &[(Vec<u8>, PublicKey)],
    ) -> Result<(), StoreError> {
        self.store_changes(tx, id, changes, None, bindings)
    }

    /// [`Store::append_changes`]; with `whole`, the saved document all of
    /// `changes` arrived in (nothing of the document stored before), kept
    /// as its snapshot with their hashes and dependencies: the rows a
    /// compaction leaves, without a row for each change first.
    fn store_changes(
        &self,
        tx: &WriteTransaction,
        id: DocumentId,
        changes: &[StoredChange],
        whole: Option<&[u8]>,
        bindings: &[(Vec<u8>, PublicKey)],
    ) -> Result<(), StoreError> {
        if self.is_tombstoned(tx, id)? {
            return Ok(());
        }
        self.feed_append(tx, id, changes.iter().map(|c| c.hash))?;
        match whole {
            Some(saved) => self.fold(
                tx,
                id,
                saved,
                changes.iter().map(|c| (None, c.hash, c.deps.as_slice())),
            )?,
            None => {
                self.will_hold(id);
                let mut table = tx.open_table(CHANGES).map_err(|e| self.err(e))?;
                let key = id.as_bytes();
                let first = self.next_row(&table, id)?;
                for (seq, change) in (first..).zip(changes) {
                    let row = codec::encode(change);
                    self.grow(id, row.len() as u64);
                    table
                        .insert((key, seq), row.as_slice())
                        .map_err(|e| self.err(e))?;
                }
            }
        }
        self.bind_actors(tx, bindings)
    }

    /// Records which key each actor id belongs to, inside `tx`.
    fn bind_actors(
        &self,
        tx: &WriteTransaction,
        bindings: &[(Vec<u8>, PublicKey)],
    ) -> Result<(), StoreError> {
        let mut actors = tx.open_table(ACTORS).map_err(|e| self.err(e))?;
        for (actor, key) in bindings {
            actors
                .insert(actor.as_slice(), key.as_bytes())
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::ChangeHash;

    pub(super) fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rapport-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    pub(super) fn change(n: u8, deps: &[u8]) -> StoredChange {
        StoredChange {
            hash: ChangeHash([n; 32]),
            deps: deps.iter().map(|&d| ChangeHash([d; 32])).collect(),
            actor: vec![n; 16],
            bytes: Arc::from(vec![n; 10]),
        }
    }

    #[test]
    fn changes_and_bindings_survive_reopening() {
        let dir = temp_dir("reopen");
        let doc = DocumentId::from_bytes([1; 16]);
        let other = DocumentId::from_bytes([2; 16]);
        let key = PublicKey::from_bytes([9; 32]);
        {
            let store = Store::open(&dir).unwrap();
            store
                .append(
                    doc,
                    &[change(1, &[]), change(2, &[1])],
                    &[(vec![1; 16], key)],
                )
                .unwrap();
            store.append(other, &[change(7, &[])], &[]).unwrap();
            store.append(doc, &[change(3, &[2])], &[]).unwrap();
            assert_eq!(store.relay_id(|| "relay-a".into()).unwrap(), "relay-a");
        }
        let store = Store::open(&dir).unwrap();
        let hashes: Vec<u8> = store
            .load_document(doc)
            .unwrap()
            .changes
            .iter()
            .map(|c| c.hash.0[0])
            .collect();
        assert_eq!(hashes, [1, 2, 3]);
        assert_eq!(store.load_document(other).unwrap().changes.len(), 1);
        assert_eq!(store.actor_key(&[1; 16]).unwrap(), Some(key));
        assert_eq!(store.actor_key(&[2; 16]).unwrap(), None);
        assert_eq!(
            store.relay_id(|| "relay-b".into()).unwrap(),
            "relay-a",
            "kept"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_foreign_file_is_a_clear_error() {
        let dir = temp_dir("foreign");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(DATABASE_FILE), b"not a database at all, just text").unwrap();
        let err = Store::open(&dir).unwrap_err();
        assert!(err.to_string().contains(DATABASE_FILE), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
