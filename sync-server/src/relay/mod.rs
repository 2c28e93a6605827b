//! The relay's shared state: open documents, live connections, the actor
//! registry, the token verifier; what happens to a sync message is in
//! `sync`, to an ephemeral one in `ephemeral`.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use rapport_protocol::ids::{DocumentId, PeerId, PublicKey, UnixMillis};
use rapport_protocol::relay::{ConnId, RelayDoc};
use rapport_protocol::token::AuthError;
use rapport_protocol::wire::{DocUnavailable, Message};
use tokio::sync::{Mutex as AsyncMutex, Notify, mpsc};
use tracing::{debug, warn};

use crate::access::Identity;

mod access;
mod control;
mod ephemeral;
mod from_cluster;
mod listing;
mod owed;
mod quota;
mod removal;
mod seats;
mod snapshots;
mod subjects;
mod sync;
pub(crate) mod triggers;

use crate::actors::ActorRegistry;
use crate::config::{AuthMode, Config};
use crate::metrics::Metrics;
use crate::outbox::{Outbox, Refused, Ticket};
use crate::storage::{GroupCommit, RelayKeys, Store, StoreError};
use crate::tokens::Tokens;
use crate::window::WindowCounter;
use crate::workspace::Workspaces;
pub(crate) use removal::Removal;
pub(crate) use seats::{NoSeat, Seats};
pub(crate) use triggers::Triggers;

/// Locks a std mutex, carrying on past a poisoned one: the data behind each
/// lock stays consistent between statements, so a panic elsewhere does not
/// leave it half-changed.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn now() -> UnixMillis {
    UnixMillis::from(SystemTime::now())
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
    listing: listing::Listing,
}

/// A document's slot behind its lock, with a count of the sync messages
/// waiting for that lock: the last of a burst answers the peers for all of
/// them ([`RelayDoc::commit_deferred`]).
#[derive(Debug, Default)]
struct Slot {
    waiting: std::sync::atomic::AtomicUsize,
    inner: AsyncMutex<DocSlot>,
}

impl Slot {
    /// The slot, for anything but a sync message.
    async fn lock(&self) -> tokio::sync::MutexGuard<'_, DocSlot> {
        self.inner.lock().await
    }

    /// The slot, for a sync message: counted while it waits (also when
    /// the wait is given up, its connection closing).
    async fn lock_queued(&self) -> tokio::sync::MutexGuard<'_, DocSlot> {
        struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
            }
        }
        self.waiting
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        let _waiting = Waiting(&self.waiting);
        self.inner.lock().await
    }

    /// The slot, if nobody holds it.
    fn try_lock(&self) -> Result<tokio::sync::MutexGuard<'_, DocSlot>, tokio::sync::TryLockError> {
        self.inner.try_lock()
    }

    /// Whether sync messages are waiting for the slot.
    fn has_waiting(&self) -> bool {
        self.waiting.load(std::sync::atomic::Ordering::Acquire) > 0
    }
}

/// One document's place in memory.
#[derive(Debug, Default)]
struct DocSlot {
    /// Sync messages committed since the peers were last answered.
    unanswered: usize,
    doc: Option<RelayDoc>,
    /// Changes stored since the last compaction started (or since loading).
    since_compaction: usize,
    compacting: Arc<std::sync::atomic::AtomicBool>,
    idle_since: Option<Instant>,
    /// Ephemeral messages from read-only connections in the current
    /// second, per connection.
    reader_ephemeral: Option<WindowCounter<ConnId>>,
    /// The last `count` per `senderId:sessionId` of ephemeral messages, at
    /// most [`ephemeral::MAX_EPHEMERAL_SESSIONS`].
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
    /// This relay's own id: its `relay_id` unless it serves in a cluster,
    /// whose relays share theirs.
    pub(crate) node_id: String,
    pub(crate) peer_id: PeerId,
    store: Store,
    /// Every sync message's changes become durable through it.
    writer: GroupCommit,
    /// Documents nobody has open any more, for [`Relay::pack_idle_documents`].
    idle_tx: mpsc::UnboundedSender<DocumentId>,
    idle_rx: Mutex<Option<mpsc::UnboundedReceiver<DocumentId>>>,
    pub(crate) workspaces: Mutex<Workspaces>,
    docs: Mutex<HashMap<DocumentId, Arc<Slot>>>,
    conns: Mutex<HashMap<ConnId, ConnHandle>>,
    /// Document ids as text while lists of them go out.
    id_texts: Mutex<listing::IdTexts>,
    actors: Mutex<ActorRegistry>,
    verifier: Mutex<Tokens>,
    pub(crate) metrics: Metrics,
    next_conn: AtomicU64,
    /// Compactions in progress, awaited at shutdown.
    background: Mutex<tokio::task::JoinSet<()>>,
    /// Where compactions and saving idle documents run.
    low_priority: crate::background::Background,
    /// The relay's own key and actor, once made.
    keys: Mutex<Option<RelayKeys>>,
    pub(crate) automations: Triggers,
    /// Connections held, in all and per key.
    pub(crate) seats: Seats,
    /// Members' refused API calls written to the audit log lately.
    pub(crate) audited_refusals: Mutex<WindowCounter<PublicKey>>,
    /// Large sync messages being decoded off the async workers.
    decodes: tokio::sync::Semaphore,
    /// Each workspace's size in bytes, and when it was added up.
    usage: Mutex<HashMap<String, (Instant, u64)>>,
    /// The cluster this relay serves as one with others, once joined.
    pub(crate) cluster: std::sync::OnceLock<Arc<crate::cluster::Cluster>>,
    /// The workspaces shared with the cluster's other relays, once joined.
    pub(crate) control: std::sync::OnceLock<Arc<crate::cluster::control::Control>>,
    /// Documents owing some peer their heads ([`Relay::answer_owed_heads`]).
    owed_heads: Mutex<std::collections::HashSet<DocumentId>>,
    owed_heads_noted: tokio::sync::Notify,
}

/// The relay's own id, made the first time it opens its data folder.
pub(crate) fn node_id(store: &Store) -> Result<String, StoreError> {
    store.relay_id(|| {
        let bytes: [u8; 12] = rand::random();
        format!("relay-{}", bs58::encode(bytes).into_string())
    })
}

impl Relay {
    /// Opens the relay on its data folder; in a cluster, with the id and
    /// key every relay of it shares.
    pub(crate) fn open(
        config: Config,
        cluster: Option<crate::cluster::shared::Shared>,
    ) -> Result<Self, StoreError> {
        let store = Store::open_on(&config.data_dir, config.storage.clone())?;
        let node_id = node_id(&store)?;
        let relay_id = cluster
            .as_ref()
            .map_or_else(|| node_id.clone(), |shared| shared.id.clone());
        // In a cluster each relay writes with the shared key and an actor
        // of its own, so that no two relays share an actor.
        let keys = cluster.map(|shared| RelayKeys::with_new_actor(shared.secret));
        let actors = ActorRegistry::from_stored(store.actors()?);
        let creators = config
            .workspace_creators
            .clone()
            .map(|keys| keys.into_iter().collect());
        let mut workspaces = Workspaces::load(&store, creators)?;
        workspaces.limit_documents(config.limits.max_documents_per_workspace);
        if config.auth == AuthMode::Token {
            claim_unlisted(&store, &actors, &mut workspaces)?;
        }
        let automations = Triggers::load(&store, &workspaces)?;
        let metrics = Metrics::default();
        let (idle_tx, idle_rx) = mpsc::unbounded_channel();
        let thread_failed = |source| StoreError::Thread {
            path: store.path().to_owned(),
            source,
        };
        let writer = GroupCommit::start(store.clone(), Arc::clone(&metrics.storage_commits))
            .map_err(thread_failed)?;
        let low_priority = crate::background::Background::start().map_err(thread_failed)?;
        // Never empty, so always a valid peer id.
        let peer_id: PeerId = format!("rapport-{relay_id}")
            .parse()
            .expect("a non-empty peer id");
        Ok(Self {
            verifier: Mutex::new(Tokens::open(
                &config.data_dir,
                &relay_id,
                config.limits.max_tokens_per_key,
                now(),
            )),
            config,
            peer_id,
            relay_id,
            node_id,
            store,
            writer,
            idle_tx,
            idle_rx: Mutex::new(Some(idle_rx)),
            workspaces: Mutex::new(workspaces),
            docs: Mutex::new(HashMap::new()),
            conns: Mutex::new(HashMap::new()),
            id_texts: Mutex::default(),
            actors: Mutex::new(actors),
            metrics,
            next_conn: AtomicU64::new(1),
            background: Mutex::new(tokio::task::JoinSet::new()),
            low_priority,
            keys: Mutex::new(keys),
            automations,
            seats: Seats::default(),
            audited_refusals: Mutex::new(WindowCounter::new(Duration::from_secs(60))),
            decodes: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, usize::from),
            ),
            usage: Mutex::new(HashMap::new()),
            cluster: std::sync::OnceLock::new(),
            owed_heads: Mutex::new(std::collections::HashSet::new()),
            owed_heads_noted: tokio::sync::Notify::new(),
            control: std::sync::OnceLock::new(),
        })
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// The key an automerge actor is bound to.
    pub(crate) fn key_of_actor(&self, actor: &[u8]) -> Option<PublicKey> {
        lock(&self.actors).key_of(actor)
    }

    /// The relay's own key and actor, made and stored the first time: it
    /// writes form submissions and automations' results with them.
    /// Blocking.
    pub(crate) fn relay_keys(&self) -> Result<RelayKeys, StoreError> {
        let mut keys = lock(&self.keys);
        if let Some(keys) = &*keys {
            return Ok(keys.clone());
        }
        let made = self
            .store
            .relay_keys(|| RelayKeys::with_new_actor(rand::random()))?;
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
        // In a cluster, a token passes once on all relays, not once on
        // each. Without NATS, each relay's own check holds alone.
        if let Some(control) = self.control.get() {
            match control.first_use(&key, verified.token_id()) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(AuthRefusal::Invalid(
                        rapport_protocol::token::AuthError::Replayed,
                    ));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot ask the cluster whether a token was used before; this relay's own check holds alone");
                }
            }
        }
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
                listing: listing::Listing::Idle,
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

    /// Queues an encoded message on a connection, as [`Relay::send`]; its
    /// ticket in the connection's outbox if it was queued.
    fn send_frame(&self, conn: ConnId, frame: Bytes) -> Option<Ticket> {
        let len = frame.len() as u64;
        let conns = lock(&self.conns);
        let handle = conns.get(&conn)?;
        match handle.tx.try_send(frame) {
            Ok(ticket) => {
                Metrics::add(&self.metrics.messages_out, 1);
                Metrics::add(&self.metrics.bytes_out, len);
                return Some(ticket);
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
        None
    }

    fn slot(&self, id: DocumentId) -> Arc<Slot> {
        Arc::clone(lock(&self.docs).entry(id).or_default())
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
        self.metrics.documents_loaded.store(
            docs.values()
                .filter(|s| s.try_lock().map(|s| s.doc.is_some()).unwrap_or(true))
                .count() as u64,
            Ordering::Relaxed,
        );
        drop(docs);
        if unloaded > 0 {
            debug!(unloaded, "idle documents left memory");
            crate::memory::hand_back_freed_memory();
        }
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
