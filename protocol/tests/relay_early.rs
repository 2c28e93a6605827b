//! A change forwarded to the other peers before the relay stores it
//! ([`RelayDoc::forward_early`]) is never named among the relay's heads
//! before it is durable, and a relay that dies before its commit loses
//! nothing any peer was told was stored.

mod sim;

use std::collections::VecDeque;

use automerge::{Automerge, ChangeHash};
use rapport_protocol::relay::{ConnId, Prepared, RelayDoc, StoredDocument, split_changes};
use rapport_protocol::wire::{DocMessage, Message, RejectReason};
use sim::{DOC, Sim, relay_id, value};

/// Three peers in sync on one change; then peer 1 types `b = 2`, and the
/// relay has taken it and forwarded it early, but not committed it.
/// Returns the prepared message, the new change's hash, and the document
/// as the relay durably held it before.
fn forwarded_not_stored() -> (Sim, Prepared, ChangeHash, Automerge) {
    let mut sim = Sim::new((0..3).map(|_| Automerge::new()).collect(), 7);
    sim.early = true;
    sim.edit(0, "a", 1);
    for i in 0..3 {
        sim.connect(i);
    }
    sim.run_until_quiescent();
    sim.assert_converged();
    let durable = sim.clients[0].doc().clone();

    sim.edit(1, "b", 2);
    let message = change_message(&mut sim, 1);
    let prepared = take(&mut sim, 1, &message);
    let [change] = prepared.to_store.as_slice() else {
        panic!("one new change to store");
    };
    let hash = change.hash;
    sim.relay.forward_early(&prepared);
    sim.collect();
    (sim, prepared, hash, durable)
}

/// The relay takes client `i`'s `message`, which carries a change, and has
/// not stored it yet.
fn take(sim: &mut Sim, i: usize, message: &DocMessage) -> Prepared {
    sim.relay
        .receive(ConnId(i as u64), message, false, |_| Ok(()))
        .unwrap()
}

/// The relay's commit of `prepared` and its answers, then the network
/// until quiet: everyone ends on the same heads.
fn commit_and_settle(sim: &mut Sim, prepared: Prepared) {
    sim.relay.commit_deferred(prepared);
    sim.relay.answer();
    sim.collect();
    sim.run_until_quiescent();
    sim.assert_converged();
}

/// The next message client `i` sends that carries changes. Its first
/// message after an edit may carry none: automerge leaves out a change the
/// relay's Bloom filter seems to hold (a false positive), and sends it once
/// the relay asks for it.
fn change_message(sim: &mut Sim, i: usize) -> DocMessage {
    for _ in 0..10 {
        let Some(Message::Sync(message)) = sim.up[i].pop_front() else {
            panic!("peer {i} sends a sync message");
        };
        if heads_and_changes(&Message::Sync(message.clone())).1 > 0 {
            return message;
        }
        sim.relay_receive(i, &Message::Sync(message));
        sim.relay.answer();
        sim.collect();
        while !sim.down[i].is_empty() {
            sim.deliver(i);
        }
    }
    panic!("peer {i} never sent its change");
}

/// The heads and the number of change entries of a `sync` message.
fn heads_and_changes(message: &Message) -> (Vec<ChangeHash>, usize) {
    let Message::Sync(m) = message else {
        panic!("expected sync, got {message:?}");
    };
    let decoded = automerge::sync::Message::decode(&m.data).unwrap();
    (decoded.heads, decoded.changes.iter().count())
}

#[test]
fn a_change_forwarded_early_reaches_the_others_without_being_named_a_head() {
    let (mut sim, _prepared, hash, _) = forwarded_not_stored();
    assert!(
        sim.down[1].is_empty(),
        "the sender hears nothing before the commit"
    );
    for i in [0, 2] {
        let [message] = sim.down[i].make_contiguous() else {
            panic!("peer {i} gets one message, got {:?}", sim.down[i]);
        };
        let (heads, changes) = heads_and_changes(message);
        assert_eq!(changes, 1, "peer {i} gets the change");
        assert!(
            !heads.contains(&hash),
            "and the relay does not name it a head"
        );
        assert_eq!(heads, sim.relay.heads(), "it names its durable heads");
        sim.deliver(i);
        assert_eq!(value(&sim.clients[i], "b"), Some(2));
    }
    assert!(!sim.relay.contains(&hash));
}

#[test]
fn after_the_commit_the_heads_name_it_and_it_is_not_sent_again() {
    let (mut sim, prepared, hash, _) = forwarded_not_stored();
    sim.deliver(0);
    sim.deliver(2);
    // Peers 0 and 2 answer the early forward with heads that hold the
    // change; the relay takes those after its commit, as the server does
    // (the document is locked until then), and only then answers.
    sim.relay.commit_deferred(prepared);
    for i in [0, 2] {
        let reply = sim.up[i].pop_front().expect("the peer answers");
        sim.relay_receive(i, &reply);
    }
    sim.relay.answer();
    sim.collect();
    // The sender's acknowledgement goes at once; the others hear the new
    // heads a little later, once for however many changes came meanwhile.
    assert_eq!(sim.down[1].len(), 1, "the sender is acknowledged");
    assert!(sim.down[0].is_empty() && sim.down[2].is_empty());
    assert!(sim.relay.owes_heads());
    sim.relay.answer_owed();
    sim.collect();
    assert!(!sim.relay.owes_heads());
    for i in 0..3 {
        let message = sim.down[i].front().expect("an answer after the commit");
        let (heads, changes) = heads_and_changes(message);
        assert!(heads.contains(&hash), "peer {i} hears the relay holds it");
        assert_eq!(changes, 0, "peer {i} does not get the change a second time");
        sim.deliver(i);
    }
    sim.run_until_quiescent();
    sim.assert_converged();
}

#[test]
fn a_relay_that_dies_before_its_commit_loses_nothing() {
    let (mut sim, prepared, hash, durable) = forwarded_not_stored();
    sim.deliver(0);
    sim.deliver(2);
    drop(prepared);
    // Every head the relay named so far is in what it stored.
    let named: Vec<ChangeHash> = durable.get_heads();
    assert_eq!(sim.relay.heads(), named);

    // The relay starts again from what storage held; every connection
    // drops and comes back.
    for i in 0..3 {
        sim.disconnect(i);
    }
    sim.relay = restarted_from(&durable);
    assert!(!sim.relay.contains(&hash), "the change was never stored");
    for i in 0..3 {
        sim.connect(i);
    }
    sim.run_until_quiescent();
    sim.assert_converged();
    assert!(sim.relay.contains(&hash), "the peers gave the change back");
    for i in 0..3 {
        assert_eq!(value(&sim.clients[i], "b"), Some(2));
    }
}

#[test]
fn a_change_forwarded_early_and_not_stored_comes_back_from_the_peers_that_got_it() {
    let (mut sim, prepared, hash, _) = forwarded_not_stored();
    sim.deliver(0);
    sim.deliver(2);
    sim.relay.abort(prepared, RejectReason::StorageUnavailable);
    sim.collect();
    assert_eq!(sim.rejected[1].len(), 1, "the sender is told");
    // Peers 0 and 2 tell the relay their heads, which name a change the
    // relay lacks: it asks for it, and stores it from them.
    sim.run_until_quiescent();
    assert!(sim.relay.contains(&hash));
    sim.assert_converged();
}

#[test]
fn a_peer_that_lags_gets_the_change_only_with_the_commit() {
    let mut sim = Sim::new((0..3).map(|_| Automerge::new()).collect(), 8);
    sim.early = true;
    sim.edit(0, "a", 1);
    for i in 0..3 {
        sim.connect(i);
    }
    sim.run_until_quiescent();
    // Peer 2 goes away for a moment; peer 0 types while it is gone.
    sim.disconnect(2);
    sim.edit(0, "a", 2);
    sim.run_until_quiescent();
    sim.connect(2);
    // The relay hears where peer 2 stands but has not answered it yet when
    // peer 1 types.
    let hello = sim.up[2].pop_front().expect("peer 2 says where it stands");
    sim.relay_receive(2, &hello);
    sim.edit(1, "b", 3);
    let message = change_message(&mut sim, 1);
    let prepared = take(&mut sim, 1, &message);
    sim.relay.forward_early(&prepared);
    sim.collect();
    assert_eq!(
        sim.down[0].len(),
        1,
        "peer 0 is up to date: forwarded at once"
    );
    assert!(
        sim.down[2].is_empty(),
        "peer 2 could not apply it yet: it waits for the commit"
    );
    commit_and_settle(&mut sim, prepared);
    assert_eq!(value(&sim.clients[2], "b"), Some(3));
}

#[test]
fn a_change_refused_from_one_peer_is_still_taken_from_its_author() {
    let (mut sim, prepared, hash, _) = forwarded_not_stored();
    sim.bind_actors = true;
    sim.deliver(0);
    sim.deliver(2);
    sim.relay.abort(prepared, RejectReason::StorageUnavailable);
    sim.collect();
    // Peers 0 and 2 offer peer 1's change back; it is not theirs to give.
    sim.run_until_quiescent();
    assert!(!sim.relay.contains(&hash));
    assert!(
        !sim.rejected[0].is_empty() || !sim.rejected[2].is_empty(),
        "the change was offered back and refused"
    );
    // Its author, told it was not stored, offers it when it reconnects.
    sim.disconnect(1);
    sim.connect(1);
    sim.run_until_quiescent();
    assert!(sim.relay.contains(&hash), "taken from its author");
    sim.assert_converged();
}

#[test]
fn changes_made_on_top_of_a_change_refused_from_their_writer_land_once_its_author_gives_it() {
    let (mut sim, prepared, hash, durable) = forwarded_not_stored();
    sim.bind_actors = true;
    sim.deliver(0);
    drop(prepared);
    // The relay dies before its commit; peer 0 types on top of peer 1's
    // change meanwhile, offline.
    for i in 0..3 {
        sim.disconnect(i);
    }
    sim.relay = restarted_from(&durable);
    sim.edit(0, "c", 3);
    let own = sim.clients[0].doc().get_heads();
    // Peer 0 comes back first and offers both changes: the one is not its
    // to give, the other is its own.
    sim.connect(0);
    sim.run_until_quiescent();
    assert!(!sim.relay.contains(&hash));
    let refused: Vec<_> = sim.rejected[0]
        .iter()
        .flat_map(|m| match m {
            Message::Rejected(r) => r.changes.clone(),
            _ => Vec::new(),
        })
        .collect();
    assert_eq!(
        refused,
        vec![hash.into()],
        "only the change that is not peer 0's own is refused"
    );
    // Peer 1, the author, offers its change when it comes back: peer 0's
    // own change on top of it lands too, without peer 0 doing anything.
    sim.connect(1);
    sim.connect(2);
    sim.run_until_quiescent();
    assert!(sim.relay.contains(&hash), "taken from its author");
    assert!(sim.relay.contains(&own[0]), "peer 0's own change landed");
    sim.assert_converged();
}

/// The relay as it starts again from storage that holds `durable`.
fn restarted_from(durable: &Automerge) -> RelayDoc {
    let changes = durable.get_changes(&[]);
    let stored = StoredDocument {
        changes: split_changes(changes.iter().map(|c| c.raw_bytes())).unwrap(),
        ..StoredDocument::default()
    };
    let (relay, orphans) = RelayDoc::from_stored(DOC, relay_id(), stored);
    assert_eq!(orphans, 0);
    relay
}

/// Runs the network until quiet, leaving client `skip` out: the relay
/// sends to it, and it never reads. The owed-heads timer fires between
/// rounds if `ticks`.
fn run_without(sim: &mut Sim, skip: usize, ticks: bool) {
    loop {
        let mut progress = false;
        for i in (0..sim.clients.len()).filter(|&i| i != skip) {
            while let Some(message) = sim.up[i].pop_front() {
                sim.relay_receive(i, &message);
                progress = true;
            }
        }
        sim.relay.answer();
        if ticks {
            sim.relay.answer_owed();
        }
        sim.collect();
        for i in (0..sim.clients.len()).filter(|&i| i != skip) {
            while !sim.down[i].is_empty() {
                sim.deliver(i);
                progress = true;
            }
        }
        if !progress {
            return;
        }
    }
}

#[test]
fn a_peer_far_behind_gets_new_changes_only_with_the_commit() {
    let mut sim = Sim::new((0..3).map(|_| Automerge::new()).collect(), 9);
    sim.early = true;
    for i in 0..3 {
        sim.connect(i);
    }
    sim.run_until_quiescent();
    // Peer 2 stops reading while peer 0 types a hundred changes.
    for n in 0..100 {
        sim.edit(0, "n", n);
        run_without(&mut sim, 2, true);
    }
    assert!(
        !sim.down[2].is_empty(),
        "the relay sent peer 2 what it could"
    );
    sim.edit(1, "late", 1);
    let message = change_message(&mut sim, 1);
    let prepared = take(&mut sim, 1, &message);
    let queued = sim.down[2].len();
    sim.relay.forward_early(&prepared);
    sim.collect();
    assert_eq!(sim.down[0].len(), 1, "peer 0 keeps up: forwarded at once");
    assert_eq!(
        sim.down[2].len(),
        queued,
        "peer 2 is far behind: no early message, whose Bloom filter would cover its whole lag"
    );
    commit_and_settle(&mut sim, prepared);
    assert_eq!(value(&sim.clients[2], "late"), Some(1));
}

#[test]
fn a_peer_that_lags_costs_the_relay_the_same_per_change_however_far_behind() {
    // Peer 2 stops reading while peer 0 types `lag` changes, then reads
    // everything and catches up. What the relay's graph walks cost over
    // the whole of it, per change typed, must not grow with the lag: each
    // answer looks at what is new to the peer since the last one, and its
    // filter is made of what the peer was sent, without a walk.
    let per_change = |lag: i64| {
        let mut sim = Sim::new((0..3).map(|_| Automerge::new()).collect(), 10);
        sim.early = true;
        for i in 0..3 {
            sim.connect(i);
        }
        sim.run_until_quiescent();
        let before = sim.relay.nodes_walked();
        for n in 0..lag {
            sim.edit(0, "n", n);
            run_without(&mut sim, 2, true);
        }
        sim.run_until_quiescent();
        sim.assert_converged();
        assert_eq!(value(&sim.clients[2], "n"), Some(lag - 1));
        (sim.relay.nodes_walked() - before) as f64 / lag as f64
    };
    let short = per_change(100);
    let long = per_change(400);
    assert!(
        long <= short * 1.5 + 2.0,
        "the cost per change grew with the lag: {short} then {long} nodes"
    );
}

#[test]
fn the_answers_after_a_commit_walk_nothing_for_peers_that_got_it_early() {
    // One of sixteen peers in sync types; each keystroke reaches the other
    // fifteen before its commit. The commit's answers then owe them
    // nothing, and finding that out must not cost a walk of the graph for
    // each of them (from every head down to what the peer holds).
    let peers = 16;
    let mut sim = Sim::new((0..peers).map(|_| Automerge::new()).collect(), 13);
    sim.early = true;
    sim.edit(0, "n", 0);
    for i in 0..peers {
        sim.connect(i);
    }
    sim.run_until_quiescent();
    let mut walked = 0;
    for n in 1..=50 {
        sim.edit(0, "n", n);
        let message = change_message(&mut sim, 0);
        let prepared = take(&mut sim, 0, &message);
        let queued: usize = sim.down.iter().map(VecDeque::len).sum();
        sim.relay.forward_early(&prepared);
        sim.collect();
        let forwarded: usize = sim.down.iter().map(VecDeque::len).sum::<usize>() - queued;
        assert_eq!(
            forwarded,
            peers - 1,
            "keystroke {n} went to the others early"
        );
        let before = sim.relay.nodes_walked();
        sim.relay.commit_deferred(prepared);
        sim.relay.answer();
        walked += sim.relay.nodes_walked() - before;
        sim.collect();
        sim.run_until_quiescent();
    }
    sim.assert_converged();
    let per_keystroke = walked as f64 / 50.0;
    assert!(
        per_keystroke <= 4.0,
        "{per_keystroke} nodes walked by a commit's answers"
    );
}

/// Three peers in sync; then peer 2 stops reading while peer 0 types
/// `lag` changes, and the owed-heads timer does not fire.
fn peer_2_behind_by(lag: i64, seed: u64) -> Sim {
    let mut sim = Sim::new((0..3).map(|_| Automerge::new()).collect(), seed);
    sim.early = true;
    for i in 0..3 {
        sim.connect(i);
    }
    sim.run_until_quiescent();
    for n in 0..lag {
        sim.edit(0, "n", n);
        run_without(&mut sim, 2, false);
    }
    sim
}

/// Peer 2 reads the oldest message the relay sent it, and the relay takes
/// its reply and answers; the relay's messages to it meanwhile.
fn peer_2_reads_one(sim: &mut Sim) -> Vec<Message> {
    sim.deliver(2);
    let before = sim.down[2].len();
    while let Some(message) = sim.up[2].pop_front() {
        sim.relay_receive(2, &message);
    }
    sim.relay.answer();
    sim.collect();
    sim.down[2].iter().skip(before).cloned().collect()
}

#[test]
fn a_peer_that_lags_hears_from_the_relay_when_it_answers_or_the_timer_fires() {
    let mut sim = peer_2_behind_by(100, 11);
    let queued = sim.down[2].len();
    for n in 100..120 {
        sim.edit(0, "n", n);
        run_without(&mut sim, 2, false);
    }
    assert_eq!(
        sim.down[2].len(),
        queued,
        "peer 2 lags with a message on its way: the relay waits"
    );
    assert!(sim.relay.owes_heads(), "and arms the timer");
    sim.relay.answer_owed();
    sim.collect();
    let sent: Vec<Message> = sim.down[2].iter().skip(queued).cloned().collect();
    assert_eq!(sent.len(), 1, "one message when the timer fires");
    assert!(
        heads_and_changes(&sent[0]).1 > 0,
        "carrying the changes typed meanwhile"
    );
    // Peer 2 reads its oldest message and answers: the relay answers that.
    assert_eq!(
        peer_2_reads_one(&mut sim).len(),
        1,
        "one answer to its message"
    );
    sim.run_until_quiescent();
    sim.assert_converged();
    assert_eq!(value(&sim.clients[2], "n"), Some(119));
}

#[test]
fn the_filter_sent_to_a_peer_that_lags_covers_what_it_was_sent_not_its_lag() {
    // automerge's filter would hold all 400 changes peer 2 has not
    // confirmed (10 bits each: 500 bytes); peer 2 holds at most what it
    // was sent, which is all it could offer back: a few dozen, since the
    // owed-heads timer did not fire (each tick sends a lagging peer what
    // is new, and the filter then grows with that).
    let mut sim = peer_2_behind_by(400, 12);
    let answer = peer_2_reads_one(&mut sim);
    let Some(Message::Sync(message)) = answer.first() else {
        panic!("the relay answers peer 2: {answer:?}");
    };
    let decoded = automerge::sync::Message::decode(&message.data).unwrap();
    let bloom = decoded.have[0].bloom.to_bytes().len();
    assert!(bloom < 150, "a filter of {bloom} bytes");
    sim.run_until_quiescent();
    sim.assert_converged();
    assert_eq!(value(&sim.clients[2], "n"), Some(399));
}
