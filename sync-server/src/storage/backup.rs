//! A consistent copy of the relay's database while it serves: every table
//! read in one read transaction (a snapshot of one moment: every change
//! acknowledged before it began is in it), written into a new redb file
//! beside the target and renamed over it only once complete and synced,
//! so a failed backup leaves nothing that looks like one.

use std::path::{Path, PathBuf};

use redb::{Database, ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};

use super::schema::{
    ACTORS, AUDIT, AUTOMATION_OUTBOX, AUTOMATION_PENDING, AUTOMATION_SHARED, CHANGES, CLAIMS,
    COMPACTED, FEED, FORMS, META, NOTIFICATIONS, SNAPSHOTS, TOMBSTONES, WORKSPACE_DOCUMENTS,
    WORKSPACES,
};
use super::{Store, StoreError};

/// Why a backup, a restore or an export could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the backup {}: {reason}", path.display())]
    Write { path: PathBuf, reason: String },
    #[error("{} is not a rapport relay backup: {reason}", path.display())]
    NotABackup { path: PathBuf, reason: String },
    #[error("{} already holds a relay's database; move it away first, or restore with --force", path.display())]
    Occupied { path: PathBuf },
    #[error("the relay is running on {}; stop it before restoring", path.display())]
    Running { path: PathBuf },
    #[error("{} holds no relay database ({})", path.display(), super::DATABASE_FILE)]
    NoRelay { path: PathBuf },
    /// What the running relay said when it could not make the backup.
    #[error("{0}")]
    Relay(String),
    #[error("{} is not an empty folder; give a new or empty one", path.display())]
    NotEmpty { path: PathBuf },
    #[error("no workspace {0} on this relay")]
    UnknownWorkspace(String),
}

impl Store {
    /// Writes a consistent copy of the database to `to`; returns its size
    /// in bytes. Blocking; the relay goes on serving meanwhile.
    pub fn backup_to(&self, to: &Path) -> Result<u64, BackupError> {
        self.backup_to_on(to, &super::Backend::file())
    }

    /// [`Store::backup_to`], with the copy on `backend` (as a test puts it
    /// on a disk that fills up). A copy that fails is removed: nothing that
    /// looks like a complete backup is left.
    pub fn backup_to_on(&self, to: &Path, backend: &super::Backend) -> Result<u64, BackupError> {
        let write_error = |reason: String| BackupError::Write {
            path: to.to_owned(),
            reason,
        };
        let partial = partial_path(to);
        let _ = std::fs::remove_file(&partial);
        let result = (|| {
            let snapshot = self.begin_read()?;
            let copy = backend
                .open(&partial)
                .map_err(|e| write_error(e.to_string()))?;
            let tx = copy.begin_write().map_err(|e| write_error(e.to_string()))?;
            copy_tables(&snapshot, &tx).map_err(|e| write_error(e.to_string()))?;
            tx.commit().map_err(|e| write_error(e.to_string()))?;
            drop(copy);
            sync_file(&partial).map_err(|e| write_error(e.to_string()))?;
            std::fs::rename(&partial, to).map_err(|e| write_error(e.to_string()))?;
            std::fs::metadata(to)
                .map(|m| m.len())
                .map_err(|e| write_error(e.to_string()))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        result
    }
}

/// Puts the backup at `from` in place as the database of `data_dir`:
/// checked first (it must open as a relay database this version reads),
/// then renamed into place. Refuses a folder that holds a database unless
/// `force`, and a folder whose relay is running.
pub fn restore(from: &Path, data_dir: &Path, force: bool) -> Result<(), BackupError> {
    let target = data_dir.join(super::DATABASE_FILE);
    if target.exists() {
        if let Err(redb::DatabaseError::DatabaseAlreadyOpen) = Database::create(&target) {
            return Err(BackupError::Running {
                path: data_dir.to_owned(),
            });
        }
        if !force {
            return Err(BackupError::Occupied { path: target });
        }
    }
    let staging = data_dir.join("restoring");
    let _ = std::fs::remove_dir_all(&staging);
    let not_a_backup = |reason: String| BackupError::NotABackup {
        path: from.to_owned(),
        reason,
    };
    let result = (|| {
        std::fs::create_dir_all(&staging).map_err(|e| BackupError::Write {
            path: staging.clone(),
            reason: e.to_string(),
        })?;
        let staged = staging.join(super::DATABASE_FILE);
        std::fs::copy(from, &staged).map_err(|e| not_a_backup(e.to_string()))?;
        // Opening checks the file and its layout version.
        let store = Store::open(&staging).map_err(|e| not_a_backup(e.to_string()))?;
        if store.relay_id_if_any()?.is_none() {
            return Err(not_a_backup("it holds no relay id".into()));
        }
        drop(store);
        sync_file(&staged).map_err(|e| BackupError::Write {
            path: staged.clone(),
            reason: e.to_string(),
        })?;
        std::fs::rename(&staged, &target).map_err(|e| BackupError::Write {
            path: target.clone(),
            reason: e.to_string(),
        })
    })();
    let _ = std::fs::remove_dir_all(&staging);
    result
}

/// Where a backup to `to` is written until it is complete.
fn partial_path(to: &Path) -> PathBuf {
    let mut name = to.file_name().unwrap_or_default().to_owned();
    name.push(".partial");
    to.with_file_name(name)
}

fn sync_file(path: &Path) -> std::io::Result<()> {
    std::fs::File::open(path)?.sync_all()
}

fn copy_tables(from: &ReadTransaction, to: &WriteTransaction) -> Result<(), redb::Error> {
    copy(from, to, META)?;
    copy(from, to, CHANGES)?;
    copy(from, to, SNAPSHOTS)?;
    copy(from, to, COMPACTED)?;
    copy(from, to, WORKSPACES)?;
    copy(from, to, WORKSPACE_DOCUMENTS)?;
    copy(from, to, AUDIT)?;
    copy(from, to, ACTORS)?;
    copy(from, to, FORMS)?;
    copy(from, to, AUTOMATION_PENDING)?;
    copy(from, to, AUTOMATION_OUTBOX)?;
    copy(from, to, AUTOMATION_SHARED)?;
    copy(from, to, CLAIMS)?;
    copy(from, to, TOMBSTONES)?;
    copy(from, to, FEED)?;
    copy(from, to, NOTIFICATIONS)?;
    Ok(())
}

/// Every row of `table`, as the snapshot holds it.
fn copy<K: redb::Key + 'static, V: redb::Value + 'static>(
    from: &ReadTransaction,
    to: &WriteTransaction,
    table: TableDefinition<K, V>,
) -> Result<(), redb::Error> {
    let source = match from.open_table(table) {
        Ok(source) => source,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let mut target = to.open_table(table)?;
    for row in source.iter()? {
        let (key, value) = row?;
        target.insert(key.value(), value.value())?;
    }
    Ok(())
}
