//! The relay over real sockets on 127.0.0.1: Rust peers converge through it,
//! refused changes stay refused, and everything acknowledged survives a
//! restart.
//!
//! Peers of different keys share a document through a workspace whose
//! members they are ([`TestRelay::share`]), listed before anyone writes it:
//! a document no workspace lists is its first writer's alone.

use anyhow::Result;
use automerge::transaction::Transactable;
use automerge::{Automerge, ObjType, ROOT, ReadDoc};
use rapport_protocol::ids::DocumentId;
use rapport_protocol::wire::RejectReason;
use rapport_server::storage::Store;
use rapport_tests::peer::{TestPeer, actor_of, key};
use rapport_tests::relay::{TempDir, TestRelay};

fn text_of(doc: &Automerge, field: &str) -> Option<String> {
    let (_, id) = doc.get(ROOT, field).ok()??;
    doc.text(&id).ok()
}

fn int_of(doc: &Automerge, field: &str) -> Option<i64> {
    doc.get(ROOT, field).ok()?.and_then(|(v, _)| v.as_i64())
}

/// A customer record with a notes field, made by `key`'s device.
fn record(seed: u8) -> Automerge {
    let mut doc = Automerge::new().with_actor(actor_of(&key(seed), 1));
    doc.transact(|tx| {
        tx.put(ROOT, "name", "Acme Ltd")?;
        let notes = tx.put_object(ROOT, "notes", ObjType::Text)?;
        tx.splice_text(&notes, 0, 0, "Kick-off on Monday.")
    })
    .unwrap();
    doc
}

fn empty_doc(seed: u8, device: u8) -> Automerge {
    Automerge::new().with_actor(actor_of(&key(seed), device))
}

async fn peer(relay: &TestRelay, seed: u8, name: &str) -> Result<TestPeer> {
    TestPeer::connect_as(&relay.url(), &relay.relay_id, &key(seed), name).await
}

/// Lists `id` in a workspace of key `owner` whose staff are the keys
/// `members`.
async fn share(relay: &TestRelay, id: DocumentId, owner: u8, members: &[u8]) -> Result<()> {
    let members: Vec<_> = members.iter().map(|&seed| key(seed)).collect();
    let members: Vec<_> = members.iter().collect();
    relay.share(&key(owner), &members, &[id]).await?;
    Ok(())
}

#[tokio::test]
async fn two_peers_converge_on_concurrent_edits() -> Result<()> {
    let dir = TempDir::new("two-peers");
    let relay = TestRelay::start(dir.path()).await?;
    let id = DocumentId::from_bytes([1; 16]);
    share(&relay, id, 1, &[2]).await?;
    let a = peer(&relay, 1, "a").await?;
    let b = peer(&relay, 2, "b").await?;
    a.open(id, record(1));
    b.open(id, empty_doc(2, 1));
    b.wait_until(|b| text_of(b.doc(id), "notes").is_some())
        .await?;

    // Both edit the same text at once, each at the end of what it has.
    a.change(id, |tx| {
        let (_, notes) = tx.get(ROOT, "notes")?.expect("notes");
        tx.splice_text(&notes, 0, 0, "Budget approved. ")
    })?;
    b.change(id, |tx| {
        let (_, notes) = tx.get(ROOT, "notes")?.expect("notes");
        let end = tx.length(&notes);
        tx.splice_text(&notes, end, 0, " Bring the contract.")
    })?;
    let both = "Budget approved. Kick-off on Monday. Bring the contract.";
    a.wait_until(|a| text_of(a.doc(id), "notes").as_deref() == Some(both))
        .await?;
    b.wait_until(|b| text_of(b.doc(id), "notes").as_deref() == Some(both))
        .await?;
    b.wait_until(|b| b.doc(id).get_heads() == a.with(|a| a.doc(id).get_heads()))
        .await?;
    Ok(())
}

#[tokio::test]
async fn ten_peers_converge() -> Result<()> {
    let dir = TempDir::new("ten-peers");
    let relay = TestRelay::start(dir.path()).await?;
    let id = DocumentId::from_bytes([2; 16]);
    share(&relay, id, 10, &(11..20).collect::<Vec<_>>()).await?;
    let mut peers = Vec::new();
    for i in 0..10u8 {
        let p = peer(&relay, 10 + i, &format!("peer-{i}")).await?;
        p.open(
            id,
            if i == 0 {
                record(10)
            } else {
                empty_doc(10 + i, 1)
            },
        );
        peers.push(p);
    }
    for p in &peers {
        p.wait_until(|p| int_of(p.doc(id), "name").is_none() && p.doc(id).get_heads().len() == 1)
            .await?;
    }
    for (i, p) in peers.iter().enumerate() {
        p.change(id, |tx| tx.put(ROOT, format!("score-{i}"), i as i64))?;
    }
    for p in &peers {
        p.wait_until(|p| (0..10).all(|i| int_of(p.doc(id), &format!("score-{i}")) == Some(i)))
            .await?;
    }
    let heads = peers[0].with(|p| p.doc(id).get_heads());
    for p in &peers {
        assert_eq!(p.with(|p| p.doc(id).get_heads()), heads);
    }
    Ok(())
}

#[tokio::test]
async fn a_peer_that_reconnects_after_a_restart_gets_what_it_missed() -> Result<()> {
    let dir = TempDir::new("restart");
    let mut relay = TestRelay::start(dir.path()).await?;
    let id = DocumentId::from_bytes([3; 16]);
    share(&relay, id, 1, &[2]).await?;
    let a = peer(&relay, 1, "a").await?;
    a.open(id, record(1));
    a.wait_until(|a| a.received.len() >= 2).await?;
    a.change(id, |tx| tx.put(ROOT, "stage", "proposal"))?;
    a.wait_until(|a| a.received.len() >= 3).await?;
    a.close().await;

    relay.restart().await?;

    let b = peer(&relay, 2, "b").await?;
    b.open(id, empty_doc(2, 1));
    b.wait_until(|b| b.doc(id).get(ROOT, "stage").ok().flatten().is_some())
        .await?;
    assert_eq!(
        b.with(|b| text_of(b.doc(id), "notes")).as_deref(),
        Some("Kick-off on Monday.")
    );
    Ok(())
}

#[tokio::test]
async fn a_change_by_another_keys_actor_is_refused_and_never_forwarded() -> Result<()> {
    let dir = TempDir::new("actor");
    let relay = TestRelay::start(dir.path()).await?;
    let id = DocumentId::from_bytes([4; 16]);
    // The forger is a member who may write the document: what refuses its
    // changes is the actor binding, not access.
    share(&relay, id, 1, &[2, 3]).await?;
    let owner = peer(&relay, 1, "owner").await?;
    let watcher = peer(&relay, 3, "watcher").await?;
    owner.open(id, record(1));
    watcher.open(id, empty_doc(3, 1));
    watcher
        .wait_until(|w| w.doc(id).get_heads().len() == 1)
        .await?;

    // Key 2 writes under key 1's self-describing actor.
    let forger = peer(&relay, 2, "forger").await?;
    forger.open(id, Automerge::new().with_actor(actor_of(&key(1), 9)));
    forger
        .wait_until(|f| f.doc(id).get_heads().len() == 1)
        .await?;
    forger.change(id, |tx| tx.put(ROOT, "name", "Forged Inc"))?;
    forger.wait_until(|f| !f.rejected.is_empty()).await?;
    assert_eq!(
        forger.with(|f| f.rejected[0].clone()).reason,
        RejectReason::ActorOfAnotherKey
    );
    assert_eq!(forger.with(|f| f.rejected[0].clone()).changes.len(), 1);

    // And a random (stock) actor first used by key 1 is bound to key 1.
    let stock = automerge::ActorId::random();
    let owner2 = peer(&relay, 1, "owner-2").await?;
    owner2.open(id, Automerge::new().with_actor(stock.clone()));
    owner2
        .wait_until(|o| o.doc(id).get_heads().len() == 1)
        .await?;
    owner2.change(id, |tx| tx.put(ROOT, "stage", "won"))?;
    let forger2 = peer(&relay, 2, "forger-2").await?;
    forger2.open(id, Automerge::new().with_actor(stock));
    forger2
        .wait_until(|f| {
            int_of(f.doc(id), "x").is_none()
                && f.doc(id).get(ROOT, "stage").ok().flatten().is_some()
        })
        .await?;
    forger2.change(id, |tx| tx.put(ROOT, "stage", "lost"))?;
    forger2.wait_until(|f| !f.rejected.is_empty()).await?;
    assert_eq!(
        forger2.with(|f| f.rejected[0].clone()).reason,
        RejectReason::ActorOfAnotherKey
    );

    // The watcher sees the owner's edit and never a forged one.
    watcher
        .wait_until(|w| w.doc(id).get(ROOT, "stage").ok().flatten().is_some())
        .await?;
    watcher.settle(std::time::Duration::from_millis(300)).await;
    let name = watcher.with(|w| {
        w.doc(id)
            .get(ROOT, "name")
            .ok()
            .flatten()
            .map(|(v, _)| v.to_string())
    });
    assert_eq!(name.as_deref(), Some("\"Acme Ltd\""));
    let stage = watcher.with(|w| {
        w.doc(id)
            .get(ROOT, "stage")
            .ok()
            .flatten()
            .map(|(v, _)| v.to_string())
    });
    assert_eq!(stage.as_deref(), Some("\"won\""));
    Ok(())
}

#[tokio::test]
async fn the_redb_file_holds_every_acknowledged_change_after_shutdown() -> Result<()> {
    let dir = TempDir::new("durable");
    let mut relay = TestRelay::start(dir.path()).await?;
    let id = DocumentId::from_bytes([5; 16]);
    let (_a, heads) = counted_to(&relay, id, 20).await?;
    relay.stop().await?;

    let doc = Store::open(dir.path())?.load_automerge(id)?;
    assert_eq!(doc.get_heads(), heads);
    assert_eq!(int_of(&doc, "n"), Some(19));
    Ok(())
}

/// A peer that opened `id` with a record and set its `n` to 0, 1, …
/// `count - 1`, one change each, once the relay has stored them all; and
/// its heads.
async fn counted_to(
    relay: &TestRelay,
    id: DocumentId,
    count: i64,
) -> Result<(TestPeer, Vec<automerge::ChangeHash>)> {
    let a = peer(relay, 1, "a").await?;
    a.open(id, record(1));
    for n in 0..count {
        a.change(id, |tx| tx.put(ROOT, "n", n))?;
    }
    let heads = stored_all(&a, id).await?;
    Ok((a, heads))
}

/// `a`'s heads of `id`, once the relay's answer names them: it has stored
/// everything.
async fn stored_all(a: &TestPeer, id: DocumentId) -> Result<Vec<automerge::ChangeHash>> {
    let heads = a.with(|p| p.doc(id).get_heads());
    a.wait_until(|p| p.acknowledged(id, &heads)).await?;
    Ok(heads)
}

#[tokio::test]
async fn a_document_nobody_has_open_is_saved_whole_as_its_snapshot() -> Result<()> {
    let dir = TempDir::new("idle-snapshot");
    let mut relay = TestRelay::start(dir.path()).await?;
    let id = DocumentId::from_bytes([8; 16]);
    // The record arrives whole (kept as it came); then each change on
    // its own, as typing sends them.
    let a = peer(&relay, 1, "a").await?;
    a.open(id, record(1));
    stored_all(&a, id).await?;
    for n in 0..30 {
        a.change(id, |tx| tx.put(ROOT, "n", n))?;
        stored_all(&a, id).await?;
    }
    let heads = a.with(|p| p.doc(id).get_heads());
    a.close().await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, metrics) = relay.get("/metrics").await?;
        if metrics.contains("rapport_snapshots_kept_total 1") {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the idle document was not saved:\n{metrics}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    relay.stop().await?;
    let stored = Store::open(dir.path())?.load_document(id)?;
    assert!(stored.changes.is_empty(), "every change folded");
    assert_eq!(stored.compacted.len(), 31);
    let snapshot = stored.snapshot.expect("a snapshot");
    let doc = Automerge::load(&snapshot)?;
    assert_eq!(doc.get_heads(), heads);
    assert_eq!(int_of(&doc, "n"), Some(29));
    Ok(())
}

#[tokio::test]
async fn an_unknown_document_is_unavailable_and_arrives_when_it_appears() -> Result<()> {
    let dir = TempDir::new("unavailable");
    let relay = TestRelay::start(dir.path()).await?;
    let id = DocumentId::from_bytes([6; 16]);
    let waiter = peer(&relay, 2, "waiter").await?;
    waiter.open(id, empty_doc(2, 1));
    waiter.wait_until(|w| w.unavailable.contains(&id)).await?;

    // The author lists it for both of them before writing it.
    share(&relay, id, 1, &[2]).await?;
    let author = peer(&relay, 1, "author").await?;
    author.open(id, record(1));
    waiter
        .wait_until(|w| text_of(w.doc(id), "notes").is_some())
        .await?;
    Ok(())
}

#[tokio::test]
async fn compaction_folds_changes_into_a_snapshot_and_loses_nothing() -> Result<()> {
    let dir = TempDir::new("compaction");
    let mut config = rapport_server::Config::new(dir.path());
    config.compact_after_changes = 10;
    let mut relay = TestRelay::start_config(config).await?;
    let id = DocumentId::from_bytes([7; 16]);
    share(&relay, id, 1, &[2, 3]).await?;
    let a = peer(&relay, 1, "a").await?;
    a.open(id, record(1));
    for n in 0..45i64 {
        a.change(id, |tx| tx.put(ROOT, "n", n))?;
    }
    let heads = a.with(|a| a.doc(id).get_heads());
    // Wait until the relay has everything, then for compaction to run.
    let b = peer(&relay, 2, "b").await?;
    b.open(id, empty_doc(2, 1));
    b.wait_until(|b| b.doc(id).get_heads() == heads).await?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        relay.stop().await?;
        let stored = Store::open(dir.path())?.load_document(id)?;
        if stored.snapshot.is_some() && stored.changes.len() < 10 {
            assert_eq!(stored.compacted.len() + stored.changes.len(), 46);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no compaction happened"
        );
        relay.restart().await?;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // After a restart, a fresh peer and a peer with part of the history
    // both get everything, from the snapshot.
    relay.restart().await?;
    let fresh = peer(&relay, 3, "fresh").await?;
    fresh.open(id, empty_doc(3, 1));
    fresh.wait_until(|f| f.doc(id).get_heads() == heads).await?;
    assert_eq!(fresh.with(|f| int_of(f.doc(id), "n")), Some(44));
    Ok(())
}
