//! Workspaces, members, shared documents and invites: the data behind the
//! access policy.

use std::collections::BTreeMap;

use rapport_protocol::ids::{DocumentId, PublicKey};
use serde::{Deserialize, Serialize};

use crate::access::Access;

/// A member's role in a workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sees only what is shared with them.
    Client,
    /// Reads and writes every document of the workspace.
    Staff,
    /// Staff who also invite, remove members and read the audit log.
    Admin,
    /// The admin who created the workspace.
    Owner,
}

impl Role {
    pub fn is_staff(self) -> bool {
        self >= Self::Staff
    }

    pub fn is_admin(self) -> bool {
        self >= Self::Admin
    }
}

/// What a client may do with one shared document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Read,
    /// Read the record; write its comment thread.
    Comment,
    Write,
}

impl Level {
    /// The access this level gives to the record itself.
    pub fn on_record(self) -> Access {
        match self {
            Self::Read | Self::Comment => Access::Read,
            Self::Write => Access::Write,
        }
    }

    /// The access this level gives to the record's comment thread.
    pub fn on_thread(self) -> Access {
        match self {
            Self::Read => Access::Read,
            Self::Comment | Self::Write => Access::Write,
        }
    }
}

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
pub enum Scope {
    /// Every document of the workspace (clients at `level`).
    Workspace { level: Option<Level> },
    /// Named documents, each at a level.
    Documents { documents: Vec<(DocumentId, Level)> },
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
    #[serde(default)]
    pub documents: BTreeMap<DocumentId, DocInfo>,
    #[serde(default)]
    pub invites: BTreeMap<String, Invite>,
    /// Keys removed from the workspace.
    #[serde(default)]
    pub removed: BTreeMap<PublicKey, u64>,
}

impl Workspace {
    /// What `key` may do with `document` of this workspace.
    pub fn access(&self, key: &PublicKey, document: DocumentId) -> Access {
        let Some(member) = self.members.get(key) else {
            return Access::None;
        };
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
