//! The replica: documents in memory when used, in redb always.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use automerge::transaction::Transaction;
use automerge::{Automerge, ChangeHash};
use rapport_protocol::ids::{DocumentId, PeerId, PublicKey, UnixMillis};
use rapport_protocol::sync::{DocumentSync, Effect, Origin};
use rapport_protocol::wire::Message;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};
use tracing::warn;

use crate::error::ClientError;
use crate::identity::Identity;
use crate::index::IndexEntry;
use crate::store::Store;

/// Change rows a document may gather before they are folded into a new
/// snapshot.
const COMPACT_AFTER_ROWS: usize = 64;

/// Something that happened to a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocEvent {
    pub id: DocumentId,
    pub heads: Vec<rapport_protocol::ids::ChangeHash>,
    /// True when the change came from elsewhere through a relay.
    pub remote: bool,
}

/// A change a relay refused, kept so the person can see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedChanges {
    pub document: String,
    pub changes: Vec<String>,
    pub reason: String,
    pub message: String,
    /// When it was reported, unix milliseconds.
    pub at: u64,
}

/// One document in memory.
#[derive(Debug)]
struct Loaded {
    sync: DocumentSync,
    /// Heads already in redb.
    persisted: Vec<ChangeHash>,
}

/// What a message from a relay did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Received {
    /// It concerned this document.
    Document(DocumentId),
    /// The relay named documents we may see (one page of its list) and
    /// `new` are those we did not have; they are being fetched.
    NewDocuments {
        new: Vec<DocumentId>,
        /// This was the list's last page: every document we may see has
        /// been named.
        complete: bool,
    },
    /// The relay said these documents were deleted or erased; the replica
    /// dropped them.
    Removed(Vec<DocumentId>),
    /// The relay could not store changes for now (`storage-unavailable`),
    /// in its words; they are offered again later.
    Unstored(String),
    Nothing,
}

/// A live relay connection.
#[derive(Debug, Clone)]
struct Link {
    tx: mpsc::UnboundedSender<Message>,
    /// Our peer id on this connection.
    us: PeerId,
}

/// The replica's shared state.
#[derive(Debug)]
struct Inner {
    home: PathBuf,
    identity: Identity,
    peer_id: PeerId,
    store: Store,
    docs: Mutex<HashMap<DocumentId, Loaded>>,
    /// Live relay connections, by the relay's peer id.
    links: Mutex<HashMap<PeerId, Link>>,
    events: broadcast::Sender<DocEvent>,
    /// Changes relays refused, by document.
    refused: Mutex<HashMap<DocumentId, BTreeSet<ChangeHash>>>,
}

/// A person's replica. Cheap to clone; every method is safe to call from any
/// thread and blocks only on the replica's own database.
#[derive(Debug, Clone)]
pub struct Repo {
    inner: Arc<Inner>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The wall clock, as the protocol and model crates take it.
pub fn now() -> UnixMillis {
    UnixMillis::from(std::time::SystemTime::now())
}

impl Repo {
    /// Makes a new replica with a new identity in `home`.
    pub fn init(home: &Path) -> Result<Self, ClientError> {
        let identity = Identity::create(home)?;
        Self::with_identity(home, identity)
    }

    /// Makes a new replica in `home` for a key brought from another device.
    pub fn init_with_key(home: &Path, key: ed25519_dalek::SigningKey) -> Result<Self, ClientError> {
        let identity = Identity::create_with(home, key)?;
        Self::with_identity(home, identity)
    }

    /// Opens the replica in `home`.
    pub fn open(home: &Path) -> Result<Self, ClientError> {
        let identity = Identity::load(home)?;
        Self::with_identity(home, identity)
    }

    fn with_identity(home: &Path, identity: Identity) -> Result<Self, ClientError> {
        let store = Store::open(home)?;
        let actor = identity.actor_id().to_hex_string();
        // The actor's tail is this device; the peer id names key and device.
        let peer_id: PeerId = format!("rapport-{}-{}", identity.public_key(), &actor[64..])
            .parse()
            .expect("a non-empty peer id");
        let (events, _) = broadcast::channel(1024);
        Ok(Self {
            inner: Arc::new(Inner {
                home: home.to_owned(),
                identity,
                peer_id,
                store,
                docs: Mutex::new(HashMap::new()),
                links: Mutex::new(HashMap::new()),
                events,
                refused: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The home folder.
    pub fn home(&self) -> &Path {
        &self.inner.home
    }

    /// This person's identity on this device.
    pub fn identity(&self) -> &Identity {
        &self.inner.identity
    }

    /// This person's public key.
    pub fn public_key(&self) -> PublicKey {
        self.inner.identity.public_key()
    }

    /// The peer id this replica uses on connections.
    pub fn peer_id(&self) -> &PeerId {
        &self.inner.peer_id
    }

    /// The replica's database.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Every document id in the replica (stored ones and ones asked for).
    pub fn document_ids(&self) -> Result<Vec<DocumentId>, ClientError> {
        let mut ids: BTreeSet<DocumentId> = self.inner.store.document_ids()?.into_iter().collect();
        ids.extend(lock(&self.inner.docs).keys().copied());
        Ok(ids.into_iter().collect())
    }

    /// Events for every change to every document, local and remote.
    pub fn subscribe(&self) -> broadcast::Receiver<DocEvent> {
        self.inner.events.subscribe()
    }

    /// Creates a document, made by `init`; returns once it is durable.
    pub fn create<T, E>(
        &self,
        init: impl FnOnce(&mut Transaction<'_>) -> Result<T, E>,
    ) -> Result<(DocumentId, T), ClientError>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let id = DocumentId::random(&mut rand::rng());
        let mut docs = lock(&self.inner.docs);
        let loaded = docs.entry(id).or_insert(self.fresh(id));
        let value = self.apply(id, loaded, init)?;
        Ok((id, value))
    }

    /// Changes document `id`, making it first (empty) if this replica does
    /// not have it; returns once the change is durable. For documents whose
    /// id is derived rather than random (see `recurring`): every replica
    /// that makes one makes the same document, and automerge merges them.
    /// If `change` writes nothing to a document made here, it is dropped.
    pub(crate) fn create_at<T, E>(
        &self,
        id: DocumentId,
        change: impl FnOnce(&mut Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, ClientError>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let mut docs = lock(&self.inner.docs);
        let made = !docs.contains_key(&id) && self.inner.store.load(id)?.is_none();
        if made {
            docs.insert(id, self.fresh(id));
        }
        let loaded = self.loaded(&mut docs, id)?;
        let result = self.apply(id, loaded, change);
        if made && loaded.sync.doc().get_heads().is_empty() {
            docs.remove(&id);
        }
        result
    }

    /// Changes a document; returns once the change is durable.
    pub fn change<T, E>(
        &self,
        id: DocumentId,
        change: impl FnOnce(&mut Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, ClientError>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let mut docs = lock(&self.inner.docs);
        let loaded = self.loaded(&mut docs, id)?;
        self.apply(id, loaded, change)
    }

    /// Makes a local change and carries out what follows.
    fn apply<T, E>(
        &self,
        id: DocumentId,
        loaded: &mut Loaded,
        change: impl FnOnce(&mut Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, ClientError>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let value = loaded
            .sync
            .handle_local_change(now(), change)
            .map_err(|source| ClientError::Change {
                id,
                source: source.into(),
            })?;
        self.drain(id, loaded)?;
        Ok(value)
    }

    /// A new, empty document in memory, syncing with every live relay.
    fn fresh(&self, id: DocumentId) -> Loaded {
        let doc = Automerge::new().with_actor(self.inner.identity.actor_id());
        let mut loaded = Loaded {
            sync: DocumentSync::new(id, self.inner.peer_id.clone(), doc),
            persisted: Vec::new(),
        };
        for (relay, link) in lock(&self.inner.links).iter() {
            loaded
                .sync
                .handle_peer_connected_as(relay.clone(), link.us.clone(), None, now());
        }
        loaded
    }

    /// Reads a document.
    pub fn read<T>(
        &self,
        id: DocumentId,
        read: impl FnOnce(&Automerge) -> T,
    ) -> Result<T, ClientError> {
        let mut docs = lock(&self.inner.docs);
        let loaded = self.loaded(&mut docs, id)?;
        Ok(read(loaded.sync.doc()))
    }

    /// A document's heads.
    pub fn heads(&self, id: DocumentId) -> Result<Vec<ChangeHash>, ClientError> {
        self.read(id, Automerge::get_heads)
    }

    /// Asks for a document this replica does not have yet: the next sync
    /// fetches it (it stays empty if no relay has it).
    pub fn want(&self, id: DocumentId) -> Result<(), ClientError> {
        let mut docs = lock(&self.inner.docs);
        if docs.contains_key(&id) || self.inner.store.load(id)?.is_some() {
            return Ok(());
        }
        let mut loaded = self.fresh(id);
        self.drain(id, &mut loaded)?;
        docs.insert(id, loaded);
        Ok(())
    }

    /// Every record in the index, without loading documents.
    pub fn index(&self) -> Result<Vec<(DocumentId, IndexEntry)>, ClientError> {
        Ok(self
            .inner
            .store
            .index_entries()?
            .into_iter()
            .filter_map(|(id, bytes)| IndexEntry::from_bytes(&bytes).ok().map(|e| (id, e)))
            .collect())
    }

    /// Rebuilds the index from the documents; returns how many records it
    /// holds. Documents that do not load are skipped (and named in the log).
    pub fn rebuild_index(&self) -> Result<usize, ClientError> {
        let mut entries = Vec::new();
        for id in self.inner.store.document_ids()? {
            match self.read(id, crate::index_bytes) {
                Ok(Some(entry)) => entries.push((id, entry)),
                Ok(None) => {}
                Err(e) => warn!(document = %id, error = %e, "not indexed"),
            }
        }
        self.inner.store.replace_index(&entries)?;
        Ok(entries.len())
    }

    /// Changes relays refused, oldest first.
    pub fn refused_changes(&self) -> Result<Vec<RefusedChanges>, ClientError> {
        Ok(self
            .inner
            .store
            .rejected()?
            .iter()
            .filter_map(|bytes| serde_json::from_slice(bytes).ok())
            .collect())
    }

    /// The document in memory, loading it from redb if needed.
    fn loaded<'a>(
        &self,
        docs: &'a mut HashMap<DocumentId, Loaded>,
        id: DocumentId,
    ) -> Result<&'a mut Loaded, ClientError> {
        match docs.entry(id) {
            std::collections::hash_map::Entry::Occupied(entry) => Ok(entry.into_mut()),
            std::collections::hash_map::Entry::Vacant(entry) => Ok(entry.insert(self.load(id)?)),
        }
    }

    /// Loads a document from redb; a clear error if its bytes do not load.
    fn load(&self, id: DocumentId) -> Result<Loaded, ClientError> {
        let stored = self
            .inner
            .store
            .load(id)?
            .ok_or(ClientError::UnknownDocument { id })?;
        let corrupt = |reason: String| ClientError::CorruptDocument {
            id,
            path: self.inner.store.path().to_owned(),
            reason,
        };
        let doc = rapport_protocol::sync::load_document(
            stored.snapshot.as_deref(),
            stored.changes.iter().map(Vec::as_slice),
        )
        .map_err(|e| corrupt(e.to_string()))?
        .with_actor(self.inner.identity.actor_id());
        let persisted = doc.get_heads();
        Ok(Loaded {
            sync: DocumentSync::new(id, self.inner.peer_id.clone(), doc),
            persisted,
        })
    }

    /// Carries out a document's effects: new changes go to redb before any
    /// message leaves.
    fn drain(&self, id: DocumentId, loaded: &mut Loaded) -> Result<(), ClientError> {
        while let Some(effect) = loaded.sync.poll_effect() {
            match effect {
                Effect::Changed { heads, origin } => {
                    self.persist(id, loaded)?;
                    let _ = self.inner.events.send(DocEvent {
                        id,
                        heads,
                        remote: matches!(origin, Origin::Remote(_)),
                    });
                }
                Effect::Send(message) => self.route(message),
                Effect::Unavailable { .. } => {}
                _ => {}
            }
        }
        Ok(())
    }

    fn persist(&self, id: DocumentId, loaded: &mut Loaded) -> Result<(), ClientError> {
        let doc = loaded.sync.doc();
        let heads = doc.get_heads();
        if heads == loaded.persisted {
            return Ok(());
        }
        let bytes = doc.save_after(&loaded.persisted);
        let index = crate::index_bytes(doc);
        let rows = self.inner.store.append(id, &bytes, index.as_deref())?;
        loaded.persisted = heads;
        if rows >= COMPACT_AFTER_ROWS {
            self.inner.store.compact(id, &loaded.sync.doc().save())?;
        }
        Ok(())
    }

    fn route(&self, message: Message) {
        let target = match &message {
            Message::Sync(m) | Message::Request(m) => m.target_id.clone(),
            Message::DocUnavailable(m) => m.target_id.clone(),
            _ => return,
        };
        if let Some(link) = lock(&self.inner.links).get(&target) {
            let _ = link.tx.send(message);
        }
    }
}

mod automations;
mod link;
mod recurring;
#[cfg(test)]
mod tests;
