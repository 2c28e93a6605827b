//! Workspaces, members, shared documents and invites: the data behind the
//! access policy.

use std::collections::BTreeMap;

use rapport_protocol::ids::{DocumentId, PublicKey};
use serde::{Deserialize, Serialize};

use crate::access::Access;

pub use rapport_protocol::access::{Level, Role};

/// The access a level gives to the record itself.
pub(crate) fn on_record(level: Level) -> Access {
    match level {
        Level::Read | Level::Comment => Access::Read,
        Level::Write => Access::Write,
    }
}

/// The access a level gives to the record's comment thread.
pub(crate) fn on_thread(level: Level) -> Access {
    match level {
        Level::Read => Access::Read,
        Level::Comment | Level::Write => Access::Write,
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
    /// The name the person gave, shown to the other members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
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
        let direct = member.shares.get(&document).map(|level| on_record(*level));
        let via_record = info
            .thread_of
            .and_then(|record| member.shares.get(&record))
            .map(|level| on_thread(*level));
        let whole = member.workspace_level.map(|level| match info.thread_of {
            Some(_) => on_thread(level),
            None => on_record(level),
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
