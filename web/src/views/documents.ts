// The documents this person may see: each requirements document with its
// number of open comments. Staff can start a new one here.

import type { App, View } from "../app/context"
import { newRequirements } from "../model/body"
import { fill, h } from "../ui/dom"

export function documentsView(app: App): View {
  const ws = app.workspace!
  const el = h("div", { class: "page" })
  const render = () => {
    const docs = ws.records("requirements").sort((a, b) => a.record.title.localeCompare(b.record.title))
    const customers = new Map(ws.records("customer").map(c => [c.id, c.record.name]))
    const waiting = ws.ids().length - ws.loaded.size
    fill(
      el,
      h(
        "header",
        { class: "page-head" },
        h("h1", {}, "Documents"),
        ws.isStaff ? h("button", { type: "button", class: "button-primary", onclick: () => void create(app) }, "New document") : null,
      ),
      docs.length === 0
        ? h(
            "div",
            { class: "empty-state" },
            h("p", {}, waiting > 0 ? "Loading documents…" : ws.isStaff ? "No documents yet." : "Nothing has been shared with you yet."),
          )
        : h(
            "ul",
            { class: "card-list" },
            docs.map(d => {
              const open = openComments(app, d.id)
              return h(
                "li",
                {},
                h(
                  "a",
                  { class: "card", href: `#/w/${ws.id}/d/${d.id}`, "data-doc": d.id },
                  h("span", { class: "card-title", "data-doc-title": "" }, d.record.title || "Untitled"),
                  h(
                    "span",
                    { class: "card-meta" },
                    d.record.customer && customers.get(d.record.customer) ? `For ${customers.get(d.record.customer)} · ` : "",
                    ws.mayWrite(d.id) ? "Can edit" : "Can comment or read",
                    open ? ` · ${open} open comment${open === 1 ? "" : "s"}` : "",
                  ),
                ),
              )
            }),
          ),
    )
  }
  const off = ws.onChange(render)
  render()
  return { el, destroy: off }
}

function openComments(app: App, record: string): number {
  const ws = app.workspace!
  let count = 0
  for (const id of ws.threadsOf(record)) {
    const t = ws.loaded.get(id)?.record
    if (t?.kind === "thread") count += t.comments.filter(c => !c.resolved && !c.reply_to).length
  }
  return count
}

async function create(app: App): Promise<void> {
  const title = window.prompt("Title of the new requirements document:", "")
  if (!title?.trim()) return
  const loaded = await app.workspace!.create(doc => newRequirements(doc, title.trim(), null, true))
  app.navigate(`#/w/${app.workspace!.id}/d/${loaded.id}`)
}
