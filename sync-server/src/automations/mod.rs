//! Automations: the rules of each workspace's automations document (see
//! `rapport_model::automation`), run by the relay under its own
//! identity, exactly once per event.
//!
//! # How an event is found, once
//!
//! When a peer's changes to a document of a workspace that has rules are
//! stored, the same transaction marks the document pending with its heads
//! before them (`automation_pending`). The engine ([`engine::run`]) takes
//! each pending document, reads it as automerge, and asks every rule
//! whether the changes since those heads fire it
//! (`rapport_model::automation::record::fires`). What the fired rules
//! do — the relay's changes, new documents listed in the workspace,
//! webhooks put in the outbox, each rule's run counted in the automations
//! document — is stored in one transaction with clearing the mark. A crash
//! before it leaves the mark, and the engine finds the same events again;
//! after it, nothing is left to find. The relay's own changes never mark a
//! document, so a rule cannot set off itself.
//!
//! In a cluster (`--cluster`), a change's event is a message of the
//! cluster's stream, and the automations' work queue hands each to one
//! relay ([`events`]), and to another if that one dies or loses NATS
//! before it is done. What the rules make of an event is a function of the
//! event alone (the document at the event's heads, changes by an actor
//! derived from it, timed when the stream took it, new documents under ids
//! derived from it), so a second run adds nothing: an event done twice is
//! done once. Its webhooks are the exception: they go out from the relay
//! that ran the event, at least once, with the event's id for the receiver
//! to tell a repeat. A document's shared event and a form's submission
//! stay with the relay that took them, as on a single relay.
//!
//! Events: a field of a task, customer or doc changes (to a value); a form
//! is submitted (a task the relay made from a form submission appears);
//! a document is shared. Actions: create a task, set a field, comment (a
//! new comment thread on the record), post to a webhook.
//!
//! Webhooks are delivered from the outbox by the same engine, signed with
//! the workspace's secret ([`webhook_secret`]), and retried with growing
//! delays ([`webhook::retry_delay`]); each failure is counted, with its
//! message, in the automations document, where `rapport automation list`
//! shows it. Nothing here runs on the sync path: a webhook that is down
//! delays nothing but its own retries.

mod actions;
pub(crate) mod api;
mod delivery;
mod engine;
pub(crate) mod events;
mod relay_changes;
mod rules_document;
pub mod webhook;

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub(crate) use engine::run;
pub(crate) use rules_document::{adopt_rules_documents, new_rules_document};

use crate::storage::RelayKeys;

/// The secret a workspace's webhooks are signed with: derived from the
/// relay's own key, so it needs no storage and stays the same across
/// restarts. Admins read it from `GET /api/workspaces/{ws}/automations`.
pub(crate) fn webhook_secret(keys: &RelayKeys, workspace: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(&keys.secret).expect("HMAC takes a key of any length");
    mac.update(b"rapport webhook secret\0");
    mac.update(workspace.as_bytes());
    let bytes = mac.finalize().into_bytes();
    bs58::encode(&bytes[..24]).into_string()
}
