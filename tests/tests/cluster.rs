//! Several relays as one on a real nats-server with JetStream (started
//! here on 127.0.0.1 with a temporary store): peers spread over three
//! relays edit one document and converge; a relay that joins later, or
//! comes back after a restart, catches up from the stream; a relay killed
//! with SIGKILL in a burst loses nothing it acknowledged; a relay whose
//! NATS is gone refuses changes rather than acknowledge them; a document's
//! subject compacted to a snapshot loses nothing, and a relay that joins
//! after starts from it.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT, ReadDoc};
use rapport_protocol::ids::DocumentId;
use rapport_protocol::wire::Message;
use rapport_server::{AuthMode, Config};
use rapport_tests::child_relay::ChildRelay;
use rapport_tests::nats::Nats;
use rapport_tests::peer::{TestPeer, actor_of, key};
use rapport_tests::relay::{TempDir, TestRelay};

async fn relay_in(dir: &Path, nats: &Nats) -> Result<TestRelay> {
    let mut config = Config::new(dir);
    config.auth = AuthMode::Open;
    config.cluster = vec![nats.url()];
    TestRelay::start_config(config).await
}

async fn peer(relay: &TestRelay, seed: u8) -> Result<TestPeer> {
    TestPeer::connect_as(
        &relay.url(),
        &relay.relay_id,
        &key(seed),
        &format!("p{seed}"),
    )
    .await
}

fn value(doc: &Automerge, field: &str) -> Option<i64> {
    doc.get(ROOT, field).ok()?.and_then(|(v, _)| v.as_i64())
}

/// Waits until every peer holds `fields`, each set to its number.
async fn all_hold(peers: &[&TestPeer], id: DocumentId, fields: &[(String, i64)]) -> Result<()> {
    for peer in peers {
        peer.wait_until(|p| {
            fields
                .iter()
                .all(|(field, n)| value(p.doc(id), field) == Some(*n))
        })
        .await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_on_three_relays_converge_and_a_late_relay_catches_up() -> Result<()> {
    let store = TempDir::new("nats-store");
    let nats = Nats::start(store.path())?;
    let dirs = [
        TempDir::new("cluster-a"),
        TempDir::new("cluster-b"),
        TempDir::new("cluster-c"),
    ];
    let a = relay_in(dirs[0].path(), &nats).await?;
    let b = relay_in(dirs[1].path(), &nats).await?;
    let c = relay_in(dirs[2].path(), &nats).await?;
    let id = DocumentId::from_bytes([21; 16]);
    let (pa, pb, pc) = (peer(&a, 1).await?, peer(&b, 2).await?, peer(&c, 3).await?);
    for (n, p) in [&pa, &pb, &pc].into_iter().enumerate() {
        p.open(
            id,
            Automerge::new().with_actor(actor_of(&key(n as u8 + 1), 1)),
        );
    }
    // Each writes its own fields, at the same time.
    let mut fields = Vec::new();
    for round in 0..5i64 {
        for (n, p) in [&pa, &pb, &pc].into_iter().enumerate() {
            let field = format!("from{n}-{round}");
            p.change(id, |tx| tx.put(ROOT, field.as_str(), round))?;
            fields.push((field, round));
        }
    }
    all_hold(&[&pa, &pb, &pc], id, &fields).await?;
    let heads = pa.with(|p| p.doc(id).get_heads());
    ensure!(pb.with(|p| p.doc(id).get_heads()) == heads);
    ensure!(pc.with(|p| p.doc(id).get_heads()) == heads);

    // /metrics counts what each relay published and took.
    ensure!(a.metric("rapport_cluster_published_total").await? >= 1);
    ensure!(b.metric("rapport_cluster_taken_total").await? >= 1);
    ensure!(a.metric("rapport_cluster_connected").await? == 1);

    // A fourth relay joins later: it has everything from the stream.
    let late_dir = TempDir::new("cluster-d");
    let d = relay_in(late_dir.path(), &nats).await?;
    let pd = peer(&d, 4).await?;
    pd.open(id, Automerge::new().with_actor(actor_of(&key(4), 1)));
    all_hold(&[&pd], id, &fields).await?;

    // Relay C goes away and comes back on its folder: what was written
    // meanwhile through A reaches it from where its consumer stopped.
    pc.close().await;
    let mut c = c;
    c.stop().await?;
    pa.change(id, |tx| tx.put(ROOT, "while-c-was-away", 1))?;
    fields.push(("while-c-was-away".into(), 1));
    all_hold(&[&pb], id, &fields).await?;
    let c = relay_in(dirs[2].path(), &nats).await?;
    let pc = peer(&c, 3).await?;
    pc.open(id, Automerge::new().with_actor(actor_of(&key(3), 2)));
    all_hold(&[&pc], id, &fields).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_nats_changes_are_refused_and_arrive_once_it_is_back() -> Result<()> {
    let store = TempDir::new("nats-store-down");
    let mut nats = Nats::start(store.path())?;
    let (da, db) = (TempDir::new("down-a"), TempDir::new("down-b"));
    let a = relay_in(da.path(), &nats).await?;
    let b = relay_in(db.path(), &nats).await?;
    let id = DocumentId::from_bytes([22; 16]);
    let (pa, pb) = (peer(&a, 1).await?, peer(&b, 2).await?);
    pa.open(id, Automerge::new().with_actor(actor_of(&key(1), 1)));
    pb.open(id, Automerge::new().with_actor(actor_of(&key(2), 1)));
    pa.change(id, |tx| tx.put(ROOT, "before", 1))?;
    all_hold(&[&pa, &pb], id, &[("before".into(), 1)]).await?;

    let (status, _) = a.get("/healthz").await?;
    ensure!(status == 200, "healthy with NATS up: {status}");
    nats.stop();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = a.get("/healthz").await?;
        if status == 503 && body.contains("cluster: NATS is unreachable") {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "/healthz did not say NATS is gone: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pa.change(id, |tx| tx.put(ROOT, "during", 2))?;
    pa.wait_until(|p| {
        p.received.iter().any(|m| {
            matches!(m, Message::Rejected(r) if r.document_id == id
                && r.reason.code() == "storage-unavailable")
        })
    })
    .await
    .context("the change made while NATS was down was refused")?;
    ensure!(
        pb.with(|p| value(p.doc(id), "during")).is_none(),
        "nothing refused reached the other relay's peer"
    );

    nats.restart()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while a.get("/healthz").await?.0 != 200 {
        ensure!(
            Instant::now() < deadline,
            "/healthz did not recover with NATS"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The writer's device still holds the change and offers it again.
    pa.change(id, |tx| tx.put(ROOT, "after", 3))?;
    all_hold(
        &[&pa, &pb],
        id,
        &[
            ("before".into(), 1),
            ("during".into(), 2),
            ("after".into(), 3),
        ],
    )
    .await?;
    drop((a, b));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_killed_in_a_burst_loses_nothing_it_acknowledged() -> Result<()> {
    let store = TempDir::new("nats-store-kill");
    let nats = Nats::start(store.path())?;
    let (da, dc) = (TempDir::new("kill-a"), TempDir::new("kill-c"));
    let a = relay_in(da.path(), &nats).await?;
    let mut c = ChildRelay::spawn_on(
        env!("CARGO_BIN_EXE_relay-child").into(),
        dc.path().to_owned(),
        vec!["open".into(), format!("cluster={}", nats.url())],
        "127.0.0.1:0".parse()?,
    )
    .await?;
    let id = DocumentId::from_bytes([23; 16]);
    let writer = TestPeer::connect_as(&c.url(), &c.relay_id, &key(1), "writer").await?;
    writer.open(id, Automerge::new().with_actor(actor_of(&key(1), 1)));
    // A burst of changes, one after the other, and the relay dies in it.
    const BURST: i64 = 300;
    let writer = std::sync::Arc::new(writer);
    let burst = tokio::spawn({
        let writer = std::sync::Arc::clone(&writer);
        async move {
            for n in 0..BURST {
                writer.change(id, |tx| tx.put(ROOT, "n", n))?;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            anyhow::Ok(())
        }
    });
    let acknowledged = |w: &rapport_tests::peer::PeerState| -> Option<i64> {
        // Changes set `n` to 0, 1, …: the history is a line, and the
        // relay's heads name how far it has stored.
        let order: Vec<_> = w
            .doc(id)
            .get_changes(&[])
            .iter()
            .map(|c| c.hash())
            .collect();
        w.heads_from_relay(id)
            .flatten()
            .filter_map(|h| order.iter().position(|o| *o == h))
            .max()
            .map(|i| i as i64)
    };
    writer
        .wait_until(|w| acknowledged(w).is_some_and(|i| i >= BURST / 4))
        .await?;
    c.sigkill()?;
    burst.await??;
    writer.wait_until(|w| w.closed.is_some()).await?;
    let told = writer
        .with(|w| acknowledged(w))
        .context("something was acknowledged")?;
    let change_told = writer.with(|w| w.doc(id).get_changes(&[])[told as usize].hash());
    eprintln!("relay C killed with changes up to {told} of 0..{BURST} acknowledged");

    // Another relay of the cluster holds everything the dead one said it
    // stored, before the writer is back.
    let reader = peer(&a, 2).await?;
    reader.open(id, Automerge::new().with_actor(actor_of(&key(2), 1)));
    reader
        .wait_until(|r| r.doc(id).get_change_by_hash(&change_told).is_some())
        .await
        .with_context(|| format!("relay A lacks acknowledged change {told}"))?;
    // The writer comes back through A with all it made: nothing is lost.
    let kept = writer.with(|w| w.doc(id).clone());
    if let Ok(writer) = std::sync::Arc::try_unwrap(writer) {
        writer.close().await;
    }
    let again = TestPeer::connect_as(&a.url(), &a.relay_id, &key(1), "again").await?;
    again.open(id, kept);
    all_hold(&[&again, &reader], id, &[("n".into(), BURST - 1)]).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_upload_and_a_large_batch_cross_the_cluster() -> Result<()> {
    let store = TempDir::new("nats-store-large");
    let nats = Nats::start(store.path())?;
    let (da, db) = (TempDir::new("large-a"), TempDir::new("large-b"));
    let a = relay_in(da.path(), &nats).await?;
    let b = relay_in(db.path(), &nats).await?;
    let id = DocumentId::from_bytes([24; 16]);
    let notes_of = |doc: &Automerge| -> usize {
        doc.get(ROOT, "notes")
            .ok()
            .flatten()
            .map_or(0, |(_, notes)| doc.length(&notes))
    };
    // Text that does not compress, a kilobyte a change.
    let mut seed = 7u64;
    let mut kilobyte = move || -> String {
        (0..1024)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                char::from(b'a' + (seed >> 59) as u8 % 26)
            })
            .collect()
    };
    // A document of 300 changes, made offline, arrives whole (one saved
    // document) on relay A and crosses to B.
    let mut offline = Automerge::new().with_actor(actor_of(&key(1), 1));
    let notes = offline
        .transact(|tx| tx.put_object(ROOT, "notes", automerge::ObjType::List))
        .map_err(|e| anyhow::anyhow!("{e:?}"))?
        .result;
    let mut typed = |doc: &mut Automerge, n: usize| -> Result<()> {
        for _ in 0..n {
            let line = kilobyte();
            let at = doc.length(&notes);
            doc.transact(|tx| tx.insert(&notes, at, line.as_str()))
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        }
        Ok(())
    };
    typed(&mut offline, 300)?;
    let writer = peer(&a, 1).await?;
    writer.open(id, offline);
    let reader = peer(&b, 2).await?;
    reader.open(id, Automerge::new().with_actor(actor_of(&key(2), 1)));
    reader
        .wait_until(|r| notes_of(r.doc(id)) == 300)
        .await
        .context("the whole upload did not reach relay B")?;
    let published = a.metric("rapport_cluster_published_total").await?;
    // The same device writes 1,500 kilobytes more offline and comes back:
    // more than NATS takes in one message (1 MiB), published in parts.
    let mut offline = writer.with(|w| w.doc(id).clone());
    writer.close().await;
    typed(&mut offline, 1_500)?;
    let writer = peer(&a, 1).await?;
    writer.open(id, offline);
    reader
        .wait_until(|r| notes_of(r.doc(id)) == 1_800)
        .await
        .context("the large batch did not reach relay B")?;
    ensure!(
        a.metric("rapport_cluster_published_total").await? >= published + 2,
        "the batch went in parts"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compacted_subject_loses_nothing_and_a_late_relay_starts_from_its_snapshot() -> Result<()>
{
    let store = TempDir::new("nats-store-compact");
    let nats = Nats::start(store.path())?;
    let dirs = [
        TempDir::new("compact-a"),
        TempDir::new("compact-b"),
        TempDir::new("compact-c"),
    ];
    let small = |dir: &TempDir| {
        let mut config = Config::new(dir.path());
        config.auth = AuthMode::Open;
        config.cluster = vec![nats.url()];
        config.compact_after_changes = 10;
        config
    };
    let a = TestRelay::start_config(small(&dirs[0])).await?;
    let b = TestRelay::start_config(small(&dirs[1])).await?;
    let id = DocumentId::from_bytes([24; 16]);
    let (pa, pb) = (peer(&a, 1).await?, peer(&b, 2).await?);
    pa.open(id, Automerge::new().with_actor(actor_of(&key(1), 1)));
    pb.open(id, Automerge::new().with_actor(actor_of(&key(2), 1)));
    let mut fields = Vec::new();
    for n in 0..60i64 {
        let (writer, name) = if n % 2 == 0 { (&pa, "a") } else { (&pb, "b") };
        let field = format!("{name}{n}");
        writer.change(id, |tx| tx.put(ROOT, field.as_str(), n))?;
        fields.push((field, n));
        // Each change its own message.
        writer
            .wait_until(|p| p.acknowledged(id, &p.doc(id).get_heads()))
            .await?;
    }
    all_hold(&[&pa, &pb], id, &fields).await?;
    // Compacted while they typed, and once more when they stopped.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let messages = subject_messages(&nats, id).await?;
        if messages <= 10 {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "the subject still holds {messages} messages for 60 changes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A relay that joins now starts from the snapshot and misses nothing.
    let c = TestRelay::start_config(small(&dirs[2])).await?;
    let pc = peer(&c, 3).await?;
    pc.open(id, Automerge::new());
    all_hold(&[&pc], id, &fields).await?;
    Ok(())
}

/// How many messages the stream holds on `document`'s subject.
async fn subject_messages(nats: &Nats, document: DocumentId) -> Result<usize> {
    use futures_util::StreamExt as _;
    let client = async_nats::connect(nats.url()).await?;
    let stream = async_nats::jetstream::new(client)
        .get_stream("RAPPORT_CHANGES")
        .await?;
    let subject = format!("rapport.doc.{document}");
    let mut subjects = stream.info_with_subjects(&subject).await?;
    let mut count = 0;
    while let Some(entry) = subjects.next().await {
        let (name, messages) = entry?;
        if name == subject {
            count = messages;
        }
    }
    Ok(count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_copies_on_a_server_that_cannot_keep_them_refuse_to_start() -> Result<()> {
    let store = TempDir::new("nats-store");
    let nats = Nats::start(store.path())?;
    let dir = TempDir::new("replicas");
    let mut config = Config::new(dir.path());
    config.auth = AuthMode::Open;
    config.cluster = vec![nats.url()];
    config.cluster_replicas = 3;
    let Err(error) = TestRelay::start_config(config).await else {
        anyhow::bail!("a relay asking one nats-server for three copies started");
    };
    let error = format!("{error:#}");
    // Debian's 2.9.10 is refused by the relay itself; a newer single
    // server refuses the replicated stream.
    ensure!(
        error.contains("2.9.21") || error.contains("replicas"),
        "the refusal does not say why: {error}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_crosses_relays() -> Result<()> {
    let store = TempDir::new("nats-store");
    let nats = Nats::start(store.path())?;
    let (da, db) = (TempDir::new("presence-a"), TempDir::new("presence-b"));
    let a = relay_in(da.path(), &nats).await?;
    let b = relay_in(db.path(), &nats).await?;
    let id = DocumentId::from_bytes([77; 16]);
    let (here, there) = (peer(&a, 1).await?, peer(&b, 2).await?);
    here.open(id, Automerge::new().with_actor(actor_of(&key(1), 1)));
    here.change(id, |tx| tx.put(ROOT, "n", 1))?;
    there.open(id, Automerge::new());
    all_hold(&[&there], id, &[("n".to_owned(), 1)]).await?;
    // A cursor, as automerge-repo's presence sends it (CBOR text here).
    let cursor = vec![0x63, b'a', b't', b'7'];
    let message = Message::Ephemeral(rapport_protocol::wire::Ephemeral {
        sender_id: here.peer_id.clone(),
        target_id: here.peer_id.clone(),
        count: 1,
        session_id: "session".into(),
        document_id: id,
        data: cursor.clone(),
    });
    here.send_raw(tokio_tungstenite::tungstenite::Message::binary(
        message.encode(),
    ));
    there
        .wait_until(|p| {
            p.received.iter().any(
                |m| matches!(m, Message::Ephemeral(e) if e.data == cursor && e.document_id == id),
            )
        })
        .await
        .context("the cursor did not reach the peer on the other relay")?;
    Ok(())
}
