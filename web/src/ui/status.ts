// The connection badge: online, or offline with how many edits wait for
// the relay. Always visible in the header.

import type { LinkState } from "../net/socket"
import { h } from "./dom"

export class StatusBadge {
  readonly el = h("span", { class: "status", "data-status": "connecting", role: "status" })

  show(state: LinkState | "local", waiting: number): void {
    this.el.dataset.status = state
    this.el.dataset.waiting = String(waiting)
    const edits = waiting === 1 ? "1 edit waiting" : `${waiting} edits waiting`
    const text =
      state === "online"
        ? waiting > 0
          ? `Syncing · ${edits}`
          : "Synced"
        : state === "connecting"
          ? waiting > 0
            ? `Connecting · ${edits}`
            : "Connecting…"
          : waiting > 0
            ? `Offline · ${edits}`
            : "Offline"
    this.el.textContent = text
    this.el.title =
      state === "online"
        ? "Connected to the relay: edits are shared as you make them."
        : "Not connected to the relay. You can keep working: edits are kept on this device and sent when the connection is back."
  }
}
