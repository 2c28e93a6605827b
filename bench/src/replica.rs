//! `rapport bench replica`: the local side measured, against automerge in
//! memory with no storage (the floor).
//!
//! - create N customer records in a fresh replica, each a durable write;
//! - list them from the index, and compute the dashboard from it (median
//!   of several rounds);
//! - replay the first edits of the automerge-paper trace into a
//!   requirements text in the replica, each edit its own durable change,
//!   and the same edits into an automerge document in memory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ROOT};
use clap::Args;
use rapport_client::Repo;
use rapport_model::{Customer, Relationship, Stage};
use serde_json::json;

use super::progress::{Progress, bar};
use super::report::{Report, Unit};
use super::stats::Summary;
use super::trace;

#[derive(Debug, Clone, Args)]
pub struct ReplicaArgs {
    #[arg(long, default_value_t = 10_000)]
    records: usize,
    /// How many times to list and compute the dashboard.
    #[arg(long, default_value_t = 7)]
    rounds: usize,
    /// Trace edits to replay, each a durable change (0 to skip).
    #[arg(long, default_value_t = 5_000)]
    trace_edits: usize,
    /// The editing trace (default: ../shared/data/automerge-paper-edits.json.gz).
    #[arg(long, value_name = "PATH")]
    trace: Option<PathBuf>,
}

pub fn run(args: &ReplicaArgs) -> Result<Report> {
    let folder = std::env::temp_dir().join(format!("rapport-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&folder);
    let result = measure(args, &folder);
    let _ = std::fs::remove_dir_all(&folder);
    result
}

fn measure(args: &ReplicaArgs, folder: &Path) -> Result<Report> {
    let mut progress = Progress::new();
    let mut report = Report::new(
        "replica",
        "rapport",
        "local (no server)",
        json!({ "records": args.records, "rounds": args.rounds, "trace_edits": args.trace_edits }),
    );
    let repo = Repo::init(&folder.join("records"))?;
    records(args, &repo, &mut report, &mut progress)?;
    if args.trace_edits > 0 {
        let path = args.trace.clone().unwrap_or_else(trace::default_path);
        let mut edits = trace::read(&path)?;
        edits.truncate(args.trace_edits);
        replay(&edits, &folder.join("trace"), &mut report, &mut progress)?;
    }
    report.note(
        "replica: every create and every edit returns only once its redb commit is durable; the \
         floor is the same work on an automerge document in memory, no storage",
    );
    Ok(report)
}

/// Creates the records, then lists them and computes the dashboard.
fn records(
    args: &ReplicaArgs,
    repo: &Repo,
    report: &mut Report,
    progress: &mut Progress,
) -> Result<()> {
    progress.step(format!("creating {} customer records", args.records));
    let started = Instant::now();
    for n in 0..args.records {
        repo.create(|tx| {
            let mut customer = Customer::new(format!("Customer {n}"), Relationship::Customer);
            customer.stage = if n.is_multiple_of(3) {
                Stage::Proposal
            } else {
                Stage::Lead
            };
            customer.score = (n % 100) as i64;
            customer.write(tx)
        })?;
        if n % 100 == 0 {
            progress.update(format!(
                "{} {n}/{}",
                bar(n as f64, args.records as f64),
                args.records
            ));
        }
    }
    progress.clear();
    let create = started.elapsed();
    let case = format!("{} records", args.records);
    report.single(
        &case,
        "create, each durable: total",
        Unit::Seconds,
        Some(create.as_secs_f64()),
    );
    report.single(
        &case,
        "create, each durable: per record",
        Unit::Seconds,
        Some(create.as_secs_f64() / args.records.max(1) as f64),
    );
    let mut listings = Vec::new();
    let mut dashboards = Vec::new();
    let options = rapport_client::dashboard::Options {
        today: rapport_model::Date::utc(super::peer::now())
            .ok_or_else(|| anyhow::anyhow!("the clock is outside years 0 to 9999"))?,
        stale_days: 30,
    };
    for _ in 0..args.rounds.max(1) {
        let started = Instant::now();
        let entries = repo.index()?;
        let customers = entries
            .iter()
            .filter(|(_, e)| e.kind.as_str() == "customer")
            .count();
        listings.push(started.elapsed());
        anyhow::ensure!(
            customers == args.records,
            "the index lists {customers} customers of the {} made",
            args.records
        );
        let started = Instant::now();
        let dashboard = rapport_client::dashboard::compute(&entries, &options);
        dashboards.push(started.elapsed());
        std::hint::black_box(dashboard);
    }
    report.samples(
        &case,
        "list from the index",
        Summary::of_durations(&listings, 0),
    );
    report.samples(
        &case,
        "compute the dashboard (from the listed index)",
        Summary::of_durations(&dashboards, 0),
    );
    Ok(())
}

/// Replays `edits` into the replica, each a durable change, and into an
/// automerge document in memory.
fn replay(
    edits: &[trace::Edit],
    folder: &Path,
    report: &mut Report,
    progress: &mut Progress,
) -> Result<()> {
    let case = format!("{} trace edits", edits.len());
    progress.step(format!(
        "replaying {} trace edits into a replica",
        edits.len()
    ));
    let repo = Repo::init(folder)?;
    let (id, text) = repo.create(|tx| tx.put_object(ROOT, trace::TEXT_KEY, ObjType::Text))?;
    let mut each = Vec::with_capacity(edits.len());
    let started = Instant::now();
    for (n, edit) in edits.iter().enumerate() {
        let t = Instant::now();
        repo.change(id, |tx| apply(tx, &text, edit))?;
        each.push(t.elapsed());
        if n % 100 == 0 {
            progress.update(format!(
                "{} {n}/{}",
                bar(n as f64, edits.len() as f64),
                edits.len()
            ));
        }
    }
    let replica_total = started.elapsed();
    progress.clear();
    let mut doc = AutoCommit::new();
    let text = doc.put_object(ROOT, trace::TEXT_KEY, ObjType::Text)?;
    doc.commit();
    let mut floor_each = Vec::with_capacity(edits.len());
    let started = Instant::now();
    for edit in edits {
        let t = Instant::now();
        apply(&mut doc, &text, edit)?;
        doc.commit();
        floor_each.push(t.elapsed());
    }
    let floor_total = started.elapsed();
    let per = |total: Duration| Some(total.as_secs_f64() / edits.len().max(1) as f64);
    report.samples(
        &case,
        "replica: edit, durable",
        Summary::of_durations(&each, 0),
    );
    report.samples(
        &case,
        "automerge in memory: edit (the floor)",
        Summary::of_durations(&floor_each, 0),
    );
    report.single(
        &case,
        "replica: mean per edit",
        Unit::Seconds,
        per(replica_total),
    );
    report.single(
        &case,
        "floor: mean per edit",
        Unit::Seconds,
        per(floor_total),
    );
    report.single(
        &case,
        "replica / floor",
        Unit::Ratio,
        Some(replica_total.as_secs_f64() / floor_total.as_secs_f64().max(1e-12)),
    );
    Ok(())
}

/// One trace edit on a text.
fn apply(
    tx: &mut impl Transactable,
    text: &automerge::ObjId,
    edit: &trace::Edit,
) -> Result<(), automerge::AutomergeError> {
    let (at, delete, insert) = edit.parts();
    tx.splice_text(
        text,
        at,
        isize::try_from(delete).unwrap_or(isize::MAX),
        insert,
    )
}
