// The browser's replica: a stock automerge-repo Repo over IndexedDB and one
// WebSocket to the relay, with rapport's actor ids, document creation, and
// the count of edits that wait for the relay.

import * as A from "@automerge/automerge/slim"
import {
  Repo,
  generateAutomergeUrl,
  parseAutomergeUrl,
  stringifyAutomergeUrl,
  type DocHandle,
  type DocumentId,
  type PeerId,
} from "@automerge/automerge-repo/slim"
import type { Identity } from "../identity/keys"
import { RelaySocket } from "../net/socket"
import type { StorageError } from "../lib/idb"
import { actorFor, adoptActor } from "./actor"
import { PendingEdits } from "./pending"
import { ReportingStorage } from "./storage"

export type Handle<T = unknown> = DocHandle<T>

/** How long to wait for a document this device does not hold yet. */
const FIND_TIMEOUT_MS = 20_000

export interface ReplicaOptions {
  identity: Identity
  /** Mints a fresh connection token; null for a replica that never connects. */
  token: (() => Promise<string>) | null
  /** Where rapport keeps documents; false when IndexedDB is unavailable. */
  persistent: boolean
  onStorageError(error: StorageError): void
}

export class Replica {
  readonly repo: Repo
  readonly socket: RelaySocket | null
  readonly actor: string
  readonly pending: PendingEdits
  private readonly storage: ReportingStorage | undefined
  private readonly changeListeners = new Set<() => void>()

  constructor(options: ReplicaOptions) {
    this.actor = actorFor(options.identity.publicKey, options.identity.device)
    this.pending = new PendingEdits(this.actor.slice(0, 64))
    this.socket = options.token ? new RelaySocket(syncUrl(), options.token) : null
    this.storage = options.persistent ? new ReportingStorage(options.onStorageError) : undefined
    this.repo = new Repo({
      network: this.socket ? [this.socket] : [],
      storage: this.storage,
      peerId: `rapport-web-${crypto.randomUUID()}` as PeerId,
    })
    this.repo.synchronizer.on("sync-state", ({ documentId, syncState }) => {
      const theirs = syncState.theirHeads
      if (theirs) {
        this.pending.acknowledge(documentId, theirs)
        this.notify()
      }
    })
  }

  /** Something about documents or acknowledgements changed. */
  onChange(listener: () => void): () => void {
    this.changeListeners.add(listener)
    return () => this.changeListeners.delete(listener)
  }

  notify(): void {
    for (const listener of this.changeListeners) listener()
  }

  /** The handle of document `id`, or null if it is unavailable to this person. */
  async open<T>(id: string, timeoutMs = FIND_TIMEOUT_MS): Promise<Handle<T> | null> {
    const url = stringifyAutomergeUrl({ documentId: id as DocumentId })
    await this.pending.restore(id)
    try {
      const handle = await this.repo.find<T>(url, { signal: AbortSignal.timeout(timeoutMs) })
      this.watch(handle)
      return handle
    } catch {
      return null
    }
  }

  /** Drops document `id` from memory and from IndexedDB. */
  forget(id: string): void {
    this.repo.delete(stringifyAutomergeUrl({ documentId: id as DocumentId }))
    void this.storage?.forget(id)
  }

  /** A new document written by our actor only, made by `init`. */
  create<T>(init: (doc: T) => void): Handle<T> {
    const { documentId } = parseAutomergeUrl(generateAutomergeUrl())
    const handle = this.repo.import<T>(A.save(A.init()), { docId: documentId })
    handle.update(() => A.init<T>({ actor: this.actor }))
    handle.doneLoading()
    handle.change(init)
    this.watch(handle)
    return handle
  }

  /** Changes `handle`'s document as this person. */
  change<T>(handle: Handle<T>, edit: (doc: T) => void): void {
    adoptActor(handle as Handle<unknown>, this.actor)
    handle.change(edit)
  }

  /** Waiting edits over every document this page has opened. */
  waiting(): number {
    let total = 0
    for (const [id, handle] of Object.entries(this.repo.handles)) {
      if (!handle.isReady()) continue
      total += this.pending.count(id, handle.doc() as A.Doc<unknown>)
    }
    return total
  }

  private watched = new WeakSet<object>()

  private watch(handle: Handle<unknown>): void {
    if (this.watched.has(handle)) return
    this.watched.add(handle)
    adoptActor(handle, this.actor)
    handle.on("heads-changed", () => this.notify())
  }
}

/** `ws(s)://this-host/sync`. */
function syncUrl(): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:"
  return `${scheme}//${location.host}/sync`
}
