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

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, ObjType, ROOT, ReadDoc};
use futures_util::{SinkExt, StreamExt};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rapport_protocol::ids::{DocumentId, PeerId, StorageId, UnixMillis};
use rapport_protocol::token;
use rapport_protocol::wire::{
    DocMessage, DocUnavailable, Documents, Ephemeral, ErrorMessage, Join, Leave, Message, Peer,
    PeerMetadata, RejectReason, Rejected, RemoteHeads, RemoteHeadsChanged,
    RemoteSubscriptionChange,
};
use rapport_server::{AuthMode, Limits};
use rapport_tests::peer::{TestPeer, actor_of, key, mint_token, now, open_socket};
use rapport_tests::relay::{TempDir, TestRelay};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connections sending at the same time.
const ATTACKERS: u64 = 50;
/// Connections each attacker opens, one after the other, in the storm.
const SESSIONS: u64 = 24;
/// And in the warm-up before memory is first measured.
const WARMUP_SESSIONS: u64 = 4;
/// The relay's frame limit here: oversize frames stay cheap to make.
const MAX_FRAME: usize = 128 * 1024;
/// Documents one connection may open here.
const MAX_DOCS: usize = 16;
/// The good peers' document.
const GOOD: DocumentId = DocumentId::from_bytes([42; 16]);
/// A generous bound on one good round trip. Not a latency target: it
/// catches a relay that stalls its good peers.
const BOUND: Duration = Duration::from_secs(5);
/// A bound on any answer the relay owes an attacker, which sends up to 80
/// frames before it reads: it catches silence, not slowness.
const ANSWER_BOUND: Duration = Duration::from_secs(15);
/// Growth of resident memory allowed from after the warm-up to after the
/// storm, and at its peak during it.
const RSS_GROWTH_LIMIT_KIB: u64 = 64 * 1024;
const RSS_PEAK_LIMIT_KIB: u64 = 256 * 1024;

static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Memory is measured for the whole process: the tests here take turns.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn count_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default(info);
    }));
}

fn rss_kib() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc/self/status")
}

async fn metric(relay: &TestRelay, name: &str) -> Result<u64> {
    let (status, body) = relay.get("/metrics").await?;
    ensure!(status == 200, "/metrics answered {status}");
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .with_context(|| format!("{name} missing from /metrics"))
}

/// Waits until the relay has `connections` open and `documents` in memory.
async fn gauges_reach(relay: &TestRelay, connections: u64, documents: u64) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let open = metric(relay, "rapport_connections").await?;
        let loaded = metric(relay, "rapport_documents_loaded").await?;
        if (open, loaded) == (connections, documents) {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "gauges stuck at {open} connections (want {connections}), {loaded} documents (want {documents})"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------
// The good peers

/// Two peers that take turns editing [`GOOD`]; each edit appends its round
/// number to a list, so that at the end every round must be there.
struct GoodPair {
    alice: TestPeer,
    bob: TestPeer,
    rounds: u64,
    slowest: Duration,
}

impl GoodPair {
    async fn start(relay: &TestRelay) -> Result<Self> {
        let alice = TestPeer::connect_as(&relay.url(), &relay.relay_id, &key(1), "alice").await?;
        let bob = TestPeer::connect_as(&relay.url(), &relay.relay_id, &key(2), "bob").await?;
        let mut doc = Automerge::new().with_actor(actor_of(&key(1), 1));
        doc.transact(|tx| tx.put_object(ROOT, "log", ObjType::List))
            .unwrap();
        alice.open(GOOD, doc);
        bob.open(GOOD, Automerge::new().with_actor(actor_of(&key(2), 1)));
        bob.wait_until(|s| s.doc(GOOD).get(ROOT, "log").ok().flatten().is_some())
            .await?;
        Ok(Self {
            alice,
            bob,
            rounds: 0,
            slowest: Duration::ZERO,
        })
    }

    /// One edit by one peer, seen by the other within [`BOUND`].
    async fn round(&mut self) -> Result<()> {
        self.rounds += 1;
        let n = self.rounds as i64;
        let (writer, reader) = if n % 2 == 0 {
            (&self.alice, &self.bob)
        } else {
            (&self.bob, &self.alice)
        };
        let started = tokio::time::Instant::now();
        writer.change(GOOD, |tx| {
            let (_, log) = tx.get(ROOT, "log")?.expect("the log exists");
            let end = tx.length(&log);
            tx.insert(&log, end, n)?;
            tx.put(ROOT, "n", n)
        })?;
        let seen = reader.wait_until(|s| {
            s.doc(GOOD)
                .get(ROOT, "n")
                .ok()
                .flatten()
                .and_then(|(v, _)| v.as_i64())
                == Some(n)
        });
        tokio::time::timeout(BOUND, seen)
            .await
            .with_context(|| format!("round trip {n} took longer than {BOUND:?}"))??;
        self.slowest = self.slowest.max(started.elapsed());
        Ok(())
    }

    /// Both have the same heads, every round in the log, and nobody else's
    /// changes.
    async fn check(&self) -> Result<()> {
        let heads = self.alice.with(|s| s.doc(GOOD).get_heads());
        self.bob
            .wait_until(|s| s.doc(GOOD).get_heads() == heads)
            .await?;
        let (log, actors) = self.bob.with(|s| {
            let doc = s.doc(GOOD);
            let (_, list) = doc.get(ROOT, "log").unwrap().expect("the log exists");
            let log: Vec<i64> = (0..doc.length(&list))
                .filter_map(|i| doc.get(&list, i).ok().flatten()?.0.as_i64())
                .collect();
            let actors: std::collections::BTreeSet<ActorId> = doc
                .get_changes(&[])
                .iter()
                .map(|c| c.actor_id().clone())
                .collect();
            (log, actors)
        });
        let mut sorted = log.clone();
        sorted.sort_unstable();
        let expected: Vec<i64> = (1..=self.rounds as i64).collect();
        ensure!(sorted == expected, "the log lost or gained edits: {log:?}");
        let ours: std::collections::BTreeSet<ActorId> =
            [actor_of(&key(1), 1), actor_of(&key(2), 1)].into();
        ensure!(
            actors == ours,
            "changes by someone else reached the good document: {actors:?}"
        );
        for peer in [&self.alice, &self.bob] {
            if let Some(why) = peer.with(|s| s.closed.clone()) {
                bail!("{}: cut off during the storm: {why}", peer.peer_id);
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// What attackers share

#[derive(Default)]
struct Shared {
    /// Tokens the relay already accepted once.
    used_tokens: Mutex<Vec<String>>,
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What the relay must do with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    /// Dropped or handled; the connection keeps serving.
    Harmless,
    /// Anything but silence: handled, or the connection closes.
    Unknown,
    /// The connection must close.
    Fatal,
}

fn peer_id(name: &str) -> PeerId {
    name.parse().expect("attacker names are not empty")
}

fn random_doc(rng: &mut ChaCha8Rng) -> DocumentId {
    DocumentId::random(rng)
}

fn random_string(rng: &mut ChaCha8Rng, max: usize) -> String {
    let len = rng.random_range(0..=max);
    (0..len)
        .map(|_| match rng.random_range(0..10) {
            0 => char::from_u32(rng.random_range(0x80..0x3000)).unwrap_or('?'),
            _ => rng.random_range(b' '..=b'~') as char,
        })
        .collect()
}

fn random_bytes(rng: &mut ChaCha8Rng, max: usize) -> Vec<u8> {
    let mut bytes = vec![0; rng.random_range(0..=max)];
    rng.fill_bytes(&mut bytes);
    bytes
}

fn empty_sync_data() -> Vec<u8> {
    automerge::sync::Message {
        heads: vec![],
        need: vec![],
        have: vec![automerge::sync::Have::default()],
        changes: automerge::sync::ChunkList::empty(),
        flags: None,
        version: automerge::sync::MessageVersion::V1,
    }
    .encode()
}

fn request(me: &str, doc: DocumentId) -> Message {
    Message::Request(DocMessage {
        sender_id: peer_id(me),
        target_id: peer_id("relay"),
        document_id: doc,
        data: empty_sync_data(),
    })
}

/// CBOR `{"type": <t>, "senderId": <me>, …random text fields}`: a message
/// type this relay does not know.
fn unknown_type(rng: &mut ChaCha8Rng, me: &str) -> Vec<u8> {
    fn text(out: &mut Vec<u8>, s: &str) {
        let len = s.len();
        if len < 24 {
            out.push(0x60 | len as u8);
        } else {
            out.push(0x79);
            out.extend((len as u16).to_be_bytes());
        }
        out.extend(s.as_bytes());
    }
    let extra = rng.random_range(0..4usize);
    let mut out = vec![0xa2 + extra as u8];
    text(&mut out, "type");
    let kind = match rng.random_range(0..3) {
        0 => format!("rapport/x-{}", rng.random_range(0..1000)),
        1 => "presence-v9".to_owned(),
        _ => format!("x{}", random_string(rng, 40).replace(['"', '\\'], "")),
    };
    // Never a type this relay knows.
    let kind = if KNOWN_TYPES.contains(&kind.as_str()) {
        "unknown".to_owned()
    } else {
        kind
    };
    text(&mut out, &kind);
    text(&mut out, "senderId");
    text(&mut out, me);
    for i in 0..extra {
        text(&mut out, &format!("field{i}"));
        text(&mut out, &random_string(rng, 30));
    }
    out
}

const KNOWN_TYPES: [&str; 12] = [
    "join",
    "peer",
    "error",
    "leave",
    "request",
    "sync",
    "doc-unavailable",
    "ephemeral",
    "remote-subscription-change",
    "remote-heads-changed",
    "rapport/rejected",
    "rapport/documents",
];

/// One well-formed message of any type, with `sender` as its sender.
fn any_message(rng: &mut ChaCha8Rng, sender: &str, captured: &[Message]) -> Message {
    let sender = peer_id(sender);
    let target = peer_id("relay");
    let doc = if rng.random_bool(0.3) {
        GOOD
    } else {
        random_doc(rng)
    };
    match rng.random_range(0..12) {
        0 => Message::Join(Join {
            sender_id: sender,
            peer_metadata: Some(PeerMetadata {
                storage_id: Some(storage_id(&random_string(rng, 12))),
                is_ephemeral: rng.random(),
            }),
            supported_protocol_versions: vec![random_string(rng, 3)],
        }),
        1 => Message::Peer(Peer {
            sender_id: sender,
            peer_metadata: None,
            selected_protocol_version: "1".into(),
            target_id: target,
        }),
        2 => Message::Error(ErrorMessage {
            sender_id: Some(sender),
            message: random_string(rng, 50),
            target_id: None,
        }),
        3 => Message::Leave(Leave { sender_id: sender }),
        4 => Message::Request(DocMessage {
            sender_id: sender,
            target_id: target,
            document_id: doc,
            data: empty_sync_data(),
        }),
        5 => match captured.get(rng.random_range(0..captured.len().max(1))) {
            Some(Message::Sync(m)) => Message::Sync(DocMessage {
                sender_id: sender,
                target_id: target,
                document_id: m.document_id,
                data: m.data.clone(),
            }),
            _ => Message::Sync(DocMessage {
                sender_id: sender,
                target_id: target,
                document_id: doc,
                data: random_bytes(rng, 64),
            }),
        },
        6 => Message::DocUnavailable(DocUnavailable {
            sender_id: sender,
            target_id: target,
            document_id: doc,
        }),
        7 => Message::Ephemeral(Ephemeral {
            sender_id: sender,
            target_id: target,
            count: rng.random(),
            session_id: random_string(rng, 20),
            document_id: doc,
            data: vec![0xa1, 0x61, b'x', 0x01],
        }),
        8 => Message::RemoteSubscriptionChange(RemoteSubscriptionChange {
            sender_id: sender,
            target_id: target,
            add: Some(vec![storage_id("storage-x")]),
            remove: None,
        }),
        9 => Message::RemoteHeadsChanged(RemoteHeadsChanged {
            sender_id: sender,
            target_id: target,
            document_id: doc,
            new_heads: vec![(
                storage_id("storage-y"),
                RemoteHeads {
                    heads: vec![random_string(rng, 44)],
                    timestamp: rng.random(),
                },
            )],
        }),
        10 => Message::Rejected(Rejected {
            sender_id: sender,
            target_id: target,
            document_id: doc,
            changes: vec![],
            reason: RejectReason::ReadOnly,
            message: random_string(rng, 40),
        }),
        _ => Message::Documents(Documents {
            sender_id: sender,
            target_id: target,
            documents: vec![doc],
        }),
    }
}

/// A storage id from any text (they are opaque strings).
fn storage_id(text: &str) -> StorageId {
    let text = if text.is_empty() { "s" } else { text };
    text.parse().expect("a non-empty storage id")
}

/// Damages an encoded frame: truncates, flips, inserts, or repeats.
fn mutate(rng: &mut ChaCha8Rng, mut frame: Vec<u8>) -> Vec<u8> {
    for _ in 0..rng.random_range(1..4) {
        if frame.is_empty() {
            frame.push(rng.random());
            continue;
        }
        let at = rng.random_range(0..frame.len());
        match rng.random_range(0..5) {
            0 => frame.truncate(at),
            1 => frame[at] ^= 1 << rng.random_range(0..8),
            2 => frame[at] = rng.random(),
            3 => {
                let junk = random_bytes(rng, 8);
                frame.splice(at..at, junk);
            }
            _ => {
                let tail = frame[at..].to_vec();
                frame.extend(tail);
            }
        }
    }
    frame
}

/// The state of one attacking connection.
struct Session<'a> {
    rng: &'a mut ChaCha8Rng,
    shared: &'a Shared,
    me: String,
    joined: bool,
    /// Documents this connection opened (the relay allows [`MAX_DOCS`]).
    opened: std::collections::BTreeSet<DocumentId>,
    /// Only frames the relay must take without closing.
    harmless_only: bool,
    /// What was sent, for a failure's message.
    sent: Vec<String>,
}

/// Whether opening `doc` would leave no room under the relay's limit for
/// the probe at the end of a harmless run.
fn full_without(opened: &std::collections::BTreeSet<DocumentId>, doc: DocumentId) -> bool {
    opened.len() + 1 >= MAX_DOCS && !opened.contains(&doc)
}

/// The rolls of [`Session::next_frame`] that can be harmless.
fn harmless_roll(roll: u32) -> bool {
    matches!(roll, 0..=19 | 60..=76 | 80..=89)
}

impl Session<'_> {
    /// The next frame to send, and what the relay must do with it.
    fn next_frame(&mut self) -> (tungstenite::Message, Class) {
        use tungstenite::Message as Ws;
        let binary = |bytes: Vec<u8>| Ws::binary(bytes);
        let me = self.me.clone();
        let rng = &mut *self.rng;
        let roll = loop {
            let roll = rng.random_range(0..100);
            if !self.harmless_only || harmless_roll(roll) {
                break roll;
            }
        };
        self.sent.push(format!("roll {roll}"));
        match roll {
            // Unknown message types, with any senderId: always dropped.
            0..=14 => {
                let sender = if rng.random_bool(0.8) {
                    me
                } else {
                    random_string(rng, 10)
                };
                (binary(unknown_type(rng, &sender)), Class::Harmless)
            }
            15..=19 => (
                if rng.random() {
                    Ws::Ping(random_bytes(rng, 100).into())
                } else {
                    Ws::Pong(random_bytes(rng, 100).into())
                },
                Class::Harmless,
            ),
            // Random bytes.
            20..=29 => (binary(random_bytes(rng, 600)), Class::Unknown),
            // A well-formed message, then damaged.
            30..=44 => {
                let message = any_message(rng, &me, &self.shared.captured);
                (binary(mutate(rng, message.encode())), Class::Unknown)
            }
            // A text frame.
            45..=47 => (Ws::text(random_string(rng, 100)), Class::Fatal),
            // Oversize.
            48..=50 => {
                let mut big = vec![0u8; MAX_FRAME + rng.random_range(1..MAX_FRAME)];
                rng.fill_bytes(&mut big);
                (binary(big), Class::Fatal)
            }
            // A well-formed message of a known type under someone else's
            // senderId.
            51..=55 => {
                let other = format!("{me}-not");
                let message = any_message(rng, &other, &self.shared.captured);
                let class = if !self.joined {
                    match message {
                        // Its versions may include "1": then it joins.
                        Message::Join(_) => Class::Unknown,
                        _ => Class::Fatal,
                    }
                } else {
                    // Every type's senderId is checked, even ignored ones.
                    Class::Fatal
                };
                (binary(message.encode()), class)
            }
            // A replayed frame the relay sent a good peer, unchanged: its
            // senderId is the relay's.
            56..=59 if !self.shared.captured.is_empty() => {
                let i = rng.random_range(0..self.shared.captured.len());
                let message = self.shared.captured[i].clone();
                (binary(message.encode()), Class::Fatal)
            }
            // Replayed sync data of the good document as our own.
            60..=66 if !self.shared.captured.is_empty() => {
                let i = rng.random_range(0..self.shared.captured.len());
                let Message::Sync(m) = &self.shared.captured[i] else {
                    return (binary(unknown_type(rng, &me)), Class::Harmless);
                };
                if self.harmless_only && full_without(&self.opened, m.document_id) {
                    return (binary(unknown_type(rng, &me)), Class::Harmless);
                }
                let message = Message::Sync(DocMessage {
                    sender_id: peer_id(&me),
                    target_id: m.sender_id.clone(),
                    document_id: m.document_id,
                    data: m.data.clone(),
                });
                let class = self.open(m.document_id);
                (binary(message.encode()), class)
            }
            // A request: for the good document or a new one.
            67..=76 => {
                let mut doc = if rng.random_bool(0.2) {
                    GOOD
                } else {
                    random_doc(rng)
                };
                if self.harmless_only && full_without(&self.opened, doc) {
                    doc = *self.opened.iter().next().expect("full, so not empty");
                }
                let class = self.open(doc);
                (binary(request(&me, doc).encode()), class)
            }
            // Sync data that is not an automerge sync message.
            77..=79 => {
                let message = Message::Sync(DocMessage {
                    sender_id: peer_id(&me),
                    target_id: peer_id("relay"),
                    document_id: if rng.random() { GOOD } else { random_doc(rng) },
                    data: random_bytes(rng, 80),
                });
                (binary(message.encode()), Class::Unknown)
            }
            // Ephemeral messages, every one a new session.
            80..=89 => {
                let message = Message::Ephemeral(Ephemeral {
                    sender_id: peer_id(&me),
                    target_id: peer_id("relay"),
                    count: rng.random_range(0..5),
                    session_id: format!("s{}", rng.random::<u32>()),
                    document_id: if rng.random() { GOOD } else { random_doc(rng) },
                    data: vec![0xa1, 0x61, b'c', 0x01],
                });
                let class = if self.joined {
                    Class::Harmless
                } else {
                    Class::Fatal
                };
                (binary(message.encode()), class)
            }
            // Wrong order: a second `join`, a `peer`, `leave` or `error`.
            _ => {
                let first_join = !self.joined;
                let message = match rng.random_range(0..4) {
                    0 => Message::Join(Join {
                        sender_id: peer_id(&me),
                        peer_metadata: Some(PeerMetadata::default()),
                        supported_protocol_versions: vec!["1".into()],
                    }),
                    1 => Message::Peer(Peer {
                        sender_id: peer_id(&me),
                        peer_metadata: None,
                        selected_protocol_version: "1".into(),
                        target_id: peer_id("relay"),
                    }),
                    2 => Message::Leave(Leave {
                        sender_id: peer_id(&me),
                    }),
                    _ => Message::Error(ErrorMessage {
                        sender_id: Some(peer_id(&me)),
                        message: "hostile".into(),
                        target_id: None,
                    }),
                };
                if first_join && matches!(message, Message::Join(_)) {
                    // A first `join` is the right order after all.
                    self.joined = true;
                    return (binary(message.encode()), Class::Harmless);
                }
                (binary(message.encode()), Class::Fatal)
            }
        }
    }

    /// Opens `doc`: harmless up to the relay's limit, fatal beyond it, and
    /// fatal before `join`.
    fn open(&mut self, doc: DocumentId) -> Class {
        if !self.joined {
            return Class::Fatal;
        }
        if !self.opened.contains(&doc) && self.opened.len() >= MAX_DOCS {
            return Class::Fatal;
        }
        self.opened.insert(doc);
        Class::Harmless
    }
}

// ---------------------------------------------------------------------------
// Attacks

/// Base64url without padding, for hand-made tokens.
fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// A token the relay must refuse (`None`: no token at all).
fn bad_token(rng: &mut ChaCha8Rng, relay: &TestRelay, shared: &Shared) -> Option<String> {
    let signer = key(100 + rng.random_range(0..50));
    let t = now().0;
    match rng.random_range(0..10) {
        0 => None,
        1 => Some(random_string(rng, 200)),
        2 => Some(format!(
            "{}.{}.{}",
            b64url(&random_bytes(rng, 40)),
            b64url(&random_bytes(rng, 120)),
            b64url(&random_bytes(rng, 64))
        )),
        // Well-formed JSON with wrong or wild claims, signed by nobody.
        3 => {
            let header = b64url(br#"{"alg":"EdDSA","typ":"JWT"}"#);
            let claims = serde_json::json!({
                "sub": random_string(rng, 44),
                "aud": if rng.random() { relay.relay_id.clone() } else { random_string(rng, 10) },
                "iat": rng.random::<i64>(),
                "exp": rng.random::<i64>(),
                "jti": random_string(rng, 30),
            });
            Some(format!(
                "{header}.{}.{}",
                b64url(claims.to_string().as_bytes()),
                b64url(&random_bytes(rng, 64))
            ))
        }
        // Another relay's audience.
        4 => Some(mint_token(&signer, "relay-elsewhere")),
        // Expired ten minutes ago.
        5 => Some(
            token::mint(
                &signer,
                &relay.relay_id,
                UnixMillis(t - 600_000),
                60,
                &mut rand::rng(),
            )
            .expect("a 60 s token"),
        ),
        // Issued ten minutes from now.
        6 => Some(
            token::mint(
                &signer,
                &relay.relay_id,
                UnixMillis(t + 600_000),
                60,
                &mut rand::rng(),
            )
            .expect("a 60 s token"),
        ),
        // One signature byte off.
        7 => {
            let genuine = mint_token(&signer, &relay.relay_id);
            let (rest, signature) = genuine.rsplit_once('.').expect("three parts");
            let mut sig: Vec<char> = signature.chars().collect();
            // Not the last character: some of its bits are padding.
            let i = rng.random_range(0..sig.len() - 1);
            sig[i] = if sig[i] == 'A' { 'B' } else { 'A' };
            Some(format!("{rest}.{}", sig.into_iter().collect::<String>()))
        }
        // Replayed: already accepted once.
        _ => {
            let used = lock(&shared.used_tokens);
            match used.len() {
                0 => Some("replay-not-ready".into()),
                n => Some(used[rng.random_range(0..n)].clone()),
            }
        }
    }
}

/// Tries an upgrade with a bad token; it must be refused with 401.
async fn attack_token(rng: &mut ChaCha8Rng, relay: &TestRelay, shared: &Shared) -> Result<()> {
    let token = bad_token(rng, relay, shared);
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

/// Reads until `done` says so, the relay closes, or [`ANSWER_BOUND`] passes.
/// Returns whether the connection is still open.
async fn read_until(
    socket: &mut Socket,
    mut done: impl FnMut(&Message) -> bool,
) -> Result<bool, &'static str> {
    let deadline = tokio::time::Instant::now() + ANSWER_BOUND;
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Err(_) => return Err("the relay neither answered nor closed"),
            Ok(None | Some(Err(_)) | Some(Ok(tungstenite::Message::Close(_)))) => {
                return Ok(false);
            }
            Ok(Some(Ok(tungstenite::Message::Binary(bytes)))) => match Message::decode(&bytes) {
                Ok(Message::Error(_)) => {}
                Ok(message) if done(&message) => return Ok(true),
                Ok(_) => {}
                Err(_) => return Err("the relay sent an undecodable frame"),
            },
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// A connection with a good token that sends a run of hostile frames, then
/// checks the relay kept its side of the bargain.
async fn attack_frames(
    rng: &mut ChaCha8Rng,
    relay: &TestRelay,
    shared: &Shared,
    me: String,
) -> Result<()> {
    let token = mint_token(&key(100 + rng.random_range(0..50)), &relay.relay_id);
    let mut socket = open_socket(&relay.url(), Some(&token)).await?;
    lock(&shared.used_tokens).push(token);
    let mut session = Session {
        rng,
        shared,
        me: me.clone(),
        joined: false,
        opened: std::collections::BTreeSet::new(),
        harmless_only: false,
        sent: Vec::new(),
    };
    // Half the connections send long runs of frames the relay must take
    // (and maybe one more of any kind at the end); the others anything.
    let noisy = session.rng.random_bool(0.5);
    if noisy || session.rng.random_bool(0.85) {
        let join = Message::Join(Join {
            sender_id: peer_id(&me),
            peer_metadata: Some(PeerMetadata::default()),
            supported_protocol_versions: vec!["1".into()],
        });
        socket
            .send(tungstenite::Message::binary(join.encode()))
            .await?;
        let answered = read_until(&mut socket, |m| matches!(m, Message::Peer(_)))
            .await
            .map_err(anyhow::Error::msg)?;
        ensure!(answered, "a proper join was refused");
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
    let token = mint_token(&key(100 + rng.random_range(0..50)), &relay.relay_id);
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
    lock(&shared.used_tokens).push(token);
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
    let _turn = ONE_AT_A_TIME.lock().await;
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
    let mut good = GoodPair::start(&relay).await?;
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
    gauges_reach(&relay, 2, 1).await?;
    let rss_before = rss_kib()?;
    shared.connections.store(0, Ordering::Relaxed);
    for counter in &shared.frames {
        counter.store(0, Ordering::Relaxed);
    }

    let peak = storm(&relay, &shared, &mut good, seed + 1, SESSIONS).await?;
    let elapsed = started.elapsed();
    gauges_reach(&relay, 2, 1).await?;
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

    ensure!(
        PANICS.load(Ordering::SeqCst) == 0,
        "something panicked (see the output above)"
    );
    good.check().await?;
    ensure!(
        metric(&relay, "rapport_auth_failures_total").await?
            == shared.unauthorized.load(Ordering::Relaxed),
        "every refused token is counted once"
    );
    ensure!(
        metric(&relay, "rapport_dropped_messages_total").await? > 0,
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

/// A connection that has joined as `name`, with the relay's `peer` read.
async fn joined(relay: &TestRelay, signer: u8, name: &str) -> Result<Socket> {
    let token = mint_token(&key(signer), &relay.relay_id);
    let mut socket = open_socket(&relay.url(), Some(&token)).await?;
    let join = Message::Join(Join {
        sender_id: peer_id(name),
        peer_metadata: Some(PeerMetadata::default()),
        supported_protocol_versions: vec!["1".into()],
    });
    socket
        .send(tungstenite::Message::binary(join.encode()))
        .await?;
    let answered = read_until(&mut socket, |m| matches!(m, Message::Peer(_)))
        .await
        .map_err(anyhow::Error::msg)?;
    ensure!(answered, "join refused");
    Ok(socket)
}

async fn send(socket: &mut Socket, message: Message) -> Result<()> {
    Ok(socket
        .send(tungstenite::Message::binary(message.encode()))
        .await?)
}

/// The relay keeps the last `count` of each `senderId:sessionId` seen on a
/// document to drop stale ephemeral messages. Those entries must not pile
/// up: a peer that sends each message under a new (and long) session id
/// must not make the relay hold what it sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_session_ids_do_not_pile_up() -> Result<()> {
    let _turn = ONE_AT_A_TIME.lock().await;
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
