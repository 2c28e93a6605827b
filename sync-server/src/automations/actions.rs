//! What fired rules do: the documents they make, the fields they set,
//! the webhooks they put in the outbox ([`Run`]), with templates filled
//! from the record ([`Values`]).

use automerge::transaction::CommitOptions;
use automerge::{ActorId, Automerge};
use rapport_model::automation::{Action, FieldValue, RecordKind, due_in_days, record, render};
use rapport_model::{Comment, Date, EditError, Record, Task, Thread, new_document};
use rapport_protocol::ids::{DocumentId, UnixMillis};
use rapport_protocol::relay::StoredChange;
use sha2::{Digest, Sha256};
use tracing::warn;

use super::relay_changes::{EngineError, message, millis};
use super::webhook::Delivery;
use crate::forms::Forms;
use crate::storage::RelayKeys;

/// A document id derived from an event and what it makes.
pub(super) fn derived_id(event: &str, what: &str) -> DocumentId {
    let digest = Sha256::new()
        .chain_update(b"rapport/automation\0")
        .chain_update(event.as_bytes())
        .chain_update(what.as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    DocumentId::from_bytes(bytes)
}

/// What templates can name: the record's fields, `{id}`, `{form:NAME}`.
pub(super) struct Values<'a> {
    pub(super) doc: &'a Automerge,
    pub(super) id: DocumentId,
    pub(super) workspace: &'a str,
    pub(super) forms: &'a Forms,
    pub(super) base_url: &'a str,
}

impl Values<'_> {
    pub(super) fn render(&self, template: &str) -> String {
        render(template, |name| {
            if name == "id" {
                return Some(self.id.to_string());
            }
            if let Some(form) = name.strip_prefix("form:") {
                return self
                    .forms
                    .open_form_named(self.workspace, form)
                    .map(|id| format!("{}/forms/{id}", self.base_url));
            }
            match record::field(self.doc, name, None) {
                FieldValue::Missing => None,
                value => Some(value.as_text()),
            }
        })
    }
}

/// The documents and webhooks one document's fired rules make.
pub(super) struct Run<'a> {
    pub(super) store: &'a crate::storage::Store,
    pub(super) workspace: &'a str,
    pub(super) record: DocumentId,
    pub(super) at: UnixMillis,
    pub(super) keys: &'a RelayKeys,
    /// The actor the new documents are written by.
    pub(super) actor: ActorId,
    /// New documents: id, changes, and the record a thread is on.
    pub(super) new_documents: Vec<(DocumentId, Vec<StoredChange>, Option<DocumentId>)>,
    pub(super) deliveries: Vec<Delivery>,
}

impl Run<'_> {
    pub(super) fn act(
        &mut self,
        rule: &str,
        event: &str,
        action: &Action,
        values: &Values<'_>,
    ) -> Result<(), EngineError> {
        match action {
            Action::CreateTask { fields } => {
                let id = derived_id(event, "task");
                if self.taken(id) {
                    return Ok(());
                }
                let task = Record::Task(self.task(rule, fields, values));
                let doc = new_document(&task, self.actor.clone(), self.at, &message(rule))?;
                self.new_documents
                    .push((id, StoredChange::since(&doc, &[]), None));
            }
            Action::Comment { text } => {
                let id = derived_id(event, "thread");
                if self.taken(id) {
                    return Ok(());
                }
                let mut thread = Thread::new(&self.record);
                let author = self.keys.public_key();
                thread.add(Comment::new(
                    event,
                    &author,
                    millis(self.at),
                    values.render(text),
                ));
                let doc = new_document(
                    &Record::Thread(thread),
                    self.actor.clone(),
                    self.at,
                    &message(rule),
                )?;
                self.new_documents
                    .push((id, StoredChange::since(&doc, &[]), Some(self.record)));
            }
            Action::Webhook { url } => {
                let body = serde_json::json!({
                    "event": event,
                    "rule": rule,
                    "workspace": self.workspace,
                    "document": self.record.to_string(),
                    "kind": record::kind(values.doc).map(RecordKind::as_str),
                    "title": record::field(values.doc, "title", None).as_text(),
                    "at": self.at.0,
                });
                self.deliveries.push(Delivery {
                    event: event.to_owned(),
                    workspace: self.workspace.to_owned(),
                    rule: rule.to_owned(),
                    url: url.clone(),
                    body: body.to_string(),
                    attempts: 0,
                    next_at: self.at.0,
                    last_error: None,
                });
            }
            Action::Set { .. } => {}
        }
        Ok(())
    }

    /// Whether the relay already holds a document under the id a rule
    /// would make: someone wrote it first (ids derived from events are
    /// predictable), and the relay never adopts what it did not write.
    fn taken(&self, id: DocumentId) -> bool {
        let taken = self.store.may_hold(id);
        if taken {
            warn!(document = %id, record = %self.record, "an automation's document id is already taken; the action is skipped");
        }
        taken
    }

    /// The task a `create task` action makes: each `NAME=VALUE` is set as
    /// `rapport task set` sets it ([`Task::set`]; `due` also takes days
    /// from now, `+7`), names the model does not have become custom
    /// fields, and `automation` (the rule) and `source` (the record) are
    /// added. A value the field does not take is left out, with a warning.
    fn task(&self, rule: &str, fields: &[(String, String)], values: &Values<'_>) -> Task {
        let mut task = Task::new("");
        task.fields.insert("automation".to_owned(), rule.to_owned());
        task.fields
            .insert("source".to_owned(), self.record.to_string());
        for (name, template) in fields {
            let mut value = values.render(template);
            if name == "due"
                && let Some(days) = due_in_days(&value)
            {
                value = date_after(self.at, days)
                    .map(|d| d.to_string())
                    .unwrap_or_default();
            }
            let set = match task.set(name, &value) {
                Err(EditError::UnknownField { .. }) => task.set(&format!("field.{name}"), &value),
                other => other,
            };
            if let Err(error) = set {
                warn!(rule, %error, "an automation's new task leaves out a field");
            }
        }
        task
    }
}

/// The UTC day of `at`, plus `days`.
fn date_after(at: UnixMillis, days: u32) -> Option<Date> {
    Date::utc(at)?.plus_days(i64::from(days))
}

/// Sets `field` of the record `doc` holds to `value`, as `rapport … set`
/// would, in one change by the relay on behalf of `rule`. The outer error is
/// the document's; the inner one says the field does not take the value,
/// and nothing was written.
pub(super) fn set_field(
    doc: &mut Automerge,
    at: UnixMillis,
    rule: &str,
    field: &str,
    value: &str,
) -> Result<Result<(), EditError>, EngineError> {
    let mut record = Record::read(doc)?;
    let set = match &mut record {
        Record::Task(task) => task.set(field, value),
        Record::Customer(customer) => customer.set(field, value),
        Record::Requirements(requirements) => requirements.set(field, value),
        Record::Thread(_) => return Ok(Ok(())),
    };
    if set.is_err() {
        return Ok(set);
    }
    let options = CommitOptions::default()
        .with_message(message(rule))
        .with_time(i64::try_from(at.as_secs()).unwrap_or(i64::MAX));
    doc.transact_with(|_| options, |tx| record.write(tx))
        .map_err(|failure| failure.error)?;
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_count_days_from_the_utc_day() {
        let after = |at, days| date_after(UnixMillis(at), days).unwrap().to_string();
        assert_eq!(after(0, 0), "1970-01-01");
        assert_eq!(after(0, 59), "1970-03-01");
        // 2024-02-28T23:00Z + 1 day: a leap year.
        assert_eq!(after(1_709_161_200_000, 1), "2024-02-29");
        assert_eq!(after(1_709_161_200_000, 2), "2024-03-01");
        assert_eq!(after(1_735_603_200_000, 7), "2025-01-07");
    }
}
