//! The load generator's peers: a WebSocket speaking automerge-repo protocol
//! "1" (the `join`/`peer` handshake, then `request`/`sync` frames), and
//! [`ThinDoc`], a peer's copy of a document kept as a change graph only.
//!
//! A load generator that applied every change to an automerge document
//! would spend its time in automerge (about 110 ms a keystroke on the
//! pre-grown trace document) and measure itself. A [`ThinDoc`] answers the
//! sync protocol from the change graph instead, with the same engine the
//! relay uses ([`RelayDoc`]), so each peer costs microseconds a message.
//! The peers that must apply changes (the *visible* latency of the typing
//! scenario, the fresh replica of cold-sync) use a real
//! [`DocumentSync`](rapport_protocol::sync::DocumentSync).

use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use automerge::ChangeHash;
use automerge::sync::{self, BloomFilter, Have, MessageFlags, MessageVersion};
use rapport_client::transport::{self, OpenOptions};
use rapport_protocol::ids::{DocumentId, PeerId, UnixMillis};
use rapport_protocol::relay::{ConnId, RelayDoc, StoredChange, StoredDocument, split_changes};
use rapport_protocol::wire::{DocMessage, Message, PeerMetadata};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

pub(crate) use rapport_client::transport::{Socket, frame};

/// How long connecting and the handshake may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// The wall clock, as the protocol crate takes it.
pub(crate) fn now() -> UnixMillis {
    rapport_client::now()
}

/// A fresh peer id: `bench-ROLE-N-RANDOM`.
pub(crate) fn peer_name(role: &str, n: usize) -> PeerId {
    let suffix: u32 = rand::random();
    // Never empty, so always a valid peer id.
    format!("bench-{role}-{n}-{suffix:08x}")
        .parse()
        .expect("a non-empty peer id")
}

/// A connection that completed the handshake.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) socket: Socket,
    pub(crate) us: PeerId,
    /// The server's peer id.
    pub(crate) server: PeerId,
}

/// Opens a WebSocket to `url` (no frame size limit) and runs the
/// `join`/`peer` handshake as `us`, an ephemeral peer.
pub(crate) async fn connect(url: &str, us: PeerId) -> Result<Link> {
    connect_with(url, us, None).await
}

/// [`connect`] presenting `token` (a relay with tokens).
pub(crate) async fn connect_with(url: &str, us: PeerId, token: Option<String>) -> Result<Link> {
    let work = async {
        let mut socket = open_with(url, token.as_deref()).await?;
        let metadata = PeerMetadata {
            storage_id: None,
            is_ephemeral: true,
        };
        let server = transport::handshake(&mut socket, us.clone(), metadata, CONNECT_TIMEOUT)
            .await
            .with_context(|| format!("the handshake with {url}"))?;
        Ok(Link { socket, us, server })
    };
    tokio::time::timeout(CONNECT_TIMEOUT, work)
        .await
        .map_err(|_| anyhow!("connecting to {url} took over {CONNECT_TIMEOUT:?}"))?
}

/// Opens a bare WebSocket (no handshake).
pub(crate) async fn open(url: &str) -> Result<Socket> {
    open_with(url, None).await
}

async fn open_with(url: &str, token: Option<&str>) -> Result<Socket> {
    let options = OpenOptions {
        token,
        max_message_bytes: Some(usize::MAX),
    };
    transport::open(url, options)
        .await
        .with_context(|| format!("connecting to {url}"))
}

/// Refuses a server address off this machine, unless allowed: a load
/// generator pointed at someone else's server by mistake is a nuisance.
pub(crate) fn check_loopback(url: &str, allow_remote: bool) -> Result<()> {
    if allow_remote {
        return Ok(());
    }
    let request = url.into_client_request()?;
    let host = request.uri().host().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        bail!("{url} is not on this machine; pass --allow-remote to load it anyway");
    }
    Ok(())
}

/// The hashes of the changes a `sync` or `request` carries.
pub(crate) fn change_hashes(message: &DocMessage) -> Result<Vec<StoredChange>> {
    let decoded = sync::Message::decode(&message.data).map_err(|e| anyhow!("{e}"))?;
    Ok(split_changes(decoded.changes.iter())?)
}

/// The connection to the server, as the [`RelayDoc`] inside a [`ThinDoc`]
/// sees it.
const SERVER: ConnId = ConnId(0);
/// Local changes enter the [`RelayDoc`] as if sent by this connection.
const LOCAL: ConnId = ConnId(1);

/// A peer's copy of one document as a change graph (see the module docs).
///
/// It starts from a *base*: heads the server is known to hold, whose
/// history the peer never needs (it is never asked for them, because it
/// announces that it last synced at those heads).
#[derive(Debug)]
pub(crate) struct ThinDoc {
    id: DocumentId,
    us: PeerId,
    doc: RelayDoc,
    base: Vec<ChangeHash>,
}

impl ThinDoc {
    pub(crate) fn new(id: DocumentId, us: PeerId, server: PeerId, base: &[ChangeHash]) -> Self {
        let stored = StoredDocument {
            snapshot: None,
            compacted: base.iter().map(|h| (*h, Vec::new())).collect(),
            changes: Vec::new(),
        };
        let (mut doc, _) = RelayDoc::from_stored(id, us.clone(), stored);
        doc.add_peer(SERVER, server);
        doc.add_peer(LOCAL, us.clone());
        Self {
            id,
            us,
            doc,
            base: base.to_vec(),
        }
    }

    /// The first message to the server: our heads, and that we last synced
    /// at the base (so nothing older is exchanged). An empty base sends a
    /// `request`.
    pub(crate) fn hello(&self, server: &PeerId) -> Message {
        let mut flags = MessageFlags::new();
        flags.set(MessageFlags::SUPPORTS_SYNC_RESET);
        let message = sync::Message {
            heads: self.doc.heads(),
            need: Vec::new(),
            have: vec![Have {
                last_sync: self.base.clone(),
                bloom: BloomFilter::default(),
            }],
            changes: sync::ChunkList::empty(),
            flags: Some(flags),
            version: MessageVersion::V1,
        };
        let doc_message = DocMessage {
            sender_id: self.us.clone(),
            target_id: server.clone(),
            document_id: self.id,
            data: message.encode(),
        };
        if self.base.is_empty() && self.doc.is_empty() {
            Message::Request(doc_message)
        } else {
            Message::Sync(doc_message)
        }
    }

    /// The current heads: the dependencies of the next local change.
    pub(crate) fn heads(&self) -> Vec<ChangeHash> {
        self.doc.heads()
    }

    /// Adds a change made here; returns what to send to the server.
    pub(crate) fn add_local(&mut self, change: &automerge::Change) -> Result<Vec<Message>> {
        let message = sync::Message {
            heads: vec![change.hash()],
            need: Vec::new(),
            have: Vec::new(),
            changes: sync::ChunkList::from(vec![change.raw_bytes().to_vec()]),
            flags: None,
            version: MessageVersion::V1,
        };
        let doc_message = DocMessage {
            sender_id: self.us.clone(),
            target_id: self.us.clone(),
            document_id: self.id,
            data: message.encode(),
        };
        let prepared = self.doc.receive(LOCAL, &doc_message, false, |_| Ok(()))?;
        self.doc.commit(prepared);
        Ok(self.drain_for_server())
    }

    /// Handles a `sync` from the server; returns what to send back.
    pub(crate) fn receive(&mut self, message: &DocMessage) -> Result<Vec<Message>> {
        let prepared = self.doc.receive(SERVER, message, false, |_| Ok(()))?;
        self.doc.commit(prepared);
        Ok(self.drain_for_server())
    }

    /// Drains the engine's effects, keeping those for the server.
    fn drain_for_server(&mut self) -> Vec<Message> {
        let mut out = Vec::new();
        while let Some(effect) = self.doc.poll_effect() {
            if let rapport_protocol::relay::RelayEffect::Send { conn, message } = effect
                && conn == SERVER
            {
                out.push(message);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_servers_unless_allowed() {
        assert!(check_loopback("ws://127.0.0.1:3030/sync", false).is_ok());
        assert!(check_loopback("ws://localhost:3030", false).is_ok());
        assert!(check_loopback("ws://[::1]:3030", false).is_ok());
        assert!(check_loopback("ws://relay.example:3030/sync", false).is_err());
        assert!(check_loopback("ws://relay.example:3030/sync", true).is_ok());
    }

    #[test]
    fn two_thin_docs_sync_through_each_other() {
        use automerge::transaction::Transactable;
        let id = DocumentId::from_bytes([7; 16]);
        let mut base = automerge::AutoCommit::new();
        base.put(automerge::ROOT, "x", 1).unwrap();
        let base_heads = base.get_heads();
        let (a_id, b_id): (PeerId, PeerId) = ("a".parse().unwrap(), "b".parse().unwrap());
        let mut a = ThinDoc::new(id, a_id.clone(), b_id.clone(), &base_heads);
        let mut b = ThinDoc::new(id, b_id.clone(), a_id.clone(), &base_heads);
        let mut next = base.fork();
        next.put(automerge::ROOT, "x", 2).unwrap();
        let change = next.get_last_local_change().unwrap().clone();
        // b opens; a answers; a then adds a change, which reaches b.
        let Message::Sync(hello) = b.hello(&a_id) else {
            panic!("a base means a sync")
        };
        let mut to_b = a.receive(&hello).unwrap();
        to_b.extend(a.add_local(&change).unwrap());
        let mut delivered = Vec::new();
        for message in to_b {
            let Message::Sync(m) = message else { continue };
            delivered.extend(change_hashes(&m).unwrap().into_iter().map(|c| c.hash));
            b.receive(&m).unwrap();
        }
        assert_eq!(delivered, vec![change.hash()]);
        assert_eq!(b.heads(), vec![change.hash()]);
    }
}
