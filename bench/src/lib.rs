//! rapport's load generator, behind `rapport bench`: peers speaking
//! automerge-repo protocol "1", so it drives our relay and the JS sync
//! server alike, and the replica measured on its own.
//!
//! Each scenario module has its options (`TypingArgs`, …, parsed by the
//! CLI) and an entry point returning a [`Report`], which prints as a table
//! (median, p50/p99, min–max, the machine) or serializes to the JSON that
//! [`report::markdown`] turns into the side-by-side tables of
//! `BENCHMARKS.md`. All peers live in this one process, so every latency is
//! measured on one clock. Every run has a time bound and stops by itself.
//! See `docs/benchmarks.md`.

use std::time::Duration;

use anyhow::Result;
use clap::Args;

mod auth;
pub mod cold_sync;
pub mod idle;
pub mod ingest;
mod machine;
mod many;
pub mod many_docs;
mod peer;
mod process;
mod progress;
pub mod replica;
pub mod report;
mod stats;
mod trace;
pub mod typing;

pub use typing::cluster;

use machine::Watched;
pub use report::Report;

/// The server under test, shared by the relay scenarios.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// The server's WebSocket URL: our relay's `ws://HOST:PORT/sync`, or
    /// any automerge-repo sync server.
    #[arg(long, value_name = "URL")]
    relay: String,
    /// The server takes connections without a token (our relay started
    /// with `--open`, the JS sync server). Without it, the bench drives
    /// our relay with tokens: a workspace of its own, a key per peer.
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
    /// Refuses what the bench cannot drive: a server that needs tokens, one
    /// off this machine unless allowed.
    pub fn check(&self) -> Result<()> {
        peer::check_loopback(&self.relay, self.allow_remote)
    }

    /// The bench's workspace on a relay with tokens; `None` with `--open`.
    async fn auth(&self) -> Result<Option<std::sync::Arc<auth::Auth>>> {
        if self.open {
            return Ok(None);
        }
        let url = self.relay.clone();
        Ok(Some(
            tokio::task::spawn_blocking(move || auth::Auth::start(&url)).await??,
        ))
    }

    fn watched(&self) -> Option<Watched> {
        self.relay_pid.map(Watched::new)
    }

    fn report(&self, scenario: &str, params: serde_json::Value) -> Report {
        let mut report = Report::new(scenario, &self.label, &self.relay, params);
        if !self.open {
            report.note(
                "with tokens: a workspace of the bench's own, a key and a token per peer"
                    .to_owned(),
            );
        }
        report
    }
}

/// Connects peer `us` to `url`: as a member of the bench's workspace with
/// a key and token of its own on a relay with tokens, bare otherwise.
async fn connect_peer(
    url: &str,
    us: rapport_protocol::ids::PeerId,
    auth: Option<&std::sync::Arc<auth::Auth>>,
) -> Result<peer::Link> {
    match auth {
        Some(auth) => auth.connect(url, us).await,
        None => peer::connect(url, us).await,
    }
}

/// A runtime for the load generator: one worker per core.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
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
