//! Several relays as one, on NATS JetStream (`--cluster`): the changes
//! (docs/cluster.md, section 2), and in [`control`] the workspaces.
//!
//! A change a relay accepts is published to stream `RAPPORT_CHANGES` on
//! subject `rapport.doc.<document id>`, and acknowledged to its author only
//! once JetStream has acknowledged it: the stream is the durable point.
//! Every relay follows the whole stream with a durable consumer of its
//! own, stores what other relays published in its redb copy, and hands it
//! to the document in memory, which forwards it to its peers. Stream order
//! is a dependency order: a relay publishes a change only once its
//! dependencies are in its graph, so after they were published or read
//! from the stream.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt as _;
use rapport_protocol::ids::{DocumentId, PublicKey};
use rapport_protocol::relay::StoredChange;
use tracing::{debug, info, warn};

mod buckets;
pub(crate) mod compaction;
pub(crate) mod control;
pub(crate) mod events;
mod message;
pub(crate) mod presence;
pub(crate) mod shared;

use crate::metrics::write_metric;
pub(crate) use message::Taken;
use message::{WHOLE, decode, encode, message_id, row_size};

/// The stream every relay of a cluster publishes its changes to.
const STREAM: &str = "RAPPORT_CHANGES";

/// How long a publish waits for JetStream's acknowledgement before the
/// changes are refused as `storage-unavailable`.
const ACK_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a relay starting keeps asking a NATS server that is starting
/// too for the stream.
const JOIN_PATIENCE: Duration = Duration::from_secs(30);

/// The header naming the relay that accepted a message.
const NODE: &str = "Rapport-Node";

/// The header naming the key that wrote a message's changes, which claims
/// a document no workspace lists and binds the changes' actors on every
/// relay as on the one that accepted them.
const AUTHOR: &str = "Rapport-Author";

/// The header marking a compaction's snapshot, which repeats changes the
/// subject had already.
const SNAPSHOT: &str = "Rapport-Snapshot";

/// What may go wrong with the cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot reach NATS at {urls}: {reason}")]
    Connect { urls: String, reason: String },
    #[error("NATS JetStream: {0}")]
    JetStream(String),
    #[error("NATS did not acknowledge the changes within {0:?}")]
    Timeout(Duration),
}

/// A relay's link to the cluster.
#[derive(Debug)]
pub(crate) struct Cluster {
    client: async_nats::Client,
    js: jetstream::Context,
    stream: stream::Stream,
    /// This relay's name in the cluster (its relay id).
    node: String,
    /// Messages this relay published, and those of other relays it took.
    published: AtomicU64,
    taken: AtomicU64,
    /// Messages of the stream this relay's consumer has yet to read, as of
    /// the last one it read.
    pending: AtomicU64,
    /// Whether this relay's consumer has read the stream to its end once
    /// since the relay started: until then, it may not know a workspace's
    /// rules yet.
    caught_up: std::sync::atomic::AtomicBool,
    /// Messages of each document since its subject was compacted.
    pub(crate) counts: compaction::Counts,
    /// Documents whose subject is due for compaction, with the attempts
    /// made so far.
    due: tokio::sync::mpsc::UnboundedSender<(DocumentId, u32)>,
}

impl Cluster {
    /// Connects to NATS at `urls` and makes sure the stream exists; the
    /// receiver gets the documents whose subject is due for compaction.
    pub(crate) async fn join(
        urls: &[String],
        node: &str,
        replicas: usize,
    ) -> Result<
        (
            Self,
            tokio::sync::mpsc::UnboundedReceiver<(DocumentId, u32)>,
        ),
        ClusterError,
    > {
        let client = connect(urls, node).await?;
        let js = jetstream::new(client.clone());
        let stream = patiently(|| async {
            js.get_or_create_stream(stream::Config {
                name: STREAM.to_owned(),
                subjects: vec!["rapport.doc.*".to_owned()],
                storage: stream::StorageType::File,
                num_replicas: replicas,
                ..Default::default()
            })
            .await
            .map_err(|e| ClusterError::JetStream(e.to_string()))
        })
        .await?;
        let joined = urls.join(",");
        info!(urls = %joined, node, "joined the cluster");
        let (due, asked) = tokio::sync::mpsc::unbounded_channel();
        let joined = Self {
            client,
            js,
            stream,
            node: node.to_owned(),
            published: AtomicU64::new(0),
            taken: AtomicU64::new(0),
            pending: AtomicU64::new(0),
            caught_up: std::sync::atomic::AtomicBool::new(false),
            counts: compaction::Counts::default(),
            due,
        };
        Ok((joined, asked))
    }

    /// Asks for `document`'s subject to be compacted.
    pub(crate) fn ask_compaction(&self, document: DocumentId) {
        let _ = self.due.send((document, 0));
    }

    /// Asks again, a little later, after attempt `attempt` found a relay
    /// behind; at most a few times, then the document's next messages ask.
    pub(crate) fn ask_compaction_again(&self, document: DocumentId, attempt: u32) {
        if attempt >= 3 {
            return;
        }
        let due = self.due.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let _ = due.send((document, attempt + 1));
        });
    }

    /// Whether the connection to NATS is up.
    pub(crate) fn caught_up(&self) -> bool {
        self.caught_up.load(Ordering::Acquire)
    }

    pub(crate) fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Publishes the new changes of one sync message and waits for
    /// JetStream to acknowledge them: as the saved document they came in
    /// when `whole` is given (a first upload), otherwise change by change,
    /// in as many messages as the largest NATS takes requires, in order.
    pub(crate) async fn publish(
        &self,
        document: DocumentId,
        changes: &[StoredChange],
        whole: Option<&[u8]>,
        author: Option<PublicKey>,
    ) -> Result<(), ClusterError> {
        let max = self.max_body();
        if let Some(saved) = whole.filter(|saved| saved.len() < max) {
            let mut body = vec![WHOLE];
            body.extend_from_slice(saved);
            return self.publish_body(document, changes, body, author).await;
        }
        let mut start = 0;
        while start < changes.len() {
            let mut end = start;
            let mut size = 5;
            while let Some(change) = changes.get(end) {
                let row = row_size(change);
                if end > start && size + row >= max {
                    break;
                }
                size += row;
                end += 1;
            }
            let part = &changes[start..end];
            self.publish_body(document, part, encode(part), author)
                .await?;
            start = end;
        }
        Ok(())
    }

    /// Takes a document deleted or erased out of the stream: every
    /// change of it, so that no relay catching up stores it again and
    /// nothing of an erased document stays in NATS.
    pub(crate) async fn purge(&self, document: DocumentId) -> Result<(), ClusterError> {
        self.stream
            .purge()
            .filter(subject(document))
            .await
            .map(|_| ())
            .map_err(|e| ClusterError::JetStream(e.to_string()))
    }

    /// The largest body a message may have on this NATS, less room for
    /// the headers.
    fn max_body(&self) -> usize {
        (self.client.server_info().max_payload).saturating_sub(16 * 1024)
    }

    async fn publish_body(
        &self,
        document: DocumentId,
        changes: &[StoredChange],
        body: Vec<u8>,
        author: Option<PublicKey>,
    ) -> Result<(), ClusterError> {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(NODE, self.node.as_str());
        if let Some(author) = author {
            headers.insert(AUTHOR, author.to_string().as_str());
        }
        headers.insert("Nats-Msg-Id", message_id(document, changes).as_str());
        let ack = self
            .js
            .publish_with_headers(subject(document), headers, body.into())
            .await
            .map_err(|e| ClusterError::JetStream(e.to_string()))?;
        tokio::time::timeout(ACK_TIMEOUT, ack)
            .await
            .map_err(|_| ClusterError::Timeout(ACK_TIMEOUT))?
            .map_err(|e| ClusterError::JetStream(e.to_string()))?;
        self.published.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The cluster's lines of `/metrics`.
    pub(crate) fn render_metrics(&self) -> String {
        let mut out = String::new();
        for (name, kind, help, value) in [
            (
                "rapport_cluster_published_total",
                "counter",
                "Messages of changes this relay published to the cluster's stream.",
                &self.published,
            ),
            (
                "rapport_cluster_taken_total",
                "counter",
                "Messages of changes other relays published that this relay stored.",
                &self.taken,
            ),
            (
                "rapport_cluster_pending",
                "gauge",
                "Messages of the stream this relay has yet to read (its lag).",
                &self.pending,
            ),
        ] {
            write_metric(&mut out, name, kind, help, value.load(Ordering::Relaxed));
        }
        write_metric(
            &mut out,
            "rapport_cluster_connected",
            "gauge",
            "Whether NATS is reachable.",
            u64::from(self.connected()),
        );
        out
    }
}

/// A connection to NATS at `urls`, named after `node`.
pub(crate) async fn connect(
    urls: &[String],
    node: &str,
) -> Result<async_nats::Client, ClusterError> {
    let joined = urls.join(",");
    let client = async_nats::ConnectOptions::new()
        .name(format!("rapport-server {node}"))
        .retry_on_initial_connect()
        .connect(joined.as_str());
    tokio::time::timeout(Duration::from_secs(10), client)
        .await
        .map_err(|_| ClusterError::Connect {
            urls: joined.clone(),
            reason: "no answer within 10 s".into(),
        })?
        .map_err(|e| ClusterError::Connect {
            urls: joined.clone(),
            reason: e.to_string(),
        })
}

/// Refuses more than one copy on a NATS server older than 2.9.21: before
/// it, a clustered stream checks a compare-and-set's expected revision
/// only before proposing the write, so two relays could both pass one
/// (docs/cluster.md, "What NATS must provide").
pub(crate) fn check_replicas(
    client: &async_nats::Client,
    replicas: usize,
) -> Result<(), ClusterError> {
    if replicas > 1 && !client.is_server_compatible(2, 9, 21) {
        return Err(ClusterError::JetStream(format!(
            "--cluster-replicas {replicas} needs nats-server 2.9.21 or later, and this one is {}: \
             older servers can let two relays both win one compare-and-set on a replicated \
             bucket; run one server with --cluster-replicas 1, or upgrade",
            client.server_info().version
        )));
    }
    Ok(())
}

/// Asks `ask` again for a while when it fails: a NATS server that has
/// just started takes connections before JetStream answers.
pub(crate) async fn patiently<T, F, Fut>(mut ask: F) -> Result<T, ClusterError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ClusterError>>,
{
    let deadline = tokio::time::Instant::now() + JOIN_PATIENCE;
    loop {
        match ask().await {
            Ok(done) => return Ok(done),
            Err(e) if tokio::time::Instant::now() < deadline => {
                debug!(error = %e, "JetStream not ready yet; asking again");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Follows the stream until `stop`, handing what other relays published
/// to `take` (which stores it and gives it to the document in memory). A
/// message is acknowledged once taken, so a relay that stops takes up
/// where it left off.
pub(crate) async fn follow<F, Fut>(
    cluster: Arc<Cluster>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    mut take: F,
) where
    F: FnMut(DocumentId, Taken) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    loop {
        if let Err(e) = follow_once(&cluster, &mut stop, &mut take).await {
            warn!(error = %e, "following the cluster's changes failed; trying again in a second");
        }
        if pause(&mut stop).await {
            return;
        }
    }
}

/// Waits a second before a loop tries again; true if told to stop before
/// or meanwhile.
pub(crate) async fn pause(stop: &mut tokio::sync::watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_secs(1)) => false,
        _ = stop.changed() => true,
    }
}

/// A header's value as text.
pub(crate) fn header(headers: Option<&async_nats::HeaderMap>, name: &str) -> Option<String> {
    headers
        .and_then(|h| h.get(name))
        .map(|v| v.as_str().to_owned())
}

async fn follow_once<F, Fut>(
    cluster: &Cluster,
    stop: &mut tokio::sync::watch::Receiver<bool>,
    take: &mut F,
) -> Result<(), ClusterError>
where
    F: FnMut(DocumentId, Taken) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let name = consumer_name(&cluster.node);
    let consumer = cluster
        .stream
        .get_or_create_consumer(
            &name,
            consumer::pull::Config {
                durable_name: Some(name.clone()),
                deliver_policy: consumer::DeliverPolicy::All,
                ack_policy: consumer::AckPolicy::Explicit,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| ClusterError::JetStream(e.to_string()))?;
    if consumer.cached_info().num_pending == 0 {
        cluster.caught_up.store(true, Ordering::Release);
    }
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| ClusterError::JetStream(e.to_string()))?;
    let jetstream = |e: &dyn std::fmt::Display| ClusterError::JetStream(e.to_string());
    loop {
        let first = tokio::select! {
            next = messages.next() => next,
            _ = stop.changed() => return Ok(()),
        };
        let Some(first) = first else {
            return Ok(());
        };
        // What has come meanwhile is taken with it: its writes go in one
        // commit, and a backlog costs less a message, not more.
        let mut batch = vec![first.map_err(|e| jetstream(&e))?];
        while batch.len() < BATCH {
            match futures_util::FutureExt::now_or_never(messages.next()) {
                Some(Some(next)) => batch.push(next.map_err(|e| jetstream(&e))?),
                _ => break,
            }
        }
        let stored = take_batch(cluster, &batch, take).await;
        for (message, stored) in batch.iter().zip(stored) {
            if let Ok(info) = message.info() {
                cluster.pending.store(info.pending, Ordering::Relaxed);
                if info.pending == 0 {
                    cluster.caught_up.store(true, Ordering::Release);
                }
            }
            // A message this relay could not store comes again: its copy
            // must not miss it.
            let ack = match stored {
                true => message.ack().await,
                false => {
                    message
                        .ack_with(jetstream::AckKind::Nak(Some(Duration::from_secs(1))))
                        .await
                }
            };
            ack.map_err(|e| jetstream(&*e))?;
        }
    }
}

/// One take of a document's changes: the messages of the batch (their
/// places) whose changes it holds.
type Take = (Vec<usize>, Taken);

/// Messages the follower takes at once, at most.
const BATCH: usize = 256;

/// Hands on the messages of `batch` other relays published, each
/// document's in stream order, documents side by side; whether each
/// message is stored (or needs nothing). A message that does not parse is
/// logged and passed over: it came from no relay of ours.
async fn take_batch<F, Fut>(
    cluster: &Cluster,
    batch: &[jetstream::Message],
    take: &mut F,
) -> Vec<bool>
where
    F: FnMut(DocumentId, Taken) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    // Per document, its messages' changes in order; consecutive messages
    // of one author are one take.
    let mut groups: Vec<(DocumentId, Vec<Take>)> = Vec::new();
    for (n, message) in batch.iter().enumerate() {
        let header = |name: &str| header(message.headers.as_ref(), name);
        if header(NODE).as_deref() == Some(cluster.node.as_str()) {
            continue;
        }
        cluster.taken.fetch_add(1, Ordering::Relaxed);
        let Some(document) = document_of(&message.subject) else {
            warn!(subject = %message.subject, "a cluster message on an unknown subject");
            continue;
        };
        if header(SNAPSHOT).is_some() {
            cluster.counts.reset(document);
        }
        let Some(mut taken) = decode(&message.payload) else {
            warn!(%document, "a cluster message that does not parse");
            continue;
        };
        taken.author = header(AUTHOR).and_then(|key| key.parse().ok());
        taken.covers = header(SNAPSHOT).and_then(|heads| message::parse_heads(&heads));
        let at = match groups.iter().position(|(d, _)| *d == document) {
            Some(at) => at,
            None => {
                groups.push((document, Vec::new()));
                groups.len() - 1
            }
        };
        let takes = &mut groups[at].1;
        match takes.last_mut() {
            Some((messages, last))
                if last.whole.is_none() && taken.whole.is_none() && last.author == taken.author =>
            {
                messages.push(n);
                last.changes.append(&mut taken.changes);
            }
            _ => takes.push((vec![n], taken)),
        }
    }
    let mut stored = vec![true; batch.len()];
    let runs = groups.into_iter().map(|(document, takes)| {
        let futures: Vec<(Vec<usize>, Fut)> = takes
            .into_iter()
            .map(|(messages, taken)| (messages, take(document, taken)))
            .collect();
        async move {
            let mut failed = Vec::new();
            for (messages, future) in futures {
                match future.await {
                    Ok(()) => debug!(%document, "changes from the cluster"),
                    Err(e) => {
                        warn!(%document, error = %e, "cannot store changes from the cluster; they come again");
                        failed.extend(messages);
                    }
                }
            }
            failed
        }
    });
    for failed in futures_util::future::join_all(runs).await {
        for n in failed {
            stored[n] = false;
        }
    }
    stored
}

fn subject(document: DocumentId) -> String {
    format!("rapport.doc.{document}")
}

/// The document a subject of the changes stream names.
fn document_of(subject: &str) -> Option<DocumentId> {
    subject.strip_prefix("rapport.doc.")?.parse().ok()
}

/// A durable consumer's name: the node id, with what NATS does not take
/// in a name replaced.
fn consumer_name(node: &str) -> String {
    node.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_names_are_what_nats_takes() {
        assert_eq!(consumer_name("relay-Ab3.x y"), "relay-Ab3_x_y");
    }
}
