//! `rapport bench cold-sync`: a loader peer puts N small customer records
//! (about 50 changes each) on the server; then a fresh replica, holding
//! nothing, syncs all of them over one connection.
//!
//! Both sides use automerge's own sync ([`DocumentSync`]), as a replica
//! does, with a window of documents in flight at once. Reported: time until
//! the fresh replica holds every record at the loader's heads, messages it
//! sent per document (round trips), WebSocket payload bytes both ways
//! against the sum of the records' saved (compressed) sizes, and the
//! server's memory during the sync.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, Automerge, ChangeHash, ObjType, ROOT, ReadDoc as _};
use clap::Args;
use ed25519_dalek::SigningKey;
use rapport_protocol::ids::DocumentId;
use rapport_protocol::sync::DocumentSync;
use serde_json::json;

use super::auth::Auth;
use super::machine::sample_peak;
use super::many::{Traffic, sync_all};
use super::peer;
use super::progress::{Progress, bar};
use super::report::{Report, Unit};
use super::stats::Summary;
use super::{Target, connect_peer, quiesce};

#[derive(Debug, Clone, Args)]
pub struct ColdSyncArgs {
    #[command(flatten)]
    pub target: Target,
    /// Customer records on the server.
    #[arg(long, default_value_t = 10_000)]
    records: usize,
    /// Changes per record.
    #[arg(long, default_value_t = 50)]
    changes: usize,
    /// Documents in flight at once on the connection.
    #[arg(long, default_value_t = 256)]
    window: usize,
    /// Give up on a phase after this many seconds.
    #[arg(long, default_value_t = 900)]
    timeout_seconds: u64,
}

pub async fn run(args: &ColdSyncArgs) -> Result<Report> {
    let mut progress = Progress::new();
    let limit = Duration::from_secs(args.timeout_seconds);
    progress.step(format!(
        "making {} customer records of {} changes each",
        args.records, args.changes
    ));
    let records = make_records(args.records, args.changes, &mut progress)?;
    let saved: u64 = records.iter().map(|(_, doc)| doc.save().len() as u64).sum();
    let expected: HashMap<DocumentId, Vec<ChangeHash>> = records
        .iter()
        .map(|(id, doc)| (*id, doc.get_heads()))
        .collect();

    progress.step(format!("loading them onto {}", args.target.relay));
    let auth = args.target.auth().await?;
    // One loader key for every chunk: the records share their actors, and
    // an actor belongs to the first key that writes with it.
    let loader = match &auth {
        Some(auth) => {
            let member = Arc::clone(auth);
            let key = tokio::task::spawn_blocking(move || member.member()).await??;
            Some((Arc::clone(auth), key))
        }
        None => None,
    };
    let loading = Instant::now();
    for chunk in records.chunks(LOAD_CHUNK) {
        load_chunk(
            &args.target.relay,
            args.window,
            loader.as_ref(),
            chunk,
            limit,
            &mut progress,
        )
        .await?;
    }
    let load_elapsed = loading.elapsed();
    let watched = args.target.watched();
    let waited = quiesce(watched, Duration::from_secs(120)).await;
    progress.step(format!("the server settled after {waited:.1?}"));

    progress.step(format!("a fresh replica syncs {} records", expected.len()));
    let before = watched.and_then(|w| w.sample());
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = tokio::spawn(sample_peak(
        watched,
        Arc::clone(&peak),
        Duration::from_millis(100),
    ));
    let sync = fresh_replica(args, auth.as_ref(), &expected, 0, &mut progress).await?;
    let after = watched.and_then(|w| w.sample());
    sampler.abort();
    // A second device of the same workspace: what the first sync left
    // behind on the server (a snapshot, a cache) shows here.
    progress.step("a second fresh replica syncs them".to_owned());
    let second = fresh_replica(args, auth.as_ref(), &expected, 1, &mut progress).await?;
    let after_second = watched.and_then(|w| w.sample());

    let mut report = args.target.report(
        "cold-sync",
        json!({
            "records": args.records,
            "changes_per_record": args.changes,
            "window": args.window,
        }),
    );
    let case = format!("{} records × {} changes", args.records, args.changes);
    add_rows(&mut report, &case, &sync, saved);
    report.single(
        &case,
        "loading them (setup)",
        Unit::Seconds,
        Some(load_elapsed.as_secs_f64()),
    );
    report.single(
        &case,
        "server peak memory during the sync",
        Unit::Bytes,
        watched.map(|_| {
            peak.load(Ordering::Relaxed)
                .max(after.map_or(0, |a| a.rss_bytes)) as f64
        }),
    );
    report.single(
        &case,
        "server peak memory, whole life (VmHWM)",
        Unit::Bytes,
        after.map(|a| a.peak_rss_bytes as f64),
    );
    report.single(
        &case,
        "server CPU during the sync",
        Unit::Seconds,
        before
            .zip(after)
            .map(|(b, a)| a.cpu_seconds - b.cpu_seconds),
    );
    report.single(
        &case,
        "a second fresh replica: time to fully synced",
        Unit::Seconds,
        Some(second.elapsed.as_secs_f64()),
    );
    report.single(
        &case,
        "a second fresh replica: wire bytes / saved bytes",
        Unit::Ratio,
        Some((second.bytes_in + second.bytes_out) as f64 / saved.max(1) as f64),
    );
    report.single(
        &case,
        "a second fresh replica: server CPU",
        Unit::Seconds,
        after
            .zip(after_second)
            .map(|(b, a)| a.cpu_seconds - b.cpu_seconds),
    );
    report.note(format!(
        "cold-sync: the fresh replica requests {} documents at a time and applies each with \
         automerge; round trips = messages it sent per document until it held the loader's heads; \
         bytes = WebSocket payloads both ways",
        args.window
    ));
    Ok(report)
}

/// Records loaded over one connection.
pub(crate) const LOAD_CHUNK: usize = 1_000;

/// Times the loader reconnects for one chunk after the server dropped it.
const LOAD_RETRIES: usize = 3;

/// Loads some records over a connection of their own. A server that drops
/// the loader under the load (the JS server has) gets the chunk again on
/// a new connection: what it already stored syncs at once. Setup only:
/// the time is reported, with any retries in it.
pub(crate) async fn load_chunk(
    relay: &str,
    window: usize,
    key: Option<&(Arc<Auth>, SigningKey)>,
    chunk: &[(DocumentId, Automerge)],
    limit: Duration,
    progress: &mut Progress,
) -> Result<()> {
    let mut attempt = 0;
    loop {
        let us = peer::peer_name("loader", attempt);
        let mut loader = match key {
            Some((auth, key)) => auth.connect_as(key, relay, us).await?,
            None => peer::connect(relay, us).await?,
        };
        let docs: Vec<DocumentSync> = chunk
            .iter()
            .map(|(id, doc)| DocumentSync::new(*id, loader.us.clone(), doc.clone()))
            .collect();
        let loaded = sync_all(
            &mut loader,
            docs,
            window,
            limit,
            "loading",
            progress,
            |sync, server| sync.is_in_sync_with(server),
        )
        .await;
        let _ = loader.socket.close(None).await;
        match loaded {
            Ok(_) => {
                // Listed, every member (the fresh replicas) may read them.
                if let Some((auth, _)) = key {
                    let auth = Arc::clone(auth);
                    let ids: Vec<DocumentId> = chunk.iter().map(|(id, _)| *id).collect();
                    tokio::task::spawn_blocking(move || auth.list(&ids)).await??;
                }
                return Ok(());
            }
            Err(e) if attempt < LOAD_RETRIES => {
                attempt += 1;
                progress.step(format!(
                    "the server dropped the loader ({e}); loading again"
                ));
            }
            Err(e) => return Err(e),
        }
    }
}

/// A replica with nothing syncs every record; fails unless all arrive.
async fn fresh_replica(
    args: &ColdSyncArgs,
    auth: Option<&Arc<Auth>>,
    expected: &HashMap<DocumentId, Vec<ChangeHash>>,
    n: usize,
    progress: &mut Progress,
) -> Result<Traffic> {
    let mut fresh = connect_peer(&args.target.relay, peer::peer_name("fresh", n), auth).await?;
    let docs: Vec<DocumentSync> = expected
        .keys()
        .map(|id| DocumentSync::new(*id, fresh.us.clone(), Automerge::new()))
        .collect();
    let (sync, synced) = sync_all(
        &mut fresh,
        docs,
        args.window,
        Duration::from_secs(args.timeout_seconds),
        "cold sync",
        progress,
        |sync, _| {
            expected
                .get(&sync.id())
                .is_some_and(|heads| *heads == sync.doc().get_heads())
        },
    )
    .await?;
    let _ = fresh.socket.close(None).await;
    if synced.len() != expected.len() {
        bail!("only {} of {} records synced", synced.len(), expected.len());
    }
    Ok(sync)
}

fn add_rows(report: &mut Report, case: &str, sync: &Traffic, saved: u64) {
    let wire = sync.bytes_in + sync.bytes_out;
    report.single(
        case,
        "time to fully synced",
        Unit::Seconds,
        Some(sync.elapsed.as_secs_f64()),
    );
    let per_doc: Vec<f64> = sync.sent_per_doc.iter().map(|&n| n as f64).collect();
    let rounds = Summary::of(per_doc, 0);
    report.single(
        case,
        "round trips per document, median",
        Unit::Count,
        rounds.p50,
    );
    report.single(
        case,
        "round trips per document, max",
        Unit::Count,
        rounds.max,
    );
    report.single(
        case,
        "frames, both ways",
        Unit::Count,
        Some((sync.frames_in + sync.frames_out) as f64),
    );
    report.single(
        case,
        "bytes on the wire, both ways",
        Unit::Bytes,
        Some(wire as f64),
    );
    report.single(
        case,
        "bytes to the server (requests, acknowledgements)",
        Unit::Bytes,
        Some(sync.bytes_out as f64),
    );
    report.single(
        case,
        "bytes from the server (the documents)",
        Unit::Bytes,
        Some(sync.bytes_in as f64),
    );
    report.single(
        case,
        "sum of the saved documents",
        Unit::Bytes,
        Some(saved as f64),
    );
    report.single(
        case,
        "wire bytes / saved bytes",
        Unit::Ratio,
        Some(wire as f64 / saved.max(1) as f64),
    );
    report.single(
        case,
        "bytes from the server / saved bytes",
        Unit::Ratio,
        Some(sync.bytes_in as f64 / saved.max(1) as f64),
    );
    if sync.unavailable > 0 {
        report.single(
            case,
            "doc-unavailable answers",
            Unit::Count,
            Some(sync.unavailable as f64),
        );
    }
}

/// `count` customer records, each grown by `changes` small edits (made
/// with automerge, by two people taking turns).
fn make_records(
    count: usize,
    changes: usize,
    progress: &mut Progress,
) -> Result<Vec<(DocumentId, Automerge)>> {
    let started = Instant::now();
    let mut records = Vec::with_capacity(count);
    for n in 0..count {
        records.push((DocumentId::from_bytes(rand::random()), record(n, changes)?));
        if n % 256 == 0 {
            progress.update(format!(
                "{} {n}/{count} records",
                bar(n as f64, count as f64)
            ));
        }
    }
    progress.clear();
    progress.step(format!("made in {:.1?}", started.elapsed()));
    Ok(records)
}

const STAGES: [&str; 5] = ["lead", "qualified", "proposal", "negotiation", "won"];

/// One customer record: created in one change, then edited field by field.
pub(crate) fn record(n: usize, changes: usize) -> Result<Automerge> {
    let (ann, bob) = (ActorId::random(), ActorId::random());
    let mut doc = AutoCommit::new().with_actor(ann.clone());
    doc.put(ROOT, "type", "customer")?;
    doc.put(ROOT, "name", format!("Customer {n}"))?;
    doc.put(
        ROOT,
        "kind",
        if n.is_multiple_of(4) {
            "client"
        } else {
            "customer"
        },
    )?;
    doc.put(ROOT, "email", format!("buyer{n}@example.test"))?;
    doc.put(ROOT, "stage", STAGES[0])?;
    doc.put(ROOT, "score", 0)?;
    let tags = doc.put_object(ROOT, "tags", ObjType::List)?;
    let notes = doc.put_object(ROOT, "notes", ObjType::Text)?;
    let custom = doc.put_object(ROOT, "custom", ObjType::Map)?;
    doc.commit();
    for i in 1..changes.max(1) {
        doc.set_actor(if i % 2 == 0 { ann.clone() } else { bob.clone() });
        match i % 5 {
            0 => doc.put(ROOT, "score", i64::try_from(i % 100)?)?,
            1 => doc.put(ROOT, "stage", STAGES[(i / 5 + 1) % STAGES.len()])?,
            2 => doc.put(
                ROOT,
                "last_contact",
                format!("2026-{:02}-{:02}", 1 + i % 12, 1 + i % 28),
            )?,
            3 => {
                let at = doc.length(&notes);
                doc.splice_text(&notes, at, 0, &format!("call {i}; "))?;
            }
            _ => {
                if i % 10 == 4 {
                    let at = doc.length(&tags);
                    doc.insert(&tags, at, format!("tag{i}"))?;
                } else {
                    doc.put(&custom, format!("field{}", i % 7), i64::try_from(i)?)?;
                }
            }
        }
        doc.commit();
    }
    Ok(doc.document().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_has_the_changes_asked_for() {
        let doc = record(3, 50).unwrap();
        assert_eq!(doc.get_changes(&[]).len(), 50);
        let (name, _) = doc.get(ROOT, "name").unwrap().unwrap();
        assert_eq!(name.into_string().ok().as_deref(), Some("Customer 3"));
        assert!(doc.save().len() < 4096);
    }
}
