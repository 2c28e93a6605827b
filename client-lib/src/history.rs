//! Who changed what and when: a document's automerge history, change by
//! change, and putting a field's earlier value back.
//!
//! Every change names its automerge actor. rapport's clients make actors
//! self-describing (the person's 32-byte public key, then random device
//! bytes; see [`Identity::actor_id`](crate::identity::Identity::actor_id)),
//! and a relay refuses a change whose actor starts with another person's key,
//! so a change that synced through a relay names its author's key. An actor
//! that does not start with a valid key (a stock automerge-repo client's
//! random one) names nobody: [`ChangeInfo::author`] is `None`. The relay's
//! registry binds such actors to keys too, but a replica does not hold that
//! registry yet.
//!
//! A change's time is the author's clock when it was made, in unix seconds
//! (as the JS automerge writes it); it is advisory, a device with a wrong
//! clock writes a wrong time, and changes made before rapport recorded
//! times carry none.
//!
//! Which fields a change touched comes from its operations: an operation on
//! the root map touches the key it writes, and an operation inside an object
//! (a list of tags, the text of a body) touches the root field that object
//! hangs from. This reads each change once, without replaying the document.
//!
//! [`restore`] writes a field's value as of an earlier change back as a new
//! change, so history keeps both the old edit and its undoing.
//!
//! ```
//! use automerge::{transaction::Transactable, AutoCommit, ROOT};
//! use rapport_client::history;
//!
//! let mut doc = AutoCommit::new();
//! doc.put(ROOT, "stage", "lead")?;
//! doc.commit();
//! doc.put(ROOT, "stage", "won")?;
//! doc.commit();
//! let changes = history::changes(doc.document());
//! assert_eq!(changes.len(), 2);
//! assert_eq!(changes[1].fields, ["stage"]);
//! let first = history::resolve_change(doc.document(), &changes[0].hash.to_string()[..8])?;
//! let value = history::value_at(doc.document(), "stage", first);
//! assert_eq!(value.map(|v| history::to_json(&v)), Some("lead".into()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use automerge::legacy::{Key, ObjectId, OpType};
use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, ChangeHash, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use automerge::{hydrate, transaction::Transaction};
use rapport_protocol::ids::{DocumentId, PublicKey};
use serde_json::json;

use crate::error::ClientError;
use crate::repo::Repo;

/// Root fields that say what a document is; restoring them would turn a
/// record into another or into none.
pub const PROTECTED_FIELDS: [&str; 2] = ["kind", "schema"];

/// One change of a document's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeInfo {
    /// The change's hash; history prints it, restore takes any unique
    /// prefix of its hex form.
    pub hash: ChangeHash,
    /// The automerge actor that made it.
    pub actor: ActorId,
    /// The person whose key the actor starts with; `None` for an actor that
    /// does not describe itself (see the module docs).
    pub author: Option<PublicKey>,
    /// When it was made, unix seconds by the author's clock; `None` if the
    /// change carries no time.
    pub time: Option<i64>,
    /// The change's message, if its author wrote one.
    pub message: Option<String>,
    /// The root fields it touched, sorted.
    pub fields: Vec<String>,
}

/// One change to a field, with the field's value right after it.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldChange {
    pub change: ChangeInfo,
    /// The field's value as of the change (JSON: text and lists as strings
    /// and arrays); `None` if the change removed the field.
    pub value: Option<serde_json::Value>,
}

/// What [`restore`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Restored {
    /// The change whose value was put back.
    pub from: ChangeHash,
    /// The value put back; `None` if the field did not exist then and was
    /// removed.
    pub value: Option<serde_json::Value>,
    /// The new change; `None` when the field already held that value.
    pub change: Option<ChangeHash>,
}

/// Why a history question has no answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// No change of the document has a hash starting so.
    #[error("no change starting `{prefix}` in this document; `rapport history ID` lists them")]
    UnknownChange { prefix: String },
    /// Several changes start so.
    #[error("`{prefix}` matches {count} changes; type more of the hash")]
    AmbiguousChange { prefix: String, count: usize },
    /// The text is not hexadecimal.
    #[error("`{prefix}` is not a change hash: use the hex hash `rapport history ID` prints")]
    NotAHash { prefix: String },
    /// No change ever touched the field.
    #[error("no field `{field}` in this document's history; its fields are: {known}")]
    UnknownField { field: String, known: String },
    /// The field says what the document is.
    #[error(
        "`{field}` says what the document is and cannot be restored (a customer's client or customer kind is the field `relationship`)"
    )]
    Protected { field: String },
    /// The replica failed.
    #[error(transparent)]
    Replica(#[from] ClientError),
}

/// Every change of `doc`, oldest first (each after the changes it builds
/// on).
pub fn changes(doc: &Automerge) -> Vec<ChangeInfo> {
    let mut owners = Owners::default();
    doc.get_changes(&[])
        .iter()
        .map(|change| ChangeInfo {
            hash: change.hash(),
            actor: change.actor_id().clone(),
            author: author_of(change.actor_id()),
            time: Some(change.timestamp()).filter(|&t| t != 0),
            message: change.message().map(str::to_owned),
            fields: owners.touched_by(change),
        })
        .collect()
}

/// The root field each object hangs from, by the operation that made the
/// object: (actor, counter) → field. Filled change by change in causal
/// order, so an object is known before any change touches it.
#[derive(Default)]
struct Owners(HashMap<ActorId, HashMap<u64, Rc<str>>>);

impl Owners {
    /// The root fields `change` touches, sorted; notes the objects it makes.
    fn touched_by(&mut self, change: &automerge::Change) -> Vec<String> {
        let expanded = change.decode();
        let mut fields: BTreeSet<Rc<str>> = BTreeSet::new();
        let start = expanded.start_op.get();
        for (counter, op) in (start..).zip(&expanded.operations) {
            let field = match (&op.obj, &op.key) {
                (ObjectId::Root, Key::Map(key)) => Some(Rc::from(key.as_str())),
                (ObjectId::Root, Key::Seq(_)) => None,
                (ObjectId::Id(obj), _) => self
                    .0
                    .get(obj.actor())
                    .and_then(|made| made.get(&obj.counter()))
                    .cloned(),
            };
            let Some(field) = field else { continue };
            if matches!(op.action, OpType::Make(_)) {
                self.0
                    .entry(expanded.actor_id.clone())
                    .or_default()
                    .insert(counter, field.clone());
            }
            fields.insert(field);
        }
        fields.iter().map(|field| field.to_string()).collect()
    }
}

/// The changes of `doc` that touched `field`, each with the field's value
/// right after it.
pub fn field_history(doc: &Automerge, field: &str) -> Result<Vec<FieldChange>, HistoryError> {
    let all = changes(doc);
    known_field(&all, field)?;
    Ok(all
        .into_iter()
        .filter(|change| change.fields.iter().any(|f| f == field))
        .map(|change| FieldChange {
            value: value_at(doc, field, change.hash).map(|v| to_json(&v)),
            change,
        })
        .collect())
}

/// The person a self-describing actor names: more than 32 bytes, the first
/// 32 a valid ed25519 public key (the relay's rule).
pub fn author_of(actor: &ActorId) -> Option<PublicKey> {
    let bytes = actor.to_bytes();
    if bytes.len() <= 32 {
        return None;
    }
    let key = PublicKey::from_bytes(bytes.get(..32)?.try_into().ok()?);
    key.verifying_key().ok().map(|_| key)
}

/// The change of `doc` whose hex hash starts with `prefix`.
pub fn resolve_change(doc: &Automerge, prefix: &str) -> Result<ChangeHash, HistoryError> {
    let prefix = prefix.trim().to_ascii_lowercase();
    if prefix.is_empty() || !prefix.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(HistoryError::NotAHash { prefix });
    }
    let matches: Vec<ChangeHash> = doc
        .get_changes(&[])
        .iter()
        .map(automerge::Change::hash)
        .filter(|hash| hash.to_string().starts_with(&prefix))
        .collect();
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => Err(HistoryError::UnknownChange { prefix }),
        many => Err(HistoryError::AmbiguousChange {
            prefix,
            count: many.len(),
        }),
    }
}

/// The value of the root field `field` as of change `at` (with every change
/// it builds on, and none made after or beside it); `None` if there was no
/// such field then.
pub fn value_at(doc: &Automerge, field: &str, at: ChangeHash) -> Option<hydrate::Value> {
    match doc.hydrate(Some(&[at])) {
        hydrate::Value::Map(mut root) => root.remove(field).map(|entry| entry.value),
        _ => None,
    }
}

/// Writes the value `field` had as of the change starting `change` back into
/// document `id`, as a new change, and returns once it is durable.
///
/// Lists, maps and text are brought to their old state with the fewest
/// operations automerge finds (text by a diff, so concurrent edits elsewhere
/// in it merge); a field that did not exist then is removed. Marks on
/// restored text are not brought back.
pub fn restore(
    repo: &Repo,
    id: DocumentId,
    field: &str,
    change: &str,
) -> Result<Restored, HistoryError> {
    if PROTECTED_FIELDS.contains(&field) {
        return Err(HistoryError::Protected {
            field: field.to_owned(),
        });
    }
    let (from, old) = repo.read(id, |doc| {
        known_field(&changes(doc), field)?;
        let from = resolve_change(doc, change)?;
        Ok::<_, HistoryError>((from, value_at(doc, field, from)))
    })??;
    // Read, then write: a change that lands in between is overwritten for
    // this field, which is what restoring means.
    let wrote = repo.change(id, |tx| put_field(tx, field, old.as_ref()))?;
    let change = if wrote {
        repo.read(id, |doc| doc.get_last_local_change().map(|c| c.hash()))?
    } else {
        None
    };
    Ok(Restored {
        from,
        value: old.as_ref().map(to_json),
        change,
    })
}

/// An error unless some change in `all` touched `field`.
fn known_field(all: &[ChangeInfo], field: &str) -> Result<(), HistoryError> {
    let known: BTreeSet<&str> = all
        .iter()
        .flat_map(|change| change.fields.iter().map(String::as_str))
        .collect();
    if known.contains(field) {
        return Ok(());
    }
    Err(HistoryError::UnknownField {
        field: field.to_owned(),
        known: known.into_iter().collect::<Vec<_>>().join(", "),
    })
}

/// Makes the root `field` hold `value` (or nothing), writing only what
/// differs; whether it wrote anything.
fn put_field(
    tx: &mut Transaction<'_>,
    field: &str,
    value: Option<&hydrate::Value>,
) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
    let before = tx.pending_ops();
    let current = tx.get(ROOT, field)?;
    match (value, current) {
        (None, None) => {}
        (None, Some(_)) => tx.delete(ROOT, field)?,
        (Some(hydrate::Value::Scalar(old)), Some((Value::Scalar(now), _))) if *now == *old => {}
        (Some(hydrate::Value::Scalar(old)), _) => tx.put(ROOT, field, old.clone())?,
        (Some(old), Some((Value::Object(kind), obj))) if same_type(old, kind) => {
            tx.update_object(&obj, old)?;
        }
        (Some(old), _) => {
            tx.batch_create_object(ROOT, field, old, false)?;
        }
    }
    Ok(tx.pending_ops() > before)
}

fn same_type(value: &hydrate::Value, kind: ObjType) -> bool {
    matches!(
        (value, kind),
        (hydrate::Value::Map(_), ObjType::Map | ObjType::Table)
            | (hydrate::Value::List(_), ObjType::List)
            | (hydrate::Value::Text(_), ObjType::Text)
    )
}

/// A value as JSON: maps as objects, lists as arrays, text as a string,
/// bytes as an array of numbers, counters and timestamps as numbers.
pub fn to_json(value: &hydrate::Value) -> serde_json::Value {
    match value {
        hydrate::Value::Scalar(scalar) => scalar_json(scalar),
        hydrate::Value::Map(map) => map
            .iter()
            .map(|(key, entry)| (key.clone(), to_json(&entry.value)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        hydrate::Value::List(list) => list.iter().map(|item| to_json(&item.value)).collect(),
        hydrate::Value::Text(text) => text.to_string().into(),
    }
}

fn scalar_json(scalar: &ScalarValue) -> serde_json::Value {
    match scalar {
        ScalarValue::Str(text) => json!(text.as_str()),
        ScalarValue::Int(n) | ScalarValue::Timestamp(n) => json!(n),
        ScalarValue::Uint(n) => json!(n),
        ScalarValue::F64(n) => json!(n),
        ScalarValue::Counter(counter) => json!(i64::from(counter)),
        ScalarValue::Boolean(b) => json!(b),
        ScalarValue::Bytes(bytes) => json!(bytes),
        ScalarValue::Null | ScalarValue::Unknown { .. } => serde_json::Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use automerge::AutoCommit;
    use automerge::transaction::Transactable;

    use super::*;

    type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

    /// The actor a rapport client with key seed `seed` uses.
    fn member(seed: u8) -> (PublicKey, ActorId) {
        let key =
            PublicKey::from(ed25519_dalek::SigningKey::from_bytes(&[seed; 32]).verifying_key());
        let mut actor = key.as_bytes().to_vec();
        actor.extend_from_slice(&[seed; 8]);
        (key, ActorId::from(actor))
    }

    #[test]
    fn each_change_names_its_author_time_and_fields() -> Result {
        let (ann, ann_actor) = member(1);
        let (bob, bob_actor) = member(2);
        let mut doc = AutoCommit::new().with_actor(ann_actor);
        doc.put(ROOT, "name", "Acme")?;
        let tags = doc.put_object(ROOT, "tags", ObjType::List)?;
        doc.insert(&tags, 0, "retainer")?;
        doc.commit_with(automerge::transaction::CommitOptions::default().with_time(1_700_000_000));

        let mut theirs = doc.fork().with_actor(bob_actor);
        theirs.insert(&tags, 1, "emea")?;
        theirs.put(ROOT, "stage", "won")?;
        theirs.commit();
        doc.merge(&mut theirs)?;
        let stranger = ActorId::from([9u8; 16]);
        let mut third = doc.fork().with_actor(stranger);
        let fields = third.put_object(ROOT, "fields", ObjType::Map)?;
        third.put(&fields, "industry", "retail")?;
        third.commit();
        doc.merge(&mut third)?;

        let all = changes(doc.document());
        let seen: Vec<(Option<PublicKey>, Option<i64>, Vec<&str>)> = all
            .iter()
            .map(|c| {
                (
                    c.author,
                    c.time,
                    c.fields.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (Some(ann), Some(1_700_000_000), vec!["name", "tags"]),
                (Some(bob), None, vec!["stage", "tags"]),
                (None, None, vec!["fields"]),
            ]
        );
        Ok(())
    }

    #[test]
    fn edits_deep_inside_an_object_touch_the_root_field_it_hangs_from() -> Result {
        let mut doc = AutoCommit::new();
        let checklist = doc.put_object(ROOT, "checklist", ObjType::List)?;
        let item = doc.insert_object(&checklist, 0, ObjType::Map)?;
        doc.put(&item, "item", "Collect the logo")?;
        doc.commit();
        let mut other = doc.fork().with_actor(ActorId::from([5u8; 16]));
        other.put(&item, "done", true)?;
        other.put(ROOT, "title", "Kickoff")?;
        other.commit();
        doc.merge(&mut other)?;
        doc.put(&item, "done", false)?;
        doc.commit();
        let fields: Vec<Vec<String>> = changes(doc.document())
            .into_iter()
            .map(|c| c.fields)
            .collect();
        assert_eq!(
            fields,
            [
                vec!["checklist"],
                vec!["checklist", "title"],
                vec!["checklist"]
            ]
        );
        Ok(())
    }

    #[test]
    fn an_actor_names_a_key_only_if_it_starts_with_a_valid_one() {
        let (key, actor) = member(3);
        assert_eq!(author_of(&actor), Some(key));
        // The key alone, with no device bytes, is not self-describing.
        assert_eq!(author_of(&ActorId::from(key.as_bytes().to_vec())), None);
        assert_eq!(author_of(&ActorId::from([7u8; 16])), None);
    }

    #[test]
    fn changes_resolve_by_unique_prefix() -> Result {
        let mut doc = AutoCommit::new();
        for score in 0..17 {
            doc.put(ROOT, "score", score)?;
            doc.commit();
        }
        let hashes: Vec<String> = changes(doc.document())
            .iter()
            .map(|c| c.hash.to_string())
            .collect();
        let hash = changes(doc.document())[1].hash;
        assert_eq!(resolve_change(doc.document(), &hashes[1])?, hash);
        let upper = hashes[1][..12].to_uppercase();
        assert_eq!(resolve_change(doc.document(), &upper)?, hash);
        for bad in ["", "xyz", "12 34"] {
            assert!(matches!(
                resolve_change(doc.document(), bad),
                Err(HistoryError::NotAHash { .. })
            ));
        }
        // 17 hashes, 16 hex digits: two share their first digit.
        let first = |h: &String| h[..1].to_owned();
        let shared = hashes
            .iter()
            .map(first)
            .find(|d| hashes.iter().filter(|h| first(h) == *d).count() > 1)
            .ok_or("pigeonhole")?;
        assert!(matches!(
            resolve_change(doc.document(), &shared),
            Err(HistoryError::AmbiguousChange { count: 2.., .. })
        ));
        // 17 hashes cover at most 17 of the 256 two-digit prefixes.
        let unused = (0..=255u8)
            .map(|n| format!("{n:02x}"))
            .find(|p| hashes.iter().all(|h| !h.starts_with(p.as_str())))
            .ok_or("pigeonhole")?;
        assert!(matches!(
            resolve_change(doc.document(), &unused),
            Err(HistoryError::UnknownChange { .. })
        ));
        Ok(())
    }

    #[test]
    fn field_history_has_the_value_after_each_change() -> Result {
        let mut doc = AutoCommit::new();
        doc.put(ROOT, "stage", "lead")?;
        doc.put(ROOT, "score", 10)?;
        doc.commit();
        doc.put(ROOT, "score", 40)?;
        doc.commit();
        doc.put(ROOT, "stage", "won")?;
        doc.commit();
        doc.delete(ROOT, "stage")?;
        doc.commit();
        let stage = field_history(doc.document(), "stage")?;
        let values: Vec<Option<serde_json::Value>> = stage.into_iter().map(|c| c.value).collect();
        assert_eq!(values, [Some(json!("lead")), Some(json!("won")), None]);
        let error = field_history(doc.document(), "email").err();
        assert_eq!(
            error.map(|e| e.to_string()),
            Some(
                "no field `email` in this document's history; its fields are: score, stage".into()
            )
        );
        Ok(())
    }

    #[test]
    fn values_become_json() -> Result {
        let mut doc = AutoCommit::new();
        let fields = doc.put_object(ROOT, "fields", ObjType::Map)?;
        doc.put(&fields, "industry", "retail")?;
        let body = doc.put_object(ROOT, "body", ObjType::Text)?;
        doc.splice_text(&body, 0, 0, "Scope")?;
        let tags = doc.put_object(ROOT, "tags", ObjType::List)?;
        doc.insert(&tags, 0, "a")?;
        doc.insert(&tags, 1, true)?;
        doc.commit();
        let at = doc.get_heads()[0];
        let doc = doc.document();
        let value = |field| value_at(doc, field, at).map(|v| to_json(&v));
        assert_eq!(value("fields"), Some(json!({ "industry": "retail" })));
        assert_eq!(value("body"), Some(json!("Scope")));
        assert_eq!(value("tags"), Some(json!(["a", true])));
        assert_eq!(value("missing"), None);
        Ok(())
    }
}
