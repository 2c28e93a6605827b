//! A seeded simulated network: real automerge peers (the client state
//! machine) syncing through the relay's change-graph engine.

use std::collections::VecDeque;

use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT, ReadDoc};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use rapport_protocol::ids::{DocumentId, PeerId, UnixMillis};

use rapport_protocol::relay::{ConnId, RelayDoc, RelayEffect};
use rapport_protocol::sync::{DocumentSync, Effect};
use rapport_protocol::wire::{Message, RejectReason};

pub(crate) const DOC: DocumentId = DocumentId::from_bytes([9; 16]);

pub(crate) fn relay_id() -> PeerId {
    "relay".parse().unwrap()
}

pub(crate) fn client_id(i: usize) -> PeerId {
    format!("client-{i}").parse().unwrap()
}

pub(crate) struct Sim {
    pub(crate) relay: RelayDoc,
    pub(crate) clients: Vec<DocumentSync>,
    pub(crate) online: Vec<bool>,
    /// Per client: frames to the relay, frames from the relay.
    pub(crate) up: Vec<VecDeque<Message>>,
    pub(crate) down: Vec<VecDeque<Message>>,
    pub(crate) rejected: Vec<Vec<Message>>,
    /// Bytes of every sync message the relay sent.
    pub(crate) relay_sync_bytes: usize,
    /// Actors the relay refuses.
    pub(crate) banned: Vec<Vec<u8>>,
    /// The relay takes every queued message before answering, as the
    /// server does with a backlog ([`RelayDoc::commit_deferred`]).
    pub(crate) batched: bool,
    /// The relay forwards new changes before they are stored
    /// ([`RelayDoc::forward_early`]), as the server does.
    pub(crate) early: bool,
    /// A change is refused unless it comes from the client whose actor
    /// made it, as the server binds actors to keys.
    pub(crate) bind_actors: bool,
    /// How many of the next stores fail ([`RelayDoc::abort`]).
    pub(crate) fail_stores: usize,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) now: UnixMillis,
}

impl Sim {
    pub(crate) fn new(docs: Vec<Automerge>, seed: u64) -> Self {
        Self::with_relay(RelayDoc::new(DOC, relay_id()), docs, seed)
    }

    pub(crate) fn with_relay(relay: RelayDoc, docs: Vec<Automerge>, seed: u64) -> Self {
        let n = docs.len();
        Self {
            relay,
            clients: docs
                .into_iter()
                .enumerate()
                .map(|(i, d)| DocumentSync::new(DOC, client_id(i), d))
                .collect(),
            online: vec![false; n],
            up: vec![VecDeque::new(); n],
            down: vec![VecDeque::new(); n],
            rejected: vec![Vec::new(); n],
            relay_sync_bytes: 0,
            banned: Vec::new(),
            batched: false,
            early: false,
            bind_actors: false,
            fail_stores: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
            now: UnixMillis(0),
        }
    }

    pub(crate) fn connect(&mut self, i: usize) {
        if self.online[i] {
            return;
        }
        self.online[i] = true;
        self.relay.add_peer(ConnId(i as u64), client_id(i));
        self.clients[i].handle_peer_connected(relay_id(), self.now);
        self.collect();
    }

    pub(crate) fn disconnect(&mut self, i: usize) {
        if !self.online[i] {
            return;
        }
        self.online[i] = false;
        self.up[i].clear();
        self.down[i].clear();
        self.relay.remove_peer(ConnId(i as u64));
        self.clients[i].handle_peer_disconnected(&relay_id());
    }

    pub(crate) fn collect(&mut self) {
        for i in 0..self.clients.len() {
            while let Some(effect) = self.clients[i].poll_effect() {
                if let Effect::Send(m) = effect
                    && self.online[i]
                {
                    self.up[i].push_back(m);
                }
            }
        }
        while let Some(RelayEffect::Send { conn, message }) = self.relay.poll_effect() {
            let i = conn.0 as usize;
            if let Message::Sync(sync) = &message {
                self.relay_sync_bytes += sync.data.len();
            }
            if matches!(message, Message::Rejected(_)) {
                self.rejected[i].push(message);
            } else if self.online[i] {
                self.down[i].push_back(message);
            }
        }
    }

    pub(crate) fn step(&mut self) -> bool {
        let busy: Vec<(usize, bool)> = (0..self.clients.len())
            .flat_map(|i| [(i, true), (i, false)])
            .filter(|&(i, up)| {
                if up {
                    !self.up[i].is_empty()
                } else {
                    !self.down[i].is_empty()
                }
            })
            .collect();
        if busy.is_empty() {
            // Quiet: the relay tells peers owed its heads, as the server
            // does a short while after its commits.
            if !self.relay.owes_heads() {
                return false;
            }
            self.relay.answer_owed();
            self.collect();
            return true;
        }
        let (i, up) = busy[self.rng.next_u64() as usize % busy.len()];
        self.now = self.now.plus_millis(1);
        if up && self.batched {
            for i in 0..self.clients.len() {
                while let Some(message) = self.up[i].pop_front() {
                    self.relay_receive(i, &message);
                }
            }
            self.relay.answer();
        } else if up {
            let message = self.up[i].pop_front().unwrap();
            self.relay_receive(i, &message);
            self.relay.answer();
        } else {
            self.deliver(i);
        }
        self.collect();
        true
    }

    /// Client `i` takes the next message the relay sent it.
    pub(crate) fn deliver(&mut self, i: usize) {
        let message = self.down[i].pop_front().expect("a message for the client");
        let client = &mut self.clients[i];
        match message {
            Message::Sync(m) => client.handle_sync(&m, self.now).unwrap(),
            Message::DocUnavailable(m) => client.handle_unavailable(&m),
            other => panic!("relay sent {other:?}"),
        }
        self.collect();
    }

    /// The relay takes one message from client `i`, without answering:
    /// stores its changes, or fails to ([`Sim::fail_stores`]).
    pub(crate) fn relay_receive(&mut self, i: usize, message: &Message) {
        let (Message::Sync(m) | Message::Request(m)) = message else {
            panic!("client sent {message:?}");
        };
        let banned = self.banned.clone();
        let own = self.clients[i].doc().get_actor().to_bytes().to_vec();
        let bind_actors = self.bind_actors;
        let prepared = self
            .relay
            .receive(
                ConnId(i as u64),
                m,
                matches!(message, Message::Request(_)),
                |change| {
                    if banned.contains(&change.actor) || (bind_actors && change.actor != own) {
                        Err(RejectReason::ActorOfAnotherKey)
                    } else {
                        Ok(())
                    }
                },
            )
            .unwrap();
        if self.early {
            self.relay.forward_early(&prepared);
        }
        if self.fail_stores > 0 && !prepared.to_store.is_empty() {
            self.fail_stores -= 1;
            self.relay.abort(prepared, RejectReason::StorageUnavailable);
        } else {
            self.relay.commit_deferred(prepared);
        }
    }

    pub(crate) fn run_until_quiescent(&mut self) {
        for _ in 0..200_000 {
            if !self.step() {
                return;
            }
        }
        panic!("no quiescence");
    }

    pub(crate) fn edit(&mut self, i: usize, key: &str, value: i64) {
        let now = self.now;
        self.clients[i]
            .handle_local_change(now, |tx| tx.put(ROOT, key, value))
            .unwrap();
        self.collect();
    }

    pub(crate) fn assert_converged(&self) {
        let heads: Vec<_> = self.relay.heads().into_iter().map(Into::into).collect();
        for (i, c) in self.clients.iter().enumerate() {
            assert_eq!(c.heads(), heads, "client {i} differs from the relay");
            if self.online[i] {
                assert!(
                    c.is_in_sync_with(&relay_id()),
                    "client {i} was not told the relay holds its heads"
                );
            }
        }
    }
}

pub(crate) fn value(sync: &DocumentSync, key: &str) -> Option<i64> {
    sync.doc()
        .get(ROOT, key)
        .unwrap()
        .and_then(|(v, _)| v.as_i64())
}
