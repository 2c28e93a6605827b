//! The documents the store holds, kept in memory: a request for a document
//! the relay never held is answered without a storage read. Read at
//! opening with the documents' sizes (`super::sizes`), in the same pass.

use std::collections::HashSet;

use rapport_protocol::ids::DocumentId;

use super::Store;

impl Store {
    /// Whether the store may hold anything of a document. `false` is
    /// certain: nothing is stored for it.
    pub fn may_hold(&self, id: DocumentId) -> bool {
        self.held().contains(&id)
    }

    /// Every document the relay holds.
    pub fn held_ids(&self) -> Vec<DocumentId> {
        self.held().iter().copied().collect()
    }

    pub(super) fn held(&self) -> std::sync::MutexGuard<'_, HashSet<DocumentId>> {
        self.inner.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a document as held, inside the transaction that writes its
    /// first rows: before the commit, since one counted whose write then
    /// fails costs a needless read, and one missed would seem empty.
    pub(super) fn will_hold(&self, id: DocumentId) {
        self.held().insert(id);
    }
}

#[cfg(test)]
mod tests {
    use automerge::Automerge;
    use rapport_protocol::relay::StoredChange;

    use super::*;
    use crate::storage::tests::{change, temp_dir};

    #[test]
    fn the_documents_held_are_known_after_reopening_even_when_compacted() {
        use automerge::transaction::Transactable as _;
        let dir = temp_dir("held");
        let compacted = DocumentId::from_bytes([100; 16]);
        let never = DocumentId::from_bytes([5; 16]);
        let appended: Vec<DocumentId> = (1..5)
            .chain(6..20)
            .map(|n| DocumentId::from_bytes([n; 16]))
            .collect();
        let mut doc = Automerge::new();
        for n in 0..3 {
            let mut tx = doc.transaction();
            tx.put(automerge::ROOT, "n", n).unwrap();
            tx.commit();
        }
        let real: Vec<StoredChange> = doc
            .get_changes(&[])
            .iter()
            .map(StoredChange::from)
            .collect();
        {
            let store = Store::open(&dir).unwrap();
            assert!(!store.may_hold(appended[0]));
            for id in &appended {
                // Several rows each: the scan at opening skips over them.
                store
                    .append(*id, &[change(1, &[]), change(2, &[1])], &[])
                    .unwrap();
            }
            store.append(compacted, &real, &[]).unwrap();
            assert_eq!(store.compact(compacted, 1).unwrap(), 3);
            assert!(store.may_hold(appended[0]) && store.may_hold(compacted));
        }
        let store = Store::open(&dir).unwrap();
        for id in &appended {
            assert!(store.may_hold(*id), "{id}");
        }
        assert!(store.load_document(compacted).unwrap().changes.is_empty());
        assert!(store.may_hold(compacted), "held only as its snapshot");
        assert!(!store.may_hold(never));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
