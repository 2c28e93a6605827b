//! Answers to outsiders say nothing about which ids exist: not the API's,
//! not the sync path's, not the count of documents a connection opened.

use std::time::Duration;

use anyhow::{Result, ensure};
use automerge::Automerge;
use automerge::sync::SyncDoc as _;
use rapport_client::api::Level;
use rapport_protocol::ids::DocumentId;
use rapport_protocol::wire::{DocMessage, Message};
use rapport_server::{AuthMode, Limits};
use rapport_tests::peer::{PeerState, TestPeer, describe, key};
use rapport_tests::relay::{TempDir, TestRelay, client_invite};

use super::{blocking, doc_by, person, refusal, stored};

#[tokio::test(flavor = "multi_thread")]
async fn answers_to_outsiders_say_nothing_about_which_ids_exist() -> Result<()> {
    let dir = TempDir::new("attack-oracles");
    let relay = TestRelay::start(dir.path()).await?;
    let mut dirs = Vec::new();
    let owner_api = person(&relay, &key(1), &mut dirs)?;
    let ws = blocking(|| owner_api.create_workspace("Acme"))?;
    let listed = DocumentId::from_bytes([51; 16]);
    blocking(|| owner_api.add_documents(&ws, &[(listed, None)]))?;
    let outsider = person(&relay, &key(2), &mut dirs)?;

    // A workspace that exists and one that does not.
    let real = refusal(blocking(|| outsider.members(&ws)))?;
    let fake = refusal(blocking(|| outsider.members("ws-doesnotexist")))?;
    ensure!(real == fake, "{real:?} vs {fake:?}");
    let real = refusal(blocking(|| outsider.invites(&ws)))?;
    let fake = refusal(blocking(|| outsider.invites("ws-doesnotexist")))?;
    ensure!(real == fake, "{real:?} vs {fake:?}");

    // Redeeming: a real workspace with a wrong secret, and no workspace.
    let forged = |workspace: &str| {
        format!(
            "{}/join#{workspace}.notthesecret",
            relay
                .url()
                .replace("ws://", "http://")
                .trim_end_matches("/sync")
        )
        .parse::<rapport_client::api::InviteLink>()
    };
    let real = refusal(blocking(|| outsider.redeem(&forged(&ws)?)))?;
    let fake = refusal(blocking(|| outsider.redeem(&forged("ws-doesnotexist")?)))?;
    ensure!(real == fake, "{real:?} vs {fake:?}");

    // A client adding a document of another workspace, or an unknown one.
    let other_ws = blocking(|| outsider.create_workspace("Elsewhere"))?;
    let elsewhere = DocumentId::from_bytes([52; 16]);
    blocking(|| outsider.add_documents(&other_ws, &[(elsewhere, None)]))?;
    let link = blocking(|| owner_api.create_invite(&ws, &client_invite(listed, Level::Comment)))?;
    blocking(|| outsider.redeem(&link))?;
    let real = refusal(blocking(|| {
        outsider.add_documents(&ws, &[(elsewhere, None)])
    }))?;
    let fake = refusal(blocking(|| {
        outsider.add_documents(&ws, &[(DocumentId::from_bytes([53; 16]), None)])
    }))?;
    ensure!(real == fake, "{real:?} vs {fake:?}");
    Ok(())
}

/// What a peer was told about one document, with the id left out: each
/// message described, and encoded.
fn told(state: &PeerState, from: usize) -> Vec<(String, Vec<u8>)> {
    let nowhere = DocumentId::from_bytes([0; 16]);
    state.received[from..]
        .iter()
        // The list of documents a connection may see comes once, unasked.
        .filter(|message| !matches!(message, Message::Documents(_)))
        .map(|message| {
            let mut message = message.clone();
            match &mut message {
                Message::Sync(m) | Message::Request(m) => m.document_id = nowhere,
                Message::DocUnavailable(m) => m.document_id = nowhere,
                _ => {}
            }
            (describe(&message), message.encode())
        })
        .collect()
}

/// Sends a `request` (or a `sync`) for `id` holding an empty document's
/// first sync message, and returns what the relay answered.
async fn ask(
    peer: &TestPeer,
    relay: &str,
    id: DocumentId,
    request: bool,
) -> Result<Vec<(String, Vec<u8>)>> {
    let from = peer.with(|s| s.received.len());
    let data = Automerge::new()
        .generate_sync_message(&mut automerge::sync::State::new())
        .map(automerge::sync::Message::encode)
        .unwrap_or_default();
    let message = DocMessage {
        sender_id: peer.peer_id.clone(),
        target_id: relay.parse()?,
        document_id: id,
        data,
    };
    let message = if request {
        Message::Request(message)
    } else {
        Message::Sync(message)
    };
    peer.send_raw(tokio_tungstenite::tungstenite::Message::binary(
        message.encode(),
    ));
    peer.wait_until(|s| s.received.len() > from || s.closed.is_some())
        .await?;
    peer.settle(Duration::from_millis(300)).await;
    Ok(peer.with(|s| told(s, from)))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_for_an_id_elsewhere_is_answered_and_counted_as_one_for_no_id() -> Result<()> {
    let dir = TempDir::new("attack-oracles-sync");
    let limits = Limits {
        max_documents_per_connection: 3,
        ..Limits::default()
    };
    let relay = TestRelay::start_with(dir.path(), AuthMode::Token, limits).await?;
    let mut dirs = Vec::new();
    let owner = key(1);
    let owner_api = person(&relay, &owner, &mut dirs)?;
    let ws = blocking(|| owner_api.create_workspace("Acme"))?;
    let elsewhere: Vec<DocumentId> = (61..64).map(|n| DocumentId::from_bytes([n; 16])).collect();
    let listed: Vec<_> = elsewhere.iter().map(|id| (*id, None)).collect();
    blocking(|| owner_api.add_documents(&ws, &listed))?;
    let owner_peer = TestPeer::connect_as(&relay.url(), &relay.relay_id, &owner, "owner").await?;
    for id in &elsewhere {
        owner_peer.open(*id, doc_by(&owner, 1, "title")?);
    }
    stored(&relay, 3).await?;
    let missing = |n: u8| DocumentId::from_bytes([n; 16]);

    // The same answers, but for the id.
    let outsider = key(2);
    for (n, request) in [(0, true), (1, false)] {
        let name = format!("outsider-{n}");
        let peer = TestPeer::connect_as(&relay.url(), &relay.relay_id, &outsider, &name).await?;
        let real = ask(&peer, &relay.relay_id, elsewhere[n], request).await?;
        let fake = ask(&peer, &relay.relay_id, missing(71 + n as u8), request).await?;
        ensure!(real == fake, "request {request}: {real:?} vs {fake:?}");
        peer.close().await;
    }

    // The same count toward the limit of open documents: the fourth
    // document ends the connection, whichever the first was.
    let mut endings = Vec::new();
    for (name, first) in [("first-real", elsewhere[2]), ("first-fake", missing(80))] {
        let peer = TestPeer::connect_as(&relay.url(), &relay.relay_id, &outsider, name).await?;
        for id in [first, missing(81), missing(82), missing(83)] {
            ask(&peer, &relay.relay_id, id, true).await?;
        }
        endings.push(peer.with(|s| s.closed.clone()));
    }
    ensure!(
        endings[0].is_some() && endings[0] == endings[1],
        "{endings:?}"
    );
    Ok(())
}
