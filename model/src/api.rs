//! The relay's HTTP API, as types: every request body and every answer of
//! `/api/info`, `/api/workspaces` and `/api/invites`. The relay serializes
//! these, `rapport-client` and the web app read them (the web app through
//! TypeScript generated from this file, `web/src/generated/api.ts`).
//!
//! Keys and document ids travel as their base58 text. Times are unix
//! milliseconds. A refusal is an [`ErrorBody`] with a 4xx or 5xx status.

use rapport_protocol::ids::{DocumentId, PublicKey};
use serde::{Deserialize, Serialize};

use crate::access::{Access, Level, Role};
use crate::workspace::{AuditEvent, Scope};

/// `GET /api/info`: who the relay is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct RelayInfo {
    /// The audience every token must name.
    pub relay_id: String,
    /// The relay's peer id in the sync protocol.
    pub peer_id: String,
    pub version: String,
    /// The sync protocol version, `"1"`.
    pub protocol: String,
    /// `"token"` or `"open"`.
    pub auth: String,
    /// The largest WebSocket message the relay accepts.
    pub max_frame_bytes: u64,
    /// The address people reach the relay at, when the operator set one
    /// (`--public-url`): clients keep it as the relay's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
}

/// Every refusal: `{"error": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct ErrorBody {
    /// What went wrong, in words for a person.
    pub error: String,
}

/// `POST /api/workspaces`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct CreateWorkspace {
    pub name: String,
    /// The creator's own name, shown to the other members.
    #[serde(default)]
    pub member_name: Option<String>,
}

/// A workspace as its member sees it: the answer to
/// [`CreateWorkspace`], and one entry of [`WorkspaceList`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct WorkspaceSummary {
    pub id: String,
    pub name: String,
    /// The caller's role in it.
    pub role: Role,
}

/// `GET /api/workspaces`: the caller's workspaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct WorkspaceList {
    pub workspaces: Vec<WorkspaceSummary>,
    pub relay_id: String,
}

/// `POST /api/workspaces/{ws}/documents`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct AddDocuments {
    pub documents: Vec<NewDocument>,
}

/// One document to put in a workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct NewDocument {
    #[cfg_attr(test, ts(as = "String"))]
    pub id: DocumentId,
    /// For a comment thread: the record it is on.
    #[serde(default)]
    #[cfg_attr(test, ts(as = "Option<String>"))]
    pub thread_of: Option<DocumentId>,
}

/// The answer to [`AddDocuments`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct DocumentsAdded {
    pub added: u64,
}

/// `POST /api/workspaces/{ws}/documents/remove` (admins): deletes
/// documents for good, with the comment threads on them; with `erase`, as
/// an erasure of personal data (the relay's file is compacted after, and
/// the audit log names no document).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct RemoveDocuments {
    #[cfg_attr(test, ts(as = "Vec<String>"))]
    pub documents: Vec<DocumentId>,
    #[serde(default)]
    pub erase: bool,
}

/// The answer to [`RemoveDocuments`]: every document removed, threads
/// included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct DocumentsRemoved {
    #[cfg_attr(test, ts(as = "Vec<String>"))]
    pub removed: Vec<DocumentId>,
}

/// One entry of the change feed (`GET /api/workspaces/{ws}/changes`): a
/// durable write of changes to a document the caller may read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct ChangeEntry {
    /// Where this entry is in the feed: `since=` it resumes after it.
    pub cursor: String,
    #[cfg_attr(test, ts(as = "String"))]
    pub document: DocumentId,
    /// `customer`, `task`, `requirements` or `thread`; empty if the
    /// document holds no record.
    pub kind: String,
    /// The customer's name or the title; empty for a thread.
    pub title: String,
    /// The key that wrote the changes (the relay's own for automations
    /// and forms).
    #[cfg_attr(test, ts(as = "Option<String>"))]
    pub by: Option<PublicKey>,
    /// Their name in the workspace, if they gave one.
    pub by_name: Option<String>,
    /// When the relay stored it, unix milliseconds.
    #[cfg_attr(test, ts(type = "number"))]
    pub at: u64,
    /// The top-level fields the changes touched (`stage`, `comments`, …).
    pub fields: Vec<String>,
}

/// A page of the change feed, oldest first, and the cursor to ask from
/// next (the same as `since` when nothing was new).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct ChangePage {
    pub changes: Vec<ChangeEntry>,
    pub next: String,
}

/// Something a member should know about: a mention, an assignment, a task
/// due today. Kept by the relay per member
/// (`GET /api/workspaces/{ws}/notifications`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Notification {
    /// Unique for the member: `mention:THREAD:COMMENT`,
    /// `assigned:TASK:CHANGE` or `due:TASK:DATE`.
    pub id: String,
    /// `mention`, `assigned` or `due-today`.
    pub kind: String,
    /// The record it is about (for a mention, the record the thread is on).
    #[cfg_attr(test, ts(as = "String"))]
    pub record: DocumentId,
    /// The record's title or the customer's name.
    pub title: String,
    /// Who mentioned or assigned; none for a due date.
    #[cfg_attr(test, ts(as = "Option<String>"))]
    pub by: Option<PublicKey>,
    pub by_name: Option<String>,
    /// The comment's text, for a mention (at most 280 characters).
    pub text: String,
    /// When it happened, unix milliseconds.
    #[cfg_attr(test, ts(type = "number"))]
    pub at: u64,
    pub read: bool,
}

/// The caller's notifications in a workspace, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct NotificationList {
    pub notifications: Vec<Notification>,
}

/// `POST /api/workspaces/{ws}/notifications/read`: marks the caller's
/// notifications read, these ids or (none named) all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct MarkRead {
    #[serde(default)]
    pub ids: Vec<String>,
}

/// The answer to [`MarkRead`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct MarkedRead {
    #[cfg_attr(test, ts(type = "number"))]
    pub marked: u64,
}

/// `PUT /api/workspaces/{ws}/members/me/email`: where the caller's
/// notifications are e-mailed; `null` stops them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct NotifyEmail {
    pub email: Option<String>,
}

/// `GET /api/workspaces/{ws}/documents`: what the caller may see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct DocumentList {
    pub documents: Vec<DocumentEntry>,
}

/// One document the caller may see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct DocumentEntry {
    #[cfg_attr(test, ts(as = "String"))]
    pub id: DocumentId,
    /// For a comment thread: the record it is on.
    #[cfg_attr(test, ts(as = "Option<String>"))]
    pub thread_of: Option<DocumentId>,
    /// What the caller may do with it: `read` or `write`.
    pub access: Access,
    /// For a client: the level it was shared at (what the page says when
    /// it shows a document read-only); `None` for staff.
    #[serde(default)]
    pub level: Option<Level>,
}

/// `GET /api/workspaces/{ws}/members`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct MemberList {
    pub members: Vec<MemberEntry>,
}

/// One member, as staff see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct MemberEntry {
    #[cfg_attr(test, ts(as = "String"))]
    pub key: PublicKey,
    pub role: Role,
    /// For clients invited to the whole workspace.
    pub workspace_level: Option<Level>,
    pub shares: Vec<ShareEntry>,
    pub added_at: u64,
    pub name: Option<String>,
}

/// One document shared with a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct ShareEntry {
    #[cfg_attr(test, ts(as = "String"))]
    pub document: DocumentId,
    pub access: Level,
}

/// `GET /api/workspaces/{ws}/people`: every member's key and name, for
/// any member (a client too), so that comments and presence show names.
/// Roles and shares stay with [`MemberList`], for staff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct PeopleList {
    pub people: Vec<Person>,
}

/// One member as every other member sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Person {
    #[cfg_attr(test, ts(as = "String"))]
    pub key: PublicKey,
    pub name: Option<String>,
}

/// The answer to `DELETE /api/workspaces/{ws}/members/{key}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct MemberRemoved {
    #[cfg_attr(test, ts(as = "String"))]
    pub removed: PublicKey,
}

/// `PUT /api/workspaces/{ws}/members/{key}/role`: the member's new role
/// (admins; never `owner`, and the owner keeps theirs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct MemberRole {
    pub role: Role,
}

/// `POST /api/workspaces/{ws}/shares` (with `access`) and `DELETE` (without).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Share {
    #[cfg_attr(test, ts(as = "String"))]
    pub document: DocumentId,
    #[cfg_attr(test, ts(as = "String"))]
    pub member: PublicKey,
    /// Absent when unsharing.
    #[serde(default)]
    pub access: Option<Level>,
}

/// `POST /api/workspaces/{ws}/invites`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct CreateInvite {
    pub role: Role,
    /// Documents and levels; empty for the whole workspace.
    #[serde(default)]
    #[cfg_attr(test, ts(as = "Vec<(String, Level)>"))]
    pub documents: Vec<(DocumentId, Level)>,
    /// For clients invited to the whole workspace.
    #[serde(default)]
    pub level: Option<Level>,
    pub expires_in_secs: u64,
    pub uses: u32,
}

/// The answer to [`CreateInvite`]: the secret, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct InviteCreated {
    pub id: String,
    pub workspace: String,
    pub secret: String,
    pub role: Role,
    pub expires_at: u64,
    pub uses: u32,
}

/// `GET /api/workspaces/{ws}/invites`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct InviteList {
    pub invites: Vec<InviteEntry>,
}

/// One invite, never with its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct InviteEntry {
    pub id: String,
    pub role: Role,
    pub scope: Scope,
    pub expires_at: u64,
    pub uses: u32,
    pub max_uses: u32,
    pub revoked: bool,
    #[cfg_attr(test, ts(as = "String"))]
    pub created_by: PublicKey,
}

/// The answer to `DELETE /api/workspaces/{ws}/invites/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct InviteRevoked {
    pub revoked: String,
}

/// `POST /api/invites/redeem`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Redeem {
    pub workspace: String,
    pub secret: String,
    /// The redeemer's name, shown to the other members.
    #[serde(default)]
    pub name: Option<String>,
}

/// The answer to [`Redeem`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Redeemed {
    pub workspace: String,
    pub role: Role,
    #[cfg_attr(test, ts(as = "String"))]
    pub key: PublicKey,
}

/// `GET /api/workspaces/{ws}/audit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct AuditLog {
    pub events: Vec<AuditEvent>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_read_as_the_relay_always_took_them() {
        let invite: CreateInvite = serde_json::from_str(
            r#"{"role":"client","documents":[["2FR27bUHzHLUMtji5HeRNij34sFy","comment"]],"expires_in_secs":60,"uses":1}"#,
        )
        .unwrap();
        assert_eq!(invite.role, Role::Client);
        assert_eq!(invite.documents[0].1, Level::Comment);
        assert_eq!(invite.level, None);
        let share: Share = serde_json::from_str(
            r#"{"document":"2FR27bUHzHLUMtji5HeRNij34sFy","member":"11111111111111111111111111111111"}"#,
        )
        .unwrap();
        assert_eq!(share.access, None);
    }
}
