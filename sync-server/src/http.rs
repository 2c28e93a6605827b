//! The relay's own endpoints: `/sync` (the WebSocket upgrade), `/metrics`
//! and `/api/info`. Every route is listed in `crate::routes`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt as _;
use rapport_model::api::{ErrorBody, RelayInfo};
use serde::Deserialize;
use tracing::info;

use crate::config::AuthMode;
use crate::connection;
use crate::metrics::Metrics;
use crate::relay::{AuthRefusal, NoSeat, lock, now};
use crate::state::AppState;
use crate::transport;

#[derive(Debug, Deserialize)]
pub(crate) struct TokenQuery {
    token: Option<String>,
}

/// Each connection's WebSocket read buffer.
const READ_BUFFER_BYTES: usize = 2 * 1024;

pub(crate) async fn sync(
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
    let limits = &state.relay.config.limits;
    let seat = match state.relay.seats.take(
        identity,
        limits.max_connections,
        limits.max_connections_per_key,
    ) {
        Ok(seat) => seat,
        Err(refusal) => {
            let (status, error) = match refusal {
                NoSeat::Full => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the relay holds as many connections as it may; try again shortly",
                ),
                NoSeat::KeyFull => (
                    StatusCode::TOO_MANY_REQUESTS,
                    "this key has as many connections open as it may; close one first",
                ),
            };
            info!(identity = %identity, error, "refused an upgrade");
            let body = ErrorBody {
                error: error.to_owned(),
            };
            return (status, Json(body)).into_response();
        }
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
            let task = connection.map(move |()| drop((permit, seat)));
            tokio::spawn(task);
            std::future::ready(())
        })
}

impl AuthRefusal {
    fn into_response_with(self, metrics: &Metrics) -> Response {
        Metrics::add(&metrics.auth_failures, 1);
        info!(reason = %self, "refused an upgrade");
        let body = ErrorBody {
            error: self.to_string(),
        };
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(body),
        )
            .into_response()
    }
}

pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.relay.metrics.render()
            + &state.relay.render_workspace_sizes()
            + &state
                .relay
                .cluster
                .get()
                .map_or_else(String::new, |cluster| cluster.render_metrics()),
    )
}

/// How long a storage check of `/healthz` is reused: probes every second
/// cost one durable write every few.
const STORAGE_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// How long one automations step may run before the engine counts as
/// stuck.
const STEP_STUCK_AFTER_MS: u64 = 5 * 60 * 1000;

/// `/healthz`: 200 `ok` when a durable write goes through, the
/// automations engine runs and, in a cluster, NATS is reachable; 503 with
/// a line for each thing that does not.
pub(crate) async fn healthz(State(state): State<AppState>) -> (StatusCode, String) {
    match problems(&state).await {
        problems if problems.is_empty() => (StatusCode::OK, "ok\n".into()),
        problems => (StatusCode::SERVICE_UNAVAILABLE, problems.join("")),
    }
}

/// `/readyz`, for load balancers: healthy and not shutting down.
pub(crate) async fn readyz(State(state): State<AppState>) -> (StatusCode, String) {
    if *state.shutdown.borrow() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "stopping: the relay is shutting down\n".into(),
        );
    }
    match problems(&state).await {
        problems if problems.is_empty() => (StatusCode::OK, "ready\n".into()),
        problems => (StatusCode::SERVICE_UNAVAILABLE, problems.join("")),
    }
}

async fn problems(state: &AppState) -> Vec<String> {
    use std::sync::atomic::Ordering;
    let mut problems = Vec::new();
    let cached = lock(&state.storage_checked)
        .as_ref()
        .filter(|(at, _)| at.elapsed() < STORAGE_CHECK_EVERY)
        .map(|(_, result)| result.clone());
    let storage = match cached {
        Some(result) => result,
        None => {
            let store = state.relay.store().clone();
            let result = tokio::task::spawn_blocking(move || store.check_writable(now().0))
                .await
                .map_err(|_| "the check stopped".to_owned())
                .and_then(|written| written.map_err(|e| e.to_string()));
            *lock(&state.storage_checked) = Some((std::time::Instant::now(), result.clone()));
            result
        }
    };
    if let Err(e) = storage {
        problems.push(format!("storage: not writable: {e}\n"));
    }
    if let Some(cluster) = state.relay.cluster.get()
        && !cluster.connected()
    {
        problems
            .push("cluster: NATS is unreachable; changes are refused until it is back\n".into());
    }
    if let Some(control) = state.relay.control.get()
        && !control.connected()
    {
        problems.push(
            "cluster: the shared workspaces are unreachable; workspace changes are refused until NATS is back\n"
                .into(),
        );
    }
    let engine = &state.relay.automations;
    if !engine.running.load(Ordering::Acquire) {
        problems.push("automations: the engine is not running\n".into());
    } else {
        let started = engine.step_started.load(Ordering::Acquire);
        if started != 0 && now().0.saturating_sub(started) > STEP_STUCK_AFTER_MS {
            problems.push(format!(
                "automations: one step has run for {} s\n",
                (now().0 - started) / 1000
            ));
        }
    }
    problems
}

pub(crate) async fn info(State(state): State<AppState>) -> Json<RelayInfo> {
    let relay = &state.relay;
    Json(RelayInfo {
        relay_id: relay.relay_id.clone(),
        peer_id: relay.peer_id.as_str().to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        protocol: rapport_protocol::wire::PROTOCOL_VERSION.to_owned(),
        auth: match relay.config.auth {
            AuthMode::Token => "token",
            AuthMode::Open => "open",
        }
        .to_owned(),
        max_frame_bytes: relay.config.limits.max_frame_bytes as u64,
        public_url: relay.config.public_url.clone(),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::config::{Config, FormLimits};
    use crate::forms::Forms;
    use crate::relay::Relay;
    use crate::state::ConnTracker;

    #[tokio::test]
    async fn healthz_says_when_the_automations_engine_is_down_or_stuck() {
        let dir = std::env::temp_dir().join(format!("rapport-healthz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let relay = Arc::new(Relay::open(Config::new(&dir), None).unwrap());
        let forms = Forms::load(relay.store(), FormLimits::default()).unwrap();
        let (_stop, shutdown) = tokio::sync::watch::channel(false);
        let state = AppState {
            relay: Arc::clone(&relay),
            forms: Arc::new(forms),
            shutdown,
            tracker: ConnTracker::new(),
            storage_checked: Arc::default(),
        };
        let engine = &relay.automations;
        // Never started, or stopped: said.
        engine.running.store(false, Ordering::Release);
        let (status, body) = healthz(State(state.clone())).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body, "automations: the engine is not running\n");
        // Running, but one step for six minutes: said.
        engine.running.store(true, Ordering::Release);
        let started = now().0 - 6 * 60 * 1000;
        engine.step_started.store(started, Ordering::Release);
        let (status, body) = healthz(State(state.clone())).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            body.starts_with("automations: one step has run for 36"),
            "{body}"
        );
        // Between steps: healthy.
        engine.step_started.store(0, Ordering::Release);
        assert_eq!(healthz(State(state)).await, (StatusCode::OK, "ok\n".into()));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
