//! Whatever a peer sends, the relay answers with a typed refusal or drops the
//! message, and every other connection keeps working.
//!
//! Keys that share a document are staff of a workspace that lists it
//! ([`TestRelay::share`]): a document no workspace lists is its first
//! writer's alone.

use std::time::Duration;

use anyhow::{Context, Result};
use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT, ReadDoc};
use ed25519_dalek::SigningKey;
use futures_util::{SinkExt, StreamExt};
use rapport_client::transport::ConnectError;
use rapport_protocol::ids::DocumentId;
use rapport_protocol::wire::{Leave, Message};
use rapport_server::{AuthMode, Limits};
use rapport_tests::hostile::{frames, socket::binary};
use rapport_tests::peer::{TestPeer, actor_of, key, mint_token, open_socket};
use rapport_tests::relay::{TempDir, TestRelay};
use tokio_tungstenite::tungstenite::{self, protocol::frame::coding::CloseCode};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The key raw sockets ([`joined`]) connect as.
fn raw_key() -> SigningKey {
    key(7)
}

/// Connects and joins as `name`, returning the socket after the `peer` answer.
async fn joined(relay: &TestRelay, name: &str) -> Result<Socket> {
    let token = mint_token(&raw_key(), &relay.relay_id);
    let mut socket = open_socket(&relay.url(), Some(&token)).await?;
    socket.send(binary(&frames::join(name))).await?;
    let answer = next_message(&mut socket)
        .await?
        .context("no answer to join")?;
    assert!(matches!(answer, Message::Peer(_)), "{answer:?}");
    Ok(socket)
}

/// The next protocol message, or `None` once the relay closed.
async fn next_message(socket: &mut Socket) -> Result<Option<Message>> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next()).await? {
            None | Some(Ok(tungstenite::Message::Close(_))) => return Ok(None),
            Some(Ok(tungstenite::Message::Binary(bytes))) => match Message::decode(&bytes)? {
                // The relay's list of visible documents: not what these tests wait for.
                Message::Documents(_) => continue,
                message => return Ok(Some(message)),
            },
            Some(Ok(_)) => continue,
            Some(Err(_)) => return Ok(None),
        }
    }
}

/// Reads until the relay closes; returns the `error` text it sent and the
/// close code.
async fn refusal(socket: &mut Socket) -> Result<(String, Option<CloseCode>)> {
    let mut error = String::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next()).await? {
            Some(Ok(tungstenite::Message::Binary(bytes))) => {
                if let Ok(Message::Error(e)) = Message::decode(&bytes) {
                    error = e.message;
                }
            }
            Some(Ok(tungstenite::Message::Close(frame))) => {
                return Ok((error, frame.map(|f| f.code)));
            }
            None | Some(Err(_)) => return Ok((error, None)),
            Some(Ok(_)) => {}
        }
    }
}

/// A bystander that keeps syncing while others misbehave.
struct Bystander {
    writer: TestPeer,
    reader: TestPeer,
    id: DocumentId,
    n: i64,
}

impl Bystander {
    /// The writer (key 1) and the reader (key 2) share their document, and
    /// so do the keys `also`.
    async fn start(relay: &TestRelay, also: &[&SigningKey]) -> Result<Self> {
        let id = DocumentId::from_bytes([42; 16]);
        let reader_key = key(2);
        let mut members = vec![&reader_key];
        members.extend(also);
        relay.share(&key(1), &members, &[id]).await?;
        let writer =
            TestPeer::connect_as(&relay.url(), &relay.relay_id, &key(1), "bystander-w").await?;
        let reader =
            TestPeer::connect_as(&relay.url(), &relay.relay_id, &key(2), "bystander-r").await?;
        writer.open(id, Automerge::new().with_actor(actor_of(&key(1), 1)));
        reader.open(id, Automerge::new().with_actor(actor_of(&key(2), 1)));
        let mut b = Self {
            writer,
            reader,
            id,
            n: 0,
        };
        b.still_syncs().await?;
        Ok(b)
    }

    /// One more edit reaches the reader.
    async fn still_syncs(&mut self) -> Result<()> {
        self.n += 1;
        let n = self.n;
        self.writer.change(self.id, |tx| tx.put(ROOT, "n", n))?;
        let id = self.id;
        self.reader
            .wait_until(|s| {
                s.doc(id)
                    .get(ROOT, "n")
                    .ok()
                    .flatten()
                    .and_then(|(v, _)| v.as_i64())
                    == Some(n)
            })
            .await
    }
}

async fn upgrade_status(relay: &TestRelay, token: Option<&str>) -> Option<u16> {
    match open_socket(&relay.url(), token).await {
        Ok(_) => None,
        Err(e) => match e.downcast_ref::<ConnectError>() {
            Some(ConnectError::Refused { status, .. }) => Some(*status),
            _ => Some(0),
        },
    }
}

#[tokio::test]
async fn missing_forged_misdirected_and_replayed_tokens_get_401() -> Result<()> {
    let dir = TempDir::new("tokens");
    let relay = TestRelay::start(dir.path()).await?;
    assert_eq!(upgrade_status(&relay, None).await, Some(401));
    assert_eq!(upgrade_status(&relay, Some("not.a.token")).await, Some(401));
    let other_relay = mint_token(&key(1), "relay-somewhere-else");
    assert_eq!(upgrade_status(&relay, Some(&other_relay)).await, Some(401));
    // Signed by key 2 but naming key 1: swap the signature segment.
    let genuine = mint_token(&key(1), &relay.relay_id);
    let other = mint_token(&key(2), &relay.relay_id);
    let forged = format!(
        "{}.{}",
        genuine.rsplit_once('.').unwrap().0,
        other.rsplit_once('.').unwrap().1
    );
    assert_eq!(upgrade_status(&relay, Some(&forged)).await, Some(401));
    let once = mint_token(&key(1), &relay.relay_id);
    assert_eq!(
        upgrade_status(&relay, Some(&once)).await,
        None,
        "a fresh token is accepted"
    );
    assert_eq!(
        upgrade_status(&relay, Some(&once)).await,
        Some(401),
        "and never twice"
    );
    let (status, body) = relay.get("/metrics").await?;
    assert_eq!(status, 200);
    assert!(body.contains("rapport_auth_failures_total 5"), "{body}");
    Ok(())
}

#[tokio::test]
async fn the_token_may_come_in_the_query() -> Result<()> {
    let dir = TempDir::new("query-token");
    let relay = TestRelay::start(dir.path()).await?;
    let token = mint_token(&key(1), &relay.relay_id);
    let url = format!("{}?token={token}", relay.url());
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await?;
    socket.send(binary(&frames::join("by-query"))).await?;
    assert!(matches!(
        next_message(&mut socket).await?,
        Some(Message::Peer(_))
    ));
    Ok(())
}

#[tokio::test]
async fn protocol_violations_close_only_the_offender() -> Result<()> {
    let dir = TempDir::new("violations");
    let relay = TestRelay::start(dir.path()).await?;
    let mut bystander = Bystander::start(&relay, &[]).await?;

    // A text frame.
    let mut s = joined(&relay, "texter").await?;
    s.send(tungstenite::Message::text("{\"type\":\"sync\"}"))
        .await?;
    let (error, code) = refusal(&mut s).await?;
    assert!(error.contains("text frames"), "{error}");
    assert_eq!(code, Some(CloseCode::Unsupported));
    bystander.still_syncs().await?;

    // A message before `join`.
    let token = mint_token(&key(7), &relay.relay_id);
    let mut s = open_socket(&relay.url(), Some(&token)).await?;
    let leave = Message::Leave(Leave {
        sender_id: "early".parse()?,
    });
    s.send(tungstenite::Message::binary(leave.encode())).await?;
    let (error, code) = refusal(&mut s).await?;
    assert!(error.contains("expected `join`"), "{error}");
    assert_eq!(code, Some(CloseCode::Protocol));

    // A second `join`.
    let mut s = joined(&relay, "twice").await?;
    s.send(binary(&frames::join("twice"))).await?;
    let (error, _) = refusal(&mut s).await?;
    assert!(error.contains("only once"), "{error}");

    // A senderId other than the one joined.
    let mut s = joined(&relay, "honest").await?;
    let leave = Message::Leave(Leave {
        sender_id: "someone-else".parse()?,
    });
    s.send(tungstenite::Message::binary(leave.encode())).await?;
    let (error, _) = refusal(&mut s).await?;
    assert!(error.contains("senderId"), "{error}");

    // Bytes that are not CBOR, and CBOR that is not a message.
    for garbage in [
        vec![0xff, 0x00, 0x13],
        vec![0x83, 0x01, 0x02, 0x03],
        vec![0xa1, 0x61],
    ] {
        let mut s = joined(&relay, "garbage").await?;
        s.send(tungstenite::Message::binary(garbage.clone()))
            .await?;
        let (error, code) = refusal(&mut s).await?;
        assert!(!error.is_empty(), "no error for {garbage:02x?}");
        assert_eq!(code, Some(CloseCode::Protocol));
    }

    // A sync message whose data is not an automerge sync message.
    let mut s = joined(&relay, "bad-sync").await?;
    let bad = Message::Sync(rapport_protocol::wire::DocMessage {
        sender_id: "bad-sync".parse()?,
        target_id: "relay".parse()?,
        document_id: DocumentId::from_bytes([5; 16]),
        data: vec![0x42, 0xff, 0xff],
    });
    s.send(tungstenite::Message::binary(bad.encode())).await?;
    let (error, _) = refusal(&mut s).await?;
    assert!(error.contains("malformed sync message"), "{error}");

    bystander.still_syncs().await?;
    Ok(())
}

#[tokio::test]
async fn unknown_message_types_are_dropped_and_the_connection_lives() -> Result<()> {
    let dir = TempDir::new("unknown");
    let relay = TestRelay::start(dir.path()).await?;
    let mut s = joined(&relay, "future").await?;
    // {"type": "presence-v9", "senderId": "future"}
    let mut frame = vec![0xa2, 0x64];
    frame.extend(b"type");
    frame.push(0x6b);
    frame.extend(b"presence-v9");
    frame.push(0x68);
    frame.extend(b"senderId");
    frame.push(0x66);
    frame.extend(b"future");
    for _ in 0..100 {
        s.send(tungstenite::Message::binary(frame.clone())).await?;
    }
    // Still open: a request is answered.
    let request = frames::request("future", DocumentId::from_bytes([6; 16]));
    s.send(tungstenite::Message::binary(request.encode()))
        .await?;
    let answer = next_message(&mut s).await?;
    assert!(matches!(answer, Some(Message::Sync(_))), "{answer:?}");
    let (_, body) = relay.get("/metrics").await?;
    assert!(
        body.contains("rapport_dropped_messages_total 100"),
        "{body}"
    );
    Ok(())
}

#[tokio::test]
async fn an_oversize_frame_is_refused_and_others_keep_syncing() -> Result<()> {
    let dir = TempDir::new("oversize");
    let limits = Limits {
        max_frame_bytes: 64 * 1024,
        ..Limits::default()
    };
    let relay = TestRelay::start_with(dir.path(), AuthMode::Token, limits).await?;
    let mut bystander = Bystander::start(&relay, &[]).await?;
    let mut s = joined(&relay, "big").await?;
    let _ = s
        .send(tungstenite::Message::binary(vec![0xa0; 200 * 1024]))
        .await;
    let (error, code) = refusal(&mut s).await?;
    assert!(
        error.contains("too large") || code == Some(CloseCode::Size),
        "{error} {code:?}"
    );
    bystander.still_syncs().await?;
    Ok(())
}

#[tokio::test]
async fn a_peer_that_stops_reading_is_cut_off_without_slowing_others() -> Result<()> {
    let dir = TempDir::new("slow");
    let limits = Limits {
        send_queue_frames: 8,
        ..Limits::default()
    };
    let relay = TestRelay::start_with(dir.path(), AuthMode::Token, limits).await?;
    let mut bystander = Bystander::start(&relay, &[&raw_key()]).await?;
    // The sluggard, whom they share it with, opens the bystanders' document
    // and never reads again.
    let mut slow = joined(&relay, "sluggard").await?;
    let request = frames::request("sluggard", bystander.id);
    slow.send(tungstenite::Message::binary(request.encode()))
        .await?;
    // Large edits (random, so that compression does not shrink them) fill
    // its TCP buffers and then its queue.
    for _ in 0..400 {
        let big: String = (0..64 * 1024)
            .map(|_| rand::random_range(b'a'..=b'z') as char)
            .collect();
        bystander
            .writer
            .change(bystander.id, |tx| tx.put(ROOT, "blob", big.as_str()))?;
        bystander.still_syncs().await?;
        let (_, body) = relay.get("/metrics").await?;
        if body.contains("rapport_slow_peers_disconnected_total 1") {
            return Ok(());
        }
    }
    let (_, body) = relay.get("/metrics").await?;
    anyhow::bail!("the slow peer was never disconnected: {body}")
}

#[tokio::test]
async fn endpoints_answer() -> Result<()> {
    let dir = TempDir::new("endpoints");
    let relay = TestRelay::start(dir.path()).await?;
    let (status, body) = relay.get("/healthz").await?;
    assert_eq!((status, body.trim()), (200, "ok"));
    let (status, body) = relay.get("/api/info").await?;
    assert_eq!(status, 200);
    let info: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(info["relay_id"], relay.relay_id);
    assert_eq!(info["protocol"], "1");
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert!(info.get("public_url").is_none(), "none set: {info}");
    let (status, body) = relay.get("/metrics").await?;
    assert_eq!(status, 200);
    for name in [
        "rapport_connections ",
        "rapport_documents_loaded ",
        "rapport_messages_in_total ",
        "rapport_bytes_out_total ",
        "rapport_refused_changes_total ",
        "rapport_sync_latency_seconds_bucket",
    ] {
        assert!(body.contains(name), "{name} missing from /metrics");
    }
    Ok(())
}

#[tokio::test]
async fn a_public_url_is_named_by_api_info_and_a_bad_one_refused_at_start() -> Result<()> {
    let dir = TempDir::new("public-url");
    let mut config = rapport_server::Config::new(dir.path());
    config.public_url = Some("https://relay.example/rapport".into());
    let relay = TestRelay::start_config(config.clone()).await?;
    let (_, body) = relay.get("/api/info").await?;
    let info: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(info["public_url"], "https://relay.example/rapport");
    drop(relay);
    for bad in [
        "relay.example",
        "ftp://relay.example",
        "https://",
        "https://relay.example/?x",
    ] {
        config.public_url = Some(bad.into());
        let refused = rapport_server::Server::open(config.clone());
        assert!(
            matches!(refused, Err(rapport_server::ServerError::PublicUrl(_))),
            "{bad}: {refused:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn open_mode_needs_no_token() -> Result<()> {
    let dir = TempDir::new("open");
    let relay = TestRelay::start_with(dir.path(), AuthMode::Open, Limits::default()).await?;
    let id = DocumentId::from_bytes([8; 16]);
    let a = TestPeer::connect(&relay.url(), None, "a").await?;
    let b = TestPeer::connect(&relay.url(), None, "b").await?;
    let mut doc = Automerge::new();
    doc.transact(|tx| tx.put(ROOT, "hello", "world")).unwrap();
    a.open(id, doc);
    b.open(id, Automerge::new());
    b.wait_until(|s| s.doc(id).get(ROOT, "hello").ok().flatten().is_some())
        .await?;
    let (_, body) = relay.get("/api/info").await?;
    assert!(body.contains("\"auth\":\"open\""), "{body}");
    Ok(())
}

#[tokio::test]
async fn too_many_open_documents_is_a_clear_error() -> Result<()> {
    let dir = TempDir::new("max-docs");
    let limits = Limits {
        max_documents_per_connection: 2,
        ..Limits::default()
    };
    let relay = TestRelay::start_with(dir.path(), AuthMode::Token, limits).await?;
    let mut s = joined(&relay, "greedy").await?;
    for n in 0..3u8 {
        let request = frames::request("greedy", DocumentId::from_bytes([100 + n; 16]));
        s.send(tungstenite::Message::binary(request.encode()))
            .await?;
    }
    let (error, _) = refusal(&mut s).await?;
    assert!(error.contains("too many documents open"), "{error}");
    Ok(())
}

#[tokio::test]
async fn idle_documents_leave_memory() -> Result<()> {
    let dir = TempDir::new("idle");
    let limits = Limits {
        unload_idle_documents_after: Duration::from_millis(100),
        ..Limits::default()
    };
    let relay = TestRelay::start_with(dir.path(), AuthMode::Token, limits).await?;
    let id = DocumentId::from_bytes([9; 16]);
    relay.share(&key(1), &[&key(2)], &[id]).await?;
    let a = TestPeer::connect_as(&relay.url(), &relay.relay_id, &key(1), "a").await?;
    let mut doc = Automerge::new().with_actor(actor_of(&key(1), 1));
    doc.transact(|tx| tx.put(ROOT, "k", 1)).unwrap();
    a.open(id, doc);
    a.wait_until(|s| s.received.len() >= 2).await?;
    let loaded = |body: &str| body.lines().any(|l| l == "rapport_documents_loaded 1");
    let (_, body) = relay.get("/metrics").await?;
    assert!(loaded(&body), "loaded while open: {body}");
    a.close().await;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if relay
            .get("/metrics")
            .await?
            .1
            .lines()
            .any(|l| l == "rapport_documents_loaded 0")
        {
            // And it comes back from storage when wanted.
            let b = TestPeer::connect_as(&relay.url(), &relay.relay_id, &key(2), "b").await?;
            b.open(id, Automerge::new().with_actor(actor_of(&key(2), 1)));
            b.wait_until(|s| s.doc(id).get(ROOT, "k").ok().flatten().is_some())
                .await?;
            return Ok(());
        }
    }
    anyhow::bail!("the idle document stayed in memory")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_workspace_refuses_more_documents_and_says_why() -> Result<()> {
    use rapport_client::Repo;
    use rapport_client::api::{ApiError, RelayApi};
    let dir = TempDir::new("full-workspace");
    let mut config = rapport_server::Config::new(dir.path());
    config.limits.max_documents_per_workspace = 3;
    let relay = TestRelay::start_config(config).await?;
    let home = TempDir::new("full-workspace-owner");
    let owner = Repo::init(home.path())?;
    let api = RelayApi::new(&relay.client_config(), owner.identity().clone())?;
    // The automations document is the first of three.
    let ws = tokio::task::block_in_place(|| api.create_workspace("Acme"))?;
    let doc = |n: u8| DocumentId::from_bytes([n; 16]);
    tokio::task::block_in_place(|| api.add_documents(&ws, &[(doc(1), None), (doc(2), None)]))?;
    let refused = tokio::task::block_in_place(|| api.add_documents(&ws, &[(doc(3), None)]));
    match refused {
        Err(ApiError::Refused { status, message }) => {
            assert_eq!(status, 403);
            assert!(
                message.contains("--max-documents-per-workspace"),
                "{message}"
            );
        }
        other => panic!("a fourth document was not refused: {other:?}"),
    }
    // Listing what is already listed still works; nothing was added.
    tokio::task::block_in_place(|| api.add_documents(&ws, &[(doc(1), None)]))?;
    assert_eq!(tokio::task::block_in_place(|| api.documents(&ws))?.len(), 3);
    Ok(())
}
