// The requirements editor: ProseMirror bound to the document's `body` by
// @automerge/prosemirror, so local typing becomes automerge splices and
// marks, and remote changes become ProseMirror transactions.

import * as A from "@automerge/automerge/slim"
import type { DocHandle } from "@automerge/automerge-repo/slim"
import { basicSchemaAdapter, init } from "@automerge/prosemirror"
import { amSpliceIdxToPmIdx, pmRangeToAmRange } from "@automerge/prosemirror/dist/traversal.js"
import { baseKeymap } from "prosemirror-commands"
import { history, redo, undo } from "prosemirror-history"
import { keymap } from "prosemirror-keymap"
import type { Schema } from "prosemirror-model"
import { splitListItem } from "prosemirror-schema-list"
import { EditorState, Plugin, TextSelection, type Transaction } from "prosemirror-state"
import { Decoration, DecorationSet, EditorView } from "prosemirror-view"
import { BODY } from "../model/body"
import { colorOf } from "../ui/dom"
import { command, type Format } from "./commands"
import type { Presence } from "./presence"
import { advance, armChange, bodySpans, disarm } from "./spans"

export interface EditorOptions {
  handle: DocHandle<unknown>
  /** Makes a change as this person (with our actor). */
  change: (edit: (doc: unknown) => void) => void
  readOnly: boolean
  presence: Presence | null
  onSelection?: () => void
}

export class RequirementsEditor {
  readonly view: EditorView
  readonly schema: Schema
  private remote = false
  private stopKeeping: () => void = () => undefined
  private selectionTimer: ReturnType<typeof setTimeout> | undefined

  constructor(parent: HTMLElement, private readonly options: EditorOptions) {
    const { handle } = options
    // What the binding sees: our change (with our actor), and change events
    // marked as remote so that undo never takes back another person's typing.
    // Keeps the body's spans from state to state (see ./spans.ts); registered
    // before the binding's own listener, so it finds them there.
    const keepSpans = (payload: { patches: A.Patch[]; patchInfo: { before: unknown; after: unknown } }) =>
      advance(payload.patchInfo.before as A.Doc<unknown>, payload.patchInfo.after as A.Doc<unknown>, payload.patches)
    handle.on("change", keepSpans as never)
    this.stopKeeping = () => handle.off("change", keepSpans as never)
    const bound = {
      doc: () => handle.doc(),
      change: (edit: (doc: unknown) => void) => {
        armChange(handle.doc() as A.Doc<unknown>)
        try {
          options.change(edit)
        } finally {
          disarm()
        }
      },
      on: (_event: "change", callback: (payload: never) => void) => {
        const wrapped = (payload: unknown) => {
          this.remote = true
          try {
            callback(payload as never)
          } finally {
            this.remote = false
          }
        }
        wrappers.set(callback, wrapped)
        handle.on("change", wrapped as never)
      },
      off: (_event: "change", callback: (payload: never) => void) => {
        const wrapped = wrappers.get(callback)
        if (wrapped) handle.off("change", wrapped as never)
      },
    }
    const wrappers = new Map<unknown, (payload: unknown) => void>()
    const { schema, pmDoc, plugin } = init(bound as never, BODY, { schemaAdapter: basicSchemaAdapter })
    this.schema = schema
    const cursorsPlugin = this.cursorPlugin()
    const state = EditorState.create({
      schema,
      doc: pmDoc,
      plugins: [
        history(),
        keymap({
          "Mod-z": undo,
          "Mod-y": redo,
          "Mod-Shift-z": redo,
          "Mod-b": command(schema, "bold"),
          "Mod-i": command(schema, "italic"),
          Enter: splitListItem(schema.nodes.list_item),
        }),
        keymap(baseKeymap),
        plugin,
        cursorsPlugin,
      ],
    })
    this.view = new EditorView(parent, {
      state,
      editable: () => !options.readOnly,
      attributes: {
        class: "editor-body",
        "aria-label": "Document text",
        role: "textbox",
        "aria-multiline": "true",
        "aria-readonly": String(options.readOnly),
      },
      dispatchTransaction: (tr: Transaction) => {
        if (this.remote) tr.setMeta("addToHistory", false)
        this.view.updateState(this.view.state.apply(tr))
        if (tr.selectionSet || tr.docChanged) {
          // Where our cursor is goes out once typing pauses, not per key.
          clearTimeout(this.selectionTimer)
          this.selectionTimer = setTimeout(() => this.reportSelection(), 250)
        }
        options.onSelection?.()
      },
    })
    options.presence?.onChange(() => this.view.dispatch(this.view.state.tr.setMeta("rapport-cursors", true)))
  }

  /** Applies a format to the selection; false if it does not apply there. */
  format(format: Format, href?: string): boolean {
    if (this.options.readOnly) return false
    const done = command(this.schema, format, href)(this.view.state, this.view.dispatch)
    this.view.focus()
    return done
  }

  /** Puts the cursor at body index `index` (automerge text units), or the end. */
  placeCursor(index: number | "end"): void {
    const doc = this.view.state.doc
    let pos: number
    if (index === "end") {
      pos = TextSelection.atEnd(doc).from
    } else {
      const spans = bodySpans(this.options.handle.doc() as A.Doc<unknown>)
      pos = amSpliceIdxToPmIdx(basicSchemaAdapter, spans, index) ?? TextSelection.atEnd(doc).from
    }
    const selection = TextSelection.near(doc.resolve(Math.max(0, Math.min(pos, doc.content.size))))
    this.view.dispatch(this.view.state.tr.setSelection(selection))
    this.view.focus()
  }

  /** Selects body indexes `from`..`to`. */
  select(from: number, to: number): void {
    const spans = bodySpans(this.options.handle.doc() as A.Doc<unknown>)
    const a = amSpliceIdxToPmIdx(basicSchemaAdapter, spans, from) ?? 0
    const b = amSpliceIdxToPmIdx(basicSchemaAdapter, spans, to) ?? a
    this.view.dispatch(this.view.state.tr.setSelection(TextSelection.create(this.view.state.doc, a, b)))
    this.view.focus()
  }

  destroy(): void {
    clearTimeout(this.selectionTimer)
    this.stopKeeping()
    this.view.destroy()
  }

  private reportSelection(): void {
    const presence = this.options.presence
    if (!presence) return
    const doc = this.options.handle.doc() as A.Doc<unknown>
    const { anchor, head } = this.view.state.selection
    try {
      const spans = bodySpans(doc)
      const a = pmRangeToAmRange(basicSchemaAdapter, spans, { from: anchor, to: anchor })
      const h = anchor === head ? a : pmRangeToAmRange(basicSchemaAdapter, spans, { from: head, to: head })
      presence.moveTo(doc, a?.start ?? null, h?.start ?? null)
    } catch {
      presence.moveTo(doc, null, null)
    }
  }

  /** Decorations for the other people's cursors and selections. */
  private cursorPlugin(): Plugin {
    return new Plugin({
      props: {
        decorations: state => {
          const presence = this.options.presence
          if (!presence) return null
          const doc = this.options.handle.doc() as A.Doc<unknown>
          let spans: A.Span[] | null = null
          const decorations: Decoration[] = []
          for (const peer of presence.cursors()) {
            if (!peer.head) continue
            spans ??= bodySpans(doc)
            const at = (cursor: string | null) => {
              if (!cursor) return null
              try {
                const index = A.getCursorPosition(doc, BODY, cursor as never)
                const pos = amSpliceIdxToPmIdx(basicSchemaAdapter, spans!, index)
                return pos === null ? null : Math.max(0, Math.min(pos, state.doc.content.size))
              } catch {
                return null
              }
            }
            const head = at(peer.head)
            if (head === null) continue
            const anchor = at(peer.anchor) ?? head
            const color = colorOf(peer.key)
            if (anchor !== head) {
              decorations.push(
                Decoration.inline(Math.min(anchor, head), Math.max(anchor, head), { class: "peer-selection" }),
              )
            }
            decorations.push(Decoration.widget(head, () => caret(peer.name, color), { key: `${peer.peer}-${peer.head}`, side: 1 }))
          }
          return decorations.length ? DecorationSet.create(state.doc, decorations) : null
        },
      },
    })
  }
}

function caret(name: string, color: string): HTMLElement {
  const el = document.createElement("span")
  el.className = "peer-caret"
  el.style.borderColor = color
  const label = document.createElement("span")
  label.className = "peer-caret-label"
  label.style.backgroundColor = color
  label.textContent = name || "Someone"
  el.append(label)
  return el
}
