//! A copy of the replica's database: every table read in one read
//! transaction, written into a new file beside the target and renamed
//! over it only once complete, so a failed backup leaves nothing that
//! looks like one. The identity key is not in it (`rapport key export`).

use std::path::{Path, PathBuf};

use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction,
};

use super::schema::{CHANGES, INDEX, META, REJECTED, SNAPSHOTS, SYNC_STATES};
use super::{DATABASE_FILE, Result, Store};
use crate::error::ClientError;

impl Store {
    /// Writes a consistent copy of the database to `to`; returns its size
    /// in bytes.
    pub fn backup_to(&self, to: &Path) -> Result<u64> {
        let failed = |e: &dyn std::fmt::Display| ClientError::Database {
            path: to.to_owned(),
            reason: format!("cannot write the backup: {e}"),
        };
        let mut name = to.file_name().unwrap_or_default().to_owned();
        name.push(".partial");
        let partial = to.with_file_name(name);
        let _ = std::fs::remove_file(&partial);
        let result = (|| {
            let snapshot = self.db().begin_read().map_err(|e| self.fail(e))?;
            let copy = Database::create(&partial).map_err(|e| failed(&e))?;
            let tx = copy.begin_write().map_err(|e| failed(&e))?;
            copy_tables(&snapshot, &tx).map_err(|e| failed(&e))?;
            tx.commit().map_err(|e| failed(&e))?;
            drop(copy);
            std::fs::File::open(&partial)
                .and_then(|f| f.sync_all())
                .map_err(|e| failed(&e))?;
            std::fs::rename(&partial, to).map_err(|e| failed(&e))?;
            std::fs::metadata(to)
                .map(|m| m.len())
                .map_err(|e| failed(&e))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        result
    }
}

/// Puts the replica backup at `from` in place in `home`: checked first (it
/// must open as a replica this version reads). Refuses a home whose
/// replica exists unless `force`.
pub fn restore(from: &Path, home: &Path, force: bool) -> Result<()> {
    let target = home.join(DATABASE_FILE);
    let refused = |reason: String| ClientError::Database {
        path: from.to_owned(),
        reason,
    };
    if target.exists()
        && let Err(redb::DatabaseError::DatabaseAlreadyOpen) = Database::create(&target)
    {
        return Err(refused(format!(
            "the replica in {} is in use (is `rapport sync --watch` running?)",
            home.display()
        )));
    }
    if target.exists() && !force {
        return Err(refused(format!(
            "{} already holds a replica; pass --force to replace it",
            home.display()
        )));
    }
    let staging: PathBuf = home.join("restoring");
    let _ = std::fs::remove_dir_all(&staging);
    let result = (|| {
        std::fs::create_dir_all(&staging).map_err(|e| refused(e.to_string()))?;
        let staged = staging.join(DATABASE_FILE);
        std::fs::copy(from, &staged).map_err(|e| refused(e.to_string()))?;
        drop(Store::open(&staging).map_err(|e| refused(format!("not a replica backup: {e}")))?);
        std::fs::rename(&staged, &target).map_err(|e| refused(e.to_string()))
    })();
    let _ = std::fs::remove_dir_all(&staging);
    result
}

fn copy_tables(
    from: &ReadTransaction,
    to: &WriteTransaction,
) -> std::result::Result<(), redb::Error> {
    copy(from, to, META)?;
    copy(from, to, SNAPSHOTS)?;
    copy(from, to, CHANGES)?;
    copy(from, to, SYNC_STATES)?;
    copy(from, to, INDEX)?;
    copy(from, to, REJECTED)?;
    Ok(())
}

/// Every row of `table`, as the snapshot holds it.
fn copy<K: redb::Key + 'static, V: redb::Value + 'static>(
    from: &ReadTransaction,
    to: &WriteTransaction,
    table: TableDefinition<K, V>,
) -> std::result::Result<(), redb::Error> {
    let source = from.open_table(table)?;
    let mut target = to.open_table(table)?;
    for row in source.iter()? {
        let (key, value) = row?;
        target.insert(key.value(), value.value())?;
    }
    Ok(())
}
