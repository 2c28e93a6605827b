//! The change feed as server-sent events over a real socket: entries
//! arrive live as changes become durable, each event's id is its cursor,
//! and `Last-Event-ID` resumes after it.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT};
use rapport_protocol::ids::DocumentId;
use rapport_tests::peer::{TestPeer, actor_of, key, mint_token};
use rapport_tests::relay::{TempDir, TestRelay};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PATIENCE: Duration = Duration::from_secs(20);

/// An open event stream of the feed of `ws`, as `signer`.
async fn follow(
    relay: &TestRelay,
    signer: &ed25519_dalek::SigningKey,
    ws: &str,
    last_event: Option<&str>,
) -> Result<TcpStream> {
    let mut socket = TcpStream::connect(relay.addr).await?;
    let token = mint_token(signer, &relay.relay_id);
    let resume = last_event
        .map(|id| format!("Last-Event-ID: {id}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "GET /api/workspaces/{ws}/changes HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\nAuthorization: Bearer {token}\r\n{resume}\r\n",
        relay.addr
    );
    socket.write_all(request.as_bytes()).await?;
    Ok(socket)
}

/// Reads from `socket` into `text` until it holds `count` events about
/// `doc` (the workspace's automations document has its own).
async fn events(
    socket: &mut TcpStream,
    text: &mut String,
    doc: DocumentId,
    count: usize,
) -> Result<()> {
    let mut buf = [0u8; 4096];
    let about = format!(r#""document":"{doc}""#);
    tokio::time::timeout(PATIENCE, async {
        while text.matches(&about).count() < count {
            let n = socket.read(&mut buf).await?;
            ensure!(n > 0, "the stream ended:\n{text}");
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        Ok(())
    })
    .await
    .with_context(|| format!("no {count} events in:\n{text}"))?
}

/// The ids of the events about `doc` in `text`.
fn ids(text: &str, doc: DocumentId) -> Vec<String> {
    let about = format!(r#""document":"{doc}""#);
    let lines: Vec<&str> = text.lines().collect();
    lines
        .windows(3)
        .filter(|w| w[2].contains(&about))
        .filter_map(|w| w[0].strip_prefix("id:"))
        .map(|id| id.trim().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_streams_live_and_resumes_from_the_last_event_id() -> Result<()> {
    let dir = TempDir::new("feed-sse");
    let relay = TestRelay::start(dir.path()).await?;
    let doc = DocumentId::from_bytes([7; 16]);
    let ws = relay.share(&key(1), &[&key(2)], &[doc]).await?;
    let writer = TestPeer::connect_as(&relay.url(), &relay.relay_id, &key(1), "writer").await?;
    writer.open(doc, Automerge::new().with_actor(actor_of(&key(1), 1)));
    writer.change(doc, |tx| tx.put(ROOT, "stage", "lead"))?;

    let mut live = follow(&relay, &key(2), &ws, None).await?;
    let mut seen = String::new();
    events(&mut live, &mut seen, doc, 1).await?;
    ensure!(seen.contains("text/event-stream"), "{seen}");
    ensure!(seen.contains(r#""fields":["stage"]"#), "{seen}");
    // A change made while the stream is open arrives on it.
    writer.change(doc, |tx| tx.put(ROOT, "score", 90))?;
    events(&mut live, &mut seen, doc, 2).await?;
    ensure!(seen.contains(r#""fields":["score"]"#), "{seen}");
    let cursors = ids(&seen, doc);
    ensure!(cursors.len() == 2, "{seen}");

    // Resuming after the first event gives the second alone.
    let mut again = follow(&relay, &key(2), &ws, Some(&cursors[0])).await?;
    let mut resumed = String::new();
    events(&mut again, &mut resumed, doc, 1).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut buf = [0u8; 4096];
    if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(300), again.read(&mut buf)).await
    {
        resumed.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    ensure!(ids(&resumed, doc) == [cursors[1].clone()], "{resumed}");
    writer.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_of_many_changes_is_one_entry_with_every_field_it_touched() -> Result<()> {
    let dir = TempDir::new("feed-many");
    let relay = TestRelay::start(dir.path()).await?;
    let doc = DocumentId::from_bytes([8; 16]);
    let ws = relay.share(&key(1), &[&key(2)], &[doc]).await?;
    let mut first = Automerge::new().with_actor(actor_of(&key(1), 1));
    first
        .transact(|tx| tx.put(ROOT, "stage", "lead"))
        .map_err(|f| f.error)?;
    let writer = TestPeer::connect_as(&relay.url(), &relay.relay_id, &key(1), "writer").await?;
    writer.open(doc, first.clone());
    let heads = first.get_heads();
    writer.wait_until(|s| s.acknowledged(doc, &heads)).await?;

    // Offline, a second member makes 3,000 changes on top of it, to ten
    // fields, and syncs them in one message: one write.
    let mut offline = first.fork().with_actor(actor_of(&key(2), 1));
    for n in 0..3_000i64 {
        offline
            .transact(|tx| tx.put(ROOT, format!("f{}", n % 10), n))
            .map_err(|f| f.error)?;
    }
    let heads = offline.get_heads();
    let other = TestPeer::connect_as(&relay.url(), &relay.relay_id, &key(2), "other").await?;
    other.open(doc, offline);
    other.wait_until(|s| s.acknowledged(doc, &heads)).await?;

    let started = std::time::Instant::now();
    let mut stream = follow(&relay, &key(1), &ws, None).await?;
    let mut seen = String::new();
    events(&mut stream, &mut seen, doc, 2).await?;
    eprintln!(
        "two entries, one of 3,000 changes, in {:?}",
        started.elapsed()
    );
    let fields = (0..10).map(|n| format!(r#""f{n}""#)).collect::<Vec<_>>();
    ensure!(
        seen.contains(&format!(r#""fields":[{}]"#, fields.join(","))),
        "the write touched f0 to f9 and nothing else: {seen}"
    );
    ensure!(seen.contains(r#""fields":["stage"]"#), "{seen}");
    writer.close().await;
    other.close().await;
    Ok(())
}
