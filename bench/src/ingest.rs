//! `rapport bench ingest`: many peers push small changes, each as fast as
//! the server acknowledges them (one change in flight per peer, each peer
//! on its own document).
//!
//! A change counts as acknowledged when the server's `sync` names it among
//! its heads: our relay sends that only once the change is durable in redb;
//! the JS sync server sends it once the change is in memory (its storage
//! writes are asynchronous), which the report notes. Reported: changes
//! acknowledged a second, time to acknowledgement p50/p99, and the
//! machine's own fsync p50/p99 (write and fsync a small file in a loop,
//! measured just before the peers start) with the ratio of the two p99s.

use std::io::Write as _;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use automerge::legacy::{Key, ObjectId, Op, OpId, OpType, SortedVec};
use automerge::{ActorId, Change, ChangeHash, ExpandedChange, ScalarValue};
use clap::Args;
use futures_util::{SinkExt, StreamExt};
use rapport_protocol::ids::DocumentId;
use rapport_protocol::wire::Message;
use serde_json::json;
use tokio_tungstenite::tungstenite;

use super::machine::sample_peak;
use super::peer::{self, Link, ThinDoc};
use super::progress::{Progress, bar};
use super::report::{Report, Unit};
use super::stats::Summary;
use super::{Target, quiesce};

#[derive(Debug, Clone, Args)]
pub struct IngestArgs {
    #[command(flatten)]
    pub target: Target,
    /// Peers pushing at once, each on its own document.
    #[arg(long, default_value_t = 64)]
    peers: usize,
    /// How long the peers push, in seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// How long to measure fsync before the peers start, in seconds.
    #[arg(long, default_value_t = 3.0)]
    fsync_seconds: f64,
    /// Folder for the fsync measurement: put it on the server's disk
    /// (default: the temp folder).
    #[arg(long, value_name = "DIR")]
    fsync_dir: Option<PathBuf>,
}

pub async fn run(args: &IngestArgs) -> Result<Report> {
    let mut progress = Progress::new();
    let dir = args.fsync_dir.clone().unwrap_or_else(std::env::temp_dir);
    progress.step(format!(
        "measuring fsync in {} for {} s",
        dir.display(),
        args.fsync_seconds
    ));
    let fsync_for = Duration::from_secs_f64(args.fsync_seconds);
    let fsyncs = tokio::task::spawn_blocking(move || measure_fsync(&dir, fsync_for)).await??;
    let fsync = Summary::of_durations(&fsyncs, 0);

    progress.step(format!("{} peers connecting", args.peers));
    let auth = args.target.auth().await?;
    let mut peers = Vec::with_capacity(args.peers);
    for n in 0..args.peers {
        let us = peer::peer_name("ingest", n);
        let link = super::connect_peer(&args.target.relay, us, auth.as_ref()).await?;
        peers.push(Pusher::new(link));
        progress.update(format!(
            "{} {}/{} connected",
            bar(n as f64, args.peers as f64),
            n + 1,
            args.peers
        ));
    }
    progress.clear();
    // Warm up: each peer's first change also opens its document.
    let mut warm = Vec::new();
    for mut pusher in peers {
        warm.push(tokio::spawn(async move {
            pusher.push_one().await?;
            Ok::<_, anyhow::Error>(pusher)
        }));
    }
    let mut peers = Vec::with_capacity(warm.len());
    for task in warm {
        peers.push(
            tokio::time::timeout(Duration::from_secs(60), task)
                .await
                .context("a peer's first change was not acknowledged within 60 s")???,
        );
    }
    let watched = args.target.watched();
    quiesce(watched, Duration::from_secs(30)).await;

    progress.step(format!(
        "{} peers pushing for {} s",
        args.peers, args.seconds
    ));
    let before = watched.and_then(|w| w.sample());
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = tokio::spawn(sample_peak(
        watched,
        Arc::clone(&peak),
        Duration::from_millis(250),
    ));
    let acked = Arc::new(AtomicUsize::new(0));
    let started = tokio::time::Instant::now();
    let until = started + Duration::from_secs_f64(args.seconds);
    let tasks: Vec<_> = peers
        .into_iter()
        .map(|pusher| tokio::spawn(pusher.push_until(until, Arc::clone(&acked))))
        .collect();
    while tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let elapsed = started.elapsed().as_secs_f64();
        progress.update(format!(
            "{} {elapsed:.0}/{:.0} s, {} changes acknowledged",
            bar(elapsed, args.seconds),
            args.seconds,
            acked.load(Ordering::Relaxed)
        ));
    }
    let mut latencies = Vec::new();
    let mut unacknowledged = 0;
    for task in tasks {
        let (samples, missing) = tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .context("a peer did not stop within 60 s of the end")???;
        latencies.extend(samples);
        unacknowledged += missing;
    }
    let window = started.elapsed().as_secs_f64();
    let after = watched.and_then(|w| w.sample());
    sampler.abort();
    progress.clear();

    let ack = Summary::of_durations(&latencies, unacknowledged);
    let mut report = args.target.report(
        "ingest",
        json!({ "peers": args.peers, "seconds": args.seconds, "fsync_seconds": args.fsync_seconds }),
    );
    let case = format!("{} peers", args.peers);
    let count = latencies.len();
    report.single(
        &case,
        "changes acknowledged a second",
        Unit::PerSecond,
        Some(count as f64 / window),
    );
    report.samples(&case, "time to acknowledgement", ack);
    report.samples(&case, "fsync (this machine, same run)", fsync);
    report.single(
        &case,
        "ack p99 / fsync p99",
        Unit::Ratio,
        ack.p99.zip(fsync.p99).map(|(a, f)| a / f),
    );
    report.single(
        &case,
        "server CPU per change",
        Unit::Seconds,
        before
            .zip(after)
            .map(|(b, a)| (a.cpu_seconds - b.cpu_seconds) / count.max(1) as f64),
    );
    report.single(
        &case,
        "server peak memory",
        Unit::Bytes,
        watched.map(|_| peak.load(Ordering::Relaxed) as f64),
    );
    report.note(
        "ingest: one change in flight per peer, each peer on its own document; acknowledged = the \
         server's sync names the change among its heads (our relay: after the redb commit; the JS \
         server: once in memory, its storage writes are asynchronous); fsync = write 128 bytes and \
         fsync in a loop, before the peers start",
    );
    Ok(report)
}

/// Writes and fsyncs a small record in a loop for `period`.
fn measure_fsync(dir: &Path, period: Duration) -> Result<Vec<Duration>> {
    let path = dir.join(format!("rapport-bench-fsync-{}", std::process::id()));
    let mut file =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let record = [0x5a_u8; 128];
    let mut samples = Vec::new();
    let started = Instant::now();
    let result = (|| {
        while started.elapsed() < period || samples.len() < 10 {
            let t = Instant::now();
            file.write_all(&record)?;
            file.sync_all()?;
            samples.push(t.elapsed());
        }
        Ok::<_, std::io::Error>(())
    })();
    let _ = std::fs::remove_file(&path);
    result.with_context(|| format!("fsync in {}", dir.display()))?;
    Ok(samples)
}

/// Changes to one counter at the root of a document, by one actor: the
/// small change an ingesting peer pushes.
struct Register {
    actor: ActorId,
    seq: u64,
    last: Option<ChangeHash>,
}

impl Register {
    fn new() -> Self {
        Self {
            actor: ActorId::random(),
            seq: 0,
            last: None,
        }
    }

    /// The next change: the counter `n` set to its number, overwriting the
    /// previous value.
    fn next(&mut self) -> Result<Change> {
        self.seq += 1;
        let pred = if self.seq > 1 {
            SortedVec::from(vec![OpId(self.seq - 1, self.actor.clone())])
        } else {
            SortedVec::new()
        };
        let op = Op {
            action: OpType::Put(ScalarValue::Int(i64::try_from(self.seq)?)),
            obj: ObjectId::Root,
            key: Key::Map("n".into()),
            pred,
            insert: false,
        };
        let change = Change::from(ExpandedChange {
            operations: vec![op],
            actor_id: self.actor.clone(),
            hash: None,
            seq: self.seq,
            // One op a change, one actor: op counters follow the changes.
            start_op: NonZeroU64::new(self.seq).ok_or_else(|| anyhow!("seq starts at 1"))?,
            time: i64::try_from(peer::now().0 / 1000).unwrap_or(0),
            message: None,
            deps: self.last.into_iter().collect(),
            extra_bytes: Vec::new(),
            author: None,
        });
        self.last = Some(change.hash());
        Ok(change)
    }
}

/// One peer pushing changes to its own document.
struct Pusher {
    link: Link,
    thin: ThinDoc,
    register: Register,
}

impl Pusher {
    fn new(link: Link) -> Self {
        let id = DocumentId::from_bytes(rand::random());
        let thin = ThinDoc::new(id, link.us.clone(), link.server.clone(), &[]);
        Self {
            link,
            thin,
            register: Register::new(),
        }
    }

    /// Sends one change and waits for its acknowledgement; returns how long
    /// that took.
    async fn push_one(&mut self) -> Result<Duration> {
        let change = self.register.next()?;
        let hash = change.hash();
        let started = Instant::now();
        for message in self.thin.add_local(&change)? {
            self.link.socket.send(peer::frame(&message)).await?;
        }
        loop {
            let frame = self
                .link
                .socket
                .next()
                .await
                .ok_or_else(|| anyhow!("the server closed a pushing peer's connection"))??;
            let tungstenite::Message::Binary(bytes) = frame else {
                self.link.socket.flush().await?;
                continue;
            };
            match Message::decode(&bytes) {
                Ok(Message::Sync(m)) => {
                    let heads = automerge::sync::Message::decode(&m.data)
                        .map_err(|e| anyhow!("{e}"))?
                        .heads;
                    let acked = heads.contains(&hash);
                    for reply in self.thin.receive(&m)? {
                        self.link.socket.send(peer::frame(&reply)).await?;
                    }
                    if acked {
                        return Ok(started.elapsed());
                    }
                }
                Ok(Message::Rejected(r)) => bail!("the server refused a change: {}", r.message),
                Ok(Message::Error(e)) => bail!("the server sent an error: {}", e.message),
                _ => {}
            }
        }
    }

    /// Pushes until `until`; returns the acknowledgement times and how many
    /// changes were still unacknowledged 30 s after it.
    async fn push_until(
        mut self,
        until: tokio::time::Instant,
        acked: Arc<AtomicUsize>,
    ) -> Result<(Vec<Duration>, usize)> {
        let mut samples = Vec::new();
        let mut missing = 0;
        while tokio::time::Instant::now() < until {
            match tokio::time::timeout_at(until + Duration::from_secs(30), self.push_one()).await {
                Ok(took) => {
                    samples.push(took?);
                    acked.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    missing += 1;
                    break;
                }
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), self.link.socket.close(None)).await;
        Ok((samples, missing))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::ReadDoc;

    #[test]
    fn pushed_changes_form_one_register() {
        let mut register = Register::new();
        let changes: Vec<Change> = (0..3).map(|_| register.next().unwrap()).collect();
        assert_eq!(changes[2].deps(), &[changes[1].hash()]);
        let mut doc = automerge::Automerge::new();
        doc.apply_changes(changes).unwrap();
        let values = doc.get_all(automerge::ROOT, "n").unwrap();
        assert_eq!(values.len(), 1, "each put overwrites the last");
        assert_eq!(values[0].0.as_i64(), Some(3));
    }

    #[test]
    fn fsync_is_measured() {
        let samples = measure_fsync(&std::env::temp_dir(), Duration::ZERO).unwrap();
        assert_eq!(samples.len(), 10);
    }
}
