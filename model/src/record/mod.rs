//! The CRM model: customer records, tasks and orders, requirement documents
//! and comment threads, each its own automerge document.
//!
//! # Document layout
//!
//! Every record document has at its root `"schema"` (an unsigned integer,
//! [`SCHEMA_VERSION`] when written by this version), `"kind"` (`"customer"`,
//! `"task"`, `"requirements"` or `"thread"`, see [`Kind`]) and the record's
//! fields under their Rust names. Strings are scalar strings (in JS,
//! `ImmutableString`); dates are `YYYY-MM-DD` strings ([`Date`]); keys and
//! document ids are their base58 text. The one text object is the
//! requirements `body` ([`RichText`]), edited by splices so that concurrent
//! edits merge and marks on it survive.
//!
//! # Reading and writing
//!
//! Each record type has `read(doc)`, `write(&self, doc)` and
//! `update(doc, |record| ...)`; [`Record::read`] reads whichever kind a
//! document holds. A write reconciles the struct into the root map with
//! autosurgeon, which compares before it writes: an unchanged field makes no
//! operation, so two replicas that change different fields of one record
//! both keep their change after a merge. Read, modify and write against the
//! same state of the document (or use `update`): a struct read before a
//! merge writes its older values back over the merged ones.
//!
//! # Tolerance
//!
//! - A field this version does not know (written by a newer peer) is never
//!   touched: autosurgeon's derived `Reconcile` for a struct puts the
//!   struct's fields and deletes nothing else from the map. The same holds
//!   inside checklist items and comments. Custom `fields` maps are the
//!   exception by design: a key missing from the struct's map is deleted,
//!   which is how a custom field is removed.
//! - An enum value this version does not know reads as `Other(text)` and is
//!   written back as it was (see [`Stage`]).
//! - A missing field reads as its default; a field of the wrong type is a
//!   [`ModelError::Field`] naming it.
//! - A document whose `schema` is newer than [`SCHEMA_VERSION`] is still
//!   read: newer versions only add fields and values, which the rules above
//!   keep intact. Callers learn the version from [`Header::read`] and may
//!   warn ([`Header::is_newer`]) or refuse ([`Header::ensure_known`]). A
//!   write never lowers a document's `schema`.

use automerge::{ROOT, ScalarValue, Value};
use autosurgeon::{Doc, HydrateError, ReadDoc, Reconcile};

/// Adds `KIND`, `read`, `write` and `update` to a record type that has a
/// `read_fields` function.
macro_rules! record {
    ($ty:ident, $kind:expr) => {
        impl $ty {
            /// The `kind` at the root of documents holding this record.
            pub const KIND: $crate::record::Kind = $kind;

            /// Read the record from the root of `doc`.
            ///
            /// Fails if `doc` holds no record or another kind of record, or
            /// if a field has the wrong type. See the [module
            /// docs](crate::record) for what is tolerated.
            pub fn read<D: autosurgeon::ReadDoc>(
                doc: &D,
            ) -> Result<Self, $crate::record::ModelError> {
                $crate::record::Header::expect(doc, Self::KIND)?;
                Self::read_fields(&$crate::record::fields::Fields::new(doc))
            }

            /// Write the record into the root of `doc` (a transaction or an
            /// `AutoCommit`), setting `schema` and `kind`. Only fields that
            /// differ from the document are written; fields this version
            /// does not know are left alone.
            pub fn write<D: autosurgeon::Doc>(
                &self,
                doc: &mut D,
            ) -> Result<(), $crate::record::ModelError> {
                $crate::record::write_record(doc, self, Self::KIND)
            }

            /// Read the record, let `edit` change it, and write it back, all
            /// in `doc` (a transaction or an `AutoCommit`): the safe way to
            /// change a record.
            pub fn update<D: autosurgeon::Doc, R>(
                doc: &mut D,
                edit: impl FnOnce(&mut Self) -> R,
            ) -> Result<R, $crate::record::ModelError> {
                let mut record = Self::read(doc)?;
                let result = edit(&mut record);
                record.write(doc)?;
                Ok(result)
            }
        }
    };
}

pub mod commenting;
mod customer;
pub mod edit;
mod enums;
mod error;
pub(crate) mod fields;
pub mod markdown;
#[cfg(test)]
mod proptests;
mod repeat;
mod requirements;
mod task;
mod text;
mod thread;

pub use crate::date::{Date, DateError};
pub use customer::Customer;
pub use edit::EditError;
pub use enums::{Priority, Relationship, Stage, Status};
pub use error::ModelError;
pub use repeat::{
    MAX_COUNT, NextOccurrence, Repeat, RepeatError, Unit, Weekday, Weekdays, next_occurrence_id,
};
pub use requirements::{Requirements, Template, UnknownTemplate};
pub use task::{ChecklistItem, Task};
pub use text::RichText;
pub use thread::{Comment, Thread};

/// The schema version this code writes and fully understands.
pub const SCHEMA_VERSION: u64 = 1;

/// Which record a document holds: the root `"kind"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A [`Customer`] record.
    Customer,
    /// A [`Task`] or order.
    Task,
    /// A [`Requirements`] document.
    Requirements,
    /// A comment [`Thread`].
    Thread,
}

impl Kind {
    /// Every kind, in order.
    pub const ALL: [Kind; 4] = [Kind::Customer, Kind::Task, Kind::Requirements, Kind::Thread];

    /// The kind as stored in documents.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Task => "task",
            Self::Requirements => "requirements",
            Self::Thread => "thread",
        }
    }

    /// The kind stored as `text`, if this version knows it.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The root `kind` and `schema` of a record document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Which record the document holds.
    pub kind: Kind,
    /// The newest schema that wrote to the document; 0 if none said.
    pub schema: u64,
}

impl Header {
    /// Read the header of `doc`.
    pub fn read<D: ReadDoc>(doc: &D) -> Result<Self, ModelError> {
        let kind = fields::Fields::new(doc).optional_text("kind")?;
        let kind = kind.ok_or(ModelError::MissingKind)?;
        let kind = Kind::parse(&kind).ok_or(ModelError::UnknownKind(kind))?;
        Ok(Self {
            kind,
            schema: schema(doc)?,
        })
    }

    /// Whether a newer version of rapport wrote to the document: reading it
    /// works, but it may hold fields this version does not show.
    pub fn is_newer(&self) -> bool {
        self.schema > SCHEMA_VERSION
    }

    /// [`ModelError::NewerSchema`] if [`Header::is_newer`].
    pub fn ensure_known(&self) -> Result<(), ModelError> {
        if self.is_newer() {
            return Err(ModelError::NewerSchema {
                found: self.schema,
                known: SCHEMA_VERSION,
            });
        }
        Ok(())
    }

    /// Read the header and check that it is of `kind`.
    fn expect<D: ReadDoc>(doc: &D, kind: Kind) -> Result<Self, ModelError> {
        let header = Self::read(doc)?;
        if header.kind != kind {
            return Err(ModelError::WrongKind {
                expected: kind,
                found: header.kind,
            });
        }
        Ok(header)
    }
}

/// The root `schema`: an unsigned integer, or a non-negative signed one
/// (as JS writes numbers); missing or null is 0.
fn schema<D: ReadDoc>(doc: &D) -> Result<u64, ModelError> {
    let found = match doc.get(&ROOT, "schema")? {
        None => return Ok(0),
        Some((Value::Scalar(value), _)) => match value.as_ref() {
            ScalarValue::Null => return Ok(0),
            ScalarValue::Uint(version) => return Ok(*version),
            ScalarValue::Int(version) if *version >= 0 => return Ok(version.unsigned_abs()),
            other => other.to_string(),
        },
        Some((Value::Object(object), _)) => object.to_string(),
    };
    Err(ModelError::field(
        "schema",
        HydrateError::unexpected("a schema version (unsigned integer)", found),
    ))
}

/// Write `record` of `kind` into the root of `doc`.
fn write_record<D: Doc, R: Reconcile>(
    doc: &mut D,
    record: &R,
    kind: Kind,
) -> Result<(), ModelError> {
    let schema = match Header::read(doc) {
        Ok(header) if header.kind == kind => header.schema,
        Ok(header) => {
            return Err(ModelError::WrongKind {
                expected: kind,
                found: header.kind,
            });
        }
        Err(ModelError::MissingKind) => 0,
        Err(error) => return Err(error),
    };
    autosurgeon::reconcile(doc, record)?;
    doc.put(ROOT, "kind", kind.as_str())?;
    if schema < SCHEMA_VERSION {
        doc.put(ROOT, "schema", SCHEMA_VERSION)?;
    }
    Ok(())
}

/// Any record, as [`Record::read`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A customer record.
    Customer(Customer),
    /// A task or order.
    Task(Task),
    /// A requirements document.
    Requirements(Requirements),
    /// A comment thread.
    Thread(Thread),
}

impl Record {
    /// Read whichever record `doc` holds, by its `kind`.
    pub fn read<D: ReadDoc>(doc: &D) -> Result<Self, ModelError> {
        Ok(match Header::read(doc)?.kind {
            Kind::Customer => Self::Customer(Customer::read(doc)?),
            Kind::Task => Self::Task(Task::read(doc)?),
            Kind::Requirements => Self::Requirements(Requirements::read(doc)?),
            Kind::Thread => Self::Thread(Thread::read(doc)?),
        })
    }

    /// Write the record into the root of `doc`.
    pub fn write<D: Doc>(&self, doc: &mut D) -> Result<(), ModelError> {
        match self {
            Self::Customer(record) => record.write(doc),
            Self::Task(record) => record.write(doc),
            Self::Requirements(record) => record.write(doc),
            Self::Thread(record) => record.write(doc),
        }
    }

    /// Which kind of record this is.
    pub fn kind(&self) -> Kind {
        match self {
            Self::Customer(_) => Kind::Customer,
            Self::Task(_) => Kind::Task,
            Self::Requirements(_) => Kind::Requirements,
            Self::Thread(_) => Kind::Thread,
        }
    }
}

/// A new document holding `record`, as its single change by `actor` timed
/// `at`, with `message`: how the relay writes the records it makes (a form
/// submission's task, an automation's task or comment thread).
/// Archives the record in `doc` (or brings it back): an archived record
/// stays, with its history and comments, but lists and the dashboard leave
/// it out. A root flag of its own (`archived: true`) that the typed writes
/// leave alone; a comment thread is not archived on its own.
pub fn set_archived<D: automerge::transaction::Transactable + ReadDoc>(
    doc: &mut D,
    archived: bool,
) -> Result<(), ModelError> {
    let header = Header::read(doc)?;
    if header.kind == Kind::Thread {
        return Err(ModelError::WrongKind {
            expected: Kind::Customer,
            found: Kind::Thread,
        });
    }
    if is_archived(doc) != archived {
        doc.put(ROOT, "archived", archived)?;
    }
    Ok(())
}

/// Whether the record in `doc` is archived ([`set_archived`]).
pub fn is_archived<D: automerge::ReadDoc>(doc: &D) -> bool {
    matches!(
        doc.get(&ROOT, "archived"),
        Ok(Some((automerge::Value::Scalar(value), _))) if matches!(value.as_ref(), automerge::ScalarValue::Boolean(true))
    )
}

pub fn new_document(
    record: &Record,
    actor: automerge::ActorId,
    at: rapport_protocol::ids::UnixMillis,
    message: &str,
) -> Result<automerge::Automerge, ModelError> {
    let mut doc = automerge::Automerge::new().with_actor(actor);
    let options = automerge::transaction::CommitOptions::default()
        .with_message(message.to_owned())
        .with_time(i64::try_from(at.as_secs()).unwrap_or(i64::MAX));
    doc.transact_with(|_| options, |tx| record.write(tx))
        .map_err(|failure| failure.error)?;
    Ok(doc)
}
