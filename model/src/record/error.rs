//! The model's error type.

use autosurgeon::reconcile::StaleHeads;
use autosurgeon::{HydrateError, ReconcileError};

use super::Kind;
use crate::date::DateError;

/// Why a record could not be read from, or written to, a document.
///
/// Reading never panics on a document's content: whatever a peer wrote, the
/// worst outcome is one of these errors, naming the field at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The document has no `kind` at its root: it is not a rapport record.
    #[error("the document has no `kind`: it is not a rapport record")]
    MissingKind,
    /// The document's `kind` is not one this version knows.
    #[error("unknown record kind `{0}`")]
    UnknownKind(String),
    /// The document holds another kind of record than the one asked for.
    #[error("expected a {expected} record, the document holds a {found} record")]
    WrongKind {
        /// The kind the caller asked for.
        expected: Kind,
        /// The kind the document holds.
        found: Kind,
    },
    /// The document was written by a newer schema than this code knows.
    ///
    /// [`read`](super::Customer::read) does not return this: it reads what it
    /// knows. Callers that must not go on call
    /// [`Header::ensure_known`](super::Header::ensure_known).
    #[error("the record has schema {found}, newer than this version's {known}")]
    NewerSchema {
        /// The document's schema version.
        found: u64,
        /// [`SCHEMA_VERSION`](super::SCHEMA_VERSION).
        known: u64,
    },
    /// A field holds a value of the wrong type (a number where a string
    /// belongs, a map where a list belongs, …).
    #[error("field `{field}`: {source}")]
    Field {
        /// The field's key at the root of the document.
        field: &'static str,
        /// What autosurgeon found instead.
        #[source]
        source: Box<HydrateError>,
    },
    /// A date field holds a string that is not a `YYYY-MM-DD` date.
    #[error("field `{field}`: {source}")]
    Date {
        /// The field's key at the root of the document.
        field: &'static str,
        /// Why the text is not a date.
        #[source]
        source: DateError,
    },
    /// A splice into rich text reaches past its end.
    #[error("splice at {pos} deleting {delete} is out of range for a text of {len} characters")]
    SpliceOutOfRange {
        /// Where the splice starts, in characters.
        pos: usize,
        /// How many characters it deletes.
        delete: usize,
        /// The text's length in characters.
        len: usize,
    },
    /// The document moved on since the rich text was read, so its edits
    /// cannot be placed. Read the record again and redo the edit.
    #[error("the document changed since the record was read: {0}")]
    Stale(#[source] StaleHeads),
    /// Writing into the document failed.
    #[error("writing the record failed: {0}")]
    Reconcile(#[source] Box<ReconcileError>),
    /// The automerge document refused an operation.
    #[error(transparent)]
    Automerge(Box<automerge::AutomergeError>),
}

impl From<ReconcileError> for ModelError {
    fn from(error: ReconcileError) -> Self {
        match error {
            ReconcileError::StaleHeads(stale) => Self::Stale(stale),
            ReconcileError::Automerge(error) => Self::Automerge(Box::new(error)),
            other => Self::Reconcile(Box::new(other)),
        }
    }
}

impl From<automerge::AutomergeError> for ModelError {
    fn from(error: automerge::AutomergeError) -> Self {
        Self::Automerge(Box::new(error))
    }
}

impl ModelError {
    /// A [`ModelError::Field`] for `field`.
    pub(crate) fn field(field: &'static str, source: HydrateError) -> Self {
        Self::Field {
            field,
            source: Box::new(source),
        }
    }
}
