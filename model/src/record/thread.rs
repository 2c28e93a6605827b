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
    /// The author's base58 public key. Read from the actor of the change
    /// that made the comment when that actor names a key (as rapport's
    /// clients' actors do), so nobody can write a comment in another's
    /// name; the field as written only for a stock client's comment.
    #[autosurgeon(hydrate = "loose_string")]
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
        for (comment, key) in comments.iter_mut().zip(writers(fields.doc())) {
            if let Some(key) = key {
                comment.author = key.to_string();
            }
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
