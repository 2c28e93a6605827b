//! Which documents changed, in the order their writes became durable: for
//! readers that keep something derived from documents up to date (the
//! forms' customer index) by looking only at what changed since they last
//! looked. In memory and bounded; a reader that falls behind, or comes
//! after a restart, is told so and rebuilds.

use std::collections::VecDeque;

use rapport_protocol::ids::DocumentId;

use super::Store;

/// How many entries the journal keeps: 16 bytes each.
const KEPT: usize = 1 << 16;

/// The journal: entry `first + i` is `docs[i]`.
#[derive(Debug, Default)]
pub(super) struct Journal {
    first: u64,
    docs: VecDeque<DocumentId>,
}

impl Journal {
    fn note(&mut self, id: DocumentId) {
        // A run of writes to one document (typing) is one entry.
        if self.docs.back() == Some(&id) {
            return;
        }
        if self.docs.len() == KEPT {
            self.docs.pop_front();
            self.first += 1;
        }
        self.docs.push_back(id);
    }

    fn end(&self) -> u64 {
        self.first + self.docs.len() as u64
    }

    fn since(&self, cursor: u64) -> Option<(Vec<DocumentId>, u64)> {
        if cursor < self.first || cursor > self.end() {
            return None;
        }
        let skip = (cursor - self.first) as usize;
        Some((self.docs.iter().skip(skip).copied().collect(), self.end()))
    }
}

impl Store {
    /// Notes that writes to `documents` (changes, or their listing in a
    /// workspace) are durable. Called after the commit, so that a reader
    /// who then loads a noted document sees the write.
    pub fn note_changed(&self, documents: impl IntoIterator<Item = DocumentId>) {
        let mut journal = self.journal();
        for id in documents {
            journal.note(id);
        }
        self.inner.feed_tick.send_replace(self.feed_end());
    }

    /// Wakes when the change feed grows.
    pub fn feed_watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.feed_tick.subscribe()
    }

    /// Where the journal ends now: a cursor from which
    /// [`Store::changed_since`] reports what comes next.
    pub fn journal_end(&self) -> u64 {
        self.journal().end()
    }

    /// The documents noted since `cursor`, and the cursor to ask from
    /// next; `None` if the journal no longer reaches back that far (or
    /// the relay restarted since), and the reader must start over.
    pub fn changed_since(&self, cursor: u64) -> Option<(Vec<DocumentId>, u64)> {
        self.journal().since(cursor)
    }

    fn journal(&self) -> std::sync::MutexGuard<'_, Journal> {
        self.inner.journal.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_sees_what_changed_since_and_is_told_when_it_fell_behind() {
        let doc = |n: usize| DocumentId::from_bytes([(n % 251) as u8; 16]);
        let mut journal = Journal::default();
        let start = journal.end();
        journal.note(doc(1));
        journal.note(doc(1));
        journal.note(doc(2));
        assert_eq!(
            journal.since(start),
            Some((vec![doc(1), doc(2)], 2)),
            "a run of writes to one document is one entry"
        );
        assert_eq!(journal.since(2), Some((vec![], 2)));
        assert_eq!(journal.since(3), None, "a cursor from before a restart");
        for n in 0..KEPT {
            journal.note(doc(n));
        }
        assert_eq!(journal.since(start), None, "fell behind");
        let (docs, end) = journal.since(journal.first).unwrap();
        assert_eq!((docs.len(), end), (KEPT, KEPT as u64 + 2));
    }
}
