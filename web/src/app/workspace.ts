// One workspace as this person sees it: the documents the relay lists for
// them (kept locally so the app opens offline), each opened from the local
// replica, and the record each holds.
//
// A record finds its comment thread through the documents API (`thread_of`)
// and, for threads made offline or not yet listed, through the thread's own
// `record` field, as the CLI does. Two threads on one record (made apart)
// are merged when shown; new comments go to the one with the smallest id.

import type * as A from "@automerge/automerge/slim"
import * as idb from "../lib/idb"
import { ApiError, type Api, type DocumentEntry, type Member, type Person, type Role, type WorkspaceSummary } from "../net/api"
import { isArchived, readRecord, type RecordDoc, type RecordValue } from "../model/records"
import type { Handle, Replica } from "../replica/replica"

export interface Loaded {
  id: string
  handle: Handle<RecordDoc>
  record: RecordValue | null
  /** Archived (`rapport customer archive`): left out of lists and the dashboard. */
  archived: boolean
}

const DOCS_KEY = (ws: string) => `docs:${ws}`
const UNLISTED_KEY = (ws: string) => `unlisted:${ws}`
const MEMBERS_KEY = (ws: string) => `members:${ws}`
const PEOPLE_KEY = (ws: string) => `people:${ws}`

/** How many documents are opened at once while loading the list. */
const OPEN_AT_ONCE = 8

export class Workspace {
  entries: DocumentEntry[] = []
  members: Member[] = []
  /** Every member's key and name, for everyone to show names by. */
  people: Person[] = []
  readonly loaded = new Map<string, Loaded>()
  /** Documents this person made that the relay does not list yet. */
  private unlisted: { id: string; thread_of: string | null }[] = []
  private listeners = new Set<() => void>()
  private opening = new Map<string, Promise<Loaded | null>>()
  /** Documents the relay answered as unavailable: nothing of them is shown. */
  readonly unavailable = new Set<string>()

  constructor(
    readonly summary: WorkspaceSummary,
    private readonly api: Api,
    private readonly replica: Replica,
  ) {}

  get id(): string {
    return this.summary.id
  }

  get role(): Role {
    return this.summary.role
  }

  get isStaff(): boolean {
    return this.role !== "client"
  }

  get isAdmin(): boolean {
    return this.role === "owner" || this.role === "admin"
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  changed(): void {
    for (const listener of this.listeners) listener()
  }

  /** The kept list, for opening offline. */
  async restore(): Promise<void> {
    this.entries = (await idb.get<DocumentEntry[]>(DOCS_KEY(this.id)).catch(() => undefined)) ?? []
    this.unlisted = (await idb.get<{ id: string; thread_of: string | null }[]>(UNLISTED_KEY(this.id)).catch(() => undefined)) ?? []
    this.members = (await idb.get<Member[]>(MEMBERS_KEY(this.id)).catch(() => undefined)) ?? []
    this.people = (await idb.get<Person[]>(PEOPLE_KEY(this.id)).catch(() => undefined)) ?? []
    this.changed()
  }

  /** Asks the relay for the list; keeps the old one if it cannot be reached. */
  async refresh(): Promise<void> {
    await this.listPending()
    const entries = await this.api.documents(this.id)
    this.entries = entries
    await idb.put(DOCS_KEY(this.id), entries).catch(() => undefined)
    if (this.isStaff) {
      this.members = await this.api.members(this.id).catch(() => this.members)
      await idb.put(MEMBERS_KEY(this.id), this.members).catch(() => undefined)
    }
    this.people = await this.api.people(this.id).catch(() => this.people)
    await idb.put(PEOPLE_KEY(this.id), this.people).catch(() => undefined)
    this.changed()
  }

  /** Every document id to show: listed, plus our own not yet listed. */
  ids(): string[] {
    const ids = new Set(this.entries.map(e => e.id))
    for (const u of this.unlisted) ids.add(u.id)
    return [...ids].filter(id => !this.unavailable.has(id))
  }

  entry(id: string): DocumentEntry | undefined {
    return this.entries.find(e => e.id === id)
  }

  /** Whether this person may change the record itself (the documents API's `access`). */
  mayWrite(id: string): boolean {
    if (this.isStaff) return true
    const entry = this.entry(id)
    if (entry) return entry.access === "write"
    return this.unlisted.some(u => u.id === id)
  }

  /** Opens every document, a few at a time. */
  async loadAll(): Promise<void> {
    const ids = this.ids()
    let next = 0
    const worker = async () => {
      while (next < ids.length) await this.open(ids[next++])
    }
    await Promise.all(Array.from({ length: Math.min(OPEN_AT_ONCE, ids.length) }, worker))
  }

  /** Opens document `id`; null if it is unavailable to this person. */
  open(id: string): Promise<Loaded | null> {
    const done = this.loaded.get(id)
    if (done) return Promise.resolve(done)
    let pending = this.opening.get(id)
    if (!pending) {
      pending = this.replica.open<RecordDoc>(id).then(handle => {
        this.opening.delete(id)
        if (!handle) {
          this.unavailable.add(id)
          this.changed()
          return null
        }
        return this.track(id, handle)
      })
      this.opening.set(id, pending)
    }
    return pending
  }

  private track(id: string, handle: Handle<RecordDoc>): Loaded {
    const loaded: Loaded = { id, handle, record: readRecord(handle.doc()), archived: isArchived(handle.doc()) }
    this.loaded.set(id, loaded)
    handle.on("change", ({ doc }) => {
      loaded.record = readRecord(doc as RecordDoc)
      loaded.archived = isArchived(doc as RecordDoc)
      this.changed()
    })
    this.changed()
    return loaded
  }

  /** Drops documents the relay removed (deleted or erased) from this device. */
  forget(ids: string[]): void {
    for (const id of ids) {
      this.replica.forget(id)
      this.loaded.delete(id)
      this.unavailable.add(id)
    }
    this.entries = this.entries.filter(e => !ids.includes(e.id))
    this.unlisted = this.unlisted.filter(u => !ids.includes(u.id))
    void idb.put(DOCS_KEY(this.id), this.entries).catch(() => undefined)
    void idb.put(UNLISTED_KEY(this.id), this.unlisted).catch(() => undefined)
    this.changed()
  }

  /** Loaded records of one kind. */
  records<K extends RecordValue["kind"]>(kind: K): (Loaded & { record: Extract<RecordValue, { kind: K }> })[] {
    return [...this.loaded.values()].filter(
      (l): l is Loaded & { record: Extract<RecordValue, { kind: K }> } =>
        l.record?.kind === kind && !l.archived && !this.unavailable.has(l.id),
    )
  }

  /** The thread documents of `record`, smallest id first. */
  threadsOf(record: string): string[] {
    const ids = new Set<string>()
    for (const e of this.entries) if (e.thread_of === record) ids.add(e.id)
    for (const u of this.unlisted) if (u.thread_of === record) ids.add(u.id)
    for (const l of this.loaded.values()) if (l.record?.kind === "thread" && l.record.record === record) ids.add(l.id)
    return [...ids].filter(id => !this.unavailable.has(id)).sort()
  }

  /** Makes a document here, then lists it on the relay (now, or once reachable). */
  async create(init: (doc: RecordDoc) => void, threadOf: string | null = null): Promise<Loaded> {
    const handle = this.replica.create<RecordDoc>(init)
    const id = handle.documentId
    const loaded = this.track(id, handle)
    this.unlisted.push({ id, thread_of: threadOf })
    await idb.put(UNLISTED_KEY(this.id), this.unlisted).catch(() => undefined)
    this.changed()
    await this.listPending().catch(() => undefined)
    return loaded
  }

  /** Lists on the relay the documents made here that it does not list yet. */
  async listPending(): Promise<void> {
    if (this.unlisted.length === 0) return
    const batch = [...this.unlisted]
    try {
      await this.api.addDocuments(this.id, batch)
    } catch (error) {
      if (error instanceof ApiError && error.unreachable) return
      throw error
    }
    this.unlisted = this.unlisted.filter(u => !batch.some(b => b.id === u.id))
    for (const b of batch) {
      if (!this.entries.some(e => e.id === b.id)) this.entries.push({ id: b.id, thread_of: b.thread_of, access: "write", level: null })
    }
    await idb.put(UNLISTED_KEY(this.id), this.unlisted).catch(() => undefined)
    await idb.put(DOCS_KEY(this.id), this.entries).catch(() => undefined)
  }

  /** The document's current automerge state, for reading. */
  doc(id: string): A.Doc<RecordDoc> | null {
    const loaded = this.loaded.get(id)
    return loaded && loaded.handle.isReady() ? loaded.handle.doc() : null
  }
}
