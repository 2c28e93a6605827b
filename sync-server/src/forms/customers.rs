//! Finding the customer a submission is from, by email, without a client
//! library: the relay loads the workspace's documents from storage with
//! automerge and reads their root `kind` and `email`.
//!
//! This is off the hot path (a blocking thread, per submission) and cached:
//! per workspace, each document's stored change count (see
//! [`Store::stored_change_counts`]) with what it said. A document whose
//! count has not moved has not changed, so only documents changed since
//! the last submission are loaded again; the first submission of a
//! workspace after a start loads all of them. Checking the counts costs one
//! read transaction for the whole workspace.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use automerge::{Automerge, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use rapport_protocol::ids::DocumentId;
use tracing::debug;

use crate::relay::lock;
use crate::storage::{Store, StoreError};

/// What a document said when it had `version` changes.
#[derive(Debug, Clone)]
struct Seen {
    version: u64,
    /// The `email` of a customer record, lowercased; `None` for any other
    /// document.
    email: Option<String>,
}

/// What each document of one workspace said.
type WorkspaceIndex = HashMap<DocumentId, Seen>;

/// Per workspace, what each document said.
#[derive(Debug, Default)]
pub(crate) struct CustomerIndex {
    workspaces: Mutex<HashMap<String, Arc<Mutex<WorkspaceIndex>>>>,
}

impl CustomerIndex {
    /// The customer record among `documents` (the records of `workspace`)
    /// whose `email` is `email`, ignoring case and surrounding spaces. With
    /// several, the one with the smallest id, so that every submission
    /// picks the same. Blocking.
    pub(crate) fn find(
        &self,
        store: &Store,
        workspace: &str,
        documents: &[DocumentId],
        email: &str,
    ) -> Result<Option<DocumentId>, StoreError> {
        let wanted = email.trim().to_lowercase();
        let cache = Arc::clone(
            lock(&self.workspaces)
                .entry(workspace.to_owned())
                .or_default(),
        );
        // One submission at a time brings a workspace's cache up to date.
        let mut cache = lock(&cache);
        let versions = store.stored_change_counts(documents)?;
        cache.retain(|id, _| documents.contains(id));
        let mut loaded = 0usize;
        for (id, version) in documents.iter().zip(versions) {
            if cache.get(id).is_some_and(|seen| seen.version == version) {
                continue;
            }
            let email = customer_email(store, *id)?;
            loaded += 1;
            cache.insert(*id, Seen { version, email });
        }
        debug!(
            workspace,
            documents = documents.len(),
            loaded,
            "customer index up to date"
        );
        let mut found: Vec<DocumentId> = cache
            .iter()
            .filter(|(_, seen)| seen.email.as_deref() == Some(wanted.as_str()))
            .map(|(id, _)| *id)
            .collect();
        found.sort();
        Ok(found.first().copied())
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
        let find = |email| index.find(&store, "ws", &docs, email).unwrap();
        assert_eq!(
            find(" buyer@ACME.test"),
            Some(acme),
            "a task is not a customer"
        );
        assert_eq!(find("nobody@acme.test"), None);

        // The email changes: the index sees it, though cached.
        let heads = customer.get_heads();
        customer
            .transact(|tx| tx.put(ROOT, "email", "new@acme.test"))
            .unwrap();
        store.append(acme, &stored(&customer, &heads), &[]).unwrap();
        assert_eq!(find("buyer@acme.test"), None);
        assert_eq!(find("new@acme.test"), Some(acme));
        store.compact(acme, 1).unwrap();
        assert_eq!(find("new@acme.test"), Some(acme), "after compaction");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
