//! From an id prefix to a document, through the replica's index.

use anyhow::{Result, bail};
use rapport_client::Repo;
use rapport_client::index::IndexEntry;
use rapport_model::{Customer, Record, Requirements, Task, Thread};
use rapport_protocol::ids::DocumentId;

use crate::context::{records_of_kind, resolve};

/// The kinds of record, as the index names them and as commands name them.
const KINDS: [(&str, &str); 3] = [
    ("customer", "customer"),
    ("task", "task"),
    ("requirements", "doc"),
];

/// The customer whose id starts with `prefix`.
pub(super) fn customer(repo: &Repo, prefix: &str) -> Result<DocumentId> {
    of_kind(repo, prefix, "customer", "customer")
}

/// The task whose id starts with `prefix`.
pub(super) fn task(repo: &Repo, prefix: &str) -> Result<DocumentId> {
    of_kind(repo, prefix, "task", "task")
}

/// The requirements doc whose id starts with `prefix`.
pub(super) fn doc(repo: &Repo, prefix: &str) -> Result<DocumentId> {
    of_kind(repo, prefix, "requirements", "doc")
}

fn of_kind(repo: &Repo, prefix: &str, kind: &str, what: &str) -> Result<DocumentId> {
    let ids = records_of_kind(repo, kind)?.into_iter().map(|(id, _)| id);
    resolve(prefix, ids, what)
}

/// The customer, task or doc whose id starts with `prefix` (comment
/// threads are not records one comments on).
pub(super) fn record(repo: &Repo, prefix: &str) -> Result<DocumentId> {
    let bare = prefix.strip_prefix("automerge:").unwrap_or(prefix);
    let mut all = Vec::new();
    let mut kinds_matching = Vec::new();
    for (kind, what) in KINDS {
        let ids: Vec<DocumentId> = records_of_kind(repo, kind)?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        if !bare.is_empty() && ids.iter().any(|id| id.to_string().starts_with(bare)) {
            kinds_matching.push((ids.clone(), what));
        }
        all.extend(ids);
    }
    match kinds_matching.as_slice() {
        [] if !bare.is_empty() => bail!(
            "no customer, task or doc with an id starting `{bare}`; `rapport customer list`, `rapport task list` or `rapport doc list` shows them"
        ),
        [(ids, what)] => resolve(prefix, ids.iter().copied(), what),
        _ => resolve(prefix, all, "record"),
    }
}

/// The comment threads on `record`, oldest id first. Usually one; two when
/// replicas started a thread on the same record while apart.
pub(super) fn threads(repo: &Repo, record: DocumentId) -> Result<Vec<DocumentId>> {
    let record = record.to_string();
    let mut ids: Vec<DocumentId> = records_of_kind(repo, "thread")?
        .into_iter()
        .filter(|(_, entry): &(DocumentId, IndexEntry)| {
            entry.record.as_deref() == Some(record.as_str())
        })
        .map(|(id, _)| id)
        .collect();
    ids.sort_by_key(ToString::to_string);
    Ok(ids)
}

/// Reads the customer `id`.
pub(super) fn read_customer(repo: &Repo, id: DocumentId) -> Result<Customer> {
    match read_record(repo, id)? {
        Record::Customer(customer) => Ok(customer),
        other => bail!("{id} holds a {} record, not a customer", other.kind()),
    }
}

/// Reads the task `id`.
pub(super) fn read_task(repo: &Repo, id: DocumentId) -> Result<Task> {
    match read_record(repo, id)? {
        Record::Task(task) => Ok(task),
        other => bail!("{id} holds a {} record, not a task", other.kind()),
    }
}

/// Reads the requirements doc `id`.
pub(super) fn read_doc(repo: &Repo, id: DocumentId) -> Result<Requirements> {
    match read_record(repo, id)? {
        Record::Requirements(doc) => Ok(doc),
        other => bail!("{id} holds a {} record, not a doc", other.kind()),
    }
}

/// Reads the requirements document `id` and its body as Markdown.
pub(super) fn read_doc_body(repo: &Repo, id: DocumentId) -> Result<(Requirements, String)> {
    let doc = read_doc(repo, id)?;
    let body = repo.read(id, |d: &automerge::Automerge| {
        Requirements::body_markdown(d)
    })??;
    Ok((doc, body))
}

/// Reads the thread `id`.
pub(super) fn read_thread(repo: &Repo, id: DocumentId) -> Result<Thread> {
    match read_record(repo, id)? {
        Record::Thread(thread) => Ok(thread),
        other => bail!("{id} holds a {} record, not a comment thread", other.kind()),
    }
}

/// The record, or `None` after a warning on stderr: one unreadable
/// document does not hide the others from a list.
pub(super) fn readable<T>(record: Result<T>) -> Option<T> {
    record.map_err(|error| eprintln!("warning: {error}")).ok()
}

fn read_record(repo: &Repo, id: DocumentId) -> Result<Record> {
    match repo.read(id, Record::read)? {
        Ok(record) => Ok(record),
        Err(error) => {
            bail!("document {id} cannot be read as a record ({error}); a newer rapport may read it")
        }
    }
}

#[cfg(test)]
mod tests {
    use rapport_model::{Relationship, Task};

    use super::*;
    use crate::commands::records::testing::Home;

    #[test]
    fn prefixes_resolve_within_a_kind_and_across_kinds() {
        let home = Home::new("lookup");
        let repo = home.repo();
        let (acme, ()) = repo
            .create(|tx| Customer::new("Acme", Relationship::Client).write(tx))
            .unwrap();
        let (call, ()) = repo.create(|tx| Task::new("Call").write(tx)).unwrap();
        let acme_text = acme.to_string();
        assert_eq!(customer(&repo, &acme_text[..6]).unwrap(), acme);
        assert_eq!(record(&repo, &call.to_string()).unwrap(), call);
        assert_eq!(
            record(&repo, &format!("automerge:{acme_text}")).unwrap(),
            acme
        );

        let error = task(&repo, &acme_text).unwrap_err().to_string();
        assert!(
            error.contains("no task") && error.contains("rapport task list"),
            "{error}"
        );
        let error = record(&repo, "zzzz").unwrap_err().to_string();
        assert!(error.contains("no customer, task or doc"), "{error}");
        assert!(doc(&repo, "").unwrap_err().to_string().contains("empty id"));
        assert!(threads(&repo, acme).unwrap().is_empty());
    }

    #[test]
    fn ambiguous_prefixes_ask_for_more() {
        let home = Home::new("ambiguous");
        let repo = home.repo();
        let ids: Vec<DocumentId> = (0..59)
            .map(|n| {
                repo.create(|tx| Task::new(format!("t{n}")).write(tx))
                    .unwrap()
                    .0
            })
            .collect();
        let texts: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let shared = texts
            .iter()
            .find(|t| texts.iter().filter(|o| o[..1] == t[..1]).count() > 1)
            .map(|t| t[..1].to_owned())
            .unwrap(); // 59 ids, 58 base58 characters: two share the first
        let error = task(&repo, &shared).unwrap_err().to_string();
        assert!(error.contains("type more of the id"), "{error}");
        let error = record(&repo, &shared).unwrap_err().to_string();
        assert!(error.contains("type more of the id"), "{error}");
    }
}
