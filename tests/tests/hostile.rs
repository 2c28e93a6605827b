//! Hostile input: fifty connections at once send thousands of malformed,
//! truncated, oversize, unknown-type, wrong-order and replayed frames, and
//! garbage or replayed tokens at the upgrade, all from a seeded RNG
//! (`RAPPORT_HOSTILE_SEED=n` replays a run's frames). Meanwhile two
//! well-behaved peers keep editing one document. The relay must:
//!
//! - never panic (a panic hook counts panics on every thread);
//! - answer every bad token with 401 (and count each in its metrics);
//! - answer every connection: a frame that breaks the protocol closes the
//!   connection, a harmless one leaves it serving (a probe `request` is
//!   answered), whatever else ends in an answer or a close, never silence;
//! - keep the good peers' round trips under a generous bound and their
//!   document free of anyone else's changes;
//! - keep its memory bounded and its gauges back at their baseline after;
//! - accept a fresh peer afterwards.
//!
//! The good peers and the newcomer share their document through a
//! workspace. Half the attackers' keys are staff there too: to them the
//! good document is open to read and write, and still nothing they send
//! may change it; to the other half it is a document they may not see.
//!
//! Memory is measured for the whole process, so this file holds this one
//! test. The frames, tokens, attacker state and good peers are in
//! `rapport_tests::hostile`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use automerge::Automerge;
use futures_util::SinkExt;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rapport_protocol::wire::{Join, Leave, Message};
use rapport_server::{AuthMode, Limits};
use rapport_tests::hostile::frames::{random_bytes, random_doc, request};
use rapport_tests::hostile::good_pair::GoodPair;
use rapport_tests::hostile::session::{Class, Session};
use rapport_tests::hostile::socket::{join, read_until};
use rapport_tests::hostile::tokens::{UsedTokens, bad_token};
use rapport_tests::hostile::{
    ANSWER_BOUND, GOOD, MAX_DOCS, MAX_FRAME, attacker_key, insiders, peer_id,
};
use rapport_tests::peer::{TestPeer, actor_of, key, mint_token, open_socket};
use rapport_tests::process::{count_panics, panics, rss_kib};
use rapport_tests::relay::{TempDir, TestRelay};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

/// Connections sending at the same time.
const ATTACKERS: u64 = 50;
/// Connections each attacker opens, one after the other, in the storm.
const SESSIONS: u64 = 24;
/// And in the warm-up before memory is first measured.
const WARMUP_SESSIONS: u64 = 4;
/// Growth of resident memory allowed from after the warm-up to after the
/// storm, and at its peak during it.
const RSS_GROWTH_LIMIT_KIB: u64 = 64 * 1024;
const RSS_PEAK_LIMIT_KIB: u64 = 256 * 1024;

// ---------------------------------------------------------------------------
// What attackers share

#[derive(Default)]
struct Shared {
    /// Tokens the relay already accepted once.
    used_tokens: UsedTokens,
    /// Frames the relay sent the good peers, to replay at it.
    captured: Vec<Message>,
    /// Upgrades answered 401.
    unauthorized: AtomicU64,
    /// Frames sent on joined or joining connections, by [`Class`].
    frames: [AtomicU64; 3],
    connections: AtomicU64,
}

impl Shared {
    fn count(&self, class: Class) {
        self.frames[class as usize].fetch_add(1, Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------------------
// Attacks

/// Tries an upgrade with a bad token; it must be refused with 401.
async fn attack_token(rng: &mut ChaCha8Rng, relay: &TestRelay, shared: &Shared) -> Result<()> {
    let token = bad_token(rng, relay, &shared.used_tokens);
    let in_query = rng.random_bool(0.3);
    let mut request = match (&token, in_query) {
        (Some(t), true) => {
            let escaped: String = t
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            format!("{}?token={escaped}", relay.url()).into_client_request()?
        }
        _ => relay.url().into_client_request()?,
    };
    if let (Some(t), false) = (&token, in_query) {
        // Header values are visible ASCII.
        let t: String = t.chars().filter(|c| (' '..='~').contains(c)).collect();
        let scheme = if rng.random_bool(0.9) {
            "Bearer"
        } else {
            "Basic"
        };
        request
            .headers_mut()
            .insert("Authorization", format!("{scheme} {t}").parse()?);
    }
    let status = match tokio::time::timeout(ANSWER_BOUND, tokio_tungstenite::connect_async(request))
        .await
        .context("no answer to an upgrade with a bad token")?
    {
        Ok(_) => bail!("the relay accepted a bad token: {token:?}"),
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => bail!("upgrade with a bad token failed oddly: {e}"),
    };
    ensure!(status == 401, "a bad token got HTTP {status}: {token:?}");
    shared.unauthorized.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// A connection with a good token that sends a run of hostile frames, then
/// checks the relay kept its side of the bargain.
async fn attack_frames(
    rng: &mut ChaCha8Rng,
    relay: &TestRelay,
    shared: &Shared,
    me: String,
) -> Result<()> {
    let token = mint_token(&attacker_key(rng), &relay.relay_id);
    let mut socket = open_socket(&relay.url(), Some(&token)).await?;
    shared.used_tokens.push(token);
    let mut session = Session::new(rng, &shared.captured, me.clone());
    // Half the connections send long runs of frames the relay must take
    // (and maybe one more of any kind at the end); the others anything.
    let noisy = session.rng.random_bool(0.5);
    if noisy || session.rng.random_bool(0.85) {
        join(&mut socket, &me)
            .await
            .context("a proper join was refused")?;
        session.joined = true;
    }
    let mut worst = Class::Harmless;
    let frames = if noisy {
        session.harmless_only = true;
        session.rng.random_range(10..=80)
    } else {
        session.rng.random_range(1..=30)
    };
    for n in 0..frames {
        if noisy && n + 1 == frames && session.rng.random_bool(0.5) {
            session.harmless_only = false;
        }
        let (frame, class) = session.next_frame();
        shared.count(class);
        worst = worst.max(class);
        if socket.send(frame).await.is_err() {
            // The relay closed already: only allowed after a frame that
            // may close.
            ensure!(worst > Class::Harmless, "closed after harmless frames");
            return Ok(());
        }
        if worst == Class::Fatal {
            break;
        }
    }
    // The probe: a request for a new document (over the limit, fatal).
    let probe = random_doc(session.rng);
    let probe_message = if session.joined {
        worst = worst.max(session.open(probe));
        request(&me, probe)
    } else {
        Message::Join(Join {
            sender_id: peer_id(&me),
            peer_metadata: None,
            supported_protocol_versions: vec!["1".into()],
        })
    };
    let _ = socket
        .send(tungstenite::Message::binary(probe_message.encode()))
        .await;
    let joined = session.joined;
    let answered = read_until(&mut socket, |m| match m {
        Message::Peer(_) => !joined,
        Message::Sync(s) => s.document_id == probe,
        Message::DocUnavailable(u) => u.document_id == probe,
        _ => false,
    })
    .await
    .map_err(|e| {
        anyhow::anyhow!(
            "{e} (after a {worst:?} run, joined {joined}: {:?})",
            session.sent
        )
    })?;
    match worst {
        Class::Harmless => ensure!(answered, "closed after harmless frames"),
        // Frames are handled in order: nothing after a fatal one is.
        Class::Fatal => ensure!(
            !answered,
            "a fatal frame left the connection serving (joined {}, sent {:?})",
            session.joined,
            session.sent
        ),
        Class::Unknown => {}
    }
    match session.rng.random_range(0..3) {
        0 => {
            let _ = socket.close(None).await;
        }
        1 => {
            let _ = socket
                .send(tungstenite::Message::binary(
                    Message::Leave(Leave {
                        sender_id: peer_id(&me),
                    })
                    .encode(),
                ))
                .await;
        }
        _ => drop(socket),
    }
    Ok(())
}

/// Raw TCP: garbage instead of HTTP, or a real upgrade followed by frames
/// that break the WebSocket framing itself.
async fn attack_raw(rng: &mut ChaCha8Rng, relay: &TestRelay, shared: &Shared) -> Result<()> {
    let mut tcp = TcpStream::connect(relay.addr).await?;
    if rng.random_bool(0.4) {
        // Not starting with an empty line, which HTTP servers skip.
        let mut garbage = vec![rng.random_range(b'!'..=0xff)];
        garbage.extend(random_bytes(rng, 300));
        garbage.extend(b"\r\n\r\n");
        tcp.write_all(&garbage).await?;
        return expect_close(&mut tcp).await.context("after HTTP garbage");
    }
    let token = mint_token(&attacker_key(rng), &relay.relay_id);
    let upgrade = format!(
        "GET /sync HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {token}\r\n\r\n",
        relay.addr
    );
    tcp.write_all(upgrade.as_bytes()).await?;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let n = tokio::time::timeout(ANSWER_BOUND, tcp.read(&mut byte))
            .await
            .context("no upgrade answer")??;
        ensure!(n == 1, "closed during the upgrade");
        head.push(byte[0]);
    }
    ensure!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    shared.used_tokens.push(token);
    let payload = random_bytes(rng, 40);
    let mask: [u8; 4] = rng.random();
    let masked: Vec<u8> = payload
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ mask[i % 4])
        .collect();
    let frame: Vec<u8> = match rng.random_range(0..6) {
        // Unmasked, which a client must never send.
        0 => [vec![0x82, payload.len() as u8], payload].concat(),
        // A reserved opcode.
        1 => [
            vec![0x83, 0x80 | payload.len() as u8],
            mask.to_vec(),
            masked,
        ]
        .concat(),
        // Reserved bits set.
        2 => [
            vec![0xf2, 0x80 | payload.len() as u8],
            mask.to_vec(),
            masked,
        ]
        .concat(),
        // A continuation with nothing to continue.
        3 => [
            vec![0x80, 0x80 | payload.len() as u8],
            mask.to_vec(),
            masked,
        ]
        .concat(),
        // A fragmented ping.
        4 => [
            vec![0x09, 0x80 | payload.len() as u8],
            mask.to_vec(),
            masked,
        ]
        .concat(),
        // A header announcing 2^62 bytes.
        _ => [
            vec![0x82, 0xff],
            (1u64 << 62).to_be_bytes().to_vec(),
            mask.to_vec(),
        ]
        .concat(),
    };
    tcp.write_all(&frame).await?;
    expect_close(&mut tcp).await.context("after a broken frame")
}

/// Reads until the relay closes the TCP connection.
async fn expect_close(tcp: &mut TcpStream) -> Result<()> {
    let deadline = tokio::time::Instant::now() + ANSWER_BOUND;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Err(_) => bail!("the relay kept a broken connection open"),
            Ok(Ok(0) | Err(_)) => return Ok(()),
            Ok(Ok(_)) => {}
        }
    }
}

/// One attacker: `sessions` connections one after another.
async fn attacker(
    relay: Arc<TestRelay>,
    shared: Arc<Shared>,
    seed: u64,
    index: u64,
    sessions: u64,
) -> Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(index));
    for s in 0..sessions {
        shared.connections.fetch_add(1, Ordering::Relaxed);
        let me = format!("attacker-{index}-{s}");
        let result = match rng.random_range(0..10) {
            0..=2 => attack_token(&mut rng, &relay, &shared).await,
            3 => attack_raw(&mut rng, &relay, &shared).await,
            _ => attack_frames(&mut rng, &relay, &shared, me).await,
        };
        result.with_context(|| format!("attacker {index}, session {s}"))?;
    }
    Ok(())
}

/// Runs every attacker while the good pair keeps editing.
async fn storm(
    relay: &Arc<TestRelay>,
    shared: &Arc<Shared>,
    good: &mut GoodPair,
    seed: u64,
    sessions: u64,
) -> Result<u64> {
    let peak = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (Arc::clone(&peak), Arc::clone(&done));
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                if let Ok(rss) = rss_kib() {
                    peak.fetch_max(rss, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let attackers: Vec<_> = (0..ATTACKERS)
        .map(|i| {
            tokio::spawn(attacker(
                Arc::clone(relay),
                Arc::clone(shared),
                seed,
                i,
                sessions,
            ))
        })
        .collect();
    let attacking = Arc::new(AtomicBool::new(true));
    let all = tokio::spawn({
        let attacking = Arc::clone(&attacking);
        async move {
            let results = futures_util::future::join_all(attackers).await;
            attacking.store(false, Ordering::Relaxed);
            results
        }
    });
    // Whole rounds only: a round cut short would leave its edit concurrent
    // with the next one.
    while attacking.load(Ordering::Relaxed) {
        good.round().await?;
    }
    let results = all.await?;
    // At least a few rounds after the storm too.
    for _ in 0..3 {
        good.round().await?;
    }
    done.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    for result in results {
        result.context("an attacker panicked")??;
    }
    Ok(peak.load(Ordering::Relaxed))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_hostile_input_leaves_the_relay_serving() -> Result<()> {
    count_panics();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let seed: u64 = std::env::var("RAPPORT_HOSTILE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(9);
    println!("seed {seed} (rerun with RAPPORT_HOSTILE_SEED={seed})");
    let dir = TempDir::new("hostile");
    let limits = Limits {
        max_frame_bytes: MAX_FRAME,
        max_documents_per_connection: MAX_DOCS,
        unload_idle_documents_after: Duration::from_millis(300),
        ..Limits::default()
    };
    let relay = Arc::new(TestRelay::start_with(dir.path(), AuthMode::Token, limits).await?);
    // The newcomer at the end (key 3) shares the good document too, and so
    // do half the attackers' keys.
    let newcomer = key(3);
    let insiders = insiders();
    let also: Vec<_> = std::iter::once(&newcomer).chain(&insiders).collect();
    let mut good = GoodPair::start(&relay, &also).await?;
    for _ in 0..3 {
        good.round().await?;
    }
    let captured: Vec<Message> = good.bob.with(|s| {
        s.received
            .iter()
            .filter(|m| matches!(m, Message::Sync(_)))
            .cloned()
            .collect()
    });
    let shared = Arc::new(Shared {
        captured,
        ..Shared::default()
    });

    let started = std::time::Instant::now();
    storm(&relay, &shared, &mut good, seed, WARMUP_SESSIONS).await?;
    relay.gauges_reach(2, 1).await?;
    let rss_before = rss_kib()?;
    shared.connections.store(0, Ordering::Relaxed);
    for counter in &shared.frames {
        counter.store(0, Ordering::Relaxed);
    }

    let peak = storm(&relay, &shared, &mut good, seed + 1, SESSIONS).await?;
    let elapsed = started.elapsed();
    relay.gauges_reach(2, 1).await?;
    let rss_after = rss_kib()?;
    println!(
        "{} connections; frames harmless {}, unknown {}, fatal {}; {} refused tokens in all; {elapsed:?}; \
         {} good round trips, slowest {:?}; VmRSS {rss_before} KiB -> peak {peak} KiB -> {rss_after} KiB",
        shared.connections.load(Ordering::Relaxed),
        shared.frames[0].load(Ordering::Relaxed),
        shared.frames[1].load(Ordering::Relaxed),
        shared.frames[2].load(Ordering::Relaxed),
        shared.unauthorized.load(Ordering::Relaxed),
        good.rounds,
        good.slowest,
    );

    ensure!(panics() == 0, "something panicked (see the output above)");
    good.check().await?;
    ensure!(
        relay.metric("rapport_auth_failures_total").await?
            == shared.unauthorized.load(Ordering::Relaxed),
        "every refused token is counted once"
    );
    ensure!(
        relay.metric("rapport_dropped_messages_total").await? > 0,
        "unknown types were dropped, not fatal"
    );
    ensure!(
        rss_after.saturating_sub(rss_before) < RSS_GROWTH_LIMIT_KIB,
        "resident memory grew by {} KiB (limit {RSS_GROWTH_LIMIT_KIB} KiB)",
        rss_after - rss_before
    );
    ensure!(
        peak.saturating_sub(rss_before) < RSS_PEAK_LIMIT_KIB,
        "resident memory peaked {} KiB above the baseline (limit {RSS_PEAK_LIMIT_KIB} KiB)",
        peak - rss_before
    );

    // A newcomer is served, and gets the good document as the pair has it.
    let heads = good.alice.with(|s| s.doc(GOOD).get_heads());
    let fresh = TestPeer::connect_as(&relay.url(), &relay.relay_id, &key(3), "fresh").await?;
    fresh.open(GOOD, Automerge::new().with_actor(actor_of(&key(3), 1)));
    fresh
        .wait_until(|s| s.doc(GOOD).get_heads() == heads)
        .await?;
    let (status, _) = relay.get("/healthz").await?;
    ensure!(status == 200, "/healthz answered {status}");
    Ok(())
}
