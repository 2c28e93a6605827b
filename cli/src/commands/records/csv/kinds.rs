//! What a CSV row can become: customers and tasks, with the header names
//! people use for their fields.

use rapport_model::{Customer, EditError, ModelError, Relationship, Task};

/// Header names (lowercased, spaces and dashes as `_`) people use for each
/// field.
const CUSTOMER_ALIASES: &[(&str, &str)] = &[
    ("name", "name"),
    ("company", "name"),
    ("company_name", "name"),
    ("organisation", "name"),
    ("organization", "name"),
    ("customer", "name"),
    ("account", "name"),
    ("email", "email"),
    ("e_mail", "email"),
    ("mail", "email"),
    ("email_address", "email"),
    ("contact", "contact"),
    ("contact_person", "contact"),
    ("contact_name", "contact"),
    ("person", "contact"),
    ("phone", "field.phone"),
    ("kind", "kind"),
    ("type", "kind"),
    ("relationship", "kind"),
    ("stage", "stage"),
    ("status", "stage"),
    ("score", "score"),
    ("tags", "tags"),
    ("labels", "tags"),
    ("acquired", "acquired"),
    ("customer_since", "acquired"),
    ("since", "acquired"),
    ("last_contact", "last_contact"),
    ("last_contacted", "last_contact"),
    ("rep", "rep"),
];

/// Header names people use for a task's fields.
const TASK_ALIASES: &[(&str, &str)] = &[
    ("title", "title"),
    ("task", "title"),
    ("subject", "title"),
    ("name", "title"),
    ("summary", "title"),
    ("status", "status"),
    ("state", "status"),
    ("priority", "priority"),
    ("due", "due"),
    ("due_date", "due"),
    ("deadline", "due"),
    ("repeat", "repeat"),
    ("customer", "customer"),
    ("company", "customer"),
    ("client", "customer"),
    ("tags", "tags"),
    ("labels", "tags"),
    ("assignees", "assignees"),
];

/// A record a CSV row can become.
pub(crate) trait Importable: Sized {
    /// The record's kind in the index.
    const KIND: &'static str;
    /// The field that must not be empty.
    const TITLE: &'static str;
    /// The column a re-import matches on when no --key is given.
    const MATCH: Option<&'static str>;
    const ALIASES: &'static [(&'static str, &'static str)];
    /// Fields holding dates, read with --date-format.
    const DATES: &'static [&'static str];
    fn blank() -> Self;
    fn set(&mut self, field: &str, value: &str) -> Result<(), EditError>;
    fn title(&self) -> &str;
    /// The value of `field`, for matching a re-import.
    fn value(&self, field: &str) -> Option<String>;
    fn read(doc: &automerge::Automerge) -> Result<Self, ModelError>;
    fn write(&self, tx: &mut automerge::transaction::Transaction<'_>) -> Result<(), ModelError>;
    fn update(
        tx: &mut automerge::transaction::Transaction<'_>,
        edit: impl FnOnce(&mut Self),
    ) -> Result<(), ModelError>;
}

impl Importable for Customer {
    const KIND: &'static str = "customer";
    const TITLE: &'static str = "name";
    const MATCH: Option<&'static str> = Some("email");
    const ALIASES: &'static [(&'static str, &'static str)] = CUSTOMER_ALIASES;
    const DATES: &'static [&'static str] = &["acquired", "last_contact"];
    fn blank() -> Self {
        Customer::new("-", Relationship::Client)
    }
    fn set(&mut self, field: &str, value: &str) -> Result<(), EditError> {
        Customer::set(self, field, value)
    }
    fn title(&self) -> &str {
        &self.name
    }
    fn value(&self, field: &str) -> Option<String> {
        let value = match field {
            "name" => self.name.clone(),
            "email" => self.email.clone(),
            "contact" => self.contact.clone(),
            other => self.fields.get(other.strip_prefix("field.")?)?.clone(),
        };
        (!value.trim().is_empty()).then(|| value.trim().to_owned())
    }
    fn read(doc: &automerge::Automerge) -> Result<Self, ModelError> {
        Customer::read(doc)
    }
    fn write(&self, tx: &mut automerge::transaction::Transaction<'_>) -> Result<(), ModelError> {
        Customer::write(self, tx)
    }
    fn update(
        tx: &mut automerge::transaction::Transaction<'_>,
        edit: impl FnOnce(&mut Self),
    ) -> Result<(), ModelError> {
        Customer::update(tx, edit)
    }
}

impl Importable for Task {
    const KIND: &'static str = "task";
    const TITLE: &'static str = "title";
    const MATCH: Option<&'static str> = None;
    const ALIASES: &'static [(&'static str, &'static str)] = TASK_ALIASES;
    const DATES: &'static [&'static str] = &["due"];
    fn blank() -> Self {
        Task::new("-")
    }
    fn set(&mut self, field: &str, value: &str) -> Result<(), EditError> {
        Task::set(self, field, value)
    }
    fn title(&self) -> &str {
        &self.title
    }
    fn value(&self, field: &str) -> Option<String> {
        let value = match field {
            "title" => self.title.clone(),
            other => self.fields.get(other.strip_prefix("field.")?)?.clone(),
        };
        (!value.trim().is_empty()).then(|| value.trim().to_owned())
    }
    fn read(doc: &automerge::Automerge) -> Result<Self, ModelError> {
        Task::read(doc)
    }
    fn write(&self, tx: &mut automerge::transaction::Transaction<'_>) -> Result<(), ModelError> {
        Task::write(self, tx)
    }
    fn update(
        tx: &mut automerge::transaction::Transaction<'_>,
        edit: impl FnOnce(&mut Self),
    ) -> Result<(), ModelError> {
        Task::update(tx, edit)
    }
}
