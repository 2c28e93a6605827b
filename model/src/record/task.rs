//! Tasks and orders.

use std::collections::BTreeMap;

use autosurgeon::{Hydrate, ReadDoc, Reconcile};
use rapport_protocol::ids::{DocumentId, PublicKey};

use super::edit::{self, EditError};
use super::fields::{Fields, loose_string};
use super::repeat::{Repeat, RepeatError, next_occurrence_id};
use super::{Date, Kind, ModelError, Priority, Status};

/// A task or an order: one document each.
///
/// Links to other documents (`subtasks`, `customer`, `parent`, `previous`,
/// `series`) are document ids in their bs58check text.
#[derive(Debug, Clone, PartialEq, Eq, Default, Reconcile)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Task {
    /// What is to be done.
    pub title: String,
    /// Where it stands.
    #[cfg_attr(test, ts(as = "String"))]
    pub status: Status,
    /// How urgent it is.
    #[cfg_attr(test, ts(as = "String"))]
    pub priority: Priority,
    /// Free-form labels.
    pub tags: Vec<String>,
    /// Who is on it, as base58 public keys.
    pub assignees: Vec<String>,
    /// When it is due.
    #[cfg_attr(test, ts(as = "Option<String>"))]
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
    #[cfg_attr(test, ts(as = "Option<String>"))]
    pub series_start: Option<Date>,
}

/// One step of a task's checklist.
#[derive(Debug, Clone, PartialEq, Eq, Default, Reconcile, Hydrate)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct ChecklistItem {
    /// What the step is.
    #[autosurgeon(hydrate = "loose_string")]
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

    /// The fields [`Task::set`] takes, besides `field.NAME`.
    pub const SETTABLE: &'static str =
        "title, status, priority, due, repeat, customer, tags, assignees";

    /// Sets the field `key` from `value` as typed: a status or priority by
    /// name, `due` as `YYYY-MM-DD`, `repeat` as a rule (kept in its
    /// canonical form), `customer` as a document id, `tags` and `assignees`
    /// (base58 keys) comma-separated, `field.NAME` a custom field. An empty
    /// value clears the field (the title cannot be cleared). On an error
    /// the task is unchanged.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), EditError> {
        match key {
            "title" => self.title = edit::required(value, key)?,
            "status" => self.status = edit::choose(value, Status::KNOWN, key)?,
            "priority" => self.priority = edit::choose(value, Priority::KNOWN, key)?,
            "due" => self.due = edit::optional_date(value, key)?,
            "repeat" => {
                let value = value.trim();
                self.repeat = if value.is_empty() {
                    None
                } else {
                    let rule: Repeat =
                        value
                            .parse()
                            .map_err(|error: RepeatError| EditError::BadValue {
                                field: key.to_owned(),
                                message: format!("{key}: {error}"),
                            })?;
                    Some(rule.to_string())
                };
            }
            "customer" => self.customer = edit::optional_document(value, key)?,
            "tags" => self.tags = edit::list(value),
            "assignees" => self.assignees = edit::keys(value, key)?,
            other => {
                edit::custom_field(&mut self.fields, other, value, Kind::Task, Self::SETTABLE)?;
            }
        }
        Ok(())
    }

    fn read_fields<D: ReadDoc>(fields: &Fields<'_, D>) -> Result<Self, ModelError> {
        Ok(Self {
            title: fields.text("title")?,
            status: fields.get("status")?,
            priority: fields.get("priority")?,
            tags: fields.texts("tags")?,
            assignees: fields.texts("assignees")?,
            due: fields.date("due")?,
            checklist: fields.get("checklist")?,
            subtasks: fields.texts("subtasks")?,
            fields: fields.text_map("fields")?,
            repeat: fields.optional_text("repeat")?,
            customer: fields.optional_text("customer")?,
            parent: fields.optional_text("parent")?,
            previous: fields.optional_text("previous")?,
            series: fields.optional_text("series")?,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_set_from_text() {
        let mut task = Task::new("Invoice");
        task.set("status", "In-Progress").unwrap();
        task.set("priority", "urgent").unwrap();
        task.set("due", "2026-01-31").unwrap();
        task.set("repeat", "every 2 weeks").unwrap();
        task.set("tags", "billing, monthly").unwrap();
        task.set("field.product", "Hosting").unwrap();
        assert_eq!(task.status, Status::InProgress);
        assert_eq!(task.priority, Priority::Urgent);
        assert_eq!(
            task.due.map(|d| d.to_string()).as_deref(),
            Some("2026-01-31")
        );
        assert!(task.repeat.is_some());
        assert_eq!(task.tags, ["billing", "monthly"]);
        assert_eq!(task.fields["product"], "Hosting");
        task.set("due", "").unwrap();
        task.set("field.product", "").unwrap();
        assert_eq!(task.due, None);
        assert!(task.fields.is_empty());
    }

    #[test]
    fn bad_values_leave_the_task_as_it_was() {
        let mut task = Task::new("Invoice");
        let before = task.clone();
        for (key, value) in [
            ("status", "finished"),
            ("due", "tomorrow"),
            ("repeat", "sometimes"),
            ("customer", "not-an-id"),
            ("assignees", "me"),
            ("title", " "),
            ("colour", "red"),
        ] {
            assert!(task.set(key, value).is_err(), "{key}={value}");
        }
        assert_eq!(task, before);
    }
}
