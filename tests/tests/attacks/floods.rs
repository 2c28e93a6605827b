//! Floods and bombs: a decompression bomb is refused before it is
//! inflated; one key cannot fill the memory of used tokens, and tokens from
//! before a restart or from the future are refused.

use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use automerge::ROOT;
use automerge::sync::{self, MessageVersion};
use automerge::transaction::Transactable;
use rapport_client::transport::ConnectError;
use rapport_protocol::ids::DocumentId;
use rapport_protocol::wire::{DocMessage, Message};
use rapport_server::{AuthMode, Limits};
use rapport_tests::peer::{TestPeer, key, mint_token, open_socket};
use rapport_tests::process::{peak_rss_kib, rss_kib};
use rapport_tests::relay::{TempDir, TestRelay};

use super::{blocking, doc_by, person, stored};

/// A compressed change chunk whose body inflates to `inflated` zero bytes.
fn bomb_chunk(inflated: usize) -> Vec<u8> {
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

#[tokio::test(flavor = "multi_thread")]
async fn a_decompression_bomb_is_refused_before_it_is_inflated() -> Result<()> {
    let dir = TempDir::new("attack-bomb");
    let relay = TestRelay::start(dir.path()).await?;
    let attacker = key(1);
    let honest = TestPeer::connect_as(&relay.url(), &relay.relay_id, &key(2), "honest").await?;
    let honest_doc = DocumentId::from_bytes([31; 16]);
    honest.open(honest_doc, doc_by(&key(2), 1, "n")?);
    stored(&relay, 1).await?;
    let peak_before = peak_rss_kib()?;

    // 512 MiB of zeros deflate to about half a megabyte: one frame.
    let bomb = bomb_chunk(512 * 1024 * 1024);
    let data = sync::Message {
        heads: Vec::new(),
        need: Vec::new(),
        have: Vec::new(),
        changes: sync::ChunkList::from(vec![bomb]),
        flags: None,
        version: MessageVersion::V1,
    }
    .encode();
    let mut bombers = Vec::new();
    for n in 0..4u8 {
        let token = mint_token(&attacker, &relay.relay_id);
        let bomber = TestPeer::connect(&relay.url(), Some(&token), &format!("bomber-{n}")).await?;
        bomber.send_raw(tokio_tungstenite::tungstenite::Message::binary(
            Message::Sync(DocMessage {
                sender_id: bomber.peer_id.clone(),
                target_id: "relay".parse()?,
                document_id: DocumentId::from_bytes([32 + n; 16]),
                data: data.clone(),
            })
            .encode(),
        ));
        bombers.push(bomber);
    }
    // Each bomber is cut off with a protocol error.
    for bomber in &bombers {
        let closed = bomber.wait_until(|s| s.closed.is_some()).await;
        ensure!(closed.is_err() || bomber.with(|s| s.closed.is_some()));
    }
    // The honest peer keeps working, during and after.
    honest.change(honest_doc, |tx| tx.put(ROOT, "after", 1))?;
    stored(&relay, 2).await?;
    let peak_after = peak_rss_kib()?;
    ensure!(
        peak_after.saturating_sub(peak_before) < 200 * 1024,
        "the relay's peak memory grew by {} KiB taking bombs",
        peak_after.saturating_sub(peak_before)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn one_key_cannot_fill_the_memory_of_used_tokens() -> Result<()> {
    let dir = TempDir::new("attack-replay");
    let limits = Limits {
        max_tokens_per_key: 40,
        ..Limits::default()
    };
    let mut relay = TestRelay::start_with(dir.path(), AuthMode::Token, limits).await?;
    let mut dirs = Vec::new();
    let flooder = person(&relay, &key(1), &mut dirs)?;
    let honest = person(&relay, &key(2), &mut dirs)?;
    let rss_before = rss_kib()?;
    // Every API call presents a fresh token: the flooder's share runs out.
    let mut refused = None;
    for n in 0..200 {
        match blocking(|| flooder.workspaces()) {
            Ok(_) => {}
            Err(error) => {
                refused = Some((n, error.to_string()));
                break;
            }
        }
    }
    let (n, error) = refused.context("the flooder was never refused")?;
    ensure!(n == 40, "refused after {n} tokens");
    ensure!(
        error.contains("too many recent connections by this key"),
        "{error}"
    );
    // Everyone else is still let in, by the API and on /sync.
    blocking(|| honest.workspaces())?;
    TestPeer::connect_as(&relay.url(), &relay.relay_id, &key(2), "honest").await?;
    ensure!(rss_kib()?.saturating_sub(rss_before) < 64 * 1024);

    // A token from the future, past the clock skew, is refused.
    let future = rapport_protocol::token::mint(
        &key(3),
        &relay.relay_id,
        rapport_protocol::ids::UnixMillis(rapport_client::now().0 + 10 * 60 * 1000),
        60,
        &mut rand::rng(),
    )?;
    ensure!(upgrade_status(&relay, &future).await == Some(401));

    // A token captured before a restart is refused after it.
    let captured = mint_token(&key(3), &relay.relay_id);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    relay.restart_in_place().await?;
    ensure!(upgrade_status(&relay, &captured).await == Some(401));
    let fresh = mint_token(&key(3), &relay.relay_id);
    ensure!(upgrade_status(&relay, &fresh).await.is_none());
    Ok(())
}

/// The HTTP status refusing an upgrade with `token`, or `None` if accepted.
async fn upgrade_status(relay: &TestRelay, token: &str) -> Option<u16> {
    match open_socket(&relay.url(), Some(token)).await {
        Ok(_) => None,
        Err(e) => match e.downcast_ref::<ConnectError>() {
            Some(ConnectError::Refused { status, .. }) => Some(*status),
            _ => Some(0),
        },
    }
}
