//! A relay whose disk fails: it refuses new changes with a clear error to
//! the peer and a log line, keeps serving reads, recovers when the disk
//! does, and loses nothing it acknowledged.
//!
//! The writer, the reader and the newcomer share the document as staff of
//! a workspace that lists it ([`TestRelay::share`]), made while the disk
//! still works and before anyone writes.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::Result;
use automerge::{Automerge, ROOT, ReadDoc, transaction::Transactable};
use rapport_protocol::ids::DocumentId;
use rapport_protocol::wire::RejectReason;
use rapport_server::Config;
use rapport_server::storage::Store;
use rapport_tests::faults::Faults;
use rapport_tests::peer::{PeerState, TestPeer, actor_of, key};
use rapport_tests::relay::{TempDir, TestRelay};

/// Everything the relay logged at WARN and above, across this file's tests.
fn logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        struct Sink;
        impl Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                logs().lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing_subscriber::filter::LevelFilter::WARN)
            .with_ansi(false)
            .with_writer(|| Sink)
            .try_init();
        Mutex::new(Vec::new())
    })
}

fn logged(needle: &str, document: DocumentId) -> bool {
    let text = String::from_utf8_lossy(&logs().lock().unwrap()).into_owned();
    text.lines()
        .any(|line| line.contains(needle) && line.contains(&document.to_string()))
}

async fn relay_on(data: &TempDir, faults: &Arc<Faults>) -> Result<TestRelay> {
    logs();
    let mut config = Config::new(data.path());
    config.storage = faults.backend();
    TestRelay::start_config(config).await
}

/// Lists `id` in a workspace of key 1 whose staff are keys 2 and 3.
async fn share(relay: &TestRelay, id: DocumentId) -> Result<()> {
    relay.share(&key(1), &[&key(2), &key(3)], &[id]).await?;
    Ok(())
}

async fn peer(relay: &TestRelay, seed: u8, name: &str) -> Result<TestPeer> {
    TestPeer::connect_as(&relay.url(), &relay.relay_id, &key(seed), name).await
}

fn record(seed: u8) -> Automerge {
    let mut doc = Automerge::new().with_actor(actor_of(&key(seed), 1));
    doc.transact::<_, _, automerge::AutomergeError>(|tx| {
        tx.put(ROOT, "name", "Acme Ltd")?;
        Ok(())
    })
    .expect("a first change");
    doc
}

fn str_of(doc: &Automerge, field: &str) -> Option<String> {
    match doc.get(ROOT, field).ok()?? {
        (automerge::Value::Scalar(s), _) => match s.as_ref() {
            automerge::ScalarValue::Str(s) => Some(s.to_string()),
            _ => None,
        },
        _ => None,
    }
}

fn put(peer: &TestPeer, id: DocumentId, field: &str, value: &str) -> Result<()> {
    peer.change(id, |tx| tx.put(ROOT, field, value))
}

fn has(state: &PeerState, id: DocumentId, field: &str, value: &str) -> bool {
    state.docs.get(&id).map(|d| str_of(d.doc(), field)) == Some(Some(value.into()))
}

/// Whether the relay named `heads` (a change it could not store) among its
/// heads of `id` to `peer`. It may have forwarded the change before its
/// commit failed, but never as stored.
fn named_by_relay(peer: &TestPeer, id: DocumentId, heads: &[automerge::ChangeHash]) -> bool {
    peer.with(|s| s.heads_from_relay(id).flatten().any(|h| heads.contains(&h)))
}

fn refused_for_storage(state: &PeerState, id: DocumentId) -> bool {
    state
        .rejected
        .iter()
        .any(|r| r.document_id == id && r.reason == RejectReason::StorageUnavailable)
}

/// The document as the relay's file holds it, read after the relay stopped.
fn stored(data: &TempDir, id: DocumentId) -> Result<Automerge> {
    let stored = Store::open(data.path())?.load_document(id)?;
    let mut doc = match &stored.snapshot {
        Some(bytes) => Automerge::load(bytes)?,
        None => Automerge::new(),
    };
    for change in &stored.changes {
        doc.load_incremental(&change.bytes)?;
    }
    Ok(doc)
}

#[tokio::test]
async fn a_failed_write_is_refused_and_the_next_ones_are_stored() -> Result<()> {
    let data = TempDir::new("failed-write");
    let faults = Faults::new();
    let mut relay = relay_on(&data, &faults).await?;
    let id = DocumentId::random(&mut rand::rng());
    share(&relay, id).await?;
    let writer = peer(&relay, 1, "writer").await?;
    let reader = peer(&relay, 2, "reader").await?;
    writer.open(id, record(1));
    reader.open(id, Automerge::new());
    reader
        .wait_until(|s| str_of(s.doc(id), "name").is_some())
        .await?;

    faults.fail_next_writes(1);
    put(&writer, id, "stage", "lead")?;
    let unstored = writer.with(|s| s.doc(id).get_heads());
    writer.wait_until(|s| refused_for_storage(s, id)).await?;
    assert!(faults.failed() >= 1, "the fault was injected");
    assert!(
        logged("storing changes failed", id),
        "the relay logs the refusal with the document"
    );
    let message = writer.with(|s| s.rejected[0].message.clone());
    assert!(message.contains("cannot store"), "{message}");
    reader.settle(Duration::from_millis(300)).await;
    assert!(
        !named_by_relay(&reader, id, &unstored) && !named_by_relay(&writer, id, &unstored),
        "an unstored change is never named among the relay's heads"
    );

    // Reads go on: a newcomer gets what was stored.
    let newcomer = peer(&relay, 3, "newcomer").await?;
    newcomer.open(id, Automerge::new());
    newcomer
        .wait_until(|s| str_of(s.doc(id), "name").as_deref() == Some("Acme Ltd"))
        .await?;

    // The disk works again: the next change carries the refused one along.
    put(&writer, id, "owner", "sam")?;
    reader
        .wait_until(|s| has(s, id, "stage", "lead") && has(s, id, "owner", "sam"))
        .await?;
    let heads = writer.with(|s| s.doc(id).get_heads());
    newcomer
        .wait_until(|s| s.doc(id).get_heads() == heads)
        .await?;

    relay.stop().await?;
    drop((writer, reader, newcomer));
    let doc = stored(&data, id)?;
    assert_eq!(doc.get_heads(), heads, "everything acknowledged is stored");
    assert_eq!(str_of(&doc, "stage").as_deref(), Some("lead"));
    Ok(())
}

#[tokio::test]
async fn a_full_disk_refuses_writes_serves_reads_and_recovers_when_space_returns() -> Result<()> {
    let data = TempDir::new("full-disk");
    let faults = Faults::new();
    let mut relay = relay_on(&data, &faults).await?;
    let id = DocumentId::random(&mut rand::rng());
    share(&relay, id).await?;
    let writer = peer(&relay, 1, "writer").await?;
    let reader = peer(&relay, 2, "reader").await?;
    writer.open(id, record(1));
    reader.open(id, Automerge::new());
    reader
        .wait_until(|s| str_of(s.doc(id), "name").is_some())
        .await?;
    let before = writer.with(|s| s.doc(id).get_heads());

    // A change too big for the space the file already has.
    faults.set_full(true);
    let attachment = "x".repeat(8 * 1024 * 1024);
    put(&writer, id, "attachment", &attachment)?;
    let unstored = writer.with(|s| s.doc(id).get_heads());
    writer.wait_until(|s| refused_for_storage(s, id)).await?;
    assert!(faults.failed() >= 1, "the full disk was hit");
    assert!(logged("storing changes failed", id));

    // Still full: reads are served, from memory and from the file.
    let newcomer = peer(&relay, 3, "newcomer").await?;
    newcomer.open(id, Automerge::new());
    newcomer
        .wait_until(|s| s.doc(id).get_heads() == before)
        .await?;
    let other = DocumentId::random(&mut rand::rng());
    writer.open(other, record(1));
    reader.settle(Duration::from_millis(200)).await;
    assert!(
        !named_by_relay(&reader, id, &unstored) && !named_by_relay(&writer, id, &unstored),
        "nothing unstored is named among the relay's heads"
    );

    // Space returns: the next change brings the refused one with it.
    faults.set_full(false);
    put(&writer, id, "note", "disk replaced")?;
    reader
        .wait_until(|s| {
            has(s, id, "note", "disk replaced") && has(s, id, "attachment", &attachment)
        })
        .await?;
    let heads = writer.with(|s| s.doc(id).get_heads());

    relay.stop().await?;
    drop((writer, reader, newcomer));
    let doc = stored(&data, id)?;
    assert_eq!(doc.get_heads(), heads, "everything acknowledged is stored");
    assert_eq!(
        str_of(&doc, "attachment").map(|a| a.len()),
        Some(attachment.len())
    );
    Ok(())
}

#[tokio::test]
async fn healthz_and_readyz_say_when_storage_cannot_be_written() -> Result<()> {
    let data = TempDir::new("healthz");
    let faults = Faults::new();
    let relay = relay_on(&data, &faults).await?;
    assert_eq!(relay.get("/healthz").await?, (200, "ok\n".into()));
    assert_eq!(relay.get("/readyz").await?, (200, "ready\n".into()));
    // Writes fail: both say so, and why. (The last check is reused for
    // two seconds; wait it out.)
    tokio::time::sleep(Duration::from_millis(2100)).await;
    faults.fail_next_writes(1_000);
    let (status, body) = relay.get("/healthz").await?;
    assert_eq!(status, 503, "{body}");
    assert!(body.starts_with("storage: not writable"), "{body}");
    let (status, _) = relay.get("/readyz").await?;
    assert_eq!(status, 503);
    // Writes work again: healthy at the next check.
    faults.fail_next_writes(0);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(relay.get("/healthz").await?, (200, "ok\n".into()));
    Ok(())
}
