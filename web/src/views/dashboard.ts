// The dashboard, computed from the local replica (so it works offline):
// customers by lifecycle stage (count and lead-score sum), open and
// overdue tasks per assignee, the overdue tasks, and CSAT from feedback.

import type { App, View } from "../app/context"
import { STAGES } from "../model/records"
import { today } from "../model/values"
import { fill, h } from "../ui/dom"

const CLOSED = new Set(["done", "cancelled"])

export function dashboardView(app: App): View {
  const ws = app.workspace!
  const el = h("div", { class: "page dashboard" })
  const render = () => {
    const now = today()
    const customers = ws.records("customer")
    const tasks = ws.records("task")
    const stages = [...STAGES, ...new Set(customers.map(c => c.record.stage).filter(s => !(STAGES as readonly string[]).includes(s)))]
    const byStage = stages.map(stage => {
      const here = customers.filter(c => c.record.stage === stage)
      return { stage, count: here.length, score: here.reduce((s, c) => s + c.record.score, 0) }
    })
    const most = Math.max(1, ...byStage.map(s => s.count))
    const open = tasks.filter(t => !CLOSED.has(t.record.status))
    const overdue = open.filter(t => t.record.due && t.record.due < now)
    const people = new Map<string, { open: number; overdue: number }>()
    for (const t of open) {
      const who = t.record.assignees.length ? t.record.assignees : [""]
      for (const key of who) {
        const row = people.get(key) ?? { open: 0, overdue: 0 }
        row.open++
        if (t.record.due && t.record.due < now) row.overdue++
        people.set(key, row)
      }
    }
    const scores = tasks
      .filter(t => t.record.tags.includes("feedback"))
      .map(t => Number(t.record.fields.csat))
      .filter(n => Number.isInteger(n) && n >= 1 && n <= 5)
    const csat = scores.length ? (scores.reduce((a, b) => a + b, 0) / scores.length).toFixed(1) : null
    fill(
      el,
      h("header", { class: "page-head" }, h("h1", {}, "Dashboard")),
      h(
        "div",
        { class: "tiles" },
        tile("Customers", String(customers.length)),
        tile("Open tasks", String(open.length)),
        tile("Overdue", String(overdue.length), overdue.length ? "alert" : ""),
        tile("CSAT", csat ? `${csat} / 5` : "—", "", csat ? `${scores.length} response${scores.length === 1 ? "" : "s"}` : "no feedback yet"),
      ),
      h(
        "section",
        { class: "panel" },
        h("h2", {}, "Pipeline"),
        h(
          "table",
          { class: "bars", "data-pipeline": "" },
          h(
            "tbody",
            {},
            byStage.map(s => {
              const bar = h("span", { class: s.count ? "bar" : "bar bar-empty" })
              bar.style.width = `${(s.count / most) * 100}%`
              return h(
                "tr",
                { "data-stage": s.stage },
                h("th", { scope: "row" }, s.stage),
                h("td", { class: "bar-cell" }, bar),
                h("td", { class: "num" }, String(s.count)),
                h("td", { class: "num muted" }, s.score ? `score ${s.score}` : ""),
              )
            }),
          ),
        ),
      ),
      h(
        "section",
        { class: "panel" },
        h("h2", {}, "Workload"),
        people.size === 0
          ? h("p", { class: "note" }, "No open tasks.")
          : h(
              "table",
              { class: "table", "data-workload": "" },
              h("thead", {}, h("tr", {}, h("th", {}, "Assignee"), h("th", { class: "num" }, "Open"), h("th", { class: "num" }, "Overdue"))),
              h(
                "tbody",
                {},
                [...people].map(([key, row]) =>
                  h("tr", {}, h("td", {}, key ? app.names.of(key) : "Nobody"), h("td", { class: "num" }, String(row.open)), h("td", { class: row.overdue ? "num alert" : "num" }, String(row.overdue))),
                ),
              ),
            ),
      ),
      h(
        "section",
        { class: "panel" },
        h("h2", {}, "Overdue"),
        overdue.length === 0
          ? h("p", { class: "note" }, "Nothing is overdue.")
          : h(
              "ul",
              { class: "plain-list" },
              overdue.map(t => h("li", {}, h("a", { href: `#/w/${ws.id}/t/${t.id}` }, t.record.title), h("span", { class: "due overdue" }, ` due ${t.record.due}`))),
            ),
      ),
    )
  }
  const off = ws.onChange(render)
  render()
  return { el, destroy: off }
}

function tile(label: string, value: string, tone = "", note = ""): HTMLElement {
  return h("div", { class: `tile ${tone}` }, h("span", { class: "tile-label" }, label), h("span", { class: "tile-value" }, value), note ? h("span", { class: "tile-note" }, note) : null)
}
