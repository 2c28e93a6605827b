//! The workspace API under `/api/workspaces` and `/api/invites`.
//!
//! Every call carries a fresh token, as `/sync` does (`Authorization:
//! Bearer …`). Bodies and answers are JSON; refusals are `{"error": "…"}`
//! with 401 (no or bad token), 403 (role too low, not a member), 404
//! (unknown), 409 (conflict) or 410 (an invite that expired, is used up
//! or was revoked).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use rapport_protocol::ids::{DocumentId, PublicKey};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::{info, warn};

use super::invites::{create_invite, list_invites, redeem, revoke_invite};
use super::{AuditEvent, DocInfo, Level, Member, Role, Workspace, WorkspaceError, member_name};
use crate::access::Identity;
use crate::http::AppState;
use crate::relay::{Relay, lock, now};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/workspaces",
            post(create_workspace).get(list_workspaces),
        )
        .route(
            "/api/workspaces/{ws}/documents",
            post(add_documents).get(list_documents),
        )
        .route("/api/workspaces/{ws}/members", get(list_members))
        .route("/api/workspaces/{ws}/members/{key}", delete(remove_member))
        .route(
            "/api/workspaces/{ws}/invites",
            post(create_invite).get(list_invites),
        )
        .route(
            "/api/workspaces/{ws}/invites/{invite}",
            delete(revoke_invite),
        )
        .route("/api/workspaces/{ws}/shares", post(share).delete(unshare))
        .route("/api/workspaces/{ws}/audit", get(audit))
        .route("/api/invites/redeem", post(redeem))
}

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
            | WorkspaceError::MayNotCreate => StatusCode::FORBIDDEN,
            WorkspaceError::DocumentElsewhere(_) | WorkspaceError::OwnerStays => {
                StatusCode::CONFLICT
            }
            WorkspaceError::InviteExpired
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
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

pub(super) type ApiResult = Result<Json<Value>, ApiError>;

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
    AuditEvent {
        at: now().0,
        event: name.to_owned(),
        by: Some(by),
        member: None,
        document: None,
        detail: String::new(),
    }
}

/// Checks `key`'s role, recording a refusal in the audit log.
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
        Err(e @ (WorkspaceError::Forbidden { .. } | WorkspaceError::NotMember)) => {
            let mut refused = event("access-refused", key);
            refused.detail = format!("{what}: {e}");
            let _ = workspaces.record(relay.store(), ws, &[refused]);
            Err(e.into())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct CreateWorkspace {
    name: String,
    /// The creator's own name.
    #[serde(default)]
    member_name: Option<String>,
}

async fn create_workspace(
    State(s): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<CreateWorkspace>,
) -> ApiResult {
    let key = caller(&s.relay, &headers)?;
    let name = body.name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(WorkspaceError::Invalid(
            "a workspace needs a name of 1 to 200 characters".into(),
        )
        .into());
    }
    let mut workspaces = lock(&s.relay.workspaces);
    if !workspaces.may_create(&key) {
        return Err(WorkspaceError::MayNotCreate.into());
    }
    let id = format!(
        "ws-{}",
        bs58::encode(rand::random::<[u8; 12]>()).into_string()
    );
    let at = now().0;
    let mut workspace = Workspace {
        id: id.clone(),
        name: name.to_owned(),
        created_by: key,
        created_at: at,
        members: Default::default(),
        documents: Default::default(),
        invites: Default::default(),
        removed: Default::default(),
    };
    workspace.members.insert(
        key,
        Member {
            role: Role::Owner,
            workspace_level: None,
            shares: Default::default(),
            added_at: at,
            name: member_name(body.member_name.as_deref()),
        },
    );
    let mut created = event("workspace-created", key);
    created.detail = name.to_owned();
    workspaces.commit(s.relay.store(), workspace, vec![created])?;
    info!(workspace = %id, owner = %key, "workspace created");
    Ok(Json(json!({ "id": id, "name": name, "role": Role::Owner })))
}

async fn list_workspaces(State(s): State<AppState>, headers: HeaderMap) -> ApiResult {
    let key = caller(&s.relay, &headers)?;
    let workspaces = lock(&s.relay.workspaces);
    let list: Vec<Value> = workspaces
        .memberships(&key)
        .into_iter()
        .map(|(w, role)| json!({ "id": w.id, "name": w.name, "role": role }))
        .collect();
    Ok(Json(
        json!({ "workspaces": list, "relay_id": s.relay.relay_id }),
    ))
}

#[derive(Deserialize)]
struct AddDocuments {
    documents: Vec<NewDocument>,
}

#[derive(Deserialize)]
struct NewDocument {
    id: DocumentId,
    #[serde(default)]
    thread_of: Option<DocumentId>,
}

async fn add_documents(
    State(s): State<AppState>,
    Path(ws): Path<String>,
    headers: HeaderMap,
    Json(body): Json<AddDocuments>,
) -> ApiResult {
    let key = caller(&s.relay, &headers)?;
    require(&s.relay, &ws, key, Role::Client, "add documents")?;
    let changed = {
        let mut workspaces = lock(&s.relay.workspaces);
        for doc in &body.documents {
            if let Some(home) = workspaces.home_of(doc.id)
                && home != ws
            {
                return Err(WorkspaceError::DocumentElsewhere(doc.id).into());
            }
        }
        let mut workspace = workspaces.get(&ws)?.clone();
        // Staff add anything; a client only the comment thread of a record
        // it may comment on.
        let role = workspace
            .members
            .get(&key)
            .map(|m| m.role)
            .ok_or(WorkspaceError::NotMember)?;
        if !role.is_staff() {
            for doc in &body.documents {
                let may = doc.thread_of.is_some_and(|record| {
                    workspace.members[&key]
                        .shares
                        .get(&record)
                        .is_some_and(|l| *l >= Level::Comment)
                });
                if !may {
                    drop(workspaces);
                    require(&s.relay, &ws, key, Role::Staff, "add documents")?;
                    return Err(WorkspaceError::Forbidden {
                        needed: Role::Staff,
                        role,
                    }
                    .into());
                }
            }
        }
        let mut events = Vec::new();
        for doc in &body.documents {
            if workspace.documents.contains_key(&doc.id) {
                continue;
            }
            workspace.documents.insert(
                doc.id,
                DocInfo {
                    thread_of: doc.thread_of,
                    added_by: key,
                    added_at: now().0,
                },
            );
            let mut added = event("document-added", key);
            added.document = Some(doc.id);
            if let Some(record) = doc.thread_of {
                added.detail = format!("comment thread of {record}");
            }
            events.push(added);
        }
        let keys: Vec<PublicKey> = workspace.members.keys().copied().collect();
        workspaces.commit(s.relay.store(), workspace, events)?;
        keys
    };
    s.relay.enforce(&[], &changed);
    Ok(Json(json!({ "added": body.documents.len() })))
}

async fn list_documents(
    State(s): State<AppState>,
    Path(ws): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    let key = caller(&s.relay, &headers)?;
    let workspaces = lock(&s.relay.workspaces);
    workspaces.require(&ws, &key, Role::Client)?;
    let workspace = workspaces.get(&ws)?;
    let list: Vec<Value> = workspace
        .visible_to(&key)
        .into_iter()
        .map(|doc| {
            json!({
                "id": doc.to_string(),
                "thread_of": workspace.documents[&doc].thread_of.map(|r| r.to_string()),
                "access": match workspace.access(&key, doc) {
                    crate::access::Access::Write => "write",
                    _ => "read",
                },
            })
        })
        .collect();
    Ok(Json(json!({ "documents": list })))
}

async fn list_members(
    State(s): State<AppState>,
    Path(ws): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    let key = caller(&s.relay, &headers)?;
    require(&s.relay, &ws, key, Role::Staff, "list members")?;
    let workspaces = lock(&s.relay.workspaces);
    let workspace = workspaces.get(&ws)?;
    let list: Vec<Value> = workspace
        .members
        .iter()
        .map(|(k, m)| {
            json!({
                "key": k.to_string(),
                "role": m.role,
                "workspace_level": m.workspace_level,
                "shares": m.shares.iter().map(|(d, l)| json!({"document": d.to_string(), "access": l})).collect::<Vec<_>>(),
                "added_at": m.added_at,
                "name": m.name,
            })
        })
        .collect();
    Ok(Json(json!({ "members": list })))
}

async fn remove_member(
    State(s): State<AppState>,
    Path((ws, member)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    let key = caller(&s.relay, &headers)?;
    require(&s.relay, &ws, key, Role::Admin, "remove a member")?;
    let member: PublicKey = member
        .parse()
        .map_err(|e| WorkspaceError::Invalid(format!("not a key: {e}")))?;
    {
        let mut workspaces = lock(&s.relay.workspaces);
        let mut workspace = workspaces.get(&ws)?.clone();
        let removed = workspace
            .members
            .remove(&member)
            .ok_or(WorkspaceError::UnknownMember(member))?;
        if removed.role == Role::Owner {
            return Err(WorkspaceError::OwnerStays.into());
        }
        workspace.removed.insert(member, now().0);
        let mut gone = event("member-removed", key);
        gone.member = Some(member);
        gone.detail = format!("was {:?}", removed.role).to_lowercase();
        workspaces.commit(s.relay.store(), workspace, vec![gone])?;
    }
    info!(workspace = %ws, member = %member, "member removed");
    s.relay.enforce(&[member], &[]);
    Ok(Json(json!({ "removed": member.to_string() })))
}

#[derive(Deserialize)]
struct Share {
    document: DocumentId,
    member: PublicKey,
    /// Absent when unsharing.
    #[serde(default)]
    access: Option<Level>,
}

async fn share(
    State(s): State<AppState>,
    Path(ws): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Share>,
) -> ApiResult {
    let key = caller(&s.relay, &headers)?;
    require(&s.relay, &ws, key, Role::Staff, "share a document")?;
    let level = body
        .access
        .ok_or_else(|| WorkspaceError::Invalid("`access` is read, comment or write".into()))?;
    set_share(&s.relay, &ws, key, body.document, body.member, Some(level))?;
    Ok(Json(
        json!({ "document": body.document.to_string(), "member": body.member.to_string(), "access": level }),
    ))
}

async fn unshare(
    State(s): State<AppState>,
    Path(ws): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Share>,
) -> ApiResult {
    let key = caller(&s.relay, &headers)?;
    require(&s.relay, &ws, key, Role::Staff, "unshare a document")?;
    set_share(&s.relay, &ws, key, body.document, body.member, None)?;
    Ok(Json(
        json!({ "document": body.document.to_string(), "member": body.member.to_string(), "access": null }),
    ))
}

fn set_share(
    relay: &Arc<Relay>,
    ws: &str,
    by: PublicKey,
    document: DocumentId,
    member: PublicKey,
    level: Option<Level>,
) -> Result<(), ApiError> {
    {
        let mut workspaces = lock(&relay.workspaces);
        let mut workspace = workspaces.get(ws)?.clone();
        if !workspace.documents.contains_key(&document) {
            return Err(WorkspaceError::UnknownDocument(document).into());
        }
        let entry = workspace
            .members
            .get_mut(&member)
            .ok_or(WorkspaceError::UnknownMember(member))?;
        let mut changed = event(
            if level.is_some() {
                "document-shared"
            } else {
                "document-unshared"
            },
            by,
        );
        changed.member = Some(member);
        changed.document = Some(document);
        match level {
            Some(level) => {
                entry.shares.insert(document, level);
                changed.detail = format!("{level:?}").to_lowercase();
            }
            None => {
                entry.shares.remove(&document);
            }
        }
        if level.is_some() && relay.automations.is_active(ws) {
            // A share is an event for the automations: recorded with it.
            let heads = relay
                .store()
                .load_automerge(document)
                .map(|d| d.get_heads());
            let heads = heads.map_err(WorkspaceError::from)?;
            workspaces.commit_with(workspace, vec![changed], |json, events| {
                relay
                    .store()
                    .save_workspace_sharing(ws, json, events, document, &heads)
            })?;
            relay.automations.wake();
        } else {
            workspaces.commit(relay.store(), workspace, vec![changed])?;
        }
    }
    match level {
        Some(_) => relay.enforce(&[member], &[member]),
        None => relay.enforce(&[member], &[]),
    }
    Ok(())
}

#[derive(Deserialize)]
struct AuditQuery {
    member: Option<PublicKey>,
    document: Option<DocumentId>,
}

async fn audit(
    State(s): State<AppState>,
    Path(ws): Path<String>,
    headers: HeaderMap,
    Query(query): Query<AuditQuery>,
) -> ApiResult {
    let key = caller(&s.relay, &headers)?;
    require(&s.relay, &ws, key, Role::Admin, "read the audit log")?;
    let events: Vec<AuditEvent> = s
        .relay
        .store()
        .audit(&ws)
        .map_err(WorkspaceError::from)?
        .iter()
        .filter_map(|bytes| serde_json::from_slice(bytes).ok())
        .filter(|e: &AuditEvent| {
            query
                .member
                .is_none_or(|m| e.member == Some(m) || e.by == Some(m))
        })
        .filter(|e: &AuditEvent| query.document.is_none_or(|d| e.document == Some(d)))
        .collect();
    Ok(Json(json!({ "events": events })))
}
