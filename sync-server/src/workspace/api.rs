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

use super::{
    AuditEvent, DocInfo, Invite, Level, Member, Role, Scope, Workspace, WorkspaceError, sha256_hex,
};
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
pub(crate) struct ApiError(StatusCode, String);

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

type ApiResult = Result<Json<Value>, ApiError>;

fn caller(relay: &Relay, headers: &HeaderMap) -> Result<PublicKey, ApiError> {
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

fn event(name: &str, by: PublicKey) -> AuditEvent {
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
fn require(
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
struct CreateInvite {
    role: Role,
    /// Documents and levels; empty for the whole workspace.
    #[serde(default)]
    documents: Vec<(DocumentId, Level)>,
    /// For clients invited to the whole workspace.
    #[serde(default)]
    level: Option<Level>,
    expires_in_secs: u64,
    uses: u32,
}

async fn create_invite(
    State(s): State<AppState>,
    Path(ws): Path<String>,
    headers: HeaderMap,
    Json(body): Json<CreateInvite>,
) -> ApiResult {
    let key = caller(&s.relay, &headers)?;
    require(&s.relay, &ws, key, Role::Admin, "create an invite")?;
    if body.role == Role::Owner {
        return Err(WorkspaceError::Invalid("an invite cannot make an owner".into()).into());
    }
    if body.uses == 0 || body.expires_in_secs == 0 {
        return Err(WorkspaceError::Invalid(
            "an invite needs at least one use and a future expiry".into(),
        )
        .into());
    }
    let secret = bs58::encode(rand::random::<[u8; 24]>()).into_string();
    let id = format!(
        "inv-{}",
        bs58::encode(rand::random::<[u8; 8]>()).into_string()
    );
    let scope = if body.documents.is_empty() {
        Scope::Workspace { level: body.level }
    } else {
        Scope::Documents {
            documents: body.documents.clone(),
        }
    };
    let at = now().0;
    let invite = Invite {
        id: id.clone(),
        secret_sha256: sha256_hex(secret.as_bytes()),
        role: body.role,
        scope,
        expires_at: at.saturating_add(body.expires_in_secs.saturating_mul(1000)),
        max_uses: body.uses,
        uses: 0,
        revoked: false,
        created_by: key,
        created_at: at,
    };
    {
        let mut workspaces = lock(&s.relay.workspaces);
        let mut workspace = workspaces.get(&ws)?.clone();
        for (doc, _) in &body.documents {
            if !workspace.documents.contains_key(doc) {
                return Err(WorkspaceError::UnknownDocument(*doc).into());
            }
        }
        let mut created = event("invite-created", key);
        created.detail = format!("{id}: {:?}, {} use(s)", body.role, body.uses).to_lowercase();
        workspace.invites.insert(id.clone(), invite.clone());
        workspaces.commit(s.relay.store(), workspace, vec![created])?;
    }
    Ok(Json(json!({
        "id": id,
        "workspace": ws,
        "secret": secret,
        "role": invite.role,
        "expires_at": invite.expires_at,
        "uses": invite.max_uses,
    })))
}

async fn list_invites(
    State(s): State<AppState>,
    Path(ws): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    let key = caller(&s.relay, &headers)?;
    require(&s.relay, &ws, key, Role::Admin, "list invites")?;
    let workspaces = lock(&s.relay.workspaces);
    let list: Vec<Value> = workspaces
        .get(&ws)?
        .invites
        .values()
        .map(|i| {
            json!({
                "id": i.id, "role": i.role, "scope": i.scope, "expires_at": i.expires_at,
                "uses": i.uses, "max_uses": i.max_uses, "revoked": i.revoked,
                "created_by": i.created_by.to_string(),
            })
        })
        .collect();
    Ok(Json(json!({ "invites": list })))
}

async fn revoke_invite(
    State(s): State<AppState>,
    Path((ws, invite)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    let key = caller(&s.relay, &headers)?;
    require(&s.relay, &ws, key, Role::Admin, "revoke an invite")?;
    let mut workspaces = lock(&s.relay.workspaces);
    let mut workspace = workspaces.get(&ws)?.clone();
    let entry = workspace
        .invites
        .get_mut(&invite)
        .ok_or(WorkspaceError::UnknownInvite)?;
    entry.revoked = true;
    let mut revoked = event("invite-revoked", key);
    revoked.detail = invite.clone();
    workspaces.commit(s.relay.store(), workspace, vec![revoked])?;
    Ok(Json(json!({ "revoked": invite })))
}

#[derive(Deserialize)]
struct Redeem {
    workspace: String,
    secret: String,
}

async fn redeem(
    State(s): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<Redeem>,
) -> ApiResult {
    let key = caller(&s.relay, &headers)?;
    let hash = sha256_hex(body.secret.as_bytes());
    let role = {
        let mut workspaces = lock(&s.relay.workspaces);
        let mut workspace = workspaces.get(&body.workspace)?.clone();
        let at = now().0;
        let Some(invite) = workspace
            .invites
            .values_mut()
            .find(|i| i.secret_sha256 == hash)
        else {
            let mut refused = event("invite-refused", key);
            refused.detail = "no invite has this secret".into();
            let _ = workspaces.record(s.relay.store(), &body.workspace, &[refused]);
            return Err(WorkspaceError::UnknownInvite.into());
        };
        let problem = if invite.revoked {
            Some(WorkspaceError::InviteRevoked)
        } else if at >= invite.expires_at {
            Some(WorkspaceError::InviteExpired)
        } else if invite.uses >= invite.max_uses {
            Some(WorkspaceError::InviteUsedUp {
                uses: invite.uses,
                max_uses: invite.max_uses,
            })
        } else {
            None
        };
        if let Some(problem) = problem {
            let mut refused = event("invite-refused", key);
            refused.detail = format!("{}: {problem}", invite.id);
            let _ = workspaces.record(s.relay.store(), &body.workspace, &[refused]);
            return Err(problem.into());
        }
        invite.uses += 1;
        let invite = invite.clone();
        let member = workspace.members.entry(key).or_insert(Member {
            role: invite.role,
            workspace_level: None,
            shares: Default::default(),
            added_at: at,
        });
        member.role = member.role.max(invite.role);
        match &invite.scope {
            Scope::Workspace { level } => {
                member.workspace_level = member.workspace_level.max(*level)
            }
            Scope::Documents { documents } => {
                for (doc, level) in documents {
                    let entry = member.shares.entry(*doc).or_insert(*level);
                    *entry = (*entry).max(*level);
                }
            }
        }
        let role = member.role;
        workspace.removed.remove(&key);
        let mut redeemed = event("invite-redeemed", key);
        redeemed.detail = invite.id.clone();
        let mut added = event("member-added", invite.created_by);
        added.member = Some(key);
        added.detail = format!("{role:?} through {}", invite.id).to_lowercase();
        workspaces.commit(s.relay.store(), workspace, vec![redeemed, added])?;
        role
    };
    s.relay.enforce(&[], &[key]);
    Ok(Json(
        json!({ "workspace": body.workspace, "role": role, "key": key.to_string() }),
    ))
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
        workspaces.commit(relay.store(), workspace, vec![changed])?;
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
