//! The automations document belongs to its workspace and only admins write
//! it; webhooks go to public addresses only.

use std::time::Duration;

use anyhow::{Result, ensure};
use automerge::Automerge;
use ed25519_dalek::SigningKey;
use rapport_client::Repo;
use rapport_client::api::{InviteRequest, Level, RelayApi, Role};
use rapport_model::automation::document;
use rapport_protocol::ids::DocumentId;
use rapport_tests::peer::{PATIENCE, TestPeer, actor_of, key};
use rapport_tests::relay::{TempDir, TestRelay};

use super::{blocking, doc_by, person, stored};

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

/// A workspace of `owner` on `relay` with `rules`, and a task tagged `tag`
/// marked done, which fires them.
pub(super) async fn fire_webhook(
    relay: &TestRelay,
    owner: &Repo,
    rule: &str,
    times: usize,
) -> Result<String> {
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
