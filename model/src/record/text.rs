//! Rich text: an automerge Text object, edited by splices.
//!
//! [`RichText`] plays the part of `autosurgeon::Text`, which it replaces for
//! two reasons found while building the model (autosurgeon 0.14,
//! automerge 0.12):
//!
//! - `autosurgeon::Text::splice` takes a *byte* offset into its Rust string
//!   and hands the same number to automerge, which counts *characters*
//!   (Unicode code points, its default). After any non-ASCII character the
//!   edit lands in the wrong place: inserting `"big "` before `"world"` in
//!   `"héllo world"` gives `"héllo wbig orld"` in the document.
//! - a hydrated `autosurgeon::Text` written into an empty document (copying
//!   a record) writes an empty text: only its edits are replayed.
//!
//! `RichText` counts positions in characters, converts them to the unit of
//! the document's text encoding (`TextEncoding::platform_default`, which is
//! what every document we load or create uses) and, when written where it
//! did not come from, writes its whole value.
//!
//! Marks (bold, links, comments anchored in the text) live on the document's
//! text object, not in `RichText`. They survive a write because a write
//! never replaces the text: it replays the splices made since the read, and
//! a record whose body was not edited writes nothing to it.

use automerge::{ObjId, ObjType, TextEncoding, Value};
use autosurgeon::reconcile::{LoadKey, StaleHeads, TextReconciler};
use autosurgeon::{Hydrate, HydrateError, Prop, ReadDoc, Reconcile, ReconcileError, Reconciler};

use super::ModelError;

/// A text object's value plus the splices made to it since it was read.
#[derive(Clone)]
pub struct RichText(State);

#[derive(Clone)]
enum State {
    /// Made in memory: written as a new text object.
    Fresh(String),
    /// Read from a document: written by replaying `edits` on `obj`.
    Read {
        value: String,
        edits: Vec<Splice>,
        obj: ObjId,
        heads: Vec<automerge::ChangeHash>,
    },
}

/// One splice, in the units of the document's text encoding.
#[derive(Clone)]
struct Splice {
    pos: usize,
    delete: usize,
    insert: String,
}

impl RichText {
    /// A new text with `value`, not yet in any document.
    pub fn new(value: impl Into<String>) -> Self {
        Self(State::Fresh(value.into()))
    }

    /// The current value, with every splice applied.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            State::Fresh(value) | State::Read { value, .. } => value,
        }
    }

    /// The length in characters (Unicode code points).
    pub fn len(&self) -> usize {
        self.as_str().chars().count()
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.as_str().is_empty()
    }

    /// Delete `delete` characters at character position `pos`, then insert
    /// `insert` there. Positions count Unicode code points, as `chars()`.
    pub fn splice(&mut self, pos: usize, delete: usize, insert: &str) -> Result<(), ModelError> {
        let value = self.as_str();
        let out_of_range = || ModelError::SpliceOutOfRange {
            pos,
            delete,
            len: value.chars().count(),
        };
        let start = byte_offset(value, pos).ok_or_else(out_of_range)?;
        let end = pos
            .checked_add(delete)
            .and_then(|end| byte_offset(value, end))
            .ok_or_else(out_of_range)?;
        let edit = Splice {
            pos: units(&value[..start]),
            delete: units(&value[start..end]),
            insert: insert.to_owned(),
        };
        match &mut self.0 {
            State::Fresh(value) => value.replace_range(start..end, insert),
            State::Read { value, edits, .. } => {
                value.replace_range(start..end, insert);
                edits.push(edit);
            }
        }
        Ok(())
    }

    /// Append `text` at the end.
    pub fn push_str(&mut self, text: &str) -> Result<(), ModelError> {
        self.splice(self.len(), 0, text)
    }
}

/// The byte offset of character `pos` in `text`; `pos == len` is the end.
fn byte_offset(text: &str, pos: usize) -> Option<usize> {
    text.char_indices()
        .map(|(offset, _)| offset)
        .chain(std::iter::once(text.len()))
        .nth(pos)
}

/// The length of `text` in the units automerge counts text positions in.
fn units(text: &str) -> usize {
    match TextEncoding::platform_default() {
        TextEncoding::Utf8CodeUnit => text.len(),
        TextEncoding::Utf16CodeUnit => text.encode_utf16().count(),
        _ => text.chars().count(),
    }
}

impl Default for RichText {
    fn default() -> Self {
        Self::new("")
    }
}

impl std::fmt::Debug for RichText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RichText").field(&self.as_str()).finish()
    }
}

/// Equal when the values are: where a text came from does not matter.
impl PartialEq for RichText {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for RichText {}

impl From<&str> for RichText {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl Reconcile for RichText {
    /// The text object a value was read from: a different object (or none)
    /// in the document means the value is written as a new object.
    type Key<'a> = ObjId;

    fn reconcile<R: Reconciler>(&self, mut reconciler: R) -> Result<(), R::Error> {
        let mut text = reconciler.text()?;
        match &self.0 {
            State::Fresh(value) => text.splice(0, 0, value),
            // Empty heads: the target is a new document or a detached value
            // (autosurgeon's batch path), where the whole value belongs.
            State::Read { value, .. } if text.heads().is_empty() => text.splice(0, 0, value),
            State::Read { edits, heads, .. } => {
                if text.heads() != heads.as_slice() {
                    return Err(StaleHeads {
                        expected: heads.clone(),
                        found: text.heads().to_vec(),
                    }
                    .into());
                }
                for edit in edits {
                    // A delete count beyond isize::MAX cannot come from a
                    // string in memory; saturating keeps this panic-free.
                    let delete = isize::try_from(edit.delete).unwrap_or(isize::MAX);
                    text.splice(edit.pos, delete, &edit.insert)?;
                }
                Ok(())
            }
        }
    }

    fn hydrate_key<'a, D: ReadDoc>(
        doc: &D,
        obj: &ObjId,
        prop: Prop<'_>,
    ) -> Result<LoadKey<Self::Key<'a>>, ReconcileError> {
        Ok(match doc.get(obj, &prop)? {
            Some((Value::Object(ObjType::Text), id)) => LoadKey::Found(id),
            _ => LoadKey::KeyNotFound,
        })
    }

    fn key(&self) -> LoadKey<Self::Key<'_>> {
        match &self.0 {
            State::Fresh(_) => LoadKey::KeyNotFound,
            State::Read { obj, .. } => LoadKey::Found(obj.clone()),
        }
    }
}

impl Hydrate for RichText {
    fn hydrate_text<D: ReadDoc>(doc: &D, obj: &ObjId) -> Result<Self, HydrateError> {
        Ok(Self(State::Read {
            value: doc.text(obj)?,
            edits: Vec::new(),
            obj: obj.clone(),
            heads: doc.get_heads(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splices_count_characters() {
        let mut text = RichText::new("héllo world");
        text.splice(6, 0, "big ").unwrap();
        assert_eq!(text.as_str(), "héllo big world");
        text.splice(0, 5, "hi").unwrap();
        assert_eq!(text.as_str(), "hi big world");
        text.push_str("!").unwrap();
        assert_eq!(text.as_str(), "hi big world!");
    }

    #[test]
    fn out_of_range_is_an_error() {
        let mut text = RichText::new("añb");
        assert!(matches!(
            text.splice(4, 0, "x"),
            Err(ModelError::SpliceOutOfRange {
                pos: 4,
                delete: 0,
                len: 3
            })
        ));
        assert!(text.splice(2, 2, "x").is_err());
        assert!(text.splice(1, usize::MAX, "x").is_err());
        assert_eq!(text.as_str(), "añb");
    }
}
