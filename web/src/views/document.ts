// A requirements document: its title, who else is here, the rich text
// editor (read-only, with the reason, for people who may only read or
// comment) and the comment thread beside it.

import * as A from "@automerge/automerge/slim"
import type { App, View } from "../app/context"
import { RequirementsEditor } from "../editor/editor"
import { cleanHref, type Format } from "../editor/commands"
import { Presence } from "../editor/presence"
import { needsBlocks, spansOfLines, toBlocks } from "../model/body"
import { setStr, type RecordDoc } from "../model/records"
import { str } from "../model/values"
import { fill, h } from "../ui/dom"
import { avatar, CommentsPanel } from "./comments"

export interface DocumentView extends View {
  editor: RequirementsEditor | null
  comments: CommentsPanel
  readOnly: boolean
}

export async function documentView(app: App, id: string): Promise<DocumentView> {
  const ws = app.workspace!
  const el = h("div", { class: "document-page" })
  const loaded = await ws.open(id)
  if (!loaded || loaded.record?.kind !== "requirements") {
    fill(el, h("div", { class: "empty-state" }, h("h1", {}, "This document is not available"), h("p", {}, "It was not shared with you, or it has not reached this device yet.")))
    return { el, editor: null, comments: new CommentsPanel(app, { record: id, mayComment: false }), readOnly: true }
  }
  const handle = loaded.handle
  const mayWrite = ws.mayWrite(id)
  const threadEntries = ws.entries.filter(e => e.thread_of === id)
  // The level the document was shared at, where the relay says it; else
  // what the access to its thread tells.
  const level = ws.entry(id)?.level
  const mayComment: boolean | "unknown" =
    ws.isStaff || mayWrite
      ? true
      : level
        ? level !== "read"
        : threadEntries.length
          ? threadEntries.some(e => e.access === "write" || e.access === "comment")
          : "unknown"

  if (mayWrite && needsBlocks(handle.doc() as A.Doc<unknown>)) {
    // A body written as plain lines (the CLI's template): into blocks, once.
    app.replica.change(handle, doc => toBlocks(doc as RecordDoc))
  }

  const presence = new Presence(handle as never, { key: app.identity.publicKey, name: app.identity.name })
  const people = h("div", { class: "people", "aria-label": "Also here" })
  const renderPeople = () => {
    const others = presence.others()
    for (const p of others) app.names.learn(p.key, p.name)
    fill(
      people,
      others.map(p => {
        const a = avatar(p.name || "?", p.key)
        a.title = `${p.name} is here`
        a.setAttribute("data-present", p.name)
        return a
      }),
    )
  }
  presence.onChange(renderPeople)

  const title = h("input", {
    class: "title-input",
    value: loaded.record.title,
    "aria-label": "Title",
    readonly: !mayWrite,
    "data-doc-title": "",
  })
  title.addEventListener("change", () => {
    const text = title.value.trim()
    if (text && loaded.record?.kind === "requirements" && text !== loaded.record.title) app.replica.change(handle, doc => setStr(doc as RecordDoc, "title", text))
  })

  const why = mayWrite
    ? null
    : h(
        "p",
        { class: "access-note", "data-readonly-reason": "" },
        mayComment === true || mayComment === "unknown"
          ? "You can comment on this document. Only the people who own it can change its text."
          : "You can read this document. You cannot change it or comment on it.",
      )

  const editorHost = h("div", { class: "editor" })
  let editor: RequirementsEditor | null = null
  const legacy = needsBlocks(handle.doc() as A.Doc<unknown>)
  if (legacy) {
    // Plain lines that a reader may not convert: shown as they would be.
    const render = () => fill(editorHost, renderLines(str((handle.doc() as RecordDoc).body)))
    render()
    handle.on("change", render)
  } else {
    editor = new RequirementsEditor(editorHost, {
      handle: handle as never,
      change: edit => app.replica.change(handle, edit as never),
      readOnly: !mayWrite,
      presence,
      onSelection: () => updateToolbar(),
    })
  }

  const toolbar = mayWrite && editor ? makeToolbar(editor) : null
  const updateToolbar = () => toolbar?.update()

  handle.on("change", () => {
    const current = (handle.doc() as RecordDoc).title
    if (document.activeElement !== title) title.value = str(current)
  })

  const comments = new CommentsPanel(app, { record: id, mayComment })
  fill(
    el,
    h(
      "div",
      { class: "document-main" },
      h(
        "div",
        { class: "document-head" },
        title,
        people,
        h("button", { type: "button", class: "button-quiet jump-comments", onclick: () => comments.el.scrollIntoView({ behavior: "smooth" }) }, "Comments"),
      ),
      why,
      toolbar?.el ?? null,
      editorHost,
    ),
    comments.el,
  )
  el.dataset.readonly = String(!mayWrite)
  return {
    el,
    editor,
    comments,
    readOnly: !mayWrite,
    destroy() {
      presence.destroy()
      editor?.destroy()
      comments.destroy()
    },
  }
}

function renderLines(text: string): HTMLElement {
  const body = h("div", { class: "editor-body ProseMirror", "data-legacy": "" })
  for (const span of spansOfLines(text)) {
    if (span.type === "block") {
      const type = str(span.value.type)
      const level = Number((span.value.attrs as Record<string, unknown>)?.level) || 2
      body.append(type === "heading" ? h(`h${Math.min(level, 6)}` as "h2") : type.endsWith("list-item") ? h("li") : h("p"))
    } else {
      body.lastElementChild?.append(span.value)
    }
  }
  return body
}

function makeToolbar(editor: RequirementsEditor): { el: HTMLElement; update(): void } {
  const button = (format: Format, label: string, title: string) =>
    h(
      "button",
      {
        type: "button",
        class: `tool tool-${format}`,
        title,
        "aria-label": title,
        "data-format": format,
        onmousedown: (e: Event) => e.preventDefault(),
        onclick: () => {
          if (format === "link") {
            const href = cleanHref(window.prompt("Link to (address):", "https://") ?? "")
            if (href) editor.format("link", href)
          } else {
            editor.format(format)
          }
        },
      },
      label,
    )
  const el = h(
    "div",
    { class: "toolbar", role: "toolbar", "aria-label": "Formatting" },
    button("heading", "H", "Heading"),
    button("bold", "B", "Bold (Ctrl+B)"),
    button("italic", "I", "Italic (Ctrl+I)"),
    button("bullets", "•", "Bulleted list"),
    button("numbers", "1.", "Numbered list"),
    button("link", "Link", "Link"),
  )
  return { el, update() {} }
}
