//! Every route the relay serves, in one place.

use axum::Router;
use axum::routing::{delete, get, post, put};

use crate::state::AppState;
use crate::workspace::{api, invites, removal};
use crate::{automations, feed, forms, http, notify, web};

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(web::page))
        .route("/join", get(web::page))
        .route("/sw.js", get(web::service_worker))
        .route("/assets/{file}", get(web::asset))
        .route("/sync", get(http::sync))
        .route("/healthz", get(http::healthz))
        .route("/readyz", get(http::readyz))
        .route("/metrics", get(http::metrics))
        .route("/api/info", get(http::info))
        .route(
            "/api/workspaces",
            post(api::create_workspace).get(api::list_workspaces),
        )
        .route(
            "/api/workspaces/{ws}/documents",
            post(api::add_documents).get(api::list_documents),
        )
        .route("/api/workspaces/{ws}/changes", get(feed::changes))
        .route("/api/workspaces/{ws}/notifications", get(notify::api::list))
        .route(
            "/api/workspaces/{ws}/notifications/read",
            post(notify::api::mark_read),
        )
        .route(
            "/api/workspaces/{ws}/members/me/email",
            put(notify::api::set_email),
        )
        .route(
            "/api/workspaces/{ws}/documents/remove",
            post(removal::remove_documents),
        )
        .route("/api/workspaces/{ws}/members", get(api::list_members))
        .route("/api/workspaces/{ws}/people", get(api::list_people))
        .route(
            "/api/workspaces/{ws}/members/{key}",
            delete(api::remove_member),
        )
        .route(
            "/api/workspaces/{ws}/members/{key}/role",
            put(api::set_role),
        )
        .route(
            "/api/workspaces/{ws}/invites",
            post(invites::create_invite).get(invites::list_invites),
        )
        .route(
            "/api/workspaces/{ws}/invites/{invite}",
            delete(invites::revoke_invite),
        )
        .route(
            "/api/workspaces/{ws}/shares",
            post(api::share).delete(api::unshare),
        )
        .route("/api/workspaces/{ws}/audit", get(api::audit))
        .route("/api/invites/redeem", post(invites::redeem))
        .route(
            "/api/workspaces/{ws}/forms",
            post(forms::admin::create).get(forms::admin::list),
        )
        .route("/api/workspaces/{ws}/forms/{form}", get(forms::admin::show))
        .route(
            "/api/workspaces/{ws}/forms/{form}/close",
            post(forms::admin::close),
        )
        .route(
            "/forms/{form}",
            get(forms::public::show).post(forms::public::submit),
        )
        .route(
            "/api/workspaces/{ws}/automations",
            get(automations::api::show),
        )
        .layer(axum::middleware::from_fn(request_id))
        .with_state(state)
}

/// Longest request id taken from a proxy's `X-Request-Id`.
const MAX_REQUEST_ID: usize = 64;

/// Gives every HTTP call an id: the `X-Request-Id` a proxy sent (when it
/// is short and plain), else a new one. Every log line of the call carries
/// it (the `http` span), and the answer names it.
async fn request_id(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use tracing::Instrument as _;
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let given = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= MAX_REQUEST_ID
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map(str::to_owned);
    let id = given.unwrap_or_else(|| {
        format!(
            "r{}",
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        )
    });
    let path = request.uri().path().to_owned();
    let span = tracing::info_span!(
        "http",
        request_id = %id,
        method = %request.method(),
        path = %path,
    );
    let started = std::time::Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    // The access log; probes and scrapes only when asked for.
    let status = response.status().as_u16();
    let took_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if path == "/healthz" || path == "/readyz" || path == "/metrics" {
            tracing::debug!(status, took_ms, "answered");
        } else {
            tracing::info!(status, took_ms, "answered");
        }
    });
    if let Ok(value) = axum::http::HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}
