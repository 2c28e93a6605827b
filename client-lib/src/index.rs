//! What the replica's index tables hold per document, for listing and
//! dashboards without opening every document.
//!
//! [`index_entry`] reads only the root fields an entry needs, straight from
//! the document: it never hydrates a record, so a requirements document with
//! a long body costs no more than a task. It is lenient where
//! [`Record::read`](rapport_model::Record::read) is strict: a field of the
//! wrong type, or a date that is not `YYYY-MM-DD`, is left out of the entry
//! rather than failing it, so one odd field never hides a record from lists.
//! Entries are derived data: rebuild them from the documents at will.

use automerge::{ObjType, ROOT, ReadDoc, ScalarValue, Value};
use serde::{Deserialize, Serialize};

use rapport_model::{Date, Kind};

/// The version of [`IndexEntry`] this code writes. An entry stored with a
/// lower one lacks fields added since (they read as their defaults), so a
/// reader that needs them rebuilds the index first ([`IndexEntry::is_current`]).
///
/// 1: `csat`.
pub const ENTRY_VERSION: u32 = 2;

/// The custom field of a task that holds a feedback score: see
/// [`crate::dashboard`].
pub const CSAT_FIELD: &str = "csat";

/// The index row of one record document.
///
/// Fields that do not apply to a kind are `None` or empty: a customer has a
/// `stage` but no `status`, a task the reverse. Every field but `kind` may
/// be missing from stored bytes (an entry stored by an earlier version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// Which record the document holds.
    pub kind: Kind,
    /// The customer's `name`, or the `title` of a task or requirements
    /// document; empty for threads.
    #[serde(default)]
    pub title: String,
    /// The linked customer document (tasks, requirements).
    #[serde(default)]
    pub customer: Option<String>,
    /// The record a thread comments on.
    #[serde(default)]
    pub record: Option<String>,
    /// A customer's relationship: `client` or `customer`.
    #[serde(default)]
    pub relationship: Option<String>,
    /// A customer's lifecycle stage.
    #[serde(default)]
    pub stage: Option<String>,
    /// A task's status.
    #[serde(default)]
    pub status: Option<String>,
    /// A task's priority.
    #[serde(default)]
    pub priority: Option<String>,
    /// A task's assignees (base58 keys).
    #[serde(default)]
    pub assignees: Vec<String>,
    /// A customer's owning rep (base58 key).
    #[serde(default)]
    pub rep: Option<String>,
    /// A task's due date, `YYYY-MM-DD`.
    #[serde(default)]
    pub due: Option<String>,
    /// A customer's last contact, `YYYY-MM-DD`.
    #[serde(default)]
    pub last_contact: Option<String>,
    /// Tags of customers and tasks.
    #[serde(default)]
    pub tags: Vec<String>,
    /// A customer's lead score.
    #[serde(default)]
    pub score: Option<i64>,
    /// A thread's comments that are not resolved.
    #[serde(default)]
    pub open_comments: Option<u64>,
    /// The document's schema version.
    #[serde(default)]
    pub schema: u64,
    /// A task's custom field `csat` ([`CSAT_FIELD`]), if it is an integer:
    /// the score of a feedback submission.
    #[serde(default)]
    pub csat: Option<i64>,
    /// The [`ENTRY_VERSION`] that wrote the entry; 0 before versions.
    #[serde(default)]
    pub version: u32,
    /// Archived: kept, but left out of lists and the dashboard.
    #[serde(default)]
    pub archived: bool,
}

/// Why stored index bytes could not be read, or an entry not encoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// The bytes are not an index entry.
    #[error("stored index entry is not valid: {0}")]
    Decode(#[source] serde_json::Error),
    /// The entry could not be encoded.
    #[error("index entry could not be encoded: {0}")]
    Encode(#[source] serde_json::Error),
}

impl IndexEntry {
    /// The entry as stored in the index table (JSON).
    pub fn to_bytes(&self) -> Result<Vec<u8>, IndexError> {
        serde_json::to_vec(self).map_err(IndexError::Encode)
    }

    /// An entry from stored bytes. Fields added by later versions are
    /// ignored; fields missing (from earlier versions) take their defaults.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, IndexError> {
        serde_json::from_slice(bytes).map_err(IndexError::Decode)
    }

    /// Whether this version wrote the entry, so that every field is filled.
    pub fn is_current(&self) -> bool {
        self.version >= ENTRY_VERSION
    }
}

/// The index entry of `doc`, or `None` if it holds no record (no `kind`, or
/// one this version does not know).
pub fn index_entry<D: ReadDoc>(doc: &D) -> Option<IndexEntry> {
    let kind = Kind::parse(&string(doc, "kind")?)?;
    let title = match kind {
        Kind::Customer => string(doc, "name"),
        Kind::Task | Kind::Requirements => string(doc, "title"),
        Kind::Thread => None,
    };
    Some(IndexEntry {
        kind,
        title: title.unwrap_or_default(),
        customer: string(doc, "customer"),
        record: string(doc, "record"),
        relationship: string(doc, "relationship"),
        stage: string(doc, "stage"),
        status: string(doc, "status"),
        priority: string(doc, "priority"),
        assignees: strings(doc, "assignees"),
        rep: string(doc, "rep"),
        due: date(doc, "due"),
        last_contact: date(doc, "last_contact"),
        tags: strings(doc, "tags"),
        score: match scalar(doc, &ROOT, "score") {
            Some(ScalarValue::Int(score)) => Some(score),
            _ => None,
        },
        open_comments: (kind == Kind::Thread).then(|| open_comments(doc)),
        schema: match scalar(doc, &ROOT, "schema") {
            Some(ScalarValue::Uint(schema)) => schema,
            Some(ScalarValue::Int(schema)) => u64::try_from(schema).unwrap_or(0),
            _ => 0,
        },
        csat: (kind == Kind::Task).then(|| csat(doc)).flatten(),
        version: ENTRY_VERSION,
        archived: rapport_model::is_archived(doc),
    })
}

/// The integer in a task's custom field [`CSAT_FIELD`].
fn csat<D: ReadDoc>(doc: &D) -> Option<i64> {
    let fields = match doc.get(&ROOT, "fields").ok()?? {
        (Value::Object(ObjType::Map), id) => id,
        _ => return None,
    };
    match scalar(doc, &fields, CSAT_FIELD)? {
        ScalarValue::Str(text) => text.trim().parse().ok(),
        ScalarValue::Int(score) => Some(score),
        ScalarValue::Uint(score) => i64::try_from(score).ok(),
        _ => None,
    }
}

/// The scalar at `obj[key]`, if there is one.
fn scalar<D: ReadDoc>(doc: &D, obj: &automerge::ObjId, key: &str) -> Option<ScalarValue> {
    match doc.get(obj, key).ok()?? {
        (Value::Scalar(value), _) => Some(value.into_owned()),
        (Value::Object(_), _) => None,
    }
}

/// The string at the root's `key`, if there is one.
fn string<D: ReadDoc>(doc: &D, key: &str) -> Option<String> {
    let (value, id) = doc.get(&ROOT, key).ok()??;
    text_of(doc, value, &id)
}

/// A scalar string, or a text object's text (JS automerge 3 writes plain
/// JS strings as text objects).
fn text_of<D: ReadDoc>(doc: &D, value: Value<'_>, id: &automerge::ObjId) -> Option<String> {
    match value {
        Value::Scalar(value) => match value.as_ref() {
            ScalarValue::Str(text) => Some(text.to_string()),
            _ => None,
        },
        Value::Object(ObjType::Text) => doc.text(id).ok(),
        Value::Object(_) => None,
    }
}

/// The valid `YYYY-MM-DD` date at the root's `key`.
fn date<D: ReadDoc>(doc: &D, key: &str) -> Option<String> {
    string(doc, key).filter(|text| text.parse::<Date>().is_ok())
}

/// The strings in the list at the root's `key`; other items are skipped.
fn strings<D: ReadDoc>(doc: &D, key: &str) -> Vec<String> {
    let Some(list) = list(doc, key) else {
        return Vec::new();
    };
    doc.list_range(&list, ..)
        .filter_map(|item| {
            let id = item.id();
            text_of(doc, item.value.into_value(), &id)
        })
        .collect()
}

fn list<D: ReadDoc>(doc: &D, key: &str) -> Option<automerge::ObjId> {
    match doc.get(&ROOT, key).ok()?? {
        (Value::Object(ObjType::List), id) => Some(id),
        _ => None,
    }
}

/// How many comments of a thread are not resolved.
fn open_comments<D: ReadDoc>(doc: &D) -> u64 {
    let Some(comments) = list(doc, "comments") else {
        return 0;
    };
    let open = (0..doc.length(&comments))
        .filter_map(|index| match doc.get(&comments, index).ok()?? {
            (Value::Object(ObjType::Map), comment) => Some(comment),
            _ => None,
        })
        .filter(|comment| {
            !matches!(
                scalar(doc, comment, "resolved"),
                Some(ScalarValue::Boolean(true))
            )
        })
        .count();
    u64::try_from(open).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ScalarValue};
    use rapport_protocol::ids::{DocumentId, PublicKey};

    use super::*;
    use rapport_model::{
        Comment, Customer, Priority, Record, Relationship, Requirements, SCHEMA_VERSION, Stage,
        Task, Template, Thread,
    };

    type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

    fn entry_of(record: Record) -> Result<IndexEntry> {
        let mut doc = AutoCommit::new();
        record.write(&mut doc)?;
        Ok(index_entry(&doc).ok_or("a record has an index entry")?)
    }

    fn raw(entries: &[(&str, ScalarValue)]) -> Result<AutoCommit> {
        let mut doc = AutoCommit::new();
        for (key, value) in entries {
            doc.put(ROOT, *key, value.clone())?;
        }
        Ok(doc)
    }

    #[test]
    fn customers() -> Result {
        let rep = PublicKey::from_bytes([7; 32]);
        let mut customer = Customer::new("Acme Ltd", Relationship::Client);
        customer.stage = Stage::Other("on-hold".into());
        customer.score = 87;
        customer.set_rep(&rep);
        customer.last_contact = Some("2024-02-29".parse()?);
        customer.tags = vec!["retainer".into()];
        let entry = entry_of(Record::Customer(customer))?;
        assert_eq!(
            (entry.kind, entry.title.as_str()),
            (Kind::Customer, "Acme Ltd")
        );
        assert_eq!(entry.relationship.as_deref(), Some("client"));
        assert_eq!(entry.stage.as_deref(), Some("on-hold"));
        assert_eq!((entry.score, entry.schema), (Some(87), SCHEMA_VERSION));
        assert_eq!(entry.rep, Some(rep.to_string()));
        assert_eq!(entry.last_contact.as_deref(), Some("2024-02-29"));
        assert_eq!(entry.tags, ["retainer"]);
        assert_eq!((entry.status, entry.due), (None, None));
        Ok(())
    }

    #[test]
    fn tasks() -> Result {
        let (who, customer) = (
            PublicKey::from_bytes([1; 32]),
            DocumentId::from_bytes([3; 16]),
        );
        let mut task = Task::new("Send invoice");
        task.priority = Priority::Urgent;
        task.assign(&who);
        task.due = Some("2024-03-31".parse()?);
        task.set_customer(&customer);
        let entry = entry_of(Record::Task(task))?;
        assert_eq!(
            (entry.kind, entry.title.as_str()),
            (Kind::Task, "Send invoice")
        );
        let status = (entry.status.as_deref(), entry.priority.as_deref());
        assert_eq!(status, (Some("open"), Some("urgent")));
        assert_eq!(entry.assignees, [who.to_string()]);
        assert_eq!(entry.due.as_deref(), Some("2024-03-31"));
        assert_eq!(entry.customer, Some(customer.to_string()));
        assert_eq!(
            (entry.stage, entry.score, entry.open_comments),
            (None, None, None)
        );
        Ok(())
    }

    #[test]
    fn requirements_and_threads() -> Result {
        let brd = Requirements::from_template("Portal", Template::Brd);
        let entry = entry_of(Record::Requirements(brd))?;
        assert_eq!(
            (entry.kind, entry.title.as_str()),
            (Kind::Requirements, "Portal")
        );

        let (record, author) = (
            DocumentId::from_bytes([5; 16]),
            PublicKey::from_bytes([2; 32]),
        );
        let mut thread = Thread::new(&record);
        thread.add(Comment::new("a", &author, 1, "question"));
        thread.add(Comment::new("b", &author, 2, "answer").replying_to("a"));
        thread.set_resolved("a", true);
        let entry = entry_of(Record::Thread(thread))?;
        assert_eq!((entry.kind, entry.title.as_str()), (Kind::Thread, ""));
        assert_eq!(entry.record, Some(record.to_string()));
        assert_eq!(entry.open_comments, Some(1));
        Ok(())
    }

    #[test]
    fn documents_that_are_not_records_have_none() -> Result {
        assert_eq!(index_entry(&AutoCommit::new()), None);
        assert_eq!(index_entry(&raw(&[("kind", "banana".into())])?), None);
        assert_eq!(index_entry(&raw(&[("kind", 1_u64.into())])?), None);
        Ok(())
    }

    #[test]
    fn odd_fields_are_left_out() -> Result {
        let doc = raw(&[
            ("kind", "task".into()),
            ("title", 5_i64.into()),
            ("due", "soon".into()),
            ("schema", (-1_i64).into()),
        ])?;
        let entry = index_entry(&doc).ok_or("still a task")?;
        assert_eq!(
            (entry.title.as_str(), entry.due, entry.schema),
            ("", None, 0)
        );
        Ok(())
    }

    #[test]
    fn feedback_scores_and_entry_versions() -> Result {
        let mut task = Task::new("Feedback from Acme");
        task.fields.insert(CSAT_FIELD.into(), " 4 ".into());
        let entry = entry_of(Record::Task(task.clone()))?;
        assert_eq!((entry.csat, entry.version), (Some(4), ENTRY_VERSION));
        assert!(entry.is_current());

        task.fields.insert(CSAT_FIELD.into(), "great".into());
        assert_eq!(entry_of(Record::Task(task))?.csat, None);
        let mut customer = Customer::new("Acme", Relationship::Client);
        customer.fields.insert(CSAT_FIELD.into(), "5".into());
        assert_eq!(entry_of(Record::Customer(customer))?.csat, None);

        let older = IndexEntry::from_bytes(br#"{"kind":"task","title":"t"}"#)?;
        assert_eq!((older.version, older.csat), (0, None));
        assert!(!older.is_current());
        Ok(())
    }

    #[test]
    fn bytes_round_trip() -> Result {
        let entry = entry_of(Record::Customer(Customer::new(
            "Acme",
            Relationship::Customer,
        )))?;
        assert_eq!(IndexEntry::from_bytes(&entry.to_bytes()?)?, entry);
        let error = IndexEntry::from_bytes(br#"{"title":"no kind"}"#);
        assert!(matches!(error, Err(IndexError::Decode(_))));
        let error = IndexEntry::from_bytes(b"\xff not json");
        assert!(matches!(error, Err(IndexError::Decode(_))));
        let older = IndexEntry::from_bytes(br#"{"kind":"thread","future":1}"#)?;
        assert_eq!(
            (older.kind, older.schema, older.title.as_str()),
            (Kind::Thread, 0, "")
        );
        Ok(())
    }
}
