// The WebSocket to the relay: the stock automerge-repo client adapter, with
// two additions.
//
// - Every connection and every reconnect gets a freshly minted token in its
//   URL (`/sync?token=…`): the relay refuses a token whose nonce it has
//   seen, and the stock adapter would reuse its URL.
// - rapport's own messages (`rapport/rejected`, `rapport/documents`,
//   `rapport/removed`), which the stock repo would drop, are decoded and
//   handed to the app.

import { cbor, type PeerId, type PeerMetadata } from "@automerge/automerge-repo/slim"
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"

/** `rapport/rejected`: changes the relay refused, and why. */
export interface Rejected {
  type: "rapport/rejected"
  documentId: string
  changes: string[]
  reason: string
  message: string
}

/**
 * `rapport/documents`: documents this person may see. A long list comes in
 * pages; every page but the last has `more: true`. Each page is handled on
 * its own (nothing here waits for the whole list).
 */
export interface DocumentsAnnounced {
  type: "rapport/documents"
  documents: string[]
  more?: boolean
}

/** `rapport/removed`: documents deleted or erased; this device drops its copies. */
export interface DocumentsRemoved {
  type: "rapport/removed"
  documents: string[]
}

export type RapportMessage = Rejected | DocumentsAnnounced | DocumentsRemoved

export type LinkState = "connecting" | "online" | "offline"

export interface SocketEvents {
  /** The link to the relay changed. `opened` tells a refused upgrade from an unreachable relay. */
  state(state: LinkState): void
  message(message: RapportMessage): void
  /** The socket closed after it had been open. */
  closed(): void
}

const RETRY_MS = 3000

export class RelaySocket extends WebSocketClientAdapter {
  private minting = false
  private subscribers: { [K in keyof SocketEvents]: SocketEvents[K][] } = { state: [], message: [], closed: [] }
  private linkState: LinkState = "connecting"
  private wasOpen = false

  constructor(
    private readonly syncUrl: string,
    private readonly token: () => Promise<string>,
  ) {
    super(syncUrl, RETRY_MS)
    this.on("peer-candidate", () => this.setState("online"))
    this.on("peer-disconnected", () => this.setState("offline"))
    // Going offline does not always close an open WebSocket (Chromium keeps
    // it until a write fails): close it, so the page says "offline" at once
    // and reconnects when the network is back.
    window.addEventListener("offline", () => this.socket?.close())
    window.addEventListener("online", () => {
      if (this.peerId && this.linkState !== "online") this.connect(this.peerId, this.peerMetadata)
    })
  }

  get state(): LinkState {
    return this.linkState
  }

  listen<K extends keyof SocketEvents>(event: K, listener: SocketEvents[K]): () => void {
    this.subscribers[event].push(listener)
    return () => {
      this.subscribers[event] = this.subscribers[event].filter(l => l !== listener) as never
    }
  }

  /** Mints a token, then connects with it; the stock retry timers call this again. */
  override connect(peerId: PeerId, peerMetadata?: PeerMetadata): void {
    if (this.minting) return
    this.minting = true
    this.token()
      .then(token => {
        // The stock adapter reads `url` on every connect.
        ;(this as { url: string }).url = `${this.syncUrl}?token=${encodeURIComponent(token)}`
        super.connect(peerId, peerMetadata)
        const socket = this.socket
        socket?.addEventListener("open", () => {
          this.wasOpen = true
        })
        socket?.addEventListener("close", () => {
          if (socket === this.socket) this.onSocketClosed()
        })
      })
      .catch(error => {
        console.warn("rapport: could not mint a connection token", error)
        this.setState("offline")
      })
      .finally(() => {
        this.minting = false
      })
  }

  /**
   * Drops ephemeral messages of other peers: automerge-repo forwards every
   * ephemeral message it receives to its other peers, keeping the original
   * sender, and the relay (which fans them out itself) closes a connection
   * that sends under another peer's id.
   */
  override send(message: Parameters<WebSocketClientAdapter["send"]>[0]): void {
    if (message.type === "ephemeral" && message.senderId !== this.peerId) return
    super.send(message)
  }

  override receiveMessage(messageBytes: Uint8Array): void {
    const bytes = new Uint8Array(messageBytes)
    let type: unknown
    let message: Record<string, unknown> | null = null
    try {
      message = cbor.decode(bytes) as Record<string, unknown>
      type = message?.type
    } catch {
      type = undefined
    }
    if (typeof type === "string" && type.startsWith("rapport/")) {
      if (type === "rapport/rejected" || type === "rapport/documents" || type === "rapport/removed") {
        for (const listener of this.subscribers.message) listener(message as unknown as RapportMessage)
      }
      return
    }
    super.receiveMessage(messageBytes)
  }

  private onSocketClosed(): void {
    this.setState("offline")
    if (this.wasOpen) {
      this.wasOpen = false
      for (const listener of this.subscribers.closed) listener()
    }
  }

  private setState(state: LinkState): void {
    if (state === this.linkState) return
    this.linkState = state
    for (const listener of this.subscribers.state) listener(state)
  }
}
