//! Two and three peers syncing documents through the state machines alone:
//! no sockets, a seeded network that delivers frames in random order across
//! connections (but in order within one, as a WebSocket does).

use std::collections::{BTreeMap, VecDeque};

use automerge::transaction::Transactable;
use automerge::{AutomergeError, ObjType, ROOT, ReadDoc};
use proptest::prelude::*;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use rapport_protocol::ids::{DocumentId, PeerId, UnixMillis};
use rapport_protocol::sync::{DocumentSync, Effect, Origin, PeerPhase, RESEND_AFTER_MILLIS};
use rapport_protocol::wire::{DocMessage, Message};

const DOC: DocumentId = DocumentId::from_bytes([7; 16]);

fn peer(i: usize) -> PeerId {
    format!("peer-{i}").parse().unwrap()
}

/// Replicas of one document and the frames in flight between them.
struct Net {
    replicas: Vec<DocumentSync>,
    links: BTreeMap<(usize, usize), VecDeque<Message>>,
    connected: BTreeMap<(usize, usize), bool>,
    events: Vec<(usize, Effect)>,
    rng: ChaCha8Rng,
    now: UnixMillis,
}

impl Net {
    fn new(docs: Vec<automerge::Automerge>, seed: u64) -> Self {
        let replicas = docs
            .into_iter()
            .enumerate()
            .map(|(i, doc)| DocumentSync::new(DOC, peer(i), doc))
            .collect();
        Self {
            replicas,
            links: BTreeMap::new(),
            connected: BTreeMap::new(),
            events: Vec::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            now: UnixMillis(1_000),
        }
    }

    fn index(&self, id: &PeerId) -> usize {
        (0..self.replicas.len()).find(|&i| &peer(i) == id).unwrap()
    }

    fn connect(&mut self, a: usize, b: usize) {
        self.connected.insert((a, b), true);
        self.connected.insert((b, a), true);
        self.replicas[a].handle_peer_connected(peer(b), self.now);
        self.replicas[b].handle_peer_connected(peer(a), self.now);
        self.collect();
    }

    fn disconnect(&mut self, a: usize, b: usize) {
        for (x, y) in [(a, b), (b, a)] {
            self.connected.insert((x, y), false);
            self.links.remove(&(x, y));
            self.replicas[x].handle_peer_disconnected(&peer(y));
        }
    }

    /// Moves every replica's effects onto the links (or the event log).
    fn collect(&mut self) {
        for i in 0..self.replicas.len() {
            while let Some(effect) = self.replicas[i].poll_effect() {
                match effect {
                    Effect::Send(message) => {
                        let DocMessageTarget(target) = target_of(&message);
                        let j = self.index(&target);
                        if self.connected.get(&(i, j)).copied().unwrap_or(false) {
                            self.links.entry((i, j)).or_default().push_back(message);
                        }
                    }
                    other => self.events.push((i, other)),
                }
            }
        }
    }

    /// Delivers one frame from a random busy link; false when none is busy.
    fn step(&mut self) -> bool {
        let busy: Vec<_> = self
            .links
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(k, _)| *k)
            .collect();
        if busy.is_empty() {
            return false;
        }
        let (from, to) = busy[self.rng.next_u64() as usize % busy.len()];
        let message = self
            .links
            .get_mut(&(from, to))
            .unwrap()
            .pop_front()
            .unwrap();
        self.now = self.now.plus_millis(1);
        let replica = &mut self.replicas[to];
        match message {
            Message::Sync(m) => replica.handle_sync(&m, self.now).unwrap(),
            Message::Request(m) => replica.handle_request(&m, self.now).unwrap(),
            Message::DocUnavailable(m) => replica.handle_unavailable(&m),
            other => panic!("unexpected {other:?}"),
        }
        self.collect();
        true
    }

    fn run_until_quiescent(&mut self) {
        for _ in 0..100_000 {
            if !self.step() {
                return;
            }
        }
        panic!("no quiescence after 100,000 frames");
    }

    fn edit(&mut self, i: usize, key: &str, value: i64) {
        let now = self.now;
        self.replicas[i]
            .handle_local_change(now, |tx| tx.put(ROOT, key, value))
            .unwrap();
        self.collect();
    }

    fn assert_converged(&self) {
        let heads = self.replicas[0].heads();
        for (i, r) in self.replicas.iter().enumerate() {
            assert_eq!(r.heads(), heads, "replica {i} has other heads");
            assert_eq!(
                r.doc().keys(ROOT).collect::<Vec<_>>(),
                self.replicas[0].doc().keys(ROOT).collect::<Vec<_>>(),
                "replica {i} has other keys"
            );
        }
    }
}

struct DocMessageTarget(PeerId);

fn target_of(message: &Message) -> DocMessageTarget {
    DocMessageTarget(match message {
        Message::Sync(m) | Message::Request(m) => m.target_id.clone(),
        Message::DocUnavailable(m) => m.target_id.clone(),
        other => panic!("a document sync sent {other:?}"),
    })
}

fn doc_with_notes(text: &str) -> automerge::Automerge {
    let mut doc = automerge::Automerge::new();
    doc.transact(|tx| {
        let notes = tx.put_object(ROOT, "notes", ObjType::Text)?;
        tx.splice_text(&notes, 0, 0, text)?;
        tx.put(ROOT, "title", "Acme onboarding")?;
        Ok::<_, AutomergeError>(())
    })
    .unwrap();
    doc
}

fn notes(sync: &DocumentSync) -> String {
    let doc = sync.doc();
    let (_, notes) = doc.get(ROOT, "notes").unwrap().unwrap();
    doc.text(&notes).unwrap()
}

#[test]
fn an_empty_peer_requests_and_receives_the_document() {
    let mut net = Net::new(
        vec![doc_with_notes("scope: CRM"), automerge::Automerge::new()],
        1,
    );
    net.connect(0, 1);
    let first = net.links[&(1, 0)].front().unwrap();
    assert!(
        matches!(first, Message::Request(_)),
        "the empty side requests: {first:?}"
    );
    net.run_until_quiescent();
    net.assert_converged();
    assert_eq!(notes(&net.replicas[1]), "scope: CRM");
    assert_eq!(
        net.replicas[1].peer_phase(&peer(0)),
        Some(PeerPhase::Syncing)
    );
    assert!(net.events.iter().any(|(i, e)| *i == 1
        && matches!(e, Effect::Changed { origin: Origin::Remote(p), .. } if *p == peer(0))));
}

#[test]
fn concurrent_offline_edits_both_survive() {
    let mut net = Net::new(
        vec![doc_with_notes("timeline"), automerge::Automerge::new()],
        2,
    );
    net.connect(0, 1);
    net.run_until_quiescent();
    net.disconnect(0, 1);

    let now = net.now;
    for (i, (at, words)) in [(0, "Q3 "), (8, " and budget")].into_iter().enumerate() {
        net.replicas[i]
            .handle_local_change(now, |tx| {
                let (_, notes) = tx.get(ROOT, "notes")?.expect("notes exist");
                tx.splice_text(&notes, at, 0, words)?;
                tx.put(ROOT, "title", format!("edited by {i}"))
            })
            .unwrap();
    }
    net.collect();
    assert_ne!(net.replicas[0].heads(), net.replicas[1].heads());

    net.connect(0, 1);
    net.run_until_quiescent();
    net.assert_converged();
    assert_eq!(notes(&net.replicas[0]), "Q3 timeline and budget");
    assert_eq!(notes(&net.replicas[1]), notes(&net.replicas[0]));
}

#[test]
fn a_live_edit_reaches_the_other_peer() {
    let mut net = Net::new(vec![doc_with_notes("a"), automerge::Automerge::new()], 3);
    net.connect(0, 1);
    net.run_until_quiescent();
    net.edit(1, "stage", 3);
    net.run_until_quiescent();
    net.assert_converged();
    let (value, _) = net.replicas[0].doc().get(ROOT, "stage").unwrap().unwrap();
    assert_eq!(value.as_i64(), Some(3));
}

#[test]
fn unavailable_then_the_document_arrives_later() {
    // Neither side has anything: the request is answered with an empty sync
    // and `doc-unavailable`, as the JS sync server answers.
    let mut net = Net::new(
        vec![automerge::Automerge::new(), automerge::Automerge::new()],
        4,
    );
    net.connect(0, 1);
    net.run_until_quiescent();
    assert!(
        net.events
            .iter()
            .any(|(_, e)| matches!(e, Effect::Unavailable { .. }))
    );

    // Replica 0 gets the document later: the waiting peer receives it.
    net.edit(0, "created", 1);
    net.run_until_quiescent();
    net.assert_converged();
    assert_eq!(net.replicas[1].heads().len(), 1);
}

#[test]
fn a_malformed_sync_message_is_a_typed_error_and_changes_nothing() {
    let mut sync = DocumentSync::new(DOC, peer(0), doc_with_notes("x"));
    let heads = sync.heads();
    let message = DocMessage {
        sender_id: peer(1),
        target_id: peer(0),
        document_id: DOC,
        data: vec![0x42, 0xff, 0xff, 0xff],
    };
    let err = sync.handle_sync(&message, UnixMillis(5)).unwrap_err();
    assert!(
        matches!(
            err,
            rapport_protocol::sync::SyncError::BadSyncMessage { .. }
        ),
        "{err}"
    );
    assert_eq!(sync.heads(), heads);
}

#[test]
fn an_unanswered_message_is_sent_again_after_the_timeout() {
    let mut net = Net::new(vec![doc_with_notes("x"), automerge::Automerge::new()], 5);
    net.connect(0, 1);
    // Lose replica 0's first message.
    let lost = net.links.get_mut(&(0, 1)).unwrap().pop_front();
    assert!(lost.is_some());
    let deadline = net.replicas[0]
        .poll_timeout()
        .expect("a message is in flight");
    assert_eq!(deadline, net.now.plus_millis(RESEND_AFTER_MILLIS));
    net.replicas[0].handle_timeout(UnixMillis(deadline.0 - 1));
    net.collect();
    assert!(net.links[&(0, 1)].is_empty(), "nothing is resent early");
    net.replicas[0].handle_timeout(deadline);
    net.collect();
    assert_eq!(net.links[&(0, 1)].len(), 1, "resent at the deadline");
    net.run_until_quiescent();
    net.assert_converged();
}

#[derive(Debug, Clone)]
enum Op {
    Edit { replica: usize, key: u8, value: i64 },
    Connect(usize, usize),
    Disconnect(usize, usize),
    Deliver(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 0..4u8, any::<i64>()).prop_map(|(replica, key, value)| Op::Edit { replica, key, value }),
        1 => (0..3usize, 0..3usize).prop_map(|(a, b)| Op::Connect(a, b)),
        1 => (0..3usize, 0..3usize).prop_map(|(a, b)| Op::Disconnect(a, b)),
        4 => (1..20u8).prop_map(Op::Deliver),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Three replicas, random edits, partitions and reconnects: once
    /// everyone is connected and the network is quiet, all agree.
    #[test]
    fn three_replicas_always_converge(seed in any::<u64>(), ops in proptest::collection::vec(op(), 0..60)) {
        let docs = vec![doc_with_notes("start"), automerge::Automerge::new(), automerge::Automerge::new()];
        let mut net = Net::new(docs, seed);
        for op in ops {
            match op {
                Op::Edit { replica, key, value } => net.edit(replica, &format!("k{key}"), value),
                Op::Connect(a, b) if a != b && !net.connected.get(&(a, b)).copied().unwrap_or(false) => net.connect(a, b),
                Op::Disconnect(a, b) if a != b && net.connected.get(&(a, b)).copied().unwrap_or(false) => net.disconnect(a, b),
                Op::Deliver(n) => for _ in 0..n { net.step(); },
                _ => {}
            }
        }
        for (a, b) in [(0, 1), (1, 2), (0, 2)] {
            if !net.connected.get(&(a, b)).copied().unwrap_or(false) {
                net.connect(a, b);
            }
        }
        net.run_until_quiescent();
        net.assert_converged();
        prop_assert_eq!(notes(&net.replicas[2]), "start");
    }
}
