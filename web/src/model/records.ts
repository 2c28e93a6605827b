// The CRM records as the Rust model (the rapport-model crate) lays them out:
// at the root `schema` (1), `kind`, and the fields under their Rust names.
// Reading tolerates missing fields; writing touches only the fields it sets,
// so fields a newer version added stay as they are.

import * as A from "@automerge/automerge/slim"
import { bool, date, imm, immOrNull, num, optStr, str, strList, strMap } from "./values"

export { PRIORITIES, SCHEMA_VERSION, STAGES, STATUSES } from "../generated/model"
import { SCHEMA_VERSION } from "../generated/model"
import { base58, fromHex } from "../lib/encoding"

export type Kind = "customer" | "task" | "requirements" | "thread"


export interface Customer {
  kind: "customer"
  relationship: string
  name: string
  contact: string
  email: string
  acquired: string | null
  last_contact: string | null
  stage: string
  score: number
  rep: string | null
  tags: string[]
  fields: Record<string, string>
}

export interface ChecklistItem {
  item: string
  done: boolean
}

export interface Task {
  kind: "task"
  title: string
  status: string
  priority: string
  tags: string[]
  assignees: string[]
  due: string | null
  checklist: ChecklistItem[]
  customer: string | null
  repeat: string | null
  fields: Record<string, string>
}

export interface Requirements {
  kind: "requirements"
  title: string
  customer: string | null
}

export interface Comment {
  id: string
  author: string
  /** The author's name when they wrote it (the web app's addition; Rust keeps it untouched). */
  author_name?: string
  at: number
  body: string
  mentions: string[]
  reply_to: string | null
  resolved: boolean
}

export interface Thread {
  kind: "thread"
  record: string
  comments: Comment[]
}

export type RecordValue = Customer | Task | Requirements | Thread

/** The root of a record document, as automerge gives it. */
export type RecordDoc = Record<string, unknown>

export function kindOf(doc: RecordDoc | undefined): Kind | null {
  const kind = str(doc?.kind)
  return kind === "customer" || kind === "task" || kind === "requirements" || kind === "thread" ? kind : null
}

/** Whether the record is archived: a root flag of its own, as the Rust model writes it. */
export function isArchived(doc: RecordDoc | undefined): boolean {
  return doc?.archived === true
}

export function readRecord(doc: RecordDoc | undefined): RecordValue | null {
  switch (kindOf(doc)) {
    case "customer":
      return readCustomer(doc!)
    case "task":
      return readTask(doc!)
    case "requirements":
      return { kind: "requirements", title: str(doc!.title), customer: optStr(doc!.customer) }
    case "thread":
      return readThread(doc!)
    default:
      return null
  }
}

export function readCustomer(doc: RecordDoc): Customer {
  return {
    kind: "customer",
    relationship: str(doc.relationship) || "customer",
    name: str(doc.name),
    contact: str(doc.contact),
    email: str(doc.email),
    acquired: date(doc.acquired),
    last_contact: date(doc.last_contact),
    stage: str(doc.stage) || "lead",
    score: num(doc.score),
    rep: optStr(doc.rep),
    tags: strList(doc.tags),
    fields: strMap(doc.fields),
  }
}

export function readTask(doc: RecordDoc): Task {
  const checklist = Array.isArray(doc.checklist) ? doc.checklist : []
  return {
    kind: "task",
    title: str(doc.title),
    status: str(doc.status) || "open",
    priority: str(doc.priority) || "normal",
    tags: strList(doc.tags),
    assignees: strList(doc.assignees),
    due: date(doc.due),
    checklist: checklist.map((step: Record<string, unknown>) => ({ item: str(step?.item), done: bool(step?.done) })),
    customer: optStr(doc.customer),
    repeat: optStr(doc.repeat),
    fields: strMap(doc.fields),
  }
}

export function readThread(doc: RecordDoc): Thread {
  const comments = Array.isArray(doc.comments) ? doc.comments : []
  return {
    kind: "thread",
    record: str(doc.record),
    comments: comments.map((c: Record<string, unknown>) => ({
      id: str(c?.id),
      author: writerOf(c) ?? "",
      author_name: str(c?.author_name) || undefined,
      at: num(c?.at),
      body: str(c?.body),
      mentions: strList(c?.mentions),
      reply_to: optStr(c?.reply_to),
      resolved: bool(c?.resolved),
    })),
  }
}

/**
 * The key of whoever made a comment, from the actor in its object id: the
 * relay binds an actor that starts with a public key to that key only, so
 * nobody can write in another's name. `null` for a stock client's random
 * actor: its comment's author is unknown (empty), whatever its `author`
 * field says, as anyone could have written that.
 */
function writerOf(comment: unknown): string | null {
  if (typeof comment !== "object" || comment === null) return null
  const actor = A.getObjectId(comment as A.Doc<unknown>)?.split("@")[1]
  if (!actor || actor.length <= 64) return null
  const key = fromHex(actor.slice(0, 64))
  return key ? base58(key) : null
}

/** Sets `kind` and raises `schema` to this version, never lowering it. */
function header(doc: RecordDoc, kind: Kind): void {
  if (str(doc.kind) !== kind) doc.kind = imm(kind)
  if (num(doc.schema) < SCHEMA_VERSION) doc.schema = SCHEMA_VERSION
}

/** Sets a scalar string field if it differs. */
export function setStr(doc: RecordDoc, field: string, value: string | null): void {
  const current = optStr(doc[field])
  if (current === (value || null) && (value ? A.isImmutableString(doc[field]) : doc[field] === null || doc[field] === undefined)) return
  doc[field] = immOrNull(value)
}

export function newCustomer(doc: RecordDoc, name: string, relationship: string): void {
  header(doc, "customer")
  doc.relationship = imm(relationship)
  doc.name = imm(name)
  doc.contact = imm("")
  doc.email = imm("")
  doc.acquired = null
  doc.last_contact = null
  doc.stage = imm("lead")
  doc.score = 0
  doc.rep = null
  doc.tags = []
  doc.fields = {}
}

export function newTask(doc: RecordDoc, title: string): void {
  header(doc, "task")
  doc.title = imm(title)
  doc.status = imm("open")
  doc.priority = imm("normal")
  doc.tags = []
  doc.assignees = []
  doc.due = null
  doc.checklist = []
  doc.subtasks = []
  doc.fields = {}
  doc.repeat = null
  doc.customer = null
  doc.parent = null
  doc.previous = null
  doc.series = null
  doc.series_start = null
}

export function newThread(doc: RecordDoc, record: string): void {
  header(doc, "thread")
  doc.record = imm(record)
  doc.comments = []
}

/** A comment as written into a thread: every string scalar. */
export function commentValue(comment: Comment): Record<string, unknown> {
  return {
    id: imm(comment.id),
    author: imm(comment.author),
    ...(comment.author_name ? { author_name: imm(comment.author_name) } : {}),
    at: comment.at,
    body: imm(comment.body),
    mentions: comment.mentions.map(imm),
    reply_to: immOrNull(comment.reply_to),
    resolved: comment.resolved,
  }
}

export function addComment(doc: RecordDoc, comment: Comment): void {
  if (!Array.isArray(doc.comments)) doc.comments = []
  ;(doc.comments as unknown[]).push(commentValue(comment))
}

export function setResolved(doc: RecordDoc, id: string, resolved: boolean): boolean {
  const comments = Array.isArray(doc.comments) ? (doc.comments as Record<string, unknown>[]) : []
  const comment = comments.find(c => str(c.id) === id)
  if (!comment) return false
  comment.resolved = resolved
  return true
}

export function newCommentId(taken: Set<string>): string {
  for (;;) {
    const id = Array.from(crypto.getRandomValues(new Uint8Array(4)), b => b.toString(16).padStart(2, "0")).join("")
    if (!taken.has(id)) return id
  }
}

export { header as writeHeader }
