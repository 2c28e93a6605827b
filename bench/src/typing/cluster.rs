//! `rapport bench cluster`: the typing scenario on relays that run as one
//! on NATS JetStream (issue #17), and on one relay alone in the same run.
//!
//! The bench starts everything itself on 127.0.0.1, each in a temporary
//! folder of its own: a nats-server with JetStream, R relays with
//! `--cluster` and tokens (one workspace of the bench's, a key per peer,
//! each joining through the relay it connects to). One peer puts the
//! document on every relay; then E editors (the typing scenario's), editor
//! n on relay n mod R, type into it. *Forward* (frame written by editor A →
//! a frame carrying the change reaches editor B's socket) is split into
//! same-relay pairs and cross-relay pairs. Every relay handles every
//! change (its own editors' it publishes and awaits JetStream's ack for;
//! the others' it reads from the stream and forwards), so each relay's CPU
//! time over the typing window is divided by all changes typed, as the
//! single relay's is. Then one relay without `--cluster` takes the same
//! editors on a fresh document: the baseline. The report gives the issue's
//! two ratios and says whether each target holds.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use rapport_protocol::ids::DocumentId;
use serde_json::json;
use tokio::sync::watch;

use super::base::{Base, DocumentArgs, prepare_base, upload};
use super::editor::Forwarded;
use super::{Phase, Shared};
use crate::auth::Auth;
use crate::machine::Watched;
use crate::process::{Nats, Relay, nats_binary};
use crate::progress::{Progress, bar};
use crate::quiesce;
use crate::report::{Report, Unit};
use crate::stats::Summary;
use usage::{Usage, Window};

mod usage;

#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// The relay binary to start (`target/release/rapport-server`).
    #[arg(long, value_name = "PATH")]
    server: PathBuf,
    /// The nats-server binary (default: `nats-server` on PATH, else
    /// /usr/sbin/nats-server).
    #[arg(long, value_name = "PATH")]
    nats: Option<PathBuf>,
    /// Run every relay with `--open` (no tokens). Without it, the relays
    /// take tokens: a workspace of the bench's, a key per peer.
    #[arg(long)]
    open: bool,
    /// Relays in the cluster.
    #[arg(long, default_value_t = 3)]
    relays: usize,
    /// Editors typing at once, spread over the relays (at least two on
    /// each, for same-relay pairs).
    #[arg(long, default_value_t = 12)]
    editors: usize,
    /// How long each setup types, in seconds.
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    /// Characters each editor types a second.
    #[arg(long, default_value_t = 6.0)]
    rate: f64,
    #[command(flatten)]
    document: DocumentArgs,
    /// Seconds to wait for the last changes after typing stops; what has
    /// not arrived by then counts as missing.
    #[arg(long, default_value_t = 10.0)]
    drain_seconds: f64,
    /// The relay's name in the report.
    #[arg(long, default_value = "rapport")]
    label: String,
}

/// The bound on cross-relay forward p99 over same-relay.
const CROSS_OVER_SAME: f64 = 2.0;
/// The bound on a clustered relay's CPU per change over a single
/// relay's.
const CLUSTERED_OVER_SINGLE: f64 = 1.3;

pub async fn run(args: &ClusterArgs) -> Result<Report> {
    if args.relays < 2 || args.editors < 2 * args.relays {
        bail!("--relays must be at least 2, and --editors at least twice --relays");
    }
    let nats = nats_binary(args.nats.as_deref())?;
    let mut progress = Progress::new();
    let base = prepare_base(&args.document, &mut progress)?;
    let folder = std::env::temp_dir().join(format!("rapport-bench-cluster-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&folder);
    let result = measure(args, &nats, &base, &folder, &mut progress).await;
    let _ = std::fs::remove_dir_all(&folder);
    result
}

async fn measure(
    args: &ClusterArgs,
    nats_binary: &Path,
    base: &Base,
    folder: &Path,
    progress: &mut Progress,
) -> Result<Report> {
    progress.step(format!(
        "starting nats-server ({}) and {} relays with --cluster",
        nats_binary.display(),
        args.relays
    ));
    let mut nats = Nats::start(nats_binary, &folder.join("nats"))?;
    let mut relays = Vec::new();
    for n in 0..args.relays {
        let data = folder.join(format!("relay-{n}"));
        let mut options = vec!["--cluster".to_owned(), nats.url()];
        options.extend(args.open.then(|| "--open".to_owned()));
        relays.push(Relay::start(&args.server, &data, options).await?);
    }
    let clustered = type_on(args, base, &relays, Some(nats.watched()), progress).await;
    // The relays first: without NATS they would wait on it as they stop.
    for relay in &mut relays {
        relay.stop()?;
    }
    nats.stop();
    let clustered = clustered?;

    progress.step("starting one relay without --cluster".to_owned());
    let options = args.open.then(|| "--open".to_owned()).into_iter().collect();
    let mut single = Relay::start(&args.server, &folder.join("single"), options).await?;
    let alone = type_on(args, base, std::slice::from_ref(&single), None, progress).await;
    single.stop()?;
    let alone = alone?;
    progress.clear();
    Ok(report(args, base, &nats.url(), &clustered, &alone))
}

/// What one setup (the cluster, or the relay alone) measured.
#[derive(Debug)]
struct Typed {
    typed: usize,
    same: Summary,
    /// Empty with one relay.
    cross: Summary,
    relays: Vec<Usage>,
    nats: Option<Usage>,
}

/// Runs E editors on `relays` (editor n on relay n mod R) into a fresh
/// document, as `typing` does.
async fn type_on(
    args: &ClusterArgs,
    base: &Base,
    relays: &[Relay],
    nats: Option<Watched>,
    progress: &mut Progress,
) -> Result<Typed> {
    let urls: Vec<String> = relays.iter().map(Relay::url).collect();
    let auth = match args.open {
        true => None,
        false => {
            let url = urls[0].clone();
            Some(tokio::task::spawn_blocking(move || Auth::start(&url)).await??)
        }
    };
    let id = DocumentId::from_bytes(rand::random());
    progress.step(format!(
        "uploading the document ({} changes) to {} relay(s)",
        base.changes,
        relays.len()
    ));
    upload(&urls[0], id, base, auth.as_ref()).await?;
    if let Some(auth) = &auth {
        // Listed, the editors (members) may write it.
        let auth = Arc::clone(auth);
        tokio::task::spawn_blocking(move || auth.list(&[id])).await??;
    }
    // Each relay holds it before anybody types: it has it from the stream,
    // and a peer that syncs with it until in sync makes sure.
    for url in &urls[1..] {
        upload(url, id, base, auth.as_ref()).await?;
    }
    for relay in relays {
        quiesce(Some(relay.watched()), Duration::from_secs(60)).await;
    }

    progress.step(format!("{} editors: connecting", args.editors));
    let shared = Arc::new(Shared::new(base.max_op + 1));
    let (phase_tx, phase_rx) = watch::channel(Phase::Setup);
    let ready = Arc::new(AtomicUsize::new(0));
    let tasks = super::start_editors(
        &urls,
        args.editors,
        auth.as_ref(),
        id,
        base,
        &shared,
        &ready,
        &phase_rx,
        args.rate,
    )
    .await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    while ready.load(Ordering::Acquire) < args.editors {
        if tokio::time::Instant::now() > deadline {
            bail!("the editors did not all get an answer from their relay within 300 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for relay in relays {
        quiesce(Some(relay.watched()), Duration::from_secs(60)).await;
    }

    let window = Window::open(relays, nats).await;
    let started = tokio::time::Instant::now();
    let until = started + Duration::from_secs_f64(args.seconds);
    phase_tx.send_replace(Phase::Typing { until });
    while tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let elapsed = started.elapsed().as_secs_f64();
        progress.update(format!(
            "{} {} editors on {} relay(s): {elapsed:.0}/{:.0} s, {} changes, {} forwarded",
            bar(elapsed, args.seconds),
            args.editors,
            relays.len(),
            args.seconds,
            shared.typed.load(Ordering::Relaxed),
            shared.forwarded.load(Ordering::Relaxed)
        ));
    }
    let drain_until = until + Duration::from_secs_f64(args.drain_seconds);
    while shared.forwarded.load(Ordering::Acquire)
        < shared.typed.load(Ordering::Acquire) * (args.editors - 1)
        && tokio::time::Instant::now() < drain_until
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let used = window.close(relays).await;
    phase_tx.send_replace(Phase::Done);
    let mut arrived = Vec::new();
    for (to, task) in tasks.into_iter().enumerate() {
        let forwarded = tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .context("an editor did not stop")??;
        arrived.extend(forwarded?.into_iter().map(|f| (f, to)));
    }
    progress.clear();
    let typed_by = typed_by_editor(&shared, args.editors);
    let (same, cross) = split(&arrived, &typed_by, relays.len());
    Ok(Typed {
        typed: typed_by.iter().sum(),
        same,
        cross,
        relays: used.relays,
        nats: used.nats,
    })
}

/// How many changes each editor typed.
fn typed_by_editor(shared: &Shared, editors: usize) -> Vec<usize> {
    let mut typed = vec![0; editors];
    for (_, from) in super::lock(&shared.sent).values() {
        typed[*from] += 1;
    }
    typed
}

/// Forward latencies of same-relay pairs and of cross-relay pairs, each
/// with the deliveries that never came counted as missing. `arrived`
/// holds each delivery with the editor it reached.
fn split(arrived: &[(Forwarded, usize)], typed_by: &[usize], relays: usize) -> (Summary, Summary) {
    let relay_of = |editor: usize| editor % relays;
    let mut on_relay = vec![0usize; relays];
    for editor in 0..typed_by.len() {
        on_relay[relay_of(editor)] += 1;
    }
    let (mut same, mut cross) = (Vec::new(), Vec::new());
    for (forwarded, to) in arrived {
        if relay_of(forwarded.from) == relay_of(*to) {
            same.push(forwarded.latency);
        } else {
            cross.push(forwarded.latency);
        }
    }
    let (mut same_expected, mut cross_expected) = (0, 0);
    for (from, typed) in typed_by.iter().enumerate() {
        let beside = on_relay[relay_of(from)];
        same_expected += typed * (beside - 1);
        cross_expected += typed * (typed_by.len() - beside);
    }
    (
        Summary::of_durations(&same, same_expected.saturating_sub(same.len())),
        Summary::of_durations(&cross, cross_expected.saturating_sub(cross.len())),
    )
}

fn report(
    args: &ClusterArgs,
    base: &Base,
    nats_url: &str,
    clustered: &Typed,
    alone: &Typed,
) -> Report {
    let mut report = Report::new(
        "cluster",
        &args.label,
        &format!("{} relays on {nats_url}", args.relays),
        json!({
            "relays": args.relays,
            "editors": args.editors,
            "seconds": args.seconds,
            "rate": args.rate,
            "document": base.what,
            "open": args.open,
        }),
    );
    let what = super::short(&base.what);
    let case = format!("{} relays, {} editors, {what}", args.relays, args.editors);
    report.samples(&case, "forward, same relay", clustered.same);
    report.samples(&case, "forward, across relays", clustered.cross);
    add_typed(&mut report, &case, clustered, args.seconds);
    for (n, relay) in clustered.relays.iter().enumerate() {
        add_usage(
            &mut report,
            &case,
            &format!("relay {n}"),
            relay,
            clustered.typed,
        );
        report.single(
            &case,
            &format!("relay {n} stream messages published"),
            Unit::Count,
            relay.published,
        );
        report.single(
            &case,
            &format!("relay {n} stream messages taken"),
            Unit::Count,
            relay.taken,
        );
    }
    if let Some(nats) = &clustered.nats {
        add_usage(&mut report, &case, "nats-server", nats, clustered.typed);
    }
    let single = format!("1 relay, {} editors, {what}", args.editors);
    report.samples(&single, "forward", alone.same);
    add_typed(&mut report, &single, alone, args.seconds);
    let single_cpu = alone.relays[0]
        .cpu_seconds
        .map(|c| c / alone.typed.max(1) as f64);
    add_usage(&mut report, &single, "relay", &alone.relays[0], alone.typed);
    verdicts(&mut report, clustered, alone, single_cpu);
    let tokens = match args.open {
        true => "with --open",
        false => "with tokens (a workspace of the bench's, a key per peer)",
    };
    report.note(format!(
        "cluster: the bench started nats-server (-js, a temporary store) and {} relays ({}) with \
         --cluster, then one relay without, each on a temporary folder, all on this machine and \
         {tokens}; editor n types on relay n mod {}; forward = frame written by editor A → a \
         frame carrying the change reaches editor B's socket; CPU per change = the process's CPU \
         time over the typing and drain window / all changes typed (every clustered relay handles \
         every change); {} characters a second per editor for {} s, then up to {} s to drain",
        args.relays,
        args.server.display(),
        args.relays,
        args.rate,
        args.seconds,
        args.drain_seconds
    ));
    report.note(
        "the load generator, nats-server and every relay share this machine's cores: on a busy \
         machine the tails and CPU figures are noisy"
            .to_owned(),
    );
    report
}

fn add_typed(report: &mut Report, case: &str, typed: &Typed, seconds: f64) {
    report.single(case, "changes typed", Unit::Count, Some(typed.typed as f64));
    report.single(
        case,
        "typing rate",
        Unit::PerSecond,
        Some(typed.typed as f64 / seconds.max(1e-9)),
    );
}

fn add_usage(report: &mut Report, case: &str, who: &str, usage: &Usage, typed: usize) {
    report.single(
        case,
        &format!("{who} CPU per change"),
        Unit::Seconds,
        usage.cpu_seconds.map(|c| c / typed.max(1) as f64),
    );
    report.single(
        case,
        &format!("{who} resident memory"),
        Unit::Bytes,
        usage.rss_end.map(|b| b as f64),
    );
    report.single(
        case,
        &format!("{who} peak memory"),
        Unit::Bytes,
        usage.rss_peak.map(|b| b as f64),
    );
    report.single(
        case,
        &format!("{who} CPU a second at rest, before typing"),
        Unit::Seconds,
        usage.rest_cpu,
    );
}

/// The two ratios, as rows, and a note for each saying whether
/// its target holds.
fn verdicts(report: &mut Report, clustered: &Typed, alone: &Typed, single_cpu: Option<f64>) {
    let case = "targets";
    let cross = clustered
        .cross
        .p99
        .zip(clustered.same.p99)
        .map(|(c, s)| c / s);
    report.single(case, "forward p99, across / same relay", Unit::Ratio, cross);
    report.note(verdict(
        &format!("cross-relay forward p99 ≤ {CROSS_OVER_SAME} × same-relay"),
        cross,
        CROSS_OVER_SAME,
    ));
    let single_p99 = alone.same.p99;
    report.single(
        case,
        "forward p99, across relays / one relay alone",
        Unit::Ratio,
        clustered.cross.p99.zip(single_p99).map(|(c, s)| c / s),
    );
    let typed = clustered.typed.max(1) as f64;
    for (n, relay) in clustered.relays.iter().enumerate() {
        let ratio = relay
            .cpu_seconds
            .zip(single_cpu)
            .map(|(cpu, single)| cpu / typed / single);
        report.single(
            case,
            &format!("relay {n} CPU per change / one relay's"),
            Unit::Ratio,
            ratio,
        );
        report.note(verdict(
            &format!("relay {n}'s CPU per change ≤ {CLUSTERED_OVER_SINGLE} × the single relay's"),
            ratio,
            CLUSTERED_OVER_SINGLE,
        ));
    }
    let all: Option<f64> = clustered
        .relays
        .iter()
        .chain(&clustered.nats)
        .map(|u| u.cpu_seconds)
        .sum();
    report.single(
        case,
        "whole cluster (relays + nats-server) CPU per change / one relay's",
        Unit::Ratio,
        all.zip(single_cpu)
            .map(|(cpu, single)| cpu / typed / single),
    );
}

/// `target: holds (1.23)`, `does not hold`, or unknown.
fn verdict(target: &str, ratio: Option<f64>, bound: f64) -> String {
    match ratio {
        Some(r) if r <= bound => format!("target {target}: holds ({r:.2})"),
        Some(r) => format!("target {target}: does NOT hold ({r:.2})"),
        None => format!(
            "target {target}: unknown (a figure is missing: a p99 among undelivered changes, or \
             no CPU reading)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_split_by_relay_and_missing_ones_are_counted() {
        let ms = Duration::from_millis;
        // Four editors on two relays: 0 and 2 on relay 0, 1 and 3 on relay 1.
        let arrived = [
            (
                Forwarded {
                    from: 0,
                    latency: ms(1),
                },
                2,
            ),
            (
                Forwarded {
                    from: 0,
                    latency: ms(5),
                },
                1,
            ),
            (
                Forwarded {
                    from: 0,
                    latency: ms(6),
                },
                3,
            ),
        ];
        // Editor 0 typed one change; it reached everybody.
        let (same, cross) = split(&arrived, &[1, 0, 0, 0], 2);
        assert_eq!((same.count, same.missing), (1, 0));
        assert_eq!((cross.count, cross.missing), (2, 0));
        assert_eq!(cross.p99, Some(0.006));
        // Editor 1 typed one too, which reached nobody.
        let (same, cross) = split(&arrived, &[1, 1, 0, 0], 2);
        assert_eq!((same.missing, cross.missing), (1, 2));
    }

    #[test]
    fn verdicts_say_whether_a_target_holds() {
        assert!(verdict("x", Some(1.5), 2.0).contains("holds (1.50)"));
        assert!(verdict("x", Some(2.5), 2.0).contains("does NOT hold"));
        assert!(verdict("x", None, 2.0).contains("unknown"));
    }
}
