//! Members' notifications (`notifications`: (member key, notification id)
//! → JSON), and how far the notifier has read the change feed (`meta`'s
//! `notify_cursor`), written together so that each write of the feed gives
//! its notifications once, across restarts.

use rapport_model::api::Notification;
use rapport_protocol::ids::{DocumentId, PublicKey};
use redb::{ReadableTable, WriteTransaction};

use super::schema::{META, NOTIFICATIONS};
use super::{Store, StoreError};

const CURSOR: &str = "notify_cursor";

impl Store {
    /// How far the notifier has read the change feed.
    pub fn notify_cursor(&self) -> Result<u64, StoreError> {
        let tx = self.begin_read()?;
        let meta = tx.open_table(META).map_err(|e| self.err(e))?;
        let value = meta.get(CURSOR).map_err(|e| self.err(e))?;
        match value {
            None => Ok(0),
            Some(bytes) => Ok(u64::from_le_bytes(
                bytes.value().try_into().map_err(|_| self.corrupt("meta"))?,
            )),
        }
    }

    /// Stores `notifications` that are not stored yet (by member and id),
    /// and the notifier's new `cursor` if any, in one transaction. Returns
    /// the ones that were new.
    pub fn save_notifications(
        &self,
        notifications: Vec<(PublicKey, Notification)>,
        cursor: Option<u64>,
    ) -> Result<Vec<(PublicKey, Notification)>, StoreError> {
        let tx = self.begin_write()?;
        let mut new = Vec::new();
        {
            let mut table = tx.open_table(NOTIFICATIONS).map_err(|e| self.err(e))?;
            for (key, notification) in notifications {
                let row = (key.as_bytes(), notification.id.as_str());
                // Nothing about a record removed since it was read.
                if table.get(row).map_err(|e| self.err(e))?.is_some()
                    || self.is_tombstoned(&tx, notification.record)?
                {
                    continue;
                }
                let json =
                    serde_json::to_vec(&notification).map_err(|_| self.corrupt("notifications"))?;
                table
                    .insert(row, json.as_slice())
                    .map_err(|e| self.err(e))?;
                new.push((key, notification));
            }
            if let Some(cursor) = cursor {
                let mut meta = tx.open_table(META).map_err(|e| self.err(e))?;
                meta.insert(CURSOR, cursor.to_le_bytes().as_slice())
                    .map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(new)
    }

    /// Every notification of `key`, in no particular order.
    pub fn notifications_of(&self, key: &PublicKey) -> Result<Vec<Notification>, StoreError> {
        let tx = self.begin_read()?;
        let table = tx.open_table(NOTIFICATIONS).map_err(|e| self.err(e))?;
        self.rows_of(&table, key)
    }

    /// `key`'s rows of `table`.
    fn rows_of(
        &self,
        table: &impl ReadableTable<(&'static [u8; 32], &'static str), &'static [u8]>,
        key: &PublicKey,
    ) -> Result<Vec<Notification>, StoreError> {
        let mut out = Vec::new();
        let k = key.as_bytes();
        for row in table.range((k, "")..).map_err(|e| self.err(e))? {
            let (row_key, value) = row.map_err(|e| self.err(e))?;
            if row_key.value().0 != k {
                break;
            }
            out.push(
                serde_json::from_slice(value.value()).map_err(|_| self.corrupt("notifications"))?,
            );
        }
        Ok(out)
    }

    /// Marks `key`'s notifications among `ids` read (all of them when
    /// `ids` is empty); returns how many were unread.
    pub fn mark_read(&self, key: &PublicKey, ids: &[String]) -> Result<u64, StoreError> {
        // Read and rewritten in one transaction: a removal meanwhile is
        // not undone.
        let tx = self.begin_write()?;
        let mut marked = 0;
        {
            let mut table = tx.open_table(NOTIFICATIONS).map_err(|e| self.err(e))?;
            let unread = self
                .rows_of(&table, key)?
                .into_iter()
                .filter(|n| !n.read && (ids.is_empty() || ids.contains(&n.id)));
            for mut notification in unread {
                notification.read = true;
                let json =
                    serde_json::to_vec(&notification).map_err(|_| self.corrupt("notifications"))?;
                table
                    .insert((key.as_bytes(), notification.id.as_str()), json.as_slice())
                    .map_err(|e| self.err(e))?;
                marked += 1;
            }
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(marked)
    }

    /// Inside `tx`: drops every notification about one of `documents`
    /// (they were deleted or erased; a notification holds a title and a
    /// comment's words).
    pub(super) fn drop_notifications_about(
        &self,
        tx: &WriteTransaction,
        documents: &[DocumentId],
    ) -> Result<(), StoreError> {
        let mut table = tx.open_table(NOTIFICATIONS).map_err(|e| self.err(e))?;
        table
            .retain(|_, value| {
                serde_json::from_slice::<Notification>(value)
                    .map_or(true, |n| !documents.contains(&n.record))
            })
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}
