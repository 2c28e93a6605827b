//! Customer records.

use std::collections::BTreeMap;

use autosurgeon::{ReadDoc, Reconcile};
use rapport_protocol::ids::PublicKey;

use super::edit::{self, EditError};
use super::fields::Fields;
use super::{Date, Kind, ModelError, Relationship, Stage};

/// A customer or client: one document per customer.
///
/// ```
/// use rapport_model::{Customer, Relationship, Stage};
///
/// let mut doc = automerge::AutoCommit::new();
/// let mut acme = Customer::new("Acme Ltd", Relationship::Client);
/// acme.stage = Stage::Proposal;
/// acme.write(&mut doc)?;
/// assert_eq!(Customer::read(&doc)?, acme);
/// # Ok::<(), rapport_model::ModelError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Reconcile)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Customer {
    /// Long-term client or transactional customer.
    #[cfg_attr(test, ts(as = "String"))]
    pub relationship: Relationship,
    /// The organisation's or person's name.
    pub name: String,
    /// The contact person or decision maker.
    pub contact: String,
    /// Where to write to.
    pub email: String,
    /// When they became a customer.
    #[cfg_attr(test, ts(as = "Option<String>"))]
    pub acquired: Option<Date>,
    /// When someone last spoke with them.
    #[cfg_attr(test, ts(as = "Option<String>"))]
    pub last_contact: Option<Date>,
    /// Where they are in the lifecycle.
    #[cfg_attr(test, ts(as = "String"))]
    pub stage: Stage,
    /// Lead score: higher is warmer.
    pub score: i64,
    /// The owning sales rep, as a base58 public key.
    pub rep: Option<String>,
    /// Free-form labels.
    pub tags: Vec<String>,
    /// Custom fields, by name.
    pub fields: BTreeMap<String, String>,
}

record!(Customer, super::Kind::Customer);

impl Customer {
    /// A new lead called `name`; every other field empty.
    pub fn new(name: impl Into<String>, relationship: Relationship) -> Self {
        Self {
            name: name.into(),
            relationship,
            ..Self::default()
        }
    }

    /// Make `rep` the owning sales rep.
    pub fn set_rep(&mut self, rep: &PublicKey) {
        self.rep = Some(rep.to_string());
    }

    /// The fields [`Customer::set`] takes, besides `field.NAME`.
    pub const SETTABLE: &'static str =
        "name, contact, email, stage, score, rep, kind, acquired, last_contact, tags";

    /// Sets the field `key` from `value` as typed: `stage` and `kind` by
    /// name, `score` a whole number, dates as `YYYY-MM-DD`, `rep` a base58
    /// key, `tags` comma-separated, `field.NAME` a custom field. An empty
    /// value clears the field (the name cannot be cleared). On an error the
    /// record is unchanged.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), EditError> {
        match key {
            "name" => self.name = edit::required(value, key)?,
            "contact" => self.contact = value.trim().to_owned(),
            "email" => self.email = value.trim().to_owned(),
            "stage" => self.stage = edit::choose(value, Stage::KNOWN, key)?,
            "score" => self.score = edit::number(value, key)?,
            "rep" => self.rep = edit::optional_key(value, key)?,
            "kind" | "relationship" => {
                self.relationship = edit::choose(value, Relationship::KNOWN, "kind")?;
            }
            "acquired" => self.acquired = edit::optional_date(value, key)?,
            "last_contact" => self.last_contact = edit::optional_date(value, key)?,
            "tags" => self.tags = edit::list(value),
            other => {
                edit::custom_field(
                    &mut self.fields,
                    other,
                    value,
                    Kind::Customer,
                    Self::SETTABLE,
                )?;
            }
        }
        Ok(())
    }

    fn read_fields<D: ReadDoc>(fields: &Fields<'_, D>) -> Result<Self, ModelError> {
        Ok(Self {
            relationship: fields.get("relationship")?,
            name: fields.text("name")?,
            contact: fields.text("contact")?,
            email: fields.text("email")?,
            acquired: fields.date("acquired")?,
            last_contact: fields.date("last_contact")?,
            stage: fields.get("stage")?,
            score: fields.get("score")?,
            rep: fields.optional_text("rep")?,
            tags: fields.texts("tags")?,
            fields: fields.text_map("fields")?,
        })
    }
}
