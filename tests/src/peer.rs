//! A Rust peer for tests: one WebSocket to the relay, the client's sync state
//! machine per document, and explicit pumping so tests decide when frames
//! move.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use automerge::{ActorId, Automerge};
use ed25519_dalek::SigningKey;
use futures_util::{SinkExt, StreamExt};
use rapport_client::transport::{self, OpenOptions, Socket};
use rapport_protocol::ids::{DocumentId, PeerId, PublicKey, UnixMillis};
use rapport_protocol::sync::{DocumentSync, Effect};
use rapport_protocol::token;
use rapport_protocol::wire::{Message, PeerMetadata, Rejected};
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite;

pub fn now() -> UnixMillis {
    rapport_client::now()
}

/// A person's key, from a seed byte.
pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

/// A self-describing actor of `key`: the public key, then device bytes.
pub fn actor_of(key: &SigningKey, device: u8) -> ActorId {
    let mut bytes = key.verifying_key().to_bytes().to_vec();
    bytes.extend([device; 8]);
    ActorId::from(bytes)
}

/// A fresh token for `key` on the relay `audience`.
pub fn mint_token(key: &SigningKey, audience: &str) -> String {
    token::mint(key, audience, now(), 300, &mut rand::rng()).expect("a 300 s token can be minted")
}

/// What a test peer has seen, shared with its background task.
#[derive(Default, Debug)]
pub struct PeerState {
    pub docs: BTreeMap<DocumentId, DocumentSync>,
    pub rejected: Vec<Rejected>,
    pub unavailable: Vec<DocumentId>,
    /// Every message received, for tests that look at them.
    pub received: Vec<Message>,
    /// Why the connection ended, once it has.
    pub closed: Option<String>,
}

impl PeerState {
    /// The document as this peer has it.
    pub fn doc(&self, id: DocumentId) -> &Automerge {
        self.docs[&id].doc()
    }

    /// Every set of heads the relay named to this peer for `id`, oldest
    /// first. The relay names heads only once it has stored them.
    pub fn heads_from_relay(
        &self,
        id: DocumentId,
    ) -> impl Iterator<Item = Vec<automerge::ChangeHash>> + '_ {
        self.received.iter().filter_map(move |m| match m {
            Message::Sync(s) if s.document_id == id => automerge::sync::Message::decode(&s.data)
                .ok()
                .map(|m| m.heads),
            _ => None,
        })
    }

    /// Whether the relay has told this peer its heads of `id` are `heads`:
    /// it has stored them.
    pub fn acknowledged(&self, id: DocumentId, heads: &[automerge::ChangeHash]) -> bool {
        self.heads_from_relay(id).any(|h| h == heads)
    }

    /// Frames to send: every queued effect of every document.
    fn outgoing(&mut self) -> Vec<tungstenite::Message> {
        let mut out = Vec::new();
        for sync in self.docs.values_mut() {
            while let Some(effect) = sync.poll_effect() {
                if let Effect::Send(message) = effect {
                    if std::env::var_os("RAPPORT_TEST_TRACE").is_some() {
                        eprintln!("{} -> {}", sync.local_peer(), describe(&message));
                    }
                    out.push(tungstenite::Message::binary(message.encode()));
                }
            }
        }
        out
    }
}

/// A connected test peer. A background task reads the socket, applies what
/// arrives and answers at once, as a real client does; the test changes
/// documents and waits for conditions on [`PeerState`].
pub struct TestPeer {
    pub peer_id: PeerId,
    relay: PeerId,
    state: Arc<Mutex<PeerState>>,
    changed: Arc<Notify>,
    out: mpsc::UnboundedSender<tungstenite::Message>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for TestPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPeer")
            .field("peer_id", &self.peer_id)
            .finish()
    }
}

/// How long a test waits for something that should happen.
pub const PATIENCE: Duration = Duration::from_secs(20);

fn lock(state: &Mutex<PeerState>) -> std::sync::MutexGuard<'_, PeerState> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl TestPeer {
    /// Connects to `url` with an optional token and completes the handshake.
    pub async fn connect(url: &str, token: Option<&str>, name: &str) -> Result<Self> {
        let socket = open_socket(url, token).await?;
        Self::handshake(socket, name).await
    }

    /// Connects with a fresh token for `key`.
    pub async fn connect_as(
        url: &str,
        audience: &str,
        key: &SigningKey,
        name: &str,
    ) -> Result<Self> {
        let token = mint_token(key, audience);
        Self::connect(url, Some(&token), name).await
    }

    async fn handshake(mut socket: Socket, name: &str) -> Result<Self> {
        let peer_id: PeerId = name.parse()?;
        let relay = transport::handshake(
            &mut socket,
            peer_id.clone(),
            PeerMetadata::default(),
            PATIENCE,
        )
        .await?;
        let state = Arc::new(Mutex::new(PeerState::default()));
        let changed = Arc::new(Notify::new());
        let (out, out_rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(
            socket,
            peer_id.clone(),
            Arc::clone(&state),
            Arc::clone(&changed),
            out_rx,
        ));
        Ok(Self {
            peer_id,
            relay,
            state,
            changed,
            out,
            task,
        })
    }

    /// Starts syncing `doc` as `id` (a `request` if it is empty).
    pub fn open(&self, id: DocumentId, doc: Automerge) {
        let mut state = lock(&self.state);
        let mut sync = DocumentSync::new(id, self.peer_id.clone(), doc);
        sync.handle_peer_connected(self.relay.clone(), now());
        state.docs.insert(id, sync);
        self.send_all(state.outgoing());
    }

    /// Changes a document locally and sends what follows.
    pub fn change<T>(
        &self,
        id: DocumentId,
        f: impl FnOnce(
            &mut automerge::transaction::Transaction<'_>,
        ) -> Result<T, automerge::AutomergeError>,
    ) -> Result<T> {
        let mut state = lock(&self.state);
        let sync = state.docs.get_mut(&id).context("document not open")?;
        let value = sync.handle_local_change(now(), f)?;
        self.send_all(state.outgoing());
        Ok(value)
    }

    /// Reads the peer's state.
    pub fn with<T>(&self, f: impl FnOnce(&PeerState) -> T) -> T {
        f(&lock(&self.state))
    }

    /// Sends one raw frame.
    pub fn send_raw(&self, frame: tungstenite::Message) {
        let _ = self.out.send(frame);
    }

    fn send_all(&self, frames: Vec<tungstenite::Message>) {
        for frame in frames {
            let _ = self.out.send(frame);
        }
    }

    /// Waits until `done` holds, or fails after [`PATIENCE`].
    pub async fn wait_until(&self, mut done: impl FnMut(&PeerState) -> bool) -> Result<()> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let notified = self.changed.notified();
            {
                let state = lock(&self.state);
                if done(&state) {
                    return Ok(());
                }
                if let Some(why) = &state.closed {
                    bail!(
                        "{}: connection ended ({why}) before the condition held",
                        self.peer_id
                    );
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                bail!("{}: timed out waiting", self.peer_id);
            }
        }
    }

    /// Lets the peer run for `period`.
    pub async fn settle(&self, period: Duration) {
        tokio::time::sleep(period).await;
    }

    /// Closes the connection and waits for the background task.
    pub async fn close(self) {
        let _ = self.out.send(tungstenite::Message::Close(None));
        let _ = tokio::time::timeout(PATIENCE, self.task).await;
    }
}

/// The peer's background task.
async fn run(
    mut socket: Socket,
    name: PeerId,
    state: Arc<Mutex<PeerState>>,
    changed: Arc<Notify>,
    mut out: mpsc::UnboundedReceiver<tungstenite::Message>,
) {
    let ended = loop {
        tokio::select! {
            frame = out.recv() => match frame {
                Some(frame) => {
                    let closing = matches!(frame, tungstenite::Message::Close(_));
                    if let Err(e) = socket.send(frame).await {
                        break format!("send failed: {e}");
                    }
                    if closing {
                        break "closed by the test".to_owned();
                    }
                }
                None => break "dropped".to_owned(),
            },
            frame = socket.next() => match frame {
                None => break "the relay closed the connection".to_owned(),
                Some(Err(e)) => break format!("socket error: {e}"),
                Some(Ok(tungstenite::Message::Close(close))) => break format!("closed by the relay: {close:?}"),
                Some(Ok(tungstenite::Message::Binary(bytes))) => {
                    let replies = {
                        let mut state = lock(&state);
                        handle(&mut state, &name, &bytes);
                        state.outgoing()
                    };
                    for reply in replies {
                        if socket.send(reply).await.is_err() {
                            break;
                        }
                    }
                    changed.notify_waiters();
                }
                Some(Ok(_)) => {
                    // Send the queued pong now.
                    let _ = socket.flush().await;
                }
            },
        }
    };
    lock(&state).closed = Some(ended);
    changed.notify_waiters();
}

fn handle(state: &mut PeerState, name: &PeerId, bytes: &[u8]) {
    let message = match Message::decode(bytes) {
        Ok(message) => message,
        Err(e) => {
            state.closed = Some(format!("undecodable frame: {e}"));
            return;
        }
    };
    if std::env::var_os("RAPPORT_TEST_TRACE").is_some() {
        eprintln!("{name} <- {}", describe(&message));
    }
    state.received.push(message.clone());
    match message {
        Message::Sync(m) => {
            if let Some(sync) = state.docs.get_mut(&m.document_id)
                && let Err(e) = sync.handle_sync(&m, now())
            {
                state.closed = Some(format!("bad sync message: {e}"));
            }
        }
        Message::DocUnavailable(m) => {
            state.unavailable.push(m.document_id);
            if let Some(sync) = state.docs.get_mut(&m.document_id) {
                sync.handle_unavailable(&m);
            }
        }
        Message::Rejected(r) => {
            if let Some(sync) = state.docs.get_mut(&r.document_id) {
                sync.handle_rejected(&r);
            }
            state.rejected.push(r);
        }
        _ => {}
    }
}

/// Opens a WebSocket, with the token as a bearer header.
pub async fn open_socket(url: &str, token: Option<&str>) -> Result<Socket> {
    let options = OpenOptions {
        token,
        max_message_bytes: None,
    };
    Ok(transport::open(url, options).await?)
}

/// The public key of a signing key, as rapport shows it.
pub fn public(key: &SigningKey) -> PublicKey {
    PublicKey::from(key.verifying_key())
}

/// The first 8 hex digits of each hash, for a trace.
pub fn short(hashes: &[automerge::ChangeHash]) -> String {
    let short: Vec<_> = hashes
        .iter()
        .map(|h| h.to_string()[..8].to_owned())
        .collect();
    short.join(",")
}

/// One line about a message, for tracing tests.
pub fn describe(message: &Message) -> String {
    match message {
        Message::Sync(m) | Message::Request(m) => match automerge::sync::Message::decode(&m.data) {
            Ok(s) => format!(
                "{} {} heads=[{}] need=[{}] have={} changes={}",
                message.type_name(),
                m.document_id,
                short(&s.heads),
                short(&s.need),
                s.have.len(),
                s.changes.len()
            ),
            Err(e) => format!("{} (bad data: {e})", message.type_name()),
        },
        other => other.type_name().to_owned(),
    }
}
