//! `rapport bench`: parses the scenario and its options and runs the load
//! generator (`rapport-bench`), printing its report.

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use rapport_bench::cluster::{self, ClusterArgs};
use rapport_bench::cold_sync::ColdSyncArgs;
use rapport_bench::idle::{self, IdleArgs};
use rapport_bench::ingest::IngestArgs;
use rapport_bench::many_docs::{self, ManyDocsArgs};
use rapport_bench::replica::{self, ReplicaArgs};
use rapport_bench::report::{self, Report};
use rapport_bench::typing::TypingArgs;
use rapport_bench::{cold_sync, ingest, runtime, typing};

use crate::context::Context;

/// `rapport bench SCENARIO`.
#[derive(Debug, Subcommand)]
pub(crate) enum BenchCommand {
    /// E editors type into one document pre-grown with the automerge-paper
    /// trace: forward and visible latency, the server's CPU per change and
    /// its memory.
    #[command(
        after_help = "Example:\n  rapport bench typing --relay ws://127.0.0.1:3030/sync --open \\\n    --editors 2,4,8,16,32 --seconds 30 --relay-pid $(pgrep -n rapport-server)"
    )]
    Typing(TypingArgs),
    /// `typing` with a real rapport-client replica in live sync on the
    /// document (`--replicas`, at least 1): when each typed change is in
    /// it, and how far behind it is when typing stops.
    #[command(
        after_help = "Example:\n  rapport bench live-replica --relay ws://127.0.0.1:3030/sync --open \\\n    --editors 16 --seconds 60 --observers 0"
    )]
    LiveReplica(TypingArgs),
    /// A loader puts N small customer records on the server; a fresh
    /// replica syncs them all: time, round trips, bytes against the saved
    /// documents, the server's peak memory.
    #[command(
        after_help = "Example:\n  rapport bench cold-sync --relay ws://127.0.0.1:3030/sync --open --records 10000"
    )]
    ColdSync(ColdSyncArgs),
    /// Many peers push small changes as fast as acknowledgements allow:
    /// changes a second, time to acknowledgement, and this machine's fsync
    /// measured in the same run.
    #[command(
        after_help = "Example:\n  rapport bench ingest --relay ws://127.0.0.1:3030/sync --open --peers 64 \\\n    --fsync-dir /var/lib/rapport"
    )]
    Ingest(IngestArgs),
    /// N idle connections and one echo-timed connection: memory per
    /// connection and echo p50/p99, beside a bare tokio-tungstenite echo
    /// server measured in the same run.
    #[command(
        after_help = "Example:\n  rapport bench idle --relay ws://127.0.0.1:3030/sync --open --connections 10000"
    )]
    Idle(IdleArgs),
    /// Starts the relay itself, stores many small documents, restarts it,
    /// and has connections edit a few thousand of them: the relay's start,
    /// its memory in use and after the idle period, and forward latency.
    #[command(
        after_help = "Example:\n  rapport bench many-docs --server target/release/rapport-server \\\n    --documents 100000 --open-documents 2000 --connections 500"
    )]
    ManyDocs(ManyDocsArgs),
    /// Starts a nats-server and three relays with `--cluster`, then one
    /// relay alone: E editors type on them, forward latency within a relay
    /// and across relays, each relay's CPU per change against the single
    /// relay's (issue #17's targets).
    #[command(
        after_help = "Example:\n  rapport bench cluster --server target/release/rapport-server \\\n    --editors 12 --seconds 20 --trace-edits 20000"
    )]
    Cluster(ClusterArgs),
    /// A bare tokio-tungstenite echo server (the idle scenario's floor).
    #[command(hide = true)]
    EchoServer {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
    },
    /// Write the side-by-side tables of BENCHMARKS.md from `--json` results.
    #[command(hide = true)]
    Report(ReportArgs),
    /// The replica: create records (each durable), list them, compute the
    /// dashboard, replay the editing trace with durability; against
    /// automerge in memory with no storage.
    #[command(
        after_help = "Example:\n  rapport bench replica --records 10000 --trace-edits 5000 --json"
    )]
    Replica(ReplicaArgs),
}

/// `rapport bench report`: the inputs of `BENCHMARKS.md`.
#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// Result files: the `--json` output of scenario runs.
    #[arg(required = true)]
    files: Vec<std::path::PathBuf>,
    /// The `--label` of our server's runs.
    #[arg(long, default_value = "rapport")]
    ours: String,
    /// The command that produced the runs, quoted in the report.
    #[arg(long)]
    command: String,
    /// A line for the report's header (repeatable).
    #[arg(long)]
    note: Vec<String>,
    /// Where to write it (default: stdout).
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

fn write_report(args: &ReportArgs) -> Result<()> {
    let mut reports = Vec::new();
    for file in &args.files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let parsed: Report = serde_json::from_str(&text).with_context(|| {
            format!("{} is not a `rapport bench --json` result", file.display())
        })?;
        reports.push(parsed);
    }
    let markdown = report::markdown(&reports, &args.ours, &args.command, &args.note);
    match &args.out {
        Some(path) => {
            std::fs::write(path, markdown).with_context(|| format!("writing {}", path.display()))?
        }
        None => print!("{markdown}"),
    }
    Ok(())
}

/// Runs one `rapport bench` command.
pub(crate) fn run(ctx: &Context, command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::LiveReplica(args) => {
            args.target.check()?;
            let args = args.with_live_replica();
            print(ctx, &runtime()?.block_on(typing::run(&args))?)
        }
        BenchCommand::Typing(args) => {
            args.target.check()?;
            print(ctx, &runtime()?.block_on(typing::run(&args))?)
        }
        BenchCommand::ColdSync(args) => {
            args.target.check()?;
            print(ctx, &runtime()?.block_on(cold_sync::run(&args))?)
        }
        BenchCommand::Ingest(args) => {
            args.target.check()?;
            print(ctx, &runtime()?.block_on(ingest::run(&args))?)
        }
        BenchCommand::Idle(args) => {
            args.target.check()?;
            print(ctx, &runtime()?.block_on(idle::run(&args))?)
        }
        BenchCommand::ManyDocs(args) => print(ctx, &runtime()?.block_on(many_docs::run(&args))?),
        BenchCommand::Cluster(args) => print(ctx, &runtime()?.block_on(cluster::run(&args))?),
        BenchCommand::EchoServer { listen } => idle::echo_server(listen),
        BenchCommand::Report(args) => write_report(&args),
        BenchCommand::Replica(args) => print(ctx, &replica::run(&args)?),
    }
}

/// Prints a finished report as a table, or as JSON with `--json`.
fn print(ctx: &Context, report: &Report) -> Result<()> {
    ctx.print(report.to_text(), serde_json::to_value(report)?);
    Ok(())
}
