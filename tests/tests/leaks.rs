//! Slow and vanishing peers: connections that come and go leave nothing
//! behind (file descriptors, memory, gauges), a half-open connection is
//! reaped by the relay's pings, and a peer cut off for not reading gives its
//! socket back.
//!
//! The relay runs in this test process, so `/proc/self/fd` counts both ends
//! of every connection and `/proc/self/status` the memory of both.
//!
//! Keys that share documents are staff of a workspace that lists them
//! ([`TestRelay::share`]), made before anyone writes: a document no
//! workspace lists is its first writer's alone.
//!
//! (That a peer which stops reading is cut off without slowing the others is
//! `relay_bad_input.rs`'s `a_peer_that_stops_reading_is_cut_off_without_slowing_others`;
//! here is only what happens to its connection afterwards.)

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, ROOT, ReadDoc};
use ed25519_dalek::SigningKey;
use futures_util::{SinkExt, StreamExt};
use rapport_protocol::ids::DocumentId;
use rapport_protocol::wire::Message;
use rapport_server::{AuthMode, Config, Limits};
use rapport_tests::hostile::{frames, socket::binary};
use rapport_tests::peer::{TestPeer, actor_of, key, mint_token, open_socket};
use rapport_tests::process::rss_kib;
use rapport_tests::relay::{TempDir, TestRelay};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How long the test waits for the relay to reap or release something.
const PATIENCE: Duration = Duration::from_secs(30);

/// Descriptors and memory are counted for the whole process: the tests of
/// this file take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `test` on a runtime of its own, built and dropped during this test's
/// turn: a runtime holds descriptors too, and one built by a test waiting
/// for its turn would count as another test's leak.
fn in_turn<F: std::future::Future<Output = Result<()>>>(test: impl FnOnce() -> F) -> Result<()> {
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(test())
}

/// Open file descriptors of this process (relay and peers together).
fn fd_count() -> Result<usize> {
    Ok(std::fs::read_dir("/proc/self/fd")?.count())
}

/// One value of the relay's `/metrics`.
async fn metric(relay: &TestRelay, name: &str) -> Result<u64> {
    let (status, body) = relay.get("/metrics").await?;
    ensure!(status == 200, "/metrics answered {status}");
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .with_context(|| format!("{name} missing from /metrics"))
}

/// Polls until `check` holds, or fails with the last thing `check` said.
async fn eventually<F, Fut>(what: &str, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<std::result::Result<(), String>>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let last = match check().await? {
            Ok(()) => return Ok(()),
            Err(last) => last,
        };
        if tokio::time::Instant::now() > deadline {
            bail!("{what}: still not true after {PATIENCE:?}: {last}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the relay's gauges say `connections` open connections and
/// `documents` documents in memory.
async fn gauges_reach(relay: &TestRelay, connections: u64, documents: u64) -> Result<()> {
    eventually("the relay's gauges return", || async {
        let open = metric(relay, "rapport_connections").await?;
        let loaded = metric(relay, "rapport_documents_loaded").await?;
        Ok(if (open, loaded) == (connections, documents) {
            Ok(())
        } else {
            Err(format!(
                "rapport_connections {open} (want {connections}), rapport_documents_loaded {loaded} (want {documents})"
            ))
        })
    })
    .await
}

/// Waits until this process has at most `limit` open descriptors.
async fn fds_fall_to(limit: usize) -> Result<()> {
    eventually("file descriptors are released", || async {
        let now = fd_count()?;
        Ok(if now <= limit {
            Ok(())
        } else {
            Err(format!("{now} open, want at most {limit}"))
        })
    })
    .await
}

/// A raw WebSocket that has joined as `name` and read the relay's `peer`.
async fn joined_socket(relay: &TestRelay, signer: &SigningKey, name: &str) -> Result<Socket> {
    let token = mint_token(signer, &relay.relay_id);
    let mut socket = open_socket(&relay.url(), Some(&token)).await?;
    socket.send(binary(&frames::join(name))).await?;
    loop {
        let frame = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .context("no answer to join")?
            .context("closed during the handshake")??;
        if let tungstenite::Message::Binary(bytes) = frame
            && matches!(Message::decode(&bytes)?, Message::Peer(_))
        {
            return Ok(socket);
        }
    }
}

/// A self-describing actor of `signer` with 8 device bytes from `device`,
/// so that every cycle writes as a different device.
fn device_actor(signer: &SigningKey, device: u64) -> ActorId {
    let mut bytes = signer.verifying_key().to_bytes().to_vec();
    bytes.extend(device.to_le_bytes());
    ActorId::from(bytes)
}

fn int_of(doc: &Automerge, field: &str) -> Option<i64> {
    doc.get(ROOT, field).ok()?.and_then(|(v, _)| v.as_i64())
}

/// The ways a connection can end, cycled through by [`cycle`].
#[derive(Debug, Clone, Copy)]
enum Ending {
    /// Handshake, then a close frame.
    CleanClose,
    /// TCP connect and half an HTTP upgrade request, then gone.
    DropDuringUpgrade,
    /// The WebSocket is up, `join` never comes.
    DropBeforeJoin,
    /// `join` sent, gone before reading the relay's `peer`.
    DropAfterJoin,
    /// Syncs an edit of a document, sees it acknowledged, then drops the
    /// socket without a close frame.
    DropAfterSync,
}

const ENDINGS: [Ending; 5] = [
    Ending::CleanClose,
    Ending::DropDuringUpgrade,
    Ending::DropBeforeJoin,
    Ending::DropAfterJoin,
    Ending::DropAfterSync,
];

/// One connect/disconnect cycle number `n` of `lane`, which owns `doc`.
async fn cycle(relay: &TestRelay, lane: u8, doc: DocumentId, n: u64) -> Result<()> {
    let signer = key(50 + lane);
    let name = format!("lane{lane}-{n}");
    match ENDINGS[(n % ENDINGS.len() as u64) as usize] {
        Ending::CleanClose => {
            let peer = TestPeer::connect_as(&relay.url(), &relay.relay_id, &signer, &name).await?;
            peer.close().await;
        }
        Ending::DropDuringUpgrade => {
            let mut tcp = tokio::net::TcpStream::connect(relay.addr).await?;
            let half = format!(
                "GET /sync HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
                relay.addr
            );
            tcp.write_all(half.as_bytes()).await?;
        }
        Ending::DropBeforeJoin => {
            let token = mint_token(&signer, &relay.relay_id);
            let _socket = open_socket(&relay.url(), Some(&token)).await?;
        }
        Ending::DropAfterJoin => {
            let token = mint_token(&signer, &relay.relay_id);
            let mut socket = open_socket(&relay.url(), Some(&token)).await?;
            socket.send(binary(&frames::join(&name))).await?;
        }
        Ending::DropAfterSync => {
            let peer = TestPeer::connect_as(&relay.url(), &relay.relay_id, &signer, &name).await?;
            peer.open(doc, Automerge::new().with_actor(device_actor(&signer, n)));
            // The lane's previous value has arrived.
            peer.wait_until(|s| int_of(s.doc(doc), "n").is_some())
                .await?;
            peer.change(doc, |tx| tx.put(ROOT, "n", n as i64))?;
            let heads = peer.with(|s| s.doc(doc).get_heads());
            peer.wait_until(|s| s.acknowledged(doc, &heads)).await?;
            // Dropping the peer drops its socket: no close frame.
            drop(peer);
        }
    }
    Ok(())
}

#[test]
fn a_thousand_connect_disconnect_cycles_leak_no_descriptors_or_memory() -> Result<()> {
    in_turn(|| async {
        const LANES: u8 = 4;
        const CYCLES: u64 = 1_000;
        const WARMUP: u64 = 40;
        /// A leak of 16 KiB per cycle fails this; the allocator's slack does not.
        const RSS_GROWTH_LIMIT_KIB: u64 = 16 * 1024;
        /// Sockets the runtime or a late `/metrics` answer may still hold.
        const FD_SLACK: usize = 6;

        let dir = TempDir::new("leaks-cycles");
        let limits = Limits {
            unload_idle_documents_after: Duration::from_millis(200),
            ..Limits::default()
        };
        let relay = TestRelay::start_with(dir.path(), AuthMode::Token, limits).await?;
        // One document per lane, so that a lane's edits are never concurrent.
        let docs: Vec<DocumentId> = (0..LANES)
            .map(|lane| DocumentId::from_bytes([200 + lane; 16]))
            .collect();
        // The seeder writes every lane's document, each lane's key writes its
        // own, the check reads them all.
        let members: Vec<SigningKey> = (0..LANES)
            .map(|lane| key(50 + lane))
            .chain([key(48)])
            .collect();
        let members: Vec<&SigningKey> = members.iter().collect();
        relay.share(&key(49), &members, &docs).await?;
        let seeder =
            TestPeer::connect_as(&relay.url(), &relay.relay_id, &key(49), "seeder").await?;
        for &doc in &docs {
            let mut content = Automerge::new().with_actor(actor_of(&key(49), 1));
            content.transact(|tx| tx.put(ROOT, "n", -1)).unwrap();
            let heads = content.get_heads();
            seeder.open(doc, content);
            seeder.wait_until(|s| s.acknowledged(doc, &heads)).await?;
        }
        seeder.close().await;

        let run = |from: u64, to: u64| {
            let relay = &relay;
            let docs = &docs;
            async move {
                let lanes = (0..LANES).map(|lane| async move {
                    for n in (from..to).filter(|n| n % u64::from(LANES) == u64::from(lane)) {
                        cycle(relay, lane, docs[lane as usize], n)
                            .await
                            .with_context(|| {
                                format!("cycle {n} ({:?})", ENDINGS[(n % 5) as usize])
                            })?;
                    }
                    anyhow::Ok(())
                });
                futures_util::future::try_join_all(lanes).await
            }
        };

        // Warm up (allocator arenas, redb's cache, the runtime's threads), then
        // measure from a quiet relay.
        run(0, WARMUP).await?;
        gauges_reach(&relay, 0, 0).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let fds_before = fd_count()?;
        let rss_before = rss_kib()?;

        let started = std::time::Instant::now();
        run(WARMUP, WARMUP + CYCLES).await?;
        println!("{CYCLES} cycles in {:?}", started.elapsed());

        gauges_reach(&relay, 0, 0).await?;
        fds_fall_to(fds_before + FD_SLACK).await?;
        let rss_after = rss_kib()?;
        println!(
            "fds {fds_before} -> {}, VmRSS {rss_before} KiB -> {rss_after} KiB",
            fd_count()?
        );
        ensure!(
            rss_after.saturating_sub(rss_before) < RSS_GROWTH_LIMIT_KIB,
            "resident memory grew by {} KiB over {CYCLES} cycles (limit {RSS_GROWTH_LIMIT_KIB} KiB)",
            rss_after - rss_before
        );
        ensure!(
            metric(&relay, "rapport_connections_total").await? >= (WARMUP + CYCLES) * 2 / 5,
            "the cycles did connect"
        );

        // Every acknowledged edit is there: each lane's last synced value.
        let check = TestPeer::connect_as(&relay.url(), &relay.relay_id, &key(48), "check").await?;
        for (lane, &doc) in docs.iter().enumerate() {
            let last = (0..WARMUP + CYCLES)
                .rev()
                .find(|n| {
                    n % u64::from(LANES) == lane as u64
                        && matches!(ENDINGS[(n % 5) as usize], Ending::DropAfterSync)
                })
                .context("each lane synced")?;
            check.open(doc, Automerge::new().with_actor(actor_of(&key(48), 1)));
            check
                .wait_until(|s| int_of(s.doc(doc), "n") == Some(last as i64))
                .await
                .with_context(|| format!("lane {lane} ends at {last}"))?;
        }
        Ok(())
    })
}

#[test]
fn a_half_open_peer_is_reaped_by_pings_and_a_live_one_is_not() -> Result<()> {
    in_turn(|| async {
        let dir = TempDir::new("leaks-half-open");
        let idle = Duration::from_millis(600);
        let limits = Limits {
            ping_interval: Duration::from_millis(100),
            idle_timeout: idle,
            ..Limits::default()
        };
        let relay = TestRelay::start_with(dir.path(), AuthMode::Token, limits).await?;
        let fds_before = fd_count()?;

        // A live peer that sends nothing but answers pings (its task reads).
        let live = TestPeer::connect_as(&relay.url(), &relay.relay_id, &key(1), "live").await?;
        // A half-open one: joined, then never read from or written to again,
        // as a peer whose network vanished. The socket stays open here.
        let half_open = joined_socket(&relay, &key(2), "half-open").await?;
        ensure!(
            metric(&relay, "rapport_connections").await? == 2,
            "both connected"
        );

        let started = std::time::Instant::now();
        gauges_reach(&relay, 1, 0).await?;
        let reaped_after = started.elapsed();
        println!("half-open connection reaped after {reaped_after:?}");
        // Its server side is gone: what is left is the live peer's two ends and
        // the half-open client end this test still holds.
        fds_fall_to(fds_before + 3).await?;

        // The live peer outlives several idle timeouts without sending data.
        tokio::time::sleep(idle * 4).await;
        ensure!(
            metric(&relay, "rapport_connections").await? == 1,
            "the live peer was dropped"
        );
        live.with(|s| match &s.closed {
            None => Ok(()),
            Some(why) => Err(anyhow::anyhow!("the live peer was cut off: {why}")),
        })?;
        drop(half_open);
        live.close().await;
        gauges_reach(&relay, 0, 0).await?;
        Ok(())
    })
}

#[test]
fn a_peer_cut_off_for_not_reading_gets_its_socket_closed() -> Result<()> {
    in_turn(|| async {
        let dir = TempDir::new("leaks-sluggard");
        let mut config = Config::new(dir.path());
        config.limits.send_queue_frames = 8;
        let relay = TestRelay::start_config(config).await?;
        let id = DocumentId::from_bytes([42; 16]);
        // The sluggard is one of them: the document is its to read.
        relay.share(&key(1), &[&key(2), &key(3)], &[id]).await?;
        let writer = TestPeer::connect_as(&relay.url(), &relay.relay_id, &key(1), "writer").await?;
        let reader = TestPeer::connect_as(&relay.url(), &relay.relay_id, &key(2), "reader").await?;
        writer.open(id, Automerge::new().with_actor(actor_of(&key(1), 1)));
        reader.open(id, Automerge::new().with_actor(actor_of(&key(2), 1)));
        let fds_before = fd_count()?;

        // The sluggard opens the document and never reads again, but keeps its
        // socket open: a client whose reading thread hangs.
        let mut sluggard = joined_socket(&relay, &key(3), "sluggard").await?;
        sluggard
            .send(binary(&frames::request("sluggard", id)))
            .await?;
        let mut n = 0i64;
        loop {
            n += 1;
            let big: String = (0..64 * 1024)
                .map(|_| rand::random_range(b'a'..=b'z') as char)
                .collect();
            writer.change(id, |tx| {
                tx.put(ROOT, "blob", big.as_str())?;
                tx.put(ROOT, "n", n)
            })?;
            reader
                .wait_until(|s| int_of(s.doc(id), "n") == Some(n))
                .await?;
            if metric(&relay, "rapport_slow_peers_disconnected_total").await? == 1 {
                break;
            }
            ensure!(n < 400, "the sluggard was never cut off");
        }
        println!("cut off after {n} edits of 64 KiB");
        gauges_reach(&relay, 2, 1).await?;
        // The relay's end of the sluggard's socket is closed: only the client
        // end this test holds is left.
        fds_fall_to(fds_before + 1)
            .await
            .context("the relay still holds the socket of the peer it cut off")?;
        drop(sluggard);
        Ok(())
    })
}
