//! `GET /api/workspaces/{ws}/automations` (admins): the workspace's
//! automations document and the secret its webhooks are signed with.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use rapport_model::automation::document;
use serde_json::{Value, json};

use super::webhook_secret;
use crate::state::AppState;
use crate::workspace::{ApiError, Role, caller, require};

pub(crate) async fn show(
    State(s): State<AppState>,
    Path(ws): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let key = caller(&s.relay, &headers)?;
    require(
        &s.relay,
        &ws,
        key,
        Role::Admin,
        "read the automations' secret",
    )?;
    let relay = std::sync::Arc::clone(&s.relay);
    let keys = tokio::task::spawn_blocking(move || relay.relay_keys())
        .await
        .map_err(|e| unavailable(&e))?
        .map_err(|e| unavailable(&e))?;
    Ok(Json(json!({
        "document": document::document_id(&ws).to_string(),
        "webhook_secret": webhook_secret(&keys, &ws),
        "signature_header": super::webhook::SIGNATURE_HEADER,
        "event_header": super::webhook::EVENT_HEADER,
    })))
}

fn unavailable(error: &dyn std::fmt::Display) -> ApiError {
    ApiError(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the relay's key cannot be read: {error}"),
    )
}
