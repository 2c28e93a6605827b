//! A document nobody has open leaves the relay's memory after the idle
//! period, and when it is asked for again, read back from storage, a peer
//! that has nothing gets the same answer from it, byte for byte, as before.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT};
use futures_util::{SinkExt, StreamExt};
use rapport_protocol::ids::DocumentId;
use rapport_protocol::wire::Message;
use rapport_server::{AuthMode, Limits};
use rapport_tests::hostile::{frames, socket::binary};
use rapport_tests::peer::{TestPeer, actor_of, key, open_socket};
use rapport_tests::relay::{TempDir, TestRelay};
use tokio_tungstenite::tungstenite;

const PATIENCE: Duration = Duration::from_secs(30);

/// The data of the relay's first answer to a fresh peer `name` asking for
/// `doc`.
async fn first_answer(relay: &TestRelay, name: &str, doc: DocumentId) -> Result<Vec<u8>> {
    let mut socket = open_socket(&relay.url(), None).await?;
    socket.send(binary(&frames::join(name))).await?;
    socket.send(binary(&frames::request(name, doc))).await?;
    loop {
        let frame = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .context("no answer")?
            .context("closed")??;
        if let tungstenite::Message::Binary(bytes) = frame
            && let Message::Sync(m) | Message::Request(m) = Message::decode(&bytes)?
            && m.document_id == doc
        {
            let _ = socket.close(None).await;
            return Ok(m.data);
        }
    }
}

/// Whether the sync message `data` carries its document as one saved
/// document, not a snapshot followed by changes.
fn is_saved_whole(data: &[u8]) -> Result<bool> {
    let message = automerge::sync::Message::decode(data)?;
    let carried: Vec<u8> = message.changes.iter().flatten().copied().collect();
    Ok(carried == received(data)?.save())
}

/// What a peer with nothing holds after receiving the sync message `data`.
fn received(data: &[u8]) -> Result<Automerge> {
    let mut doc = Automerge::new();
    let mut state = automerge::sync::State::new();
    let message = automerge::sync::Message::decode(data)?;
    automerge::sync::SyncDoc::receive_sync_message(&mut doc, &mut state, message)?;
    Ok(doc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicted_document_gives_a_newcomer_the_same_document_when_it_comes_back() -> Result<()> {
    let dir = TempDir::new("eviction");
    let limits = Limits {
        unload_idle_documents_after: Duration::from_millis(200),
        ..Limits::default()
    };
    let relay = TestRelay::start_with(dir.path(), AuthMode::Open, limits).await?;
    let doc = DocumentId::from_bytes([77; 16]);
    let writer = TestPeer::connect_as(&relay.url(), &relay.relay_id, &key(1), "writer").await?;
    writer.open(doc, Automerge::new().with_actor(actor_of(&key(1), 1)));
    // The first change arrives whole (a saved document, kept as the
    // snapshot); once the relay holds it, the rest arrive change by change,
    // as typing sends them, and are saved whole once nobody has it open.
    writer.change(doc, |tx| tx.put(ROOT, "field0", 0))?;
    let first = writer.with(|s| s.doc(doc).get_heads());
    writer.wait_until(|s| s.acknowledged(doc, &first)).await?;
    for n in 1..50i64 {
        writer.change(doc, |tx| tx.put(ROOT, format!("field{}", n % 7), n))?;
    }
    let heads = writer.with(|s| s.doc(doc).get_heads());
    let reader = TestPeer::connect_as(&relay.url(), &relay.relay_id, &key(2), "reader").await?;
    reader.open(doc, Automerge::new());
    reader
        .wait_until(|s| s.doc(doc).get_heads() == heads)
        .await?;
    writer.close().await;
    reader.close().await;
    // Nobody has it open: the relay saves it whole as its snapshot (unless
    // the reader's first answer already did, when it held every change).
    // Ask once a newcomer's answer is that saved document alone.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let before = loop {
        let answer = first_answer(&relay, "before", doc).await?;
        if is_saved_whole(&answer)? {
            break answer;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the idle document was not saved whole"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    relay.gauges_reach(0, 0).await?;
    ensure!(
        relay.metric("rapport_documents_loaded").await? == 0,
        "the document left memory"
    );
    let after = first_answer(&relay, "after", doc).await?;
    let (was, is) = (received(&before)?, received(&after)?);
    ensure!(
        was.get_heads() == heads,
        "the first answer holds the document"
    );
    ensure!(
        is.get_heads() == heads,
        "the answer after a reload holds it too"
    );
    ensure!(
        before == after,
        "the same answer before eviction ({} bytes) and after ({} bytes)",
        before.len(),
        after.len()
    );
    Ok(())
}
