//! Reading a record's fields from the root of a document, one by one, so
//! that an error names the field at fault.

use std::collections::BTreeMap;

use automerge::{ObjId, ROOT};
use autosurgeon::{Hydrate, HydrateError, Prop, ReadDoc};

use super::{Date, ModelError};

/// Text as a field holds it: a scalar string (what rapport writes), or a
/// text object (what JS automerge 3 writes for a plain JS string, unless
/// the writer asks for an `ImmutableString`). Both read the same.
#[derive(Debug, Default)]
pub(crate) struct Loose(pub(crate) String);

impl Hydrate for Loose {
    fn hydrate_string(text: &str) -> Result<Self, HydrateError> {
        Ok(Self(text.to_owned()))
    }

    fn hydrate_text<D: ReadDoc>(doc: &D, obj: &ObjId) -> Result<Self, HydrateError> {
        Ok(Self(doc.text(obj)?))
    }
}

/// A string from a scalar or a text object, for `#[autosurgeon(hydrate)]`.
pub(crate) fn loose_string<D: ReadDoc>(
    doc: &D,
    obj: &ObjId,
    prop: Prop<'_>,
) -> Result<String, HydrateError> {
    Ok(Loose::hydrate(doc, obj, prop)?.0)
}

/// An optional string from a scalar, a text object or null.
pub(crate) fn loose_option<D: ReadDoc>(
    doc: &D,
    obj: &ObjId,
    prop: Prop<'_>,
) -> Result<Option<String>, HydrateError> {
    Ok(Option::<Loose>::hydrate(doc, obj, prop)?.map(|text| text.0))
}

/// A list of strings, each a scalar or a text object.
pub(crate) fn loose_strings<D: ReadDoc>(
    doc: &D,
    obj: &ObjId,
    prop: Prop<'_>,
) -> Result<Vec<String>, HydrateError> {
    Ok(Vec::<Loose>::hydrate(doc, obj, prop)?
        .into_iter()
        .map(|text| text.0)
        .collect())
}

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

    /// The document the fields are read from.
    pub(crate) fn doc(&self) -> &'a D {
        self.doc
    }

    /// The field `field`, or its default when the document has none.
    pub(crate) fn get<T: Hydrate + Default>(&self, field: &'static str) -> Result<T, ModelError> {
        if self.doc.get(&ROOT, field)?.is_none() {
            return Ok(T::default());
        }
        T::hydrate(self.doc, &ROOT, field.into()).map_err(|source| ModelError::field(field, source))
    }

    /// The text in `field`, a scalar string or a text object.
    pub(crate) fn text(&self, field: &'static str) -> Result<String, ModelError> {
        Ok(self.get::<Loose>(field)?.0)
    }

    /// The text in `field`, `None` when missing or null.
    pub(crate) fn optional_text(&self, field: &'static str) -> Result<Option<String>, ModelError> {
        Ok(self.get::<Option<Loose>>(field)?.map(|text| text.0))
    }

    /// The list of texts in `field`.
    pub(crate) fn texts(&self, field: &'static str) -> Result<Vec<String>, ModelError> {
        let texts: Vec<Loose> = self.get(field)?;
        Ok(texts.into_iter().map(|text| text.0).collect())
    }

    /// The map of names to texts in `field` (custom fields).
    pub(crate) fn text_map(
        &self,
        field: &'static str,
    ) -> Result<BTreeMap<String, String>, ModelError> {
        let map: BTreeMap<String, Loose> = self.get(field)?;
        Ok(map.into_iter().map(|(key, text)| (key, text.0)).collect())
    }

    /// The date in `field`, `None` when missing or null.
    pub(crate) fn date(&self, field: &'static str) -> Result<Option<Date>, ModelError> {
        let text = self.optional_text(field)?;
        text.map(|text| text.parse())
            .transpose()
            .map_err(|source| ModelError::Date { field, source })
    }
}
