//! Webhooks reach no loopback address by name or by redirect, and what a
//! receiver says never reaches a member who is not an admin.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Result, ensure};
use automerge::{AutoSerde, Automerge};
use rapport_client::Repo;
use rapport_client::api::{RelayApi, Role};
use rapport_model::automation::document;
use rapport_tests::peer::{PATIENCE, TestPeer, key};
use rapport_tests::relay::{TempDir, TestRelay, staff_invite};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::automations::fire_webhook;
use super::{blocking, person};

/// What a receiver says of itself, which nobody but an admin may read.
const SECRET: &str = "receiver-secret-4b1d";

/// A receiver on 127.0.0.1 answering every request with `answer`; counts
/// the requests it got.
async fn receiver(answer: String) -> Result<(std::net::SocketAddr, Arc<AtomicUsize>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let got = Arc::new(AtomicUsize::new(0));
    let counting = Arc::clone(&got);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counting.fetch_add(1, Ordering::SeqCst);
            let mut buf = vec![0u8; 8192];
            let _ = stream.read(&mut buf).await;
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    Ok((addr, got))
}

/// An HTTP answer with `head` (status line and headers) and `body`.
fn answer(head: &str, body: &str) -> String {
    format!(
        "{head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn rule(url: &str) -> String {
    format!("when task.status changes to done if tags has hook then webhook {url}")
}

/// The first error `owner`'s replica shows for the rules of `ws`.
async fn recorded_error(relay: &TestRelay, owner: &Repo, ws: &str) -> Result<String> {
    let config = relay.client_config();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        owner.sync_once(&config, PATIENCE, |_| {}).await?;
        let rules = owner.automations(ws)?;
        if let Some(error) = rules.first().and_then(|r| r.status.last_error.clone()) {
            return Ok(error);
        }
        ensure!(tokio::time::Instant::now() < deadline, "no error recorded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_name_for_a_loopback_address_and_a_redirect_to_one_are_not_followed() -> Result<()> {
    let ok = answer("HTTP/1.1 200 OK", "");
    let (forbidden, forbidden_got) = receiver(ok.clone()).await?;
    let (allowed, allowed_got) = receiver(ok).await?;
    // An allowed receiver that sends the webhook on to the forbidden one.
    let location = format!("HTTP/1.1 307 Temporary Redirect\r\nLocation: http://{forbidden}/");
    let (redirecting, _) = receiver(answer(&location, "")).await?;
    let dir = TempDir::new("attack-webhook-names");
    let mut config = rapport_server::Config::new(dir.path());
    config.webhook_allow = vec![
        format!("localhost:{}", allowed.port()),
        redirecting.to_string(),
    ];
    let relay = TestRelay::start_config(config).await?;
    let home = TempDir::new("attack-webhook-names-owner");
    let owner = Repo::init(home.path())?;

    // `localhost` names 127.0.0.1: refused, unless the operator allows it.
    let url = format!("http://localhost:{}/hook", forbidden.port());
    let ws = fire_webhook(&relay, &owner, &rule(&url), 1).await?;
    let error = recorded_error(&relay, &owner, &ws).await?;
    ensure!(error.contains("not a public address"), "{error}");
    let url = format!("http://localhost:{}/hook", allowed.port());
    fire_webhook(&relay, &owner, &rule(&url), 1).await?;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while allowed_got.load(Ordering::SeqCst) == 0 {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the allowed name got nothing"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A redirect is not followed: the receiver's answer is the outcome.
    let ws = fire_webhook(
        &relay,
        &owner,
        &rule(&format!("http://{redirecting}/hook")),
        1,
    )
    .await?;
    let error = recorded_error(&relay, &owner, &ws).await?;
    ensure!(error == "the receiver answered HTTP 307", "{error}");
    ensure!(
        forbidden_got.load(Ordering::SeqCst) == 0,
        "the forbidden receiver was reached"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn what_a_receiver_says_reaches_no_member_but_admins() -> Result<()> {
    // One receiver fails with its words in the status line, the headers and
    // the body; another sends the webhook on to an address it names so.
    let failing = format!("HTTP/1.1 500 {SECRET}\r\nX-Error: {SECRET}");
    let (failing, failing_got) = receiver(answer(&failing, SECRET)).await?;
    let moving = format!("HTTP/1.1 307 {SECRET}\r\nLocation: ../../{SECRET}");
    let (moving, moving_got) = receiver(answer(&moving, SECRET)).await?;
    let dir = TempDir::new("attack-webhook-words");
    let mut config = rapport_server::Config::new(dir.path());
    config.webhook_allow = vec![failing.to_string(), moving.to_string()];
    let relay = TestRelay::start_config(config).await?;
    let (owner_key, staff_key) = (key(1), key(2));
    let home = TempDir::new("attack-webhook-words-owner");
    let owner = Repo::init_with_key(home.path(), owner_key.clone())?;
    let mut dirs = Vec::new();

    let config = relay.client_config();
    let owner_api = RelayApi::new(&config, owner.identity().clone())?;
    let ws = blocking(|| owner_api.create_workspace("Hooks"))?;
    for url in [
        format!("http://{failing}/hook"),
        format!("http://{moving}/hook"),
    ] {
        owner.add_automation(&ws, &rapport_model::automation::Rule::parse(&rule(&url))?)?;
    }
    let staff_api = person(&relay, &staff_key, &mut dirs)?;
    let link = blocking(|| owner_api.create_invite(&ws, &staff_invite(1)))?;
    ensure!(blocking(|| staff_api.redeem(&link))? == Role::Staff);
    let mut task = rapport_model::Task::new("Hooked".to_owned());
    task.tags = vec!["hook".into()];
    let (task, ()) = owner.create(|tx| task.write(tx))?;
    blocking(|| owner_api.add_documents(&ws, &[(task, None)]))?;
    owner.sync_once(&config, PATIENCE, |_| {}).await?;
    owner.change(task, |tx| {
        rapport_model::Task::update(tx, |t| t.status = rapport_model::Status::Done)
    })?;
    owner.sync_once(&config, PATIENCE, |_| {}).await?;

    // Both failures are recorded in the automations document.
    let rules_id = document::document_id(&ws);
    let staff = TestPeer::connect_as(&relay.url(), &relay.relay_id, &staff_key, "staff").await?;
    staff.open(rules_id, Automerge::new());
    staff
        .wait_until(|s| {
            s.docs.contains_key(&rules_id)
                && document::rules(s.doc(rules_id))
                    .iter()
                    .filter(|r| r.status.last_error.is_some())
                    .count()
                    == 2
        })
        .await?;
    ensure!(failing_got.load(Ordering::SeqCst) > 0 && moving_got.load(Ordering::SeqCst) > 0);
    // Nothing a staff member reads holds the receivers' words: the whole
    // automations document, the feed, the notifications, the admins' API.
    let whole = staff.with(|s| serde_json::to_string(&AutoSerde::from(s.doc(rules_id))))?;
    ensure!(!whole.contains(SECRET), "the automations document: {whole}");
    let feed = blocking(|| staff_api.changes(&ws, "0", 1000, 0))?;
    let notes = blocking(|| staff_api.notifications(&ws, true))?;
    let refused = format!(
        "{:?} {:?}",
        blocking(|| staff_api.audit(&ws, None, None)),
        blocking(|| staff_api.invites(&ws)),
    );
    for (what, text) in [
        ("feed", format!("{feed:?}")),
        ("notifications", format!("{notes:?}")),
        ("admin API", refused),
    ] {
        ensure!(!text.contains(SECRET), "the {what}: {text}");
    }
    Ok(())
}
