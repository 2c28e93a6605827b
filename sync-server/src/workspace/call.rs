//! What every workspace API call shares: who is calling (a fresh token,
//! as on `/sync`), whether their role allows it (refusals are audited),
//! and how a refusal reaches them (`{"error": …}` with its status).

use std::time::Instant;

use axum::Json;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rapport_model::api::ErrorBody;
use rapport_protocol::ids::PublicKey;
use tracing::warn;

use super::{AuditEvent, Role, WorkspaceError};
use crate::access::Identity;
use crate::metrics::Metrics;
use crate::relay::{Relay, lock, now};

/// A refusal, as the caller sees it.
pub(crate) struct ApiError(pub(crate) StatusCode, pub(crate) String);

impl From<WorkspaceError> for ApiError {
    fn from(error: WorkspaceError) -> Self {
        let status = match &error {
            WorkspaceError::UnknownWorkspace
            | WorkspaceError::UnknownDocument(_)
            | WorkspaceError::UnknownMember(_)
            | WorkspaceError::UnknownInvite => StatusCode::NOT_FOUND,
            WorkspaceError::NotMember
            | WorkspaceError::Forbidden { .. }
            | WorkspaceError::WrittenByOthers(_)
            | WorkspaceError::NotAThread(_)
            | WorkspaceError::Full { .. }
            | WorkspaceError::OverQuota { .. }
            | WorkspaceError::MayNotCreate => StatusCode::FORBIDDEN,
            WorkspaceError::DocumentElsewhere(_)
            | WorkspaceError::OwnerStays
            | WorkspaceError::OwnerRole
            | WorkspaceError::Conflict => StatusCode::CONFLICT,
            WorkspaceError::ControlUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            WorkspaceError::InviteExpired
            | WorkspaceError::Removed(_)
            | WorkspaceError::InviteUsedUp { .. }
            | WorkspaceError::InviteRevoked => StatusCode::GONE,
            WorkspaceError::Invalid(_) => StatusCode::BAD_REQUEST,
            WorkspaceError::Storage(e) => {
                warn!(error = %e, "workspace storage failed");
                return Self(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the relay cannot store this right now".into(),
                );
            }
        };
        Self(status, error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(ErrorBody { error: self.1 })).into_response()
    }
}

pub(crate) type ApiResult<T> = Result<Json<T>, ApiError>;

pub(crate) fn caller(relay: &Relay, headers: &HeaderMap) -> Result<PublicKey, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match relay.authenticate(token) {
        Ok(Identity::Key(key)) => Ok(key),
        Ok(Identity::Anonymous) => Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "workspaces need a token: this relay runs in --open mode without identities".into(),
        )),
        Err(refusal) => Err(ApiError(StatusCode::UNAUTHORIZED, refusal.to_string())),
    }
}

pub(crate) fn event(name: &str, by: PublicKey) -> AuditEvent {
    AuditEvent::new(name, by, now().0)
}

/// Checks `key`'s role in `ws`. Every refusal is counted; a member's is
/// also written to the workspace's audit log, at most
/// [`AUDITED_REFUSALS_PER_MINUTE`] a minute per key, so that nobody can
/// make the relay write without bound. A non-member, whether or not the
/// workspace exists, gets the same answer and leaves no audit entry: the
/// answer says nothing about which workspaces exist.
pub(crate) fn require(
    relay: &Relay,
    ws: &str,
    key: PublicKey,
    needed: Role,
    what: &str,
) -> Result<(), ApiError> {
    let workspaces = lock(&relay.workspaces);
    match workspaces.require(ws, &key, needed) {
        Ok(_) => Ok(()),
        Err(WorkspaceError::NotMember | WorkspaceError::UnknownWorkspace) => {
            Metrics::add(&relay.metrics.access_refusals, 1);
            Err(WorkspaceError::NotMember.into())
        }
        Err(e @ WorkspaceError::Forbidden { .. }) => {
            Metrics::add(&relay.metrics.access_refusals, 1);
            let admitted = lock(&relay.audited_refusals).admit(
                key,
                AUDITED_REFUSALS_PER_MINUTE,
                Instant::now(),
            );
            if admitted {
                let mut refused = event("access-refused", key);
                refused.detail = format!("{what}: {e}");
                let _ = workspaces.record(relay.store(), ws, &[refused]);
            } else {
                Metrics::add(&relay.metrics.unaudited_refusals, 1);
            }
            Err(e.into())
        }
        Err(e) => Err(e.into()),
    }
}

/// How many refusals of one key a minute reach the audit log: refused API
/// calls and refused changes alike.
pub(crate) const AUDITED_REFUSALS_PER_MINUTE: u32 = 10;
