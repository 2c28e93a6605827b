//! A replica that knows two relays of one cluster (on a real nats-server
//! started here on 127.0.0.1 with a temporary store) syncs through the
//! other when one stops, remembers which one worked, and starts from it
//! next time; an invite made through the stopped relay is redeemed through
//! the other. A replica that reaches none of its addresses is told why for
//! each.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use automerge::transaction::Transactable;
use automerge::{ROOT, ReadDoc};
use rapport_client::api::{Level, RelayApi, Role};
use rapport_client::identity::Identity;
use rapport_client::relay_url::{RelayList, RelayUrl};
use rapport_client::{Relays, Repo, SyncError};
use rapport_server::Config;
use rapport_tests::nats::Nats;
use rapport_tests::peer::key;
use rapport_tests::relay::{TempDir, TestRelay, client_invite};

const PATIENCE: Duration = Duration::from_secs(30);

async fn relay_in(dir: &TempDir, nats: &Nats) -> Result<TestRelay> {
    let mut config = Config::new(dir.path());
    config.cluster = vec![nats.url()];
    TestRelay::start_config(config).await
}

fn address(relay: &TestRelay) -> Result<RelayUrl> {
    Ok(relay.url().parse()?)
}

fn note(repo: &Repo, id: rapport_protocol::ids::DocumentId) -> Result<Option<String>> {
    Ok(repo.read(id, |doc| {
        doc.get(ROOT, "note")
            .ok()?
            .and_then(|(v, _)| v.into_string().ok())
    })?)
}

/// Syncs `repo` through `relays`; the address it synced with, and every
/// address it reported trying, in order.
async fn sync(repo: &Repo, relays: &Relays) -> Result<(RelayUrl, Vec<String>)> {
    let mut tried: Vec<String> = Vec::new();
    let synced = repo
        .sync_once_through(relays, PATIENCE, |p| {
            if let Some(relay) = &p.relay
                && tried.last() != Some(relay)
            {
                tried.push(relay.clone());
            }
        })
        .await?;
    Ok((synced.relay, tried))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_syncs_through_the_other_relay_when_one_stops() -> Result<()> {
    let store = TempDir::new("nats-store");
    let nats = Nats::start(store.path())?;
    let (dir_a, dir_b) = (TempDir::new("failover-a"), TempDir::new("failover-b"));
    let mut a = relay_in(&dir_a, &nats).await?;
    let b = relay_in(&dir_b, &nats).await?;
    ensure!(a.relay_id == b.relay_id, "the relays answer to one id");
    let (home_ann, home_bob) = (TempDir::new("failover-ann"), TempDir::new("failover-bob"));
    let ann = Repo::init(home_ann.path())?;
    let bob = Repo::init(home_bob.path())?;
    let (id, ()) = ann.create(|tx| tx.put(ROOT, "note", "before"))?;
    let owner = ann.identity().signing_key().clone();
    let workspace = a
        .share(&owner, &[bob.identity().signing_key()], &[id])
        .await?;
    let relays = Relays {
        urls: format!("{},{}", a.url(), b.url()).parse()?,
        audience: Some(a.relay_id.clone()),
    };

    let (through, _) = sync(&ann, &relays).await?;
    ensure!(through == address(&a)?, "first synced through {through}");
    ensure!(ann.last_relay(&relays)? == Some(address(&a)?));
    // An invite made through relay a, whose link names relay a.
    let invite = RelayApi::new(&relays.config(&address(&a)?), ann.identity().clone())?
        .create_invite(&workspace, &client_invite(id, Level::Read))?;
    ensure!(
        invite.relay == address(&a)?,
        "the link names {}",
        invite.relay
    );

    a.stop().await?;
    ann.change(id, |tx| tx.put(ROOT, "note", "while relay a was down"))?;
    let (through, tried) = sync(&ann, &relays).await?;
    ensure!(through == address(&b)?, "synced through {through}");
    ensure!(
        tried == [a.url(), b.url()],
        "tried {tried:?}, not relay a then relay b"
    );
    ensure!(
        ann.last_relay(&relays)? == Some(address(&b)?),
        "the replica does not remember relay b"
    );
    // A second peer, on relay b only, gets the change.
    bob.want(id)?;
    bob.sync_once(&b.client_config(), PATIENCE, |_| {}).await?;
    ensure!(note(&bob, id)?.as_deref() == Some("while relay a was down"));

    // The link made through relay a is redeemed through relay b.
    let carol = Identity::in_memory(key(7));
    let role = RelayApi::new(&b.client_config(), carol)?.redeem(&invite)?;
    ensure!(role == Role::Client, "joined as {role:?}");

    // Relay a is back; the replica, opened again, starts from relay b.
    a.restart_in_place().await?;
    drop(ann);
    let ann = Repo::open(home_ann.path())?;
    ensure!(ann.last_relay(&relays)? == Some(address(&b)?));
    let (through, tried) = sync(&ann, &relays).await?;
    ensure!(
        through == address(&b)? && tried == [b.url()],
        "after a restart synced through {through}, having tried {tried:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_sync_moves_to_the_other_relay_when_one_stops() -> Result<()> {
    let store = TempDir::new("nats-store");
    let nats = Nats::start(store.path())?;
    let (dir_a, dir_b) = (TempDir::new("live-a"), TempDir::new("live-b"));
    let mut a = relay_in(&dir_a, &nats).await?;
    let b = relay_in(&dir_b, &nats).await?;
    let (home_ann, home_bob) = (TempDir::new("live-ann"), TempDir::new("live-bob"));
    let ann = Repo::init(home_ann.path())?;
    let bob = Repo::init(home_bob.path())?;
    let (id, ()) = ann.create(|tx| tx.put(ROOT, "note", "before"))?;
    let owner = ann.identity().signing_key().clone();
    a.share(&owner, &[bob.identity().signing_key()], &[id])
        .await?;
    let relays = Relays {
        urls: format!("{},{}", a.url(), b.url()).parse()?,
        audience: Some(a.relay_id.clone()),
    };
    let live = ann.sync_live_through(&relays)?;
    let mut progress = live.progress();
    let on = |relay: &TestRelay| {
        let url = relay.url();
        move |p: &rapport_client::Progress| p.connected && p.relay.as_deref() == Some(&url)
    };
    tokio::time::timeout(PATIENCE, progress.wait_for(on(&a)))
        .await
        .context("the live sync never connected to relay a")??;

    a.stop().await?;
    tokio::time::timeout(PATIENCE, progress.wait_for(on(&b)))
        .await
        .context("the live sync did not move to relay b")??;
    ann.change(id, |tx| tx.put(ROOT, "note", "live, through relay b"))?;
    bob.want(id)?;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        bob.sync_once(&b.client_config(), PATIENCE, |_| {}).await?;
        if note(&bob, id)?.as_deref() == Some("live, through relay b") {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the change made while live on relay b never reached bob");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ensure!(ann.last_relay(&relays)? == Some(address(&b)?));
    live.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_that_cannot_store_are_left_for_the_next() -> Result<()> {
    let store = TempDir::new("nats-store");
    let mut nats = Nats::start(store.path())?;
    let (dir_a, dir_b) = (TempDir::new("unstored-a"), TempDir::new("unstored-b"));
    let a = relay_in(&dir_a, &nats).await?;
    let b = relay_in(&dir_b, &nats).await?;
    let home = TempDir::new("unstored-ann");
    let ann = Repo::init(home.path())?;
    let (id, ()) = ann.create(|tx| tx.put(ROOT, "note", "before"))?;
    a.share(ann.identity().signing_key(), &[], &[id]).await?;
    let relays = Relays {
        urls: format!("{},{}", a.url(), b.url()).parse()?,
        audience: Some(a.relay_id.clone()),
    };
    sync(&ann, &relays).await?;

    nats.stop();
    for relay in [&a, &b] {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while relay.get("/healthz").await?.0 != 503 {
            ensure!(
                tokio::time::Instant::now() < deadline,
                "/healthz stayed 200 without NATS"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    ann.change(id, |tx| tx.put(ROOT, "note", "while NATS was down"))?;
    let started = std::time::Instant::now();
    match ann.sync_once_through(&relays, PATIENCE, |_| {}).await {
        Err(SyncError::EveryAddressFailed { failures }) => {
            ensure!(failures.len() == 2, "{failures:?}");
            for failure in &failures {
                ensure!(
                    matches!(failure, SyncError::StorageUnavailable { .. }),
                    "not left for storage-unavailable: {failure}"
                );
            }
        }
        other => bail!("syncing with relays that cannot store ended {other:?}"),
    }
    ensure!(
        started.elapsed() < PATIENCE / 2,
        "leaving took {:?}",
        started.elapsed()
    );
    Ok(())
}

#[tokio::test]
async fn when_no_address_works_the_error_names_each() -> Result<()> {
    // Two ports nothing listens on (once their listeners are dropped).
    let listeners = [
        std::net::TcpListener::bind("127.0.0.1:0")?,
        std::net::TcpListener::bind("127.0.0.1:0")?,
    ];
    let (one, two): (SocketAddr, SocketAddr) =
        (listeners[0].local_addr()?, listeners[1].local_addr()?);
    drop(listeners);
    let urls: RelayList = format!("ws://{one}/sync,ws://{two}/sync").parse()?;
    let home = TempDir::new("failover-none");
    let repo = Repo::init(home.path())?;
    let relays = Relays {
        urls,
        audience: Some("relay-nowhere".into()),
    };
    match repo.sync_once_through(&relays, PATIENCE, |_| {}).await {
        Err(error @ SyncError::EveryAddressFailed { .. }) => {
            let text = error.to_string();
            for addr in [one, two] {
                ensure!(
                    text.contains(&addr.to_string()),
                    "{addr} unnamed in: {text}"
                );
            }
        }
        other => bail!("syncing with nobody ended {other:?}"),
    }
    ensure!(repo.last_relay(&relays)?.is_none());
    Ok(())
}
