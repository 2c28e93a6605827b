//! The workspaces three relays of one cluster share, with tokens, on a real
//! nats-server (started here on 127.0.0.1 with a temporary store): a token
//! is good on every relay; a document listed through one relay is shared
//! on the others and closed to everybody else; a member removed through
//! one relay is cut off on another within a second; a one-use invite
//! redeemed through two relays at once lets exactly one person in; a
//! document erased through one relay is gone from all, and from NATS; a
//! rule made through one relay fires once for a change made through
//! another, and its result reaches the third; a token used on one relay
//! is refused on another; a refusal through one relay is in the audit
//! log read through another; without NATS a workspace change is refused,
//! and flows again once it is back.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT, ReadDoc};
use ed25519_dalek::SigningKey;
use rapport_client::RelayConfig;
use rapport_client::Repo;
use rapport_client::api::{Level, RelayApi};
use rapport_client::identity::Identity;
use rapport_model::automation::Rule;
use rapport_model::{Priority, Status, Task};
use rapport_protocol::ids::{AutomergeUrl, DocumentId};
use rapport_protocol::wire::Message;
use rapport_server::Config;
use rapport_tests::js_peer::JsPeer;
use rapport_tests::nats::Nats;
use rapport_tests::peer::{TestPeer, actor_of, key, mint_token, public};
use rapport_tests::relay::{TempDir, TestRelay, client_invite};
use serde_json::json;

async fn relay_in(dir: &TempDir, nats: &Nats) -> Result<TestRelay> {
    let mut config = Config::new(dir.path());
    config.cluster = vec![nats.url()];
    TestRelay::start_config(config).await
}

/// The HTTP API of `relay` as `key`, on a blocking thread.
fn as_on<T, F>(
    relay: &TestRelay,
    key: &SigningKey,
    call: F,
) -> impl std::future::Future<Output = Result<T>> + use<T, F>
where
    T: Send + 'static,
    F: FnOnce(RelayApi) -> Result<T> + Send + 'static,
{
    let config = RelayConfig {
        url: relay.url(),
        audience: Some(relay.relay_id.clone()),
    };
    let key = key.clone();
    async move {
        tokio::task::spawn_blocking(move || call(RelayApi::new(&config, Identity::in_memory(key))?))
            .await
            .context("an API call panicked")?
    }
}

fn note(doc: &Automerge) -> Option<String> {
    doc.get(ROOT, "note")
        .ok()?
        .and_then(|(v, _)| v.into_string().ok())
}

async fn until(what: &str, mut done: impl FnMut() -> bool) -> Result<Duration> {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > Duration::from_secs(20) {
            bail!("{what}: not within 20 s");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(start.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_removed_through_one_relay_is_cut_off_on_another() -> Result<()> {
    let store = TempDir::new("nats-store");
    let nats = Nats::start(store.path())?;
    let dirs = [
        TempDir::new("shared-a"),
        TempDir::new("shared-b"),
        TempDir::new("shared-c"),
    ];
    let a = relay_in(&dirs[0], &nats).await?;
    let b = relay_in(&dirs[1], &nats).await?;
    ensure!(a.relay_id == b.relay_id, "the relays answer to one id");
    let (owner, member, stranger) = (key(1), key(2), key(3));
    let id = DocumentId::from_bytes([61; 16]);
    let ws = a.share(&owner, &[&member], &[id]).await?;
    // A relay that joins after the workspace was made knows it too.
    let c = relay_in(&dirs[2], &nats).await?;
    ensure!(
        c.relay_id == a.relay_id,
        "the late relay answers to the same id"
    );

    let writer = TestPeer::connect_as(&a.url(), &a.relay_id, &owner, "owner")
        .await
        .context("the writer on a")?;
    let mut doc = Automerge::new();
    doc.transact::<_, _, automerge::AutomergeError>(|tx| {
        tx.put(ROOT, "note", "from relay a")?;
        Ok(())
    })
    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    writer.open(id, doc);
    let reader = TestPeer::connect_as(&c.url(), &c.relay_id, &member, "member")
        .await
        .context("the reader on c")?;
    reader.open(id, Automerge::new());
    reader
        .wait_until(|p| note(p.doc(id)).as_deref() == Some("from relay a"))
        .await?;
    // Somebody outside the workspace asks relay b for it and gets nothing.
    let outsider = TestPeer::connect_as(&b.url(), &b.relay_id, &stranger, "stranger")
        .await
        .context("the stranger on b")?;
    outsider.open(id, Automerge::new());
    outsider.wait_until(|p| p.unavailable.contains(&id)).await?;
    ensure!(
        outsider.with(|p| note(p.doc(id)).is_none()),
        "a stranger on another relay read the document"
    );
    // Removed through relay a; the session on relay c ends.
    let gone = public(&member);
    as_on(&a, &owner, move |api| Ok(api.remove_member(&ws, &gone)?)).await?;
    let took = until("the member's session on relay c closed", || {
        reader.with(|p| p.closed.is_some())
    })
    .await?;
    ensure!(
        took < Duration::from_secs(1),
        "the removed member's session on another relay lasted {took:?}"
    );
    // And a new one is refused the document.
    let again = TestPeer::connect_as(&c.url(), &c.relay_id, &member, "again").await;
    if let Ok(again) = again {
        again.open(id, Automerge::new());
        let refused = until("the removed member is refused", || {
            again.with(|p| p.closed.is_some() || p.unavailable.contains(&id))
        })
        .await;
        ensure!(refused.is_ok(), "a removed member read the document again");
        ensure!(again.with(|p| note(p.doc(id)).is_none()));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_use_invite_redeemed_through_two_relays_at_once_lets_one_in() -> Result<()> {
    let store = TempDir::new("nats-store");
    let nats = Nats::start(store.path())?;
    let (da, db) = (TempDir::new("invite-a"), TempDir::new("invite-b"));
    let a = relay_in(&da, &nats).await?;
    let b = relay_in(&db, &nats).await?;
    let owner = key(1);
    let doc = DocumentId::from_bytes([62; 16]);
    let ws = a.share(&owner, &[], &[doc]).await?;
    for round in 0..8u8 {
        let ws2 = ws.clone();
        let link = as_on(&a, &owner, move |api| {
            Ok(api.create_invite(&ws2, &client_invite(doc, Level::Comment))?)
        })
        .await?;
        let (first, second) = (key(100 + 2 * round), key(101 + 2 * round));
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let redeem = |relay: &TestRelay, who: &SigningKey| {
            let (barrier, link) = (barrier.clone(), link.clone());
            as_on(relay, who, move |api| {
                barrier.wait();
                Ok(api.redeem(&link).map_err(|e| e.status()))
            })
        };
        let (one, two) = tokio::join!(redeem(&a, &first), redeem(&b, &second));
        let (one, two) = (one?, two?);
        let joined = usize::from(one.is_ok()) + usize::from(two.is_ok());
        ensure!(
            joined == 1,
            "round {round}: {joined} people joined on a one-use invite ({one:?}, {two:?})"
        );
        let refused = one.err().or(two.err()).flatten();
        ensure!(
            matches!(refused, Some(409 | 410)),
            "round {round}: the other was answered {refused:?}"
        );
        // Every relay agrees on who is in.
        let ws3 = ws.clone();
        for relay in [&a, &b] {
            let ws4 = ws3.clone();
            let members = as_on(relay, &owner, move |api| Ok(api.members(&ws4)?)).await?;
            let inside = [&first, &second]
                .iter()
                .filter(|k| members.iter().any(|m| m.key == public(k)))
                .count();
            ensure!(inside <= 1, "round {round}: both are members");
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_erased_through_one_relay_is_gone_from_the_others_and_nats() -> Result<()> {
    let store = TempDir::new("nats-store");
    let nats = Nats::start(store.path())?;
    let (da, db) = (TempDir::new("erased-a"), TempDir::new("erased-b"));
    let a = relay_in(&da, &nats).await?;
    let b = relay_in(&db, &nats).await?;
    let (owner, member) = (key(1), key(2));
    let id = DocumentId::from_bytes([63; 16]);
    let ws = a.share(&owner, &[&member], &[id]).await?;
    let writer = TestPeer::connect_as(&a.url(), &a.relay_id, &owner, "owner").await?;
    let mut doc = Automerge::new();
    doc.transact::<_, _, automerge::AutomergeError>(|tx| {
        tx.put(ROOT, "note", "to be erased")?;
        Ok(())
    })
    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    writer.open(id, doc);
    until_listed(&b, &member, &ws, id).await?;
    let reader = TestPeer::connect_as(&b.url(), &b.relay_id, &member, "member").await?;
    reader.open(id, Automerge::new());
    reader
        .wait_until(|p| note(p.doc(id)).as_deref() == Some("to be erased"))
        .await?;
    let changes = nats_stream(&nats).await?;
    let subject = format!("rapport.doc.{id}");
    ensure!(
        changes
            .get_last_raw_message_by_subject(&subject)
            .await
            .is_ok(),
        "the document's changes are in the stream before"
    );
    as_on(&a, &owner, move |api| {
        api.remove_documents(&ws, &[id], true)?;
        Ok(())
    })
    .await?;
    until("the member on relay b is told the document is gone", || {
        reader.with(|p| {
            p.received
                .iter()
                .any(|m| matches!(m, Message::Removed(d) if d.documents.contains(&id)))
        })
    })
    .await?;
    let later = TestPeer::connect_as(&b.url(), &b.relay_id, &member, "later").await?;
    later.open(id, Automerge::new());
    later.wait_until(|p| p.unavailable.contains(&id)).await?;
    ensure!(later.with(|p| note(p.doc(id)).is_none()));
    ensure!(
        changes
            .get_last_raw_message_by_subject(&subject)
            .await
            .is_err(),
        "an erased document's changes stayed in the stream"
    );
    Ok(())
}

/// The cluster's stream of changes, read straight from NATS.
async fn nats_stream(nats: &Nats) -> Result<async_nats::jetstream::stream::Stream> {
    let client = async_nats::connect(nats.url()).await?;
    Ok(async_nats::jetstream::new(client)
        .get_stream("RAPPORT_CHANGES")
        .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_fires_once_for_a_change_through_another_relay() -> Result<()> {
    let store = TempDir::new("nats-store");
    let nats = Nats::start(store.path())?;
    let dirs = [
        TempDir::new("rule-a"),
        TempDir::new("rule-b"),
        TempDir::new("rule-c"),
        TempDir::new("rule-home"),
    ];
    let a = relay_in(&dirs[0], &nats).await?;
    let b = relay_in(&dirs[1], &nats).await?;
    let c = relay_in(&dirs[2], &nats).await?;
    let owner = Repo::init(dirs[3].path())?;
    let api = RelayApi::new(&a.client_config(), owner.identity().clone())?;
    let ws = tokio::task::block_in_place(|| api.create_workspace("Acme"))?;
    let rule = owner.add_automation(
        &ws,
        &Rule::parse("when task.status changes to blocked then set priority=urgent")?,
    )?;
    let task = owner.create(|tx| Task::new("Ship it").write(tx))?.0;
    let listed = [(Repo::automations_id(&ws), None), (task, None)];
    tokio::task::block_in_place(|| api.add_documents(&ws, &listed))?;
    sync(&owner, &a).await?;
    let me = owner.identity().signing_key().clone();
    until_listed(&b, &me, &ws, task).await?;
    until_listed(&c, &me, &ws, task).await?;
    // Relay b has taken everything relay a published, the rule with it.
    let published = a.metric("rapport_cluster_published_total").await?;
    until_metric(&b, "rapport_cluster_taken_total", published).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;

    owner.change(task, |tx| Task::update(tx, |t| t.status = Status::Blocked))?;
    sync(&owner, &b).await?;
    let start = Instant::now();
    loop {
        sync(&owner, &c).await?;
        if owner.read(task, Task::read)??.priority == Priority::Urgent {
            break;
        }
        ensure!(
            start.elapsed() < Duration::from_secs(20),
            "the rule's result did not reach relay c"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for relay in [&a, &b, &c] {
        sync(&owner, relay).await?;
    }
    let rules = owner.automations(&ws)?;
    let runs = rules
        .iter()
        .find(|r| r.id == rule)
        .context("the rule")?
        .status
        .runs;
    ensure!(runs == 1, "the rule ran {runs} times");
    Ok(())
}

async fn sync(repo: &Repo, relay: &TestRelay) -> Result<()> {
    repo.sync_once(&relay.client_config(), Duration::from_secs(20), |_| {})
        .await?;
    Ok(())
}

async fn until_metric(relay: &TestRelay, name: &str, at_least: u64) -> Result<()> {
    let start = Instant::now();
    while relay.metric(name).await? < at_least {
        ensure!(
            start.elapsed() < Duration::from_secs(20),
            "{name} stayed below {at_least}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_nats_workspace_changes_are_refused_and_flow_again_after() -> Result<()> {
    let store = TempDir::new("nats-store");
    let mut nats = Nats::start(store.path())?;
    let (da, db) = (TempDir::new("down-a"), TempDir::new("down-b"));
    let a = relay_in(&da, &nats).await?;
    let b = relay_in(&db, &nats).await?;
    let (owner, member) = (key(1), key(2));
    let doc = DocumentId::from_bytes([64; 16]);
    let ws = a.share(&owner, &[&member], &[doc]).await?;

    nats.stop();
    until_status(&a, 503).await?;
    let ws2 = ws.clone();
    let refused = as_on(&a, &owner, move |api| {
        Ok(api
            .create_invite(&ws2, &client_invite(doc, Level::Read))
            .map_err(|e| (e.status(), e.to_string())))
    })
    .await?;
    match refused {
        Err((Some(503), why)) => ensure!(why.contains("NATS"), "{why}"),
        other => bail!("a workspace change without NATS was answered {other:?}"),
    }
    // What the relay holds is still served.
    let ws3 = ws.clone();
    let members = as_on(&a, &owner, move |api| Ok(api.members(&ws3)?)).await?;
    ensure!(members.len() == 2, "{members:?}");

    nats.restart()?;
    until_status(&a, 200).await?;
    until_status(&b, 200).await?;
    let (ws4, gone) = (ws.clone(), public(&member));
    as_on(&a, &owner, move |api| Ok(api.remove_member(&ws4, &gone)?)).await?;
    let start = Instant::now();
    loop {
        let ws5 = ws.clone();
        let members = as_on(&b, &owner, move |api| Ok(api.members(&ws5)?)).await?;
        if members.iter().all(|m| m.key != public(&member)) {
            break;
        }
        ensure!(
            start.elapsed() < Duration::from_secs(20),
            "a removal after NATS came back did not reach the other relay"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

async fn until_status(relay: &TestRelay, want: u16) -> Result<()> {
    let start = Instant::now();
    while relay.get("/healthz").await?.0 != want {
        ensure!(
            start.elapsed() < Duration::from_secs(30),
            "/healthz never answered {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_and_rust_peers_on_three_relays_converge() -> Result<()> {
    let store = TempDir::new("nats-store");
    let nats = Nats::start(store.path())?;
    let dirs = [
        TempDir::new("mixed-a"),
        TempDir::new("mixed-b"),
        TempDir::new("mixed-c"),
    ];
    let a = relay_in(&dirs[0], &nats).await?;
    let b = relay_in(&dirs[1], &nats).await?;
    let c = relay_in(&dirs[2], &nats).await?;
    let wait = Duration::from_secs(20);
    let (mut author, url) = tokio::task::block_in_place(|| -> Result<_> {
        let mut author = JsPeer::start(&token_url(&a, 1))?;
        let url = author.create(json!({"title": "Spec"}))?;
        author.flush(wait)?;
        Ok((author, url))
    })?;
    let id: DocumentId = url
        .parse::<AutomergeUrl>()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .document_id();
    let ws = a.share(&key(1), &[&key(2), &key(3)], &[id]).await?;
    until_listed(&b, &key(2), &ws, id).await?;
    until_listed(&c, &key(3), &ws, id).await?;

    let rust = TestPeer::connect_as(&b.url(), &b.relay_id, &key(2), "rust").await?;
    rust.open(id, Automerge::new().with_actor(actor_of(&key(2), 1)));
    rust.wait_until(|p| string_at(p.doc(id), "title").as_deref() == Some("Spec"))
        .await?;
    rust.change(id, |tx| tx.put(ROOT, "from_b", "rust").map(drop))?;
    let mut reader = tokio::task::block_in_place(|| -> Result<_> {
        let mut reader = JsPeer::start(&token_url(&c, 3))?;
        reader.find_within(&url, wait)?;
        reader.put(&url, &["from_c"], json!("js"))?;
        reader.wait_for(&url, &["from_b"], json!("rust"), wait)?;
        Ok(reader)
    })?;
    tokio::task::block_in_place(|| -> Result<()> {
        author.wait_for(&url, &["from_b"], json!("rust"), wait)?;
        author.wait_for(&url, &["from_c"], json!("js"), wait)?;
        ensure!(author.errors()?.is_empty(), "{}", author.stderr());
        ensure!(reader.errors()?.is_empty(), "{}", reader.stderr());
        Ok(())
    })?;
    rust.wait_until(|p| string_at(p.doc(id), "from_c").as_deref() == Some("js"))
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_used_on_one_relay_is_refused_on_another() -> Result<()> {
    let store = TempDir::new("nats-store");
    let nats = Nats::start(store.path())?;
    let (da, db) = (TempDir::new("nonce-a"), TempDir::new("nonce-b"));
    let a = relay_in(&da, &nats).await?;
    let b = relay_in(&db, &nats).await?;
    let token = mint_token(&key(7), &a.relay_id);
    TestPeer::connect(&a.url(), Some(&token), "first")
        .await
        .context("a fresh token, first used")?;
    let again = TestPeer::connect(&b.url(), Some(&token), "replay").await;
    ensure!(again.is_err(), "relay b let in a token relay a had taken");
    let fresh = mint_token(&key(7), &b.relay_id);
    TestPeer::connect(&b.url(), Some(&fresh), "second")
        .await
        .context("another fresh token of the same key")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_on_one_relay_is_in_the_audit_log_on_another() -> Result<()> {
    let store = TempDir::new("nats-store");
    let nats = Nats::start(store.path())?;
    let (da, db) = (TempDir::new("audit-a"), TempDir::new("audit-b"));
    let a = relay_in(&da, &nats).await?;
    let b = relay_in(&db, &nats).await?;
    let (owner, stranger) = (key(1), key(3));
    let doc = DocumentId::from_bytes([66; 16]);
    let ws = a.share(&owner, &[], &[doc]).await?;
    until_listed(&b, &owner, &ws, doc).await?;
    // A stranger tries an invite secret that is no invite's, through b.
    let link = rapport_client::api::InviteLink {
        relay: format!("http://{}", b.addr).parse()?,
        workspace: ws.clone(),
        secret: "no-such-secret".into(),
    };
    let redeemed = as_on(&b, &stranger, move |api| Ok(api.redeem(&link).is_ok())).await?;
    ensure!(!redeemed, "a made-up invite let a stranger in");
    // The owner reads of it through a.
    let start = Instant::now();
    loop {
        let ws = ws.clone();
        let events = as_on(&a, &owner, move |api| Ok(api.audit(&ws, None, None)?)).await?;
        if events.iter().any(|e| e.event == "invite-refused") {
            break;
        }
        ensure!(
            start.elapsed() < Duration::from_secs(10),
            "relay a's audit log has no invite-refused: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// The relay's WebSocket URL with a fresh token for key `seed` in the
/// query string, as a browser connects.
fn token_url(relay: &TestRelay, seed: u8) -> String {
    format!(
        "{}?token={}",
        relay.url(),
        mint_token(&key(seed), &relay.relay_id)
    )
}

/// A string at the root, a scalar or a text object.
fn string_at(doc: &Automerge, field: &str) -> Option<String> {
    let (value, id) = doc.get(ROOT, field).ok()??;
    match value.as_str() {
        Some(text) => Some(text.to_owned()),
        None => doc.text(&id).ok(),
    }
}

/// Waits until `relay`'s copy lists `document` in `ws` for `key`: the
/// shared workspaces reach each relay a moment after they change.
async fn until_listed(
    relay: &TestRelay,
    key: &SigningKey,
    ws: &str,
    document: DocumentId,
) -> Result<()> {
    let start = Instant::now();
    loop {
        let ws = ws.to_owned();
        let listed = as_on(relay, key, move |api| Ok(api.documents(&ws)?)).await;
        if listed.is_ok_and(|listed| listed.contains(&document)) {
            return Ok(());
        }
        ensure!(
            start.elapsed() < Duration::from_secs(20),
            "{document} never listed on {}",
            relay.url()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
