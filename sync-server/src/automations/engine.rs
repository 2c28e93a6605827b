//! The engine: takes pending documents, runs the rules on them, delivers
//! webhooks. One task, off the sync path; each step's storage work runs on
//! a blocking thread.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use automerge::{ActorId, Automerge, ChangeHash, ReadDoc as _};
use rapport_model::automation::{Action, Event, FieldValue, RecordKind, Rule, document, record};
use rapport_protocol::ids::{DocumentId, PublicKey, UnixMillis};
use rapport_protocol::relay::StoredChange;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tracing::{info, warn};

use super::actions::{Run, Values, set_field};
use super::delivery::Deliveries;
use super::relay_changes::{EngineError, change, millis};
use crate::forms::Forms;
use crate::relay::triggers::EngineRunning;
use crate::relay::{Relay, lock, now};
use crate::storage::{AutomationWrite, Pending, RelayKeys};
use crate::workspace::{AuditEvent, DocInfo};

/// How long the engine sleeps when nothing wakes it.
const IDLE: Duration = Duration::from_secs(5);

/// What a step changed that the running relay must hear of.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Relay changes to documents that may be open.
    pub(crate) changed: Vec<(DocumentId, Vec<StoredChange>)>,
    /// Members to tell of new documents.
    pub(crate) widened: Vec<PublicKey>,
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
    // The relay's changes to the rules document come one after another.
    let _writing = lock(&relay.automations.writing);
    let rules_doc = rules_document(relay, &workspace)?;
    if id == rules_id {
        relay
            .automations
            .set_active(&workspace, !document::rules(&rules_doc).is_empty());
        return clear(relay, &pending, Vec::new());
    }
    let keys = relay.relay_keys()?;
    let doc = store.load_automerge(id)?.with_actor(keys.actor_id());
    let heads = doc.get_heads();
    let seen = Seen {
        id,
        workspace,
        doc,
        before: pending.before.clone(),
        shared: pending.shared,
        at: now(),
        held: None,
        mark: Some(pending.generation),
    };
    if !fire(relay, forms, base_url, seen, rules_doc, outcome)? {
        return clear(relay, &pending, heads);
    }
    Ok(())
}

/// Why an event from the cluster could not be looked at yet.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EventError {
    #[error("this relay does not hold the event's changes, or its workspace's rules, yet")]
    NotYet,
    #[error(transparent)]
    Failed(#[from] EngineError),
}

/// Runs the rules on an event of the cluster's work queue: `changes` of
/// `id`, as one message of the stream carried them, taken at `at`. What
/// the rules do is a function of the event alone, wherever and however
/// often it is run: the document is read at the event's heads, the
/// relay's changes are written by an actor derived from them and timed
/// `at`, and new documents have ids derived from the event, so a second
/// run makes byte for byte the changes of the first, which add nothing.
pub(crate) fn look_at_event(
    relay: &Relay,
    forms: &Forms,
    base_url: &str,
    id: DocumentId,
    changes: &[StoredChange],
    at: UnixMillis,
) -> Result<Outcome, EventError> {
    let mut outcome = Outcome::default();
    let home = lock(&relay.workspaces).home_of(id).map(str::to_owned);
    let Some(workspace) = home else {
        return Ok(outcome);
    };
    // A relay that has not read the stream to its end since it started,
    // or not looked at the workspace's rules since they changed, may not
    // know them yet.
    let caught_up = relay.cluster.get().is_none_or(|c| c.caught_up());
    if !caught_up || relay.automations.is_unsettled(&workspace) {
        return Err(EventError::NotYet);
    }
    if id == document::document_id(&workspace) || !relay.automations.is_active(&workspace) {
        return Ok(outcome);
    }
    let keys = relay.relay_keys().map_err(EngineError::from)?;
    let whole = relay
        .store()
        .load_automerge(id)
        .map_err(EngineError::from)?;
    if changes
        .iter()
        .any(|c| whole.get_change_by_hash(&c.hash).is_none())
    {
        return Err(EventError::NotYet);
    }
    let ours: std::collections::HashSet<ChangeHash> = changes.iter().map(|c| c.hash).collect();
    let mut before: Vec<ChangeHash> = changes
        .iter()
        .flat_map(|c| c.deps.iter().copied())
        .filter(|dep| !ours.contains(dep))
        .collect();
    before.sort();
    before.dedup();
    let hashes: Vec<ChangeHash> = ours.iter().copied().collect();
    let doc = whole.fork_at(&hashes).map_err(EngineError::from)?;
    let actor = event_actor(&keys, id, &doc.get_heads());
    let seen = Seen {
        id,
        workspace: workspace.clone(),
        doc: doc.with_actor(actor),
        before,
        shared: false,
        at,
        held: Some(&whole),
        mark: None,
    };
    let _writing = lock(&relay.automations.writing);
    let rules_doc = rules_document(relay, &workspace)?;
    fire(relay, forms, base_url, seen, rules_doc, &mut outcome)?;
    Ok(outcome)
}

/// The automations document of `workspace`, or an empty one when the
/// workspace does not list it: only the workspace's own, listed document
/// holds its rules, and one made elsewhere under the same id is never
/// read.
fn rules_document(relay: &Relay, workspace: &str) -> Result<Automerge, EngineError> {
    let listed = lock(&relay.workspaces).rules_of(workspace);
    Ok(match listed {
        Some(rules) => relay.store().load_automerge(rules)?,
        None => Automerge::new(),
    })
}

/// The actor of the relay's changes for the event at `heads` of
/// `document`: the relay's key, then 16 bytes of the event, so that the
/// actor names its key and every relay writes the event's changes alike.
fn event_actor(keys: &RelayKeys, document: DocumentId, heads: &[ChangeHash]) -> ActorId {
    let mut hash = Sha256::new().chain_update(b"rapport/automation actor\0");
    hash.update(document.as_bytes());
    let mut sorted = heads.to_vec();
    sorted.sort();
    for head in &sorted {
        hash.update(head.0);
    }
    let mut actor = keys.public_key().as_bytes().to_vec();
    actor.extend_from_slice(&hash.finalize()[..16]);
    ActorId::from(actor)
}

/// A document the rules look at.
struct Seen<'a> {
    id: DocumentId,
    workspace: String,
    /// The document at the heads looked at, with the actor the relay's
    /// changes to it are written by.
    doc: Automerge,
    /// The heads before the changes that may fire a rule.
    before: Vec<ChangeHash>,
    /// Whether it was just shared.
    shared: bool,
    at: UnixMillis,
    /// The document as the relay holds it, if that is more than `doc`
    /// (an event's): changes it holds already (a run of the event done
    /// before) are not stored again.
    held: Option<&'a Automerge>,
    /// The generation of its pending mark, which what the rules do
    /// clears (a single relay); none for an event of the cluster.
    mark: Option<u64>,
}

/// Runs the rules of `rules_doc` on `seen` and stores what they did;
/// false if none fired (nothing is stored then). The caller holds
/// `automations.writing`.
fn fire(
    relay: &Relay,
    forms: &Forms,
    base_url: &str,
    seen: Seen<'_>,
    rules_doc: Automerge,
    outcome: &mut Outcome,
) -> Result<bool, EngineError> {
    let store = relay.store();
    let Seen {
        id,
        workspace,
        mut doc,
        before,
        shared,
        at,
        held,
        mark,
    } = seen;
    let rules_id = document::document_id(&workspace);
    let keys = relay.relay_keys()?;
    let mut rules_doc = rules_doc.with_actor(keys.actor_id());
    let rules_before = rules_doc.get_heads();
    let heads = doc.get_heads();
    let fired: Vec<(String, Rule)> = document::rules(&rules_doc)
        .into_iter()
        .filter_map(|stored| {
            let rule = Rule::parse(&stored.text).ok()?;
            fires(&rule, &doc, &before, shared).then_some((stored.id, rule))
        })
        .collect();
    if fired.is_empty() {
        return Ok(false);
    }
    let relay_key = keys.public_key();
    let actor = doc.get_actor().clone();
    let mut run = Run {
        store,
        workspace: &workspace,
        record: id,
        at,
        keys: &keys,
        actor: actor.clone(),
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
    let mut made = stored_since(&doc, &heads);
    if let Some(held) = held {
        made.retain(|c| held.get_change_by_hash(&c.hash).is_none());
    }
    let mut changes = vec![
        (id, made),
        (rules_id, stored_since(&rules_doc, &rules_before)),
    ];
    changes.retain(|(_, c)| !c.is_empty());
    changes.extend(run.new_documents.iter().map(|(d, c, _)| (*d, c.clone())));
    // New documents too: no peer has them open yet, but the cluster's
    // other relays must have them.
    let changed = changes.clone();
    let bindings = [
        (keys.actor.clone(), relay_key),
        (actor.to_bytes().to_vec(), relay_key),
    ];
    let bindings = if actor.to_bytes() == keys.actor.as_slice() {
        &bindings[..1]
    } else {
        &bindings[..]
    };
    let deliveries: Vec<Vec<u8>> = run
        .deliveries
        .iter()
        .map(|d| serde_json::to_vec(d).expect("a delivery serializes"))
        .collect();
    let looked_at = mark.map(|generation| (id, generation, doc.get_heads()));
    if run.new_documents.is_empty() {
        store.save_automation(&AutomationWrite {
            looked_at,
            changes,
            bindings,
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
                bindings,
                workspace: Some(rows),
                events,
                deliveries,
                outbox: Vec::new(),
            })
        })?;
    }
    outcome.changed.extend(changed);
    Ok(true)
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

/// The changes of `doc` that are not ancestors of `heads`, as stored.
fn stored_since(doc: &Automerge, heads: &[ChangeHash]) -> Vec<StoredChange> {
    StoredChange::since(doc, heads)
}

#[cfg(test)]
mod tests {
    use super::super::actions::derived_id;
    use super::*;

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
