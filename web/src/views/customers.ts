// Customers: the list, and one customer's record with its documents,
// tasks and comments.

import type { App, View } from "../app/context"
import { newCustomer, setStr, STAGES, type Customer, type RecordDoc } from "../model/records"
import { isDate } from "../model/values"
import { fill, h, when } from "../ui/dom"
import { CommentsPanel } from "./comments"
import { field, input, onCommit, select } from "./form"

export function customersView(app: App): View {
  const ws = app.workspace!
  const el = h("div", { class: "page" })
  const render = () => {
    const customers = ws.records("customer").sort((a, b) => a.record.name.localeCompare(b.record.name))
    fill(
      el,
      h("header", { class: "page-head" }, h("h1", {}, "Customers"), h("button", { type: "button", class: "button-primary", onclick: () => void create(app) }, "New customer")),
      customers.length === 0
        ? h("div", { class: "empty-state" }, h("p", {}, "No customers yet."))
        : h(
            "ul",
            { class: "card-list" },
            customers.map(c =>
              h(
                "li",
                {},
                h(
                  "a",
                  { class: "card", href: `#/w/${ws.id}/c/${c.id}`, "data-customer": c.id },
                  h("span", { class: "card-title" }, c.record.name || "Unnamed"),
                  h("span", { class: `stage stage-${c.record.stage}` }, c.record.stage),
                  h("span", { class: "card-meta" }, [c.record.contact, c.record.email, c.record.last_contact ? `last contact ${c.record.last_contact}` : ""].filter(Boolean).join(" · ")),
                ),
              ),
            ),
          ),
    )
  }
  const off = ws.onChange(render)
  render()
  return { el, destroy: off }
}

async function create(app: App): Promise<void> {
  const name = window.prompt("Name of the customer:", "")
  if (!name?.trim()) return
  const loaded = await app.workspace!.create(doc => newCustomer(doc, name.trim(), "client"))
  app.navigate(`#/w/${app.workspace!.id}/c/${loaded.id}`)
}

export async function customerView(app: App, id: string): Promise<View> {
  const ws = app.workspace!
  const loaded = await ws.open(id)
  const el = h("div", { class: "record-page" })
  if (!loaded || loaded.record?.kind !== "customer") {
    fill(el, h("div", { class: "empty-state" }, h("h1", {}, "This customer is not available")))
    return { el }
  }
  const c = loaded.record as Customer
  const save = (field: string, value: string | null) => app.replica.change(loaded.handle, doc => setStr(doc as RecordDoc, field, value))
  const name = input("name", c.name)
  onCommit(name, v => v.trim() && save("name", v.trim()))
  const relationship = select("relationship", ["client", "customer"], c.relationship, { client: "Client (long-term)", customer: "Customer (transactional)" })
  onCommit(relationship, v => save("relationship", v))
  const stage = select("stage", STAGES, c.stage)
  onCommit(stage, v => save("stage", v))
  const contact = input("contact", c.contact)
  onCommit(contact, v => save("contact", v.trim()))
  const email = input("email", c.email, "email")
  onCommit(email, v => save("email", v.trim()))
  const score = input("score", String(c.score), "number")
  onCommit(score, v =>
    app.replica.change(loaded.handle, doc => {
      ;(doc as RecordDoc).score = Math.trunc(Number(v) || 0)
    }),
  )
  const dateField = (name: "acquired" | "last_contact") => {
    const control = input(name, c[name] ?? "", "date")
    onCommit(control, v => (v === "" || isDate(v) ? save(name, v || null) : undefined))
    return control
  }
  const docs = ws.records("requirements").filter(d => d.record.customer === id)
  const tasks = ws.records("task").filter(t => t.record.customer === id)
  const comments = new CommentsPanel(app, { record: id, mayComment: true })
  fill(
    el,
    h(
      "div",
      { class: "record-main" },
      h("a", { href: `#/w/${ws.id}/customers`, class: "back" }, "← Customers"),
      h("h1", {}, c.name || "Unnamed"),
      h(
        "div",
        { class: "form-grid" },
        field("Name", name),
        field("Relationship", relationship),
        field("Stage", stage),
        field("Lead score", score),
        field("Contact person", contact),
        field("Email", email),
        field("Customer since", dateField("acquired")),
        field("Last contact", dateField("last_contact")),
      ),
      h("h2", {}, "Documents"),
      docs.length ? h("ul", { class: "plain-list" }, docs.map(d => h("li", {}, h("a", { href: `#/w/${ws.id}/d/${d.id}` }, d.record.title)))) : h("p", { class: "note" }, "No documents for this customer."),
      h("h2", {}, "Tasks"),
      tasks.length
        ? h("ul", { class: "plain-list" }, tasks.map(t => h("li", {}, h("a", { href: `#/w/${ws.id}/t/${t.id}` }, t.record.title), t.record.due ? ` · due ${when(Date.parse(t.record.due))}` : "")))
        : h("p", { class: "note" }, "No tasks for this customer."),
    ),
    comments.el,
  )
  return { el, destroy: () => comments.destroy() }
}
