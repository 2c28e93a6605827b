// Generated from the Rust crate rapport-model (model/src/typescript.rs).
// Do not edit: change the Rust types, then run
// RAPPORT_BLESS=1 cargo test -p rapport-model typescript

/** The root of every record document besides its fields. */
export type RecordHeader = { schema: number, kind: "customer" | "task" | "requirements" | "thread" };

/**
 * A member's role in a workspace, lowest first.
 */
export type Role = "client" | "staff" | "admin" | "owner";

/**
 * What a client may do with one shared document, lowest first.
 */
export type Level = "read" | "comment" | "write";

/**
 * What a person may do with one document.
 */
export type Access = "none" | "read" | "comment" | "write";

/**
 * A customer or client: one document per customer.
 *
 * ```
 * use rapport_model::{Customer, Relationship, Stage};
 *
 * let mut doc = automerge::AutoCommit::new();
 * let mut acme = Customer::new("Acme Ltd", Relationship::Client);
 * acme.stage = Stage::Proposal;
 * acme.write(&mut doc)?;
 * assert_eq!(Customer::read(&doc)?, acme);
 * # Ok::<(), rapport_model::ModelError>(())
 * ```
 */
export type Customer = { 
/**
 * Long-term client or transactional customer.
 */
relationship: string, 
/**
 * The organisation's or person's name.
 */
name: string, 
/**
 * The contact person or decision maker.
 */
contact: string, 
/**
 * Where to write to.
 */
email: string, 
/**
 * When they became a customer.
 */
acquired: string | null, 
/**
 * When someone last spoke with them.
 */
last_contact: string | null, 
/**
 * Where they are in the lifecycle.
 */
stage: string, 
/**
 * Lead score: higher is warmer.
 */
score: number, 
/**
 * The owning sales rep, as a base58 public key.
 */
rep: string | null, 
/**
 * Free-form labels.
 */
tags: Array<string>, 
/**
 * Custom fields, by name.
 */
fields: { [key in string]?: string }, };

/**
 * One step of a task's checklist.
 */
export type ChecklistItem = { 
/**
 * What the step is.
 */
item: string, 
/**
 * Whether it is done.
 */
done: boolean, };

/**
 * A task or an order: one document each.
 *
 * Links to other documents (`subtasks`, `customer`, `parent`, `previous`,
 * `series`) are document ids in their bs58check text.
 */
export type Task = { 
/**
 * What is to be done.
 */
title: string, 
/**
 * Where it stands.
 */
status: string, 
/**
 * How urgent it is.
 */
priority: string, 
/**
 * Free-form labels.
 */
tags: Array<string>, 
/**
 * Who is on it, as base58 public keys.
 */
assignees: Array<string>, 
/**
 * When it is due.
 */
due: string | null, 
/**
 * Steps to tick off.
 */
checklist: Array<ChecklistItem>, 
/**
 * Sub-task documents.
 */
subtasks: Array<string>, 
/**
 * Custom fields, by name (the product or service ordered, say).
 */
fields: { [key in string]?: string }, 
/**
 * Recurrence: a [`Repeat`] rule (`weekly`, `every 2 weeks`,
 * `every mon,thu`, …). rapport writes the canonical form; text from
 * other writers is kept as written and parsed when the task is
 * finished ([`Task::recurrence`]).
 */
repeat: string | null, 
/**
 * The customer document this is for.
 */
customer: string | null, 
/**
 * The task this is a sub-task of.
 */
parent: string | null, 
/**
 * The occurrence this one follows, in a repeating series.
 */
previous: string | null, 
/**
 * The first task of the repeating series this one belongs to; `None`
 * on that first task itself.
 */
series: string | null, 
/**
 * The due date of the series' first occurrence: monthly and yearly
 * rules keep its day of the month.
 */
series_start: string | null, };

/**
 * A requirements document, shared with a client and written together.
 *
 * The body is an automerge text object. Edit it with
 * [`RichText::splice`] on a record read from the document, then
 * [`write`](Self::write): the write replays the splices, so concurrent edits
 * merge character by character and marks on the text (bold, links) stay.
 * A record whose body was not edited leaves the text object untouched. A
 * record built in memory ([`new`](Self::new),
 * [`from_template`](Self::from_template)) and written over an existing
 * document replaces the body with a new text object: that is a reset.
 */
export type Requirements = { 
/**
 * The document's title.
 */
title: string, 
/**
 * The customer document it is for.
 */
customer: string | null, 
/**
 * The text.
 */
body: string, };

/**
 * One comment.
 */
export type Comment = { 
/**
 * Unique within the thread; chosen by the author's device.
 */
id: string, 
/**
 * The author's base58 public key, read from the actor of the change
 * that made the comment (rapport's clients' actors name their key),
 * so nobody can write a comment in another's name. Empty, "unknown",
 * when that actor names no key (a stock client's random actor): the
 * field as written is never shown, as anyone could have written it.
 * An empty author is not written back, so reading and writing a
 * thread leaves the field of such a comment as it was.
 */
author: string, 
/**
 * When it was written, in unix milliseconds.
 */
at: number, 
/**
 * The text.
 */
body: string, 
/**
 * Base58 public keys of the people mentioned.
 */
mentions: Array<string>, 
/**
 * The comment this answers.
 */
reply_to: string | null, 
/**
 * Whether the question is settled.
 */
resolved: boolean, };

/**
 * The comments on one record.
 *
 * Comments are matched by `id` when written, so comments added on two
 * replicas at once both stay, and a change to one comment (resolving it)
 * touches only that comment.
 */
export type Thread = { 
/**
 * The document id of the record the comments are on.
 */
record: string, 
/**
 * The comments, oldest first.
 */
comments: Array<Comment>, };

/**
 * What a field holds.
 */
export type FieldType = "text" | "textarea" | "email" | "number" | "dropdown";

/**
 * One field of a form.
 */
export type FormField = { 
/**
 * The key in submissions and in the task's custom fields: lowercase
 * letters, digits, `_` and `-`.
 */
name: string, 
/**
 * What the page shows; the name, made readable, when not given.
 */
label: string, type: FieldType, required: boolean, 
/**
 * A dropdown's choices, in order.
 */
choices?: Array<string>, };

/**
 * A form as an admin defines it.
 */
export type NewForm = { name: string, title: string | null, description: string | null, fields: Array<FormField>, title_field: string | null, tags: Array<string>, };

/**
 * A form as the admin API describes it.
 */
export type FormInfo = { id: string, workspace: string, name: string, title: string, description: string, fields: Array<FormField>, title_field: string | null, tags: Array<string>, 
/**
 * The admin who defined it, base58.
 */
created_by: string, created_at: number, closed_at: number | null, submissions: number, open: boolean, 
/**
 * The page's path on the relay, `/forms/{id}`.
 */
path: string, };

/**
 * What an invite grants.
 */
export type Scope = { "kind": "workspace", level: Level | null, } | { "kind": "documents", documents: Array<[string, Level]>, };

/**
 * One entry of a workspace's audit log.
 */
export type AuditEvent = { 
/**
 * Unix milliseconds.
 */
at: number, 
/**
 * What happened: `workspace-created`, `invite-created`,
 * `invite-redeemed`, `invite-refused`, `invite-revoked`,
 * `member-added`, `member-removed`, `document-added`,
 * `document-shared`, `document-unshared`, `change-refused`,
 * `access-refused`, `form-created`, `form-closed`, `form-submitted`.
 */
event: string, 
/**
 * Who did it.
 */
by: string | null, 
/**
 * The member concerned.
 */
member: string | null, document: string | null, 
/**
 * Why, or the particulars.
 */
detail: string, };

/**
 * `GET /api/info`: who the relay is.
 */
export type RelayInfo = { 
/**
 * The audience every token must name.
 */
relay_id: string, 
/**
 * The relay's peer id in the sync protocol.
 */
peer_id: string, version: string, 
/**
 * The sync protocol version, `"1"`.
 */
protocol: string, 
/**
 * `"token"` or `"open"`.
 */
auth: string, 
/**
 * The largest WebSocket message the relay accepts.
 */
max_frame_bytes: number, 
/**
 * The address people reach the relay at, when the operator set one
 * (`--public-url`): clients keep it as the relay's address.
 */
public_url?: string | null, };

/**
 * Every refusal: `{"error": "…"}`.
 */
export type ErrorBody = { 
/**
 * What went wrong, in words for a person.
 */
error: string, };

/**
 * `POST /api/workspaces`.
 */
export type CreateWorkspace = { name: string, 
/**
 * The creator's own name, shown to the other members.
 */
member_name: string | null, };

/**
 * A workspace as its member sees it: the answer to
 * [`CreateWorkspace`], and one entry of [`WorkspaceList`].
 */
export type WorkspaceSummary = { id: string, name: string, 
/**
 * The caller's role in it.
 */
role: Role, };

/**
 * `GET /api/workspaces`: the caller's workspaces.
 */
export type WorkspaceList = { workspaces: Array<WorkspaceSummary>, relay_id: string, };

/**
 * One document to put in a workspace.
 */
export type NewDocument = { id: string, 
/**
 * For a comment thread: the record it is on.
 */
thread_of: string | null, };

/**
 * `POST /api/workspaces/{ws}/documents`.
 */
export type AddDocuments = { documents: Array<NewDocument>, };

/**
 * The answer to [`AddDocuments`].
 */
export type DocumentsAdded = { added: number, };

/**
 * One document the caller may see.
 */
export type DocumentEntry = { id: string, 
/**
 * For a comment thread: the record it is on.
 */
thread_of: string | null, 
/**
 * What the caller may do with it: `read` or `write`.
 */
access: Access, 
/**
 * For a client: the level it was shared at (what the page says when
 * it shows a document read-only); `None` for staff.
 */
level: Level | null, };

/**
 * `GET /api/workspaces/{ws}/documents`: what the caller may see.
 */
export type DocumentList = { documents: Array<DocumentEntry>, };

/**
 * One document shared with a member.
 */
export type ShareEntry = { document: string, access: Level, };

/**
 * One member, as staff see them.
 */
export type MemberEntry = { key: string, role: Role, 
/**
 * For clients invited to the whole workspace.
 */
workspace_level: Level | null, shares: Array<ShareEntry>, added_at: number, name: string | null, };

/**
 * `GET /api/workspaces/{ws}/members`.
 */
export type MemberList = { members: Array<MemberEntry>, };

/**
 * One member as every other member sees them.
 */
export type Person = { key: string, name: string | null, };

/**
 * `GET /api/workspaces/{ws}/people`: every member's key and name, for
 * any member (a client too), so that comments and presence show names.
 * Roles and shares stay with [`MemberList`], for staff.
 */
export type PeopleList = { people: Array<Person>, };

/**
 * The answer to `DELETE /api/workspaces/{ws}/members/{key}`.
 */
export type MemberRemoved = { removed: string, };

/**
 * `POST /api/workspaces/{ws}/shares` (with `access`) and `DELETE` (without).
 */
export type Share = { document: string, member: string, 
/**
 * Absent when unsharing.
 */
access: Level | null, };

/**
 * `POST /api/workspaces/{ws}/invites`.
 */
export type CreateInvite = { role: Role, 
/**
 * Documents and levels; empty for the whole workspace.
 */
documents: Array<[string, Level]>, 
/**
 * For clients invited to the whole workspace.
 */
level: Level | null, expires_in_secs: number, uses: number, };

/**
 * The answer to [`CreateInvite`]: the secret, shown this once.
 */
export type InviteCreated = { id: string, workspace: string, secret: string, role: Role, expires_at: number, uses: number, };

/**
 * One invite, never with its secret.
 */
export type InviteEntry = { id: string, role: Role, scope: Scope, expires_at: number, uses: number, max_uses: number, revoked: boolean, created_by: string, };

/**
 * `GET /api/workspaces/{ws}/invites`.
 */
export type InviteList = { invites: Array<InviteEntry>, };

/**
 * The answer to `DELETE /api/workspaces/{ws}/invites/{id}`.
 */
export type InviteRevoked = { revoked: string, };

/**
 * `POST /api/invites/redeem`.
 */
export type Redeem = { workspace: string, secret: string, 
/**
 * The redeemer's name, shown to the other members.
 */
name: string | null, };

/**
 * The answer to [`Redeem`].
 */
export type Redeemed = { workspace: string, role: Role, key: string, };

/**
 * `GET /api/workspaces/{ws}/audit`.
 */
export type AuditLog = { events: Array<AuditEvent>, };

/** The values this version knows; documents may hold others, kept as written. */
export const RELATIONSHIPS = ["client", "customer"] as const;
export const STAGES = ["lead", "prospect", "proposal", "won", "lost", "active", "churned"] as const;
export const STATUSES = ["open", "in_progress", "blocked", "done", "cancelled"] as const;
export const PRIORITIES = ["low", "normal", "high", "urgent"] as const;
export const SCHEMA_VERSION = 1;
