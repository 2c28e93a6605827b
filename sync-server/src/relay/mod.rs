//! The relay's shared state: open documents, live connections, the actor
//! registry, the token verifier, and what happens to a sync message.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use rapport_protocol::ids::{DocumentId, PeerId, PublicKey, UnixMillis};
use rapport_protocol::relay::{
    ChunkLimits, ConnId, DecodedSync, Prepared, RelayDoc, RelayEffect, StoredChange, StoredDocument,
};
use rapport_protocol::sync::SyncError;
use rapport_protocol::token::{AuthError, Verifier, VerifierConfig};
use rapport_protocol::wire::{DocMessage, DocUnavailable, Ephemeral, Message, RejectReason};
use tokio::sync::{Mutex as AsyncMutex, Notify, mpsc};
use tracing::{Instrument, debug, info, warn};

use crate::access::{Access, Identity};

mod access;
mod seats;
mod snapshots;
mod triggers;

use crate::actors::ActorRegistry;
use crate::config::{AuthMode, Config};
use crate::metrics::Metrics;
use crate::outbox::{Outbox, Refused};
use crate::storage::{GroupCommit, RelayKeys, Store, StoreError};
use crate::window::WindowCounter;
use crate::workspace::Workspaces;
pub(crate) use seats::{NoSeat, Seats};
pub(crate) use triggers::Triggers;

/// Locks a std mutex, carrying on past a poisoned one: the data behind each
/// lock stays consistent between statements, so a panic elsewhere does not
/// leave it half-changed.
/// Session ids longer than this are not automerge-repo's (it uses short
/// random ones): such ephemeral messages are dropped.
const MAX_SESSION_ID_BYTES: usize = 128;

/// Ephemeral sessions remembered per document.
const MAX_EPHEMERAL_SESSIONS: usize = 1024;

/// Sync messages up to this size are decoded where they arrive; larger
/// ones on a blocking thread ([`Relay::decode`]).
const DECODE_INLINE_BYTES: usize = 16 * 1024;

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn now() -> UnixMillis {
    UnixMillis::from(SystemTime::now())
}

/// How the relay judges tokens: the nonces it saw before a restart are
/// forgotten, so tokens issued before it started (to the second) are
/// refused; a client mints a fresh one for every connection anyway.
fn verifier_config(relay_id: &str, per_key: usize) -> VerifierConfig {
    let mut config = VerifierConfig::new(relay_id);
    config.issued_after = Some(UnixMillis(now().as_secs() * 1000));
    config.replay_share = per_key;
    config
}

/// Claims, for the key of its first change's author, every document the
/// relay holds that no workspace lists and nobody claimed: documents stored
/// before the relay kept claims. A document whose first author is unknown
/// (bound to no key) stays unclaimed.
fn claim_unlisted(
    store: &Store,
    actors: &ActorRegistry,
    workspaces: &mut Workspaces,
) -> Result<(), StoreError> {
    let mut claims = Vec::new();
    for id in store.held_ids() {
        if !workspaces.is_unclaimed(id) {
            continue;
        }
        let owner = store
            .first_author(id)?
            .and_then(|actor| actors.key_of(&actor));
        if let Some(owner) = owner {
            claims.push((id, owner));
        }
    }
    store.save_claims(&claims)?;
    for (id, owner) in claims {
        workspaces.note_claim(id, owner);
    }
    Ok(())
}

/// A live connection, as other connections' tasks reach it.
#[derive(Debug)]
struct ConnHandle {
    tx: Outbox,
    kill: Arc<Notify>,
    identity: Identity,
    remote: PeerId,
}

/// One document's place in memory.
#[derive(Debug, Default)]
struct DocSlot {
    doc: Option<RelayDoc>,
    /// Changes stored since the last compaction started (or since loading).
    since_compaction: usize,
    compacting: Arc<std::sync::atomic::AtomicBool>,
    idle_since: Option<Instant>,
    /// Ephemeral messages from read-only connections in the current
    /// second, per connection.
    reader_ephemeral: Option<WindowCounter<ConnId>>,
    /// The last `count` per `senderId:sessionId` of ephemeral messages, at
    /// most [`MAX_EPHEMERAL_SESSIONS`].
    ephemeral: HashMap<(Option<PublicKey>, PeerId, String), u64>,
}

/// What a connection's driver should do after a message.
#[derive(Debug)]
pub(crate) enum Verdict {
    Continue,
    /// Send `error` with this text, then close with a protocol-error code.
    ProtocolError(String),
}

/// The relay's state, shared by every connection task.
#[derive(Debug)]
pub(crate) struct Relay {
    pub(crate) config: Config,
    pub(crate) relay_id: String,
    pub(crate) peer_id: PeerId,
    store: Store,
    /// Every sync message's changes become durable through it.
    writer: GroupCommit,
    /// Documents nobody has open any more, for [`Relay::pack_idle_documents`].
    idle_tx: mpsc::UnboundedSender<DocumentId>,
    idle_rx: Mutex<Option<mpsc::UnboundedReceiver<DocumentId>>>,
    pub(crate) workspaces: Mutex<Workspaces>,
    docs: Mutex<HashMap<DocumentId, Arc<AsyncMutex<DocSlot>>>>,
    conns: Mutex<HashMap<ConnId, ConnHandle>>,
    actors: Mutex<ActorRegistry>,
    verifier: Mutex<Verifier>,
    pub(crate) metrics: Metrics,
    next_conn: AtomicU64,
    /// Compactions in progress, awaited at shutdown.
    background: Mutex<tokio::task::JoinSet<()>>,
    /// The relay's own key and actor, once made.
    keys: Mutex<Option<RelayKeys>>,
    pub(crate) automations: Triggers,
    /// Connections held, in all and per key.
    pub(crate) seats: Seats,
    /// Members' refused API calls written to the audit log lately.
    pub(crate) audited_refusals: Mutex<WindowCounter<PublicKey>>,
    /// Large sync messages being decoded off the async workers.
    decodes: tokio::sync::Semaphore,
}

impl Relay {
    pub(crate) fn open(config: Config) -> Result<Self, StoreError> {
        let store = Store::open_on(&config.data_dir, config.storage.clone())?;
        let relay_id = store.relay_id(|| {
            let bytes: [u8; 12] = rand::random();
            format!("relay-{}", bs58::encode(bytes).into_string())
        })?;
        let actors = ActorRegistry::from_stored(store.actors()?);
        let creators = config
            .workspace_creators
            .clone()
            .map(|keys| keys.into_iter().collect());
        let mut workspaces = Workspaces::load(&store, creators)?;
        if config.auth == AuthMode::Token {
            claim_unlisted(&store, &actors, &mut workspaces)?;
        }
        let automations = Triggers::load(&store, &workspaces)?;
        let metrics = Metrics::default();
        let (idle_tx, idle_rx) = mpsc::unbounded_channel();
        let writer = GroupCommit::start(store.clone(), Arc::clone(&metrics.storage_commits))
            .map_err(|source| StoreError::Thread {
                path: store.path().to_owned(),
                source,
            })?;
        // Never empty, so always a valid peer id.
        let peer_id: PeerId = format!("rapport-{relay_id}")
            .parse()
            .expect("a non-empty peer id");
        Ok(Self {
            verifier: Mutex::new(Verifier::new(verifier_config(
                &relay_id,
                config.limits.max_tokens_per_key,
            ))),
            config,
            peer_id,
            relay_id,
            store,
            writer,
            idle_tx,
            idle_rx: Mutex::new(Some(idle_rx)),
            workspaces: Mutex::new(workspaces),
            docs: Mutex::new(HashMap::new()),
            conns: Mutex::new(HashMap::new()),
            actors: Mutex::new(actors),
            metrics,
            next_conn: AtomicU64::new(1),
            background: Mutex::new(tokio::task::JoinSet::new()),
            keys: Mutex::new(None),
            automations,
            seats: Seats::default(),
            audited_refusals: Mutex::new(WindowCounter::new(Duration::from_secs(60))),
            decodes: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, usize::from),
            ),
        })
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// The relay's own key and actor, made and stored the first time: it
    /// writes form submissions and automations' results with them.
    /// Blocking.
    pub(crate) fn relay_keys(&self) -> Result<RelayKeys, StoreError> {
        let mut keys = lock(&self.keys);
        if let Some(keys) = &*keys {
            return Ok(keys.clone());
        }
        let made = self.store.relay_keys(|| {
            let secret: [u8; 32] = rand::random();
            let mut actor = RelayKeys {
                secret,
                actor: Vec::new(),
            }
            .public_key()
            .as_bytes()
            .to_vec();
            actor.extend_from_slice(&rand::random::<[u8; 16]>());
            RelayKeys { secret, actor }
        })?;
        *keys = Some(made.clone());
        Ok(made)
    }

    /// Checks the token of an upgrade request.
    pub(crate) fn authenticate(&self, token: Option<&str>) -> Result<Identity, AuthRefusal> {
        if self.config.auth == AuthMode::Open {
            return Ok(Identity::Anonymous);
        }
        let token = token.ok_or(AuthRefusal::Missing)?;
        let verified = lock(&self.verifier)
            .verify(token, now())
            .map_err(AuthRefusal::Invalid)?;
        let key = verified.public_key();
        if lock(&self.workspaces).is_shut_out(&key) {
            return Err(AuthRefusal::Revoked);
        }
        Ok(Identity::Key(key))
    }

    pub(crate) fn next_conn_id(&self) -> ConnId {
        ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed))
    }

    pub(crate) fn register(
        &self,
        conn: ConnId,
        identity: Identity,
        remote: PeerId,
        tx: Outbox,
        kill: Arc<Notify>,
    ) {
        lock(&self.conns).insert(
            conn,
            ConnHandle {
                tx,
                kill,
                identity,
                remote,
            },
        );
        Metrics::add(&self.metrics.connections, 1);
        Metrics::add(&self.metrics.connections_total, 1);
    }

    /// Forgets a connection and closes its documents.
    pub(crate) async fn unregister(&self, conn: ConnId, open_docs: &BTreeSet<DocumentId>) {
        if lock(&self.conns).remove(&conn).is_some() {
            Metrics::sub(&self.metrics.connections, 1);
        }
        for id in open_docs {
            let slot = self.slot(*id);
            let mut slot = slot.lock().await;
            if let Some(doc) = slot.doc.as_mut() {
                doc.remove_peer(conn);
                if doc.peer_count() == 0 {
                    slot.idle_since = Some(Instant::now());
                    let _ = self.idle_tx.send(*id);
                }
            }
        }
    }

    /// Queues a message on a connection; a connection whose queue is full is
    /// too slow to keep and is told to close.
    pub(crate) fn send(&self, conn: ConnId, message: &Message) {
        self.send_frame(conn, Bytes::from(message.encode()));
    }

    /// Queues an encoded message on a connection, as [`Relay::send`].
    fn send_frame(&self, conn: ConnId, frame: Bytes) {
        let len = frame.len() as u64;
        let conns = lock(&self.conns);
        let Some(handle) = conns.get(&conn) else {
            return;
        };
        match handle.tx.try_send(frame) {
            Ok(()) => {
                Metrics::add(&self.metrics.messages_out, 1);
                Metrics::add(&self.metrics.bytes_out, len);
            }
            Err(Refused::Full) => {
                warn!(
                    conn = conn.0,
                    "send queue full: disconnecting a peer that does not read"
                );
                Metrics::add(&self.metrics.slow_peers_disconnected, 1);
                handle.kill.notify_one();
            }
            Err(Refused::Closed) => {}
        }
    }

    fn slot(&self, id: DocumentId) -> Arc<AsyncMutex<DocSlot>> {
        Arc::clone(lock(&self.docs).entry(id).or_default())
    }

    /// Handles `sync` and `request` for one document, in the document's
    /// tracing span.
    pub(crate) async fn handle_sync(
        &self,
        conn: ConnId,
        remote: &PeerId,
        identity: Identity,
        message: DocMessage,
        is_request: bool,
        open_docs: &mut BTreeSet<DocumentId>,
    ) -> Verdict {
        let span = tracing::debug_span!("doc", id = %message.document_id);
        self.handle_sync_in_span(conn, remote, identity, message, is_request, open_docs)
            .instrument(span)
            .await
    }

    async fn handle_sync_in_span(
        &self,
        conn: ConnId,
        remote: &PeerId,
        identity: Identity,
        mut message: DocMessage,
        is_request: bool,
        open_docs: &mut BTreeSet<DocumentId>,
    ) -> Verdict {
        let started = Instant::now();
        let id = message.document_id;
        let access = self.document_access(&identity, id);
        if access == Access::None {
            self.answer_as_missing(conn, remote, &message, is_request);
            return Verdict::Continue;
        }
        if !open_docs.contains(&id)
            && open_docs.len() >= self.config.limits.max_documents_per_connection
        {
            return Verdict::ProtocolError(format!(
                "too many documents open on one connection (the limit is {})",
                self.config.limits.max_documents_per_connection
            ));
        }
        let decoded = match self.decode(&mut message).await {
            Ok(decoded) => decoded,
            Err(reason) => {
                return Verdict::ProtocolError(format!(
                    "malformed sync message for {id}: {reason}"
                ));
            }
        };
        let slot = self.slot(id);
        let mut slot = slot.lock().await;
        // Another key may have claimed the document while this message
        // waited for it.
        if self.document_access(&identity, id) == Access::None {
            drop(slot);
            self.answer_as_missing(conn, remote, &message, is_request);
            return Verdict::Continue;
        }
        if let Err(e) = self.load(&mut slot, id).await {
            warn!(document = %id, error = %e, "cannot load a document");
            return Verdict::ProtocolError(format!(
                "the relay cannot load document {id} right now"
            ));
        }
        slot.idle_since = None;
        let Some(doc) = slot.doc.as_mut() else {
            return Verdict::ProtocolError(format!(
                "the relay cannot load document {id} right now"
            ));
        };
        if !doc.has_peer(conn) {
            doc.add_peer(conn, remote.clone());
            open_docs.insert(id);
        }
        // A key holds a bounded number of documents outside workspaces.
        let over_quota = match identity {
            Identity::Key(key) => {
                let workspaces = lock(&self.workspaces);
                workspaces.is_unclaimed(id)
                    && workspaces.unlisted_of(&key) >= self.config.limits.max_unlisted_per_key
            }
            Identity::Anonymous => false,
        };
        let prepared = {
            let mut actors = lock(&self.actors);
            doc.receive_decoded(conn, decoded, is_request, |actor| {
                match (identity, access) {
                    _ if over_quota => Err(RejectReason::QuotaExceeded),
                    (_, Access::Read) => Err(RejectReason::ReadOnly),
                    (Identity::Anonymous, _) => Ok(()),
                    (Identity::Key(key), _) => actors.check(actor, key),
                }
            })
        };
        let prepared = match prepared {
            Ok(prepared) => prepared,
            Err(SyncError::BadSyncMessage { reason, .. }) => {
                return Verdict::ProtocolError(format!(
                    "malformed sync message for {id}: {reason}"
                ));
            }
            Err(other) => return Verdict::ProtocolError(other.to_string()),
        };
        let stored = self.store_and_commit(doc, prepared, identity).await;
        self.metrics.observe_sync_latency(started.elapsed());
        // A compaction loads and saves the whole document: on a long
        // history it waits for a quarter of it to be new, so that its cost
        // per stored change stays flat as the history grows.
        let due = self.config.compact_after_changes.max(doc.len() / 4);
        slot.since_compaction += stored;
        if slot.since_compaction >= due {
            self.compact_in_background(id, &slot.compacting);
            slot.since_compaction = 0;
        }
        self.keep_new_snapshot(id, &mut slot);
        Verdict::Continue
    }

    /// How large an incoming change or document chunk may inflate.
    pub(crate) fn chunk_limits(&self) -> ChunkLimits {
        ChunkLimits {
            max_change_bytes: self.config.limits.max_change_bytes,
            max_document_bytes: self.config.limits.max_frame_bytes,
        }
    }

    /// Decodes a sync message's data: a large one (inflating and parsing
    /// its changes is the costly part) on a blocking thread, at most as
    /// many at once as there are cores, so that the async workers keep
    /// serving everyone else.
    async fn decode(&self, message: &mut DocMessage) -> Result<DecodedSync, String> {
        let limits = self.chunk_limits();
        if message.data.len() <= DECODE_INLINE_BYTES {
            return DecodedSync::decode(&message.data, &limits);
        }
        let _permit = self
            .decodes
            .acquire()
            .await
            .map_err(|_| "the relay is stopping".to_owned())?;
        let data = std::mem::take(&mut message.data);
        tokio::task::spawn_blocking(move || DecodedSync::decode(&data, &limits))
            .await
            .map_err(|_| "decoding failed".to_owned())?
    }

    /// Makes the new changes durable, then lets the document answer and
    /// forward them; if storing fails the sender is told, and nothing is
    /// acknowledged or forwarded.
    async fn store_and_commit(
        &self,
        doc: &mut RelayDoc,
        prepared: Prepared,
        identity: Identity,
    ) -> usize {
        let id = doc.id();
        if !prepared.refused.is_empty() {
            self.audit_refused(id, identity, &prepared.refused);
            Metrics::add(&self.metrics.refused_changes, prepared.refused.len() as u64);
            info!(document = %id, identity = %identity, count = prepared.refused.len(),
                reason = prepared.refused[0].1.code(), "refused changes");
        }
        if prepared.to_store.is_empty() {
            doc.commit(prepared);
            self.flush(doc);
            return 0;
        }
        let count = prepared.to_store.len();
        let bindings =
            lock(&self.actors).unstored(prepared.to_store.iter().map(|c| c.actor.as_slice()));
        // The automations look at documents of workspaces that have rules.
        let (watched, claim) = {
            let workspaces = lock(&self.workspaces);
            let claim = match identity {
                Identity::Key(key) if workspaces.is_unclaimed(id) => Some(key),
                _ => None,
            };
            (self.automations.watches(&workspaces, id), claim)
        };
        let write = Store::appending(
            id,
            prepared.to_store.clone(),
            bindings.clone(),
            watched.then(|| doc.heads()),
            claim,
        );
        let written = self.writer.write(write).await;
        match written {
            Ok(()) => {
                if watched {
                    self.automations.wake();
                }
                if let Some(key) = claim {
                    lock(&self.workspaces).note_claim(id, key);
                    self.drop_other_keys(doc, key);
                }
                lock(&self.actors).mark_stored(&bindings);
                Metrics::add(&self.metrics.changes_stored, count as u64);
                doc.commit(prepared);
                self.flush(doc);
                return count;
            }
            Err(e) => {
                warn!(document = %id, error = %e, "storing changes failed; refusing them");
                self.refuse_unstored(doc, prepared);
            }
        }
        self.flush(doc);
        0
    }

    /// Takes every connection of another key off `doc`, which `key` has
    /// just claimed: they asked for it before anybody had written it.
    fn drop_other_keys(&self, doc: &mut RelayDoc, key: PublicKey) {
        let others: Vec<ConnId> = {
            let conns = lock(&self.conns);
            doc.peers()
                .map(|(conn, _)| conn)
                .filter(|conn| {
                    conns
                        .get(conn)
                        .is_some_and(|handle| handle.identity != Identity::Key(key))
                })
                .collect()
        };
        for conn in others {
            doc.remove_peer(conn);
        }
    }

    fn refuse_unstored(&self, doc: &mut RelayDoc, prepared: Prepared) {
        Metrics::add(&self.metrics.storage_errors, 1);
        Metrics::add(
            &self.metrics.refused_changes,
            prepared.to_store.len() as u64,
        );
        doc.abort(prepared, RejectReason::StorageUnavailable);
    }

    /// Carries out a document's effects.
    fn flush(&self, doc: &mut RelayDoc) {
        while let Some(RelayEffect::Send { conn, message }) = doc.poll_effect() {
            self.send(conn, &message);
        }
    }

    /// Hands changes the relay made itself, already stored, to the
    /// document if it is in memory, which offers them to its peers.
    pub(crate) async fn add_local_changes(&self, id: DocumentId, changes: &[StoredChange]) {
        let Some(slot) = lock(&self.docs).get(&id).cloned() else {
            return;
        };
        let mut slot = slot.lock().await;
        if let Some(doc) = slot.doc.as_mut() {
            doc.add_local(changes);
            self.flush(doc);
        }
    }

    /// Loads the slot's document from storage, unless it is loaded.
    async fn load(&self, slot: &mut DocSlot, id: DocumentId) -> Result<(), StoreError> {
        if slot.doc.is_none() {
            // A document the relay never held (a new one, or one a peer asks
            // for that nobody has) needs no trip to the storage thread.
            let changes = if self.store.may_hold(id) {
                let store = self.store.clone();
                tokio::task::spawn_blocking(move || store.load_document(id))
                    .await
                    .map_err(|_| StoreError::Corrupt {
                        path: self.store.path().to_owned(),
                        table: "changes",
                    })??
            } else {
                StoredDocument::default()
            };
            let (doc, orphans) = RelayDoc::from_stored(id, self.peer_id.clone(), changes);
            if orphans > 0 {
                warn!(document = %id, orphans, "stored changes whose dependencies are missing");
            }
            debug!(document = %id, changes = doc.len(), "document loaded");
            Metrics::add(&self.metrics.documents_loaded, 1);
            slot.doc = Some(doc);
        }
        Ok(())
    }

    /// Forwards an ephemeral message to every other connection with the
    /// document open, dropping stale ones.
    pub(crate) async fn forward_ephemeral(
        &self,
        conn: ConnId,
        identity: Identity,
        message: Ephemeral,
    ) {
        let id = message.document_id;
        let access = self.document_access(&identity, id);
        if access == Access::None {
            return;
        }
        let limits = &self.config.limits;
        if message.session_id.len() > MAX_SESSION_ID_BYTES
            || message.data.len() > limits.max_ephemeral_bytes
        {
            Metrics::add(&self.metrics.dropped_messages, 1);
            return;
        }
        let slot = self.slot(id);
        let mut slot = slot.lock().await;
        let readers = slot
            .reader_ephemeral
            .get_or_insert_with(|| WindowCounter::new(Duration::from_secs(1)));
        if access == Access::Read
            && !readers.admit(conn, limits.reader_ephemeral_per_sec, Instant::now())
        {
            Metrics::add(&self.metrics.dropped_messages, 1);
            return;
        }
        // Keyed by who is on the connection too: a peer that claims
        // another's peer id cannot make its presence look stale.
        let key = (
            identity.key(),
            message.sender_id.clone(),
            message.session_id.clone(),
        );
        if slot
            .ephemeral
            .get(&key)
            .is_some_and(|&last| message.count <= last)
        {
            Metrics::add(&self.metrics.dropped_messages, 1);
            return;
        }
        if slot.ephemeral.len() >= MAX_EPHEMERAL_SESSIONS && !slot.ephemeral.contains_key(&key) {
            // Forgetting the counts lets a stale message through once; they
            // are best effort anyway, and memory stays bounded.
            slot.ephemeral.clear();
        }
        slot.ephemeral.insert(key, message.count);
        let Some(doc) = slot.doc.as_ref() else {
            return;
        };
        // Encoded once for every other peer, each with its own target.
        let others: Vec<(ConnId, &PeerId)> =
            doc.peers().filter(|(other, _)| *other != conn).collect();
        let frames = message.encode_for(others.iter().map(|(_, remote)| *remote));
        for ((other, _), frame) in others.iter().zip(frames) {
            self.send_frame(*other, Bytes::from(frame));
        }
    }

    fn unavailable(&self, id: DocumentId, remote: &PeerId) -> Message {
        Message::DocUnavailable(DocUnavailable {
            sender_id: self.peer_id.clone(),
            target_id: remote.clone(),
            document_id: id,
        })
    }

    /// Waits for background work (compactions) to finish.
    pub(crate) async fn finish_background(&self) {
        let mut tasks = std::mem::take(&mut *lock(&self.background));
        while tasks.join_next().await.is_some() {}
    }

    /// Drops documents nobody has had open for a while.
    pub(crate) fn unload_idle_documents(&self) {
        let after = self.config.limits.unload_idle_documents_after;
        let mut docs = lock(&self.docs);
        let before = docs.len();
        docs.retain(|_, slot| {
            // Someone holds the slot (a message on its way in): keep it, or
            // a second copy of the document could be loaded beside it.
            if Arc::strong_count(slot) > 1 {
                return true;
            }
            let Ok(slot) = slot.try_lock() else {
                return true;
            };
            match (&slot.doc, slot.idle_since) {
                (Some(doc), Some(since)) => doc.peer_count() > 0 || since.elapsed() < after,
                (None, _) => false,
                (Some(doc), None) => doc.peer_count() > 0,
            }
        });
        let unloaded = before - docs.len();
        if unloaded > 0 {
            debug!(unloaded, "idle documents left memory");
        }
        self.metrics.documents_loaded.store(
            docs.values()
                .filter(|s| s.try_lock().map(|s| s.doc.is_some()).unwrap_or(true))
                .count() as u64,
            Ordering::Relaxed,
        );
    }
}

/// Why an upgrade was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AuthRefusal {
    #[error("a token is required: send `Authorization: Bearer <token>` or `?token=<token>`")]
    Missing,
    #[error("the token was refused: {0}")]
    Invalid(AuthError),
    #[error("this key was removed from its workspaces; ask an admin for a new invite")]
    Revoked,
}
