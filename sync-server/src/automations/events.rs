//! The automations in a cluster: every relay takes events from the
//! cluster's work queue (`cluster::events`) and runs the rules on each
//! ([`engine::look_at_event`]); JetStream hands each event to one relay,
//! and to another if that one does not finish it.

use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, warn};

use super::engine::{EventError, look_at_event};
use crate::cluster::Cluster;
use crate::cluster::events::{self, Event, Handled};
use crate::forms::Forms;
use crate::relay::Relay;

/// Takes the cluster's events until `stop`.
pub(crate) async fn run(
    relay: Arc<Relay>,
    cluster: Arc<Cluster>,
    forms: Arc<Forms>,
    base_url: String,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let base_url: Arc<str> = Arc::from(base_url);
    events::follow(cluster, stop, move |event| {
        let relay = Arc::clone(&relay);
        let forms = Arc::clone(&forms);
        let base_url = Arc::clone(&base_url);
        async move { handle(relay, forms, base_url, event).await }
    })
    .await;
}

async fn handle(
    relay: Arc<Relay>,
    forms: Arc<Forms>,
    base_url: Arc<str>,
    event: Event,
) -> Result<Handled, String> {
    let keys = relay.relay_keys().map_err(|e| e.to_string())?;
    // The relay's own changes never set off a rule.
    if event.taken.author == Some(keys.public_key()) {
        return Ok(Handled::Done);
    }
    let looker = Arc::clone(&relay);
    let Event {
        document,
        taken,
        at,
    } = event;
    let looked = tokio::task::spawn_blocking(move || {
        look_at_event(&looker, &forms, &base_url, document, &taken.changes, at)
    })
    .await
    .map_err(|e| format!("the automations panicked: {e}"))?;
    match looked {
        Ok(outcome) => {
            debug!(%document, changed = outcome.changed.len(), "an event from the cluster looked at");
            for (id, changes) in &outcome.changed {
                relay.add_local_changes(*id, changes).await;
            }
            if !outcome.widened.is_empty() {
                relay.enforce(&[], &outcome.widened);
            }
            Ok(Handled::Done)
        }
        Err(EventError::NotYet) => Ok(Handled::Later(Duration::from_millis(500))),
        Err(EventError::Failed(e)) => {
            warn!(%document, error = %e, "the automations could not run on an event from the cluster");
            Err(e.to_string())
        }
    }
}
