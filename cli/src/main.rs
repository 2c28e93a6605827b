//! `rapport`: the command line of rapport.
//!
//! This file holds the argument types and the dispatch; each command lives
//! in its own module and calls the library crates.

use clap::{Parser, Subcommand};
use rapport_server::cli::ServeArgs;

mod demo;

/// rapport: local-first collaboration for client work.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show rapport at work: a relay, a staff replica and a client replica
    /// edit one requirements document offline, sync, and both keep every
    /// edit.
    ///
    /// Everything runs in this process: the relay listens on a free
    /// loopback port and every redb file lives in a temporary folder that
    /// is removed at the end. Nothing to install.
    #[command(after_help = "Example:\n  rapport demo")]
    Demo,
    /// Run the relay (the same as `rapport-server`).
    #[command(after_help = SERVE_EXAMPLES)]
    Serve(ServeArgs),
}

const SERVE_EXAMPLES: &str = "Examples:
  rapport serve --listen 0.0.0.0:3030 --data /var/lib/rapport
  rapport serve --data ./relay --open     # no tokens: development only

Clients connect to ws://HOST:PORT/sync with a signed token whose audience is
the relay id (printed at start, and on GET /api/info).";

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo => demo::run(),
        Command::Serve(args) => Ok(args.run()?),
    }
}
