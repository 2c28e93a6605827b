// Who else has a document open, and where their cursor is, over
// automerge-repo's ephemeral messages (handle.broadcast and
// 'ephemeral-message'). Nothing here is stored or synced as a change.
//
// Cursor positions travel as automerge cursors on the body text, so they
// stay in place while text is inserted before them.

import * as A from "@automerge/automerge/slim"
import type { DocHandle } from "@automerge/automerge-repo/slim"

export interface PeerPresence {
  peer: string
  key: string
  name: string
  /** Automerge cursors of the selection's ends in the body, if any. */
  anchor: string | null
  head: string | null
  seen: number
}

interface Message {
  rapport: "presence"
  key: string
  name: string
  anchor: string | null
  head: string | null
  leaving?: boolean
}

/** How often we say we are here; a peer silent for 3 periods is gone. */
const HEARTBEAT_MS = 5000
const GONE_MS = HEARTBEAT_MS * 3

export class Presence {
  private peers = new Map<string, PeerPresence>()
  private mine: Message
  private timer: ReturnType<typeof setInterval>
  private listeners = new Set<() => void>()
  private readonly onMessage = (event: { senderId: string; message: unknown }) => this.receive(event.senderId, event.message)

  constructor(
    private readonly handle: DocHandle<unknown>,
    me: { key: string; name: string },
  ) {
    this.mine = { rapport: "presence", key: me.key, name: me.name, anchor: null, head: null }
    handle.on("ephemeral-message", this.onMessage as never)
    this.timer = setInterval(() => {
      this.send()
      this.expire()
    }, HEARTBEAT_MS)
    this.send()
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** The others here now, one entry per person (their latest tab). */
  others(): PeerPresence[] {
    const byKey = new Map<string, PeerPresence>()
    for (const p of this.peers.values()) {
      if (p.key === this.mine.key) continue
      const known = byKey.get(p.key)
      if (!known || known.seen < p.seen) byKey.set(p.key, p)
    }
    return [...byKey.values()]
  }

  /** All peers (tabs), for cursors. */
  cursors(): PeerPresence[] {
    return [...this.peers.values()]
  }

  /** Our selection moved to body indexes `anchor`..`head` (null: none). */
  moveTo(doc: A.Doc<unknown>, anchor: number | null, head: number | null): void {
    const cursor = (index: number | null) => {
      if (index === null) return null
      try {
        return A.getCursor(doc, ["body"], index) as unknown as string
      } catch {
        return null
      }
    }
    const a = cursor(anchor)
    const h = anchor === head ? a : cursor(head)
    if (a === this.mine.anchor && h === this.mine.head) return
    this.mine = { ...this.mine, anchor: a, head: h }
    this.send()
  }

  destroy(): void {
    clearInterval(this.timer)
    this.handle.broadcast({ ...this.mine, leaving: true })
    this.handle.off("ephemeral-message", this.onMessage as never)
  }

  private send(): void {
    this.handle.broadcast(this.mine)
  }

  private receive(peer: string, message: unknown): void {
    const m = message as Partial<Message> | null
    if (!m || m.rapport !== "presence" || typeof m.key !== "string") return
    if (m.leaving) {
      this.peers.delete(peer)
    } else {
      const isNew = !this.peers.has(peer)
      this.peers.set(peer, {
        peer,
        key: m.key,
        name: typeof m.name === "string" ? m.name.slice(0, 100) : "",
        anchor: typeof m.anchor === "string" ? m.anchor : null,
        head: typeof m.head === "string" ? m.head : null,
        seen: Date.now(),
      })
      // Someone new: tell them at once that we are here too.
      if (isNew) this.send()
    }
    this.emit()
  }

  private expire(): void {
    const now = Date.now()
    let gone = false
    for (const [peer, p] of this.peers) {
      if (now - p.seen > GONE_MS) {
        this.peers.delete(peer)
        gone = true
      }
    }
    if (gone) this.emit()
  }

  private emit(): void {
    for (const listener of this.listeners) listener()
  }
}
