//! `rapport-server`: the relay binary.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use rapport_server::cli::ServeArgs;

#[derive(Debug, Parser)]
#[command(
    name = "rapport-server",
    version,
    about,
    long_about = None,
    after_help = EXAMPLES,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(flatten)]
    serve: Option<ServeArgs>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a consistent copy of the relay's database to a file, while it
    /// serves (the running relay makes it) or while it is stopped.
    #[command(
        after_help = "Example:\n  rapport-server backup --data /var/lib/rapport --to /backups/relay-2026-12-05.redb"
    )]
    Backup {
        /// The relay's data folder.
        #[arg(long, env = "RAPPORT_DATA")]
        data: PathBuf,
        /// The file to write; it appears only once complete.
        #[arg(long)]
        to: PathBuf,
    },
    /// Put a backup in place as a stopped relay's database.
    #[command(
        after_help = "Example:\n  rapport-server restore --from /backups/relay-2026-12-05.redb --data /var/lib/rapport"
    )]
    Restore {
        /// The backup file.
        #[arg(long)]
        from: PathBuf,
        /// The relay's data folder (made if missing).
        #[arg(long, env = "RAPPORT_DATA")]
        data: PathBuf,
        /// Replace the database the folder holds.
        #[arg(long)]
        force: bool,
    },
}

const EXAMPLES: &str = "Examples:
  rapport-server --listen 127.0.0.1:3030 --data /var/lib/rapport --public-url https://relay.example   # behind a TLS proxy
  rapport-server --listen 0.0.0.0:443 --data /var/lib/rapport --tls-cert fullchain.pem --tls-key privkey.pem --public-url https://relay.example
  rapport-server --listen 127.0.0.1:3030 --data ./relay --open   # development only

Clients connect to ws(s)://HOST:PORT/sync with a signed token (Authorization:
Bearer, or ?token=) whose audience is the relay id, printed at start and
served on GET /api/info. SIGHUP reads the TLS certificate again; SIGINT or
SIGTERM stops the relay gracefully.";

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let done: Result<(), Box<dyn std::error::Error>> = match cli.command {
        None => match cli.serve {
            Some(serve) => serve.run().map_err(Into::into),
            None => Err("give --data DIR to serve, or a command (see --help)".into()),
        },
        Some(Command::Backup { data, to }) => rapport_server::control::backup(&data, &to)
            .map(|bytes| println!("wrote {} ({bytes} bytes)", to.display()))
            .map_err(Into::into),
        Some(Command::Restore { from, data, force }) => {
            rapport_server::storage::backup::restore(&from, &data, force)
                .map(|()| println!("restored {} into {}", from.display(), data.display()))
                .map_err(Into::into)
        }
    };
    match done {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rapport-server: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
