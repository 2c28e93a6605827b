//! The relay's workspace API, from the client's side: workspaces, invites,
//! members, sharing, the audit log and intake forms. Every call signs a
//! fresh token.
//!
//! Calls block; from async code run them on a blocking thread.

use rapport_protocol::ids::{DocumentId, PublicKey};
use rapport_protocol::token;
use serde_json::{Value, json};

use crate::identity::Identity;
use crate::repo::now;
use crate::sync::RelayConfig;

pub use rapport_protocol::access::{Level, Role};

mod forms;
pub use forms::{FieldType, FormField, FormInfo, NewForm};

/// Why an API call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The relay answered with a refusal.
    #[error("the relay refused (HTTP {status}): {message}")]
    Refused { status: u16, message: String },
    /// The relay could not be reached or answered nonsense.
    #[error("cannot reach the relay at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// An invite link that is not one.
    #[error("`{0}` is not an invite link (expected RELAY_URL#join=WORKSPACE.SECRET)")]
    BadLink(String),
    /// No form, or more than one, matches what was asked for.
    #[error("{0}")]
    UnknownForm(String),
}

impl ApiError {
    /// The HTTP status of a refusal.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A created invite: share [`InviteLink::to_string`] with the invitee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteLink {
    /// The relay's WebSocket URL.
    pub relay: String,
    pub workspace: String,
    pub secret: String,
}

impl std::fmt::Display for InviteLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}#join={}.{}", self.relay, self.workspace, self.secret)
    }
}

impl std::str::FromStr for InviteLink {
    type Err = ApiError;

    fn from_str(text: &str) -> Result<Self, ApiError> {
        let bad = || ApiError::BadLink(text.chars().take(120).collect());
        let (relay, fragment) = text.split_once("#join=").ok_or_else(bad)?;
        let (workspace, secret) = fragment.split_once('.').ok_or_else(bad)?;
        if !(relay.starts_with("ws://") || relay.starts_with("wss://"))
            || workspace.is_empty()
            || secret.is_empty()
        {
            return Err(bad());
        }
        Ok(Self {
            relay: relay.to_owned(),
            workspace: workspace.to_owned(),
            secret: secret.to_owned(),
        })
    }
}

/// What an invite grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteRequest {
    pub role: Role,
    /// Documents and levels; empty for the whole workspace.
    pub documents: Vec<(DocumentId, Level)>,
    /// For clients invited to the whole workspace.
    pub level: Option<Level>,
    pub expires_in_secs: u64,
    pub uses: u32,
}

/// The relay's API, called as `identity`.
#[derive(Debug, Clone)]
pub struct RelayApi {
    base: String,
    relay: RelayConfig,
    audience: String,
    identity: Identity,
    agent: ureq::Agent,
    /// The person's name, given to the relay when they create or join a
    /// workspace.
    name: Option<String>,
}

impl RelayApi {
    /// The API of `relay`, which must use tokens.
    pub fn new(relay: &RelayConfig, identity: Identity) -> Result<Self, ApiError> {
        let audience = relay
            .audience
            .clone()
            .ok_or_else(|| ApiError::Unreachable {
                url: relay.url.clone(),
                reason: "this relay runs without identities (--open); workspaces need tokens"
                    .into(),
            })?;
        Ok(Self {
            base: http_base(&relay.url),
            relay: relay.clone(),
            audience,
            identity,
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(std::time::Duration::from_secs(30)))
                .build()
                .into(),
            name: None,
        })
    }

    /// The relay id (token audience) of the relay at `url`, from `/api/info`.
    pub fn relay_id(url: &str) -> Result<String, ApiError> {
        let info_url = format!("{}/api/info", http_base(url));
        let unreachable = |reason: String| ApiError::Unreachable {
            url: url.to_owned(),
            reason,
        };
        let mut response = ureq::get(&info_url)
            .call()
            .map_err(|e| unreachable(e.to_string()))?;
        let info: Value = response
            .body_mut()
            .read_json()
            .map_err(|e| unreachable(e.to_string()))?;
        info["relay_id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| unreachable("no relay_id in /api/info".into()))
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, ApiError> {
        let url = format!("{}{path}", self.base);
        let token = token::mint(
            self.identity.signing_key(),
            &self.audience,
            now(),
            60,
            &mut rand::rng(),
        )
        .map_err(|e| ApiError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        let bearer = format!("Bearer {token}");
        let result = match (method, body) {
            ("GET", _) => self.agent.get(&url).header("Authorization", &bearer).call(),
            ("DELETE", None) => self
                .agent
                .delete(&url)
                .header("Authorization", &bearer)
                .call(),
            ("DELETE", Some(body)) => self
                .agent
                .delete(&url)
                .header("Authorization", &bearer)
                .force_send_body()
                .send_json(body),
            (_, body) => self
                .agent
                .post(&url)
                .header("Authorization", &bearer)
                .send_json(body.unwrap_or(Value::Null)),
        };
        let mut response = result.map_err(|e| ApiError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        let status = response.status().as_u16();
        let value: Value = response.body_mut().read_json().unwrap_or(Value::Null);
        if status >= 400 {
            return Err(ApiError::Refused {
                status,
                message: value["error"]
                    .as_str()
                    .unwrap_or("no reason given")
                    .to_owned(),
            });
        }
        Ok(value)
    }

    /// Gives the relay `name` as this person's name when they create or
    /// join a workspace; the other members see it.
    pub fn with_name(mut self, name: &str) -> Self {
        self.name = (!name.trim().is_empty()).then(|| name.trim().to_owned());
        self
    }

    /// Creates a workspace owned by this identity; returns its id.
    pub fn create_workspace(&self, name: &str) -> Result<String, ApiError> {
        let body = json!({ "name": name, "member_name": self.name });
        let answer = self.call("POST", "/api/workspaces", Some(body))?;
        Ok(answer["id"].as_str().unwrap_or_default().to_owned())
    }

    /// The workspaces this identity belongs to.
    pub fn workspaces(&self) -> Result<Value, ApiError> {
        self.call("GET", "/api/workspaces", None)
    }

    /// Puts documents in a workspace; `thread_of` names the record a
    /// comment thread belongs to.
    pub fn add_documents(
        &self,
        workspace: &str,
        documents: &[(DocumentId, Option<DocumentId>)],
    ) -> Result<(), ApiError> {
        let list: Vec<Value> = documents
            .iter()
            .map(|(id, thread_of)| json!({ "id": id, "thread_of": thread_of }))
            .collect();
        self.call(
            "POST",
            &format!("/api/workspaces/{workspace}/documents"),
            Some(json!({ "documents": list })),
        )
        .map(drop)
    }

    /// The documents of a workspace this identity may see.
    pub fn documents(&self, workspace: &str) -> Result<Vec<DocumentId>, ApiError> {
        let answer = self.call(
            "GET",
            &format!("/api/workspaces/{workspace}/documents"),
            None,
        )?;
        Ok(answer["documents"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d["id"].as_str()?.parse().ok())
            .collect())
    }

    /// Creates an invite and returns its link.
    pub fn create_invite(
        &self,
        workspace: &str,
        request: &InviteRequest,
    ) -> Result<InviteLink, ApiError> {
        let body = json!({
            "role": request.role,
            "documents": request.documents,
            "level": request.level,
            "expires_in_secs": request.expires_in_secs,
            "uses": request.uses,
        });
        let answer = self.call(
            "POST",
            &format!("/api/workspaces/{workspace}/invites"),
            Some(body),
        )?;
        Ok(InviteLink {
            relay: self.relay.url.clone(),
            workspace: workspace.to_owned(),
            secret: answer["secret"].as_str().unwrap_or_default().to_owned(),
        })
    }

    /// The workspace's invites (never their secrets).
    pub fn invites(&self, workspace: &str) -> Result<Value, ApiError> {
        self.call("GET", &format!("/api/workspaces/{workspace}/invites"), None)
    }

    /// Revokes an invite by id.
    pub fn revoke_invite(&self, workspace: &str, invite: &str) -> Result<(), ApiError> {
        self.call(
            "DELETE",
            &format!("/api/workspaces/{workspace}/invites/{invite}"),
            None,
        )
        .map(drop)
    }

    /// Redeems an invite: this identity joins the workspace.
    pub fn redeem(&self, link: &InviteLink) -> Result<Role, ApiError> {
        let answer = self.call(
            "POST",
            "/api/invites/redeem",
            Some(json!({ "workspace": link.workspace, "secret": link.secret, "name": self.name })),
        )?;
        serde_json::from_value(answer["role"].clone()).map_err(|e| ApiError::Unreachable {
            url: self.base.clone(),
            reason: e.to_string(),
        })
    }

    /// The members of a workspace.
    pub fn members(&self, workspace: &str) -> Result<Value, ApiError> {
        self.call("GET", &format!("/api/workspaces/{workspace}/members"), None)
    }

    /// Removes a member.
    pub fn remove_member(&self, workspace: &str, member: &PublicKey) -> Result<(), ApiError> {
        self.call(
            "DELETE",
            &format!("/api/workspaces/{workspace}/members/{member}"),
            None,
        )
        .map(drop)
    }

    /// Shares a document with a member (its comment thread goes with it).
    pub fn share(
        &self,
        workspace: &str,
        document: DocumentId,
        member: &PublicKey,
        level: Level,
    ) -> Result<(), ApiError> {
        let body = json!({ "document": document, "member": member, "access": level });
        self.call(
            "POST",
            &format!("/api/workspaces/{workspace}/shares"),
            Some(body),
        )
        .map(drop)
    }

    /// Stops sharing a document with a member.
    pub fn unshare(
        &self,
        workspace: &str,
        document: DocumentId,
        member: &PublicKey,
    ) -> Result<(), ApiError> {
        let body = json!({ "document": document, "member": member });
        self.call(
            "DELETE",
            &format!("/api/workspaces/{workspace}/shares"),
            Some(body),
        )
        .map(drop)
    }

    /// The audit log, optionally only about one member or document.
    pub fn audit(
        &self,
        workspace: &str,
        member: Option<&PublicKey>,
        document: Option<DocumentId>,
    ) -> Result<Vec<Value>, ApiError> {
        let mut query = Vec::new();
        if let Some(member) = member {
            query.push(format!("member={member}"));
        }
        if let Some(document) = document {
            query.push(format!("document={document}"));
        }
        let path = format!("/api/workspaces/{workspace}/audit?{}", query.join("&"));
        let answer = self.call("GET", &path, None)?;
        Ok(answer["events"].as_array().cloned().unwrap_or_default())
    }
}

/// `ws://host:port/sync` → `http://host:port`.
fn http_base(url: &str) -> String {
    let rest = url
        .strip_prefix("wss://")
        .map(|r| format!("https://{r}"))
        .or_else(|| url.strip_prefix("ws://").map(|r| format!("http://{r}")))
        .unwrap_or_else(|| url.to_owned());
    match rest
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| rest[start..].find('/').map(|j| start + j))
    {
        Some(path) => rest[..path].to_owned(),
        None => rest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invite_links_round_trip_and_refuse_garbage() {
        let link = InviteLink {
            relay: "ws://127.0.0.1:3030/sync".into(),
            workspace: "ws-abc".into(),
            secret: "s3cr3t".into(),
        };
        assert_eq!(link.to_string().parse::<InviteLink>().unwrap(), link);
        for bad in [
            "",
            "ws://x/sync",
            "http://x#join=a.b",
            "ws://x#join=.b",
            "ws://x#join=a.",
        ] {
            assert!(bad.parse::<InviteLink>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_http_base_drops_the_path() {
        assert_eq!(
            http_base("ws://127.0.0.1:3030/sync"),
            "http://127.0.0.1:3030"
        );
        assert_eq!(
            http_base("wss://relay.example/sync?x=1"),
            "https://relay.example"
        );
        assert_eq!(http_base("ws://h:1"), "http://h:1");
    }
}
