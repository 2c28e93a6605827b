//! Comment threads: the comments on one record, in their own document so
//! that commenting needs write access to the thread only.

use automerge::{ObjId, ObjType, ROOT, Value};
use autosurgeon::{Hydrate, ReadDoc, Reconcile};
use rapport_protocol::ids::{DocumentId, PublicKey};

use super::ModelError;
use super::fields::{Fields, loose_option, loose_string, loose_strings};

/// The comments on one record.
///
/// Comments are matched by `id` when written, so comments added on two
/// replicas at once both stay, and a change to one comment (resolving it)
/// touches only that comment.
#[derive(Debug, Clone, PartialEq, Eq, Default, Reconcile)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Thread {
    /// The document id of the record the comments are on.
    pub record: String,
    /// The comments, oldest first.
    pub comments: Vec<Comment>,
}

/// One comment.
#[derive(Debug, Clone, PartialEq, Eq, Reconcile, Hydrate)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Comment {
    /// Unique within the thread; chosen by the author's device.
    #[key]
    #[autosurgeon(hydrate = "loose_string")]
    pub id: String,
    /// The author's base58 public key, read from the actor of the change
    /// that made the comment (rapport's clients' actors name their key),
    /// so nobody can write a comment in another's name. Empty, "unknown",
    /// when that actor names no key (a stock client's random actor): the
    /// field as written is never shown, as anyone could have written it.
    /// An empty author is not written back, so reading and writing a
    /// thread leaves the field of such a comment as it was.
    #[autosurgeon(hydrate = "loose_string", reconcile = "reconcile_author")]
    pub author: String,
    /// When it was written, in unix milliseconds.
    pub at: i64,
    /// The text.
    #[autosurgeon(hydrate = "loose_string")]
    pub body: String,
    /// Base58 public keys of the people mentioned.
    #[autosurgeon(missing = "Default::default", hydrate = "loose_strings")]
    pub mentions: Vec<String>,
    /// The comment this answers.
    #[autosurgeon(missing = "Default::default", hydrate = "loose_option")]
    pub reply_to: Option<String>,
    /// Whether the question is settled.
    #[autosurgeon(missing = "Default::default")]
    pub resolved: bool,
}

record!(Thread, super::Kind::Thread);

impl Thread {
    /// An empty thread on `record`.
    pub fn new(record: &DocumentId) -> Self {
        Self {
            record: record.to_string(),
            comments: Vec::new(),
        }
    }

    /// The comment with `id`.
    pub fn comment(&self, id: &str) -> Option<&Comment> {
        self.comments.iter().find(|comment| comment.id == id)
    }

    /// Add `comment` at the end.
    pub fn add(&mut self, comment: Comment) {
        self.comments.push(comment);
    }

    /// Mark the comment with `id` resolved (or not); false if there is none.
    pub fn set_resolved(&mut self, id: &str, resolved: bool) -> bool {
        match self.comments.iter_mut().find(|comment| comment.id == id) {
            Some(comment) => {
                comment.resolved = resolved;
                true
            }
            None => false,
        }
    }

    /// The answers to the comment with `id`, oldest first.
    pub fn replies<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a Comment> + 'a {
        self.comments
            .iter()
            .filter(move |comment| comment.reply_to.as_deref() == Some(id))
    }

    /// How many comments are not resolved.
    pub fn open(&self) -> usize {
        self.comments
            .iter()
            .filter(|comment| !comment.resolved)
            .count()
    }

    fn read_fields<D: ReadDoc>(fields: &Fields<'_, D>) -> Result<Self, ModelError> {
        let mut comments: Vec<Comment> = fields.get("comments")?;
        let mut writers = writers(fields.doc()).into_iter();
        for comment in &mut comments {
            comment.author = writers
                .next()
                .flatten()
                .map_or_else(String::new, |key| key.to_string());
        }
        Ok(Self {
            record: fields.text("record")?,
            comments,
        })
    }
}

/// For each element of the `comments` list, the key its actor names.
fn writers<D: ReadDoc>(doc: &D) -> Vec<Option<PublicKey>> {
    let Ok(Some((Value::Object(ObjType::List), list))) = doc.get(&ROOT, "comments") else {
        return Vec::new();
    };
    (0..doc.length(&list))
        .map(|index| match doc.get(&list, index) {
            Ok(Some((_, ObjId::Id(_, actor, _)))) => PublicKey::of_actor(actor.to_bytes()),
            _ => None,
        })
        .collect()
}

/// Writes a comment's author unless it is unknown (empty): the field of a
/// comment whose writer names no key stays as it was.
fn reconcile_author<R: autosurgeon::Reconciler>(
    author: &String,
    reconciler: R,
) -> Result<(), R::Error> {
    if author.is_empty() {
        return Ok(());
    }
    author.reconcile(reconciler)
}

impl Comment {
    /// A comment by `author` at `at` (unix milliseconds).
    pub fn new(
        id: impl Into<String>,
        author: &PublicKey,
        at: i64,
        body: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            author: author.to_string(),
            at,
            body: body.into(),
            mentions: Vec::new(),
            reply_to: None,
            resolved: false,
        }
    }

    /// The same comment, mentioning `people`.
    pub fn mentioning<'a>(mut self, people: impl IntoIterator<Item = &'a PublicKey>) -> Self {
        self.mentions
            .extend(people.into_iter().map(PublicKey::to_string));
        self
    }

    /// The same comment, as an answer to the comment with `id`.
    pub fn replying_to(mut self, id: impl Into<String>) -> Self {
        self.reply_to = Some(id.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use automerge::{ActorId, Automerge, ReadDoc};

    use super::*;

    /// A key whose bytes are a point on the curve (the base point), as a
    /// key in an actor must be.
    fn writer() -> PublicKey {
        let mut bytes = [0x66; 32];
        bytes[0] = 0x58;
        PublicKey::from_bytes(bytes)
    }

    /// An actor of `key`'s, as rapport's clients make them.
    fn actor(key: &PublicKey) -> ActorId {
        let mut bytes = key.as_bytes().to_vec();
        bytes.extend([1; 8]);
        ActorId::from(bytes)
    }

    #[test]
    fn a_comment_by_an_actor_that_names_no_key_has_an_unknown_author() {
        let named = PublicKey::from_bytes([1; 32]);
        let mut doc = Automerge::new().with_actor(ActorId::from([9; 16]));
        doc.transact(|tx| {
            let mut thread = Thread::new(&DocumentId::from_bytes([1; 16]));
            thread.add(Comment::new("x", &named, 1, "in someone's name"));
            thread.write(tx)
        })
        .unwrap();
        let thread = Thread::read(&doc).unwrap();
        assert_eq!(thread.comments[0].author, "");

        // Someone answers: the unknown comment's field is left as it was.
        let mut doc = doc.fork().with_actor(actor(&writer()));
        doc.transact(|tx| Thread::update(tx, |t| t.add(Comment::new("y", &writer(), 2, "Who?"))))
            .unwrap();
        let thread = Thread::read(&doc).unwrap();
        assert_eq!(thread.comments[0].author, "");
        assert_eq!(thread.comments[1].author, writer().to_string());
        let comments = doc.get(automerge::ROOT, "comments").unwrap().unwrap().1;
        let first = doc.get(&comments, 0).unwrap().unwrap().1;
        let field = doc.get(&first, "author").unwrap().unwrap().0;
        assert_eq!(field.as_str(), Some(named.to_string().as_str()));
    }
}
