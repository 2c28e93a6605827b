//! The automations' work queue (docs/cluster.md, section 5): one durable
//! consumer, `automations`, that every relay of the cluster pulls from.
//! Each message of the changes stream is an event the rules may fire on;
//! JetStream hands it to one relay at a time, and hands it to another if
//! that relay does not acknowledge it within [`ACK_WAIT`] (it died, or
//! lost NATS, mid-way). What a relay makes of an event is the same
//! wherever and however often it is made (`automations::engine`), so an
//! event done twice adds nothing the second time.

use std::time::Duration;

use async_nats::jetstream::{AckKind, consumer};
use futures_util::StreamExt as _;
use rapport_protocol::ids::{DocumentId, UnixMillis};
use tracing::{debug, warn};

use super::{AUTHOR, Cluster, ClusterError, SNAPSHOT, Taken, decode};

/// The consumer every relay shares.
const CONSUMER: &str = "automations";

/// How long a relay has to finish an event before JetStream hands it to
/// another.
pub(crate) const ACK_WAIT: Duration = Duration::from_secs(10);

/// Events on their way at once, across the cluster.
const IN_FLIGHT: i64 = 256;

/// An event handed to a relay this many times and never finished is
/// given up (logged by the relay that saw it last).
const MAX_DELIVER: i64 = 50;

/// What a relay makes of one event.
#[derive(Debug)]
pub(crate) enum Handled {
    /// Done, or nothing for the rules: acknowledged.
    Done,
    /// Not yet (the relay's copy lacks the changes): handed out again
    /// after the delay.
    Later(Duration),
}

/// One event: a message of the changes stream, with when JetStream took
/// it (the time the rules' changes carry, the same on every relay).
#[derive(Debug)]
pub(crate) struct Event {
    pub(crate) document: DocumentId,
    pub(crate) taken: Taken,
    pub(crate) at: UnixMillis,
}

/// Pulls events until `stop`, handing each to `handle`.
pub(crate) async fn follow<F, Fut>(
    cluster: std::sync::Arc<Cluster>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    mut handle: F,
) where
    F: FnMut(Event) -> Fut,
    Fut: std::future::Future<Output = Result<Handled, String>>,
{
    loop {
        if let Err(e) = follow_once(&cluster, &mut stop, &mut handle).await {
            warn!(error = %e, "taking the automations' events failed; trying again in a second");
        }
        if super::pause(&mut stop).await {
            return;
        }
    }
}

async fn follow_once<F, Fut>(
    cluster: &Cluster,
    stop: &mut tokio::sync::watch::Receiver<bool>,
    handle: &mut F,
) -> Result<(), ClusterError>
where
    F: FnMut(Event) -> Fut,
    Fut: std::future::Future<Output = Result<Handled, String>>,
{
    // A relay takes events once it has read the stream to its end: before,
    // it may not know the rules an event fires.
    while !cluster.caught_up() {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = stop.changed() => return Ok(()),
        }
    }
    let jetstream = |e: &dyn std::fmt::Display| ClusterError::JetStream(e.to_string());
    let consumer = cluster
        .stream
        .get_or_create_consumer(
            CONSUMER,
            consumer::pull::Config {
                durable_name: Some(CONSUMER.to_owned()),
                // The cluster's first relay starts it; events before are
                // nobody's.
                deliver_policy: consumer::DeliverPolicy::New,
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: ACK_WAIT,
                max_ack_pending: IN_FLIGHT,
                max_deliver: MAX_DELIVER,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| jetstream(&e))?;
    let mut messages = consumer.messages().await.map_err(|e| jetstream(&e))?;
    loop {
        let message = tokio::select! {
            next = messages.next() => next,
            _ = stop.changed() => return Ok(()),
        };
        let Some(message) = message else {
            return Ok(());
        };
        let message = message.map_err(|e| jetstream(&e))?;
        let header = |name: &str| super::header(message.headers.as_ref(), name);
        let document = super::document_of(&message.subject);
        let taken = decode(&message.payload);
        let (Some(document), Some(mut taken)) = (document, taken) else {
            warn!(subject = %message.subject, "an event that does not parse; passed over");
            message.ack().await.map_err(|e| jetstream(&e))?;
            continue;
        };
        // A compaction's snapshot repeats changes already seen.
        if header(SNAPSHOT).is_some() {
            message.ack().await.map_err(|e| jetstream(&e))?;
            continue;
        }
        taken.author = header(AUTHOR).and_then(|key| key.parse().ok());
        if !taken.split() {
            warn!(%document, "an event whose saved document does not parse; passed over");
            message.ack().await.map_err(|e| jetstream(&e))?;
            continue;
        }
        let (at, delivered) = match message.info() {
            Ok(info) => (
                UnixMillis(
                    u64::try_from(info.published.unix_timestamp_nanos() / 1_000_000).unwrap_or(0),
                ),
                info.delivered,
            ),
            Err(e) => return Err(jetstream(&e)),
        };
        let event = Event {
            document,
            taken,
            at,
        };
        match handle(event).await {
            Ok(Handled::Done) => message.ack().await.map_err(|e| jetstream(&e))?,
            Ok(Handled::Later(delay)) => {
                debug!(%document, delivered, "an event waits for its changes here");
                message
                    .ack_with(AckKind::Nak(Some(delay)))
                    .await
                    .map_err(|e| jetstream(&e))?;
            }
            Err(error) => {
                if delivered >= MAX_DELIVER {
                    warn!(%document, %error, delivered, "the automations could not run on an event; given up");
                } else {
                    warn!(%document, %error, delivered, "the automations could not run on an event; trying again");
                }
                message
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                    .await
                    .map_err(|e| jetstream(&e))?;
            }
        }
    }
}
