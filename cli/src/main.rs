//! `rapport`: the command line of rapport.
//!
//! This file holds the argument types and the dispatch; each command lives
//! in its own module under `commands/` and calls the library crates.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rapport_client::api::Level;
use rapport_server::cli::ServeArgs;

mod commands;
mod context;
mod demo;

use commands::records::{CommentCommand, CustomerCommand, DocCommand, TaskCommand};
use commands::workspace::{InviteCommand, MemberCommand, WorkspaceCommand, parse_level};
use context::Context;

/// rapport: local-first collaboration for client work.
///
/// Every person keeps a replica of the workspace documents they may see;
/// replicas sync through a self-hosted relay.
#[derive(Debug, Parser)]
#[command(version, about, after_help = GETTING_STARTED)]
struct Cli {
    /// The folder holding your identity and replica.
    #[arg(long, global = true, env = "RAPPORT_HOME")]
    home: Option<PathBuf>,
    /// Print exactly one JSON value on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// Also trust the certificate authority in this PEM file, for a relay
    /// whose https:// certificate a private CA signed (the platform's
    /// roots are always trusted).
    #[arg(long, global = true, env = "RAPPORT_CA", value_name = "FILE")]
    ca: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

const GETTING_STARTED: &str = "Getting started:
  rapport demo                                   # see it work, nothing to set up
  rapport init --name \"Ann Lee\"
  rapport workspace create \"Acme projects\" --relay ws://relay.example:3030/sync
  rapport customer add \"Acme Ltd\" --kind client --email buyer@acme.test
  rapport invite create --role staff             # prints a link for a colleague
  rapport sync";

#[derive(Debug, Subcommand)]
enum Command {
    /// Create your identity (an ed25519 key, kept in the home folder), or
    /// bring one from another device or the web app with --import.
    #[command(
        after_help = "Examples:\n  rapport init --name \"Ann Lee\"\n  rapport init --import ann-lee.rapport-key.json   # a key exported by the web app or `rapport key export`"
    )]
    Init {
        /// Your name, as the other members see it (taken from the key file
        /// with --import, unless given).
        #[arg(long, required_unless_present = "import")]
        name: Option<String>,
        /// A key file exported from the web app or another device.
        #[arg(long, value_name = "FILE")]
        import: Option<std::path::PathBuf>,
    },
    /// Carry your key to another device or the web app.
    #[command(subcommand)]
    Key(commands::identity::KeyCommand),
    /// Show your name, key and current workspace.
    #[command(after_help = "Example:\n  rapport whoami --json")]
    Whoami,
    /// Create, list and switch workspaces.
    #[command(subcommand)]
    Workspace(WorkspaceCommand),
    /// Invite people to the current workspace (admins).
    #[command(subcommand)]
    Invite(InviteCommand),
    /// Join a workspace with an invite link.
    #[command(
        after_help = "Example:\n  rapport join 'ws://relay.example:3030/sync#join=ws-4xQ….8Fj…'"
    )]
    Join { link: String },
    /// List or remove members.
    #[command(subcommand)]
    Member(MemberCommand),
    /// Customers and clients.
    #[command(subcommand)]
    Customer(CustomerCommand),
    /// Tasks and orders.
    #[command(subcommand)]
    Task(TaskCommand),
    /// Requirements documents.
    #[command(subcommand)]
    Doc(DocCommand),
    /// Comments on any record.
    #[command(subcommand)]
    Comment(CommentCommand),
    /// Share a document with a client, list what is shared, or unshare.
    #[command(
        after_help = "Examples:\n  rapport share 5Hq --with 3xPQ --access comment\n  rapport share list            # every share of the workspace\n  rapport share list 5Hq        # who a document is shared with\n  rapport share remove 5Hq 3xPQ # they receive no more of it",
        args_conflicts_with_subcommands = true,
        subcommand_negates_reqs = true
    )]
    Share {
        /// The document's id or a unique prefix.
        #[arg(required = true)]
        id: Option<String>,
        /// The member's key or a unique prefix.
        #[arg(long = "with", required = true)]
        with: Option<String>,
        /// read, comment or write.
        #[arg(long, value_parser = parse_level, required = true)]
        access: Option<Level>,
        #[command(subcommand)]
        command: Option<commands::share::ShareCommand>,
    },
    /// Sync every document with the relay.
    #[command(
        after_help = "Examples:\n  rapport sync\n  rapport sync --watch     # stay connected and keep syncing"
    )]
    Sync {
        /// Keep syncing until interrupted.
        #[arg(long)]
        watch: bool,
    },
    /// Write every document of this replica to a folder as files that read
    /// without rapport: automerge binary, JSON, Markdown for requirements
    /// documents, and a manifest.
    #[command(after_help = "Examples:\n  rapport export\n  rapport export --to ~/acme-export")]
    Export {
        /// A new or empty folder (default: rapport-export-DATE here).
        #[arg(long)]
        to: Option<PathBuf>,
    },
    /// Copy this replica's database to a file, or put such a copy back.
    /// Your key is not in it: keep it with `rapport key export`.
    #[command(
        after_help = "Examples:\n  rapport backup --to ~/backups/replica.redb\n  rapport backup --restore-from ~/backups/replica.redb --force"
    )]
    Backup {
        /// The file to write; it appears only once complete.
        #[arg(
            long,
            required_unless_present = "restore_from",
            conflicts_with = "restore_from"
        )]
        to: Option<PathBuf>,
        /// Put this backup in place as the replica instead.
        #[arg(long, value_name = "FILE")]
        restore_from: Option<PathBuf>,
        /// Replace the replica this home holds.
        #[arg(long, requires = "restore_from")]
        force: bool,
    },
    /// Your notifications: mentions, tasks assigned to you, tasks due today
    /// (unread ones; `--all` for every one).
    #[command(
        after_help = "Examples:\n  rapport inbox\n  rapport inbox --all\n  rapport inbox read            # marks every one read\n  rapport inbox email ann@agency.example\n\nThe relay keeps them for you, and tells you only of records you may see."
    )]
    Inbox {
        #[command(subcommand)]
        command: Option<commands::inbox::InboxCommand>,
        /// Read ones too.
        #[arg(long)]
        all: bool,
    },
    /// Follow the workspace's changes as they reach the relay: which
    /// record, which fields, by whom; only what you may read.
    #[command(
        after_help = "Examples:\n  rapport watch                   # from now on, until Ctrl-C\n  rapport watch --since 0 --once  # everything the relay keeps, then stop\n  rapport watch --since 1234      # resume after an entry's cursor\n  rapport --json watch            # one JSON object per line\n\nEach line ends with its cursor; --since CURSOR resumes after it, across\nrelay restarts. Integrations can read the same feed over HTTP:\nGET /api/workspaces/ID/changes?since=CURSOR (JSON, or server-sent events\nwith Accept: text/event-stream)."
    )]
    Watch {
        /// Start after this cursor (`0`: the oldest the relay keeps; `now`: only new changes).
        #[arg(long, default_value = "now")]
        since: String,
        /// Print what there is, then stop instead of waiting for more.
        #[arg(long)]
        once: bool,
    },
    /// The workspace's audit log (admins).
    #[command(after_help = "Examples:\n  rapport audit\n  rapport audit --member 3xPQ --json")]
    Audit {
        /// Only events about this member (key or prefix).
        #[arg(long)]
        member: Option<String>,
        /// Only events about this document (id or prefix).
        #[arg(long)]
        document: Option<String>,
    },
    /// Intake forms: the relay serves each at a public URL and turns every
    /// submission into a task (admins).
    #[command(subcommand)]
    Form(commands::form::FormCommand),
    /// Rules the relay runs: `when EVENT [if CONDITION] then ACTION`.
    #[command(subcommand)]
    Automation(commands::automation::AutomationCommand),
    /// Pipeline, workload, overdue tasks, customers not contacted lately
    /// and customer satisfaction, from this replica (works offline).
    #[command(after_help = commands::dashboard::EXAMPLES)]
    Dashboard(commands::dashboard::DashboardArgs),
    /// Who changed what and when in a record.
    #[command(after_help = commands::history::HISTORY_EXAMPLES)]
    History(commands::history::HistoryArgs),
    /// Put a field's value as of an earlier change back, as a new change.
    #[command(after_help = commands::history::RESTORE_EXAMPLES)]
    Restore(commands::history::RestoreArgs),
    /// Measure rapport: load a relay (ours or any automerge-repo sync
    /// server) with typing, cold sync, ingest and idle connections, or
    /// measure the replica.
    #[command(subcommand)]
    Bench(commands::bench::BenchCommand),
    /// Run the relay (the same as `rapport-server`).
    #[command(after_help = SERVE_EXAMPLES)]
    Serve(ServeArgs),
    /// Show rapport at work: a relay, a staff replica and a client replica
    /// edit one requirements document offline, sync, and both keep every
    /// edit.
    ///
    /// Everything runs in this process: the relay listens on a free
    /// loopback port and every redb file lives in a temporary folder that
    /// is removed at the end. Nothing to install.
    #[command(after_help = "Example:\n  rapport demo")]
    Demo,
}

const SERVE_EXAMPLES: &str = "Examples:
  rapport serve --listen 0.0.0.0:3030 --data /var/lib/rapport
  rapport serve --data ./relay --open     # no tokens: development only

Clients connect to ws://HOST:PORT/sync with a signed token whose audience is
the relay id (printed at start, and on GET /api/info).";

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("rapport: {e}");
            return ExitCode::FAILURE;
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rapport: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Demo = cli.command {
        return demo::run();
    }
    if let Command::Serve(args) = &cli.command {
        return Ok(args.run()?);
    }
    if let Some(ca) = &cli.ca {
        rapport_client::tls::trust_ca_file(ca)?;
    }
    let ctx = Context::new(cli.home, cli.json)?;
    match cli.command {
        Command::Init { name, import } => {
            commands::identity::init(&ctx, name.as_deref(), import.as_deref())
        }
        Command::Key(command) => commands::identity::run_key(&ctx, command),
        Command::Export { to } => commands::export::run(&ctx, to.as_deref()),
        Command::Backup {
            to,
            restore_from,
            force,
        } => commands::backup::run(&ctx, to.as_deref(), restore_from.as_deref(), force),
        Command::Whoami => commands::identity::whoami(&ctx),
        Command::Workspace(command) => commands::workspace::run_workspace(&ctx, command),
        Command::Invite(command) => commands::workspace::run_invite(&ctx, command),
        Command::Join { link } => commands::workspace::join(&ctx, &link),
        Command::Member(command) => commands::workspace::run_member(&ctx, command),
        Command::Customer(command) => commands::records::run_customer(&ctx, command),
        Command::Task(command) => commands::records::run_task(&ctx, command),
        Command::Doc(command) => commands::records::run_doc(&ctx, command),
        Command::Comment(command) => commands::records::run_comment(&ctx, command),
        Command::Share {
            id,
            with,
            access,
            command,
        } => match (command, id, with, access) {
            (Some(command), ..) => commands::share::run_share(&ctx, command),
            (None, Some(id), Some(with), Some(access)) => {
                commands::share::share(&ctx, &id, &with, access)
            }
            _ => anyhow::bail!("give DOCUMENT --with MEMBER --access LEVEL, or `list` or `remove`"),
        },
        Command::Sync { watch } => commands::sync::run(&ctx, watch),
        Command::Watch { since, once } => commands::watch::run(&ctx, &since, once),
        Command::Inbox { command, all } => commands::inbox::run(&ctx, command, all),
        Command::Audit { member, document } => {
            commands::workspace::audit(&ctx, member.as_deref(), document.as_deref())
        }
        Command::Form(command) => commands::form::run(&ctx, command),
        Command::Automation(command) => commands::automation::run(&ctx, command),
        Command::Dashboard(args) => commands::dashboard::run(&ctx, &args),
        Command::History(args) => commands::history::history(&ctx, &args),
        Command::Restore(args) => commands::history::restore(&ctx, &args),
        Command::Bench(command) => commands::bench::run(&ctx, command),
        Command::Serve(_) | Command::Demo => unreachable!("handled above"),
    }
}

/// The command line; for `rapport serve --config FILE`, with the file's
/// values as the relay flags' defaults (see `rapport_server::config_file`).
fn parse() -> anyhow::Result<Cli> {
    use clap::{CommandFactory as _, FromArgMatches as _};
    use rapport_server::config_file;
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let serving = args.iter().skip(1).any(|a| a == "serve");
    let mut command = Cli::command();
    if serving && let Some(file) = config_file::named_in(&args) {
        let serve = command
            .find_subcommand("serve")
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no serve command"))?;
        let (serve, _) = config_file::apply(serve, &file)?;
        command = command.mut_subcommand("serve", |_| serve);
    }
    let matches = command.get_matches_from(&args);
    Cli::from_arg_matches(&matches).map_err(|e| e.exit())
}
