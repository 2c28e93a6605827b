//! The change feed as stored: one row per durable write of changes to a
//! document (`feed`: sequence → when, the document, the changes' hashes),
//! written in the same transaction as the changes, so that a cursor (a
//! sequence number) means the same after a restart. The newest
//! [`KEPT`] rows are kept; what each change touched is worked out when the
//! feed is read (`crate::feed`).

use std::sync::atomic::Ordering;

use automerge::ChangeHash;
use rapport_protocol::ids::DocumentId;
use redb::{ReadableTable, WriteTransaction};

use super::schema::FEED;
use super::{Store, StoreError};

/// How many rows the feed keeps: about 60 bytes each for one change.
pub(crate) const KEPT: u64 = 200_000;
/// Rows are dropped once every this many writes.
const PRUNE_EVERY: u64 = 1024;

/// One row of the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedRow {
    pub cursor: u64,
    /// When the write became durable, unix milliseconds.
    pub at: u64,
    pub document: DocumentId,
    pub changes: Vec<ChangeHash>,
}

impl Store {
    /// Appends a row for `changes` of `document` inside `tx`, and every so
    /// often drops rows past the [`KEPT`] newest.
    pub(super) fn feed_append(
        &self,
        tx: &WriteTransaction,
        document: DocumentId,
        changes: impl Iterator<Item = ChangeHash>,
    ) -> Result<(), StoreError> {
        self.feed_append_keeping(tx, document, changes, KEPT)
    }

    fn feed_append_keeping(
        &self,
        tx: &WriteTransaction,
        document: DocumentId,
        changes: impl Iterator<Item = ChangeHash>,
        kept: u64,
    ) -> Result<(), StoreError> {
        let mut table = tx.open_table(FEED).map_err(|e| self.err(e))?;
        let cursor = self.inner.feed_next.fetch_add(1, Ordering::AcqRel);
        let mut row = Vec::with_capacity(8 + 16 + 32);
        row.extend_from_slice(&crate::relay::now().0.to_le_bytes());
        row.extend_from_slice(document.as_bytes());
        for hash in changes {
            row.extend_from_slice(&hash.0);
        }
        table
            .insert(cursor, row.as_slice())
            .map_err(|e| self.err(e))?;
        if cursor.is_multiple_of(PRUNE_EVERY) && cursor > kept {
            table
                .retain_in(..cursor - kept, |_, _| false)
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// The cursor after the newest row: where a reader that wants only
    /// what comes next starts.
    pub fn feed_end(&self) -> u64 {
        self.inner
            .feed_next
            .load(Ordering::Acquire)
            .saturating_sub(1)
    }

    /// Up to `limit` rows after `cursor`, oldest first; `None` if rows
    /// right after `cursor` were dropped already (the reader fell more
    /// than [`KEPT`] writes behind). Cursor 0 is the oldest row kept.
    pub fn feed_since(
        &self,
        cursor: u64,
        limit: usize,
    ) -> Result<Option<Vec<FeedRow>>, StoreError> {
        let tx = self.begin_read()?;
        let table = tx.open_table(FEED).map_err(|e| self.err(e))?;
        if let Some(first) = table.first().map_err(|e| self.err(e))?
            && cursor > 0
            && first.0.value() > cursor.saturating_add(1)
        {
            return Ok(None);
        }
        let mut rows = Vec::new();
        let Some(after) = cursor.checked_add(1) else {
            return Ok(Some(Vec::new()));
        };
        for row in table.range(after..).map_err(|e| self.err(e))?.take(limit) {
            let (key, value) = row.map_err(|e| self.err(e))?;
            let bytes = value.value();
            if bytes.len() < 24 || (bytes.len() - 24) % 32 != 0 {
                return Err(self.corrupt("feed"));
            }
            let at = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
            let document = DocumentId::from_bytes(bytes[8..24].try_into().expect("16 bytes"));
            let changes = bytes[24..]
                .chunks_exact(32)
                .map(|h| ChangeHash(h.try_into().expect("32 bytes")))
                .collect();
            rows.push(FeedRow {
                cursor: key.value(),
                at,
                document,
                changes,
            });
        }
        Ok(Some(rows))
    }

    /// Reads where the feed ends, at opening.
    pub(super) fn read_feed_end(&self) -> Result<(), StoreError> {
        let tx = self.begin_read()?;
        let table = tx.open_table(FEED).map_err(|e| self.err(e))?;
        let last = table
            .last()
            .map_err(|e| self.err(e))?
            .map_or(0, |(key, _)| key.value());
        self.inner.feed_next.store(last + 1, Ordering::Release);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::tests::temp_dir;

    #[test]
    fn cursors_survive_reopening_and_a_reader_past_the_kept_rows_is_told() {
        let dir = temp_dir("feed");
        let doc = DocumentId::from_bytes([3; 16]);
        let hash = |n: u64| ChangeHash([n as u8; 32]);
        {
            let store = Store::open(&dir).unwrap();
            let tx = store.begin_write().unwrap();
            for n in 1..=2 * PRUNE_EVERY {
                store
                    .feed_append_keeping(&tx, doc, [hash(n)].into_iter(), 100)
                    .unwrap();
            }
            tx.commit().unwrap();
        }
        let store = Store::open(&dir).unwrap();
        let end = 2 * PRUNE_EVERY;
        assert_eq!(store.feed_end(), end);
        let tail = store.feed_since(end - 2, 10).unwrap().unwrap();
        assert_eq!(
            tail.iter().map(|r| r.cursor).collect::<Vec<_>>(),
            [end - 1, end]
        );
        assert_eq!(tail[1].changes, [hash(end)]);
        assert_eq!(tail[1].document, doc);
        // Rows before the last prune are gone, and a reader there is told.
        assert!(store.feed_since(5, 10).unwrap().is_none());
        let oldest = store.feed_since(0, 1).unwrap().unwrap();
        assert_eq!(oldest[0].cursor, end - 100);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
