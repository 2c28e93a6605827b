//! The inbox over HTTP: `GET /api/workspaces/{ws}/notifications`, `POST
//! …/notifications/read`, and `PUT …/members/me/email` for e-mailed
//! notifications.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use rapport_model::api::{MarkRead, MarkedRead, NotificationList, NotifyEmail};
use serde::Deserialize;

use crate::access::Access;
use crate::relay::lock;
use crate::state::AppState;
use crate::workspace::{ApiResult, Role, WorkspaceError, caller, require};

#[derive(Debug, Deserialize)]
pub(crate) struct InboxQuery {
    /// Read ones too.
    #[serde(default)]
    all: bool,
}

/// The caller's notifications about records of `ws` they may still see,
/// newest first.
pub(crate) async fn list(
    State(s): State<AppState>,
    Path(ws): Path<String>,
    Query(query): Query<InboxQuery>,
    headers: HeaderMap,
) -> ApiResult<NotificationList> {
    let key = caller(&s.relay, &headers)?;
    require(&s.relay, &ws, key, Role::Client, "read notifications")?;
    let mut notifications = s
        .relay
        .store()
        .notifications_of(&key)
        .map_err(WorkspaceError::from)?;
    {
        let workspaces = lock(&s.relay.workspaces);
        notifications.retain(|n| {
            (query.all || !n.read)
                && workspaces.home_of(n.record) == Some(ws.as_str())
                && workspaces.access(&key, n.record) != Access::None
        });
    }
    notifications.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.id.cmp(&b.id)));
    Ok(Json(NotificationList { notifications }))
}

pub(crate) async fn mark_read(
    State(s): State<AppState>,
    Path(ws): Path<String>,
    headers: HeaderMap,
    Json(body): Json<MarkRead>,
) -> ApiResult<MarkedRead> {
    let key = caller(&s.relay, &headers)?;
    require(&s.relay, &ws, key, Role::Client, "mark notifications read")?;
    let marked = s
        .relay
        .store()
        .mark_read(&key, &body.ids)
        .map_err(WorkspaceError::from)?;
    Ok(Json(MarkedRead { marked }))
}

/// Where the caller's notifications in `ws` are e-mailed, or none.
pub(crate) async fn set_email(
    State(s): State<AppState>,
    Path(ws): Path<String>,
    headers: HeaderMap,
    Json(body): Json<NotifyEmail>,
) -> ApiResult<NotifyEmail> {
    let key = caller(&s.relay, &headers)?;
    require(
        &s.relay,
        &ws,
        key,
        Role::Client,
        "set a notification address",
    )?;
    let email = match body.email.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(address) => {
            if address.len() > 254 || address.parse::<lettre::Address>().is_err() {
                return Err(WorkspaceError::Invalid(format!(
                    "`{address}` is not an e-mail address"
                ))
                .into());
            }
            Some(address.to_owned())
        }
    };
    let mut workspaces = lock(&s.relay.workspaces);
    let mut workspace = workspaces.get(&ws)?.clone();
    if let Some(member) = workspace.members.get_mut(&key) {
        member.email = email.clone();
    }
    workspaces.commit(s.relay.store(), workspace, Vec::new())?;
    Ok(Json(NotifyEmail { email }))
}
