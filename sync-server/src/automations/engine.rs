//! The engine: takes pending documents, runs the rules on them, delivers
//! webhooks. One task, off the sync path; each step's storage work runs on
//! a blocking thread.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use automerge::transaction::CommitOptions;
use automerge::{Automerge, ChangeHash};
use rapport_model::automation::{
    Action, Event, FieldValue, RecordKind, Rule, document, due_in_days, record, render,
};
use rapport_model::{Comment, Date, EditError, Record, Task, Thread, new_document};
use rapport_protocol::ids::{DocumentId, PublicKey, UnixMillis};
use rapport_protocol::relay::StoredChange;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tracing::{info, warn};

use super::delivery::Deliveries;
use super::relay_changes::{EngineError, change, message, millis};
use super::webhook::Delivery;
use crate::forms::Forms;
use crate::relay::triggers::EngineRunning;
use crate::relay::{Relay, lock, now};
use crate::storage::{AutomationWrite, Pending, RelayKeys};
use crate::workspace::{AuditEvent, DocInfo};

/// How long the engine sleeps when nothing wakes it.
const IDLE: Duration = Duration::from_secs(5);

/// What a step changed that the running relay must hear of.
#[derive(Debug, Default)]
struct Outcome {
    /// Relay changes to documents that may be open.
    changed: Vec<(DocumentId, Vec<StoredChange>)>,
    /// Members to tell of new documents.
    widened: Vec<PublicKey>,
}

/// Runs until `stop` turns true, finishing the step under way.
pub(crate) async fn run(
    relay: Arc<Relay>,
    forms: Arc<Forms>,
    base_url: String,
    mut stop: watch::Receiver<bool>,
) {
    let deliveries = Arc::new(Deliveries::default());
    let allow: Arc<[String]> = Arc::from(relay.config.webhook_allow.clone());
    let watched = Arc::clone(&relay);
    let _running = EngineRunning::new(&watched.automations);
    loop {
        if *stop.borrow() {
            return;
        }
        let engine = Arc::clone(&relay);
        let forms = Arc::clone(&forms);
        let base = base_url.clone();
        let (started, allowed) = (Arc::clone(&deliveries), Arc::clone(&allow));
        let clock = &relay.automations.step_started;
        clock.store(now().0.max(1), Ordering::Release);
        let step =
            tokio::task::spawn_blocking(move || step(&engine, &forms, &base, &started, &allowed))
                .await;
        clock.store(0, Ordering::Release);
        let (mut outcome, wait) = match step {
            Ok(done) => done,
            Err(e) => {
                warn!(error = %e, "the automations step failed");
                (Outcome::default(), IDLE)
            }
        };
        outcome.changed.extend(deliveries.take_finished());
        for (id, changes) in &outcome.changed {
            relay.add_local_changes(*id, changes).await;
        }
        if !outcome.widened.is_empty() {
            relay.enforce(&[], &outcome.widened);
        }
        tokio::select! {
            () = relay.automations.wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
            // Told to stop, or whoever could tell it is gone.
            changed = stop.changed() => if changed.is_err() { return; },
        }
    }
}

/// Looks at every pending document, then starts the webhook deliveries
/// that are due; returns what changed and how long to wait for the next.
fn step(
    relay: &Arc<Relay>,
    forms: &Forms,
    base_url: &str,
    deliveries: &Arc<Deliveries>,
    allow: &Arc<[String]>,
) -> (Outcome, Duration) {
    let mut outcome = Outcome::default();
    let pending = match relay.store().pending() {
        Ok(pending) => pending,
        Err(e) => {
            warn!(error = %e, "cannot read the documents pending for automations");
            return (outcome, IDLE);
        }
    };
    let mut wait = IDLE;
    for p in pending {
        let document = p.document;
        if let Err(e) = look_at(relay, forms, base_url, p, &mut outcome) {
            // The mark stays: the next step tries again.
            warn!(%document, error = %e, "automations could not run on a document");
            wait = Duration::from_secs(1);
        }
    }
    match deliveries.start_due(relay, allow) {
        Ok(Some(next)) => wait = wait.min(next),
        Ok(None) => {}
        Err(e) => warn!(error = %e, "cannot deliver webhooks"),
    }
    (outcome, wait)
}

/// Runs the rules on one pending document and stores what they did with
/// clearing its mark.
fn look_at(
    relay: &Relay,
    forms: &Forms,
    base_url: &str,
    pending: Pending,
    outcome: &mut Outcome,
) -> Result<(), EngineError> {
    let store = relay.store();
    let id = pending.document;
    let home = lock(&relay.workspaces).home_of(id).map(str::to_owned);
    let Some(workspace) = home else {
        return clear(relay, &pending, Vec::new());
    };
    let rules_id = document::document_id(&workspace);
    // Only the workspace's own, listed document holds its rules: one made
    // elsewhere under the same id is never read.
    let listed = lock(&relay.workspaces).home_of(rules_id) == Some(workspace.as_str());
    // The relay's changes to the rules document come one after another.
    let _writing = lock(&relay.automations.writing);
    let rules_doc = if listed {
        store.load_automerge(rules_id)?
    } else {
        Automerge::new()
    };
    let stored_rules = document::rules(&rules_doc);
    if id == rules_id {
        relay
            .automations
            .set_active(&workspace, !stored_rules.is_empty());
        return clear(relay, &pending, Vec::new());
    }
    let keys = relay.relay_keys()?;
    let actor = keys.actor_id();
    let mut doc = store.load_automerge(id)?.with_actor(actor.clone());
    let mut rules_doc = rules_doc.with_actor(actor);
    let rules_before = rules_doc.get_heads();
    let heads = doc.get_heads();
    let at = now();
    let fired: Vec<(String, Rule)> = stored_rules
        .into_iter()
        .filter_map(|stored| {
            let rule = Rule::parse(&stored.text).ok()?;
            fires(&rule, &doc, &pending.before, pending.shared).then_some((stored.id, rule))
        })
        .collect();
    if fired.is_empty() {
        return clear(relay, &pending, heads);
    }
    let relay_key = keys.public_key();
    let mut run = Run {
        store,
        workspace: &workspace,
        record: id,
        at,
        keys: &keys,
        new_documents: Vec::new(),
        deliveries: Vec::new(),
    };
    let values = Values {
        doc: &doc,
        id,
        workspace: &workspace,
        forms,
        base_url,
    };
    let mut sets = Vec::new();
    for (rule_id, rule) in &fired {
        let event = event_id(rule_id, id, &heads);
        info!(document = %id, rule = %rule_id, %event, "automation fired");
        match &rule.action {
            Action::Set { field, value } => sets.push((rule_id, field, values.render(value))),
            action => run.act(rule_id, &event, action, &values)?,
        }
        // A webhook's run is counted when it is delivered (or fails).
        if !matches!(rule.action, Action::Webhook { .. }) {
            change(&mut rules_doc, at, rule_id, |tx| {
                document::record_run(tx, rule_id, None, millis(at))
            })?;
        }
    }
    for (rule_id, field, value) in sets {
        if let Err(error) = set_field(&mut doc, at, rule_id, field, &value)? {
            warn!(document = %id, rule = %rule_id, %error, "an automation's `set` has a value the field does not take");
        }
    }
    let mut changes = vec![
        (id, stored_since(&doc, &heads)),
        (rules_id, stored_since(&rules_doc, &rules_before)),
    ];
    changes.retain(|(_, c)| !c.is_empty());
    let changed = changes.clone();
    changes.extend(run.new_documents.iter().map(|(d, c, _)| (*d, c.clone())));
    let bindings = [(keys.actor.clone(), relay_key)];
    let deliveries: Vec<Vec<u8>> = run
        .deliveries
        .iter()
        .map(|d| serde_json::to_vec(d).expect("a delivery serializes"))
        .collect();
    let looked_at = Some((id, pending.generation, doc.get_heads()));
    if run.new_documents.is_empty() {
        store.save_automation(&AutomationWrite {
            looked_at,
            changes,
            bindings: &bindings,
            deliveries,
            ..AutomationWrite::default()
        })?;
    } else {
        let mut workspaces = lock(&relay.workspaces);
        let mut updated = workspaces.get(&workspace)?.clone();
        let mut events = Vec::new();
        for (new, _, thread_of) in &run.new_documents {
            updated.documents.insert(
                *new,
                DocInfo {
                    thread_of: *thread_of,
                    added_by: relay_key,
                    added_at: at.0,
                },
            );
            events.push(AuditEvent {
                at: at.0,
                event: "document-added".into(),
                by: Some(relay_key),
                member: None,
                document: Some(*new),
                detail: format!("written by an automation on {id}"),
            });
        }
        outcome.widened.extend(updated.members.keys().copied());
        workspaces.commit_with(updated, events, |rows, events| {
            store.save_automation(&AutomationWrite {
                looked_at,
                changes,
                bindings: &bindings,
                workspace: Some(rows),
                events,
                deliveries,
                outbox: Vec::new(),
            })
        })?;
    }
    outcome.changed.extend(changed);
    Ok(())
}

/// Clears a mark when nothing fired.
fn clear(relay: &Relay, pending: &Pending, heads: Vec<ChangeHash>) -> Result<(), EngineError> {
    relay.store().save_automation(&AutomationWrite {
        looked_at: Some((pending.document, pending.generation, heads)),
        ..AutomationWrite::default()
    })?;
    Ok(())
}

/// Whether the changes since `before` fire `rule` on `doc`.
fn fires(rule: &Rule, doc: &Automerge, before: &[ChangeHash], shared: bool) -> bool {
    match &rule.event {
        Event::FieldChanges { .. } => record::fires(rule, doc, before),
        Event::FormSubmitted { form } => {
            let FieldValue::List(tags) = record::field(doc, "tags", None) else {
                return false;
            };
            let from_form = tags
                .iter()
                .any(|tag| match (tag.strip_prefix("form:"), form) {
                    (Some(name), Some(wanted)) => name == wanted,
                    (Some(_), None) => true,
                    (None, _) => false,
                });
            before.is_empty()
                && record::kind(doc) == Some(RecordKind::Task)
                && from_form
                && rule.conditions_hold(|f| record::field(doc, f, None))
        }
        Event::DocumentShared => shared && rule.conditions_hold(|f| record::field(doc, f, None)),
    }
}

/// The stable id of rule `rule` firing on `document` at `heads`: the same
/// every time the same event is looked at.
fn event_id(rule: &str, document: DocumentId, heads: &[ChangeHash]) -> String {
    let mut hash = Sha256::new();
    hash.update(rule.as_bytes());
    hash.update(document.as_bytes());
    let mut sorted = heads.to_vec();
    sorted.sort();
    for head in &sorted {
        hash.update(head.0);
    }
    hash.finalize()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A document id derived from an event and what it makes.
fn derived_id(event: &str, what: &str) -> DocumentId {
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
struct Values<'a> {
    doc: &'a Automerge,
    id: DocumentId,
    workspace: &'a str,
    forms: &'a Forms,
    base_url: &'a str,
}

impl Values<'_> {
    fn render(&self, template: &str) -> String {
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
struct Run<'a> {
    store: &'a crate::storage::Store,
    workspace: &'a str,
    record: DocumentId,
    at: UnixMillis,
    keys: &'a RelayKeys,
    /// New documents: id, changes, and the record a thread is on.
    new_documents: Vec<(DocumentId, Vec<StoredChange>, Option<DocumentId>)>,
    deliveries: Vec<Delivery>,
}

impl Run<'_> {
    fn act(
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
                let doc = new_document(&task, self.keys.actor_id(), self.at, &message(rule))?;
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
                    self.keys.actor_id(),
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

/// The changes of `doc` that are not ancestors of `heads`, as stored.
fn stored_since(doc: &Automerge, heads: &[ChangeHash]) -> Vec<StoredChange> {
    StoredChange::since(doc, heads)
}

/// The UTC day of `at`, plus `days`.
fn date_after(at: UnixMillis, days: u32) -> Option<Date> {
    Date::utc(at)?.plus_days(i64::from(days))
}

/// Sets `field` of the record `doc` holds to `value`, as `rapport … set`
/// would, in one change by the relay on behalf of `rule`. The outer error is
/// the document's; the inner one says the field does not take the value,
/// and nothing was written.
fn set_field(
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

    #[test]
    fn event_ids_are_stable_and_distinct() {
        let doc = DocumentId::from_bytes([1; 16]);
        let heads = [ChangeHash([2; 32]), ChangeHash([1; 32])];
        let swapped = [heads[1], heads[0]];
        assert_eq!(event_id("r", doc, &heads), event_id("r", doc, &swapped));
        assert_ne!(event_id("r", doc, &heads), event_id("s", doc, &heads));
        assert_ne!(event_id("r", doc, &heads), event_id("r", doc, &heads[..1]));
        assert_ne!(derived_id("e", "task"), derived_id("e", "thread"));
    }
}
