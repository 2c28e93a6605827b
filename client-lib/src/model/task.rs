//! Tasks and orders.

use std::collections::BTreeMap;

use autosurgeon::{Hydrate, ReadDoc, Reconcile};
use rapport_protocol::ids::{DocumentId, PublicKey};

use super::fields::Fields;
use super::repeat::{Repeat, RepeatError, next_occurrence_id};
use super::{Date, ModelError, Priority, Status};

/// A task or an order: one document each.
///
/// Links to other documents (`subtasks`, `customer`, `parent`, `previous`,
/// `series`) are document ids in their bs58check text.
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
    /// Recurrence: a [`Repeat`] rule (`weekly`, `every 2 weeks`,
    /// `every mon,thu`, …). rapport writes the canonical form; text from
    /// other writers is kept as written and parsed when the task is
    /// finished ([`Task::recurrence`]).
    pub repeat: Option<String>,
    /// The customer document this is for.
    pub customer: Option<String>,
    /// The task this is a sub-task of.
    pub parent: Option<String>,
    /// The occurrence this one follows, in a repeating series.
    pub previous: Option<String>,
    /// The first task of the repeating series this one belongs to; `None`
    /// on that first task itself.
    pub series: Option<String>,
    /// The due date of the series' first occurrence: monthly and yearly
    /// rules keep its day of the month.
    pub series_start: Option<Date>,
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
            previous: fields.get("previous")?,
            series: fields.get("series")?,
            series_start: fields.date("series_start")?,
        })
    }

    /// The [`Repeat`] rule of `repeat`; `None` if the task does not repeat.
    pub fn recurrence(&self) -> Result<Option<Repeat>, RepeatError> {
        self.repeat.as_deref().map(str::parse).transpose()
    }

    /// The occurrence that follows this task, document `id`, finished on
    /// `today`, and the document it belongs in ([`next_occurrence_id`]).
    /// `None` if the task does not repeat, or the next date is past 9999.
    ///
    /// The next occurrence is an open copy of this one, due on the rule's
    /// next date after this one's due date (after `today` if there is
    /// none), with its checklist unticked, no sub-tasks, and `previous`,
    /// `series` and `series_start` linking it into the series. Every
    /// replica computes the same task from the same state, so concurrent
    /// finishes write equal values into the same document.
    pub fn next_occurrence(
        &self,
        id: &DocumentId,
        today: Date,
    ) -> Result<Option<(DocumentId, Task)>, RepeatError> {
        let Some(rule) = self.recurrence()? else {
            return Ok(None);
        };
        let due = self.due.unwrap_or(today);
        let start = self.series_start.unwrap_or(due);
        let Some(next_due) = rule.next_due(due, start) else {
            return Ok(None);
        };
        let next = Self {
            title: self.title.clone(),
            status: Status::Open,
            priority: self.priority.clone(),
            tags: self.tags.clone(),
            assignees: self.assignees.clone(),
            due: Some(next_due),
            checklist: self
                .checklist
                .iter()
                .map(|step| ChecklistItem::new(step.item.clone()))
                .collect(),
            subtasks: Vec::new(),
            fields: self.fields.clone(),
            repeat: self.repeat.clone(),
            customer: self.customer.clone(),
            parent: self.parent.clone(),
            previous: Some(id.to_string()),
            series: Some(self.series.clone().unwrap_or_else(|| id.to_string())),
            series_start: Some(start),
        };
        Ok(Some((next_occurrence_id(id), next)))
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
