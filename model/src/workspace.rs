//! Workspaces, members, shared documents, invites and the audit log: the
//! data behind the access policy, as the relay stores it, and the policy
//! itself ([`Workspace::access`]).

use std::collections::BTreeMap;

use rapport_protocol::ids::{DocumentId, PublicKey};
use serde::{Deserialize, Serialize};

use crate::access::{Access, Level, Role};

/// A member of a workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub role: Role,
    /// For clients invited to the whole workspace: their level on every
    /// document.
    #[serde(default)]
    pub workspace_level: Option<Level>,
    /// Documents shared with this member, and how.
    #[serde(default)]
    pub shares: BTreeMap<DocumentId, Level>,
    pub added_at: u64,
    /// The name the person gave, shown to the other members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where the relay e-mails this member's notifications, if they asked
    /// it to (and its operator set up e-mail); shown to nobody.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// A person's name as given: trimmed, one line, at most 100 characters;
/// `None` if nothing is left.
pub fn member_name(given: Option<&str>) -> Option<String> {
    let name: String = given?
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(100)
        .collect();
    (!name.is_empty()).then_some(name)
}

/// A document of a workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocInfo {
    /// For a comment thread: the record it belongs to.
    #[serde(default)]
    pub thread_of: Option<DocumentId>,
    pub added_by: PublicKey,
    pub added_at: u64,
}

/// What an invite grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum Scope {
    /// Every document of the workspace (clients at `level`).
    Workspace { level: Option<Level> },
    /// Named documents, each at a level.
    Documents {
        #[cfg_attr(test, ts(as = "Vec<(String, Level)>"))]
        documents: Vec<(DocumentId, Level)>,
    },
}

/// An invite. The secret itself is never stored, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    pub id: String,
    pub secret_sha256: String,
    pub role: Role,
    pub scope: Scope,
    pub expires_at: u64,
    pub max_uses: u32,
    pub uses: u32,
    pub revoked: bool,
    pub created_by: PublicKey,
    pub created_at: u64,
}

/// A workspace and everything in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workspace {
    pub id: String,
    pub name: String,
    pub created_by: PublicKey,
    pub created_at: u64,
    #[serde(default)]
    pub members: BTreeMap<PublicKey, Member>,
    /// Stored as rows of their own, not in the workspace's row (listing a
    /// document must not rewrite every other listing): never serialized
    /// with the workspace, still read from an older row that has them.
    #[serde(default, skip_serializing)]
    pub documents: BTreeMap<DocumentId, DocInfo>,
    #[serde(default)]
    pub invites: BTreeMap<String, Invite>,
    /// Keys removed from the workspace.
    #[serde(default)]
    pub removed: BTreeMap<PublicKey, u64>,
}

impl Workspace {
    /// A new workspace `id` called `name`, made at `at` (unix
    /// milliseconds) by `owner`, its only member, who gave `owner_name`.
    pub fn new(
        id: String,
        name: String,
        owner: PublicKey,
        owner_name: Option<String>,
        at: u64,
    ) -> Self {
        let mut workspace = Self {
            id,
            name,
            created_by: owner,
            created_at: at,
            members: BTreeMap::new(),
            documents: BTreeMap::new(),
            invites: BTreeMap::new(),
            removed: BTreeMap::new(),
        };
        workspace.members.insert(
            owner,
            Member {
                role: Role::Owner,
                workspace_level: None,
                shares: BTreeMap::new(),
                added_at: at,
                name: owner_name,
                email: None,
            },
        );
        workspace
    }

    /// What `key` may do with `document` of this workspace.
    ///
    /// The workspace's automations document is the exception to roles and
    /// shares: admins and owners write it, staff read it, clients never
    /// see it, so that nobody else can make the relay act.
    pub fn access(&self, key: &PublicKey, document: DocumentId) -> Access {
        let Some(member) = self.members.get(key) else {
            return Access::None;
        };
        if document == crate::automation::document::document_id(&self.id) {
            return match member.role {
                Role::Owner | Role::Admin => Access::Write,
                Role::Staff => Access::Read,
                Role::Client => Access::None,
            };
        }
        if member.role.is_staff() {
            return Access::Write;
        }
        let Some(info) = self.documents.get(&document) else {
            return Access::None;
        };
        let direct = member.shares.get(&document).map(|level| level.on_record());
        let via_record = info
            .thread_of
            .and_then(|record| member.shares.get(&record))
            .map(|level| level.on_thread());
        let whole = member.workspace_level.map(|level| match info.thread_of {
            Some(_) => level.on_thread(),
            None => level.on_record(),
        });
        [direct, via_record, whole]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(Access::None)
    }

    /// Every document `key` may see.
    pub fn visible_to(&self, key: &PublicKey) -> Vec<DocumentId> {
        self.documents
            .keys()
            .copied()
            .filter(|doc| self.access(key, *doc) != Access::None)
            .collect()
    }
}

/// One entry of a workspace's audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct AuditEvent {
    /// Unix milliseconds.
    pub at: u64,
    /// What happened: `workspace-created`, `invite-created`,
    /// `invite-redeemed`, `invite-refused`, `invite-revoked`,
    /// `member-added`, `member-removed`, `document-added`,
    /// `document-shared`, `document-unshared`, `change-refused`,
    /// `access-refused`, `form-created`, `form-closed`, `form-submitted`.
    pub event: String,
    /// Who did it.
    #[cfg_attr(test, ts(as = "Option<String>"))]
    pub by: Option<PublicKey>,
    /// The member concerned.
    #[cfg_attr(test, ts(as = "Option<String>"))]
    pub member: Option<PublicKey>,
    #[cfg_attr(test, ts(as = "Option<String>"))]
    pub document: Option<DocumentId>,
    /// Why, or the particulars.
    pub detail: String,
}

impl AuditEvent {
    /// An event `name` by `by` at `at`, about nothing in particular yet.
    pub fn new(name: &str, by: PublicKey, at: u64) -> Self {
        Self {
            at,
            event: name.to_owned(),
            by: Some(by),
            member: None,
            document: None,
            detail: String::new(),
        }
    }
}
