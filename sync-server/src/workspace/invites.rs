//! Invites: created and revoked by admins, listed, and redeemed by the
//! person invited. Only the SHA-256 of an invite's secret is stored.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use rapport_model::api::{
    CreateInvite, InviteCreated, InviteEntry, InviteList, InviteRevoked, Redeem, Redeemed,
};
use rapport_protocol::ids::PublicKey;

use super::call::{ApiResult, caller, event, require};
use super::{Invite, Member, Role, Scope, WorkspaceError, member_name, sha256_hex};

use crate::relay::{Relay, lock, now};
use crate::state::AppState;

pub(crate) async fn create_invite(
    State(s): State<AppState>,
    Path(ws): Path<String>,
    headers: HeaderMap,
    Json(body): Json<CreateInvite>,
) -> ApiResult<InviteCreated> {
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
    Ok(Json(InviteCreated {
        id,
        workspace: ws,
        secret,
        role: invite.role,
        expires_at: invite.expires_at,
        uses: invite.max_uses,
    }))
}

pub(crate) async fn list_invites(
    State(s): State<AppState>,
    Path(ws): Path<String>,
    headers: HeaderMap,
) -> ApiResult<InviteList> {
    let key = caller(&s.relay, &headers)?;
    require(&s.relay, &ws, key, Role::Admin, "list invites")?;
    let workspaces = lock(&s.relay.workspaces);
    let invites = workspaces
        .get(&ws)?
        .invites
        .values()
        .map(|i| InviteEntry {
            id: i.id.clone(),
            role: i.role,
            scope: i.scope.clone(),
            expires_at: i.expires_at,
            uses: i.uses,
            max_uses: i.max_uses,
            revoked: i.revoked,
            created_by: i.created_by,
        })
        .collect();
    Ok(Json(InviteList { invites }))
}

pub(crate) async fn revoke_invite(
    State(s): State<AppState>,
    Path((ws, invite)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<InviteRevoked> {
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
    Ok(Json(InviteRevoked { revoked: invite }))
}

pub(crate) async fn redeem(
    State(s): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<Redeem>,
) -> ApiResult<Redeemed> {
    let key = caller(&s.relay, &headers)?;
    let hash = sha256_hex(body.secret.as_bytes());
    // In a cluster, an invite made through another relay a moment ago,
    // or a workspace it changed meanwhile, is read from the shared bucket
    // and the redemption decided again.
    let clustered = s.relay.control.get().is_some();
    let mut role = join(&s.relay, key, &body, &hash, !clustered);
    if clustered
        && matches!(
            role,
            Err(WorkspaceError::UnknownInvite | WorkspaceError::Conflict)
        )
        && s.relay.refresh_workspace(&body.workspace).await
    {
        role = join(&s.relay, key, &body, &hash, true);
    }
    let role = role?;
    s.relay.enforce(&[], &[key]);
    Ok(Json(Redeemed {
        workspace: body.workspace,
        role,
        key,
    }))
}

/// Redeems the invite whose secret hashes to `hash` for `key`, on this
/// relay's copy of the workspace; returns the role `key` has now. A
/// refusal is audited if this is the `last` attempt.
fn join(
    relay: &Relay,
    key: PublicKey,
    body: &Redeem,
    hash: &str,
    last: bool,
) -> Result<Role, WorkspaceError> {
    let mut workspaces = lock(&relay.workspaces);
    // An unknown workspace is answered as an unknown invite: the answer
    // says nothing about which workspaces exist.
    let mut workspace = workspaces
        .get(&body.workspace)
        .map_err(|_| WorkspaceError::UnknownInvite)?
        .clone();
    let at = now().0;
    let Some(invite) = workspace
        .invites
        .values_mut()
        .find(|i| i.secret_sha256 == hash)
    else {
        let mut refused = event("invite-refused", key);
        refused.detail = "no invite has this secret".into();
        if last {
            let _ = workspaces.record(relay.store(), &body.workspace, &[refused]);
        }
        return Err(WorkspaceError::UnknownInvite);
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
        let _ = workspaces.record(relay.store(), &body.workspace, &[refused]);
        return Err(problem);
    }
    invite.uses += 1;
    let invite = invite.clone();
    let member = workspace.members.entry(key).or_insert(Member {
        role: invite.role,
        workspace_level: None,
        shares: Default::default(),
        added_at: at,
        name: None,
        email: None,
    });
    if let Some(name) = member_name(body.name.as_deref()) {
        member.name = Some(name);
    }
    member.role = member.role.max(invite.role);
    match &invite.scope {
        Scope::Workspace { level } => member.workspace_level = member.workspace_level.max(*level),
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
    workspaces.commit(relay.store(), workspace, vec![redeemed, added])?;
    Ok(role)
}
