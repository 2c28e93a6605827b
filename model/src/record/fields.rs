//! Reading a record's fields from the root of a document, one by one, so
//! that an error names the field at fault.

use automerge::ROOT;
use autosurgeon::{Hydrate, ReadDoc};

use super::{Date, ModelError};

/// The root map of a document, read field by field.
///
/// A missing field reads as its default (empty text or list, `None`, the
/// enum's default): peers that predate a field, or clients that build
/// records by hand, omit fields. A field that is present with the wrong type
/// is an error naming it.
pub(crate) struct Fields<'a, D> {
    doc: &'a D,
}

impl<'a, D: ReadDoc> Fields<'a, D> {
    pub(crate) fn new(doc: &'a D) -> Self {
        Self { doc }
    }

    /// The field `field`, or its default when the document has none.
    pub(crate) fn get<T: Hydrate + Default>(&self, field: &'static str) -> Result<T, ModelError> {
        if self.doc.get(&ROOT, field)?.is_none() {
            return Ok(T::default());
        }
        T::hydrate(self.doc, &ROOT, field.into()).map_err(|source| ModelError::field(field, source))
    }

    /// The date in `field`, `None` when missing or null.
    pub(crate) fn date(&self, field: &'static str) -> Result<Option<Date>, ModelError> {
        let text: Option<String> = self.get(field)?;
        text.map(|text| text.parse())
            .transpose()
            .map_err(|source| ModelError::Date { field, source })
    }
}
