//! Presence: bounded in size and, for readers, in rate; a peer claiming
//! another's peer id cannot silence their presence.

use std::time::Duration;

use anyhow::{Result, ensure};
use automerge::Automerge;
use rapport_client::api::{InviteRequest, Level, Role};
use rapport_client::transport::ConnectError;
use rapport_protocol::ids::{DocumentId, PeerId};
use rapport_protocol::wire::{Ephemeral, Message};
use rapport_server::{AuthMode, Limits};
use rapport_tests::peer::{TestPeer, key, mint_token, open_socket};
use rapport_tests::relay::{TempDir, TestRelay, client_invite};

use super::{blocking, doc_by, person, stored};

fn presence(sender: &PeerId, doc: DocumentId, count: u64, session: &str, bytes: usize) -> Message {
    Message::Ephemeral(Ephemeral {
        sender_id: sender.clone(),
        target_id: "relay".parse().expect("a peer id"),
        count,
        session_id: session.into(),
        document_id: doc,
        data: {
            // A CBOR byte string of `bytes` bytes.
            let mut data = vec![0x5a];
            data.extend((bytes as u32).to_be_bytes());
            data.extend(std::iter::repeat_n(0u8, bytes));
            data
        },
    })
}

fn presence_from(state: &rapport_tests::peer::PeerState, sender: &PeerId) -> usize {
    state
        .received
        .iter()
        .filter(|m| matches!(m, Message::Ephemeral(e) if &e.sender_id == sender))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn presence_is_bounded_in_size_and_for_readers_in_rate() -> Result<()> {
    let dir = TempDir::new("attack-presence");
    let limits = Limits {
        max_connections_per_key: 3,
        reader_ephemeral_per_sec: 5,
        ..Limits::default()
    };
    let relay = TestRelay::start_with(dir.path(), AuthMode::Token, limits).await?;
    let mut dirs = Vec::new();
    let owner = key(1);
    let owner_api = person(&relay, &owner, &mut dirs)?;
    let ws = blocking(|| owner_api.create_workspace("Acme"))?;
    let doc = DocumentId::from_bytes([41; 16]);
    blocking(|| owner_api.add_documents(&ws, &[(doc, None)]))?;
    let link = blocking(|| owner_api.create_invite(&ws, &client_invite(doc, Level::Read)))?;
    let reader = key(2);
    blocking(|| {
        person(&relay, &reader, &mut dirs)?
            .redeem(&link)
            .map_err(anyhow::Error::from)
    })?;

    let watcher = TestPeer::connect_as(&relay.url(), &relay.relay_id, &owner, "watcher").await?;
    watcher.open(doc, doc_by(&owner, 1, "title")?);
    stored(&relay, 1).await?;
    let writer = TestPeer::connect_as(&relay.url(), &relay.relay_id, &owner, "writer").await?;
    writer.open(doc, Automerge::new());
    let reading = TestPeer::connect_as(&relay.url(), &relay.relay_id, &reader, "reader").await?;
    reading.open(doc, Automerge::new());
    reading.settle(Duration::from_millis(300)).await;

    // Too large: dropped; small: forwarded.
    writer.send_raw(tokio_tungstenite::tungstenite::Message::binary(
        presence(&writer.peer_id, doc, 1, "big", 100 * 1024).encode(),
    ));
    writer.send_raw(tokio_tungstenite::tungstenite::Message::binary(
        presence(&writer.peer_id, doc, 2, "small", 100).encode(),
    ));
    watcher
        .wait_until(|s| presence_from(s, &writer.peer_id) >= 1)
        .await?;
    watcher.settle(Duration::from_millis(300)).await;
    ensure!(
        watcher.with(|s| presence_from(s, &writer.peer_id)) == 1,
        "the oversized presence message was forwarded"
    );

    // A reader's burst is cut at the rate; the writer's is not.
    for n in 0..100 {
        reading.send_raw(tokio_tungstenite::tungstenite::Message::binary(
            presence(&reading.peer_id, doc, n, "burst", 10).encode(),
        ));
    }
    reading.settle(Duration::from_millis(500)).await;
    let from_reader = watcher.with(|s| presence_from(s, &reading.peer_id));
    ensure!(
        (1..=30).contains(&from_reader),
        "{from_reader} of a reader's 100 presence messages were forwarded"
    );

    // A fourth connection of one key is refused before it opens.
    let _third = TestPeer::connect_as(&relay.url(), &relay.relay_id, &owner, "third").await?;
    let fourth = open_socket(&relay.url(), Some(&mint_token(&owner, &relay.relay_id))).await;
    match fourth {
        Err(e) => ensure!(
            matches!(
                e.downcast_ref::<ConnectError>(),
                Some(ConnectError::Refused { status: 429, .. })
            ),
            "{e}"
        ),
        Ok(_) => anyhow::bail!("a fourth connection of one key was let in"),
    }
    // Others still connect.
    TestPeer::connect_as(&relay.url(), &relay.relay_id, &key(5), "other").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_claiming_anothers_peer_id_cannot_silence_their_presence() -> Result<()> {
    let doc = DocumentId::from_bytes([61; 16]);
    let dir = TempDir::new("attack-spoof-token");
    let relay = TestRelay::start(dir.path()).await?;
    let watcher_key = key(1);
    let mut dirs = Vec::new();
    let api = person(&relay, &watcher_key, &mut dirs)?;
    let ws = blocking(|| api.create_workspace("Acme"))?;
    blocking(|| api.add_documents(&ws, &[(doc, None)]))?;
    let link = blocking(|| {
        api.create_invite(
            &ws,
            &InviteRequest {
                role: Role::Staff,
                documents: Vec::new(),
                level: None,
                expires_in_secs: 600,
                uses: 2,
            },
        )
    })?;
    for n in [2u8, 3] {
        blocking(|| {
            person(&relay, &key(n), &mut dirs)?
                .redeem(&link)
                .map_err(anyhow::Error::from)
        })?;
    }
    let watcher =
        TestPeer::connect_as(&relay.url(), &relay.relay_id, &watcher_key, "watcher").await?;
    watcher.open(doc, doc_by(&watcher_key, 1, "title")?);
    stored(&relay, 1).await?;
    let ann = TestPeer::connect_as(&relay.url(), &relay.relay_id, &key(2), "ann").await?;
    ann.open(doc, Automerge::new());
    // The spoofer joins with ann's peer id and sends a high count first.
    let spoofer = TestPeer::connect_as(&relay.url(), &relay.relay_id, &key(3), "ann").await?;
    spoofer.open(doc, Automerge::new());
    ann.settle(Duration::from_millis(300)).await;
    spoofer.send_raw(tokio_tungstenite::tungstenite::Message::binary(
        presence(&spoofer.peer_id, doc, 1_000_000, "s1", 10).encode(),
    ));
    watcher
        .wait_until(|s| presence_from(s, &ann.peer_id) >= 1)
        .await?;
    // Ann's own presence, counting from 1, still reaches the watcher.
    ann.send_raw(tokio_tungstenite::tungstenite::Message::binary(
        presence(&ann.peer_id, doc, 1, "s1", 10).encode(),
    ));
    watcher
        .wait_until(|s| presence_from(s, &ann.peer_id) >= 2)
        .await?;
    Ok(())
}
