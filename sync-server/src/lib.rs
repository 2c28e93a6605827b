//! rapport's relay: a self-hosted WebSocket sync server on redb.
//!
//! Peers connect to `/sync` with a signed token (or without one in
//! `--open` mode), speak the automerge-repo protocol "1", and every change
//! one of them sends reaches every other peer that has the document open,
//! after it is durable in the relay's redb file. The relay never
//! materializes documents on this path: it answers from each document's
//! change graph (see `rapport_protocol::relay`), so a keystroke costs the
//! same on a long history as on a short one.
//!
//! ```no_run
//! # async fn run() -> Result<(), rapport_server::ServerError> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3030").await?;
//! let config = rapport_server::Config::new("./relay-data");
//! rapport_server::serve(listener, config, async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await
//! # }
//! ```
//!
//! Endpoints: `GET /healthz` (200 `ok`, or 503 saying what is wrong),
//! `GET /readyz` (for load balancers), `GET /metrics` (Prometheus text),
//! `GET /api/info` (JSON: `relay_id`, the token audience; `version`;
//! `protocol`), and `/sync`, the WebSocket. A missing or bad token is
//! answered `401` before any WebSocket exists. The workspace API lives under
//! `/api/workspaces`; intake forms are served to anyone at `/forms/{id}`
//! (see the `forms` module and [`FormLimits`]).

mod access;
mod actors;
pub mod automations;
mod background;
pub mod cli;
mod cluster;
mod config;
pub mod config_file;
mod connection;
pub mod control;
mod feed;
mod forms;
mod http;
pub mod import;
pub mod memory;
mod metrics;
mod notify;
mod outbox;
mod relay;
mod routes;
mod state;
pub mod storage;
pub mod tls;
mod tokens;
mod transport;
mod web;
mod window;
pub mod workspace;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use access::{Access, Identity};
pub use config::{AuthMode, COMPACT_AFTER_CHANGES, Config, FormLimits, Limits, SmtpSettings};
pub use notify::MailError;
use tracing::{info, warn};

/// Why the relay could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    #[error(transparent)]
    Storage(#[from] storage::StoreError),
    #[error(transparent)]
    Workspace(#[from] workspace::WorkspaceError),
    #[error("network error: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(
        "--public-url {0}: give the address people reach the relay at, such as https://relay.example"
    )]
    PublicUrl(String),
    #[error(transparent)]
    Mail(#[from] notify::MailError),
    #[error(transparent)]
    Cluster(#[from] cluster::ClusterError),
}

/// A relay opened on its data folder, ready to serve.
#[derive(Debug)]
pub struct Server {
    relay: Arc<relay::Relay>,
    forms: forms::Forms,
    /// The certificate, when the relay serves TLS itself.
    certified: Option<Arc<tls::Certified>>,
    /// The SMTP server notifications are e-mailed through, if any.
    mailer: Option<notify::Mailer>,
    /// The control socket (`rapport-server backup` while serving).
    #[cfg(unix)]
    control: Option<std::os::unix::net::UnixListener>,
    #[cfg(not(unix))]
    control: Option<()>,
}

impl Server {
    /// Opens the relay's storage.
    pub fn open(config: Config) -> Result<Self, ServerError> {
        if let Some(url) = &config.public_url
            && !config::is_public_url(url)
        {
            return Err(ServerError::PublicUrl(url.clone()));
        }
        // A certificate that cannot be served fails the start, not the
        // first client.
        let certified = match &config.tls {
            Some(files) => Some(Arc::new(tls::Certified::load(files)?)),
            None => None,
        };
        let mailer = config.smtp.as_ref().map(notify::Mailer::new).transpose()?;
        let form_limits = config.forms.clone();
        // In a cluster the relays agree on one id, the audience of every
        // token, so that a token is good on each of them, and on one key
        // of their own.
        let shared = if config.cluster.is_empty() {
            None
        } else {
            let node = {
                let store = storage::Store::open_on(&config.data_dir, config.storage.clone())?;
                relay::node_id(&store)?
            };
            Some(cluster::shared::agree(
                &config.cluster,
                &node,
                config.cluster_replicas,
            )?)
        };
        let relay = Arc::new(relay::Relay::open(config, shared)?);
        automations::adopt_rules_documents(&relay)?;
        let forms = forms::Forms::load(relay.store(), form_limits)?;
        let control = control::bind(&relay);
        Ok(Self {
            relay,
            forms,
            certified,
            mailer,
            control,
        })
    }

    /// The relay's id: the audience its tokens must name.
    pub fn relay_id(&self) -> &str {
        &self.relay.relay_id
    }

    /// Serves on `listener` until `shutdown` completes, then stops
    /// accepting, closes every connection with a close frame, waits for the
    /// connection tasks (and with them every pending write) and returns.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let relay = self.relay;
        if relay.config.auth == AuthMode::Open {
            warn!("open mode: no tokens, anyone may read and write every document");
        }
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let tracker = state::ConnTracker::new();
        let forms = Arc::new(self.forms);
        let state = state::AppState {
            relay: Arc::clone(&relay),
            forms: Arc::clone(&forms),
            shutdown: stop_rx.clone(),
            tracker: tracker.clone(),
            storage_checked: Arc::default(),
        };
        let follower = if relay.config.cluster.is_empty() {
            None
        } else {
            let (joined, mut due) = cluster::Cluster::join(
                &relay.config.cluster,
                &relay.node_id,
                relay.config.cluster_replicas,
            )
            .await?;
            let joined = Arc::new(joined);
            let _ = relay.cluster.set(Arc::clone(&joined));
            let compactor = Arc::clone(&relay);
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                loop {
                    let document = tokio::select! {
                        next = due.recv() => next,
                        _ = stop.changed() => None,
                    };
                    let Some((document, attempt)) = document else {
                        return;
                    };
                    compactor.compact_in_cluster(document, attempt).await;
                }
            });
            share_workspaces(&relay, &forms, stop_rx.clone()).await?;
            let presence = Arc::clone(&relay);
            tokio::spawn(cluster::presence::follow(
                Arc::clone(&joined),
                stop_rx.clone(),
                move |message, author| {
                    let relay = Arc::clone(&presence);
                    async move { relay.forward_ephemeral_from_cluster(message, author).await }
                },
            ));
            let taker = Arc::clone(&relay);
            Some(tokio::spawn(cluster::follow(
                joined,
                stop_rx.clone(),
                move |document, taken: cluster::Taken| {
                    let relay = Arc::clone(&taker);
                    async move {
                        relay
                            .take_from_cluster(document, taken)
                            .await
                            .map_err(|e| e.to_string())
                    }
                },
            )))
        };
        let sweeper = tokio::spawn(sweep(Arc::clone(&relay), stop_rx.clone()));
        let control = tokio::spawn(control::serve(
            Arc::clone(&relay),
            self.control,
            stop_rx.clone(),
        ));
        let packer = tokio::spawn({
            let relay = Arc::clone(&relay);
            let stop = stop_rx.clone();
            async move { relay.pack_idle_documents(stop).await }
        });
        let owed_heads = tokio::spawn({
            let relay = Arc::clone(&relay);
            let stop = stop_rx.clone();
            async move { relay.answer_owed_heads(stop).await }
        });
        // Links (in automations' comments, `/api/info`) name the public
        // address when there is one, else the one listened on.
        let local = listener.local_addr()?;
        let base_url = match &relay.config.public_url {
            Some(url) => url.clone(),
            None => {
                if !local.ip().is_loopback() {
                    warn!(addr = %local, "no --public-url: links will name the address listened on, which people elsewhere may not reach");
                }
                let scheme = if self.certified.is_some() {
                    "https"
                } else {
                    "http"
                };
                format!("{scheme}://{local}")
            }
        };
        // Running from now, as `/healthz` sees it; the engine clears this
        // when it stops.
        relay
            .automations
            .running
            .store(true, std::sync::atomic::Ordering::Release);
        let notifier = tokio::spawn(notify::run(
            Arc::clone(&relay),
            self.mailer,
            base_url.clone(),
            stop_rx.clone(),
        ));
        let events = match relay.cluster.get() {
            Some(cluster) if relay.config.cluster_automations => {
                Some(tokio::spawn(automations::events::run(
                    Arc::clone(&relay),
                    Arc::clone(cluster),
                    Arc::clone(&forms),
                    base_url.clone(),
                    stop_rx.clone(),
                )))
            }
            _ => None,
        };
        let automations = tokio::spawn(automations::run(
            Arc::clone(&relay),
            forms,
            base_url,
            stop_rx.clone(),
        ));
        info!(addr = %listener.local_addr()?, relay_id = %relay.relay_id, data = %relay.store().path().display(), "rapport-server listening");
        let mut graceful = stop_rx.clone();
        let graceful = async move {
            let _ = graceful.wait_for(|stop| *stop).await;
        };
        let app = routes::router(state);
        // Form submissions are rate-limited per client address.
        let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        let signal = tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        let served = match self.certified {
            Some(certified) => {
                tokio::spawn(tls::reload_on_hangup(
                    Arc::clone(&certified),
                    stop_rx.clone(),
                ));
                let listener = tls::TlsListener::new(listener, certified)?;
                // axum gives a tapped listener's address to handlers
                // (form submissions are rate-limited by it).
                let listener = axum::serve::ListenerExt::tap_io(listener, |_| {});
                axum::serve(listener, app)
                    .with_graceful_shutdown(graceful)
                    .await
            }
            None => {
                // Small frames must not wait for Nagle's algorithm: sync
                // is a conversation of small messages.
                let listener = axum::serve::ListenerExt::tap_io(
                    listener,
                    |stream: &mut tokio::net::TcpStream| {
                        if let Err(e) = stream.set_nodelay(true) {
                            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
                        }
                    },
                );
                axum::serve(listener, app)
                    .with_graceful_shutdown(graceful)
                    .await
            }
        };
        signal.abort();
        if tokio::time::timeout(Duration::from_secs(10), tracker.wait_idle())
            .await
            .is_err()
        {
            warn!("connections still open after 10 s; stopping anyway");
        }
        sweeper.abort();
        let _ = sweeper.await;
        if let Some(follower) = follower {
            let _ = follower.await;
        }
        if let Some(events) = events {
            let _ = events.await;
        }
        let _ = control.await;
        let _ = packer.await;
        let _ = owed_heads.await;
        // The engine finishes the step under way, and stops.
        let _ = automations.await;
        let _ = notifier.await;
        relay.finish_background().await;
        // Connection tasks may hold the relay a moment longer; the database
        // closes with the last holder, and the caller may reopen it at once.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let waiting = tokio::time::Instant::now();
        while Arc::strong_count(&relay) > 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tracing::debug!(waited = ?waiting.elapsed(), holders = Arc::strong_count(&relay), "relay released");
        info!("rapport-server stopped");
        served.map_err(ServerError::Io)
    }
}

/// Opens a relay on `config` and serves on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    Server::open(config)?.serve(listener, shutdown).await
}

/// Joins the workspaces every relay of the cluster shares: this relay's
/// changes go to the shared bucket before they are stored here, and what
/// the others write comes into its copy. Returns once the copy holds every
/// workspace written before.
async fn share_workspaces(
    relay: &Arc<relay::Relay>,
    forms: &Arc<forms::Forms>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), ServerError> {
    let (control, mut watched) = cluster::control::Control::start(
        relay.config.cluster.clone(),
        relay.node_id.clone(),
        relay.config.cluster_replicas,
    )?;
    relay::lock(&relay.workspaces).replicate_through(control.clone());
    let _ = relay.control.set(Arc::clone(&control));
    let (caught_up, mut ready) = tokio::sync::watch::channel(false);
    let taker = Arc::clone(relay);
    let forms = Arc::clone(forms);
    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                next = watched.recv() => next,
                _ = stop.changed() => None,
            };
            let Some(next) = next else {
                return;
            };
            match next {
                cluster::control::Watched::Entry(entry) => {
                    if matches!(
                        cluster::control::Key::parse(&entry.key),
                        Some(cluster::control::Key::Form(_))
                    ) {
                        let key = entry.key.clone();
                        if let Err(e) = forms.take_remote(taker.store(), &control, entry) {
                            warn!(%key, error = %e, "cannot take a form from the cluster");
                        }
                    } else {
                        taker.take_control(&control, entry).await;
                    }
                }
                cluster::control::Watched::CaughtUp => {
                    let _ = caught_up.send(true);
                }
            }
        }
    });
    if tokio::time::timeout(Duration::from_secs(30), ready.wait_for(|up| *up))
        .await
        .is_err()
    {
        warn!("the shared workspaces are not all here after 30 s; serving with what is");
    }
    Ok(())
}

async fn sweep(relay: Arc<relay::Relay>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let every = relay
        .config
        .limits
        .unload_idle_documents_after
        .max(Duration::from_millis(100))
        / 2;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {
                relay.unload_idle_documents();
                relay.vacuum_if_due().await;
            }
            _ = stop.changed() => return,
        }
    }
}
