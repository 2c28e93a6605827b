//! `rapport-server`: the relay binary.

use std::path::PathBuf;

use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use rapport_server::cli::ServeArgs;
use rapport_server::config_file;

/// mimalloc hands freed pages back to the system (at once, as the relay sets
/// it: `rapport_server::memory`), so the relay's resident memory falls again
/// after a large upload or compaction; glibc's allocator kept such peaks
/// resident for good.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Write one workspace's documents, as the relay holds them, to a new
    /// folder: automerge binary, JSON, Markdown for requirements documents
    /// and a manifest. Works while the relay serves.
    #[command(
        after_help = "Example:\n  rapport-server export --data /var/lib/rapport --workspace ws-4xQ… --to ./acme-export"
    )]
    Export {
        /// The relay's data folder.
        #[arg(long, env = "RAPPORT_DATA")]
        data: PathBuf,
        /// The workspace's id.
        #[arg(long)]
        workspace: String,
        /// A new or empty folder.
        #[arg(long)]
        to: PathBuf,
    },
    /// Bring an export (from `rapport-server export`, or a member's
    /// `rapport export`) into a stopped relay as a workspace, with the same
    /// workspace and document ids and every change. Members do not travel:
    /// OWNER owns it and invites the others again.
    #[command(
        after_help = "Example:\n  rapport-server import --data /var/lib/rapport --from ./acme-export --owner 5Hw3… --name \"Acme projects\"\n\nAutomation rules written by people who are not admins here do not run\nuntil an admin writes them again."
    )]
    Import {
        /// The relay's data folder (made if missing); the relay must be stopped.
        #[arg(long, env = "RAPPORT_DATA")]
        data: PathBuf,
        /// The export's folder.
        #[arg(long)]
        from: PathBuf,
        /// The public key (base58) of the workspace's owner on this relay.
        #[arg(long)]
        owner: rapport_protocol::ids::PublicKey,
        /// The workspace's name.
        #[arg(long)]
        name: String,
        /// The workspace's id, when the export names none (a member's
        /// export of several workspaces).
        #[arg(long)]
        workspace_id: Option<String>,
    },
    /// Check a configuration file: print the effective configuration, or
    /// what is wrong.
    #[command(subcommand)]
    Config(ConfigCommand),
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

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate FILE and print every flag's effective value and where it
    /// comes from (flag, environment, file or default).
    #[command(after_help = "Example:\n  rapport-server config check /etc/rapport/relay.toml")]
    Check { file: PathBuf },
}

fn main() -> std::process::ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mut command = Cli::command();
    // `config check FILE` reads FILE; serving reads the --config file.
    let file = match args.get(1..3) {
        Some([config, check]) if config == "config" && check == "check" => {
            args.get(3).map(PathBuf::from)
        }
        _ => config_file::named_in(&args),
    };
    let mut from_file = Vec::new();
    if let Some(file) = &file {
        match config_file::apply(command, file) {
            Ok((applied, set)) => (command, from_file) = (applied, set),
            Err(e) => {
                eprintln!("rapport-server: {e}");
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    let matches = match command.clone().try_get_matches_from(&args) {
        Ok(matches) => matches,
        // A value from the file the flag's parser refused: say which file.
        Err(e) if e.kind() == clap::error::ErrorKind::ValueValidation && file.is_some() => {
            let file = file.as_deref().unwrap_or(std::path::Path::new(""));
            eprintln!("rapport-server: {}: {}", file.display(), first_line(&e));
            return std::process::ExitCode::FAILURE;
        }
        Err(e) => e.exit(),
    };
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let done: Result<(), Box<dyn std::error::Error>> = match cli.command {
        None => match cli.serve {
            Some(serve) => serve.run().map_err(Into::into),
            None => Err("give --data DIR to serve, or a command (see --help)".into()),
        },
        Some(Command::Backup { data, to }) => rapport_server::control::backup(&data, &to)
            .map(|bytes| println!("wrote {} ({bytes} bytes)", to.display()))
            .map_err(Into::into),
        Some(Command::Export {
            data,
            workspace,
            to,
        }) => rapport_server::control::export(&data, &workspace, &to)
            .map(|count| {
                println!(
                    "exported {count} document(s) of {workspace} to {}",
                    to.display()
                )
            })
            .map_err(Into::into),
        Some(Command::Config(ConfigCommand::Check { file })) => {
            // The file's values as the relay would take them, with this
            // environment.
            let matches = command.clone().try_get_matches_from([
                "rapport-server".as_ref(),
                "--config".as_ref(),
                file.as_os_str(),
            ]);
            match matches {
                Ok(matches) => {
                    print!("{}", config_file::describe(&command, &matches, &from_file));
                    Ok(())
                }
                Err(e) => Err(format!("{}: {}", file.display(), first_line(&e)).into()),
            }
        }
        Some(Command::Import {
            data,
            from,
            owner,
            name,
            workspace_id,
        }) => rapport_server::import::import(&data, &from, owner, &name, workspace_id.as_deref())
            .map(|done| {
                println!(
                    "imported {} document(s) ({} changes) as workspace {}, owned by {owner}",
                    done.documents, done.changes, done.workspace
                )
            })
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

/// The first line of a clap error, without its `error: `.
fn first_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let line = text.lines().next().unwrap_or_default();
    line.strip_prefix("error: ").unwrap_or(line).to_owned()
}
