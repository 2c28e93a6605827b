//! Presence across the relays of a cluster: an ephemeral message a relay
//! forwards to its own peers also goes to the other relays, over core NATS
//! (subject `rapport.eph.<document id>`, not the stream), which forward it
//! to theirs. At most once, and never stored, as on a single relay.

use std::sync::Arc;

use futures_util::StreamExt as _;
use rapport_protocol::ids::PublicKey;
use rapport_protocol::wire::{Ephemeral, Message};
use tracing::{debug, warn};

use super::{AUTHOR, Cluster, NODE};

/// Passes `message`, which `author` sent, to the other relays.
pub(crate) async fn publish(cluster: &Cluster, message: &Ephemeral, author: Option<PublicKey>) {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(NODE, cluster.node.as_str());
    if let Some(author) = author {
        headers.insert(AUTHOR, author.to_string().as_str());
    }
    let body = Message::Ephemeral(message.clone()).encode();
    let subject = format!("rapport.eph.{}", message.document_id);
    if let Err(e) = cluster
        .client
        .publish_with_headers(subject, headers, body.into())
        .await
    {
        debug!(error = %e, "an ephemeral message did not reach the other relays");
    }
}

/// Hands every ephemeral message the other relays publish to `forward`,
/// with the key that sent it, until `stop`.
pub(crate) async fn follow<F, Fut>(
    cluster: Arc<Cluster>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    mut forward: F,
) where
    F: FnMut(Ephemeral, Option<PublicKey>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    loop {
        match cluster.client.subscribe("rapport.eph.*").await {
            Ok(mut messages) => loop {
                let message = tokio::select! {
                    next = messages.next() => next,
                    _ = stop.changed() => return,
                };
                let Some(message) = message else { break };
                let header = |name: &str| super::header(message.headers.as_ref(), name);
                if header(NODE).as_deref() == Some(cluster.node.as_str()) {
                    continue;
                }
                let author = header(AUTHOR).and_then(|key| key.parse().ok());
                match Message::decode(&message.payload) {
                    Ok(Message::Ephemeral(ephemeral)) => forward(ephemeral, author).await,
                    _ => {
                        warn!(subject = %message.subject, "a presence message from the cluster that does not parse")
                    }
                }
            },
            Err(e) => warn!(error = %e, "cannot follow the cluster's presence messages"),
        }
        if super::pause(&mut stop).await {
            return;
        }
    }
}
