//! Syncing the replica with a relay over a WebSocket: one connection, a
//! fresh token for each, every document of the replica, and reconnects with
//! capped exponential backoff and jitter. Several addresses of one relay
//! (a cluster's relays) are tried in turn: see [`crate::failover`].

use std::collections::BTreeSet;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rapport_protocol::ids::{DocumentId, PeerId, StorageId};
use rapport_protocol::sync::Backoff;
use rapport_protocol::token;
use rapport_protocol::wire::{Message, PeerMetadata};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite;
use tracing::{debug, info, warn};

use crate::batch;
use crate::relay_url::{BadRelayUrl, RelayUrl};
use crate::repo::{Received, Repo, now};
use crate::transport::{self, ConnectError, OpenOptions, Socket};

/// Where to sync, and how to authenticate there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayConfig {
    /// The WebSocket URL, such as `ws://relay.example:3030/sync`.
    pub url: String,
    /// The relay id tokens must name; `None` for a relay without tokens
    /// (`--open`, or the JS sync server).
    pub audience: Option<String>,
}

impl RelayConfig {
    /// The key under which sync states with this relay are kept, and the
    /// address that last worked (one for all the relays of a cluster).
    pub(crate) fn state_key(&self) -> &str {
        self.audience.as_deref().unwrap_or(&self.url)
    }
}

/// How far a sync has come, for a progress bar.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    pub connected: bool,
    /// The address of the relay connected to, or last tried.
    pub relay: Option<String>,
    /// Documents being synced on this connection.
    pub documents_total: usize,
    /// Of those, documents with nothing left to exchange.
    pub documents_synced: usize,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Connection attempts so far.
    pub attempts: u32,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
}

/// Why syncing failed. Edits stay safe in the replica either way.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    #[error("cannot reach the relay at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the relay at {url} refused this identity (HTTP {status}): {body}")]
    Refused {
        url: String,
        status: u16,
        body: String,
    },
    #[error("the relay at {url} broke the protocol: {reason}")]
    Protocol { url: String, reason: String },
    #[error("the connection to {url} closed before the sync finished: {reason}")]
    Closed { url: String, reason: String },
    /// The relay refused changes as `storage-unavailable` and another
    /// address of it was left to try.
    #[error("the relay at {url} cannot store changes right now: {message}")]
    StorageUnavailable { url: String, message: String },
    /// Every address of the relay was tried; one failure each, in the
    /// order tried.
    #[error("no address of the relay worked: {}", list_failures(.failures))]
    EveryAddressFailed { failures: Vec<SyncError> },
    #[error("not in sync after {seconds} s ({synced} of {total} documents)")]
    TimedOut {
        seconds: u64,
        synced: usize,
        total: usize,
    },
    #[error(transparent)]
    Replica(#[from] crate::error::ClientError),
}

/// `url: why; url: why`, for [`SyncError::EveryAddressFailed`].
fn list_failures(failures: &[SyncError]) -> String {
    failures
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// What a connection should do once every document is in sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Return.
    Once,
    /// Stay connected and keep syncing.
    Live,
}

/// A live sync running in the background; dropping it stops it.
#[derive(Debug)]
pub struct LiveSync {
    progress: watch::Receiver<Progress>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl LiveSync {
    /// The latest progress; `changed().await` on it waits for the next.
    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.clone()
    }

    /// Stops syncing and waits for the connection to close.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for LiveSync {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// What one connection is for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan<'a> {
    pub(crate) relay: &'a RelayConfig,
    pub(crate) mode: Mode,
    /// Whether to leave a relay that refuses changes as
    /// `storage-unavailable`, for another address of it to be tried.
    pub(crate) leave_unstored: bool,
}

impl Repo {
    /// Connects, syncs every document of the replica until each has nothing
    /// left to exchange, and disconnects. `report` sees each step.
    pub async fn sync_once(
        &self,
        relay: &RelayConfig,
        patience: Duration,
        report: impl FnMut(&Progress),
    ) -> Result<Progress, SyncError> {
        let plan = Plan {
            relay,
            mode: Mode::Once,
            leave_unstored: false,
        };
        self.sync_once_as(plan, patience, report).await
    }

    /// [`Repo::sync_once`] as `plan` says.
    pub(crate) async fn sync_once_as(
        &self,
        plan: Plan<'_>,
        patience: Duration,
        mut report: impl FnMut(&Progress),
    ) -> Result<Progress, SyncError> {
        let (progress_tx, mut progress_rx) = watch::channel(Progress {
            attempts: 1,
            ..Progress::default()
        });
        let run = run_connection(self, plan, &progress_tx, std::future::pending::<()>());
        tokio::pin!(run);
        let deadline = tokio::time::sleep(patience);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                result = &mut run => {
                    let progress = progress_tx.borrow().clone();
                    report(&progress);
                    return result.map(|()| progress);
                }
                changed = progress_rx.changed() => {
                    if changed.is_ok() {
                        report(&progress_rx.borrow_and_update());
                    }
                }
                () = &mut deadline => {
                    let p = progress_tx.borrow().clone();
                    return Err(SyncError::TimedOut { seconds: patience.as_secs(), synced: p.documents_synced, total: p.documents_total });
                }
            }
        }
    }

    /// Syncs in the background for as long as the returned handle lives,
    /// reconnecting after failures with capped exponential backoff and
    /// jitter. Needs a tokio runtime.
    pub fn sync_live(&self, relay: RelayConfig) -> LiveSync {
        self.sync_live_in_turn(vec![relay])
    }

    /// [`Repo::sync_live`] through the first of `turn` that works: after a
    /// failed connection the next is tried at once, and the backoff applies
    /// only once every one failed in a row.
    pub(crate) fn sync_live_in_turn(&self, turn: Vec<RelayConfig>) -> LiveSync {
        let (progress_tx, progress) = watch::channel(Progress::default());
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let repo = self.clone();
        let task = tokio::spawn(async move {
            let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
            let mut attempts = 0u32;
            let (mut next, mut failed_in_a_row) = (0, 0);
            loop {
                attempts += 1;
                progress_tx.send_modify(|p| p.attempts = attempts);
                let started = tokio::time::Instant::now();
                let plan = Plan {
                    relay: &turn[next],
                    mode: Mode::Live,
                    leave_unstored: turn.len() > 1,
                };
                let result = run_connection(&repo, plan, &progress_tx, &mut stopped).await;
                let was_connected = progress_tx.borrow().connected;
                progress_tx.send_modify(|p| p.connected = false);
                match result {
                    Ok(()) => return, // stopped
                    Err(e) => {
                        info!(relay = %plan.relay.url, error = %e, "sync connection ended");
                        progress_tx.send_modify(|p| p.last_error = Some(e.to_string()));
                    }
                }
                failed_in_a_row = if was_connected {
                    1
                } else {
                    failed_in_a_row + 1
                };
                next = (next + 1) % turn.len();
                if failed_in_a_row < turn.len() {
                    continue;
                }
                if started.elapsed() > Duration::from_secs(10) {
                    backoff.reset();
                }
                let delay = backoff.next_delay(&mut rand::rng());
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    _ = &mut stopped => return,
                }
            }
        });
        LiveSync {
            progress,
            stop: Some(stop),
            task,
        }
    }
}

/// One connection: connect, handshake, sync; returns `Ok` when done (Once)
/// or stopped (Live), `Err` when the connection failed.
async fn run_connection(
    repo: &Repo,
    plan: Plan<'_>,
    progress: &watch::Sender<Progress>,
    stop: impl std::future::Future<Output = impl Sized>,
) -> Result<(), SyncError> {
    let relay = plan.relay;
    progress.send_modify(|p| p.relay = Some(relay.url.clone()));
    let mut socket = connect(repo, relay).await?;
    // A fresh peer id per connection: a remote repo keeps sync state per
    // peer id in memory, and must not take this connection for the last.
    // Random and short, as it goes in every message both ways (the key
    // travels in the token; the replica's own id in the join's metadata).
    let us: PeerId = bs58::encode(rand::random::<[u8; 8]>())
        .into_string()
        .parse()
        .expect("a non-empty peer id");
    let relay_peer = handshake(repo, relay, &us, &mut socket).await?;
    let (link, mut outgoing) = mpsc::unbounded_channel::<Message>();
    let opened = {
        let (repo, peer, us, config) =
            (repo.clone(), relay_peer.clone(), us.clone(), relay.clone());
        tokio::task::spawn_blocking(move || {
            let opened = repo.attach(&peer, config.state_key(), &us, link)?;
            // A preference: failing to keep it fails no sync.
            if let Err(e) = repo.remember_relay(&config) {
                warn!(relay = %config.url, error = %e, "cannot keep the relay's address");
            }
            Ok::<_, crate::error::ClientError>(opened)
        })
        .await
        .map_err(|e| closed(relay, e))??
    };
    let mut pending: BTreeSet<DocumentId> = opened.iter().copied().collect();
    progress.send_modify(|p| {
        p.connected = true;
        p.documents_total = opened.len();
        p.documents_synced = 0;
        p.last_error = None;
    });
    info!(relay = %relay.url, documents = opened.len(), "connected");
    let result = pump(
        repo,
        plan,
        &relay_peer,
        progress,
        &mut socket,
        &mut outgoing,
        &mut pending,
        stop,
    )
    .await;
    let (repo2, peer, key) = (
        repo.clone(),
        relay_peer.clone(),
        relay.state_key().to_owned(),
    );
    let _ = tokio::task::spawn_blocking(move || repo2.detach(&peer, &key)).await;
    if result.is_ok() {
        let _ = socket.close(None).await;
    }
    result
}

#[allow(clippy::too_many_arguments)]
async fn pump(
    repo: &Repo,
    plan: Plan<'_>,
    relay_peer: &PeerId,
    progress: &watch::Sender<Progress>,
    socket: &mut Socket,
    outgoing: &mut mpsc::UnboundedReceiver<Message>,
    pending: &mut BTreeSet<DocumentId>,
    stop: impl std::future::Future<Output = impl Sized>,
) -> Result<(), SyncError> {
    let (relay, mode) = (plan.relay, plan.mode);
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    // A rapport relay (one with tokens) first says which documents this
    // identity may see, in pages; a sync is not complete before the last.
    let mut awaiting_documents = relay.audience.is_some();
    loop {
        if mode == Mode::Once && !awaiting_documents && pending.is_empty() && outgoing.is_empty() {
            return Ok(());
        }
        tokio::select! {
            _ = &mut stop => return Ok(()),
            message = outgoing.recv() => {
                let Some(message) = message else { return Ok(()) };
                let frame = message.encode();
                let len = frame.len() as u64;
                tracing::trace!(message = %describe(&message), "sent");
                socket.send(tungstenite::Message::binary(frame)).await.map_err(|e| closed(relay, e))?;
                progress.send_modify(|p| p.bytes_sent += len);
            }
            frame = socket.next() => {
                let first = match frame {
                    None => return Err(closed(relay, "the relay closed the connection")),
                    Some(Err(e)) => return Err(closed(relay, e)),
                    Some(Ok(tungstenite::Message::Binary(bytes))) => bytes,
                    Some(Ok(tungstenite::Message::Close(frame))) => {
                        return Err(closed(relay, frame.map(|f| f.reason.to_string()).unwrap_or_default()));
                    }
                    Some(Ok(_)) => {
                        // A ping: tungstenite queues the pong, which leaves
                        // only with the next write. Flush it now, or a server
                        // that checks liveness (the JS one) cuts us off.
                        socket.flush().await.map_err(|e| closed(relay, e))?;
                        continue;
                    }
                };
                // Everything else already waiting, taken as one batch.
                let ready = batch::read_ready(socket, first);
                if ready.pinged {
                    socket.flush().await.map_err(|e| closed(relay, e))?;
                }
                let mut messages = Vec::with_capacity(ready.frames.len());
                for bytes in &ready.frames {
                    progress.send_modify(|p| p.bytes_received += bytes.len() as u64);
                    let message = match Message::decode(bytes) {
                        Ok(message) => message,
                        Err(e) if e.is_droppable() => {
                            debug!(error = %e, "dropping a message of an unknown type");
                            continue;
                        }
                        Err(e) => return Err(SyncError::Protocol { url: relay.url.clone(), reason: e.to_string() }),
                    };
                    tracing::trace!(message = %describe(&message), "received");
                    if let Message::Error(error) = &message {
                        return Err(SyncError::Protocol { url: relay.url.clone(), reason: error.message.clone() });
                    }
                    messages.push(message);
                }
                let messages = batch::coalesce(messages);
                let repo2 = repo.clone();
                let received = tokio::task::spawn_blocking(move || repo2.receive_all(messages))
                    .await
                    .map_err(|e| closed(relay, e))??;
                for touched in received {
                match touched {
                    Received::Document(id) if pending.contains(&id) && repo.in_sync(id, relay_peer) => {
                        pending.remove(&id);
                    }
                    Received::NewDocuments { new, complete } => {
                        awaiting_documents &= !complete;
                        pending.extend(new.iter().copied());
                        progress.send_modify(|p| p.documents_total += new.len());
                    }
                    Received::Removed(ids) => {
                        let before = pending.len();
                        pending.retain(|id| !ids.contains(id));
                        let gone = before - pending.len();
                        progress.send_modify(|p| p.documents_total -= gone);
                    }
                    Received::Unstored(message) if plan.leave_unstored => {
                        return Err(SyncError::StorageUnavailable { url: relay.url.clone(), message });
                    }
                    _ => {}
                }
                }
                if let Some(reason) = ready.ended {
                    return Err(closed(relay, reason));
                }
                tracing::trace!(pending = pending.len(), awaiting_documents, queued = outgoing.len(), "after a message");
                let total = progress.borrow().documents_total;
                progress.send_modify(|p| p.documents_synced = total - pending.len());
            }
            _ = tick.tick() => {
                let repo2 = repo.clone();
                tokio::task::spawn_blocking(move || repo2.handle_timeouts())
                    .await
                    .map_err(|e| closed(relay, e))??;
                let before = pending.len();
                pending.retain(|id| !repo.in_sync(*id, relay_peer));
                if pending.len() != before {
                    let total = progress.borrow().documents_total;
                    progress.send_modify(|p| p.documents_synced = total - pending.len());
                }
            }
        }
    }
}

fn closed(relay: &RelayConfig, reason: impl std::fmt::Display) -> SyncError {
    SyncError::Closed {
        url: relay.url.clone(),
        reason: reason.to_string(),
    }
}

async fn connect(repo: &Repo, relay: &RelayConfig) -> Result<Socket, SyncError> {
    let unreachable = |reason: String| SyncError::Unreachable {
        url: relay.url.clone(),
        reason,
    };
    let url: RelayUrl = relay
        .url
        .parse()
        .map_err(|e: BadRelayUrl| unreachable(e.to_string()))?;
    let token = match &relay.audience {
        Some(audience) => Some(
            token::mint(
                repo.identity().signing_key(),
                audience,
                now(),
                300,
                &mut rand::rng(),
            )
            .map_err(|e| unreachable(e.to_string()))?,
        ),
        None => None,
    };
    let options = OpenOptions {
        token: token.as_deref(),
        max_message_bytes: Some(transport::REPLICA_MAX_MESSAGE_BYTES),
    };
    transport::open(&url.sync_url(), options)
        .await
        .map_err(|e| connect_error(relay, e))
}

async fn handshake(
    repo: &Repo,
    relay: &RelayConfig,
    us: &PeerId,
    socket: &mut Socket,
) -> Result<PeerId, SyncError> {
    let metadata = PeerMetadata {
        storage_id: repo.peer_id().as_str().parse::<StorageId>().ok(),
        is_ephemeral: false,
    };
    transport::handshake(socket, us.clone(), metadata, Duration::from_secs(10))
        .await
        .map_err(|e| {
            warn!(error = %e, "handshake failed");
            connect_error(relay, e)
        })
}

fn connect_error(relay: &RelayConfig, error: ConnectError) -> SyncError {
    let url = relay.url.clone();
    match error {
        ConnectError::Refused { status, body } => SyncError::Refused { url, status, body },
        ConnectError::Protocol(reason) => SyncError::Protocol { url, reason },
        ConnectError::Closed(reason) => SyncError::Closed { url, reason },
        ConnectError::Unreachable(reason) => SyncError::Unreachable { url, reason },
    }
}

/// One line about a message, for trace logs.
fn describe(message: &Message) -> String {
    match message {
        Message::Sync(m) | Message::Request(m) => match automerge::sync::Message::decode(&m.data) {
            Ok(s) => format!(
                "{} {} heads={:?} need={} have={:?} changes={}",
                message.type_name(),
                m.document_id,
                s.heads
                    .iter()
                    .map(|h| h.to_string()[..8].to_owned())
                    .collect::<Vec<_>>(),
                s.need.len(),
                s.have
                    .iter()
                    .map(|h| h
                        .last_sync
                        .iter()
                        .map(|x| x.to_string()[..8].to_owned())
                        .collect::<Vec<_>>())
                    .collect::<Vec<_>>(),
                s.changes.len()
            ),
            Err(e) => format!(
                "{} {} (undecodable: {e})",
                message.type_name(),
                m.document_id
            ),
        },
        other => other.type_name().to_owned(),
    }
}
