//! The workspace API under `/api/workspaces` and `/api/invites`.
//!
//! Every call carries a fresh token, as `/sync` does (`Authorization:
//! Bearer …`). Bodies and answers are JSON; refusals are `{"error": "…"}`
//! with 401 (no or bad token), 403 (role too low, not a member), 404
//! (unknown), 409 (conflict) or 410 (an invite that expired, is used up
//! or was revoked).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use rapport_model::api::{
    AddDocuments, AuditLog, CreateWorkspace, DocumentEntry, DocumentList, DocumentsAdded,
    MemberEntry, MemberList, MemberRemoved, MemberRole, PeopleList, Person, Share, ShareEntry,
    WorkspaceList, WorkspaceSummary,
};
use rapport_protocol::ids::{DocumentId, PublicKey};
use serde::Deserialize;
use tracing::{info, warn};

use super::call::{ApiError, ApiResult, caller, event, require};
use super::{AuditEvent, DocInfo, Level, Role, Workspace, WorkspaceError, member_name};
use crate::automations::new_rules_document;
use crate::relay::{Relay, lock, now};
use crate::state::AppState;
use crate::storage::AutomationWrite;

pub(crate) async fn create_workspace(
    State(s): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<CreateWorkspace>,
) -> ApiResult<WorkspaceSummary> {
    let key = caller(&s.relay, &headers)?;
    let name = body.name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(WorkspaceError::Invalid(
            "a workspace needs a name of 1 to 200 characters".into(),
        )
        .into());
    }
    let (id, rules, changes, relay_key) = {
        let mut workspaces = lock(&s.relay.workspaces);
        if !workspaces.may_create(&key) {
            return Err(WorkspaceError::MayNotCreate.into());
        }
        let id = format!(
            "ws-{}",
            bs58::encode(rand::random::<[u8; 12]>()).into_string()
        );
        let at = now().0;
        let mut workspace = Workspace::new(
            id.clone(),
            name.to_owned(),
            key,
            member_name(body.member_name.as_deref()),
            at,
        );
        // The workspace's automations document is the relay's from the start,
        // listed in the same transaction (see `automations::rules_document`).
        let keys = s.relay.relay_keys().map_err(WorkspaceError::from)?;
        let relay_key = keys.public_key();
        let (rules, changes) = new_rules_document(&keys, &id, now())
            .map_err(|e| WorkspaceError::Invalid(e.to_string()))?;
        workspace.documents.insert(
            rules,
            DocInfo {
                thread_of: None,
                added_by: relay_key,
                added_at: at,
            },
        );
        let mut created = event("workspace-created", key);
        created.detail = name.to_owned();
        let bindings = [(keys.actor.clone(), relay_key)];
        workspaces.commit_with(workspace, vec![created], |rows, events| {
            s.relay.store().save_automation(&AutomationWrite {
                changes: vec![(rules, changes.clone())],
                bindings: &bindings,
                workspace: Some(rows),
                events,
                ..AutomationWrite::default()
            })
        })?;
        (id, rules, changes, relay_key)
    };
    // The other relays of a cluster hold the rules document too.
    if let Some(cluster) = s.relay.cluster.get()
        && let Err(e) = cluster
            .publish(rules, &changes, None, Some(relay_key))
            .await
    {
        warn!(workspace = %id, error = %e, "the cluster did not take the new workspace's rules document");
    }
    info!(workspace = %id, owner = %key, "workspace created");
    Ok(Json(WorkspaceSummary {
        id,
        name: name.to_owned(),
        role: Role::Owner,
    }))
}

pub(crate) async fn list_workspaces(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<WorkspaceList> {
    let key = caller(&s.relay, &headers)?;
    let workspaces = lock(&s.relay.workspaces);
    let list = workspaces
        .memberships(&key)
        .into_iter()
        .map(|(w, role)| WorkspaceSummary {
            id: w.id.clone(),
            name: w.name.clone(),
            role,
        })
        .collect();
    Ok(Json(WorkspaceList {
        workspaces: list,
        relay_id: s.relay.relay_id.clone(),
    }))
}

pub(crate) async fn add_documents(
    State(s): State<AppState>,
    Path(ws): Path<String>,
    headers: HeaderMap,
    Json(body): Json<AddDocuments>,
) -> ApiResult<DocumentsAdded> {
    let key = caller(&s.relay, &headers)?;
    require(&s.relay, &ws, key, Role::Client, "add documents")?;
    // A document the relay already holds joins only if everything in it
    // was written by members of this workspace or the caller: nobody lists
    // (and so takes over) what someone else wrote.
    let mut authors = Vec::with_capacity(body.documents.len());
    for doc in &body.documents {
        authors.push(s.relay.authors(doc.id).map_err(WorkspaceError::from)?);
    }
    // A document listed as a thread must be one, about the record it
    // names: otherwise a client who may only comment could make a record.
    let mut not_threads = Vec::new();
    for doc in &body.documents {
        if let Some(record) = doc.thread_of
            && !s
                .relay
                .is_thread_of(doc.id, record)
                .map_err(WorkspaceError::from)?
        {
            not_threads.push(doc.id);
        }
    }
    // What a member wrote outside the workspace counts once it is listed.
    let limit = s.relay.config.limits.max_workspace_bytes;
    if limit > 0 {
        let new: Vec<DocumentId> = {
            let workspaces = lock(&s.relay.workspaces);
            body.documents
                .iter()
                .map(|d| d.id)
                .filter(|id| workspaces.home_of(*id) != Some(ws.as_str()))
                .collect()
        };
        let adding = s.relay.store().size_of_all(&new);
        if adding > 0 && s.relay.workspace_bytes(&ws) + adding > limit {
            return Err(WorkspaceError::OverQuota { limit }.into());
        }
    }
    let changed = {
        let mut workspaces = lock(&s.relay.workspaces);
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
        // Only once the caller may add what it asks to is it told that a
        // document belongs elsewhere: the answer to anyone else says
        // nothing about which ids exist.
        if let Some(doc) = body.documents.iter().find(|d| workspaces.is_removed(d.id)) {
            return Err(WorkspaceError::Removed(doc.id).into());
        }
        // Nor may a thread come back onto a record that went.
        if let Some(record) = body
            .documents
            .iter()
            .filter_map(|d| d.thread_of)
            .find(|record| workspaces.is_removed(*record))
        {
            return Err(WorkspaceError::Removed(record).into());
        }
        for doc in &body.documents {
            if let Some(home) = workspaces.home_of(doc.id)
                && home != ws
            {
                return Err(WorkspaceError::DocumentElsewhere(doc.id).into());
            }
        }
        for (doc, authors) in body.documents.iter().zip(&authors) {
            let foreign = authors.iter().any(|author| {
                author
                    .is_none_or(|author| author != key && !workspace.members.contains_key(&author))
            });
            if foreign && !workspace.documents.contains_key(&doc.id) {
                return Err(WorkspaceError::WrittenByOthers(doc.id).into());
            }
        }
        if let Some(doc) = not_threads
            .iter()
            .find(|doc| !workspace.documents.contains_key(doc))
        {
            return Err(WorkspaceError::NotAThread(*doc).into());
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
    Ok(Json(DocumentsAdded {
        added: body.documents.len() as u64,
    }))
}

pub(crate) async fn list_documents(
    State(s): State<AppState>,
    Path(ws): Path<String>,
    headers: HeaderMap,
) -> ApiResult<DocumentList> {
    let key = caller(&s.relay, &headers)?;
    require(&s.relay, &ws, key, Role::Client, "list documents")?;
    let workspaces = lock(&s.relay.workspaces);
    let workspace = workspaces.get(&ws)?;
    let member = &workspace.members[&key];
    let documents = workspace
        .visible_to(&key)
        .into_iter()
        .map(|doc| {
            let thread_of = workspace.documents[&doc].thread_of;
            let shared = thread_of.unwrap_or(doc);
            DocumentEntry {
                id: doc,
                thread_of,
                access: workspace.access(&key, doc),
                level: (!member.role.is_staff())
                    .then(|| {
                        member
                            .shares
                            .get(&shared)
                            .copied()
                            .or(member.workspace_level)
                    })
                    .flatten(),
            }
        })
        .collect();
    Ok(Json(DocumentList { documents }))
}

pub(crate) async fn list_people(
    State(s): State<AppState>,
    Path(ws): Path<String>,
    headers: HeaderMap,
) -> ApiResult<PeopleList> {
    let key = caller(&s.relay, &headers)?;
    require(&s.relay, &ws, key, Role::Client, "list people")?;
    let workspaces = lock(&s.relay.workspaces);
    let people = workspaces
        .get(&ws)?
        .members
        .iter()
        .map(|(key, member)| Person {
            key: *key,
            name: member.name.clone(),
        })
        .collect();
    Ok(Json(PeopleList { people }))
}

pub(crate) async fn list_members(
    State(s): State<AppState>,
    Path(ws): Path<String>,
    headers: HeaderMap,
) -> ApiResult<MemberList> {
    let key = caller(&s.relay, &headers)?;
    require(&s.relay, &ws, key, Role::Staff, "list members")?;
    let workspaces = lock(&s.relay.workspaces);
    let workspace = workspaces.get(&ws)?;
    let members = workspace
        .members
        .iter()
        .map(|(key, member)| MemberEntry {
            key: *key,
            role: member.role,
            workspace_level: member.workspace_level,
            shares: member
                .shares
                .iter()
                .map(|(document, access)| ShareEntry {
                    document: *document,
                    access: *access,
                })
                .collect(),
            added_at: member.added_at,
            name: member.name.clone(),
        })
        .collect();
    Ok(Json(MemberList { members }))
}

pub(crate) async fn remove_member(
    State(s): State<AppState>,
    Path((ws, member)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<MemberRemoved> {
    let key = caller(&s.relay, &headers)?;
    require(&s.relay, &ws, key, Role::Admin, "remove a member")?;
    let member = member_key(&member)?;
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
    Ok(Json(MemberRemoved { removed: member }))
}

/// A member's key as a path names it.
fn member_key(text: &str) -> Result<PublicKey, WorkspaceError> {
    text.parse()
        .map_err(|e| WorkspaceError::Invalid(format!("not a key: {e}")))
}

pub(crate) async fn set_role(
    State(s): State<AppState>,
    Path((ws, member)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<MemberRole>,
) -> ApiResult<MemberRole> {
    let key = caller(&s.relay, &headers)?;
    require(&s.relay, &ws, key, Role::Admin, "change a member's role")?;
    let member = member_key(&member)?;
    let was = {
        let mut workspaces = lock(&s.relay.workspaces);
        let mut workspace = workspaces.get(&ws)?.clone();
        let entry = workspace
            .members
            .get_mut(&member)
            .ok_or(WorkspaceError::UnknownMember(member))?;
        if entry.role == Role::Owner || body.role == Role::Owner {
            return Err(WorkspaceError::OwnerRole.into());
        }
        let was = entry.role;
        if was == body.role {
            return Ok(Json(body));
        }
        entry.role = body.role;
        let mut changed = event("member-role-changed", key);
        changed.member = Some(member);
        changed.detail = format!("{was:?} to {:?}", body.role).to_lowercase();
        workspaces.commit(s.relay.store(), workspace, vec![changed])?;
        was
    };
    info!(workspace = %ws, member = %member, from = ?was, to = ?body.role, "member role changed");
    // Fewer documents at once for a demotion; more for a promotion.
    if body.role < was {
        s.relay.enforce(&[member], &[member]);
    } else {
        s.relay.enforce(&[], &[member]);
    }
    Ok(Json(body))
}

pub(crate) async fn share(
    State(s): State<AppState>,
    Path(ws): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Share>,
) -> ApiResult<Share> {
    let key = caller(&s.relay, &headers)?;
    require(&s.relay, &ws, key, Role::Staff, "share a document")?;
    let level = body
        .access
        .ok_or_else(|| WorkspaceError::Invalid("`access` is read, comment or write".into()))?;
    set_share(&s.relay, &ws, key, body.document, body.member, Some(level))?;
    Ok(Json(body))
}

pub(crate) async fn unshare(
    State(s): State<AppState>,
    Path(ws): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Share>,
) -> ApiResult<Share> {
    let key = caller(&s.relay, &headers)?;
    require(&s.relay, &ws, key, Role::Staff, "unshare a document")?;
    set_share(&s.relay, &ws, key, body.document, body.member, None)?;
    Ok(Json(Share {
        access: None,
        ..body
    }))
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
            workspaces.commit_with(workspace, vec![changed], |rows, events| {
                relay
                    .store()
                    .save_workspace_sharing(rows, events, document, &heads)
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
pub(crate) struct AuditQuery {
    member: Option<PublicKey>,
    document: Option<DocumentId>,
}

pub(crate) async fn audit(
    State(s): State<AppState>,
    Path(ws): Path<String>,
    headers: HeaderMap,
    Query(query): Query<AuditQuery>,
) -> ApiResult<AuditLog> {
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
    Ok(Json(AuditLog { events }))
}
