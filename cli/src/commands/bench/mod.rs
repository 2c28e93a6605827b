//! `rapport bench`: a load generator speaking automerge-repo protocol "1",
//! so it drives our relay and the JS sync server alike, and the replica
//! measured on its own.
//!
//! Every scenario prints a table (median, p50/p99, min–max, the machine)
//! or, with `--json`, one [`report::Report`] that `rapport bench report`
//! turns into the side-by-side tables of `BENCHMARKS.md`. All peers live in
//! this one process, so every latency is measured on one clock. Every run
//! has a time bound and stops by itself. See `docs/benchmarks.md`.

use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};

use crate::context::Context;

mod cold_sync;
mod idle;
mod ingest;
mod machine;
mod many;
mod peer;
mod progress;
mod replica;
mod report;
mod stats;
mod trace;
mod typing;

use cold_sync::ColdSyncArgs;
use idle::IdleArgs;
use ingest::IngestArgs;
use typing::TypingArgs;

use machine::Watched;
use report::Report;

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
    Replica(replica::ReplicaArgs),
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
        BenchCommand::EchoServer { listen } => idle::echo_server(listen),
        BenchCommand::Report(args) => write_report(&args),
        BenchCommand::Replica(args) => print(ctx, &replica::run(&args)?),
    }
}

/// The server under test, shared by the relay scenarios.
#[derive(Debug, Clone, Args)]
pub(crate) struct Target {
    /// The server's WebSocket URL: our relay's `ws://HOST:PORT/sync`, or
    /// any automerge-repo sync server.
    #[arg(long, value_name = "URL")]
    relay: String,
    /// The server takes connections without a token (our relay started
    /// with `--open`, the JS sync server). Required for now.
    #[arg(long)]
    open: bool,
    /// The server's process id: its CPU time and memory are read from
    /// `/proc/PID` (same machine only).
    #[arg(long, value_name = "PID")]
    relay_pid: Option<u32>,
    /// The server's name in the report.
    #[arg(long, default_value = "server")]
    label: String,
    /// Allow a server that is not on this machine.
    #[arg(long)]
    allow_remote: bool,
}

impl Target {
    fn check(&self) -> Result<()> {
        if !self.open {
            bail!(
                "rapport bench drives a server that needs no token: start our relay with \
                 `--open` (or use the JS sync server) and pass --open"
            );
        }
        peer::check_loopback(&self.relay, self.allow_remote)
    }

    fn watched(&self) -> Option<Watched> {
        self.relay_pid.map(Watched::new)
    }

    fn report(&self, scenario: &str, params: serde_json::Value) -> Report {
        Report::new(scenario, &self.label, &self.relay, params)
    }
}

/// Prints a finished report as a table, or as JSON with `--json`.
fn print(ctx: &Context, report: &Report) -> Result<()> {
    ctx.print(report.to_text(), serde_json::to_value(report)?);
    Ok(())
}

/// A runtime for the load generator: one worker per core.
fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Waits until the watched server is idle (under 5 % of a core over half a
/// second), at most `limit`: a compaction or a save left over from the
/// previous step must not land in the next measurement. Returns how long it
/// waited.
async fn quiesce(watched: Option<Watched>, limit: Duration) -> Duration {
    let started = tokio::time::Instant::now();
    let Some(watched) = watched else {
        tokio::time::sleep(Duration::from_millis(500)).await;
        return started.elapsed();
    };
    let window = Duration::from_millis(500);
    while started.elapsed() < limit {
        let Some(before) = watched.sample() else {
            break;
        };
        tokio::time::sleep(window).await;
        let Some(after) = watched.sample() else {
            break;
        };
        if after.cpu_seconds - before.cpu_seconds < 0.05 * window.as_secs_f64() {
            break;
        }
    }
    started.elapsed()
}
