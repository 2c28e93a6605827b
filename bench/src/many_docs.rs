//! `rapport bench many-docs`: a relay holding many small documents, a few
//! thousand of them in use at once.
//!
//! The bench starts the relay itself (the binary given, on 127.0.0.1, a
//! temporary data folder, with tokens and an idle period), because it
//! measures the relay's start: it stores D documents of C changes each,
//! stops the relay, and times its start until `/healthz` answers. Then P
//! connections, each a member of the bench's workspace with a key of its
//! own, open O of the documents, every document by two of them, and edit
//! at random at R changes a second in all. Reported: the start, resident
//! memory at each step, *forward* (a change written by one connection →
//! applied in the other connection that has its document open), and the
//! relay's memory once every connection has left and the idle period has
//! passed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use automerge::transaction::Transactable as _;
use automerge::{ActorId, Automerge, ROOT, ReadDoc as _};
use clap::Args;
use futures_util::{SinkExt as _, StreamExt as _};
use rand::Rng as _;
use rapport_protocol::ids::DocumentId;
use rapport_protocol::sync::{DocumentSync, Effect};
use rapport_protocol::wire::Message;
use serde_json::json;
use tokio_tungstenite::tungstenite;

use super::Target;
use super::cold_sync::{LOAD_CHUNK, load_chunk, record};
use super::peer::{self, Link};
use super::process::Relay;
use super::progress::{Progress, bar};
use super::report::{Report, Unit};
use super::stats::Summary;

#[derive(Debug, Clone, Args)]
pub struct ManyDocsArgs {
    /// The relay binary to start (`target/release/rapport-server`).
    #[arg(long, value_name = "PATH")]
    server: PathBuf,
    /// Documents stored on the relay.
    #[arg(long, default_value_t = 100_000)]
    documents: usize,
    /// Changes per document.
    #[arg(long, default_value_t = 20)]
    changes: usize,
    /// Documents in use at once, each open on two connections.
    #[arg(long, default_value_t = 2_000)]
    open_documents: usize,
    /// Connections that open them.
    #[arg(long, default_value_t = 500)]
    connections: usize,
    /// How long the connections edit, in seconds.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Changes a second, over all connections.
    #[arg(long, default_value_t = 200)]
    rate: u32,
    /// The relay's idle period (`--unload-idle-after-secs`).
    #[arg(long, default_value_t = 10)]
    idle_seconds: u64,
    /// The relay's name in the report.
    #[arg(long, default_value = "rapport")]
    label: String,
}

/// How long a phase may take before the bench gives up.
const PHASE_LIMIT: Duration = Duration::from_secs(1800);

pub async fn run(args: &ManyDocsArgs) -> Result<Report> {
    if args.open_documents > args.documents || args.connections < 2 {
        bail!("--open-documents must be at most --documents, and --connections at least 2");
    }
    let mut progress = Progress::new();
    let data = std::env::temp_dir().join(format!("rapport-bench-many-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let result = measure(args, &data, &mut progress).await;
    let _ = std::fs::remove_dir_all(&data);
    result
}

async fn measure(args: &ManyDocsArgs, data: &Path, progress: &mut Progress) -> Result<Report> {
    let relay_args = vec![
        "--unload-idle-after-secs".to_owned(),
        args.idle_seconds.to_string(),
        "--max-documents-per-workspace".to_owned(),
        "100000000".to_owned(),
    ];
    let mut server = Relay::start(&args.server, data, relay_args).await?;
    let target = Target {
        relay: server.url(),
        open: false,
        relay_pid: Some(server.pid()),
        label: args.label.clone(),
        allow_remote: false,
    };
    let mut report = target.report(
        "many-docs",
        json!({
            "documents": args.documents,
            "changes_per_document": args.changes,
            "open_documents": args.open_documents,
            "connections": args.connections,
            "seconds": args.seconds,
            "rate": args.rate,
            "idle_seconds": args.idle_seconds,
        }),
    );
    let case = format!(
        "{} documents × {} changes, {} open on {} connections",
        args.documents, args.changes, args.open_documents, args.connections
    );

    // Every document has the same contents under its own id: what the
    // relay does with one does not depend on what it holds.
    let template = record(0, args.changes)?;
    let ids: Vec<DocumentId> = (0..args.documents)
        .map(|_| DocumentId::from_bytes(rand::random()))
        .collect();
    let auth = target.auth().await?.context("the bench's workspace")?;
    let loader = {
        let member = Arc::clone(&auth);
        let key = tokio::task::spawn_blocking(move || member.member()).await??;
        (Arc::clone(&auth), key)
    };
    progress.step(format!(
        "storing {} documents of {} changes",
        args.documents, args.changes
    ));
    let loading = Instant::now();
    for (n, chunk) in ids.chunks(LOAD_CHUNK).enumerate() {
        let docs: Vec<(DocumentId, Automerge)> =
            chunk.iter().map(|id| (*id, template.clone())).collect();
        load_chunk(
            &target.relay,
            256,
            Some(&loader),
            &docs,
            PHASE_LIMIT,
            progress,
        )
        .await?;
        let done = ((n + 1) * LOAD_CHUNK).min(ids.len());
        progress.update(format!(
            "{} stored {done}/{}",
            bar(done as f64, ids.len() as f64),
            ids.len()
        ));
    }
    progress.clear();
    report.single(
        &case,
        "storing them (setup)",
        Unit::Seconds,
        Some(loading.elapsed().as_secs_f64()),
    );

    progress.step("stopping the relay and starting it again".to_owned());
    server.stop()?;
    let startup = server.restart().await?;
    report.single(
        &case,
        "relay start, until /healthz answers",
        Unit::Seconds,
        Some(startup.as_secs_f64()),
    );
    let watched = server.watched();
    let at_start = watched.sample().map(|s| s.rss_bytes);
    report.single(
        &case,
        "resident memory after the start",
        Unit::Bytes,
        at_start.map(|b| b as f64),
    );

    progress.step(format!(
        "{} connections open {} documents",
        args.connections, args.open_documents
    ));
    let hot = &ids[..args.open_documents];
    let mut owners: Vec<Vec<DocumentId>> = vec![Vec::new(); args.connections];
    for (n, id) in hot.iter().enumerate() {
        owners[(2 * n) % args.connections].push(*id);
        owners[(2 * n + 1) % args.connections].push(*id);
    }
    // Every connection joins first (16 at a time), so that none edits
    // while the other connection of its documents is not there yet.
    let mut joined = futures_util::stream::iter(owners.into_iter().enumerate().map(|(n, docs)| {
        let (auth, url) = (Arc::clone(&auth), target.relay.clone());
        async move {
            let link = auth
                .connect(&url, peer::peer_name("many", n))
                .await
                .with_context(|| format!("connection {n}"))?;
            Ok::<_, anyhow::Error>((link, docs))
        }
    }))
    .buffer_unordered(16);
    let mut links = Vec::with_capacity(args.connections);
    while let Some(link) = joined.next().await {
        links.push(link?);
        progress.update(format!(
            "{} connected {}/{}",
            bar(links.len() as f64, args.connections as f64),
            links.len(),
            args.connections
        ));
    }
    drop(joined);
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let per_connection = f64::from(args.rate.max(1)) / args.connections as f64;
    let mut editors = tokio::task::JoinSet::new();
    for (link, docs) in links {
        editors.spawn(edit(link, docs, template.clone(), per_connection, deadline));
    }
    progress.clear();
    progress.step(format!(
        "editing at {} changes a second for {} s",
        args.rate, args.seconds
    ));
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampler = tokio::spawn(super::machine::sample_peak(
        Some(watched),
        Arc::clone(&peak),
        Duration::from_millis(200),
    ));
    let mut latencies = Vec::new();
    let (mut made, mut arrived) = (0usize, 0usize);
    while let Some(done) = editors.join_next().await {
        let edits = done.map_err(|e| anyhow!("an editor stopped: {e}"))??;
        made += edits.made;
        arrived += edits.latencies.len();
        latencies.extend(edits.latencies);
    }
    sampler.abort();
    let with_open = watched.sample().map(|s| s.rss_bytes);
    let missing = made.saturating_sub(arrived);
    report.samples(&case, "forward", Summary::of(latencies, missing));
    report.single(&case, "changes made", Unit::Count, Some(made as f64));
    report.single(
        &case,
        "resident memory while in use, peak",
        Unit::Bytes,
        Some(peak.load(std::sync::atomic::Ordering::Relaxed) as f64),
    );
    report.single(
        &case,
        "resident memory while in use, at the end",
        Unit::Bytes,
        with_open.map(|b| b as f64),
    );

    progress.step(format!(
        "every connection left; waiting out the idle period ({} s)",
        args.idle_seconds
    ));
    tokio::time::sleep(Duration::from_secs(args.idle_seconds * 2 + 5)).await;
    let after = watched.sample().map(|s| s.rss_bytes);
    report.memory_after_idle(
        &case,
        "resident memory after the idle period",
        after,
        "after the start",
        at_start,
    );
    server.stop()?;
    report.note(format!(
        "many-docs: the bench starts the relay ({}) on a temporary folder with tokens and \
         --unload-idle-after-secs {}; forward = a change written by one connection → applied in \
         the other connection that has its document open (automerge, on a {}-change document); \
         memory after the idle period is read {} s after the last connection closed",
        args.server.display(),
        args.idle_seconds,
        args.changes,
        args.idle_seconds * 2 + 5
    ));
    Ok(report)
}

/// What one connection did: changes it made, and for each change of the
/// other connection that reached it, the time from written to applied.
struct Edits {
    made: usize,
    latencies: Vec<f64>,
}

/// One connection: opens `ids`, then until `deadline` edits one of them
/// at random `rate` times a second, and applies what the other
/// connections send. Each change carries the time it was written, in
/// microseconds since the epoch, so the connection that applies it knows
/// how long it took.
async fn edit(
    mut link: Link,
    ids: Vec<DocumentId>,
    template: Automerge,
    rate: f64,
    deadline: Instant,
) -> Result<Edits> {
    let mut docs: HashMap<DocumentId, DocumentSync> = ids
        .iter()
        .map(|id| {
            let doc = template.clone().with_actor(ActorId::random());
            (*id, DocumentSync::new(*id, link.us.clone(), doc))
        })
        .collect();
    for sync in docs.values_mut() {
        sync.handle_peer_connected(link.server.clone(), peer::now());
    }
    for sync in docs.values_mut() {
        send_effects(&mut link, sync).await?;
    }
    let mut edits = Edits {
        made: 0,
        latencies: Vec::new(),
    };
    let mut seen: HashMap<DocumentId, i64> = HashMap::new();
    let period = Duration::from_secs_f64(1.0 / rate.max(0.001));
    // Start at a random point of the period, so connections do not write
    // in step.
    let mut next = tokio::time::Instant::now() + period.mul_f64(rand::rng().random::<f64>());
    let drain_until = deadline + Duration::from_secs(5);
    loop {
        let now = Instant::now();
        if now >= drain_until {
            break;
        }
        let wake = if now < deadline {
            next
        } else {
            tokio::time::Instant::from_std(drain_until)
        };
        tokio::select! {
            _ = tokio::time::sleep_until(wake), if now < deadline => {
                next += period;
                let id = ids[rand::rng().random_range(0..ids.len())];
                let sync = docs.get_mut(&id).expect("one of ours");
                let written = micros();
                sync.handle_local_change(peer::now(), |tx| tx.put(ROOT, "written", written))?;
                seen.insert(id, written);
                edits.made += 1;
                send_effects(&mut link, sync).await?;
            }
            _ = tokio::time::sleep_until(wake), if now >= deadline => {}
            frame = link.socket.next() => {
                let frame = frame.ok_or_else(|| anyhow!("the relay closed a connection"))??;
                let tungstenite::Message::Binary(bytes) = frame else {
                    continue;
                };
                match Message::decode(&bytes) {
                    Ok(Message::Sync(m)) => {
                        let Some(sync) = docs.get_mut(&m.document_id) else {
                            continue;
                        };
                        sync.handle_sync(&m, peer::now())?;
                        if let Some(written) = written_in(sync.doc())
                            && seen.insert(m.document_id, written) != Some(written)
                        {
                            edits.latencies.push((micros() - written) as f64 / 1e6);
                        }
                        send_effects(&mut link, sync).await?;
                    }
                    Ok(Message::Error(e)) => bail!("the relay sent an error: {}", e.message),
                    _ => {}
                }
            }
        }
    }
    let _ = link.socket.close(None).await;
    Ok(edits)
}

/// The `written` time in the document, if any.
fn written_in(doc: &Automerge) -> Option<i64> {
    match doc.get(ROOT, "written").ok()?? {
        (automerge::Value::Scalar(s), _) => s.as_i64(),
        _ => None,
    }
}

fn micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

async fn send_effects(link: &mut Link, sync: &mut DocumentSync) -> Result<()> {
    while let Some(effect) = sync.poll_effect() {
        if let Effect::Send(message) = effect {
            link.socket.send(peer::frame(&message)).await?;
        }
    }
    Ok(())
}
