//! The relay's HTTP surface: `/sync` (the WebSocket), `/healthz`,
//! `/metrics` and `/api/info`, with the workspace API and forms merged in.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::FutureExt as _;
use serde::Deserialize;
use tokio::sync::watch;
use tracing::info;

use crate::config::AuthMode;
use crate::connection;
use crate::metrics::Metrics;
use crate::relay::{AuthRefusal, Relay};
use crate::transport;

#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) relay: Arc<Relay>,
    pub(crate) forms: Arc<crate::forms::Forms>,
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) tracker: ConnTracker,
}

/// Counts live connection tasks so that shutdown can wait for them.
#[derive(Clone, Debug)]
pub(crate) struct ConnTracker(Arc<tokio::sync::Semaphore>);

impl ConnTracker {
    const MAX: u32 = 1 << 24;

    pub(crate) fn new() -> Self {
        Self(Arc::new(tokio::sync::Semaphore::new(Self::MAX as usize)))
    }

    fn enter(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        Arc::clone(&self.0).try_acquire_owned().ok()
    }

    /// Waits until every connection task has ended.
    pub(crate) async fn wait_idle(&self) {
        let _ = self.0.acquire_many(Self::MAX).await;
    }
}

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/sync", get(sync))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/api/info", get(info))
        .merge(crate::workspace::routes())
        .merge(crate::forms::routes())
        .route(
            "/api/workspaces/{ws}/automations",
            get(crate::automations::api::show),
        )
        .with_state(state)
}

#[derive(Debug, Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// Each connection's WebSocket read buffer.
const READ_BUFFER_BYTES: usize = 2 * 1024;

async fn sync(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let identity = match state.relay.authenticate(bearer.or(query.token.as_deref())) {
        Ok(identity) => identity,
        Err(refusal) => return refusal.into_response_with(&state.relay.metrics),
    };
    let Some(permit) = state.tracker.enter() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "too many connections\n").into_response();
    };
    let limit = state.relay.config.limits.max_frame_bytes;
    let relay = Arc::clone(&state.relay);
    let shutdown = state.shutdown.clone();
    upgrade
        .max_message_size(limit)
        .max_frame_size(limit)
        // tungstenite allocates (and zeroes) its whole read buffer per
        // connection: 128 KiB by default, most of an idle connection's cost.
        // Sync frames are small; tungstenite grows the buffer for a larger
        // one once its header names the length.
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |socket| {
            // The connection runs in a task of its own: axum's upgrade task
            // holds the socket and its setup besides the future it awaits,
            // which an idle connection would carry for as long as it lives.
            let connection = connection::drive(relay, transport::adapt(socket), identity, shutdown);
            // `map`, not an `async` block: a block would hold the future
            // twice, once as captured and once as awaited.
            let task = connection.map(move |()| drop(permit));
            tokio::spawn(task);
            std::future::ready(())
        })
}

impl AuthRefusal {
    fn into_response_with(self, metrics: &Metrics) -> Response {
        Metrics::add(&metrics.auth_failures, 1);
        info!(reason = %self, "refused an upgrade");
        let body = serde_json::json!({ "error": self.to_string() });
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(body),
        )
            .into_response()
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.relay.metrics.render(),
    )
}

async fn info(State(state): State<AppState>) -> impl IntoResponse {
    let relay = &state.relay;
    Json(serde_json::json!({
        "relay_id": relay.relay_id,
        "peer_id": relay.peer_id.as_str(),
        "version": env!("CARGO_PKG_VERSION"),
        "protocol": rapport_protocol::wire::PROTOCOL_VERSION,
        "auth": match relay.config.auth { AuthMode::Token => "token", AuthMode::Open => "open" },
        "max_frame_bytes": relay.config.limits.max_frame_bytes,
    }))
}
