//! Every table of the relay's redb file.
//!
//! | table | key | value |
//! |---|---|---|
//! | `meta` | name | bytes: `relay_id`, `schema_version`, and once forms are used `relay_secret_key` and `relay_actor` (the relay's own identity, see `crate::forms`) |
//! | `changes` | (document id, sequence number) | one change: hash, dependencies, actor, bytes ([`super::codec`]) |
//! | `snapshots` | document id | a saved automerge document holding the compacted changes |
//! | `compacted` | (document id, sequence number) | hash and dependencies of a change inside the snapshot |
//! | `actors` | actor id bytes | the ed25519 public key the actor is bound to |
//! | `workspaces` | workspace id | the workspace: members, invites (JSON; a row written before `workspace_documents` existed also holds its documents, moved out when the relay opens it) |
//! | `workspace_documents` | (workspace id, document id) | a document the workspace lists: who added it, when, and the record a comment thread is on (JSON) |
//! | `audit` | (workspace id, sequence) | one audit event (JSON), append-only |
//! | `forms` | form id | an intake form: its workspace, fields, open or closed, submission count (JSON) |
//! | `automation_pending` | document id | changes the automations have not looked at yet: a generation (u64 LE) and the heads before them (32 bytes each) |
//! | `automation_shared` | document id | nothing: the document was shared since the automations last looked at it |
//! | `automation_outbox` | sequence | a webhook waiting to be delivered (JSON, `automations::webhook::Delivery`) |
//! | `claims` | document id | the ed25519 key that first wrote a document no workspace listed (see `super::claims`) |
//! | `feed` | sequence | a durable write of changes: when (u64 LE), the document (16 bytes), the changes' hashes (32 bytes each); the newest 200,000 (see `super::feed`) |
//! | `notifications` | (member key, notification id) | a mention, assignment or due task for that member (JSON, `rapport_model::api::Notification`); `meta`'s `notify_cursor` says how far the feed was read for them (see `super::notifications`) |
//! | `tombstones` | document id | a document deleted or erased: its workspace, when, and which (JSON); the relay refuses it from then on (see `super::removal`) |
//!
//! A document is its snapshot (if any) plus the run of `changes` rows under
//! its id, in the order they were stored, which is a dependency order.
//! Compaction folds `changes` rows into the snapshot and moves their hashes
//! to `compacted`, in one write transaction.
//!
//! `forms`, the `automation_` tables, `claims`, `feed`, `notifications`, `tombstones` and `workspace_documents`
//! came after schema 1 without a
//! version bump: an older relay never
//! opens the table and leaves it alone, and this one creates it on open.

use redb::TableDefinition;

/// The layout version this code writes; a file with a newer one is refused.
pub(crate) const SCHEMA_VERSION: u32 = 1;

pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

pub(crate) const CHANGES: TableDefinition<(&[u8; 16], u64), &[u8]> =
    TableDefinition::new("changes");

pub(crate) const SNAPSHOTS: TableDefinition<&[u8; 16], &[u8]> = TableDefinition::new("snapshots");

pub(crate) const COMPACTED: TableDefinition<(&[u8; 16], u64), &[u8]> =
    TableDefinition::new("compacted");

pub(crate) const WORKSPACES: TableDefinition<&str, &[u8]> = TableDefinition::new("workspaces");

pub(crate) const WORKSPACE_DOCUMENTS: TableDefinition<(&str, &[u8; 16]), &[u8]> =
    TableDefinition::new("workspace_documents");

pub(crate) const AUDIT: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("audit");

pub(crate) const ACTORS: TableDefinition<&[u8], &[u8; 32]> = TableDefinition::new("actors");

pub(crate) const FORMS: TableDefinition<&str, &[u8]> = TableDefinition::new("forms");

pub(crate) const AUTOMATION_PENDING: TableDefinition<&[u8; 16], &[u8]> =
    TableDefinition::new("automation_pending");

pub(crate) const AUTOMATION_OUTBOX: TableDefinition<u64, &[u8]> =
    TableDefinition::new("automation_outbox");

pub(crate) const AUTOMATION_SHARED: TableDefinition<&[u8; 16], ()> =
    TableDefinition::new("automation_shared");

pub(crate) const CLAIMS: TableDefinition<&[u8; 16], &[u8; 32]> = TableDefinition::new("claims");

pub(crate) const TOMBSTONES: TableDefinition<&[u8; 16], &[u8]> = TableDefinition::new("tombstones");

pub(crate) const FEED: TableDefinition<u64, &[u8]> = TableDefinition::new("feed");

pub(crate) const NOTIFICATIONS: TableDefinition<(&[u8; 32], &str), &[u8]> =
    TableDefinition::new("notifications");
