//! The index entry every kind of record document gets: what `list` and the
//! dashboard read without loading documents.

use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT};
use rapport_client::index::{IndexEntry, index_entry};
use rapport_model::{Comment, Customer, Record, Relationship, Requirements, Task, Thread};
use rapport_protocol::ids::{DocumentId, PublicKey};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn written(record: &Record) -> Result<Automerge> {
    let mut doc = Automerge::new();
    let mut tx = doc.transaction();
    record.write(&mut tx)?;
    tx.commit();
    Ok(doc)
}

fn discussion() -> Thread {
    let mut thread = Thread::new(&DocumentId::from_bytes([5; 16]));
    let author = PublicKey::from_bytes([1; 32]);
    thread.add(Comment::new(
        "c1",
        &author,
        1_700_000_000_000,
        "Is the budget fixed?",
    ));
    thread
}

#[test]
fn every_record_has_an_index_entry() -> Result {
    let records = [
        (
            Record::Customer(Customer::new("Acme Ltd", Relationship::Client)),
            "Acme Ltd",
        ),
        (
            Record::Task(Task::new("Send March invoice")),
            "Send March invoice",
        ),
        (
            Record::Requirements(Requirements::new("Portal", "body")),
            "Portal",
        ),
        (Record::Thread(discussion()), ""),
    ];
    for (record, title) in records {
        let entry = index_entry(&written(&record)?).ok_or("no index entry")?;
        assert_eq!((entry.kind, entry.title.as_str()), (record.kind(), title));
        assert_eq!(IndexEntry::from_bytes(&entry.to_bytes()?)?, entry);
    }
    let entry = index_entry(&written(&Record::Thread(discussion()))?).ok_or("thread")?;
    assert_eq!(
        entry.record,
        Some(DocumentId::from_bytes([5; 16]).to_string())
    );
    let mut banana = Automerge::new();
    let mut tx = banana.transaction();
    tx.put(ROOT, "kind", "banana")?;
    tx.commit();
    assert_eq!(index_entry(&banana), None);
    Ok(())
}
