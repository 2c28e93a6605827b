//! Ephemeral messages, sent each under a new and long session id, leave
//! nothing behind in the relay. Memory is measured for the whole process,
//! so this file holds this one test.

use std::time::Duration;

use anyhow::{Result, ensure};
use futures_util::{SinkExt, StreamExt};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rapport_protocol::ids::DocumentId;
use rapport_protocol::wire::{Ephemeral, Message};
use rapport_server::{AuthMode, Limits};
use rapport_tests::hostile::frames::request;
use rapport_tests::hostile::socket::{joined, read_until, send};
use rapport_tests::hostile::{GOOD, peer_id};
use rapport_tests::process::rss_kib;
use rapport_tests::relay::{TempDir, TestRelay};
use tokio_tungstenite::tungstenite;

/// The relay keeps the last `count` of each `senderId:sessionId` seen on a
/// document to drop stale ephemeral messages. Those entries must not pile
/// up: a peer that sends each message under a new (and long) session id
/// must not make the relay hold what it sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_session_ids_do_not_pile_up() -> Result<()> {
    const MESSAGES: usize = 300;
    const SESSION_BYTES: usize = 128 * 1024;
    const GROWTH_LIMIT_KIB: u64 = 12 * 1024;
    let dir = TempDir::new("hostile-ephemeral");
    let limits = Limits {
        max_frame_bytes: 1024 * 1024,
        ..Limits::default()
    };
    let relay = TestRelay::start_with(dir.path(), AuthMode::Token, limits).await?;
    // A peer keeps the document open and reads (and drops) what comes.
    let mut holder = joined(&relay, 1, "holder").await?;
    holder
        .send(tungstenite::Message::binary(
            request("holder", GOOD).encode(),
        ))
        .await?;
    let reading = tokio::spawn(async move {
        let mut frames = 0usize;
        while let Some(Ok(_)) = holder.next().await {
            frames += 1;
        }
        frames
    });
    let mut sender = joined(&relay, 2, "sender").await?;
    send(
        &mut sender,
        request("sender", DocumentId::from_bytes([1; 16])),
    )
    .await?;
    read_until(&mut sender, |m| matches!(m, Message::Sync(_)))
        .await
        .map_err(anyhow::Error::msg)?;
    let before = rss_kib()?;

    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for n in 0..MESSAGES {
        let mut session = format!("{n}-");
        session.extend((0..SESSION_BYTES).map(|_| rng.random_range(b'a'..=b'z') as char));
        let message = Message::Ephemeral(Ephemeral {
            sender_id: peer_id("sender"),
            target_id: peer_id("relay"),
            count: 1,
            session_id: session,
            document_id: GOOD,
            data: vec![0xa0],
        });
        sender
            .send(tungstenite::Message::binary(message.encode()))
            .await?;
    }
    // Everything sent was handled: a later request is answered.
    send(
        &mut sender,
        request("sender", DocumentId::from_bytes([2; 16])),
    )
    .await?;
    let answered = read_until(
        &mut sender,
        |m| matches!(m, Message::Sync(s) if s.document_id == DocumentId::from_bytes([2; 16])),
    )
    .await
    .map_err(anyhow::Error::msg)?;
    ensure!(answered, "the sender was cut off");
    drop(sender);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib()?;
    println!(
        "{MESSAGES} ephemeral messages with {SESSION_BYTES}-byte session ids: VmRSS {before} KiB -> {after} KiB"
    );
    ensure!(
        after.saturating_sub(before) < GROWTH_LIMIT_KIB,
        "resident memory grew by {} KiB and stays so while the document is open (limit {GROWTH_LIMIT_KIB} KiB)",
        after - before
    );
    reading.abort();
    Ok(())
}

/// Stock automerge-repo peers pass on the presence messages they receive,
/// under the first sender's id. The relay drops such a copy (it already
/// delivered the original) and keeps serving the peer that passed it on;
/// before, it closed the connection, and a browser showing presence was cut
/// off as soon as a second person opened the document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_passed_on_by_a_peer_is_dropped_and_the_peer_kept() -> Result<()> {
    let dir = TempDir::new("ephemeral-passed-on");
    let relay = TestRelay::start(dir.path()).await?;
    let mut ann = joined(&relay, 1, "ann").await?;
    let mut ben = joined(&relay, 2, "ben").await?;
    for (socket, name) in [(&mut ann, "ann"), (&mut ben, "ben")] {
        send(socket, request(name, GOOD)).await?;
        read_until(socket, |m| matches!(m, Message::Sync(_)))
            .await
            .map_err(anyhow::Error::msg)?;
    }
    let presence = |sender: &str, count| {
        Message::Ephemeral(Ephemeral {
            sender_id: peer_id(sender),
            target_id: peer_id("relay"),
            count,
            session_id: "s1".into(),
            document_id: GOOD,
            data: vec![0xa0],
        })
    };
    send(&mut ann, presence("ann", 1)).await?;
    let reached = read_until(
        &mut ben,
        |m| matches!(m, Message::Ephemeral(e) if e.sender_id == peer_id("ann")),
    )
    .await
    .map_err(anyhow::Error::msg)?;
    ensure!(reached, "ann's presence did not reach ben");
    // Ben's repo passes ann's message on, unchanged but for the target.
    send(&mut ben, presence("ann", 1)).await?;
    // Ben is still served: a request for another document is answered.
    let other = DocumentId::from_bytes([3; 16]);
    send(&mut ben, request("ben", other)).await?;
    let answered = read_until(
        &mut ben,
        |m| matches!(m, Message::Sync(s) if s.document_id == other),
    )
    .await
    .map_err(anyhow::Error::msg)?;
    ensure!(
        answered,
        "the relay cut ben off for passing on a presence message"
    );
    Ok(())
}
