// How many local changes the relay has not acknowledged yet, per document.
//
// The relay's sync state tells which heads it has (`theirHeads`); those are
// kept in rapport's own IndexedDB so that after a reload, offline, the page
// still knows which edits wait. Changes the relay refused never count: they
// will never be acknowledged, and the page says so separately; nor do other
// people's changes, which came through the relay.

import * as A from "@automerge/automerge/slim"
import * as idb from "../lib/idb"

const KEY = (doc: string) => `ack:${doc}`

export class PendingEdits {
  /** `mine`: the hex prefix of this person's actors (their public key). */
  constructor(private readonly mine: string) {}

  private acked = new Map<string, string[]>()
  private refused = new Set<string>()
  private saveTimers = new Map<string, ReturnType<typeof setTimeout>>()

  /** Loads what the relay acknowledged for `doc` before this page. */
  async restore(doc: string): Promise<void> {
    if (this.acked.has(doc)) return
    const heads = await idb.get<string[]>(KEY(doc)).catch(() => undefined)
    if (heads && !this.acked.has(doc)) this.acked.set(doc, heads)
  }

  /** The relay now has `heads` of `doc`. */
  acknowledge(doc: string, heads: string[]): void {
    this.acked.set(doc, heads)
    clearTimeout(this.saveTimers.get(doc))
    this.saveTimers.set(
      doc,
      setTimeout(() => void idb.put(KEY(doc), heads).catch(() => undefined), 300),
    )
  }

  /** The heads of `doc` the relay has acknowledged and `current` holds; null if none are known. */
  acknowledged(doc: string, current: A.Doc<unknown>): string[] | null {
    const acked = (this.acked.get(doc) ?? []).filter(head => A.hasHeads(current, [head]))
    return acked.length > 0 ? acked : null
  }

  refuse(changes: string[]): void {
    for (const hash of changes) this.refused.add(hash)
  }

  /** Local changes of `doc` the relay has not acknowledged. */
  count(doc: string, current: A.Doc<unknown>): number {
    const acked = (this.acked.get(doc) ?? []).filter(head => A.hasHeads(current, [head]))
    const heads = A.getHeads(current)
    if (acked.length === heads.length && acked.every(h => heads.includes(h))) return 0
    const since = acked.length > 0 ? A.view(current, acked) : A.init()
    // Only our own changes can wait: everyone else's came through the relay.
    return A.getChanges(since, current)
      .map(change => A.decodeChange(change))
      .filter(change => change.actor.startsWith(this.mine) && change.hash !== undefined && !this.refused.has(change.hash)).length
  }
}
