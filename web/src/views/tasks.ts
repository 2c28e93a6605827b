// Tasks and orders: open ones by due date (overdue first, marked), and one
// task with its status, priority, due date, assignees and checklist.

import type { App, View } from "../app/context"
import { imm } from "../model/values"
import { newTask, PRIORITIES, setStr, STATUSES, type RecordDoc, type Task } from "../model/records"
import { isDate, today } from "../model/values"
import { fill, h } from "../ui/dom"
import { CommentsPanel } from "./comments"
import { field, input, onCommit, select } from "./form"

const CLOSED = new Set(["done", "cancelled"])

export function tasksView(app: App): View {
  const ws = app.workspace!
  const el = h("div", { class: "page" })
  let showClosed = false
  const render = () => {
    const now = today()
    const tasks = ws
      .records("task")
      .filter(t => showClosed || !CLOSED.has(t.record.status))
      .sort((a, b) => (a.record.due ?? "9999").localeCompare(b.record.due ?? "9999") || a.record.title.localeCompare(b.record.title))
    fill(
      el,
      h(
        "header",
        { class: "page-head" },
        h("h1", {}, "Tasks"),
        h(
          "label",
          { class: "toggle" },
          (() => {
            const box = h("input", { type: "checkbox", checked: showClosed })
            box.addEventListener("change", () => {
              showClosed = box.checked
              render()
            })
            return box
          })(),
          " Show done",
        ),
        h("button", { type: "button", class: "button-primary", onclick: () => void create(app) }, "New task"),
      ),
      tasks.length === 0
        ? h("div", { class: "empty-state" }, h("p", {}, "No open tasks."))
        : h(
            "ul",
            { class: "task-list" },
            tasks.map(t => {
              const overdue = !!t.record.due && t.record.due < now && !CLOSED.has(t.record.status)
              const box = h("input", { type: "checkbox", checked: t.record.status === "done", "aria-label": `Done: ${t.record.title}` })
              box.addEventListener("change", () => app.replica.change(t.handle, doc => setStr(doc as RecordDoc, "status", box.checked ? "done" : "open")))
              const steps = t.record.checklist
              return h(
                "li",
                { class: `task${overdue ? " overdue" : ""}${CLOSED.has(t.record.status) ? " closed" : ""}`, "data-task": t.id },
                box,
                h("a", { href: `#/w/${ws.id}/t/${t.id}`, class: "task-title" }, t.record.title || "Untitled"),
                h(
                  "span",
                  { class: "task-meta" },
                  t.record.due ? h("span", { class: overdue ? "due overdue" : "due" }, overdue ? `overdue · ${t.record.due}` : `due ${t.record.due}`) : null,
                  steps.length ? h("span", {}, `${steps.filter(s => s.done).length}/${steps.length}`) : null,
                  t.record.assignees.length ? h("span", {}, t.record.assignees.map(k => app.names.of(k)).join(", ")) : null,
                  t.record.priority !== "normal" ? h("span", { class: `priority priority-${t.record.priority}` }, t.record.priority) : null,
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

async function create(app: App): Promise<void> {
  const title = window.prompt("What is to be done?", "")
  if (!title?.trim()) return
  const loaded = await app.workspace!.create(doc => newTask(doc, title.trim()))
  app.navigate(`#/w/${app.workspace!.id}/t/${loaded.id}`)
}

export async function taskView(app: App, id: string): Promise<View> {
  const ws = app.workspace!
  const loaded = await ws.open(id)
  const el = h("div", { class: "record-page" })
  if (!loaded || loaded.record?.kind !== "task") {
    fill(el, h("div", { class: "empty-state" }, h("h1", {}, "This task is not available")))
    return { el }
  }
  const change = (edit: (doc: RecordDoc) => void) => app.replica.change(loaded.handle, doc => edit(doc as RecordDoc))
  const main = h("div", { class: "record-main" })
  const render = () => {
    const t = loaded.record as Task
    const title = input("title", t.title)
    onCommit(title, v => v.trim() && change(doc => setStr(doc, "title", v.trim())))
    const status = select("status", STATUSES, t.status)
    onCommit(status, v => change(doc => setStr(doc, "status", v)))
    const priority = select("priority", PRIORITIES, t.priority)
    onCommit(priority, v => change(doc => setStr(doc, "priority", v)))
    const due = input("due", t.due ?? "", "date")
    onCommit(due, v => (v === "" || isDate(v) ? change(doc => setStr(doc, "due", v || null)) : undefined))
    const customers = ws.records("customer")
    const customer = select("customer", ["", ...customers.map(c => c.id)], t.customer ?? "", Object.fromEntries([["", "—"], ...customers.map(c => [c.id, c.record.name])]))
    onCommit(customer, v => change(doc => setStr(doc, "customer", v || null)))
    // Staff and admins do the work; clients are not assigned tasks here.
    const people = ws.members.filter(m => m.role !== "client").map(m => ({ key: m.key, name: m.name || app.names.of(m.key) }))
    for (const key of t.assignees) if (!people.some(p => p.key === key)) people.push({ key, name: app.names.of(key) })
    const assignees = h(
      "div",
      { class: "chips" },
      people.map(p => {
        const box = h("input", { type: "checkbox", checked: t.assignees.includes(p.key) })
        box.addEventListener("change", () =>
          change(doc => {
            if (!Array.isArray(doc.assignees)) doc.assignees = []
            const list = doc.assignees as unknown[]
            const at = list.findIndex(v => String(v) === p.key)
            if (box.checked && at < 0) list.push(imm(p.key))
            if (!box.checked && at >= 0) list.splice(at, 1)
          }),
        )
        return h("label", { class: "chip" }, box, ` ${p.name}`)
      }),
    )
    const newStep = h("input", { placeholder: "Add a step…", "aria-label": "New checklist step" })
    const checklist = h(
      "ul",
      { class: "checklist" },
      t.checklist.map((step, i) => {
        const box = h("input", { type: "checkbox", checked: step.done })
        box.addEventListener("change", () =>
          change(doc => {
            const item = (doc.checklist as Record<string, unknown>[] | undefined)?.[i]
            if (item) item.done = box.checked
          }),
        )
        return h(
          "li",
          {},
          h("label", {}, box, ` ${step.item}`),
          h("button", { type: "button", class: "link-button", "aria-label": `Remove ${step.item}`, onclick: () => change(doc => void (doc.checklist as unknown[]).splice(i, 1)) }, "Remove"),
        )
      }),
    )
    fill(
      main,
      h("a", { href: `#/w/${ws.id}/tasks`, class: "back" }, "← Tasks"),
      h("h1", {}, t.title || "Untitled"),
      h("div", { class: "form-grid" }, field("Title", title), field("Status", status), field("Priority", priority), field("Due", due), field("Customer", customer)),
      h("h2", {}, "Assignees"),
      people.length ? assignees : h("p", { class: "note" }, "The member list has not been loaded yet."),
      h("h2", {}, "Checklist"),
      checklist,
      h(
        "form",
        {
          class: "inline-form",
          onsubmit: (e: Event) => {
            e.preventDefault()
            const item = newStep.value.trim()
            if (!item) return
            change(doc => {
              if (!Array.isArray(doc.checklist)) doc.checklist = []
              ;(doc.checklist as unknown[]).push({ item: imm(item), done: false })
            })
            newStep.value = ""
          },
        },
        newStep,
        h("button", { type: "submit", class: "button-quiet" }, "Add"),
      ),
    )
  }
  render()
  const onChange = () => {
    if (!main.contains(document.activeElement) || document.activeElement === document.body) render()
  }
  loaded.handle.on("change", onChange)
  const comments = new CommentsPanel(app, { record: id, mayComment: true })
  fill(el, main, comments.el)
  return {
    el,
    destroy: () => {
      loaded.handle.off("change", onChange)
      comments.destroy()
    },
  }
}
