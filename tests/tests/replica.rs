//! Replicas (rapport-client) syncing through the relay over real sockets.
//!
//! Replicas of different people share documents as staff of a workspace
//! that lists them ([`TestRelay::share`]), listed before the first sync:
//! a document no workspace lists is its first writer's alone.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use automerge::transaction::Transactable;
use automerge::{Automerge, ObjType, ROOT, ReadDoc};
use rand::{Rng, SeedableRng};
use rapport_client::{ClientError, RelayConfig, Repo};
use rapport_protocol::ids::DocumentId;
use rapport_tests::relay::{TempDir, TestRelay};

const PATIENCE: Duration = Duration::from_secs(30);

/// Lists `documents` in a workspace of `owner`'s person whose staff are
/// the people of `members`.
async fn share(
    relay: &TestRelay,
    owner: &Repo,
    members: &[&Repo],
    documents: &[DocumentId],
) -> Result<()> {
    let members: Vec<_> = members
        .iter()
        .map(|repo| repo.identity().signing_key())
        .collect();
    relay
        .share(owner.identity().signing_key(), &members, documents)
        .await?;
    Ok(())
}

async fn sync(repo: &Repo, relay: &RelayConfig) -> Result<()> {
    let started = std::time::Instant::now();
    repo.sync_once(relay, PATIENCE, |_| {}).await?;
    if std::env::var_os("RAPPORT_TEST_TRACE").is_some() {
        eprintln!("sync took {:?}", started.elapsed());
    }
    Ok(())
}

fn text(doc: &Automerge, field: &str) -> String {
    let (_, id) = doc.get(ROOT, field).unwrap().expect("the field exists");
    doc.text(&id).unwrap()
}

fn string(doc: &Automerge, field: &str) -> Option<String> {
    doc.get(ROOT, field)
        .ok()?
        .and_then(|(v, _)| v.into_string().ok())
}

#[tokio::test]
async fn offline_edits_on_two_replicas_both_survive() -> Result<()> {
    let relay_dir = TempDir::new("two-replicas-relay");
    let relay = TestRelay::start(relay_dir.path()).await?;
    let config = relay.client_config();
    let (home_a, home_b) = (TempDir::new("replica-a"), TempDir::new("replica-b"));
    let a = Repo::init(home_a.path())?;
    let b = Repo::init(home_b.path())?;

    let (customer, ()) = a.create(|tx| {
        tx.put(ROOT, "kind", "customer")?;
        tx.put(ROOT, "name", "Acme")?;
        Ok::<_, automerge::AutomergeError>(())
    })?;
    let (requirements, ()) = a.create(|tx| {
        tx.put(ROOT, "kind", "requirements")?;
        let body = tx.put_object(ROOT, "body", ObjType::Text)?;
        tx.splice_text(&body, 0, 0, "Scope: portal.\nTimeline: Q3.")?;
        Ok::<_, automerge::AutomergeError>(())
    })?;
    share(&relay, &a, &[&b], &[customer, requirements]).await?;
    sync(&a, &config).await?;
    b.want(customer)?;
    b.want(requirements)?;
    sync(&b, &config).await?;
    assert_eq!(
        b.read(customer, |d| string(d, "name"))?,
        Some("Acme".into())
    );

    // Both offline: each edits the same record and the same text.
    a.change(customer, |tx| tx.put(ROOT, "stage", "proposal"))?;
    b.change(customer, |tx| tx.put(ROOT, "email", "buyer@acme.test"))?;
    a.change(requirements, |tx| {
        let (_, body) = tx.get(ROOT, "body")?.expect("body");
        tx.splice_text(&body, 14, 0, " With SSO.")
    })?;
    b.change(requirements, |tx| {
        let (_, body) = tx.get(ROOT, "body")?.expect("body");
        let end = tx.length(&body);
        tx.splice_text(&body, end, 0, " Budget 40k.")
    })?;

    sync(&a, &config).await?;
    sync(&b, &config).await?;
    sync(&a, &config).await?;
    for id in [customer, requirements] {
        assert_eq!(a.heads(id)?, b.heads(id)?);
    }
    for repo in [&a, &b] {
        assert_eq!(
            repo.read(customer, |d| string(d, "stage"))?,
            Some("proposal".into())
        );
        assert_eq!(
            repo.read(customer, |d| string(d, "email"))?,
            Some("buyer@acme.test".into())
        );
        assert_eq!(
            repo.read(requirements, |d| text(d, "body"))?,
            "Scope: portal. With SSO.\nTimeline: Q3. Budget 40k."
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_replica_takes_a_document_that_comes_in_one_message_of_over_16_mib() -> Result<()> {
    let relay_dir = TempDir::new("big-doc-relay");
    let relay = TestRelay::start(relay_dir.path()).await?;
    let config = relay.client_config();
    let (home_a, home_b) = (TempDir::new("big-doc-a"), TempDir::new("big-doc-b"));
    let a = Repo::init(home_a.path())?;
    let b = Repo::init(home_b.path())?;
    // 30 attachments of 1 MiB of text that does not compress away: all of
    // the document reaches a newcomer in one message, past tungstenite's
    // 16 MiB default frame limit even when the relay saves it whole.
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let (id, ()) = a.create(|tx| tx.put(ROOT, "kind", "requirements").map(drop))?;
    for n in 0..30 {
        let blob: String = (0..1024 * 1024)
            .map(|_| char::from(rng.random_range(b'!'..=b'~')))
            .collect();
        a.change(id, |tx| {
            tx.put(ROOT, format!("attachment{n}"), blob.as_str())
        })?;
    }
    share(&relay, &a, &[&b], &[id]).await?;
    sync(&a, &config).await?;
    b.want(id)?;
    sync(&b, &config).await?;
    assert_eq!(b.heads(id)?, a.heads(id)?);
    Ok(())
}

#[tokio::test]
async fn three_replicas_with_random_edits_and_restarts_converge() -> Result<()> {
    let seeds: Vec<u64> = match std::env::var("RAPPORT_SEEDS") {
        Ok(list) => list
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect(),
        Err(_) => (1..=10).collect(),
    };
    for seed in seeds {
        println!("seed {seed} (rerun with RAPPORT_SEEDS={seed})");
        converge_with_seed(seed)
            .await
            .with_context(|| format!("seed {seed}"))?;
    }
    Ok(())
}

async fn converge_with_seed(seed: u64) -> Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let relay_dir = TempDir::new("three-relay");
    let mut relay = TestRelay::start(relay_dir.path()).await?;
    let homes: Vec<TempDir> = (0..3)
        .map(|i| TempDir::new(&format!("three-{i}")))
        .collect();
    let mut repos: Vec<Repo> = homes
        .iter()
        .map(|h| Repo::init(h.path()))
        .collect::<Result<_, _>>()?;
    let (doc, ()) = repos[0].create(|tx| tx.put(ROOT, "created", true))?;
    share(&relay, &repos[0], &[&repos[1], &repos[2]], &[doc]).await?;
    sync(&repos[0], &relay.client_config()).await?;
    for repo in &repos[1..] {
        repo.want(doc)?;
    }
    for _ in 0..25 {
        let i = rng.random_range(0..3);
        match rng.random_range(0..10) {
            0..=4 => {
                let key = format!("k{}", rng.random_range(0..6));
                let value: i64 = rng.random();
                repos[i]
                    .change(doc, |tx| tx.put(ROOT, key.as_str(), value))
                    .or_else(|e| match e {
                        // Not fetched yet: the document is still empty here.
                        ClientError::UnknownDocument { .. } => Ok(()),
                        other => Err(other),
                    })?;
            }
            5..=7 => sync(&repos[i], &relay.client_config()).await?,
            8 => {
                // The replica's process restarts.
                let old = repos.remove(i);
                let home = old.home().to_owned();
                drop(old);
                repos.insert(i, Repo::open(&home)?);
                repos[i].want(doc)?;
            }
            _ => relay.restart().await?,
        }
    }
    for _ in 0..2 {
        for repo in &repos {
            sync(repo, &relay.client_config()).await?;
        }
    }
    let heads = repos[0].heads(doc)?;
    for repo in &repos {
        assert_eq!(repo.heads(doc)?, heads);
        assert_eq!(
            repo.read(doc, |d| d.keys(ROOT).collect::<Vec<_>>())?,
            repos[0].read(doc, |d| d.keys(ROOT).collect::<Vec<_>>())?
        );
    }
    Ok(())
}

#[test]
fn an_edit_that_returned_survives_sigkill() -> Result<()> {
    let home = TempDir::new("sigkill");
    let mut child = Command::new(env!("CARGO_BIN_EXE_replica-child"))
        .arg(home.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().context("stdin")?;
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let created = lines.next().context("no output")??;
    let id: DocumentId = created
        .strip_prefix("CREATED ")
        .context("no CREATED line")?
        .parse()?;
    for n in 1..=20 {
        writeln!(stdin, "edit {n}")?;
        stdin.flush()?;
        assert_eq!(lines.next().context("no answer")??, format!("EDITED {n}"));
    }
    // Killed right after the 20th edit returned.
    child.kill()?;
    child.wait()?;
    let repo = Repo::open(home.path())?;
    let n = repo.read(id, |d| {
        d.get(ROOT, "n")
            .ok()
            .flatten()
            .and_then(|(v, _)| v.as_i64())
    })?;
    assert_eq!(n, Some(20));
    Ok(())
}

#[test]
fn a_key_file_readable_by_others_is_refused_with_the_fix() -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let home = TempDir::new("perms");
    Repo::init(home.path())?;
    let key = home.path().join(rapport_client::identity::KEY_FILE);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644))?;
    let err = Repo::open(home.path()).unwrap_err();
    assert!(matches!(err, ClientError::KeyFileExposed { .. }), "{err}");
    assert!(err.to_string().contains("chmod 600"), "{err}");
    Ok(())
}

#[test]
fn an_uninitialised_home_says_what_to_do() {
    let home = TempDir::new("empty-home");
    let err = Repo::open(home.path()).unwrap_err();
    assert!(err.to_string().contains("rapport init"), "{err}");
}

#[test]
fn a_foreign_database_file_is_a_clear_error_and_stays_untouched() -> Result<()> {
    let home = TempDir::new("foreign-db");
    Repo::init(home.path())?;
    let db = home.path().join(rapport_client::store::DATABASE_FILE);
    std::fs::write(&db, b"this is not a database")?;
    let err = Repo::open(home.path()).unwrap_err();
    assert!(err.to_string().contains("replica.redb"), "{err}");
    assert_eq!(std::fs::read(&db)?, b"this is not a database");
    Ok(())
}

#[test]
fn a_document_that_does_not_load_is_named_and_the_rest_works() -> Result<()> {
    let home = TempDir::new("bad-doc");
    let repo = Repo::init(home.path())?;
    let (good, ()) = repo.create(|tx| tx.put(ROOT, "ok", true))?;
    let bad = DocumentId::from_bytes([66; 16]);
    repo.store()
        .append(bad, b"\x85\x6f\x4a\x83 definitely not a change", None)?;
    drop(repo);
    let repo = Repo::open(home.path())?;
    let err = repo.read(bad, |_| ()).unwrap_err();
    assert!(matches!(err, ClientError::CorruptDocument { .. }), "{err}");
    assert!(err.to_string().contains(&bad.to_string()), "{err}");
    assert!(repo.read(good, |d| d.get(ROOT, "ok").unwrap().is_some())?);
    Ok(())
}

#[tokio::test]
async fn an_unreachable_relay_is_a_clear_error_and_edits_stay() -> Result<()> {
    let home = TempDir::new("unreachable");
    let repo = Repo::init(home.path())?;
    let (id, ()) = repo.create(|tx| tx.put(ROOT, "x", 1))?;
    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    drop(listener);
    let config = RelayConfig {
        url: format!("ws://127.0.0.1:{port}/sync"),
        audience: Some("relay-x".into()),
    };
    let err = repo.sync_once(&config, PATIENCE, |_| {}).await.unwrap_err();
    assert!(err.to_string().contains("cannot reach the relay"), "{err}");
    assert!(repo.read(id, |d| d.get(ROOT, "x").unwrap().is_some())?);
    Ok(())
}

#[tokio::test]
async fn live_sync_carries_edits_both_ways_and_reports_progress() -> Result<()> {
    let relay_dir = TempDir::new("live-relay");
    let relay = TestRelay::start(relay_dir.path()).await?;
    let (home_a, home_b) = (TempDir::new("live-a"), TempDir::new("live-b"));
    let a = Repo::init(home_a.path())?;
    let b = Repo::init(home_b.path())?;
    let (id, ()) = a.create(|tx| tx.put(ROOT, "n", 0))?;
    share(&relay, &a, &[&b], &[id]).await?;
    b.want(id)?;
    let live_a = a.sync_live(relay.client_config());
    let live_b = b.sync_live(relay.client_config());
    let mut events = b.subscribe();
    for n in 1..=5i64 {
        a.change(id, |tx| tx.put(ROOT, "n", n))?;
        loop {
            let event = tokio::time::timeout(PATIENCE, events.recv()).await??;
            let seen = b.read(id, |d| {
                d.get(ROOT, "n")
                    .ok()
                    .flatten()
                    .and_then(|(v, _)| v.as_i64())
            })?;
            if event.id == id && seen == Some(n) {
                assert!(event.remote);
                break;
            }
        }
    }
    let progress = live_b.progress().borrow().clone();
    assert!(
        progress.connected && progress.bytes_received > 0,
        "{progress:?}"
    );
    live_a.stop().await;
    live_b.stop().await;
    Ok(())
}

#[test]
fn records_are_listed_from_the_index_and_the_index_rebuilds() -> Result<()> {
    use rapport_model::{Customer, Relationship, Task};
    let home = TempDir::new("index");
    let repo = Repo::init(home.path())?;
    let (acme, ()) = repo.create(|tx| Customer::new("Acme", Relationship::Client).write(tx))?;
    let (task, ()) = repo.create(|tx| {
        let mut task = Task::new("Send the offer");
        task.customer = Some(acme.to_string());
        task.write(tx)
    })?;
    let listed = |repo: &Repo| -> Result<Vec<(DocumentId, String)>> {
        let mut items: Vec<_> = repo
            .index()?
            .into_iter()
            .map(|(id, e)| (id, e.title))
            .collect();
        items.sort();
        Ok(items)
    };
    let mut expected = vec![
        (acme, "Acme".to_owned()),
        (task, "Send the offer".to_owned()),
    ];
    expected.sort();
    assert_eq!(listed(&repo)?, expected);
    repo.change(acme, |tx| tx.put(ROOT, "name", "Acme Ltd"))?;
    assert!(
        listed(&repo)?.contains(&(acme, "Acme Ltd".to_owned())),
        "the index follows edits"
    );
    repo.store().replace_index(&[])?;
    assert!(repo.index()?.is_empty());
    assert_eq!(repo.rebuild_index()?, 2);
    assert!(listed(&repo)?.contains(&(task, "Send the offer".to_owned())));
    Ok(())
}

#[tokio::test]
async fn live_sync_reconnects_after_the_relay_restarts() -> Result<()> {
    let relay_dir = TempDir::new("reconnect-relay");
    let mut relay = TestRelay::start(relay_dir.path()).await?;
    let (home_a, home_b) = (TempDir::new("reconnect-a"), TempDir::new("reconnect-b"));
    let a = Repo::init(home_a.path())?;
    let b = Repo::init(home_b.path())?;
    let (id, ()) = a.create(|tx| tx.put(ROOT, "n", 0))?;
    share(&relay, &a, &[&b], &[id]).await?;
    b.want(id)?;
    let live_a = a.sync_live(relay.client_config());
    let live_b = b.sync_live(relay.client_config());
    let mut progress = live_b.progress();
    let value = |repo: &Repo| {
        repo.read(id, |d| {
            d.get(ROOT, "n")
                .ok()
                .flatten()
                .and_then(|(v, _)| v.as_i64())
        })
    };

    relay.restart_in_place().await?;
    // Edits made while the relay is down or coming back reach the other side.
    a.change(id, |tx| tx.put(ROOT, "n", 42))?;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while value(&b)? != Some(42) {
        tokio::time::timeout_at(deadline, progress.changed()).await??;
    }
    let report = progress.borrow().clone();
    assert!(report.attempts >= 2, "it reconnected: {report:?}");
    live_a.stop().await;
    live_b.stop().await;
    Ok(())
}
