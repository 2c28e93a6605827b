//! Tasks and orders.

use std::collections::BTreeMap;

use autosurgeon::{Hydrate, ReadDoc, Reconcile};
use rapport_protocol::ids::{DocumentId, PublicKey};

use super::fields::Fields;
use super::{Date, ModelError, Priority, Status};

/// A task or an order: one document each.
///
/// Links to other documents (`subtasks`, `customer`, `parent`) are document
/// ids in their bs58check text.
#[derive(Debug, Clone, PartialEq, Eq, Default, Reconcile)]
pub struct Task {
    /// What is to be done.
    pub title: String,
    /// Where it stands.
    pub status: Status,
    /// How urgent it is.
    pub priority: Priority,
    /// Free-form labels.
    pub tags: Vec<String>,
    /// Who is on it, as base58 public keys.
    pub assignees: Vec<String>,
    /// When it is due.
    pub due: Option<Date>,
    /// Steps to tick off.
    pub checklist: Vec<ChecklistItem>,
    /// Sub-task documents.
    pub subtasks: Vec<String>,
    /// Custom fields, by name (the product or service ordered, say).
    pub fields: BTreeMap<String, String>,
    /// Recurrence: `daily`, `weekly`, `monthly` or a cron-like line, kept as
    /// written.
    pub repeat: Option<String>,
    /// The customer document this is for.
    pub customer: Option<String>,
    /// The task this is a sub-task of.
    pub parent: Option<String>,
}

/// One step of a task's checklist.
#[derive(Debug, Clone, PartialEq, Eq, Default, Reconcile, Hydrate)]
pub struct ChecklistItem {
    /// What the step is.
    pub item: String,
    /// Whether it is done.
    #[autosurgeon(missing = "Default::default")]
    pub done: bool,
}

record!(Task, super::Kind::Task);

impl Task {
    /// A new open task of normal priority; every other field empty.
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            ..Self::default()
        }
    }

    /// Link the task to a customer document.
    pub fn set_customer(&mut self, customer: &DocumentId) {
        self.customer = Some(customer.to_string());
    }

    /// Add `person` to the assignees, unless already there.
    pub fn assign(&mut self, person: &PublicKey) {
        let person = person.to_string();
        if !self.assignees.contains(&person) {
            self.assignees.push(person);
        }
    }

    fn read_fields<D: ReadDoc>(fields: &Fields<'_, D>) -> Result<Self, ModelError> {
        Ok(Self {
            title: fields.get("title")?,
            status: fields.get("status")?,
            priority: fields.get("priority")?,
            tags: fields.get("tags")?,
            assignees: fields.get("assignees")?,
            due: fields.date("due")?,
            checklist: fields.get("checklist")?,
            subtasks: fields.get("subtasks")?,
            fields: fields.get("fields")?,
            repeat: fields.get("repeat")?,
            customer: fields.get("customer")?,
            parent: fields.get("parent")?,
        })
    }
}

impl ChecklistItem {
    /// A step not yet done.
    pub fn new(item: impl Into<String>) -> Self {
        Self {
            item: item.into(),
            done: false,
        }
    }
}
