//! The public side of forms: `GET /forms/{id}` (the page),
//! `GET /forms/{id}.json` (the definition) and `POST /forms/{id}` (a
//! submission). No token: anyone with the link may submit, within the
//! per-address rate limit.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::json;
use tracing::{debug, warn};

use super::{SubmitError, html};
use crate::relay::now;
use crate::state::AppState;
use rapport_model::form::Form;
use rapport_model::form::submission::{self as submit, FieldErrors, Received};

/// How the answer is written: HTML for browsers posting the page, JSON for
/// programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reply {
    Html,
    Json,
}

/// Why a submission was refused: each is a 4xx (or 503) with a message.
#[derive(Debug)]
enum Refusal {
    Limited(Duration),
    Unknown,
    Closed,
    TooLarge(usize),
    Unsupported,
    BadBody(String),
    Invalid {
        form: Box<Form>,
        values: Received,
        errors: FieldErrors,
    },
    Unavailable,
}

pub(crate) async fn show(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    let (id, reply) = match id.strip_suffix(".json") {
        Some(id) => (id, Reply::Json),
        None => (id.as_str(), Reply::Html),
    };
    match s.forms.get(id) {
        None => Refusal::Unknown.answer(reply),
        Some(form) if !form.is_open() => Refusal::Closed.answer(reply),
        Some(form) => match reply {
            Reply::Json => Json(form.public()).into_response(),
            Reply::Html => page(
                StatusCode::OK,
                html::form_page(&form, &BTreeMap::new(), &FieldErrors::new()),
            ),
        },
    }
}

pub(crate) async fn submit(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let reply = reply_for(&headers);
    match accept(&s, peer, &id, &headers, body, reply).await {
        Ok(response) => response,
        Err(refusal) => {
            debug!(form = %rapport_model::form::shorten(&id), refusal = refusal.code(), "submission refused");
            refusal.answer(reply)
        }
    }
}

/// Everything from the rate limit to the stored task.
async fn accept(
    s: &AppState,
    peer: SocketAddr,
    id: &str,
    headers: &HeaderMap,
    body: Body,
    reply: Reply,
) -> Result<Response, Refusal> {
    s.forms
        .rate
        .take(peer.ip(), Instant::now())
        .map_err(Refusal::Limited)?;
    let form = s.forms.get(id).ok_or(Refusal::Unknown)?;
    if !form.is_open() {
        return Err(Refusal::Closed);
    }
    let json_body = match media_type(headers).as_deref() {
        Some("application/json") => true,
        Some("application/x-www-form-urlencoded") => false,
        _ => return Err(Refusal::Unsupported),
    };
    let limit = s.forms.limits.max_body_bytes;
    let body = read_body(headers, body, limit).await?;
    let received = if json_body {
        submit::parse_json(&body)
    } else {
        submit::parse_urlencoded(&body)
    }
    .map_err(|e| Refusal::BadBody(e.to_string()))?;
    let checked = match submit::check(&form, received.clone()) {
        Ok(checked) => checked,
        Err(errors) => {
            return Err(Refusal::Invalid {
                form: Box::new(form),
                values: received,
                errors,
            });
        }
    };
    let relay = Arc::clone(&s.relay);
    let forms = Arc::clone(&s.forms);
    let id = id.to_owned();
    let done =
        tokio::task::spawn_blocking(move || forms.submit(&relay, &id, &checked, now())).await;
    let (task, members, changes) = match done {
        Ok(Ok(done)) => done,
        Ok(Err(SubmitError::Closed)) => return Err(Refusal::Closed),
        Ok(Err(SubmitError::UnknownForm)) => return Err(Refusal::Unknown),
        Ok(Err(e)) => {
            warn!(form = %form.id, error = %e, "a submission could not be stored");
            return Err(Refusal::Unavailable);
        }
        Err(e) => {
            warn!(form = %form.id, error = %e, "the submission task failed");
            return Err(Refusal::Unavailable);
        }
    };
    // In a cluster, the other relays hold the task too.
    s.relay.add_local_changes(task, &changes).await;
    s.relay.enforce(&[], &members);
    Ok(match reply {
        Reply::Json => (
            StatusCode::CREATED,
            Json(json!({ "task": task.to_string(), "form": form.id })),
        )
            .into_response(),
        Reply::Html => page(StatusCode::OK, html::thanks(&form)),
    })
}

/// The body, refusing more than `limit` bytes before reading them when
/// the length is declared, and as soon as they arrive otherwise.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Vec<u8>, Refusal> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(Refusal::TooLarge(limit));
    }
    let mut stream = body.into_data_stream();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| Refusal::BadBody("the body could not be read".into()))?;
        if out.len() + chunk.len() > limit {
            return Err(Refusal::TooLarge(limit));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The body's media type, lowercased, without parameters.
fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let media = value.split(';').next()?.trim().to_ascii_lowercase();
    Some(media)
}

/// JSON for a JSON body or a client that asks only for JSON; HTML
/// otherwise.
fn reply_for(headers: &HeaderMap) -> Reply {
    if media_type(headers).as_deref() == Some("application/json") {
        return Reply::Json;
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if accept.contains("application/json") && !accept.contains("text/html") {
        Reply::Json
    } else {
        Reply::Html
    }
}

impl Refusal {
    fn status(&self) -> StatusCode {
        match self {
            Self::Limited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unknown => StatusCode::NOT_FOUND,
            Self::Closed => StatusCode::GONE,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unsupported => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::BadBody(_) => StatusCode::BAD_REQUEST,
            Self::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Limited(_) => "rate-limited",
            Self::Unknown => "unknown-form",
            Self::Closed => "closed",
            Self::TooLarge(_) => "too-large",
            Self::Unsupported => "unsupported-type",
            Self::BadBody(_) => "bad-body",
            Self::Invalid { .. } => "invalid-fields",
            Self::Unavailable => "unavailable",
        }
    }

    /// A heading for people and a sentence for everyone.
    fn message(&self) -> (&'static str, String) {
        match self {
            Self::Limited(wait) => (
                "Too many submissions",
                format!(
                    "Too many submissions from your address; try again in {} seconds.",
                    retry_secs(*wait)
                ),
            ),
            Self::Unknown => (
                "No such form",
                "There is no form at this address; check the link.".into(),
            ),
            Self::Closed => (
                "This form is closed",
                "This form is closed and no longer takes submissions.".into(),
            ),
            Self::TooLarge(limit) => (
                "Too much text",
                format!(
                    "The submission is larger than {} KiB; shorten it and send again.",
                    limit / 1024
                ),
            ),
            Self::Unsupported => (
                "Unsupported submission",
                "Send the form as application/x-www-form-urlencoded or application/json."
                    .into(),
            ),
            Self::BadBody(reason) => (
                "Unreadable submission",
                format!("The submission cannot be read: {reason}."),
            ),
            Self::Invalid { errors, .. } => (
                "Please correct the form",
                errors
                    .iter()
                    .map(|(name, problem)| format!("{name} {problem}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            Self::Unavailable => (
                "Please try again",
                "The submission could not be saved right now; nothing was recorded. Please try again later."
                    .into(),
            ),
        }
    }

    fn answer(self, reply: Reply) -> Response {
        let status = self.status();
        let (heading, text) = self.message();
        let retry = match &self {
            Self::Limited(wait) => Some(retry_secs(*wait)),
            _ => None,
        };
        let mut response = match (reply, self) {
            (Reply::Json, Self::Invalid { errors, .. }) => {
                (status, Json(json!({ "error": text, "fields": errors }))).into_response()
            }
            (Reply::Json, _) => (status, Json(json!({ "error": text }))).into_response(),
            (
                Reply::Html,
                Self::Invalid {
                    form,
                    values,
                    errors,
                },
            ) => {
                let values: BTreeMap<String, String> = values.into_iter().collect();
                page(status, html::form_page(&form, &values, &errors))
            }
            (Reply::Html, _) => page(status, html::message(heading, &text)),
        };
        if let Some(secs) = retry {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Whole seconds to wait, at least 1.
fn retry_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// An HTML answer with headers that keep it inert: no scripts, no frames,
/// posts only back to this relay.
fn page(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_whole_seconds_rounded_up() {
        assert_eq!(retry_secs(Duration::from_millis(0)), 1);
        assert_eq!(retry_secs(Duration::from_millis(200)), 1);
        assert_eq!(retry_secs(Duration::from_secs(6)), 6);
        assert_eq!(retry_secs(Duration::from_millis(5_001)), 6);
    }
}
