//! What a client may change in a comment thread, checked change by change
//! from its operations: the relay runs this on every change a client sends
//! to a thread ([`crate::Access::Comment`]); staff are not held to it.
//!
//! A client may
//! - add a comment: insert a map into the thread's `comments` list, and
//!   fill it;
//! - change, resolve or delete a comment it wrote: any operation inside an
//!   object its own actor made, or on the list element it inserted;
//! - write `kind: "thread"` and a `schema` this version knows at the root,
//!   which every write of a record repeats.
//!
//! Nothing else: not another person's comment (its body, its `resolved`),
//! not the root (so not the record it is about, nor its `kind`: a thread
//! cannot be turned into a record), and an `author` field only with its own
//! key. Who wrote a comment is shown from the actor of the change that made
//! it anyway ([`super::Thread::read`]); the field is kept for stock clients.
//!
//! "Its own actor" is decided by the caller (the relay binds every actor to
//! one key), so the check needs no more of the document than the ids of its
//! `comments` lists ([`ThreadRules::of`]). A thread nobody has written yet
//! may be made by a client: `kind`, the `record` it is listed for, and an
//! empty `comments` list.

use automerge::legacy::{Key, ObjectId, OpId, OpType};
use automerge::{ActorId, Change, ObjId, ObjType, ReadDoc, ScalarValue, Value};
use rapport_protocol::ids::{DocumentId, PublicKey};

use super::{Kind, SCHEMA_VERSION};

/// Why a change is more than a client may make in a thread.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommentRefusal {
    #[error("it changes the thread itself ({0}), not a comment")]
    Root(String),
    #[error("it changes a comment written by someone else")]
    OthersComment,
    #[error("it names {0} as a comment's author, not the writer")]
    Author(String),
}

/// What a client may change in one thread: the thread as the relay holds
/// it, reduced to what the check needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadRules {
    /// The ids of every `comments` list at the root: more than one when two
    /// replicas made the list at the same moment.
    lists: Vec<(u64, ActorId)>,
    /// For a thread nobody has written yet: the record it is about, which
    /// the first change may write at the root with an empty `comments`.
    creating: Option<String>,
}

impl ThreadRules {
    /// The rules for `doc`, a thread on `record`.
    pub fn of<D: ReadDoc>(doc: &D, record: &DocumentId) -> Self {
        if doc.keys(automerge::ROOT).next().is_none() {
            return Self {
                lists: Vec::new(),
                creating: Some(record.to_string()),
            };
        }
        let lists = doc
            .get_all(automerge::ROOT, "comments")
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(value, id)| match (value, id) {
                (Value::Object(ObjType::List), ObjId::Id(counter, actor, _)) => {
                    Some((counter, actor))
                }
                _ => None,
            })
            .collect();
        Self {
            lists,
            creating: None,
        }
    }

    /// Checks that `change` by `writer` is only what a client may do in
    /// the thread; `own` says whether an actor is the writer's (the
    /// change's own actor always is).
    pub fn check(
        &self,
        change: &Change,
        writer: &PublicKey,
        own: impl Fn(&ActorId) -> bool,
    ) -> Result<(), CommentRefusal> {
        let mine = |actor: &ActorId| actor == change.actor_id() || own(actor);
        let author = writer.to_string();
        for op in change.decode().operations {
            if let (Key::Map(name), OpType::Put(value)) = (&op.key, &op.action)
                && name == "author"
                && *value != ScalarValue::Str(author.as_str().into())
            {
                return Err(CommentRefusal::Author(value.to_string()));
            }
            match &op.obj {
                ObjectId::Root => self.check_root(&op.key, &op.action)?,
                ObjectId::Id(object) if mine(object.actor()) => {}
                ObjectId::Id(OpId(counter, actor))
                    if self.lists.iter().any(|(c, a)| c == counter && a == actor) =>
                {
                    let adds_comment = op.insert && op.action == OpType::Make(ObjType::Map);
                    let on_own_element = !op.insert
                        && op
                            .key
                            .to_opid()
                            .is_some_and(|element| mine(element.actor()));
                    if !(adds_comment || on_own_element) {
                        return Err(CommentRefusal::OthersComment);
                    }
                }
                ObjectId::Id(_) => return Err(CommentRefusal::OthersComment),
            }
        }
        Ok(())
    }

    /// The root operations every write of a thread repeats, and those that
    /// make a new thread; no others.
    fn check_root(&self, key: &Key, action: &OpType) -> Result<(), CommentRefusal> {
        let refused = || {
            CommentRefusal::Root(match key {
                Key::Map(name) => name.to_string(),
                Key::Seq(_) => "a list element".to_owned(),
            })
        };
        let Key::Map(name) = key else {
            return Err(refused());
        };
        let allowed = match (name.as_str(), action) {
            ("kind", OpType::Put(ScalarValue::Str(kind))) => kind.as_str() == Kind::Thread.as_str(),
            ("schema", OpType::Put(ScalarValue::Uint(n))) => *n <= SCHEMA_VERSION,
            ("schema", OpType::Put(ScalarValue::Int(n))) => (0..=SCHEMA_VERSION as i64).contains(n),
            ("record", OpType::Put(ScalarValue::Str(record))) => {
                self.creating.as_deref() == Some(record.as_str())
            }
            ("comments", OpType::Make(ObjType::List)) => self.creating.is_some(),
            _ => false,
        };
        if allowed { Ok(()) } else { Err(refused()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Comment, Thread};
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ROOT};

    fn key(n: u8) -> PublicKey {
        PublicKey::from_bytes([n; 32])
    }

    /// An actor of `key`'s, as rapport's clients make them.
    fn actor(key: &PublicKey, device: u8) -> ActorId {
        let mut bytes = key.as_bytes().to_vec();
        bytes.extend([device; 8]);
        ActorId::from(bytes)
    }

    /// A thread by staff (key 1) with one comment, forked for key 2 to
    /// write; the check of key 2's one change made by `edit`.
    fn client_edit(edit: impl FnOnce(&mut AutoCommit)) -> Result<(), CommentRefusal> {
        let (staff, client) = (key(1), key(2));
        let mut doc = AutoCommit::new().with_actor(actor(&staff, 1));
        let mut thread = Thread::new(&record());
        thread.add(Comment::new("s", &staff, 1, "staff's question"));
        thread.write(&mut doc).unwrap();
        doc.commit();
        let rules = ThreadRules::of(&doc, &record());
        let mut fork = doc.fork().with_actor(actor(&client, 1));
        edit(&mut fork);
        check(&mut fork, &rules)
    }

    fn record() -> DocumentId {
        DocumentId::from_bytes([7; 16])
    }

    /// The check of key 2's last change in `doc`.
    fn check(doc: &mut AutoCommit, rules: &ThreadRules) -> Result<(), CommentRefusal> {
        let hash = doc.commit().expect("the edit changes something");
        let change = doc.get_change_by_hash(&hash).unwrap().clone();
        rules.check(&change, &key(2), |a| *a == actor(&key(2), 2))
    }

    #[test]
    fn a_client_makes_a_new_thread_on_its_record_only() {
        let empty = AutoCommit::new();
        let rules = ThreadRules::of(&empty, &record());
        let mut doc = AutoCommit::new().with_actor(actor(&key(2), 1));
        let mut thread = Thread::new(&record());
        thread.add(Comment::new("c", &key(2), 1, "first"));
        thread.write(&mut doc).unwrap();
        assert_eq!(check(&mut doc, &rules), Ok(()));
        let mut elsewhere = AutoCommit::new().with_actor(actor(&key(2), 1));
        Thread::new(&DocumentId::from_bytes([8; 16]))
            .write(&mut elsewhere)
            .unwrap();
        assert_eq!(
            check(&mut elsewhere, &rules),
            Err(CommentRefusal::Root("record".into()))
        );
        let mut customer = AutoCommit::new().with_actor(actor(&key(2), 1));
        crate::record::Customer::new("Not a thread", crate::record::Relationship::Client)
            .write(&mut customer)
            .unwrap();
        assert!(check(&mut customer, &rules).is_err());
    }

    #[test]
    fn a_client_adds_changes_and_resolves_its_own_comments() {
        let client = key(2);
        let add = |doc: &mut AutoCommit| {
            Thread::update(doc, |t| t.add(Comment::new("c", &client, 2, "mine"))).unwrap();
        };
        assert_eq!(client_edit(add), Ok(()));
        assert_eq!(
            client_edit(|doc| {
                add(doc);
                doc.commit();
                Thread::update(doc, |t| {
                    t.set_resolved("c", true);
                    t.comments[1].body = "mine, edited".into();
                })
                .unwrap();
            }),
            Ok(())
        );
    }

    #[test]
    fn a_client_cannot_touch_anothers_comment_or_the_thread() {
        let resolve = client_edit(|doc| {
            Thread::update(doc, |t| t.set_resolved("s", true)).unwrap();
        });
        assert_eq!(resolve, Err(CommentRefusal::OthersComment));
        let rewrite = client_edit(|doc| {
            Thread::update(doc, |t| t.comments[0].body = "rewritten".into()).unwrap();
        });
        assert_eq!(rewrite, Err(CommentRefusal::OthersComment));
        let delete = client_edit(|doc| {
            Thread::update(doc, |t| t.comments.clear()).unwrap();
        });
        assert_eq!(delete, Err(CommentRefusal::OthersComment));
        let kind = client_edit(|doc| doc.put(ROOT, "kind", "customer").unwrap());
        assert_eq!(kind, Err(CommentRefusal::Root("kind".into())));
        let record = client_edit(|doc| doc.put(ROOT, "record", "elsewhere").unwrap());
        assert_eq!(record, Err(CommentRefusal::Root("record".into())));
        let schema = client_edit(|doc| doc.put(ROOT, "schema", 99_u64).unwrap());
        assert_eq!(schema, Err(CommentRefusal::Root("schema".into())));
    }

    #[test]
    fn a_comment_names_its_writer_as_author_or_none() {
        let forged = client_edit(|doc| {
            Thread::update(doc, |t| t.add(Comment::new("c", &key(1), 2, "as staff"))).unwrap();
        });
        assert!(
            matches!(forged, Err(CommentRefusal::Author(_))),
            "{forged:?}"
        );
    }
}
