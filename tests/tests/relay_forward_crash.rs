//! Issue #15, forward before durable: the relay sends a new change to the
//! other peers while its commit is still under way, and names it among its
//! heads only once the commit is durable.
//!
//! The relay runs in a process of its own with its storage held back
//! (`relay-child stall=FILE`: every write waits while FILE exists, before
//! any byte reaches the database). Peer A types; peer B gets the change
//! though the relay cannot store it; nothing the relay sent names it. The
//! relay is killed with SIGKILL before its commit. Restarted, it lacks the
//! change (it was never stored, and nobody was told it was). B, which got
//! it early, comes back first and offers it; the relay refuses it from B
//! (not B's key) without holding that against the change, and takes it
//! from A, its author, who offers it again. All three end on the same
//! document, the one the relay stores.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use automerge::transaction::Transactable;
use automerge::{Automerge, ChangeHash, ROOT};
use rapport_protocol::ids::DocumentId;
use rapport_protocol::wire::RejectReason;
use rapport_server::storage::Store;
use rapport_tests::child_relay::ChildRelay;
use rapport_tests::peer::{TestPeer, actor_of, key};
use rapport_tests::relay::{TempDir, share};

const DOC: DocumentId = DocumentId::from_bytes([15; 16]);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_forwarded_before_its_commit_survives_a_sigkill_between_them() -> Result<()> {
    let dir = TempDir::new("forward-crash");
    let data = dir.path().join("data");
    let stall = dir.path().join("stall");
    std::fs::create_dir_all(&data)?;
    let mut relay = spawn(&data, vec![format!("stall={}", stall.display())], None).await?;
    let addr = relay.addr;
    let (url, relay_id) = (relay.url(), relay.relay_id.clone());
    tokio::task::block_in_place(|| share(&url, &relay_id, &key(1), &[&key(2), &key(3)], &[DOC]))?;

    let a = open(&relay, 2, "a", Automerge::new()).await?;
    let b = open(&relay, 3, "b", Automerge::new()).await?;
    a.change(DOC, |tx| tx.put(ROOT, "stage", "lead"))?;
    let first = a.with(|s| s.doc(DOC).get_heads());
    a.wait_until(|s| s.acknowledged(DOC, &first)).await?;
    b.wait_until(|s| s.doc(DOC).get_heads() == first).await?;

    // The disk stands still; A types.
    std::fs::write(&stall, b"")?;
    a.change(DOC, |tx| tx.put(ROOT, "stage", "won"))?;
    let second = a.with(|s| s.doc(DOC).get_heads());
    b.wait_until(|s| s.doc(DOC).get_heads() == second)
        .await
        .context("B never got A's change while the relay's commit was held back")?;
    // Whatever else the relay sends meanwhile arrives too.
    a.settle(Duration::from_millis(300)).await;
    relay.sigkill()?;
    for peer in [&a, &b] {
        peer.wait_until(|s| s.closed.is_some()).await?;
        let named: Vec<ChangeHash> = peer.with(|s| s.heads_from_relay(DOC).flatten().collect());
        ensure!(
            !named.contains(&second[0]),
            "{}: the relay named A's change among its heads before storing it",
            peer.peer_id
        );
        ensure!(
            named.contains(&first[0]),
            "{}: the relay never named the first change",
            peer.peer_id
        );
    }
    let (a_doc, b_doc) = (
        a.with(|s| s.doc(DOC).clone()),
        b.with(|s| s.doc(DOC).clone()),
    );
    a.close().await;
    b.close().await;

    // Restarted on the same folder and port, with its disk back.
    std::fs::remove_file(&stall)?;
    let relay = spawn(&data, Vec::new(), Some(addr)).await?;
    let observer = open(&relay, 1, "observer", Automerge::new()).await?;
    observer
        .wait_until(|s| s.acknowledged(DOC, &first) && s.doc(DOC).get_heads() == first)
        .await
        .context("the restarted relay does not hold the first change")?;
    observer.settle(Duration::from_millis(300)).await;
    ensure!(
        observer.with(|s| s.doc(DOC).get_heads()) == first,
        "the relay stored A's change though its commit never ran: the test proved nothing"
    );

    // B comes back first, A's change among what it holds. Actors are bound
    // to keys, so the change is not B's to give: the relay refuses it from
    // B, and keeps no grudge against the change itself...
    let b = open(&relay, 3, "b", b_doc).await?;
    b.wait_until(|s| {
        s.rejected
            .iter()
            .any(|r| r.reason == RejectReason::ActorOfAnotherKey)
    })
    .await
    .context("B's copy of A's change was neither taken nor refused")?;
    // ...so that it takes it from A, its author, who was never told it was
    // stored and offers it again.
    let a = open(&relay, 2, "a", a_doc).await?;
    for peer in [&a, &b, &observer] {
        peer.wait_until(|s| s.acknowledged(DOC, &second) && s.doc(DOC).get_heads() == second)
            .await
            .with_context(|| {
                let state = peer.with(|s| {
                    let heads: Vec<_> = s.heads_from_relay(DOC).collect();
                    format!(
                        "doc heads {:?}; relay named {heads:?}; closed {:?}; rejected {:?}",
                        s.doc(DOC).get_heads(),
                        s.closed,
                        s.rejected
                    )
                });
                format!(
                    "{}: A's change was not stored ({state}; first {first:?} second {second:?})",
                    peer.peer_id
                )
            })?;
    }
    for peer in [&a, &observer] {
        ensure!(
            peer.with(|s| s.rejected.is_empty()),
            "{}: refused",
            peer.peer_id
        );
    }
    for peer in [a, b, observer] {
        peer.close().await;
    }

    relay.stop().await?;
    let stored = Store::open(&data)?.load_automerge(DOC)?;
    ensure!(
        stored.get_heads() == second,
        "the stored document differs from what the peers converged on"
    );
    Ok(())
}

/// `relay-child` on `data` with `args`, on `addr` or any free port.
async fn spawn(
    data: &std::path::Path,
    args: Vec<String>,
    addr: Option<std::net::SocketAddr>,
) -> Result<ChildRelay> {
    ChildRelay::spawn_on(
        env!("CARGO_BIN_EXE_relay-child").into(),
        data.to_owned(),
        args,
        addr.unwrap_or("127.0.0.1:0".parse()?),
    )
    .await
}

/// Key `seed`'s peer with `DOC` open, starting from `doc`.
async fn open(relay: &ChildRelay, seed: u8, name: &str, doc: Automerge) -> Result<TestPeer> {
    let peer = TestPeer::connect_as(&relay.url(), &relay.relay_id, &key(seed), name).await?;
    peer.open(DOC, doc.with_actor(actor_of(&key(seed), 1)));
    Ok(peer)
}
