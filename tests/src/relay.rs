//! A relay on 127.0.0.1:0 in the test's own runtime, on a data folder that
//! outlives restarts, and [`share`]: a workspace through which several keys
//! share documents, made over the HTTP API as people make one.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use ed25519_dalek::SigningKey;
use rapport_client::RelayConfig;
use rapport_client::api::{InviteRequest, Level, RelayApi, Role};
use rapport_client::identity::Identity;
use rapport_protocol::ids::DocumentId;
use rapport_server::{AuthMode, Config, FormLimits, Limits, Server};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A folder under the system's temp dir, removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("rapport-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running relay.
#[derive(Debug)]
pub struct TestRelay {
    pub addr: SocketAddr,
    pub relay_id: String,
    config: Config,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), rapport_server::ServerError>>>,
}

impl TestRelay {
    /// Starts a relay with tokens required.
    pub async fn start(data: &Path) -> Result<Self> {
        Self::start_with(data, AuthMode::Token, Limits::default()).await
    }

    pub async fn start_with(data: &Path, auth: AuthMode, limits: Limits) -> Result<Self> {
        let mut config = Config::new(data);
        config.auth = auth;
        config.limits = limits;
        Self::start_config(config).await
    }

    /// Starts a relay with tokens required and intake forms under `forms`.
    pub async fn start_with_forms(data: &Path, forms: FormLimits) -> Result<Self> {
        Self::start_config(Config {
            forms,
            ..Config::new(data)
        })
        .await
    }

    /// Starts a relay on a full configuration.
    pub async fn start_config(config: Config) -> Result<Self> {
        Self::start_on(config, "127.0.0.1:0".parse()?).await
    }

    /// Stops and starts again on the same data folder and the same port,
    /// as an operator restarting the relay does.
    pub async fn restart_in_place(&mut self) -> Result<()> {
        let addr = self.addr;
        self.stop().await?;
        *self = Self::start_on(self.config.clone(), addr).await?;
        Ok(())
    }

    async fn start_on(config: Config, addr: SocketAddr) -> Result<Self> {
        let server = Server::open(config.clone())?;
        let relay_id = server.relay_id().to_owned();
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(listener, async move {
            let _ = stopped.await;
        }));
        Ok(Self {
            addr,
            relay_id,
            config,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The folder holding the relay's database.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.config.data_dir
    }

    /// The WebSocket URL, without a token.
    pub fn url(&self) -> String {
        format!("ws://{}/sync", self.addr)
    }

    /// Where and as whom clients reach this relay.
    pub fn client_config(&self) -> RelayConfig {
        RelayConfig {
            url: self.url(),
            audience: Some(self.relay_id.clone()),
        }
    }

    /// Stops gracefully and waits until the relay has finished.
    pub async fn stop(&mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.context("the relay task panicked")??;
        }
        Ok(())
    }

    /// Stops and starts again on the same data folder (a new port).
    pub async fn restart(&mut self) -> Result<()> {
        self.stop().await?;
        *self = Self::start_config(self.config.clone()).await?;
        Ok(())
    }

    /// Shares `documents` between `owner` and `members` as people must on a
    /// relay with tokens ([`share`]); returns the new workspace's id. Runs
    /// the blocking API calls on a blocking thread, so any runtime flavour
    /// will do.
    pub async fn share(
        &self,
        owner: &SigningKey,
        members: &[&SigningKey],
        documents: &[DocumentId],
    ) -> Result<String> {
        let (url, relay_id) = (self.url(), self.relay_id.clone());
        let owner = owner.clone();
        let members: Vec<SigningKey> = members.iter().map(|&key| key.clone()).collect();
        let documents = documents.to_vec();
        tokio::task::spawn_blocking(move || {
            let members: Vec<&SigningKey> = members.iter().collect();
            share(&url, &relay_id, &owner, &members, &documents)
        })
        .await
        .context("sharing panicked")?
    }

    /// `GET path`, returning the status code and body.
    pub async fn get(&self, path: &str) -> Result<(u16, String)> {
        http_get(self.addr, path).await
    }

    /// One value of the relay's `/metrics`.
    pub async fn metric(&self, name: &str) -> Result<u64> {
        metric_at(self.addr, name).await
    }

    /// Waits until the relay has `connections` open and `documents` in
    /// memory.
    pub async fn gauges_reach(&self, connections: u64, documents: u64) -> Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let open = self.metric("rapport_connections").await?;
            let loaded = self.metric("rapport_documents_loaded").await?;
            if (open, loaded) == (connections, documents) {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "gauges stuck at {open} connections (want {connections}), {loaded} documents (want {documents})"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Shares `documents` between `owner` and `members` on the relay at `url`
/// (its `/sync` address) whose id is `relay_id`, over the HTTP API as
/// people do: `owner` creates a workspace, every member redeems one
/// multi-use staff invite, and `owner` lists the documents, so that each of
/// them may read and write every document listed. Returns the workspace's
/// id.
///
/// On a relay with tokens a document no workspace lists belongs to the key
/// that first wrote it, and only documents written by the workspace's
/// members (and `owner`) may be listed: list a document before anyone else
/// writes it, or once only these keys have.
///
/// Blocking: from async code call [`TestRelay::share`], or this inside
/// `block_in_place` or `spawn_blocking`.
pub fn share(
    url: &str,
    relay_id: &str,
    owner: &SigningKey,
    members: &[&SigningKey],
    documents: &[DocumentId],
) -> Result<String> {
    let config = RelayConfig {
        url: url.to_owned(),
        audience: Some(relay_id.to_owned()),
    };
    let api = |key: &SigningKey| RelayApi::new(&config, Identity::in_memory(key.clone()));
    let owner_api = api(owner)?;
    let workspace = owner_api.create_workspace("Shared in a test")?;
    let mut joining: Vec<&SigningKey> = Vec::new();
    for &member in members {
        let key = member.verifying_key();
        let seen = joining.iter().any(|k| k.verifying_key() == key);
        if key != owner.verifying_key() && !seen {
            joining.push(member);
        }
    }
    if !joining.is_empty() {
        let invite =
            owner_api.create_invite(&workspace, &staff_invite(u32::try_from(joining.len())?))?;
        for member in joining {
            let role = api(member)?.redeem(&invite)?;
            ensure!(role == Role::Staff, "joined as {role:?}");
        }
    }
    // Listed once everyone has joined: a document the members wrote
    // together may be listed too.
    let listed: Vec<(DocumentId, Option<DocumentId>)> =
        documents.iter().map(|&id| (id, None)).collect();
    owner_api
        .add_documents(&workspace, &listed)
        .with_context(|| format!("listing {documents:?}"))?;
    Ok(workspace)
}

/// One value of `/metrics` of the relay listening on `addr`.
pub async fn metric_at(addr: SocketAddr, name: &str) -> Result<u64> {
    let (status, body) = http_get(addr, "/metrics").await?;
    ensure!(status == 200, "/metrics answered {status}");
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .with_context(|| format!("{name} missing from /metrics"))
}

/// A minimal HTTP/1.1 GET, enough for the relay's plain endpoints.
pub async fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .context("no status line")?
        .parse()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A one-use invite for a client to `document` at `level`, valid ten
/// minutes.
pub fn client_invite(document: DocumentId, level: Level) -> InviteRequest {
    InviteRequest {
        role: Role::Client,
        documents: vec![(document, level)],
        level: None,
        expires_in_secs: 600,
        uses: 1,
    }
}

/// An invite for `uses` staff members, valid for an hour.
pub fn staff_invite(uses: u32) -> InviteRequest {
    InviteRequest {
        role: Role::Staff,
        documents: Vec::new(),
        level: None,
        expires_in_secs: 3600,
        uses,
    }
}
