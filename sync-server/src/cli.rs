//! The relay's command line, shared by `rapport-server` and `rapport serve`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::{AuthMode, Config, FormLimits, Limits, ServerError};

/// How the relay writes its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The relay's flags.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Read flags from this TOML file (keys are the flags' names, such as
    /// `listen` or `max-frame-bytes`). A flag given here or in its
    /// environment variable wins over the file.
    #[arg(long, env = "RAPPORT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address to listen on.
    #[arg(long, env = "RAPPORT_LISTEN", default_value = "127.0.0.1:3030")]
    pub listen: SocketAddr,
    /// Folder for the relay's data (one redb file, created if missing).
    #[arg(long, env = "RAPPORT_DATA")]
    pub data: PathBuf,
    /// No tokens: anyone may read and write every document, as with the JS
    /// sync server. For development and benchmarks only.
    #[arg(long)]
    pub open: bool,
    /// Largest WebSocket message accepted, in bytes.
    #[arg(long, default_value_t = Limits::default().max_frame_bytes)]
    pub max_frame_bytes: usize,
    /// Most documents one connection may have open.
    #[arg(long, default_value_t = Limits::default().max_documents_per_connection)]
    pub max_documents_per_connection: usize,
    /// Frames queued for one connection before it counts as too slow and is cut off.
    #[arg(long, default_value_t = Limits::default().send_queue_frames)]
    pub send_queue_frames: usize,
    /// Seconds without any traffic before a connection is closed.
    #[arg(long, default_value_t = Limits::default().idle_timeout.as_secs())]
    pub idle_timeout_secs: u64,
    /// Fold a document's stored changes into its snapshot once this many
    /// have accumulated (or a quarter of the document's changes, if more).
    #[arg(long, default_value_t = crate::COMPACT_AFTER_CHANGES)]
    pub compact_after_changes: usize,
    /// Only these keys (base58, repeatable) may create workspaces; by
    /// default every key may.
    #[arg(long = "workspace-creator", value_name = "KEY")]
    pub workspace_creators: Vec<rapport_protocol::ids::PublicKey>,
    /// Seconds between pings to each connection.
    #[arg(long, default_value_t = Limits::default().ping_interval.as_secs())]
    pub ping_interval_secs: u64,
    /// Bytes queued for one connection before it counts as too slow and is cut off.
    #[arg(long, default_value_t = Limits::default().send_queue_bytes)]
    pub send_queue_bytes: usize,
    /// The largest change accepted once inflated, in bytes (a document chunk may inflate to --max-frame-bytes).
    #[arg(long, default_value_t = Limits::default().max_change_bytes)]
    pub max_change_bytes: usize,
    /// The largest ephemeral (presence) message forwarded, in bytes.
    #[arg(long, default_value_t = Limits::default().max_ephemeral_bytes)]
    pub max_ephemeral_bytes: usize,
    /// Ephemeral messages per second a read-only member may send about a document.
    #[arg(long, default_value_t = Limits::default().reader_ephemeral_per_sec)]
    pub reader_ephemeral_per_sec: u32,
    /// Connections one key may have open at once.
    #[arg(long, default_value_t = Limits::default().max_connections_per_key)]
    pub max_connections_per_key: usize,
    /// Tokens one key may present within five minutes (each remembered to refuse its replay).
    #[arg(long, default_value_t = Limits::default().max_tokens_per_key)]
    pub max_tokens_per_key: usize,
    /// A host (`host` or `host:port`, repeatable) webhooks may go to
    /// although it resolves to a loopback, private or other non-public
    /// address; by default only public addresses are.
    #[arg(long = "webhook-allow", value_name = "HOST")]
    pub webhook_allow: Vec<String>,
    /// Serve as one with the other relays on these NATS servers (JetStream
    /// on; `nats://host:port`, comma-separated or repeated): every change is
    /// acknowledged once the cluster's stream holds it, and changes accepted
    /// by any relay reach the peers of all (docs/cluster.md). Off by default.
    #[arg(long, value_name = "URL", value_delimiter = ',')]
    pub cluster: Vec<String>,
    /// In a cluster, leave the automations' events to the other relays
    /// (each event runs once, on whichever relay takes it; a relay that
    /// takes none keeps its CPU for its peers).
    #[arg(long)]
    pub no_cluster_automations: bool,
    /// Copies NATS keeps of the cluster's changes and shared workspaces:
    /// 3 on a NATS cluster of three servers (one may die and nothing is
    /// lost; needs nats-server 2.9.21 or later), 1 on one server. Set when
    /// the first relay starts the cluster.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=5))]
    pub cluster_replicas: u64,
    /// Connections the relay holds at once.
    #[arg(long, default_value_t = Limits::default().max_connections)]
    pub max_connections: usize,
    /// Documents one key may hold outside every workspace (written, not yet listed).
    #[arg(long, default_value_t = Limits::default().max_unlisted_per_key)]
    pub max_unlisted_per_key: usize,

    /// Documents one workspace may list (a person's, a form's or an
    /// automation's addition past it is refused).
    #[arg(long, default_value_t = Limits::default().max_documents_per_workspace)]
    pub max_documents_per_workspace: usize,

    /// Seconds a document nobody has open stays in memory before it leaves
    /// (it is read from storage again on the next request).
    #[arg(long, default_value_t = Limits::default().unload_idle_documents_after.as_secs())]
    pub unload_idle_after_secs: u64,

    /// Bytes one workspace's documents may take in the database (0: no
    /// limit); changes to a workspace past it are refused with
    /// `workspace-full` until its operator raises it or documents go.
    #[arg(long, default_value_t = Limits::default().max_workspace_bytes)]
    pub max_workspace_bytes: u64,

    /// Serve TLS with this certificate chain (PEM; the server's certificate
    /// first). Read again on SIGHUP. Needs --tls-key.
    #[arg(
        long,
        env = "RAPPORT_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM).
    #[arg(
        long,
        env = "RAPPORT_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// How log lines are written to stderr: `text` for people, `json` (one
    /// object per line, with the request or connection id) for log shippers.
    #[arg(long, env = "RAPPORT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// The address people reach the relay at, such as
    /// https://relay.example: links and /api/info name it. Set it whenever
    /// the relay is behind a proxy or listens on a public address.
    #[arg(long, env = "RAPPORT_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,

    /// E-mail notifications (mentions, assignments, tasks due today) to
    /// members who give an address, through this SMTP server:
    /// smtp://host:25, smtp://user:pass@host:587?tls=required or
    /// smtps://user:pass@host:465. Needs --smtp-from.
    #[arg(
        long,
        env = "RAPPORT_SMTP_URL",
        value_name = "URL",
        requires = "smtp_from"
    )]
    pub smtp_url: Option<String>,

    /// The sender of notification e-mails, such as
    /// "rapport <relay@agency.example>".
    #[arg(
        long,
        env = "RAPPORT_SMTP_FROM",
        value_name = "ADDRESS",
        requires = "smtp_url"
    )]
    pub smtp_from: Option<String>,
}

impl ServeArgs {
    /// The relay configuration these arguments describe.
    pub fn config(&self) -> Config {
        Config {
            data_dir: self.data.clone(),
            auth: if self.open {
                AuthMode::Open
            } else {
                AuthMode::Token
            },
            limits: Limits {
                max_frame_bytes: self.max_frame_bytes,
                max_documents_per_connection: self.max_documents_per_connection,
                send_queue_frames: self.send_queue_frames.max(1),
                idle_timeout: Duration::from_secs(self.idle_timeout_secs.max(1)),
                ping_interval: Duration::from_secs(self.ping_interval_secs.max(1)),
                send_queue_bytes: self.send_queue_bytes.max(1),
                max_change_bytes: self.max_change_bytes,
                max_ephemeral_bytes: self.max_ephemeral_bytes,
                reader_ephemeral_per_sec: self.reader_ephemeral_per_sec,
                max_connections_per_key: self.max_connections_per_key.max(1),
                max_connections: self.max_connections.max(1),
                max_tokens_per_key: self.max_tokens_per_key.max(1),
                max_unlisted_per_key: self.max_unlisted_per_key,
                max_documents_per_workspace: self.max_documents_per_workspace,
                max_workspace_bytes: self.max_workspace_bytes,
                unload_idle_documents_after: Duration::from_secs(
                    self.unload_idle_after_secs.max(1),
                ),
            },
            compact_after_changes: self.compact_after_changes.max(1),
            workspace_creators: (!self.workspace_creators.is_empty())
                .then(|| self.workspace_creators.clone()),
            storage: crate::storage::Backend::file(),
            webhook_allow: self.webhook_allow.clone(),
            cluster: self.cluster.clone(),
            cluster_automations: !self.no_cluster_automations,
            cluster_replicas: self.cluster_replicas as usize,
            forms: FormLimits::default(),
            tls: match (&self.tls_cert, &self.tls_key) {
                (Some(cert), Some(key)) => Some(crate::tls::TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                }),
                _ => None,
            },
            public_url: self
                .public_url
                .as_ref()
                .map(|url| url.trim_end_matches('/').to_owned()),
            smtp: match (&self.smtp_url, &self.smtp_from) {
                (Some(url), Some(from)) => Some(crate::config::SmtpSettings {
                    url: url.clone(),
                    from: from.clone(),
                }),
                _ => None,
            },
        }
    }

    /// Runs the relay until SIGINT or SIGTERM, logging to stderr
    /// (`RUST_LOG` filters, default `info`; automerge's own logs only at
    /// `warn` unless `RUST_LOG` names them).
    pub fn run(&self) -> Result<(), ServerError> {
        init_logging(self.log_format);
        crate::memory::purge_freed_pages_at_once();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .on_thread_park(crate::memory::collect_if_asked)
            .build()?;
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind(self.listen).await?;
            crate::serve(listener, self.config(), shutdown_signal()).await
        })
    }
}

fn init_logging(format: LogFormat) {
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // automerge's own spans format a document's whole change graph at
    // `info`, which cost the relay half its CPU; ask for them by name.
    if !std::env::var("RUST_LOG").is_ok_and(|asked| asked.contains("automerge")) {
        filter = filter.add_directive("automerge=warn".parse().expect("a valid directive"));
    }
    // A log that cannot be written (stderr a closed pipe) is dropped: the
    // subscriber must not report it on stderr, which panics there.
    let log = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .log_internal_errors(false);
    let _ = match format {
        LogFormat::Text => log.try_init(),
        // Each line one JSON object: the event's fields, and the spans it
        // is in (the HTTP call's request id, the socket's connection id).
        LogFormat::Json => log
            .json()
            .with_current_span(false)
            .with_span_list(true)
            .try_init(),
    };
}

/// Completes on SIGINT or SIGTERM. The handlers are installed when this is
/// called (inside the runtime), not when the future is first polled, so a
/// signal that comes while the relay is starting is not lost to the
/// default action.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (interrupt, terminate) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |signal: Option<tokio::signal::unix::Signal>| async move {
                match signal {
                    Some(mut signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(interrupt) => {}
                () = wait(terminate) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutting down");
    }
}
