//! Floods and bombs: a decompression bomb is refused before it is
//! inflated; one key cannot fill the memory of used tokens, and tokens from
//! before a restart or from the future are refused. The relay runs in a
//! process of its own, so that its memory is its own to measure, and
//! someone else keeps syncing while the attack goes on and after it.

use std::path::Path;
use std::time::Duration;

use anyhow::{Result, ensure};
use automerge::sync::{self, MessageVersion};
use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT, ReadDoc, ScalarValue, Value};
use ed25519_dalek::SigningKey;
use rapport_client::transport::ConnectError;
use rapport_protocol::ids::DocumentId;
use rapport_protocol::wire::{DocMessage, Message};
use rapport_tests::child_relay::ChildRelay;
use rapport_tests::peer::{PeerState, TestPeer, key, mint_token, open_socket};
use rapport_tests::relay::TempDir;

use super::{doc_by, person_at};

/// The relay as a process of its own.
const RELAY_CHILD: &str = env!("CARGO_BIN_EXE_relay-child");

/// How much the relay's peak memory may grow while it takes an attack:
/// far less than one bomb inflated in full.
const GROWTH_KIB: u64 = 128 * 1024;

/// A compressed change chunk whose body inflates to `inflated` zero bytes.
pub(crate) fn bomb_chunk(inflated: usize) -> Vec<u8> {
    use std::io::Write as _;
    let mut deflater = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    deflater
        .write_all(&vec![0u8; inflated])
        .expect("writing to memory");
    let deflated = deflater.finish().expect("writing to memory");
    let mut chunk = vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 2];
    let mut len = deflated.len();
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            chunk.push(byte);
            break;
        }
        chunk.push(byte | 0x80);
    }
    chunk.extend(deflated);
    chunk
}

/// A sync message's data carrying one bomb of 512 MiB of zeros, which
/// deflate to about half a megabyte: one frame.
pub(crate) fn bomb_data() -> Vec<u8> {
    sync::Message {
        heads: Vec::new(),
        need: Vec::new(),
        have: Vec::new(),
        changes: sync::ChunkList::from(vec![bomb_chunk(512 * 1024 * 1024)]),
        flags: None,
        version: MessageVersion::V1,
    }
    .encode()
}

/// Someone going about their work: one key writing a document of its own
/// and reading it back, each time on new connections (new tokens), so that
/// a round shows the relay still lets them in, stores and answers.
pub(crate) struct Honest {
    url: String,
    relay_id: String,
    key: SigningKey,
    id: DocumentId,
    doc: Automerge,
    round: i64,
}

impl Honest {
    pub(crate) async fn start(url: &str, relay_id: &str, seed: u8, id: DocumentId) -> Result<Self> {
        let key = key(seed);
        let mut honest = Self {
            url: url.to_owned(),
            relay_id: relay_id.to_owned(),
            doc: doc_by(&key, 1, "start")?,
            key,
            id,
            round: 0,
        };
        honest.round().await?;
        Ok(honest)
    }

    /// One edit, written on one new connection and seen on another.
    pub(crate) async fn round(&mut self) -> Result<()> {
        self.round += 1;
        let (round, id) = (self.round, self.id);
        self.doc
            .transact(|tx| tx.put(ROOT, "round", round))
            .map_err(|failure| failure.error)?;
        let (url, relay_id, key) = (&self.url, &self.relay_id, &self.key);
        let name = format!("honest-writer-{round}");
        let writer = TestPeer::connect_as(url, relay_id, key, &name).await?;
        writer.open(id, self.doc.clone());
        let name = format!("honest-reader-{round}");
        let reader = TestPeer::connect_as(url, relay_id, key, &name).await?;
        reader.open(id, Automerge::new());
        reader
            .wait_until(|s| round_of(s.doc(id)) == Some(round))
            .await?;
        reader.close().await;
        writer.close().await;
        Ok(())
    }
}

/// The text of the `error` message a peer received, if any.
pub(crate) fn protocol_error(state: &PeerState) -> String {
    state
        .received
        .iter()
        .find_map(|m| match m {
            Message::Error(e) => Some(e.message.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// The `round` a document holds.
fn round_of(doc: &Automerge) -> Option<i64> {
    match doc.get(ROOT, "round") {
        Ok(Some((Value::Scalar(value), _))) => match value.as_ref() {
            ScalarValue::Int(n) => Some(*n),
            _ => None,
        },
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_decompression_bomb_is_refused_before_it_is_inflated() -> Result<()> {
    let dir = TempDir::new("attack-bomb");
    let relay = ChildRelay::spawn(Path::new(RELAY_CHILD), dir.path(), &[]).await?;
    let honest_doc = DocumentId::from_bytes([31; 16]);
    let mut honest = Honest::start(&relay.url(), &relay.relay_id, 2, honest_doc).await?;
    let baseline = relay.peak_rss_kib()?;
    let data = bomb_data();
    for round in 0..3u8 {
        // Four bombs at once, and the honest person syncs meanwhile.
        let mut bombers = Vec::new();
        for n in 0..4u8 {
            let token = mint_token(&key(1), &relay.relay_id);
            let name = format!("bomber-{round}-{n}");
            let bomber = TestPeer::connect(&relay.url(), Some(&token), &name).await?;
            bomber.send_raw(tokio_tungstenite::tungstenite::Message::binary(
                Message::Sync(DocMessage {
                    sender_id: bomber.peer_id.clone(),
                    target_id: "relay".parse()?,
                    document_id: DocumentId::from_bytes([32 + 4 * round + n; 16]),
                    data: data.clone(),
                })
                .encode(),
            ));
            bombers.push(bomber);
        }
        honest.round().await?;
        // Each bomber is cut off with a protocol error.
        for bomber in &bombers {
            bomber.wait_until(|s| s.closed.is_some()).await?;
            let (error, closed) = bomber.with(|s| (protocol_error(s), s.closed.clone()));
            let closed = closed.unwrap_or_default();
            ensure!(
                closed.contains("Protocol") && error.contains("malformed sync message"),
                "{}: {error:?}, {closed}",
                bomber.peer_id
            );
        }
    }
    honest.round().await?;
    let growth = relay.peak_rss_kib()?.saturating_sub(baseline);
    ensure!(
        growth < GROWTH_KIB,
        "the relay's peak memory grew by {growth} KiB taking bombs"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bomb_asking_for_a_document_out_of_sight_is_refused_as_for_none() -> Result<()> {
    let dir = TempDir::new("attack-bomb-unseen");
    let relay = ChildRelay::spawn(Path::new(RELAY_CHILD), dir.path(), &[]).await?;
    let mut dirs = Vec::new();
    // A document of a workspace the attacker is not in.
    let owner = person_at(&relay.client_config(), &key(5), &mut dirs)?;
    let ws = tokio::task::block_in_place(|| owner.create_workspace("Acme"))?;
    let unseen = DocumentId::from_bytes([41; 16]);
    tokio::task::block_in_place(|| owner.add_documents(&ws, &[(unseen, None)]))?;
    let writer = TestPeer::connect_as(&relay.url(), &relay.relay_id, &key(5), "owner").await?;
    writer.open(unseen, doc_by(&key(5), 1, "secret")?);
    let mut honest = Honest::start(
        &relay.url(),
        &relay.relay_id,
        2,
        DocumentId::from_bytes([31; 16]),
    )
    .await?;
    let baseline = relay.peak_rss_kib()?;
    let data = bomb_data();
    let nowhere = DocumentId::from_bytes([42; 16]);
    for round in 0..3u8 {
        // Bombs as requests for the unseen document and for one that does
        // not exist; the honest person syncs meanwhile.
        let mut bombers = Vec::new();
        for (n, id) in [unseen, unseen, unseen, nowhere].into_iter().enumerate() {
            let token = mint_token(&key(1), &relay.relay_id);
            let name = format!("bomber-{round}-{n}");
            let bomber = TestPeer::connect(&relay.url(), Some(&token), &name).await?;
            bomber.send_raw(tokio_tungstenite::tungstenite::Message::binary(
                Message::Request(DocMessage {
                    sender_id: bomber.peer_id.clone(),
                    target_id: "relay".parse()?,
                    document_id: id,
                    data: data.clone(),
                })
                .encode(),
            ));
            bombers.push((id, bomber));
        }
        honest.round().await?;
        // Each is cut off with the same protocol error, whether or not the
        // document exists.
        let mut answers = Vec::new();
        for (id, bomber) in &bombers {
            bomber.wait_until(|s| s.closed.is_some()).await?;
            let (error, received) = bomber.with(|s| (protocol_error(s), s.received.len()));
            ensure!(
                error.contains("malformed sync message"),
                "{}: {error:?}",
                bomber.peer_id
            );
            answers.push((error.replace(&id.to_string(), "ID"), received));
        }
        ensure!(
            answers.iter().all(|answer| *answer == answers[3]),
            "{answers:?}"
        );
    }
    honest.round().await?;
    let growth = relay.peak_rss_kib()?.saturating_sub(baseline);
    ensure!(
        growth < GROWTH_KIB,
        "the relay's peak memory grew by {growth} KiB taking bombs"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn one_key_cannot_fill_the_memory_of_used_tokens() -> Result<()> {
    let dir = TempDir::new("attack-replay");
    let limits = [("max_tokens_per_key", 40)];
    let mut relay = ChildRelay::spawn(Path::new(RELAY_CHILD), dir.path(), &limits).await?;
    let mut dirs = Vec::new();
    let flooder = person_at(&relay.client_config(), &key(1), &mut dirs)?;
    let honest_doc = DocumentId::from_bytes([31; 16]);
    let mut honest = Honest::start(&relay.url(), &relay.relay_id, 2, honest_doc).await?;
    let baseline = relay.peak_rss_kib()?;
    // Every API call presents a fresh token: the flooder's share runs out,
    // while the honest person keeps connecting and syncing.
    let flood = tokio::task::spawn_blocking(move || {
        (0..200)
            .map(|_| flooder.workspaces().err().map(|e| e.to_string()))
            .collect::<Vec<_>>()
    });
    honest.round().await?;
    let outcomes = flood.await?;
    let accepted = outcomes.iter().take_while(|o| o.is_none()).count();
    ensure!(accepted == 40, "refused after {accepted} tokens");
    for refused in &outcomes[accepted..] {
        let refused = refused.as_deref().unwrap_or("accepted");
        ensure!(
            refused.contains("too many recent connections by this key"),
            "{refused}"
        );
    }
    honest.round().await?;
    let growth = relay.peak_rss_kib()?.saturating_sub(baseline);
    ensure!(
        growth < GROWTH_KIB,
        "the relay's peak memory grew by {growth} KiB taking the flood"
    );

    // A token from the future, past the clock skew, is refused.
    let future = rapport_protocol::token::mint(
        &key(3),
        &relay.relay_id,
        rapport_protocol::ids::UnixMillis(rapport_client::now().0 + 10 * 60 * 1000),
        60,
        &mut rand::rng(),
    )?;
    ensure!(upgrade_status(&relay.url(), &future).await == Some(401));

    // Tokens used before a restart are refused after it: one issued now,
    // and one issued ahead of the relay's clock, within the skew.
    let used = mint_token(&key(3), &relay.relay_id);
    let relay_id = relay.relay_id.clone();
    let ahead_by = |key: &SigningKey, millis: u64| {
        rapport_protocol::token::mint(
            key,
            &relay_id,
            rapport_protocol::ids::UnixMillis(rapport_client::now().0 + millis),
            60,
            &mut rand::rng(),
        )
    };
    let ahead = ahead_by(&key(4), 45_000)?;
    for token in [&used, &ahead] {
        ensure!(upgrade_status(&relay.url(), token).await.is_none());
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    relay.restart_in_place().await?;
    for token in [&used, &ahead] {
        ensure!(upgrade_status(&relay.url(), token).await == Some(401));
    }
    // The key that presented a token from ahead of the clock waits for the
    // clock to pass it; every other key, the first one among them, is let
    // in at once with a fresh token.
    let waits = ahead_by(&key(4), 0)?;
    ensure!(upgrade_status(&relay.url(), &waits).await == Some(401));
    for other in [key(3), key(5)] {
        let fresh = mint_token(&other, &relay.relay_id);
        ensure!(
            upgrade_status(&relay.url(), &fresh).await.is_none(),
            "a fresh token of another key is refused after the restart"
        );
    }
    honest.round().await?;
    Ok(())
}

/// The HTTP status refusing an upgrade with `token`, or `None` if accepted.
async fn upgrade_status(url: &str, token: &str) -> Option<u16> {
    match open_socket(url, Some(token)).await {
        Ok(_) => None,
        Err(e) => match e.downcast_ref::<ConnectError>() {
            Some(ConnectError::Refused { status, .. }) => Some(*status),
            _ => Some(0),
        },
    }
}
