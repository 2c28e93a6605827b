//! How a relay is set up.

use std::path::PathBuf;
use std::time::Duration;

/// Who may connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Every connection presents a signed token naming its key (the default).
    Token,
    /// No token, anyone reads and writes anything: for development and
    /// benchmarks, behaving like the JS sync server.
    Open,
}

/// Bounds that protect the relay and the other peers from one connection.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The largest WebSocket message accepted, in bytes.
    pub max_frame_bytes: usize,
    /// How many documents one connection may have open.
    pub max_documents_per_connection: usize,
    /// Frames waiting to be written to one connection; a peer that lets
    /// more pile up is too slow and is disconnected.
    pub send_queue_frames: usize,
    /// Bytes waiting to be written to one connection, the same way (one
    /// frame of any size is always let in).
    pub send_queue_bytes: usize,
    /// The largest change accepted once inflated: a compressed change that
    /// would inflate past it is refused before it is inflated in full (a
    /// document chunk is bounded by `max_frame_bytes` the same way).
    pub max_change_bytes: usize,
    /// The largest `ephemeral` message (presence, cursors) forwarded;
    /// larger ones are dropped.
    pub max_ephemeral_bytes: usize,
    /// Ephemeral messages a connection that may only read a document may
    /// send about it per second; more are dropped. Writers are not limited.
    pub reader_ephemeral_per_sec: u32,
    /// Connections one key may have open at once.
    pub max_connections_per_key: usize,
    /// Tokens one key may have used within their lifetime (the relay
    /// remembers each to refuse its replay); more are refused, so that one
    /// key cannot fill the relay's memory of tokens and lock others out.
    pub max_tokens_per_key: usize,
    /// Connections the relay holds at once.
    pub max_connections: usize,
    /// Documents one key may hold outside every workspace (written, not
    /// yet listed); past it, a new one is refused with `quota-exceeded`.
    pub max_unlisted_per_key: usize,
    /// Documents one workspace may list; past it, adding one (by a person,
    /// a form or an automation) is refused, saying so.
    pub max_documents_per_workspace: usize,
    /// Bytes one workspace's documents may take in the database; writes
    /// to a workspace past it are refused. 0: no limit.
    pub max_workspace_bytes: u64,
    /// A connection with no traffic (not even a pong) for this long is closed.
    pub idle_timeout: Duration,
    /// How often the relay pings each connection.
    pub ping_interval: Duration,
    /// How long a document nobody has open stays in memory.
    pub unload_idle_documents_after: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_bytes: 64 * 1024 * 1024,
            max_documents_per_connection: 100_000,
            send_queue_frames: 4_096,
            send_queue_bytes: 64 * 1024 * 1024,
            max_change_bytes: 8 * 1024 * 1024,
            max_ephemeral_bytes: 64 * 1024,
            reader_ephemeral_per_sec: 20,
            max_connections_per_key: 64,
            max_tokens_per_key: rapport_protocol::token::DEFAULT_REPLAY_SHARE,
            max_connections: 100_000,
            max_unlisted_per_key: 10_000,
            max_documents_per_workspace: 100_000,
            max_workspace_bytes: 0,
            idle_timeout: Duration::from_secs(60),
            ping_interval: Duration::from_secs(20),
            unload_idle_documents_after: Duration::from_secs(60),
        }
    }
}

/// Everything a relay needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// The folder holding `relay.redb`.
    pub data_dir: PathBuf,
    pub auth: AuthMode,
    pub limits: Limits,
    /// A document's stored changes are folded into its snapshot once there
    /// are this many, or a quarter of the document's changes if that is
    /// more (each compaction loads and saves the whole document).
    pub compact_after_changes: usize,
    /// Keys allowed to create workspaces; `None` lets every key.
    pub workspace_creators: Option<Vec<rapport_protocol::ids::PublicKey>>,
    /// What `relay.redb` lives on: a plain file unless an embedder says
    /// otherwise.
    pub storage: crate::storage::Backend,
    /// Hosts (`host` or `host:port`) webhooks may go to although they
    /// resolve to a loopback, private or otherwise non-public address.
    pub webhook_allow: Vec<String>,
    /// Bounds on public form submissions.
    pub forms: FormLimits,
    /// Serve TLS with this certificate and key; plain HTTP without.
    pub tls: Option<crate::tls::TlsFiles>,
    /// The address people reach the relay at (`https://relay.example`,
    /// behind a proxy say): every link the relay makes, and `/api/info`,
    /// name it. Without it, the address listened on.
    pub public_url: Option<String>,
    /// E-mail notifications to members who give an address, through this
    /// SMTP server; none without it.
    pub smtp: Option<SmtpSettings>,
    /// NATS servers (`nats://host:port`) of the cluster this relay serves
    /// as one with others; empty for a relay on its own.
    pub cluster: Vec<String>,
    /// Whether this relay, in a cluster, takes the automations' events.
    pub cluster_automations: bool,
    /// Copies JetStream keeps of the cluster's stream and buckets (3 on a
    /// NATS cluster of three; 1 on one server).
    pub cluster_replicas: usize,
}

/// The SMTP server notifications go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    /// `smtp://host:port` (plain, or `?tls=required` for STARTTLS) or
    /// `smtps://host:port`, with `user:password@` if the server wants them.
    pub url: String,
    /// The sender, such as `rapport <relay@agency.example>`.
    pub from: String,
}

/// Whether `url` can be a relay's public address: `http://` or
/// `https://`, a host, no query or fragment.
pub(crate) fn is_public_url(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return false;
    };
    let host = rest.split('/').next().unwrap_or_default();
    !host.is_empty()
        && !rest.contains(['?', '#', ' '])
        && !host.starts_with(':')
        && !url.ends_with('/')
}

/// The default of [`Config::compact_after_changes`].
pub const COMPACT_AFTER_CHANGES: usize = 1_000;

impl Config {
    /// A relay storing its data in `data_dir`, with tokens and default limits.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            auth: AuthMode::Token,
            limits: Limits::default(),
            compact_after_changes: COMPACT_AFTER_CHANGES,
            workspace_creators: None,
            storage: crate::storage::Backend::file(),
            webhook_allow: Vec::new(),
            cluster: Vec::new(),
            cluster_automations: true,
            cluster_replicas: 1,
            forms: FormLimits::default(),
            tls: None,
            public_url: None,
            smtp: None,
        }
    }
}

/// Bounds on public form submissions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormLimits {
    /// The largest body accepted (413 above it).
    pub max_body_bytes: usize,
    /// Submissions one address may send at once.
    pub burst: u32,
    /// After the burst, one more submission per address per this long.
    pub refill_every: Duration,
}

impl Default for FormLimits {
    /// 64 KiB bodies; 10 submissions a minute per address, 5 at once.
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            burst: 5,
            refill_every: Duration::from_secs(6),
        }
    }
}
