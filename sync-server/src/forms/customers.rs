//! Finding the customer a submission is from, by email, without a client
//! library: the relay loads documents from storage with automerge and
//! reads their root `kind` and `email`.
//!
//! Per workspace, an index of each customer record's email. The first
//! submission to a workspace after the relay starts builds it, reading
//! every record of the workspace once; from then on it follows the store's
//! journal of changed documents ([`Store::changed_since`]), so a submission
//! reads only the documents written since the one before it. Its cost does
//! not grow with the workspace, nor with the tasks earlier submissions
//! made. A journal that no longer reaches back that far means a rebuild.
//! This runs on a blocking thread, off the sync path.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use automerge::{Automerge, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use rapport_protocol::ids::DocumentId;
use tracing::debug;

use crate::relay::lock;
use crate::storage::{Store, StoreError};

/// The customer emails of one workspace, as of the journal's `cursor`.
#[derive(Debug, Default)]
struct WorkspaceIndex {
    cursor: u64,
    /// Each customer record's email, lowercased and trimmed.
    email_of: HashMap<DocumentId, String>,
    by_email: BTreeMap<String, BTreeSet<DocumentId>>,
}

impl WorkspaceIndex {
    /// What document `id` says now: a customer's `email`, or nothing.
    fn set(&mut self, id: DocumentId, email: Option<String>) {
        if let Some(old) = self.email_of.remove(&id)
            && let Some(ids) = self.by_email.get_mut(&old)
        {
            ids.remove(&id);
            if ids.is_empty() {
                self.by_email.remove(&old);
            }
        }
        if let Some(email) = email {
            self.by_email.entry(email.clone()).or_default().insert(id);
            self.email_of.insert(id, email);
        }
    }
}

/// Per workspace, its index (once built).
#[derive(Debug, Default)]
pub(crate) struct CustomerIndex {
    workspaces: Mutex<HashMap<String, Arc<Mutex<Option<WorkspaceIndex>>>>>,
}

impl CustomerIndex {
    /// The customer record of `workspace` whose `email` is `email`,
    /// ignoring case and surrounding spaces. With several, the one with
    /// the smallest id, so that every submission picks the same.
    /// `is_record` says whether a document is a record the workspace lists
    /// (not a comment thread); `records` lists them all, for a build.
    /// Blocking.
    pub(crate) fn find(
        &self,
        store: &Store,
        workspace: &str,
        email: &str,
        is_record: impl Fn(DocumentId) -> bool,
        records: impl FnOnce() -> Vec<DocumentId>,
    ) -> Result<Option<DocumentId>, StoreError> {
        let wanted = email.trim().to_lowercase();
        let cache = Arc::clone(
            lock(&self.workspaces)
                .entry(workspace.to_owned())
                .or_default(),
        );
        // One submission at a time brings a workspace's index up to date.
        let mut cache = lock(&cache);
        let changed = cache
            .as_ref()
            .and_then(|index| store.changed_since(index.cursor));
        let index = match (cache.as_mut(), changed) {
            (Some(index), Some((changed, next))) => {
                let changed: BTreeSet<DocumentId> = changed.into_iter().collect();
                let mut loaded = 0usize;
                for id in changed {
                    let email = if is_record(id) {
                        loaded += 1;
                        customer_email(store, id)?
                    } else {
                        None
                    };
                    index.set(id, email);
                }
                debug!(workspace, loaded, "customer index followed the journal");
                index.cursor = next;
                index
            }
            _ => {
                // The cursor is taken first: a document written during
                // the build is read again next time.
                let mut index = WorkspaceIndex {
                    cursor: store.journal_end(),
                    ..WorkspaceIndex::default()
                };
                let records = records();
                for id in &records {
                    index.set(*id, customer_email(store, *id)?);
                }
                debug!(workspace, records = records.len(), "customer index built");
                cache.insert(index)
            }
        };
        // A record no longer listed has left the workspace.
        Ok(index
            .by_email
            .get(&wanted)
            .and_then(|ids| ids.iter().copied().find(|id| is_record(*id))))
    }
}

/// The lowercased `email` of document `id` if it is a customer record.
fn customer_email(store: &Store, id: DocumentId) -> Result<Option<String>, StoreError> {
    let doc = match store.load_automerge(id) {
        Ok(doc) => doc,
        Err(e @ StoreError::Corrupt { .. }) => {
            debug!(document = %id, error = %e, "the document does not load; not a customer");
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    if root_text(&doc, "kind").as_deref() != Some("customer") {
        return Ok(None);
    }
    Ok(root_text(&doc, "email").map(|e| e.trim().to_lowercase()))
}

/// A root field that is a string, or a text object (as some JS writers
/// make them).
fn root_text(doc: &Automerge, key: &str) -> Option<String> {
    match doc.get(ROOT, key).ok()?? {
        (Value::Scalar(scalar), _) => match scalar.as_ref() {
            ScalarValue::Str(text) => Some(text.to_string()),
            _ => None,
        },
        (Value::Object(ObjType::Text), id) => doc.text(&id).ok(),
        (Value::Object(_), _) => None,
    }
}

#[cfg(test)]
mod tests {
    use automerge::transaction::Transactable;
    use rapport_protocol::relay::StoredChange;

    use super::*;

    fn stored(doc: &Automerge, after: &[automerge::ChangeHash]) -> Vec<StoredChange> {
        doc.get_changes(after)
            .iter()
            .map(StoredChange::from)
            .collect()
    }

    #[test]
    fn finds_the_customer_and_follows_changes_of_its_email() {
        let dir = std::env::temp_dir().join(format!("rapport-customers-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&dir).unwrap();
        let acme = DocumentId::from_bytes([1; 16]);
        let task = DocumentId::from_bytes([2; 16]);
        let mut customer = Automerge::new();
        customer
            .transact(|tx| {
                tx.put(ROOT, "kind", "customer")?;
                tx.put(ROOT, "email", "Buyer@Acme.test")
            })
            .unwrap();
        store.append(acme, &stored(&customer, &[]), &[]).unwrap();
        let mut other = Automerge::new();
        other
            .transact(|tx| {
                tx.put(ROOT, "kind", "task")?;
                tx.put(ROOT, "email", "buyer@acme.test")
            })
            .unwrap();
        store.append(task, &stored(&other, &[]), &[]).unwrap();

        let index = CustomerIndex::default();
        let docs = [acme, task];
        let reads = std::cell::Cell::new(0);
        let find = |email| {
            let is_record = |id| {
                reads.set(reads.get() + 1);
                docs.contains(&id)
            };
            index
                .find(&store, "ws", email, is_record, || docs.to_vec())
                .unwrap()
        };
        assert_eq!(
            find(" buyer@ACME.test"),
            Some(acme),
            "a task is not a customer"
        );
        assert_eq!(find("nobody@acme.test"), None);

        // The email changes: the index sees it, though built.
        let heads = customer.get_heads();
        customer
            .transact(|tx| tx.put(ROOT, "email", "new@acme.test"))
            .unwrap();
        store.append(acme, &stored(&customer, &heads), &[]).unwrap();
        assert_eq!(find("buyer@acme.test"), None);
        assert_eq!(find("new@acme.test"), Some(acme));
        store.compact(acme, 1).unwrap();
        assert_eq!(find("new@acme.test"), Some(acme), "after compaction");

        // Documents that did not change are not looked at again: a
        // thousand more tasks cost the next submission nothing.
        for n in 0..1000u32 {
            let id = DocumentId::from_bytes([
                n as u8,
                (n >> 8) as u8,
                9,
                9,
                9,
                9,
                9,
                9,
                9,
                9,
                9,
                9,
                9,
                9,
                9,
                9,
            ]);
            store.append(id, &stored(&other, &[]), &[]).unwrap();
        }
        find("new@acme.test");
        reads.set(0);
        assert_eq!(find("new@acme.test"), Some(acme));
        assert_eq!(reads.get(), 1, "only the answer was checked");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
