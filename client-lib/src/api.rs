//! The relay's workspace API, from the client's side: workspaces, invites,
//! members, sharing, the audit log and intake forms. Every call signs a
//! fresh token.
//!
//! Calls block; from async code run them on a blocking thread.

use rapport_model::api::{
    AddDocuments, AuditLog, CreateInvite, CreateWorkspace, DocumentEntry, DocumentList,
    InviteCreated, InviteEntry, InviteList, MemberEntry, MemberList, MemberRole, NewDocument,
    Redeem, Redeemed, RelayInfo, Share, WorkspaceList, WorkspaceSummary,
};
use rapport_model::workspace::AuditEvent;
use rapport_protocol::ids::{DocumentId, PublicKey};
use rapport_protocol::token;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::identity::Identity;
use crate::relay_url::RelayUrl;
use crate::repo::now;
use crate::sync::RelayConfig;

pub use rapport_model::access::{Level, Role};

mod forms;
pub use rapport_model::form::{FieldType, FormField, FormInfo, NewForm};

/// What an invite grants.
pub type InviteRequest = CreateInvite;

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
    #[error("`{0}` is not an invite link (expected https://RELAY/join#WORKSPACE.SECRET)")]
    BadLink(String),
    /// A relay address that is not one.
    #[error(transparent)]
    BadRelay(#[from] crate::relay_url::BadRelayUrl),
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

/// An invite: share [`InviteLink::to_string`] with the invitee.
///
/// The link is `https://RELAY/join#WORKSPACE.SECRET`: the web app opens it
/// in a browser, `rapport join` takes it on the command line. The form
/// earlier versions printed, `RELAY_URL#join=WORKSPACE.SECRET`, still
/// parses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteLink {
    pub relay: RelayUrl,
    pub workspace: String,
    pub secret: String,
}

impl std::fmt::Display for InviteLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.relay.join_link(&self.workspace, &self.secret))
    }
}

impl std::str::FromStr for InviteLink {
    type Err = ApiError;

    fn from_str(text: &str) -> Result<Self, ApiError> {
        let bad = || ApiError::BadLink(text.chars().take(120).collect());
        let text = text.trim();
        let (relay, fragment) = match text.split_once("#join=") {
            Some(old) => old,
            None => {
                let (page, fragment) = text.split_once('#').ok_or_else(bad)?;
                let relay = page
                    .trim_end_matches('/')
                    .strip_suffix("/join")
                    .ok_or_else(bad)?;
                (relay, fragment)
            }
        };
        let (workspace, secret) = fragment.split_once('.').ok_or_else(bad)?;
        let relay: RelayUrl = relay.parse().map_err(|_| bad())?;
        if workspace.is_empty() || secret.is_empty() || secret.contains(['.', '/', ' ']) {
            return Err(bad());
        }
        Ok(Self {
            relay,
            workspace: workspace.to_owned(),
            secret: secret.to_owned(),
        })
    }
}

/// The relay's API, called as `identity`.
#[derive(Debug, Clone)]
pub struct RelayApi {
    relay: RelayUrl,
    audience: String,
    identity: Identity,
    agent: ureq::Agent,
    /// The person's name, given to the relay when they create or join a
    /// workspace.
    name: Option<String>,
}

/// A call's method.
#[derive(Debug, Clone, Copy)]
enum Method {
    Get,
    Post,
    Put,
    Delete,
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
            relay: relay.url.parse()?,
            audience,
            identity,
            agent: agent(),
            name: None,
        })
    }

    /// The address to keep for the relay reached at `url`: the public
    /// address its operator set (`--public-url`), else `url` as given.
    pub fn public_address(url: &RelayUrl, info: &RelayInfo) -> RelayUrl {
        info.public_url
            .as_deref()
            .and_then(|public| public.parse().ok())
            .unwrap_or_else(|| url.clone())
    }

    /// Who the relay at `url` is (`/api/info`): its id is the audience
    /// tokens name.
    pub fn info(url: &RelayUrl) -> Result<RelayInfo, ApiError> {
        let info_url = format!("{}/api/info", url.http_base());
        let unreachable = |reason: String| ApiError::Unreachable {
            url: url.to_string(),
            reason: crate::tls::explain(reason),
        };
        let mut response = agent()
            .get(&info_url)
            .call()
            .map_err(|e| unreachable(e.to_string()))?;
        if response.status().as_u16() != 200 {
            return Err(unreachable(format!(
                "{info_url} answered HTTP {}: is this a rapport relay?",
                response.status()
            )));
        }
        response
            .body_mut()
            .read_json()
            .map_err(|e| unreachable(format!("{info_url} is not a rapport relay's answer: {e}")))
    }

    /// The relay id (token audience) of the relay at `url`, from `/api/info`.
    pub fn relay_id(url: &str) -> Result<String, ApiError> {
        Ok(Self::info(&url.parse()?)?.relay_id)
    }

    /// The relay this API calls.
    pub fn relay(&self) -> &RelayUrl {
        &self.relay
    }

    fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, ApiError> {
        let url = format!("{}{path}", self.relay.http_base());
        let unreachable = |reason: String| ApiError::Unreachable {
            url: url.clone(),
            reason: crate::tls::explain(reason),
        };
        let token = token::mint(
            self.identity.signing_key(),
            &self.audience,
            now(),
            60,
            &mut rand::rng(),
        )
        .map_err(|e| unreachable(e.to_string()))?;
        let bearer = format!("Bearer {token}");
        let result = match (method, body) {
            (Method::Get, _) => self.agent.get(&url).header("Authorization", &bearer).call(),
            (Method::Delete, None) => self
                .agent
                .delete(&url)
                .header("Authorization", &bearer)
                .call(),
            (Method::Delete, Some(body)) => self
                .agent
                .delete(&url)
                .header("Authorization", &bearer)
                .force_send_body()
                .send_json(body),
            (Method::Post, Some(body)) => self
                .agent
                .post(&url)
                .header("Authorization", &bearer)
                .send_json(body),
            (Method::Post, None) => self
                .agent
                .post(&url)
                .header("Authorization", &bearer)
                .send_empty(),
            (Method::Put, Some(body)) => self
                .agent
                .put(&url)
                .header("Authorization", &bearer)
                .send_json(body),
            (Method::Put, None) => self
                .agent
                .put(&url)
                .header("Authorization", &bearer)
                .send_empty(),
        };
        let mut response = result.map_err(|e| unreachable(e.to_string()))?;
        let status = response.status().as_u16();
        if status >= 400 {
            let value: serde_json::Value = response.body_mut().read_json().unwrap_or_default();
            return Err(ApiError::Refused {
                status,
                message: value["error"]
                    .as_str()
                    .unwrap_or("no reason given")
                    .to_owned(),
            });
        }
        response
            .body_mut()
            .read_json()
            .map_err(|e| unreachable(format!("an answer this version cannot read: {e}")))
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        self.call(Method::Get, path, None::<&()>)
    }

    fn post<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T, ApiError> {
        self.call(Method::Post, path, Some(body))
    }

    /// Gives the relay `name` as this person's name when they create or
    /// join a workspace; the other members see it.
    pub fn with_name(mut self, name: &str) -> Self {
        self.name = (!name.trim().is_empty()).then(|| name.trim().to_owned());
        self
    }

    /// Creates a workspace owned by this identity; returns its id.
    pub fn create_workspace(&self, name: &str) -> Result<String, ApiError> {
        let body = CreateWorkspace {
            name: name.to_owned(),
            member_name: self.name.clone(),
        };
        let created: WorkspaceSummary = self.post("/api/workspaces", &body)?;
        Ok(created.id)
    }

    /// The workspaces this identity belongs to.
    pub fn workspaces(&self) -> Result<Vec<WorkspaceSummary>, ApiError> {
        Ok(self.get::<WorkspaceList>("/api/workspaces")?.workspaces)
    }

    /// Puts documents in a workspace; `thread_of` names the record a
    /// comment thread belongs to.
    pub fn add_documents(
        &self,
        workspace: &str,
        documents: &[(DocumentId, Option<DocumentId>)],
    ) -> Result<(), ApiError> {
        let body = AddDocuments {
            documents: documents
                .iter()
                .map(|&(id, thread_of)| NewDocument { id, thread_of })
                .collect(),
        };
        self.post::<serde_json::Value>(&format!("/api/workspaces/{workspace}/documents"), &body)
            .map(drop)
    }

    /// Deletes documents for good (admins), with the comment threads on
    /// them; with `erase`, as an erasure of personal data. Returns every
    /// document removed.
    pub fn remove_documents(
        &self,
        workspace: &str,
        documents: &[DocumentId],
        erase: bool,
    ) -> Result<Vec<DocumentId>, ApiError> {
        let body = rapport_model::api::RemoveDocuments {
            documents: documents.to_vec(),
            erase,
        };
        let removed: rapport_model::api::DocumentsRemoved = self.post(
            &format!("/api/workspaces/{workspace}/documents/remove"),
            &body,
        )?;
        Ok(removed.removed)
    }

    /// The change feed after `since` (a cursor, `0` or `now`): at most
    /// `limit` entries, waiting up to `wait` seconds (at most 25) for one
    /// when nothing is new.
    pub fn changes(
        &self,
        workspace: &str,
        since: &str,
        limit: usize,
        wait: u64,
    ) -> Result<rapport_model::api::ChangePage, ApiError> {
        self.get(&format!(
            "/api/workspaces/{workspace}/changes?since={since}&limit={limit}&wait={wait}"
        ))
    }

    /// This identity's notifications in a workspace, newest first: unread
    /// ones, or `all`.
    pub fn notifications(
        &self,
        workspace: &str,
        all: bool,
    ) -> Result<Vec<rapport_model::api::Notification>, ApiError> {
        let list: rapport_model::api::NotificationList = self.get(&format!(
            "/api/workspaces/{workspace}/notifications?all={all}"
        ))?;
        Ok(list.notifications)
    }

    /// Marks notifications read: these ids, or all of them when `ids` is
    /// empty. Returns how many were unread.
    pub fn mark_read(&self, workspace: &str, ids: &[String]) -> Result<u64, ApiError> {
        let body = rapport_model::api::MarkRead { ids: ids.to_vec() };
        let marked: rapport_model::api::MarkedRead = self.post(
            &format!("/api/workspaces/{workspace}/notifications/read"),
            &body,
        )?;
        Ok(marked.marked)
    }

    /// Where the relay e-mails this identity's notifications in a
    /// workspace; `None` stops them.
    pub fn set_notify_email(&self, workspace: &str, email: Option<&str>) -> Result<(), ApiError> {
        let body = rapport_model::api::NotifyEmail {
            email: email.map(str::to_owned),
        };
        self.call::<serde_json::Value>(
            Method::Put,
            &format!("/api/workspaces/{workspace}/members/me/email"),
            Some(&body),
        )
        .map(drop)
    }

    /// The documents of a workspace this identity may see, with what it
    /// may do with each.
    pub fn document_entries(&self, workspace: &str) -> Result<Vec<DocumentEntry>, ApiError> {
        let list: DocumentList = self.get(&format!("/api/workspaces/{workspace}/documents"))?;
        Ok(list.documents)
    }

    /// The ids of the documents of a workspace this identity may see.
    pub fn documents(&self, workspace: &str) -> Result<Vec<DocumentId>, ApiError> {
        Ok(self
            .document_entries(workspace)?
            .into_iter()
            .map(|entry| entry.id)
            .collect())
    }

    /// Creates an invite and returns its link.
    pub fn create_invite(
        &self,
        workspace: &str,
        request: &InviteRequest,
    ) -> Result<InviteLink, ApiError> {
        let created: InviteCreated =
            self.post(&format!("/api/workspaces/{workspace}/invites"), request)?;
        Ok(InviteLink {
            relay: self.relay.clone(),
            workspace: workspace.to_owned(),
            secret: created.secret,
        })
    }

    /// The workspace's invites (never their secrets).
    pub fn invites(&self, workspace: &str) -> Result<Vec<InviteEntry>, ApiError> {
        let list: InviteList = self.get(&format!("/api/workspaces/{workspace}/invites"))?;
        Ok(list.invites)
    }

    /// Revokes an invite by id.
    pub fn revoke_invite(&self, workspace: &str, invite: &str) -> Result<(), ApiError> {
        self.call::<serde_json::Value>(
            Method::Delete,
            &format!("/api/workspaces/{workspace}/invites/{invite}"),
            None::<&()>,
        )
        .map(drop)
    }

    /// Redeems an invite: this identity joins the workspace.
    pub fn redeem(&self, link: &InviteLink) -> Result<Role, ApiError> {
        let body = Redeem {
            workspace: link.workspace.clone(),
            secret: link.secret.clone(),
            name: self.name.clone(),
        };
        let redeemed: Redeemed = self.post("/api/invites/redeem", &body)?;
        Ok(redeemed.role)
    }

    /// The members of a workspace.
    pub fn members(&self, workspace: &str) -> Result<Vec<MemberEntry>, ApiError> {
        let list: MemberList = self.get(&format!("/api/workspaces/{workspace}/members"))?;
        Ok(list.members)
    }

    /// Every member's key and name (any member may ask).
    pub fn people(&self, workspace: &str) -> Result<Vec<rapport_model::api::Person>, ApiError> {
        let list: rapport_model::api::PeopleList =
            self.get(&format!("/api/workspaces/{workspace}/people"))?;
        Ok(list.people)
    }

    /// Removes a member.
    pub fn remove_member(&self, workspace: &str, member: &PublicKey) -> Result<(), ApiError> {
        self.call::<serde_json::Value>(
            Method::Delete,
            &format!("/api/workspaces/{workspace}/members/{member}"),
            None::<&()>,
        )
        .map(drop)
    }

    /// Changes a member's role (admins).
    pub fn set_role(
        &self,
        workspace: &str,
        member: &PublicKey,
        role: Role,
    ) -> Result<(), ApiError> {
        self.call::<serde_json::Value>(
            Method::Put,
            &format!("/api/workspaces/{workspace}/members/{member}/role"),
            Some(&MemberRole { role }),
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
        let body = Share {
            document,
            member: *member,
            access: Some(level),
        };
        self.post::<serde_json::Value>(&format!("/api/workspaces/{workspace}/shares"), &body)
            .map(drop)
    }

    /// Stops sharing a document with a member.
    pub fn unshare(
        &self,
        workspace: &str,
        document: DocumentId,
        member: &PublicKey,
    ) -> Result<(), ApiError> {
        let body = Share {
            document,
            member: *member,
            access: None,
        };
        self.call::<serde_json::Value>(
            Method::Delete,
            &format!("/api/workspaces/{workspace}/shares"),
            Some(&body),
        )
        .map(drop)
    }

    /// The audit log, optionally only about one member or document.
    pub fn audit(
        &self,
        workspace: &str,
        member: Option<&PublicKey>,
        document: Option<DocumentId>,
    ) -> Result<Vec<AuditEvent>, ApiError> {
        let mut query = Vec::new();
        if let Some(member) = member {
            query.push(format!("member={member}"));
        }
        if let Some(document) = document {
            query.push(format!("document={document}"));
        }
        let path = format!("/api/workspaces/{workspace}/audit?{}", query.join("&"));
        Ok(self.get::<AuditLog>(&path)?.events)
    }
}

fn agent() -> ureq::Agent {
    // `https://` trusts the platform's roots and any added CA (`crate::tls`).
    let roots: Vec<ureq::tls::Certificate<'static>> = crate::tls::root_certificates()
        .iter()
        .map(|der| ureq::tls::Certificate::from_der(der).to_owned())
        .collect();
    let tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(roots)))
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(30)))
        .build()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invite_links_round_trip_and_refuse_garbage() {
        let link = InviteLink {
            relay: "ws://127.0.0.1:3030/sync".parse().unwrap(),
            workspace: "ws-abc".into(),
            secret: "s3cr3t".into(),
        };
        assert_eq!(link.to_string(), "http://127.0.0.1:3030/join#ws-abc.s3cr3t");
        assert_eq!(link.to_string().parse::<InviteLink>().unwrap(), link);
        for earlier in [
            "ws://127.0.0.1:3030/sync#join=ws-abc.s3cr3t",
            "http://127.0.0.1:3030#join=ws-abc.s3cr3t",
            "http://127.0.0.1:3030/join/#ws-abc.s3cr3t",
        ] {
            assert_eq!(earlier.parse::<InviteLink>().unwrap(), link, "{earlier}");
        }
        for bad in [
            "",
            "ws://x/sync",
            "ftp://x#join=a.b",
            "ws://x#join=.b",
            "ws://x#join=a.",
            "https://x/other#a.b",
            "https://x/join#ab",
        ] {
            assert!(bad.parse::<InviteLink>().is_err(), "{bad}");
        }
    }
}
