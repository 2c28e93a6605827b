//! Customer records.

use std::collections::BTreeMap;

use autosurgeon::{ReadDoc, Reconcile};
use rapport_protocol::ids::PublicKey;

use super::fields::Fields;
use super::{Date, ModelError, Relationship, Stage};

/// A customer or client: one document per customer.
///
/// ```
/// use rapport_client::model::{Customer, Relationship, Stage};
///
/// let mut doc = automerge::AutoCommit::new();
/// let mut acme = Customer::new("Acme Ltd", Relationship::Client);
/// acme.stage = Stage::Proposal;
/// acme.write(&mut doc)?;
/// assert_eq!(Customer::read(&doc)?, acme);
/// # Ok::<(), rapport_client::model::ModelError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Reconcile)]
pub struct Customer {
    /// Long-term client or transactional customer.
    pub relationship: Relationship,
    /// The organisation's or person's name.
    pub name: String,
    /// The contact person or decision maker.
    pub contact: String,
    /// Where to write to.
    pub email: String,
    /// When they became a customer.
    pub acquired: Option<Date>,
    /// When someone last spoke with them.
    pub last_contact: Option<Date>,
    /// Where they are in the lifecycle.
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

    fn read_fields<D: ReadDoc>(fields: &Fields<'_, D>) -> Result<Self, ModelError> {
        Ok(Self {
            relationship: fields.get("relationship")?,
            name: fields.get("name")?,
            contact: fields.get("contact")?,
            email: fields.get("email")?,
            acquired: fields.date("acquired")?,
            last_contact: fields.date("last_contact")?,
            stage: fields.get("stage")?,
            score: fields.get("score")?,
            rep: fields.get("rep")?,
            tags: fields.get("tags")?,
            fields: fields.get("fields")?,
        })
    }
}
