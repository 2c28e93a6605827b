//! The attacks an outside review found, performed over real sockets against
//! a real relay with self-minted keys: each asserts the refusal, and that
//! the other people keep working.
//!
//! - documents no workspace lists belong to their first writer;
//! - the automations document belongs to its workspace, and only admins
//!   write it;
//! - a decompression bomb is refused before it is inflated;
//! - one key cannot fill the memory of used tokens; tokens from before a
//!   restart, or from the future, are refused;
//! - presence messages are bounded in size and, for readers, in rate;
//!   connections are bounded per key;
//! - answers to outsiders say nothing about which ids exist;
//! - a peer claiming another's peer id cannot silence their presence.

use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use automerge::sync::{self, MessageVersion};
use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT, ReadDoc};
use ed25519_dalek::SigningKey;
use rapport_client::api::{ApiError, InviteRequest, Level, RelayApi, Role};
use rapport_client::transport::ConnectError;
use rapport_client::Repo;
use rapport_model::automation::document;
use rapport_protocol::ids::{DocumentId, PeerId};
use rapport_protocol::wire::{DocMessage, Ephemeral, Message};
use rapport_server::{AuthMode, Limits};
use rapport_tests::peer::{PATIENCE, TestPeer, actor_of, key, mint_token, open_socket};
use rapport_tests::process::rss_kib;
use rapport_tests::relay::{TempDir, TestRelay};

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// A document holding one change by `key`'s actor.
fn doc_by(key: &SigningKey, device: u8, field: &str) -> Result<Automerge> {
    let mut doc = Automerge::new().with_actor(actor_of(key, device));
    doc.transact(|tx| tx.put(ROOT, field, "written"))
        .map_err(|failure| failure.error)?;
    Ok(doc)
}

/// A home folder whose identity is `key`, and the API of `relay` as it.
fn person(relay: &TestRelay, key: &SigningKey, dirs: &mut Vec<TempDir>) -> Result<RelayApi> {
    let home = TempDir::new("attacks-person");
    let repo = Repo::init_with_key(home.path(), key.clone())?;
    dirs.push(home);
    let config = relay.client_config();
    Ok(RelayApi::new(&config, repo.identity().clone())?)
}

fn refusal(result: Result<impl std::fmt::Debug, ApiError>) -> Result<(u16, String)> {
    match result {
        Err(ApiError::Refused { status, message }) => Ok((status, message)),
        other => anyhow::bail!("expected a refusal, got {other:?}"),
    }
}

/// Waits until the relay counts `stored` changes stored in all.
async fn stored(relay: &TestRelay, stored: u64) -> Result<()> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while relay.metric("rapport_changes_stored_total").await? < stored {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the relay did not store {stored} changes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_document_no_workspace_lists_is_its_first_writers_alone() -> Result<()> {
    let dir = TempDir::new("attack-unlisted");
    let relay = TestRelay::start(dir.path()).await?;
    let mut dirs = Vec::new();
    let (ann, ben) = (key(1), key(2));
    let ann_peer = TestPeer::connect_as(&relay.url(), &relay.relay_id, &ann, "ann").await?;
    let ben_peer = TestPeer::connect_as(&relay.url(), &relay.relay_id, &ben, "ben").await?;

    // Ben asks for a document before anybody wrote it; then Ann writes it.
    let early = DocumentId::from_bytes([11; 16]);
    ben_peer.open(early, Automerge::new());
    ben_peer.settle(Duration::from_millis(300)).await;
    ann_peer.open(early, doc_by(&ann, 1, "ann")?);
    let secret = DocumentId::from_bytes([12; 16]);
    ann_peer.open(secret, doc_by(&ann, 1, "ann")?);
    stored(&relay, 2).await?;

    // Ben cannot read what Ann wrote, asked before or after.
    ben_peer.open(secret, Automerge::new());
    ben_peer
        .wait_until(|s| s.unavailable.contains(&secret))
        .await?;
    ben_peer.settle(Duration::from_millis(300)).await;
    let leaked = ben_peer.with(|s| {
        [early, secret].iter().any(|id| {
            s.docs
                .get(id)
                .is_some_and(|d| d.doc().get(ROOT, "ann").ok().flatten().is_some())
        })
    });
    ensure!(!leaked, "a document claimed by ann reached ben");

    // Nor write it: his change is neither stored nor forwarded.
    let other = DocumentId::from_bytes([13; 16]);
    ben_peer.open(other, doc_by(&ben, 1, "ben")?);
    stored(&relay, 3).await?;
    let before = relay.metric("rapport_changes_stored_total").await?;
    ben_peer.open(secret, doc_by(&ben, 3, "ben")?);
    ben_peer.settle(Duration::from_millis(500)).await;
    ensure!(
        relay.metric("rapport_changes_stored_total").await? == before,
        "ben's change to ann's document was stored"
    );
    let ann_sees = ann_peer.with(|s| s.doc(secret).get(ROOT, "ben").ok().flatten().is_some());
    ensure!(!ann_sees, "ben's change reached ann");

    // Nor take it over by listing it in a workspace of his own.
    let ben_api = person(&relay, &ben, &mut dirs)?;
    let ben_ws = blocking(|| ben_api.create_workspace("Ben's"))?;
    let (status, message) = refusal(blocking(|| {
        ben_api.add_documents(&ben_ws, &[(secret, None)])
    }))?;
    ensure!(
        status == 403 && message.contains("outside this workspace"),
        "{status} {message}"
    );
    // Ann lists her own document, and she keeps working.
    let ann_api = person(&relay, &ann, &mut dirs)?;
    let ann_ws = blocking(|| ann_api.create_workspace("Ann's"))?;
    blocking(|| ann_api.add_documents(&ann_ws, &[(secret, None)]))?;
    ann_peer.change(secret, |tx| tx.put(ROOT, "more", 1))?;
    stored(&relay, before + 1).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn one_key_holds_a_bounded_number_of_documents_outside_workspaces() -> Result<()> {
    let dir = TempDir::new("attack-unlisted-quota");
    let limits = Limits {
        max_unlisted_per_key: 3,
        ..Limits::default()
    };
    let relay = TestRelay::start_with(dir.path(), AuthMode::Token, limits).await?;
    let hoarder = key(1);
    let peer = TestPeer::connect_as(&relay.url(), &relay.relay_id, &hoarder, "hoarder").await?;
    for n in 0..3u8 {
        peer.open(
            DocumentId::from_bytes([70 + n; 16]),
            doc_by(&hoarder, 1, "n")?,
        );
    }
    stored(&relay, 3).await?;
    // The fourth is refused, and said so.
    peer.open(DocumentId::from_bytes([79; 16]), doc_by(&hoarder, 1, "n")?);
    peer.wait_until(|s| {
        s.rejected
            .iter()
            .any(|r| r.reason == rapport_protocol::wire::RejectReason::QuotaExceeded)
    })
    .await?;
    ensure!(relay.metric("rapport_changes_stored_total").await? == 3);
    // Listing one in a workspace makes room; others are not limited by it.
    let mut dirs = Vec::new();
    let api = person(&relay, &hoarder, &mut dirs)?;
    let ws = blocking(|| api.create_workspace("Mine"))?;
    blocking(|| api.add_documents(&ws, &[(DocumentId::from_bytes([70; 16]), None)]))?;
    peer.open(DocumentId::from_bytes([80; 16]), doc_by(&hoarder, 1, "n")?);
    stored(&relay, 4).await?;
    let other = TestPeer::connect_as(&relay.url(), &relay.relay_id, &key(2), "other").await?;
    other.open(DocumentId::from_bytes([81; 16]), doc_by(&key(2), 1, "n")?);
    stored(&relay, 5).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_automations_document_is_its_workspaces_and_only_admins_write_it() -> Result<()> {
    let dir = TempDir::new("attack-automations");
    let relay = TestRelay::start(dir.path()).await?;
    let mut dirs = Vec::new();
    let (owner, staff, client, outsider) = (key(1), key(2), key(3), key(4));
    let owner_api = person(&relay, &owner, &mut dirs)?;
    let ws = blocking(|| owner_api.create_workspace("Acme"))?;
    let rules = document::document_id(&ws);
    // Listed from the start, by the relay.
    ensure!(
        blocking(|| owner_api.documents(&ws))?.contains(&rules),
        "the automations document is not listed in its new workspace"
    );
    let record = DocumentId::from_bytes([21; 16]);
    blocking(|| owner_api.add_documents(&ws, &[(record, None)]))?;
    let owner_peer = TestPeer::connect_as(&relay.url(), &relay.relay_id, &owner, "owner").await?;
    owner_peer.open(record, doc_by(&owner, 1, "title")?);
    stored(&relay, 1).await?;
    let invite = |role, documents| InviteRequest {
        role,
        documents,
        level: None,
        expires_in_secs: 600,
        uses: 1,
    };
    let staff_link = blocking(|| owner_api.create_invite(&ws, &invite(Role::Staff, Vec::new())))?;
    let client_link = blocking(|| {
        owner_api.create_invite(&ws, &invite(Role::Client, vec![(record, Level::Comment)]))
    })?;
    let staff_api = person(&relay, &staff, &mut dirs)?;
    blocking(|| staff_api.redeem(&staff_link))?;
    let client_api = person(&relay, &client, &mut dirs)?;
    blocking(|| client_api.redeem(&client_link))?;
    // A comment-only client lists it as the thread of its record: nothing
    // changes, it stays out of reach.
    blocking(|| client_api.add_documents(&ws, &[(rules, Some(record))]))?;

    let rule = |key: &SigningKey, device| -> Result<Automerge> {
        let mut doc = Automerge::new().with_actor(actor_of(key, device));
        doc.transact(|tx| {
            document::add_rule(
                tx,
                &ws,
                "r1",
                "when task.status changes then webhook https://x.test",
                "someone",
                0,
            )
        })
        .map_err(|failure| failure.error)?;
        Ok(doc)
    };
    let base = relay.metric("rapport_changes_stored_total").await?;
    // Staff may read it, not write it: the change is refused and said so.
    let staff_peer = TestPeer::connect_as(&relay.url(), &relay.relay_id, &staff, "staff").await?;
    staff_peer.open(rules, rule(&staff, 1)?);
    staff_peer.wait_until(|s| !s.rejected.is_empty()).await?;
    // The client and an outsider do not see it at all.
    for (key, name) in [(&client, "client"), (&outsider, "outsider")] {
        let peer = TestPeer::connect_as(&relay.url(), &relay.relay_id, key, name).await?;
        peer.open(rules, rule(key, 1)?);
        peer.wait_until(|s| s.unavailable.contains(&rules)).await?;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    ensure!(
        relay.metric("rapport_changes_stored_total").await? == base,
        "a rule by someone who is not an admin was stored"
    );
    // The owner writes rules.
    owner_peer.open(rules, rule(&owner, 2)?);
    stored(&relay, base + 1).await?;
    Ok(())
}

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

/// The process's peak resident memory (`VmHWM`), in KiB: a bomb inflated
/// and freed again still shows here.
fn peak_rss_kib() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .context("no VmHWM in /proc/self/status")
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
    let link = blocking(|| {
        owner_api.create_invite(
            &ws,
            &InviteRequest {
                role: Role::Client,
                documents: vec![(doc, Level::Read)],
                level: None,
                expires_in_secs: 600,
                uses: 1,
            },
        )
    })?;
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
    let link = blocking(|| {
        owner_api.create_invite(
            &ws,
            &InviteRequest {
                role: Role::Client,
                documents: vec![(listed, Level::Comment)],
                level: None,
                expires_in_secs: 600,
                uses: 1,
            },
        )
    })?;
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

/// A workspace of `owner` on `relay` with `rules`, and a task tagged `tag`
/// marked done, which fires them.
async fn fire_webhook(relay: &TestRelay, owner: &Repo, rule: &str, times: usize) -> Result<String> {
    let config = relay.client_config();
    let api = RelayApi::new(&config, owner.identity().clone())?;
    let ws = blocking(|| api.create_workspace("Hooks"))?;
    owner.add_automation(&ws, &rapport_model::automation::Rule::parse(rule)?)?;
    let mut tasks = Vec::new();
    for n in 0..times {
        let mut task = rapport_model::Task::new(format!("Task {n}"));
        task.tags = vec!["hook".into()];
        let (id, ()) = owner.create(|tx| task.write(tx))?;
        tasks.push(id);
    }
    blocking(|| api.add_documents(&ws, &tasks.iter().map(|id| (*id, None)).collect::<Vec<_>>()))?;
    owner.sync_once(&config, PATIENCE, |_| {}).await?;
    for id in tasks {
        owner.change(id, |tx| {
            rapport_model::Task::update(tx, |t| t.status = rapport_model::Status::Done)
        })?;
    }
    owner.sync_once(&config, PATIENCE, |_| {}).await?;
    Ok(ws)
}

#[tokio::test(flavor = "multi_thread")]
async fn webhooks_go_to_public_addresses_only_and_a_tarpit_delays_no_one_else() -> Result<()> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    // A receiver that never answers, one that answers, and one on a
    // loopback address the operator did not allow.
    let tarpit = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let good = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let forbidden = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let (tarpit_addr, good_addr, forbidden_addr) = (
        tarpit.local_addr()?,
        good.local_addr()?,
        forbidden.local_addr()?,
    );
    let dir = TempDir::new("attack-webhooks");
    let mut config = rapport_server::Config::new(dir.path());
    config.webhook_allow = vec![tarpit_addr.to_string(), good_addr.to_string()];
    let relay = TestRelay::start_config(config).await?;
    let home = TempDir::new("attack-webhooks-owner");
    let owner = Repo::init(home.path())?;

    // The tarpit holds every connection it gets; the good receiver answers.
    let held = Arc::new(AtomicUsize::new(0));
    let holding = Arc::clone(&held);
    tokio::spawn(async move {
        let mut kept = Vec::new();
        while let Ok((stream, _)) = tarpit.accept().await {
            kept.push(stream);
            holding.store(kept.len(), Ordering::SeqCst);
        }
    });
    let answered = Arc::new(AtomicUsize::new(0));
    let answering = Arc::clone(&answered);
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut stream, _)) = good.accept().await {
            let mut buf = vec![0u8; 8192];
            let _ = stream.read(&mut buf).await;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await;
            answering.fetch_add(1, Ordering::SeqCst);
        }
    });
    let reached_forbidden = Arc::new(AtomicUsize::new(0));
    let reaching = Arc::clone(&reached_forbidden);
    tokio::spawn(async move {
        while forbidden.accept().await.is_ok() {
            reaching.fetch_add(1, Ordering::SeqCst);
        }
    });

    // Six deliveries into the tarpit from one workspace: four are held, the
    // others wait their turn in that workspace.
    let rule = |addr| {
        format!("when task.status changes to done if tags has hook then webhook http://{addr}/hook")
    };
    fire_webhook(&relay, &owner, &rule(tarpit_addr), 6).await?;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while held.load(Ordering::SeqCst) < 4 {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the tarpit got no deliveries"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Another workspace's webhook is delivered while the tarpit still holds
    // its four: one slow receiver delays nothing else.
    fire_webhook(&relay, &owner, &rule(good_addr), 1).await?;
    while answered.load(Ordering::SeqCst) < 1 {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the good receiver got nothing"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ensure!(
        held.load(Ordering::SeqCst) == 4,
        "{} deliveries of one workspace were under way at once",
        held.load(Ordering::SeqCst)
    );

    // A loopback address nobody allowed is refused before any connection,
    // and the refusal is what the automations document records.
    let ws = fire_webhook(&relay, &owner, &rule(forbidden_addr), 1).await?;
    let config = relay.client_config();
    loop {
        owner.sync_once(&config, PATIENCE, |_| {}).await?;
        let rules = owner.automations(&ws)?;
        if let Some(error) = rules.first().and_then(|r| r.status.last_error.clone()) {
            ensure!(error.contains("not a public address"), "{error}");
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "no refusal recorded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ensure!(
        reached_forbidden.load(Ordering::SeqCst) == 0,
        "the forbidden receiver was reached"
    );
    Ok(())
}
