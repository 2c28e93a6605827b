//! Real automerge peers (the client state machine) syncing through the
//! relay's change-graph engine, on a seeded simulated network.

mod sim;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT};
use proptest::prelude::*;
use rapport_protocol::relay::{RelayDoc, StoredDocument, split_changes};
use rapport_protocol::wire::{Message, RejectReason};
use sim::{DOC, Sim, relay_id, value};

#[test]
fn a_change_reaches_every_other_peer_through_the_relay() {
    let mut sim = Sim::new(
        vec![Automerge::new(), Automerge::new(), Automerge::new()],
        1,
    );
    sim.edit(0, "stage", 1);
    for i in 0..3 {
        sim.connect(i);
    }
    sim.run_until_quiescent();
    sim.assert_converged();
    assert_eq!(value(&sim.clients[2], "stage"), Some(1));

    sim.edit(1, "stage", 2);
    sim.run_until_quiescent();
    sim.assert_converged();
    assert_eq!(value(&sim.clients[0], "stage"), Some(2));
}

#[test]
fn an_unknown_document_is_unavailable_and_arrives_when_created() {
    let mut sim = Sim::new(vec![Automerge::new(), Automerge::new()], 2);
    sim.connect(1);
    sim.run_until_quiescent();
    assert_eq!(sim.relay.len(), 0);
    // Client 1 asked and heard `doc-unavailable`; it stays subscribed.
    sim.edit(0, "created", 1);
    sim.connect(0);
    sim.run_until_quiescent();
    sim.assert_converged();
    assert_eq!(value(&sim.clients[1], "created"), Some(1));
}

#[test]
fn refused_changes_are_reported_and_never_forwarded() {
    let mut sim = Sim::new(vec![Automerge::new(), Automerge::new()], 3);
    sim.edit(0, "ok", 1);
    sim.connect(0);
    sim.connect(1);
    sim.run_until_quiescent();
    let actor = sim.clients[1].doc().get_actor().to_bytes().to_vec();
    sim.banned.push(actor);
    sim.edit(1, "forged", 666);
    sim.run_until_quiescent();
    assert_eq!(
        value(&sim.clients[0], "forged"),
        None,
        "never reached the other peer"
    );
    assert_eq!(sim.relay.len(), 1, "never stored");
    let [Message::Rejected(rejected)] = sim.rejected[1].as_slice() else {
        panic!("expected one rejection, got {:?}", sim.rejected[1]);
    };
    assert_eq!(rejected.reason, RejectReason::ActorOfAnotherKey);
    assert_eq!(rejected.changes.len(), 1);
    assert!(sim.rejected[0].is_empty());
}

#[test]
fn a_new_change_costs_the_same_on_a_long_history() {
    // Two editors in sync on a document take turns typing. What the relay's
    // graph walks cost per keystroke is measured over the 100 keystrokes
    // after the 100th and after the 2,900th: the history grew 29-fold, the
    // cost must not. (Bloom filter false positives now and then add a round
    // trip, so single keystrokes vary a little; averages do not.)
    let mut sim = Sim::new(vec![Automerge::new(), Automerge::new()], 4);
    sim.connect(0);
    sim.connect(1);
    let window = |sim: &mut Sim, from: i64| {
        let before = sim.relay.nodes_walked();
        for n in from..from + 100 {
            sim.edit((n % 2) as usize, "n", n);
            sim.run_until_quiescent();
        }
        (sim.relay.nodes_walked() - before) as f64 / 100.0
    };
    for n in 0..100 {
        sim.edit((n % 2) as usize, "n", n);
        sim.run_until_quiescent();
    }
    let early = window(&mut sim, 100);
    for n in 200..2_900 {
        sim.edit((n % 2) as usize, "n", n);
        sim.run_until_quiescent();
    }
    let late = window(&mut sim, 2_900);
    sim.assert_converged();
    assert!(early <= 20.0, "{early} nodes per keystroke");
    assert!(
        late <= early * 1.5 + 2.0,
        "the cost grew with the history: {early} then {late} nodes per keystroke"
    );
}

/// A relay document as storage holds it after compaction: the first
/// `compacted` changes of `source` in a snapshot, the rest as changes.
fn compacted_relay_doc(source: &Automerge, compacted: usize) -> RelayDoc {
    let all = source.get_changes(&[]);
    let mut snapshot_doc = Automerge::new();
    for change in &all[..compacted] {
        snapshot_doc.load_incremental(change.raw_bytes()).unwrap();
    }
    let stored = StoredDocument {
        snapshot: Some(Arc::from(snapshot_doc.save())),
        compacted: all[..compacted]
            .iter()
            .map(|c| (c.hash(), c.deps().to_vec()))
            .collect(),
        changes: split_changes(all[compacted..].iter().map(|c| c.raw_bytes())).unwrap(),
    };
    let (doc, orphans) = RelayDoc::from_stored(DOC, relay_id(), stored);
    assert_eq!(orphans, 0);
    doc
}

fn counted(n: i64) -> Automerge {
    let mut doc = Automerge::new();
    for i in 0..n {
        doc.transact(|tx| tx.put(ROOT, format!("k{}", i % 7), i))
            .unwrap();
    }
    doc
}

#[test]
fn a_fresh_peer_gets_the_snapshot_and_the_newer_changes() {
    let source = counted(40);
    let relay = compacted_relay_doc(&source, 30);
    let mut sim = Sim::with_relay(relay, vec![Automerge::new()], 6);
    sim.connect(0);
    sim.run_until_quiescent();
    sim.assert_converged();
    assert_eq!(
        sim.clients[0].heads(),
        source
            .get_heads()
            .into_iter()
            .map(Into::into)
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_peer_with_nothing_gets_the_document_saved_whole() {
    let source = counted(200);
    let changes = source.get_changes(&[]);
    let change_bytes: usize = changes.iter().map(|c| c.raw_bytes().len()).sum();
    let stored = StoredDocument {
        changes: split_changes(changes.iter().map(|c| c.raw_bytes())).unwrap(),
        ..StoredDocument::default()
    };
    let (relay, _) = RelayDoc::from_stored(DOC, relay_id(), stored);
    let mut sim = Sim::with_relay(relay, vec![Automerge::new()], 8);
    sim.connect(0);
    sim.run_until_quiescent();
    sim.assert_converged();
    assert_eq!(value(&sim.clients[0], "k3"), Some(199));
    let kept = sim
        .relay
        .take_new_snapshot()
        .expect("the saved document, for storage");
    assert_eq!(kept.hashes.len(), 200);
    let reloaded = Automerge::load(&kept.saved).unwrap();
    assert_eq!(reloaded.get_heads(), source.get_heads());
    assert!(sim.relay.take_new_snapshot().is_none());
    let saved = source.save().len();
    assert!(
        sim.relay_sync_bytes < saved + 1024 && sim.relay_sync_bytes < change_bytes / 2,
        "the relay sent {} bytes; the saved document is {saved}, its changes {change_bytes}",
        sim.relay_sync_bytes
    );
}

#[test]
fn a_fresh_peer_is_told_the_relays_heads_not_a_filter_of_its_history() {
    let source = counted(3000);
    let relay = compacted_relay_doc(&source, 2000);
    let mut sim = Sim::with_relay(relay, vec![Automerge::new()], 9);
    sim.connect(0);
    let request = sim.up[0].pop_front().expect("the client's request");
    sim.relay_receive(0, &request);
    sim.relay.answer();
    sim.collect();
    let Some(Message::Sync(answer)) = sim.down[0].front() else {
        panic!("the relay answers the request");
    };
    let answer = automerge::sync::Message::decode(&answer.data).unwrap();
    let heads = source.get_heads();
    assert_eq!(answer.heads, heads);
    let [have] = answer.have.as_slice() else {
        panic!("one `have`: {:?}", answer.have);
    };
    assert_eq!(have.last_sync, heads);
    assert!(
        have.bloom.to_bytes().is_empty(),
        "a filter of {} bytes",
        have.bloom.to_bytes().len()
    );
    let answered = sim.relay_sync_bytes;
    sim.run_until_quiescent();
    sim.assert_converged();
    assert_eq!(value(&sim.clients[0], "k3"), Some(2999));
    // 3,000 changes make a filter of 3,750 bytes; the answer is the saved
    // document and its envelope.
    let saved = source.save().len();
    assert!(
        answered < saved + 200,
        "the relay sent {answered} bytes; the saved document is {saved}"
    );
}

#[test]
fn a_peer_with_part_of_the_history_gets_the_rest_out_of_the_snapshot() {
    let source = counted(40);
    let relay = compacted_relay_doc(&source, 30);
    let mut partial = Automerge::new();
    for change in &source.get_changes(&[])[..10] {
        partial.load_incremental(change.raw_bytes()).unwrap();
    }
    let mut sim = Sim::with_relay(relay, vec![partial], 7);
    sim.connect(0);
    sim.run_until_quiescent();
    sim.assert_converged();
    assert_eq!(value(&sim.clients[0], "k4"), Some(39));
}

#[derive(Debug, Clone)]
enum Op {
    Edit(usize, u8, i64),
    Connect(usize),
    Disconnect(usize),
    Deliver(u8),
    /// The relay's next store fails.
    FailStore,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..4usize, 0..5u8, any::<i64>()).prop_map(|(i, k, v)| Op::Edit(i, k, v)),
        1 => (0..4usize).prop_map(Op::Connect),
        1 => (0..4usize).prop_map(Op::Disconnect),
        4 => (1..30u8).prop_map(Op::Deliver),
        1 => Just(Op::FailStore),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Four peers through the relay, with random edits, disconnects,
    /// reconnects and failed stores, new changes forwarded before they are
    /// stored or after: once all are online and quiet, all agree with the
    /// relay, and no edit is lost.
    #[test]
    fn peers_through_the_relay_always_converge(seed in any::<u64>(), batched in any::<bool>(), early in any::<bool>(), ops in proptest::collection::vec(op(), 0..80)) {
        let mut sim = Sim::new((0..4).map(|_| Automerge::new()).collect(), seed);
        sim.batched = batched;
        sim.early = early;
        let mut failed = false;
        let mut expected = BTreeMap::new();
        for op in ops {
            match op {
                Op::Edit(i, k, v) => {
                    sim.edit(i, &format!("k{k}"), v);
                    expected.insert(k, ());
                }
                Op::Connect(i) => sim.connect(i),
                Op::Disconnect(i) => sim.disconnect(i),
                Op::Deliver(n) => for _ in 0..n { sim.step(); },
                Op::FailStore => {
                    sim.fail_stores += 1;
                    failed = true;
                }
            }
        }
        sim.fail_stores = 0;
        // A client told its changes were not stored offers them again when
        // it reconnects.
        for i in 0..4 {
            if failed {
                sim.disconnect(i);
            }
            sim.connect(i);
        }
        sim.run_until_quiescent();
        sim.assert_converged();
        for k in expected.keys() {
            let key = format!("k{k}");
            prop_assert!(value(&sim.clients[0], &key).is_some(), "{} lost", key);
        }
    }
}

#[test]
fn a_whole_document_uploaded_is_kept_as_its_snapshot_not_change_by_change() {
    let source = counted(300);
    let mut sim = Sim::new(vec![source.clone(), Automerge::new()], 11);
    sim.connect(0);
    sim.run_until_quiescent();
    assert_eq!(sim.relay.len(), 300);
    assert_eq!(
        sim.relay.change_bytes_in_memory(),
        0,
        "the saved document the peer sent is the snapshot; no change keeps bytes of its own"
    );
    let uploaded = sim.relay_sync_bytes;
    sim.connect(1);
    sim.run_until_quiescent();
    sim.assert_converged();
    assert_eq!(value(&sim.clients[1], "k5"), Some(299));
    let saved = source.save().len();
    assert!(
        sim.relay_sync_bytes - uploaded < saved + 1024,
        "a newcomer got {} bytes; the saved document is {saved}",
        sim.relay_sync_bytes - uploaded
    );
}

#[test]
fn a_compaction_taken_in_memory_lets_the_bytes_go_and_answers_the_same() {
    let source = counted(40);
    let all = source.get_changes(&[]);
    let stored = StoredDocument {
        changes: split_changes(all.iter().map(|c| c.raw_bytes())).unwrap(),
        ..StoredDocument::default()
    };
    let (mut relay, _) = RelayDoc::from_stored(DOC, relay_id(), stored);
    let mut first = Automerge::new();
    for change in &all[..30] {
        first.load_incremental(change.raw_bytes()).unwrap();
    }
    let folded: Vec<_> = all[..30].iter().map(|c| c.hash()).collect();
    relay.adopt_snapshot(Arc::from(first.save()), &folded);
    let rest: usize = all[30..].iter().map(|c| c.raw_bytes().len()).sum();
    assert_eq!(relay.change_bytes_in_memory(), rest);

    // A peer with part of the folded history, one with nothing, and one
    // with all but the newest changes: each ends with the whole document.
    let mut partial = Automerge::new();
    for change in &all[..10] {
        partial.load_incremental(change.raw_bytes()).unwrap();
    }
    let mut nearly = Automerge::new();
    for change in &all[..35] {
        nearly.load_incremental(change.raw_bytes()).unwrap();
    }
    let mut sim = Sim::with_relay(relay, vec![partial, Automerge::new(), nearly], 12);
    for i in 0..3 {
        sim.connect(i);
    }
    sim.run_until_quiescent();
    sim.assert_converged();
    for i in 0..3 {
        assert_eq!(value(&sim.clients[i], "k4"), Some(39));
    }
    // The peer with nothing got the document saved whole, which became
    // the snapshot; the bytes taken out of the old one for the peer with
    // part of it were not kept.
    assert_eq!(
        sim.relay.change_bytes_in_memory(),
        0,
        "no change keeps bytes of its own"
    );
    assert!(sim.relay.take_new_snapshot().is_some());
}

#[test]
fn a_backlog_is_answered_once_a_peer_and_ends_the_same() {
    let mut sim = Sim::new((0..4).map(|_| Automerge::new()).collect(), 21);
    for i in 0..4 {
        sim.connect(i);
    }
    sim.run_until_quiescent();
    // Every peer types three changes before the relay looks.
    for i in 0..4 {
        for n in 0..3 {
            sim.edit(i, &format!("k{i}"), n);
        }
    }
    sim.batched = true;
    let before = sim.relay_sync_bytes;
    assert!(sim.step(), "there is a backlog to take");
    let answers: usize = sim.down.iter().map(VecDeque::len).sum();
    assert_eq!(answers, 4, "one answer a peer for the whole backlog");
    assert!(sim.relay_sync_bytes > before);
    sim.run_until_quiescent();
    sim.assert_converged();
    for i in 0..4 {
        assert_eq!(value(&sim.clients[0], &format!("k{i}")), Some(2));
    }
}
