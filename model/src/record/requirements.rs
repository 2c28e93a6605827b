//! Requirements documents: a title and a rich text body.

use std::fmt;
use std::str::FromStr;

use autosurgeon::{ReadDoc, Reconcile};
use rapport_protocol::ids::DocumentId;

use super::edit::{self, EditError};
use super::fields::Fields;
use super::{Kind, ModelError, RichText};

/// A requirements document, shared with a client and written together.
///
/// The body is an automerge text object. Edit it with
/// [`RichText::splice`] on a record read from the document, then
/// [`write`](Self::write): the write replays the splices, so concurrent edits
/// merge character by character and marks on the text (bold, links) stay.
/// A record whose body was not edited leaves the text object untouched. A
/// record built in memory ([`new`](Self::new),
/// [`from_template`](Self::from_template)) and written over an existing
/// document replaces the body with a new text object: that is a reset.
#[derive(Debug, Clone, PartialEq, Eq, Default, Reconcile)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Requirements {
    /// The document's title.
    pub title: String,
    /// The customer document it is for.
    pub customer: Option<String>,
    /// The text.
    #[cfg_attr(test, ts(as = "String"))]
    pub body: RichText,
}

/// A starting body for a requirements document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Template {
    /// A business requirements document (`"brd"`): scope, business drivers,
    /// financial details, timeline and deadlines.
    Brd,
}

/// A template name no template has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no template is called `{0}` (known: brd)")]
pub struct UnknownTemplate(pub String);

impl Template {
    /// The template's name, as typed on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Brd => "brd",
        }
    }

    /// The section headings, in order.
    pub const fn sections(self) -> &'static [&'static str] {
        match self {
            Self::Brd => &[
                "Scope",
                "Business drivers",
                "Financial details",
                "Timeline and deadlines",
            ],
        }
    }

    /// The body as Markdown lines: each section a `## ` heading followed
    /// by an empty paragraph to write in.
    pub fn body(self) -> String {
        self.sections()
            .iter()
            .map(|section| format!("## {section}\n"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl FromStr for Template {
    type Err = UnknownTemplate;

    fn from_str(name: &str) -> Result<Self, UnknownTemplate> {
        match name {
            "brd" => Ok(Self::Brd),
            other => Err(UnknownTemplate(other.to_owned())),
        }
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

record!(Requirements, super::Kind::Requirements);

impl Requirements {
    /// A document called `title` with `body`.
    pub fn new(title: impl Into<String>, body: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            customer: None,
            body: RichText::new(body),
        }
    }

    /// A document called `title`, its body started from `template`.
    pub fn from_template(title: impl Into<String>, template: Template) -> Self {
        Self::new(title, template.body())
    }

    /// Link the document to a customer document.
    pub fn set_customer(&mut self, customer: &DocumentId) {
        self.customer = Some(customer.to_string());
    }

    /// The body of the requirements document in `doc` as Markdown lines
    /// ([`markdown`](super::markdown)); empty when it has none.
    pub fn body_markdown<D: automerge::ReadDoc>(doc: &D) -> Result<String, ModelError> {
        match doc.get(&automerge::ROOT, "body")? {
            Some((automerge::Value::Object(automerge::ObjType::Text), body)) => {
                Ok(super::markdown::to_markdown(doc, &body)?)
            }
            _ => Ok(String::new()),
        }
    }

    /// Makes the body of the requirements document in `doc` hold
    /// `markdown`, in blocks and marks as the web app's editor keeps them,
    /// changing only what differs (a body that is missing or not text is
    /// made anew).
    pub fn set_body_markdown<D: automerge::transaction::Transactable>(
        doc: &mut D,
        markdown: &str,
    ) -> Result<(), ModelError> {
        let body = match doc.get(&automerge::ROOT, "body")? {
            Some((automerge::Value::Object(automerge::ObjType::Text), body)) => body,
            _ => doc.put_object(automerge::ROOT, "body", automerge::ObjType::Text)?,
        };
        Ok(super::markdown::write(doc, &body, markdown)?)
    }

    /// The fields [`Requirements::set`] takes; the body is edited as text.
    pub const SETTABLE: &'static str = "title, customer";

    /// Sets `title` or `customer` (a document id; empty clears it).
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), EditError> {
        match key {
            "title" => self.title = edit::required(value, key)?,
            "customer" => self.customer = edit::optional_document(value, key)?,
            other => {
                return Err(EditError::UnknownField {
                    kind: Kind::Requirements,
                    key: other.to_owned(),
                    known: Self::SETTABLE,
                });
            }
        }
        Ok(())
    }

    fn read_fields<D: ReadDoc>(fields: &Fields<'_, D>) -> Result<Self, ModelError> {
        Ok(Self {
            title: fields.text("title")?,
            customer: fields.optional_text("customer")?,
            body: fields.get("body")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brd_template_has_its_sections() {
        let doc = Requirements::from_template("Portal", "brd".parse().unwrap());
        let body = doc.body.as_str();
        let mut at = 0;
        for heading in [
            "## Scope",
            "## Business drivers",
            "## Financial details",
            "## Timeline and deadlines",
        ] {
            let found = body[at..].find(heading).expect(heading);
            at += found + heading.len();
        }
        assert_eq!(
            "nope".parse::<Template>(),
            Err(UnknownTemplate("nope".into()))
        );
    }
}
