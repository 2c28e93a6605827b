//! Queued sync messages received as one give the same document as
//! received one by one, whatever the edits and however the queue was cut.

use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, Change, ChangeHash, ROOT, ReadDoc};
use proptest::prelude::*;
use rapport_protocol::ids::{DocumentId, UnixMillis};
use rapport_protocol::sync::DocumentSync;
use rapport_protocol::sync::merge::merge_runs;
use rapport_protocol::wire::DocMessage;

const DOC: [u8; 16] = [9; 16];

/// One step of three writers: who writes what, and whether they first
/// take in what the others wrote.
#[derive(Debug, Clone)]
struct Step {
    writer: usize,
    merge_first: bool,
    key: u8,
    value: i64,
}

fn step() -> impl Strategy<Value = Step> {
    (0..3usize, any::<bool>(), 0..4u8, any::<i64>()).prop_map(
        |(writer, merge_first, key, value)| Step {
            writer,
            merge_first,
            key,
            value,
        },
    )
}

/// The changes the writers make, in an order a relay forwards them (each
/// after the changes it depends on).
fn changes(steps: &[Step]) -> Vec<Change> {
    let mut writers: Vec<Automerge> = (0..3u8)
        .map(|n| Automerge::new().with_actor(ActorId::from(vec![n + 1; 16])))
        .collect();
    let mut order = Vec::new();
    for step in steps {
        if step.merge_first {
            let others: Vec<Change> = order.clone();
            let doc = &mut writers[step.writer];
            doc.apply_changes(others).unwrap();
        }
        let doc = &mut writers[step.writer];
        let before = doc.get_heads();
        let mut tx = doc.transaction();
        tx.put(ROOT, format!("k{}", step.key), step.value).unwrap();
        tx.put(
            ROOT,
            format!("list{}", step.writer),
            format!("{}:{}", step.writer, step.value),
        )
        .unwrap();
        tx.commit();
        order.extend(doc.get_changes(&before));
    }
    order
}

/// A relay's sync message carrying `change`, with `heads` as its heads.
fn message(change: &Change, heads: Vec<ChangeHash>) -> DocMessage {
    let data = automerge::sync::Message {
        heads,
        need: Vec::new(),
        have: Vec::new(),
        changes: automerge::sync::ChunkList::from(vec![change.raw_bytes().to_vec()]),
        flags: None,
        version: automerge::sync::MessageVersion::V1,
    };
    DocMessage {
        sender_id: "relay".parse().unwrap(),
        target_id: "replica".parse().unwrap(),
        document_id: DocumentId::from_bytes(DOC),
        data: data.encode(),
    }
}

fn replica() -> DocumentSync {
    DocumentSync::new(
        DocumentId::from_bytes(DOC),
        "replica".parse().unwrap(),
        Automerge::new(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn merged_runs_give_what_one_at_a_time_gives(
        steps in proptest::collection::vec(step(), 1..24),
        cuts in proptest::collection::vec(any::<bool>(), 24),
    ) {
        let changes = changes(&steps);
        // The relay's heads after each change it forwards.
        let mut relay = Automerge::new();
        let mut messages = Vec::new();
        for change in &changes {
            relay.apply_changes([change.clone()]).unwrap();
            messages.push(message(change, relay.get_heads()));
        }
        let now = UnixMillis(1);

        let mut one_by_one = replica();
        for m in &messages {
            one_by_one.handle_sync(m, now).unwrap();
        }
        // The queue, cut into runs at random: each run arrives merged.
        let mut batched = replica();
        let mut queue = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            queue.push(m.clone());
            if cuts[i % cuts.len()] || i + 1 == messages.len() {
                let merged = merge_runs(std::mem::take(&mut queue));
                prop_assert_eq!(merged.len(), 1);
                for m in &merged {
                    batched.handle_sync(m, now).unwrap();
                }
            }
        }
        prop_assert_eq!(one_by_one.doc().get_heads(), relay.get_heads());
        prop_assert_eq!(batched.doc().get_heads(), relay.get_heads());
        let values = |doc: &Automerge| -> Vec<String> {
            doc.keys(ROOT)
                .map(|k| format!("{k}={:?}", doc.get(ROOT, &k).unwrap().map(|(v, _)| v.to_string())))
                .collect()
        };
        prop_assert_eq!(values(one_by_one.doc()), values(batched.doc()));
    }
}

#[test]
fn runs_of_different_senders_or_documents_stay_apart() {
    let mut doc = Automerge::new().with_actor(ActorId::from(vec![1; 16]));
    let mut tx = doc.transaction();
    tx.put(ROOT, "a", 1).unwrap();
    tx.commit();
    let change = doc.get_changes(&[]).into_iter().next().unwrap();
    let a = message(&change, doc.get_heads());
    let mut b = a.clone();
    b.sender_id = "other".parse().unwrap();
    let mut c = a.clone();
    c.document_id = DocumentId::from_bytes([8; 16]);
    let merged = merge_runs(vec![a.clone(), a.clone(), b.clone(), c.clone(), c.clone()]);
    assert_eq!(merged.len(), 3);
    assert_eq!(merged[1], b);
    // A message that does not decode is passed on as it came.
    let mut bad = a.clone();
    bad.data = vec![0xff, 0x00];
    assert_eq!(merge_runs(vec![a.clone(), bad.clone()]), vec![a, bad]);
}
