//! Webhook deliveries, each on a thread of its own, at most
//! [`PER_WORKSPACE`] under way per workspace and [`IN_ALL`] in all: a
//! receiver that answers slowly (or never, until the timeout) delays
//! nothing but the deliveries of its own workspace beyond that bound, and
//! never the engine's look at pending documents.
//!
//! A finished attempt is stored with its outbox row (cleared, or rewritten
//! for a retry) and the rule's count in the automations document, in one
//! transaction; the engine forwards the relay's change to that document.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rapport_model::automation::document;
use rapport_protocol::ids::{DocumentId, UnixMillis};
use rapport_protocol::relay::StoredChange;
use tracing::{debug, warn};

use super::relay_changes::{EngineError, change, millis};
use super::webhook::{self, Delivery};
use super::webhook_secret;
use crate::relay::{Relay, lock, now};
use crate::storage::AutomationWrite;

/// Deliveries under way at once for one workspace.
pub(super) const PER_WORKSPACE: usize = 4;
/// Deliveries under way at once in all.
pub(super) const IN_ALL: usize = 32;

/// Deliveries under way, and the changes finished ones made.
#[derive(Debug, Default)]
pub(super) struct Deliveries {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Outbox rows being delivered.
    under_way: BTreeSet<u64>,
    per_workspace: HashMap<String, usize>,
    /// Relay changes to automations documents, for the engine to forward.
    finished: Vec<(DocumentId, Vec<StoredChange>)>,
}

impl Deliveries {
    /// Starts every due delivery that is not under way, within the bounds;
    /// returns how long until the next one is due, if one is waiting.
    /// Blocking.
    pub(super) fn start_due(
        self: &Arc<Self>,
        relay: &Arc<Relay>,
        allow: &Arc<[String]>,
    ) -> Result<Option<Duration>, EngineError> {
        let store = relay.store();
        let mut next: Option<Duration> = None;
        for (seq, row) in store.outbox()? {
            let Ok(delivery) = serde_json::from_slice::<Delivery>(&row) else {
                warn!(seq, "a damaged webhook in the outbox; dropped");
                store.save_automation(&AutomationWrite {
                    outbox: vec![(seq, None)],
                    ..AutomationWrite::default()
                })?;
                continue;
            };
            let at = now();
            if delivery.next_at > at.0 {
                let due = Duration::from_millis(delivery.next_at - at.0);
                next = Some(next.map_or(due, |next| next.min(due)));
                continue;
            }
            if !self.claim(seq, &delivery.workspace) {
                continue;
            }
            let (deliveries, relay, allow) =
                (Arc::clone(self), Arc::clone(relay), Arc::clone(allow));
            let spawned = std::thread::Builder::new()
                .name("rapport-webhook".to_owned())
                .spawn(move || deliveries.attempt(&relay, seq, delivery, &allow));
            if let Err(e) = spawned {
                warn!(error = %e, "cannot start a webhook delivery");
                lock(&self.state).under_way.remove(&seq);
            }
        }
        Ok(next)
    }

    /// The changes finished deliveries made, to forward.
    pub(super) fn take_finished(&self) -> Vec<(DocumentId, Vec<StoredChange>)> {
        std::mem::take(&mut lock(&self.state).finished)
    }

    /// Marks `seq` under way if it is not and the bounds allow.
    fn claim(&self, seq: u64, workspace: &str) -> bool {
        let mut state = lock(&self.state);
        let busy = state.per_workspace.get(workspace).copied().unwrap_or(0);
        if state.under_way.contains(&seq)
            || busy >= PER_WORKSPACE
            || state.under_way.len() >= IN_ALL
        {
            return false;
        }
        state.under_way.insert(seq);
        *state.per_workspace.entry(workspace.to_owned()).or_insert(0) += 1;
        true
    }

    /// One attempt, stored; then the engine is woken to forward it.
    fn attempt(&self, relay: &Relay, seq: u64, delivery: Delivery, allow: &Arc<[String]>) {
        let workspace = delivery.workspace.clone();
        match record(relay, seq, delivery, allow) {
            Ok(changes) => lock(&self.state).finished.push(changes),
            Err(e) => warn!(seq, error = %e, "cannot store a webhook's result; it is tried again"),
        }
        let mut state = lock(&self.state);
        state.under_way.remove(&seq);
        if let Some(busy) = state.per_workspace.get_mut(&workspace) {
            *busy -= 1;
            if *busy == 0 {
                state.per_workspace.remove(&workspace);
            }
        }
        drop(state);
        relay.automations.wake();
    }
}

/// Posts `delivery` once and stores what became of it.
fn record(
    relay: &Relay,
    seq: u64,
    mut delivery: Delivery,
    allow: &Arc<[String]>,
) -> Result<(DocumentId, Vec<StoredChange>), EngineError> {
    let store = relay.store();
    let keys = relay.relay_keys()?;
    let secret = webhook_secret(&keys, &delivery.workspace);
    let result = webhook::post(&delivery, secret.as_bytes(), allow);
    let at: UnixMillis = now();
    let row = match &result {
        Ok(()) => {
            debug!(url = %delivery.url, event = %delivery.event, "webhook delivered");
            None
        }
        Err(error) => {
            let again = delivery.failed(error.clone(), at.0);
            warn!(url = %delivery.url, attempts = delivery.attempts, %error, again, "webhook failed");
            again.then(|| serde_json::to_vec(&delivery).expect("a delivery serializes"))
        }
    };
    let rules_id = document::document_id(&delivery.workspace);
    // The relay's changes to the rules document come one after another.
    let _writing = lock(&relay.automations.writing);
    let mut rules = store.load_automerge(rules_id)?.with_actor(keys.actor_id());
    let before = rules.get_heads();
    change(&mut rules, at, &delivery.rule, |tx| {
        document::record_run(
            tx,
            &delivery.rule,
            result.as_ref().err().map(String::as_str),
            millis(at),
        )
    })?;
    let changes = StoredChange::since(&rules, &before);
    let bindings = [(keys.actor.clone(), keys.public_key())];
    store.save_automation(&AutomationWrite {
        changes: vec![(rules_id, changes.clone())],
        bindings: &bindings,
        outbox: vec![(seq, row)],
        ..AutomationWrite::default()
    })?;
    Ok((rules_id, changes))
}
