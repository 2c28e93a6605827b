// Messages the page shows at the top: refusals, failures, what to do next.
// Every failure ends up here in plain words; none is silent.

import { h } from "./dom"

export type Tone = "error" | "warning" | "info" | "success"

interface Notice {
  key: string
  tone: Tone
  text: string
  el: HTMLElement
}

export class Notices {
  readonly el = h("div", { class: "notices", role: "status", "aria-live": "polite" })
  private shown = new Map<string, Notice>()

  /** Shows `text`; a notice with the same key replaces the earlier one. */
  show(key: string, tone: Tone, text: string, action?: { label: string; run: () => void }): void {
    this.dismiss(key)
    const el = h(
      "div",
      { class: `notice notice-${tone}`, "data-notice": key, role: tone === "error" ? "alert" : null },
      h("span", { class: "notice-text" }, text),
      action ? h("button", { class: "notice-action", type: "button", onclick: () => action.run() }, action.label) : null,
      h("button", { class: "notice-close", type: "button", "aria-label": "Dismiss", onclick: () => this.dismiss(key) }, "×"),
    )
    this.shown.set(key, { key, tone, text, el })
    this.el.append(el)
  }

  dismiss(key: string): void {
    this.shown.get(key)?.el.remove()
    this.shown.delete(key)
  }

  /** What is shown now, for tests and for the driver. */
  list(): { key: string; tone: Tone; text: string }[] {
    return [...this.shown.values()].map(({ key, tone, text }) => ({ key, tone, text }))
  }
}
