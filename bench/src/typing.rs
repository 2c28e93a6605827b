//! `rapport bench typing`: E editors type into one document at 6
//! characters a second each.
//!
//! The document is pre-grown with the automerge-paper trace (or empty with
//! `--empty`) and uploaded by one peer. Each editor is a [`ThinDoc`]
//! typing hand-built single-character changes (an insert after its own
//! previous character, with the editor's current heads as dependencies):
//! the changes a real editor makes, at a cost of microseconds, so the load
//! generator does not measure itself. Two latencies, both on this
//! process's clock:
//!
//! - *forward*: the change's frame is written by editor A → a frame
//!   carrying it reaches editor B's socket, at every other editor;
//! - *visible*: the same → the change is applied in the automerge document
//!   of an observer replica (a
//!   [`DocumentSync`](rapport_protocol::sync::DocumentSync), as
//!   `rapport-client` keeps one; `--observers`), which pays automerge's
//!   full receive cost.
//!
//! With `--relay-pid`, the server's CPU time over the typing (and drain)
//! window divided by the changes typed, and its resident memory.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use automerge::{ActorId, ChangeHash};
use clap::Args;
use rapport_protocol::ids::DocumentId;
use serde_json::json;
use tokio::sync::watch;

use super::auth::Auth;
use super::machine::sample_peak;
use super::peer::{self, ThinDoc};
use super::progress::{Progress, bar};
use super::report::{Report, Unit};
use super::stats::Summary;
use super::{Target, connect_peer, quiesce};

mod base;
pub mod cluster;
mod editor;
mod observer;
mod replica;
pub use base::DocumentArgs;
use base::{Base, prepare_base, upload};
use editor::{Editor, Template};
use observer::Observer;

#[derive(Debug, Clone, Args)]
pub struct TypingArgs {
    #[command(flatten)]
    pub target: Target,
    /// How many editors type at once; one run per number.
    #[arg(long, value_delimiter = ',', default_value = "2,4")]
    editors: Vec<usize>,
    /// How long each run types, in seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Characters each editor types a second.
    #[arg(long, default_value_t = 6.0)]
    rate: f64,
    #[command(flatten)]
    document: DocumentArgs,
    /// Replicas that apply every change with automerge (visible latency);
    /// 0 for none.
    #[arg(long, default_value_t = 1)]
    observers: usize,
    /// Real `rapport-client` replicas in live sync (as `rapport sync
    /// --watch`), each storing in redb: their visible latency, and how far
    /// behind they are when typing stops; 0 for none.
    #[arg(long, default_value_t = 0)]
    replicas: usize,
    /// Seconds to wait for the last changes after typing stops; what has
    /// not arrived by then counts as missing.
    #[arg(long, default_value_t = 10.0)]
    drain_seconds: f64,
    /// After the sweep, with every peer gone and the server settled, wait
    /// this long and read the server's resident memory again, against its
    /// memory before the upload (with `--relay-pid`); 0 skips it. Give our
    /// relay an idle period (`--unload-idle-after-secs`) under half of it.
    #[arg(long, default_value_t = 0)]
    idle_seconds: u64,
}

impl TypingArgs {
    /// `rapport bench live-replica`: the same run with (at least) one live
    /// `rapport-client` replica watching.
    pub fn with_live_replica(mut self) -> Self {
        self.replicas = self.replicas.max(1);
        self
    }
}

/// The scheduling priority (nice value) of an observer's thread.
const OBSERVER_NICE: i32 = 10;

/// What every peer of a run shares.
struct Shared {
    /// When each typed change's frame was written, and by which editor.
    sent: Mutex<HashMap<ChangeHash, (Instant, usize)>>,
    /// The Lamport counter: every change starts after every op made
    /// before it anywhere in this process, so after all its dependencies.
    next_op: AtomicU64,
    forwarded: AtomicUsize,
    visible: AtomicUsize,
    /// Typed changes the live replicas hold.
    replica_visible: AtomicUsize,
    typed: AtomicUsize,
}

impl Shared {
    /// Nothing typed yet; the next change's ops start at `next_op`.
    fn new(next_op: u64) -> Self {
        Self {
            sent: Mutex::new(HashMap::new()),
            next_op: AtomicU64::new(next_op),
            forwarded: AtomicUsize::new(0),
            visible: AtomicUsize::new(0),
            replica_visible: AtomicUsize::new(0),
            typed: AtomicUsize::new(0),
        }
    }
}

/// Connects `count` editors of document `id` (editor n to
/// `urls[n % urls.len()]`), each typing `rate` characters a second into it
/// while `phase` says so; their tasks.
#[allow(clippy::too_many_arguments)]
async fn start_editors(
    urls: &[String],
    count: usize,
    auth: Option<&Arc<Auth>>,
    id: DocumentId,
    base: &Base,
    shared: &Arc<Shared>,
    ready: &Arc<AtomicUsize>,
    phase: &watch::Receiver<Phase>,
    rate: f64,
) -> Result<Vec<tokio::task::JoinHandle<Result<Vec<editor::Forwarded>>>>> {
    let template = Arc::new(Template::new(&base.text)?);
    let mut tasks = Vec::new();
    for n in 0..count {
        let url = &urls[n % urls.len()];
        let link = connect_peer(url, peer::peer_name("editor", n), auth).await?;
        let editor = Editor {
            n,
            thin: ThinDoc::new(id, link.us.clone(), link.server.clone(), &base.heads),
            link,
            shared: Arc::clone(shared),
            template: Arc::clone(&template),
            actor: ActorId::random(),
            period: Duration::from_secs_f64(1.0 / rate.max(0.01)),
            ready: Arc::clone(ready),
        };
        tasks.push(tokio::spawn(editor.run(phase.clone())));
    }
    Ok(tasks)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Setup,
    Typing { until: tokio::time::Instant },
    Done,
}

pub async fn run(args: &TypingArgs) -> Result<Report> {
    if args.editors.iter().any(|&e| e < 2) {
        bail!("--editors: every run needs at least 2 editors");
    }
    let mut progress = Progress::new();
    let base = prepare_base(&args.document, &mut progress)?;
    // With a live replica it is the `live-replica` scenario, with an idle
    // period after it `idle-after-typing`: each a report, and a section of
    // BENCHMARKS.md, of its own.
    let scenario = if args.replicas > 0 {
        "live-replica"
    } else if args.idle_seconds > 0 {
        "idle-after-typing"
    } else {
        "typing"
    };
    let mut report = args.target.report(
        scenario,
        json!({
            "editors": args.editors,
            "seconds": args.seconds,
            "rate": args.rate,
            "document": base.what,
            "edits_per_change": args.document.edits_per_change,
            "observers": args.observers,
            "replicas": args.replicas,
            "idle_seconds": args.idle_seconds,
        }),
    );
    let setup = format!("setup, {}", base.what);
    report.single(
        &setup,
        "changes in the document",
        Unit::Count,
        Some(base.changes as f64),
    );
    report.single(
        &setup,
        "saved size",
        Unit::Bytes,
        Some(base.saved_bytes as f64),
    );
    let id = DocumentId::from_bytes(rand::random());
    let watched = args.target.watched();
    let at_start = watched.and_then(|w| w.sample()).map(|s| s.rss_bytes);
    progress.step(format!(
        "uploading the document ({} changes) to {}",
        base.changes, args.target.relay
    ));
    let started = Instant::now();
    let auth = args.target.auth().await?;
    upload(&args.target.relay, id, &base, auth.as_ref()).await?;
    if let Some(auth) = &auth {
        // Listed, the editors (members) may write it.
        let auth = Arc::clone(auth);
        tokio::task::spawn_blocking(move || auth.list(&[id])).await??;
    }
    report.single(
        &setup,
        "upload until in sync",
        Unit::Seconds,
        Some(started.elapsed().as_secs_f64()),
    );
    let waited = quiesce(watched, Duration::from_secs(120)).await;
    progress.step(format!("the server settled after {waited:.1?}"));
    let shared_op = AtomicU64::new(base.max_op + 1);
    for &editors in &args.editors {
        let case = format!("{editors} editors, {}", short(&base.what));
        let run = run_editors(
            args,
            auth.as_ref(),
            id,
            &base,
            editors,
            &shared_op,
            &mut progress,
        );
        match run.await {
            Ok(outcome) => outcome.add_to(&mut report, &case),
            Err(e) => {
                // A server that cannot keep up with E editors will not with
                // more: keep what was measured and stop the sweep.
                progress.step(format!("{editors} editors: {e:#}"));
                report.single(&case, "run failed (see notes)", Unit::Count, None);
                report.note(format!("{editors} editors: the run failed: {e:#}"));
                break;
            }
        }
        quiesce(watched, Duration::from_secs(60)).await;
    }
    if args.idle_seconds > 0 {
        progress.step(format!(
            "every peer left and the server settled; waiting {} s for the idle period",
            args.idle_seconds
        ));
        tokio::time::sleep(Duration::from_secs(args.idle_seconds)).await;
        let after = watched.and_then(|w| w.sample()).map(|s| s.rss_bytes);
        let case = format!("after the sweep, {}", short(&base.what));
        report.single(
            &case,
            "server resident memory before the upload",
            Unit::Bytes,
            at_start.map(|b| b as f64),
        );
        report.memory_after_idle(
            &case,
            "server resident memory after the idle period",
            after,
            "before the upload",
            at_start,
        );
        report.note(format!(
            "memory after the idle period: read {} s after the sweep's last run ended and the \
             server's CPU settled (every peer gone)",
            args.idle_seconds
        ));
    }
    progress.clear();
    let visible = if args.observers > 0 {
        format!(
            "; visible: → applied in an observer replica's automerge document ({} observer(s), \
             each on a thread at nice {OBSERVER_NICE})",
            args.observers
        )
    } else {
        String::new()
    };
    report.note(format!(
        "forward: frame written by editor A → frame reaches editor B's socket{visible}; {} \
         characters a second per editor for {} s, then up to {} s to drain (forwards missing: \
         not arrived by then)",
        args.rate, args.seconds, args.drain_seconds
    ));
    if args.replicas > 0 {
        report.note(format!(
            "visible in a live rapport-client replica: frame written by an editor → the change is in \
             the replica's document ({} replica(s) in live sync, storing in redb, in this process); \
             replica backlog: typed changes they did not hold yet when typing stopped",
            args.replicas
        ));
    }
    if !args.document.empty && args.document.edits_per_change > 1 {
        report.note(format!(
            "pre-grown with {} edits per change",
            args.document.edits_per_change
        ));
    }
    Ok(report)
}

fn short(what: &str) -> &str {
    what.split(" (").next().unwrap_or(what)
}

/// What one run with E editors measured.
struct Outcome {
    editors: usize,
    typed: usize,
    forward: Summary,
    visible: Option<Summary>,
    /// automerge's receive in the observer, per (merged) message.
    receives: Option<Summary>,
    /// Visible in the live `rapport-client` replicas.
    replica_visible: Option<Summary>,
    /// Typed changes the replicas did not hold yet when typing stopped.
    replica_backlog: Option<usize>,
    seconds: f64,
    cpu_seconds: Option<f64>,
    rss_end: Option<u64>,
    rss_peak: Option<u64>,
}

impl Outcome {
    fn add_to(&self, report: &mut Report, case: &str) {
        report.samples(case, "forward", self.forward);
        // 0: every editor got every other editor's changes within the drain.
        report.single(
            case,
            "forwards missing after the drain",
            Unit::Count,
            Some(self.forward.missing as f64),
        );
        if let Some(visible) = self.visible {
            report.samples(case, "visible", visible);
        }
        if let Some(receives) = self.receives {
            report.samples(case, "observer's automerge receive", receives);
        }
        if let Some(visible) = self.replica_visible {
            report.samples(case, "visible in a live rapport-client replica", visible);
            report.single(
                case,
                "changes missing in the replica after the drain",
                Unit::Count,
                Some(visible.missing as f64),
            );
        }
        if let Some(backlog) = self.replica_backlog {
            report.single(
                case,
                "replica backlog when typing stops",
                Unit::Count,
                Some(backlog as f64),
            );
        }
        report.single(case, "changes typed", Unit::Count, Some(self.typed as f64));
        report.single(
            case,
            "typing rate",
            Unit::PerSecond,
            Some(self.typed as f64 / self.seconds.max(1e-9)),
        );
        let per = |deliveries: usize| self.cpu_seconds.map(|cpu| cpu / deliveries.max(1) as f64);
        report.single(
            case,
            "server CPU per change",
            Unit::Seconds,
            per(self.typed),
        );
        report.single(
            case,
            "server CPU per delivery",
            Unit::Seconds,
            per(self.typed * (self.editors - 1)),
        );
        report.single(
            case,
            "server resident memory",
            Unit::Bytes,
            self.rss_end.map(|b| b as f64),
        );
        report.single(
            case,
            "server peak memory",
            Unit::Bytes,
            self.rss_peak.map(|b| b as f64),
        );
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_editors(
    args: &TypingArgs,
    auth: Option<&Arc<Auth>>,
    id: DocumentId,
    base: &Base,
    editors: usize,
    next_op: &AtomicU64,
    progress: &mut Progress,
) -> Result<Outcome> {
    progress.step(format!("{editors} editors: connecting"));
    let shared = Arc::new(Shared::new(next_op.load(Ordering::Relaxed)));
    let (phase_tx, phase_rx) = watch::channel(Phase::Setup);
    let ready = Arc::new(AtomicUsize::new(0));
    let tasks = start_editors(
        std::slice::from_ref(&args.target.relay),
        editors,
        auth,
        id,
        base,
        &shared,
        &ready,
        &phase_rx,
        args.rate,
    )
    .await?;
    let mut observers = Vec::new();
    for n in 0..args.observers {
        let link = connect_peer(&args.target.relay, peer::peer_name("observer", n), auth).await?;
        observers.push(Observer::start(
            link,
            id,
            base,
            Arc::clone(&shared),
            Arc::clone(&ready),
            phase_rx.clone(),
        )?);
    }
    let mut replicas = Vec::new();
    for _ in 0..args.replicas {
        replicas.push(replica::LiveReplica::start(
            &args.target.relay,
            auth.cloned(),
            id,
            base.heads.clone(),
            Arc::clone(&shared),
            Arc::clone(&ready),
            phase_rx.clone(),
        )?);
    }
    // Setup: every peer heard from the server, then a quiet moment.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    while ready.load(Ordering::Acquire) < editors + args.observers + args.replicas {
        if tokio::time::Instant::now() > deadline {
            bail!("the peers did not all get an answer from the server within 300 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    quiesce(args.target.watched(), Duration::from_secs(60)).await;

    let watched = args.target.watched();
    let before = watched.and_then(|w| w.sample());
    let started = tokio::time::Instant::now();
    let until = started + Duration::from_secs_f64(args.seconds);
    phase_tx.send_replace(Phase::Typing { until });
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = tokio::spawn(sample_peak(
        watched,
        Arc::clone(&peak),
        Duration::from_millis(250),
    ));
    while tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let elapsed = started.elapsed().as_secs_f64();
        progress.update(format!(
            "{} {editors} editors typing: {elapsed:.0}/{:.0} s, {} changes, {} forwarded",
            bar(elapsed, args.seconds),
            args.seconds,
            shared.typed.load(Ordering::Relaxed),
            shared.forwarded.load(Ordering::Relaxed)
        ));
    }
    // How far behind the replicas are as typing stops.
    let backlog = (shared.typed.load(Ordering::Acquire) * args.replicas)
        .saturating_sub(shared.replica_visible.load(Ordering::Acquire));
    // Drain: wait for the last deliveries, within the bound.
    let drain_until = until + Duration::from_secs_f64(args.drain_seconds);
    loop {
        let typed = shared.typed.load(Ordering::Acquire);
        let forwarded_all = shared.forwarded.load(Ordering::Acquire) >= typed * (editors - 1);
        let visible_all = shared.visible.load(Ordering::Acquire) >= typed * args.observers
            && shared.replica_visible.load(Ordering::Acquire) >= typed * args.replicas;
        if (forwarded_all && visible_all) || tokio::time::Instant::now() >= drain_until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let window = started.elapsed();
    let after = watched.and_then(|w| w.sample());
    sampler.abort();
    phase_tx.send_replace(Phase::Done);
    let mut forward = Vec::new();
    for task in tasks {
        let samples = tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .context("an editor did not stop")??;
        forward.extend(samples?.into_iter().map(|f| f.latency));
    }
    let mut in_replicas = Vec::new();
    for replica in replicas {
        in_replicas.extend(replica.finish().await?);
    }
    let mut visible = Vec::new();
    let mut receives = Vec::new();
    for observer in observers {
        let applied = observer.finish().await?;
        visible.extend(applied.visible);
        receives.extend(applied.receives);
    }
    next_op.store(shared.next_op.load(Ordering::Relaxed), Ordering::Relaxed);
    progress.clear();
    let typed = shared.typed.load(Ordering::Acquire);
    let expected_forward = typed * (editors - 1);
    let expected_visible = typed * args.observers;
    Ok(Outcome {
        editors,
        typed,
        forward: Summary::of_durations(&forward, expected_forward.saturating_sub(forward.len())),
        receives: (args.observers > 0).then(|| Summary::of_durations(&receives, 0)),
        visible: (args.observers > 0).then(|| {
            Summary::of_durations(&visible, expected_visible.saturating_sub(visible.len()))
        }),
        replica_visible: (args.replicas > 0).then(|| {
            let expected = typed * args.replicas;
            Summary::of_durations(&in_replicas, expected.saturating_sub(in_replicas.len()))
        }),
        replica_backlog: (args.replicas > 0).then_some(backlog),
        seconds: args.seconds,
        cpu_seconds: before
            .zip(after)
            .map(|(b, a)| a.cpu_seconds - b.cpu_seconds),
        rss_end: after.map(|a| a.rss_bytes),
        rss_peak: watched
            .map(|_| {
                peak.load(Ordering::Relaxed)
                    .max(after.map_or(0, |a| a.rss_bytes))
            })
            .filter(|_| window > Duration::ZERO),
    })
}
