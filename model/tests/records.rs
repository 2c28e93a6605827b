//! The CRM model against real automerge documents: round trips, tolerance
//! of what newer peers write, concurrent edits, rich text, errors.

use std::collections::BTreeMap;

use automerge::marks::{ExpandMark, Mark};
use automerge::transaction::Transactable;
use automerge::{Automerge, ObjId, ObjType, ROOT, ReadDoc, Value};
use rapport_model::{
    ChecklistItem, Comment, Customer, Date, DateError, Header, Kind, ModelError, Priority, Record,
    Relationship, Requirements, SCHEMA_VERSION, Stage, Status, Task, Template, Thread,
};
use rapport_protocol::ids::{DocumentId, PublicKey};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn key(byte: u8) -> PublicKey {
    PublicKey::from_bytes([byte; 32])
}

fn doc_id(byte: u8) -> DocumentId {
    DocumentId::from_bytes([byte; 16])
}

fn date(text: &str) -> Date {
    text.parse().expect("test dates are valid")
}

/// Run `edit` in one transaction of `doc`.
fn edit<T>(
    doc: &mut Automerge,
    edit: impl FnOnce(&mut automerge::transaction::Transaction<'_>) -> T,
) -> T {
    let mut tx = doc.transaction();
    let result = edit(&mut tx);
    tx.commit();
    result
}

fn written(record: &Record) -> Result<Automerge> {
    let mut doc = Automerge::new();
    edit(&mut doc, |tx| record.write(tx))?;
    Ok(doc)
}

fn acme() -> Customer {
    let mut customer = Customer::new("Acme Ltd", Relationship::Client);
    customer.contact = "Wile E. Coyote".into();
    customer.email = "wile@acme.example".into();
    customer.acquired = Some(date("2023-04-01"));
    customer.last_contact = Some(date("2024-02-29"));
    customer.stage = Stage::Active;
    customer.score = 87;
    customer.set_rep(&key(7));
    customer.tags = vec!["retainer".into(), "anvils".into()];
    customer
        .fields
        .insert("industry".into(), "explosives".into());
    customer
}

fn invoice_task() -> Task {
    let mut task = Task::new("Send March invoice");
    task.status = Status::InProgress;
    task.priority = Priority::High;
    task.tags = vec!["billing".into()];
    task.assign(&key(1));
    task.assign(&key(2));
    task.due = Some(date("2024-03-31"));
    task.checklist = vec![
        ChecklistItem::new("draft"),
        ChecklistItem {
            item: "send".into(),
            done: true,
        },
    ];
    task.subtasks = vec![doc_id(9).to_string()];
    task.fields.insert("product".into(), "Consulting".into());
    task.repeat = Some("monthly".into());
    task.set_customer(&doc_id(3));
    task.parent = Some(doc_id(4).to_string());
    task
}

fn discussion() -> Thread {
    let mut thread = Thread::new(&doc_id(5));
    thread.add(
        Comment::new("c1", &key(1), 1_700_000_000_000, "Is the budget fixed?")
            .mentioning([&key(2)]),
    );
    thread.add(Comment::new("c2", &key(2), 1_700_000_100_000, "Yes, 10k.").replying_to("c1"));
    thread
}

#[test]
fn every_record_round_trips() -> Result {
    let mut brd = Requirements::from_template("Client portal", Template::Brd);
    brd.set_customer(&doc_id(3));
    let records = [
        Record::Customer(acme()),
        Record::Task(invoice_task()),
        Record::Requirements(brd),
        Record::Thread(discussion()),
    ];
    for record in records {
        let doc = written(&record)?;
        // Written by a random actor, as a stock client writes: who wrote
        // the comments is unknown, whatever their `author` fields say.
        let mut expected = record.clone();
        if let Record::Thread(thread) = &mut expected {
            thread.comments.iter_mut().for_each(|c| c.author.clear());
        }
        assert_eq!(Record::read(&doc)?, expected);
        let header = Header::read(&doc)?;
        assert_eq!(
            (header.kind, header.schema),
            (record.kind(), SCHEMA_VERSION)
        );
    }
    Ok(())
}

#[test]
fn a_missing_field_reads_as_its_default() -> Result {
    let mut doc = Automerge::new();
    edit(&mut doc, |tx| {
        tx.put(ROOT, "kind", "customer")?;
        tx.put(ROOT, "name", "Bare Ltd")
    })?;
    assert_eq!(
        Customer::read(&doc)?,
        Customer::new("Bare Ltd", Relationship::Customer)
    );
    assert_eq!(Header::read(&doc)?.schema, 0);
    Ok(())
}

#[test]
fn writing_an_unchanged_record_changes_nothing() -> Result {
    let mut doc = written(&Record::Task(invoice_task()))?;
    let heads = doc.get_heads();
    let task = Task::read(&doc)?;
    edit(&mut doc, |tx| task.write(tx))?;
    assert_eq!(doc.get_heads(), heads);
    Ok(())
}

#[test]
fn unknown_fields_survive_read_modify_write() -> Result {
    let mut doc = written(&Record::Thread(discussion()))?;
    // A newer peer adds a root field and a field inside a comment.
    edit(&mut doc, |tx| -> Result {
        tx.put(ROOT, "pinned", true)?;
        let (_, comments) = tx.get(ROOT, "comments")?.ok_or("no comments")?;
        let (_, first) = tx.get(&comments, 0)?.ok_or("no comment")?;
        let reactions = tx.put_object(&first, "reactions", ObjType::Map)?;
        tx.put(&reactions, "👍", 3_i64)?;
        Ok(())
    })?;
    edit(&mut doc, |tx| {
        Thread::update(tx, |thread| {
            thread.set_resolved("c1", true);
            thread.add(Comment::new("c3", &key(1), 1_700_000_200_000, "Thanks"));
        })
    })?;
    let thread = Thread::read(&doc)?;
    assert!(thread.comment("c1").ok_or("c1")?.resolved);
    assert_eq!(thread.comments.len(), 3);
    assert_eq!(
        scalar(&doc, &ROOT, "pinned"),
        Some(automerge::ScalarValue::Boolean(true))
    );
    let (_, comments) = doc.get(ROOT, "comments")?.ok_or("no comments")?;
    let (_, first) = doc.get(&comments, 0)?.ok_or("no comment")?;
    let (_, reactions) = doc
        .get(&first, "reactions")?
        .ok_or("reactions were deleted")?;
    assert_eq!(
        scalar(&doc, &reactions, "👍"),
        Some(automerge::ScalarValue::Int(3))
    );
    Ok(())
}

fn scalar(doc: &Automerge, obj: &ObjId, key: &str) -> Option<automerge::ScalarValue> {
    match doc.get(obj, key).ok()?? {
        (Value::Scalar(value), _) => Some(value.into_owned()),
        _ => None,
    }
}

#[test]
fn an_unknown_stage_is_kept_through_a_write() -> Result {
    let mut doc = written(&Record::Customer(acme()))?;
    edit(&mut doc, |tx| tx.put(ROOT, "stage", "on-hold"))?;
    let mut customer = Customer::read(&doc)?;
    assert_eq!(customer.stage, Stage::Other("on-hold".into()));
    customer.score += 1;
    let heads = doc.get_heads();
    edit(&mut doc, |tx| customer.write(tx))?;
    assert_eq!(scalar(&doc, &ROOT, "stage"), Some("on-hold".into()));
    assert_eq!(
        scalar(&doc, &ROOT, "score"),
        Some(automerge::ScalarValue::Int(88))
    );
    // Only the score changed: one operation.
    let change = doc
        .get_changes(&heads)
        .into_iter()
        .next()
        .ok_or("no change")?;
    assert_eq!(change.len(), 1);
    Ok(())
}

#[test]
fn concurrent_edits_of_different_fields_both_survive() -> Result {
    let mut left = written(&Record::Customer(acme()))?;
    let mut right = left.fork();
    edit(&mut left, |tx| {
        Customer::update(tx, |c| c.email = "road@runner.example".into())
    })?;
    edit(&mut right, |tx| {
        Customer::update(tx, |c| {
            c.stage = Stage::Churned;
            c.tags.push("lapsed".into());
        })
    })?;
    left.merge(&mut right)?;
    right.merge(&mut left)?;
    for doc in [&left, &right] {
        let customer = Customer::read(doc)?;
        assert_eq!(customer.email, "road@runner.example");
        assert_eq!(customer.stage, Stage::Churned);
        assert_eq!(customer.tags, ["retainer", "anvils", "lapsed"]);
    }
    Ok(())
}

#[test]
fn concurrent_comments_both_survive() -> Result {
    let mut left = written(&Record::Thread(discussion()))?;
    let mut right = left.fork();
    edit(&mut left, |tx| {
        Thread::update(tx, |t| {
            t.add(Comment::new("l", &key(1), 1, "from the left"))
        })
    })?;
    edit(&mut right, |tx| {
        Thread::update(tx, |t| {
            t.add(Comment::new("r", &key(2), 2, "from the right"));
            t.set_resolved("c1", true);
        })
    })?;
    left.merge(&mut right)?;
    let thread = Thread::read(&left)?;
    let ids: Vec<_> = thread.comments.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), 4, "{ids:?}");
    assert!(ids.contains(&"l") && ids.contains(&"r"));
    assert_eq!(thread.open(), 3);
    Ok(())
}

fn body(doc: &Automerge) -> Result<ObjId> {
    match doc.get(ROOT, "body")? {
        Some((Value::Object(ObjType::Text), id)) => Ok(id),
        other => Err(format!("body is not text: {other:?}").into()),
    }
}

#[test]
fn concurrent_splices_into_the_body_merge() -> Result {
    let mut left = written(&Record::Requirements(Requirements::new(
        "Portal",
        "héllo world",
    )))?;
    let mut right = left.fork();
    edit(&mut left, |tx| {
        Requirements::update(tx, |r| r.body.splice(6, 0, "big "))
    })??;
    edit(&mut right, |tx| {
        Requirements::update(tx, |r| r.body.push_str("!"))
    })??;
    assert_eq!(Requirements::read(&left)?.body.as_str(), "héllo big world");
    left.merge(&mut right)?;
    assert_eq!(Requirements::read(&left)?.body.as_str(), "héllo big world!");
    Ok(())
}

#[test]
fn a_mark_on_the_body_survives_a_write_of_the_title() -> Result {
    let mut doc = written(&Record::Requirements(Requirements::from_template(
        "Portal",
        Template::Brd,
    )))?;
    let text = body(&doc)?;
    edit(&mut doc, |tx| {
        tx.mark(
            &text,
            Mark::new("bold".into(), true, 3, 8),
            ExpandMark::After,
        )
    })?;
    let before = doc.get_heads();
    edit(&mut doc, |tx| {
        Requirements::update(tx, |r| r.title = "Client portal".into())
    })?;
    assert_eq!(
        doc.get_changes(&before).first().map(|c| c.len()),
        Some(1),
        "one op: the title"
    );
    assert_eq!(body(&doc)?, text, "the text object was not replaced");
    let marks = doc.marks(&text)?;
    assert_eq!(marks.len(), 1);
    assert_eq!(
        (marks[0].name(), marks[0].start, marks[0].end),
        ("bold", 3, 8)
    );
    Ok(())
}

#[test]
fn a_body_edited_after_the_document_moved_is_stale() -> Result {
    let mut doc = written(&Record::Requirements(Requirements::new("Portal", "text")))?;
    let mut stale = Requirements::read(&doc)?;
    edit(&mut doc, |tx| {
        Requirements::update(tx, |r| r.body.push_str(" more"))
    })??;
    stale.body.splice(0, 0, "old ")?;
    let error = edit(&mut doc, |tx| stale.write(tx)).expect_err("stale edit must fail");
    assert!(matches!(error, ModelError::Stale(_)), "{error}");
    Ok(())
}

#[test]
fn a_read_record_copies_into_a_new_document_whole() -> Result {
    let doc = written(&Record::Requirements(Requirements::from_template(
        "Portal",
        Template::Brd,
    )))?;
    let copy = written(&Record::Requirements(Requirements::read(&doc)?))?;
    assert_eq!(
        Requirements::read(&copy)?.body.as_str(),
        Template::Brd.body()
    );
    Ok(())
}

#[test]
fn a_newer_schema_is_read_reported_and_kept() -> Result {
    let mut doc = written(&Record::Task(invoice_task()))?;
    edit(&mut doc, |tx| tx.put(ROOT, "schema", 7_u64))?;
    let header = Header::read(&doc)?;
    assert!(header.is_newer());
    assert!(matches!(
        header.ensure_known(),
        Err(ModelError::NewerSchema { found: 7, known: 1 })
    ));
    edit(&mut doc, |tx| Task::update(tx, |t| t.status = Status::Done))?;
    assert_eq!(Header::read(&doc)?.schema, 7);
    assert_eq!(Task::read(&doc)?.status, Status::Done);
    Ok(())
}

/// A document whose root holds `entries`.
fn raw(entries: &[(&str, automerge::ScalarValue)]) -> Result<Automerge> {
    let mut doc = Automerge::new();
    edit(&mut doc, |tx| {
        entries
            .iter()
            .try_for_each(|(k, v)| tx.put(ROOT, *k, v.clone()))
    })?;
    Ok(doc)
}

#[test]
fn bad_documents_are_typed_errors() -> Result {
    let error = Record::read(&raw(&[("name", "x".into())])?).expect_err("no kind");
    assert!(matches!(error, ModelError::MissingKind));
    let error = Record::read(&raw(&[("kind", "banana".into())])?).expect_err("banana");
    assert!(matches!(&error, ModelError::UnknownKind(kind) if kind == "banana"));
    let doc = raw(&[("kind", "customer".into()), ("name", 42_i64.into())])?;
    let error = Customer::read(&doc).expect_err("number for a name");
    assert!(
        matches!(error, ModelError::Field { field: "name", .. }),
        "{error}"
    );
    assert!(error.to_string().contains("`name`"), "{error}");
    let doc = raw(&[("kind", "task".into()), ("due", "2024-02-30".into())])?;
    let error = Record::read(&doc).expect_err("no such day");
    assert!(matches!(
        error,
        ModelError::Date {
            field: "due",
            source: DateError::Day { .. }
        }
    ));
    let doc = raw(&[("kind", 3_u64.into())])?;
    assert!(matches!(
        Record::read(&doc),
        Err(ModelError::Field { field: "kind", .. })
    ));
    let doc = raw(&[("kind", "thread".into()), ("schema", "one".into())])?;
    assert!(matches!(
        Record::read(&doc),
        Err(ModelError::Field {
            field: "schema",
            ..
        })
    ));
    let mut doc = written(&Record::Task(invoice_task()))?;
    let error = Customer::read(&doc).expect_err("a task");
    assert!(matches!(
        error,
        ModelError::WrongKind {
            expected: Kind::Customer,
            found: Kind::Task
        }
    ));
    let error = edit(&mut doc, |tx| acme().write(tx)).expect_err("writing over a task");
    assert!(matches!(error, ModelError::WrongKind { .. }));
    Ok(())
}

#[test]
fn custom_fields_can_be_removed() -> Result {
    let mut doc = written(&Record::Task(invoice_task()))?;
    edit(&mut doc, |tx| {
        Task::update(tx, |t| t.fields = BTreeMap::new())
    })?;
    assert!(Task::read(&doc)?.fields.is_empty());
    Ok(())
}

/// Puts `text` at `key` of `obj` as a text object, as JS automerge 3 does
/// with a plain JS string.
fn put_text(
    tx: &mut automerge::transaction::Transaction<'_>,
    obj: &ObjId,
    key: impl Into<automerge::Prop>,
    text: &str,
) -> Result<ObjId> {
    let key = key.into();
    let id = match key {
        automerge::Prop::Map(name) => tx.put_object(obj, name, ObjType::Text)?,
        automerge::Prop::Seq(index) => tx.insert_object(obj, index, ObjType::Text)?,
    };
    tx.splice_text(&id, 0, 0, text)?;
    Ok(id)
}

#[test]
fn text_objects_read_as_the_strings_they_hold() -> Result {
    let mut doc = Automerge::new();
    edit(&mut doc, |tx| -> Result {
        put_text(tx, &ROOT, "kind", "task")?;
        tx.put(ROOT, "schema", 1_u64)?;
        put_text(tx, &ROOT, "title", "Write the scope")?;
        put_text(tx, &ROOT, "status", "in_progress")?;
        put_text(tx, &ROOT, "due", "2026-12-24")?;
        let tags = tx.put_object(ROOT, "tags", ObjType::List)?;
        put_text(tx, &tags, 0_usize, "web")?;
        let checklist = tx.put_object(ROOT, "checklist", ObjType::List)?;
        let step = tx.insert_object(&checklist, 0, ObjType::Map)?;
        put_text(tx, &step, "item", "draft")?;
        tx.put(&step, "done", true)?;
        let fields = tx.put_object(ROOT, "fields", ObjType::Map)?;
        put_text(tx, &fields, "product", "Hosting")?;
        Ok(())
    })?;
    let task = Task::read(&doc)?;
    assert_eq!(task.title, "Write the scope");
    assert_eq!(task.status, Status::InProgress);
    assert_eq!(task.due, Some(date("2026-12-24")));
    assert_eq!(task.tags, ["web"]);
    assert_eq!(task.checklist[0].item, "draft");
    assert!(task.checklist[0].done);
    assert_eq!(task.fields["product"], "Hosting");

    let mut thread = Automerge::new();
    edit(&mut thread, |tx| -> Result {
        put_text(tx, &ROOT, "kind", "thread")?;
        put_text(tx, &ROOT, "record", &doc_id(5).to_string())?;
        let comments = tx.put_object(ROOT, "comments", ObjType::List)?;
        let comment = tx.insert_object(&comments, 0, ObjType::Map)?;
        put_text(tx, &comment, "id", "c1")?;
        put_text(tx, &comment, "author", &key(1).to_string())?;
        tx.put(&comment, "at", 1_700_000_000_000_i64)?;
        put_text(tx, &comment, "body", "Is the budget fixed?")?;
        let mentions = tx.put_object(&comment, "mentions", ObjType::List)?;
        put_text(tx, &mentions, 0_usize, &key(2).to_string())?;
        put_text(tx, &comment, "reply_to", "c0")?;
        Ok(())
    })?;
    let read = Thread::read(&thread)?;
    assert_eq!(read.record, doc_id(5).to_string());
    let comment = &read.comments[0];
    assert_eq!(comment.body, "Is the budget fixed?");
    assert_eq!(comment.mentions, [key(2).to_string()]);
    assert_eq!(comment.reply_to.as_deref(), Some("c0"));
    Ok(())
}

#[test]
fn an_archived_record_stays_archived_through_typed_writes_and_comes_back() -> Result<()> {
    let mut doc = automerge::AutoCommit::new();
    acme().write(&mut doc)?;
    assert!(!rapport_model::is_archived(&doc));
    rapport_model::set_archived(&mut doc, true)?;
    Customer::update(&mut doc, |c| c.stage = rapport_model::Stage::Won)?;
    assert!(
        rapport_model::is_archived(&doc),
        "a typed write kept the flag"
    );
    assert_eq!(Customer::read(&doc)?.stage, rapport_model::Stage::Won);
    rapport_model::set_archived(&mut doc, false)?;
    assert!(!rapport_model::is_archived(&doc));
    let mut thread = automerge::AutoCommit::new();
    rapport_model::Thread::new(&doc_id(1)).write(&mut thread)?;
    assert!(
        rapport_model::set_archived(&mut thread, true).is_err(),
        "threads follow their record"
    );
    Ok(())
}
